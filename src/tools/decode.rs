//! `op-lite decode KIND FILE`: a debugging tool in the spirit of op-node's `batch_decoder` that
//! runs the node's own codecs on one input and prints what they see as JSON.
//!
//! Input: FILE (or `-` for stdin), hex text or raw bytes (JSON for `l1-block`), at most
//! `MAX_INPUT` bytes. Output: one JSON document on stdout; a one-line error on stderr and exit
//! code 1 when the input does not decode, 2 on a usage error. The `*_json` functions are the
//! tool without the file and argument handling.

use std::ffi::OsString;
use std::fmt;
use std::io::Write;

use serde_json::{json, Map, Value};

use crate::config::networks;
use crate::protocol::batch::BatchData;
use crate::protocol::blob::{self, BlobError};
use crate::protocol::block_ref::L1BlockRef;
use crate::protocol::channel::{self, Channel, ChannelError, Compression, StreamEnd};
use crate::protocol::frame::{ChannelId, Frame, FrameError};
use crate::protocol::gossip::{self, BlockVersion, GossipError, SignedBlock};
use crate::protocol::primitives::{
    from_hex, keccak256, strip_0x, to_hex_prefixed, Address, Bytes, HexError, B256,
};
use crate::protocol::tx::RpcTransaction;

/// The largest FILE the tool reads (64 MiB).
pub const MAX_INPUT: u64 = 64 << 20;
/// The default `--max-rlp-bytes`: the Fjord channel limit.
pub const DEFAULT_MAX_RLP_BYTES: usize = 100_000_000;
/// The default `--chain-id` for span batch transactions (OP Mainnet).
pub const DEFAULT_CHAIN_ID: u64 = 10;
/// Span batches are expanded with this block time and genesis time: transaction hashes do not
/// depend on them, and the printed fields are the raw ones.
const SPAN_BLOCK_TIME: u64 = 2;
const SPAN_GENESIS_TIME: u64 = 0;

/// The text of `op-lite decode --help`.
pub const HELP: &str = "\
op-lite decode: print batcher data, channels, L1 batcher transactions, blobs and gossip blocks as JSON

USAGE:
   op-lite decode KIND [options] FILE

KINDS:
   frames FILE       batcher transaction data (version byte + frames) -> its frames
   channel FILE      channel data (zlib, or brotli with its version byte) -> its batches
      --max-rlp-bytes N   decompression limit (default 100000000); brotli is always accepted
      --chain-id N        L2 chain id for span batch transaction hashes (default 10)
   batcher-tx FILE   batcher transaction data -> its frames and the channels they complete
                     (takes the options of `channel`)
   l1-block --network NAME FILE
                     an eth_getBlockByNumber(n, true) result, or a JSON-RPC response holding
                     one -> the transactions to the network's batch inbox with their frames
      --batcher ADDR      the authorized batcher (default: the network's batcher at genesis;
                          a batcher changed by a later SystemConfig update is unknown offline)
   blob FILE         a 131072-byte blob -> the data it carries in the OP blob encoding
   gossip --chain-id N --topic-version V FILE
                     a gossip block message (snappy-compressed or not) -> signer and block;
                     V is 1 (Bedrock), 2 (Canyon), 3 (Ecotone), 4 (Isthmus) or the topic

FILE holds hex text (0x optional, whitespace allowed) or raw bytes; `-` reads stdin. Files over
64 MiB are refused. Span batches are expanded with block time 2 and genesis time 0, which the
transaction hashes do not depend on.

Exit codes: 0 decoded, 1 the input does not decode, 2 usage error.
";

