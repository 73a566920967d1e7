//! The batcher side of derivation: L2 blocks into a channel of singular batches or one span
//! batch, compressed, cut into frames and packed as calldata or blobs (op-node's
//! `channel_out.go`, `span_channel_out.go` and `channel_compressor.go`; op-batcher's frame and
//! blob packing).
//!
//! Input: L2 blocks with their L1 origins, a rollup config, a channel id and a compressor.
//! Output: frames, and the payloads of batcher transactions carrying them: `calldata_payloads`
//! (one frame per transaction) or `blob_payloads` (one frame per blob); `frame::batcher_tx_data`
//! puts several frames into one calldata payload. The derivation codecs in `protocol` read all
//! of it back. The encoder returns errors for blocks a channel cannot carry and never panics,
//! whatever the input.

use std::fmt;

use miniz_oxide::deflate::compress_to_vec_zlib;

use crate::protocol::batch::{BatchData, SingularBatch};
use crate::protocol::blob::{encode_blob, BlobError, MAX_BLOB_DATA_SIZE};
use crate::protocol::block_ref::BlockId;
use crate::protocol::channel::CHANNEL_VERSION_BROTLI;
use crate::protocol::frame::{batcher_tx_data, ChannelId, Frame, FRAME_HEADER_LEN, MAX_FRAME_LEN};
use crate::protocol::primitives::{Bytes, B256};
use crate::protocol::rollup::RollupConfig;
use crate::protocol::span_batch::{check_bytes, SpanBatch, SpanBatchElement, SpanBatchError};
use crate::protocol::tx::DEPOSIT_TX_TYPE;
use crate::rng::Rng;

/// op-batcher's max frame size for blobs: one frame plus the version byte fill a blob.
pub const MAX_BLOB_FRAME_SIZE: usize = MAX_BLOB_DATA_SIZE - 1;
/// The zlib level op-node's channel compressor uses (Go's `zlib.BestCompression`).
pub const ZLIB_BEST_COMPRESSION: u8 = 9;

/// Why a block could not join a channel, or a channel could not be framed or packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatcherError {
    /// Block `number` would take the channel's RLP content to `len` bytes, past `max` (op-node's
    /// `ErrTooManyRLPBytes`); the channel is unchanged.
    TooManyRlpBytes { number: u64, len: usize, max: u64 },
    /// Block `number` does not follow the span batch's last block by one block time, which a
    /// span batch cannot express.
    SpanTimestamp { number: u64, expected: u64, got: u64 },
    /// Block `number`'s L1 origin neither repeats nor follows its predecessor's, which a span
    /// batch cannot express.
    SpanOrigin { number: u64, previous: u64, got: u64 },
    /// Block `number` cannot go into a span batch (a transaction span batches cannot carry, a
    /// timestamp before genesis, too many elements).
    Span { number: u64, err: SpanBatchError },
    /// A max frame size that leaves no room for data or allows more than `MAX_FRAME_LEN`.
    FrameSize(usize),
    /// The channel data needs more frames than frame numbers exist.
    TooManyFrames(usize),
    /// A frame does not fit a blob.
    Blob(BlobError),
}

impl fmt::Display for BatcherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatcherError::TooManyRlpBytes { number, len, max } => {
                write!(f, "block {number} would make the channel {len} RLP bytes, max is {max}")
            }
            BatcherError::SpanTimestamp { number, expected, got } => {
                write!(f, "block {number} has timestamp {got}, a span batch needs {expected}")
            }
            BatcherError::SpanOrigin { number, previous, got } => write!(
                f,
                "block {number} has L1 origin {got} after {previous}, a span batch needs the same or the next"
            ),
            BatcherError::Span { number, err } => write!(f, "block {number}: {err}"),
            BatcherError::FrameSize(n) => write!(
                f,
                "max frame size {n} outside {}..={}",
                FRAME_HEADER_LEN + 1,
                FRAME_HEADER_LEN + MAX_FRAME_LEN
            ),
            BatcherError::TooManyFrames(n) => {
                write!(f, "channel needs {n} frames, at most {} exist", 1 << 16)
            }
            BatcherError::Blob(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BatcherError {}

impl From<BlobError> for BatcherError {
    fn from(e: BlobError) -> Self {
        BatcherError::Blob(e)
    }
}

/// An L2 block as the batcher sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct L2BlockInput {
    pub number: u64,
    pub timestamp: u64,
    pub parent_hash: B256,
    pub hash: B256,
    pub l1_origin: BlockId,
    /// The block's position in its epoch (0 for the first block of an L1 origin).
    pub sequence_number: u64,
    /// EIP-2718 encodings, the L1-info deposit first; deposits are not batched.
    pub transactions: Vec<Bytes>,
}

