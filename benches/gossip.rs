//! Unsafe-block gossip throughput on real OP Sepolia blocks from the shared fixtures (signed
//! here with a test key), plus a heavier block made of their transactions repeated:
//! - `validate`: the block validator alone (snappy decode, keccak of the signed bytes,
//!   secp256k1 recovery, SSZ decode, block hash recomputation with the transaction trie);
//! - `receive`: the whole inbound path of a node, i.e. the RPC frame into the gossipsub router
//!   (protobuf, snappy decode + SHA-256 message id, dedup), validation, the verdict and the
//!   relay to 8 mesh peers;
//! - the parts: message id, snappy decode, signer recovery, block hash.
//!
//! `cargo bench --bench gossip` times each case for about a second; under `cargo test
//! --benches` each case runs once. Fixtures: `$OP_LITE_FIXTURES`, else `../shared/fixtures`;
//! without them the bench prints "skipped: fixtures not found" (fails under `CI=true`).

#![allow(clippy::disallowed_methods)]

// Each bench uses part of what the benches share.
#[allow(dead_code)]
mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use k256::ecdsa::SigningKey;
use serde_json::Value;

use op_lite::config::networks;
use op_lite::p2p::blocks::{sign_block, BlockValidator, Publication, Signers, Validation};
use op_lite::p2p::gossipsub::Acceptance;
use op_lite::protocol::gossip::{decompress, message_id, recover_signer, SIGNATURE_LEN};
use op_lite::protocol::header::Header;
use op_lite::protocol::payload::{ExecutionPayloadEnvelope, PayloadAttributes};
use op_lite::protocol::primitives::{keccak256, B256};
use op_lite::protocol::rollup::RollupConfig;
use op_lite::protocol::tx::address_of;

/// Distinct signed copies of a block (other heights) cycled through the router, whose seen
/// cache drops repeats.
const VARIANTS: usize = 64;
const HEAVY_TXS: usize = 400;

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Real blocks whose header and transactions are both in the fixtures.
fn real_blocks(fx: &Path) -> Vec<(String, ExecutionPayloadEnvelope)> {
    let dir = fx.join("l2-block-fixtures/kona-executor");
    let load = |n: u64| json_file(&dir.join(format!("block-{n}.fixture.json")));
    [26_207_960u64, 26_207_961, 26_207_962, 22_884_230]
        .into_iter()
        .map(|n| {
            let (this, next) = (load(n), load(n + 1));
            let header: Header = serde_json::from_value(next["parent_header"].clone()).unwrap();
            let attrs: PayloadAttributes = serde_json::from_value(this["executing_payload"].clone()).unwrap();
            let env = ExecutionPayloadEnvelope::from_block(&header, attrs.transactions, Some(vec![]));
            env.check_block_hash().unwrap();
            (format!("OP Sepolia {n}"), env)
        })
        .collect()
}

/// The first block with the user transactions of all of them repeated to `HEAVY_TXS`.
fn heavy_block(blocks: &[(String, ExecutionPayloadEnvelope)]) -> ExecutionPayloadEnvelope {
    let mut env = blocks[0].1.clone();
    let user: Vec<_> =
        blocks.iter().flat_map(|(_, b)| b.execution_payload.transactions[1..].to_vec()).collect();
    let txs = &mut env.execution_payload.transactions;
    txs.truncate(1);
    txs.extend(user.iter().cycle().take(HEAVY_TXS - 1).cloned());
    env.execution_payload.block_hash = env.compute_block_hash().unwrap();
    env
}

fn variant(cfg: &RollupConfig, env: &ExecutionPayloadEnvelope, key: &SigningKey, n: usize) -> Publication {
    let mut env = env.clone();
    env.execution_payload.state_root = B256([n as u8; 32]);
    env.execution_payload.block_number += n as u64;
    env.execution_payload.block_hash = env.compute_block_hash().unwrap();
    sign_block(cfg, env, key).unwrap()
}

/// An RPC frame carrying one message (`data`, `topic`), as a peer sends it.
fn frame(topic: &str, data: &[u8]) -> Vec<u8> {
    let mut msg = vec![0x12];
    common::length_prefixed(&mut msg, data);
    msg.push(0x22);
    common::length_prefixed(&mut msg, topic.as_bytes());
    let mut rpc = vec![0x12];
    common::length_prefixed(&mut rpc, &msg);
    let mut out = Vec::new();
    common::length_prefixed(&mut out, &rpc);
    out
}

