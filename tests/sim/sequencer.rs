//! Sequencer mode on virtual time: a sequencer core (the node's derivers plus the sequencer)
//! drives the devnet's sequencer engine; every block it seals is signed with the devnet's
//! sequencer key and handed, through op-node's gossip block validator, to a verifier core that
//! also derives from the devnet's L1, where the devnet's batcher posts the sequencer's blocks.
//! The verifier's unsafe head must follow within two block times and its safe chain must be the
//! sequencer's, hash for hash.

use std::time::Duration;

use k256::ecdsa::SigningKey;
use op_lite::devnet::chain::{Devnet, DevnetParams, Sequencing};
use op_lite::devnet::l1_sim::Account;
use op_lite::driver::sequencer::{Sequencer, SequencerConfig};
use op_lite::event::{Event, Request};
use op_lite::p2p::blocks::{sign_block, BlockError, BlockValidator, Signers, Validation};
use op_lite::protocol::primitives::B256;
use op_lite::time::Now;

use super::{Core, EngineOf};

pub(crate) struct Pair {
    pub(crate) devnet: Devnet,
    pub(crate) seq: Core,
    pub(crate) ver: Core,
    pub(crate) now: Now,
    key: SigningKey,
    validator: BlockValidator,
    /// Gossip verdicts on the verifier side: (accepted, rejected or ignored).
    verdicts: (u64, u64),
    /// Per block number: when the sequencer's and the verifier's unsafe heads reached it (ms).
    reached: Vec<(Option<u64>, Option<u64>)>,
    /// Blocks published per height (a sequencer never publishes two at one height).
    published: std::collections::BTreeMap<u64, Vec<B256>>,
    /// The sequencer's engine fails every call between these virtual seconds.
    engine_down: Option<(u64, u64)>,
    engine_failures: u64,
    start_secs: u64,
    /// L1 stops: no new L1 blocks, so no new batches and no safe-head moves.
    pub(crate) l1_frozen: bool,
}

impl Pair {
    pub(crate) fn new(conf: SequencerConfig) -> Pair {
        if let Ok(level) = std::env::var("SIM_LOG") {
            op_lite::io::log::init(
                level.parse().unwrap_or(log::LevelFilter::Debug),
                op_lite::io::log::LogFormat::Text,
                false,
            );
        }
        let params =
            DevnetParams { sequencing: Sequencing::NodeOnStandIn, seed: 9, ..DevnetParams::default() };
        let t0 = Now::new(std::time::Instant::now(), params.genesis_time * 1000);
        let devnet = Devnet::new(params).unwrap();
        let key = SigningKey::from_slice(&Account::from_seed("op-lite devnet sequencer").secret()).unwrap();
        assert_eq!(op_lite::protocol::tx::address_of(key.verifying_key()), devnet.unsafe_signer);
        Pair {
            seq: Core::new(&devnet, t0, Some(conf)),
            ver: Core::new(&devnet, t0, None),
            devnet,
            now: t0,
            key,
            validator: BlockValidator::default(),
            verdicts: (0, 0),
            reached: Vec::new(),
            published: Default::default(),
            engine_down: None,
            engine_failures: 0,
            start_secs: t0.unix(),
            l1_frozen: false,
        }
    }

    fn answer(&mut self, sequencer: bool, r: Request) -> Option<Event> {
        let elapsed = self.now.unix() - self.start_secs;
        let down = sequencer && self.engine_down.is_some_and(|(a, b)| (a..b).contains(&elapsed));
        match r {
            Request::Engine { id, .. } if down => {
                self.engine_failures += 1;
                let err =
                    op_lite::engine::api::EngineError::Transport("http://engine: timeout: global".into());
                Some(Event::EngineReplied { id, result: Err(err) })
            }
            Request::PublishBlock(env) => {
                assert!(sequencer, "only the sequencer publishes");
                let p = &env.execution_payload;
                self.published.entry(p.block_number).or_default().push(p.block_hash);
                let cfg = self.devnet.rollup_config();
                let msg = sign_block(cfg, *env, &self.key).unwrap();
                let signers = Signers::only(self.devnet.unsafe_signer);
                match self.validator.validate_topic(cfg, &msg.topic, &msg.data, &signers, self.now.unix()) {
                    Validation::Accept(a) => {
                        self.verdicts.0 += 1;
                        self.ver.core.emit(a.into_event());
                    }
                    // A block sequenced again identically (after a reset) is gossip it has seen.
                    Validation::Ignore(BlockError::AlreadySeen { .. }) => self.verdicts.1 += 1,
                    other => {
                        self.verdicts.1 += 1;
                        panic!("the verifier refused a sequenced block: {other:?}");
                    }
                }
                None
            }
            r => {
                let engine = if sequencer { EngineOf::Sequencer } else { EngineOf::Node };
                Core::answer(&mut self.devnet, engine, r).ok()
            }
        }
    }

