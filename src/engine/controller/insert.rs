//! Inserting blocks with newPayload: unsafe blocks from the gossip queue (op-node
//! `insertUnsafePayload`, newPayload then a forkchoice update onto the block) and sealed blocks
//! (`onPayloadProcess`, `onPayloadSuccess`); the unsafe payload queue feeds the next applicable
//! payload after each forkchoice update.

use super::{ElSyncStatus, EngineController, InsertStage, Op, Started};
use crate::derive::l2::{self, L2BlockParts};
use crate::engine::api::{
    new_payload_version, EngineCall, EngineError, EngineReply, ExecutionStatus, ForkchoiceState,
};
use crate::engine::{EngineHeads, SealedBlock, SyncMode};
use crate::event::{Emitter, Event};
use crate::protocol::block_ref::{BlockId, L2BlockRef};
use crate::protocol::payload::ExecutionPayloadEnvelope;
use crate::protocol::rollup::Fork;

impl EngineController {
    /// op-node `OnUnsafeL2Payload`: with EL sync every payload above the unsafe head is
    /// inserted at once (a gap is what drives the engine's own sync); with CL sync it waits in
    /// the queue until it applies on the unsafe head.
    pub(super) fn on_unsafe_payload(&mut self, env: &ExecutionPayloadEnvelope, out: &mut Emitter) {
        if self.sync_mode == SyncMode::ExecutionLayer {
            return self.insert_to_drive_el_sync(env);
        }
        match self.unsafe_payloads.push(Box::new(env.clone())) {
            Ok(()) => self.emit_forkchoice_update(out),
            Err(e) => log::warn!("could not add unsafe payload id={}: {e}", env.execution_payload.block_hash),
        }
    }

    /// op-node `onForkchoiceUpdate`: maybe insert the next queued unsafe payload.
    pub(super) fn on_forkchoice_update(&mut self, heads: &EngineHeads) {
        self.unsafe_payloads.drop_inapplicable(&heads.unsafe_head, &heads.safe);
        let Some(next) = self.unsafe_payloads.peek() else {
            return;
        };
        let p = &next.execution_payload;
        if p.parent_hash != heads.unsafe_head.hash
            || p.block_number != heads.unsafe_head.number.saturating_add(1)
        {
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

    /// An invalid block at the front of the unsafe queue is dropped.
    pub(super) fn on_payload_invalid(&mut self, block: BlockId) {
        if self.unsafe_payloads.peek().is_some_and(|p| p.execution_payload.block_hash == block.hash) {
            log::warn!("dropping invalid unsafe payload hash={} number={}", block.hash, block.number);
            self.unsafe_payloads.pop();
        }
    }

    /// op-node `insertUnsafePayload`, first half: newPayload (the first payload may start EL sync).
    pub(super) fn start_insert_unsafe(
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

    /// The newPayload of an unsafe block was answered: the forkchoice stage goes next, ahead of
    /// anything queued meanwhile.
    pub(super) fn complete_insert_unsafe(
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

    /// op-node `insertUnsafePayload`, second half: the forkchoice update onto the new block.
    pub(super) fn start_insert_forkchoice(
        envelope: Box<ExecutionPayloadEnvelope>,
        block_ref: L2BlockRef,
        fc: ForkchoiceState,
    ) -> Started {
        Started::Call(
            EngineCall::ForkchoiceUpdated { version: 3, state: fc, attributes: None },
            Op::InsertUnsafe { envelope, block_ref, stage: InsertStage::Forkchoice(fc) },
        )
    }

    pub(super) fn complete_insert_forkchoice(
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

    /// op-node `onPayloadProcess`: newPayload of a sealed block.
    pub(super) fn start_payload_process(&self, block: Box<SealedBlock>) -> Started {
        let version = new_payload_version(&self.cfg, block.envelope.execution_payload.timestamp);
        let call = EngineCall::NewPayload { version, envelope: Box::new(block.envelope.clone()) };
        Started::Call(call, Op::PayloadProcess(block))
    }

    /// op-node `onPayloadProcess` result: success, or an invalid block (Holocene retries the
    /// derived block as deposits only).
    pub(super) fn complete_payload_process(
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
            // A sequenced block built on a head that is no longer the unsafe head (derivation
            // made a sibling safe meanwhile) would not descend from the safe head: an engine
            // rejects that forkchoice state. It is abandoned; the sequencer builds again.
            ExecutionStatus::Valid
                if !block.is_derived() && block.block_ref.parent_hash != self.heads.unsafe_head.hash =>
            {
                log::warn!(
                    "abandoning sequenced block {}: its parent is no longer the unsafe head {}",
                    block.block_ref,
                    self.heads.unsafe_head
                );
                out.emit(Event::PayloadInvalid {
                    block: block.block_ref.id(),
                    err: format!("parent is not the unsafe head {}", self.heads.unsafe_head),
                });
            }
            ExecutionStatus::Valid => out.emit(Event::PayloadSuccess(block)),
            _ => out.emit(Event::EngineTemporaryError {
                err: format!("new payload {} returned {status}", block.block_ref),
            }),
        }
    }

    /// op-node `onPayloadSuccess`: the block becomes the unsafe head (and, if derived, the
    /// pending or local safe head).
    pub(super) fn on_payload_success(&mut self, block: &SealedBlock, out: &mut Emitter) {
        self.try_update_unsafe(block.block_ref, out);
        if block.is_derived() {
            self.try_update_safe(block.block_ref, block.concluding, block.derived_from, out);
        }
        self.queue(Op::UpdateForkchoice);
        log::info!("inserted new L2 block hash={} number={}", block.block_ref.hash, block.block_ref.number);
    }
}