/// Why a decode failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A bad command line (exit code 2).
    Usage(String),
    /// FILE could not be read.
    Read { path: String, msg: String },
    /// FILE is larger than `MAX_INPUT`.
    TooLarge { path: String },
    /// FILE is empty.
    Empty,
    /// FILE looks like hex text but is not valid hex.
    Hex(HexError),
    /// The batcher data does not parse into frames.
    Frames(FrameError),
    /// The channel data does not decompress, or its first batch does not decode.
    Channel(ChannelError),
    /// The channel decompressed to nothing that reads as a batch.
    NoBatches { decompressed: usize, end: StreamEnd },
    /// The blob is not an OP blob.
    Blob(BlobError),
    /// The gossip message does not decode (both as sent and as decompressed), or its
    /// signature does not recover.
    Gossip(GossipError),
    /// The L1 block JSON is malformed.
    Json(String),
    /// The inbox transaction at `index` could not be rebuilt from its JSON.
    Tx { index: usize, msg: String },
    /// The rebuilt inbox transaction does not hash to the hash the JSON claims.
    HashMismatch { index: usize, rpc: B256, rebuilt: B256 },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Usage(m) => write!(f, "{m} (see op-lite decode --help)"),
            DecodeError::Read { path, msg } => write!(f, "{path}: {msg}"),
            DecodeError::TooLarge { path } => {
                write!(f, "{path}: larger than {} MiB, refused", MAX_INPUT >> 20)
            }
            DecodeError::Empty => write!(f, "the input is empty"),
            DecodeError::Hex(e) => write!(f, "invalid hex input: {e}"),
            DecodeError::Frames(e) => write!(f, "not batcher data: {e}"),
            DecodeError::Channel(e) => write!(f, "channel: {e}"),
            DecodeError::NoBatches { decompressed, end } => write!(
                f,
                "channel: no batch in {decompressed} decompressed bytes (stream {})",
                end_name(*end)
            ),
            DecodeError::Blob(e) => write!(f, "not an OP blob: {e}"),
            DecodeError::Gossip(e) => write!(f, "not a gossip block message: {e}"),
            DecodeError::Json(m) => write!(f, "bad block JSON: {m}"),
            DecodeError::Tx { index, msg } => write!(f, "transaction {index}: {msg}"),
            DecodeError::HashMismatch { index, rpc, rebuilt } => {
                write!(f, "transaction {index}: rebuilt as {rebuilt}, but the JSON says {rpc}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    /// Returns the process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            DecodeError::Usage(_) => 2,
            _ => 1,
        }
    }
}

fn usage(msg: impl fmt::Display) -> DecodeError {
    DecodeError::Usage(msg.to_string())
}

/// Options of `channel` and `batcher-tx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelOptions {
    /// The decompression limit (`--max-rlp-bytes`).
    pub max_rlp_bytes: usize,
    /// The L2 chain id that span batch legacy transactions are signed for (`--chain-id`).
    pub chain_id: u64,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions { max_rlp_bytes: DEFAULT_MAX_RLP_BYTES, chain_id: DEFAULT_CHAIN_ID }
    }
}

/// Parses `op-lite decode` arguments, runs it and prints the result. Returns the exit code.
pub fn main(args: Vec<OsString>) -> u8 {
    let first = args.first().and_then(|a| a.to_str());
    if first == Some("help") || args.iter().any(|a| a == "--help" || a == "-h") {
        crate::io::out::print(HELP);
        return 0;
    }
    match run(args) {
        Ok(v) => {
            let text = serde_json::to_string_pretty(&v).unwrap_or_default();
            match writeln!(std::io::stdout().lock(), "{text}") {
                Ok(()) => 0,
                // A closed pipe (`| head`) is the reader's choice, not an error to report.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
                Err(e) => {
                    eprintln!("op-lite decode: stdout: {e}");
                    1
                }
            }
        }
        Err(e) => {
            eprintln!("op-lite decode: {e}");
            e.exit_code()
        }
    }
}

