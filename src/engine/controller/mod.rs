//! The engine controller (op-node `rollup/engine.EngineController`): the forkchoice heads,
//! forkchoice updates, block building (start, seal, process) for derived and sequenced blocks,
//! insertion of unsafe blocks from the gossip queue, the backup-unsafe reorg, resets through the
//! sync-start search, and execution-layer sync.
//!
//! op-node calls the engine synchronously; here every call is a request answered later by an
//! `EngineReplied` event. Calls are serialized: operations queue up and run one at a time, so
//! forkchoice updates are applied in the order op-node would apply them.

use std::collections::VecDeque;
use std::sync::Arc;

use super::api::{
    codes, fcu_version, get_payload_version, new_payload_version, EngineCall, EngineError, EngineReply,
    ExecutionStatus, ForkchoiceState, PayloadInfo,
};
use super::payload_queue::PayloadQueue;
use super::{BuildJob, EngineHeads, SealedBlock};
use crate::derive::attributes::AttributesWithParent;
use crate::derive::data::{Arrival, L2Label, Miss, SharedData};
use crate::derive::l2::{self, L2BlockParts};
use crate::derive::sync_start::{FindHeadsResult, FindL2Heads, SyncStartError};
use crate::engine::SyncMode;
use crate::event::{Deriver, Emitter, Event, Request};
use crate::protocol::block_ref::{BlockId, L1BlockRef, L2BlockRef};
use crate::protocol::payload::ExecutionPayloadEnvelope;
use crate::protocol::rollup::{Fork, RollupConfig};
use crate::protocol::tx::DEPOSIT_TX_TYPE;
use crate::time::Now;

/// op-node's `maxUnsafePayloadsMemory` is 500 MiB; a small host gets a smaller default.
pub const DEFAULT_UNSAFE_QUEUE_BYTES: u64 = 32 << 20;

/// Where execution-layer sync stands (op-node `syncStatusEnum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElSyncStatus {
    ConsensusLayer,
    WillStart,
    Started,
    FinishedButNotFinalized,
    Finished,
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

