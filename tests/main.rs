//! Integration tests: one binary (ripgrep's layout).

#![allow(clippy::disallowed_methods)]

mod cli;
mod config;
mod deposits;
mod support;
