//! Span batches (Delta, `delta/span-batches.md`; Isthmus adds set-code transactions): the raw
//! wire form, its decoding from untrusted channel data, its conversion into per-block inputs with
//! full EIP-2718 transactions, and the reverse for a batcher.
//!
//! Decoding follows op-node's `RawSpanBatch.decode`: counts are capped at
//! `MAX_SPAN_BATCH_ELEMENT_COUNT`, bytes after the last field are ignored, and transaction data
//! is only checked to be an RLP list; its fields are decoded when the batch is derived, so a bad
//! transaction drops the span batch but not the rest of its channel. Every allocation is bounded
//! by the input still unread.

use std::fmt;

use super::primitives::{Address, Bytes, B256, U256};
use super::rlp::{self, Rlp, RlpError};
use super::tx::{
    self, SignedTx, Transaction, TxBody, TxError, TxSignature, EIP1559_TX_TYPE, EIP2930_TX_TYPE,
    EIP7702_TX_TYPE, LEGACY_TX_TYPE,
};
use super::varint::{self, VarintError};

/// The cap on blocks, and on transactions, in one span batch (Fjord; the spec's
/// `MAX_SPAN_BATCH_ELEMENT_COUNT`).
pub const MAX_SPAN_BATCH_ELEMENT_COUNT: u64 = 10_000_000;

/// Why a span batch could not be decoded, derived or built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanBatchError {
    /// The input ended inside `field`.
    Truncated(&'static str),
    /// A uvarint in `field` does not fit 64 bits.
    VarintOverflow(&'static str),
    /// `block_count` is zero.
    Empty,
    /// A count in `field` exceeds `MAX_SPAN_BATCH_ELEMENT_COUNT`.
    TooBig { field: &'static str, count: u64 },
    /// The bitlist `field` has bits set beyond its length.
    BitsOverflow(&'static str),
    /// Transaction data `index` is not a canonical RLP list (after an optional type byte).
    TxDataRlp { index: usize, err: RlpError },
    /// Transaction `index` has a type span batches cannot carry.
    InvalidTxType { index: usize, tx_type: u8 },
    /// The fields of transaction `index` do not decode, or its bytes do not.
    Tx { index: usize, err: TxError },
    /// Set-code transaction `index` is flagged as a contract creation.
    MissingTo { index: usize },
    /// Transaction `index` is protected for another chain than the span batch's.
    WrongChainId { index: usize, expected: u64, got: u64 },
    /// The chain id is too large for an EIP-155 `v` in 64 bits.
    ChainIdTooLarge(u64),
    /// The first block is older than L2 genesis.
    BeforeGenesis { timestamp: u64, genesis: u64 },
    /// A hand-built raw span batch whose arrays disagree on counts (`field` is the first that does).
    Inconsistent(&'static str),
}

impl fmt::Display for SpanBatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpanBatchError::Truncated(field) => write!(f, "span batch: input ends in {field}"),
            SpanBatchError::VarintOverflow(field) => {
                write!(f, "span batch: {field} overflows 64 bits")
            }
            SpanBatchError::Empty => write!(f, "span batch: no blocks"),
            SpanBatchError::TooBig { field, count } => {
                write!(f, "span batch: {field} {count} exceeds {MAX_SPAN_BATCH_ELEMENT_COUNT}")
            }
            SpanBatchError::BitsOverflow(field) => {
                write!(f, "span batch: {field} has bits past its length")
            }
            SpanBatchError::TxDataRlp { index, err } => {
                write!(f, "span batch: tx data {index}: {err}")
            }
            SpanBatchError::InvalidTxType { index, tx_type } => {
                write!(f, "span batch: tx {index} has invalid type {tx_type}")
            }
            SpanBatchError::Tx { index, err } => write!(f, "span batch: tx {index}: {err}"),
            SpanBatchError::MissingTo { index } => {
                write!(f, "span batch: set-code tx {index} has no recipient")
            }
            SpanBatchError::WrongChainId { index, expected, got } => {
                write!(f, "span batch: tx {index} has chain id {got}, want {expected}")
            }
            SpanBatchError::ChainIdTooLarge(id) => {
                write!(f, "span batch: chain id {id} too large for EIP-155")
            }
            SpanBatchError::BeforeGenesis { timestamp, genesis } => {
                write!(f, "span batch: block timestamp {timestamp} before genesis {genesis}")
            }
            SpanBatchError::Inconsistent(field) => {
                write!(f, "span batch: {field} does not match the counts")
            }
        }
    }
}

impl std::error::Error for SpanBatchError {}

/// A span-batch bitlist: a big-endian integer left-padded to whole bytes, where element `i` is
/// bit `i` of the integer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BitList {
    len: usize,
    bytes: Vec<u8>,
}

impl BitList {
    /// Packs one bit per element.
    pub fn from_bools(bits: &[bool]) -> BitList {
        let mut bytes = vec![0u8; bits.len().div_ceil(8)];
        let n = bytes.len();
        for (i, _) in bits.iter().enumerate().filter(|(_, b)| **b) {
            bytes[n - 1 - i / 8] |= 1 << (i % 8);
        }
        BitList { len: bits.len(), bytes }
    }

