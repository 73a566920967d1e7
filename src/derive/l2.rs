//! L2 blocks as the rollup reads them back (op-node `PayloadToBlockRef` and
//! `PayloadToSystemConfig`): the L1 origin and sequence number from the L1-info deposit, and
//! the SystemConfig a block implies for its child (batcher and fee scalars from the deposit,
//! gas limit from the header minus any upgrade gas, EIP-1559 params from extraData).

use std::sync::Arc;

use super::data::L2BlockData;
use crate::protocol::block_ref::{BlockId, L2BlockRef};
use crate::protocol::eip1559::ExtraData;
use crate::protocol::l1_info::L1BlockInfo;
use crate::protocol::primitives::{Bytes, B256, B64};
use crate::protocol::rollup::{Fork, RollupConfig};
use crate::protocol::system_config::SystemConfig;
use crate::protocol::tx::{Transaction, TxBody};
use crate::protocol::upgrades::upgrade_gas_to_strip;

/// The parts of an L2 block header and body the rollup reads.
#[derive(Debug, Clone, Copy)]
pub struct L2BlockParts<'a> {
    pub hash: B256,
    pub number: u64,
    pub parent_hash: B256,
    pub timestamp: u64,
    pub gas_limit: u64,
    pub extra_data: &'a [u8],
    pub txs: &'a [Bytes],
}

impl<'a> L2BlockParts<'a> {
    /// The parts of an execution payload.
    pub fn of_payload(p: &'a crate::protocol::payload::ExecutionPayload) -> Self {
        L2BlockParts {
            hash: p.block_hash,
            number: p.block_number,
            parent_hash: p.parent_hash,
            timestamp: p.timestamp,
            gas_limit: p.gas_limit,
            extra_data: &p.extra_data,
            txs: &p.transactions,
        }
    }
}

/// The L1-info of a non-genesis block, from its first transaction.
fn l1_info(cfg: &RollupConfig, p: &L2BlockParts<'_>) -> Result<L1BlockInfo, String> {
    let first = p
        .txs
        .first()
        .ok_or_else(|| format!("l2 block is missing L1 info deposit tx, block hash: {}", p.hash))?;
    let tx = Transaction::decode(first)
        .map_err(|e| format!("failed to decode first tx to read l1 info from: {e}"))?;
    let TxBody::Deposit(d) = &tx.body else {
        return Err(format!("first payload tx has unexpected tx type: {}", tx.tx_type()));
    };
    L1BlockInfo::decode_at(cfg, p.timestamp, &d.input)
        .map_err(|e| format!("failed to parse L1 info deposit tx from L2 block: {e}"))
}

/// op-node `PayloadToBlockRef`.
pub fn block_ref(cfg: &RollupConfig, p: &L2BlockParts<'_>) -> Result<L2BlockRef, String> {
    let (l1origin, sequence_number) = if p.number == cfg.genesis.l2.number {
        if p.hash != cfg.genesis.l2.hash {
            return Err(format!(
                "expected L2 genesis hash to match L2 block at genesis block number {}: {} <> {}",
                p.number, p.hash, cfg.genesis.l2.hash
            ));
        }
        (cfg.genesis.l1, 0)
    } else {
        let info = l1_info(cfg, p)?;
        (BlockId { hash: info.block_hash, number: info.number }, info.sequence_number)
    };
    Ok(L2BlockRef {
        hash: p.hash,
        number: p.number,
        parent_hash: p.parent_hash,
        timestamp: p.timestamp,
        l1origin,
        sequence_number,
    })
}

/// op-node `PayloadToSystemConfig`, with v1.19.1's removal of upgrade gas from activation
/// blocks (unless the chain keeps Karst's).
pub fn system_config(cfg: &RollupConfig, p: &L2BlockParts<'_>) -> Result<SystemConfig, String> {
    if p.number == cfg.genesis.l2.number {
        if p.hash != cfg.genesis.l2.hash {
            return Err(format!(
                "expected L2 genesis hash {} at block {}, got {}",
                cfg.genesis.l2.hash, p.number, p.hash
            ));
        }
        return Ok(cfg.genesis.system_config);
    }
    let info = l1_info(cfg, p)?;
    let t = p.timestamp;
    let mut scalar = info.l1_fee_scalar;
    if cfg.is_active(Fork::Ecotone, t) && !cfg.is_activation_block(Fork::Ecotone, t) {
        scalar.0 = [0; 32];
        scalar.0[0] = 1;
        scalar.0[24..28].copy_from_slice(&info.blob_base_fee_scalar.to_be_bytes());
        scalar.0[28..32].copy_from_slice(&info.base_fee_scalar.to_be_bytes());
    }
    let mut gas_limit = p.gas_limit;
    let strip = upgrade_gas_to_strip(cfg, t);
    if strip > 0 {
        gas_limit = gas_limit
            .checked_sub(strip)
            .ok_or_else(|| format!("activation block gas limit {gas_limit} below upgrade gas {strip}"))?;
    }
    let extra = ExtraData::decode_at(cfg, t, p.extra_data).map_err(|e| e.to_string())?;
    let mut sys = SystemConfig {
        batcher_addr: info.batcher_addr,
        overhead: info.l1_fee_overhead,
        scalar,
        gas_limit,
        eip1559_params: extra.map_or(B64::ZERO, |e| e.params.to_b64()),
        ..SystemConfig::default()
    };
    if cfg.is_active(Fork::Isthmus, t) {
        sys.operator_fee_params.0[20..24].copy_from_slice(&info.operator_fee_scalar.to_be_bytes());
        sys.operator_fee_params.0[24..32].copy_from_slice(&info.operator_fee_constant.to_be_bytes());
    }
    if cfg.is_active(Fork::Jovian, t) {
        sys.min_base_fee = extra.and_then(|e| e.min_base_fee).unwrap_or(0);
        sys.da_footprint_gas_scalar = info.da_footprint_gas_scalar;
    }
    Ok(sys)
}

/// Both of the above, as the pipeline's L2 cache holds them.
pub fn block_data(cfg: &RollupConfig, p: &L2BlockParts<'_>) -> Result<L2BlockData, String> {
    Ok(L2BlockData {
        block_ref: block_ref(cfg, p)?,
        system_config: system_config(cfg, p)?,
        txs: Arc::new(p.txs.to_vec()),
        header: None,
    })
}

/// The extraData an engine writes for a block built from these attributes (empty before
/// Holocene).
pub fn extra_data_for(
    cfg: &RollupConfig,
    t: u64,
    eip1559_params: Option<B64>,
    min_base_fee: Option<u64>,
) -> Result<Vec<u8>, String> {
    match eip1559_params {
        Some(p) if cfg.is_active(Fork::Holocene, t) => {
            let min = min_base_fee.filter(|_| cfg.is_active(Fork::Jovian, t));
            ExtraData::from_attributes(p, min, &cfg.chain_op_config())
                .map(|e| e.encode())
                .map_err(|e| e.to_string())
        }
        _ => Ok(Vec::new()),
    }
}
