//! The Aether control plane (work in progress).