    /// Returns the number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns whether the list has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns element `i` (false past the end).
    pub fn get(&self, i: usize) -> bool {
        let Some(pos) = self.bytes.len().checked_sub(1 + i / 8) else {
            return false;
        };
        self.bytes[pos] >> (i % 8) & 1 == 1
    }

    /// Counts the elements that are set.
    pub fn count_ones(&self) -> usize {
        self.bytes.iter().map(|b| b.count_ones() as usize).sum()
    }

    fn decode(r: &mut Cursor<'_>, len: usize, field: &'static str) -> Result<Self, SpanBatchError> {
        let bytes = r.take(len.div_ceil(8), field)?;
        let spare = bytes.len() * 8 - len;
        if bytes.first().is_some_and(|b| spare > 0 && b >> (8 - spare) != 0) {
            return Err(SpanBatchError::BitsOverflow(field));
        }
        Ok(BitList { len, bytes: bytes.to_vec() })
    }

    /// Writes the bitlist as `len` bits, which is its own length for consistent batches.
    fn encode(&self, len: usize, out: &mut Vec<u8>) {
        let n = len.div_ceil(8);
        let have = self.bytes.len();
        out.resize(out.len() + n.saturating_sub(have), 0);
        out.extend_from_slice(&self.bytes[have.saturating_sub(n)..]);
    }
}

/// A span batch as it sits in a channel (after the batch type byte).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawSpanBatch {
    /// First block's timestamp minus the L2 genesis time.
    pub rel_timestamp: u64,
    /// L1 origin number of the last block.
    pub l1_origin_num: u64,
    /// First 20 bytes of the first block's parent hash.
    pub parent_check: [u8; 20],
    /// First 20 bytes of the last block's L1 origin hash.
    pub l1_origin_check: [u8; 20],
    /// Per block: whether its L1 origin advanced from its parent's.
    pub origin_bits: BitList,
    /// Per block: its number of transactions (the block count is this list's length).
    pub block_tx_counts: Vec<u64>,
    /// The transactions of all blocks, in order.
    pub txs: SpanBatchTxs,
}

/// The transactions of a span batch, field by field over all blocks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpanBatchTxs {
    /// Per transaction: whether it creates a contract (has no recipient).
    pub contract_creation_bits: BitList,
    /// Per transaction: the signature's y-parity.
    pub y_parity_bits: BitList,
    /// `(r, s)` per transaction.
    pub tx_sigs: Vec<(U256, U256)>,
    /// Recipients of the transactions that are not contract creations.
    pub tx_tos: Vec<Address>,
    /// Per transaction: its type byte (none for legacy) and an RLP list of the fields the other
    /// arrays do not hold.
    pub tx_datas: Vec<Bytes>,
    /// Per transaction: its nonce.
    pub tx_nonces: Vec<u64>,
    /// Per transaction: its gas limit.
    pub tx_gases: Vec<u64>,
    /// Per legacy transaction: whether it is EIP-155 protected.
    pub protected_bits: BitList,
}

/// The input for one L2 block, as a span batch describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpanBatchElement {
    /// The block's L1 origin number.
    pub epoch_num: u64,
    pub timestamp: u64,
    /// EIP-2718 encodings.
    pub transactions: Vec<Bytes>,
}

/// A span batch in derived form: one element per block plus the two truncated hash checks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpanBatch {
    /// First 20 bytes of the first block's parent hash.
    pub parent_check: [u8; 20],
    /// First 20 bytes of the last block's L1 origin hash.
    pub l1_origin_check: [u8; 20],
    pub blocks: Vec<SpanBatchElement>,
}

impl RawSpanBatch {
    /// Decodes a span batch body; bytes after its last field are ignored, as op-node does.
    pub fn decode(body: &[u8]) -> Result<RawSpanBatch, SpanBatchError> {
        let mut r = Cursor(body);
        let rel_timestamp = r.uvarint("rel_timestamp")?;
        let l1_origin_num = r.uvarint("l1_origin_num")?;
        let parent_check = r.array("parent_check")?;
        let l1_origin_check = r.array("l1_origin_check")?;
        let block_count = r.uvarint("block_count")?;
        if block_count > MAX_SPAN_BATCH_ELEMENT_COUNT {
            return Err(SpanBatchError::TooBig { field: "block_count", count: block_count });
        }
        if block_count == 0 {
            return Err(SpanBatchError::Empty);
        }
        let block_count = usize::try_from(block_count)
            .map_err(|_| SpanBatchError::TooBig { field: "block_count", count: block_count })?;
        let origin_bits = BitList::decode(&mut r, block_count, "origin_bits")?;
        let mut block_tx_counts = Vec::with_capacity(block_count.min(r.0.len()));
        let mut total = 0u64;
        for _ in 0..block_count {
            let n = r.uvarint("block_tx_counts")?;
            if n > MAX_SPAN_BATCH_ELEMENT_COUNT {
                return Err(SpanBatchError::TooBig { field: "block tx count", count: n });
            }
            // Both terms are at most 10^7 and there are at most 10^7 of them: no overflow.
            total += n;
            block_tx_counts.push(n);
        }
        if total > MAX_SPAN_BATCH_ELEMENT_COUNT {
            return Err(SpanBatchError::TooBig { field: "total tx count", count: total });
        }
        let total = usize::try_from(total)
            .map_err(|_| SpanBatchError::TooBig { field: "total tx count", count: total })?;
        let txs = SpanBatchTxs::decode(&mut r, total)?;
        Ok(RawSpanBatch {
            rel_timestamp,
            l1_origin_num,
            parent_check,
            l1_origin_check,
            origin_bits,
            block_tx_counts,
            txs,
        })
    }

