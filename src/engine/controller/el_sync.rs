//! Execution-layer sync (op-node `syncStatusEnum` and `--syncmode=execution-layer`): gossiped
//! payloads are inserted as they come so the engine syncs itself; the first one starts EL sync
//! (unless the engine already has a finalized block), the first valid answer marks it done but
//! not finalized, and the next insertion sets safe and finalized behind the tip and ends it.

use super::{EngineController, InsertStage, Op, Started};
use crate::derive::data::{L2Label, Miss};
use crate::derive::l2::{self, L2BlockParts};
use crate::event::{Emitter, Event};
use crate::protocol::block_ref::L2BlockRef;
use crate::protocol::payload::ExecutionPayloadEnvelope;

/// Where execution-layer sync stands (op-node `syncStatusEnum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElSyncStatus {
    ConsensusLayer,
    WillStart,
    Started,
    FinishedButNotFinalized,
    Finished,
}

impl EngineController {
    /// EL sync is pending or running, and has not set safe and finalized yet.
    pub(super) fn is_initial_el_syncing(&self) -> bool {
        matches!(
            self.el_sync,
            ElSyncStatus::WillStart | ElSyncStatus::Started | ElSyncStatus::FinishedButNotFinalized
        )
    }

    /// Before the first unsafe payload with EL sync pending: a finalized block past genesis
    /// skips EL sync (`Ok(false)`: the payload is not inserted), else EL sync starts.
    pub(super) fn begin_el_sync(&mut self, out: &mut Emitter) -> Result<bool, Miss> {
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

    /// Queues a gossiped payload above the unsafe head for insertion, however far ahead: the
    /// gap is what the engine syncs.
    pub(super) fn insert_to_drive_el_sync(&mut self, env: &ExecutionPayloadEnvelope) {
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

    /// EL sync reached the tip: safe and finalized follow it, offset behind (op-node
    /// `--syncmode.offset-el-safe`), never moving back; then the forkchoice update.
    pub(super) fn start_el_sync_offset(
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

    /// The first unsafe block inserted after EL sync reached the tip ends EL sync.
    pub(super) fn finish_el_sync(&mut self, block_ref: L2BlockRef, out: &mut Emitter) {
        if self.el_sync == ElSyncStatus::FinishedButNotFinalized {
            log::info!("finished EL sync unsafe_block={block_ref} safe_finalized_block={}", self.heads.safe);
            self.el_sync = ElSyncStatus::Finished;
            out.emit(Event::EngineSyncStatus { syncing: false });
        }
    }
}