impl L2BlockInput {
    /// Builds the block's singular batch, leaving out its deposits (op-node's
    /// `BlockToSingularBatch`, with the L1 origin given rather than read from the L1-info deposit).
    pub fn to_singular_batch(&self) -> SingularBatch {
        SingularBatch {
            parent_hash: self.parent_hash,
            epoch_num: self.l1_origin.number,
            epoch_hash: self.l1_origin.hash,
            timestamp: self.timestamp,
            transactions: self.batched_transactions(),
        }
    }

    fn batched_transactions(&self) -> Vec<Bytes> {
        self.transactions.iter().filter(|tx| tx.first() != Some(&DEPOSIT_TX_TYPE)).cloned().collect()
    }
}

/// Which batches a channel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// One singular batch per block.
    Singular,
    /// One span batch over all blocks (Delta).
    Span,
}

/// How a channel's RLP content is compressed (op-node's `ChannelCompressor`).
#[derive(Debug, Clone, Copy)]
pub enum Compressor {
    /// zlib (RFC 1950, with the Adler-32 trailer) at a level from 0 to 10, as Go's zlib writer
    /// frames it.
    Zlib { level: u8 },
    /// Brotli (Fjord) from a caller-supplied encoder of raw brotli streams: the node itself
    /// carries no brotli encoder. The channel version byte is prepended here.
    Brotli(fn(&[u8]) -> Vec<u8>),
}

impl Compressor {
    /// Compresses RLP content into channel data.
    pub fn compress(self, rlp: &[u8]) -> Vec<u8> {
        match self {
            Compressor::Zlib { level } => compress_to_vec_zlib(rlp, level),
            Compressor::Brotli(encode) => {
                let mut out = vec![CHANNEL_VERSION_BROTLI];
                out.extend(encode(rlp));
                out
            }
        }
    }
}

/// A channel being filled with blocks.
#[derive(Debug, Clone)]
pub struct ChannelOut {
    id: ChannelId,
    kind: BatchKind,
    cfg: RollupConfig,
    /// The channel's uncompressed content: the RLP items of every batch so far.
    rlp: Vec<u8>,
    span: Option<OpenSpan>,
    blocks: usize,
}

/// The channel's span batch so far, with the first origin bit (op-node sets it when the first
/// block starts an epoch).
#[derive(Debug, Clone)]
struct OpenSpan {
    batch: SpanBatch,
    first_origin_changed: bool,
}

impl ChannelOut {
    /// Opens an empty channel; `cfg` gives the span batch's chain id, genesis time and block
    /// time and the fork's RLP limit.
    pub fn new(id: ChannelId, kind: BatchKind, cfg: &RollupConfig) -> ChannelOut {
        ChannelOut { id, kind, cfg: cfg.clone(), rlp: Vec::new(), span: None, blocks: 0 }
    }

    /// Returns the channel id.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// Returns the number of blocks added.
    pub fn block_count(&self) -> usize {
        self.blocks
    }

    /// Returns the uncompressed content so far: the RLP-encoded batches.
    pub fn rlp(&self) -> &[u8] {
        &self.rlp
    }

