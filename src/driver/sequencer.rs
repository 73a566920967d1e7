//! The sequencer (op-node `rollup/sequencing`): picks the next block's L1 origin, prepares its
//! payload attributes, and drives the engine controller's block-building cycle — start (fcu with
//! attributes), seal (getPayload shortly before the block's time), publish (gossip), insert
//! (newPayload + fcu) — on the driver loop's timer.
//!
//! It is one deriver: its next action is a deadline (`poll_timeout`) that becomes a
//! `SequencerAction` event, as op-node's sequencer timer does, so sequencing work is queued
//! ahead of derivation steps. Engine results come back as the controller's build events; every
//! failure backs off (one block time after an invalid build, 1 s after a temporary error, 30 s
//! while the engine syncs) and a build is only ever started on the latest head, so two blocks
//! are never produced at one height.
//!
//! The L1 origin selector is op-node's: stay on the current origin while the next L1 block is
//! unknown (or hidden by `--sequencer.l1-confs`), adopt the next one once the L2 block's time
//! reaches it, and require it when the drift would exceed the fork's maximum. L1 headers and
//! receipts come from the shared chain-data cache; a miss waits for the fetch (it emits no
//! error) and the arrival retries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::derive::attributes::{prepare_payload_attributes, AttributesWithParent};
use crate::derive::data::{Miss, SharedData};
use crate::derive::l2::{self, L2BlockParts};
use crate::derive::{Cx, DeriveMetrics, StageError};
use crate::engine::api::PayloadInfo;
use crate::event::{Deriver, Emitter, Event, Request};
use crate::protocol::block_ref::{L1BlockRef, L2BlockRef};
use crate::protocol::l1_chain::L1ChainSpec;
use crate::protocol::payload::ExecutionPayloadEnvelope;
use crate::protocol::primitives::B256;
use crate::protocol::rollup::{Fork, RollupConfig};
use crate::time::Now;

/// op-node's default `--sequencer.sealing-duration`.
pub const DEFAULT_SEALING_DURATION: Duration = Duration::from_millis(50);

/// How the sequencer runs (op-node's `--sequencer.*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequencerConfig {
    /// Start active (`!--sequencer.stopped`, or the persisted admin state).
    pub active: bool,
    /// `--sequencer.l1-confs`: distance kept from the L1 head when choosing an origin.
    pub l1_confs: u64,
    /// `--sequencer.sealing-duration`: getPayload this long before the block's time.
    pub sealing_duration: Duration,
    /// `--sequencer.max-safe-lag`: stall while unsafe is this far ahead of safe (0: never).
    pub max_safe_lag: u64,
    /// `--sequencer.recover`: adopt L1 origins eagerly and build deposit-only blocks.
    pub recover: bool,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        SequencerConfig {
            active: true,
            l1_confs: 4,
            sealing_duration: DEFAULT_SEALING_DURATION,
            max_safe_lag: 0,
            recover: false,
        }
    }
}

/// Why an admin start or stop was refused (op-node's texts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    AlreadyStarted,
    AlreadyStopped,
    NoPrestate { requested: B256 },
    HashMismatch { head: Box<L2BlockRef>, requested: B256 },
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::AlreadyStarted => f.write_str("sequencer already running"),
            AdminError::AlreadyStopped => f.write_str("sequencer not running"),
            AdminError::NoPrestate { requested } => {
                write!(f, "no prestate, cannot determine if sequencer start at {requested} is safe")
            }
            AdminError::HashMismatch { head, requested } => {
                write!(f, "block hash does not match: head {head}, received {requested}")
            }
        }
    }
}

impl std::error::Error for AdminError {}

/// The block being built (op-node `BuildingState`): what it builds on, the engine's job once
/// started, and its ref once sealed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Building {
    onto: Option<L2BlockRef>,
    info: Option<PayloadInfo>,
    sealed: Option<L2BlockRef>,
}

/// Why no L1 origin could be chosen right now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OriginError {
    /// Waiting for an L1 header fetch.
    Pending,
    /// The L2 head's origin or the next origin is off the L1 chain as last seen.
    Reset(String),
    /// The next origin is required (drift) but L1 does not have it yet.
    Temporary(String),
}

/// Counters for metrics and the bench.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SequencerStats {
    pub started: u64,
    pub sealed: u64,
    pub inserted: u64,
    pub errors: u64,
    pub resets: u64,
}

