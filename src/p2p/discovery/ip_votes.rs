//! Our address as other nodes see it: each PONG names the endpoint the ping came from. A node
//! whose record has no IP (it listens on an unspecified address and has no
//! `--p2p.advertise.ip`) puts the endpoint a clear majority of recent voters agree on into its
//! record, as geth and sigp's discv5 do, so others can find it, not only reach back to it.
//!
//! One vote per node id, the latest; votes older than `WINDOW` do not count; at most
//! `MAX_VOTERS` voters are held (the oldest goes). An endpoint wins with at least `MIN_VOTES`
//! votes and more than half of those counted, so a stranger's few node ids cannot outvote the
//! peers a node talks to, and a lone liar moves nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::protocol::primitives::B256;

/// How long a vote counts.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Votes an endpoint needs to win.
pub const MIN_VOTES: usize = 3;
/// Voters held at once.
pub const MAX_VOTERS: usize = 64;

#[derive(Debug, Default)]
pub struct IpVotes {
    votes: HashMap<B256, (SocketAddr, Instant)>,
}

impl IpVotes {
    /// Node `id` saw us at `addr`.
    pub fn vote(&mut self, id: B256, addr: SocketAddr, now: Instant) {
        self.votes.retain(|_, (_, t)| now.saturating_duration_since(*t) < WINDOW);
        if !self.votes.contains_key(&id) && self.votes.len() >= MAX_VOTERS {
            if let Some(oldest) = self.votes.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k) {
                self.votes.remove(&oldest);
            }
        }
        self.votes.insert(id, (addr, now));
    }

    /// The nodes whose votes still count.
    pub fn voters(&self, now: Instant) -> impl Iterator<Item = &B256> {
        self.votes
            .iter()
            .filter(move |(_, (_, t))| now.saturating_duration_since(*t) < WINDOW)
            .map(|(id, _)| id)
    }

    /// Whether node `id` has a vote that still counts.
    pub fn has_voted(&self, id: &B256, now: Instant) -> bool {
        self.votes.get(id).is_some_and(|(_, t)| now.saturating_duration_since(*t) < WINDOW)
    }

    /// The endpoint the recent votes agree on, if any.
    pub fn winner(&self, now: Instant) -> Option<SocketAddr> {
        let mut counts: HashMap<SocketAddr, usize> = HashMap::new();
        let mut total = 0;
        for (addr, _) in self.votes.values().filter(|(_, t)| now.saturating_duration_since(*t) < WINDOW) {
            *counts.entry(*addr).or_default() += 1;
            total += 1;
        }
        counts.into_iter().find(|(_, n)| *n >= MIN_VOTES && 2 * n > total).map(|(a, _)| a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u8) -> B256 {
        B256([i; 32])
    }

    #[test]
    fn an_endpoint_wins_with_three_votes_and_a_majority_within_the_window() {
        let t0 = crate::time::test_now().mono;
        let (ours, lie): (SocketAddr, SocketAddr) =
            ("203.0.113.7:9222".parse().unwrap(), "198.51.100.1:1".parse().unwrap());
        let mut v = IpVotes::default();
        v.vote(id(1), ours, t0);
        v.vote(id(2), ours, t0);
        assert_eq!(v.winner(t0), None, "two votes are not enough");
        // One node voting again counts once.
        v.vote(id(2), ours, t0);
        assert_eq!(v.winner(t0), None);
        v.vote(id(3), ours, t0);
        assert_eq!(v.winner(t0), Some(ours));
        // Three liars make it a tie: no majority, nothing wins.
        for i in 10..13 {
            v.vote(id(i), lie, t0);
        }
        assert_eq!(v.winner(t0), None);
        // Honest votes renewed later; the liars' votes age out of the window.
        let later = t0 + WINDOW / 2;
        for i in 1..4 {
            v.vote(id(i), ours, later);
        }
        v.vote(id(4), ours, later);
        assert_eq!(v.winner(later), Some(ours), "4 of 7");
        assert_eq!(v.winner(t0 + WINDOW), Some(ours), "the liars' votes expired");
        assert_eq!(v.winner(later + WINDOW), None, "every vote expired");
    }

    #[test]
    fn voters_are_bounded_the_oldest_goes() {
        let t0 = crate::time::test_now().mono;
        let addr: SocketAddr = "203.0.113.7:9222".parse().unwrap();
        let mut v = IpVotes::default();
        for i in 0..200u32 {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_be_bytes());
            v.vote(B256(b), addr, t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(v.votes.len(), MAX_VOTERS);
        assert!(v.votes.values().all(|(_, t)| *t >= t0 + Duration::from_millis(200 - MAX_VOTERS as u64)));
        assert_eq!(v.winner(t0 + Duration::from_secs(1)), Some(addr));
    }
}
