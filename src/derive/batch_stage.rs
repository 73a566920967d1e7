//! Batch queue (pre-Holocene: buffers batches, orders them by validity — drop / accept /
//! undecided / future — and fills sequencing-window gaps with empty batches) and batch stage
//! (Holocene: strict ordering, past batches skipped, invalid ones flush their channel; span
//! batches split into singular ones and checked one by one). Validity rules: spec
//! `derivation.md` "Batch Queue", `holocene/derivation.md`, op-node `batches.go`.

use super::channel_reader::ChannelReader;
use super::codec::{Batch, SingularBatch, SpanBatch};
use super::data::Miss;
use super::{Cx, StageError, StageResult};
use crate::protocol::block_ref::{L1BlockRef, L2BlockRef};
use crate::protocol::rollup::{Fork, RollupConfig};
use crate::protocol::tx::{DEPOSIT_TX_TYPE, EIP7702_TX_TYPE};

/// The outcome of checking a batch against the safe head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchValidity {
    Drop,
    Accept,
    Undecided,
    Future,
    Past,
}

#[derive(Debug)]
struct BatchWithInclusion {
    batch: Batch,
    l1_inclusion: L1BlockRef,
}

#[derive(Debug)]
enum Mode {
    Queue(Vec<BatchWithInclusion>),
    Stage,
}

/// op-node `BatchMux` with the shared `baseBatchStage` state.
#[derive(Debug)]
pub struct BatchStage {
    pub prev: ChannelReader,
    mode: Mode,
    origin: L1BlockRef,
    /// L1 blocks from the current epoch (first) up to the origin.
    l1_blocks: Vec<L1BlockRef>,
    /// Remaining singular batches of the span batch being applied.
    next_span: Vec<SingularBatch>,
}

impl Default for BatchStage {
    fn default() -> Self {
        BatchStage {
            prev: ChannelReader::default(),
            mode: Mode::Queue(Vec::new()),
            origin: L1BlockRef::default(),
            l1_blocks: Vec::new(),
            next_span: Vec::new(),
        }
    }
}

impl BatchStage {
    pub fn origin(&self) -> L1BlockRef {
        self.prev.origin()
    }

    pub fn is_holocene(&self) -> bool {
        matches!(self.mode, Mode::Stage)
    }

    /// Picks the mode for `base` and resets (op-node `BatchMux.Reset`).
    pub fn reset(&mut self, base: L1BlockRef, cfg: &RollupConfig) {
        self.mode =
            if cfg.is_active(Fork::Holocene, base.timestamp) { Mode::Stage } else { Mode::Queue(Vec::new()) };
        self.origin = base;
        self.l1_blocks = vec![base];
        self.next_span.clear();
    }

    /// Holocene activation keeps the buffered L1 blocks and origin.
    pub fn transform_holocene(&mut self) {
        if !self.is_holocene() {
            log::info!("BatchMux: transforming to Holocene stage");
            self.mode = Mode::Stage;
        }
    }

    /// Holocene: drops the rest of the span batch and the channel it came from.
    pub fn flush_channel(&mut self) {
        self.next_span.clear();
        self.prev.flush_channel();
    }

    /// The next singular batch to build on `parent`, and whether it is the last of its span.
    pub fn next_batch(&mut self, parent: &L2BlockRef, cx: &mut Cx) -> StageResult<(SingularBatch, bool)> {
        match self.mode {
            Mode::Queue(_) => self.next_batch_queue(parent, cx),
            Mode::Stage => self.next_batch_stage(parent, cx),
        }
    }

    fn pop_next(&mut self, parent: &L2BlockRef) -> SingularBatch {
        let mut b = self.next_span.remove(0);
        b.parent_hash = parent.hash;
        b
    }

    /// Continues a span batch if its next block builds on `parent`; otherwise drops the rest.
    fn next_from_span(&mut self, parent: &L2BlockRef, cx: &Cx) -> Option<(SingularBatch, bool)> {
        let first = self.next_span.first()?;
        if first.timestamp == parent.timestamp.saturating_add(cx.cfg.block_time) {
            let b = self.pop_next(parent);
            return Some((b, self.next_span.is_empty()));
        }
        log::warn!(
            "parent block does not match the next batch, dropped cached batches parent={parent} next_batch_time={}",
            first.timestamp
        );
        self.next_span.clear();
        None
    }

