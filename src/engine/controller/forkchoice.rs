//! The forkchoice heads and forkchoice updates: op-node's `tryUpdateEngine`, the `tryUpdate*`
//! and `Promote*` head moves, the pending-safe answer to derivation, and the backup-unsafe
//! reorg (`tryBackupUnsafeReorg`).

use super::{ElSyncStatus, EngineController, Op, Started};
use crate::derive::data::{L2Label, Miss};
use crate::driver::follow::FollowRefs;
use crate::engine::api::{codes, EngineCall, EngineError, EngineReply, ExecutionStatus, ForkchoiceState};
use crate::engine::{EngineHeads, SyncMode};
use crate::event::{Emitter, Event};
use crate::protocol::block_ref::{L1BlockRef, L2BlockRef};

impl EngineController {
    /// The forkchoice state with `head` on top of the current safe and finalized heads.
    pub(super) fn forkchoice(&self, head: &L2BlockRef) -> ForkchoiceState {
        ForkchoiceState {
            head_block_hash: head.hash,
            safe_block_hash: self.heads.safe.hash,
            finalized_block_hash: self.heads.finalized.hash,
        }
    }

    pub(super) fn emit_forkchoice_update(&self, out: &mut Emitter) {
        out.emit(Event::ForkchoiceUpdate(Box::new(self.heads)));
    }

    /// Without interop an unsafe block is cross-unsafe at once (op-node `PromoteCrossUnsafe`).
    pub(super) fn on_unsafe_update(&mut self, r: L2BlockRef) {
        self.heads.cross_unsafe = r;
        self.queue(Op::UpdateForkchoice);
    }

    /// op-node `tryUpdateUnsafe`.
    pub(super) fn try_update_unsafe(&mut self, r: L2BlockRef, out: &mut Emitter) {
        if self.heads.unsafe_head.number >= r.number {
            self.backup_unsafe = self.heads.unsafe_head;
            self.need_backup_reorg = false;
        }
        self.heads.unsafe_head = r;
        out.emit(Event::UnsafeUpdate(r));
    }

