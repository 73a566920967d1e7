//! The pipeline deriver (op-node `PipelineDeriver`): steps the pipeline on `PipelineStep`,
//! emits `DerivedAttributes`, `DeriverIdle`, `DeriverMore` and temporary / reset / critical
//! errors, turns cache misses into fetch requests, and files arriving chain data.

use std::sync::Arc;

use super::data::{Arrival, CacheLimits, ChainData, FetchRequest, ReceiptsDigest};
use super::l1_chain::L1ChainSpec;
use super::pipeline::{Pipeline, Step};
use super::{codec, Cx, DeriveMetrics, StageError};
use crate::config::rollup::RollupConfig;
use crate::event::{Deriver, Emitter, Event, Request};
use crate::protocol::receipt::Receipt;
use crate::time::Now;

/// Owns the pipeline and the chain data caches.
pub struct PipelineDeriver {
    cfg: Arc<RollupConfig>,
    l1: Arc<L1ChainSpec>,
    pub pipeline: Pipeline,
    pub data: ChainData,
    pub metrics: DeriveMetrics,
    /// Attributes were emitted and not yet confirmed as received.
    need_confirmation: bool,
    /// L1 confirmation depth (`--verifier.l1-confs`).
    confs: u64,
    /// Failed fetches in a row, for logging.
    pub fetch_failures: u64,
}

impl PipelineDeriver {
    pub fn new(
        cfg: Arc<RollupConfig>,
        l1: Arc<L1ChainSpec>,
        limits: CacheLimits,
        confs: u64,
    ) -> Self {
        let data = ChainData::new(
            limits,
            cfg.deposit_contract_address,
            cfg.l1_system_config_address,
        );
        PipelineDeriver {
            cfg,
            l1,
            pipeline: Pipeline::default(),
            data,
            metrics: DeriveMetrics::default(),
            need_confirmation: false,
            confs,
            fetch_failures: 0,
        }
    }

    fn cx(&mut self) -> (Cx<'_>, &mut Pipeline) {
        (
            Cx {
                cfg: &self.cfg,
                l1: &self.l1,
                data: &mut self.data,
                metrics: &mut self.metrics,
            },
            &mut self.pipeline,
        )
    }

    /// Files arrived chain data; returns whether a step may now make progress.
    pub fn on_arrival(&mut self, a: Arrival) -> bool {
        match a {
            Arrival::L1Header(info) => self.data.insert_header(info),
            Arrival::L1Block(info, txs) => self.data.insert_block(info, txs),
            Arrival::L1Receipts(hash, receipts) => {
                let digest = digest_receipts(&self.cfg, hash, &receipts);
                self.data.insert_receipts(hash, digest);
            }
            Arrival::Blobs {
                block,
                hashes,
                blobs,
            } => self.data.insert_blobs(&block, &hashes, blobs),
            Arrival::L2Block(d) => self.data.insert_l2(d),
            Arrival::L2Label(label, d) => self.data.insert_l2_label(label, d),
            Arrival::NotFound(req) => {
                if let FetchRequest::L1HeaderByNumber(n) = req {
                    self.data.not_found_by_number(n);
                } else {
                    self.data.clear_in_flight(&req);
                }
            }
            Arrival::Failed(req, err) => {
                self.fetch_failures += 1;
                log::warn!("chain data fetch failed request={req:?} err={err}");
                self.data.clear_in_flight(&req);
                return false;
            }
        }
        self.fetch_failures = 0;
        true
    }

    fn flush_requests(&mut self, out: &mut Emitter) {
        for r in self.data.take_requests() {
            out.request(Request::Fetch(r));
        }
    }

    fn step(&mut self, pending_safe: &crate::types::L2BlockRef, out: &mut Emitter) {
        if self.need_confirmation {
            log::debug!("previously sent attributes are unconfirmed to be received");
            return;
        }
        let pre = self.pipeline.origin();
        let (mut cx, pipeline) = self.cx();
        let result = pipeline.step(pending_safe, &mut cx);
        let post = self.pipeline.origin();
        if pre != post {
            out.emit(Event::DeriverL1Status {
                origin: post,
                last_l2: *pending_safe,
            });
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
                out.emit(Event::ExhaustedL1 {
                    origin: post,
                    last_l2: *pending_safe,
                });
            }
            // Waiting for requested data: its arrival asks for the next step.
            Err(StageError::NotYet) => {}
            Err(StageError::Temporary(e)) => out.emit(Event::EngineTemporaryError {
                err: format!("derivation: {e}"),
            }),
            Err(StageError::Reset(e)) => out.emit(Event::Reset { err: e }),
            Err(StageError::Critical(e)) => out.emit(Event::CriticalError {
                err: format!("derivation: {e}"),
            }),
        }
        self.flush_requests(out);
    }
}

impl Deriver for PipelineDeriver {
    fn on_event(&mut self, ev: &Event, _now: Now, out: &mut Emitter) -> bool {
        match ev {
            Event::PipelineStep { pending_safe } => self.step(pending_safe, out),
            Event::ConfirmPipelineReset => self.pipeline.confirm_engine_reset(),
            Event::ConfirmReceivedAttributes => self.need_confirmation = false,
            Event::ResetEngineRequest | Event::ResetPipelineRequest => {
                self.pipeline.reset();
                self.need_confirmation = false;
            }
            Event::DepositsOnlyAttributesRequest {
                parent,
                derived_from,
            } => {
                log::warn!(
                    "deriving deposits-only attributes origin={}",
                    self.pipeline.origin()
                );
                match self
                    .pipeline
                    .deposits_only_attributes(*parent, *derived_from)
                {
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
                if self.on_arrival((**a).clone()) {
                    out.emit(Event::StepReq {
                        reset_backoff: true,
                    });
                } else {
                    out.emit(Event::L1TemporaryError {
                        err: "chain data fetch failed".into(),
                    });
                }
            }
            Event::L1HeadUpdated(head) => {
                self.data
                    .set_l1_limit(Some(head.number.saturating_sub(self.confs)));
            }
            _ => return false,
        }
        true
    }
}

/// Extracts deposits and SystemConfig update logs from an L1 block's receipts.
pub fn digest_receipts(
    cfg: &RollupConfig,
    block_hash: crate::protocol::primitives::B256,
    receipts: &[Receipt],
) -> ReceiptsDigest {
    let config_logs = receipts
        .iter()
        .filter(|r| r.success)
        .flat_map(|r| r.logs.iter())
        .filter(|l| l.address == cfg.l1_system_config_address)
        .cloned()
        .collect();
    ReceiptsDigest {
        deposits: codec::user_deposits(receipts, cfg, block_hash),
        config_logs,
    }
}
