//! Peer scoring, a light version of gossipsub v1.1's: invalid messages (P₄, counted across
//! topics), IP colocation (P₆) and behaviour penalties (P₇: GRAFT during backoff, broken IWANT
//! promises), decayed every `decay_interval`, retained for a while after a disconnect, and a
//! temporary ban below the ban threshold.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{Disconnect, Peer, Router};

const MAX_BANS: usize = 1024;
const MAX_RETAINED: usize = 1024;

/// The light peer score: weights, decay and thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreParams {
    /// Weight of the squared invalid-message counter (P₄).
    pub invalid_message_weight: f64,
    pub invalid_message_decay: f64,
    /// Weight of the squared surplus of peers sharing an IP (IPv6: a /64) (P₆).
    pub ip_colocation_weight: f64,
    pub ip_colocation_threshold: usize,
    /// Weight of the squared behaviour-penalty excess over the threshold (P₇).
    pub behaviour_penalty_weight: f64,
    pub behaviour_penalty_threshold: f64,
    pub behaviour_penalty_decay: f64,
    pub decay_interval: Duration,
    /// Counters decayed below this become 0.
    pub decay_to_zero: f64,
    /// How long a disconnected peer's penalties are remembered.
    pub retain_score: Duration,
    /// Below: no gossip to or from the peer.
    pub gossip_threshold: f64,
    /// Below: none of our own messages go to the peer.
    pub publish_threshold: f64,
    /// Below: the peer's RPCs are ignored.
    pub graylist_threshold: f64,
    /// Below: the peer is disconnected and refused for `ban_duration`.
    pub ban_threshold: f64,
    pub ban_duration: Duration,
}

impl ScoreParams {
    /// op-node's "light" scoring for a chain with `block_time`-second blocks: colocation and
    /// behaviour weights of `LightPeerScoreParams`, decay over ten 6-block epochs, the
    /// thresholds of `NewPeerScoreThresholds`, and the default ban (-100, 1 h). op-node
    /// configures no topic scores; the invalid-message term (-10 × n²: graylisted at 3, banned
    /// at 4) stands in for its application score's rejected-payload penalty.
    pub fn light(block_time: u64) -> ScoreParams {
        let slot = Duration::from_secs(if block_time == 0 { 2 } else { block_time });
        // op-node's ScoreDecay(10 epochs, slot): reach 1% after 60 slots.
        let decay = 0.01f64.powf(1.0 / 60.0);
        ScoreParams {
            invalid_message_weight: -10.0,
            invalid_message_decay: decay,
            ip_colocation_weight: -35.0,
            ip_colocation_threshold: 10,
            behaviour_penalty_weight: -16.0,
            behaviour_penalty_threshold: 6.0,
            behaviour_penalty_decay: decay,
            decay_interval: slot,
            decay_to_zero: 0.01,
            retain_score: slot * 600,
            gossip_threshold: -10.0,
            publish_threshold: -40.0,
            graylist_threshold: -40.0,
            ban_threshold: -100.0,
            ban_duration: Duration::from_secs(3600),
        }
    }
}

pub(super) struct Retained {
    pub(super) invalid: f64,
    pub(super) behaviour: f64,
    pub(super) until: Instant,
}

impl<P: Clone + Ord + fmt::Debug> Router<P> {
    /// Remembers a disconnected peer's penalties for `retain_score`.
    pub(super) fn retain(&mut self, key: P, invalid: f64, behaviour: f64, now: Instant) {
        if self.retained.len() >= MAX_RETAINED && !self.retained.contains_key(&key) {
            evict_earliest(&mut self.retained, |r| r.until);
        }
        let until = now + self.cfg.score.retain_score;
        self.retained.insert(key, Retained { invalid, behaviour, until });
    }

    pub(super) fn penalize_invalid(&mut self, key: &P, now: Instant) {
        if let Some(idx) = self.ids.get(key).copied() {
            if let Some(p) = self.peers.get_mut(&idx) {
                p.invalid += 1.0;
            }
            self.check_ban(idx, now);
        } else {
            let (invalid, behaviour) =
                self.retained.get(key).map_or((0.0, 0.0), |r| (r.invalid, r.behaviour));
            self.retain(key.clone(), invalid + 1.0, behaviour, now);
        }
    }

    pub(super) fn check_ban(&mut self, idx: u64, now: Instant) {
        let Some(peer) = self.peers.get(&idx) else { return };
        if self.score_of(peer) >= self.cfg.score.ban_threshold {
            return;
        }
        if self.bans.len() >= MAX_BANS {
            evict_earliest(&mut self.bans, |t| *t);
        }
        self.bans.insert(peer.key.clone(), now + self.cfg.score.ban_duration);
        self.stats.bans += 1;
        self.drop_peer(idx, Disconnect::Banned, now);
    }

    pub(super) fn score_of(&self, p: &Peer<P>) -> f64 {
        let s = &self.cfg.score;
        let mut score = p.invalid * p.invalid * s.invalid_message_weight;
        let colocated = self.ips.get(&p.ip).copied().unwrap_or(0);
        if colocated > s.ip_colocation_threshold {
            let surplus = (colocated - s.ip_colocation_threshold) as f64;
            score += surplus * surplus * s.ip_colocation_weight;
        }
        let excess = p.behaviour - s.behaviour_penalty_threshold;
        if excess > 0.0 {
            score += excess * excess * s.behaviour_penalty_weight;
        }
        score
    }

    pub(super) fn scores(&self) -> BTreeMap<u64, f64> {
        self.peers.iter().map(|(i, p)| (*i, self.score_of(p))).collect()
    }

