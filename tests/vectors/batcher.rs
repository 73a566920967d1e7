//! The batcher encoder against real span batches: blocks derived from OP Mainnet's 27-block
//! batcher tx e69d9433 and from op-node's random span batch are re-encoded with `ChannelOut`
//! and must give the original bytes; the channels then go through frames, calldata, blobs and
//! brotli and back through the derivation decoders.

use std::path::PathBuf;

use op_lite::config::networks::op_mainnet;
use op_lite::protocol::batch::BatchData;
use op_lite::protocol::blob::decode_blob;
use op_lite::protocol::block_ref::{BlockId, L1BlockRef};
use op_lite::protocol::channel::{decompress, read_batches, Channel, StreamEnd};
use op_lite::protocol::channel_out::{
    blob_payloads, BatchKind, ChannelOut, Compressor, L2BlockInput, MAX_BLOB_FRAME_SIZE,
    ZLIB_BEST_COMPRESSION,
};
use op_lite::protocol::frame::{batcher_tx_data, Frame};
use op_lite::protocol::primitives::{Bytes, B256};
use op_lite::protocol::rlp;
use op_lite::protocol::rollup::{RollupConfig, MAX_RLP_BYTES_PER_CHANNEL_FJORD};
use op_lite::protocol::span_batch::{RawSpanBatch, SpanBatch};
use op_lite::protocol::tx::{Transaction, DEPOSIT_TX_TYPE};

use crate::support::fixtures;

const ZLIB: Compressor = Compressor::Zlib { level: ZLIB_BEST_COMPRESSION };

fn dir() -> Option<PathBuf> {
    fixtures().map(|f| f.join("batch-channel-frame/kona"))
}

/// The channel content (RLP batches) of the real OP Mainnet batcher tx e69d9433.
fn op_mainnet_channel_content(dir: &std::path::Path) -> Vec<u8> {
    let bytes = std::fs::read(dir.join("op-mainnet-batcher-tx-e69d9433.rlp.bin")).unwrap();
    let tx = Transaction::decode(&bytes).unwrap();
    let data = reassemble(&Frame::parse_all(tx.input()).unwrap());
    decompress(&data, 10_000_000, false).unwrap().data
}

fn only_span(content: &[u8]) -> RawSpanBatch {
    let batches: Vec<_> = read_batches(content).collect::<Result<_, _>>().unwrap();
    match <[BatchData; 1]>::try_from(batches) {
        Ok([BatchData::Span(raw)]) => *raw,
        other => panic!("want one span batch, got {other:?}"),
    }
}

fn reassemble(frames: &[Frame]) -> Vec<u8> {
    let mut ch = Channel::new(frames[0].channel_id, L1BlockRef::default(), true);
    for f in frames {
        ch.add_frame(f.clone(), L1BlockRef::default()).unwrap();
    }
    ch.reader_bytes().expect("all frames present")
}

fn pad(check: &[u8; 20]) -> B256 {
    let mut h = [0u8; 32];
    h[..20].copy_from_slice(check);
    B256(h)
}

/// The blocks a batcher had for a span batch: each with an L1-info deposit in front (left out
/// again when batching), the first parent hash and last L1 origin hash rebuilt from the checks,
/// and sequence numbers that give the first origin bit.
fn blocks_of(raw: &RawSpanBatch, span: &SpanBatch) -> Vec<L2BlockInput> {
    let mut seq = if raw.origin_bits.get(0) { 0 } else { 1 };
    let mut prev_epoch = span.blocks.first().map_or(0, |b| b.epoch_num);
    let last = span.blocks.len() - 1;
    span.blocks
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if i > 0 {
                seq = if e.epoch_num > prev_epoch { 0 } else { seq + 1 };
            }
            prev_epoch = e.epoch_num;
            let mut transactions = vec![Bytes(vec![DEPOSIT_TX_TYPE, 0xc0])];
            transactions.extend(e.transactions.iter().cloned());
            L2BlockInput {
                number: i as u64,
                timestamp: e.timestamp,
                parent_hash: if i == 0 { pad(&span.parent_check) } else { B256::default() },
                l1_origin: BlockId {
                    number: e.epoch_num,
                    hash: if i == last { pad(&span.l1_origin_check) } else { B256::default() },
                },
                sequence_number: seq,
                transactions,
                ..L2BlockInput::default()
            }
        })
        .collect()
}

fn span_channel(cfg: &RollupConfig, blocks: &[L2BlockInput]) -> ChannelOut {
    let mut ch = ChannelOut::new([0xe6; 16], BatchKind::Span, cfg);
    for b in blocks {
        ch.add_block(b).unwrap();
    }
    ch
}

