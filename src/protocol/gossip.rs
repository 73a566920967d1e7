//! OP Stack unsafe-block gossip (`specs/protocol/rollup-node-p2p.md`): block topics, the SSZ
//! `ExecutionPayload` containers of block versions V1–V4, block signatures, snappy block
//! compression and the gossipsub message id.
//!
//! A wire message is `snappy(signature ++ payload)`: a 65-byte `r ++ s ++ y_parity` signature,
//! then the SSZ payload, prefixed from V3 on by the 32-byte parent beacon block root; the
//! signature covers `keccak256(domain ++ chain_id ++ keccak256(payload))`. Decoding follows
//! op-node's rules (`op-service/eth/ssz.go`) and is bounded by the 10 MiB gossip limit. Checks
//! against the clock, the seen-block cache and the allowed signer belong to the gossip layer.

use std::fmt;

use k256::ecdsa::SigningKey;
use sha2::{Digest, Sha256};

use super::header::Withdrawal;
use super::payload::{ExecutionPayload, ExecutionPayloadEnvelope, MAX_EXTRA_DATA};
use super::primitives::{keccak256, Address, Bloom, Bytes, B256, U256};
use super::tx::recover_address;
use crate::protocol::rollup::{Fork, RollupConfig};

/// The largest decompressed message (and gossipsub RPC) op-node accepts.
pub const MAX_GOSSIP_SIZE: usize = 10 << 20;
/// The smallest decompressed message: a signature and at least one byte to sign.
pub const MIN_GOSSIP_SIZE: usize = 66;
/// `MAX_TRANSACTIONS_PER_PAYLOAD` of the consensus specs.
pub const MAX_TRANSACTIONS: usize = 1 << 20;
/// `MAX_WITHDRAWALS_PER_PAYLOAD` of the consensus specs.
pub const MAX_WITHDRAWALS: usize = 16;
/// A secp256k1 signature: `r ++ s ++ y_parity`.
pub const SIGNATURE_LEN: usize = 65;

/// Message-id domain for data that snappy-decompresses.
pub const MESSAGE_DOMAIN_VALID_SNAPPY: [u8; 4] = [1, 0, 0, 0];
/// Message-id domain for data that does not.
pub const MESSAGE_DOMAIN_INVALID_SNAPPY: [u8; 4] = [0, 0, 0, 0];

const WITHDRAWAL_SIZE: usize = 8 + 8 + 20 + 8;
const V1_FIXED_SIZE: usize = 32 + 20 + 32 + 32 + 256 + 32 + 8 + 8 + 8 + 8 + 4 + 32 + 32 + 4;

/// The gossip block format, one per topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlockVersion {
    /// Bedrock.
    V1,
    /// Canyon and Delta: an (empty) withdrawal list.
    V2,
    /// Ecotone: blob gas fields and the parent beacon block root.
    V3,
    /// Isthmus: the withdrawals root.
    V4,
}

/// Why a gossip message or payload was rejected, or could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipError {
    /// The data is not a valid snappy block.
    Snappy,
    TooLarge {
        len: usize,
        max: usize,
    },
    TooSmall {
        len: usize,
        min: usize,
    },
    /// The payload ends before its fixed part or a dynamic field.
    Truncated {
        need: usize,
        got: usize,
    },
    BadExtraDataOffset {
        offset: u32,
        expected: usize,
    },
    BadTransactionsOffset(u32),
    BadWithdrawalsOffset(u32),
    ExtraDataTooLarge(usize),
    /// A transaction offset that is misaligned, out of range or decreasing.
    BadTransactionOffset {
        index: usize,
        offset: u32,
    },
    TooManyTransactions(usize),
    /// The withdrawal list is not a whole number of withdrawals.
    BadWithdrawalsLength(usize),
    TooManyWithdrawals(usize),
    /// A field is present that the block version lacks, or missing where it is required.
    WrongShape {
        version: BlockVersion,
        field: &'static str,
    },
    /// A V2+ block whose withdrawal list is not empty.
    NonEmptyWithdrawals(usize),
    /// A V3+ block whose blob gas field is not zero.
    NonZeroBlobGas {
        field: &'static str,
        value: u64,
    },
    BadYParity(u8),
    InvalidSignature,
}

