//! The driver loop: one `mio::Poll` replaces op-node's `select`. Each turn fires due timers,
//! drains events (bounded), hands requests to workers, then sleeps in `poll` until the earliest
//! deadline, a socket, a worker result (via the `Waker`) or a signal.

use std::io::ErrorKind;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Poll, Token, Waker};

use super::clock;
use super::http_server::HttpServer;
use super::signals::{SignalAction, SignalWatch};
use super::workers::Completions;
use crate::event::Event;
use crate::node::Node;

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

/// The loop's I/O resources.
pub struct Shell {
    pub poll: Poll,
    pub waker: Arc<Waker>,
    signals: Option<SignalWatch>,
    completions_rx: Receiver<Event>,
    completions: Completions<Event>,
    stop_requested: bool,
    /// The RPC and metrics servers that are running.
    pub http: Vec<HttpServer>,
    /// systemd notifications, when run as a `Type=notify` service.
    pub notify: Option<super::sd_notify::SdNotify>,
    /// Number of times `poll` returned; the idle wake-up rate is measured from this.
    pub wakeups: u64,
}

impl Shell {
    /// Creates the poll, its waker and (when `watch_signals`) the SIGINT/SIGTERM source.
    pub fn new(watch_signals: bool) -> std::io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let signals =
            if watch_signals { Some(SignalWatch::register(poll.registry(), SIGNALS)?) } else { None };
        let (completions, completions_rx) = Completions::new(waker.clone());
        Ok(Shell {
            poll,
            waker,
            signals,
            completions_rx,
            completions,
            stop_requested: false,
            http: Vec::new(),
            notify: super::sd_notify::SdNotify::from_env(),
            wakeups: 0,
        })
    }

    /// The channel that worker threads send their results (as events) through.
    pub fn completions(&self) -> Completions<Event> {
        self.completions.clone()
    }

    /// Asks the loop to stop gracefully at its next turn (e.g. from a test thread via the
    /// waker, or after `--blocks N`).
    pub fn request_stop(&mut self) {
        self.stop_requested = true;
    }

    pub fn stop_requested(&self) -> bool {
        self.stop_requested
    }
}

/// Runs the node until a stop, a second signal or a critical error.
pub fn run(node: &mut Node) -> Exit {
    let mut events = Events::with_capacity(256);
    loop {
        let now = clock::now();
        node.system.handle_timeout(now);
        node.service_http(now);
        node.service_p2p(now);
        if let Err(e) = node.system.drain_bounded(now, DRAIN_BUDGET) {
            log::error!("{e}");
            return Exit::Critical(e.0);
        }
        node.dispatch_requests();
        node.service_notify(now);
        if node.shell.stop_requested {
            return Exit::Stopped;
        }
        let timeout = if node.system.pending() > 0 {
            Some(Duration::ZERO)
        } else {
            let http = node.shell.http.iter().filter_map(|s| s.poll_timeout());
            let watchdog =
                node.shell.notify.as_ref().and_then(|n| n.watchdog_deadline()).map(|t| (t, "watchdog"));
            node.system
                .poll_timeout()
                .into_iter()
                .chain(node.p2p_timeout())
                .chain(http)
                .chain(watchdog)
                .min_by_key(|(t, _)| *t)
                .map(|(t, _)| t.saturating_duration_since(now.mono))
        };
        if let Err(e) = node.shell.poll.poll(&mut events, timeout) {
            if e.kind() != ErrorKind::Interrupted {
                log::error!("poll failed: {e}");
                return Exit::Critical(format!("poll failed: {e}"));
            }
            continue;
        }
        node.shell.wakeups += 1;
        for ev in events.iter() {
            match ev.token() {
                WAKER => {
                    while let Ok(ev) = node.shell.completions_rx.try_recv() {
                        // A stop from another thread (an embedded node's owner).
                        if matches!(ev, Event::ShutdownRequested) {
                            node.shell.stop_requested = true;
                        }
                        node.system.emit(ev);
                    }
                }
                SIGNALS => {
                    let action = node.shell.signals.as_mut().map_or(SignalAction::None, |s| s.on_readable());
                    match action {
                        SignalAction::None => {}
                        SignalAction::GracefulStop => {
                            node.shell.stop_requested = true;
                            node.system.emit(Event::ShutdownRequested);
                        }
                        SignalAction::ExitNow => return Exit::Immediate,
                    }
                }
                token => node.on_socket_ready(token, ev),
            }
        }
    }
}
