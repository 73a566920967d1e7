//! The attributes handler (op-node `rollup/attributes.AttributesHandler`): takes derived
//! attributes, and on each pending-safe update either asks the pipeline for more, consolidates
//! them with the existing unsafe block (only the safe head moves), or builds them (a mismatch
//! reorgs the unsafe chain).

use std::sync::Arc;

use crate::derive::attributes::AttributesWithParent;
use crate::derive::data::{Arrival, L2BlockData, Miss, SharedData};
use crate::event::{Deriver, Emitter, Event};
use crate::protocol::block_ref::L2BlockRef;
use crate::protocol::eip1559::{Eip1559Params, ExtraData};
use crate::protocol::primitives::B256;
use crate::protocol::rollup::{Fork, RollupConfig};
use crate::protocol::trie::EMPTY_ROOT;
use crate::time::Now;

/// Derived attributes waiting to be applied.
pub struct AttributesHandler {
    cfg: Arc<RollupConfig>,
    data: SharedData,
    attributes: Option<Box<AttributesWithParent>>,
    sent: bool,
    /// Waiting for the unsafe block at this height to compare with.
    consolidating: Option<L2BlockRef>,
}

impl AttributesHandler {
    pub fn new(cfg: Arc<RollupConfig>, data: SharedData) -> Self {
        AttributesHandler { cfg, data, attributes: None, sent: false, consolidating: None }
    }

    fn reset(&mut self) {
        self.attributes = None;
        self.sent = false;
        self.consolidating = None;
    }

    fn on_pending_safe_update(
        &mut self,
        pending_safe: &L2BlockRef,
        unsafe_head: &L2BlockRef,
        out: &mut Emitter,
    ) {
        if unsafe_head.number < pending_safe.number {
            out.emit(Event::Reset {
                err: format!(
                    "pending-safe label ({}) may not be ahead of unsafe head label ({})",
                    pending_safe.number, unsafe_head.number
                ),
            });
            return;
        }
        let Some(attrs) = self.attributes.as_ref() else {
            self.sent = false;
            out.emit(Event::PipelineStep { pending_safe: *pending_safe });
            return;
        };
        if attrs.parent.number != pending_safe.number {
            log::debug!(
                "dropping stale attributes, requesting new ones pending={pending_safe} attributes_parent={}",
                attrs.parent
            );
            self.reset();
            out.emit(Event::PipelineStep { pending_safe: *pending_safe });
            return;
        }
        if self.sent {
            log::warn!("already sent the existing attributes");
            return;
        }
        if attrs.parent != *pending_safe {
            out.emit(Event::Reset {
                err: format!(
                    "pending safe head changed to {pending_safe} with parent {}, conflicting with queued safe attributes on top of {}",
                    pending_safe.parent_hash, attrs.parent
                ),
            });
        } else if pending_safe.number < unsafe_head.number {
            self.consolidating = Some(*pending_safe);
            self.try_consolidate(out);
        } else {
            self.sent = true;
            out.emit(Event::BuildStart(attrs.clone()));
        }
    }

    /// Compares the attributes with the unsafe block at their height, once it is at hand.
    fn try_consolidate(&mut self, out: &mut Emitter) {
        let (Some(onto), Some(attrs)) = (self.consolidating, self.attributes.as_ref()) else {
            return;
        };
        let block = match self.data.borrow_mut().l2_by_number(attrs.parent.number.saturating_add(1)) {
            Ok(b) => b,
            Err(Miss::Pending) => return,
            Err(Miss::NotFound) => {
                self.consolidating = None;
                out.emit(Event::Reset {
                    err: "expected engine was synced and had unsafe block to reconcile, but cannot find the block".into(),
                });
                return;
            }
        };
        self.consolidating = None;
        match attributes_match_block(&self.cfg, attrs, &onto.hash, &block) {
            Err(e) => {
                log::warn!("L2 reorg: existing unsafe block does not match derived attributes from L1 err={e} unsafe={} pending_safe={onto}", block.block_ref);
                self.sent = true;
                out.emit(Event::BuildStart(attrs.clone()));
            }
            Ok(()) => {
                // Consolidation: the block exists; only the safe labels move.
                out.emit(Event::SafeConsolidated {
                    safe: block.block_ref,
                    concluding: attrs.concluding,
                    source: attrs.derived_from,
                });
            }
        }
    }
}

impl Deriver for AttributesHandler {
    fn on_event(&mut self, ev: &Event, _now: Now, out: &mut Emitter) -> bool {
        match ev {
            Event::PendingSafeUpdate { pending_safe, unsafe_head } => {
                self.on_pending_safe_update(pending_safe, unsafe_head, out)
            }
            Event::DerivedAttributes(a) => {
                self.attributes = Some(a.clone());
                self.sent = false;
                self.consolidating = None;
                out.emit(Event::ConfirmReceivedAttributes);
                out.emit(Event::PendingSafeRequest);
            }
            Event::Reset { .. } | Event::EngineResetConfirmed(_) => self.reset(),
            Event::EngineTemporaryError { .. } => self.sent = false,
            Event::InvalidPayloadAttributes { attributes, .. } => {
                if attributes.is_derived() {
                    self.reset();
                    out.emit(Event::PendingSafeRequest);
                }
            }
            Event::PayloadSealExpired { job, err } => {
                if job.is_derived() {
                    log::warn!(
                        "block sealing job of derived attributes expired, job will be re-attempted err={err}"
                    );
                    self.sent = false;
                }
            }
            Event::PayloadSealInvalid { job, err } => {
                if job.is_derived() {
                    log::warn!("cannot seal derived block attributes, input is invalid err={err}");
                    self.reset();
                    out.emit(Event::PendingSafeRequest);
                }
            }
            Event::ChainDataArrived(a) => {
                if !matches!(**a, Arrival::Failed(..)) {
                    self.try_consolidate(out);
                } else {
                    self.consolidating = None;
                }
            }
            _ => return false,
        }
        true
    }
}