impl fmt::Display for GossipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GossipError::Snappy => write!(f, "invalid snappy compression"),
            GossipError::TooLarge { len, max } => {
                write!(f, "gossip message of {len} bytes exceeds {max}")
            }
            GossipError::TooSmall { len, min } => {
                write!(f, "gossip message of {len} bytes is under {min}")
            }
            GossipError::Truncated { need, got } => {
                write!(f, "payload truncated: need {need} bytes, got {got}")
            }
            GossipError::BadExtraDataOffset { offset, expected } => {
                write!(f, "extra data offset {offset}, want {expected}")
            }
            GossipError::BadTransactionsOffset(o) => write!(f, "bad transactions offset {o}"),
            GossipError::BadWithdrawalsOffset(o) => write!(f, "bad withdrawals offset {o}"),
            GossipError::ExtraDataTooLarge(n) => {
                write!(f, "extra data of {n} bytes exceeds {MAX_EXTRA_DATA}")
            }
            GossipError::BadTransactionOffset { index, offset } => {
                write!(f, "transaction {index} has bad offset {offset}")
            }
            GossipError::TooManyTransactions(n) => {
                write!(f, "{n} transactions exceed {MAX_TRANSACTIONS}")
            }
            GossipError::BadWithdrawalsLength(n) => {
                write!(f, "withdrawals of {n} bytes are not a multiple of {WITHDRAWAL_SIZE}")
            }
            GossipError::TooManyWithdrawals(n) => {
                write!(f, "{n} withdrawals exceed {MAX_WITHDRAWALS}")
            }
            GossipError::WrongShape { version, field } => {
                write!(f, "{field} does not match block version {version:?}")
            }
            GossipError::NonEmptyWithdrawals(n) => write!(f, "block has {n} withdrawals"),
            GossipError::NonZeroBlobGas { field, value } => write!(f, "{field} is {value}, want 0"),
            GossipError::BadYParity(v) => write!(f, "signature y parity {v}, want 0 or 1"),
            GossipError::InvalidSignature => write!(f, "invalid block signature"),
        }
    }
}

impl std::error::Error for GossipError {}

impl BlockVersion {
    /// Every version, in topic order.
    pub const ALL: [BlockVersion; 4] =
        [BlockVersion::V1, BlockVersion::V2, BlockVersion::V3, BlockVersion::V4];

    /// The version of blocks with L2 timestamp `t`.
    pub fn at(cfg: &RollupConfig, t: u64) -> BlockVersion {
        if cfg.is_active(Fork::Isthmus, t) {
            BlockVersion::V4
        } else if cfg.is_active(Fork::Ecotone, t) {
            BlockVersion::V3
        } else if cfg.is_active(Fork::Canyon, t) {
            BlockVersion::V2
        } else {
            BlockVersion::V1
        }
    }

    /// The gossip topic of this version on chain `chain_id`: `/optimism/<chain>/<n>/blocks`.
    pub fn topic(self, chain_id: u64) -> String {
        format!("/optimism/{chain_id}/{}/blocks", self as u8)
    }

    /// The version whose topic on `chain_id` is `topic`.
    pub fn from_topic(topic: &str, chain_id: u64) -> Option<BlockVersion> {
        Self::ALL.into_iter().find(|v| v.topic(chain_id) == topic)
    }

    /// True from V2 (Canyon) on.
    pub fn has_withdrawals(self) -> bool {
        self >= BlockVersion::V2
    }

    /// True from V3 (Ecotone) on: blob gas used and excess blob gas.
    pub fn has_blob_properties(self) -> bool {
        self >= BlockVersion::V3
    }

    /// True from V3 (Ecotone) on.
    pub fn has_parent_beacon_block_root(self) -> bool {
        self >= BlockVersion::V3
    }

    /// True for V4 (Isthmus).
    pub fn has_withdrawals_root(self) -> bool {
        self == BlockVersion::V4
    }

    /// Size of the SSZ container's fixed part (offsets included).
    fn fixed_size(self) -> usize {
        match self {
            BlockVersion::V1 => V1_FIXED_SIZE,
            BlockVersion::V2 => V1_FIXED_SIZE + 4,
            BlockVersion::V3 => V1_FIXED_SIZE + 4 + 16,
            BlockVersion::V4 => V1_FIXED_SIZE + 4 + 16 + 32,
        }
    }
}

/// A block message: the sequencer's signature over `payload_hash` and the decoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBlock {
    pub signature: [u8; SIGNATURE_LEN],
    /// keccak256 of the signed bytes (everything after the signature).
    pub payload_hash: B256,
    pub envelope: ExecutionPayloadEnvelope,
}

impl SignedBlock {
    /// Signs `envelope` as the sequencer of chain `chain_id` does.
    pub fn sign(
        envelope: ExecutionPayloadEnvelope,
        version: BlockVersion,
        chain_id: u64,
        key: &SigningKey,
    ) -> Result<SignedBlock, GossipError> {
        let mut payload = Vec::new();
        encode_envelope(&envelope, version, &mut payload)?;
        let payload_hash = keccak256(&payload);
        let (sig, rec) = key
            .sign_prehash_recoverable(&signing_hash(chain_id, &payload_hash).0)
            .map_err(|_| GossipError::InvalidSignature)?;
        let mut signature = [0u8; SIGNATURE_LEN];
        signature[..64].copy_from_slice(&sig.to_bytes());
        signature[64] = rec.to_byte();
        Ok(SignedBlock { signature, payload_hash, envelope })
    }

