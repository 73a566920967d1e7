//! Engine API execution payloads and payload attributes in the JSON form op-node exchanges with
//! the execution engine (`op-service/eth/types.go`), the block header a payload commits to, its
//! block hash, and the payload id op-geth assigns to a build.
//!
//! Payloads carry every field from Bedrock (V1) through Canyon withdrawals (V2), Ecotone blob gas
//! (V3) and the Isthmus `withdrawalsRoot`; which ones are present depends on the fork.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use super::header::{Header, Withdrawal, EMPTY_OMMERS_HASH};
use super::primitives::{keccak256, serde_quantity, Address, Bloom, Bytes, B256, B64, U256};
use super::rlp;
use super::trie::ordered_root;

/// The longest `extraData` a payload may carry (the beacon chain's `MAX_EXTRA_DATA_BYTES`).
pub const MAX_EXTRA_DATA: usize = 32;

/// sha256 of nothing: the EIP-7685 requests hash of an empty request list, which every Isthmus
/// block header carries because OP Stack blocks have no execution-layer requests.
pub const EMPTY_REQUESTS_HASH: B256 = B256([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27,
    0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// Why a payload does not yield a block hash, or not the one it claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// The base fee does not fit the header's 64-bit field.
    BaseFeeTooLarge(U256),
    BlockHashMismatch {
        claimed: B256,
        computed: B256,
    },
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::BaseFeeTooLarge(v) => write!(f, "payload base fee {v} exceeds 64 bits"),
            PayloadError::BlockHashMismatch { claimed, computed } => {
                write!(f, "payload claims block hash {claimed}, header hashes to {computed}")
            }
        }
    }
}

impl std::error::Error for PayloadError {}

/// An execution payload (`ExecutionPayloadV1`..`V3` plus the Isthmus `withdrawalsRoot`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionPayload {
    pub parent_hash: B256,
    pub fee_recipient: Address,
    pub state_root: B256,
    pub receipts_root: B256,
    pub logs_bloom: Bloom,
    pub prev_randao: B256,
    #[serde(with = "serde_quantity")]
    pub block_number: u64,
    #[serde(with = "serde_quantity")]
    pub gas_limit: u64,
    #[serde(with = "serde_quantity")]
    pub gas_used: u64,
    #[serde(with = "serde_quantity")]
    pub timestamp: u64,
    #[serde(deserialize_with = "extra_data")]
    pub extra_data: Bytes,
    pub base_fee_per_gas: U256,
    pub block_hash: B256,
    /// EIP-2718 encoded transactions.
    pub transactions: Vec<Bytes>,
    /// Canyon: present and empty; absent before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawals: Option<Vec<Withdrawal>>,
    /// Ecotone.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_quantity::opt")]
    pub blob_gas_used: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_quantity::opt")]
    pub excess_blob_gas: Option<u64>,
    /// Isthmus: the L2ToL1MessagePasser storage root the header commits to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawals_root: Option<B256>,
}

/// A payload with the parent beacon block root that Ecotone headers commit to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionPayloadEnvelope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_beacon_block_root: Option<B256>,
    pub execution_payload: ExecutionPayload,
}

/// Payload attributes with the OP Stack extensions (`transactions`, `noTxPool`, `gasLimit`,
/// Holocene `eip1559Params`, Jovian `minBaseFee`), serialized like op-node's
/// `eth.PayloadAttributes`: absent options and an empty transaction list are omitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadAttributes {
    #[serde(with = "serde_quantity")]
    pub timestamp: u64,
    pub prev_randao: B256,
    pub suggested_fee_recipient: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawals: Option<Vec<Withdrawal>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_beacon_block_root: Option<B256>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub transactions: Vec<Bytes>,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "null_as_default")]
    pub no_tx_pool: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_quantity::opt")]
    pub gas_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip1559_params: Option<B64>,
    /// A JSON number on the wire, as op-node's `*uint64` writes it and op-geth reads it (the
    /// spec says QUANTITY, so a hex string is accepted too).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "serde_quantity::opt::deserialize"
    )]
    pub min_base_fee: Option<u64>,
}