    /// Appends the span batch body (without the batch type byte).
    pub fn encode(&self, out: &mut Vec<u8>) {
        varint::put(out, self.rel_timestamp);
        varint::put(out, self.l1_origin_num);
        out.extend_from_slice(&self.parent_check);
        out.extend_from_slice(&self.l1_origin_check);
        varint::put(out, self.block_tx_counts.len() as u64);
        self.origin_bits.encode(self.block_tx_counts.len(), out);
        for n in &self.block_tx_counts {
            varint::put(out, *n);
        }
        let total = self.txs.tx_datas.len();
        let t = &self.txs;
        t.contract_creation_bits.encode(total, out);
        t.y_parity_bits.encode(total, out);
        for (r, s) in &t.tx_sigs {
            out.extend_from_slice(&r.0);
            out.extend_from_slice(&s.0);
        }
        for to in &t.tx_tos {
            out.extend_from_slice(&to.0);
        }
        for d in &t.tx_datas {
            out.extend_from_slice(d);
        }
        for n in &t.tx_nonces {
            varint::put(out, *n);
        }
        for g in &t.tx_gases {
            varint::put(out, *g);
        }
        let legacy = t.tx_datas.iter().filter(|d| counts_as_legacy(d)).count();
        t.protected_bits.encode(legacy, out);
    }

    /// Returns the number of blocks.
    pub fn block_count(&self) -> usize {
        self.block_tx_counts.len()
    }

    /// Expands the batch into per-block inputs with full signed transactions: timestamps from
    /// genesis and block time, L1 origins counted back from `l1_origin_num` with the origin bits,
    /// and signatures' `v` from the y-parity and protected bits and `chain_id`.
    pub fn derive(
        &self,
        block_time: u64,
        genesis_time: u64,
        chain_id: u64,
    ) -> Result<SpanBatch, SpanBatchError> {
        let n = self.block_tx_counts.len();
        if n == 0 {
            return Err(SpanBatchError::Empty);
        }
        // op-node does this arithmetic in wrapping uint64; matching it keeps a hostile batch's
        // verdict (made later, by the batch queue) identical.
        let mut origins = vec![0u64; n];
        let mut origin = self.l1_origin_num;
        for i in (0..n).rev() {
            origins[i] = origin;
            if i > 0 && self.origin_bits.get(i) {
                origin = origin.wrapping_sub(1);
            }
        }
        let total = self
            .block_tx_counts
            .iter()
            .try_fold(0usize, |acc, c| acc.checked_add(usize::try_from(*c).ok()?))
            .ok_or(SpanBatchError::Inconsistent("block_tx_counts"))?;
        let mut txs = self.txs.full_txs(total, chain_id)?.into_iter();
        let start = genesis_time.wrapping_add(self.rel_timestamp);
        let blocks = (0..n)
            .map(|i| SpanBatchElement {
                epoch_num: origins[i],
                timestamp: start.wrapping_add(block_time.wrapping_mul(i as u64)),
                // Each count was checked against `total` above.
                transactions: txs
                    .by_ref()
                    .take(usize::try_from(self.block_tx_counts[i]).unwrap_or(0))
                    .collect(),
            })
            .collect();
        Ok(SpanBatch { parent_check: self.parent_check, l1_origin_check: self.l1_origin_check, blocks })
    }
}

impl SpanBatchTxs {
    fn decode(r: &mut Cursor<'_>, total: usize) -> Result<Self, SpanBatchError> {
        let contract_creation_bits = BitList::decode(r, total, "contract_creation_bits")?;
        let y_parity_bits = BitList::decode(r, total, "y_parity_bits")?;
        // Fixed-size fields: check the whole array is present before allocating it.
        let sigs = r.take_array_of(total, 64, "tx_sigs")?;
        let tx_sigs =
            sigs.chunks_exact(64).map(|c| (U256(to_array(&c[..32])), U256(to_array(&c[32..])))).collect();
        // The bitlist has no bits past `total`, so this never saturates.
        let to_count = total.saturating_sub(contract_creation_bits.count_ones());
        let tos = r.take_array_of(to_count, 20, "tx_tos")?;
        let tx_tos = tos.chunks_exact(20).map(|c| Address(to_array(c))).collect();
        let mut tx_datas = Vec::with_capacity(total.min(r.0.len()));
        for index in 0..total {
            tx_datas.push(Bytes(read_tx_data(r, index)?.to_vec()));
        }
        let tx_nonces = r.uvarints(total, "tx_nonces")?;
        let tx_gases = r.uvarints(total, "tx_gases")?;
        let legacy = tx_datas.iter().filter(|d| counts_as_legacy(d)).count();
        let protected_bits = BitList::decode(r, legacy, "protected_bits")?;
        Ok(SpanBatchTxs {
            contract_creation_bits,
            y_parity_bits,
            tx_sigs,
            tx_tos,
            tx_datas,
            tx_nonces,
            tx_gases,
            protected_bits,
        })
    }

