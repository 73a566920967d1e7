//! Derivation throughput and peak heap, on real and synthetic data:
//! - `replay`: the recorded OP Mainnet range (L1 18090205..18090218, 32 payloads) through the
//!   pipeline exactly as `op-lite replay` runs it;
//! - `synthetic`: 10,000 L2 blocks the devnet sequenced (two transfers each, plus the L1-info
//!   deposit), posted as ten brotli span-batch channels in calldata, derived by the verifier
//!   core (pipeline, attributes, engine controller) over the devnet's engine stand-in, from
//!   genesis through 3,334 L1 blocks.
//!
//! Peak heap is measured with a counting global allocator, above what was allocated before
//! each phase; the devnet's L1 and its engine stand-in (kept to its last 64 blocks) share the
//! process, so the synthetic figure is an upper bound for the node's own heap. `cargo bench --bench derive` runs both fully; `cargo test --benches` runs a
//! 500-block synthetic range and one replay.

#![allow(clippy::disallowed_methods)]

// Each bench uses part of what the benches share.
#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use op_lite::devnet::chain::{serve_fetch, Devnet, DevnetParams};
use op_lite::devnet::l1_sim::Account;
use op_lite::devnet::DEVNET_L1_CHAIN_ID;
use op_lite::driver::l1_poll::{L1Label, L1Poller};
use op_lite::event::{Event, Request};
use op_lite::node::{Core, Params};
use op_lite::protocol::channel_out::{self, BatchKind, Compressor};
use op_lite::protocol::frame::batcher_tx_data;
use op_lite::protocol::l1_chain::L1ChainSpec;
use op_lite::protocol::primitives::Bytes;
use op_lite::protocol::tx::{SignedTx, EIP1559_TX_TYPE};
use op_lite::time::Now;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    println!("op-lite derivation ({})", if full { "full" } else { "smoke run" });
    replay(if full { 20 } else { 1 });
    synthetic(if full { 10_000 } else { 500 });
}

fn replay(runs: u32) {
    let Some(fx) = common::fixtures() else {
        println!("replay: skipped: fixtures not found");
        return;
    };
    let path = fx.join("derivation-e2e/op-mainnet-bedrock-l1-18090205-18090218/fixture.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut payloads = 0;
    let (_, took, heap) = common::phase(|| {
        for _ in 0..runs {
            let out = op_lite::tools::replay::run(&text, true, &mut |_| {}).unwrap();
            payloads += out.derived.len();
        }
    });
    assert_eq!(payloads, 32 * runs as usize);
    println!(
        "  replay     {payloads:>6} payloads in {:>8.1} ms: {:>9.0} payloads/s, peak heap {} (fixture text {})",
        took.as_secs_f64() * 1e3,
        payloads as f64 / took.as_secs_f64(),
        common::mb(heap),
        common::mb(text.len())
    );
}

fn brotli(rlp: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality: 9, lgwin: 22, ..Default::default() };
    brotli::BrotliCompress(&mut &rlp[..], &mut out, &params).unwrap();
    out
}

fn synthetic(blocks: u64) {
    let params = DevnetParams {
        manual_batcher: true,
        deposit_every: 0,
        seq_window_size: 3_600,
        seed: 3,
        ..DevnetParams::default()
    };
    let t0 = params.genesis_time;
    let mut devnet = Devnet::new(params).unwrap();
    let block_time = devnet.rollup_config().block_time;
    devnet.advance_to(t0 + blocks * block_time).unwrap();
    let l2 = devnet.poll_unbatched();
    assert_eq!(l2.len() as u64, blocks);
    let cfg = devnet.rollup_config().clone();
    let mut batcher_key = Account::from_seed("op-lite devnet batcher");
    let (mut calldata, mut txs) = (0, 0);
    for (i, chunk) in l2.chunks(l2.len().div_ceil(10)).enumerate() {
        let frames = channel_out::channel_frames(
            &cfg,
            [i as u8 + 1; 16],
            BatchKind::Span,
            chunk,
            Compressor::Brotli(brotli),
            120_000,
        )
        .unwrap();
        for f in frames {
            let data = batcher_tx_data(std::slice::from_ref(&f));
            calldata += data.len();
            txs += 1;
            let tx = SignedTx {
                tx_type: EIP1559_TX_TYPE,
                gas_price: 30_000_000_000,
                max_priority_fee_per_gas: 1_000_000_000,
                gas_limit: 21_000 + 16 * data.len() as u64,
                to: Some(cfg.batch_inbox_address),
                input: Bytes(data),
                ..SignedTx::default()
            };
            let tx = batcher_key.sign(tx, DEVNET_L1_CHAIN_ID);
            devnet.l1.include(tx, Vec::new(), true);
        }
    }
    devnet.l1.seal();
    let l1_blocks = devnet.l1.head().info.number();

    let now = Now::new(Instant::now(), (t0 + blocks * block_time + 12) * 1000);
    let p = Params::new(Arc::new(cfg), Arc::new(L1ChainSpec::dev(DEVNET_L1_CHAIN_ID)), 1);
    let ((), took, heap) = common::phase(|| {
        let mut core = Core::at(p.clone(), now);
        core.derivers.l1_poller = Some(L1Poller::new(Duration::from_secs(12), Duration::from_secs(384)));
        core.emit(Event::StepReq { reset_backoff: false });
        let mut now = now;
        let mut turns = 0u64;
        loop {
            // The engine stand-in is not the node: keep its chain short so its memory does
            // not count as the node's.
            turns += 1;
            if turns % 256 == 0 {
                devnet.engine.prune(64);
            }
            core.handle_timeout(now);
            core.drain(now).expect("no critical error");
            let reqs = core.poll_requests();
            if reqs.is_empty() && core.pending() == 0 {
                let safe = core.status().safe_l2.number;
                if safe >= blocks {
                    break;
                }
                // Waiting on a backoff timer: jump virtual time to it.
                let next = core.poll_timeout().map(|(t, _)| t).expect("stalled with no timer");
                now = now.advance(next.saturating_duration_since(now.mono));
                continue;
            }
            for r in reqs {
                let ev = match r {
                    Request::Fetch(f) => {
                        Event::ChainDataArrived(Box::new(serve_fetch(&devnet.l1, &devnet.engine, f)))
                    }
                    Request::PollL1 { label: L1Label::Latest, .. } => {
                        Event::L1HeadUpdated(devnet.l1.head().block_ref())
                    }
                    Request::PollL1 { label: L1Label::Safe, .. } => {
                        Event::L1SafeUpdated(devnet.l1.safe().block_ref())
                    }
                    Request::PollL1 { label: L1Label::Finalized, .. } => {
                        Event::L1FinalizedUpdated(devnet.l1.finalized().block_ref())
                    }
                    Request::Engine { id, call } => {
                        Event::EngineReplied { id, result: devnet.engine.handle(&call) }
                    }
                    _ => continue,
                };
                core.emit(ev);
            }
        }
    });
    // The derived chain is the sequenced one.
    let last = |e: &op_lite::devnet::engine_sim::EngineSim| {
        e.block_by_number(blocks).unwrap().envelope.execution_payload.block_hash
    };
    assert_eq!(last(&devnet.engine), last(&devnet.seq));
    println!(
        "  synthetic  {blocks:>6} payloads in {:>8.1} ms: {:>9.0} payloads/s, peak heap {} ({} L1 blocks, {txs} brotli span-batch txs, {} calldata)",
        took.as_secs_f64() * 1e3,
        blocks as f64 / took.as_secs_f64(),
        common::mb(heap),
        l1_blocks,
        common::mb(calldata)
    );
}