    /// op-node `tryUpdatePendingSafe` and `tryUpdateLocalSafe`.
    pub(super) fn try_update_safe(
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

    /// op-node `PromoteSafe`: without interop, local safety is full safety.
    pub(super) fn promote_safe(&mut self, safe: L2BlockRef, source: L1BlockRef, out: &mut Emitter) {
        self.heads.safe = safe;
        out.emit(Event::SafeDerived { safe, source });
        if safe.number > self.heads.cross_unsafe.number {
            self.heads.cross_unsafe = safe;
        }
    }

    /// op-node `PromoteFinalized`: finality never rewinds and never passes the safe head.
    pub(super) fn promote_finalized(&mut self, r: L2BlockRef, out: &mut Emitter) {
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

    /// op-node `FollowSource`: adopts a follow source's checked heads. Below the source's local
    /// safe head the unsafe head moves up to it (it may start or retarget EL sync); where the
    /// engine has that block, the heads are consolidated; where it has another, the node reorgs
    /// onto the source's chain: a sequencer by a forced reset (a soft move would be clobbered
    /// by its next block), a verifier by moving its unsafe head.
    pub(super) fn follow_source(&mut self, f: &FollowRefs, out: &mut Emitter) {
        if self.heads.unsafe_head.number < f.local_safe.number {
            log::debug!("follow source: its local safe {} is ahead of our unsafe head", f.local_safe);
            return self.follow_external(f, true, out);
        }
        match f.local {
            // The engine is still syncing towards a chain that may include the block.
            None => self.follow_external(f, false, out),
            Some(local) if local == f.local_safe => self.follow_external(f, false, out),
            Some(local) if self.sequencing => {
                log::warn!(
                    "follow source: reorg onto the source's chain at {} (ours: {local})",
                    f.local_safe
                );
                self.heads = EngineHeads {
                    unsafe_head: f.local_safe,
                    cross_unsafe: f.local_safe,
                    local_safe: f.local_safe,
                    safe: f.safe,
                    finalized: f.finalized,
                };
                self.pending_safe = f.local_safe;
                self.backup_unsafe = L2BlockRef::default();
                self.need_backup_reorg = false;
                self.last_forkchoice = ForkchoiceState::default();
                self.queue(Op::UpdateForkchoice);
                out.emit(Event::EngineResetConfirmed(Box::new(self.heads)));
            }
            Some(local) => {
                log::warn!(
                    "follow source: reorg to the source's local safe {} (ours: {local})",
                    f.local_safe
                );
                self.follow_external(f, true, out);
            }
        }
    }

    /// op-node's `followExternalRefs`: local safe, safe and finalized from the source (safe
    /// and finalized never move back), optionally the unsafe head too, then a forkchoice update.
    fn follow_external(&mut self, f: &FollowRefs, update_unsafe: bool, out: &mut Emitter) {
        if update_unsafe {
            self.try_update_unsafe(f.local_safe, out);
        }
        if f.local_safe.number > self.pending_safe.number {
            self.pending_safe = f.local_safe;
        }
        if f.local_safe.number > self.heads.local_safe.number {
            self.heads.local_safe = f.local_safe;
        }
        if f.safe.number > self.heads.safe.number {
            self.promote_safe(f.safe, L1BlockRef::default(), out);
        }
        if self.heads.finalized.number <= f.finalized.number && self.heads.finalized != f.finalized {
            self.promote_finalized(f.finalized, out);
        }
        self.queue(Op::UpdateForkchoice);
    }

    /// While resetting, the heads are not settled: derivation waits.
    pub(super) fn on_pending_safe_request(&self, out: &mut Emitter) {
        if self.resetting.is_none() {
            out.emit(Event::PendingSafeUpdate {
                pending_safe: self.pending_safe,
                unsafe_head: self.heads.unsafe_head,
            });
        }
    }

    /// op-node `tryUpdateEngine`: a forkchoice update onto the unsafe head, unless the engine
    /// already has this forkchoice.
    pub(super) fn start_update_forkchoice(&mut self, out: &mut Emitter) -> Started {
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

    pub(super) fn complete_update_forkchoice(
        &mut self,
        result: Result<EngineReply, EngineError>,
        out: &mut Emitter,
    ) {
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

    /// op-node `checkForkchoiceUpdatedStatus`.
    pub(super) fn fcu_status_ok(&mut self, status: ExecutionStatus) -> bool {
        if self.sync_mode == SyncMode::ExecutionLayer {
            if status == ExecutionStatus::Valid && self.el_sync == ElSyncStatus::Started {
                self.el_sync = ElSyncStatus::FinishedButNotFinalized;
            }
            return matches!(status, ExecutionStatus::Valid | ExecutionStatus::Syncing);
        }
        status == ExecutionStatus::Valid || (self.following && status == ExecutionStatus::Syncing)
    }

    /// Maps a failed forkchoice update to op-node's error severity.
    /// `what` names the update (op-node's "backup-unsafe", "pre-unsafe-block"), empty for the
    /// engine's regular one.
    pub(super) fn fcu_error(e: &EngineError, what: &str, out: &mut Emitter) {
        let what = if what.is_empty() { String::new() } else { format!("{what} ") };
        match e.code() {
            Some(codes::INVALID_FORKCHOICE_STATE) => out.emit(Event::Reset {
                err: format!(
                    "{what}forkchoice update was inconsistent with engine, need reset to resolve: {e}"
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

    pub(super) fn log_progress(&self, fc: &ForkchoiceState) {
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

    /// Queues the backup-unsafe reorg when one is due.
    pub(super) fn on_try_backup_unsafe_reorg(&mut self) {
        if self.need_backup_reorg {
            self.queue(Op::BackupReorg);
        }
    }

    /// op-node `tryBackupUnsafeReorg`: a forkchoice update back onto the backup unsafe head.
    pub(super) fn start_backup_reorg(&mut self) -> Started {
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

    pub(super) fn complete_backup_reorg(
        &mut self,
        result: Result<EngineReply, EngineError>,
        out: &mut Emitter,
    ) {
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
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::Arc;

    use super::*;
    use crate::derive::data::{CacheLimits, ChainData};
    use crate::protocol::primitives::B256;

    fn r(n: u64, tag: u8) -> L2BlockRef {
        L2BlockRef { hash: B256([tag; 32]), number: n, ..L2BlockRef::default() }
    }

    fn controller(sequencer: bool) -> EngineController {
        let json = crate::protocol::rollup::tests_support::BASE_JSON;
        let cfg = Arc::new(crate::protocol::rollup::RollupConfig::from_json(json).unwrap());
        let data = Rc::new(RefCell::new(ChainData::new(
            CacheLimits::default(),
            Default::default(),
            Default::default(),
        )));
        let mut c = EngineController::new(cfg, data, SyncMode::ConsensusLayer, 0, 1 << 20);
        c.set_following(sequencer);
        // Our chain: unsafe #10 (tag 1), safe #6, finalized #2.
        c.heads = EngineHeads {
            unsafe_head: r(10, 1),
            cross_unsafe: r(10, 1),
            local_safe: r(6, 1),
            safe: r(6, 1),
            finalized: r(2, 1),
        };
        c
    }

    fn names(out: &mut Emitter) -> Vec<&'static str> {
        let mut v = Vec::new();
        while let Some(e) = out.pop() {
            v.push(e.name());
        }
        v
    }

    fn refs(safe: L2BlockRef, finalized: L2BlockRef, local: Option<L2BlockRef>) -> FollowRefs {
        FollowRefs { safe, local_safe: safe, finalized, local }
    }

    #[test]
    fn matching_heads_are_adopted_and_the_unsafe_head_stays() {
        let mut c = controller(false);
        let mut out = Emitter::with_cap(16);
        c.follow_source(&refs(r(8, 1), r(4, 1), Some(r(8, 1))), &mut out);
        assert_eq!(names(&mut out), vec!["safe-derived", "finalized-update"]);
        let h = c.heads();
        assert_eq!((h.unsafe_head, h.local_safe, h.safe, h.finalized), (r(10, 1), r(8, 1), r(8, 1), r(4, 1)));
        // The same heads again: nothing new.
        c.follow_source(&refs(r(8, 1), r(4, 1), Some(r(8, 1))), &mut out);
        assert!(names(&mut out).is_empty());
        // The engine lacks the block (EL sync in progress): heads adopted, unsafe kept.
        c.follow_source(&refs(r(9, 2), r(4, 1), None), &mut out);
        assert_eq!(c.heads().unsafe_head, r(10, 1));
        assert_eq!(c.heads().safe, r(9, 2));
    }

    #[test]
    fn a_source_ahead_of_the_unsafe_head_moves_it_up() {
        let mut c = controller(false);
        let mut out = Emitter::with_cap(16);
        c.follow_source(&refs(r(12, 2), r(4, 2), None), &mut out);
        assert_eq!(names(&mut out), vec!["unsafe-update", "safe-derived", "finalized-update"]);
        assert_eq!(c.heads().unsafe_head, r(12, 2));
    }

    #[test]
    fn a_conflict_moves_a_verifiers_unsafe_head_and_resets_a_sequencer() {
        let conflict = refs(r(8, 2), r(2, 1), Some(r(8, 1)));
        let mut v = controller(false);
        let mut out = Emitter::with_cap(16);
        v.follow_source(&conflict, &mut out);
        assert_eq!(names(&mut out), vec!["unsafe-update", "safe-derived"]);
        assert_eq!((v.heads().unsafe_head, v.heads().safe), (r(8, 2), r(8, 2)));
        // The old unsafe head is kept as the backup, as any unsafe reorg does.
        assert_eq!(v.backup_unsafe, r(10, 1));

        let mut s = controller(true);
        s.follow_source(&conflict, &mut out);
        assert_eq!(names(&mut out), vec!["engine-reset-confirmed"]);
        let h = s.heads();
        assert_eq!((h.unsafe_head, h.local_safe, h.safe, h.finalized), (r(8, 2), r(8, 2), r(8, 2), r(2, 1)));
        assert_eq!(s.backup_unsafe, L2BlockRef::default());
        assert!(matches!(s.ops.back(), Some(Op::UpdateForkchoice)));
    }
}