    /// Adds a block, or says why it cannot join; a refused block leaves the channel unchanged.
    /// The RLP limit is the fork's at the block's timestamp, as op-node's batcher takes it.
    pub fn add_block(&mut self, block: &L2BlockInput) -> Result<(), BatcherError> {
        let max = self.cfg.max_rlp_bytes_per_channel(block.timestamp);
        match self.kind {
            BatchKind::Singular => {
                let mut item = Vec::new();
                BatchData::Singular(block.to_singular_batch()).encode_rlp(&mut item);
                let len = self.rlp.len().saturating_add(item.len());
                if len as u64 > max {
                    return Err(BatcherError::TooManyRlpBytes { number: block.number, len, max });
                }
                self.rlp.extend_from_slice(&item);
            }
            BatchKind::Span => self.add_to_span(block, max)?,
        }
        self.blocks += 1;
        Ok(())
    }

    fn add_to_span(&mut self, block: &L2BlockInput, max: u64) -> Result<(), BatcherError> {
        let mut span = self.span.take().unwrap_or_else(|| OpenSpan {
            batch: SpanBatch::new(&block.parent_hash, &block.l1_origin.hash, Vec::new()),
            first_origin_changed: block.sequence_number == 0,
        });
        let item = self.extend_span(&mut span, block, max);
        if !span.batch.blocks.is_empty() {
            self.span = Some(span);
        }
        self.rlp = item?;
        Ok(())
    }

    /// Appends the block to the span batch and returns the new channel item, leaving the span
    /// batch as it was on error. The whole span batch is re-encoded, as op-node does: the
    /// encoded size decides whether the block fits.
    fn extend_span(
        &self,
        span: &mut OpenSpan,
        block: &L2BlockInput,
        max: u64,
    ) -> Result<Vec<u8>, BatcherError> {
        self.check_follows(&span.batch, block)?;
        let previous_check = span.batch.l1_origin_check;
        span.batch.l1_origin_check = check_bytes(&block.l1_origin.hash);
        span.batch.blocks.push(SpanBatchElement {
            epoch_num: block.l1_origin.number,
            timestamp: block.timestamp,
            transactions: block.batched_transactions(),
        });
        let item = self.encode_span(span, block.number, max);
        if item.is_err() {
            span.batch.blocks.pop();
            span.batch.l1_origin_check = previous_check;
        }
        item
    }

    fn encode_span(&self, span: &OpenSpan, number: u64, max: u64) -> Result<Vec<u8>, BatcherError> {
        let raw = span
            .batch
            .to_raw(self.cfg.genesis.l2_time, self.cfg.l2_chain_id, span.first_origin_changed)
            .map_err(|err| BatcherError::Span { number, err })?;
        let mut item = Vec::new();
        BatchData::Span(Box::new(raw)).encode_rlp(&mut item);
        if item.len() as u64 > max {
            return Err(BatcherError::TooManyRlpBytes { number, len: item.len(), max });
        }
        Ok(item)
    }

    /// Checks that a span batch can express `block` after its last block.
    fn check_follows(&self, batch: &SpanBatch, block: &L2BlockInput) -> Result<(), BatcherError> {
        let Some(last) = batch.blocks.last() else {
            return Ok(());
        };
        let number = block.number;
        if block.timestamp.checked_sub(last.timestamp) != Some(self.cfg.block_time) {
            return Err(BatcherError::SpanTimestamp {
                number,
                expected: last.timestamp.saturating_add(self.cfg.block_time),
                got: block.timestamp,
            });
        }
        let got = block.l1_origin.number;
        if got != last.epoch_num && Some(got) != last.epoch_num.checked_add(1) {
            return Err(BatcherError::SpanOrigin { number, previous: last.epoch_num, got });
        }
        Ok(())
    }

    /// Closes the channel, compressing its content.
    pub fn close(self, compressor: Compressor) -> CompressedChannel {
        CompressedChannel { id: self.id, data: compressor.compress(&self.rlp) }
    }
}

/// A closed channel's compressed data, ready to be cut into frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressedChannel {
    pub id: ChannelId,
    pub data: Vec<u8>,
}