    fn full_txs(&self, total: usize, chain_id: u64) -> Result<Vec<Bytes>, SpanBatchError> {
        let consistent = [
            ("tx_datas", self.tx_datas.len()),
            ("tx_sigs", self.tx_sigs.len()),
            ("tx_nonces", self.tx_nonces.len()),
            ("tx_gases", self.tx_gases.len()),
        ];
        if let Some((field, _)) = consistent.iter().find(|(_, n)| *n != total) {
            return Err(SpanBatchError::Inconsistent(field));
        }
        let mut tos = self.tx_tos.iter();
        let mut legacy_index = 0;
        let mut out = Vec::with_capacity(total);
        for (index, data) in self.tx_datas.iter().enumerate() {
            let (mut t, input) = decode_tx_data(data, index)?;
            let y_parity = self.y_parity_bits.get(index) as u64;
            t.sig = TxSignature { v: y_parity, r: self.tx_sigs[index].0, s: self.tx_sigs[index].1 };
            if t.tx_type == LEGACY_TX_TYPE {
                if self.protected_bits.get(legacy_index) {
                    t.chain_id = Some(chain_id);
                    t.sig.v = chain_id
                        .checked_mul(2)
                        .and_then(|v| v.checked_add(35 + y_parity))
                        .ok_or(SpanBatchError::ChainIdTooLarge(chain_id))?;
                } else {
                    t.sig.v = 27 + y_parity;
                }
                legacy_index += 1;
            } else {
                t.chain_id = Some(chain_id);
            }
            t.nonce = self.tx_nonces[index];
            t.gas_limit = self.tx_gases[index];
            if !self.contract_creation_bits.get(index) {
                let to = tos.next().ok_or(SpanBatchError::Inconsistent("tx_tos"))?;
                t.to = Some(*to);
            } else if t.tx_type == EIP7702_TX_TYPE {
                return Err(SpanBatchError::MissingTo { index });
            }
            out.push(Bytes(tx::encode_signed_with_input(&t, input)));
        }
        Ok(out)
    }
}

impl SpanBatch {
    /// Builds a span batch from consecutive blocks, the first block's parent hash and the last
    /// block's L1 origin hash.
    pub fn new(parent_hash: &B256, l1_origin_hash: &B256, blocks: Vec<SpanBatchElement>) -> Self {
        SpanBatch {
            parent_check: check_bytes(parent_hash),
            l1_origin_check: check_bytes(l1_origin_hash),
            blocks,
        }
    }

    /// Returns the first block's timestamp (0 for an empty batch).
    pub fn timestamp(&self) -> u64 {
        self.blocks.first().map_or(0, |b| b.timestamp)
    }

    /// Tells whether `hash` (the parent of the first block) matches the parent check.
    pub fn check_parent_hash(&self, hash: &B256) -> bool {
        self.parent_check == check_bytes(hash)
    }

    /// Tells whether `hash` (the last block's L1 origin) matches the L1 origin check.
    pub fn check_origin_hash(&self, hash: &B256) -> bool {
        self.l1_origin_check == check_bytes(hash)
    }

