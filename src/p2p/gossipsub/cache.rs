//! The router's two caches: the seen cache (message ids of the last `seen_ttl`, with the
//! verdict each got, for duplicate suppression) and the message cache (accepted and published
//! messages by heartbeat window, for IWANT answers and IHAVE gossip). Both are capped.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Msg, MsgId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Pending,
    Accepted,
    Rejected,
    Ignored,
}

/// Ids seen within the TTL (first-seen), oldest first, capped.
pub(super) struct SeenCache {
    pub(super) ttl: Duration,
    pub(super) cap: usize,
    pub(super) map: HashMap<MsgId, Verdict>,
    pub(super) order: VecDeque<(Instant, MsgId)>,
}

impl SeenCache {
    pub(super) fn new(ttl: Duration, cap: usize) -> Self {
        SeenCache { ttl, cap, map: HashMap::new(), order: VecDeque::new() }
    }

    pub(super) fn contains(&self, id: &MsgId) -> bool {
        self.map.contains_key(id)
    }

    pub(super) fn get(&self, id: &MsgId) -> Option<Verdict> {
        self.map.get(id).copied()
    }

    pub(super) fn insert(&mut self, id: MsgId, v: Verdict, now: Instant) {
        while self.order.len() >= self.cap {
            let Some((_, old)) = self.order.pop_front() else { break };
            self.map.remove(&old);
        }
        self.map.insert(id, v);
        self.order.push_back((now, id));
    }

    pub(super) fn set(&mut self, id: &MsgId, v: Verdict) {
        if let Some(old) = self.map.get_mut(id) {
            *old = v;
        }
    }

    pub(super) fn expire(&mut self, now: Instant) {
        while let Some((at, id)) = self.order.front().copied() {
            if at + self.ttl > now {
                break;
            }
            self.order.pop_front();
            self.map.remove(&id);
        }
    }
}

pub(super) struct Cached {
    msg: Arc<Msg>,
    /// IWANT fetches per peer.
    fetches: Vec<(u64, u8)>,
}

/// Accepted and published messages by heartbeat window, newest first, for IWANT answers and
/// IHAVE gossip.
pub(super) struct MessageCache {
    windows: VecDeque<Vec<MsgId>>,
    entries: HashMap<MsgId, Cached>,
    cap: usize,
    bytes: usize,
    max_bytes: usize,
}

impl MessageCache {
    pub(super) fn new(history: usize, cap: usize, max_bytes: usize) -> Self {
        let mut windows = VecDeque::with_capacity(history);
        windows.resize_with(history, Vec::new);
        MessageCache { windows, entries: HashMap::new(), cap, bytes: 0, max_bytes }
    }

    /// Caches a message unless the cache is full (it is then only missing from gossip).
    pub(super) fn put(&mut self, msg: &Arc<Msg>) {
        let full = self.entries.len() >= self.cap || self.bytes + msg.data.len() > self.max_bytes;
        if full || self.entries.contains_key(&msg.id) {
            return;
        }
        self.bytes += msg.data.len();
        self.entries.insert(msg.id, Cached { msg: msg.clone(), fetches: Vec::new() });
        if let Some(w) = self.windows.front_mut() {
            w.push(msg.id);
        }
    }

    /// The message for an IWANT of `peer`, unless it already fetched it `limit` times.
    pub(super) fn get_for_peer(&mut self, id: &MsgId, peer: u64, limit: u8) -> Option<Arc<Msg>> {
        let c = self.entries.get_mut(id)?;
        let n = match c.fetches.iter_mut().position(|(p, _)| *p == peer) {
            Some(i) => i,
            None => {
                c.fetches.push((peer, 0));
                c.fetches.len() - 1
            }
        };
        let count = &mut c.fetches.get_mut(n)?.1;
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(c.msg.clone())
    }

    pub(super) fn gossip_ids(&self, topic: usize, windows: usize) -> Vec<MsgId> {
        self.windows
            .iter()
            .take(windows)
            .flatten()
            .filter(|id| self.entries.get(*id).is_some_and(|c| c.msg.topic == topic))
            .copied()
            .collect()
    }

    pub(super) fn shift(&mut self) {
        if let Some(old) = self.windows.pop_back() {
            for id in old {
                if let Some(c) = self.entries.remove(&id) {
                    self.bytes -= c.msg.data.len();
                }
            }
        }
        self.windows.push_front(Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::*;
    use super::super::*;
    use crate::time::test_now;

    #[test]
    fn seen_ids_expire_after_the_ttl() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        let f = frame(|rpc| msg(rpc, TOPIC, b"again"));
        r.handle_input(&1, &f, t0).unwrap();
        let id = received(&mut r)[0].id;
        r.report_validation(&id, Acceptance::Ignore, t0);
        let t = t0 + Duration::from_secs(64);
        r.handle_timeout(t);
        r.handle_input(&1, &f, t).unwrap();
        assert!(received(&mut r).is_empty());
        let t = t0 + Duration::from_secs(66);
        r.handle_timeout(t);
        r.handle_input(&1, &f, t).unwrap();
        assert_eq!(received(&mut r).len(), 1);
    }
}