    fn origin_behind(&self, parent: &L2BlockRef) -> bool {
        self.prev.origin().number < parent.l1origin.number
    }

    fn update_origins(&mut self, parent: &L2BlockRef) {
        let behind = self.origin_behind(parent);
        let prev_origin = self.prev.origin();
        if self.origin != prev_origin {
            self.origin = prev_origin;
            if !behind {
                self.l1_blocks.push(prev_origin);
            } else {
                self.l1_blocks.clear();
            }
            log::info!("advancing bq origin origin={prev_origin} origin_behind={behind}");
        }
        if self.l1_blocks.first().is_some_and(|b| parent.l1origin.number > b.number) {
            if let Some(i) = self.l1_blocks.iter().position(|b| b.number == parent.l1origin.number) {
                self.l1_blocks.drain(..i);
            }
        }
    }

    /// Empty batches when the sequencing window of the current epoch has expired.
    fn derive_next_empty_batch(
        &mut self,
        out_of_data: bool,
        parent: &L2BlockRef,
        cx: &Cx,
    ) -> StageResult<SingularBatch> {
        let Some(epoch) = self.l1_blocks.first().copied() else {
            return Err(StageError::critical("cannot derive next batch, no origin was prepared"));
        };
        let expiry = epoch.number.saturating_add(cx.cfg.seq_window_size);
        let force = (expiry == self.origin.number && out_of_data) || expiry < self.origin.number;
        let first_of_epoch = epoch.number == parent.l1origin.number.saturating_add(1);
        let next_timestamp = parent.timestamp.saturating_add(cx.cfg.block_time);
        if !force || self.l1_blocks.len() < 2 {
            return Err(StageError::Eof);
        }
        let next_epoch = self.l1_blocks[1];
        if next_timestamp < next_epoch.timestamp || first_of_epoch {
            log::info!("generating next batch epoch={epoch} timestamp={next_timestamp} parent={parent}");
            return Ok(SingularBatch {
                parent_hash: parent.hash,
                epoch_num: epoch.number,
                epoch_hash: epoch.hash,
                timestamp: next_timestamp,
                transactions: Vec::new(),
            });
        }
        // Move on to the next epoch; the caller asks again.
        self.l1_blocks.remove(0);
        Err(StageError::Eof)
    }

    fn next_batch_queue(&mut self, parent: &L2BlockRef, cx: &mut Cx) -> StageResult<(SingularBatch, bool)> {
        if let Some(b) = self.next_from_span(parent, cx) {
            return Ok(b);
        }
        self.update_origins(parent);
        let behind = self.origin_behind(parent);
        let mut out_of_data = false;
        match self.prev.next_batch(cx) {
            Err(StageError::Eof) => out_of_data = true,
            Err(e) => return Err(e),
            Ok(batch) if !behind => self.add_batch(batch, parent, cx),
            Ok(_) => {}
        }
        if behind {
            return Err(if out_of_data { StageError::Eof } else { StageError::NotEnoughData });
        }
        let batch = match self.derive_next_batch(out_of_data, parent, cx) {
            Ok(b) => b,
            Err(StageError::Eof) if out_of_data => return Err(StageError::Eof),
            Err(StageError::Eof) => return Err(StageError::NotEnoughData),
            Err(e) => return Err(e),
        };
        match batch {
            Batch::Singular(b) => Ok((b, true)),
            Batch::Span(span) => {
                self.next_span = span
                    .singular_batches(&self.l1_blocks, parent)
                    .map_err(|e| StageError::critical(format!("span batch: {e}")))?;
                if self.next_span.is_empty() {
                    return Err(StageError::critical("span batch without new blocks"));
                }
                let b = self.pop_next(parent);
                Ok((b, self.next_span.is_empty()))
            }
        }
    }

