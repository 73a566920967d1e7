//! Attributes: the payload attributes of the next L2 block from a batch and its L1 origin
//! (op-node `FetchingAttributesBuilder` and `AttributesQueue`): the L1-info deposit in the
//! fork's format, user deposits of a new epoch, network upgrade transactions at activation
//! blocks, gas limit and fee parameters from the SystemConfig, prevRandao, the parent beacon
//! root and withdrawals.

use super::batch_stage::BatchStage;
use super::codec::{self, SingularBatch};
use super::data::Miss;
use super::{Cx, StageError, StageResult};
use crate::protocol::block_ref::{BlockId, L1BlockRef, L2BlockRef};
use crate::protocol::payload::PayloadAttributes;
use crate::protocol::primitives::{Address, B256};
use crate::protocol::rollup::Fork;

/// The SequencerFeeVault predeploy: every derived block's fee recipient.
pub const SEQUENCER_FEE_VAULT: Address =
    Address([0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11]);

/// Derived attributes with the block they build on (op-node `AttributesWithParent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributesWithParent {
    pub attributes: PayloadAttributes,
    pub parent: L2BlockRef,
    /// The last block of its span batch (op-node "concluding").
    pub concluding: bool,
    /// The L1 block the batch was read from; zero for attributes not derived from L1.
    pub derived_from: L1BlockRef,
}

impl AttributesWithParent {
    pub fn is_derived(&self) -> bool {
        self.derived_from != L1BlockRef::default()
    }

    /// The same block with only deposits (Holocene: an invalid payload is replaced by this).
    pub fn with_deposits_only(&self) -> AttributesWithParent {
        let mut a = self.clone();
        a.attributes.transactions.retain(|t| t.first() == Some(&crate::protocol::tx::DEPOSIT_TX_TYPE));
        a
    }
}

/// Builds payload attributes for the block after `parent` with L1 origin `epoch`.
pub fn prepare_payload_attributes(
    cx: &mut Cx,
    parent: &L2BlockRef,
    epoch: BlockId,
) -> StageResult<PayloadAttributes> {
    let cfg = cx.cfg;
    let mut sys_cfg = match cx.data.l2_by_hash(parent.hash) {
        Ok(d) => d.system_config,
        Err(Miss::Pending) => return Err(StageError::NotYet),
        Err(Miss::NotFound) => {
            return Err(StageError::temporary(format!("failed to retrieve L2 parent block {parent}")))
        }
    };
    let (info, deposits, seq_number) = if parent.l1origin.number != epoch.number {
        let info = cx.data.header_by_hash(epoch.hash).map_err(map_miss("L1 block info"))?;
        if parent.l1origin.hash != info.header.parent_hash {
            return Err(StageError::reset(format!(
                "cannot create new block with L1 origin {epoch} (parent {}) on top of L1 origin {}",
                info.header.parent_hash, parent.l1origin
            )));
        }
        let receipts = cx.data.receipts(&info).map_err(map_miss("L1 receipts"))?;
        let deposits = receipts
            .deposits
            .clone()
            .map_err(|e| StageError::critical(format!("failed to derive some deposits: {e}")))?;
        for log in &receipts.config_logs {
            let _ = codec::apply_config_log(&mut sys_cfg, log, cfg, info.time());
        }
        (info, deposits, 0)
    } else {
        if parent.l1origin.hash != epoch.hash {
            return Err(StageError::reset(format!(
                "cannot create new block with L1 origin {epoch} in conflict with L1 origin {}",
                parent.l1origin
            )));
        }
        let info = cx.data.header_by_hash(epoch.hash).map_err(map_miss("L1 block info"))?;
        (info, Vec::new(), parent.sequence_number.saturating_add(1))
    };
    let next_time = parent.timestamp.saturating_add(cfg.block_time);
    if next_time < info.time() {
        return Err(StageError::reset(format!(
            "cannot build L2 block on top {parent} for time {next_time} before L1 origin {epoch} at time {}",
            info.time()
        )));
    }
    let (upgrade_txs, upgrade_gas) =
        codec::upgrade_transactions(cfg, next_time).map_err(StageError::critical)?;
    let l1_info = codec::l1_info_deposit(cfg, cx.l1, &sys_cfg, seq_number, &info, next_time)
        .map_err(StageError::critical)?;
    let mut transactions = Vec::with_capacity(1 + deposits.len() + upgrade_txs.len());
    transactions.push(l1_info);
    transactions.extend(deposits);
    transactions.extend(upgrade_txs);
    Ok(PayloadAttributes {
        timestamp: next_time,
        prev_randao: info.header.mix_hash,
        suggested_fee_recipient: SEQUENCER_FEE_VAULT,
        withdrawals: cfg.is_active(Fork::Canyon, next_time).then(Vec::new),
        parent_beacon_block_root: cfg
            .is_active(Fork::Ecotone, next_time)
            .then(|| info.header.parent_beacon_block_root.unwrap_or(B256::ZERO)),
        transactions,
        no_tx_pool: true,
        gas_limit: Some(sys_cfg.gas_limit + upgrade_gas),
        eip1559_params: cfg.is_active(Fork::Holocene, next_time).then_some(sys_cfg.eip1559_params),
        min_base_fee: cfg.is_active(Fork::Jovian, next_time).then_some(sys_cfg.min_base_fee),
    })
}