/// Runs `f` once, then again until `budget` has passed; returns iterations and time per one.
fn time(budget: Duration, mut f: impl FnMut()) -> (u64, Duration) {
    f();
    let start = Instant::now();
    let mut iters = 0u64;
    loop {
        f();
        iters += 1;
        let spent = start.elapsed();
        if spent >= budget {
            return (iters, spent.div_f64(iters as f64));
        }
    }
}

fn report(case: &str, input: &str, iters: u64, each: Duration, extra: &str) {
    let us = each.as_secs_f64() * 1e6;
    let per_sec = 1.0 / each.as_secs_f64().max(1e-12);
    println!("{case:<12} {input:<30} {iters:>7} iters {us:>9.1} us/block {per_sec:>9.0} blocks/s  {extra}");
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let budget = if bench { Duration::from_secs(1) } else { Duration::ZERO };
    let Some(fx) = common::fixtures() else {
        println!("skipped: fixtures not found");
        return;
    };
    println!(
        "op-lite gossip benchmarks ({})",
        if bench { "about 1 s per case" } else { "smoke run: one iteration per case" }
    );
    let cfg = networks::op_sepolia().rollup;
    let key = SigningKey::from_slice(&[7; 32]).unwrap();
    let signers = Signers::only(address_of(key.verifying_key()));
    let mut blocks = real_blocks(&fx);
    let heavy = heavy_block(&blocks);
    blocks.push((format!("{HEAVY_TXS}-tx block"), heavy));
    let t0 = Instant::now();

    for (name, env) in &blocks {
        let now = env.execution_payload.timestamp;
        let variants: Vec<Publication> = (0..VARIANTS).map(|n| variant(&cfg, env, &key, n)).collect();
        let p = &variants[0];
        let plain = decompress(&p.data).unwrap();
        let shape = format!(
            "{} txs, {} KB wire, {} KB plain",
            env.execution_payload.transactions.len(),
            p.data.len() / 1000,
            plain.len() / 1000
        );

        let (iters, each) = time(budget, || {
            let r =
                BlockValidator::default().validate_topic(&cfg, &p.topic, black_box(&p.data), &signers, now);
            assert!(matches!(r, Validation::Accept(_)));
        });
        report("validate", name, iters, each, &shape);

        let frames: Vec<Vec<u8>> = variants.iter().map(|v| frame(&v.topic, &v.data)).collect();
        let mut n = 0;
        let mut router = common::mesh(&cfg, 9, t0);
        let mut validator = BlockValidator::default();
        let (iters, each) = time(budget, || {
            if n % VARIANTS == 0 {
                router = common::mesh(&cfg, 9, t0);
                validator = BlockValidator::default();
            }
            router.handle_input(&0, black_box(&frames[n % VARIANTS]), t0).unwrap();
            while let Some(m) = router.poll_received() {
                let verdict = validator.validate_topic(&cfg, &m.topic, &m.data, &signers, now);
                assert_eq!(verdict.acceptance(), Acceptance::Accept);
                router.report_validation(&m.id, verdict.acceptance(), t0);
                black_box(verdict);
            }
            assert!(std::iter::from_fn(|| router.poll_outbound()).count() >= 7);
            n += 1;
        });
        report("receive", name, iters, each, "router + validation + relay to the mesh");

        let (iters, each) = time(budget, || {
            black_box(message_id(&p.topic, black_box(&p.data)));
        });
        report("message id", name, iters, each, "snappy decode + SHA-256");
        let (iters, each) = time(budget, || {
            black_box(decompress(black_box(&p.data)).unwrap());
        });
        report("snappy", name, iters, each, "");
        let (sig, payload) = plain.split_at(SIGNATURE_LEN);
        let sig: [u8; SIGNATURE_LEN] = sig.try_into().unwrap();
        let (iters, each) = time(budget, || {
            black_box(recover_signer(cfg.l2_chain_id, &keccak256(black_box(payload)), &sig).unwrap());
        });
        report("recover", name, iters, each, "keccak of the signed bytes + secp256k1");
        let (iters, each) = time(budget, || {
            black_box(black_box(env).compute_block_hash().unwrap());
        });
        report("block hash", name, iters, each, "header RLP + transaction trie");
    }
}
