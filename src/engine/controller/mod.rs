//! The engine controller (op-node `rollup/engine.EngineController`): it owns the forkchoice
//! heads and drives the execution engine through the Engine API: forkchoice updates, block
//! building for derived and sequenced blocks, insertion of unsafe blocks, the backup-unsafe
//! reorg, resets through the sync-start search, and execution-layer sync.
//!
//! Call order: the controller is a [`Deriver`] and has no other inputs. The node hands it every
//! event with `on_event(ev, now, out)`, and it answers only through `out`: an event may move
//! the heads and queue an operation, and after each event the controller starts queued
//! operations, one at a time. Starting one emits `Request::Engine { id, call }`; the io layer
//! makes the call and feeds the answer back as `Event::EngineReplied { id, result }`, which
//! completes the operation (emitting its facts: `ForkchoiceUpdate`, `BuildStarted`,
//! `BuildSealed`, `PayloadSuccess`, ...) and lets the next one start. An operation that needs
//! chain data from [`SharedData`] first (the engine's labels, a block by number) is parked and
//! tried again after each later event, until the data has arrived (`ChainDataArrived`). There are
//! no timers (`poll_timeout` is `None`). Between events, `heads`, `pending_safe`,
//! `el_sync_status`, `busy`, `is_resetting` and `unsafe_payloads` show the state.
//!
//! op-node calls the engine synchronously; serializing the calls keeps forkchoice updates in
//! the order op-node would apply them.
//!
//! Each operation is a `start_*` method (the call) and a `complete_*` method (the reply), in the
//! file of its concern: `forkchoice` (the heads, forkchoice updates, the backup-unsafe reorg),
//! `build` (start, seal, cancel), `insert` (newPayload of unsafe and derived blocks, the unsafe
//! payload queue), `el_sync` (execution-layer sync) and `reset` (the sync-start search).

mod build;
mod el_sync;
mod forkchoice;
mod insert;
mod reset;

use std::collections::VecDeque;
use std::sync::Arc;

use super::api::{EngineCall, EngineError, EngineReply, ForkchoiceState, PayloadInfo};
use super::payload_queue::PayloadQueue;
use super::{BuildJob, EngineHeads, SealedBlock};
use crate::derive::attributes::AttributesWithParent;
use crate::derive::data::{Arrival, SharedData};
use crate::derive::sync_start::FindL2Heads;
use crate::engine::SyncMode;
use crate::event::{Deriver, Emitter, Event, Request};
use crate::protocol::block_ref::L2BlockRef;
use crate::protocol::payload::ExecutionPayloadEnvelope;
use crate::protocol::rollup::RollupConfig;
use crate::time::Now;

pub use build::sanity_check_payload;
pub use el_sync::ElSyncStatus;

/// op-node's `maxUnsafePayloadsMemory` is 500 MiB; a small host gets a smaller default.
pub const DEFAULT_UNSAFE_QUEUE_BYTES: u64 = 32 << 20;

/// Owns the forkchoice heads and moves them through serialized Engine API calls.
pub struct EngineController {
    cfg: Arc<RollupConfig>,
    data: SharedData,
    sync_mode: SyncMode,
    el_sync: ElSyncStatus,
    /// Blocks the EL-sync recovery sets safe/finalized behind the synced tip.
    el_sync_offset_blocks: u64,
    heads: EngineHeads,
    pending_safe: L2BlockRef,
    backup_unsafe: L2BlockRef,
    need_backup_reorg: bool,
    last_forkchoice: ForkchoiceState,
    pub unsafe_payloads: PayloadQueue,
    ops: VecDeque<Op>,
    in_flight: Option<(u64, Op)>,
    blocked: Option<Op>,
    next_id: u64,
    resetting: Option<FindL2Heads>,
    /// Follow mode: the heads come from a source node (see `follow_source`).
    following: bool,
    /// A sequencer runs on these heads: a follow source's conflicting chain is taken by a
    /// forced reset, not a soft unsafe-head move (op-node's origin-selector resetter).
    sequencing: bool,
}

impl EngineController {
    pub fn new(
        cfg: Arc<RollupConfig>,
        data: SharedData,
        sync_mode: SyncMode,
        el_sync_offset_blocks: u64,
        queue_bytes: u64,
    ) -> Self {
        EngineController {
            cfg,
            data,
            sync_mode,
            el_sync: if sync_mode == SyncMode::ExecutionLayer {
                ElSyncStatus::WillStart
            } else {
                ElSyncStatus::ConsensusLayer
            },
            el_sync_offset_blocks,
            heads: EngineHeads::default(),
            pending_safe: L2BlockRef::default(),
            backup_unsafe: L2BlockRef::default(),
            need_backup_reorg: false,
            last_forkchoice: ForkchoiceState::default(),
            unsafe_payloads: PayloadQueue::new(queue_bytes),
            ops: VecDeque::new(),
            in_flight: None,
            blocked: None,
            next_id: 0,
            resetting: None,
            following: false,
            sequencing: false,
        }
    }

