//! Integration tests: one binary (ripgrep's layout).

// Tests drive the real process, real sockets and files, and take their t0 from the clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod batcher;
mod batches;
mod beacon;
mod chain_data;
mod cli;
mod config;
mod decode;
mod deposits;
mod derive;
mod devnet;
mod faults;
mod p2p_blocks;
mod p2p_interop;
mod payloads;
mod peers;
mod platform;
mod rpc;
mod scenarios;
mod sequencer;
mod sim;
// The library's test upstream, shared with its unit tests (which use all of it).
#[allow(dead_code)]
#[path = "../src/io/stub_http.rs"]
mod stub_http;
mod support;
mod untrusted;
