//! Which derivers a node runs, in which order, sharing which caches: the verifier's (op-node's
//! driver, engine and derivation derivers), the sequencer after them when configured, and the
//! node's observers. `Core` is that set with its event queue and chain data: the sans-IO heart
//! that the node shell drives with real sockets and workers, and that tests drive from
//! simulators on virtual time.
//!
//! Call order: `emit` inputs, `handle_timeout(now)`, `drain(now)` until `pending()` is 0, hand
//! `poll_requests()` to whoever answers them (their answers come back through `emit`), then wait
//! for `poll_timeout()`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::derive::data::{CacheLimits, ChainData, SharedData};
use crate::derive::deriver::{ChainDataDeriver, PipelineDeriver};
use crate::driver::finalizer::{Finalizer, DEFAULT_FINALITY_LOOKBACK, FINALITY_DELAY};
use crate::driver::follow::FollowSource;
use crate::driver::l1_poll::L1Poller;
use crate::driver::runtime_config::RuntimeConfigLoader;
use crate::driver::safedb::SafeDbDeriver;
use crate::driver::sched::{Backoff, StepScheduler};
use crate::driver::sequencer::{Sequencer, SequencerConfig};
use crate::driver::status::{StatusTracker, SyncStatus};
use crate::driver::sync::SyncDeriver;
use crate::engine::attributes::AttributesHandler;
use crate::engine::controller::{EngineController, DEFAULT_UNSAFE_QUEUE_BYTES};
use crate::engine::SyncMode;
use crate::event::{self, Aborted, Clock, Deriver, Event, Request, System, MAX_QUEUED_EVENTS};
use crate::metrics::MetricsRecorder;
use crate::protocol::l1_chain::L1ChainSpec;
use crate::protocol::rollup::RollupConfig;
use crate::rpc::deferred::Deferred;
use crate::time::Now;

/// What the verifier's derivers are built from.
#[derive(Debug, Clone)]
pub struct Params {
    pub rollup: Arc<RollupConfig>,
    pub l1: Arc<L1ChainSpec>,
    pub sync_mode: SyncMode,
    pub verifier_confs: u64,
    /// With EL sync, how far behind the synced tip safe and finalized are set (L2 blocks).
    pub el_sync_offset_blocks: u64,
    pub unsafe_queue_bytes: u64,
    pub cache: CacheLimits,
    pub seed: u64,
}

impl Params {
    /// Defaults for a rollup config (consensus-layer sync, no confirmation depth).
    pub fn new(rollup: Arc<RollupConfig>, l1: Arc<L1ChainSpec>, seed: u64) -> Self {
        Params {
            rollup,
            l1,
            sync_mode: SyncMode::ConsensusLayer,
            verifier_confs: 0,
            el_sync_offset_blocks: 12 * 3600 / 2,
            unsafe_queue_bytes: DEFAULT_UNSAFE_QUEUE_BYTES,
            cache: CacheLimits::default(),
            seed,
        }
    }

    /// The shared chain-data caches for these parameters.
    pub fn chain_data(&self) -> SharedData {
        Rc::new(RefCell::new(ChainData::new(
            self.cache,
            self.rollup.deposit_contract_address,
            self.rollup.l1_system_config_address,
        )))
    }
}

/// A node's derivers as named fields, in fan-out order: every event reaches them in this order.
/// The chain-data deriver comes before the derivation derivers so they see arrived data when
/// the event reaches them; the sequencer comes after the verifier's derivers, as in op-node.
pub struct Derivers {
    /// op-node's metrics (a node always has them; a bare core for tests and benches need not).
    pub metrics: Option<MetricsRecorder>,
    pub l1_poller: Option<L1Poller>,
    pub chain_data: ChainDataDeriver,
    pub sched: StepScheduler,
    pub sync: SyncDeriver,
    /// Follow mode (`--l2.follow.source`): polls the source and checks its heads.
    pub follow: Option<FollowSource>,
    pub pipeline: PipelineDeriver,
    pub attributes: AttributesHandler,
    pub engine: EngineController,
    pub finalizer: Finalizer,
    pub status: StatusTracker,
    pub sequencer: Option<Sequencer>,
    pub safedb: Option<SafeDbDeriver>,
    pub runtime_config: Option<RuntimeConfigLoader>,
    /// Open deferred RPC calls (with the RPC server).
    pub rpc_calls: Option<Deferred>,
    /// Observers the embedding program adds last (the devnet's progress reporter).
    pub extra: Vec<(&'static str, Box<dyn Deriver>)>,
}

impl Derivers {
    /// The verifier's derivers over `data`.
    pub fn verifier(p: &Params, data: &SharedData) -> Derivers {
        let cfg = &p.rollup;
        Derivers {
            metrics: None,
            l1_poller: None,
            chain_data: ChainDataDeriver::new(cfg.clone(), data.clone(), p.verifier_confs),
            sched: StepScheduler::new(Backoff::exponential(p.seed)),
            sync: SyncDeriver::for_mode(p.sync_mode),
            follow: None,
            pipeline: PipelineDeriver::new(cfg.clone(), p.l1.clone(), data.clone()),
            attributes: AttributesHandler::new(cfg.clone(), data.clone()),
            engine: EngineController::new(
                cfg.clone(),
                data.clone(),
                p.sync_mode,
                p.el_sync_offset_blocks,
                p.unsafe_queue_bytes,
            ),
            finalizer: Finalizer::new(data.clone(), DEFAULT_FINALITY_LOOKBACK, FINALITY_DELAY),
            status: StatusTracker::new(),
            sequencer: None,
            safedb: None,
            runtime_config: None,
            rpc_calls: None,
            extra: Vec::new(),
        }
    }
}

impl event::Derivers for Derivers {
    fn each(&mut self, f: &mut impl FnMut(&'static str, &mut dyn Deriver)) {
        if let Some(d) = &mut self.metrics {
            f("metrics", d);
        }
        if let Some(d) = &mut self.l1_poller {
            f("l1-poller", d);
        }
        f("chain-data", &mut self.chain_data);
        f("step-scheduler", &mut self.sched);
        f("sync", &mut self.sync);
        if let Some(d) = &mut self.follow {
            f("follow-source", d);
        }
        f("pipeline", &mut self.pipeline);
        f("attributes", &mut self.attributes);
        f("engine", &mut self.engine);
        f("finalizer", &mut self.finalizer);
        f("status", &mut self.status);
        if let Some(d) = &mut self.sequencer {
            f("sequencer", d);
        }
        if let Some(d) = &mut self.safedb {
            f("safe-db", d);
        }
        if let Some(d) = &mut self.runtime_config {
            f("runtime-config", d);
        }
        if let Some(d) = &mut self.rpc_calls {
            f("rpc-calls", d);
        }
        self.extra.each(f);
    }

    fn each_ref(&self, f: &mut impl FnMut(&dyn Deriver)) {
        if let Some(d) = &self.metrics {
            f(d);
        }
        if let Some(d) = &self.l1_poller {
            f(d);
        }
        f(&self.chain_data);
        f(&self.sched);
        f(&self.sync);
        if let Some(d) = &self.follow {
            f(d);
        }
        f(&self.pipeline);
        f(&self.attributes);
        f(&self.engine);
        f(&self.finalizer);
        f(&self.status);
        if let Some(d) = &self.sequencer {
            f(d);
        }
        if let Some(d) = &self.safedb {
            f(d);
        }
        if let Some(d) = &self.runtime_config {
            f(d);
        }
        if let Some(d) = &self.rpc_calls {
            f(d);
        }
        self.extra.each_ref(f);
    }
}

/// The derivers with their event queue and shared chain data.
pub struct Core {
    pub system: System,
    pub derivers: Derivers,
    pub data: SharedData,
    pub params: Params,
}

impl Core {
    /// A verifier; `clock` times event processing for the metrics.
    pub fn verifier(params: Params, clock: Clock) -> Core {
        let data = params.chain_data();
        let derivers = Derivers::verifier(&params, &data);
        Core { system: System::new(MAX_QUEUED_EVENTS, clock), derivers, data, params }
    }