    /// Decodes a wire message (snappy-compressed) of the topic for `version`.
    pub fn decode(raw: &[u8], version: BlockVersion) -> Result<SignedBlock, GossipError> {
        let data = decompress(raw)?;
        if data.len() < MIN_GOSSIP_SIZE {
            return Err(GossipError::TooSmall { len: data.len(), min: MIN_GOSSIP_SIZE });
        }
        let (sig, payload) = data.split_at(SIGNATURE_LEN);
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(sig);
        Ok(SignedBlock {
            signature,
            payload_hash: keccak256(payload),
            envelope: decode_envelope(payload, version)?,
        })
    }

    /// The wire message (snappy-compressed) for the topic of `version`.
    pub fn encode(&self, version: BlockVersion) -> Result<Vec<u8>, GossipError> {
        let mut data = self.signature.to_vec();
        encode_envelope(&self.envelope, version, &mut data)?;
        compress(&data)
    }

    /// The address that signed the block for chain `chain_id`.
    pub fn signer(&self, chain_id: u64) -> Result<Address, GossipError> {
        recover_signer(chain_id, &self.payload_hash, &self.signature)
    }
}

/// The hash a block signature signs: `keccak256(domain ++ chain_id ++ payload_hash)`, with the
/// all-zero V1 domain and the chain id as a big-endian uint256.
pub fn signing_hash(chain_id: u64, payload_hash: &B256) -> B256 {
    let mut msg = [0u8; 96];
    msg[56..64].copy_from_slice(&chain_id.to_be_bytes());
    msg[64..].copy_from_slice(&payload_hash.0);
    keccak256(msg)
}

/// Recovers the signer of a block signature (`y_parity` must be 0 or 1).
pub fn recover_signer(
    chain_id: u64,
    payload_hash: &B256,
    signature: &[u8; SIGNATURE_LEN],
) -> Result<Address, GossipError> {
    let v = signature[64];
    if v > 1 {
        return Err(GossipError::BadYParity(v));
    }
    let r = U256::from_be_slice(&signature[..32]).unwrap_or_default();
    let s = U256::from_be_slice(&signature[32..64]).unwrap_or_default();
    recover_address(&signing_hash(chain_id, payload_hash), v, &r, &s)
        .map_err(|_| GossipError::InvalidSignature)
}

/// Snappy block compression of a whole message.
pub fn compress(data: &[u8]) -> Result<Vec<u8>, GossipError> {
    if data.len() > MAX_GOSSIP_SIZE {
        return Err(GossipError::TooLarge { len: data.len(), max: MAX_GOSSIP_SIZE });
    }
    snap::raw::Encoder::new().compress_vec(data).map_err(|_| GossipError::Snappy)
}

/// Snappy block decompression, refusing (before allocating) output over the gossip limit.
pub fn decompress(raw: &[u8]) -> Result<Vec<u8>, GossipError> {
    let len = snap::raw::decompress_len(raw).map_err(|_| GossipError::Snappy)?;
    if len > MAX_GOSSIP_SIZE {
        return Err(GossipError::TooLarge { len, max: MAX_GOSSIP_SIZE });
    }
    let mut out = vec![0u8; len];
    let n = snap::raw::Decoder::new().decompress(raw, &mut out).map_err(|_| GossipError::Snappy)?;
    out.truncate(n);
    Ok(out)
}

/// The gossipsub message id of `raw` on `topic`, as op-node computes it: the first 20 bytes of
/// `sha256(domain ++ u64_le(len(topic)) ++ topic ++ data)`, where `data` is the decompressed
/// message under the valid-snappy domain, else the raw bytes under the invalid one. (The spec
/// text predates the topic; op-node includes it, like the L1 Altair message id.)
pub fn message_id(topic: &str, raw: &[u8]) -> [u8; 20] {
    let mut h = Sha256::new();
    let decompressed = decompress(raw);
    let data = match &decompressed {
        Ok(d) => {
            h.update(MESSAGE_DOMAIN_VALID_SNAPPY);
            d.as_slice()
        }
        Err(_) => {
            h.update(MESSAGE_DOMAIN_INVALID_SNAPPY);
            raw
        }
    };
    h.update((topic.len() as u64).to_le_bytes());
    h.update(topic.as_bytes());
    h.update(data);
    let mut id = [0u8; 20];
    id.copy_from_slice(&h.finalize()[..20]);
    id
}

