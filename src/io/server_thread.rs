//! HTTP servers on a thread of their own, with their own `mio` loop, for a service that also
//! keeps time: each turn the service moves to the current time (`TimedService::tick`) and says
//! when it next needs a turn; the loop sleeps until then or until a socket is ready. The devnet
//! serves its simulated L1 and engines this way beside the node under test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use mio::{Events, Poll, Token, Waker};

use super::clock;
use super::http_server::{HttpServer, ServerLimits};
use crate::rpc::{Listener, Service};
use crate::time::Now;

const WAKE: Token = Token(0);
/// Tokens per server: its listener and its connections (more than `ServerLimits::max_conns`).
const TOKENS_PER_SERVER: usize = 200;

/// A service that keeps time.
pub trait TimedService: Service {
    /// Moves the service to `now`; returns when it next needs a turn, or why it must stop.
    fn tick(&mut self, now: Now) -> Result<Instant, String>;
}

/// Running servers; they stop when this is dropped.
pub struct ServerThread {
    /// The bound addresses, in the order the listeners were given.
    pub addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Binds `listeners` and serves them on a thread named `name` with the service `make`
    /// builds there (given the time the thread starts; an error ends the thread).
    pub fn spawn<S, F>(
        name: &str,
        listeners: &[(Listener, SocketAddr)],
        make: F,
    ) -> std::io::Result<ServerThread>
    where
        S: TimedService,
        F: FnOnce(Now) -> Result<S, String> + Send + 'static,
    {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let mut servers = Vec::with_capacity(listeners.len());
        for (i, (kind, addr)) in listeners.iter().enumerate() {
            let base = TOKENS_PER_SERVER * (i + 1);
            servers.push(HttpServer::bind(&poll, *kind, *addr, base, ServerLimits::for_listener(*kind))?);
        }
        let addrs = servers.iter().map(HttpServer::local_addr).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let label = name.to_string();
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || {
            let svc = match make(clock::now()) {
                Ok(s) => s,
                Err(e) => {
                    log::error!("{label}: {e}");
                    return;
                }
            };
            serve(poll, servers, svc, &stop2, &label);
        })?;
        Ok(ServerThread { addrs, stop, waker, thread: Some(thread) })
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve<S: TimedService>(
    mut poll: Poll,
    mut servers: Vec<HttpServer>,
    mut svc: S,
    stop: &AtomicBool,
    name: &str,
) {
    let mut events = Events::with_capacity(64);
    while !stop.load(Ordering::Relaxed) {
        let now = clock::now();
        let due = match svc.tick(now) {
            Ok(t) => t,
            Err(e) => {
                log::error!("{name} stopped: {e}");
                return;
            }
        };
        let deadline =
            servers.iter().filter_map(|s| s.poll_timeout().map(|t| t.0)).chain([due]).min().unwrap_or(due);
        if let Err(e) = poll.poll(&mut events, Some(deadline.saturating_duration_since(now.mono))) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                log::error!("{name} poll failed: {e}");
                return;
            }
        }
        let now = clock::now();
        for ev in events.iter() {
            let t = ev.token();
            if t != WAKE && !servers.iter_mut().any(|s| s.on_ready(t, now, &mut svc)) {
                log::debug!("{name}: readiness for unknown token {}", t.0);
            }
        }
        for s in &mut servers {
            s.service(now, &mut svc);
        }
    }
}
