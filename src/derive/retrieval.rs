//! L1 retrieval: the batcher data of each L1 origin, from calldata before Ecotone and from
//! calldata or blobs after. A transaction counts when it is of an allowed type, sent to the
//! batch inbox, and signed by the batcher of the SystemConfig in force at that block.

use std::collections::VecDeque;

use super::codec;
use super::data::Miss;
use super::traversal::L1Traversal;
use super::{Cx, StageError, StageResult};
use crate::protocol::block_ref::L1BlockRef;
use crate::protocol::primitives::{Address, B256};
use crate::protocol::rollup::Fork;
use crate::protocol::system_config::SystemConfig;
use crate::protocol::tx::{Transaction, DEPOSIT_TX_TYPE, EIP4844_TX_TYPE};

#[derive(Debug)]
enum DataIter {
    /// The block's data is being fetched (transactions, then blobs).
    Opening {
        block: L1BlockRef,
        batcher: Address,
    },
    Ready(VecDeque<Vec<u8>>),
}

/// op-node `L1Retrieval` with its data sources.
#[derive(Debug, Default)]
pub struct L1Retrieval {
    pub prev: L1Traversal,
    datas: Option<DataIter>,
}

/// One piece of batcher data, or a pointer to a blob still to be filled in.
enum Item {
    Calldata(Vec<u8>),
    Blob(B256),
}

impl L1Retrieval {
    pub fn origin(&self) -> L1BlockRef {
        self.prev.origin()
    }

    /// The next batcher data of the current origin; `Eof` when the origin is exhausted.
    pub fn next_data(&mut self, cx: &mut Cx) -> StageResult<Vec<u8>> {
        if self.datas.is_none() {
            let block = self.prev.next_l1_block()?;
            let batcher = self.prev.system_config().batcher_addr;
            self.datas = Some(DataIter::Opening { block, batcher });
        }
        if let Some(DataIter::Opening { block, batcher }) = self.datas {
            let datas = open(cx, &block, &batcher)?;
            self.datas = Some(DataIter::Ready(datas));
        }
        match &mut self.datas {
            Some(DataIter::Ready(q)) => match q.pop_front() {
                Some(d) => Ok(d),
                None => {
                    self.datas = None;
                    Err(StageError::Eof)
                }
            },
            _ => Err(StageError::critical("retrieval in an impossible state")),
        }
    }

    /// Resets to `base`, opening its data directly (as op-node does).
    pub fn reset(&mut self, base: L1BlockRef, sys_cfg: &SystemConfig) {
        self.datas = Some(DataIter::Opening { block: base, batcher: sys_cfg.batcher_addr });
        log::info!("reset of L1Retrieval done origin={base}");
    }
}

/// Whether `tx` is batcher data for this rollup (op-node `isValidBatchTx`).
fn is_batch_tx(tx: &Transaction, inbox: &Address, batcher: &Address) -> bool {
    if tx.tx_type() > EIP4844_TX_TYPE && tx.tx_type() != DEPOSIT_TX_TYPE {
        return false;
    }
    if tx.to().as_ref() != Some(inbox) {
        return false;
    }
    match tx.sender() {
        Ok(sender) if sender == *batcher => true,
        Ok(sender) => {
            log::warn!("tx in inbox with unauthorized submitter addr={sender} hash={}", tx.hash());
            false
        }
        Err(e) => {
            log::warn!("tx in inbox with invalid signature hash={} err={e}", tx.hash());
            false
        }
    }
}

fn open(cx: &mut Cx, block: &L1BlockRef, batcher: &Address) -> StageResult<VecDeque<Vec<u8>>> {
    let txs = match cx.data.transactions(block.hash) {
        Ok(t) => t,
        Err(Miss::Pending) => return Err(StageError::NotYet),
        Err(Miss::NotFound) => {
            return Err(StageError::reset(format!("failed to open data source: block {block} not found")))
        }
    };
    let blobs_active = cx.cfg.is_active(Fork::Ecotone, block.timestamp);
    let inbox = cx.cfg.batch_inbox_address;
    let mut items = Vec::new();
    let mut hashes = Vec::new();
    for tx in txs.iter().filter(|tx| is_batch_tx(tx, &inbox, batcher)) {
        if blobs_active && tx.tx_type() == EIP4844_TX_TYPE {
            if !tx.input().is_empty() {
                log::warn!("blob tx has calldata, which will be ignored txhash={}", tx.hash());
            }
            for h in tx.blob_versioned_hashes() {
                hashes.push(*h);
                items.push(Item::Blob(*h));
            }
        } else {
            items.push(Item::Calldata(tx.input().to_vec()));
        }
    }
    let mut out = VecDeque::with_capacity(items.len());
    if !hashes.is_empty() {
        let blobs = match cx.data.blobs(block, &hashes) {
            Ok(b) => b,
            Err(Miss::Pending) => return Err(StageError::NotYet),
            Err(Miss::NotFound) => {
                return Err(StageError::reset(format!("failed to fetch blobs of {block}")))
            }
        };
        let mut blobs = blobs.into_iter();
        for item in items {
            match item {
                Item::Calldata(d) => out.push_back(d),
                Item::Blob(h) => match blobs.next().map(|b| codec::decode_blob(&b)) {
                    Some(Ok(data)) => out.push_back(data),
                    Some(Err(e)) => log::error!("ignoring blob {h} due to parse failure: {e}"),
                    None => return Err(StageError::reset(format!("didn't get enough blobs for {block}"))),
                },
            }
        }
        cx.data.release_blobs(&hashes);
    } else {
        out.extend(items.into_iter().filter_map(|i| match i {
            Item::Calldata(d) => Some(d),
            Item::Blob(_) => None,
        }));
    }
    cx.data.release_body(&block.hash);
    Ok(out)
}
