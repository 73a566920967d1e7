//! Unsafe-block gossip on real OP Sepolia blocks (the kona-executor fixtures), signed here with
//! a test key: the block validator's verdicts, and blocks travelling through gossipsub routers
//! wired together in memory, from the sequencer's publication to the engine event.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use k256::ecdsa::SigningKey;
use serde_json::Value;

use op_lite::config::networks;
use op_lite::event::Event;
use op_lite::p2p::blocks::{block_topics, sign_block, BlockError, BlockValidator, Signers, Validation};
use op_lite::p2p::gossipsub::{Acceptance, Config, Protocol, Router};
use op_lite::protocol::gossip::BlockVersion;
use op_lite::protocol::header::Header;
use op_lite::protocol::payload::{ExecutionPayloadEnvelope, PayloadAttributes};
use op_lite::protocol::primitives::{Address, B256};
use op_lite::protocol::rollup::RollupConfig;
use op_lite::protocol::tx::address_of;

use crate::support::fixtures;

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Blocks whose header (the next fixture's parent header) and transactions (their own
/// attributes) are both in the fixtures, checked against their real hashes.
fn real_blocks(fx: &Path) -> Vec<ExecutionPayloadEnvelope> {
    let dir = fx.join("l2-block-fixtures/kona-executor");
    let load = |n: u64| json_file(&dir.join(format!("block-{n}.fixture.json")));
    [26_207_960, 26_207_961, 26_207_962, 22_884_230]
        .into_iter()
        .map(|n| {
            let (this, next) = (load(n), load(n + 1));
            let header: Header = serde_json::from_value(next["parent_header"].clone()).unwrap();
            let attrs: PayloadAttributes = serde_json::from_value(this["executing_payload"].clone()).unwrap();
            let env = ExecutionPayloadEnvelope::from_block(&header, attrs.transactions, Some(vec![]));
            let hash: B256 = this["expected_block_hash"].as_str().unwrap().parse().unwrap();
            assert_eq!(env.execution_payload.block_hash, hash, "block {n}");
            assert_eq!(env.compute_block_hash().unwrap(), hash, "block {n}");
            env
        })
        .collect()
}

fn sepolia() -> RollupConfig {
    networks::op_sepolia().rollup
}

fn sequencer() -> SigningKey {
    SigningKey::from_slice(&[7; 32]).unwrap()
}

fn signers() -> Signers {
    Signers::only(address_of(sequencer().verifying_key()))
}

#[test]
fn real_blocks_are_accepted() {
    let Some(fx) = fixtures() else { return };
    let cfg = sepolia();
    let mut v = BlockValidator::default();
    for env in real_blocks(&fx) {
        let p = sign_block(&cfg, env.clone(), &sequencer()).unwrap();
        let ts = env.execution_payload.timestamp;
        assert_eq!(p.version, BlockVersion::at(&cfg, ts));
        assert!(p.topic.starts_with("/optimism/11155420/"));
        match v.validate_topic(&cfg, &p.topic, &p.data, &signers(), ts + 1) {
            Validation::Accept(a) => {
                assert_eq!(*a.envelope, env);
                assert!(matches!(a.into_event(), Event::ReceivedUnsafePayload(e) if *e == env));
            }
            other => panic!("block {}: {other:?}", env.execution_payload.block_number),
        }
    }
}

#[test]
fn real_blocks_are_rejected_for_each_rule() {
    let Some(fx) = fixtures() else { return };
    let cfg = sepolia();
    let env = real_blocks(&fx).remove(0);
    let ts = env.execution_payload.timestamp;
    let p = sign_block(&cfg, env.clone(), &sequencer()).unwrap();
    let check = |data: &[u8], signers: &Signers, now| {
        BlockValidator::default().validate_topic(&cfg, &p.topic, data, signers, now)
    };

    // The registry's signer did not sign this.
    let registry = networks::op_sepolia().unsafe_block_signer;
    let got = address_of(sequencer().verifying_key());
    assert_eq!(
        check(&p.data, &Signers::only(registry), ts),
        Validation::Reject(BlockError::WrongSigner { expected: registry, got })
    );
    assert_eq!(check(&p.data, &Signers::only(Address::ZERO), ts), Validation::Ignore(BlockError::NoSigner));
    // Timestamp window.
    assert!(matches!(check(&p.data, &signers(), ts + 61), Validation::Reject(BlockError::TooOld { .. })));
    assert!(matches!(check(&p.data, &signers(), ts - 6), Validation::Reject(BlockError::TooNew { .. })));
    // A validly signed block whose claimed hash is wrong.
    let mut bad = env.clone();
    bad.execution_payload.block_hash = B256([0xab; 32]);
    let bad = sign_block(&cfg, bad, &sequencer()).unwrap();
    assert!(matches!(check(&bad.data, &signers(), ts), Validation::Reject(BlockError::BlockHash(_))));
    // On another version's topic.
    for other in BlockVersion::ALL.into_iter().filter(|o| *o != p.version) {
        let r = BlockValidator::default().validate(&cfg, other, &p.data, &signers(), ts);
        assert_eq!(r.acceptance(), Acceptance::Reject, "{other:?}: {r:?}");
    }
    // Six distinct blocks at one height pass, the seventh does not; a repeat is ignored.
    let mut v = BlockValidator::default();
    for salt in 0..7u8 {
        let mut fork = env.clone();
        fork.execution_payload.state_root = B256([salt; 32]);
        fork.execution_payload.block_hash = fork.compute_block_hash().unwrap();
        let f = sign_block(&cfg, fork, &sequencer()).unwrap();
        let r = v.validate_topic(&cfg, &f.topic, &f.data, &signers(), ts);
        if salt < 6 {
            assert!(matches!(r, Validation::Accept(_)), "block {salt}: {r:?}");
        } else {
            let height = env.execution_payload.block_number;
            assert_eq!(r, Validation::Reject(BlockError::TooManyBlocks { height }));
        }
    }
    let mut v = BlockValidator::default();
    assert!(matches!(v.validate_topic(&cfg, &p.topic, &p.data, &signers(), ts), Validation::Accept(_)));
    let hash = env.execution_payload.block_hash;
    assert_eq!(
        v.validate_topic(&cfg, &p.topic, &p.data, &signers(), ts),
        Validation::Ignore(BlockError::AlreadySeen { hash })
    );
}

/// The sequencer (0) publishes to a node (1), which validates and relays to another node (2).
#[test]
fn blocks_travel_from_the_sequencer_through_gossip_to_the_engine() {
    let Some(fx) = fixtures() else { return };
    let cfg = sepolia();
    let blocks = real_blocks(&fx);
    let t0 = Instant::now();
    let topics = block_topics(cfg.l2_chain_id);
    let mut nodes: BTreeMap<u32, Router<u32>> = (0..3)
        .map(|i| (i, Router::new(Config::op_node(topics.clone(), cfg.block_time), u64::from(i), t0).unwrap()))
        .collect();
    for r in nodes.values_mut() {
        for t in &topics {
            r.subscribe(t, t0).unwrap();
        }
    }
    let ip = |n: u32| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n as u8));
    for (a, b) in [(0, 1), (1, 2)] {
        nodes.get_mut(&a).unwrap().add_peer(b, true, ip(b), Protocol::V11, t0).unwrap();
        nodes.get_mut(&b).unwrap().add_peer(a, false, ip(a), Protocol::V11, t0).unwrap();
    }
    let mut validators: BTreeMap<u32, BlockValidator> =
        (1..3).map(|i| (i, BlockValidator::default())).collect();
    let mut events: BTreeMap<u32, Vec<Event>> = BTreeMap::new();
    let mut now = t0;
    let mut run = |nodes: &mut BTreeMap<u32, Router<u32>>,
                   events: &mut BTreeMap<u32, Vec<Event>>,
                   now: Instant,
                   unix: u64,
                   signers: Signers| {
        for _ in 0..20 {
            let mut moved = false;
            for from in 0..3 {
                let out: Vec<_> =
                    std::iter::from_fn(|| nodes.get_mut(&from).unwrap().poll_outbound()).collect();
                for (to, frame) in out {
                    moved = true;
                    nodes.get_mut(&to).unwrap().handle_input(&from, &frame, now).unwrap();
                }
            }
            for (id, v) in validators.iter_mut() {
                let r = nodes.get_mut(id).unwrap();
                while let Some(m) = r.poll_received() {
                    let verdict = v.validate_topic(&cfg, &m.topic, &m.data, &signers, unix);
                    r.report_validation(&m.id, verdict.acceptance(), now);
                    if let Validation::Accept(a) = verdict {
                        events.entry(*id).or_default().push(a.into_event());
                    }
                }
            }
            if !moved {
                return;
            }
        }
    };
    for _ in 0..4 {
        now += Duration::from_millis(500);
        for r in nodes.values_mut() {
            r.handle_timeout(now);
        }
        run(&mut nodes, &mut events, now, 0, signers());
    }
    assert_eq!(nodes[&1].mesh_peers(&topics[2]).len(), 2);

    for env in &blocks {
        let p = sign_block(&cfg, env.clone(), &sequencer()).unwrap();
        nodes.get_mut(&0).unwrap().publish(&p.topic, p.data, now).unwrap();
        run(&mut nodes, &mut events, now, env.execution_payload.timestamp, signers());
    }
    for id in [1, 2] {
        let got: Vec<&ExecutionPayloadEnvelope> = events[&id]
            .iter()
            .map(|e| match e {
                Event::ReceivedUnsafePayload(env) => &**env,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(got, blocks.iter().collect::<Vec<_>>(), "node {id}");
    }

    // A block signed by someone else stops at the first node, which penalises the sender.
    let mut forged = blocks[0].clone();
    forged.execution_payload.state_root = B256([1; 32]);
    forged.execution_payload.block_hash = forged.compute_block_hash().unwrap();
    let intruder = SigningKey::from_slice(&[8; 32]).unwrap();
    let p = sign_block(&cfg, forged, &intruder).unwrap();
    nodes.get_mut(&0).unwrap().publish(&p.topic, p.data, now).unwrap();
    run(&mut nodes, &mut events, now, blocks[0].execution_payload.timestamp, signers());
    assert_eq!(nodes[&1].stats().rejected, 1);
    assert_eq!(nodes[&2].stats().messages, blocks.len() as u64);
    assert_eq!(nodes[&1].score(&0), Some(-10.0));
    assert_eq!(events[&2].len(), blocks.len());
}