/// Runs `op-lite decode` on its arguments (without the `decode`), returning the JSON to print.
pub fn run(args: Vec<OsString>) -> Result<Value, DecodeError> {
    let mut p = pico_args::Arguments::from_vec(args);
    let kind = p.subcommand().map_err(usage)?.ok_or_else(|| usage("missing KIND"))?;
    match kind.as_str() {
        "frames" => frames_json(&hex_or_raw(&read_input(file_arg(p)?)?)?),
        "channel" | "batcher-tx" => {
            let d = ChannelOptions::default();
            let opts = ChannelOptions {
                max_rlp_bytes: opt(&mut p, "--max-rlp-bytes")?.unwrap_or(d.max_rlp_bytes),
                chain_id: opt(&mut p, "--chain-id")?.unwrap_or(d.chain_id),
            };
            let data = hex_or_raw(&read_input(file_arg(p)?)?)?;
            if kind == "channel" {
                channel_json(&data, &opts)
            } else {
                batcher_tx_json(&data, &opts)
            }
        }
        "l1-block" => {
            let name: String = opt(&mut p, "--network")?.ok_or_else(|| usage("l1-block needs --network"))?;
            let net = networks::by_name(&name).ok_or_else(|| usage(networks::unknown(&name)))?;
            let batcher = opt(&mut p, "--batcher")?.unwrap_or(net.rollup.genesis.system_config.batcher_addr);
            let text = read_input(file_arg(p)?)?;
            l1_block_json(&text, net.rollup.batch_inbox_address, batcher)
        }
        "blob" => blob_json(&hex_or_raw(&read_input(file_arg(p)?)?)?),
        "gossip" => {
            let chain_id: u64 = opt(&mut p, "--chain-id")?.ok_or_else(|| usage("gossip needs --chain-id"))?;
            let v: String =
                opt(&mut p, "--topic-version")?.ok_or_else(|| usage("gossip needs --topic-version"))?;
            let version = parse_version(&v, chain_id)
                .ok_or_else(|| usage(format!("--topic-version: unknown version {v:?}")))?;
            gossip_json(&hex_or_raw(&read_input(file_arg(p)?)?)?, chain_id, version)
        }
        k => Err(usage(format!("unknown KIND {k:?}"))),
    }
}

fn opt<T: std::str::FromStr>(
    p: &mut pico_args::Arguments,
    name: &'static str,
) -> Result<Option<T>, DecodeError>
where
    T::Err: fmt::Display,
{
    p.opt_value_from_str(name).map_err(|e| usage(format!("{name}: {e}")))
}

/// The one FILE argument left after the options.
fn file_arg(p: pico_args::Arguments) -> Result<String, DecodeError> {
    let rest = p.finish();
    let mut strs = rest.iter().map(|a| a.to_str());
    match (strs.next(), strs.next()) {
        (Some(Some(path)), None) if path == "-" || !path.starts_with('-') => Ok(path.to_string()),
        (Some(Some(flag)), None) => Err(usage(format!("unknown option {flag}"))),
        (Some(None), None) => Err(usage("FILE is not valid UTF-8")),
        (None, _) => Err(usage("missing FILE")),
        (Some(_), Some(_)) => Err(usage(format!(
            "expected one FILE, got {}",
            rest.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
        ))),
    }
}

/// `1`..`4` (optionally `v1`..`v4`), or the version's topic on `chain_id`.
fn parse_version(s: &str, chain_id: u64) -> Option<BlockVersion> {
    let n = s.strip_prefix(['v', 'V']).unwrap_or(s);
    match n {
        "1" => Some(BlockVersion::V1),
        "2" => Some(BlockVersion::V2),
        "3" => Some(BlockVersion::V3),
        "4" => Some(BlockVersion::V4),
        _ => BlockVersion::from_topic(s, chain_id),
    }
}

/// Reads FILE (`-`: stdin), refusing more than `MAX_INPUT` bytes.
fn read_input(path: String) -> Result<Vec<u8>, DecodeError> {
    let buf = match crate::io::files::read(&path, MAX_INPUT) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => return Err(DecodeError::TooLarge { path }),
        Err(e) => return Err(DecodeError::Read { path: path.clone(), msg: e.to_string() }),
    };
    if buf.is_empty() {
        return Err(DecodeError::Empty);
    }
    Ok(buf)
}

/// Reads input as hex text when it is one (an optional `0x`, then only hex digits and
/// whitespace), else as raw bytes.
pub fn hex_or_raw(input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let Ok(text) = std::str::from_utf8(input) else {
        return Ok(input.to_vec());
    };
    let text = text.trim();
    let body = strip_0x(text);
    let prefixed = body.len() != text.len();
    let hex_chars = body.bytes().all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace());
    if !prefixed && (body.is_empty() || !hex_chars) {
        return Ok(input.to_vec());
    }
    let digits: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    from_hex(&digits).map_err(DecodeError::Hex)
}

/// `decode frames`: the frames of batcher transaction data.
pub fn frames_json(data: &[u8]) -> Result<Value, DecodeError> {
    let frames = Frame::parse_all(data).map_err(DecodeError::Frames)?;
    Ok(Value::Array(frames.iter().map(frame_json).collect()))
}

fn frame_json(f: &Frame) -> Value {
    json!({
        "channelId": to_hex_prefixed(&f.channel_id),
        "frameNumber": f.number,
        "dataLength": f.data.len(),
        "isLast": f.is_last,
    })
}

