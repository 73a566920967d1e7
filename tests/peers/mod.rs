//! Real peers on loopback, found through the environment (skipped when absent, required under
//! `CI=true`): anvil and EthereumJS as the upstreams, a rust-libp2p gossip peer and a sigp
//! discv5 peer, and an executing OP engine.

mod discv5;
mod engine;
mod libp2p;
mod upstreams;
