//! Follow mode on virtual time: a source node (a verifier core deriving the devnet's chain from
//! its L1) and a light node (a core in follow mode on an engine of its own, getting the
//! sequenced blocks as gossip and the source's `optimism_syncStatus` when it polls). The
//! source moves, goes down, lies and goes backwards; the light node's engine holds a chain that
//! conflicts with the source's. The light node must track the source's safe and finalized heads
//! hash for hash when the source is honest, refuse it when it is not, keep its unsafe chain
//! moving through gossip meanwhile, and never fetch what derivation would (L1 bodies, receipts,
//! blobs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use op_lite::derive::data::FetchRequest;
use op_lite::devnet::chain::{serve_fetch, Devnet, DevnetParams};
use op_lite::devnet::engine_sim::EngineSim;
use op_lite::devnet::DEVNET_L1_CHAIN_ID;
use op_lite::driver::l1_poll::{L1Label, L1Poller};
use op_lite::driver::status::SyncStatus;
use op_lite::event::{Event, Request};
use op_lite::metrics::MetricsRecorder;
use op_lite::node::{Core, Params};
use op_lite::protocol::block_ref::L2BlockRef;
use op_lite::protocol::l1_chain::L1ChainSpec;
use op_lite::protocol::primitives::B256;
use op_lite::time::Now;

/// What the source does wrong, between `from` and `to` (virtual seconds since start).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// The source does not answer.
    Down {
        from: u64,
        to: u64,
    },
    /// The source's safe head claims an L1 origin our L1 does not have.
    Lies {
        from: u64,
        to: u64,
    },
    /// The source answers with the status it had `by` seconds earlier.
    Backwards {
        from: u64,
        to: u64,
        by: u64,
    },
}

struct Pair {
    devnet: Devnet,
    source: Core,
    light: Core,
    light_engine: EngineSim,
    now: Now,
    start: u64,
    fault: Fault,
    /// The source's status by virtual second, for a source that goes back in time.
    history: BTreeMap<u64, SyncStatus>,
    /// The light node's L1 requests by kind, and its polls of the source.
    light_l1: BTreeMap<&'static str, u64>,
    polls: u64,
    polls_answered: u64,
    gossiped: u64,
    gossip: Gossip,
    /// Another chain on the same genesis (another producer's transactions).
    fork: Option<Devnet>,
}

/// Where the light node's gossip comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gossip {
    Devnet,
    Fork,
    Off,
}

fn core(devnet: &Devnet, t0: Now) -> Core {
    let cfg = Arc::new(devnet.rollup_config().clone());
    let mut core = Core::at(Params::new(cfg, Arc::new(L1ChainSpec::dev(DEVNET_L1_CHAIN_ID)), 3), t0);
    core.derivers.l1_poller = Some(L1Poller::new(Duration::from_secs(6), Duration::from_secs(6)));
    core.derivers.metrics = Some(MetricsRecorder::default());
    core
}

impl Pair {
    fn new(fault: Fault) -> Pair {
        let params = DevnetParams { seed: 11, ..DevnetParams::default() };
        let start = params.genesis_time;
        let devnet = Devnet::new(params).unwrap();
        let t0 = Now::new(std::time::Instant::now(), start * 1000);
        let mut source = core(&devnet, t0);
        source.emit(Event::StepReq { reset_backoff: false });
        let mut light = core(&devnet, t0);
        // As the node runs one: a light verifier polls no L1 head.
        light.derivers.l1_poller = None;
        light.follow_source(true);
        light.emit(Event::StepReq { reset_backoff: false });
        let light_engine = EngineSim::new(Arc::new(devnet.rollup_config().clone()));
        Pair {
            devnet,
            source,
            light,
            light_engine,
            now: t0,
            start,
            fault,
            history: BTreeMap::new(),
            light_l1: BTreeMap::new(),
            polls: 0,
            polls_answered: 0,
            gossiped: 1,
            gossip: Gossip::Devnet,
            fork: None,
        }
    }

    fn elapsed(&self) -> u64 {
        self.now.unix_ms / 1000 - self.start
    }

    fn within(&self, from: u64, to: u64) -> bool {
        (from..to).contains(&self.elapsed())
    }