    /// Encodes the blocks in wire form, as a batcher does. `first_origin_changed` is the first
    /// origin bit (op-node sets it when the first block has sequence number 0); the other bits
    /// come from the epoch numbers.
    pub fn to_raw(
        &self,
        genesis_time: u64,
        chain_id: u64,
        first_origin_changed: bool,
    ) -> Result<RawSpanBatch, SpanBatchError> {
        let (Some(first), Some(last)) = (self.blocks.first(), self.blocks.last()) else {
            return Err(SpanBatchError::Empty);
        };
        let too_big = |field, count: usize| {
            (count as u64 > MAX_SPAN_BATCH_ELEMENT_COUNT)
                .then_some(SpanBatchError::TooBig { field, count: count as u64 })
        };
        if let Some(e) = too_big("block_count", self.blocks.len()) {
            return Err(e);
        }
        let total: usize = self.blocks.iter().map(|b| b.transactions.len()).sum();
        if let Some(e) = too_big("total tx count", total) {
            return Err(e);
        }
        let rel_timestamp = first
            .timestamp
            .checked_sub(genesis_time)
            .ok_or(SpanBatchError::BeforeGenesis { timestamp: first.timestamp, genesis: genesis_time })?;
        let mut origin_bits = vec![first_origin_changed];
        origin_bits.extend(self.blocks.windows(2).map(|w| w[0].epoch_num < w[1].epoch_num));
        let mut b = TxsBuilder::default();
        let all = self.blocks.iter().flat_map(|b| &b.transactions);
        for (index, tx) in all.enumerate() {
            b.push(tx, index, chain_id)?;
        }
        Ok(RawSpanBatch {
            rel_timestamp,
            l1_origin_num: last.epoch_num,
            parent_check: self.parent_check,
            l1_origin_check: self.l1_origin_check,
            origin_bits: BitList::from_bools(&origin_bits),
            block_tx_counts: self.blocks.iter().map(|b| b.transactions.len() as u64).collect(),
            txs: SpanBatchTxs {
                contract_creation_bits: BitList::from_bools(&b.creations),
                y_parity_bits: BitList::from_bools(&b.y_parities),
                protected_bits: BitList::from_bools(&b.protected),
                ..b.txs
            },
        })
    }
}

/// Truncates a hash to the 20 bytes span batches keep of it.
pub fn check_bytes(hash: &B256) -> [u8; 20] {
    to_array(&hash.0[..20])
}

#[derive(Default)]
struct TxsBuilder {
    txs: SpanBatchTxs,
    creations: Vec<bool>,
    y_parities: Vec<bool>,
    protected: Vec<bool>,
}

impl TxsBuilder {
    fn push(&mut self, bytes: &[u8], index: usize, chain_id: u64) -> Result<(), SpanBatchError> {
        let tx = Transaction::decode(bytes).map_err(|err| SpanBatchError::Tx { index, err })?;
        let TxBody::Signed(t) = tx.body else {
            return Err(SpanBatchError::InvalidTxType { index, tx_type: tx::DEPOSIT_TX_TYPE });
        };
        if !matches!(t.tx_type, LEGACY_TX_TYPE | EIP2930_TX_TYPE | EIP1559_TX_TYPE | EIP7702_TX_TYPE) {
            return Err(SpanBatchError::InvalidTxType { index, tx_type: t.tx_type });
        }
        if let Some(got) = t.chain_id.filter(|id| *id != chain_id) {
            return Err(SpanBatchError::WrongChainId { index, expected: chain_id, got });
        }
        let y_parity = t.y_parity().map_err(|err| SpanBatchError::Tx { index, err })?;
        if t.tx_type == LEGACY_TX_TYPE {
            self.protected.push(t.chain_id.is_some());
        }
        self.y_parities.push(y_parity == 1);
        self.creations.push(t.to.is_none());
        let txs = &mut self.txs;
        txs.tx_tos.extend(t.to);
        txs.tx_sigs.push((t.sig.r, t.sig.s));
        txs.tx_nonces.push(t.nonce);
        txs.tx_gases.push(t.gas_limit);
        txs.tx_datas.push(Bytes(encode_tx_data(&t)));
        Ok(())
    }
}

/// Legacy data has no type byte; op-node also counts an explicit 0x00 type byte as legacy when
/// sizing the protected bits (such a transaction fails later, at derivation).
fn counts_as_legacy(data: &[u8]) -> bool {
    data.first().is_some_and(|b| *b > 0x7f || *b == LEGACY_TX_TYPE)
}

/// Reads one `tx_datas` item: an optional type byte (<= 0x7f) and an RLP list, at most
/// `MAX_SPAN_BATCH_ELEMENT_COUNT` bytes (op-node's stream limit).
fn read_tx_data<'a>(r: &mut Cursor<'a>, index: usize) -> Result<&'a [u8], SpanBatchError> {
    let first = *r.0.first().ok_or(SpanBatchError::Truncated("tx_datas"))?;
    let skip = usize::from(first <= 0x7f);
    let h = rlp::decode_header(&r.0[skip..]).map_err(|err| match err {
        RlpError::Truncated => SpanBatchError::Truncated("tx_datas"),
        err => SpanBatchError::TxDataRlp { index, err },
    })?;
    if !h.list {
        return Err(SpanBatchError::TxDataRlp { index, err: RlpError::UnexpectedString });
    }
    let len = h.header_len + h.payload_len;
    if len as u64 > MAX_SPAN_BATCH_ELEMENT_COUNT {
        return Err(SpanBatchError::TooBig { field: "tx data length", count: len as u64 });
    }
    r.take(skip + len, "tx_datas")
}