    fn add_batch(&mut self, batch: Batch, parent: &L2BlockRef, cx: &mut Cx) {
        let item = BatchWithInclusion { batch, l1_inclusion: self.origin };
        if check_batch(cx, &self.l1_blocks, parent, &item.batch, &item.l1_inclusion) == BatchValidity::Drop {
            return;
        }
        if let Mode::Queue(q) = &mut self.mode {
            q.push(item);
        }
    }

    fn derive_next_batch(
        &mut self,
        out_of_data: bool,
        parent: &L2BlockRef,
        cx: &mut Cx,
    ) -> StageResult<Batch> {
        let Some(epoch) = self.l1_blocks.first().copied() else {
            return Err(StageError::critical("cannot derive next batch, no origin was prepared"));
        };
        if parent.l1origin != epoch.id() && parent.l1origin.number.saturating_add(1) != epoch.number {
            return Err(StageError::reset(format!(
                "buffered L1 chain epoch {epoch} in batch queue does not match safe head origin {}",
                parent.l1origin
            )));
        }
        let Mode::Queue(queue) = &mut self.mode else {
            return Err(StageError::critical("not in batch queue mode"));
        };
        let batches = std::mem::take(queue);
        let mut remaining = Vec::with_capacity(batches.len());
        let mut next = None;
        let mut iter = batches.into_iter();
        while let Some(item) = iter.next() {
            match check_batch(cx, &self.l1_blocks, parent, &item.batch, &item.l1_inclusion) {
                BatchValidity::Future => remaining.push(item),
                BatchValidity::Drop | BatchValidity::Past => {
                    log::warn!("dropping batch parent={parent} parent_time={}", parent.timestamp);
                }
                BatchValidity::Accept => {
                    next = Some(item.batch);
                    remaining.extend(iter);
                    break;
                }
                BatchValidity::Undecided => {
                    remaining.push(item);
                    remaining.extend(iter);
                    if let Mode::Queue(q) = &mut self.mode {
                        *q = remaining;
                    }
                    return Err(StageError::Eof);
                }
            }
        }
        if let Mode::Queue(q) = &mut self.mode {
            *q = remaining;
        }
        if let Some(b) = next {
            log::info!("found next batch timestamp={}", b.timestamp());
            return Ok(b);
        }
        self.derive_next_empty_batch(out_of_data, parent, cx).map(Batch::Singular)
    }

    fn next_batch_stage(&mut self, parent: &L2BlockRef, cx: &mut Cx) -> StageResult<(SingularBatch, bool)> {
        self.update_origins(parent);
        // Let the previous stages catch up to the safe head's origin.
        if self.origin_behind(parent) || parent.l1origin.number == self.origin.number {
            self.prev.next_batch(cx)?;
            return Err(StageError::NotEnoughData);
        }
        if self.l1_blocks.len() < 2 {
            return Err(StageError::critical(format!(
                "unexpected low buffered origin count, origin: {}, parent: {parent}",
                self.origin
            )));
        }
        let epoch = self.l1_blocks[0];
        if parent.l1origin != epoch.id() && parent.l1origin.number.saturating_add(1) != epoch.number {
            return Err(StageError::reset(format!(
                "buffered L1 chain epoch {epoch} in batch queue does not match safe head origin {}",
                parent.l1origin
            )));
        }
        let batch = match self.next_singular_candidate(parent, cx) {
            Ok(b) => b,
            Err(StageError::Eof) => {
                let empty = self.derive_next_empty_batch(true, parent, cx)?;
                return Ok((empty, true));
            }
            Err(e) => return Err(e),
        };
        let concluding = self.next_span.is_empty();
        match check_singular_batch(cx.cfg, &self.l1_blocks, parent, &batch, &self.origin) {
            BatchValidity::Accept => Ok((batch, concluding)),
            BatchValidity::Past => {
                log::warn!("dropping past singular batch timestamp={}", batch.timestamp);
                Err(StageError::NotEnoughData)
            }
            BatchValidity::Drop => {
                log::warn!("dropping invalid singular batch, flushing channel timestamp={}", batch.timestamp);
                self.flush_channel();
                Err(StageError::NotEnoughData)
            }
            BatchValidity::Undecided => Err(StageError::NotEnoughData),
            BatchValidity::Future => Err(StageError::critical("impossible batch validity: future")),
        }
    }