    /// What the source says when polled now.
    fn source_status(&self) -> Result<SyncStatus, String> {
        let s = self.source.status();
        match self.fault {
            Fault::Down { from, to } if self.within(from, to) => Err("connection refused".into()),
            Fault::Lies { from, to } if self.within(from, to) => {
                let mut s = s;
                for r in [&mut s.safe_l2, &mut s.local_safe_l2] {
                    r.number += 5;
                    r.hash = B256([0x66; 32]);
                    r.l1origin.hash = B256([0x77; 32]);
                }
                Ok(s)
            }
            Fault::Backwards { from, to, by } if self.within(from, to) => {
                let then = self.elapsed() - by;
                Ok(*self.history.range(..=then).next_back().map(|(_, s)| s).unwrap_or(&s))
            }
            _ => Ok(s),
        }
    }

    fn answer_source(&mut self, r: Request) -> Option<Event> {
        let l1 = &self.devnet.l1;
        Some(match r {
            Request::Fetch(f) => Event::ChainDataArrived(Box::new(serve_fetch(l1, &self.devnet.engine, f))),
            Request::PollL1 { label, .. } => poll(&self.devnet, &self.devnet.engine, label),
            Request::Engine { id, call } => {
                Event::EngineReplied { id, result: self.devnet.engine.handle(&call) }
            }
            _ => return None,
        })
    }

    fn answer_light(&mut self, r: Request) -> Option<Event> {
        Some(match r {
            Request::PollFollowSource => {
                self.polls += 1;
                let s = self.source_status();
                self.polls_answered += s.is_ok() as u64;
                Event::FollowSourceStatus(s.map(Box::new))
            }
            Request::Fetch(f) => {
                let kind = match &f {
                    FetchRequest::L1HeaderByNumber(_) | FetchRequest::L1HeaderByHash(_) => "header",
                    FetchRequest::L1BlockByHash(_) => "block",
                    FetchRequest::L1Receipts { .. } => "receipts",
                    FetchRequest::Blobs { .. } => "blobs",
                    _ => "l2",
                };
                *self.light_l1.entry(kind).or_default() += 1;
                Event::ChainDataArrived(Box::new(serve_fetch(&self.devnet.l1, &self.light_engine, f)))
            }
            Request::PollL1 { label, .. } => {
                *self.light_l1.entry("poll").or_default() += 1;
                poll(&self.devnet, &self.light_engine, label)
            }
            Request::Engine { id, call } => {
                Event::EngineReplied { id, result: self.light_engine.handle(&call) }
            }
            _ => return None,
        })
    }

    fn settle(&mut self) {
        for _ in 0..200_000 {
            let mut quiet = true;
            for light in [false, true] {
                let c = if light { &mut self.light } else { &mut self.source };
                c.handle_timeout(self.now);
                c.drain(self.now).expect("no critical error");
                let reqs = c.poll_requests();
                quiet &= reqs.is_empty() && c.pending() == 0;
                for r in reqs {
                    let ev = if light { self.answer_light(r) } else { self.answer_source(r) };
                    if let Some(ev) = ev {
                        let c = if light { &mut self.light } else { &mut self.source };
                        c.emit(ev);
                    }
                }
            }
            if quiet {
                return;
            }
        }
        panic!("the nodes did not settle");
    }

    /// Sequenced blocks reach the light node as gossip.
    fn gossip(&mut self) {
        let chain = match (self.gossip, &self.fork) {
            (Gossip::Devnet, _) => &self.devnet,
            (Gossip::Fork, Some(f)) => f,
            _ => return,
        };
        let head = chain.sequenced_head();
        for n in self.gossiped..=head {
            let env = chain.sequenced_block(n).unwrap().envelope.clone();
            self.light.emit(Event::ReceivedUnsafePayload(Box::new(env)));
        }
        self.gossiped = head + 1;
    }

    fn run(&mut self, secs: u64) {
        let end = self.now.advance(Duration::from_secs(secs));
        while self.now.mono < end.mono {
            let next = [self.source.poll_timeout(), self.light.poll_timeout()]
                .into_iter()
                .flatten()
                .map(|(t, _)| t)
                .min()
                .map_or(end.mono, |t| t.min(end.mono));
            let step = next
                .saturating_duration_since(self.now.mono)
                .clamp(Duration::from_millis(50), Duration::from_secs(1));
            self.now = self.now.advance(step);
            let t = self.now.unix_ms / 1000;
            self.devnet.advance_to(t).unwrap();
            if let Some(f) = &mut self.fork {
                f.advance_to(t).unwrap();
            }
            self.gossip();
            self.settle();
            let e = self.elapsed();
            self.history.entry(e).or_insert(self.source.status());
        }
    }

    fn light(&self) -> SyncStatus {
        self.light.status()
    }

    fn results(&self) -> String {
        self.light.derivers.metrics.as_ref().unwrap().metrics.render()
    }

