//! The derivation pipeline (op-node `DerivationPipeline`): resets (with the L2 walk-back that
//! finds where channel data must be re-read from), fork transformations of the stages, and
//! `step`, which yields attributes or advances the L1 origin.

use super::attributes::{AttributesQueue, AttributesWithParent};
use super::data::Miss;
use super::{Cx, StageError, StageResult};
use crate::protocol::block_ref::{BlockId, L1BlockRef, L2BlockRef};
use crate::protocol::rollup::Fork;
use crate::protocol::system_config::SystemConfig;

/// What one step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Attributes(Box<AttributesWithParent>),
    /// Progress without output; step again.
    Progress,
}

/// Where the reset walk-back currently is.
#[derive(Debug, Clone, Copy)]
struct Walk {
    l2: L2BlockRef,
    origin: Option<L1BlockRef>,
}

/// The pipeline: stages, origin, and reset state.
#[derive(Debug)]
pub struct Pipeline {
    pub stages: AttributesQueue,
    origin: L1BlockRef,
    reset_pending: bool,
    engine_is_reset: bool,
    reset_l2_safe: Option<L2BlockRef>,
    reset_origin: L1BlockRef,
    reset_sys_cfg: SystemConfig,
    /// The walk-back in progress and the safe head it is for.
    walk: Option<(L2BlockRef, Walk)>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            stages: AttributesQueue::default(),
            origin: L1BlockRef::default(),
            reset_pending: true,
            engine_is_reset: false,
            reset_l2_safe: None,
            reset_origin: L1BlockRef::default(),
            reset_sys_cfg: SystemConfig::default(),
            walk: None,
        }
    }
}

impl Pipeline {
    /// The L1 block the next attributes are derived from.
    pub fn origin(&self) -> L1BlockRef {
        self.origin
    }

    /// Ready once the engine confirmed a reset and the stages were reset.
    pub fn derivation_ready(&self) -> bool {
        self.engine_is_reset && !self.reset_pending
    }

    /// Starts over: the next steps wait for the engine reset, then rewind the stages.
    pub fn reset(&mut self) {
        self.reset_pending = true;
        self.engine_is_reset = false;
        self.reset_l2_safe = None;
        self.walk = None;
    }

    pub fn confirm_engine_reset(&mut self) {
        self.engine_is_reset = true;
    }

    /// Resets directly to a known L1 origin and SystemConfig for safe head `safe`, skipping the
    /// walk-back (replays of recorded ranges, and genesis).
    pub fn reset_to(&mut self, origin: L1BlockRef, sys_cfg: SystemConfig, safe: L2BlockRef) {
        self.reset_pending = true;
        self.engine_is_reset = true;
        self.reset_l2_safe = Some(safe);
        self.reset_origin = origin;
        self.reset_sys_cfg = sys_cfg;
        self.walk = None;
    }

    /// One step towards the next attributes for the block after `pending_safe`.
    pub fn step(&mut self, pending_safe: &L2BlockRef, cx: &mut Cx) -> StageResult<Step> {
        if self.reset_pending {
            if !self.engine_is_reset {
                return Err(StageError::reset("cannot continue derivation until Engine has been reset"));
            }
            if self.reset_l2_safe != Some(*pending_safe) {
                self.initial_reset(pending_safe, cx)?;
            }
            self.reset_stages(cx);
            return Ok(Step::Progress);
        }
        let prev = self.origin;
        let new = self.stages.origin();
        if prev != new {
            verify_new_l1_origin(&prev, &new, cx)?;
            if cx.cfg.is_active(Fork::Holocene, new.timestamp)
                && !cx.cfg.is_active(Fork::Holocene, prev.timestamp)
            {
                log::info!("transforming stages fork=holocene");
                self.transform_holocene();
            }
            self.origin = new;
            cx.metrics.l1_derived = new.number;
            cx.data.evict_l1_below(new.number);
        }
        match self.stages.next_attributes(pending_safe, cx) {
            Ok(a) => Ok(Step::Attributes(Box::new(a))),
            Err(StageError::Eof) => {
                let t = &mut self.stages.prev.prev.prev.prev.prev.prev;
                t.advance(cx).map(|_| Step::Progress)
            }
            Err(e) => Err(e),
        }
    }

    fn transform_holocene(&mut self) {
        let batches = &mut self.stages.prev;
        batches.transform_holocene();
        let channels = &mut batches.prev.prev;
        channels.transform_holocene();
        channels.prev.reset();
    }