impl CompressedChannel {
    /// Cuts the data into frames of at most `max_frame_size` encoded bytes (header included, as
    /// op-batcher's `MaxFrameSize`); the last frame is marked, and empty data makes one empty
    /// closing frame.
    pub fn frames(&self, max_frame_size: usize) -> Result<Vec<Frame>, BatcherError> {
        let chunk = max_frame_size
            .checked_sub(FRAME_HEADER_LEN)
            .filter(|n| (1..=MAX_FRAME_LEN).contains(n))
            .ok_or(BatcherError::FrameSize(max_frame_size))?;
        let count = self.data.len().div_ceil(chunk).max(1);
        if count > 1 << 16 {
            return Err(BatcherError::TooManyFrames(count));
        }
        let mut chunks: Vec<&[u8]> = self.data.chunks(chunk).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        Ok(chunks
            .into_iter()
            .zip(0..=u16::MAX)
            .map(|(data, number)| Frame {
                channel_id: self.id,
                number,
                data: data.to_vec().into(),
                is_last: usize::from(number) + 1 == count,
            })
            .collect())
    }
}

/// Draws a channel id from the caller's generator (op-node reads `crypto/rand`).
pub fn random_channel_id(rng: &mut Rng) -> ChannelId {
    let mut id = [0u8; 16];
    rng.fill(&mut id);
    id
}

/// Builds calldata as op-batcher does: one frame per transaction, behind the derivation version
/// byte.
pub fn calldata_payloads(frames: &[Frame]) -> Vec<Vec<u8>> {
    frames.iter().map(|f| batcher_tx_data(std::slice::from_ref(f))).collect()
}

/// Packs frames into blobs as op-batcher does: one frame per blob, each behind its own
/// derivation version byte.
pub fn blob_payloads(frames: &[Frame]) -> Result<Vec<Vec<u8>>, BatcherError> {
    frames.iter().map(|f| Ok(encode_blob(&batcher_tx_data(std::slice::from_ref(f)))?)).collect()
}