    fn result_count(&self, result: &str) -> u64 {
        let needle = format!("op_node_default_follow_source_requests_total{{result=\"{result}\"}} ");
        self.results()
            .lines()
            .find_map(|l| l.strip_prefix(needle.as_str()))
            .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
    }

    /// The light node's safe and finalized heads are at least where the source's were one
    /// poll (4 s) and a second ago: a poll's lag, as the source's heads jump when batches land.
    fn caught_up(&self) -> bool {
        let then = self.history.range(..=self.elapsed() - 5).next_back().map(|(_, s)| *s).unwrap_or_default();
        let light = self.light();
        light.safe_l2.number >= then.safe_l2.number && light.finalized_l2.number >= then.finalized_l2.number
    }

    /// The devnet's block at `r`'s height is `r`.
    fn on_devnet_chain(&self, r: &L2BlockRef) -> bool {
        self.devnet.sequenced_block(r.number).map(|b| b.envelope.execution_payload.block_hash) == Some(r.hash)
    }
}

/// A poll's answer: the head's header lands in the caches, as the L1 worker's does.
fn poll(devnet: &Devnet, engine: &EngineSim, label: L1Label) -> Event {
    let l1 = &devnet.l1;
    match label {
        L1Label::Latest => {
            let head = FetchRequest::L1HeaderByNumber(l1.head().block_ref().number);
            Event::L1HeadPolled(Box::new(serve_fetch(l1, engine, head)))
        }
        L1Label::Safe => Event::L1SafeUpdated(l1.safe().block_ref()),
        L1Label::Finalized => Event::L1FinalizedUpdated(l1.finalized().block_ref()),
    }
}

#[test]
fn the_light_node_tracks_the_source_hash_for_hash_and_derives_nothing() {
    let mut p = Pair::new(Fault::None);
    let mut safe_updates = 0;
    for _ in 0..300 {
        let before = p.light().safe_l2;
        p.run(1);
        safe_updates += u64::from(p.light().safe_l2 != before);
    }
    let (src, light) = (p.source.status(), p.light());
    assert!(src.safe_l2.number > 60 && src.finalized_l2.number > 10, "the source derives: {src:?}");
    // Within one poll of the source, on the same chain.
    assert!(p.caught_up(), "light safe {} source {}", light.safe_l2, src.safe_l2);
    for r in [light.safe_l2, light.local_safe_l2, light.finalized_l2, light.unsafe_l2] {
        assert!(p.on_devnet_chain(&r), "{r} is on the source's chain");
    }
    assert!(light.unsafe_l2.number >= light.safe_l2.number);
    // The engine got the same labels.
    assert_eq!(p.light_engine.safe, light.safe_l2.hash);
    assert_eq!(p.light_engine.finalized, light.finalized_l2.hash);
    // The light node's derivation origin and L1 head: the newest L1 block its checks fetched,
    // at most a few blocks behind the source's current L1.
    assert!(light.current_l1.number > 0 && light.current_l1.number + 3 >= src.current_l1.number);
    assert_eq!(light.head_l1, light.current_l1);
    // No derivation: no L1 bodies, receipts or blobs; headers only for the checks.
    for kind in ["block", "receipts", "blobs"] {
        assert_eq!(p.light_l1.get(kind), None, "light node fetched {kind}: {:?}", p.light_l1);
    }
    assert_eq!(p.light.derivers.pipeline.pipeline.origin(), Default::default());
    assert!(p.result_count("success") > 60, "{}", p.results());
    assert_eq!(p.result_count("error_l1_mismatch"), 0);
    // No L1 polls: the checks fetch a header only when the cache cannot settle an origin, at
    // most one per safe-head update (each header checks the origin below it too).
    assert_eq!(p.light_l1.get("poll"), None, "{:?}", p.light_l1);
    let headers = p.light_l1.get("header").copied().unwrap_or(0);
    assert!(headers > 0 && headers <= safe_updates, "{headers} headers for {safe_updates} safe-head updates");
}

#[test]
fn a_source_down_for_a_minute_is_polled_with_backoff_while_gossip_moves_the_unsafe_head() {
    let mut p = Pair::new(Fault::Down { from: 40, to: 100 });
    p.run(40);
    let before = p.light();
    let polls_before = p.polls;
    p.run(60);
    let during = p.light();
    // Down for 60 s: 4 s, then 8, 16, 30, 30 s apart instead of every 4 s.
    let down_polls = p.polls - polls_before;
    assert!((3..=6).contains(&down_polls), "{down_polls} polls while down");
    assert_eq!(during.safe_l2, before.safe_l2, "nothing to adopt while down");
    assert!(during.unsafe_l2.number >= before.unsafe_l2.number + 25, "unsafe moved by gossip");
    assert_eq!(p.result_count("error_fetch_status"), down_polls);
    // Back: caught up within a backoff period plus a poll.
    p.run(40);
    let after = p.light();
    assert!(p.caught_up());
    assert!(p.on_devnet_chain(&after.safe_l2));
}

