//! The engine reset (op-node `forceReset` after the sync-start search): on a reset request the
//! queued work is dropped and `FindL2Heads` walks the chain data, one step per event, until it
//! finds the heads to restart from.

use super::{EngineController, Op};
use crate::derive::sync_start::{FindHeadsResult, FindL2Heads, SyncStartError};
use crate::engine::api::ForkchoiceState;
use crate::engine::EngineHeads;
use crate::event::{Emitter, Event};
use crate::protocol::block_ref::L2BlockRef;

impl EngineController {
    /// op-node `onResetEngine`: starts the sync-start search (once) and steps it.
    pub(super) fn on_reset_engine_request(&mut self, out: &mut Emitter) {
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

    /// Steps the sync-start search with the chain data at hand; its result resets the heads.
    pub(super) fn step_reset(&mut self, out: &mut Emitter) {
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
}
