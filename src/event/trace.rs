//! Event tracers: a log tracer (trace level) and per-event-name counters for the metrics
//! endpoint (emitted, processed, dropped, processing time), like op-node's metrics tracer.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Event;

/// Logs every emission and handling at trace level.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogTracer;

impl LogTracer {
    pub fn on_emit(&self, emitter: &str, ev: &Event) {
        crate::trace!(
            target: "op_lite::event",
            "emit event={} emitter={}",
            ev.name(),
            if emitter.is_empty() { "driver" } else { emitter }
        );
    }

    pub fn on_derive(&self, deriver: &str, ev: &Event, took: Duration) {
        crate::trace!(
            target: "op_lite::event",
            "processed event={} deriver={} took={:?}",
            ev.name(),
            deriver,
            took
        );
    }
}

/// Counters for one event name.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EventCounts {
    pub emitted: u64,
    pub processed: u64,
    /// Processed events that no deriver handled.
    pub unhandled: u64,
    pub dropped: u64,
    pub processing_time: Duration,
}

/// Per-event-name counters, keyed by `Event::name`.
#[derive(Debug, Default, Clone)]
pub struct EventMetrics {
    by_name: BTreeMap<&'static str, EventCounts>,
}

impl EventMetrics {
    pub fn on_emit(&mut self, ev: &Event) {
        self.by_name.entry(ev.name()).or_default().emitted += 1;
    }

    pub fn on_dropped(&mut self, ev: &Event) {
        self.by_name.entry(ev.name()).or_default().dropped += 1;
    }

    pub fn on_processed(&mut self, ev: &Event, took: Duration, effect: bool) {
        let c = self.by_name.entry(ev.name()).or_default();
        c.processed += 1;
        c.processing_time += took;
        if !effect {
            c.unhandled += 1;
        }
    }

    pub fn get(&self, name: &str) -> Option<&EventCounts> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &EventCounts)> {
        self.by_name.iter().map(|(k, v)| (*k, v))
    }
}