/// Derives the original blocks, re-encodes them and checks the channel content is identical.
fn re_encoded(content: &[u8], cfg: &RollupConfig) -> ChannelOut {
    let raw = only_span(content);
    let span = raw.derive(cfg.block_time, cfg.genesis.l2_time, cfg.l2_chain_id).unwrap();
    let ch = span_channel(cfg, &blocks_of(&raw, &span));
    assert_eq!(ch.block_count(), raw.block_count());
    assert_eq!(only_span(ch.rlp()), raw);
    assert!(ch.rlp() == content, "channel content re-encodes byte for byte");
    ch
}

#[test]
fn op_mainnet_27_block_span_batch_re_encodes_byte_for_byte() {
    let Some(dir) = dir() else { return };
    let content = op_mainnet_channel_content(&dir);
    let ch = re_encoded(&content, &op_mainnet().rollup);
    assert_eq!(ch.block_count(), 27);

    // Calldata: 50 kB frames, back through the frame parser, channel and zlib.
    let frames = ch.close(ZLIB).frames(50_000).unwrap();
    assert_eq!(frames.len(), 3);
    let data = reassemble(&Frame::parse_all(&batcher_tx_data(&frames)).unwrap());
    let d = decompress(&data, 10_000_000, false).unwrap();
    assert_eq!(d.end, StreamEnd::Complete, "a finished zlib stream");
    assert_eq!(d.data, content);
}

#[test]
fn op_mainnet_span_batch_as_blobs_and_brotli() {
    let Some(dir) = dir() else { return };
    let content = op_mainnet_channel_content(&dir);
    let ch = re_encoded(&content, &op_mainnet().rollup);

    let frames = ch.clone().close(ZLIB).frames(MAX_BLOB_FRAME_SIZE).unwrap();
    let blobs = blob_payloads(&frames).unwrap();
    assert_eq!(blobs.len(), frames.len());
    let back: Vec<Frame> =
        blobs.iter().flat_map(|b| Frame::parse_all(&decode_blob(b).unwrap()).unwrap()).collect();
    assert_eq!(back, frames);
    let data = reassemble(&back);
    assert_eq!(decompress(&data, 10_000_000, false).unwrap().data, content);

    fn brotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let params = brotli::enc::BrotliEncoderParams { quality: 10, ..Default::default() };
        brotli::BrotliCompress(&mut &data[..], &mut out, &params).unwrap();
        out
    }
    let frames = ch.close(Compressor::Brotli(brotli)).frames(40_000).unwrap();
    assert!(frames.len() > 1);
    let data = reassemble(&Frame::parse_all(&batcher_tx_data(&frames)).unwrap());
    let fjord_limit = MAX_RLP_BYTES_PER_CHANNEL_FJORD as usize;
    let d = decompress(&data, fjord_limit, true).unwrap();
    assert_eq!((d.end, d.data), (StreamEnd::Complete, content));
}

#[test]
fn op_mainnet_blocks_as_singular_batches() {
    let Some(dir) = dir() else { return };
    let content = op_mainnet_channel_content(&dir);
    let cfg = op_mainnet().rollup;
    let raw = only_span(&content);
    let span = raw.derive(2, cfg.genesis.l2_time, 10).unwrap();
    let blocks = blocks_of(&raw, &span);
    let mut ch = ChannelOut::new([1; 16], BatchKind::Singular, &cfg);
    for b in &blocks {
        ch.add_block(b).unwrap();
    }
    let frames = ch.close(ZLIB).frames(30_000).unwrap();
    let data = reassemble(&Frame::parse_all(&batcher_tx_data(&frames)).unwrap());
    let d = decompress(&data, 10_000_000, false).unwrap();
    let batches: Vec<_> = read_batches(&d.data).collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 27);
    for ((batch, b), e) in batches.iter().zip(&blocks).zip(&span.blocks) {
        let BatchData::Singular(s) = batch else { panic!("singular batch expected") };
        assert_eq!(s, &b.to_singular_batch());
        assert_eq!((s.timestamp, s.epoch_num, &s.transactions), (e.timestamp, e.epoch_num, &e.transactions));
    }
}

#[test]
fn random_span_batch_re_encodes_byte_for_byte() {
    let Some(dir) = dir() else { return };
    let body = std::fs::read(dir.join("random-raw-span-batch.bin")).unwrap();
    let mut content = Vec::new();
    rlp::put_bytes(&mut content, &[&[1u8][..], &body].concat());
    // Random data has no chain: any chain id and genesis derive and rebuild it.
    let mut cfg = op_mainnet().rollup;
    cfg.genesis.l2_time = 0;
    cfg.l2_chain_id = 901;
    let ch = re_encoded(&content, &cfg);
    assert_eq!(ch.block_count(), 4);
}