    /// Follow mode (`--l2.follow.source`), with or without a sequencer on these heads. A
    /// forkchoice update onto a source's block the engine lacks asks it to sync that block
    /// (op-node: "may trigger EL sync"), so SYNCING is an expected answer, not a reason to reset.
    pub fn set_following(&mut self, sequencer: bool) {
        self.following = true;
        self.sequencing = sequencer;
    }

    /// Returns the forkchoice heads.
    pub fn heads(&self) -> EngineHeads {
        self.heads
    }

    /// Returns the pending safe head: the newest derived block, safe once its span batch is complete.
    pub fn pending_safe(&self) -> L2BlockRef {
        self.pending_safe
    }

    /// Returns where execution-layer sync stands.
    pub fn el_sync_status(&self) -> ElSyncStatus {
        self.el_sync
    }

    /// Engine work is queued, in flight or waiting for chain data.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some() || !self.ops.is_empty() || self.blocked.is_some()
    }

    /// Tells whether the sync-start search of a reset is running.
    pub fn is_resetting(&self) -> bool {
        self.resetting.is_some()
    }
}

impl Deriver for EngineController {
    fn on_event(&mut self, ev: &Event, _now: Now, out: &mut Emitter) -> bool {
        match ev {
            Event::TryUpdateEngine | Event::DeriverL1Status { .. } | Event::DeriverIdle => {
                self.queue(Op::UpdateForkchoice)
            }
            Event::UnsafeUpdate(r) => self.on_unsafe_update(*r),
            Event::LocalSafeUpdate { safe, source } => self.promote_safe(*safe, *source, out),
            Event::SafeConsolidated { safe, concluding, source } => {
                self.try_update_safe(*safe, *concluding, *source, out)
            }
            Event::TryBackupUnsafeReorg => self.on_try_backup_unsafe_reorg(),
            Event::PendingSafeRequest => self.on_pending_safe_request(out),
            Event::ForkchoiceUpdate(heads) => self.on_forkchoice_update(heads),
            Event::ReceivedUnsafePayload(env) => self.on_unsafe_payload(env, out),
            Event::PayloadInvalid { block, .. } => self.on_payload_invalid(*block),
            Event::PromoteFinalized(r) => self.promote_finalized(*r, out),
            Event::ResetEngineRequest => self.on_reset_engine_request(out),
            Event::FollowSource(refs) => self.follow_source(refs, out),
            Event::ChainDataArrived(a) => self.on_chain_data_arrived(a, out),
            Event::BuildStart(attrs) => self.queue(Op::BuildStart(attrs.clone())),
            Event::BuildStarted(job) => Self::on_build_started(job, out),
            Event::BuildSeal(job) => self.queue(Op::BuildSeal(job.clone())),
            Event::BuildSealed(block) => Self::on_build_sealed(block, out),
            Event::PayloadProcess(block) => self.queue(Op::PayloadProcess(block.clone())),
            Event::PayloadSuccess(block) => self.on_payload_success(block, out),
            Event::BuildInvalid { attributes, err } => self.on_build_invalid(attributes, err, out),
            Event::BuildCancel { info, force } => self.queue(Op::BuildCancel { info: *info, force: *force }),
            Event::EngineReplied { id, result } => self.on_engine_replied(*id, result, out),
            _ => return false,
        }
        self.pump(out);
        true
    }
}

/// One serialized piece of engine work. Few are ever queued, so variant sizes do not matter.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum Op {
    /// op-node `tryUpdateEngine`.
    UpdateForkchoice,
    /// op-node `tryBackupUnsafeReorg`.
    BackupReorg,
    /// op-node `insertUnsafePayload`: newPayload, then a forkchoice update onto it.
    InsertUnsafe { envelope: Box<ExecutionPayloadEnvelope>, block_ref: L2BlockRef, stage: InsertStage },
    /// op-node `onBuildStart`: forkchoice update with attributes.
    BuildStart(Box<AttributesWithParent>),
    /// op-node `onBuildSeal`: getPayload.
    BuildSeal(Box<BuildJob>),
    /// op-node `onPayloadProcess`: newPayload of a sealed block.
    PayloadProcess(Box<SealedBlock>),
    /// op-node `onBuildCancel`: getPayload to stop the job.
    BuildCancel { info: PayloadInfo, force: bool },
}

