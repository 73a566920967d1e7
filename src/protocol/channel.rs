//! Channels (derivation spec, "Channel Format"; Fjord adds brotli): collecting a channel's
//! frames, decompressing its data within `MAX_RLP_BYTES_PER_CHANNEL`, and reading the batches.
//!
//! Frame rules are op-node's `Channel.AddFrame`. Decompression mirrors op-node's `BatchReader`:
//! the first byte picks zlib (RFC 1950 header) or the versioned brotli format, and whatever
//! inflates before the stream ends, breaks or reaches the limit is kept — real batchers have
//! posted zlib streams that stop after a sync flush, without a final block. Batches are read
//! until the data ends or one fails; the ones before the failure stand.

use std::collections::BTreeMap;
use std::fmt;

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
use zlib_rs::{Inflate, InflateFlush, Status};

use super::batch::{BatchData, BatchError};
use super::frame::{ChannelId, Frame};
use super::primitives::to_hex;
use super::rlp::{Rlp, RlpError};
use crate::protocol::block_ref::L1BlockRef;

/// Bytes a frame adds to its channel's size besides its data (spec, "Pruning").
pub const FRAME_OVERHEAD: u64 = 200;
/// The channel version byte of brotli-compressed channels (Fjord).
pub const CHANNEL_VERSION_BROTLI: u8 = 1;

/// Why a frame was refused, or channel data could not be opened or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelError {
    /// The frame belongs to another channel.
    IdMismatch { expected: ChannelId, got: ChannelId },
    /// A second closing frame.
    AlreadyClosed,
    /// A frame number the channel already holds.
    DuplicateFrame(u16),
    /// A frame at or past the closing frame's number.
    PastEnd { number: u16, end: u16 },
    /// Holocene: a frame that is not the next one.
    OutOfOrder { expected: usize, got: u16 },
    /// Channel data without even a compression byte.
    EmptyData,
    /// A zlib header Go's `zlib.NewReader` refuses.
    BadZlibHeader,
    /// Brotli channel data before Fjord.
    BrotliBeforeFjord,
    /// A first byte that is neither a zlib header nor a known channel version.
    UnknownCompression(u8),
    /// A channel item that is not an RLP byte string.
    Rlp(RlpError),
    /// A batch that does not decode.
    Batch(BatchError),
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::IdMismatch { expected, got } => {
                write!(f, "frame of channel {} added to channel {}", to_hex(got), to_hex(expected))
            }
            ChannelError::AlreadyClosed => write!(f, "closing frame for a closed channel"),
            ChannelError::DuplicateFrame(n) => write!(f, "duplicate frame {n}"),
            ChannelError::PastEnd { number, end } => {
                write!(f, "frame {number} at or past the closing frame {end}")
            }
            ChannelError::OutOfOrder { expected, got } => {
                write!(f, "frame {got} out of order, expected {expected}")
            }
            ChannelError::EmptyData => write!(f, "empty channel data"),
            ChannelError::BadZlibHeader => write!(f, "invalid zlib header"),
            ChannelError::BrotliBeforeFjord => write!(f, "brotli channel before Fjord"),
            ChannelError::UnknownCompression(b) => {
                write!(f, "unknown channel compression byte {b:#04x}")
            }
            ChannelError::Rlp(e) => write!(f, "channel item: {e}"),
            ChannelError::Batch(e) => write!(f, "batch: {e}"),
        }
    }
}

impl std::error::Error for ChannelError {}

/// The frames of one channel received so far.
#[derive(Debug, Clone)]
pub struct Channel {
    id: ChannelId,
    open_block: L1BlockRef,
    require_in_order: bool,
    size: u64,
    closed: bool,
    highest_frame_number: u16,
    end_frame_number: u16,
    frames: BTreeMap<u16, Frame>,
    highest_l1_inclusion_block: L1BlockRef,
}

