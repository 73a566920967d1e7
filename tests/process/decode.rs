//! `op-lite decode` run as a binary on the shared fixtures: real batcher transactions, channels
//! (zlib and brotli), span and singular batches, OP blobs, gossip blocks and L1 blocks, plus
//! its error handling and exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use op_lite::config::networks;
use op_lite::protocol::batch::BatchData;
use op_lite::protocol::gossip::{self, BlockVersion, SignedBlock};
use op_lite::protocol::header::Header;
use op_lite::protocol::payload::{ExecutionPayloadEnvelope, PayloadAttributes};
use op_lite::protocol::primitives::{from_hex, keccak256, to_hex, B256};
use op_lite::protocol::rlp::Rlp;
use op_lite::protocol::tx::{address_of, Transaction};

use crate::support::{bin, fixtures, read_json};

/// The result of one run: exit code, stdout parsed as JSON (`Null` if it is not), stderr.
struct Run {
    code: i32,
    out: Value,
    err: String,
}

fn decode(args: &[&str]) -> Run {
    let o = Command::new(bin()).arg("decode").args(args).output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        out: serde_json::from_slice(&o.stdout).unwrap_or(Value::Null),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Runs a decode that must succeed and returns its JSON.
fn ok(args: &[&str]) -> Value {
    let r = decode(args);
    assert_eq!(r.code, 0, "{args:?}: {}", r.err);
    r.out
}

/// Runs a decode that must fail with `code` and a one-line error.
fn fails(args: &[&str], code: i32) -> String {
    let r = decode(args);
    assert_eq!(r.code, code, "{args:?}: {}", r.err);
    assert_eq!(r.out, Value::Null, "{args:?}");
    assert_eq!(r.err.trim_end().lines().count(), 1, "{args:?}: {}", r.err);
    r.err
}

/// A scratch directory for input files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("op-lite-decode-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    }

    /// Writes `bytes` as hex text in lines of 64 digits (0x-prefixed), as a user might paste it.
    fn hex_file(&self, name: &str, bytes: &[u8]) -> String {
        let hex = to_hex(bytes);
        let lines: Vec<&str> = hex.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        self.file(name, format!("0x{}\n", lines.join("\n")))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn hex(v: &Value) -> Vec<u8> {
    from_hex(v.as_str().unwrap()).unwrap()
}

fn frames_as_printed(expected: &Value) -> Value {
    expected
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            json!({
                "channelId": f["channel_id"],
                "frameNumber": f["frame_number"],
                "dataLength": f["frame_data_len"],
                "isLast": f["is_last"],
            })
        })
        .collect()
}