impl ExecutionPayload {
    /// The header this payload commits to, given the envelope's parent beacon block root.
    pub fn to_header(&self, parent_beacon_block_root: Option<B256>) -> Result<Header, PayloadError> {
        let base_fee =
            self.base_fee_per_gas.to_u64().ok_or(PayloadError::BaseFeeTooLarge(self.base_fee_per_gas))?;
        // op-node's rule: an Isthmus payload carries the withdrawals root itself (and so implies
        // the empty requests hash); a Canyon payload commits to its (empty) withdrawal list.
        let (withdrawals_root, requests_hash) = match (&self.withdrawals_root, &self.withdrawals) {
            (Some(root), _) => (Some(*root), Some(EMPTY_REQUESTS_HASH)),
            (None, Some(ws)) => (Some(withdrawals_root(ws)), None),
            (None, None) => (None, None),
        };
        Ok(Header {
            parent_hash: self.parent_hash,
            ommers_hash: EMPTY_OMMERS_HASH,
            beneficiary: self.fee_recipient,
            state_root: self.state_root,
            transactions_root: ordered_root(&self.transactions),
            receipts_root: self.receipts_root,
            logs_bloom: self.logs_bloom,
            difficulty: U256::ZERO,
            number: self.block_number,
            gas_limit: self.gas_limit,
            gas_used: self.gas_used,
            timestamp: self.timestamp,
            extra_data: self.extra_data.clone(),
            mix_hash: self.prev_randao,
            nonce: B64::ZERO,
            base_fee_per_gas: Some(base_fee),
            withdrawals_root,
            blob_gas_used: self.blob_gas_used,
            excess_blob_gas: self.excess_blob_gas,
            parent_beacon_block_root,
            requests_hash,
        })
    }
}

impl ExecutionPayloadEnvelope {
    /// Builds the envelope of a block from its header and encoded transactions, as op-node does
    /// for blocks fetched over RPC: `withdrawals` as the block lists them, and the withdrawals
    /// root carried from Isthmus on, which the header's requests hash marks (op-node decides
    /// by fork time; an Isthmus block whose message passer holds no storage carries the empty
    /// root and still commits to the requests hash).
    pub fn from_block(
        header: &Header,
        transactions: Vec<Bytes>,
        withdrawals: Option<Vec<Withdrawal>>,
    ) -> ExecutionPayloadEnvelope {
        let execution_payload = ExecutionPayload {
            parent_hash: header.parent_hash,
            fee_recipient: header.beneficiary,
            state_root: header.state_root,
            receipts_root: header.receipts_root,
            logs_bloom: header.logs_bloom,
            prev_randao: header.mix_hash,
            block_number: header.number,
            gas_limit: header.gas_limit,
            gas_used: header.gas_used,
            timestamp: header.timestamp,
            extra_data: header.extra_data.clone(),
            base_fee_per_gas: U256::from_u64(header.base_fee_per_gas.unwrap_or(0)),
            block_hash: header.hash(),
            transactions,
            withdrawals,
            blob_gas_used: header.blob_gas_used,
            excess_blob_gas: header.excess_blob_gas,
            withdrawals_root: header.requests_hash.and(header.withdrawals_root),
        };
        ExecutionPayloadEnvelope {
            parent_beacon_block_root: header.parent_beacon_block_root,
            execution_payload,
        }
    }

    /// The header the payload commits to.
    pub fn header(&self) -> Result<Header, PayloadError> {
        self.execution_payload.to_header(self.parent_beacon_block_root)
    }

    /// The block hash recomputed from the payload's fields.
    pub fn compute_block_hash(&self) -> Result<B256, PayloadError> {
        Ok(self.header()?.hash())
    }

    /// Checks that the payload's `blockHash` is the hash of the header it commits to.
    pub fn check_block_hash(&self) -> Result<(), PayloadError> {
        let computed = self.compute_block_hash()?;
        let claimed = self.execution_payload.block_hash;
        if computed == claimed {
            Ok(())
        } else {
            Err(PayloadError::BlockHashMismatch { claimed, computed })
        }
    }
}