/// `decode channel`: the batches of compressed channel data.
pub fn channel_json(data: &[u8], opts: &ChannelOptions) -> Result<Value, DecodeError> {
    channel_fields(data, opts).map(Value::Object)
}

/// Decompresses and reads a channel. Batches before an undecodable item stand (as in
/// derivation) and the item's error is shown; a channel without any batch is an error.
fn channel_fields(data: &[u8], opts: &ChannelOptions) -> Result<Map<String, Value>, DecodeError> {
    let d = channel::decompress(data, opts.max_rlp_bytes, true).map_err(DecodeError::Channel)?;
    let mut batches = Vec::new();
    let mut batch_error = None;
    for b in channel::read_batches(&d.data) {
        match b {
            Ok(b) => batches.push(batch_json(&b, opts.chain_id)),
            Err(e) => batch_error = Some(e),
        }
    }
    if batches.is_empty() {
        return Err(batch_error.map_or(
            DecodeError::NoBatches { decompressed: d.data.len(), end: d.end },
            DecodeError::Channel,
        ));
    }
    let mut m = Map::new();
    let compression = match d.compression {
        Compression::Zlib => "zlib",
        Compression::Brotli => "brotli",
    };
    m.insert("compression".into(), compression.into());
    m.insert("decompressedLength".into(), d.data.len().into());
    m.insert("streamEnd".into(), end_name(d.end).into());
    m.insert("batches".into(), batches.into());
    if let Some(e) = batch_error {
        m.insert("batchError".into(), e.to_string().into());
    }
    Ok(m)
}

fn end_name(end: StreamEnd) -> &'static str {
    match end {
        StreamEnd::Complete => "complete",
        StreamEnd::Limit => "limit",
        StreamEnd::Unterminated => "unterminated",
        StreamEnd::Corrupt => "corrupt",
    }
}

fn hashes<'a>(txs: impl IntoIterator<Item = &'a Bytes>) -> Value {
    txs.into_iter().map(|t| keccak256(t).to_string()).collect::<Vec<_>>().into()
}

fn batch_json(b: &BatchData, chain_id: u64) -> Value {
    match b {
        BatchData::Singular(b) => json!({
            "type": "singular",
            "parentHash": b.parent_hash,
            "epochNum": b.epoch_num,
            "epochHash": b.epoch_hash,
            "timestamp": b.timestamp,
            "txHashes": hashes(&b.transactions),
        }),
        BatchData::Span(s) => {
            let bits: String =
                (0..s.block_count()).map(|i| if s.origin_bits.get(i) { '1' } else { '0' }).collect();
            let mut v = json!({
                "type": "span",
                "relTimestamp": s.rel_timestamp,
                "l1OriginNum": s.l1_origin_num,
                "parentCheck": to_hex_prefixed(&s.parent_check),
                "l1OriginCheck": to_hex_prefixed(&s.l1_origin_check),
                "blockCount": s.block_count(),
                "originBits": bits,
                "blockTxCounts": s.block_tx_counts,
            });
            match s.derive(SPAN_BLOCK_TIME, SPAN_GENESIS_TIME, chain_id) {
                Ok(d) => v["txHashes"] = hashes(d.blocks.iter().flat_map(|b| &b.transactions)),
                Err(e) => v["txError"] = e.to_string().into(),
            }
            v
        }
    }
}

/// `decode batcher-tx`: the frames of batcher transaction data, grouped into channels; the
/// complete ones are decoded as `decode channel` does.
pub fn batcher_tx_json(data: &[u8], opts: &ChannelOptions) -> Result<Value, DecodeError> {
    let frames = Frame::parse_all(data).map_err(DecodeError::Frames)?;
    let frames_out: Vec<Value> = frames.iter().map(frame_json).collect();
    // Channels in the order of their first frame; rejected frames are reported per channel.
    let mut channels: Vec<(Channel, Vec<String>)> = Vec::new();
    for f in frames {
        let at = match channels.iter().position(|(c, _)| c.id() == f.channel_id) {
            Some(i) => i,
            None => {
                channels.push((new_channel(f.channel_id), Vec::new()));
                channels.len() - 1
            }
        };
        let Some((ch, rejected)) = channels.get_mut(at) else {
            continue;
        };
        let number = f.number;
        if let Err(e) = ch.add_frame(f, L1BlockRef::default()) {
            rejected.push(format!("frame {number}: {e}"));
        }
    }
    let channels_out: Vec<Value> = channels
        .iter()
        .map(|(ch, rejected)| {
            let mut m = Map::new();
            m.insert("channelId".into(), to_hex_prefixed(&ch.id()).into());
            let bytes = ch.reader_bytes();
            m.insert("complete".into(), bytes.is_some().into());
            if !rejected.is_empty() {
                m.insert("rejectedFrames".into(), rejected.clone().into());
            }
            if let Some(bytes) = bytes {
                match channel_fields(&bytes, opts) {
                    Ok(fields) => m.extend(fields),
                    Err(e) => {
                        m.insert("error".into(), e.to_string().into());
                    }
                }
            }
            Value::Object(m)
        })
        .collect();
    Ok(json!({ "frames": frames_out, "channels": channels_out }))
}

