//! op-lite: an OP Stack rollup node (what op-node is in Go) for constrained hosts.
//!
//! # Architecture
//!
//! One thread owns all state. A `mio::Poll` loop (`io::driver`) replaces op-node's `select`:
//!
//! ```text
//!  sockets, timers, waker --> io::driver --> Events --> event::System --> derivers
//!                                 ^                          |
//!                                 |                          v
//!       worker results + Waker <- ureq worker threads <- Requests
//! ```
//!
//! * Everything that decides — derivers, the derivation pipeline, the engine controller,
//!   protocol codecs, RPC handling — is sans-IO: it takes inputs and `time::Now` as arguments.
//!   Only `io/` reads clocks, spawns threads or touches sockets.
//! * The event system (`event`) is op-node's: one `Event` enum, derivers reacting in
//!   registration order, a bounded FIFO queue (10,000), tracers, and an abort flag set by a
//!   `CriticalError`.
//! * Loop rule: after any input, fire due timers and drain events until the queue is empty (in
//!   bounded batches), hand requests to workers, then block in `poll` until the earliest deadline.
//! * Step scheduling (`driver::sched`) keeps op-node's exponential backoff with a stored
//!   deadline instead of a Go timer channel.

#![forbid(unsafe_code)]

pub mod config;
pub mod derive;
#[cfg(feature = "devnet")]
pub mod devnet;
pub mod driver;
pub mod engine;
pub mod event;
pub mod io;
pub mod metrics;
pub mod node;
pub mod p2p;
pub mod protocol;
pub mod rng;
pub mod rpc;
pub mod time;
pub mod tools;
pub mod version;
