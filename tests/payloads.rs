//! Execution payloads, gossip block messages and blobs against the shared fixtures: real L2
//! blocks (headers, attributes, block hashes), Engine API examples, gossip vectors and OP blobs.

use std::collections::BTreeMap;
use std::path::Path;

use op_lite::protocol::header::Header;
use op_lite::protocol::payload::{ExecutionPayloadEnvelope, PayloadAttributes};
use op_lite::protocol::primitives::{keccak256, Bytes, B256};
use serde_json::Value;

use crate::support::fixtures;

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hash(v: &Value) -> B256 {
    v.as_str().unwrap().parse().unwrap()
}

/// The kona-executor fixtures by block number.
fn l2_blocks(fx: &Path) -> BTreeMap<u64, Value> {
    let dir = fx.join("l2-block-fixtures/kona-executor");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if let Some(n) = name
            .strip_prefix("block-")
            .and_then(|s| s.strip_suffix(".fixture.json"))
        {
            out.insert(n.parse().unwrap(), json(&path));
        }
    }
    out
}

#[test]
fn parent_headers_hash_to_the_previous_block() {
    let Some(fx) = fixtures() else { return };
    let blocks = l2_blocks(&fx);
    let summary = json(&fx.join("l2-block-fixtures/kona-executor/SUMMARY.json"));
    assert!(blocks.len() >= 19, "{} fixtures", blocks.len());
    let mut chained = 0;
    for (n, f) in &blocks {
        let parent: Header = serde_json::from_value(f["parent_header"].clone()).unwrap();
        assert_eq!(parent.number + 1, *n);
        let curated = summary["fixtures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["l2_block_number"] == *n)
            .unwrap();
        assert_eq!(
            parent.hash(),
            hash(&curated["parent_header_hash_by_curator"]),
            "{n}"
        );
        if let Some(prev) = blocks.get(&(n - 1)) {
            assert_eq!(parent.hash(), hash(&prev["expected_block_hash"]), "{n}");
            chained += 1;
        }
    }
    assert_eq!(chained, 4);
}

/// Blocks whose header is the next fixture's parent header and whose transactions are their own
/// attributes' transactions: a complete real payload.
fn full_blocks(fx: &Path) -> Vec<(u64, ExecutionPayloadEnvelope)> {
    let blocks = l2_blocks(fx);
    let mut out = Vec::new();
    for (n, f) in &blocks {
        let Some(next) = blocks.get(&(n + 1)) else {
            continue;
        };
        let header: Header = serde_json::from_value(next["parent_header"].clone()).unwrap();
        let attrs: PayloadAttributes =
            serde_json::from_value(f["executing_payload"].clone()).unwrap();
        let env = ExecutionPayloadEnvelope::from_block(&header, attrs.transactions, Some(vec![]));
        out.push((*n, env));
    }
    out
}

#[test]
fn real_payloads_hash_to_their_block_hash() {
    let Some(fx) = fixtures() else { return };
    let blocks = l2_blocks(&fx);
    let full = full_blocks(&fx);
    assert_eq!(full.len(), 4);
    for (n, env) in &full {
        let expected = hash(&blocks[n]["expected_block_hash"]);
        let header = env.header().unwrap();
        assert_eq!(env.execution_payload.block_hash, expected, "{n}");
        env.check_block_hash().unwrap();
        assert_eq!(env.compute_block_hash().unwrap(), expected, "{n}");
        // The transactions root is recomputed from the raw transactions, not copied.
        let next: Header =
            serde_json::from_value(blocks[&(n + 1)]["parent_header"].clone()).unwrap();
        assert_eq!(header.transactions_root, next.transactions_root, "{n}");

        // JSON round trip of the whole envelope, and a tampered payload fails the check.
        let text = serde_json::to_string(env).unwrap();
        let back: ExecutionPayloadEnvelope = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, env);
        let mut bad = env.clone();
        bad.execution_payload.transactions.pop();
        assert!(bad.check_block_hash().is_err());
    }
}

