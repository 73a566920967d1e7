//! The finalizer (op-node `rollup/finality.Finalizer`): remembers which L1 block each safe L2
//! block was derived from, and when L1 finalizes past it, finalizes the L2 block — after
//! checking the finalized L1 block and the derivation origin are still canonical.

use crate::derive::data::{Miss, SharedData};
use crate::event::{Deriver, Emitter, Event};
use crate::protocol::block_ref::{BlockId, L1BlockRef, L2BlockRef};
use crate::time::Now;

/// op-node's default lookback: enough for the L1 finality delay of 2 epochs plus margin.
pub const DEFAULT_FINALITY_LOOKBACK: usize = 4 * 32 + 1;
/// L1 blocks to traverse between finalization attempts.
pub const FINALITY_DELAY: u64 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FinalityData {
    l2: L2BlockRef,
    l1: BlockId,
}

/// The finalizer.
pub struct Finalizer {
    data: SharedData,
    finalized_l1: L1BlockRef,
    last_finalized_l2: L2BlockRef,
    tried_at: u64,
    finality_data: Vec<FinalityData>,
    lookback: usize,
    delay: u64,
    /// A finalization waiting for L1 data to check canonicity.
    pending: Option<(L2BlockRef, BlockId)>,
    /// The derivation origin last reported, for `DeriverIdle`.
    derivation_origin: L1BlockRef,
}

impl Finalizer {
    pub fn new(data: SharedData, lookback: usize, delay: u64) -> Self {
        Finalizer {
            data,
            finalized_l1: L1BlockRef::default(),
            last_finalized_l2: L2BlockRef::default(),
            tried_at: 0,
            finality_data: Vec::with_capacity(lookback),
            lookback,
            delay,
            pending: None,
            derivation_origin: L1BlockRef::default(),
        }
    }

    pub fn finalized_l1(&self) -> L1BlockRef {
        self.finalized_l1
    }

    fn on_l1_finalized(&mut self, r: L1BlockRef, out: &mut Emitter) {
        if r.number < self.finalized_l1.number {
            log::error!(
                "ignoring old L1 finalized block signal prev_finalized_l1={} signaled_finalized_l1={r}",
                self.finalized_l1
            );
            return;
        }
        if self.finalized_l1 != r {
            self.tried_at = 0;
            self.finalized_l1 = r;
        }
        out.emit(Event::TryFinalize);
    }

    fn on_derivation_idle(&mut self, derived_from: L1BlockRef, out: &mut Emitter) {
        if self.finalized_l1 == L1BlockRef::default() {
            return;
        }
        if self.tried_at != 0 && derived_from.number <= self.tried_at + self.delay {
            return;
        }
        self.tried_at = derived_from.number;
        out.emit(Event::TryFinalize);
    }

    fn try_finalize(&mut self, out: &mut Emitter) {
        let mut finalized_l2 = self.last_finalized_l2;
        let mut derived_from = None;
        for fd in &self.finality_data {
            if fd.l2.number > finalized_l2.number && fd.l1.number <= self.finalized_l1.number {
                finalized_l2 = fd.l2;
                derived_from = Some(fd.l1);
            }
        }
        if let Some(df) = derived_from {
            self.pending = Some((finalized_l2, df));
            self.check_pending(out);
        }
    }

    /// Checks both L1 blocks are on the canonical chain, then promotes.
    fn check_pending(&mut self, out: &mut Emitter) {
        let Some((l2, df)) = self.pending else { return };
        let mut data = self.data.borrow_mut();
        let signal = data.header_by_number(self.finalized_l1.number);
        let derived = data.header_by_number(df.number);
        drop(data);
        let (signal, derived) = match (signal, derived) {
            (Ok(s), Ok(d)) => (s.block_ref(), d.block_ref()),
            (Err(Miss::Pending), _) | (_, Err(Miss::Pending)) => return,
            _ => {
                self.pending = None;
                out.emit(Event::L1TemporaryError {
                    err: format!(
                        "failed to check if on finalizing L1 chain, could not fetch block {}",
                        df.number
                    ),
                });
                return;
            }
        };
        self.pending = None;
        if signal.hash != self.finalized_l1.hash {
            out.emit(Event::Reset {
                err: format!(
                    "need to reset, we assumed {} is finalized, but canonical chain is {signal}",
                    self.finalized_l1
                ),
            });
            return;
        }
        if derived.hash != df.hash {
            out.emit(Event::Reset {
                err: format!(
                    "need to reset, we are on {df}, not on the finalizing L1 chain {derived} (towards {})",
                    self.finalized_l1
                ),
            });
            return;
        }
        out.emit(Event::PromoteFinalized(l2));
    }

    fn on_safe_derived(&mut self, l2: L2BlockRef, source: L1BlockRef) {
        // A safe head adopted from a follow source has no L1 source here: its finality comes
        // from the source too (op-node's finalizer never promotes such an entry either).
        if source == L1BlockRef::default() {
            return;
        }
        match self.finality_data.last_mut() {
            Some(last) if last.l1.number >= source.number => last.l2 = l2,
            _ => {
                if self.finality_data.len() >= self.lookback {
                    self.finality_data.remove(0);
                }
                self.finality_data.push(FinalityData { l2, l1: source.id() });
            }
        }
    }
}

impl Deriver for Finalizer {
    fn on_event(&mut self, ev: &Event, _now: Now, out: &mut Emitter) -> bool {
        match ev {
            Event::SafeDerived { safe, source } => self.on_safe_derived(*safe, *source),
            Event::DeriverL1Status { origin, .. } => {
                // op-node reacts to DeriverIdle carrying the origin; the status event gives it.
                self.derivation_origin = *origin;
            }
            Event::DeriverIdle => {
                let origin = self.derivation_origin;
                self.on_derivation_idle(origin, out);
            }
            Event::L1FinalizedUpdated(r) => self.on_l1_finalized(*r, out),
            Event::Reset { .. } => {
                self.finality_data.clear();
                self.tried_at = 0;
                self.pending = None;
            }
            Event::TryFinalize => self.try_finalize(out),
            Event::ForkchoiceUpdate(heads) => self.last_finalized_l2 = heads.finalized,
            Event::ChainDataArrived(_) => self.check_pending(out),
            _ => return false,
        }
        true
    }
}