/// Checks the spec's version rules that the SSZ layout leaves open: the fields the version
/// defines are exactly those present, withdrawals are empty from V2 on, and blob gas is zero
/// from V3 on (blob gas used only until Jovian, after which it carries the DA footprint).
pub fn check_fields(
    env: &ExecutionPayloadEnvelope,
    version: BlockVersion,
    cfg: &RollupConfig,
) -> Result<(), GossipError> {
    check_shape(env, version)?;
    let p = &env.execution_payload;
    if let Some(n) = p.withdrawals.as_ref().map(Vec::len).filter(|n| *n != 0) {
        return Err(GossipError::NonEmptyWithdrawals(n));
    }
    let jovian = cfg.is_active(Fork::Jovian, p.timestamp);
    if let Some(value) = p.blob_gas_used.filter(|v| *v != 0 && !jovian) {
        return Err(GossipError::NonZeroBlobGas { field: "blobGasUsed", value });
    }
    if let Some(value) = p.excess_blob_gas.filter(|v| *v != 0) {
        return Err(GossipError::NonZeroBlobGas { field: "excessBlobGas", value });
    }
    Ok(())
}

/// Appends the signed part of a message: from V3 on the parent beacon block root, then the
/// SSZ payload.
pub fn encode_envelope(
    env: &ExecutionPayloadEnvelope,
    version: BlockVersion,
    out: &mut Vec<u8>,
) -> Result<(), GossipError> {
    check_shape(env, version)?;
    if let Some(root) = &env.parent_beacon_block_root {
        out.extend_from_slice(&root.0);
    }
    encode_payload(&env.execution_payload, version, out)
}

/// Decodes the signed part of a message of `version`.
pub fn decode_envelope(bytes: &[u8], version: BlockVersion) -> Result<ExecutionPayloadEnvelope, GossipError> {
    let (parent_beacon_block_root, payload) = if version.has_parent_beacon_block_root() {
        let Some((root, rest)) = bytes.split_first_chunk::<32>() else {
            return Err(GossipError::Truncated { need: 32, got: bytes.len() });
        };
        (Some(B256(*root)), rest)
    } else {
        (None, bytes)
    };
    Ok(ExecutionPayloadEnvelope {
        parent_beacon_block_root,
        execution_payload: decode_payload(payload, version)?,
    })
}

/// Appends the SSZ `ExecutionPayload` container of `version`.
pub fn encode_payload(
    p: &ExecutionPayload,
    version: BlockVersion,
    out: &mut Vec<u8>,
) -> Result<(), GossipError> {
    check_payload_shape(p, version)?;
    if p.extra_data.len() > MAX_EXTRA_DATA {
        return Err(GossipError::ExtraDataTooLarge(p.extra_data.len()));
    }
    if p.transactions.len() > MAX_TRANSACTIONS {
        return Err(GossipError::TooManyTransactions(p.transactions.len()));
    }
    let withdrawals = p.withdrawals.as_deref().unwrap_or_default();
    if withdrawals.len() > MAX_WITHDRAWALS {
        return Err(GossipError::TooManyWithdrawals(withdrawals.len()));
    }
    let fixed = version.fixed_size();
    let txs_offset = fixed + p.extra_data.len();
    let withdrawals_offset = p
        .transactions
        .iter()
        .try_fold(txs_offset, |acc, tx| acc.checked_add(4 + tx.len()))
        .unwrap_or(usize::MAX);
    let total = withdrawals_offset.saturating_add(withdrawals.len() * WITHDRAWAL_SIZE);
    if u32::try_from(total).is_err() {
        return Err(GossipError::TooLarge { len: total, max: u32::MAX as usize });
    }
    out.reserve(total);
    out.extend_from_slice(&p.parent_hash.0);
    out.extend_from_slice(&p.fee_recipient.0);
    out.extend_from_slice(&p.state_root.0);
    out.extend_from_slice(&p.receipts_root.0);
    out.extend_from_slice(&p.logs_bloom.0);
    out.extend_from_slice(&p.prev_randao.0);
    for v in [p.block_number, p.gas_limit, p.gas_used, p.timestamp] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    put_offset(out, fixed);
    let mut base_fee = p.base_fee_per_gas.to_be_bytes();
    base_fee.reverse();
    out.extend_from_slice(&base_fee);
    out.extend_from_slice(&p.block_hash.0);
    put_offset(out, txs_offset);
    if version.has_withdrawals() {
        put_offset(out, withdrawals_offset);
    }
    if let (Some(used), Some(excess)) = (p.blob_gas_used, p.excess_blob_gas) {
        out.extend_from_slice(&used.to_le_bytes());
        out.extend_from_slice(&excess.to_le_bytes());
    }
    if let Some(root) = &p.withdrawals_root {
        out.extend_from_slice(&root.0);
    }
    out.extend_from_slice(&p.extra_data);
    let mut tx_offset = 4 * p.transactions.len();
    for tx in &p.transactions {
        put_offset(out, tx_offset);
        tx_offset += tx.len();
    }
    for tx in &p.transactions {
        out.extend_from_slice(tx);
    }
    for w in withdrawals {
        out.extend_from_slice(&w.index.to_le_bytes());
        out.extend_from_slice(&w.validator_index.to_le_bytes());
        out.extend_from_slice(&w.address.0);
        out.extend_from_slice(&w.amount.to_le_bytes());
    }
    Ok(())
}

