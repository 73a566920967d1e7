//! The unsafe payload queue (op-node `PayloadsQueue`): blocks from gossip waiting to be inserted,
//! ordered by number, without duplicates, bounded in bytes (the oldest are dropped first).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use crate::protocol::block_ref::L2BlockRef;
use crate::protocol::payload::ExecutionPayloadEnvelope;
use crate::protocol::primitives::B256;

/// op-node's per-payload accounting: a fixed cost plus each transaction and an overhead.
pub fn payload_mem_size(p: &ExecutionPayloadEnvelope) -> u64 {
    1000 + p.execution_payload.transactions.iter().map(|t| t.len() as u64 + 24).sum::<u64>()
}

struct Entry {
    number: u64,
    seq: u64,
    size: u64,
    envelope: Box<ExecutionPayloadEnvelope>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.number, self.seq) == (o.number, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.number, self.seq).cmp(&(o.number, o.seq))
    }
}

/// Why a payload was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
    Duplicate(B256),
    TooLarge {
        size: u64,
        max: u64,
    },
    /// The queue is full and this payload is the oldest.
    Oldest(B256),
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::Duplicate(h) => write!(f, "cannot add duplicate payload {h}"),
            QueueError::TooLarge { size, max } => write!(f, "payload mem size {size} is larger than max queue size {max}"),
            QueueError::Oldest(h) => write!(f, "cannot add payload {h}, since it has the oldest block number in queue and queue size limit is reached"),
        }
    }
}

/// A min-heap of payloads by block number.
pub struct PayloadQueue {
    heap: BinaryHeap<Reverse<Entry>>,
    hashes: HashSet<B256>,
    size: u64,
    max: u64,
    seq: u64,
}

impl PayloadQueue {
    pub fn new(max_bytes: u64) -> Self {
        PayloadQueue { heap: BinaryHeap::new(), hashes: HashSet::new(), size: 0, max: max_bytes, seq: 0 }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub fn mem_size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, envelope: Box<ExecutionPayloadEnvelope>) -> Result<(), QueueError> {
        let hash = envelope.execution_payload.block_hash;
        if self.hashes.contains(&hash) {
            return Err(QueueError::Duplicate(hash));
        }
        let size = payload_mem_size(&envelope);
        if size > self.max {
            return Err(QueueError::TooLarge { size, max: self.max });
        }
        self.seq += 1;
        let number = envelope.execution_payload.block_number;
        self.heap.push(Reverse(Entry { number, seq: self.seq, size, envelope }));
        self.hashes.insert(hash);
        self.size += size;
        while self.size > self.max {
            let Some(dropped) = self.pop() else { break };
            log::info!(
                "dropping payload from payload queue because the payload queue is too large id={}",
                dropped.execution_payload.block_hash
            );
            if dropped.execution_payload.block_hash == hash {
                return Err(QueueError::Oldest(hash));
            }
        }
        Ok(())
    }

    pub fn peek(&self) -> Option<&ExecutionPayloadEnvelope> {
        self.heap.peek().map(|e| &*e.0.envelope)
    }

    pub fn pop(&mut self) -> Option<Box<ExecutionPayloadEnvelope>> {
        let Reverse(e) = self.heap.pop()?;
        self.size -= e.size;
        self.hashes.remove(&e.envelope.execution_payload.block_hash);
        Some(e.envelope)
    }

    /// op-node `DropInapplicableUnsafePayloads`: drops what the new forkchoice makes useless.
    pub fn drop_inapplicable(&mut self, unsafe_head: &L2BlockRef, safe: &L2BlockRef) {
        while let Some(next) = self.peek() {
            let p = &next.execution_payload;
            let drop = p.block_hash == unsafe_head.hash
                || p.block_number <= safe.number
                || p.block_number <= unsafe_head.number
                || (p.block_number == unsafe_head.number.saturating_add(1)
                    && p.parent_hash != unsafe_head.hash);
            if !drop {
                break;
            }
            log::debug!(
                "skipping inapplicable unsafe payload number={} hash={}",
                p.block_number,
                p.block_hash
            );
            self.pop();
        }
    }

    pub fn clear(&mut self) {
        self.heap.clear();
        self.hashes.clear();
        self.size = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::payload::ExecutionPayload;
    use crate::protocol::primitives::Bytes;

    fn env(number: u64, tag: u8, tx_bytes: usize) -> Box<ExecutionPayloadEnvelope> {
        Box::new(ExecutionPayloadEnvelope {
            parent_beacon_block_root: None,
            execution_payload: ExecutionPayload {
                block_number: number,
                block_hash: B256([tag; 32]),
                parent_hash: B256([tag.wrapping_sub(1); 32]),
                transactions: vec![Bytes(vec![0; tx_bytes])],
                ..ExecutionPayload::default()
            },
        })
    }

    #[test]
    fn orders_by_number_and_rejects_duplicates() {
        let mut q = PayloadQueue::new(1 << 20);
        q.push(env(5, 5, 10)).unwrap();
        q.push(env(3, 3, 10)).unwrap();
        q.push(env(4, 4, 10)).unwrap();
        assert_eq!(q.push(env(4, 4, 10)), Err(QueueError::Duplicate(B256([4; 32]))));
        assert_eq!(q.peek().unwrap().execution_payload.block_number, 3);
        assert_eq!(q.len(), 3);
        assert_eq!(q.mem_size(), 3 * 1034);
    }

    #[test]
    fn bounded_in_bytes_dropping_the_oldest() {
        let mut q = PayloadQueue::new(4000);
        q.push(env(10, 10, 500)).unwrap();
        q.push(env(11, 11, 500)).unwrap();
        // Over the limit: the lowest number goes.
        q.push(env(12, 12, 500)).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q.peek().unwrap().execution_payload.block_number, 11);
        assert_eq!(q.push(env(1, 1, 1500)), Err(QueueError::Oldest(B256([1; 32]))));
        assert!(matches!(q.push(env(2, 2, 5000)), Err(QueueError::TooLarge { .. })));
        assert!(q.mem_size() <= 4000);
    }

    #[test]
    fn drops_what_forkchoice_made_useless() {
        let mut q = PayloadQueue::new(1 << 20);
        for n in 1..=6u8 {
            q.push(env(n as u64, n, 1)).unwrap();
        }
        let unsafe_head = L2BlockRef { number: 3, hash: B256([3; 32]), ..L2BlockRef::default() };
        let safe = L2BlockRef { number: 2, ..L2BlockRef::default() };
        q.drop_inapplicable(&unsafe_head, &safe);
        // 4 builds on 3 (parent tag 3): kept.
        assert_eq!(q.peek().unwrap().execution_payload.block_number, 4);
    }
}
