//! L1 -> L2 derivation (specs `protocol/derivation.md` and the per-fork documents), sans-IO.
//!
//! The pipeline is op-node's chain of pull stages, each owning the one before it:
//! attributes queue <- batch queue / batch stage <- channel reader <- channel bank / channel
//! assembler <- frame queue <- L1 retrieval <- L1 traversal. Stages read chain data from the
//! bounded `data::ChainData` caches; a miss records a fetch request and the step ends with
//! `StageError::NotYet`; the arrival of the data triggers the next step.

pub mod attributes;
pub mod batch_stage;
pub mod channel_reader;
pub mod channel_stage;
pub mod codec;
pub mod data;
pub mod deriver;
pub mod frame_queue;
pub mod l2;
pub mod pipeline;
pub mod retrieval;
pub mod sync_start;
pub mod traversal;

use std::fmt;

/// How a stage call ended when it did not produce a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageError {
    /// Nothing more at the current L1 origin (op-node `io.EOF`).
    Eof,
    /// Progress was made; call again (op-node `NotEnoughData`).
    NotEnoughData,
    /// Waiting for requested chain data.
    NotYet,
    /// Retry later with backoff.
    Temporary(String),
    /// Derivation state is inconsistent with L1 or L2: reset.
    Reset(String),
    /// Unrecoverable.
    Critical(String),
}

impl StageError {
    pub fn temporary(msg: impl Into<String>) -> Self {
        StageError::Temporary(msg.into())
    }
    pub fn reset(msg: impl Into<String>) -> Self {
        StageError::Reset(msg.into())
    }
    pub fn critical(msg: impl Into<String>) -> Self {
        StageError::Critical(msg.into())
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageError::Eof => write!(f, "EOF"),
            StageError::NotEnoughData => write!(f, "not enough data"),
            StageError::NotYet => write!(f, "waiting for chain data"),
            StageError::Temporary(m) => write!(f, "temp: {m}"),
            StageError::Reset(m) => write!(f, "reset: {m}"),
            StageError::Critical(m) => write!(f, "crit: {m}"),
        }
    }
}

impl std::error::Error for StageError {}

impl From<data::Miss> for StageError {
    /// A pending fetch is "not yet"; "not found" must be mapped by the caller where it means
    /// something else (a missing L1 block is EOF for traversal, a reset for retrieval).
    fn from(m: data::Miss) -> Self {
        match m {
            data::Miss::Pending => StageError::NotYet,
            data::Miss::NotFound => StageError::Temporary("chain data not found".into()),
        }
    }
}

pub type StageResult<T> = Result<T, StageError>;

/// Counters the pipeline keeps for the metrics endpoint (op-node's derivation metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeriveMetrics {
    pub frames: u64,
    pub channel_timeouts: u64,
    pub channel_input_bytes: u64,
    pub derived_batches_singular: u64,
    pub derived_batches_span: u64,
    pub pipeline_resets: u64,
    /// Number of the traversal's L1 origin and of the pipeline's derived-from origin.
    pub l1_origin: u64,
    pub l1_derived: u64,
}

/// What every stage call gets: configuration, the chain data caches, and the counters.
pub struct Cx<'a> {
    pub cfg: &'a crate::protocol::rollup::RollupConfig,
    pub l1: &'a crate::protocol::l1_chain::L1ChainSpec,
    pub data: &'a mut data::ChainData,
    pub metrics: &'a mut DeriveMetrics,
}