impl Channel {
    /// Opens a channel first seen in `open_block`; Holocene channels take frames only in order.
    pub fn new(id: ChannelId, open_block: L1BlockRef, require_in_order: bool) -> Channel {
        Channel {
            id,
            open_block,
            require_in_order,
            size: 0,
            closed: false,
            highest_frame_number: 0,
            end_frame_number: 0,
            frames: BTreeMap::new(),
            highest_l1_inclusion_block: L1BlockRef::default(),
        }
    }

    /// Buffers a frame included in `l1_inclusion_block`, or says why it was ignored (the checks
    /// are consensus rules: spec "Loading frames").
    pub fn add_frame(&mut self, frame: Frame, l1_inclusion_block: L1BlockRef) -> Result<(), ChannelError> {
        if frame.channel_id != self.id {
            return Err(ChannelError::IdMismatch { expected: self.id, got: frame.channel_id });
        }
        if frame.is_last && self.closed {
            return Err(ChannelError::AlreadyClosed);
        }
        if self.frames.contains_key(&frame.number) {
            return Err(ChannelError::DuplicateFrame(frame.number));
        }
        if self.closed && frame.number >= self.end_frame_number {
            return Err(ChannelError::PastEnd { number: frame.number, end: self.end_frame_number });
        }
        if self.require_in_order && frame.number as usize != self.frames.len() {
            return Err(ChannelError::OutOfOrder { expected: self.frames.len(), got: frame.number });
        }
        if frame.is_last {
            self.end_frame_number = frame.number;
            self.closed = true;
            if frame.number < self.highest_frame_number {
                self.frames.retain(|n, _| *n < frame.number);
                // op-node subtracts the size of every buffered frame here, not only of the
                // pruned ones; the channel bank prunes by this size, so keep its accounting.
                self.size = 0;
                self.highest_frame_number = frame.number;
            }
        }
        self.highest_frame_number = self.highest_frame_number.max(frame.number);
        if self.highest_l1_inclusion_block.number < l1_inclusion_block.number {
            self.highest_l1_inclusion_block = l1_inclusion_block;
        }
        self.size += frame.data.len() as u64 + FRAME_OVERHEAD;
        self.frames.insert(frame.number, frame);
        Ok(())
    }

    /// Returns the channel id.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// Returns the L1 block the channel's first frame came in.
    pub fn open_block(&self) -> L1BlockRef {
        self.open_block
    }

    /// Returns the newest L1 block that contributed a frame.
    pub fn highest_l1_inclusion_block(&self) -> L1BlockRef {
        self.highest_l1_inclusion_block
    }

    /// Returns the buffered frame data's size plus `FRAME_OVERHEAD` per frame.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Tells whether the closing frame has arrived.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Tells whether the closing frame and every frame before it are present.
    pub fn is_ready(&self) -> bool {
        self.closed && self.frames.keys().copied().eq(0..=self.end_frame_number)
    }

    /// Returns the channel data (frame data in frame order) once the channel is ready.
    pub fn reader_bytes(&self) -> Option<Vec<u8>> {
        if !self.is_ready() {
            return None;
        }
        let len = self.frames.values().map(|f| f.data.len()).sum();
        let mut out = Vec::with_capacity(len);
        for f in self.frames.values() {
            out.extend_from_slice(&f.data);
        }
        Some(out)
    }
}

/// The compression a channel used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zlib,
    Brotli,
}

/// How decompression stopped. Only the bytes matter for derivation; this is for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The compressed stream ended properly.
    Complete,
    /// The output reached the limit; the rest was not decompressed.
    Limit,
    /// The input ended before the stream did (e.g. zlib after a sync flush).
    Unterminated,
    /// The stream is invalid from some point on.
    Corrupt,
}

/// Decompressed channel data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decompressed {
    /// The decompressed bytes, at most the limit given.
    pub data: Vec<u8>,
    pub compression: Compression,
    pub end: StreamEnd,
}