impl PayloadAttributes {
    /// The payload id op-geth returns for a build of these attributes on `parent`, where
    /// `version` is the Engine API version of the `forkchoiceUpdated` call (1..=4).
    pub fn payload_id(&self, parent: &B256, version: u8) -> B64 {
        let mut h = Sha256::new();
        h.update(parent.0);
        h.update(self.timestamp.to_be_bytes());
        h.update(self.prev_randao.0);
        h.update(self.suggested_fee_recipient.0);
        let mut ws = Vec::new();
        rlp::put_list(&mut ws, |o| {
            for w in self.withdrawals.iter().flatten() {
                o.extend_from_slice(&w.encode());
            }
        });
        h.update(&ws);
        if let Some(root) = &self.parent_beacon_block_root {
            h.update(root.0);
        }
        if self.no_tx_pool || !self.transactions.is_empty() {
            h.update([self.no_tx_pool as u8]);
            h.update((self.transactions.len() as u64).to_be_bytes());
            for tx in &self.transactions {
                h.update(keccak256(tx).0);
            }
        }
        if let Some(gas_limit) = self.gas_limit {
            h.update(gas_limit.to_be_bytes());
        }
        if let Some(params) = &self.eip1559_params {
            h.update(params.0);
        }
        if let Some(min) = self.min_base_fee.filter(|m| *m != 0) {
            h.update(min.to_be_bytes());
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&h.finalize()[..8]);
        id[0] = version;
        B64(id)
    }
}

/// The trie root of a withdrawal list.
pub fn withdrawals_root(withdrawals: &[Withdrawal]) -> B256 {
    let encoded: Vec<Vec<u8>> = withdrawals.iter().map(Withdrawal::encode).collect();
    ordered_root(&encoded)
}

fn extra_data<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
    let b = Bytes::deserialize(d)?;
    if b.len() > MAX_EXTRA_DATA {
        return Err(serde::de::Error::custom(format!(
            "extraData of {} bytes exceeds {MAX_EXTRA_DATA}",
            b.len()
        )));
    }
    Ok(b)
}

