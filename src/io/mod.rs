//! The edge of op-lite: the only module that reads clocks, spawns threads or touches sockets.
//! Everything it learns becomes an `Event` for the sans-IO core; everything the core asks for
//! arrives here as a `Request`.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod admin_state;
pub mod beacon;
pub mod clock;
#[cfg(feature = "devnet")]
pub mod devnet_feed;
pub mod discv5;
pub mod driver;
pub mod files;
pub mod http_server;
pub mod jwt;
pub mod log;
pub mod node;
pub mod out;
pub mod p2p;
pub mod procfs;
pub mod rpc_client;
pub mod safedb_file;
pub mod sd_notify;
pub mod server_thread;
pub mod signals;
#[cfg(test)]
pub(crate) mod stub_http;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tls")]
mod tls_ec;
pub mod upstream;
pub mod workers;
