//! The driver loop: one `mio::Poll` replaces op-node's `select`. Each turn fires due timers,
//! drains events (bounded), hands requests to workers, flushes socket writes, then sleeps in
//! `poll` until the earliest deadline, a socket, a worker result (via the `Waker`) or a signal.

use std::io::ErrorKind;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Poll, Token, Waker};

use super::clock;
use super::node::Shell;
use super::signals::{SignalAction, SignalWatch};
use super::workers::Completions;
use crate::event::Event;

pub const WAKER: Token = Token(0);
pub const SIGNALS: Token = Token(1);
/// First token of the RPC server (its listener; connections follow).
pub const RPC_TOKENS: usize = 1000;
/// First token of the metrics server.
pub const METRICS_TOKENS: usize = 2000;

/// Events run per loop turn before sockets and timers get a look in.
pub const DRAIN_BUDGET: usize = 4096;

/// How the loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Graceful stop after a signal (or a programmatic stop).
    Stopped,
    /// A second signal: the caller exits without further cleanup.
    Immediate,
    /// A `CriticalError` aborted the event system.
    Critical(String),
}

/// The poll, its waker, the signal source and the channel worker results arrive on.
pub struct EventLoop {
    pub poll: Poll,
    pub waker: Arc<Waker>,
    signals: Option<SignalWatch>,
    completions_rx: Receiver<Event>,
    completions: Completions<Event>,
    stop_requested: bool,
    /// Why `poll` returned, counted (`op_lite_loop_wakeups_total`).
    pub wakeups: Arc<Wakeups>,
}

/// The loop's wake-ups by cause: a deadline (named by whoever set it), a worker's result, a
/// signal, or a socket of the RPC / metrics servers or the gossip network. One count per cause
/// per `poll` return.
#[derive(Debug, Default)]
pub struct Wakeups(std::sync::Mutex<Vec<((&'static str, &'static str), u64)>>);

impl Wakeups {
    pub fn count(&self, kind: &'static str, what: &'static str) {
        let Ok(mut v) = self.0.lock() else { return };
        match v.iter_mut().find(|(k, _)| *k == (kind, what)) {
            Some((_, n)) => *n += 1,
            None => v.push(((kind, what), 1)),
        }
    }

    /// (kind, what, count) for every cause seen so far.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.0.lock().map(|v| v.iter().map(|((k, w), n)| (*k, *w, *n)).collect()).unwrap_or_default()
    }
}

impl EventLoop {
    /// Creates the poll, its waker and (when `watch_signals`) the SIGINT/SIGTERM source.
    pub fn new(watch_signals: bool) -> std::io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let signals =
            if watch_signals { Some(SignalWatch::register(poll.registry(), SIGNALS)?) } else { None };
        let (completions, completions_rx) = Completions::new(waker.clone());
        Ok(EventLoop {
            poll,
            waker,
            signals,
            completions_rx,
            completions,
            stop_requested: false,
            wakeups: Arc::default(),
        })
    }

    /// The channel that worker threads send their results (as events) through.
    pub fn completions(&self) -> Completions<Event> {
        self.completions.clone()
    }

    /// Asks the loop to stop gracefully at its next turn (e.g. after `--blocks N`).
    pub fn request_stop(&mut self) {
        self.stop_requested = true;
    }

    pub fn stop_requested(&self) -> bool {
        self.stop_requested
    }
}

/// Runs the node until a stop, a second signal or a critical error.
pub fn run(shell: &mut Shell) -> Exit {
    let mut events = Events::with_capacity(256);
    loop {
        let now = clock::now();
        shell.node.handle_timeout(now);
        shell.service_http(now);
        shell.node.relay_gossip(now);
        if let Err(e) = shell.node.drain_bounded(now, DRAIN_BUDGET) {
            log::error!("{e}");
            return Exit::Critical(e.0);
        }
        shell.dispatch_requests(now);
        shell.flush_p2p(now);
        shell.service_notify(now);
        shell.save_discovery(now, false);
        if shell.event_loop().stop_requested {
            return Exit::Stopped;
        }
        let (timeout, deadline) = if shell.node.pending() > 0 {
            (Some(Duration::ZERO), "pending events")
        } else {
            match shell.poll_timeout() {
                Some((t, what)) => (Some(t.saturating_duration_since(now.mono)), what),
                None => (None, "none"),
            }
        };
        if let Err(e) = shell.event_loop().poll.poll(&mut events, timeout) {
            if e.kind() != ErrorKind::Interrupted {
                log::error!("poll failed: {e}");
                return Exit::Critical(format!("poll failed: {e}"));
            }
            continue;
        }
        let wakeups = shell.event_loop().wakeups.clone();
        if events.is_empty() {
            wakeups.count("deadline", deadline);
        }
        let mut seen = [false; 6];
        for ev in events.iter() {
            let (i, kind) = match ev.token() {
                WAKER => (0, "worker"),
                SIGNALS => (1, "signal"),
                super::discv5::DISCV5_TOKEN => (5, "discv5 socket"),
                t if super::p2p::P2pNet::owns(t) => (2, "gossip socket"),
                t if t.0 >= METRICS_TOKENS => (3, "metrics socket"),
                _ => (4, "rpc socket"),
            };
            if !std::mem::replace(&mut seen[i], true) {
                wakeups.count("io", kind);
            }
        }
        for ev in events.iter() {
            match ev.token() {
                WAKER => {
                    while let Ok(ev) = shell.event_loop().completions_rx.try_recv() {
                        // A stop from another thread (an embedded node's owner).
                        if matches!(ev, Event::ShutdownRequested) {
                            shell.event_loop().stop_requested = true;
                        }
                        shell.node.emit(ev);
                    }
                }
                SIGNALS => {
                    let action =
                        shell.event_loop().signals.as_mut().map_or(SignalAction::None, |s| s.on_readable());
                    match action {
                        SignalAction::None => {}
                        SignalAction::GracefulStop => {
                            shell.event_loop().stop_requested = true;
                            shell.node.emit(Event::ShutdownRequested);
                        }
                        SignalAction::ExitNow => return Exit::Immediate,
                    }
                }
                token => shell.on_socket_ready(token, ev),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakeups_are_counted_by_cause() {
        let w = Wakeups::default();
        w.count("deadline", "step");
        w.count("io", "worker");
        w.count("deadline", "step");
        assert_eq!(w.snapshot(), vec![("deadline", "step", 2), ("io", "worker", 1)]);
        assert_eq!(w.snapshot().iter().map(|(_, _, n)| n).sum::<u64>(), 3);
    }
}
