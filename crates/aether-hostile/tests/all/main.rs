//! The hostile-input and fault suite (docs/SECURITY.md lists every case):
//! real servers on 127.0.0.1:0, real wasm from WAT fixtures. Every test
//! also checks that the server answers a normal request right after.

mod auth;
mod decoders;
mod faults;
mod functions;
mod generated;
mod http;
mod requests;