/// Decompresses channel data, producing at most `max_rlp_bytes` bytes (and never buffering
/// more); `brotli_allowed` is whether Fjord is active.
pub fn decompress(
    data: &[u8],
    max_rlp_bytes: usize,
    brotli_allowed: bool,
) -> Result<Decompressed, ChannelError> {
    let first = *data.first().ok_or(ChannelError::EmptyData)?;
    // RFC 1950 reserves the low nibbles 8 and 15 of the first byte for zlib.
    if matches!(first & 0x0f, 8 | 15) {
        let (data, end) = inflate_zlib(zlib_body(data)?, max_rlp_bytes);
        return Ok(Decompressed { data, compression: Compression::Zlib, end });
    }
    if first != CHANNEL_VERSION_BROTLI {
        return Err(ChannelError::UnknownCompression(first));
    }
    if !brotli_allowed {
        return Err(ChannelError::BrotliBeforeFjord);
    }
    let (data, end) = unbrotli(&data[1..], max_rlp_bytes);
    Ok(Decompressed { data, compression: Compression::Brotli, end })
}

/// Reads the batches of decompressed channel data, stopping after the first error.
pub fn read_batches(decompressed: &[u8]) -> BatchReader<'_> {
    BatchReader { rest: decompressed, failed: false }
}

/// An iterator over the batches of a channel: a sequence of RLP strings, each `type ++ content`.
#[derive(Debug, Clone)]
pub struct BatchReader<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl Iterator for BatchReader<'_> {
    type Item = Result<BatchData, ChannelError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let mut r = Rlp::new(self.rest);
        let item = r
            .next_bytes()
            .map_err(ChannelError::Rlp)
            .and_then(|b| BatchData::decode(b).map_err(ChannelError::Batch));
        self.rest = r.remaining();
        self.failed = item.is_err();
        Some(item)
    }
}

/// Checks the zlib header as Go's `zlib.NewReader` does and returns the deflate stream.
fn zlib_body(data: &[u8]) -> Result<&[u8], ChannelError> {
    let Some(&[cmf, flg]) = data.get(..2) else {
        return Err(ChannelError::BadZlibHeader);
    };
    if cmf & 0x0f != 8 || cmf >> 4 > 7 || (u16::from(cmf) << 8 | u16::from(flg)) % 31 != 0 {
        return Err(ChannelError::BadZlibHeader);
    }
    if flg & 0x20 == 0 {
        return Ok(&data[2..]);
    }
    // A preset dictionary: Go, given none, accepts the id of the empty dictionary (Adler-32 1)
    // and inflates without one.
    match data.get(2..6) {
        Some([0, 0, 0, 1]) => Ok(&data[6..]),
        _ => Err(ChannelError::BadZlibHeader),
    }
}

/// The output size to make room for when `want` bytes would do: at least 32 KiB, never past
/// `limit`.
fn output_len(want: usize, limit: usize) -> usize {
    want.max(32 * 1024).min(limit)
}

/// Grows `out` (zero-filled) towards `limit`, doubling, never reserving past it.
fn grow(out: &mut Vec<u8>, limit: usize) {
    let len = output_len(out.len().saturating_mul(2), limit);
    out.reserve_exact(len.saturating_sub(out.len()));
    out.resize(len, 0);
}

/// Inflates a raw deflate stream (the zlib checksum is not checked: Go hands out the data before
/// it and fails only the read after, which ends the channel just as the data's end does).
fn inflate_zlib(mut input: &[u8], limit: usize) -> (Vec<u8>, StreamEnd) {
    let mut state = Inflate::new(false, 15);
    // Batcher data (RLP with signatures and hashes) deflates to about half: room for twice the
    // input at once spares the doublings (each a copy and a zero-fill) of a typical channel.
    let mut out = vec![0; output_len(input.len().saturating_mul(2), limit)];
    let mut pos = 0;
    let end = loop {
        let (in0, out0) = (state.total_in(), state.total_out());
        let status = state.decompress(input, &mut out[pos..], InflateFlush::NoFlush);
        pos += (state.total_out() - out0) as usize;
        input = input.get((state.total_in() - in0) as usize..).unwrap_or_default();
        match status {
            Ok(Status::StreamEnd) => break StreamEnd::Complete,
            Err(_) => break StreamEnd::Corrupt,
            // Ok or BufError: the output is full, or the input ran out before the stream's end.
            Ok(_) if pos < out.len() => break StreamEnd::Unterminated,
            Ok(_) if out.len() >= limit => break StreamEnd::Limit,
            Ok(_) => grow(&mut out, limit),
        }
    };
    out.truncate(pos);
    (out, end)
}