#[test]
fn real_attributes_round_trip_through_json() {
    let Some(fx) = fixtures() else { return };
    for (n, f) in l2_blocks(&fx) {
        let raw = &f["executing_payload"];
        let attrs: PayloadAttributes = serde_json::from_value(raw.clone()).unwrap();
        assert!(
            attrs.gas_limit.is_some() && attrs.eip1559_params.is_some(),
            "{n}"
        );
        assert!(
            attrs.parent_beacon_block_root.is_some() && !attrs.no_tx_pool,
            "{n}"
        );
        assert_eq!(attrs.transactions[0].first(), Some(&0x7e), "{n}");
        // kona's serialization omits noTxPool and withdrawals, as op-node does when unset.
        assert_eq!(&serde_json::to_value(&attrs).unwrap(), raw, "{n}");
        let ts = raw["timestamp"].as_str().unwrap();
        assert_eq!(attrs.timestamp, u64::from_str_radix(&ts[2..], 16).unwrap());
    }
}

#[test]
fn engine_api_examples() {
    let Some(fx) = fixtures() else { return };
    let ex = json(&fx.join("engine-api/engine-api-examples.json"));

    let params = &ex["real_captures"][0]["request_visible_part"]["params"];
    let mut fcu_attrs = params[1].clone();
    fcu_attrs.as_object_mut().unwrap().remove("...");
    let attrs: PayloadAttributes = serde_json::from_value(fcu_attrs.clone()).unwrap();
    assert_eq!(attrs.timestamp, 0x65a14b7f);
    assert_eq!(attrs.transactions.len(), 1);
    assert_eq!(attrs.withdrawals, None);
    assert_eq!(serde_json::to_value(&attrs).unwrap(), fcu_attrs);

    for v in ex["serde_examples_synthetic"].as_array().unwrap() {
        let attrs: PayloadAttributes = serde_json::from_value(v["attributes"].clone()).unwrap();
        assert_eq!(attrs.timestamp, 0x1337);
        assert!(attrs.no_tx_pool);
        assert_eq!(attrs.gas_limit, Some(42));
        assert_eq!(attrs.withdrawals, Some(vec![]));
        assert_eq!(attrs.transactions, vec![Bytes(b"hello".to_vec())]);
        let back = serde_json::to_value(&attrs).unwrap();
        // minBaseFee goes out as a JSON number (op-node's *uint64), the only field that differs
        // from the curator's hex rendering.
        let mut expected = v["attributes"].clone();
        if let Some(m) = attrs.min_base_fee {
            expected["minBaseFee"] = m.into();
        }
        assert_eq!(back, expected);
        assert_eq!(
            serde_json::from_value::<PayloadAttributes>(back).unwrap(),
            attrs
        );
    }

    for v in ex["payload_id_vectors"].as_array().unwrap() {
        let attrs: PayloadAttributes = serde_json::from_value(v["attributes"].clone()).unwrap();
        let parent = hash(&v["parent_block_hash"]);
        let version = v["payload_version"].as_u64().unwrap() as u8;
        let id = attrs.payload_id(&parent, version);
        assert_eq!(id.to_string(), v["expected_payload_id"].as_str().unwrap());
    }
}

#[test]
fn l1_info_transaction_hashes_match_the_summary() {
    let Some(fx) = fixtures() else { return };
    let summary = json(&fx.join("l2-block-fixtures/kona-executor/SUMMARY.json"));
    let blocks = l2_blocks(&fx);
    for s in summary["fixtures"].as_array().unwrap() {
        let Some(f) = blocks.get(&s["l2_block_number"].as_u64().unwrap()) else {
            continue;
        };
        let attrs: PayloadAttributes =
            serde_json::from_value(f["executing_payload"].clone()).unwrap();
        let hashes: Vec<B256> = attrs.transactions.iter().map(keccak256).collect();
        let expected: Vec<B256> = s["tx_hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(hash)
            .collect();
        assert_eq!(hashes, expected);
    }
}
