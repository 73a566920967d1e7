//! Engine API types (forkchoice state, payload status, results), the calls the engine
//! controller makes as requests, and the method version for each fork (op-node
//! `rollup/types.go`: `ForkchoiceUpdatedVersion`, `NewPayloadVersion`, `GetPayloadVersion`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::protocol::payload::{ExecutionPayloadEnvelope, PayloadAttributes};
use crate::protocol::primitives::{B256, B64};
use crate::protocol::rollup::{Fork, RollupConfig};

/// Engine API error codes (execution-apis + op-service `eth.ErrorCode`).
pub mod codes {
    pub const UNKNOWN_PAYLOAD: i64 = -38001;
    pub const INVALID_FORKCHOICE_STATE: i64 = -38002;
    pub const INVALID_PAYLOAD_ATTRIBUTES: i64 = -38003;
    pub const TOO_LARGE_REQUEST: i64 = -38004;
    pub const UNSUPPORTED_FORK: i64 = -38005;

    /// op-service `ErrorCode.IsEngineError`.
    pub fn is_engine_error(code: i64) -> bool {
        -38100 < code && code <= -38000
    }
}

/// The three heads sent with every forkchoice update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForkchoiceState {
    pub head_block_hash: B256,
    pub safe_block_hash: B256,
    pub finalized_block_hash: B256,
}

/// `PayloadStatusV1.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Valid,
    Invalid,
    Syncing,
    Accepted,
    InvalidBlockHash,
}

/// `PayloadStatusV1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadStatus {
    pub status: ExecutionStatus,
    #[serde(default)]
    pub latest_valid_hash: Option<B256>,
    #[serde(default)]
    pub validation_error: Option<String>,
}

impl fmt::Display for PayloadStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.status)?;
        if let Some(e) = &self.validation_error {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

/// `ForkchoiceUpdatedResult`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForkchoiceUpdatedResult {
    pub payload_status: PayloadStatus,
    #[serde(default)]
    pub payload_id: Option<B64>,
}

/// A payload being built: its id and timestamp (which picks the getPayload version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadInfo {
    pub id: B64,
    pub timestamp: u64,
}

/// An Engine API call for the engine worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineCall {
    ForkchoiceUpdated { version: u8, state: ForkchoiceState, attributes: Option<Box<PayloadAttributes>> },
    NewPayload { version: u8, envelope: Box<ExecutionPayloadEnvelope> },
    GetPayload { version: u8, info: PayloadInfo },
}

impl EngineCall {
    pub fn method(&self) -> String {
        match self {
            EngineCall::ForkchoiceUpdated { version, .. } => {
                format!("engine_forkchoiceUpdatedV{version}")
            }
            EngineCall::NewPayload { version, .. } => format!("engine_newPayloadV{version}"),
            EngineCall::GetPayload { version, .. } => format!("engine_getPayloadV{version}"),
        }
    }
}

/// A successful Engine API answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineReply {
    Forkchoice(ForkchoiceUpdatedResult),
    NewPayload(PayloadStatus),
    Payload(Box<ExecutionPayloadEnvelope>),
}

/// A failed Engine API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// A JSON-RPC error object from the engine.
    Rpc { code: i64, message: String },
    /// The engine could not be reached, timed out, or answered garbage.
    Transport(String),
}

impl EngineError {
    pub fn code(&self) -> Option<i64> {
        match self {
            EngineError::Rpc { code, .. } => Some(*code),
            EngineError::Transport(_) => None,
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Rpc { code, message } => write!(f, "engine error {code}: {message}"),
            EngineError::Transport(m) => write!(f, "engine unreachable: {m}"),
        }
    }
}

impl std::error::Error for EngineError {}