/// The sequencer deriver.
pub struct Sequencer {
    cfg: Arc<RollupConfig>,
    l1: Arc<L1ChainSpec>,
    data: SharedData,
    conf: SequencerConfig,
    active: bool,
    latest: Building,
    latest_sealed: L2BlockRef,
    latest_head: L2BlockRef,
    /// The next action, when one is allowed (op-node `nextAction` / `nextActionOK`).
    next_action: Option<Instant>,
    /// A start that waits for chain data: retried when data arrives.
    waiting_for_data: bool,
    /// Stalled by `--sequencer.max-safe-lag` until safe catches up.
    stalled: bool,
    /// The sealed payload not yet inserted (op-node's async gossiper buffer): published once,
    /// re-processed after a temporary insertion failure instead of being built again.
    unconfirmed: Option<Box<ExecutionPayloadEnvelope>>,
    l1_head: L1BlockRef,
    stats: SequencerStats,
}

impl Sequencer {
    pub fn new(
        cfg: Arc<RollupConfig>,
        l1: Arc<L1ChainSpec>,
        data: SharedData,
        conf: SequencerConfig,
    ) -> Self {
        Sequencer {
            cfg,
            l1,
            data,
            conf,
            active: false,
            latest: Building::default(),
            latest_sealed: L2BlockRef::default(),
            latest_head: L2BlockRef::default(),
            next_action: None,
            waiting_for_data: false,
            stalled: false,
            unconfirmed: None,
            l1_head: L1BlockRef::default(),
            stats: SequencerStats::default(),
        }
    }

    /// op-node `Init`: ask for the heads (the first forkchoice update sets the pre-state) and
    /// start if configured active.
    pub fn init(&mut self, now: Now, out: &mut Emitter) {
        out.emit(Event::TryUpdateEngine);
        if self.conf.active {
            self.force_start(now);
        }
    }

    pub fn active(&self) -> bool {
        self.active
    }

    pub fn stats(&self) -> SequencerStats {
        self.stats
    }

    pub fn set_max_safe_lag(&mut self, lag: u64) {
        self.conf.max_safe_lag = lag;
    }

    pub fn set_recover_mode(&mut self, recover: bool) {
        self.conf.recover = recover;
    }

    /// Checks an `admin_startSequencer(hash)` request without starting (so the caller can
    /// persist the new state first, as op-node's state listener does).
    pub fn check_start(&self, head: B256) -> Result<(), AdminError> {
        if self.active {
            return Err(AdminError::AlreadyStarted);
        }
        if self.latest_head == L2BlockRef::default() {
            return Err(AdminError::NoPrestate { requested: head });
        }
        if head != self.latest_head.hash {
            return Err(AdminError::HashMismatch { head: Box::new(self.latest_head), requested: head });
        }
        Ok(())
    }

    /// Starts sequencing on the current head without checks (op-node `forceStart`).
    pub fn force_start(&mut self, now: Now) {
        if self.latest_head == L2BlockRef::default() {
            log::info!("starting sequencing, without known pre-state");
            self.unconfirmed = None;
        } else {
            log::info!("starting sequencing on top of known pre-state head={}", self.latest_head);
            if self
                .unconfirmed
                .as_ref()
                .is_some_and(|p| p.execution_payload.block_hash != self.latest_head.hash)
            {
                log::warn!("cleared old block from the gossip buffer, sequencing pre-state is different");
                self.unconfirmed = None;
            }
        }
        self.latest = Building::default();
        self.waiting_for_data = false;
        self.next_action = Some(now.mono);
        self.active = true;
        log::info!("sequencer has been started");
    }

    /// Checks an `admin_stopSequencer` request.
    pub fn check_stop(&self) -> Result<(), AdminError> {
        if self.active {
            Ok(())
        } else {
            Err(AdminError::AlreadyStopped)
        }
    }

    /// Stops sequencing and returns the hash the next sequencer must build on: the last block
    /// this one sealed and published, even when its own insertion is still under way (op-node
    /// waits for that insertion instead; the answer is the same block).
    pub fn stop(&mut self) -> Result<B256, AdminError> {
        self.check_stop()?;
        self.latest = Building::default();
        self.waiting_for_data = false;
        self.next_action = None;
        self.active = false;
        log::info!("sequencer has been stopped");
        Ok(if self.latest_sealed.number > self.latest_head.number {
            self.latest_sealed.hash
        } else {
            self.latest_head.hash
        })
    }