/// The controller.
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
        }
    }

    pub fn heads(&self) -> EngineHeads {
        self.heads
    }

    pub fn pending_safe(&self) -> L2BlockRef {
        self.pending_safe
    }

    pub fn el_sync_status(&self) -> ElSyncStatus {
        self.el_sync
    }

    /// Engine work is queued or in flight (tests and the sequencer use this).
    pub fn busy(&self) -> bool {
        self.in_flight.is_some() || !self.ops.is_empty() || self.blocked.is_some()
    }

    pub fn is_resetting(&self) -> bool {
        self.resetting.is_some()
    }

    fn is_initial_el_syncing(&self) -> bool {
        matches!(
            self.el_sync,
            ElSyncStatus::WillStart | ElSyncStatus::Started | ElSyncStatus::FinishedButNotFinalized
        )
    }

    fn forkchoice(&self, head: &L2BlockRef) -> ForkchoiceState {
        ForkchoiceState {
            head_block_hash: head.hash,
            safe_block_hash: self.heads.safe.hash,
            finalized_block_hash: self.heads.finalized.hash,
        }
    }

    fn emit_forkchoice_update(&self, out: &mut Emitter) {
        out.emit(Event::ForkchoiceUpdate(Box::new(self.heads)));
    }

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

    /// op-node `tryBackupUnsafeReorg`: a forkchoice update back onto the backup unsafe head.
    fn start_backup_reorg(&mut self) -> Started {
        if !self.should_try_backup_reorg() {
            return Started::Done;
        }
        self.need_backup_reorg = false;
        log::warn!(
            "trying to restore unsafe head backup_unsafe={} unsafe={}",
            self.backup_unsafe,
            self.heads.unsafe_head
        );
        let state = self.forkchoice(&self.backup_unsafe);
        Started::Call(EngineCall::ForkchoiceUpdated { version: 3, state, attributes: None }, Op::BackupReorg)
    }

    /// op-node `insertUnsafePayload`, first half: newPayload (the first payload may start EL sync).
    fn start_insert_unsafe(
        &mut self,
        envelope: Box<ExecutionPayloadEnvelope>,
        block_ref: L2BlockRef,
        out: &mut Emitter,
    ) -> Started {
        if self.el_sync == ElSyncStatus::WillStart {
            match self.begin_el_sync(out) {
                Err(_) => {
                    return Started::Blocked(Op::InsertUnsafe {
                        envelope,
                        block_ref,
                        stage: InsertStage::Start,
                    })
                }
                Ok(false) => return Started::Done,
                Ok(true) => {}
            }
        }
        let version = new_payload_version(&self.cfg, envelope.execution_payload.timestamp);
        let call = EngineCall::NewPayload { version, envelope: envelope.clone() };
        Started::Call(call, Op::InsertUnsafe { envelope, block_ref, stage: InsertStage::Start })
    }

    /// Before the first unsafe payload with EL sync pending: a finalized block past genesis
    /// skips EL sync (`Ok(false)`: the payload is not inserted), else EL sync starts.
    fn begin_el_sync(&mut self, out: &mut Emitter) -> Result<bool, Miss> {
        let finalized = self.data.borrow_mut().l2_by_label(L2Label::Finalized)?;
        match finalized {
            Some(f) if f.hash != self.cfg.genesis.l2.hash => {
                log::info!(
                    "skipping EL sync and going straight to CL sync because there is a finalized block id={f}"
                );
                self.el_sync = ElSyncStatus::Finished;
                out.emit(Event::EngineSyncStatus { syncing: false });
                Ok(false)
            }
            _ => {
                log::info!("starting EL sync");
                self.el_sync = ElSyncStatus::Started;
                out.emit(Event::EngineSyncStatus { syncing: true });
                Ok(true)
            }
        }
    }

    /// EL sync reached the tip: safe and finalized follow it, offset behind (op-node
    /// `--syncmode.offset-el-safe`), never moving back; then the forkchoice update.
    fn start_el_sync_offset(
        &mut self,
        envelope: Box<ExecutionPayloadEnvelope>,
        block_ref: L2BlockRef,
        out: &mut Emitter,
    ) -> Started {
        let target =
            block_ref.number.saturating_sub(self.el_sync_offset_blocks).max(self.cfg.genesis.l2.number);
        let offset_ref = if target < block_ref.number {
            match self.data.borrow_mut().l2_by_number(target) {
                Ok(d) => d.block_ref,
                Err(Miss::Pending) => {
                    return Started::Blocked(Op::InsertUnsafe {
                        envelope,
                        block_ref,
                        stage: InsertStage::ElSyncOffset,
                    })
                }
                Err(Miss::NotFound) => {
                    out.emit(Event::EngineTemporaryError {
                        err: format!("EL sync offset-derived head at block {target} not available"),
                    });
                    return Started::Done;
                }
            }
        } else {
            block_ref
        };
        let mut fc = self.forkchoice(&block_ref);
        let finalized =
            if offset_ref.number < self.heads.finalized.number { self.heads.finalized } else { offset_ref };
        let safe = if offset_ref.number < self.heads.safe.number { self.heads.safe } else { offset_ref };
        fc.safe_block_hash = safe.hash;
        fc.finalized_block_hash = finalized.hash;
        self.heads.unsafe_head = block_ref;
        out.emit(Event::UnsafeUpdate(block_ref));
        self.heads.local_safe = safe;
        self.heads.safe = safe;
        self.heads.finalized = finalized;
        Self::start_insert_forkchoice(envelope, block_ref, fc)
    }

    /// op-node `insertUnsafePayload`, second half: the forkchoice update onto the new block.
    fn start_insert_forkchoice(
        envelope: Box<ExecutionPayloadEnvelope>,
        block_ref: L2BlockRef,
        fc: ForkchoiceState,
    ) -> Started {
        Started::Call(
            EngineCall::ForkchoiceUpdated { version: 3, state: fc, attributes: None },
            Op::InsertUnsafe { envelope, block_ref, stage: InsertStage::Forkchoice(fc) },
        )
    }

    /// op-node `onBuildStart`: a forkchoice update with the attributes on their parent.
    fn start_build(&mut self, attrs: Box<AttributesWithParent>, out: &mut Emitter) -> Started {
        if attrs.is_derived() && self.pending_safe.hash != attrs.parent.hash {
            log::warn!(
                "block-attributes derived from L1 do not build on pending safe head, likely reorg pending_safe={} attributes_parent={}",
                self.pending_safe,
                attrs.parent
            );
        }
        if attrs.parent.number < self.heads.finalized.number {
            out.emit(Event::CriticalError {
                err: format!(
                    "invalid block-building pre-state, unsafe head {} is behind finalized head {}",
                    attrs.parent, self.heads.finalized
                ),
            });
            return Started::Done;
        }
        let state = self.forkchoice(&attrs.parent);
        let version = fcu_version(&self.cfg, attrs.attributes.timestamp);
        let call = EngineCall::ForkchoiceUpdated {
            version,
            state,
            attributes: Some(Box::new(attrs.attributes.clone())),
        };
        Started::Call(call, Op::BuildStart(attrs))
    }

    /// op-node `onBuildSeal`: getPayload.
    fn start_build_seal(&self, job: Box<BuildJob>) -> Started {
        let version = get_payload_version(&self.cfg, job.info.timestamp);
        Started::Call(EngineCall::GetPayload { version, info: job.info }, Op::BuildSeal(job))
    }

    /// op-node `onPayloadProcess`: newPayload of a sealed block.
    fn start_payload_process(&self, block: Box<SealedBlock>) -> Started {
        let version = new_payload_version(&self.cfg, block.envelope.execution_payload.timestamp);
        let call = EngineCall::NewPayload { version, envelope: Box::new(block.envelope.clone()) };
        Started::Call(call, Op::PayloadProcess(block))
    }

    /// op-node `onBuildCancel`: getPayload, which stops the job.
    fn start_build_cancel(&self, info: PayloadInfo, force: bool) -> Started {
        log::warn!("cancelling old block building job id={}", info.id);
        let version = get_payload_version(&self.cfg, info.timestamp);
        Started::Call(EngineCall::GetPayload { version, info }, Op::BuildCancel { info, force })
    }

    /// op-node `initializeUnknowns`: heads not known yet come from the engine's labels.
    fn initialize_unknowns(&mut self) -> Result<(), Miss> {
        if self.heads.unsafe_head == L2BlockRef::default() {
            let r = self.data.borrow_mut().l2_by_label(L2Label::Unsafe)?;
            self.heads.unsafe_head = r.ok_or(Miss::NotFound)?;
            log::info!("loaded initial local-unsafe block ref local_unsafe={}", self.heads.unsafe_head);
        }
        if self.heads.finalized == L2BlockRef::default() {
            let r = self.data.borrow_mut().l2_by_label(L2Label::Finalized)?;
            self.heads.finalized = r.unwrap_or_default();
        }
        if self.heads.local_safe == L2BlockRef::default() {
            let r = self.data.borrow_mut().l2_by_label(L2Label::Safe)?;
            self.heads.local_safe = r.unwrap_or(self.heads.finalized);
        }
        if self.heads.safe == L2BlockRef::default() {
            self.heads.safe = self.heads.local_safe;
        }
        if self.heads.cross_unsafe == L2BlockRef::default() {
            self.heads.cross_unsafe = self.heads.safe;
        }
        Ok(())
    }

    fn start_update_forkchoice(&mut self, out: &mut Emitter) -> Started {
        match self.initialize_unknowns() {
            Ok(()) => {}
            Err(Miss::Pending) => return Started::Blocked(Op::UpdateForkchoice),
            Err(Miss::NotFound) => {
                out.emit(Event::EngineTemporaryError {
                    err: "cannot update engine until engine forkchoice is initialized: no unsafe head".into(),
                });
                return Started::Done;
            }
        }
        if self.heads.unsafe_head.number < self.heads.finalized.number {
            out.emit(Event::CriticalError {
                err: format!(
                    "invalid forkchoice state, unsafe head {} is behind finalized head {}",
                    self.heads.unsafe_head, self.heads.finalized
                ),
            });
            return Started::Done;
        }
        let fc = self.forkchoice(&self.heads.unsafe_head);
        if fc == self.last_forkchoice {
            return Started::Done;
        }
        if self.is_initial_el_syncing() {
            log::warn!("attempting to update forkchoice state while EL syncing");
        }
        Started::Call(
            EngineCall::ForkchoiceUpdated { version: 3, state: fc, attributes: None },
            Op::UpdateForkchoice,
        )
    }

    fn should_try_backup_reorg(&mut self) -> bool {
        if !self.need_backup_reorg {
            return false;
        }
        if self.is_initial_el_syncing() {
            log::warn!("attempting to unsafe reorg using backupUnsafe while EL syncing");
            return false;
        }
        if self.backup_unsafe == L2BlockRef::default() {
            log::warn!("attempting to unsafe reorg using backupUnsafe even though it is empty");
            self.need_backup_reorg = false;
            return false;
        }
        true
    }

    /// op-node `checkForkchoiceUpdatedStatus`.
    fn fcu_status_ok(&mut self, status: ExecutionStatus) -> bool {
        if self.sync_mode == SyncMode::ExecutionLayer {
            if status == ExecutionStatus::Valid && self.el_sync == ElSyncStatus::Started {
                self.el_sync = ElSyncStatus::FinishedButNotFinalized;
            }
            return matches!(status, ExecutionStatus::Valid | ExecutionStatus::Syncing);
        }
        status == ExecutionStatus::Valid
    }

    /// op-node `checkNewPayloadStatus`.
    fn new_payload_status_ok(&mut self, status: ExecutionStatus) -> bool {
        if self.sync_mode == SyncMode::ExecutionLayer {
            if status == ExecutionStatus::Valid && self.el_sync == ElSyncStatus::Started {
                self.el_sync = ElSyncStatus::FinishedButNotFinalized;
            }
            return matches!(
                status,
                ExecutionStatus::Valid | ExecutionStatus::Syncing | ExecutionStatus::Accepted
            );
        }
        matches!(status, ExecutionStatus::Valid | ExecutionStatus::Syncing)
    }

    /// Maps a failed forkchoice update to op-node's error severity.
    fn fcu_error(e: &EngineError, what: &str, out: &mut Emitter) {
        match e.code() {
            Some(codes::INVALID_FORKCHOICE_STATE) => out.emit(Event::Reset {
                err: format!(
                    "{what} forkchoice update was inconsistent with engine, need reset to resolve: {e}"
                ),
            }),
            Some(_) => out.emit(Event::EngineTemporaryError {
                err: format!("unexpected error code in forkchoice-updated response: {e}"),
            }),
            None => out.emit(Event::EngineTemporaryError {
                err: format!("failed to sync forkchoice with engine: {e}"),
            }),
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

    fn complete_update_forkchoice(&mut self, result: Result<EngineReply, EngineError>, out: &mut Emitter) {
        let fc = self.forkchoice(&self.heads.unsafe_head);
        let res = match result {
            Ok(EngineReply::Forkchoice(r)) => r,
            Ok(_) => {
                return out.emit(Event::EngineTemporaryError {
                    err: "unexpected engine reply to forkchoiceUpdated".into(),
                })
            }
            Err(e) => return Self::fcu_error(&e, "", out),
        };
        if !self.fcu_status_ok(res.payload_status.status) {
            return out.emit(Event::Reset {
                err: format!(
                    "forkchoice update returned unexpected status {}, need reset to re-sync with engine",
                    res.payload_status
                ),
            });
        }
        self.log_progress(&fc);
        self.last_forkchoice = fc;
        if res.payload_status.status == ExecutionStatus::Valid {
            self.emit_forkchoice_update(out);
        }
        if self.heads.unsafe_head == self.heads.safe && self.heads.safe == self.pending_safe {
            self.backup_unsafe = L2BlockRef::default();
            self.need_backup_reorg = false;
        }
    }

    fn complete_backup_reorg(&mut self, result: Result<EngineReply, EngineError>, out: &mut Emitter) {
        let res = match result {
            Ok(EngineReply::Forkchoice(r)) => r,
            Ok(_) => return,
            Err(e) => {
                if e.code() == Some(codes::INVALID_FORKCHOICE_STATE) {
                    self.backup_unsafe = L2BlockRef::default();
                } else {
                    self.need_backup_reorg = true;
                }
                return Self::fcu_error(&e, "backup-unsafe", out);
            }
        };
        if res.payload_status.status == ExecutionStatus::Valid {
            log::info!("successfully reorged unsafe head using backupUnsafe unsafe={}", self.backup_unsafe);
            self.heads.unsafe_head = self.backup_unsafe;
            self.last_forkchoice = self.forkchoice(&self.backup_unsafe);
            self.backup_unsafe = L2BlockRef::default();
            self.emit_forkchoice_update(out);
        } else {
            self.backup_unsafe = L2BlockRef::default();
            out.emit(Event::EngineTemporaryError {
                err: format!("cannot restore unsafe chain using backupUnsafe: {}", res.payload_status),
            });
        }
    }

    /// The newPayload of an unsafe block was answered: the forkchoice stage goes next, ahead of
    /// anything queued meanwhile.
    fn complete_insert_unsafe(
        &mut self,
        envelope: Box<ExecutionPayloadEnvelope>,
        block_ref: L2BlockRef,
        result: Result<EngineReply, EngineError>,
        out: &mut Emitter,
    ) {
        let status = match result {
            Ok(EngineReply::NewPayload(s)) => s,
            Ok(_) => return,
            Err(e) => {
                return out.emit(Event::EngineTemporaryError {
                    err: format!("failed to update insert payload: {e}"),
                })
            }
        };
        if status.status == ExecutionStatus::Invalid {
            out.emit(Event::PayloadInvalid { block: block_ref.id(), err: status.to_string() });
        }
        if !self.new_payload_status_ok(status.status) {
            return out.emit(Event::EngineTemporaryError {
                err: format!(
                    "cannot process unsafe payload: new - {}; parent: {}; err: {status}",
                    block_ref, block_ref.parent_hash
                ),
            });
        }
        let stage = if self.el_sync == ElSyncStatus::FinishedButNotFinalized {
            InsertStage::ElSyncOffset
        } else {
            InsertStage::Forkchoice(self.forkchoice(&block_ref))
        };
        self.ops.push_front(Op::InsertUnsafe { envelope, block_ref, stage });
    }

    fn complete_insert_forkchoice(
        &mut self,
        block_ref: L2BlockRef,
        fc: ForkchoiceState,
        result: Result<EngineReply, EngineError>,
        out: &mut Emitter,
    ) {
        let res = match result {
            Ok(EngineReply::Forkchoice(r)) => r,
            Ok(_) => return,
            Err(e) => return Self::fcu_error(&e, "pre-unsafe-block", out),
        };
        if !self.fcu_status_ok(res.payload_status.status) {
            return out.emit(Event::EngineTemporaryError {
                err: format!(
                    "cannot prepare unsafe chain for new payload {block_ref}: {}",
                    res.payload_status
                ),
            });
        }
        self.log_progress(&fc);
        self.heads.unsafe_head = block_ref;
        self.last_forkchoice = fc;
        out.emit(Event::UnsafeUpdate(block_ref));
        self.finish_el_sync(block_ref, out);
        if res.payload_status.status == ExecutionStatus::Valid {
            self.emit_forkchoice_update(out);
        }
        log::info!("inserted new L2 unsafe block hash={} number={}", block_ref.hash, block_ref.number);
    }

    /// The first unsafe block inserted after EL sync reached the tip ends EL sync.
    fn finish_el_sync(&mut self, block_ref: L2BlockRef, out: &mut Emitter) {
        if self.el_sync == ElSyncStatus::FinishedButNotFinalized {
            log::info!("finished EL sync unsafe_block={block_ref} safe_finalized_block={}", self.heads.safe);
            self.el_sync = ElSyncStatus::Finished;
            out.emit(Event::EngineSyncStatus { syncing: false });
        }
    }

    /// op-node `onPayloadProcess` result: success, or an invalid block (Holocene retries the
    /// derived block as deposits only).
    fn complete_payload_process(
        &mut self,
        block: Box<SealedBlock>,
        result: Result<EngineReply, EngineError>,
        out: &mut Emitter,
    ) {
        let status = match result {
            Ok(EngineReply::NewPayload(s)) => s,
            Ok(_) => return,
            Err(e) => {
                return out.emit(Event::EngineTemporaryError {
                    err: format!("failed to insert execution payload: {e}"),
                })
            }
        };
        match status.status {
            ExecutionStatus::Invalid | ExecutionStatus::InvalidBlockHash => {
                if block.is_derived() && self.cfg.is_active(Fork::Holocene, block.derived_from.timestamp) {
                    let parent = BlockId {
                        hash: block.block_ref.parent_hash,
                        number: block.block_ref.number.saturating_sub(1),
                    };
                    out.emit(Event::DepositsOnlyAttributesRequest {
                        parent,
                        derived_from: block.derived_from,
                    });
                } else {
                    out.emit(Event::PayloadInvalid { block: block.block_ref.id(), err: status.to_string() });
                }
            }
            ExecutionStatus::Valid => out.emit(Event::PayloadSuccess(block)),
            _ => out.emit(Event::EngineTemporaryError {
                err: format!("new payload {} returned {status}", block.block_ref),
            }),
        }
    }

    fn complete_build_cancel(
        info: PayloadInfo,
        force: bool,
        result: Result<EngineReply, EngineError>,
        out: &mut Emitter,
    ) {
        if let Err(e) = result {
            if e.code() == Some(codes::UNKNOWN_PAYLOAD) {
                log::warn!("tried cancelling unknown block building job id={}", info.id);
            } else {
                log::error!("failed to cancel block building job id={}: {e}", info.id);
                if !force {
                    out.emit(Event::EngineTemporaryError { err: e.to_string() });
                }
            }
        }
    }

    fn complete_build_start(
        &mut self,
        attrs: Box<AttributesWithParent>,
        result: Result<EngineReply, EngineError>,
        out: &mut Emitter,
    ) {
        let res = match result {
            Ok(EngineReply::Forkchoice(r)) => r,
            Ok(_) => return,
            Err(e) => {
                return match e.code() {
                    Some(codes::INVALID_FORKCHOICE_STATE) => out.emit(Event::Reset {
                        err: format!("need reset to resolve pre-state problem: pre-block-creation forkchoice update was inconsistent with engine: {e}"),
                    }),
                    Some(codes::INVALID_PAYLOAD_ATTRIBUTES) => out.emit(Event::BuildInvalid {
                        attributes: attrs,
                        err: format!("payload attributes are not valid, cannot build block: {e}"),
                    }),
                    Some(c) if codes::is_engine_error(c) => out.emit(Event::Reset {
                        err: format!("need reset to resolve pre-state problem: unexpected engine error code in forkchoice-updated response: {e}"),
                    }),
                    _ => out.emit(Event::EngineTemporaryError { err: format!("temporarily cannot insert new safe block: {e}") }),
                };
            }
        };
        match (res.payload_status.status, res.payload_id) {
            (ExecutionStatus::Invalid | ExecutionStatus::InvalidBlockHash, _) => {
                out.emit(Event::BuildInvalid { attributes: attrs, err: res.payload_status.to_string() })
            }
            (ExecutionStatus::Valid, Some(id)) => {
                let mut heads = self.heads;
                heads.unsafe_head = attrs.parent;
                out.emit(Event::ForkchoiceUpdate(Box::new(heads)));
                out.emit(Event::BuildStarted(Box::new(BuildJob {
                    info: PayloadInfo { id, timestamp: attrs.attributes.timestamp },
                    parent: attrs.parent,
                    concluding: attrs.concluding,
                    derived_from: attrs.derived_from,
                })));
            }
            (ExecutionStatus::Valid, None) => out.emit(Event::EngineTemporaryError {
                err: "temporarily cannot insert new safe block: nil id in forkchoice result when expecting a valid ID".into(),
            }),
            (ExecutionStatus::Syncing, _) => {
                out.emit(Event::EngineTemporaryError { err: "temporarily cannot insert new safe block: engine is syncing".into() })
            }
            (_, _) => out.emit(Event::EngineTemporaryError {
                err: format!("temporarily cannot insert new safe block: {}", res.payload_status),
            }),
        }
    }

    fn complete_build_seal(
        &mut self,
        job: Box<BuildJob>,
        result: Result<EngineReply, EngineError>,
        out: &mut Emitter,
    ) {
        let envelope = match result {
            Ok(EngineReply::Payload(e)) => e,
            Ok(_) => return,
            Err(e) => {
                if e.code() == Some(codes::UNKNOWN_PAYLOAD) {
                    log::warn!("cannot seal block, payload ID is unknown id={}", job.info.id);
                }
                let err = format!("failed to seal execution payload (ID: {}): {e}", job.info.id);
                return out.emit(Event::PayloadSealExpired { job, err });
            }
        };
        if let Err(err) = sanity_check_payload(&envelope) {
            return out.emit(Event::PayloadSealInvalid {
                err: format!(
                    "failed sanity-check of execution payload contents (ID: {}): {err}",
                    job.info.id
                ),
                job,
            });
        }
        let p = &envelope.execution_payload;
        let parts = L2BlockParts::of_payload(p);
        let block_ref = match l2::block_ref(&self.cfg, &parts) {
            Ok(r) => r,
            Err(e) => {
                return out.emit(Event::PayloadSealInvalid {
                    err: format!("failed to decode L2 block ref from payload: {e}"),
                    job,
                })
            }
        };
        log::debug!(
            "built new L2 block l2_unsafe={block_ref} l1_origin={} txs={}",
            block_ref.l1origin,
            p.transactions.len()
        );
        out.emit(Event::BuildSealed(Box::new(SealedBlock {
            envelope: *envelope,
            block_ref,
            concluding: job.concluding,
            derived_from: job.derived_from,
            info: Some(job.info),
        })));
    }

    fn log_progress(&self, fc: &ForkchoiceState) {
        if *fc != self.last_forkchoice {
            log::info!(
                "sync progress l2_finalized={} l2_safe={} l2_pending_safe={} l2_unsafe={} l2_time={}",
                self.heads.finalized,
                self.heads.safe,
                self.pending_safe,
                self.heads.unsafe_head,
                self.heads.unsafe_head.timestamp
            );
        }
    }

    /// op-node `tryUpdateUnsafe`.
    fn try_update_unsafe(&mut self, r: L2BlockRef, out: &mut Emitter) {
        if self.heads.unsafe_head.number >= r.number {
            self.backup_unsafe = self.heads.unsafe_head;
            self.need_backup_reorg = false;
        }
        self.heads.unsafe_head = r;
        out.emit(Event::UnsafeUpdate(r));
    }

    /// op-node `tryUpdatePendingSafe` and `tryUpdateLocalSafe`.
    pub fn try_update_safe(
        &mut self,
        r: L2BlockRef,
        concluding: bool,
        source: L1BlockRef,
        out: &mut Emitter,
    ) {
        if r.number > self.pending_safe.number {
            self.pending_safe = r;
            out.emit(Event::PendingSafeUpdate { pending_safe: r, unsafe_head: self.heads.unsafe_head });
        }
        if concluding && r.number > self.heads.local_safe.number {
            self.heads.local_safe = r;
            out.emit(Event::LocalSafeUpdate { safe: r, source });
        }
    }

    /// op-node `forceReset` (without interop resetters).
    fn force_reset(&mut self, r: FindHeadsResult, out: &mut Emitter) {
        self.heads = EngineHeads {
            unsafe_head: r.unsafe_head,
            cross_unsafe: r.unsafe_head,
            local_safe: r.safe,
            safe: r.safe,
            finalized: r.finalized,
        };
        self.pending_safe = r.safe;
        self.backup_unsafe = L2BlockRef::default();
        self.need_backup_reorg = false;
        out.emit(Event::ConfirmPipelineReset);
        self.queue(Op::UpdateForkchoice);
        out.emit(Event::EngineResetConfirmed(Box::new(self.heads)));
        log::info!(
            "reset of engine is completed local_unsafe={} local_safe={} finalized={}",
            r.unsafe_head,
            r.safe,
            r.finalized
        );
    }

    fn step_reset(&mut self, out: &mut Emitter) {
        let Some(search) = self.resetting.as_mut() else {
            return;
        };
        let result = search.step(&self.cfg, &mut self.data.borrow_mut());
        match result {
            Ok(r) => {
                self.resetting = None;
                self.force_reset(r, out);
            }
            Err(SyncStartError::NotYet) => {}
            Err(e) => {
                self.resetting = None;
                out.emit(Event::Reset { err: format!("failed to find the L2 Heads to start from: {e}") });
            }
        }
    }

    /// op-node `onForkchoiceUpdate`: maybe insert the next queued unsafe payload.
    fn on_forkchoice_update(&mut self, heads: &EngineHeads) {
        self.unsafe_payloads.drop_inapplicable(&heads.unsafe_head, &heads.safe);
        let Some(next) = self.unsafe_payloads.peek() else {
            return;
        };
        let p = &next.execution_payload;
        if p.parent_hash != heads.unsafe_head.hash || p.block_number != heads.unsafe_head.number + 1 {
            log::debug!(
                "next unsafe payload is not applicable yet next={} unsafe={}",
                p.block_number,
                heads.unsafe_head
            );
            return;
        }
        if self.ops.iter().any(|o| matches!(o, Op::InsertUnsafe { .. }))
            || matches!(self.in_flight, Some((_, Op::InsertUnsafe { .. })))
        {
            return;
        }
        let parts = L2BlockParts::of_payload(p);
        match l2::block_ref(&self.cfg, &parts) {
            Ok(block_ref) if block_ref.id() != self.heads.unsafe_head.id() => {
                let envelope = Box::new(next.clone());
                self.queue(Op::InsertUnsafe { envelope, block_ref, stage: InsertStage::Start });
            }
            Ok(_) => {}
            Err(e) => {
                log::error!("failed to decode L2 block ref from payload: {e}");
                self.unsafe_payloads.pop();
            }
        }
    }
}

/// op-node `sanityCheckPayload`: deposits first, then no deposit after a non-deposit.
pub fn sanity_check_payload(env: &ExecutionPayloadEnvelope) -> Result<(), String> {
    let txs = &env.execution_payload.transactions;
    let Some(first) = txs.first() else {
        return Err("no transactions in returned payload".into());
    };
    if first.first() != Some(&DEPOSIT_TX_TYPE) {
        return Err(format!("first transaction was not deposit tx. Got {:?}", first.first()));
    }
    let mut deposits_done = false;
    for (i, tx) in txs.iter().enumerate() {
        match tx.first() {
            None => return Err(format!("empty transaction at index {i}")),
            Some(&DEPOSIT_TX_TYPE) if deposits_done => {
                return Err(format!("deposit tx ({i}) after other tx in l2 block"));
            }
            Some(&DEPOSIT_TX_TYPE) => {}
            Some(_) => deposits_done = true,
        }
    }
    Ok(())
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

impl EngineController {
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

    /// Without interop an unsafe block is cross-unsafe at once (op-node `PromoteCrossUnsafe`).
    fn on_unsafe_update(&mut self, r: L2BlockRef) {
        self.heads.cross_unsafe = r;
        self.queue(Op::UpdateForkchoice);
    }

    /// op-node `PromoteSafe`: without interop, local safety is full safety.
    fn promote_safe(&mut self, safe: L2BlockRef, source: L1BlockRef, out: &mut Emitter) {
        self.heads.safe = safe;
        out.emit(Event::SafeDerived { safe, source });
        if safe.number > self.heads.cross_unsafe.number {
            self.heads.cross_unsafe = safe;
        }
    }

    fn on_try_backup_unsafe_reorg(&mut self) {
        if self.need_backup_reorg {
            self.queue(Op::BackupReorg);
        }
    }

    /// While resetting, the heads are not settled: derivation waits.
    fn on_pending_safe_request(&self, out: &mut Emitter) {
        if self.resetting.is_none() {
            out.emit(Event::PendingSafeUpdate {
                pending_safe: self.pending_safe,
                unsafe_head: self.heads.unsafe_head,
            });
        }
    }

    /// op-node `PromoteFinalized`: finality never rewinds and never passes the safe head.
    fn promote_finalized(&mut self, r: L2BlockRef, out: &mut Emitter) {
        if r.number < self.heads.finalized.number {
            log::error!("cannot rewind finality ref={r} finalized={}", self.heads.finalized);
        } else if r.number > self.heads.safe.number {
            log::error!("block must be safe before it can be finalized ref={r} safe={}", self.heads.safe);
        } else {
            self.heads.finalized = r;
            out.emit(Event::FinalizedUpdate(r));
            self.queue(Op::UpdateForkchoice);
        }
    }

    /// op-node `OnUnsafeL2Payload`: with EL sync every payload above the unsafe head is
    /// inserted at once (a gap is what drives the engine's own sync); with CL sync it waits in
    /// the queue until it applies on the unsafe head.
    fn on_unsafe_payload(&mut self, env: &ExecutionPayloadEnvelope, out: &mut Emitter) {
        if self.sync_mode == SyncMode::ExecutionLayer {
            return self.insert_to_drive_el_sync(env);
        }
        match self.unsafe_payloads.push(Box::new(env.clone())) {
            Ok(()) => self.emit_forkchoice_update(out),
            Err(e) => log::warn!("could not add unsafe payload id={}: {e}", env.execution_payload.block_hash),
        }
    }

    fn insert_to_drive_el_sync(&mut self, env: &ExecutionPayloadEnvelope) {
        let parts = L2BlockParts::of_payload(&env.execution_payload);
        match l2::block_ref(&self.cfg, &parts) {
            Ok(block_ref) if block_ref.number > self.heads.unsafe_head.number => {
                log::info!("inserting unsafe L2 execution payload to drive EL sync id={}", block_ref.id());
                let envelope = Box::new(env.clone());
                self.queue(Op::InsertUnsafe { envelope, block_ref, stage: InsertStage::Start });
            }
            Ok(_) => {}
            Err(e) => log::error!("failed to turn execution payload into a block ref: {e}"),
        }
    }

    /// An invalid block at the front of the unsafe queue is dropped.
    fn on_payload_invalid(&mut self, block: BlockId) {
        if self.unsafe_payloads.peek().is_some_and(|p| p.execution_payload.block_hash == block.hash) {
            log::warn!("dropping invalid unsafe payload hash={} number={}", block.hash, block.number);
            self.unsafe_payloads.pop();
        }
    }

    /// op-node `onResetEngine`: starts the sync-start search (once) and steps it.
    fn on_reset_engine_request(&mut self, out: &mut Emitter) {
        if self.resetting.is_none() {
            let mut search = FindL2Heads::new(&mut self.data.borrow_mut());
            search.el_sync_offset_blocks = self.el_sync_offset_blocks;
            self.resetting = Some(search);
            self.ops.clear();
            self.blocked = None;
            self.last_forkchoice = ForkchoiceState::default();
        }
        self.step_reset(out);
    }

    /// op-node `onBuildStarted`: a derived block is sealed at once.
    fn on_build_started(job: &BuildJob, out: &mut Emitter) {
        if job.is_derived() {
            out.emit(Event::BuildSeal(Box::new(*job)));
        }
    }

    /// op-node `onBuildSealed`: a derived block is inserted at once.
    fn on_build_sealed(block: &SealedBlock, out: &mut Emitter) {
        if block.is_derived() {
            out.emit(Event::PayloadProcess(Box::new(block.clone())));
        }
    }

    /// op-node `onPayloadSuccess`: the block becomes the unsafe head (and, if derived, the
    /// pending or local safe head).
    fn on_payload_success(&mut self, block: &SealedBlock, out: &mut Emitter) {
        self.try_update_unsafe(block.block_ref, out);
        if block.is_derived() {
            self.try_update_safe(block.block_ref, block.concluding, block.derived_from, out);
        }
        self.queue(Op::UpdateForkchoice);
        log::info!("inserted new L2 block hash={} number={}", block.block_ref.hash, block.block_ref.number);
    }

    /// op-node `onBuildInvalid`: deposits-only attributes that fail are critical; after
    /// Holocene derived attributes are retried as deposits only; else the attributes are
    /// dropped.
    fn on_build_invalid(&mut self, attributes: &AttributesWithParent, err: &str, out: &mut Emitter) {
        log::warn!("could not process payload attributes err={err}");
        let deposits_only =
            attributes.attributes.transactions.iter().all(|t| t.first() == Some(&DEPOSIT_TX_TYPE));
        if deposits_only {
            out.emit(Event::CriticalError {
                err: format!("failed to process block with only deposit transactions: {err}"),
            });
        } else if attributes.is_derived()
            && self.cfg.is_active(Fork::Holocene, attributes.derived_from.timestamp)
        {
            out.emit(Event::DepositsOnlyAttributesRequest {
                parent: attributes.parent.id(),
                derived_from: attributes.derived_from,
            });
        } else {
            out.emit(Event::InvalidPayloadAttributes {
                attributes: Box::new(attributes.clone()),
                err: err.to_string(),
            });
        }
    }
}