    fn next_singular_candidate(&mut self, parent: &L2BlockRef, cx: &mut Cx) -> StageResult<SingularBatch> {
        if let Some((b, _)) = self.next_from_span(parent, cx) {
            return Ok(b);
        }
        match self.prev.next_batch(cx)? {
            Batch::Singular(b) => Ok(b),
            Batch::Span(span) => {
                let origin = self.origin;
                let (validity, _) = check_span_batch_prefix(cx, &self.l1_blocks, parent, &span, &origin);
                match validity {
                    BatchValidity::Accept => {}
                    BatchValidity::Past => {
                        log::warn!("dropping past span batch");
                        return Err(StageError::NotEnoughData);
                    }
                    BatchValidity::Drop => {
                        log::warn!(
                            "dropping invalid span batch, flushing channel (span batch prefix checks)"
                        );
                        self.flush_channel();
                        return Err(StageError::NotEnoughData);
                    }
                    BatchValidity::Undecided => return Err(StageError::NotEnoughData),
                    BatchValidity::Future => {
                        return Err(StageError::critical("impossible future batch validity"))
                    }
                }
                match span.singular_batches(&self.l1_blocks, parent) {
                    Ok(batches) if !batches.is_empty() => {
                        self.next_span = batches;
                        Ok(self.pop_next(parent))
                    }
                    Ok(_) => Err(StageError::NotEnoughData),
                    Err(e) => {
                        log::warn!(
                            "dropping invalid span batch, flushing channel (singular batch extraction): {e}"
                        );
                        self.flush_channel();
                        Err(StageError::NotEnoughData)
                    }
                }
            }
        }
    }
}

/// Checks a batch of either kind (op-node `CheckBatch`).
fn check_batch(
    cx: &mut Cx,
    l1_blocks: &[L1BlockRef],
    safe: &L2BlockRef,
    batch: &Batch,
    inclusion: &L1BlockRef,
) -> BatchValidity {
    match batch {
        Batch::Singular(b) => check_singular_batch(cx.cfg, l1_blocks, safe, b, inclusion),
        Batch::Span(s) => check_span_batch(cx, l1_blocks, safe, s, inclusion),
    }
}

/// Rules shared by both batch kinds for each block's transactions.
fn check_transactions(
    cfg: &RollupConfig,
    timestamp: u64,
    txs: &[crate::protocol::primitives::Bytes],
) -> BatchValidity {
    let isthmus = cfg.is_active(Fork::Isthmus, timestamp);
    for (i, tx) in txs.iter().enumerate() {
        match tx.first() {
            None => {
                log::warn!("transaction data must not be empty, but found empty tx tx_index={i}");
                return BatchValidity::Drop;
            }
            Some(&DEPOSIT_TX_TYPE) => {
                log::warn!("sequencers may not embed any deposits into batch data tx_index={i}");
                return BatchValidity::Drop;
            }
            Some(&EIP7702_TX_TYPE) if !isthmus => {
                log::warn!("sequencers may not embed any SetCode transactions before Isthmus tx_index={i}");
                return BatchValidity::Drop;
            }
            _ => {}
        }
    }
    BatchValidity::Accept
}

/// Whether `t` is an activation block of a fork whose block carries upgrade transactions only.
fn is_upgrade_only_block(cfg: &RollupConfig, t: u64) -> bool {
    [Fork::Jovian, Fork::Karst, Fork::Interop].iter().any(|f| cfg.is_activation_block(*f, t))
}

