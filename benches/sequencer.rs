//! Block-building latency of the sequencer, in process: the node's derivers plus the sequencer
//! drive the devnet's engine stand-in (answered synchronously, so engine round trips to a real
//! op-geth / op-reth come on top), with the sealing margin set to the block time so every block
//! is sealed as soon as it is started. Per block it times:
//! - `attributes -> sealed`: from the sequencer's action (L1 origin choice, attributes with the
//!   L1-info deposit, forkchoiceUpdated with attributes, getPayload) to the sealed payload;
//! - `sealed -> gossiped`: signing (keccak + secp256k1), SSZ + snappy encoding and the
//!   gossipsub publish to a mesh of 8 peers;
//! - `insert`: newPayload + forkchoiceUpdated of the sealed block in the node's own chain.
//!
//! `cargo bench --bench sequencer` runs 2,000 blocks; `cargo test --benches` runs 20.

#![allow(clippy::disallowed_methods)]

// Each bench uses part of what the benches share.
#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k256::ecdsa::SigningKey;

use op_lite::devnet::chain::{serve_fetch, Devnet, DevnetParams, Sequencing};
use op_lite::devnet::l1_sim::Account;
use op_lite::devnet::DEVNET_L1_CHAIN_ID;
use op_lite::driver::l1_poll::{L1Label, L1Poller};
use op_lite::driver::sequencer::SequencerConfig;
use op_lite::event::{Event, Request};
use op_lite::node::{Core, Params};
use op_lite::p2p::blocks::sign_block;
use op_lite::protocol::l1_chain::L1ChainSpec;
use op_lite::time::Now;

fn main() {
    let blocks: u64 = if std::env::args().any(|a| a == "--bench") { 2_000 } else { 20 };
    let params = DevnetParams { sequencing: Sequencing::NodeOnStandIn, ..DevnetParams::default() };
    let mut now = Now::new(Instant::now(), params.genesis_time * 1000);
    let mut devnet = Devnet::new(params).unwrap();
    let cfg = Arc::new(devnet.rollup_config().clone());
    let p = Params::new(cfg.clone(), Arc::new(L1ChainSpec::dev(DEVNET_L1_CHAIN_ID)), 3);
    let base = now.mono;
    let mut core = Core::at(p, now);
    core.derivers.l1_poller = Some(L1Poller::new(Duration::from_secs(2), Duration::from_secs(6)));
    let conf = SequencerConfig {
        sealing_duration: Duration::from_secs(cfg.block_time),
        ..SequencerConfig::default()
    };
    core.add_sequencer(conf, now);
    core.emit(Event::StepReq { reset_backoff: false });
    let key = SigningKey::from_slice(&Account::from_seed("op-lite devnet sequencer").secret()).unwrap();
    let mut router = common::mesh(&cfg, 8, base);

    let (mut built, mut gossiped, mut inserted) = (Vec::new(), Vec::new(), Vec::new());
    let (mut bytes, mut txs) = (0usize, 0usize);
    while core.status().unsafe_l2.number < blocks {
        now = now.advance(Duration::from_millis(250));
        devnet.advance_to(now.unix()).unwrap();
        let start = Instant::now();
        let mut sealed_at = None;
        let mut publish_time = Duration::ZERO;
        loop {
            core.handle_timeout(now);
            core.drain(now).expect("no critical error");
            let reqs = core.poll_requests();
            let due = core.poll_timeout().is_some_and(|(t, _)| t <= now.mono);
            if reqs.is_empty() && core.pending() == 0 && !due {
                break;
            }
            for r in reqs {
                let ev = match r {
                    Request::Fetch(f) => {
                        Event::ChainDataArrived(Box::new(serve_fetch(&devnet.l1, &devnet.seq, f)))
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
                        Event::EngineReplied { id, result: devnet.seq.handle(&call) }
                    }
                    Request::PublishBlock(env) => {
                        sealed_at = Some(start.elapsed());
                        let t = Instant::now();
                        txs += env.execution_payload.transactions.len();
                        let msg = sign_block(&cfg, *env, &key).unwrap();
                        bytes += msg.data.len();
                        router.publish(&msg.topic, msg.data, now.mono).unwrap();
                        std::hint::black_box(
                            std::iter::from_fn(|| router.poll_outbound()).collect::<Vec<_>>(),
                        );
                        publish_time = t.elapsed();
                        continue;
                    }
                    Request::LoadRuntimeConfig { .. }
                    | Request::Rpc(_)
                    | Request::Stop
                    | Request::PollFollowSource => continue,
                };
                core.emit(ev);
            }
        }
        if let Some(s) = sealed_at {
            built.push(s);
            gossiped.push(publish_time);
            inserted.push(start.elapsed().saturating_sub(s + publish_time));
        }
    }
    let n = built.len().max(1) as u32;
    println!(
        "sequencer block-building latency, {} blocks ({} txs, {} gossip bytes), in process:",
        built.len(),
        txs,
        bytes
    );
    for (name, v) in
        [("attributes -> sealed", &built), ("sealed -> gossiped", &gossiped), ("insert", &inserted)]
    {
        let mut sorted = v.clone();
        sorted.sort();
        let total: Duration = v.iter().sum();
        let p99 = sorted.get(sorted.len() * 99 / 100).copied().unwrap_or_default();
        println!(
            "  {name:<22} mean {:>8.1} us   p99 {:>8.1} us",
            (total / n).as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
    let all: Duration = built.iter().chain(&gossiped).sum();
    println!("  attributes -> gossiped mean {:.1} us", (all / n).as_secs_f64() * 1e6);
}
