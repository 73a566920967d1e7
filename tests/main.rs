//! Integration tests: one binary (ripgrep's layout), grouped by what they run against:
//! `sim` (simulated time), `vectors` (real data), `process` (the binary), `peers` (real peers),
//! and `regression` (each test named after the defect it pins).

// Tests drive the real process, real sockets and files, and take their t0 from the clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod peers;
mod process;
mod regression;
mod sim;
// The library's test upstream, shared with its unit tests (which use all of it).
#[allow(dead_code)]
#[path = "../src/io/stub_http.rs"]
mod stub_http;
mod support;
mod vectors;
