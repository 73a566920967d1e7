//! Chain references shared by the derivation pipeline, the engine controller and the RPC:
//! block ids, L1 and L2 block refs, and the sync status.

use serde::{Deserialize, Serialize};

use crate::protocol::primitives::B256;

/// A block by hash and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct BlockId {
    pub hash: B256,
    pub number: u64,
}

impl std::fmt::Display for BlockId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.hash, self.number)
    }
}

/// An L1 block reference (op-node `eth.L1BlockRef`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L1BlockRef {
    pub hash: B256,
    pub number: u64,
    pub parent_hash: B256,
    pub timestamp: u64,
}

impl L1BlockRef {
    pub fn id(&self) -> BlockId {
        BlockId { hash: self.hash, number: self.number }
    }
}

impl std::fmt::Display for L1BlockRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.hash, self.number)
    }
}

/// An L2 block reference with its L1 origin and sequence number (op-node `eth.L2BlockRef`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L2BlockRef {
    pub hash: B256,
    pub number: u64,
    pub parent_hash: B256,
    pub timestamp: u64,
    pub l1origin: BlockId,
    pub sequence_number: u64,
}

impl L2BlockRef {
    pub fn id(&self) -> BlockId {
        BlockId { hash: self.hash, number: self.number }
    }
}

impl std::fmt::Display for L2BlockRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.hash, self.number)
    }
}