    fn settle(&mut self) {
        for _ in 0..100_000 {
            let mut idle = true;
            for sequencer in [true, false] {
                let side = if sequencer { &mut self.seq } else { &mut self.ver };
                let (reqs, quiet) = side.turn(self.now);
                idle &= quiet;
                for r in reqs {
                    if let Some(ev) = self.answer(sequencer, r) {
                        let side = if sequencer { &mut self.seq } else { &mut self.ver };
                        side.core.emit(ev);
                    }
                }
            }
            if idle {
                return;
            }
        }
        panic!("the nodes did not settle");
    }

    fn record(&mut self) {
        let ms = self.now.unix_ms;
        for (i, n) in
            [self.seq.status().unsafe_l2.number, self.ver.status().unsafe_l2.number].into_iter().enumerate()
        {
            if self.reached.len() <= n as usize {
                self.reached.resize(n as usize + 1, (None, None));
            }
            for k in 1..=n as usize {
                let slot = if i == 0 { &mut self.reached[k].0 } else { &mut self.reached[k].1 };
                slot.get_or_insert(ms);
            }
        }
    }

    pub(crate) fn run(&mut self, secs: u64) {
        let end = self.now.advance(Duration::from_secs(secs));
        while self.now.mono < end.mono {
            let next = [self.seq.core.poll_timeout(), self.ver.core.poll_timeout()]
                .into_iter()
                .flatten()
                .map(|(t, _)| t)
                .min()
                .map_or(end.mono, |t| t.min(end.mono));
            let step = next
                .saturating_duration_since(self.now.mono)
                .clamp(Duration::from_millis(10), Duration::from_millis(500));
            self.now = self.now.advance(step);
            if !self.l1_frozen {
                self.devnet.advance_to(self.now.unix_ms / 1000).unwrap();
            }
            self.settle();
            self.record();
        }
    }

    pub(crate) fn sequencer(&self) -> &Sequencer {
        self.seq.core.derivers.sequencer.as_ref().unwrap()
    }

    fn sequencer_mut(&mut self) -> &mut Sequencer {
        self.seq.core.derivers.sequencer.as_mut().unwrap()
    }

    fn assert_one_block_per_height(&self) {
        let doubles: Vec<_> = self.published.iter().filter(|(_, h)| h.len() > 1).collect();
        assert!(doubles.is_empty(), "two blocks at one height: {doubles:?}");
    }

    /// Every block of the sequencer's chain links to its parent, at one block per block time.
    pub(crate) fn assert_chain(&self) {
        let head = self.seq.status().unsafe_l2.number;
        for n in 1..=head {
            let b = &self.devnet.seq.block_by_number(n).unwrap().header;
            let p = &self.devnet.seq.block_by_number(n - 1).unwrap().header;
            assert_eq!(b.parent_hash, p.hash(), "block {n} links to its parent");
            assert_eq!(b.timestamp, p.timestamp + self.devnet.rollup_config().block_time);
        }
    }
}

#[test]
fn a_verifier_follows_the_sequencer_by_gossip_and_derives_its_blocks_from_l1() {
    let mut pair = Pair::new(SequencerConfig::default());
    pair.run(300);
    let seq = pair.seq.status();
    let ver = pair.ver.status();
    let block_time = pair.devnet.rollup_config().block_time;
    // One block per block time, on the wall clock (virtual): 300 s is about 150 blocks.
    assert!(seq.unsafe_l2.number >= 145, "sequenced {}", seq.unsafe_l2.number);
    pair.assert_one_block_per_height();
    pair.assert_chain();
    assert!(seq.safe_l2.number >= 100, "the sequencer's own safe head {}", seq.safe_l2.number);
    assert_eq!(pair.verdicts.0, pair.sequencer().stats().sealed);
    // Each block's timestamp is its time on the wall clock; both heads reach it in time.
    let mut worst = 0;
    for n in 1..=seq.unsafe_l2.number {
        let b = pair.devnet.seq.block_by_number(n).unwrap();
        let (s, v) = pair.reached[n as usize];
        let (s, v) = (s.unwrap(), v.unwrap_or_else(|| panic!("verifier never had block {n}")));
        assert!(s <= (b.header.timestamp + block_time) * 1000, "block {n} sealed late");
        worst = worst.max(v.saturating_sub(s));
    }
    eprintln!(
        "sequenced {} blocks, verifier unsafe {} safe {}, worst gossip lag {worst} ms",
        seq.unsafe_l2.number, ver.unsafe_l2.number, ver.safe_l2.number
    );
    assert!(worst <= 2 * block_time * 1000, "the verifier lagged {worst} ms behind");
    // The verifier's safe chain, derived from L1 alone, is the sequencer's chain.
    assert!(ver.safe_l2.number >= 100, "safe {}", ver.safe_l2.number);
    for n in 1..=ver.safe_l2.number {
        let mine = pair.devnet.engine.block_by_number(n).unwrap().envelope.execution_payload.block_hash;
        let theirs = pair.devnet.seq.block_by_number(n).unwrap().envelope.execution_payload.block_hash;
        assert_eq!(mine, theirs, "safe block {n}");
    }
    // User transactions from the engine's pool went in (noTxPool only when the spec says).
    let user_txs: usize = (1..=seq.unsafe_l2.number)
        .map(|n| {
            let txs = &pair.devnet.seq.block_by_number(n).unwrap().envelope.execution_payload.transactions;
            txs.iter().filter(|t| t.first() != Some(&0x7e)).count()
        })
        .sum();
    assert!(user_txs > 100, "user txs {user_txs}");
}

