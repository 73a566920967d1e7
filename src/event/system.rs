//! The executor: named derivers, one FIFO queue, fan-out in registration order, tracing, and the
//! abort flag.

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

/// A second deriver was registered under a name already taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateDeriver(pub &'static str);

impl fmt::Display for DuplicateDeriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a deriver with name {:?} already exists", self.0)
    }
}

impl std::error::Error for DuplicateDeriver {}

/// Reads the monotonic clock for processing-time metrics. `src/io/` passes the real clock;
/// tests pass a fixed or stepped one.
pub type Clock = Box<dyn Fn() -> Instant>;

/// The event system: named derivers sharing one bounded queue.
pub struct System {
    derivers: Vec<(&'static str, Box<dyn Deriver>)>,
    out: Emitter,
    clock: Clock,
}

impl System {
    pub fn new(cap: usize, clock: Clock) -> Self {
        System { derivers: Vec::new(), out: Emitter::with_cap(cap), clock }
    }

    /// Adds a deriver; events fan out to derivers in registration order.
    pub fn register(&mut self, name: &'static str, d: Box<dyn Deriver>) -> Result<(), DuplicateDeriver> {
        if self.derivers.iter().any(|(n, _)| *n == name) {
            return Err(DuplicateDeriver(name));
        }
        self.derivers.push((name, d));
        Ok(())
    }

    /// Removes a deriver, returning it.
    pub fn unregister(&mut self, name: &str) -> Option<Box<dyn Deriver>> {
        let i = self.derivers.iter().position(|(n, _)| *n == name)?;
        Some(self.derivers.remove(i).1)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.derivers.iter().map(|(n, _)| *n)
    }

    /// A registered deriver by name and concrete type.
    pub fn get<T: 'static>(&self, name: &str) -> Option<&T> {
        self.derivers.iter().find(|(n, _)| *n == name).and_then(|(_, d)| d.as_any().downcast_ref::<T>())
    }