/// Decodes the fields of a `tx_datas` item into an otherwise empty transaction, all but its
/// data, which is returned as it lies in `data`.
fn decode_tx_data(data: &[u8], index: usize) -> Result<(SignedTx, &[u8]), SpanBatchError> {
    let (tx_type, list) = match data.split_first() {
        Some((b, _)) if *b > 0x7f => (LEGACY_TX_TYPE, data),
        Some((&t @ (EIP2930_TX_TYPE | EIP1559_TX_TYPE | EIP7702_TX_TYPE), rest)) => (t, rest),
        Some((&tx_type, _)) => return Err(SpanBatchError::InvalidTxType { index, tx_type }),
        None => return Err(SpanBatchError::Truncated("tx_datas")),
    };
    let fields = |list| -> Result<(SignedTx, &[u8]), TxError> {
        let mut r = Rlp::list(list)?;
        let mut t = SignedTx { tx_type, value: r.next_u256()?, ..SignedTx::default() };
        if tx_type == LEGACY_TX_TYPE || tx_type == EIP2930_TX_TYPE {
            t.gas_price = r.next_u128()?;
        } else {
            t.max_priority_fee_per_gas = r.next_u128()?;
            t.gas_price = r.next_u128()?;
        }
        let input = r.next_bytes()?;
        if tx_type != LEGACY_TX_TYPE {
            t.access_list = tx::decode_access_list(&mut r)?;
        }
        if tx_type == EIP7702_TX_TYPE {
            t.authorization_list = tx::decode_authorizations(&mut r)?;
        }
        r.finish()?;
        Ok((t, input))
    };
    fields(list).map_err(|err| SpanBatchError::Tx { index, err })
}

/// Encodes the fields of `t` that span batches keep in `tx_datas`.
fn encode_tx_data(t: &SignedTx) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.input.len() + 64);
    if t.tx_type != LEGACY_TX_TYPE {
        out.push(t.tx_type);
    }
    rlp::put_list(&mut out, |o| {
        rlp::put_u256(o, &t.value);
        if t.tx_type != LEGACY_TX_TYPE && t.tx_type != EIP2930_TX_TYPE {
            rlp::put_u128(o, t.max_priority_fee_per_gas);
        }
        rlp::put_u128(o, t.gas_price);
        rlp::put_bytes(o, &t.input);
        if t.tx_type != LEGACY_TX_TYPE {
            tx::put_access_list(o, &t.access_list);
        }
        if t.tx_type == EIP7702_TX_TYPE {
            tx::put_authorizations(o, &t.authorization_list);
        }
    });
    out
}

fn to_array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    a
}

