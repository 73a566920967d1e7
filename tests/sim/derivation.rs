//! The verifier's derivers, wired as the node wires them, against the L1 simulator and the
//! engine stand-in on virtual time: no sockets, no threads, no sleeping.

use std::sync::Arc;
use std::time::Duration;

use op_lite::devnet::chain::serve_fetch;
use op_lite::devnet::engine_sim::EngineSim;
use op_lite::devnet::l1_sim::{Account, L1Sim};
use op_lite::devnet::{self, DEVNET_L1_CHAIN_ID};
use op_lite::driver::status::SyncStatus;
use op_lite::event::{Event, Request};
use op_lite::node::{Core, Params};
use op_lite::protocol::l1_chain::L1ChainSpec;
use op_lite::protocol::rollup::RollupConfig;
use op_lite::time::Now;

/// A verifier core with its simulated L1 and engine (scenarios use different parts of it).
#[allow(dead_code)]
pub struct Sim {
    pub core: Core,
    pub l1: L1Sim,
    pub engine: EngineSim,
    pub cfg: Arc<RollupConfig>,
    pub now: Now,
    pub batcher: Account,
    /// Engine calls answered so far.
    pub engine_calls: u64,
    /// When set, engine calls fail as if the engine were down.
    pub engine_down: bool,
}

impl Sim {
    pub fn new(seq_window: u64) -> Sim {
        let l1 = L1Sim::new(DEVNET_L1_CHAIN_ID, 1_700_000_000, 12);
        let batcher = Account::from_seed("devnet batcher");
        let cfg = devnet::rollup_config(
            l1.genesis().block_ref().id(),
            l1.genesis().info.time(),
            batcher.address,
            seq_window,
            50,
            &devnet::default_forks(),
        );
        Sim::with_config(l1, cfg, batcher)
    }

    pub fn with_config(l1: L1Sim, cfg: RollupConfig, batcher: Account) -> Sim {
        if let Ok(level) = std::env::var("SIM_LOG") {
            let level = level.parse().unwrap_or(log::LevelFilter::Debug);
            op_lite::io::log::init(level, op_lite::io::log::LogFormat::Text, false);
        }
        let cfg = Arc::new(cfg);
        let params = Params::new(cfg.clone(), Arc::new(L1ChainSpec::dev(DEVNET_L1_CHAIN_ID)), 7);
        let t0 = Now::new(std::time::Instant::now(), l1.head().info.time() * 1000);
        let core = Core::at(params, t0);
        let engine = EngineSim::new(cfg.clone());
        let mut sim = Sim { core, l1, engine, cfg, now: t0, batcher, engine_calls: 0, engine_down: false };
        sim.announce_l1();
        sim.core.emit(Event::StepReq { reset_backoff: false });
        sim
    }

    /// Tells the node about the L1 head, safe and finalized blocks.
    pub fn announce_l1(&mut self) {
        self.core.emit(Event::L1HeadUpdated(self.l1.head().block_ref()));
        self.core.emit(Event::L1SafeUpdated(self.l1.safe().block_ref()));
        self.core.emit(Event::L1FinalizedUpdated(self.l1.finalized().block_ref()));
    }

    /// Runs events, timers and requests until nothing is left to do at the current time.
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            self.core.handle_timeout(self.now);
            self.core.drain(self.now).expect("no critical error");
            let reqs = self.core.poll_requests();
            if reqs.is_empty() && self.core.pending() == 0 {
                let due = self.core.poll_timeout().is_some_and(|(t, _)| t <= self.now.mono);
                if !due {
                    return;
                }
                continue;
            }
            for r in reqs {
                let ev = match r {
                    Request::Fetch(f) => {
                        Event::ChainDataArrived(Box::new(serve_fetch(&self.l1, &self.engine, f)))
                    }
                    Request::Engine { id, call } => {
                        self.engine_calls += 1;
                        let result = if self.engine_down {
                            Err(op_lite::engine::api::EngineError::Transport("connection refused".into()))
                        } else {
                            self.engine.handle(&call)
                        };
                        Event::EngineReplied { id, result }
                    }
                    Request::LoadRuntimeConfig { .. } => {
                        Event::RuntimeConfigLoadFailed { err: "not simulated".into() }
                    }
                    Request::Stop
                    | Request::PublishBlock(_)
                    | Request::Rpc(_)
                    | Request::PollFollowSource => continue,
                    Request::PollL1 { label, .. } => {
                        use op_lite::driver::l1_poll::L1Label;
                        match label {
                            L1Label::Latest => Event::L1HeadUpdated(self.l1.head().block_ref()),
                            L1Label::Safe => Event::L1SafeUpdated(self.l1.safe().block_ref()),
                            L1Label::Finalized => Event::L1FinalizedUpdated(self.l1.finalized().block_ref()),
                        }
                    }
                };
                self.core.emit(ev);
            }
        }
        panic!("the node did not settle");
    }

    /// Advances virtual time by `d`, firing timers on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now.advance(d);
        loop {
            self.settle();
            match self.core.poll_timeout() {
                Some((t, _)) if t <= end.mono => {
                    self.now = self.now.advance(t.saturating_duration_since(self.now.mono));
                }
                _ => break,
            }
        }
        self.now = end;
        self.settle();
    }

    /// Seals `n` L1 blocks, announcing each, letting the node work between them.
    pub fn l1_blocks(&mut self, n: u64) {
        for _ in 0..n {
            self.l1.seal();
            self.announce_l1();
            self.advance(Duration::from_secs(12));
        }
    }

    pub fn status(&self) -> SyncStatus {
        self.core.status()
    }

    #[allow(dead_code)]
    pub fn engine_heads(&self) -> op_lite::engine::EngineHeads {
        self.core.derivers.engine.heads()
    }
}

/// With no batcher data at all, the sequencing window expires and the chain advances with
/// deposit-only blocks; safe and finalized heads follow L1.
#[test]
fn empty_epochs_are_derived_when_the_sequencing_window_expires() {
    let mut sim = Sim::new(4);
    sim.l1_blocks(12);
    let s = sim.status();
    // Epochs up to head - seq window have expired: 6 L2 blocks per 12 s L1 block.
    assert!(s.safe_l2.number >= 6 * (12 - 4) - 6, "safe {}", s.safe_l2);
    assert_eq!(s.unsafe_l2, s.safe_l2);
    assert_eq!(sim.engine.head, s.unsafe_l2.hash);
    assert!(s.finalized_l2.number > 0, "finalized {}", s.finalized_l2);
    assert!(s.finalized_l2.number <= s.safe_l2.number);
    // Every derived block carries only the L1-info deposit.
    for n in 1..=s.safe_l2.number {
        let b = sim.engine.block_by_number(n).unwrap();
        assert_eq!(b.envelope.execution_payload.transactions.len(), 1, "block {n}");
    }
    assert_eq!(s.head_l1.number, 12);
    assert!(s.current_l1.number >= 8);
}
