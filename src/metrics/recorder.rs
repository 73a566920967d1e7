//! The metrics recorder: a deriver that turns events into op-node's metrics where op-node
//! records them (its status tracker, engine controller, driver and p2p handlers): block refs of
//! every head, L1 reorg depths, manual pipeline resets, received unsafe payloads and whether
//! derivation is idle. Counters kept by other parts (the pipeline's, the caches') are mirrored
//! by the node; this deriver only observes.

use super::Metrics;
use crate::event::{Deriver, Emitter, EngineHeads, Event};
use crate::protocol::block_ref::L1BlockRef;
use crate::time::Now;

/// Records metrics from events.
pub struct MetricsRecorder {
    /// The node's metrics; the node records what it sees beside events here too (RPC calls,
    /// peers, mirrored counters before a scrape).
    pub metrics: Metrics,
    l1_head: L1BlockRef,
}

impl Default for MetricsRecorder {
    fn default() -> Self {
        MetricsRecorder::new(Metrics::new())
    }
}

impl MetricsRecorder {
    /// Records into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        MetricsRecorder { metrics, l1_head: L1BlockRef::default() }
    }

    fn heads(m: &mut Metrics, h: &EngineHeads, now: Now) {
        m.record_l2_ref("l2_unsafe", &h.unsafe_head, now);
        m.record_l2_ref("l2_cross_unsafe", &h.cross_unsafe, now);
        m.record_l2_ref("l2_local_safe", &h.local_safe, now);
        m.record_l2_ref("l2_safe", &h.safe, now);
        m.record_l2_ref("l2_finalized", &h.finalized, now);
    }
}

impl Deriver for MetricsRecorder {
    fn on_event(&mut self, ev: &Event, now: Now, _out: &mut Emitter) -> bool {
        let m = &mut self.metrics;
        match ev {
            Event::L1HeadUpdated(x) => {
                m.record_l1_ref("l1_head", x, now);
                // op-node's status tracker: a head that neither repeats nor extends the last one,
                // at or below its height, is a reorg of that depth.
                let head = self.l1_head;
                let moved =
                    head != L1BlockRef::default() && head.hash != x.hash && head.hash != x.parent_hash;
                if moved && head.number >= x.number {
                    m.record_l1_reorg_depth(head.number - x.number);
                }
                self.l1_head = *x;
            }
            Event::L1SafeUpdated(x) => m.record_l1_ref("l1_safe", x, now),
            Event::L1FinalizedUpdated(x) => m.record_l1_ref("l1_finalized", x, now),
            Event::DeriverL1Status { origin, .. } => m.record_l1_ref("l1_derived", origin, now),
            Event::ForkchoiceUpdate(h) | Event::EngineResetConfirmed(h) => Self::heads(m, h, now),
            Event::UnsafeUpdate(r) => m.record_l2_ref("l2_unsafe", r, now),
            Event::PendingSafeUpdate { pending_safe, .. } => {
                m.record_l2_ref("l2_pending_safe", pending_safe, now)
            }
            Event::LocalSafeUpdate { safe, .. } => m.record_l2_ref("l2_local_safe", safe, now),
            Event::FinalizedUpdate(r) => m.record_l2_ref("l2_finalized", r, now),
            // op-node's driver counts a manual reset; the pipeline counts its own resets too.
            Event::ResetPipelineRequest => m.record_pipeline_reset(now),
            Event::ReceivedUnsafePayload(env) => {
                let p = &env.execution_payload;
                let id = crate::protocol::block_ref::BlockId { hash: p.block_hash, number: p.block_number };
                m.record_received_unsafe_payload(id, p.timestamp, now);
            }
            Event::FollowSourceChecked { result } => m.record_follow_source_request(result),
            Event::DeriverIdle => m.set_derivation_idle(true),
            Event::DeriverMore | Event::DerivedAttributes(_) => m.set_derivation_idle(false),
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::primitives::B256;

    fn l1(n: u64, tag: u8, parent: u8) -> L1BlockRef {
        L1BlockRef {
            number: n,
            hash: B256([tag; 32]),
            parent_hash: B256([parent; 32]),
            timestamp: 1_700_000_000,
        }
    }

    #[test]
    fn heads_and_reorgs_become_metrics() {
        let now = crate::time::test_now();
        let mut r = MetricsRecorder::default();
        let mut out = Emitter::with_cap(8);
        for ev in [
            Event::L1HeadUpdated(l1(10, 10, 9)),
            Event::L1HeadUpdated(l1(11, 11, 10)),
            // A sibling of 10: a reorg one block deep.
            Event::L1HeadUpdated(l1(10, 20, 9)),
            Event::ResetPipelineRequest,
            Event::DeriverIdle,
        ] {
            assert!(r.on_event(&ev, now, &mut out));
        }
        assert!(!r.on_event(&Event::Step, now, &mut out));
        let text = r.metrics.render();
        for line in [
            "op_node_default_refs_number{layer=\"l1\",type=\"l1_head\"} 10",
            "op_node_default_l1_reorg_depth_count 1",
            "op_node_default_l1_reorg_depth_bucket{le=\"1.5\"} 1",
            "op_node_default_pipeline_resets_total 1",
            "op_node_default_derivation_idle 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }
}
