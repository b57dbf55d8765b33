//! Integration tests of the control plane: the HTTP API against real
//! servers on port 0, restarts over the same files, and crash safety of the
//! real binary under SIGKILL.

mod api;
mod auth;
mod crash;
mod dashboard;
mod events;
mod kinds;
mod metrics;
mod nodes;
mod process;
mod restart;
mod support;