    /// A verifier on virtual time: event processing is timed against `now` (tests, benches).
    pub fn at(params: Params, now: Now) -> Core {
        let t0 = now.mono;
        Core::verifier(params, Box::new(move || t0))
    }

    /// Adds the sequencer and starts it when configured active.
    pub fn add_sequencer(&mut self, conf: SequencerConfig, now: Now) {
        let p = &self.params;
        let mut seq = Sequencer::new(p.rollup.clone(), p.l1.clone(), self.data.clone(), conf);
        seq.init(now, self.system.emitter());
        self.derivers.sequencer = Some(seq);
    }

    /// Follow mode: the safe chain comes from a source node polled every two L2 block times
    /// (op-node's pace); derivation never runs. Call after `add_sequencer` when there is one.
    pub fn follow_source(&mut self, check_l1: bool) {
        let interval = std::time::Duration::from_secs(2 * self.params.rollup.block_time.max(1));
        let sequencer = self.derivers.sequencer.is_some();
        let d = &mut self.derivers;
        let follow = FollowSource::new(self.data.clone(), interval, check_l1);
        // A sequencer polls L1's head for its origins; a verifier polls no L1 at all.
        d.follow = Some(if sequencer { follow } else { follow.reporting_l1_head() });
        d.status.head_jumps = !sequencer && check_l1;
        d.pipeline.disabled = true;
        d.sync = std::mem::take(&mut d.sync).following(sequencer);
        d.engine.set_following(sequencer);
    }

    /// Emits an event from outside the derivers (inputs, I/O results).
    pub fn emit(&mut self, ev: Event) {
        self.system.emit(ev);
    }

    /// Lets every deriver fire its due timers.
    pub fn handle_timeout(&mut self, now: Now) {
        self.system.handle_timeout(&mut self.derivers, now);
    }

    /// Runs events until the queue is empty.
    pub fn drain(&mut self, now: Now) -> Result<(), Aborted> {
        self.system.drain(&mut self.derivers, now)
    }

    /// Runs at most `budget` events; returns how many ran.
    pub fn drain_bounded(&mut self, now: Now, budget: usize) -> Result<usize, Aborted> {
        self.system.drain_bounded(&mut self.derivers, now, budget)
    }

    /// The earliest deadline any deriver asked for.
    pub fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        self.system.poll_timeout(&self.derivers)
    }

    /// The earliest deadline any deriver asked for, each first moved by `adjust`.
    pub fn poll_timeout_by(
        &self,
        adjust: impl Fn((Instant, &'static str)) -> (Instant, &'static str),
    ) -> Option<(Instant, &'static str)> {
        self.system.poll_timeout_by(&self.derivers, adjust)
    }

    /// The I/O the derivers and the chain-data caches asked for since the last call.
    pub fn poll_requests(&mut self) -> Vec<Request> {
        let mut reqs = self.system.poll_requests();
        reqs.extend(self.data.borrow_mut().poll_requests().into_iter().map(Request::Fetch));
        reqs
    }

    /// Events queued and not yet run.
    pub fn pending(&self) -> usize {
        self.system.pending()
    }

    /// The sync status (op-node `eth.SyncStatus`).
    pub fn status(&self) -> SyncStatus {
        self.derivers.status.status
    }
}