#[test]
fn a_source_claiming_an_l1_origin_our_l1_does_not_have_is_not_followed() {
    let mut p = Pair::new(Fault::Lies { from: 60, to: 120 });
    p.run(60);
    let honest = p.light().safe_l2;
    p.run(60);
    let light = p.light();
    assert_eq!(light.safe_l2, honest, "the lie was not adopted");
    assert!(p.on_devnet_chain(&light.safe_l2));
    assert!(p.result_count("error_l1_mismatch") >= 10, "{}", p.results());
    p.run(30);
    assert!(p.light().safe_l2.number > honest.number + 10, "followed again once honest");
}

#[test]
fn a_source_going_backwards_is_not_followed() {
    let mut p = Pair::new(Fault::Backwards { from: 100, to: 140, by: 60 });
    p.run(100);
    let before = p.light().safe_l2;
    p.run(40);
    assert_eq!(p.light().safe_l2, before);
    assert!(p.result_count("error_backwards") >= 5, "{}", p.results());
    p.run(20);
    assert!(p.light().safe_l2.number > before.number);
}

#[test]
fn a_conflicting_unsafe_chain_is_reorged_onto_the_sources_safe_chain() {
    // For the first 50 s the source is down and the light node's gossip comes from another
    // chain on the same genesis (another producer's transactions): its engine builds a chain
    // the source never derives, longer than the source's safe chain when it returns.
    let mut p = Pair::new(Fault::Down { from: 0, to: 50 });
    let other = Devnet::new(DevnetParams { seed: 12, ..DevnetParams::default() }).unwrap();
    assert_eq!(other.rollup_config().genesis.l2.hash, p.devnet.rollup_config().genesis.l2.hash);
    p.fork = Some(other);
    p.gossip = Gossip::Fork;
    p.run(50);
    let forked = p.light();
    assert!(forked.unsafe_l2.number > 20 && !p.on_devnet_chain(&forked.unsafe_l2), "on the other chain");
    // The source answers again (its poll at 54 s, after backoff). The light engine has the
    // other chain's block at the source's local-safe height: the light node reorgs, moving its
    // unsafe head back onto the source's block, which its engine lacks (SYNCING, accepted in
    // follow mode: the engine syncs it from its peers).
    p.gossip = Gossip::Off;
    p.run(6);
    assert_eq!(p.result_count("success"), 1);
    let target = p.light.derivers.engine.heads().unsafe_head;
    assert!(p.on_devnet_chain(&target), "unsafe head moved to the source's local safe {target}");
    assert!(
        target.number > 0 && target.number <= forked.unsafe_l2.number,
        "a reorg, not a move up: {target}"
    );
    assert!(target.number <= p.source.status().local_safe_l2.number);
    // The engine's EL sync, done here by hand: the source's chain up to the target, made canonical.
    for n in 1..=target.number {
        let env = p.devnet.sequenced_block(n).unwrap().envelope.clone();
        let version = op_lite::engine::api::new_payload_version(
            p.devnet.rollup_config(),
            env.execution_payload.timestamp,
        );
        let call = op_lite::engine::api::EngineCall::NewPayload { version, envelope: Box::new(env) };
        p.light_engine.handle(&call).unwrap();
    }
    let state = op_lite::engine::api::ForkchoiceState {
        head_block_hash: target.hash,
        safe_block_hash: B256::ZERO,
        finalized_block_hash: B256::ZERO,
    };
    let fcu = op_lite::engine::api::EngineCall::ForkchoiceUpdated { version: 3, state, attributes: None };
    p.light_engine.handle(&fcu).unwrap();
    // Gossip from the source's chain resumes after the target.
    p.gossiped = target.number + 1;
    p.gossip = Gossip::Devnet;
    p.run(60);
    let light = p.light();
    let src = p.source.status();
    for r in [light.unsafe_l2, light.safe_l2, light.finalized_l2] {
        assert!(p.on_devnet_chain(&r), "{r} on the source's chain");
    }
    assert!(p.caught_up());
    assert!(light.unsafe_l2.number >= src.safe_l2.number);
    assert_eq!(p.light_engine.safe, light.safe_l2.hash);
}
