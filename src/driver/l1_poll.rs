//! L1 head tracking by polling (op-node polls HTTP endpoints the same way): the head every
//! `--l1.http-poll-interval`, safe and finalized every `--l1.epoch-poll-interval`. One poll per
//! label in flight; results arrive as `L1HeadUpdated` / `L1SafeUpdated` / `L1FinalizedUpdated`.
//!
//! The head poll asks for the block's transactions too when derivation waits at the tip (its
//! origin is at most one block behind the head): the next head is then the block it reads next,
//! and its body lands in the cache with the poll instead of costing a fetch of its own. A node
//! further behind asks for the header only, since the bodies it would get are evicted before
//! the pipeline reaches them.

use std::time::{Duration, Instant};

use crate::event::{Deriver, Emitter, Event, Request};
use crate::time::Now;

/// An L1 head label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L1Label {
    Latest,
    Safe,
    Finalized,
}

impl L1Label {
    pub fn tag(self) -> &'static str {
        match self {
            L1Label::Latest => "latest",
            L1Label::Safe => "safe",
            L1Label::Finalized => "finalized",
        }
    }

    const ALL: [L1Label; 3] = [L1Label::Latest, L1Label::Safe, L1Label::Finalized];
}

#[derive(Debug, Clone, Copy)]
struct Poll {
    due: Option<Instant>,
    in_flight: bool,
    interval: Duration,
}

/// Schedules the polls.
#[derive(Debug)]
pub struct L1Poller {
    polls: [Poll; 3],
    /// The last head polled and the pipeline's L1 origin, by number.
    head: Option<u64>,
    origin: Option<u64>,
}

impl L1Poller {
    /// `epoch_interval` zero disables safe / finalized polling, as op-node.
    pub fn new(head_interval: Duration, epoch_interval: Duration) -> Self {
        let p = |interval: Duration| Poll { due: None, in_flight: false, interval };
        L1Poller { polls: [p(head_interval), p(epoch_interval), p(epoch_interval)], head: None, origin: None }
    }

    /// Whether the next head poll should read the transactions: derivation's next L1 block is
    /// the head (or the one after it).
    pub fn wants_txs(&self) -> bool {
        matches!((self.origin, self.head), (Some(o), Some(h)) if o.saturating_add(1) >= h)
    }

    fn index(label: &str) -> Option<usize> {
        L1Label::ALL.iter().position(|l| l.tag() == label)
    }
}

impl Deriver for L1Poller {
    fn on_event(&mut self, ev: &Event, now: Now, _out: &mut Emitter) -> bool {
        let i = match ev {
            Event::DeriverL1Status { origin, .. } => {
                self.origin = Some(origin.number);
                return true;
            }
            Event::L1HeadUpdated(r) => {
                self.head = Some(r.number);
                0
            }
            Event::L1SafeUpdated(_) => 1,
            Event::L1FinalizedUpdated(_) => 2,
            Event::L1PollFailed { label, err } => match Self::index(label) {
                Some(i) => {
                    log::warn!("failed to poll L1 {label} block: {err}");
                    i
                }
                None => return false,
            },
            _ => return false,
        };
        let p = &mut self.polls[i];
        p.in_flight = false;
        p.due = Some(now.mono + p.interval);
        true
    }