/// op-node `checkSingularBatch`.
pub fn check_singular_batch(
    cfg: &RollupConfig,
    l1_blocks: &[L1BlockRef],
    safe: &L2BlockRef,
    batch: &SingularBatch,
    inclusion: &L1BlockRef,
) -> BatchValidity {
    let Some(epoch) = l1_blocks.first().copied() else {
        log::warn!("missing L1 block input, cannot proceed with batch checking");
        return BatchValidity::Undecided;
    };
    let holocene = cfg.is_active(Fork::Holocene, inclusion.timestamp);
    let next_timestamp = safe.timestamp.saturating_add(cfg.block_time);
    if batch.timestamp > next_timestamp {
        if holocene {
            log::warn!("dropping future batch timestamp={} next_timestamp={next_timestamp}", batch.timestamp);
            return BatchValidity::Drop;
        }
        return BatchValidity::Future;
    }
    if batch.timestamp < next_timestamp {
        log::warn!(
            "dropping past batch with old timestamp timestamp={} min_timestamp={next_timestamp}",
            batch.timestamp
        );
        return if holocene { BatchValidity::Past } else { BatchValidity::Drop };
    }
    if batch.parent_hash != safe.hash {
        log::warn!("ignoring batch with mismatching parent hash current_safe_head={}", safe.hash);
        return BatchValidity::Drop;
    }
    if batch.epoch_num.saturating_add(cfg.seq_window_size) < inclusion.number {
        log::warn!("batch was included too late, sequence window expired");
        return BatchValidity::Drop;
    }
    let batch_origin = if batch.epoch_num < epoch.number {
        log::warn!("dropped batch, epoch is too old minimum={epoch}");
        return BatchValidity::Drop;
    } else if batch.epoch_num == epoch.number {
        epoch
    } else if batch.epoch_num == epoch.number.saturating_add(1) {
        match l1_blocks.get(1) {
            Some(b) => *b,
            None => {
                log::info!("eager batch wants to advance epoch, but could not without more L1 blocks current_epoch={epoch}");
                return BatchValidity::Undecided;
            }
        }
    } else {
        log::warn!("batch is for future epoch too far ahead current_epoch={epoch}");
        return BatchValidity::Drop;
    };
    if batch.epoch_hash != batch_origin.hash {
        log::warn!("batch is for different L1 chain, epoch hash does not match expected={batch_origin}");
        return BatchValidity::Drop;
    }
    if batch.timestamp < batch_origin.timestamp {
        log::warn!("batch timestamp is less than L1 origin timestamp origin={batch_origin}");
        return BatchValidity::Drop;
    }
    if is_upgrade_only_block(cfg, batch.timestamp) && !batch.transactions.is_empty() {
        log::warn!("dropping batch with user transactions in fork activation block");
        return BatchValidity::Drop;
    }
    let max = batch_origin.timestamp.saturating_add(cfg.max_sequencer_drift(batch_origin.timestamp));
    if batch.timestamp > max {
        if !batch.transactions.is_empty() {
            log::warn!("batch exceeded sequencer time drift, sequencer must adopt new L1 origin to include transactions again max_time={max}");
            return BatchValidity::Drop;
        }
        if epoch.number == batch_origin.number {
            let Some(next_origin) = l1_blocks.get(1) else {
                log::info!("without the next L1 origin we cannot determine yet if this empty batch that exceeds the time drift is still valid");
                return BatchValidity::Undecided;
            };
            if batch.timestamp >= next_origin.timestamp {
                log::info!("batch exceeded sequencer time drift without adopting next origin, and next L1 origin would have been valid");
                return BatchValidity::Drop;
            }
            log::info!("continuing with empty batch before late L1 block to preserve L2 time invariant");
        }
    }
    check_transactions(cfg, batch.timestamp, &batch.transactions)
}

