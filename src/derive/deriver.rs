//! The derivers around derivation: the chain-data deriver files arriving data into the shared
//! caches; the pipeline deriver (op-node `PipelineDeriver`) steps the pipeline on
//! `PipelineStep` and emits `DerivedAttributes`, `DeriverIdle`, `DeriverMore` and temporary /
//! reset / critical errors.

use std::sync::Arc;

use super::data::{Arrival, ReceiptsDigest, SharedData};
use super::pipeline::{Pipeline, Step};
use super::{codec, Cx, DeriveMetrics, StageError};
use crate::event::{Deriver, Emitter, Event};
use crate::protocol::l1_chain::L1ChainSpec;
use crate::protocol::primitives::B256;
use crate::protocol::receipt::Receipt;
use crate::protocol::rollup::RollupConfig;
use crate::time::Now;

/// Files chain data into the shared caches and keeps the L1 confirmation limit. Registered
/// before every deriver that reads the caches, so they see the data when the event reaches them.
pub struct ChainDataDeriver {
    cfg: Arc<RollupConfig>,
    data: SharedData,
    /// L1 confirmation depth (`--verifier.l1-confs`).
    confs: u64,
    pub fetch_failures: u64,
}

impl ChainDataDeriver {
    pub fn new(cfg: Arc<RollupConfig>, data: SharedData, confs: u64) -> Self {
        ChainDataDeriver { cfg, data, confs, fetch_failures: 0 }
    }
}

impl Deriver for ChainDataDeriver {
    fn on_event(&mut self, ev: &Event, _now: Now, out: &mut Emitter) -> bool {
        match ev {
            Event::ChainDataArrived(a) => {
                if self.data.borrow_mut().apply((**a).clone(), &self.cfg) {
                    self.fetch_failures = 0;
                } else {
                    self.fetch_failures += 1;
                }
            }
            Event::L1HeadUpdated(head) => {
                self.data.borrow_mut().set_l1_limit(Some(head.number.saturating_sub(self.confs)));
            }
            // The head poll's block goes into the caches (so traversal's read of the head hits),
            // then the head is announced as any poll announces it.
            Event::L1HeadPolled(a) => {
                let head = match &**a {
                    Arrival::L1Header(info) | Arrival::L1Block(info, _) => info.block_ref(),
                    _ => return false,
                };
                self.data.borrow_mut().apply((**a).clone(), &self.cfg);
                out.emit(Event::L1HeadUpdated(head));
            }
            // Polls are independent: a finalized (or safe) block may arrive before the head
            // poll that shows it. Such a block exists, so the by-number view must reach it.
            Event::L1SafeUpdated(r) | Event::L1FinalizedUpdated(r) => {
                let mut data = self.data.borrow_mut();
                if data.l1_limit().is_some_and(|l| l < r.number) {
                    data.set_l1_limit(Some(r.number));
                }
                return false;
            }
            _ => return false,
        }
        true
    }
}

/// Owns the pipeline.
pub struct PipelineDeriver {
    cfg: Arc<RollupConfig>,
    l1: Arc<L1ChainSpec>,
    data: SharedData,
    pub pipeline: Pipeline,
    pub metrics: DeriveMetrics,
    /// Attributes were emitted and not yet confirmed as received.
    need_confirmation: bool,
    /// Follow mode: the safe chain comes from a source node; the pipeline never steps.
    pub disabled: bool,
}

impl PipelineDeriver {
    pub fn new(cfg: Arc<RollupConfig>, l1: Arc<L1ChainSpec>, data: SharedData) -> Self {
        PipelineDeriver {
            cfg,
            l1,
            data,
            pipeline: Pipeline::default(),
            metrics: DeriveMetrics::default(),
            need_confirmation: false,
            disabled: false,
        }
    }

    fn step(&mut self, pending_safe: &crate::protocol::block_ref::L2BlockRef, out: &mut Emitter) {
        if self.need_confirmation {
            log::debug!("previously sent attributes are unconfirmed to be received");
            return;
        }
        let pre = self.pipeline.origin();
        let result = {
            let mut data = self.data.borrow_mut();
            let mut cx = Cx { cfg: &self.cfg, l1: &self.l1, data: &mut data, metrics: &mut self.metrics };
            self.pipeline.step(pending_safe, &mut cx)
        };
        let post = self.pipeline.origin();
        if pre != post {
            out.emit(Event::DeriverL1Status { origin: post, last_l2: *pending_safe });
        }
        match result {
            Ok(Step::Attributes(a)) => {
                self.need_confirmation = true;
                out.emit(Event::DerivedAttributes(a));
            }
            Ok(Step::Progress) | Err(StageError::NotEnoughData) => out.emit(Event::DeriverMore),
            Err(StageError::Eof) => {
                log::debug!("derivation process went idle progress={post}");
                out.emit(Event::DeriverIdle);
                out.emit(Event::ExhaustedL1 { origin: post, last_l2: *pending_safe });
            }
            // Waiting for requested data: its arrival asks for the next step.
            Err(StageError::NotYet) => {}
            Err(StageError::Temporary(e)) => {
                out.emit(Event::EngineTemporaryError { err: format!("derivation: {e}") })
            }
            Err(StageError::Reset(e)) => out.emit(Event::Reset { err: e }),
            Err(StageError::Critical(e)) => {
                out.emit(Event::CriticalError { err: format!("derivation: {e}") })
            }
        }
    }
}

