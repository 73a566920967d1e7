//! The node's sans-IO core: which derivers a verifier runs, in which order, sharing which
//! caches. `Node` registers these and connects them to sockets and workers; tests register the
//! same set and answer their requests from simulators on virtual time.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use crate::derive::data::{CacheLimits, ChainData, SharedData};
use crate::derive::deriver::{ChainDataDeriver, PipelineDeriver};
use crate::driver::finalizer::{Finalizer, DEFAULT_FINALITY_LOOKBACK, FINALITY_DELAY};
use crate::driver::sched::{Backoff, StepScheduler};
use crate::driver::sequencer::{Sequencer, SequencerConfig};
use crate::driver::status::StatusTracker;
use crate::driver::sync::SyncDeriver;
use crate::engine::attributes::AttributesHandler;
use crate::engine::controller::{EngineController, DEFAULT_UNSAFE_QUEUE_BYTES};
use crate::engine::SyncMode;
use crate::event::{DuplicateDeriver, System};
use crate::protocol::l1_chain::L1ChainSpec;
use crate::protocol::rollup::RollupConfig;

/// What the verifier's derivers are built from.
#[derive(Debug, Clone)]
pub struct CoreParams {
    pub rollup: Arc<RollupConfig>,
    pub l1: Arc<L1ChainSpec>,
    pub sync_mode: SyncMode,
    pub verifier_confs: u64,
    /// With EL sync, how far behind the synced tip safe and finalized are set (L2 blocks).
    pub el_sync_offset_blocks: u64,
    pub unsafe_queue_bytes: u64,
    pub cache: CacheLimits,
    pub seed: u64,
}

impl CoreParams {
    /// Defaults for a rollup config (consensus-layer sync, no confirmation depth).
    pub fn new(rollup: Arc<RollupConfig>, l1: Arc<L1ChainSpec>, seed: u64) -> Self {
        CoreParams {
            rollup,
            l1,
            sync_mode: SyncMode::ConsensusLayer,
            verifier_confs: 0,
            el_sync_offset_blocks: 12 * 3600 / 2,
            unsafe_queue_bytes: DEFAULT_UNSAFE_QUEUE_BYTES,
            cache: CacheLimits::default(),
            seed,
        }
    }

    /// The shared chain-data caches for these parameters.
    pub fn chain_data(&self) -> SharedData {
        Rc::new(RefCell::new(ChainData::new(
            self.cache,
            self.rollup.deposit_contract_address,
            self.rollup.l1_system_config_address,
        )))
    }
}

/// Deriver names, in registration (fan-out) order.
pub const CHAIN_DATA: &str = "chain-data";
pub const STEP_SCHEDULER: &str = "step-scheduler";
pub const SYNC: &str = "sync";
pub const PIPELINE: &str = "pipeline";
pub const ATTRIBUTES: &str = "attributes";
pub const ENGINE: &str = "engine";
pub const FINALIZER: &str = "finalizer";
pub const STATUS: &str = "status";
pub const SEQUENCER: &str = "sequencer";

/// Registers the verifier's derivers. The chain-data deriver comes first so the others see
/// arrived data when the event reaches them.
pub fn register_verifier(
    system: &mut System,
    p: &CoreParams,
    data: &SharedData,
) -> Result<(), DuplicateDeriver> {
    let cfg = p.rollup.clone();
    system
        .register(CHAIN_DATA, Box::new(ChainDataDeriver::new(cfg.clone(), data.clone(), p.verifier_confs)))?;
    system.register(STEP_SCHEDULER, Box::new(StepScheduler::new(Backoff::exponential(p.seed))))?;
    system.register(SYNC, Box::new(SyncDeriver::for_mode(p.sync_mode)))?;
    system.register(PIPELINE, Box::new(PipelineDeriver::new(cfg.clone(), p.l1.clone(), data.clone())))?;
    system.register(ATTRIBUTES, Box::new(AttributesHandler::new(cfg.clone(), data.clone())))?;
    let engine =
        EngineController::new(cfg, data.clone(), p.sync_mode, p.el_sync_offset_blocks, p.unsafe_queue_bytes);
    system.register(ENGINE, Box::new(engine))?;
    system.register(
        FINALIZER,
        Box::new(Finalizer::new(data.clone(), DEFAULT_FINALITY_LOOKBACK, FINALITY_DELAY)),
    )?;
    system.register(STATUS, Box::new(StatusTracker::new()))?;
    Ok(())
}

/// Registers the sequencer (after the verifier's derivers, as op-node does) and starts it
/// when configured active.
pub fn register_sequencer(
    system: &mut System,
    p: &CoreParams,
    data: &SharedData,
    conf: SequencerConfig,
    now: crate::time::Now,
) -> Result<(), DuplicateDeriver> {
    let mut seq = Sequencer::new(p.rollup.clone(), p.l1.clone(), data.clone(), conf);
    seq.init(now, system.emitter());
    system.register(SEQUENCER, Box::new(seq))
}