/// Reads `null` as the default, as Go does for a nil slice or pointer.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::primitives::from_hex;
    use crate::protocol::trie::EMPTY_ROOT;

    fn payload() -> ExecutionPayload {
        ExecutionPayload {
            parent_hash: B256([1; 32]),
            fee_recipient: Address([2; 20]),
            state_root: B256([3; 32]),
            receipts_root: B256([4; 32]),
            logs_bloom: Bloom([5; 256]),
            prev_randao: B256([6; 32]),
            block_number: 100,
            gas_limit: 30_000_000,
            gas_used: 21_000,
            timestamp: 1_700_000_000,
            extra_data: Bytes(vec![0, 0, 0, 0, 0xfa, 0, 0, 0, 6]),
            base_fee_per_gas: U256::from_u64(252),
            block_hash: B256::ZERO,
            transactions: vec![Bytes(vec![0x7e, 1, 2]), Bytes(vec![2, 3])],
            withdrawals: None,
            blob_gas_used: None,
            excess_blob_gas: None,
            withdrawals_root: None,
        }
    }

    #[test]
    fn empty_requests_hash_is_sha256_of_nothing() {
        assert_eq!(EMPTY_REQUESTS_HASH.0, <[u8; 32]>::from(Sha256::digest([])));
    }

    #[test]
    fn json_omits_absent_fields_and_round_trips() {
        let mut p = payload();
        let j = serde_json::to_value(&p).unwrap();
        assert_eq!(j["blockNumber"], "0x64");
        assert_eq!(j["baseFeePerGas"], "0xfc");
        assert_eq!(j["extraData"], "0x00000000fa00000006");
        for absent in ["withdrawals", "blobGasUsed", "excessBlobGas", "withdrawalsRoot"] {
            assert!(j.get(absent).is_none(), "{absent}");
        }
        p.withdrawals = Some(vec![]);
        p.blob_gas_used = Some(0);
        p.excess_blob_gas = Some(0);
        p.withdrawals_root = Some(B256([9; 32]));
        let j = serde_json::to_value(&p).unwrap();
        assert_eq!(j["withdrawals"], serde_json::json!([]));
        assert_eq!(j["blobGasUsed"], "0x0");
        let back: ExecutionPayload = serde_json::from_value(j).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn json_rejects_long_extra_data() {
        let mut j = serde_json::to_value(payload()).unwrap();
        j["extraData"] = format!("0x{}", "00".repeat(33)).into();
        assert!(serde_json::from_value::<ExecutionPayload>(j).is_err());
    }

    #[test]
    fn header_fields_follow_the_fork() {
        let mut env =
            ExecutionPayloadEnvelope { parent_beacon_block_root: None, execution_payload: payload() };
        let h = env.header().unwrap();
        assert_eq!(h.withdrawals_root, None);
        assert_eq!(h.ommers_hash, EMPTY_OMMERS_HASH);
        env.execution_payload.withdrawals = Some(vec![]);
        assert_eq!(env.header().unwrap().withdrawals_root, Some(EMPTY_ROOT));
        env.execution_payload.withdrawals_root = Some(B256([7; 32]));
        env.parent_beacon_block_root = Some(B256([8; 32]));
        let h = env.header().unwrap();
        assert_eq!(h.withdrawals_root, Some(B256([7; 32])));
        assert_eq!(h.requests_hash, Some(EMPTY_REQUESTS_HASH));
        assert_eq!(h.parent_beacon_block_root, Some(B256([8; 32])));

        let from = ExecutionPayloadEnvelope::from_block(
            &h,
            env.execution_payload.transactions.clone(),
            Some(vec![]),
        );
        assert_eq!(from.compute_block_hash().unwrap(), h.hash());
        from.check_block_hash().unwrap();
        // An Isthmus block whose message passer has no storage: the empty root, still Isthmus.
        env.execution_payload.withdrawals_root = Some(EMPTY_ROOT);
        let h = env.header().unwrap();
        assert_eq!(h.requests_hash, Some(EMPTY_REQUESTS_HASH));
        let from = ExecutionPayloadEnvelope::from_block(
            &h,
            env.execution_payload.transactions.clone(),
            Some(vec![]),
        );
        from.check_block_hash().unwrap();
        // A Canyon block: the empty withdrawals list's root, no withdrawals root in the payload.
        env.execution_payload.withdrawals_root = None;
        let h = env.header().unwrap();
        let from = ExecutionPayloadEnvelope::from_block(
            &h,
            env.execution_payload.transactions.clone(),
            Some(vec![]),
        );
        assert_eq!(from.execution_payload.withdrawals_root, None);
        from.check_block_hash().unwrap();

        env.execution_payload.base_fee_per_gas = U256::MAX;
        assert_eq!(env.header(), Err(PayloadError::BaseFeeTooLarge(U256::MAX)));
    }

    #[test]
    fn check_block_hash_reports_both_hashes() {
        let env = ExecutionPayloadEnvelope { parent_beacon_block_root: None, execution_payload: payload() };
        let computed = env.compute_block_hash().unwrap();
        assert_eq!(
            env.check_block_hash(),
            Err(PayloadError::BlockHashMismatch { claimed: B256::ZERO, computed })
        );
    }

    #[test]
    fn attributes_json_matches_op_node() {
        let a = PayloadAttributes {
            timestamp: 0x1337,
            prev_randao: B256::ZERO,
            suggested_fee_recipient: Address::ZERO,
            withdrawals: None,
            parent_beacon_block_root: None,
            transactions: vec![],
            no_tx_pool: false,
            gas_limit: None,
            eip1559_params: None,
            min_base_fee: None,
        };
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(
            j,
            r#"{"timestamp":"0x1337","prevRandao":"0x0000000000000000000000000000000000000000000000000000000000000000","suggestedFeeRecipient":"0x0000000000000000000000000000000000000000"}"#
        );
        let full = PayloadAttributes {
            withdrawals: Some(vec![]),
            parent_beacon_block_root: Some(B256::ZERO),
            transactions: vec![Bytes(from_hex("68656c6c6f").unwrap())],
            no_tx_pool: true,
            gas_limit: Some(42),
            eip1559_params: Some(B64([0, 0, 0xde, 0xad, 0, 0, 0xbe, 0xef])),
            min_base_fee: Some(100),
            ..a
        };
        let j = serde_json::to_value(&full).unwrap();
        assert_eq!(j["noTxPool"], true);
        assert_eq!(j["gasLimit"], "0x2a");
        assert_eq!(j["eip1559Params"], "0x0000dead0000beef");
        assert_eq!(j["minBaseFee"], 100);
        assert_eq!(serde_json::from_value::<PayloadAttributes>(j).unwrap(), full);
    }

    #[test]
    fn attributes_accept_nulls_like_go() {
        let j = r#"{"timestamp":"0x1","prevRandao":"0x0000000000000000000000000000000000000000000000000000000000000000",
            "suggestedFeeRecipient":"0x0000000000000000000000000000000000000000","transactions":null,"noTxPool":null,
            "gasLimit":null,"eip1559Params":null,"minBaseFee":"0x10","withdrawals":null}"#;
        let a: PayloadAttributes = serde_json::from_str(j).unwrap();
        assert!(a.transactions.is_empty() && !a.no_tx_pool && a.gas_limit.is_none());
        assert_eq!(a.min_base_fee, Some(16));
    }
}
