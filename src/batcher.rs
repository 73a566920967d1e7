//! The batcher side of derivation: L2 blocks into a channel of singular batches or one span
//! batch, compressed, cut into frames and packed as calldata or blobs (op-node's
//! `channel_out.go`, `span_channel_out.go` and `channel_compressor.go`; op-batcher's frame and
//! blob packing).
//!
//! Input: L2 blocks with their L1 origins, a rollup config, a channel id and a compression.
//! Output: frames for `frame::batcher_tx_data` (calldata) or `blob_payloads` (one frame per
//! blob). The derivation codecs in `protocol` read everything produced here back. The encoder
//! returns errors for blocks a channel cannot carry and never panics, whatever the input.

use std::fmt;

use miniz_oxide::deflate::compress_to_vec_zlib;

use crate::config::rollup::RollupConfig;
use crate::protocol::batch::{BatchData, SingularBatch};
use crate::protocol::blob::{encode_blob, BlobError, MAX_BLOB_DATA_SIZE};
use crate::protocol::channel::CHANNEL_VERSION_BROTLI;
use crate::protocol::frame::{batcher_tx_data, ChannelId, Frame, FRAME_HEADER_LEN, MAX_FRAME_LEN};
use crate::protocol::primitives::{Bytes, B256};
use crate::protocol::span_batch::{check_bytes, SpanBatch, SpanBatchElement, SpanBatchError};
use crate::protocol::tx::DEPOSIT_TX_TYPE;
use crate::rng::Rng;
use crate::types::BlockId;

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
    SpanTimestamp {
        number: u64,
        expected: u64,
        got: u64,
    },
    /// Block `number`'s L1 origin neither repeats nor follows its predecessor's, which a span
    /// batch cannot express.
    SpanOrigin {
        number: u64,
        previous: u64,
        got: u64,
    },
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
            BatcherError::TooManyRlpBytes { number, len, max } => write!(
                f,
                "block {number} would make the channel {len} RLP bytes, max is {max}"
            ),
            BatcherError::SpanTimestamp {
                number,
                expected,
                got,
            } => write!(
                f,
                "block {number} has timestamp {got}, a span batch needs {expected}"
            ),
            BatcherError::SpanOrigin {
                number,
                previous,
                got,
            } => write!(
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
        self.transactions
            .iter()
            .filter(|tx| tx.first() != Some(&DEPOSIT_TX_TYPE))
            .cloned()
            .collect()
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

/// How a channel's RLP content is compressed.
#[derive(Debug, Clone, Copy)]
pub enum Compression {
    /// zlib (RFC 1950, with the Adler-32 trailer) at a level from 0 to 10, as Go's zlib writer
    /// frames it.
    Zlib { level: u8 },
    /// Brotli (Fjord) from a caller-supplied encoder of raw brotli streams: the node itself
    /// carries no brotli encoder. The channel version byte is prepended here.
    Brotli(fn(&[u8]) -> Vec<u8>),
}

impl Compression {
    /// Compresses RLP content into channel data.
    pub fn compress(self, rlp: &[u8]) -> Vec<u8> {
        match self {
            Compression::Zlib { level } => compress_to_vec_zlib(rlp, level),
            Compression::Brotli(encode) => {
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
        ChannelOut {
            id,
            kind,
            cfg: cfg.clone(),
            rlp: Vec::new(),
            span: None,
            blocks: 0,
        }
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
                    return Err(BatcherError::TooManyRlpBytes {
                        number: block.number,
                        len,
                        max,
                    });
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
            .to_raw(
                self.cfg.genesis.l2_time,
                self.cfg.l2_chain_id,
                span.first_origin_changed,
            )
            .map_err(|err| BatcherError::Span { number, err })?;
        let mut item = Vec::new();
        BatchData::Span(Box::new(raw)).encode_rlp(&mut item);
        if item.len() as u64 > max {
            return Err(BatcherError::TooManyRlpBytes {
                number,
                len: item.len(),
                max,
            });
        }
        Ok(item)
    }

    /// Checks that a span batch can express `block` after its last block.
    fn check_follows(&self, batch: &SpanBatch, block: &L2BlockInput) -> Result<(), BatcherError> {
        let Some(last) = batch.blocks.last() else {
            return Ok(());
        };
        let number = block.number;
        let expected = last.timestamp.saturating_add(self.cfg.block_time);
        if block.timestamp != expected {
            return Err(BatcherError::SpanTimestamp {
                number,
                expected,
                got: block.timestamp,
            });
        }
        let got = block.l1_origin.number;
        if got != last.epoch_num && Some(got) != last.epoch_num.checked_add(1) {
            return Err(BatcherError::SpanOrigin {
                number,
                previous: last.epoch_num,
                got,
            });
        }
        Ok(())
    }

    /// Closes the channel, compressing its content.
    pub fn close(self, compression: Compression) -> CompressedChannel {
        CompressedChannel {
            id: self.id,
            data: compression.compress(&self.rlp),
        }
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
                data: data.to_vec(),
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

/// Packs frames into blobs as op-batcher does: one frame per blob, each behind its own
/// derivation version byte.
pub fn blob_payloads(frames: &[Frame]) -> Result<Vec<Vec<u8>>, BatcherError> {
    frames
        .iter()
        .map(|f| Ok(encode_blob(&batcher_tx_data(std::slice::from_ref(f)))?))
        .collect()
}

/// Builds a channel over `blocks` and returns its frames in one call (for tests and the devnet).
pub fn channel_frames(
    cfg: &RollupConfig,
    id: ChannelId,
    kind: BatchKind,
    blocks: &[L2BlockInput],
    compression: Compression,
    max_frame_size: usize,
) -> Result<Vec<Frame>, BatcherError> {
    let mut ch = ChannelOut::new(id, kind, cfg);
    for b in blocks {
        ch.add_block(b)?;
    }
    ch.close(compression).frames(max_frame_size)
}