/// Decodes the SSZ `ExecutionPayload` container of `version`, which must fill `bytes`.
pub fn decode_payload(bytes: &[u8], version: BlockVersion) -> Result<ExecutionPayload, GossipError> {
    let scope = bytes.len();
    let fixed = version.fixed_size();
    if scope < fixed {
        return Err(GossipError::Truncated { need: fixed, got: scope });
    }
    if u32::try_from(scope).is_err() {
        return Err(GossipError::TooLarge { len: scope, max: u32::MAX as usize });
    }
    let mut r = Reader { buf: bytes, pos: 0 };
    let parent_hash = B256(r.take()?);
    let fee_recipient = Address(r.take()?);
    let state_root = B256(r.take()?);
    let receipts_root = B256(r.take()?);
    let logs_bloom = Bloom(r.take()?);
    let prev_randao = B256(r.take()?);
    let block_number = r.u64()?;
    let gas_limit = r.u64()?;
    let gas_used = r.u64()?;
    let timestamp = r.u64()?;
    let extra_offset = r.u32()?;
    if extra_offset as usize != fixed {
        return Err(GossipError::BadExtraDataOffset { offset: extra_offset, expected: fixed });
    }
    let mut base_fee: [u8; 32] = r.take()?;
    base_fee.reverse();
    let block_hash = B256(r.take()?);
    let txs_offset = r.u32()?;
    if txs_offset < extra_offset {
        return Err(GossipError::BadTransactionsOffset(txs_offset));
    }
    let mut withdrawals_offset = scope;
    if version.has_withdrawals() {
        let o = r.u32()?;
        if o < txs_offset || o as usize > scope {
            return Err(GossipError::BadWithdrawalsOffset(o));
        }
        withdrawals_offset = o as usize;
    }
    let (mut blob_gas_used, mut excess_blob_gas) = (None, None);
    if version.has_blob_properties() {
        blob_gas_used = Some(r.u64()?);
        excess_blob_gas = Some(r.u64()?);
    }
    let withdrawals_root = match version.has_withdrawals_root() {
        true => Some(B256(r.take()?)),
        false => None,
    };
    let (extra_start, txs_start) = (extra_offset as usize, txs_offset as usize);
    if txs_start > extra_start + MAX_EXTRA_DATA || txs_start > scope {
        return Err(GossipError::ExtraDataTooLarge(txs_start - extra_start));
    }
    let extra_data = Bytes(slice(bytes, extra_start, txs_start)?.to_vec());
    let transactions = decode_transactions(slice(bytes, txs_start, withdrawals_offset)?)?;
    let withdrawals = match version.has_withdrawals() {
        true => Some(decode_withdrawals(slice(bytes, withdrawals_offset, scope)?)?),
        false => None,
    };
    Ok(ExecutionPayload {
        parent_hash,
        fee_recipient,
        state_root,
        receipts_root,
        logs_bloom,
        prev_randao,
        block_number,
        gas_limit,
        gas_used,
        timestamp,
        extra_data,
        base_fee_per_gas: U256(base_fee),
        block_hash,
        transactions,
        withdrawals,
        blob_gas_used,
        excess_blob_gas,
        withdrawals_root,
    })
}