#[derive(Debug, Clone, Copy)]
enum InsertStage {
    Start,
    /// EL sync reached the tip: look up the block `el_sync_offset_blocks` behind it (it may
    /// need fetching) to make it safe and finalized, then update the forkchoice.
    ElSyncOffset,
    Forkchoice(ForkchoiceState),
}

/// How starting an operation went.
enum Started {
    /// A call was made; the reply continues the operation.
    Call(EngineCall, Op),
    /// Nothing to call (or it failed early); the operation is over.
    Done,
    /// Chain data is needed first; retry when it arrives.
    Blocked(Op),
}

impl EngineController {
    fn queue(&mut self, op: Op) {
        // A pending forkchoice update covers any later one: it reads the heads when it starts.
        if matches!(op, Op::UpdateForkchoice) && self.ops.iter().any(|o| matches!(o, Op::UpdateForkchoice)) {
            return;
        }
        self.ops.push_back(op);
    }

    /// Starts queued operations until one is waiting for the engine or for data.
    fn pump(&mut self, out: &mut Emitter) {
        while self.in_flight.is_none() {
            let op = match self.blocked.take() {
                Some(op) => op,
                None => match self.ops.pop_front() {
                    Some(op) => op,
                    None => return,
                },
            };
            match self.start(op, out) {
                Started::Call(call, op) => {
                    self.next_id += 1;
                    out.request(Request::Engine { id: self.next_id, call });
                    self.in_flight = Some((self.next_id, op));
                }
                Started::Done => {}
                Started::Blocked(op) => {
                    self.blocked = Some(op);
                    return;
                }
            }
        }
    }

    fn start(&mut self, op: Op, out: &mut Emitter) -> Started {
        match op {
            Op::UpdateForkchoice => self.start_update_forkchoice(out),
            Op::BackupReorg => self.start_backup_reorg(),
            Op::InsertUnsafe { envelope, block_ref, stage: InsertStage::Start } => {
                self.start_insert_unsafe(envelope, block_ref, out)
            }
            Op::InsertUnsafe { envelope, block_ref, stage: InsertStage::ElSyncOffset } => {
                self.start_el_sync_offset(envelope, block_ref, out)
            }
            Op::InsertUnsafe { envelope, block_ref, stage: InsertStage::Forkchoice(fc) } => {
                Self::start_insert_forkchoice(envelope, block_ref, fc)
            }
            Op::BuildStart(attrs) => self.start_build(attrs, out),
            Op::BuildSeal(job) => self.start_build_seal(job),
            Op::PayloadProcess(block) => self.start_payload_process(block),
            Op::BuildCancel { info, force } => self.start_build_cancel(info, force),
        }
    }

    /// Continues the operation in flight with the engine's answer.
    fn complete(&mut self, op: Op, result: Result<EngineReply, EngineError>, out: &mut Emitter) {
        match op {
            Op::UpdateForkchoice => self.complete_update_forkchoice(result, out),
            Op::BackupReorg => self.complete_backup_reorg(result, out),
            Op::InsertUnsafe { envelope, block_ref, stage: InsertStage::Start } => {
                self.complete_insert_unsafe(envelope, block_ref, result, out)
            }
            // Makes no call of its own: it becomes the forkchoice stage when it starts.
            Op::InsertUnsafe { stage: InsertStage::ElSyncOffset, .. } => {}
            Op::InsertUnsafe { block_ref, stage: InsertStage::Forkchoice(fc), .. } => {
                self.complete_insert_forkchoice(block_ref, fc, result, out)
            }
            Op::BuildStart(attrs) => self.complete_build_start(attrs, result, out),
            Op::BuildSeal(job) => self.complete_build_seal(job, result, out),
            Op::PayloadProcess(block) => self.complete_payload_process(block, result, out),
            Op::BuildCancel { info, force } => Self::complete_build_cancel(info, force, result, out),
        }
    }

    /// Hands the reply to the operation in flight; a reply with another id is stale.
    fn on_engine_replied(&mut self, id: u64, result: &Result<EngineReply, EngineError>, out: &mut Emitter) {
        match self.in_flight.take() {
            Some((want, op)) if want == id => self.complete(op, result.clone(), out),
            other => {
                log::warn!("ignoring stale engine reply id={id}");
                self.in_flight = other;
            }
        }
    }

    /// Chain data feeds the reset search and the parked operation. A failed fetch ends the
    /// search and drops the parked operation: the next step retries both, with backoff.
    fn on_chain_data_arrived(&mut self, a: &Arrival, out: &mut Emitter) {
        if let Arrival::Failed(..) = a {
            if self.resetting.is_some() {
                self.resetting = None;
                out.emit(Event::EngineTemporaryError { err: "engine reset: chain data fetch failed".into() });
            }
            self.blocked = None;
        } else {
            self.step_reset(out);
        }
    }
}