    pub(super) fn decay(&mut self, now: Instant) {
        let interval = self.cfg.score.decay_interval;
        if now < self.next_decay {
            return;
        }
        let periods = (now - self.next_decay).as_nanos() / interval.as_nanos() + 1;
        self.next_decay += interval * u32::try_from(periods).unwrap_or(u32::MAX).min(1 << 20);
        if self.next_decay <= now {
            self.next_decay = now + interval;
        }
        let n = i32::try_from(periods).unwrap_or(i32::MAX);
        let s = &self.cfg.score;
        let decayed = |x: f64, f: f64| {
            let y = x * f.powi(n);
            if y < s.decay_to_zero {
                0.0
            } else {
                y
            }
        };
        for p in self.peers.values_mut() {
            p.invalid = decayed(p.invalid, s.invalid_message_decay);
            p.behaviour = decayed(p.behaviour, s.behaviour_penalty_decay);
        }
        for r in self.retained.values_mut() {
            r.invalid = decayed(r.invalid, s.invalid_message_decay);
            r.behaviour = decayed(r.behaviour, s.behaviour_penalty_decay);
        }
    }

    pub(super) fn break_promises(&mut self, now: Instant) {
        let mut broken: BTreeMap<u64, f64> = BTreeMap::new();
        self.promises.retain(|_, list| {
            list.retain(|(idx, deadline)| {
                let kept = *deadline > now;
                if !kept {
                    *broken.entry(*idx).or_default() += 1.0;
                }
                kept
            });
            !list.is_empty()
        });
        for (idx, n) in broken {
            if let Some(p) = self.peers.get_mut(&idx) {
                p.behaviour += n;
                self.stats.broken_promises += n as u64;
            }
            self.check_ban(idx, now);
        }
    }
}

/// Peers on one IPv4 address, or one IPv6 /64, count as colocated.
pub(super) fn colocation_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

fn evict_earliest<K: Ord + Clone, V>(map: &mut BTreeMap<K, V>, at: impl Fn(&V) -> Instant) {
    if let Some(k) = map.iter().min_by_key(|(_, v)| at(v)).map(|(k, _)| k.clone()) {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::super::tests::*;
    use super::super::*;
    use super::*;
    use crate::time::test_now;

    #[test]
    fn peers_sending_invalid_messages_are_banned_for_an_hour() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        r.add_peer(2, false, ip(2), Protocol::V11, t0).unwrap();
        for n in 0..4u8 {
            r.handle_input(&1, &frame(|rpc| msg(rpc, TOPIC, &[n; 100])), t0).unwrap();
        }
        let got = received(&mut r);
        assert_eq!(got.len(), 4);
        for (n, m) in got.iter().enumerate().take(3) {
            r.report_validation(&m.id, Acceptance::Reject, t0);
            assert_eq!(r.score(&1), Some(-10.0 * ((n + 1) * (n + 1)) as f64));
        }
        // Graylisted: RPCs are ignored.
        r.handle_input(&1, &frame(|rpc| msg(rpc, TOPIC, b"more")), t0).unwrap();
        assert!(received(&mut r).is_empty());
        assert_eq!(r.stats().graylisted_rpcs, 1);
        // A duplicate of a rejected message costs its sender too.
        r.handle_input(&2, &frame(|rpc| msg(rpc, TOPIC, &[0; 100])), t0).unwrap();
        assert_eq!(r.score(&2), Some(-10.0));
        r.report_validation(&got[3].id, Acceptance::Reject, t0);
        assert_eq!(disconnects(&mut r), [(1, Disconnect::Banned)]);
        assert_eq!(r.score(&1), None);
        assert_eq!(r.banned_peers(t0), [(1, t0 + Duration::from_secs(3600))]);
        assert!(matches!(r.add_peer(1, true, ip(1), Protocol::V11, t0), Err(RouterError::Banned { .. })));
        let later = t0 + Duration::from_secs(3601);
        r.handle_timeout(later);
        assert!(r.banned_peers(later).is_empty());
        r.add_peer(1, true, ip(1), Protocol::V11, later).unwrap();
        assert_eq!(r.score(&1), Some(0.0));
    }

    #[test]
    fn penalties_survive_a_reconnect_and_decay() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        r.handle_input(&1, &frame(|rpc| msg(rpc, TOPIC, b"bad")), t0).unwrap();
        let id = received(&mut r)[0].id;
        r.report_validation(&id, Acceptance::Reject, t0);
        r.remove_peer(&1, t0);
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        assert_eq!(r.score(&1), Some(-10.0));
        // 1% after 60 decay intervals of 2 s, then zero.
        r.handle_timeout(t0 + Duration::from_secs(2 * 61 + 1));
        assert_eq!(r.score(&1), Some(0.0));
    }

    #[test]
    fn colocated_peers_lose_score() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        let shared = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        for p in 0..11 {
            r.add_peer(p, false, shared, Protocol::V11, t0).unwrap();
        }
        assert_eq!(r.score(&0), Some(-35.0));
        // IPv6 peers in one /64 share a slot; another /64 does not.
        r.add_peer(20, false, "2001:db8::1".parse().unwrap(), Protocol::V11, t0).unwrap();
        r.add_peer(21, false, "2001:db8::2".parse().unwrap(), Protocol::V11, t0).unwrap();
        r.add_peer(22, false, "2001:db9::1".parse().unwrap(), Protocol::V11, t0).unwrap();
        assert_eq!(
            colocation_key("2001:db8::1".parse().unwrap()),
            colocation_key("2001:db8::ff".parse().unwrap())
        );
        r.remove_peer(&10, t0);
        assert_eq!(r.score(&0), Some(0.0));
    }
}