fn map_miss(what: &'static str) -> impl Fn(Miss) -> StageError {
    move |m| match m {
        Miss::Pending => StageError::NotYet,
        Miss::NotFound => StageError::temporary(format!("failed to fetch {what}")),
    }
}

/// op-node `AttributesQueue`: the last stage.
#[derive(Debug, Default)]
pub struct AttributesQueue {
    pub prev: BatchStage,
    batch: Option<(SingularBatch, bool)>,
    last: Option<AttributesWithParent>,
}

impl AttributesQueue {
    pub fn origin(&self) -> L1BlockRef {
        self.prev.origin()
    }

    pub fn next_attributes(&mut self, parent: &L2BlockRef, cx: &mut Cx) -> StageResult<AttributesWithParent> {
        if self.batch.is_none() {
            self.batch = Some(self.prev.next_batch(parent, cx)?);
        }
        let Some((batch, concluding)) = self.batch.as_ref() else {
            return Err(StageError::critical("attributes queue lost its batch"));
        };
        if batch.parent_hash != parent.hash {
            return Err(StageError::reset(format!(
                "valid batch has bad parent hash {}, expected {}",
                batch.parent_hash, parent.hash
            )));
        }
        let expected = parent.timestamp.saturating_add(cx.cfg.block_time);
        if batch.timestamp != expected {
            return Err(StageError::reset(format!(
                "valid batch has bad timestamp {}, expected {expected}",
                batch.timestamp
            )));
        }
        let mut attrs = prepare_payload_attributes(
            cx,
            parent,
            BlockId { hash: batch.epoch_hash, number: batch.epoch_num },
        )?;
        attrs.no_tx_pool = true;
        attrs.transactions.extend(batch.transactions.iter().cloned());
        log::info!(
            "generated attributes in payload queue txs={} timestamp={}",
            attrs.transactions.len(),
            batch.timestamp
        );
        let out = AttributesWithParent {
            attributes: attrs,
            parent: *parent,
            concluding: *concluding,
            derived_from: self.origin(),
        };
        self.batch = None;
        self.last = Some(out.clone());
        Ok(out)
    }

    pub fn reset(&mut self) {
        self.batch = None;
        self.last = None;
    }

    /// Holocene: replaces the last attributes with their deposits-only version after the
    /// engine rejected the payload, flushing the channel they came from.
    pub fn deposits_only_attributes(
        &mut self,
        parent: BlockId,
        derived_from: L1BlockRef,
    ) -> Result<AttributesWithParent, String> {
        if self.batch.is_some() {
            return Err("unexpected buffered batch".into());
        }
        let last = self.last.as_ref().ok_or("no attributes generated yet")?;
        if derived_from != last.derived_from {
            return Err(format!(
                "unexpected derivation origin, last_origin: {}, invalid_origin: {derived_from}",
                last.derived_from
            ));
        }
        if parent != last.parent.id() {
            return Err(format!(
                "unexpected parent: last_parent: {}, invalid_parent: {parent}",
                last.parent.id()
            ));
        }
        self.prev.flush_channel();
        let attrs = last.with_deposits_only();
        self.last = Some(attrs.clone());
        Ok(attrs)
    }
}