/// Builds a channel over `blocks` and returns its frames in one call (for tests and the devnet).
pub fn channel_frames(
    cfg: &RollupConfig,
    id: ChannelId,
    kind: BatchKind,
    blocks: &[L2BlockInput],
    compressor: Compressor,
    max_frame_size: usize,
) -> Result<Vec<Frame>, BatcherError> {
    let mut ch = ChannelOut::new(id, kind, cfg);
    for b in blocks {
        ch.add_block(b)?;
    }
    ch.close(compressor).frames(max_frame_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::blob::decode_blob;
    use crate::protocol::block_ref::L1BlockRef;
    use crate::protocol::channel::{decompress, read_batches, Channel, StreamEnd};
    use crate::protocol::primitives::{keccak256, Address, U256};
    use crate::protocol::rollup::tests_support::BASE_JSON;
    use crate::protocol::tx::{SignedTx, Transaction, TxBody, TxSignature, EIP1559_TX_TYPE, LEGACY_TX_TYPE};

    const CHAIN_ID: u64 = 10;
    const GENESIS: u64 = 1_686_068_903;
    /// After Delta, before Fjord on OP Mainnet.
    const PRE_FJORD: u64 = GENESIS + 2 * 12_000_000;
    /// After Fjord on OP Mainnet.
    const POST_FJORD: u64 = GENESIS + 2 * 20_000_000;
    const ID: ChannelId = [0xc4; 16];
    const ZLIB: Compressor = Compressor::Zlib { level: ZLIB_BEST_COMPRESSION };

    /// OP Mainnet's chain id, genesis time and fork times up to Fjord (its rollup.json).
    fn cfg() -> RollupConfig {
        let mut c = RollupConfig::from_json(BASE_JSON).unwrap();
        c.l2_chain_id = CHAIN_ID;
        c.genesis.l2_time = GENESIS;
        c.forks.canyon_time = Some(1_704_992_401);
        c.forks.delta_time = Some(1_708_560_000);
        c.forks.ecotone_time = Some(1_710_374_401);
        c.forks.fjord_time = Some(1_720_627_201);
        c
    }

    fn tx(tx_type: u8, nonce: u64, input: Vec<u8>) -> Bytes {
        let t = SignedTx {
            tx_type,
            chain_id: Some(CHAIN_ID),
            nonce,
            gas_price: 1_000_000_007,
            max_priority_fee_per_gas: (tx_type == EIP1559_TX_TYPE) as u128 * 3,
            gas_limit: 21_000 + nonce,
            to: (nonce % 5 != 0).then_some(Address([0x11; 20])),
            value: U256::from_u64(nonce * 1000),
            input: Bytes(input),
            sig: TxSignature {
                v: if tx_type == LEGACY_TX_TYPE { CHAIN_ID * 2 + 35 + nonce % 2 } else { nonce % 2 },
                r: U256(keccak256(nonce.to_be_bytes()).0),
                s: U256::from_u64(nonce + 1),
            },
            ..SignedTx::default()
        };
        Bytes(Transaction::new(TxBody::Signed(t)).into_encoded())
    }

    fn deposit() -> Bytes {
        Bytes(vec![DEPOSIT_TX_TYPE, 0xc0])
    }

    /// `n` consecutive blocks from `timestamp`, three per L1 origin, with a few txs each.
    fn blocks(n: u64, timestamp: u64) -> Vec<L2BlockInput> {
        let hash = |i: u64| keccak256(i.to_be_bytes());
        let origin = |i: u64| BlockId { number: 1000 + i / 3, hash: keccak256((1000 + i / 3).to_le_bytes()) };
        (0..n)
            .map(|i| {
                let mut transactions = vec![deposit()];
                for j in 0..i % 4 {
                    let nonce = 10 * i + j;
                    let ty = [LEGACY_TX_TYPE, EIP1559_TX_TYPE][(nonce % 2) as usize];
                    transactions.push(tx(ty, nonce, vec![j as u8; (i * 7) as usize]));
                }
                L2BlockInput {
                    number: 500 + i,
                    timestamp: timestamp + 2 * i,
                    parent_hash: hash(499 + i),
                    hash: hash(500 + i),
                    l1_origin: origin(i),
                    sequence_number: i % 3,
                    transactions,
                }
            })
            .collect()
    }

    /// Reads frames back as derivation does: batcher data, frames, channel, batches.
    fn decode(frames: &[Frame]) -> Vec<BatchData> {
        let parsed = Frame::parse_all(&batcher_tx_data(frames)).unwrap();
        assert_eq!(parsed, frames);
        let mut ch = Channel::new(frames[0].channel_id, L1BlockRef::default(), true);
        for f in parsed {
            ch.add_frame(f, L1BlockRef::default()).unwrap();
        }
        let data = ch.reader_bytes().expect("channel ready");
        let d = decompress(&data, 100_000_000, true).unwrap();
        assert_eq!(d.end, StreamEnd::Complete);
        read_batches(&d.data).collect::<Result<_, _>>().unwrap()
    }

    fn channel(kind: BatchKind, blocks: &[L2BlockInput]) -> ChannelOut {
        let mut ch = ChannelOut::new(ID, kind, &cfg());
        for b in blocks {
            ch.add_block(b).unwrap();
        }
        ch
    }

    #[test]
    fn singular_batches_round_trip_through_multiple_frames() {
        let input = blocks(12, PRE_FJORD);
        let ch = channel(BatchKind::Singular, &input);
        assert_eq!(ch.block_count(), 12);
        let compressed = ch.close(ZLIB);
        assert_eq!(compressed.data[0], 0x78, "zlib header");
        let frames = compressed.frames(FRAME_HEADER_LEN + 100).unwrap();
        assert!(frames.len() > 3);
        assert!(frames.iter().rev().skip(1).all(|f| f.data.len() == 100));
        let calldata = calldata_payloads(&frames);
        assert_eq!(calldata.len(), frames.len());
        for (data, f) in calldata.iter().zip(&frames) {
            assert_eq!(Frame::parse_all(data).unwrap(), std::slice::from_ref(f));
        }
        let batches = decode(&frames);
        let expected: Vec<_> = input.iter().map(|b| BatchData::Singular(b.to_singular_batch())).collect();
        assert_eq!(batches, expected);
        let BatchData::Singular(first) = &batches[1] else { unreachable!() };
        assert_eq!(first.transactions.len(), 1, "the deposit is left out");
    }

    #[test]
    fn a_span_batch_round_trips_and_derives_the_blocks() {
        let input = blocks(10, PRE_FJORD);
        // Start inside an epoch, so the first origin bit is clear.
        let input = &input[1..];
        let frames = channel_frames(&cfg(), ID, BatchKind::Span, input, ZLIB, 200).unwrap();
        let batches = decode(&frames);
        let [BatchData::Span(raw)] = &batches[..] else { panic!("one span batch: {batches:?}") };
        assert_eq!(raw.block_count(), 9);
        assert!(!raw.origin_bits.get(0));
        let span = raw.derive(2, GENESIS, CHAIN_ID).unwrap();
        assert!(span.check_parent_hash(&input[0].parent_hash));
        assert!(span.check_origin_hash(&input[8].l1_origin.hash));
        for (b, e) in input.iter().zip(&span.blocks) {
            assert_eq!(e.timestamp, b.timestamp);
            assert_eq!(e.epoch_num, b.l1_origin.number);
            assert_eq!(e.transactions, b.transactions[1..]);
        }
        let from_epoch_start = channel(BatchKind::Span, &blocks(3, PRE_FJORD));
        let batches = decode(&from_epoch_start.close(ZLIB).frames(1000).unwrap());
        let [BatchData::Span(raw)] = &batches[..] else { panic!("one span batch") };
        assert!(raw.origin_bits.get(0));
    }

    #[test]
    fn brotli_channels_take_the_callers_encoder() {
        fn brotli(data: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams { quality: 9, ..Default::default() };
            brotli::BrotliCompress(&mut &data[..], &mut out, &params).unwrap();
            out
        }
        let input = blocks(9, POST_FJORD);
        for kind in [BatchKind::Singular, BatchKind::Span] {
            let ch = channel(kind, &input);
            let rlp = ch.rlp().to_vec();
            let compressed = ch.close(Compressor::Brotli(brotli));
            assert_eq!(compressed.data[0], CHANNEL_VERSION_BROTLI);
            let frames = compressed.frames(FRAME_HEADER_LEN + 64).unwrap();
            let mut again = Vec::new();
            for b in decode(&frames) {
                b.encode_rlp(&mut again);
            }
            assert_eq!(again, rlp);
        }
    }

    #[test]
    fn frames_are_cut_as_op_node_cuts_them() {
        let frames_of = |len: usize, max: usize| {
            let c = CompressedChannel { id: ID, data: (0..len).map(|i| i as u8).collect() };
            c.frames(max)
        };
        // Data that fills the last frame exactly closes the channel in that frame.
        let f = frames_of(30, FRAME_HEADER_LEN + 10).unwrap();
        let shape: Vec<_> = f.iter().map(|f| (f.number, f.data.len(), f.is_last)).collect();
        assert_eq!(shape, [(0, 10, false), (1, 10, false), (2, 10, true)]);
        let f = frames_of(31, FRAME_HEADER_LEN + 10).unwrap();
        assert_eq!((f.len(), f[3].data.len(), f[3].is_last), (4, 1, true));
        assert!(f.iter().all(|f| f.encoded_len() <= FRAME_HEADER_LEN + 10));
        let f = frames_of(0, 100).unwrap();
        assert_eq!(f.len(), 1);
        assert!(f[0].is_last && f[0].data.is_empty());
        for bad in [0, FRAME_HEADER_LEN, FRAME_HEADER_LEN + MAX_FRAME_LEN + 1] {
            assert_eq!(frames_of(5, bad), Err(BatcherError::FrameSize(bad)));
        }
        let f = frames_of(MAX_FRAME_LEN, FRAME_HEADER_LEN + MAX_FRAME_LEN).unwrap();
        assert_eq!(f.len(), 1);
        let f = frames_of(1 << 16, FRAME_HEADER_LEN + 1).unwrap();
        assert_eq!(f.last().map(|f| (f.number, f.is_last)), Some((u16::MAX, true)));
        assert_eq!(
            frames_of((1 << 16) + 1, FRAME_HEADER_LEN + 1),
            Err(BatcherError::TooManyFrames((1 << 16) + 1))
        );
    }

    /// A block whose one transaction carries `len` bytes of input, at `timestamp`.
    fn big_block(number: u64, timestamp: u64, len: usize) -> L2BlockInput {
        L2BlockInput {
            number,
            timestamp,
            l1_origin: BlockId { number: 7, hash: B256([7; 32]) },
            transactions: vec![deposit(), tx(EIP1559_TX_TYPE, number, vec![1; len])],
            ..L2BlockInput::default()
        }
    }

    #[test]
    fn the_rlp_limit_follows_the_fork_and_refused_blocks_change_nothing() {
        for kind in [BatchKind::Singular, BatchKind::Span] {
            let mut ch = ChannelOut::new(ID, kind, &cfg());
            ch.add_block(&big_block(1, PRE_FJORD, 6_000_000)).unwrap();
            let before = ch.rlp().to_vec();
            let err = ch.add_block(&big_block(2, PRE_FJORD + 2, 6_000_000));
            assert!(
                matches!(err, Err(BatcherError::TooManyRlpBytes { number: 2, len, max: 10_000_000 }) if len > 12_000_000),
                "{err:?}"
            );
            assert_eq!((ch.rlp(), ch.block_count()), (&before[..], 1));
            ch.add_block(&big_block(2, PRE_FJORD + 2, 100)).unwrap();
            assert_eq!(
                decode(&ch.close(ZLIB).frames(MAX_BLOB_FRAME_SIZE).unwrap()).len(),
                1 + (kind == BatchKind::Singular) as usize
            );

            let mut ch = ChannelOut::new(ID, kind, &cfg());
            ch.add_block(&big_block(1, POST_FJORD, 6_000_000)).unwrap();
            ch.add_block(&big_block(2, POST_FJORD + 2, 6_000_000)).unwrap();
            assert!(ch.rlp().len() > 12_000_000);
        }
    }

    #[test]
    fn span_batches_refuse_what_they_cannot_express() {
        let input = blocks(4, PRE_FJORD);
        let mut ch = channel(BatchKind::Span, &input[..2]);
        let before = ch.rlp().to_vec();
        let mut gap = input[2].clone();
        gap.timestamp += 2;
        assert_eq!(
            ch.add_block(&gap),
            Err(BatcherError::SpanTimestamp { number: 502, expected: PRE_FJORD + 4, got: PRE_FJORD + 6 })
        );
        for (origin, previous) in [(1002, 1000), (999, 1000)] {
            let mut jump = input[2].clone();
            jump.l1_origin.number = origin;
            assert_eq!(
                ch.add_block(&jump),
                Err(BatcherError::SpanOrigin { number: 502, previous, got: origin })
            );
        }
        let mut foreign = input[2].clone();
        foreign.transactions.push(tx(EIP1559_TX_TYPE, 3, vec![]));
        let Some(last) = foreign.transactions.last_mut() else { unreachable!() };
        *last = {
            let t = Transaction::decode(last).unwrap();
            let mut s = t.as_signed().unwrap().clone();
            s.chain_id = Some(CHAIN_ID + 1);
            Bytes(Transaction::new(TxBody::Signed(s)).into_encoded())
        };
        assert!(matches!(
            ch.add_block(&foreign),
            Err(BatcherError::Span { number: 502, err: SpanBatchError::WrongChainId { .. } })
        ));
        assert_eq!((ch.rlp(), ch.block_count()), (&before[..], 2));
        ch.add_block(&input[2]).unwrap();
        ch.add_block(&input[3]).unwrap();
        let expected = channel(BatchKind::Span, &input);
        assert_eq!(ch.rlp(), expected.rlp());

        // A first block that fails leaves an empty channel that takes the next one.
        let mut ch = ChannelOut::new(ID, BatchKind::Span, &cfg());
        let mut early = input[0].clone();
        early.timestamp = GENESIS - 2;
        assert!(matches!(
            ch.add_block(&early),
            Err(BatcherError::Span { err: SpanBatchError::BeforeGenesis { .. }, .. })
        ));
        assert_eq!((ch.rlp(), ch.block_count()), (&[][..], 0));
        ch.add_block(&input[1]).unwrap();
        assert_eq!(ch.rlp(), channel(BatchKind::Span, &input[1..2]).rlp());
    }

    #[test]
    fn blobs_carry_one_frame_each() {
        let mut rng = Rng::new(0xb10b);
        let mut noise = vec![0u8; 300_000];
        rng.fill(&mut noise);
        let block = big_block(1, POST_FJORD, 0);
        let block = L2BlockInput { transactions: vec![tx(EIP1559_TX_TYPE, 1, noise)], ..block };
        let frames = channel_frames(
            &cfg(),
            random_channel_id(&mut rng),
            BatchKind::Singular,
            &[block],
            ZLIB,
            MAX_BLOB_FRAME_SIZE,
        )
        .unwrap();
        assert_eq!(frames.len(), 3);
        let blobs = blob_payloads(&frames).unwrap();
        assert_eq!(blobs.len(), 3);
        let mut back = Vec::new();
        for blob in &blobs {
            let data = decode_blob(blob).unwrap();
            back.extend(Frame::parse_all(&data).unwrap());
        }
        assert_eq!(back, frames);
        assert_eq!(decode(&back).len(), 1);
        let mut too_big = frames[0].clone();
        too_big.data = [&too_big.data[..], &[0]].concat().into();
        assert_eq!(
            blob_payloads(&[too_big]),
            Err(BatcherError::Blob(BlobError::DataTooLarge(MAX_BLOB_DATA_SIZE + 1)))
        );
    }

    #[test]
    fn random_blocks_never_panic() {
        let mut rng = Rng::new(0xe4c0);
        let cfg = cfg();
        for round in 0..400 {
            let kind = [BatchKind::Singular, BatchKind::Span][round % 2];
            let mut ch = ChannelOut::new(random_channel_id(&mut rng), kind, &cfg);
            let mut input = blocks(1 + rng.below(6), PRE_FJORD + 2 * rng.below(3));
            for b in &mut input {
                match rng.below(6) {
                    0 => b.timestamp = rng.next_u64(),
                    1 => b.l1_origin.number = rng.next_u64(),
                    2 => b.sequence_number = rng.below(3),
                    3 => {
                        let mut junk = vec![0u8; rng.below(40) as usize];
                        rng.fill(&mut junk);
                        b.transactions.push(Bytes(junk));
                    }
                    4 => {
                        if let Some(t) = b.transactions.last_mut() {
                            let i = rng.below(t.len() as u64) as usize;
                            t.0[i] ^= 1 << rng.below(8);
                        }
                    }
                    _ => {}
                }
                let (count, rlp) = (ch.block_count(), ch.rlp().to_vec());
                if ch.add_block(b).is_err() {
                    assert_eq!((ch.block_count(), ch.rlp()), (count, &rlp[..]));
                }
            }
            let rlp = ch.rlp().to_vec();
            let max = rng.below(2 * FRAME_HEADER_LEN as u64 + 300) as usize;
            if let Ok(frames) = ch.close(ZLIB).frames(max) {
                assert!(frames.iter().all(|f| f.encoded_len() <= max));
                let mut again = Vec::new();
                for b in decode(&frames) {
                    b.encode_rlp(&mut again);
                }
                assert_eq!(again, rlp);
            }
        }
    }
}