/// op-node `checkSpanBatchPrefix`: the checks a span batch passes before being split. Returns
/// the validity and the L2 block the span builds on.
pub fn check_span_batch_prefix(
    cx: &mut Cx,
    l1_blocks: &[L1BlockRef],
    safe: &L2BlockRef,
    batch: &SpanBatch,
    inclusion: &L1BlockRef,
) -> (BatchValidity, L2BlockRef) {
    let cfg = cx.cfg;
    let Some(epoch) = l1_blocks.first().copied() else {
        log::warn!("missing L1 block input, cannot proceed with batch checking");
        return (BatchValidity::Undecided, L2BlockRef::default());
    };
    let start_epoch = batch.start_epoch();
    let mut batch_origin = epoch;
    if start_epoch == batch_origin.number.saturating_add(1) {
        match l1_blocks.get(1) {
            Some(b) => batch_origin = *b,
            None => {
                log::info!("eager batch wants to advance epoch, but could not without more L1 blocks current_epoch={epoch}");
                return (BatchValidity::Undecided, L2BlockRef::default());
            }
        }
    }
    if !cfg.is_active(Fork::Delta, batch_origin.timestamp) {
        log::warn!("received SpanBatch with L1 origin before Delta hard fork l1_origin={batch_origin}");
        return (BatchValidity::Drop, L2BlockRef::default());
    }
    let holocene = cfg.is_active(Fork::Holocene, inclusion.timestamp);
    let next_timestamp = safe.timestamp.saturating_add(cfg.block_time);
    if batch.first_timestamp() > next_timestamp {
        if holocene {
            log::warn!("dropping future span batch next_timestamp={next_timestamp}");
            return (BatchValidity::Drop, L2BlockRef::default());
        }
        return (BatchValidity::Future, L2BlockRef::default());
    }
    if batch.last_timestamp() < next_timestamp {
        log::warn!("span batch has no new blocks after safe head");
        return (if holocene { BatchValidity::Past } else { BatchValidity::Drop }, L2BlockRef::default());
    }
    let mut parent = *safe;
    if batch.first_timestamp() < next_timestamp {
        if batch.first_timestamp() > safe.timestamp {
            log::warn!("batch has misaligned timestamp, block time is too short");
            return (BatchValidity::Drop, L2BlockRef::default());
        }
        if (safe.timestamp - batch.first_timestamp()) % cfg.block_time != 0 {
            log::warn!("batch has misaligned timestamp, not overlapped exactly");
            return (BatchValidity::Drop, L2BlockRef::default());
        }
        // The overlap is at most the safe head's age: a batch from before L2 genesis has no parent.
        let back = (safe.timestamp - batch.first_timestamp()) / cfg.block_time;
        let Some(parent_num) = safe.number.checked_sub(back).and_then(|n| n.checked_sub(1)) else {
            log::warn!("batch starts before the L2 genesis");
            return (BatchValidity::Drop, L2BlockRef::default());
        };
        match cx.data.l2_by_number(parent_num) {
            Ok(d) => parent = d.block_ref,
            Err(Miss::Pending) | Err(Miss::NotFound) => {
                log::warn!("failed to fetch L2 block number={parent_num}");
                return (BatchValidity::Undecided, L2BlockRef::default());
            }
        }
    }
    if !batch.check_parent_hash(&parent.hash) {
        log::warn!("ignoring batch with mismatching parent hash parent_block={}", parent.hash);
        return (BatchValidity::Drop, parent);
    }
    if start_epoch + cfg.seq_window_size < inclusion.number {
        log::warn!("batch was included too late, sequence window expired");
        return (BatchValidity::Drop, parent);
    }
    if start_epoch > parent.l1origin.number.saturating_add(1) {
        log::warn!("batch is for future epoch too far ahead current_epoch={epoch}");
        return (BatchValidity::Drop, parent);
    }
    let end_epoch = batch.last_epoch();
    match l1_blocks.iter().find(|b| b.number == end_epoch) {
        Some(b) if !batch.check_origin_hash(&b.hash) => {
            log::warn!("batch is for different L1 chain, epoch hash does not match expected={}", b.hash);
            return (BatchValidity::Drop, parent);
        }
        Some(_) => {}
        None => {
            log::info!("need more l1 blocks to check entire origins of span batch");
            return (BatchValidity::Undecided, parent);
        }
    }
    if start_epoch < parent.l1origin.number {
        log::warn!("dropped batch, epoch is too old minimum={parent}");
        return (BatchValidity::Drop, parent);
    }
    (BatchValidity::Accept, parent)
}

