//! L1 traversal: the current L1 origin, advancing one block at a time with a parent-hash check
//! (an L1 reorg is a reset), and the SystemConfig as updated by each new block's logs.

use super::codec;
use super::{Cx, StageError, StageResult};
use crate::protocol::block_ref::L1BlockRef;
use crate::protocol::system_config::SystemConfig;

/// op-node `L1Traversal`.
#[derive(Debug, Default)]
pub struct L1Traversal {
    block: L1BlockRef,
    /// Whether `block` has been handed to retrieval already.
    done: bool,
    sys_cfg: SystemConfig,
}

impl L1Traversal {
    pub fn origin(&self) -> L1BlockRef {
        self.block
    }

    pub fn system_config(&self) -> &SystemConfig {
        &self.sys_cfg
    }

    /// The current block, once per origin.
    pub fn next_l1_block(&mut self) -> StageResult<L1BlockRef> {
        if self.done {
            return Err(StageError::Eof);
        }
        self.done = true;
        Ok(self.block)
    }

    /// Moves to the next L1 block when it is known, checking it builds on the current one.
    pub fn advance(&mut self, cx: &mut Cx) -> StageResult<()> {
        let origin = self.block;
        let next = match cx.data.header_by_number(origin.number.saturating_add(1)) {
            Ok(i) => i,
            Err(super::data::Miss::NotFound) => {
                log::debug!(
                    "can't find next L1 block info (yet) number={} origin={origin}",
                    origin.number.saturating_add(1)
                );
                return Err(StageError::Eof);
            }
            Err(super::data::Miss::Pending) => return Err(StageError::NotYet),
        };
        let next_ref = next.block_ref();
        if next_ref.parent_hash != origin.hash {
            return Err(StageError::reset(format!(
                "detected L1 reorg from {origin} to {next_ref} with conflicting parent {}",
                next_ref.parent_hash
            )));
        }
        let receipts = cx.data.receipts(&next)?;
        for log in &receipts.config_logs {
            if let Err(e) = codec::apply_config_log(&mut self.sys_cfg, log, cx.cfg, next_ref.timestamp) {
                log::warn!("failed to fully update L1 sysCfg with receipts from block {next_ref}: {e}");
            }
        }
        self.block = next_ref;
        self.done = false;
        cx.metrics.l1_origin = next_ref.number;
        Ok(())
    }

    pub fn reset(&mut self, base: L1BlockRef, sys_cfg: SystemConfig) {
        self.block = base;
        self.done = false;
        self.sys_cfg = sys_cfg;
        log::info!("completed reset of derivation pipeline origin={base}");
    }
}