/// A list of byte lists: `n` 4-byte offsets, the first of which is `4 * n`, then the items.
fn decode_transactions(buf: &[u8]) -> Result<Vec<Bytes>, GossipError> {
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    let scope = buf.len();
    let offset_at = |i: usize| -> Result<u32, GossipError> {
        let b = slice(buf, 4 * i, 4 * i + 4)?;
        Ok(u32::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let first = offset_at(0)?;
    let bad = |index, offset| GossipError::BadTransactionOffset { index, offset };
    if first % 4 != 0 || first == 0 || first as usize > scope {
        return Err(bad(0, first));
    }
    let count = first as usize / 4;
    if count > MAX_TRANSACTIONS {
        return Err(GossipError::TooManyTransactions(count));
    }
    // `count` is at most a quarter of the input, so the list is bounded by it.
    let mut txs = Vec::with_capacity(count);
    let mut start = first as usize;
    for i in 0..count {
        let end = if i + 1 < count {
            let o = offset_at(i + 1)?;
            if (o as usize) < start || o as usize > scope {
                return Err(bad(i + 1, o));
            }
            o as usize
        } else {
            scope
        };
        txs.push(Bytes(slice(buf, start, end)?.to_vec()));
        start = end;
    }
    Ok(txs)
}

fn decode_withdrawals(buf: &[u8]) -> Result<Vec<Withdrawal>, GossipError> {
    if buf.len() % WITHDRAWAL_SIZE != 0 {
        return Err(GossipError::BadWithdrawalsLength(buf.len()));
    }
    let count = buf.len() / WITHDRAWAL_SIZE;
    if count > MAX_WITHDRAWALS {
        return Err(GossipError::TooManyWithdrawals(count));
    }
    buf.chunks_exact(WITHDRAWAL_SIZE)
        .map(|w| {
            let mut r = Reader { buf: w, pos: 0 };
            Ok(Withdrawal {
                index: r.u64()?,
                validator_index: r.u64()?,
                address: Address(r.take()?),
                amount: r.u64()?,
            })
        })
        .collect()
}

fn check_shape(env: &ExecutionPayloadEnvelope, version: BlockVersion) -> Result<(), GossipError> {
    if env.parent_beacon_block_root.is_some() != version.has_parent_beacon_block_root() {
        return Err(GossipError::WrongShape { version, field: "parentBeaconBlockRoot" });
    }
    check_payload_shape(&env.execution_payload, version)
}

fn check_payload_shape(p: &ExecutionPayload, version: BlockVersion) -> Result<(), GossipError> {
    let fields = [
        ("withdrawals", p.withdrawals.is_some(), version.has_withdrawals()),
        ("blobGasUsed", p.blob_gas_used.is_some(), version.has_blob_properties()),
        ("excessBlobGas", p.excess_blob_gas.is_some(), version.has_blob_properties()),
        ("withdrawalsRoot", p.withdrawals_root.is_some(), version.has_withdrawals_root()),
    ];
    match fields.iter().find(|(_, present, wanted)| present != wanted) {
        Some((field, _, _)) => Err(GossipError::WrongShape { version, field }),
        None => Ok(()),
    }
}

/// Offsets fit in u32: the encoder checks the total size first.
fn put_offset(out: &mut Vec<u8>, offset: usize) {
    out.extend_from_slice(&(offset as u32).to_le_bytes());
}

fn slice(buf: &[u8], start: usize, end: usize) -> Result<&[u8], GossipError> {
    buf.get(start..end).ok_or(GossipError::Truncated { need: end.max(start), got: buf.len() })
}

/// A cursor over the fixed part of a container.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], GossipError> {
        let b = slice(self.buf, self.pos, self.pos + N)?;
        self.pos += N;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, GossipError> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, GossipError> {
        self.take().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn key() -> SigningKey {
        SigningKey::from_slice(&[0x42; 32]).unwrap()
    }

    fn envelope(version: BlockVersion) -> ExecutionPayloadEnvelope {
        let w = Withdrawal { index: 1, validator_index: 2, address: Address([3; 20]), amount: 4 };
        let payload = ExecutionPayload {
            parent_hash: B256([1; 32]),
            fee_recipient: Address([2; 20]),
            state_root: B256([3; 32]),
            receipts_root: B256([4; 32]),
            logs_bloom: Bloom([5; 256]),
            prev_randao: B256([6; 32]),
            block_number: 7,
            gas_limit: 30_000_000,
            gas_used: 21_000,
            timestamp: 1_700_000_000,
            extra_data: Bytes(vec![0, 0, 0, 0, 0xfa, 0, 0, 0, 6]),
            base_fee_per_gas: U256::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10),
            block_hash: B256([8; 32]),
            transactions: vec![Bytes(vec![0x7e; 40]), Bytes(vec![]), Bytes(vec![2; 3])],
            withdrawals: version.has_withdrawals().then(|| vec![w, w]),
            blob_gas_used: version.has_blob_properties().then_some(0),
            excess_blob_gas: version.has_blob_properties().then_some(0),
            withdrawals_root: version.has_withdrawals_root().then_some(B256([9; 32])),
        };
        ExecutionPayloadEnvelope {
            parent_beacon_block_root: version.has_parent_beacon_block_root().then_some(B256([10; 32])),
            execution_payload: payload,
        }
    }

    fn messages() -> Vec<(BlockVersion, Vec<u8>)> {
        BlockVersion::ALL
            .into_iter()
            .map(|v| {
                let signed = SignedBlock::sign(envelope(v), v, 10, &key()).unwrap();
                (v, signed.encode(v).unwrap())
            })
            .collect()
    }

    #[test]
    fn topics() {
        assert_eq!(BlockVersion::V1.topic(10), "/optimism/10/0/blocks");
        assert_eq!(BlockVersion::V4.topic(11155420), "/optimism/11155420/3/blocks");
        assert_eq!(BlockVersion::from_topic("/optimism/10/2/blocks", 10), Some(BlockVersion::V3));
        assert_eq!(BlockVersion::from_topic("/optimism/10/2/blocks", 8453), None);
        assert_eq!(BlockVersion::from_topic("/optimism/10/4/blocks", 10), None);
    }

    #[test]
    fn fixed_parts_have_the_spec_sizes() {
        let sizes: Vec<usize> = BlockVersion::ALL.iter().map(|v| v.fixed_size()).collect();
        assert_eq!(sizes, [508, 512, 528, 560]);
    }

    #[test]
    fn every_version_round_trips_and_verifies() {
        let signer = address_of_key(&key());
        for (v, raw) in messages() {
            let block = SignedBlock::decode(&raw, v).unwrap();
            assert_eq!(block.envelope, envelope(v), "{v:?}");
            assert_eq!(block.signer(10).unwrap(), signer);
            assert_ne!(block.signer(11).unwrap(), signer);
            assert_eq!(block.encode(v).unwrap(), raw);
            let data = decompress(&raw).unwrap();
            assert_eq!(block.payload_hash, keccak256(&data[SIGNATURE_LEN..]));
            // Another topic's layout never decodes to the same block.
            for other in BlockVersion::ALL.into_iter().filter(|o| *o != v) {
                assert!(SignedBlock::decode(&raw, other).map_or(true, |b| b.envelope != block.envelope));
            }
        }
    }

    fn address_of_key(k: &SigningKey) -> Address {
        crate::protocol::tx::address_of(k.verifying_key())
    }

    #[test]
    fn encoding_requires_the_version_shape() {
        let env = envelope(BlockVersion::V3);
        let mut out = Vec::new();
        for v in [BlockVersion::V1, BlockVersion::V2, BlockVersion::V4] {
            assert!(matches!(encode_envelope(&env, v, &mut out), Err(GossipError::WrongShape { .. })));
        }
        let mut long = env.clone();
        long.execution_payload.extra_data = Bytes(vec![0; 33]);
        assert_eq!(
            encode_envelope(&long, BlockVersion::V3, &mut out),
            Err(GossipError::ExtraDataTooLarge(33))
        );
    }

    #[test]
    fn signature_parity_must_be_0_or_1() {
        let mut block = SignedBlock::sign(envelope(BlockVersion::V2), BlockVersion::V2, 10, &key()).unwrap();
        block.signature[64] = 27;
        assert_eq!(block.signer(10), Err(GossipError::BadYParity(27)));
        block.signature[64] = 0;
        block.signature[..32].fill(0);
        assert_eq!(block.signer(10), Err(GossipError::InvalidSignature));
    }

    #[test]
    fn versions_and_field_rules_follow_the_forks() {
        let mut cfg = RollupConfig::from_json(crate::protocol::rollup::tests_support::BASE_JSON).unwrap();
        cfg.apply_overrides(&[
            (Fork::Canyon, 100),
            (Fork::Delta, 100),
            (Fork::Ecotone, 200),
            (Fork::Fjord, 200),
            (Fork::Granite, 200),
            (Fork::Holocene, 200),
            (Fork::Isthmus, 300),
            (Fork::Jovian, 400),
        ]);
        let at = |t| BlockVersion::at(&cfg, t);
        assert_eq!(
            [at(99), at(100), at(299), at(300)],
            [BlockVersion::V1, BlockVersion::V2, BlockVersion::V3, BlockVersion::V4]
        );

        let mut env = envelope(BlockVersion::V3);
        env.execution_payload.withdrawals = Some(vec![]);
        env.execution_payload.timestamp = 250;
        assert_eq!(check_fields(&env, BlockVersion::V3, &cfg), Ok(()));
        assert!(matches!(check_fields(&env, BlockVersion::V2, &cfg), Err(GossipError::WrongShape { .. })));
        env.execution_payload.blob_gas_used = Some(5);
        assert_eq!(
            check_fields(&env, BlockVersion::V3, &cfg),
            Err(GossipError::NonZeroBlobGas { field: "blobGasUsed", value: 5 })
        );
        // From Jovian on blob gas used carries the DA footprint.
        env.execution_payload.timestamp = 400;
        assert_eq!(check_fields(&env, BlockVersion::V3, &cfg), Ok(()));
        env.execution_payload.excess_blob_gas = Some(1);
        assert_eq!(
            check_fields(&env, BlockVersion::V3, &cfg),
            Err(GossipError::NonZeroBlobGas { field: "excessBlobGas", value: 1 })
        );
        assert_eq!(
            check_fields(&envelope(BlockVersion::V2), BlockVersion::V2, &cfg),
            Err(GossipError::NonEmptyWithdrawals(2))
        );
    }

    #[test]
    fn decompression_is_bounded_before_allocating() {
        // A header claiming 4 GiB of output, and nothing else.
        assert!(matches!(decompress(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Err(GossipError::TooLarge { .. })));
        let eleven_mib = 11u32 << 20;
        let mut hdr = Vec::new();
        crate::protocol::varint::put(&mut hdr, eleven_mib.into());
        assert!(matches!(decompress(&hdr), Err(GossipError::TooLarge { .. })));
        assert_eq!(decompress(&[]), Err(GossipError::Snappy));
        assert!(compress(&vec![0; MAX_GOSSIP_SIZE + 1]).is_err());
    }

    #[test]
    fn message_ids_use_the_snappy_domains() {
        let (_, raw) = &messages()[2];
        let topic = BlockVersion::V3.topic(10);
        let data = decompress(raw).unwrap();
        let mut h = Sha256::new();
        h.update([1, 0, 0, 0]);
        h.update((topic.len() as u64).to_le_bytes());
        h.update(topic.as_bytes());
        h.update(&data);
        assert_eq!(message_id(&topic, raw), h.finalize()[..20]);
        let junk = [0xffu8; 7];
        let mut h = Sha256::new();
        h.update([0, 0, 0, 0]);
        h.update((topic.len() as u64).to_le_bytes());
        h.update(topic.as_bytes());
        h.update(junk);
        assert_eq!(message_id(&topic, &junk), h.finalize()[..20]);
    }

    /// A cut at the end of the transactions or withdrawals can still be valid SSZ, but never
    /// a validly signed block.
    #[test]
    fn truncated_messages_fail() {
        let signer = address_of_key(&key());
        for (v, raw) in messages() {
            let data = decompress(&raw).unwrap();
            for n in 0..data.len() {
                let cut = compress(&data[..n]).unwrap();
                if let Ok(block) = SignedBlock::decode(&cut, v) {
                    assert_ne!(block.signer(10).ok(), Some(signer), "{v:?} {n}");
                }
            }
            for n in 0..raw.len() {
                assert!(SignedBlock::decode(&raw[..n], v).is_err(), "{v:?} {n}");
                let _ = message_id("t", &raw[..n]);
            }
        }
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut rng = Rng::new(0x5eed);
        let payloads: Vec<(BlockVersion, Vec<u8>)> = messages()
            .into_iter()
            .map(|(v, raw)| (v, decompress(&raw).unwrap()[SIGNATURE_LEN..].to_vec()))
            .collect();
        for i in 0..4000 {
            let (v, base) = &payloads[i % 4];
            let mut buf = if i % 2 == 0 {
                let mut b = vec![0u8; rng.below(base.len() as u64 + 64) as usize];
                rng.fill(&mut b);
                b
            } else {
                base.clone()
            };
            // Overwrite a few bytes, often in the offsets region of the fixed part.
            for _ in 0..=rng.below(4) {
                if buf.is_empty() {
                    break;
                }
                let at = if rng.below(2) == 0 {
                    (500 + rng.below(80) as usize).min(buf.len() - 1)
                } else {
                    rng.below(buf.len() as u64) as usize
                };
                buf[at] = rng.next_u64() as u8;
            }
            for version in BlockVersion::ALL {
                if let Ok(env) = decode_envelope(&buf, version) {
                    let mut again = Vec::new();
                    encode_envelope(&env, version, &mut again).unwrap();
                    assert_eq!(again, buf, "{v:?} decoded leniently");
                }
            }
            let _ = decompress(&buf);
            let _ = SignedBlock::decode(&buf, *v);
            let _ = message_id("t", &buf);
        }
    }

    #[test]
    fn mutated_snappy_messages_never_panic() {
        let mut rng = Rng::new(0xc0ffee);
        let wire = messages();
        let mut decoded = 0;
        for i in 0..4000 {
            let (v, raw) = &wire[i % 4];
            let mut buf = raw.clone();
            for _ in 0..=rng.below(3) {
                let at = rng.below(buf.len() as u64) as usize;
                buf[at] = rng.next_u64() as u8;
            }
            buf.truncate(rng.below(buf.len() as u64 + 1) as usize);
            if let Ok(data) = decompress(&buf) {
                assert!(data.len() <= MAX_GOSSIP_SIZE);
            }
            if let Ok(block) = SignedBlock::decode(&buf, *v) {
                decoded += 1;
                let _ = block.signer(10);
            }
            let _ = message_id("t", &buf);
        }
        assert!(decoded > 0);
    }
}