    pub fn get_mut<T: 'static>(&mut self, name: &str) -> Option<&mut T> {
        self.derivers
            .iter_mut()
            .find(|(n, _)| *n == name)
            .and_then(|(_, d)| d.as_any_mut().downcast_mut::<T>())
    }

    /// Emits an event from outside any deriver (the driver loop, I/O results).
    pub fn emit(&mut self, ev: Event) {
        self.out.current = "";
        self.out.emit(ev);
    }

    pub fn emitter(&mut self) -> &mut Emitter {
        &mut self.out
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

    pub fn take_requests(&mut self) -> Vec<Request> {
        self.out.take_requests()
    }

    /// Runs queued events until the queue is empty.
    pub fn drain(&mut self, now: Now) -> Result<(), Aborted> {
        self.drain_bounded(now, usize::MAX).map(|_| ())
    }

    /// Runs at most `budget` events; returns how many ran. Once aborted, only `CriticalError`
    /// events are still delivered (so every deriver sees why), the rest are discarded.
    pub fn drain_bounded(&mut self, now: Now, budget: usize) -> Result<usize, Aborted> {
        let mut ran = 0;
        while ran < budget {
            let Some(ev) = self.out.pop() else { break };
            ran += 1;
            let critical = matches!(ev, Event::CriticalError { .. });
            if self.out.aborted().is_some() && !critical {
                continue;
            }
            self.dispatch(&ev, now);
        }
        match self.out.aborted() {
            Some(err) => Err(Aborted(err.to_string())),
            None => Ok(ran),
        }
    }

    fn dispatch(&mut self, ev: &Event, now: Now) {
        let start = (self.clock)();
        let mut effect = false;
        for (name, d) in self.derivers.iter_mut() {
            self.out.current = name;
            let t0 = (self.clock)();
            let handled = d.on_event(ev, now, &mut self.out);
            if handled {
                self.out.log.on_derive(name, ev, (self.clock)().saturating_duration_since(t0));
            }
            effect |= handled;
        }
        self.out.current = "";
        let elapsed = (self.clock)().saturating_duration_since(start);
        self.out.metrics.on_processed(ev, elapsed, effect);
    }

    /// The earliest deadline any deriver asked for.
    pub fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        self.derivers.iter().filter_map(|(_, d)| d.poll_timeout()).min_by_key(|(t, _)| *t)
    }

    /// Lets every deriver fire its due timers.
    pub fn handle_timeout(&mut self, now: Now) {
        for (name, d) in self.derivers.iter_mut() {
            self.out.current = name;
            d.handle_timeout(now, &mut self.out);
        }
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

    fn system(log: &Log) -> System {
        let t0 = now().mono;
        let mut s = System::new(MAX_QUEUED_EVENTS, Box::new(move || t0));
        s.register("a", Box::new(Recorder { name: "a", log: log.clone() })).unwrap();
        s.register("b", Box::new(Recorder { name: "b", log: log.clone() })).unwrap();
        s
    }

    fn now() -> Now {
        crate::time::test_now()
    }

    #[test]
    fn fifo_order_and_fan_out() {
        let log = Log::default();
        let mut s = system(&log);
        s.emit(Event::StepReq { reset_backoff: false });
        s.emit(Event::DeriverIdle);
        s.drain(now()).unwrap();
        // Both derivers see each event in registration order; the Step emitted while handling
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
    fn duplicate_names_are_rejected() {
        let log = Log::default();
        let mut s = system(&log);
        let dup = s.register("a", Box::new(Recorder { name: "a", log: log.clone() }));
        assert_eq!(dup, Err(DuplicateDeriver("a")));
        assert!(s.get::<Recorder>("b").is_some());
        assert!(s.unregister("b").is_some());
        assert_eq!(s.names().collect::<Vec<_>>(), vec!["a"]);
    }

    #[test]
    fn queue_cap_drops_and_counts() {
        let log = Log::default();
        let t0 = now().mono;
        let mut s = System::new(3, Box::new(move || t0));
        s.register("a", Box::new(Recorder { name: "a", log: log.clone() })).unwrap();
        for _ in 0..5 {
            s.emit(Event::DeriverMore);
        }
        assert_eq!(s.pending(), 3);
        assert_eq!(s.dropped(), 2);
        assert_eq!(s.metrics().get("deriver-more").unwrap().dropped, 2);
        s.drain(now()).unwrap();
        assert_eq!(log.borrow().len(), 3);
    }

    #[test]
    fn critical_error_aborts_draining() {
        let log = Log::default();
        let mut s = system(&log);
        s.emit(Event::DeriverMore);
        s.emit(Event::CriticalError { err: "boom".into() });
        s.emit(Event::DeriverIdle);
        let r = s.drain(now());
        assert_eq!(r, Err(Aborted("boom".into())));
        // The abort flag is set at emission: nothing but the critical error itself is delivered.
        assert_eq!(*log.borrow(), vec!["a:critical-error", "b:critical-error"]);
        s.emit(Event::DeriverIdle);
        assert!(s.drain(now()).is_err());
        assert_eq!(log.borrow().len(), 2);
    }

    #[test]
    fn bounded_drain_leaves_the_rest_queued() {
        let log = Log::default();
        let mut s = system(&log);
        for _ in 0..4 {
            s.emit(Event::DeriverMore);
        }
        assert_eq!(s.drain_bounded(now(), 3), Ok(3));
        assert_eq!(s.pending(), 1);
    }

    struct Timer(Option<Instant>, u32);
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
                self.1 += 1;
                out.emit(Event::StepAttempt);
            }
        }
    }

    #[test]
    fn timeouts_are_the_earliest_deadline_and_spurious_calls_are_noops() {
        let n = now();
        let t0 = n.mono;
        let mut s = System::new(16, Box::new(move || t0));
        s.register("late", Box::new(Timer(Some(n.mono + Duration::from_secs(5)), 0))).unwrap();
        s.register("early", Box::new(Timer(Some(n.mono + Duration::from_secs(1)), 0))).unwrap();
        assert_eq!(s.poll_timeout(), Some((n.mono + Duration::from_secs(1), "timer")));
        s.handle_timeout(n);
        assert_eq!(s.pending(), 0);
        s.handle_timeout(n.advance(Duration::from_secs(1)));
        assert_eq!(s.pending(), 1);
        assert_eq!(s.get::<Timer>("early").unwrap().1, 1);
        assert_eq!(s.poll_timeout().map(|t| t.0), Some(n.mono + Duration::from_secs(5)));
    }
}