fn new_channel(id: ChannelId) -> Channel {
    Channel::new(id, L1BlockRef::default(), false)
}

/// `decode l1-block`: the transactions of an L1 block (RPC JSON) sent to `inbox`, with their
/// senders, whether that is `batcher`, and their frames (blob transactions: their blob hashes).
pub fn l1_block_json(text: &[u8], inbox: Address, batcher: Address) -> Result<Value, DecodeError> {
    let v: Value = serde_json::from_slice(text).map_err(|e| DecodeError::Json(e.to_string()))?;
    if let Some(e) = v.get("error") {
        return Err(DecodeError::Json(format!("JSON-RPC error {e}")));
    }
    let block = v.get("result").unwrap_or(&v);
    let txs = block
        .get("transactions")
        .and_then(Value::as_array)
        .ok_or_else(|| DecodeError::Json("no transactions array".into()))?;
    let mut out = Vec::new();
    for (index, t) in txs.iter().enumerate() {
        if !t.is_object() {
            return Err(DecodeError::Json(
                "transactions are not objects; fetch the block with eth_getBlockByNumber(n, true)".into(),
            ));
        }
        let to = t.get("to").and_then(Value::as_str);
        if to.and_then(|a| a.parse::<Address>().ok()) != Some(inbox) {
            continue;
        }
        let tx_err = |msg: String| DecodeError::Tx { index, msg };
        let rpc: RpcTransaction = serde_json::from_value(t.clone()).map_err(|e| tx_err(e.to_string()))?;
        let tx = rpc.to_transaction().map_err(|e| tx_err(e.to_string()))?;
        let hash = tx.hash();
        if let Some(rpc) = rpc.hash.filter(|h| *h != hash) {
            return Err(DecodeError::HashMismatch { index, rpc, rebuilt: hash });
        }
        let sender = tx.sender().map_err(|e| tx_err(e.to_string()))?;
        let mut o = json!({
            "hash": hash,
            "index": index,
            "sender": sender,
            "authorized": sender == batcher,
        });
        if !tx.blob_versioned_hashes().is_empty() {
            o["blobVersionedHashes"] = json!(tx.blob_versioned_hashes());
        } else {
            match Frame::parse_all(tx.input()) {
                Ok(frames) => o["frames"] = frames.iter().map(frame_json).collect(),
                Err(e) => o["frameError"] = e.to_string().into(),
            }
        }
        out.push(o);
    }
    Ok(Value::Array(out))
}

/// `decode blob`: the data an OP blob carries.
pub fn blob_json(data: &[u8]) -> Result<Value, DecodeError> {
    let data = blob::decode_blob(data).map_err(DecodeError::Blob)?;
    Ok(json!({ "data": to_hex_prefixed(&data) }))
}

