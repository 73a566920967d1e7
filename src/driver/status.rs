//! The sync status tracker (op-node `rollup/status.StatusTracker`): the L1 and L2 heads as
//! `optimism_syncStatus` reports them, updated from events.

use serde::{Deserialize, Serialize};

use crate::event::{Deriver, Emitter, Event};
use crate::protocol::block_ref::{L1BlockRef, L2BlockRef};
use crate::time::Now;

/// op-node `eth.SyncStatus`, with its JSON field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncStatus {
    pub current_l1: L1BlockRef,
    pub current_l1_finalized: L1BlockRef,
    pub head_l1: L1BlockRef,
    pub safe_l1: L1BlockRef,
    pub finalized_l1: L1BlockRef,
    pub unsafe_l2: L2BlockRef,
    pub safe_l2: L2BlockRef,
    pub finalized_l2: L2BlockRef,
    pub pending_safe_l2: L2BlockRef,
    pub cross_unsafe_l2: L2BlockRef,
    pub local_safe_l2: L2BlockRef,
}

/// Keeps the sync status current (reorg depths go to the metrics from `metrics::recorder`).
#[derive(Debug, Default)]
pub struct StatusTracker {
    pub status: SyncStatus,
    /// A light verifier's L1 head is the newest block its checks fetched: it moves in jumps
    /// by design, so a jump is no sign of a reorg there.
    pub head_jumps: bool,
}

impl StatusTracker {
    pub fn new() -> Self {
        StatusTracker::default()
    }

    fn on_l1_head(&mut self, x: L1BlockRef) {
        let head = self.status.head_l1;
        if head == L1BlockRef::default() {
            log::info!("received first L1 head signal l1_head={x}");
        } else if head.hash == x.hash {
        } else if head.hash == x.parent_hash {
            log::debug!("L1 head moved forward l1_head={x}");
        } else if self.head_jumps && x.number > head.number {
            log::debug!("L1 head moved forward to l1_head={x} from {head}");
        } else {
            log::warn!("L1 head signal indicates a possible L1 re-org old_l1_head={head} new_l1_head_parent={} new_l1_head={x}", x.parent_hash);
        }
        self.status.head_l1 = x;
    }
}

impl Deriver for StatusTracker {
    fn on_event(&mut self, ev: &Event, _now: Now, _out: &mut Emitter) -> bool {
        let s = &mut self.status;
        match ev {
            Event::ForkchoiceUpdate(h) => {
                s.unsafe_l2 = h.unsafe_head;
                s.safe_l2 = h.safe;
                if s.local_safe_l2.number < h.safe.number {
                    s.local_safe_l2 = h.safe;
                }
                s.finalized_l2 = h.finalized;
                s.cross_unsafe_l2 = h.cross_unsafe;
            }
            Event::PendingSafeUpdate { pending_safe, unsafe_head } => {
                s.unsafe_l2 = *unsafe_head;
                s.pending_safe_l2 = *pending_safe;
            }
            Event::LocalSafeUpdate { safe, .. } => s.local_safe_l2 = *safe,
            Event::DeriverL1Status { origin, .. } => s.current_l1 = *origin,
            Event::Reset { .. } => {
                s.unsafe_l2 = L2BlockRef::default();
                s.safe_l2 = L2BlockRef::default();
                s.local_safe_l2 = L2BlockRef::default();
                s.current_l1 = L1BlockRef::default();
            }
            Event::EngineResetConfirmed(h) => {
                s.unsafe_l2 = h.unsafe_head;
                s.cross_unsafe_l2 = h.cross_unsafe;
                s.local_safe_l2 = h.local_safe;
                s.safe_l2 = h.safe;
                s.finalized_l2 = h.finalized;
            }
            Event::L1HeadUpdated(x) => self.on_l1_head(*x),
            Event::L1SafeUpdated(x) => {
                log::info!("new L1 safe block l1_safe={x}");
                s.safe_l1 = *x;
            }
            Event::L1FinalizedUpdated(x) => {
                log::info!("new L1 finalized block l1_finalized={x}");
                s.finalized_l1 = *x;
                s.current_l1_finalized = *x;
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_uses_op_node_names() {
        let v = serde_json::to_value(SyncStatus::default()).unwrap();
        for k in [
            "current_l1",
            "current_l1_finalized",
            "head_l1",
            "safe_l1",
            "finalized_l1",
            "unsafe_l2",
            "safe_l2",
            "finalized_l2",
            "pending_safe_l2",
            "cross_unsafe_l2",
            "local_safe_l2",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        let l2 = &v["unsafe_l2"];
        for k in ["hash", "number", "parentHash", "timestamp", "l1origin", "sequenceNumber"] {
            assert!(l2.get(k).is_some(), "{k}");
        }
    }
}
