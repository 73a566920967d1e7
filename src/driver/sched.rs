//! Step scheduling with exponential backoff, as op-node's `StepSchedulingDeriver`.
//!
//! `StepReq` asks for a step: at once when the last step went well, otherwise after a backoff of
//! `min + 2^attempts s` (capped at `max`) plus jitter. The driver loop fires the stored deadline
//! (`poll_timeout` / `handle_timeout`) as `StepAttempt`, which counts an attempt and emits `Step`.
//! `ResetStepBackoff` (or `StepReq{reset_backoff}`) forgets past failures.

use std::time::{Duration, Instant};

use crate::event::{Deriver, Emitter, Event};
use crate::rng::Rng;
use crate::time::Now;

/// op-service `retry.ExponentialStrategy`: `min + 2^attempt s`, capped at `max`, plus up to
/// `max_jitter` of random delay (added even when capped).
#[derive(Debug, Clone)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
    pub max_jitter: Duration,
    rng: Rng,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, max_jitter: Duration, seed: u64) -> Self {
        Backoff { min, max, max_jitter, rng: Rng::new(seed) }
    }

    /// op-node's step backoff: 0 min, 10 s max, 250 ms jitter.
    pub fn exponential(seed: u64) -> Self {
        Backoff::new(Duration::ZERO, Duration::from_secs(10), Duration::from_millis(250), seed)
    }

    pub fn duration(&mut self, attempt: u32) -> Duration {
        let jitter = if self.max_jitter.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(self.rng.below(self.max_jitter.as_nanos() as u64))
        };
        let exp = Duration::from_secs(1u64 << attempt.min(40));
        let d = self.min.saturating_add(exp);
        d.min(self.max) + jitter
    }
}

/// Emits `Step` events on request, spacing out retries after failed attempts.
#[derive(Debug)]
pub struct StepScheduler {
    attempts: u32,
    backoff: Backoff,
    /// A step was requested without delay (op-node's buffered `stepReqCh`); holds the time of
    /// the request so the loop fires it on its next turn.
    immediate: Option<Instant>,
    /// A delayed re-attempt is scheduled for this time.
    delayed: Option<Instant>,
}

impl StepScheduler {
    pub fn new(backoff: Backoff) -> Self {
        StepScheduler { attempts: 0, backoff, immediate: None, delayed: None }
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    fn step_now(&mut self, now: Instant) {
        self.delayed = None;
        if self.immediate.is_none() {
            self.immediate = Some(now);
        }
    }
}

impl Deriver for StepScheduler {
    fn on_event(&mut self, ev: &Event, now: Now, out: &mut Emitter) -> bool {
        match ev {
            Event::StepDelayedReq { delay } => {
                if self.delayed.is_none() {
                    self.delayed = Some(now.mono + *delay);
                }
            }
            Event::StepReq { reset_backoff } => {
                if *reset_backoff {
                    self.attempts = 0;
                }
                if self.attempts > 0 {
                    if self.delayed.is_none() {
                        let delay = self.backoff.duration(self.attempts);
                        log::debug!(
                            "scheduling re-attempt with delay attempts={} delay={:?}",
                            self.attempts,
                            delay
                        );
                        self.delayed = Some(now.mono + delay);
                    } else {
                        log::debug!(
                            "ignoring step request, already scheduled re-attempt after previous failure attempts={}",
                            self.attempts
                        );
                    }
                } else {
                    self.step_now(now.mono);
                }
            }
            Event::StepAttempt => {
                self.delayed = None;
                if self.attempts > 0 {
                    log::debug!("running step retry attempts={}", self.attempts);
                }
                // Counted as an attempt; healthy progress resets it to zero.
                self.attempts += 1;
                out.emit(Event::Step);
            }
            Event::ResetStepBackoff => self.attempts = 0,
            _ => return false,
        }
        true
    }

    fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        match (self.immediate, self.delayed) {
            (Some(t), _) => Some((t, "step")),
            (None, Some(t)) => Some((t, "delayed-step")),
            (None, None) => None,
        }
    }

