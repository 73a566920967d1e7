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
    /// Number of times `poll` returned; the idle wake-up rate is measured from this.
    pub wakeups: u64,
}

impl EventLoop {
    /// Creates the poll, its waker and (when `watch_signals`) the SIGINT/SIGTERM source.
    pub fn new(watch_signals: bool) -> std::io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let signals =
            if watch_signals { Some(SignalWatch::register(poll.registry(), SIGNALS)?) } else { None };
        let (completions, completions_rx) = Completions::new(waker.clone());
        Ok(EventLoop { poll, waker, signals, completions_rx, completions, stop_requested: false, wakeups: 0 })
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
        shell.node.relay_gossip();
        if let Err(e) = shell.node.drain_bounded(now, DRAIN_BUDGET) {
            log::error!("{e}");
            return Exit::Critical(e.0);
        }
        shell.dispatch_requests(now);
        shell.flush_p2p(now);
        shell.service_notify(now);
        if shell.event_loop().stop_requested {
            return Exit::Stopped;
        }
        let timeout = if shell.node.pending() > 0 {
            Some(Duration::ZERO)
        } else {
            shell.poll_timeout().map(|(t, _)| t.saturating_duration_since(now.mono))
        };
        if let Err(e) = shell.event_loop().poll.poll(&mut events, timeout) {
            if e.kind() != ErrorKind::Interrupted {
                log::error!("poll failed: {e}");
                return Exit::Critical(format!("poll failed: {e}"));
            }
            continue;
        }
        shell.event_loop().wakeups += 1;
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
