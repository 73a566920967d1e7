//! The engine side of the node: the Engine API types, the engine controller (forkchoice
//! state, block building and insertion, unsafe payloads, resets, EL sync) and the attributes
//! handler (consolidation of derived attributes with existing unsafe blocks).

pub mod api;
pub mod attributes;
pub mod controller;
pub mod payload_queue;

use crate::protocol::block_ref::{L1BlockRef, L2BlockRef};
use crate::protocol::payload::ExecutionPayloadEnvelope;

use api::PayloadInfo;

/// op-node's sync modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    ConsensusLayer,
    ExecutionLayer,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::ConsensusLayer => "consensus-layer",
            SyncMode::ExecutionLayer => "execution-layer",
        }
    }
}

/// The forkchoice heads as op-node tracks them (cross-safety equals local safety without
/// interop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineHeads {
    pub unsafe_head: L2BlockRef,
    pub cross_unsafe: L2BlockRef,
    pub local_safe: L2BlockRef,
    pub safe: L2BlockRef,
    pub finalized: L2BlockRef,
}

/// A block being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildJob {
    pub info: PayloadInfo,
    pub parent: L2BlockRef,
    /// The last block of its span batch.
    pub concluding: bool,
    /// The L1 block its attributes were derived from; zero for the sequencer's blocks.
    pub derived_from: L1BlockRef,
}

impl BuildJob {
    pub fn is_derived(&self) -> bool {
        self.derived_from != L1BlockRef::default()
    }
}

/// A built payload and its ref, on its way to insertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlock {
    pub envelope: ExecutionPayloadEnvelope,
    pub block_ref: L2BlockRef,
    pub concluding: bool,
    pub derived_from: L1BlockRef,
    pub info: Option<PayloadInfo>,
}

impl SealedBlock {
    pub fn is_derived(&self) -> bool {
        self.derived_from != L1BlockRef::default()
    }
}