/// A bounds-checked reader over the span batch body.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], SpanBatchError> {
        if self.0.len() < n {
            return Err(SpanBatchError::Truncated(field));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], SpanBatchError> {
        self.take(N, field).map(to_array)
    }

    /// `count` items of `size` bytes, checked against the input before anything is allocated.
    fn take_array_of(
        &mut self,
        count: usize,
        size: usize,
        field: &'static str,
    ) -> Result<&'a [u8], SpanBatchError> {
        let n = count.checked_mul(size).ok_or(SpanBatchError::Truncated(field))?;
        self.take(n, field)
    }

    fn uvarint(&mut self, field: &'static str) -> Result<u64, SpanBatchError> {
        let (v, n) = varint::read(self.0).map_err(|e| match e {
            VarintError::Truncated => SpanBatchError::Truncated(field),
            VarintError::Overflow => SpanBatchError::VarintOverflow(field),
        })?;
        self.0 = self.0.get(n..).unwrap_or_default();
        Ok(v)
    }

    fn uvarints(&mut self, count: usize, field: &'static str) -> Result<Vec<u64>, SpanBatchError> {
        // Every uvarint takes at least one byte.
        let mut out = Vec::with_capacity(count.min(self.0.len()));
        for _ in 0..count {
            out.push(self.uvarint(field)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::primitives::keccak256;
    use crate::protocol::tx::{AccessListItem, Authorization};
    use crate::rng::Rng;

    const CHAIN_ID: u64 = 10;
    const GENESIS: u64 = 1_686_068_903;

    fn sig(n: u64, v: u64) -> TxSignature {
        TxSignature { v, r: U256(keccak256(n.to_be_bytes()).0), s: U256::from_u64(n + 1) }
    }

    /// One transaction of every kind span batches carry.
    fn sample_txs() -> Vec<Bytes> {
        let base = SignedTx {
            nonce: 7,
            gas_price: 1_000_000_007,
            gas_limit: 21_000,
            to: Some(Address([0x11; 20])),
            value: U256::from_u64(12345),
            input: Bytes(vec![1, 2, 3]),
            ..SignedTx::default()
        };
        let al = vec![AccessListItem { address: Address([0x22; 20]), storage_keys: vec![B256([3; 32])] }];
        let txs = [
            SignedTx { chain_id: Some(CHAIN_ID), sig: sig(1, CHAIN_ID * 2 + 36), ..base.clone() },
            SignedTx { to: None, sig: sig(2, 27), ..base.clone() },
            SignedTx {
                tx_type: EIP2930_TX_TYPE,
                chain_id: Some(CHAIN_ID),
                access_list: al.clone(),
                sig: sig(3, 1),
                ..base.clone()
            },
            SignedTx {
                tx_type: EIP1559_TX_TYPE,
                chain_id: Some(CHAIN_ID),
                max_priority_fee_per_gas: 5,
                to: None,
                sig: sig(4, 0),
                ..base.clone()
            },
            SignedTx {
                tx_type: EIP7702_TX_TYPE,
                chain_id: Some(CHAIN_ID),
                max_priority_fee_per_gas: 6,
                access_list: al,
                authorization_list: vec![Authorization {
                    chain_id: U256::from_u64(CHAIN_ID),
                    address: Address([0x33; 20]),
                    nonce: 9,
                    y_parity: 1,
                    r: U256::from_u64(77),
                    s: U256::from_u64(78),
                }],
                sig: sig(5, 1),
                ..base
            },
        ];
        txs.into_iter().map(|t| Bytes(Transaction::new(TxBody::Signed(t)).into_encoded())).collect()
    }

    fn sample_batch() -> SpanBatch {
        let txs = sample_txs();
        let blocks = vec![
            SpanBatchElement { epoch_num: 100, timestamp: GENESIS + 2000, transactions: txs[..2].to_vec() },
            SpanBatchElement { epoch_num: 100, timestamp: GENESIS + 2002, transactions: vec![] },
            SpanBatchElement { epoch_num: 101, timestamp: GENESIS + 2004, transactions: txs[2..].to_vec() },
        ];
        SpanBatch::new(&B256([0xaa; 32]), &B256([0xbb; 32]), blocks)
    }

    fn encoded(raw: &RawSpanBatch) -> Vec<u8> {
        let mut out = Vec::new();
        raw.encode(&mut out);
        out
    }

    #[test]
    fn every_tx_type_survives_build_encode_decode_derive() {
        let batch = sample_batch();
        let raw = batch.to_raw(GENESIS, CHAIN_ID, true).unwrap();
        assert_eq!(raw.rel_timestamp, 2000);
        assert_eq!(raw.l1_origin_num, 101);
        assert_eq!(raw.txs.tx_tos.len(), 3);
        assert_eq!(raw.txs.protected_bits, BitList::from_bools(&[true, false]));
        let bytes = encoded(&raw);
        let back = RawSpanBatch::decode(&bytes).unwrap();
        assert_eq!(back, raw);
        assert_eq!(back.derive(2, GENESIS, CHAIN_ID).unwrap(), batch);
        assert!(batch.check_parent_hash(&B256([0xaa; 32])));
        assert!(batch.check_origin_hash(&B256([0xbb; 32])));
        // Trailing bytes after the last field are ignored.
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[1, 2, 3]);
        assert_eq!(RawSpanBatch::decode(&longer).unwrap(), raw);
    }

    #[test]
    fn builder_rejects_what_the_format_cannot_carry() {
        let mut batch = sample_batch();
        assert_eq!(
            batch.to_raw(GENESIS, 11, true),
            Err(SpanBatchError::WrongChainId { index: 0, expected: 11, got: 10 })
        );
        assert!(matches!(
            batch.to_raw(GENESIS + 2001, CHAIN_ID, true),
            Err(SpanBatchError::BeforeGenesis { .. })
        ));
        batch.blocks[1].transactions.push(Bytes(vec![0x7e, 0xc0]));
        assert!(matches!(batch.to_raw(GENESIS, CHAIN_ID, true), Err(SpanBatchError::Tx { index: 2, .. })));
        assert_eq!(SpanBatch::default().to_raw(GENESIS, CHAIN_ID, true), Err(SpanBatchError::Empty));
    }

    #[test]
    fn derive_rejects_bad_tx_data_but_decode_keeps_it() {
        let mut raw = sample_batch().to_raw(GENESIS, CHAIN_ID, false).unwrap();
        raw.txs.tx_datas[4] = Bytes(vec![0x03, 0xc0]);
        let back = RawSpanBatch::decode(&encoded(&raw)).unwrap();
        assert_eq!(
            back.derive(2, GENESIS, CHAIN_ID),
            Err(SpanBatchError::InvalidTxType { index: 4, tx_type: 3 })
        );
        // A set-code transaction flagged as contract creation.
        let mut raw = sample_batch().to_raw(GENESIS, CHAIN_ID, false).unwrap();
        let mut bits: Vec<bool> = (0..5).map(|i| raw.txs.contract_creation_bits.get(i)).collect();
        bits[4] = true;
        raw.txs.contract_creation_bits = BitList::from_bools(&bits);
        raw.txs.tx_tos.pop();
        assert_eq!(raw.derive(2, GENESIS, CHAIN_ID), Err(SpanBatchError::MissingTo { index: 4 }));
        // Hand-built inconsistencies are errors, not panics.
        raw.txs.tx_nonces.pop();
        assert_eq!(raw.derive(2, GENESIS, CHAIN_ID), Err(SpanBatchError::Inconsistent("tx_nonces")));
    }

    #[test]
    fn origin_numbers_count_back_from_the_last_block() {
        let mut raw = sample_batch().to_raw(GENESIS, CHAIN_ID, true).unwrap();
        raw.origin_bits = BitList::from_bools(&[true, true, true]);
        let d = raw.derive(2, GENESIS, CHAIN_ID).unwrap();
        let epochs: Vec<u64> = d.blocks.iter().map(|b| b.epoch_num).collect();
        assert_eq!(epochs, [99, 100, 101]);
        assert_eq!(d.blocks[2].timestamp, GENESIS + 2004);
    }

    #[test]
    fn limits_and_malformed_fields() {
        let mut head = vec![0u8; 2 + 40];
        let with = |tail: &[u8]| [head.as_slice(), tail].concat();
        assert_eq!(RawSpanBatch::decode(&with(&[0])), Err(SpanBatchError::Empty));
        let mut big = Vec::new();
        varint::put(&mut big, MAX_SPAN_BATCH_ELEMENT_COUNT + 1);
        assert!(matches!(RawSpanBatch::decode(&with(&big)), Err(SpanBatchError::TooBig { .. })));
        // 10M blocks declared, nothing behind them: fails before allocating per-block state.
        let mut max = Vec::new();
        varint::put(&mut max, MAX_SPAN_BATCH_ELEMENT_COUNT);
        assert_eq!(RawSpanBatch::decode(&with(&max)), Err(SpanBatchError::Truncated("origin_bits")));
        // One block, origin bits with a stray high bit.
        assert_eq!(RawSpanBatch::decode(&with(&[1, 0b10])), Err(SpanBatchError::BitsOverflow("origin_bits")));
        // One block holding 10M transactions with no signatures behind them.
        let mut one = vec![1, 0];
        varint::put(&mut one, MAX_SPAN_BATCH_ELEMENT_COUNT);
        one.extend(vec![0u8; 2 * 1_250_000]);
        assert_eq!(RawSpanBatch::decode(&with(&one)), Err(SpanBatchError::Truncated("tx_sigs")));
        // Two blocks whose counts sum past the cap.
        let mut two = vec![2, 0];
        varint::put(&mut two, MAX_SPAN_BATCH_ELEMENT_COUNT);
        varint::put(&mut two, 1);
        assert!(matches!(
            RawSpanBatch::decode(&with(&two)),
            Err(SpanBatchError::TooBig { field: "total tx count", .. })
        ));
        // uvarint overflow, as Go's ReadUvarint reports it.
        head = vec![0xff; 9];
        head.push(2);
        assert_eq!(RawSpanBatch::decode(&head), Err(SpanBatchError::VarintOverflow("rel_timestamp")));
    }

    #[test]
    fn tx_data_must_be_an_rlp_list() {
        let raw = sample_batch().to_raw(GENESIS, CHAIN_ID, false).unwrap();
        let mut bad = raw.clone();
        bad.txs.tx_datas[0] = Bytes(vec![0x83, 1, 2, 3]);
        assert_eq!(
            RawSpanBatch::decode(&encoded(&bad)),
            Err(SpanBatchError::TxDataRlp { index: 0, err: RlpError::UnexpectedString })
        );
        bad.txs.tx_datas[0] = Bytes(vec![0xf8, 0x01, 0x00]);
        assert!(matches!(
            RawSpanBatch::decode(&encoded(&bad)),
            Err(SpanBatchError::TxDataRlp { index: 0, .. })
        ));
    }

    #[test]
    fn non_minimal_uvarints_decode_as_go_does() {
        let raw = sample_batch().to_raw(GENESIS, CHAIN_ID, false).unwrap();
        let bytes = encoded(&raw);
        // rel_timestamp 2000 = d0 0f; write it in three bytes.
        assert_eq!(&bytes[..2], &[0xd0, 0x0f]);
        let padded = [&[0xd0, 0x8f, 0x00][..], &bytes[2..]].concat();
        assert_eq!(RawSpanBatch::decode(&padded).unwrap(), raw);
    }

    #[test]
    fn truncated_prefixes_are_errors() {
        let bytes = encoded(&sample_batch().to_raw(GENESIS, CHAIN_ID, true).unwrap());
        for n in 0..bytes.len() {
            assert!(RawSpanBatch::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut rng = Rng::new(0x5ba7);
        let good = encoded(&sample_batch().to_raw(GENESIS, CHAIN_ID, true).unwrap());
        for round in 0..4000 {
            let buf = if round % 2 == 0 {
                let mut b = vec![0u8; rng.below(200) as usize];
                rng.fill(&mut b);
                // A small block count so the decoder gets past the prefix.
                if b.len() > 45 {
                    b[..2].fill(1);
                    b[42] = (b[42] % 4) + 1;
                }
                b
            } else {
                let mut b = good.clone();
                for _ in 0..=rng.below(4) {
                    let i = rng.below(b.len() as u64) as usize;
                    b[i] = rng.next_u64() as u8;
                }
                b
            };
            if let Ok(raw) = RawSpanBatch::decode(&buf) {
                let _ = raw.derive(2, GENESIS, CHAIN_ID);
                let again = encoded(&raw);
                assert_eq!(RawSpanBatch::decode(&again).unwrap(), raw);
            }
        }
    }
}
