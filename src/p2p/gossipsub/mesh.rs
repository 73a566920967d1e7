//! Mesh maintenance and gossip: the heartbeat (expiry, score decay, broken promises, bans), the
//! mesh of each subscribed topic kept between `d_lo` and `d_hi` with an outbound quota (GRAFT
//! and PRUNE with backoff), fanout for topics we publish to without subscribing, IHAVE gossip
//! of recent message ids to peers outside the mesh, and the handlers of a peer's IHAVE, IWANT,
//! GRAFT and PRUNE.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use super::cache::Verdict;
use super::pb;
use super::{MsgId, Router};
use crate::rng::Rng;

const MAX_BACKOFFS: usize = 4096;
/// PRUNE backoffs beyond a day are taken as a day.
const MAX_BACKOFF: Duration = Duration::from_secs(86_400);

pub(super) struct Fanout {
    pub(super) peers: BTreeSet<u64>,
    pub(super) last_publish: Instant,
}

impl<P: Clone + Ord + fmt::Debug> Router<P> {
    pub(super) fn on_ihave<'a>(&mut self, idx: u64, ihaves: impl Iterator<Item = &'a [u8]>, now: Instant) {
        let Some(peer) = self.peers.get(&idx) else { return };
        if self.score_of(peer) < self.cfg.score.gossip_threshold {
            return;
        }
        let budget = self.cfg.max_ihave_length.saturating_sub(peer.asked);
        let mut want: BTreeSet<MsgId> = BTreeSet::new();
        for ihave in ihaves {
            let Some(peer) = self.peers.get_mut(&idx) else { return };
            peer.ihaves += 1;
            if peer.ihaves > self.cfg.max_ihave_messages {
                break;
            }
            let topic = pb::last_bytes(ihave, 1).and_then(|n| self.topic_index(n));
            if !topic.is_some_and(|t| self.mesh.contains_key(&t)) {
                continue;
            }
            for id in pb::bytes(ihave, 2).filter_map(|b| MsgId::try_from(b).ok()) {
                if want.len() >= budget {
                    break;
                }
                if !self.seen.contains(&id) {
                    want.insert(id);
                }
            }
        }
        if want.is_empty() {
            return;
        }
        let want: Vec<MsgId> = want.into_iter().collect();
        // One random id of the request is tracked: if it never arrives the promise is broken.
        let tracked = want[self.rng.below(want.len() as u64) as usize];
        self.promises.entry(tracked).or_default().push((idx, now + self.cfg.iwant_followup));
        if let Some(peer) = self.peers.get_mut(&idx) {
            peer.asked += want.len();
            peer.control.iwant.extend(want);
            self.dirty.insert(idx);
        }
    }

    pub(super) fn on_iwant(&mut self, idx: u64, iwant: &[u8]) {
        let Some(peer) = self.peers.get(&idx) else { return };
        if self.score_of(peer) < self.cfg.score.gossip_threshold {
            return;
        }
        for id in pb::bytes(iwant, 1).filter_map(|b| MsgId::try_from(b).ok()) {
            if let Some(msg) = self.mcache.get_for_peer(&id, idx, self.cfg.gossip_retransmission) {
                self.stats.iwant_served += 1;
                self.enqueue(idx, msg);
            }
        }
    }

    pub(super) fn on_graft(&mut self, idx: u64, graft: &[u8], now: Instant) {
        // GRAFTs for topics we have no mesh in are ignored, not answered (spam hardening).
        let Some(t) = pb::last_bytes(graft, 1).and_then(|n| self.topic_index(n)) else { return };
        let Some(peer) = self.peers.get(&idx) else { return };
        let mesh_len = match self.mesh.get(&t) {
            Some(m) if m.contains(&idx) => return,
            Some(m) => m.len(),
            None => return,
        };
        let key = peer.key.clone();
        if let Some(until) = self.backoff.get(&(key.clone(), t)).copied().filter(|u| now < *u) {
            let mut penalty = 1.0;
            // Within graft_flood_threshold of the PRUNE itself: a flood, penalised twice.
            if until
                .checked_sub(self.cfg.prune_backoff)
                .is_some_and(|pruned| now < pruned + self.cfg.graft_flood_threshold)
            {
                penalty += 1.0;
            }
            if let Some(p) = self.peers.get_mut(&idx) {
                p.behaviour += penalty;
            }
            self.prune(idx, t, self.cfg.prune_backoff, now);
            self.check_ban(idx, now);
            return;
        }
        let score = self.score_of(peer);
        if score < 0.0 || (mesh_len >= self.cfg.d_hi && !peer.outbound) {
            self.prune(idx, t, self.cfg.prune_backoff, now);
            return;
        }
        if let Some(m) = self.mesh.get_mut(&t) {
            m.insert(idx);
        }
    }

    pub(super) fn on_prune(&mut self, idx: u64, prune: &[u8], now: Instant) {
        let Some(t) = pb::last_bytes(prune, 1).and_then(|n| self.topic_index(n)) else { return };
        let Some(m) = self.mesh.get_mut(&t) else { return };
        m.remove(&idx);
        let backoff = match pb::last_varint(prune, 3) {
            Some(s) if s > 0 => Duration::from_secs(s).min(MAX_BACKOFF),
            _ => self.cfg.prune_backoff,
        };
        self.add_backoff(idx, t, backoff, now);
    }

    pub(super) fn heartbeat(&mut self, now: Instant) {
        self.expire(now);
        self.decay(now);
        self.break_promises(now);
        let low: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| self.score_of(p) < self.cfg.score.ban_threshold)
            .map(|(i, _)| *i)
            .collect();
        for idx in low {
            self.check_ban(idx, now);
        }
        for p in self.peers.values_mut() {
            p.ihaves = 0;
            p.asked = 0;
        }
        let scores = self.scores();
        let topics: Vec<usize> = self.mesh.keys().copied().collect();
        for t in topics {
            self.maintain_mesh(t, &scores, now);
        }
        self.maintain_fanout(&scores, now);
        let gossip: Vec<(usize, BTreeSet<u64>)> = self
            .mesh
            .iter()
            .map(|(t, m)| (*t, m.clone()))
            .chain(self.fanout.iter().map(|(t, f)| (*t, f.peers.clone())))
            .collect();
        for (t, exclude) in gossip {
            self.emit_gossip(t, &exclude, &scores);
        }
        self.mcache.shift();
        self.dirty.append(&mut self.stalled);
        self.flush();
    }

    fn expire(&mut self, now: Instant) {
        self.seen.expire(now);
        let timed_out: Vec<MsgId> =
            self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| *id).collect();
        for id in timed_out {
            if let Some(p) = self.pending.remove(&id) {
                self.pending_bytes -= p.msg.data.len();
            }
            self.seen.set(&id, Verdict::Ignored);
            self.stats.validation_timeouts += 1;
        }
        self.bans.retain(|_, t| *t > now);
        self.retained.retain(|_, r| r.until > now);
        let slack = self.cfg.heartbeat_interval;
        self.backoff.retain(|_, t| *t + slack > now);
    }

    fn maintain_mesh(&mut self, t: usize, scores: &BTreeMap<u64, f64>, now: Instant) {
        let mut mesh = self.mesh.remove(&t).unwrap_or_default();
        let score = |p: &u64| scores.get(p).copied().unwrap_or(f64::NEG_INFINITY);
        let negative: Vec<u64> = mesh.iter().copied().filter(|p| score(p) < 0.0).collect();
        for p in negative {
            mesh.remove(&p);
            self.prune(p, t, self.cfg.prune_backoff, now);
        }
        if mesh.len() < self.cfg.d_lo {
            let candidates = self.graft_candidates(t, &mesh, scores, now);
            let need = self.cfg.d - mesh.len();
            for p in self.pick(candidates, need) {
                mesh.insert(p);
                self.graft(p, t);
            }
        }
        if mesh.len() > self.cfg.d_hi {
            let keep = self.select_survivors(&mesh, scores);
            let dropped: Vec<u64> = mesh.difference(&keep).copied().collect();
            for p in dropped {
                self.prune(p, t, self.cfg.prune_backoff, now);
            }
            mesh = keep;
        }
        let outbound = mesh.iter().filter(|p| self.is_outbound(**p)).count();
        if mesh.len() >= self.cfg.d_lo && outbound < self.cfg.d_out {
            let mut candidates = self.graft_candidates(t, &mesh, scores, now);
            candidates.retain(|p| self.is_outbound(*p));
            for p in self.pick(candidates, self.cfg.d_out - outbound) {
                mesh.insert(p);
                self.graft(p, t);
            }
        }
        self.mesh.insert(t, mesh);
    }

    /// Survivors of an oversubscribed mesh: the `d_score` best, then random peers up to `d`,
    /// with at least `d_out` outbound peers swapped in for the last inbound ones.
    fn select_survivors(&mut self, mesh: &BTreeSet<u64>, scores: &BTreeMap<u64, f64>) -> BTreeSet<u64> {
        let mut list: Vec<u64> = mesh.iter().copied().collect();
        shuffle(&mut self.rng, &mut list);
        let score = |p: &u64| scores.get(p).copied().unwrap_or(f64::NEG_INFINITY);
        crate::sort::sort_by(&mut list, |a, b| score(b).total_cmp(&score(a)).is_lt());
        let best = self.cfg.d_score.min(list.len());
        shuffle(&mut self.rng, &mut list[best..]);
        let (keep, rest) = list.split_at(self.cfg.d.min(list.len()));
        let mut keep = keep.to_vec();
        let outbound = keep.iter().filter(|p| self.is_outbound(**p)).count();
        let extra: Vec<u64> = rest
            .iter()
            .copied()
            .filter(|p| self.is_outbound(*p))
            .take(self.cfg.d_out.saturating_sub(outbound))
            .collect();
        for e in extra {
            if let Some(pos) = keep.iter().rposition(|p| !self.is_outbound(*p)) {
                keep[pos] = e;
            }
        }
        keep.into_iter().collect()
    }

    fn maintain_fanout(&mut self, scores: &BTreeMap<u64, f64>, now: Instant) {
        let ttl = self.cfg.fanout_ttl;
        self.fanout.retain(|_, f| f.last_publish + ttl > now);
        let topics: Vec<usize> = self.fanout.keys().copied().collect();
        let threshold = self.cfg.score.publish_threshold;
        for t in topics {
            let Some(mut f) = self.fanout.remove(&t) else { continue };
            let topic_peers = &self.topic_peers[t];
            f.peers.retain(|p| topic_peers.contains(p) && scores.get(p).is_some_and(|s| *s >= threshold));
            if f.peers.len() < self.cfg.d {
                let candidates: Vec<u64> = topic_peers
                    .iter()
                    .copied()
                    .filter(|p| !f.peers.contains(p) && scores.get(p).is_some_and(|s| *s >= threshold))
                    .collect();
                let need = self.cfg.d - f.peers.len();
                f.peers.extend(self.pick(candidates, need));
            }
            self.fanout.insert(t, f);
        }
    }

    fn emit_gossip(&mut self, t: usize, exclude: &BTreeSet<u64>, scores: &BTreeMap<u64, f64>) {
        let ids = self.mcache.gossip_ids(t, self.cfg.history_gossip);
        if ids.is_empty() {
            return;
        }
        let threshold = self.cfg.score.gossip_threshold;
        let candidates: Vec<u64> = self.topic_peers[t]
            .iter()
            .copied()
            .filter(|p| !exclude.contains(p) && scores.get(p).is_some_and(|s| *s >= threshold))
            .collect();
        let target = self.cfg.d_lazy.max((self.cfg.gossip_factor * candidates.len() as f64) as usize);
        for p in self.pick(candidates, target) {
            let mut ids = ids.clone();
            if ids.len() > self.cfg.max_ihave_length {
                shuffle(&mut self.rng, &mut ids);
                ids.truncate(self.cfg.max_ihave_length);
            }
            if let Some(peer) = self.peers.get_mut(&p) {
                peer.control.ihave.push((t, ids));
                self.dirty.insert(p);
            }
        }
    }

    /// Topic peers outside `mesh` with a non-negative score and no backoff.
    pub(super) fn graft_candidates(
        &self,
        t: usize,
        mesh: &BTreeSet<u64>,
        scores: &BTreeMap<u64, f64>,
        now: Instant,
    ) -> Vec<u64> {
        self.topic_peers[t]
            .iter()
            .copied()
            .filter(|p| !mesh.contains(p) && scores.get(p).is_some_and(|s| *s >= 0.0))
            .filter(|p| !self.in_backoff(*p, t, now))
            .collect()
    }

    /// True until a heartbeat after the backoff ends: slack for the clock offset to the peer,
    /// which refuses (and penalises) a GRAFT that comes too early.
    pub(super) fn in_backoff(&self, idx: u64, t: usize, now: Instant) -> bool {
        let Some(peer) = self.peers.get(&idx) else { return false };
        let slack = self.cfg.heartbeat_interval;
        self.backoff.get(&(peer.key.clone(), t)).is_some_and(|until| *until + slack > now)
    }

    fn is_outbound(&self, idx: u64) -> bool {
        self.peers.get(&idx).is_some_and(|p| p.outbound)
    }

    pub(super) fn pick(&mut self, mut candidates: Vec<u64>, n: usize) -> Vec<u64> {
        shuffle(&mut self.rng, &mut candidates);
        candidates.truncate(n);
        candidates
    }

    pub(super) fn announce(&mut self, subscribe: bool, t: usize) {
        for (idx, p) in self.peers.iter_mut() {
            p.control.subs.push((subscribe, t));
            self.dirty.insert(*idx);
        }
    }

    pub(super) fn graft(&mut self, idx: u64, t: usize) {
        if let Some(p) = self.peers.get_mut(&idx) {
            p.control.graft.push(t);
            self.dirty.insert(idx);
        }
    }

    pub(super) fn prune(&mut self, idx: u64, t: usize, backoff: Duration, now: Instant) {
        self.add_backoff(idx, t, backoff, now);
        if let Some(p) = self.peers.get_mut(&idx) {
            p.control.prune.push((t, backoff.as_secs()));
            self.dirty.insert(idx);
        }
    }

    fn add_backoff(&mut self, idx: u64, t: usize, backoff: Duration, now: Instant) {
        let Some(key) = self.peers.get(&idx).map(|p| p.key.clone()) else { return };
        let until = now + backoff;
        let full = self.backoff.len() >= MAX_BACKOFFS;
        match self.backoff.get_mut(&(key.clone(), t)) {
            Some(old) => *old = (*old).max(until),
            None if !full => {
                self.backoff.insert((key, t), until);
            }
            None => {}
        }
    }
}

fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::super::tests::*;
    use super::super::*;
    use crate::protocol::gossip::message_id;
    use crate::time::test_now;

    #[test]
    fn meshes_form_within_bounds_and_agree() {
        let mut net = Net::new(20, cfg());
        for a in 0..20 {
            for b in a + 1..20 {
                net.connect(a, b);
            }
        }
        net.subscribe_all(TOPIC);
        net.advance(Duration::from_secs(5));
        for i in 0..20 {
            let mesh = net.mesh(i);
            assert!((6..=12).contains(&mesh.len()), "node {i}: {}", mesh.len());
            for p in mesh {
                assert!(net.mesh(p).contains(&i), "{i} has {p} in its mesh but not vice versa");
            }
            assert_eq!(net.nodes[&i].topic_peers(TOPIC).len(), 19);
        }
    }

    #[test]
    fn gossip_recovers_a_message_outside_the_mesh() {
        // Node 0 keeps a mesh of one; both peers dialled it, so the second one's GRAFT is
        // refused and it only hears of the message through IHAVE.
        let small = Config { d: 1, d_lo: 1, d_hi: 1, d_lazy: 1, d_score: 1, d_out: 0, ..cfg() };
        let mut net = Net::new(3, small);
        net.connect(1, 0);
        net.connect(2, 0);
        net.subscribe_all(TOPIC);
        net.advance(Duration::from_secs(2));
        let mesh = net.mesh(0);
        assert_eq!(mesh.len(), 1);
        let outside = if mesh.contains(&1) { 2 } else { 1 };
        let now = net.now;
        let id = net.node(0).publish(TOPIC, b"block".to_vec(), now).unwrap();
        net.pump();
        assert!(!net.delivered.get(&outside).is_some_and(|d| d.iter().any(|m| m.id == id)));
        net.advance(Duration::from_millis(500));
        assert_eq!(net.delivered[&outside].iter().filter(|m| m.id == id).count(), 1);
        assert_eq!(net.nodes[&0].stats().iwant_served, 1);
    }

    #[test]
    fn prune_backoff_is_kept_and_early_grafts_are_penalised() {
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        r.handle_input(&1, &frame(|rpc| ctl(rpc, |c| prune(c, TOPIC, 60))), t).unwrap();
        assert!(r.mesh_peers(TOPIC).is_empty());
        // No regraft during the backoff.
        for s in 1..=10 {
            r.handle_timeout(t + Duration::from_secs(s));
            assert!(sent(&mut r, 1).graft.is_empty());
        }
        // A GRAFT during the backoff is answered with PRUNE and penalised; repeated GRAFTs
        // within the flood threshold cost double and end in a ban.
        let g = frame(|rpc| ctl(rpc, |c| graft(c, TOPIC)));
        let at = t + Duration::from_secs(5);
        for n in 1..=4 {
            r.handle_input(&1, &g, at).unwrap();
            assert_eq!(sent(&mut r, 1).prune, [(TOPIC.to_string(), Some(60))], "graft {n}");
            assert!(r.mesh_peers(TOPIC).is_empty());
        }
        assert_eq!(r.score(&1), Some(-16.0 * 2.0 * 2.0));
        // Graylisted below -40: further RPCs are ignored.
        r.handle_input(&1, &g, at).unwrap();
        assert!(sent(&mut r, 1).prune.is_empty());
        assert_eq!(r.stats().graylisted_rpcs, 1);
        // Five GRAFTs in one RPC reach the ban threshold.
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        r.handle_input(&1, &frame(|rpc| ctl(rpc, |c| prune(c, TOPIC, 60))), t).unwrap();
        let flood = frame(|rpc| ctl(rpc, |c| (0..5).for_each(|_| graft(c, TOPIC))));
        r.handle_input(&1, &flood, t).unwrap();
        assert!(r.is_banned(&1, t));
        assert_eq!(disconnects(&mut r), [(1, Disconnect::Banned)]);
    }

    #[test]
    fn the_mesh_is_regrafted_after_the_backoff() {
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        r.handle_input(&1, &frame(|rpc| ctl(rpc, |c| prune(c, TOPIC, 30))), t).unwrap();
        r.handle_timeout(t + Duration::from_secs(30));
        assert!(sent(&mut r, 1).graft.is_empty(), "a heartbeat of slack");
        r.handle_timeout(t + Duration::from_millis(30_600));
        assert_eq!(sent(&mut r, 1).graft, [TOPIC]);
        // A GRAFT after the backoff is accepted.
        r.handle_input(&1, &frame(|rpc| ctl(rpc, |c| graft(c, TOPIC))), t + Duration::from_secs(31)).unwrap();
        assert_eq!(r.mesh_peers(TOPIC), [1]);
        assert_eq!(r.score(&1), Some(0.0));
    }

    #[test]
    fn unsubscribing_prunes_with_the_unsubscribe_backoff() {
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        r.unsubscribe(TOPIC, t).unwrap();
        let s = sent(&mut r, 1);
        assert_eq!(s.subs, [(false, TOPIC.to_string())]);
        assert_eq!(s.prune, [(TOPIC.to_string(), Some(10))]);
        // Resubscribing within the backoff grafts nobody; the heartbeat after it does.
        r.subscribe(TOPIC, t + Duration::from_secs(1)).unwrap();
        assert!(sent(&mut r, 1).graft.is_empty());
        r.handle_timeout(t + Duration::from_secs(11));
        assert_eq!(sent(&mut r, 1).graft, [TOPIC]);
        // Version 1.0 peers get no backoff field.
        let (mut r, t) = meshed(cfg(), Protocol::V10);
        r.unsubscribe(TOPIC, t).unwrap();
        assert_eq!(sent(&mut r, 1).prune, [(TOPIC.to_string(), None)]);
        // GRAFTs for topics without a mesh are ignored, not answered.
        r.handle_input(&1, &frame(|rpc| ctl(rpc, |c| graft(c, TOPIC))), t).unwrap();
        assert!(sent(&mut r, 1).prune.is_empty());
        assert_eq!(r.score(&1), Some(0.0));
    }

    #[test]
    fn oversubscribed_meshes_shrink_to_d_keeping_outbound_peers() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        r.subscribe(TOPIC, t0).unwrap();
        for p in 0..20u32 {
            r.add_peer(p, p >= 17, ip(p), Protocol::V11, t0).unwrap();
            r.handle_input(&p, &frame(|rpc| sub(rpc, TOPIC, true)), t0).unwrap();
        }
        // Inbound GRAFTs beyond Dhi are refused; outbound ones are always taken.
        for p in 0..20u32 {
            r.handle_input(&p, &frame(|rpc| ctl(rpc, |c| graft(c, TOPIC))), t0).unwrap();
        }
        assert_eq!(r.mesh_peers(TOPIC).len(), 15);
        r.handle_timeout(t0 + Duration::from_millis(500));
        let mesh = r.mesh_peers(TOPIC);
        assert_eq!(mesh.len(), 8);
        assert!(mesh.iter().filter(|p| **p >= 17).count() >= 2);
        let pruned: usize = sent_all(&mut r).values().map(|s| s.prune.len()).sum();
        assert_eq!(pruned, 5 + 7);
    }

    #[test]
    fn iwant_is_served_up_to_the_retransmission_limit() {
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        let id = r.publish(TOPIC, b"block".to_vec(), t).unwrap();
        assert_eq!(sent(&mut r, 1).msgs, [b"block".to_vec()]);
        let f = frame(|rpc| ctl(rpc, |c| iwant(c, &[id, [9; 20]])));
        for _ in 0..5 {
            r.handle_input(&1, &f, t).unwrap();
        }
        assert_eq!(sent(&mut r, 1).msgs.len(), 3);
        // Gone once the cache shifted past its 12 windows.
        r.add_peer(2, false, ip(2), Protocol::V11, t).unwrap();
        let mut now = t;
        for _ in 0..11 {
            now += Duration::from_millis(500);
            r.handle_timeout(now);
        }
        r.handle_input(&2, &frame(|rpc| ctl(rpc, |c| iwant(c, &[id]))), now).unwrap();
        assert_eq!(sent(&mut r, 2).msgs.len(), 1);
        r.handle_timeout(now + Duration::from_millis(500));
        r.handle_input(&2, &frame(|rpc| ctl(rpc, |c| iwant(c, &[id]))), now).unwrap();
        assert!(sent(&mut r, 2).msgs.is_empty());
    }

    #[test]
    fn ihave_is_answered_and_broken_promises_are_penalised() {
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        // Each IHAVE answered with an IWANT tracks one promise.
        for n in 0..8u8 {
            let ids: Vec<MsgId> = (0..3).map(|i| [n * 3 + i; 20]).collect();
            r.handle_input(&1, &frame(|rpc| ctl(rpc, |c| ihave(c, TOPIC, &ids))), t).unwrap();
            assert_eq!(sent(&mut r, 1).iwant, ids, "ihave {n}");
        }
        r.handle_timeout(t + Duration::from_millis(2500));
        assert_eq!(r.stats().broken_promises, 0);
        r.handle_timeout(t + Duration::from_millis(3500));
        assert_eq!(r.stats().broken_promises, 8);
        // Eight broken promises: two past the threshold of 6.
        assert_eq!(r.score(&1), Some(-16.0 * 2.0 * 2.0));

        // A delivered message fulfils its promise; a seen one is not asked for.
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        let data = b"delivered".to_vec();
        let id = message_id(TOPIC, &data);
        let have = frame(|rpc| ctl(rpc, |c| ihave(c, TOPIC, &[id])));
        r.handle_input(&1, &have, t).unwrap();
        assert_eq!(sent(&mut r, 1).iwant, [id]);
        r.handle_input(&1, &frame(|rpc| msg(rpc, TOPIC, &data)), t).unwrap();
        r.handle_timeout(t + Duration::from_secs(4));
        assert_eq!(r.stats().broken_promises, 0);
        r.handle_input(&1, &have, t).unwrap();
        assert!(sent(&mut r, 1).iwant.is_empty(), "seen");
    }

    #[test]
    fn ihave_is_bounded_per_heartbeat() {
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        let ids: Vec<MsgId> = (0..6000u32)
            .map(|i| {
                let mut id = [0; 20];
                id[..4].copy_from_slice(&i.to_le_bytes());
                id
            })
            .collect();
        r.handle_input(&1, &frame(|rpc| ctl(rpc, |c| ihave(c, TOPIC, &ids))), t).unwrap();
        assert_eq!(sent(&mut r, 1).iwant.len(), 5000);
        r.handle_input(&1, &frame(|rpc| ctl(rpc, |c| ihave(c, TOPIC, &ids[..10]))), t).unwrap();
        assert!(sent(&mut r, 1).iwant.is_empty());
        // IHAVE for a topic without a mesh is ignored.
        r.handle_timeout(t + Duration::from_secs(1));
        r.handle_input(&1, &frame(|rpc| ctl(rpc, |c| ihave(c, OTHER, &[[1; 20]]))), t).unwrap();
        assert!(sent(&mut r, 1).iwant.is_empty());
    }

    #[test]
    fn fanout_publishes_to_d_peers_and_expires() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        for p in 0..12 {
            r.add_peer(p, true, ip(p), Protocol::V11, t0).unwrap();
            r.handle_input(&p, &frame(|rpc| sub(rpc, OTHER, true)), t0).unwrap();
        }
        discard_outbound(&mut r);
        r.publish(OTHER, b"from the sequencer".to_vec(), t0).unwrap();
        let first: BTreeSet<u32> =
            sent_all(&mut r).into_iter().filter(|(_, s)| s.msgs.len() == 1).map(|(p, _)| p).collect();
        assert_eq!(first.len(), 8);
        r.publish(OTHER, b"second".to_vec(), t0).unwrap();
        let second: BTreeSet<u32> = sent_all(&mut r).into_keys().collect();
        assert_eq!(second, first, "the fanout set is kept");
        assert_eq!(r.fanout.len(), 1);
        r.handle_timeout(t0 + Duration::from_secs(25));
        assert!(r.fanout.is_empty());
        // Subscribing moves fanout peers into the mesh.
        r.publish(OTHER, b"third".to_vec(), t0 + Duration::from_secs(25)).unwrap();
        r.subscribe(OTHER, t0 + Duration::from_secs(25)).unwrap();
        assert_eq!(r.mesh_peers(OTHER).len(), 8);
    }
}