    /// op-node `handleInvalid`: drop the job and retry after one block time.
    fn handle_invalid(&mut self, now: Now) {
        self.stats.errors += 1;
        self.latest = Building::default();
        self.unconfirmed = None;
        self.waiting_for_data = false;
        self.next_action = self.active.then(|| now.mono + Duration::from_secs(self.cfg.block_time));
    }

    /// The monotonic instant of unix time `t` seconds (past times map to now).
    fn instant_of(now: Now, t: u64) -> Instant {
        let target_ms = t.saturating_mul(1000);
        now.mono + Duration::from_millis(target_ms.saturating_sub(now.unix_ms))
    }

    fn on_forkchoice_update(&mut self, unsafe_head: L2BlockRef, safe: L2BlockRef, now: Now) {
        if self.active {
            let lagging = self.conf.max_safe_lag > 0
                && safe.number.saturating_add(self.conf.max_safe_lag) <= unsafe_head.number;
            if lagging && !self.stalled {
                log::warn!(
                    "sequencer has fallen behind safe head by more than lag, stalling head={unsafe_head} safe={safe} max_lag={}",
                    self.conf.max_safe_lag
                );
            }
            if self.latest.onto.is_some_and(|o| o.number < unsafe_head.number) {
                log::debug!("dropping stale/completed block-building job unsafe_head={unsafe_head}");
                self.latest = Building::default();
            }
            let resumed = self.stalled && !lagging;
            self.stalled = lagging;
            if lagging {
                self.next_action = None;
            } else if unsafe_head.number > self.latest_head.number
                || resumed
                || self.latest_head == L2BlockRef::default()
            {
                // Start the next block at most one block time ahead of its timestamp.
                self.next_action = Some(Self::instant_of(now, unsafe_head.timestamp));
            }
        }
        self.latest_head = unsafe_head;
    }

    /// op-node `L1OriginSelector.FindL1Origin` over the chain-data cache.
    fn find_l1_origin(&mut self, head: &L2BlockRef) -> Result<L1BlockRef, OriginError> {
        let mut data = self.data.borrow_mut();
        let current = match data.header_by_hash(head.l1origin.hash) {
            Ok(i) => i.block_ref(),
            Err(Miss::Pending) => return Err(OriginError::Pending),
            Err(Miss::NotFound) => {
                return Err(OriginError::Temporary(format!(
                    "L1 origin {} of L2 head not found",
                    head.l1origin
                )))
            }
        };
        let n = current.number.saturating_add(1);
        let hidden = self.l1_head != L1BlockRef::default() && n + self.conf.l1_confs > self.l1_head.number;
        let next = if hidden { Err(Miss::NotFound) } else { data.header_by_number(n).map(|i| i.block_ref()) };
        drop(data);
        let next_time = head.timestamp.saturating_add(self.cfg.block_time);
        let max_drift = self.cfg.max_sequencer_drift(current.timestamp);
        match next {
            Ok(next) => {
                if next.parent_hash != current.hash {
                    return Err(OriginError::Reset(format!(
                        "cannot build new L2 block with L1 origin {next} (parent L1 {}) on current L2 head {head} with L1 origin {}",
                        next.parent_hash, head.l1origin
                    )));
                }
                Ok(if next_time >= next.timestamp { next } else { current })
            }
            // Recover mode adopts the next origin eagerly, so it waits for a pending one.
            Err(Miss::Pending) if self.conf.recover => Err(OriginError::Pending),
            Err(miss) => {
                if next_time > current.timestamp.saturating_add(max_drift) {
                    return match miss {
                        Miss::Pending => Err(OriginError::Pending),
                        Miss::NotFound => Err(OriginError::Temporary(format!(
                            "origin-selector: nextL1Origin not supplied but required to satisfy constraints: drift of next L2 block would exceed maximum {max_drift} unless next L1 origin is adopted"
                        ))),
                    };
                }
                Ok(current)
            }
        }
    }

