//! Peer discovery: node records (ENR, EIP-778) and, on them, the discv5 protocol.

pub mod enr;
pub mod session;
pub mod wire;