/// `decode gossip`: the signer and block of a gossip block message, snappy-compressed (as on
/// the wire) or already decompressed.
pub fn gossip_json(data: &[u8], chain_id: u64, version: BlockVersion) -> Result<Value, DecodeError> {
    let snappy = gossip::decompress(data).is_ok();
    let block = SignedBlock::decode(data, version)
        .or_else(|wire_err| {
            let plain = gossip::compress(data).and_then(|c| SignedBlock::decode(&c, version));
            plain.map_err(|plain_err| if snappy { wire_err } else { plain_err })
        })
        .map_err(DecodeError::Gossip)?;
    let signer = block.signer(chain_id).map_err(DecodeError::Gossip)?;
    let p = &block.envelope.execution_payload;
    Ok(json!({
        "signer": signer,
        "blockNumber": p.block_number,
        "blockHash": p.block_hash,
        "blockHashValid": block.envelope.check_block_hash().is_ok(),
        "parentHash": p.parent_hash,
        "timestamp": p.timestamp,
        "txCount": p.transactions.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::SingularBatch;
    use crate::protocol::frame::batcher_tx_data;
    use crate::protocol::header::Header;
    use crate::protocol::payload::ExecutionPayloadEnvelope;
    use crate::rng::Rng;
    use miniz_oxide::deflate::compress_to_vec_zlib;

    const ID: ChannelId = [7; 16];

    fn batch(ts: u64, txs: &[&[u8]]) -> BatchData {
        BatchData::Singular(SingularBatch {
            parent_hash: B256([1; 32]),
            epoch_num: 100,
            epoch_hash: B256([2; 32]),
            timestamp: ts,
            transactions: txs.iter().map(|t| Bytes(t.to_vec())).collect(),
        })
    }

    fn channel_items(batches: &[BatchData]) -> Vec<u8> {
        let mut out = Vec::new();
        for b in batches {
            b.encode_rlp(&mut out);
        }
        out
    }

    /// A zlib channel of two singular batches, cut into three frames.
    fn sample_frames() -> Vec<Frame> {
        let items = channel_items(&[batch(10, &[b"\x02tx-a", b"\x02tx-b"]), batch(12, &[])]);
        let z = compress_to_vec_zlib(&items, 6);
        let cut = [0, z.len() / 3, 2 * z.len() / 3, z.len()];
        (0..3)
            .map(|i| Frame {
                channel_id: ID,
                number: i as u16,
                data: z[cut[i]..cut[i + 1]].to_vec().into(),
                is_last: i == 2,
            })
            .collect()
    }

    fn opts() -> ChannelOptions {
        ChannelOptions::default()
    }

    #[test]
    fn input_is_hex_text_or_raw_bytes() {
        assert_eq!(hex_or_raw(b"0x00ff\n").unwrap(), [0, 0xff]);
        assert_eq!(hex_or_raw(b" 00 ff\r\n0A\n").unwrap(), [0, 0xff, 0x0a]);
        assert_eq!(hex_or_raw(b"0X").unwrap(), Vec::<u8>::new());
        assert_eq!(hex_or_raw(&[0, 1, 0xff]).unwrap(), [0, 1, 0xff]);
        assert_eq!(hex_or_raw(b"hello").unwrap(), b"hello");
        assert_eq!(hex_or_raw(b"0xabc"), Err(DecodeError::Hex(HexError::OddLength)));
        assert!(matches!(hex_or_raw(b"0xzz"), Err(DecodeError::Hex(_))));
        assert_eq!(hex_or_raw(b"abc"), Err(DecodeError::Hex(HexError::OddLength)));
    }

    #[test]
    fn batcher_tx_groups_frames_into_channels() {
        let frames = sample_frames();
        let v = batcher_tx_json(&batcher_tx_data(&frames), &opts()).unwrap();
        assert_eq!(v["frames"].as_array().unwrap().len(), 3);
        assert_eq!(v["frames"][2]["isLast"], true);
        assert_eq!(v["frames"][1]["dataLength"], frames[1].data.len());
        let ch = &v["channels"][0];
        assert_eq!(ch["channelId"], to_hex_prefixed(&ID));
        assert_eq!((&ch["complete"], &ch["compression"]), (&json!(true), &json!("zlib")));
        assert_eq!(ch["streamEnd"], "complete");
        let b = &ch["batches"];
        assert_eq!(b.as_array().unwrap().len(), 2);
        assert_eq!(b[0]["type"], "singular");
        assert_eq!(b[0]["timestamp"], 10);
        assert_eq!(b[0]["txHashes"][1], keccak256(b"\x02tx-b").to_string());
        assert_eq!(b[1]["txHashes"], json!([]));
        assert_eq!(v["channels"].as_array().unwrap().len(), 1);

        // Out of order is fine; a duplicate is reported; a missing frame leaves it incomplete.
        let (f0, f1, f2) = (frames[0].clone(), frames[1].clone(), frames[2].clone());
        let v = batcher_tx_json(&batcher_tx_data(&[f2.clone(), f0, f1.clone(), f1]), &opts()).unwrap();
        assert_eq!(v["channels"][0]["complete"], true);
        assert_eq!(v["channels"][0]["rejectedFrames"], json!(["frame 1: duplicate frame 1"]));
        let other = Frame { channel_id: [8; 16], ..frames[0].clone() };
        let v = batcher_tx_json(&batcher_tx_data(&[f2, other]), &opts()).unwrap();
        let chs = v["channels"].as_array().unwrap();
        assert_eq!(chs.len(), 2);
        assert_eq!(chs[0], json!({"channelId": to_hex_prefixed(&ID), "complete": false}));
        assert_eq!(frames_json(&batcher_tx_data(&frames)).unwrap(), v_frames(&frames));
    }

    fn v_frames(frames: &[Frame]) -> Value {
        Value::Array(frames.iter().map(frame_json).collect())
    }

    #[test]
    fn channels_keep_batches_before_a_bad_item() {
        let mut items = channel_items(&[batch(10, &[b"x"])]);
        crate::protocol::rlp::put_bytes(&mut items, &[9, 9]);
        let v = channel_json(&compress_to_vec_zlib(&items, 1), &opts()).unwrap();
        assert_eq!(v["batches"].as_array().unwrap().len(), 1);
        assert_eq!(v["batchError"], "batch: unknown batch type 9");
        // Nothing decodable is an error, and so is an unknown compression byte.
        let only_bad = &items[items.len() - 3..];
        assert!(matches!(
            channel_json(&compress_to_vec_zlib(only_bad, 1), &opts()),
            Err(DecodeError::Channel(ChannelError::Batch(_)))
        ));
        assert_eq!(
            channel_json(&compress_to_vec_zlib(&[], 1), &opts()),
            Err(DecodeError::NoBatches { decompressed: 0, end: StreamEnd::Complete })
        );
        assert_eq!(
            channel_json(&[2, 0], &opts()),
            Err(DecodeError::Channel(ChannelError::UnknownCompression(2)))
        );
    }

    #[test]
    fn brotli_channels_and_the_rlp_limit() {
        let items = channel_items(&[batch(10, &[&b"x"[..]; 40])]);
        let mut data = vec![1u8];
        let params = brotli::enc::BrotliEncoderParams::default();
        brotli::BrotliCompress(&mut &items[..], &mut data, &params).unwrap();
        let v = channel_json(&data, &opts()).unwrap();
        assert_eq!(v["compression"], "brotli");
        assert_eq!(v["decompressedLength"], items.len());
        let limited = ChannelOptions { max_rlp_bytes: 20, ..opts() };
        assert!(matches!(channel_json(&data, &limited), Err(DecodeError::Channel(ChannelError::Rlp(_)))));
    }

    #[test]
    fn blobs_round_trip() {
        let blob = blob::encode_blob(b"op-lite").unwrap();
        assert_eq!(blob_json(&blob).unwrap(), json!({"data": "0x6f702d6c697465"}));
        assert_eq!(blob_json(&blob[1..]), Err(DecodeError::Blob(BlobError::WrongSize(blob.len() - 1))));
    }

    fn signed_message() -> (Vec<u8>, Address) {
        let key = k256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap();
        let header = Header {
            number: 77,
            timestamp: 1_700_000_000,
            parent_beacon_block_root: Some(B256([5; 32])),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
            base_fee_per_gas: Some(7),
            ..Header::default()
        };
        let mut env =
            ExecutionPayloadEnvelope::from_block(&header, vec![Bytes(b"\x02tx".to_vec())], Some(vec![]));
        env.execution_payload.block_hash = env.compute_block_hash().unwrap();
        let block = SignedBlock::sign(env, BlockVersion::V3, 901, &key).unwrap();
        let signer = crate::protocol::tx::address_of(key.verifying_key());
        (block.encode(BlockVersion::V3).unwrap(), signer)
    }

    #[test]
    fn gossip_messages_compressed_or_not() {
        let (wire, signer) = signed_message();
        let plain = gossip::decompress(&wire).unwrap();
        for data in [&wire, &plain] {
            let v = gossip_json(data, 901, BlockVersion::V3).unwrap();
            assert_eq!(v["signer"], signer.to_string());
            assert_eq!((&v["blockNumber"], &v["txCount"]), (&json!(77), &json!(1)));
            assert_eq!(v["blockHashValid"], true);
        }
        let other_chain = gossip_json(&wire, 10, BlockVersion::V3).unwrap();
        assert_ne!(other_chain["signer"], signer.to_string());
        assert!(gossip_json(&wire, 901, BlockVersion::V2).is_err());
        assert_eq!(parse_version("v3", 1), Some(BlockVersion::V3));
        assert_eq!(parse_version("/optimism/5/3/blocks", 5), Some(BlockVersion::V4));
        assert_eq!(parse_version("5", 1), None);
    }

    #[test]
    fn l1_blocks_need_full_transactions() {
        let (inbox, batcher) = (Address([0xff; 20]), Address([1; 20]));
        let hashes_only = br#"{"result": {"transactions": ["0x00"]}}"#;
        assert!(matches!(l1_block_json(hashes_only, inbox, batcher), Err(DecodeError::Json(_))));
        let none = br#"{"transactions": [{"to": "0x0000000000000000000000000000000000000001"}]}"#;
        assert_eq!(l1_block_json(none, inbox, batcher).unwrap(), json!([]));
        let bad = format!(r#"{{"transactions": [{{"to": "{inbox}", "type": "0x2"}}]}}"#);
        assert!(matches!(
            l1_block_json(bad.as_bytes(), inbox, batcher),
            Err(DecodeError::Tx { index: 0, .. })
        ));
        assert!(matches!(
            l1_block_json(br#"{"error": {"code": -1}}"#, inbox, batcher),
            Err(DecodeError::Json(_))
        ));
    }

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn usage_errors() {
        for a in [
            &[][..],
            &["nope", "f"],
            &["frames"],
            &["frames", "a", "b"],
            &["frames", "--chain-id", "1", "f"],
            &["channel", "--chain-id", "x", "f"],
            &["gossip", "--topic-version", "3", "f"],
            &["gossip", "--chain-id", "1", "--topic-version", "9", "f"],
            &["l1-block", "f"],
            &["l1-block", "--network", "atlantis", "f"],
            &["l1-block", "--network", "op-mainnet", "--batcher", "0x12", "f"],
        ] {
            let e = run(args(a)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{a:?}: {e}");
        }
        let e = run(args(&["frames", "/nonexistent/op-lite-decode"])).unwrap_err();
        assert!(matches!(e, DecodeError::Read { .. }), "{e}");
        assert_eq!(e.exit_code(), 1);
    }

    /// Every prefix of the sample batcher data and channel, and random bytes, through every
    /// decoder: errors, never a panic.
    #[test]
    fn truncated_and_random_inputs_never_panic() {
        let frames = sample_frames();
        let data = batcher_tx_data(&frames);
        let channel: Vec<u8> = frames.iter().flat_map(|f| f.data.iter().copied()).collect();
        for n in 0..data.len() {
            let _ = frames_json(&data[..n]);
            let _ = batcher_tx_json(&data[..n], &opts());
        }
        for n in 0..channel.len() {
            let _ = channel_json(&channel[..n], &opts());
        }
        let (wire, _) = signed_message();
        let plain = gossip::decompress(&wire).unwrap();
        for n in 0..plain.len() {
            assert!(gossip_json(&plain[..n], 901, BlockVersion::V3).is_err());
        }
        let mut rng = Rng::new(0xdec0de);
        let (inbox, batcher) = (Address([0xff; 20]), Address([1; 20]));
        for i in 0..3000 {
            let mut buf = vec![0u8; rng.below(600) as usize];
            rng.fill(&mut buf);
            // Steer some inputs past the first checks: version 0, a zlib header, brotli.
            match i % 4 {
                1 => buf.insert(0, 0),
                2 => buf.splice(0..0, [0x78, 0x9c]).for_each(drop),
                3 => buf.insert(0, 1),
                _ => {}
            }
            let _ = hex_or_raw(&buf);
            let _ = frames_json(&buf);
            let _ = batcher_tx_json(&buf, &opts());
            let _ = channel_json(&buf, &opts());
            let _ = gossip_json(&buf, 10, BlockVersion::V3);
            let _ = l1_block_json(&buf, inbox, batcher);
            assert!(blob_json(&buf).is_err());
        }
        let mut blob = vec![0u8; blob::BLOB_SIZE];
        for _ in 0..20 {
            rng.fill(&mut blob);
            assert!(blob_json(&blob).is_err());
        }
    }
}