    /// op-node `startBuildingBlock`.
    fn start_building(&mut self, now: Now, out: &mut Emitter) {
        let head = self.latest_head;
        if head == L2BlockRef::default() {
            out.emit(Event::TryUpdateEngine);
            return;
        }
        if self.latest.onto == Some(head) {
            return;
        }
        self.waiting_for_data = false;
        let origin = match self.find_l1_origin(&head) {
            Ok(o) => o,
            Err(OriginError::Pending) => {
                self.waiting_for_data = true;
                return;
            }
            Err(OriginError::Reset(err)) => return out.emit(Event::Reset { err }),
            Err(OriginError::Temporary(err)) => {
                log::error!("error finding next L1 origin err={err}");
                self.next_action = self.active.then(|| now.mono + Duration::from_secs(1));
                return out.emit(Event::L1TemporaryError { err });
            }
        };
        let mut metrics = DeriveMetrics::default();
        let mut data = self.data.borrow_mut();
        let mut cx = Cx { cfg: &self.cfg, l1: &self.l1, data: &mut data, metrics: &mut metrics };
        let attrs = prepare_payload_attributes(&mut cx, &head, origin.id());
        drop(data);
        let mut attrs = match attrs {
            Ok(a) => a,
            Err(StageError::NotYet) => {
                self.waiting_for_data = true;
                return;
            }
            Err(StageError::Temporary(err)) => return out.emit(Event::EngineTemporaryError { err }),
            Err(StageError::Reset(err)) => return out.emit(Event::Reset { err }),
            Err(StageError::Critical(err)) => return out.emit(Event::CriticalError { err }),
            Err(e) => {
                return out.emit(Event::CriticalError {
                    err: format!("unexpected attributes-preparation error: {e:?}"),
                })
            }
        };
        let t = attrs.timestamp;
        attrs.no_tx_pool =
            t > origin.timestamp.saturating_add(self.cfg.max_sequencer_drift(origin.timestamp));
        // Activation blocks of these forks carry no sequencer transactions (op-node).
        for fork in [Fork::Ecotone, Fork::Fjord, Fork::Isthmus, Fork::Jovian, Fork::Karst] {
            if self.cfg.is_activation_block(fork, t) {
                log::info!("sequencing {} upgrade block", fork.name());
                attrs.no_tx_pool = true;
            }
        }
        if self.conf.recover {
            log::warn!("sequencing temporarily without user transactions, in recover mode");
            attrs.no_tx_pool = true;
        }
        log::info!(
            "started sequencing new block parent={head} l1_origin={origin} no_tx_pool={}",
            attrs.no_tx_pool
        );
        self.next_action = None;
        self.latest = Building { onto: Some(head), ..Building::default() };
        self.stats.started += 1;
        out.emit(Event::BuildStart(Box::new(AttributesWithParent {
            attributes: attrs,
            parent: head,
            concluding: false,
            derived_from: L1BlockRef::default(),
        })));
    }

    /// op-node `onSequencerAction`.
    fn on_action(&mut self, now: Now, out: &mut Emitter) {
        if let Some(env) = &self.unconfirmed {
            let p = &env.execution_payload;
            let parts = L2BlockParts::of_payload(p);
            match l2::block_ref(&self.cfg, &parts) {
                Ok(block_ref) => {
                    log::info!("resuming sequencing with the published payload {}", block_ref.id());
                    self.next_action = None;
                    self.latest.sealed = Some(block_ref);
                    out.emit(Event::PayloadProcess(Box::new(crate::engine::SealedBlock {
                        envelope: (**env).clone(),
                        block_ref,
                        concluding: false,
                        derived_from: L1BlockRef::default(),
                        info: None,
                    })));
                }
                Err(e) => {
                    log::error!("buffered payload could not be turned into a block ref: {e}");
                    self.unconfirmed = None;
                }
            }
        } else if let (Some(info), Some(onto)) = (self.latest.info, self.latest.onto) {
            self.next_action = None;
            out.emit(Event::BuildSeal(Box::new(crate::engine::BuildJob {
                info,
                parent: onto,
                concluding: false,
                derived_from: L1BlockRef::default(),
            })));
        } else if self.latest == Building::default() {
            self.start_building(now, out);
        }
    }
}