/// Checks a printed span batch against a curator's `span_batch` object.
fn check_span(got: &Value, exp: &Value) {
    assert_eq!(got["type"], "span");
    for (g, e) in [
        ("relTimestamp", "rel_timestamp"),
        ("l1OriginNum", "l1_origin_num"),
        ("parentCheck", "parent_check"),
        ("l1OriginCheck", "l1_origin_check"),
        ("blockCount", "block_count"),
        ("originBits", "origin_bits"),
        ("blockTxCounts", "block_tx_counts"),
    ] {
        assert_eq!(got[g], exp[e], "{g}");
    }
    let hashes: Vec<Value> = exp["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["tx_hashes"].as_array().unwrap().clone())
        .collect();
    assert_eq!(hashes.len() as u64, exp["total_txs"].as_u64().unwrap());
    assert_eq!(got["txHashes"], Value::Array(hashes));
}

/// The channel object of `batcher-tx` is `decode channel`'s output plus id and completeness.
fn channel_part(ch: &Value) -> Value {
    let mut m = ch.as_object().unwrap().clone();
    assert_eq!(m.remove("complete"), Some(json!(true)));
    m.remove("channelId");
    Value::Object(m)
}

#[test]
fn op_mainnet_batcher_tx_e69d9433() {
    let Some(fx) = fixtures() else { return };
    let dir = fx.join("batch-channel-frame/kona");
    let exp = json_file(&dir.join("op-mainnet-batcher-tx-e69d9433.expected.json"));
    let raw_tx = std::fs::read(dir.join("op-mainnet-batcher-tx-e69d9433.rlp.bin")).unwrap();
    let tx = Transaction::decode(&raw_tx).unwrap();
    let s = Scratch::new("e69d9433");
    let calldata_raw = s.file("calldata.bin", tx.input());
    let calldata_hex = s.hex_file("calldata.hex", tx.input());

    let frames = ok(&["frames", &calldata_raw]);
    assert_eq!(frames, frames_as_printed(&exp["frames"]));
    assert_eq!(ok(&["frames", &calldata_hex]), frames);

    let frame_data = op_lite::protocol::frame::Frame::parse_all(tx.input()).unwrap()[0].data.clone();
    let channel = ok(&["channel", &s.file("channel.bin", &frame_data)]);
    let c = &exp["channel"];
    assert_eq!(channel["compression"], "zlib");
    assert_eq!(channel["decompressedLength"], c["decompressed_len"]);
    assert_eq!(channel["streamEnd"], "unterminated");
    assert_eq!(channel["batches"].as_array().unwrap().len(), 1);
    check_span(&channel["batches"][0], &exp["span_batch"]);
    assert_eq!(channel.get("batchError"), None);

    let btx = ok(&["batcher-tx", "--chain-id", "10", &calldata_hex]);
    assert_eq!(btx["frames"], frames);
    assert_eq!(btx["channels"].as_array().unwrap().len(), 1);
    assert_eq!(btx["channels"][0]["channelId"], exp["frames"][0]["channel_id"]);
    assert_eq!(channel_part(&btx["channels"][0]), channel);

    // Another chain id changes the legacy transactions' hashes (EIP-155), not the typed ones'.
    let other = ok(&["channel", "--chain-id", "11155420", &s.file("c2.bin", &frame_data)]);
    assert_ne!(other["batches"][0]["txHashes"], channel["batches"][0]["txHashes"]);
    // A limit below the data keeps what fits; the 27-block batch no longer does.
    let limited = decode(&["channel", "--max-rlp-bytes", "1000", &s.file("c3.bin", &frame_data)]);
    assert_eq!(limited.code, 1, "{}", limited.err);
}

#[test]
fn op_sepolia_span_batch_frame() {
    let Some(fx) = fixtures() else { return };
    let dir = fx.join("batch-channel-frame/magi");
    let exp = json_file(&dir.join("op-sepolia-span-batch-frame.expected.json"));
    let file = dir.join("op-sepolia-span-batch-frame.hex");
    let v = ok(&["batcher-tx", "--chain-id", "11155420", path(&file)]);
    assert_eq!(v["frames"], frames_as_printed(&exp["frames"]));
    let ch = &v["channels"][0];
    assert_eq!(ch["complete"], true);
    assert_eq!(ch["decompressedLength"], exp["channel"]["decompressed_len"]);
    assert_eq!(ch["streamEnd"], "unterminated");
    check_span(&ch["batches"][0], &exp["span_batch"]);
}

#[test]
fn goerli_singular_batches() {
    let Some(fx) = fixtures() else { return };
    let dir = fx.join("batch-channel-frame/magi");
    let exp = json_file(&dir.join("goerli-singular-batches-frame.expected.json"));
    let v = ok(&["batcher-tx", path(&dir.join("goerli-singular-batches-frame.hex"))]);
    assert_eq!(v["frames"], frames_as_printed(&exp["frames"]));
    let ch = &v["channels"][0];
    assert_eq!(ch["streamEnd"], "complete");
    assert_eq!(ch["decompressedLength"], exp["channel"]["decompressed_len"]);
    let expected: Vec<Value> = exp["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            json!({
                "type": "singular",
                "parentHash": b["parent_hash"],
                "epochNum": b["epoch_num"],
                "epochHash": b["epoch_hash"],
                "timestamp": b["timestamp"],
                "txHashes": b["tx_hashes"],
            })
        })
        .collect();
    assert_eq!(expected.len(), 6);
    assert_eq!(ch["batches"], Value::Array(expected));
}

#[test]
fn brotli_channels() {
    let Some(fx) = fixtures() else { return };
    let exp = json_file(&fx.join("batch-channel-frame/compression/kona-brotli-vectors.json"));
    let s = Scratch::new("brotli");
    for v in exp["vectors"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let mut channel = vec![1u8];
        channel.extend(hex(&v["brotli_compressed"]));
        let file = s.hex_file(name, &channel);
        let plain = hex(&v["decompressed"]);
        if name == "small" {
            // Ten random bytes decompress fine but hold no batch.
            fails(&["channel", &file], 1);
            continue;
        }
        let got = ok(&["channel", &file]);
        assert_eq!(got["compression"], "brotli");
        assert_eq!(got["decompressedLength"], plain.len());
        assert_eq!(got["streamEnd"], "complete");
        let item = Rlp::new(&plain).next_bytes().unwrap();
        let BatchData::Singular(b) = BatchData::decode(item).unwrap() else {
            panic!("expected a singular batch")
        };
        let hashes: Vec<String> = b.transactions.iter().map(|t| keccak256(t).to_string()).collect();
        assert_eq!(
            got["batches"],
            json!([{
                "type": "singular",
                "parentHash": b.parent_hash,
                "epochNum": b.epoch_num,
                "epochHash": b.epoch_hash,
                "timestamp": b.timestamp,
                "txHashes": hashes,
            }])
        );
    }
}

