//! L1 head tracking by polling (op-node polls HTTP endpoints the same way): the head every
//! `--l1.http-poll-interval`, safe and finalized every `--l1.epoch-poll-interval`. One poll per
//! label in flight; results arrive as `L1HeadUpdated` / `L1SafeUpdated` / `L1FinalizedUpdated`.

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
}

impl L1Poller {
    /// `epoch_interval` zero disables safe / finalized polling, as op-node.
    pub fn new(head_interval: Duration, epoch_interval: Duration) -> Self {
        let p = |interval: Duration| Poll { due: None, in_flight: false, interval };
        L1Poller { polls: [p(head_interval), p(epoch_interval), p(epoch_interval)] }
    }

    fn index(label: &str) -> Option<usize> {
        L1Label::ALL.iter().position(|l| l.tag() == label)
    }
}

impl Deriver for L1Poller {
    fn on_event(&mut self, ev: &Event, now: Now, _out: &mut Emitter) -> bool {
        let i = match ev {
            Event::L1HeadUpdated(_) => 0,
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
        for (i, p) in self.polls.iter_mut().enumerate() {
            if p.in_flight || p.interval.is_zero() || p.due.is_some_and(|d| d > now.mono) {
                continue;
            }
            p.in_flight = true;
            out.request(Request::PollL1(L1Label::ALL[i]));
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
        assert_eq!(requests(&mut out), vec!["PollL1(Latest)"]);
        // A failure also waits a full interval.
        p.on_event(&Event::L1PollFailed { label: "latest", err: "down".into() }, now, &mut out);
        assert_eq!(p.poll_timeout().map(|t| t.0), Some(now.mono + Duration::from_secs(12)));
    }
}
