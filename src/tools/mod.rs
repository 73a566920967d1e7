//! Operator tools that run the node's own code on files: `replay` (derivation over a recorded
//! L1 range) and `decode` (batcher data, channels, blocks, blobs, gossip messages).

pub mod decode;
#[cfg(feature = "devnet")]
pub mod devnet;
pub mod p2p;
pub mod replay;