/// op-node `AttributesMatchBlock`: whether an existing block is exactly what the attributes
/// would build on `parent_hash`.
pub fn attributes_match_block(
    cfg: &RollupConfig,
    attrs: &AttributesWithParent,
    parent_hash: &B256,
    block: &L2BlockData,
) -> Result<(), String> {
    let a = &attrs.attributes;
    let Some(h) = block.header.as_ref() else {
        return Err("block header unknown".into());
    };
    if *parent_hash != h.parent_hash {
        return Err(format!(
            "parent hash field does not match. expected: {parent_hash}. got: {}",
            h.parent_hash
        ));
    }
    if a.timestamp != h.timestamp {
        return Err(format!(
            "timestamp field does not match. expected: {}. got: {}",
            a.timestamp, h.timestamp
        ));
    }
    if a.prev_randao != h.mix_hash {
        return Err(format!("random field does not match. expected: {}. got: {}", a.prev_randao, h.mix_hash));
    }
    if a.transactions.len() != block.txs.len() {
        return Err(format!(
            "transaction count does not match. expected: {}. got: {}",
            a.transactions.len(),
            block.txs.len()
        ));
    }
    if let Some(i) = (0..a.transactions.len()).find(|i| a.transactions[*i] != block.txs[*i]) {
        return Err(format!("transaction {i} does not match"));
    }
    match a.gas_limit {
        None => {
            return Err(format!("expected gaslimit in attributes to not be nil, expected {}", h.gas_limit))
        }
        Some(g) if g != h.gas_limit => {
            return Err(format!("gas limit does not match. expected {g}. got: {}", h.gas_limit))
        }
        _ => {}
    }
    let canyon = cfg.is_active(Fork::Canyon, h.timestamp);
    let isthmus = cfg.is_active(Fork::Isthmus, h.timestamp);
    if canyon {
        if h.withdrawals_root.is_none() {
            return Err("canyon: expected withdrawals in block to be non-nil and empty: block".into());
        }
        if a.withdrawals.as_ref().is_none_or(|w| !w.is_empty()) {
            return Err("canyon: expected withdrawals in block to be non-nil and empty: attributes".into());
        }
        if !isthmus && h.withdrawals_root != Some(EMPTY_ROOT) {
            return Err(format!(
                "canyon: expected withdrawalsRoot in block to be default: got {:?}",
                h.withdrawals_root
            ));
        }
    } else if a.withdrawals.is_some() {
        return Err("bedrock: expected withdrawals in attributes to be nil".into());
    }
    if isthmus && h.withdrawals_root.is_none() {
        return Err("isthmus: expected withdrawalsRoot in block to be non-nil".into());
    }
    match (a.parent_beacon_block_root, h.parent_beacon_block_root) {
        (Some(x), Some(y)) if x != y => {
            return Err(format!("parent beacon block root does not match. expected {x}. got: {y}"))
        }
        (Some(x), None) => return Err(format!("expected non-nil parent beacon block root {x} but got nil")),
        (None, Some(y)) => return Err(format!("expected nil parent beacon block root but got non-nil {y}")),
        _ => {}
    }
    if a.suggested_fee_recipient != h.beneficiary {
        return Err(format!(
            "fee recipient data does not match, expected {} but got {}",
            h.beneficiary, a.suggested_fee_recipient
        ));
    }
    match a.eip1559_params {
        Some(p) => {
            let mut ap = Eip1559Params::from_b64(p);
            ap.validate().map_err(|e| format!("invalid attributes EIP1559 parameters: {e}"))?;
            ap = ap.or_default(&cfg.chain_op_config()).map_err(|e| e.to_string())?;
            let be = ExtraData::decode_at(cfg, h.timestamp, &h.extra_data)
                .map_err(|e| format!("invalid block extraData: {e}"))?
                .ok_or("block extraData has no EIP-1559 parameters")?;
            if be.params != ap {
                return Err(format!(
                    "eip1559 parameters do not match, attributes: {}, {}, block: {}, {}",
                    ap.denominator, ap.elasticity, be.params.denominator, be.params.elasticity
                ));
            }
            if be.min_base_fee != a.min_base_fee {
                return Err(format!(
                    "minBaseFee does not match, attributes: {:?}, block: {:?}",
                    a.min_base_fee, be.min_base_fee
                ));
            }
        }
        None if !h.extra_data.is_empty() => {
            return Err("nil EIP1559Params in attributes but non-nil extraData in block".into());
        }
        None => {}
    }
    Ok(())
}