#[test]
fn an_engine_down_for_20_seconds_backs_the_sequencer_off_without_double_blocks() {
    let mut pair = Pair::new(SequencerConfig::default());
    pair.engine_down = Some((40, 60));
    pair.run(40);
    let before = pair.seq.status().unsafe_l2.number;
    pair.run(20);
    let during = pair.seq.status().unsafe_l2.number;
    assert_eq!(during, before, "nothing is sequenced while the engine is down");
    assert!(pair.engine_failures > 0);
    // Backoff: about one attempt per second, not a hot loop.
    assert!(pair.engine_failures < 100, "{} failed calls in 20 s", pair.engine_failures);
    pair.run(60);
    let after = pair.seq.status().unsafe_l2.number;
    assert!(after >= during + 25, "sequencing resumed: {during} -> {after}");
    pair.assert_one_block_per_height();
    pair.assert_chain();
    assert_eq!(pair.ver.status().unsafe_l2.number, after, "the verifier follows again");
    assert!(pair.sequencer().stats().errors > 0 || pair.engine_failures > 0);
}

#[test]
fn admin_stop_and_start_pause_sequencing_on_the_same_head() {
    let mut pair = Pair::new(SequencerConfig::default());
    pair.run(20);
    let head = pair.sequencer_mut().stop().unwrap();
    assert_eq!(pair.sequencer_mut().stop().unwrap_err().to_string(), "sequencer not running");
    pair.run(2);
    let stopped_at = pair.seq.status().unsafe_l2;
    assert_eq!(stopped_at.hash, head, "the hash returned by stop is the head");
    pair.run(20);
    assert_eq!(pair.seq.status().unsafe_l2, stopped_at, "no blocks while stopped");
    let wrong = pair.sequencer().check_start(B256::ZERO).unwrap_err().to_string();
    assert!(wrong.starts_with("block hash does not match"), "{wrong}");
    pair.sequencer().check_start(head).unwrap();
    let now = pair.now;
    pair.sequencer_mut().force_start(now);
    assert!(pair.sequencer().active());
    assert_eq!(pair.sequencer().check_start(head).unwrap_err().to_string(), "sequencer already running");
    pair.run(30);
    let resumed = pair.seq.status().unsafe_l2;
    // The missed slots are caught up at once: the chain keeps one block per block time.
    assert!(resumed.number >= stopped_at.number + 20, "{} -> {}", stopped_at.number, resumed.number);
    pair.assert_one_block_per_height();
    pair.assert_chain();
}

#[test]
fn recover_mode_builds_deposit_only_blocks_and_max_safe_lag_stalls() {
    let mut pair = Pair::new(SequencerConfig { recover: true, ..SequencerConfig::default() });
    pair.run(60);
    let head = pair.seq.status().unsafe_l2.number;
    assert!(head >= 25);
    for n in 1..=head {
        let txs = &pair.devnet.seq.block_by_number(n).unwrap().envelope.execution_payload.transactions;
        assert!(txs.iter().all(|t| t.first() == Some(&0x7e)), "block {n} has user txs in recover mode");
    }

    let mut pair = Pair::new(SequencerConfig { max_safe_lag: 2, ..SequencerConfig::default() });
    let mut worst = 0;
    for _ in 0..120 {
        pair.run(1);
        let s = pair.seq.status();
        worst = worst.max(s.unsafe_l2.number - s.safe_l2.number);
    }
    assert!(worst <= 2, "unsafe ran {worst} blocks ahead of safe");
    let head = pair.seq.status().unsafe_l2.number;
    // Stalls until the batcher's next L1 block makes the chain safe, then continues.
    assert!((20..60).contains(&head), "sequenced {head} blocks in 120 s with a lag of 2");
    pair.assert_one_block_per_height();
}