#[test]
fn op_node_force_close_frames() {
    let Some(fx) = fixtures() else { return };
    let exp = json_file(&fx.join("batch-channel-frame/frames/op-node-force-close-frames.json"));
    let s = Scratch::new("force-close");
    let mut checked = 0;
    for (i, v) in exp["vectors"].as_array().unwrap().iter().enumerate() {
        let Some(calldata) = v["output_calldata"].as_str() else {
            continue;
        };
        let file = s.file(&format!("v{i}"), calldata);
        let want = frames_as_printed(&v["parsed_frames_by_curator"]);
        if want == json!([]) {
            assert!(fails(&["frames", &file], 1).contains("no frames"));
        } else {
            assert_eq!(ok(&["frames", &file]), want, "vector {i}");
            let btx = ok(&["batcher-tx", &file]);
            // Empty frames make no decodable channel: reported per channel, not fatal.
            for ch in btx["channels"].as_array().unwrap() {
                assert!(ch["complete"] == false || ch.get("error").is_some(), "{ch}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 5);
}

#[test]
fn op_blobs() {
    let Some(fx) = fixtures() else { return };
    let dir = fx.join("protocol-vectors/blobs");
    let vectors = json_file(&dir.join("blob-vectors.json"));
    let s = Scratch::new("blobs");
    for v in vectors["vectors"].as_array().unwrap() {
        let file = dir.join(v["file"].as_str().unwrap());
        let expected = match v.get("expected_decoded_hex") {
            Some(h) => h.as_str().unwrap().to_string(),
            None => {
                let f = dir.join(v["expected_decoded_file"].as_str().unwrap());
                std::fs::read_to_string(f).unwrap().trim().to_string()
            }
        };
        let got = ok(&["blob", path(&file)]);
        assert_eq!(got, json!({ "data": expected }), "{}", file.display());
        if v["synthetic"] == false {
            // The same blob as raw bytes.
            let raw = from_hex(std::fs::read_to_string(&file).unwrap().trim()).unwrap();
            assert_eq!(ok(&["blob", &s.file("blob9.bin", &raw)]), got);
            // The data is calldata-format batcher data: frames decode from it.
            let data = s.file("blob9-data.hex", expected.as_bytes());
            let frames = ok(&["frames", &data]);
            assert_eq!(frames[0]["channelId"], "0x2f127415c9cb64ca077f23db3cfa302e");
            let btx = ok(&["batcher-tx", "--chain-id", "11155420", &data]);
            let span = &btx["channels"][0]["batches"][0];
            let d = &v["decoded_content_by_curator"];
            assert_eq!(span["parentCheck"], d["parent_check"]);
            assert_eq!(span["l1OriginCheck"], d["l1_origin_check"]);
            assert_eq!((&span["blockCount"], &span["l1OriginNum"]), (&json!(22), &json!(5335447)));
            assert_eq!(span["txHashes"].as_array().unwrap().len(), 20);
        }
    }
    // Real Goerli beacon blobs are not OP blobs.
    let beacon = read_json(&dir.join(vectors["beacon_api_sidecars"]["file"].as_str().unwrap()));
    for sidecar in beacon["data"].as_array().unwrap() {
        let file = s.file("goerli.hex", sidecar["blob"].as_str().unwrap());
        assert!(fails(&["blob", &file], 1).contains("not an OP blob"));
    }
}

/// The first real L2 block whose header (the next fixture's parent header) and transactions
/// (its own attributes) are both in the fixtures, with its expected hash.
fn real_l2_block(fx: &Path) -> (ExecutionPayloadEnvelope, B256) {
    let dir = fx.join("l2-block-fixtures/kona-executor");
    let load = |n: u64| {
        let p = dir.join(format!("block-{n}.fixture.json"));
        p.exists().then(|| json_file(&p))
    };
    let n = 26_207_960;
    let (this, next) = (load(n).unwrap(), load(n + 1).unwrap());
    let header: Header = serde_json::from_value(next["parent_header"].clone()).unwrap();
    let attrs: PayloadAttributes = serde_json::from_value(this["executing_payload"].clone()).unwrap();
    let env = ExecutionPayloadEnvelope::from_block(&header, attrs.transactions, Some(vec![]));
    let hash = this["expected_block_hash"].as_str().unwrap().parse().unwrap();
    (env, hash)
}

#[test]
fn gossip_blocks() {
    let Some(fx) = fixtures() else { return };
    let s = Scratch::new("gossip");
    let vectors = json_file(&fx.join("protocol-vectors/p2p-gossip/gossip-vectors.json"));
    let real = &vectors["real_signed_message"];
    let real_file = fx.join("protocol-vectors/p2p-gossip").join(real["file"].as_str().unwrap());
    if real_file.exists() {
        let cur = &real["verified_by_curator"];
        let p = &cur["payload"];
        let got = ok(&["gossip", "--chain-id", "11155420", "--topic-version", "3", path(&real_file)]);
        assert_eq!(got["signer"], cur["recovered_signer"]);
        assert_eq!(got["blockNumber"], p["block_number"]);
        assert_eq!(got["blockHash"], p["block_hash"]);
        assert_eq!(got["blockHashValid"], true);
        assert_eq!(got["txCount"], p["tx_count"]);
    } else {
        eprintln!("{} not present: using a real block signed here", real_file.display());
    }

    // A real OP Sepolia block, signed with a test key.
    let (env, hash) = real_l2_block(&fx);
    let key = k256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    let signer = address_of(key.verifying_key());
    let chain = 11_155_420;
    let block = SignedBlock::sign(env.clone(), BlockVersion::V3, chain, &key).unwrap();
    let wire = block.encode(BlockVersion::V3).unwrap();
    let plain = gossip::decompress(&wire).unwrap();
    let p = &env.execution_payload;
    let expected = json!({
        "signer": signer,
        "blockNumber": p.block_number,
        "blockHash": hash,
        "blockHashValid": true,
        "parentHash": p.parent_hash,
        "timestamp": p.timestamp,
        "txCount": p.transactions.len(),
    });
    let topic = BlockVersion::V3.topic(chain);
    for (file, version) in [
        (s.hex_file("wire.hex", &wire), "3"),
        (s.file("wire.bin", &wire), "v3"),
        (s.file("plain.bin", &plain), topic.as_str()),
    ] {
        let got = ok(&["gossip", "--chain-id", "11155420", "--topic-version", version, &file]);
        assert_eq!(got, expected, "{file}");
    }
    let wire_file = s.file("wire2.bin", &wire);
    let other = ok(&["gossip", "--chain-id", "10", "--topic-version", "3", &wire_file]);
    assert_ne!(other["signer"], expected["signer"]);
    assert!(fails(&["gossip", "--chain-id", "11155420", "--topic-version", "1", &wire_file], 1)
        .contains("not a gossip block message"));

    // A signed block whose claimed hash is wrong: the signer still recovers, the hash fails.
    let mut bad = env;
    bad.execution_payload.block_hash = B256([0xab; 32]);
    let bad = SignedBlock::sign(bad, BlockVersion::V3, chain, &key).unwrap();
    let file = s.file("bad.bin", bad.encode(BlockVersion::V3).unwrap());
    let got = ok(&["gossip", "--chain-id", "11155420", "--topic-version", "3", &file]);
    assert_eq!((&got["signer"], &got["blockHashValid"]), (&expected["signer"], &json!(false)));
}

/// An `eth_getBlockByNumber(n, true)` result from the zeth cache, as a JSON-RPC response.
fn l1_block_response(fx: &Path, n: u64) -> Value {
    let cache = fx.join(format!(
        "derivation-e2e/op-mainnet-bedrock-l1-18090205-18090218/zeth-rpc-cache/ethereum/{n}.json.gz"
    ));
    let v = read_json(&cache);
    let block = v["full_blocks"][0][1].clone();
    assert_eq!(v["full_blocks"][0][0]["block_no"], n);
    json!({ "jsonrpc": "2.0", "id": 1, "result": block })
}

#[test]
fn l1_blocks_batcher_transactions() {
    let Some(fx) = fixtures() else { return };
    let fixture = read_json(&fx.join("derivation-e2e/op-mainnet-bedrock-l1-18090205-18090218/fixture.json"));
    let expected = fixture["expected"]["batcherTransactions"].as_array().unwrap();
    assert_eq!(expected.len(), 2);
    let s = Scratch::new("l1-block");
    let mut base_txs = 0;
    for e in expected {
        let n = e["l1Block"].as_u64().unwrap();
        let response = l1_block_response(&fx, n);
        let file = s.file(&format!("{n}.json"), response.to_string());
        let got = ok(&["l1-block", "--network", "op-mainnet", &file]);
        let want = json!([{
            "hash": e["txHash"],
            "index": e["txIndex"],
            "sender": e["from"],
            "authorized": true,
            "frames": [{
                "channelId": e["channelId"],
                "frameNumber": e["frameNumber"],
                "dataLength": e["frameDataLen"],
                "isLast": e["isLast"],
            }],
        }]);
        assert_eq!(got, want, "L1 block {n}");
        // The bare result works too; another batcher makes the transaction unauthorized.
        let bare = s.file(&format!("{n}-bare.json"), response["result"].to_string());
        assert_eq!(ok(&["l1-block", "--network", "op-mainnet", &bare]), got);
        let other = "0x0000000000000000000000000000000000000001";
        let got = ok(&["l1-block", "--network", "op-mainnet", "--batcher", other, &file]);
        assert_eq!(got[0]["authorized"], false);
        // Base Mainnet's inbox has its own batcher transactions in these blocks (L1 18090208:
        // index 112), each hash checked against the RPC's and each from Base's batcher.
        let base = ok(&["l1-block", "--network", "base-mainnet", &file]);
        let base_batcher = networks::base_mainnet().rollup.genesis.system_config.batcher_addr;
        for t in base.as_array().unwrap() {
            assert_ne!(t["hash"], e["txHash"]);
            assert_eq!(t["sender"], json!(base_batcher));
            assert_eq!(t["authorized"], true);
            assert_eq!(t["frames"].as_array().map(Vec::len), Some(1), "{t}");
            base_txs += 1;
        }
    }
    assert!(base_txs >= 1);
    let quiet = s.file("quiet.json", l1_block_response(&fx, 18_090_206).to_string());
    assert_eq!(ok(&["l1-block", "--network", "op-mainnet", &quiet]), json!([]));

    // The bonus Delta-era block: the batcher's span batch and someone else's inbox transaction.
    let bonus = fx.join("derivation-e2e/op-mainnet-delta-l1-19426586/l1-block-19426586.rpc.json");
    if bonus.exists() {
        let got = ok(&["l1-block", "--network", "op-mainnet", path(&bonus)]);
        let txs = got.as_array().unwrap();
        let by = |prefix: &str| txs.iter().find(|t| t["hash"].as_str().unwrap().starts_with(prefix)).unwrap();
        assert_eq!(by("0x05499f4c")["authorized"], true);
        assert_eq!(by("0x0eb1107c")["authorized"], false);
    }
}

#[test]
fn errors_and_help() {
    let s = Scratch::new("errors");
    let garbage = s.file("garbage", b"this is not a batcher transaction\n");
    let bad_hex = s.file("bad-hex", "0x12zz");
    let no_batch = s.hex_file("no-batch", &[0x78, 0x9c, 0x03, 0x00]);
    for args in [
        vec!["frames", &garbage],
        vec!["frames", &bad_hex],
        vec!["channel", &garbage],
        vec!["channel", &no_batch],
        vec!["batcher-tx", &garbage],
        vec!["blob", &garbage],
        vec!["gossip", "--chain-id", "10", "--topic-version", "3", &garbage],
        vec!["l1-block", "--network", "op-mainnet", &garbage],
        vec!["frames", "/nonexistent/op-lite"],
    ] {
        let err = fails(&args, 1);
        assert!(err.starts_with("op-lite decode: "), "{err}");
    }
    let empty = s.file("empty", b"");
    assert!(fails(&["frames", &empty], 1).contains("empty"));
    let big = s.file("big", b"");
    std::fs::File::options()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(op_lite::tools::decode::MAX_INPUT + 1)
        .unwrap();
    assert!(fails(&["blob", &big], 1).contains("64 MiB"));

    for args in [
        vec!["bogus", &garbage],
        vec![],
        vec!["frames"],
        vec!["frames", "--bogus", &garbage],
        vec!["gossip", "--topic-version", "3", &garbage],
        vec!["l1-block", "--network", "atlantis", &garbage],
    ] {
        fails(&args, 2);
    }

    let help = Command::new(bin()).args(["decode", "--help"]).output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for kind in ["frames", "channel", "batcher-tx", "l1-block", "blob", "gossip"] {
        assert!(text.contains(&format!("   {kind} ")), "help lacks {kind}: {text}");
    }
    let top = Command::new(bin()).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&top.stdout).contains("decode KIND FILE"));
}
