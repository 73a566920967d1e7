//! The executor: one FIFO queue, fan-out over a deriver set in its fixed order, tracing, and
//! the abort flag.
//!
//! Call order (the driver loop): `emit` inputs, `handle_timeout(set, now)` for due timers,
//! `drain_bounded(set, now, budget)` until `pending()` is 0, `poll_requests()` for I/O, then wait
//! for `poll_timeout(set)`.

use std::fmt;
use std::time::Instant;

use super::{Deriver, Emitter, Event, Request};
use crate::time::Now;

/// op-node caps its event queue; past this, events are dropped and counted.
pub const MAX_QUEUED_EVENTS: usize = 10_000;

/// Returned by `drain` once a `CriticalError` stopped the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aborted(pub String);

impl fmt::Display for Aborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "critical error: {}", self.0)
    }
}

impl std::error::Error for Aborted {}

/// Reads the monotonic clock for processing-time metrics. `src/io/` passes the real clock;
/// tests pass a fixed or stepped one.
pub type Clock = Box<dyn Fn() -> Instant>;

/// The derivers an event fans out to, in a fixed order. A node keeps its derivers as named
/// fields (no registry, no look-up by name) and lists them here in op-node's order.
pub trait Derivers {
    /// Calls `f` with each deriver and its name, in fan-out order.
    fn each(&mut self, f: &mut impl FnMut(&'static str, &mut dyn Deriver));

    /// Calls `f` with each deriver, in fan-out order.
    fn each_ref(&self, f: &mut impl FnMut(&dyn Deriver));
}

/// A list of boxed derivers: observers an embedding program adds (the devnet's reporter) and
/// small sets in tests.
impl Derivers for Vec<(&'static str, Box<dyn Deriver>)> {
    fn each(&mut self, f: &mut impl FnMut(&'static str, &mut dyn Deriver)) {
        for (name, d) in self.iter_mut() {
            f(name, d.as_mut());
        }
    }

    fn each_ref(&self, f: &mut impl FnMut(&dyn Deriver)) {
        for (_, d) in self {
            f(d.as_ref());
        }
    }
}

/// One deriver with its name: a set of one (unit tests of a single deriver).
impl<D: Deriver> Derivers for (&'static str, D) {
    fn each(&mut self, f: &mut impl FnMut(&'static str, &mut dyn Deriver)) {
        f(self.0, &mut self.1);
    }

    fn each_ref(&self, f: &mut impl FnMut(&dyn Deriver)) {
        f(&self.1);
    }
}

/// The event system: one bounded queue that a deriver set drains.
pub struct System {
    out: Emitter,
    clock: Clock,
}

impl System {
    pub fn new(cap: usize, clock: Clock) -> Self {
        System { out: Emitter::with_cap(cap), clock }
    }

    /// Emits an event from outside any deriver (the driver loop, I/O results).
    pub fn emit(&mut self, ev: Event) {
        self.out.current = "";
        self.out.emit(ev);
    }

    pub fn emitter(&mut self) -> &mut Emitter {
        &mut self.out
    }

    /// The monotonic clock the system was given.
    pub fn mono(&self) -> Instant {
        (self.clock)()
    }

    pub fn pending(&self) -> usize {
        self.out.pending()
    }

    pub fn dropped(&self) -> u64 {
        self.out.dropped()
    }

    pub fn aborted(&self) -> Option<&str> {
        self.out.aborted()
    }

    pub fn metrics(&self) -> &super::EventMetrics {
        &self.out.metrics
    }

    /// Takes the I/O requests derivers made since the last call.
    pub fn poll_requests(&mut self) -> Vec<Request> {
        self.out.poll_requests()
    }

    /// Runs queued events until the queue is empty.
    pub fn drain(&mut self, set: &mut impl Derivers, now: Now) -> Result<(), Aborted> {
        self.drain_bounded(set, now, usize::MAX).map(|_| ())
    }

    /// Runs at most `budget` events; returns how many ran. Once aborted, only `CriticalError`
    /// events are still delivered (so every deriver sees why), the rest are discarded.
    pub fn drain_bounded(
        &mut self,
        set: &mut impl Derivers,
        now: Now,
        budget: usize,
    ) -> Result<usize, Aborted> {
        let mut ran = 0;
        while ran < budget {
            let Some(ev) = self.out.pop() else { break };
            ran += 1;
            let critical = matches!(ev, Event::CriticalError { .. });
            if self.out.aborted().is_some() && !critical {
                continue;
            }
            self.dispatch(set, &ev, now);
        }
        match self.out.aborted() {
            Some(err) => Err(Aborted(err.to_string())),
            None => Ok(ran),
        }
    }

    fn dispatch(&mut self, set: &mut impl Derivers, ev: &Event, now: Now) {
        let start = (self.clock)();
        let mut effect = false;
        let (out, clock) = (&mut self.out, &self.clock);
        set.each(&mut |name, d| {
            out.current = name;
            let t0 = clock();
            let handled = d.on_event(ev, now, out);
            if handled {
                out.log.on_derive(name, ev, clock().saturating_duration_since(t0));
            }
            effect |= handled;
        });
        self.out.current = "";
        let elapsed = (self.clock)().saturating_duration_since(start);
        self.out.metrics.on_processed(ev, elapsed, effect);
    }

    /// The earliest deadline any deriver of `set` asked for.
    pub fn poll_timeout(&self, set: &impl Derivers) -> Option<(Instant, &'static str)> {
        self.poll_timeout_by(set, |t| t)
    }

    /// The earliest deadline any deriver of `set` asked for, each first moved by `adjust` (the
    /// owner's timer slack: a deadline that may wait for a wake-up due anyway).
    pub fn poll_timeout_by(
        &self,
        set: &impl Derivers,
        adjust: impl Fn((Instant, &'static str)) -> (Instant, &'static str),
    ) -> Option<(Instant, &'static str)> {
        let mut first: Option<(Instant, &'static str)> = None;
        set.each_ref(&mut |d| {
            if let Some(t) = d.poll_timeout().map(&adjust) {
                if first.is_none_or(|f| t.0 < f.0) {
                    first = Some(t);
                }
            }
        });
        first
    }

    /// Lets every deriver of `set` fire its due timers.
    pub fn handle_timeout(&mut self, set: &mut impl Derivers, now: Now) {
        let out = &mut self.out;
        set.each(&mut |name, d| {
            out.current = name;
            d.handle_timeout(now, out);
        });
        self.out.current = "";
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Deriver;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    type Log = Rc<RefCell<Vec<String>>>;

    /// Records what it sees; on `StepReq` re-emits `Step`.
    struct Recorder {
        name: &'static str,
        log: Log,
    }

    impl Deriver for Recorder {
        fn on_event(&mut self, ev: &Event, _now: Now, out: &mut Emitter) -> bool {
            self.log.borrow_mut().push(format!("{}:{}", self.name, ev.name()));
            match ev {
                Event::StepReq { .. } if self.name == "a" => {
                    out.emit(Event::Step);
                    true
                }
                Event::Step => true,
                _ => false,
            }
        }
    }

    type Set = Vec<(&'static str, Box<dyn Deriver>)>;

    fn system(log: &Log) -> (System, Set) {
        let t0 = now().mono;
        let s = System::new(MAX_QUEUED_EVENTS, Box::new(move || t0));
        let set: Set = vec![
            ("a", Box::new(Recorder { name: "a", log: log.clone() })),
            ("b", Box::new(Recorder { name: "b", log: log.clone() })),
        ];
        (s, set)
    }

    fn now() -> Now {
        crate::time::test_now()
    }

    #[test]
    fn fifo_order_and_fan_out() {
        let log = Log::default();
        let (mut s, mut set) = system(&log);
        s.emit(Event::StepReq { reset_backoff: false });
        s.emit(Event::DeriverIdle);
        s.drain(&mut set, now()).unwrap();
        // Both derivers see each event in the set's order; the Step emitted while handling
        // the first event runs after the already-queued DeriverIdle.
        assert_eq!(
            *log.borrow(),
            vec!["a:step-req", "b:step-req", "a:derivation-idle", "b:derivation-idle", "a:step", "b:step"]
        );
        assert_eq!(s.pending(), 0);
        let m = s.metrics().get("step").unwrap();
        assert_eq!((m.emitted, m.processed), (1, 1));
    }

    #[test]
    fn queue_cap_drops_and_counts() {
        let log = Log::default();
        let t0 = now().mono;
        let mut s = System::new(3, Box::new(move || t0));
        let mut set: Set = vec![("a", Box::new(Recorder { name: "a", log: log.clone() }))];
        for _ in 0..5 {
            s.emit(Event::DeriverMore);
        }
        assert_eq!(s.pending(), 3);
        assert_eq!(s.dropped(), 2);
        assert_eq!(s.metrics().get("deriver-more").unwrap().dropped, 2);
        s.drain(&mut set, now()).unwrap();
        assert_eq!(log.borrow().len(), 3);
    }

    #[test]
    fn critical_error_aborts_draining() {
        let log = Log::default();
        let (mut s, mut set) = system(&log);
        s.emit(Event::DeriverMore);
        s.emit(Event::CriticalError { err: "boom".into() });
        s.emit(Event::DeriverIdle);
        let r = s.drain(&mut set, now());
        assert_eq!(r, Err(Aborted("boom".into())));
        // The abort flag is set at emission: nothing but the critical error itself is delivered.
        assert_eq!(*log.borrow(), vec!["a:critical-error", "b:critical-error"]);
        s.emit(Event::DeriverIdle);
        assert!(s.drain(&mut set, now()).is_err());
        assert_eq!(log.borrow().len(), 2);
    }

    #[test]
    fn bounded_drain_leaves_the_rest_queued() {
        let log = Log::default();
        let (mut s, mut set) = system(&log);
        for _ in 0..4 {
            s.emit(Event::DeriverMore);
        }
        assert_eq!(s.drain_bounded(&mut set, now(), 3), Ok(3));
        assert_eq!(s.pending(), 1);
    }

    struct Timer(Option<Instant>, Rc<RefCell<u32>>);
    impl Deriver for Timer {
        fn on_event(&mut self, _: &Event, _: Now, _: &mut Emitter) -> bool {
            false
        }
        fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
            self.0.map(|t| (t, "timer"))
        }
        fn handle_timeout(&mut self, now: Now, out: &mut Emitter) {
            if self.0.is_some_and(|t| t <= now.mono) {
                self.0 = None;
                *self.1.borrow_mut() += 1;
                out.emit(Event::StepAttempt);
            }
        }
    }

    #[test]
    fn timeouts_are_the_earliest_deadline_and_spurious_calls_are_noops() {
        let n = now();
        let t0 = n.mono;
        let mut s = System::new(16, Box::new(move || t0));
        let fired = Rc::new(RefCell::new(0));
        let mut set: Set = vec![
            ("late", Box::new(Timer(Some(n.mono + Duration::from_secs(5)), Rc::default()))),
            ("early", Box::new(Timer(Some(n.mono + Duration::from_secs(1)), fired.clone()))),
        ];
        assert_eq!(s.poll_timeout(&set), Some((n.mono + Duration::from_secs(1), "timer")));
        s.handle_timeout(&mut set, n);
        assert_eq!(s.pending(), 0);
        s.handle_timeout(&mut set, n.advance(Duration::from_secs(1)));
        assert_eq!(s.pending(), 1);
        assert_eq!(*fired.borrow(), 1);
        assert_eq!(s.poll_timeout(&set).map(|t| t.0), Some(n.mono + Duration::from_secs(5)));
    }
}
