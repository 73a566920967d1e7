//! Integration tests: one binary (ripgrep's layout).

#![allow(clippy::disallowed_methods)]

mod batches;
mod cli;
mod config;
mod support;
