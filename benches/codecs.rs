//! Codec throughput on real batcher data from the shared fixtures: frame parsing, channel
//! decompression with batch decoding, and span batch decoding and derivation (to full signed
//! transactions). `cargo bench --bench codecs` times each case for about a second; under
//! `cargo test --benches` each case runs once, as a smoke test of the same code.
//!
//! Fixtures: `$OP_LITE_FIXTURES`, else `../shared/fixtures`. Without them the bench prints
//! "skipped: fixtures not found", except under `CI=true`, where it fails.

#![allow(clippy::disallowed_methods)]

// Each bench uses part of what the benches share.
#[allow(dead_code)]
mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use op_lite::protocol::channel::{decompress, read_batches};
use op_lite::protocol::frame::Frame;
use op_lite::protocol::primitives::from_hex;
use op_lite::protocol::rlp::Rlp;
use op_lite::protocol::span_batch::RawSpanBatch;
use op_lite::protocol::tx::Transaction;

const MAX_RLP_BYTES: usize = 100_000_000;
const OP_MAINNET_GENESIS_TIME: u64 = 1_686_068_903;
const OP_SEPOLIA_GENESIS_TIME: u64 = 1_691_802_540;

/// One real channel, with the batcher transaction data that carried it when there is one.
struct Input {
    name: &'static str,
    calldata: Option<Vec<u8>>,
    channel: Vec<u8>,
    chain_id: u64,
    genesis_time: u64,
    /// Blocks and transactions of its span batch, as the fixture's PROVENANCE.md gives them.
    expected: (usize, usize),
}

fn hex_file(path: &Path) -> Vec<u8> {
    from_hex(std::fs::read_to_string(path).unwrap().trim()).unwrap()
}

fn single_frame(calldata: &[u8]) -> Vec<u8> {
    let frames = Frame::parse_all(calldata).unwrap();
    assert_eq!(frames.len(), 1);
    frames.into_iter().next().unwrap().data.to_vec()
}

fn inputs(fx: &Path) -> Vec<Input> {
    let dir = fx.join("batch-channel-frame");
    let tx = std::fs::read(dir.join("kona/op-mainnet-batcher-tx-e69d9433.rlp.bin")).unwrap();
    let mainnet = Transaction::decode(&tx).unwrap().input().to_vec();
    let sepolia = hex_file(&dir.join("magi/op-sepolia-span-batch-frame.hex"));
    let mut out = vec![
        Input {
            name: "OP Mainnet tx e69d9433",
            channel: single_frame(&mainnet),
            calldata: Some(mainnet),
            chain_id: 10,
            genesis_time: OP_MAINNET_GENESIS_TIME,
            expected: (27, 209),
        },
        Input {
            name: "OP Sepolia span batch frame",
            channel: single_frame(&sepolia),
            calldata: Some(sepolia),
            chain_id: 11_155_420,
            genesis_time: OP_SEPOLIA_GENESIS_TIME,
            expected: (84, 9),
        },
    ];
    let big = dir.join("kona/op-mainnet-span-batch-channel-zlib.hex");
    if big.exists() {
        out.push(Input {
            name: "OP Mainnet 143-block channel",
            calldata: None,
            channel: hex_file(&big),
            chain_id: 10,
            genesis_time: OP_MAINNET_GENESIS_TIME,
            expected: (143, 1766),
        });
    } else {
        println!("skipped: {} not in this fixture set", big.display());
    }
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

fn per_sec(count: f64, each: Duration) -> f64 {
    count / each.as_secs_f64().max(1e-12)
}

fn report(case: &str, input: &str, iters: u64, each: Duration, figures: &[String]) {
    let us = each.as_secs_f64() * 1e6;
    let per_iter = if us < 1.0 {
        format!("{:.0} ns", us * 1e3)
    } else if us < 1e3 {
        format!("{us:.1} us")
    } else {
        format!("{:.2} ms", us / 1e3)
    };
    println!("{case:<15} {input:<28} {iters:>9} iters {per_iter:>9}/iter  {}", figures.join(", "));
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let budget = if bench { Duration::from_secs(1) } else { Duration::ZERO };
    let Some(fx) = common::fixtures() else {
        println!("skipped: fixtures not found");
        return;
    };
    println!(
        "op-lite codec benchmarks ({}); MB = 10^6 bytes",
        if bench { "about 1 s per case" } else { "smoke run: one iteration per case" }
    );
    let inputs = inputs(&fx);
    for input in &inputs {
        if let Some(calldata) = &input.calldata {
            // Derivation's path: the retrieved data in a shared buffer, which a frame that is
            // all of it keeps instead of copying.
            let shared = std::sync::Arc::new(calldata.clone());
            let (iters, each) = time(budget, || {
                black_box(Frame::parse_shared(black_box(&shared)).unwrap());
            });
            let mb = calldata.len() as f64 / 1e6;
            report(
                "frame parse",
                input.name,
                iters,
                each,
                &[format!("{:.1} MB/s of calldata", per_sec(mb, each))],
            );
        }

        let d = decompress(&input.channel, MAX_RLP_BYTES, true).unwrap();
        let (iters, each) = time(budget, || {
            let d = decompress(black_box(&input.channel), MAX_RLP_BYTES, true).unwrap();
            for b in read_batches(&d.data) {
                black_box(b.unwrap());
            }
        });
        let (mb_in, mb_out) = (input.channel.len() as f64 / 1e6, d.data.len() as f64 / 1e6);
        report(
            "channel decode",
            input.name,
            iters,
            each,
            &[
                format!("{:.1} MB/s compressed", per_sec(mb_in, each)),
                format!("{:.1} MB/s decompressed", per_sec(mb_out, each)),
            ],
        );

        let typed = Rlp::new(&d.data).next_bytes().unwrap();
        let body = &typed[1..];
        let raw = RawSpanBatch::decode(body).unwrap();
        let (blocks, txs) = (raw.block_count(), raw.txs.tx_datas.len());
        assert_eq!((blocks, txs), input.expected, "{}", input.name);
        let rates = |each| {
            [
                format!("{:.1} MB/s", per_sec(body.len() as f64 / 1e6, each)),
                format!("{:.0} blocks/s", per_sec(blocks as f64, each)),
                format!("{:.0} txs/s", per_sec(txs as f64, each)),
            ]
        };
        let (iters, each) = time(budget, || {
            black_box(RawSpanBatch::decode(black_box(body)).unwrap());
        });
        report("span decode", input.name, iters, each, &rates(each));
        let (iters, each) = time(budget, || {
            let raw = RawSpanBatch::decode(black_box(body)).unwrap();
            black_box(raw.derive(2, input.genesis_time, input.chain_id).unwrap());
        });
        report("span + derive", input.name, iters, each, &rates(each));
    }
}
