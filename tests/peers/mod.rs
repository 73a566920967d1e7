//! Real peers on loopback, found through the environment (skipped when absent, required under
//! `CI=true`): anvil and EthereumJS as the upstreams, and a rust-libp2p gossip peer.

mod libp2p;
mod upstreams;
