//! Frame queue: parses batcher data into frames; from Holocene, prunes frames that cannot form
//! a complete, in-order channel (spec `holocene/derivation.md`, "Frame Queue").

use std::collections::VecDeque;

use super::retrieval::L1Retrieval;
use super::{Cx, StageError, StageResult};
use crate::protocol::block_ref::L1BlockRef;
use crate::protocol::frame::Frame;
use crate::protocol::rollup::Fork;

/// op-node `FrameQueue`.
#[derive(Debug, Default)]
pub struct FrameQueue {
    pub prev: L1Retrieval,
    frames: VecDeque<Frame>,
}

impl FrameQueue {
    pub fn origin(&self) -> L1BlockRef {
        self.prev.origin()
    }

    pub fn next_frame(&mut self, cx: &mut Cx) -> StageResult<Frame> {
        if self.frames.is_empty() {
            self.load_next_frames(cx)?;
        }
        self.frames.pop_front().ok_or(StageError::NotEnoughData)
    }

    fn load_next_frames(&mut self, cx: &mut Cx) -> StageResult<()> {
        let data = self.prev.next_data(cx)?;
        // Shared, not copied: a frame that is its transaction's whole data keeps the buffer.
        match Frame::parse_shared(&std::sync::Arc::new(data)) {
            Ok(frames) => {
                cx.metrics.frames += frames.len() as u64;
                self.frames.extend(frames);
            }
            Err(e) => {
                log::warn!("failed to parse frames origin={} err={e}", self.prev.origin());
                return Ok(());
            }
        }
        if cx.cfg.is_active(Fork::Holocene, self.origin().timestamp) {
            prune(&mut self.frames);
        }
        Ok(())
    }

    /// Drops buffered frames (Holocene activation, resets).
    pub fn reset(&mut self) {
        self.frames.clear();
    }
}

/// Holocene frame pruning (op-node `pruneFrameQueue`): within a channel frames must be
/// consecutive and stop at the last frame; a new channel must start at frame 0, and an
/// unfinished channel followed by a new one is dropped.
fn prune(frames: &mut VecDeque<Frame>) {
    let mut i = 0;
    while i + 1 < frames.len() {
        let (cur_id, cur_num, cur_last) = (frames[i].channel_id, frames[i].number, frames[i].is_last);
        let (next_id, next_num) = (frames[i + 1].channel_id, frames[i + 1].number);
        if cur_id == next_id {
            if cur_last || next_num != cur_num.wrapping_add(1) {
                frames.remove(i + 1);
                continue;
            }
        } else if next_num == 0 && !cur_last {
            frames.remove(i);
            i = i.saturating_sub(1);
            continue;
        } else if next_num != 0 {
            frames.remove(i + 1);
            continue;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(id: u8, number: u16, is_last: bool) -> Frame {
        Frame { channel_id: [id; 16], number, data: vec![].into(), is_last }
    }

    fn ids(q: &VecDeque<Frame>) -> Vec<(u8, u16)> {
        q.iter().map(|f| (f.channel_id[0], f.number)).collect()
    }

    #[test]
    fn holocene_pruning_matches_op_node_cases() {
        // Consecutive frames of one channel survive.
        let mut q: VecDeque<Frame> = vec![f(1, 0, false), f(1, 1, false), f(1, 2, true)].into();
        prune(&mut q);
        assert_eq!(ids(&q), vec![(1, 0), (1, 1), (1, 2)]);
        // A gap drops the later frame; frames after a last frame of the same channel go too.
        let mut q: VecDeque<Frame> =
            vec![f(1, 0, false), f(1, 2, true), f(1, 1, true), f(1, 2, false)].into();
        prune(&mut q);
        assert_eq!(ids(&q), vec![(1, 0), (1, 1)]);
        // An unfinished channel is dropped when a new one starts.
        let mut q: VecDeque<Frame> = vec![f(1, 0, false), f(2, 0, true)].into();
        prune(&mut q);
        assert_eq!(ids(&q), vec![(2, 0)]);
        // A new channel must start at frame 0.
        let mut q: VecDeque<Frame> = vec![f(1, 0, true), f(2, 1, true), f(3, 0, true)].into();
        prune(&mut q);
        assert_eq!(ids(&q), vec![(1, 0), (3, 0)]);
    }
}
