//! The protocol codecs as the pipeline uses them: batches in the two forms the batch stages
//! handle, channel decompression, blobs, deposits, SystemConfig updates, the L1-info deposit and
//! network upgrade transactions.

use crate::protocol::block_ref::{L1BlockRef, L2BlockRef};
use crate::protocol::primitives::{Bytes, B256, U256};
use crate::protocol::receipt::{Log, Receipt};
use crate::protocol::rlp::Rlp;
use crate::protocol::rollup::RollupConfig;
use crate::protocol::system_config::SystemConfig;
use crate::protocol::tx::{DepositTx, Transaction, TxBody};
use crate::protocol::{blob, channel, deposit, l1_info, system_config, upgrades};

pub use crate::protocol::batch::{BatchData, SingularBatch};
pub use crate::protocol::span_batch::SpanBatch;

use super::data::BlockInfo;
use crate::protocol::l1_chain::{blob_base_fee, L1ChainSpec, CANCUN_UPDATE_FRACTION};

/// A batch as the batch stages handle it: singular, or a span already expanded into blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    Singular(SingularBatch),
    Span(SpanBatch),
}

impl Batch {
    pub fn timestamp(&self) -> u64 {
        match self {
            Batch::Singular(b) => b.timestamp,
            Batch::Span(s) => s.first_timestamp(),
        }
    }
}

impl SpanBatch {
    pub fn first_timestamp(&self) -> u64 {
        self.timestamp()
    }

    pub fn last_timestamp(&self) -> u64 {
        self.blocks.last().map_or(0, |b| b.timestamp)
    }

    pub fn start_epoch(&self) -> u64 {
        self.blocks.first().map_or(0, |b| b.epoch_num)
    }

    pub fn last_epoch(&self) -> u64 {
        self.blocks.last().map_or(0, |b| b.epoch_num)
    }

    /// The span's blocks after `parent` as singular batches, with epoch hashes from
    /// `l1_blocks` (op-node `GetSingularBatches`). Parent hashes are filled in when applied.
    pub fn singular_batches(
        &self,
        l1_blocks: &[L1BlockRef],
        parent: &L2BlockRef,
    ) -> Result<Vec<SingularBatch>, String> {
        let mut out = Vec::new();
        let mut origin_idx = 0;
        for b in &self.blocks {
            if b.timestamp <= parent.timestamp {
                continue;
            }
            let Some(j) = (origin_idx..l1_blocks.len()).find(|j| l1_blocks[*j].number == b.epoch_num) else {
                return Err(format!(
                    "unable to find L1 origin for batch epoch={} timestamp={}",
                    b.epoch_num, b.timestamp
                ));
            };
            origin_idx = j;
            out.push(SingularBatch {
                parent_hash: B256::ZERO,
                epoch_num: b.epoch_num,
                epoch_hash: l1_blocks[j].hash,
                timestamp: b.timestamp,
                transactions: b.transactions.clone(),
            });
        }
        Ok(out)
    }
}

/// Decompresses a channel within the RLP byte limit.
pub fn decompress_channel(raw: &[u8], max_rlp_bytes: u64, brotli_allowed: bool) -> Result<Vec<u8>, String> {
    let limit = usize::try_from(max_rlp_bytes).unwrap_or(usize::MAX);
    channel::decompress(raw, limit, brotli_allowed).map(|d| d.data).map_err(|e| e.to_string())
}

/// The next batch item (an RLP string holding `type ++ content`) of a decompressed channel.
pub fn next_batch_item<'a>(data: &'a [u8], offset: &mut usize) -> Option<Result<&'a [u8], String>> {
    let rest = data.get(*offset..).filter(|r| !r.is_empty())?;
    let mut r = Rlp::new(rest);
    match r.next_bytes() {
        Ok(item) => {
            *offset = data.len() - r.remaining().len();
            Some(Ok(item))
        }
        Err(e) => {
            *offset = data.len();
            Some(Err(e.to_string()))
        }
    }
}