    fn handle_timeout(&mut self, now: Now, out: &mut Emitter) {
        if self.immediate.take().is_some() {
            out.emit(Event::StepAttempt);
        } else if self.delayed.is_some_and(|t| t <= now.mono) {
            self.delayed = None;
            out.emit(Event::StepAttempt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{System, MAX_QUEUED_EVENTS};

    fn t0() -> Now {
        crate::time::test_now()
    }

    fn sched(jitter_ms: u64) -> StepScheduler {
        StepScheduler::new(Backoff::new(
            Duration::ZERO,
            Duration::from_secs(10),
            Duration::from_millis(jitter_ms),
            42,
        ))
    }

    /// Runs the scheduler inside a system and returns how many `Step`s were emitted.
    fn steps(s: &System) -> u64 {
        s.metrics().get("step").map_or(0, |c| c.emitted)
    }

    fn system(sc: StepScheduler) -> (System, (&'static str, StepScheduler)) {
        let t = t0().mono;
        (System::new(MAX_QUEUED_EVENTS, Box::new(move || t)), ("step-scheduler", sc))
    }

    #[test]
    fn first_request_steps_immediately() {
        let now = t0();
        let (mut s, mut d) = system(sched(0));
        s.emit(Event::StepReq { reset_backoff: false });
        s.drain(&mut d, now).unwrap();
        assert_eq!(s.poll_timeout(&d), Some((now.mono, "step")));
        s.handle_timeout(&mut d, now);
        s.drain(&mut d, now).unwrap();
        assert_eq!(steps(&s), 1);
        assert_eq!(s.poll_timeout(&d), None);
    }

    #[test]
    fn retries_back_off_exponentially_to_the_cap() {
        let mut now = t0();
        let (mut s, mut d) = system(sched(0));
        s.emit(Event::StepReq { reset_backoff: false });
        s.drain(&mut d, now).unwrap();
        s.handle_timeout(&mut d, now);
        s.drain(&mut d, now).unwrap();
        // Each failed step asks again; the delay doubles: 2, 4, 8, then the 10 s cap.
        for expected in [2u64, 4, 8, 10, 10] {
            s.emit(Event::StepReq { reset_backoff: false });
            s.drain(&mut d, now).unwrap();
            let (due, what) = s.poll_timeout(&d).unwrap();
            assert_eq!(what, "delayed-step");
            assert_eq!(due - now.mono, Duration::from_secs(expected));
            // A second request while one is scheduled does not move it.
            s.emit(Event::StepReq { reset_backoff: false });
            s.drain(&mut d, now).unwrap();
            assert_eq!(s.poll_timeout(&d).unwrap().0, due);
            // Not yet due: a spurious timeout does nothing.
            s.handle_timeout(&mut d, now);
            assert_eq!(s.pending(), 0);
            now = now.advance(due - now.mono);
            s.handle_timeout(&mut d, now);
            s.drain(&mut d, now).unwrap();
        }
        assert_eq!(steps(&s), 6);
        assert_eq!(d.1.attempts(), 6);
    }

    #[test]
    fn reset_backoff_makes_the_next_step_immediate() {
        let now = t0();
        let (mut s, mut d) = system(sched(0));
        for _ in 0..3 {
            s.emit(Event::StepAttempt);
        }
        s.drain(&mut d, now).unwrap();
        s.emit(Event::ResetStepBackoff);
        s.emit(Event::StepReq { reset_backoff: false });
        s.drain(&mut d, now).unwrap();
        assert_eq!(s.poll_timeout(&d), Some((now.mono, "step")));
        let (mut s, mut d) = system(sched(0));
        s.emit(Event::StepAttempt);
        s.emit(Event::StepReq { reset_backoff: true });
        s.drain(&mut d, now).unwrap();
        assert_eq!(s.poll_timeout(&d), Some((now.mono, "step")));
    }

    #[test]
    fn jitter_is_bounded_and_seeded() {
        let mut a = Backoff::exponential(9);
        let mut b = Backoff::exponential(9);
        for attempt in 1..20 {
            let d = a.duration(attempt);
            assert_eq!(d, b.duration(attempt));
            let base = Duration::from_secs((1u64 << attempt).min(10));
            assert!(d >= base && d < base + Duration::from_millis(250), "{attempt}: {d:?}");
        }
    }

    #[test]
    fn delayed_request_fires_once_due() {
        let now = t0();
        let (mut s, mut d) = system(sched(0));
        s.emit(Event::StepDelayedReq { delay: Duration::from_millis(500) });
        s.drain(&mut d, now).unwrap();
        assert_eq!(s.poll_timeout(&d), Some((now.mono + Duration::from_millis(500), "delayed-step")));
        let later = now.advance(Duration::from_millis(500));
        s.handle_timeout(&mut d, later);
        s.drain(&mut d, later).unwrap();
        assert_eq!(steps(&s), 1);
    }
}