/// Decompresses a brotli stream (RFC 7932; no large-window extension, as Go's decoder).
pub(crate) fn unbrotli(input: &[u8], limit: usize) -> (Vec<u8>, StreamEnd) {
    let alloc = StandardAlloc::default;
    let mut state = BrotliState::new(alloc(), alloc(), alloc());
    state.large_window = false;
    let (mut avail_in, mut in_pos) = (input.len(), 0);
    let (mut out, mut pos, mut total) = (Vec::new(), 0, 0);
    grow(&mut out, limit);
    let end = loop {
        let mut avail_out = out.len() - pos;
        let result = BrotliDecompressStream(
            &mut avail_in,
            &mut in_pos,
            input,
            &mut avail_out,
            &mut pos,
            &mut out,
            &mut total,
            &mut state,
        );
        match result {
            BrotliResult::ResultSuccess => break StreamEnd::Complete,
            BrotliResult::NeedsMoreOutput if out.len() >= limit => break StreamEnd::Limit,
            BrotliResult::NeedsMoreOutput => grow(&mut out, limit),
            BrotliResult::NeedsMoreInput => break StreamEnd::Unterminated,
            BrotliResult::ResultFailure => break StreamEnd::Corrupt,
        }
    };
    out.truncate(pos);
    (out, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::SingularBatch;
    use crate::protocol::primitives::{Bytes, B256};
    use crate::rng::Rng;
    use miniz_oxide::deflate::compress_to_vec_zlib;
    use miniz_oxide::deflate::core::{
        compress_to_output, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush,
    };

    const ID: ChannelId = [7; 16];

    fn frame(number: u16, data: &[u8], is_last: bool) -> Frame {
        Frame { channel_id: ID, number, data: data.to_vec().into(), is_last }
    }

    fn block(number: u64) -> L1BlockRef {
        L1BlockRef { number, ..L1BlockRef::default() }
    }

    fn batches(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n as u64 {
            let b = BatchData::Singular(SingularBatch {
                parent_hash: B256([i as u8; 32]),
                epoch_num: 100 + i,
                epoch_hash: B256([9; 32]),
                timestamp: 1000 + 2 * i,
                transactions: vec![Bytes(vec![0x02, 0xc1, i as u8])],
            });
            b.encode_rlp(&mut out);
        }
        out
    }

    /// A zlib stream that stops after a sync flush, as some real batchers' channels do.
    fn zlib_sync_flushed(data: &[u8]) -> Vec<u8> {
        let mut c = CompressorOxide::new(create_comp_flags_from_zip_params(6, 15, 0));
        let mut out = Vec::new();
        compress_to_output(&mut c, data, TDEFLFlush::Sync, |chunk| {
            out.extend_from_slice(chunk);
            true
        });
        out
    }

    fn brotli(data: &[u8]) -> Vec<u8> {
        let mut out = vec![CHANNEL_VERSION_BROTLI];
        let params = brotli::enc::BrotliEncoderParams { quality: 5, ..Default::default() };
        brotli::BrotliCompress(&mut &data[..], &mut out, &params).unwrap();
        out
    }

    #[test]
    fn frames_in_any_order_make_a_ready_channel() {
        let mut ch = Channel::new(ID, block(5), false);
        ch.add_frame(frame(2, b"c", true), block(7)).unwrap();
        assert!(!ch.is_ready());
        ch.add_frame(frame(0, b"a", false), block(5)).unwrap();
        assert_eq!(ch.reader_bytes(), None);
        ch.add_frame(frame(1, b"b", false), block(6)).unwrap();
        assert!(ch.is_ready());
        assert_eq!(ch.reader_bytes().unwrap(), b"abc");
        assert_eq!(ch.size(), 3 + 3 * FRAME_OVERHEAD);
        assert_eq!(ch.highest_l1_inclusion_block().number, 7);
        assert_eq!(ch.open_block().number, 5);
    }

    #[test]
    fn frame_rules_follow_op_node() {
        let mut ch = Channel::new(ID, block(1), false);
        let mut other = frame(0, b"", false);
        other.channel_id = [8; 16];
        assert!(matches!(ch.add_frame(other, block(1)), Err(ChannelError::IdMismatch { .. })));
        ch.add_frame(frame(0, b"a", false), block(1)).unwrap();
        assert_eq!(ch.add_frame(frame(0, b"x", false), block(1)), Err(ChannelError::DuplicateFrame(0)));
        ch.add_frame(frame(5, b"late", false), block(1)).unwrap();
        ch.add_frame(frame(3, b"ddd", false), block(1)).unwrap();
        // Closing at 2 prunes 3 and 5, and resets the size as op-node does.
        ch.add_frame(frame(2, b"cc", true), block(1)).unwrap();
        assert_eq!(ch.size(), 2 + FRAME_OVERHEAD);
        assert_eq!(ch.add_frame(frame(4, b"", true), block(1)), Err(ChannelError::AlreadyClosed));
        assert_eq!(
            ch.add_frame(frame(3, b"", false), block(1)),
            Err(ChannelError::PastEnd { number: 3, end: 2 })
        );
        ch.add_frame(frame(1, b"b", false), block(1)).unwrap();
        assert_eq!(ch.reader_bytes().unwrap(), b"abcc");
    }

    #[test]
    fn holocene_channels_take_frames_in_order() {
        let mut ch = Channel::new(ID, block(1), true);
        assert_eq!(
            ch.add_frame(frame(1, b"b", false), block(1)),
            Err(ChannelError::OutOfOrder { expected: 0, got: 1 })
        );
        ch.add_frame(frame(0, b"a", false), block(1)).unwrap();
        ch.add_frame(frame(1, b"b", true), block(1)).unwrap();
        assert_eq!(ch.reader_bytes().unwrap(), b"ab");
    }

    #[test]
    fn zlib_complete_unterminated_and_limited() {
        let plain = batches(20);
        let d = decompress(&compress_to_vec_zlib(&plain, 6), 10_000_000, false).unwrap();
        assert_eq!(
            (d.data.as_slice(), d.compression, d.end),
            (&plain[..], Compression::Zlib, StreamEnd::Complete)
        );
        let d = decompress(&zlib_sync_flushed(&plain), 10_000_000, false).unwrap();
        assert_eq!((&d.data[..], d.end), (&plain[..], StreamEnd::Unterminated));
        assert_eq!(read_batches(&d.data).count(), 20);
        // Cut at the limit: the batches wholly inside it stand, then the cut one fails.
        let d = decompress(&compress_to_vec_zlib(&plain, 6), 100, false).unwrap();
        assert_eq!((&d.data[..], d.end), (&plain[..100], StreamEnd::Limit));
        let read: Vec<_> = read_batches(&d.data).collect();
        let item_len = plain.len() / 20;
        assert_eq!(read.len(), 100 / item_len + 1);
        assert!(read[..100 / item_len].iter().all(Result::is_ok));
        assert_eq!(read.last(), Some(&Err(ChannelError::Rlp(RlpError::Truncated))));
        assert_eq!(decompress(&compress_to_vec_zlib(&plain, 6), 0, false).unwrap().data, b"");
    }

    #[test]
    fn zlib_headers_as_go_reads_them() {
        assert_eq!(decompress(&[], 10, true), Err(ChannelError::EmptyData));
        assert_eq!(decompress(&[0x78], 10, true), Err(ChannelError::BadZlibHeader));
        // CM 15 is reserved for zlib but not a method Go inflates; CINFO 8 is too large a window.
        assert_eq!(decompress(&[0x7f, 0x00], 10, true), Err(ChannelError::BadZlibHeader));
        assert_eq!(decompress(&[0x88, 0x1c], 10, true), Err(ChannelError::BadZlibHeader));
        assert_eq!(decompress(&[0x78, 0x9d], 10, true), Err(ChannelError::BadZlibHeader));
        // FDICT with the empty dictionary's id is accepted; any other id is not.
        let raw = miniz_oxide::deflate::compress_to_vec(b"dict", 6);
        let with_id = |id: [u8; 4]| [&[0x78, 0xbb][..], &id, &raw].concat();
        let d = decompress(&with_id([0, 0, 0, 1]), 10, true).unwrap();
        assert_eq!(d.data, b"dict");
        assert_eq!(decompress(&with_id([0, 0, 0, 2]), 10, true), Err(ChannelError::BadZlibHeader));
        assert_eq!(decompress(&[0x02, 0x00], 10, true), Err(ChannelError::UnknownCompression(2)));
    }

    #[test]
    fn brotli_only_after_fjord() {
        let plain = batches(5);
        let compressed = brotli(&plain);
        assert_eq!(decompress(&compressed, 1000, false), Err(ChannelError::BrotliBeforeFjord));
        let d = decompress(&compressed, 1000, true).unwrap();
        assert_eq!(
            (&d.data[..], d.compression, d.end),
            (&plain[..], Compression::Brotli, StreamEnd::Complete)
        );
        let d = decompress(&compressed[..compressed.len() - 1], 1000, true).unwrap();
        assert_eq!(d.end, StreamEnd::Unterminated);
        let d = decompress(&compressed, 50, true).unwrap();
        assert_eq!((&d.data[..], d.end), (&plain[..50], StreamEnd::Limit));
    }

    #[test]
    fn bombs_stop_at_the_limit_without_buffering_past_it() {
        const LIMIT: usize = 1_000_000;
        let zeros = vec![0u8; 30 * LIMIT];
        let zlib = compress_to_vec_zlib(&zeros, 6);
        let brotli = brotli(&zeros);
        assert!(zlib.len() < 100_000 && brotli.len() < 100_000, "{} {}", zlib.len(), brotli.len());
        for bomb in [zlib, brotli] {
            let d = decompress(&bomb, LIMIT, true).unwrap();
            assert_eq!((d.data.len(), d.end), (LIMIT, StreamEnd::Limit));
            assert!(d.data.capacity() <= LIMIT, "{}", d.data.capacity());
        }
    }

    #[test]
    fn reading_stops_at_the_first_bad_batch() {
        let mut data = batches(2);
        data.extend_from_slice(&[0x82, 0x07, 0x00]);
        data.extend_from_slice(&batches(1));
        let read: Vec<_> = read_batches(&data).collect();
        assert_eq!(read.len(), 3);
        assert_eq!(read[2], Err(ChannelError::Batch(BatchError::UnknownType(7))));
        let listed = [0xc1, 0x80];
        assert_eq!(
            read_batches(&listed).collect::<Vec<_>>(),
            vec![Err(ChannelError::Rlp(RlpError::UnexpectedList))]
        );
    }

    #[test]
    fn truncated_and_random_channel_data_never_panics() {
        let plain = batches(8);
        for compressed in [compress_to_vec_zlib(&plain, 6), brotli(&plain)] {
            for n in 0..compressed.len() {
                if let Ok(d) = decompress(&compressed[..n], 1 << 20, true) {
                    assert!(plain.starts_with(&d.data), "prefix {n}");
                    assert!(read_batches(&d.data).count() <= 8);
                }
            }
        }
        let mut rng = Rng::new(0xc4a7);
        for round in 0..3000 {
            let mut buf = vec![0u8; rng.below(300) as usize];
            rng.fill(&mut buf);
            if let Some(b) = buf.first_mut() {
                *b = [0x78, 0x01, 0x08, *b][round % 4];
            }
            if let Some(b) = buf.get_mut(1) {
                if round % 4 == 0 {
                    *b = 0x9c;
                }
            }
            if let Ok(d) = decompress(&buf, 4096, true) {
                assert!(d.data.len() <= 4096);
                read_batches(&d.data).for_each(drop);
            }
            read_batches(&buf).for_each(drop);
        }
    }
}