impl Deriver for PipelineDeriver {
    fn on_event(&mut self, ev: &Event, _now: Now, out: &mut Emitter) -> bool {
        match ev {
            Event::PipelineStep { .. } if self.disabled => {}
            Event::PipelineStep { pending_safe } => self.step(pending_safe, out),
            Event::ConfirmPipelineReset => self.pipeline.confirm_engine_reset(),
            Event::ConfirmReceivedAttributes => self.need_confirmation = false,
            Event::ResetEngineRequest | Event::ResetPipelineRequest => {
                self.pipeline.reset();
                self.need_confirmation = false;
            }
            Event::DepositsOnlyAttributesRequest { parent, derived_from } => {
                log::warn!("deriving deposits-only attributes origin={}", self.pipeline.origin());
                match self.pipeline.deposits_only_attributes(*parent, *derived_from) {
                    Ok(a) => {
                        self.need_confirmation = true;
                        out.emit(Event::DerivedAttributes(Box::new(a)));
                    }
                    Err(e) => out.emit(Event::CriticalError {
                        err: format!("deriving deposits-only attributes: {e}"),
                    }),
                }
            }
            Event::ChainDataArrived(a) => {
                if matches!(**a, super::data::Arrival::Failed(..)) {
                    out.emit(Event::L1TemporaryError { err: "chain data fetch failed".into() });
                } else {
                    out.emit(Event::StepReq { reset_backoff: true });
                }
            }
            _ => return false,
        }
        true
    }
}

/// Extracts deposits and SystemConfig update logs from an L1 block's receipts.
pub fn digest_receipts(cfg: &RollupConfig, block_hash: B256, receipts: &[Receipt]) -> ReceiptsDigest {
    let config_logs = receipts
        .iter()
        .filter(|r| r.success)
        .flat_map(|r| r.logs.iter())
        .filter(|l| l.address == cfg.l1_system_config_address)
        .cloned()
        .collect();
    ReceiptsDigest { deposits: codec::user_deposits(receipts, cfg, block_hash), config_logs }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::data::{BlockInfo, CacheLimits, ChainData, FetchRequest};
    use crate::protocol::header::Header;
    use crate::protocol::primitives::Address;
    use crate::protocol::rollup::tests_support::BASE_JSON;

    #[test]
    fn the_head_poll_s_block_lands_in_the_caches_then_the_head_is_announced() {
        let cfg = Arc::new(RollupConfig::from_json(BASE_JSON).unwrap());
        let data = std::rc::Rc::new(std::cell::RefCell::new(ChainData::new(
            CacheLimits::default(),
            Address([1; 20]),
            Address([2; 20]),
        )));
        let mut d = ChainDataDeriver::new(cfg, data.clone(), 0);
        let (now, mut out) = (crate::time::test_now(), Emitter::with_cap(16));
        let head =
            |n: u64| BlockInfo::new(Header { number: n, timestamp: 1000 + 12 * n, ..Header::default() });

        // The header only: traversal's read of the head by number is a hit.
        let h = head(7);
        assert!(d.on_event(&Event::L1HeadPolled(Box::new(Arrival::L1Header(h.clone()))), now, &mut out));
        assert!(matches!(out.pop(), Some(Event::L1HeadUpdated(r)) if r == h.block_ref()));
        d.on_event(&Event::L1HeadUpdated(h.block_ref()), now, &mut out);
        assert_eq!(data.borrow_mut().header_by_number(7).map(|i| i.hash), Ok(h.hash));
        assert_eq!(
            data.borrow_mut().header_by_number(8).map(|i| i.hash),
            Err(crate::derive::data::Miss::NotFound)
        );

        // With its transactions: the body is a hit too, and nothing was asked for.
        let h = head(8);
        d.on_event(&Event::L1HeadPolled(Box::new(Arrival::L1Block(h.clone(), Vec::new()))), now, &mut out);
        assert!(matches!(out.pop(), Some(Event::L1HeadUpdated(r)) if r == h.block_ref()));
        d.on_event(&Event::L1HeadUpdated(h.block_ref()), now, &mut out);
        let mut dd = data.borrow_mut();
        assert_eq!(dd.header_by_number(8).map(|i| i.hash), Ok(h.hash));
        assert!(dd.transactions(h.hash).is_ok());
        assert_eq!(dd.poll_requests(), Vec::<FetchRequest>::new());
    }
}
