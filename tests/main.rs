//! Integration tests: one binary (ripgrep's layout).

#![allow(clippy::disallowed_methods)]

mod batcher;
mod batches;
mod chain_data;
mod cli;
mod config;
mod deposits;
mod derive;
mod payloads;
mod support;