    /// Walks the L2 chain back from `safe` until its L1 origin is a channel timeout older than
    /// the safe head's, so every channel that may still produce batches is re-read (op-node
    /// `initialReset`). Resumable: chain data misses keep the walk's position.
    fn initial_reset(&mut self, safe: &L2BlockRef, cx: &mut Cx) -> StageResult<()> {
        let target = safe.l1origin;
        let mut walk = match self.walk.take() {
            Some((for_safe, w)) if for_safe == *safe => w,
            _ => {
                log::info!("rewinding derivation-pipeline L1 traversal to handle reset safe={safe}");
                cx.metrics.pipeline_resets += 1;
                Walk { l2: *safe, origin: None }
            }
        };
        let mut steps = 0u64;
        loop {
            let origin = match walk.origin {
                Some(o) => o,
                None => {
                    let o = cx
                        .data
                        .header_by_hash(walk.l2.l1origin.hash)
                        .map_err(|m| self.save(safe, walk, m, "L1 origin"))?
                        .block_ref();
                    walk.origin = Some(o);
                    o
                }
            };
            let after_l2_genesis = walk.l2.number > cx.cfg.genesis.l2.number;
            let after_l1_genesis = walk.l2.l1origin.number > cx.cfg.genesis.l1.number;
            let after_timeout =
                walk.l2.l1origin.number.saturating_add(cx.cfg.channel_timeout(origin.timestamp))
                    > target.number;
            if !(after_l2_genesis && after_l1_genesis && after_timeout) {
                let sys = cx
                    .data
                    .l2_by_hash(walk.l2.hash)
                    .map_err(|m| self.save(safe, walk, m, "L2 system config"))?;
                self.reset_origin = origin;
                self.reset_sys_cfg = sys.system_config;
                self.reset_l2_safe = Some(*safe);
                self.walk = None;
                log::info!("pipeline reset walk-back done origin={origin} l2={} steps={steps}", walk.l2);
                return Ok(());
            }
            let parent =
                cx.data.l2_by_hash(walk.l2.parent_hash).map_err(|m| self.save(safe, walk, m, "L2 parent"))?;
            walk = Walk { l2: parent.block_ref, origin: None };
            steps += 1;
            if steps % 1000 == 0 {
                log::info!("pipeline reset walk-back progress l2={} origin_target={target}", walk.l2);
            }
        }
    }

    /// Keeps the walk position across a data miss.
    fn save(&mut self, safe: &L2BlockRef, walk: Walk, m: Miss, what: &str) -> StageError {
        self.walk = Some((*safe, walk));
        match m {
            Miss::Pending => StageError::NotYet,
            Miss::NotFound => {
                StageError::reset(format!("failed to fetch {what} during reset walk-back at {}", walk.l2))
            }
        }
    }

    fn reset_stages(&mut self, cx: &mut Cx) {
        let base = self.reset_origin;
        let sys = self.reset_sys_cfg;
        let attrib = &mut self.stages;
        attrib.reset();
        let batches = &mut attrib.prev;
        batches.reset(base, cx.cfg);
        let reader = &mut batches.prev;
        reader.reset();
        let channels = &mut reader.prev;
        channels.reset(&base, cx);
        let frames = &mut channels.prev;
        frames.reset();
        let retrieval = &mut frames.prev;
        retrieval.prev.reset(base, sys);
        retrieval.reset(base, &sys);
        self.origin = base;
        self.reset_pending = false;
        // Headers above the base may be from an abandoned L1 fork: look them up again.
        cx.data.forget_l1_above(base.number);
        log::info!("derivation pipeline reset origin={base}");
    }

    /// The SystemConfig at the traversal's origin.
    pub fn system_config(&self) -> SystemConfig {
        *self.stages.prev.prev.prev.prev.prev.prev.system_config()
    }

    /// Holocene's deposits-only replacement for rejected attributes.
    pub fn deposits_only_attributes(
        &mut self,
        parent: BlockId,
        derived_from: L1BlockRef,
    ) -> Result<AttributesWithParent, String> {
        self.stages.deposits_only_attributes(parent, derived_from)
    }
}

/// op-node `VerifyNewL1Origin`: the new origin must extend the previous one.
fn verify_new_l1_origin(prev: &L1BlockRef, new: &L1BlockRef, cx: &mut Cx) -> StageResult<()> {
    if new.number == prev.number && new != prev {
        return Err(StageError::reset(format!(
            "l1 origin was inconsistent with l2 unsafe head origin, need reset to resolve: l1 origin: {new}; unsafe origin: {prev}"
        )));
    }
    if new.number == prev.number.saturating_add(1) && new.parent_hash != prev.hash {
        return Err(StageError::reset(format!(
            "l2 unsafe head origin is no longer canonical, need reset to resolve: canonical hash: {}; unsafe origin hash: {}",
            new.parent_hash, prev.hash
        )));
    }
    if new.number > prev.number.saturating_add(1) {
        match cx.data.header_by_number(prev.number) {
            Ok(c) if c.block_ref() != *prev => {
                return Err(StageError::reset(format!(
                    "l2 unsafe head origin is no longer canonical, need reset to resolve: canonical: {}; unsafe origin: {prev}",
                    c.block_ref()
                )))
            }
            Ok(_) => {}
            Err(Miss::Pending) => return Err(StageError::NotYet),
            Err(Miss::NotFound) => {
                return Err(StageError::temporary(format!("failed to fetch canonical L1 block at slot: {}", prev.number)))
            }
        }
    }
    Ok(())
}