/// The Engine API methods op-lite calls (every version `fcu_version`, `new_payload_version` and
/// `get_payload_version` pick), announced with `engine_exchangeCapabilities`.
pub const ENGINE_METHODS: &[&str] = &[
    "engine_forkchoiceUpdatedV1",
    "engine_forkchoiceUpdatedV2",
    "engine_forkchoiceUpdatedV3",
    "engine_newPayloadV2",
    "engine_newPayloadV3",
    "engine_newPayloadV4",
    "engine_getPayloadV2",
    "engine_getPayloadV3",
    "engine_getPayloadV4",
    "engine_getPayloadV5",
];

/// forkchoiceUpdated: V3 from Ecotone, V2 from Canyon, else V1 (by the attributes' or the
/// head's timestamp).
pub fn fcu_version(cfg: &RollupConfig, t: u64) -> u8 {
    if cfg.is_active(Fork::Ecotone, t) {
        3
    } else if cfg.is_active(Fork::Canyon, t) {
        2
    } else {
        1
    }
}

/// newPayload: V4 from Isthmus, V3 from Ecotone, else V2.
pub fn new_payload_version(cfg: &RollupConfig, t: u64) -> u8 {
    if cfg.is_active(Fork::Isthmus, t) {
        4
    } else if cfg.is_active(Fork::Ecotone, t) {
        3
    } else {
        2
    }
}

/// getPayload: V5 from Karst (Osaka on L2), V4 from Isthmus, V3 from Ecotone, else V2.
pub fn get_payload_version(cfg: &RollupConfig, t: u64) -> u8 {
    if cfg.is_active(Fork::Karst, t) {
        5
    } else if cfg.is_active(Fork::Isthmus, t) {
        4
    } else if cfg.is_active(Fork::Ecotone, t) {
        3
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rollup::{tests_support, Fork};

    #[test]
    fn versions_follow_forks() {
        let c = tests_support::with_forks_until(Fork::Karst, 1_000, 100);
        let canyon = c.forks.canyon_time.unwrap();
        let ecotone = c.forks.ecotone_time.unwrap();
        let isthmus = c.forks.isthmus_time.unwrap();
        let karst = c.forks.karst_time.unwrap();
        assert_eq!(fcu_version(&c, canyon - 1), 1);
        assert_eq!(fcu_version(&c, canyon), 2);
        assert_eq!(fcu_version(&c, ecotone), 3);
        assert_eq!(new_payload_version(&c, ecotone - 1), 2);
        assert_eq!(new_payload_version(&c, isthmus), 4);
        assert_eq!(get_payload_version(&c, isthmus), 4);
        assert_eq!(get_payload_version(&c, karst), 5);
    }

    #[test]
    fn engine_methods_are_the_versions_called() {
        let c = tests_support::with_forks_until(Fork::Karst, 1_000, 100);
        let mut called = std::collections::BTreeSet::new();
        for t in (0..2_000).step_by(50) {
            called.insert(format!("engine_forkchoiceUpdatedV{}", fcu_version(&c, t)));
            called.insert(format!("engine_newPayloadV{}", new_payload_version(&c, t)));
            called.insert(format!("engine_getPayloadV{}", get_payload_version(&c, t)));
        }
        let listed: std::collections::BTreeSet<String> =
            ENGINE_METHODS.iter().map(|m| m.to_string()).collect();
        assert_eq!(called, listed);
    }

    #[test]
    fn status_json() {
        let r: ForkchoiceUpdatedResult = serde_json::from_str(
            r#"{"payloadStatus":{"status":"VALID","latestValidHash":null,"validationError":null},"payloadId":"0x0000000000000001"}"#,
        )
        .unwrap();
        assert_eq!(r.payload_status.status, ExecutionStatus::Valid);
        assert_eq!(r.payload_id, Some(B64([0, 0, 0, 0, 0, 0, 0, 1])));
        let s: PayloadStatus = serde_json::from_str(r#"{"status":"INVALID_BLOCK_HASH"}"#).unwrap();
        assert_eq!(s.status, ExecutionStatus::InvalidBlockHash);
    }
}