impl Deriver for Sequencer {
    fn on_event(&mut self, ev: &Event, now: Now, out: &mut Emitter) -> bool {
        match ev {
            Event::SequencerAction => {
                if self.active {
                    self.on_action(now, out);
                }
            }
            Event::BuildStarted(job) => {
                if job.is_derived() {
                    log::warn!("detected new block-building from L1 derivation, avoiding sequencing for now");
                    self.next_action = None;
                    return true;
                }
                if self.latest.onto != Some(job.parent) {
                    log::warn!(
                        "cancelling stale block-building job that was just started parent={}",
                        job.parent
                    );
                    out.emit(Event::BuildCancel { info: job.info, force: true });
                    self.handle_invalid(now);
                    return true;
                }
                self.latest.info = Some(job.info);
                let payload_time = job.parent.timestamp.saturating_add(self.cfg.block_time);
                let seal_at = Self::instant_of(now, payload_time)
                    .checked_sub(self.conf.sealing_duration)
                    .map_or(now.mono, |t| t.max(now.mono));
                self.next_action = self.active.then_some(seal_at);
            }
            Event::InvalidPayloadAttributes { attributes, err } => {
                if !attributes.is_derived() {
                    log::error!(
                        "cannot sequence invalid payload attributes parent={} err={err}",
                        attributes.parent
                    );
                    self.handle_invalid(now);
                }
            }
            Event::BuildSealed(block) => {
                if block.is_derived() || self.latest.info.is_none() || block.info != self.latest.info {
                    return false;
                }
                log::info!(
                    "sequencer sealed block {} txs={} time={}",
                    block.block_ref,
                    block.envelope.execution_payload.transactions.len(),
                    block.block_ref.timestamp
                );
                self.stats.sealed += 1;
                // Publish first, then insert into our own chain (op-node's async gossip).
                out.request(Request::PublishBlock(Box::new(block.envelope.clone())));
                self.unconfirmed = Some(Box::new(block.envelope.clone()));
                out.emit(Event::PayloadProcess(block.clone()));
                self.latest.sealed = Some(block.block_ref);
                self.latest_sealed = block.block_ref;
            }
            Event::PayloadSealInvalid { job, err } | Event::PayloadSealExpired { job, err } => {
                if Some(job.info) == self.latest.info {
                    log::error!("sequencer could not seal block id={} err={err}", job.info.id);
                    self.handle_invalid(now);
                }
            }
            Event::PayloadInvalid { block, err } => {
                if self.latest.sealed.is_some_and(|s| s.hash == block.hash) {
                    log::error!("sequencer could not insert payload block={block} err={err}");
                    self.handle_invalid(now);
                }
            }
            Event::PayloadSuccess(block) => {
                if self.latest.sealed.is_some_and(|s| s.hash != block.block_ref.hash) {
                    return false;
                }
                if !block.is_derived() && self.unconfirmed.is_some() {
                    self.stats.inserted += 1;
                    // The next attributes read this block's system config: keep it in the cache.
                    let p = &block.envelope.execution_payload;
                    let parts = L2BlockParts::of_payload(p);
                    // With its header, so consolidation can compare derived attributes with it.
                    if let (Ok(mut d), Ok(h)) = (l2::block_data(&self.cfg, &parts), block.envelope.header()) {
                        d.header = Some(Arc::new(h));
                        self.data.borrow_mut().insert_l2(d);
                    }
                }
                self.latest = Building::default();
                self.unconfirmed = None;
            }
            Event::EngineTemporaryError { err } => {
                if !self.active {
                    return false;
                }
                let syncing = err.contains("engine is syncing");
                log::warn!("engine failed temporarily, backing off sequencer err={err}");
                let wait = Duration::from_secs(if syncing { 30 } else { 1 });
                self.next_action = Some(now.mono + wait);
                if self.latest.info.is_none() {
                    self.latest = Building::default();
                }
            }
            Event::Reset { err } => {
                // The node's first reset (engine heads unknown) is routine; losing a job is not.
                if self.latest == Building::default() {
                    log::info!("sequencer waits for the reset to complete err={err}");
                } else {
                    log::error!("sequencer encountered reset signal, aborting work err={err}");
                }
                self.stats.resets += 1;
                if let Some(info) = self.latest.info {
                    out.emit(Event::BuildCancel { info, force: false });
                }
                self.latest = Building::default();
                self.waiting_for_data = false;
                self.next_action = None;
            }
            Event::EngineResetConfirmed(heads) => {
                self.next_action = self.active.then(|| now.mono + Duration::from_secs(self.cfg.block_time));
                self.latest_head = heads.unsafe_head;
                log::info!("engine reset confirmed, sequencer may continue active={}", self.active);
            }
            Event::ForkchoiceUpdate(heads) => self.on_forkchoice_update(heads.unsafe_head, heads.safe, now),
            Event::L1HeadUpdated(head) => self.l1_head = *head,
            Event::ChainDataArrived(_) => {
                if self.waiting_for_data && self.active {
                    self.start_building(now, out);
                }
            }
            _ => return false,
        }
        true
    }

    fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        if !self.active || self.waiting_for_data {
            return None;
        }
        self.next_action.map(|t| (t, "sequencer action"))
    }

    fn handle_timeout(&mut self, now: Now, out: &mut Emitter) {
        if self.active && !self.waiting_for_data && self.next_action.is_some_and(|t| t <= now.mono) {
            self.next_action = None;
            out.emit(Event::SequencerAction);
        }
    }
}
