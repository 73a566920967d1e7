//! The whole process: the real `op-lite` binary run as an operator runs it — its command line,
//! `decode`, the devnet, the systemd unit, and the RPC and metrics servers on ephemeral ports.

mod cli;
mod decode;
mod devnet;
mod discovery;
mod platform;
mod rpc;
#[cfg(feature = "tls")]
mod tls;