/// op-node `checkSpanBatch` (pre-Holocene): prefix checks, then every block, then the blocks
/// that overlap the safe chain must match it exactly.
fn check_span_batch(
    cx: &mut Cx,
    l1_blocks: &[L1BlockRef],
    safe: &L2BlockRef,
    batch: &SpanBatch,
    inclusion: &L1BlockRef,
) -> BatchValidity {
    let (prefix, parent) = check_span_batch_prefix(cx, l1_blocks, safe, batch, inclusion);
    if prefix != BatchValidity::Accept {
        return prefix;
    }
    let cfg = cx.cfg;
    let start_epoch = batch.start_epoch();
    let mut origin_idx = 0;
    let mut origin_advanced = start_epoch == parent.l1origin.number.saturating_add(1);
    for (i, block) in batch.blocks.iter().enumerate() {
        if block.timestamp <= safe.timestamp {
            continue;
        }
        if block.epoch_num < safe.l1origin.number {
            log::warn!("block epoch is too old minimum={safe} have={}", block.epoch_num);
            return BatchValidity::Drop;
        }
        let Some(j) = (origin_idx..l1_blocks.len()).find(|j| l1_blocks[*j].number == block.epoch_num) else {
            log::info!(
                "unable to find L1 origin for batch epoch={} timestamp={}",
                block.epoch_num,
                block.timestamp
            );
            return BatchValidity::Drop;
        };
        origin_idx = j;
        let l1_origin = l1_blocks[j];
        if i > 0 {
            origin_advanced = block.epoch_num > batch.blocks[i - 1].epoch_num;
        }
        if block.timestamp < l1_origin.timestamp {
            log::warn!("block timestamp is less than L1 origin timestamp origin={l1_origin}");
            return BatchValidity::Drop;
        }
        let max = l1_origin.timestamp.saturating_add(cfg.max_sequencer_drift(l1_origin.timestamp));
        if block.timestamp > max {
            if !block.transactions.is_empty() {
                log::warn!("batch exceeded sequencer time drift, sequencer must adopt new L1 origin to include transactions again max_time={max}");
                return BatchValidity::Drop;
            }
            if !origin_advanced {
                let Some(next) = l1_blocks.get(origin_idx.saturating_add(1)) else {
                    log::info!("without the next L1 origin we cannot determine yet if this empty batch that exceeds the time drift is still valid");
                    return BatchValidity::Undecided;
                };
                if block.timestamp >= next.timestamp {
                    log::info!("batch exceeded sequencer time drift without adopting next origin, and next L1 origin would have been valid");
                    return BatchValidity::Drop;
                }
            }
        }
        if check_transactions(cfg, block.timestamp, &block.transactions) != BatchValidity::Accept {
            return BatchValidity::Drop;
        }
    }
    // Blocks of the span that are already safe must match the safe chain.
    let next_timestamp = safe.timestamp.saturating_add(cfg.block_time);
    if batch.first_timestamp() < next_timestamp {
        for i in 0..safe.number.saturating_sub(parent.number) {
            let num = parent.number.saturating_add(i).saturating_add(1);
            let safe_block = match cx.data.l2_by_number(num) {
                Ok(d) => d,
                Err(_) => {
                    log::warn!("failed to fetch L2 block payload number={num}");
                    return BatchValidity::Undecided;
                }
            };
            let Some(block) = batch.blocks.get(i as usize) else {
                return BatchValidity::Drop;
            };
            let deposits = safe_block.txs.iter().filter(|t| t.first() == Some(&DEPOSIT_TX_TYPE)).count();
            if safe_block.txs.len() - deposits != block.transactions.len() {
                log::warn!("overlapped block's tx count does not match");
                return BatchValidity::Drop;
            }
            if safe_block.txs[deposits..] != block.transactions[..] {
                log::warn!("overlapped block's transaction does not match");
                return BatchValidity::Drop;
            }
            if safe_block.block_ref.l1origin.number != block.epoch_num {
                log::warn!("overlapped block's L1 origin number does not match");
                return BatchValidity::Drop;
            }
        }
    }
    BatchValidity::Accept
}