/// Decodes one batch item; an error ends the channel.
pub fn decode_batch_data(item: &[u8]) -> Result<DecodedBatch, String> {
    match BatchData::decode(item).map_err(|e| e.to_string())? {
        BatchData::Singular(b) => Ok(DecodedBatch::Singular(b)),
        BatchData::Span(raw) => Ok(DecodedBatch::Span(raw)),
    }
}

/// A decoded batch item, before span expansion.
pub enum DecodedBatch {
    Singular(SingularBatch),
    Span(Box<crate::protocol::span_batch::RawSpanBatch>),
}

/// Expands a raw span batch into blocks with full transactions; an error drops the batch only.
pub fn derive_span_batch(
    raw: &crate::protocol::span_batch::RawSpanBatch,
    cfg: &RollupConfig,
) -> Result<SpanBatch, String> {
    raw.derive(cfg.block_time, cfg.genesis.l2_time, cfg.l2_chain_id).map_err(|e| e.to_string())
}

/// Decodes an OP blob into batcher data.
pub fn decode_blob(b: &[u8]) -> Result<Vec<u8>, String> {
    blob::decode_blob(b).map_err(|e| e.to_string())
}

/// Applies one SystemConfig `ConfigUpdate` log (the caller has already picked the logs of
/// successful transactions from the SystemConfig contract).
pub fn apply_config_log(
    sys: &mut SystemConfig,
    log: &Log,
    cfg: &RollupConfig,
    l1_time: u64,
) -> Result<(), String> {
    if log.topics.first() != Some(&system_config::CONFIG_UPDATE_TOPIC) {
        return Ok(());
    }
    sys.apply_log(log, cfg, l1_time).map_err(|e| e.to_string())
}

fn encode_deposit(d: DepositTx) -> Bytes {
    Bytes(Transaction::new(TxBody::Deposit(d)).into_encoded())
}

/// The user deposits of an L1 block, encoded as deposit transactions.
pub fn user_deposits(
    receipts: &[Receipt],
    cfg: &RollupConfig,
    block_hash: B256,
) -> Result<Vec<Bytes>, String> {
    deposit::user_deposits(receipts, &cfg.deposit_contract_address, &block_hash)
        .map(|txs| txs.into_iter().map(encode_deposit).collect())
        .map_err(|e| e.to_string())
}

/// Network upgrade transactions for the L2 block at `t` and the gas they add to its limit.
pub fn upgrade_transactions(cfg: &RollupConfig, t: u64) -> Result<(Vec<Bytes>, u64), String> {
    let u = upgrades::activation_upgrades(cfg, t).map_err(|e| e.to_string())?;
    Ok((u.txs.into_iter().map(encode_deposit).collect(), u.extra_gas))
}

/// The L1-info deposit transaction of an L2 block at `l2_time` with origin `info`.
pub fn l1_info_deposit(
    cfg: &RollupConfig,
    l1: &L1ChainSpec,
    sys: &SystemConfig,
    seq_number: u64,
    info: &BlockInfo,
    l2_time: u64,
) -> Result<Bytes, String> {
    let h = &info.header;
    let blob_fee = h.excess_blob_gas.map(|excess| {
        // The Pectra blob schedule fix: chains that need it use Cancun's fraction until then.
        let fraction = if cfg.forks.pectra_blob_schedule_time.is_some_and(|t| info.time() < t) {
            CANCUN_UPDATE_FRACTION
        } else {
            l1.update_fraction(info.time()).unwrap_or(CANCUN_UPDATE_FRACTION)
        };
        blob_base_fee(excess, fraction)
    });
    let origin = l1_info::L1Origin {
        number: h.number,
        time: h.timestamp,
        base_fee: U256::from_u64(h.base_fee_per_gas.unwrap_or(0)),
        hash: info.hash,
        blob_base_fee: blob_fee,
    };
    l1_info::l1_info_deposit(cfg, sys, seq_number, &origin, l2_time)
        .map(encode_deposit)
        .map_err(|e| e.to_string())
}
