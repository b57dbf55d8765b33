//! Multi-process tests: one control plane and several edges, real binaries
//! on loopback.

mod dashboard;
mod distribution;
mod failover;
mod faults;
mod ha;
mod http;
mod identity;
mod original;