    /// Polls never made yet (no deadline) run at the loop's first timer pass.
    fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        self.polls
            .iter()
            .filter(|p| !p.in_flight && !p.interval.is_zero())
            .filter_map(|p| p.due)
            .min()
            .map(|due| (due, "l1-poll"))
    }

    fn handle_timeout(&mut self, now: Now, out: &mut Emitter) {
        let at_tip = self.wants_txs();
        for (i, p) in self.polls.iter_mut().enumerate() {
            if p.in_flight || p.interval.is_zero() || p.due.is_some_and(|d| d > now.mono) {
                continue;
            }
            p.in_flight = true;
            let label = L1Label::ALL[i];
            let txs = label == L1Label::Latest && at_tip;
            out.request(Request::PollL1 { label, txs });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(out: &mut Emitter) -> Vec<String> {
        out.poll_requests().iter().map(|r| format!("{r:?}")).collect()
    }

    #[test]
    fn polls_on_schedule_one_at_a_time() {
        let now = crate::time::test_now();
        let mut p = L1Poller::new(Duration::from_secs(12), Duration::from_secs(384));
        let mut out = Emitter::with_cap(16);
        p.handle_timeout(now, &mut out);
        assert_eq!(requests(&mut out).len(), 3);
        // In flight: nothing more until answered.
        p.handle_timeout(now, &mut out);
        assert!(requests(&mut out).is_empty());
        assert_eq!(p.poll_timeout(), None);
        p.on_event(&Event::L1HeadUpdated(Default::default()), now, &mut out);
        assert_eq!(p.poll_timeout(), Some((now.mono + Duration::from_secs(12), "l1-poll")));
        p.handle_timeout(now.advance(Duration::from_secs(11)), &mut out);
        assert!(requests(&mut out).is_empty());
        p.handle_timeout(now.advance(Duration::from_secs(12)), &mut out);
        assert_eq!(requests(&mut out), vec!["PollL1 { label: Latest, txs: false }"]);
        // A failure also waits a full interval.
        p.on_event(&Event::L1PollFailed { label: "latest", err: "down".into() }, now, &mut out);
        assert_eq!(p.poll_timeout().map(|t| t.0), Some(now.mono + Duration::from_secs(12)));
    }
}

#[cfg(test)]
mod tip_tests {
    use super::*;
    use crate::protocol::block_ref::{L1BlockRef, L2BlockRef};

    fn l1(number: u64) -> L1BlockRef {
        L1BlockRef { number, ..L1BlockRef::default() }
    }

    fn head_poll(p: &mut L1Poller, now: Now) -> Option<bool> {
        let mut out = Emitter::with_cap(16);
        p.handle_timeout(now, &mut out);
        let txs = out.poll_requests().into_iter().find_map(|r| match r {
            Request::PollL1 { label: L1Label::Latest, txs } => Some(txs),
            _ => None,
        });
        // Answer it, so the next poll is due an interval later.
        p.on_event(&Event::L1HeadUpdated(l1(p.head.unwrap_or(0))), now, &mut out);
        txs
    }

    #[test]
    fn the_head_poll_reads_transactions_only_when_derivation_waits_at_the_tip() {
        let now = crate::time::test_now();
        let mut p = L1Poller::new(Duration::from_secs(12), Duration::ZERO);
        let mut out = Emitter::with_cap(16);
        let at = |secs: u64| now.advance(Duration::from_secs(secs));
        // Nothing known yet: the header only.
        assert_eq!(head_poll(&mut p, at(0)), Some(false));
        let status = |o: u64| Event::DeriverL1Status { origin: l1(o), last_l2: L2BlockRef::default() };
        // Far behind the head: bodies would be evicted before derivation gets to them.
        p.on_event(&Event::L1HeadUpdated(l1(1000)), at(0), &mut out);
        p.on_event(&status(10), at(0), &mut out);
        assert!(!p.wants_txs());
        assert_eq!(head_poll(&mut p, at(12)), Some(false));
        // One behind the head, and at it: the next head is the next block derivation reads.
        for (origin, head) in [(999, 1000), (1000, 1000), (1001, 1000)] {
            p.on_event(&Event::L1HeadUpdated(l1(head)), at(12), &mut out);
            p.on_event(&status(origin), at(12), &mut out);
            assert!(p.wants_txs(), "{origin} {head}");
        }
        assert_eq!(head_poll(&mut p, at(24)), Some(true));
        // Two behind: the header only.
        p.on_event(&status(998), at(24), &mut out);
        assert_eq!(head_poll(&mut p, at(36)), Some(false));
    }
}
