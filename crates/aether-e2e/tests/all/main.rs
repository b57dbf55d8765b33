//! Multi-process tests: one control plane and several edges, real binaries
//! on loopback.

mod distribution;
mod failover;
mod faults;
mod identity;
mod original;
