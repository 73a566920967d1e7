//! Block building (op-node `onBuildStart`, `onBuildSeal`, `onBuildCancel` and their results):
//! a forkchoice update with attributes starts a job, getPayload seals it into a checked block.
//! A derived block goes on to insertion at once; a sequenced one waits for the sequencer.

use super::{EngineController, Op, Started};
use crate::derive::attributes::AttributesWithParent;
use crate::derive::l2::{self, L2BlockParts};
use crate::engine::api::{
    codes, fcu_version, get_payload_version, EngineCall, EngineError, EngineReply, ExecutionStatus,
    PayloadInfo,
};
use crate::engine::{BuildJob, SealedBlock, SyncMode};
use crate::event::{Emitter, Event};
use crate::protocol::payload::ExecutionPayloadEnvelope;
use crate::protocol::rollup::Fork;
use crate::protocol::tx::DEPOSIT_TX_TYPE;

impl EngineController {
    /// op-node `onBuildStart`: a forkchoice update with the attributes on their parent.
    pub(super) fn start_build(&mut self, attrs: Box<AttributesWithParent>, out: &mut Emitter) -> Started {
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

    pub(super) fn complete_build_start(
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
            // Following the chain from L1 (not EL sync), SYNCING means the engine lacks the
            // parent we build on: it restarted without blocks it had not persisted. Its heads
            // are reloaded at once rather than retried until derivation notices.
            (ExecutionStatus::Syncing, _) if self.sync_mode == SyncMode::ConsensusLayer => out.emit(Event::Reset {
                err: format!(
                    "engine does not have the block-building parent {} (it answered SYNCING), resetting to its heads",
                    attrs.parent
                ),
            }),
            (ExecutionStatus::Syncing, _) => {
                out.emit(Event::EngineTemporaryError { err: "temporarily cannot insert new safe block: engine is syncing".into() })
            }
            (_, _) => out.emit(Event::EngineTemporaryError {
                err: format!("temporarily cannot insert new safe block: {}", res.payload_status),
            }),
        }
    }

    /// op-node `onBuildStarted`: a derived block is sealed at once.
    pub(super) fn on_build_started(job: &BuildJob, out: &mut Emitter) {
        if job.is_derived() {
            out.emit(Event::BuildSeal(Box::new(*job)));
        }
    }

    /// op-node `onBuildSeal`: getPayload.
    pub(super) fn start_build_seal(&self, job: Box<BuildJob>) -> Started {
        let version = get_payload_version(&self.cfg, job.info.timestamp);
        Started::Call(EngineCall::GetPayload { version, info: job.info }, Op::BuildSeal(job))
    }

    pub(super) fn complete_build_seal(
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

    /// op-node `onBuildSealed`: a derived block is inserted at once.
    pub(super) fn on_build_sealed(block: &SealedBlock, out: &mut Emitter) {
        if block.is_derived() {
            out.emit(Event::PayloadProcess(Box::new(block.clone())));
        }
    }

    /// op-node `onBuildInvalid`: deposits-only attributes that fail are critical; after
    /// Holocene derived attributes are retried as deposits only; else the attributes are
    /// dropped.
    pub(super) fn on_build_invalid(
        &mut self,
        attributes: &AttributesWithParent,
        err: &str,
        out: &mut Emitter,
    ) {
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

    /// op-node `onBuildCancel`: getPayload, which stops the job.
    pub(super) fn start_build_cancel(&self, info: PayloadInfo, force: bool) -> Started {
        log::warn!("cancelling old block building job id={}", info.id);
        let version = get_payload_version(&self.cfg, info.timestamp);
        Started::Call(EngineCall::GetPayload { version, info }, Op::BuildCancel { info, force })
    }

    pub(super) fn complete_build_cancel(
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
