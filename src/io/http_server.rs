//! The socket side of the RPC and metrics servers: a mio `TcpListener` and up to
//! `ServerLimits::max_conns` connections in a slab keyed by token (`base` is the listener,
//! `base + 1 + i` connection `i`). Each connection's bytes go through an `rpc::http::Conn`;
//! complete requests are answered by a `Service`, at once or, when it replies `Later(ticket)`,
//! through `complete(ticket, ..)` once a worker's result is in (the connection waits meanwhile;
//! its idle deadline still applies).
//!
//! Readiness is edge-triggered: reads continue until `WouldBlock` or until the connection stops
//! wanting input (backpressure), writes until `WouldBlock`, and `WRITABLE` interest is held only
//! while bytes are pending. Work per readiness is bounded (`PUMP_BUDGET`, `ACCEPT_BUDGET`); what
//! is left is continued by `service` on the next loop turn, which `poll_timeout` makes immediate.
//!
//! What a stranger can make a server hold (DESIGN.md, "Limits"):
//! - Connections: a new connection always gets in. When the server is full, or the new
//!   connection's address already holds `max_conns_per_ip`, the connection worth least by
//!   `Standing` is closed to make room: one lingering after its last answer, else the oldest idle
//!   keep-alive connection, else the one whose request (a new connection's first included) or
//!   unread answer has been pending longest, then one with complete requests queued; one whose
//!   answer is being computed only when nothing else can go.
//! - Bytes in: one budget (`buffer_budget`) for the request bytes all connections buffer. A
//!   connection is read only while its claim (what it holds once the request now arriving is
//!   complete) fits beside what the others buffer and the rest of older requests' declared
//!   bodies (oldest first), so older bodies are read whole rather than every body in part. One
//!   that does not fit is not read (its bytes stay in the kernel) and may close a connection
//!   whose request has been arriving for `SLOW_REQUEST` or longer.
//! - Bytes out: a client that does not read its answers is neither read nor served while
//!   `UNSENT_HIGH` bytes wait for it, and bytes the socket took are not kept.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Poll, Registry, Token};

use crate::rpc::http::{Conn, ConnState, Limits, Response};
use crate::rpc::{Listener, Reply, Service, Ticket};
use crate::time::Now;

/// Connections per server unless configured otherwise: 64.
pub const DEFAULT_MAX_CONNS: usize = 64;

/// Connections one address (an IPv4 address, or an IPv6 /64) may hold unless configured
/// otherwise: 32, half the server. Its next connection replaces its own least valuable one.
pub const DEFAULT_MAX_CONNS_PER_IP: usize = 32;

/// Request bytes all connections of one server may buffer together unless configured
/// otherwise: 16 MiB (three bodies of the largest size at once).
pub const DEFAULT_BUFFER_BUDGET: usize = 16 * 1024 * 1024;

/// The metrics server's buffer budget: 1 MiB (scrapes are bodiless GETs).
pub const METRICS_BUFFER_BUDGET: usize = 1024 * 1024;

/// The largest request body the metrics server takes: 64 KiB.
pub const METRICS_MAX_BODY: usize = 64 * 1024;

/// Unsent response bytes (64 KiB) past which a connection is neither read nor served: the
/// back-pressure on a client that does not read its answers.
pub const UNSENT_HIGH: usize = 64 * 1024;

/// A request still arriving this long (2 s) after its first byte may be closed to free budget
/// for a connection that waits for it.
pub const SLOW_REQUEST: Duration = Duration::from_secs(2);

/// New connections accepted per loop turn: 16, a quarter of the default server, so a connection
/// accepted in one burst is read before the next bursts could evict it.
const ACCEPT_BUDGET: usize = 16;

/// Bytes read per `read` call: 16 KiB.
const READ_CHUNK: usize = 16 * 1024;

/// Read/serve/write rounds per connection per loop turn: 4 (a round reads at most
/// `READ_CHUNK` and serves until `UNSENT_HIGH` waits), so that a turn over many busy
/// connections stays short and a new connection is accepted soon.
const PUMP_BUDGET: usize = 4;

/// Limits of one server: its connections and the bytes they buffer together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Open connections; a new one past it replaces the least valuable. Default
    /// `DEFAULT_MAX_CONNS` (64).
    pub max_conns: usize,
    /// Connections from one address; a new one past it replaces that address's least valuable.
    /// Default `DEFAULT_MAX_CONNS_PER_IP` (32).
    pub max_conns_per_ip: usize,
    /// Request bytes buffered across all connections; well above
    /// `conn.max_header_bytes + conn.max_body`, so that a request of the largest size always
    /// fits. Default `DEFAULT_BUFFER_BUDGET` (16 MiB).
    pub buffer_budget: usize,
    /// Each connection's limits.
    pub conn: Limits,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_conns: DEFAULT_MAX_CONNS,
            max_conns_per_ip: DEFAULT_MAX_CONNS_PER_IP,
            buffer_budget: DEFAULT_BUFFER_BUDGET,
            conn: Limits::default(),
        }
    }
}

impl ServerLimits {
    /// Returns the limits for a listener: the defaults, with small bodies and budget for the
    /// metrics endpoint.
    pub fn for_listener(kind: Listener) -> Self {
        match kind {
            Listener::Metrics => ServerLimits {
                buffer_budget: METRICS_BUFFER_BUDGET,
                conn: Limits { max_body: METRICS_MAX_BODY, ..Limits::default() },
                ..ServerLimits::default()
            },
            _ => ServerLimits::default(),
        }
    }
}

/// One HTTP listener and its connections.
pub struct HttpServer {
    listener: TcpListener,
    kind: Listener,
    registry: Registry,
    base: usize,
    conns: Vec<Option<Slot>>,
    limits: ServerLimits,
    addr: SocketAddr,
    scratch: Vec<u8>,
    /// Connections that ran out of budget, with the time they did (already due).
    backlog: Vec<(usize, Instant)>,
    /// The accept budget ran out at this time (already due): connections may wait.
    accept_due: Option<Instant>,
    /// Connections that want input the buffer budget cannot take now.
    starved: Vec<usize>,
    /// When a request holding budget becomes slow enough to be closed for a starved one.
    starved_due: Option<Instant>,
    /// Accept order of the next connection.
    next_seq: u64,
    /// The connection limit was logged and not left since (one warning per episode).
    at_limit: bool,
}

struct Slot {
    stream: TcpStream,
    http: Conn,
    wbuf: Vec<u8>,
    wpos: usize,
    writable: bool,
    shut_write: bool,
    /// The request being answered later.
    awaiting: Option<Ticket>,
    /// The peer's address, as counted against `max_conns_per_ip`.
    peer: IpAddr,
    /// Accept order: of two connections that stand alike, the older goes first.
    seq: u64,
}

enum Pumped {
    Idle,
    /// Nothing moves, and the connection wants input the budget cannot take.
    Starved,
    Budget,
    Dead,
}

impl HttpServer {
    /// Binds `addr` (port 0 picks a free port) and registers the listener as token `base`;
    /// connections take the tokens after it.
    pub fn bind(
        poll: &Poll,
        kind: Listener,
        addr: SocketAddr,
        base: usize,
        limits: ServerLimits,
    ) -> std::io::Result<Self> {
        let registry = poll.registry().try_clone()?;
        let mut listener = TcpListener::bind(addr)?;
        registry.register(&mut listener, Token(base), Interest::READABLE)?;
        let addr = listener.local_addr()?;
        Ok(HttpServer {
            listener,
            kind,
            registry,
            base,
            conns: (0..limits.max_conns).map(|_| None).collect(),
            limits,
            addr,
            scratch: vec![0; READ_CHUNK],
            backlog: Vec::new(),
            accept_due: None,
            starved: Vec::new(),
            starved_due: None,
            next_seq: 0,
            at_limit: false,
        })
    }

    /// Returns the bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns which listener this is.
    pub fn listener(&self) -> Listener {
        self.kind
    }

    /// Returns the number of open connections.
    pub fn connections(&self) -> usize {
        self.conns.iter().flatten().count()
    }

    /// Returns the request bytes buffered across connections (at most `buffer_budget`).
    pub fn buffered(&self) -> usize {
        self.conns.iter().flatten().map(|s| s.http.buffered()).sum()
    }

    /// Handles readiness of `token`; returns false when the token is not this server's.
    pub fn on_ready(&mut self, token: Token, now: Now, svc: &mut dyn Service) -> bool {
        if token.0 == self.base {
            self.accept(now, svc);
            return true;
        }
        match token.0.checked_sub(self.base + 1) {
            Some(i) if i < self.conns.len() => {
                self.pump(i, now, svc);
                true
            }
            _ => false,
        }
    }

    /// Answers the request waiting for `ticket` and continues its connection; false when no
    /// connection waits for it (it closed meanwhile).
    pub fn complete(&mut self, ticket: Ticket, resp: Response, now: Now, svc: &mut dyn Service) -> bool {
        let Some(i) = self.conns.iter().position(|s| s.as_ref().is_some_and(|s| s.awaiting == Some(ticket)))
        else {
            return false;
        };
        if let Some(Some(slot)) = self.conns.get_mut(i) {
            slot.awaiting = None;
            slot.http.handle_response(now.mono, resp);
        }
        self.pump(i, now, svc);
        true
    }

    /// Accepts connections left waiting, continues connections that used their budget, closes
    /// those past their deadline, and reads those that waited for buffer budget.
    pub fn service(&mut self, now: Now, svc: &mut dyn Service) {
        if self.accept_due.is_some() {
            self.accept(now, svc);
        }
        for (i, _) in std::mem::take(&mut self.backlog) {
            self.pump(i, now, svc);
        }
        for i in 0..self.conns.len() {
            let expired = self.conns[i].as_mut().is_some_and(|s| {
                s.http.handle_timeout(now.mono);
                s.http.state() == ConnState::Closed
            });
            if expired {
                self.drop_conn(i);
            }
        }
        self.starved_due = None;
        for i in std::mem::take(&mut self.starved) {
            self.pump(i, now, svc);
        }
    }

    /// Returns the earliest connection deadline (now, if work was left for the next turn).
    pub fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        let backlog = self.backlog.first().map(|(_, t)| (*t, "http-backlog"));
        let accept = self.accept_due.map(|t| (t, "http-accept"));
        let starved = self.starved_due.map(|t| (t, "http-budget"));
        self.conns
            .iter()
            .flatten()
            .filter_map(|s| s.http.poll_timeout())
            .chain(backlog)
            .chain(accept)
            .chain(starved)
            .min_by_key(|(t, _)| *t)
    }

    fn accept(&mut self, now: Now, svc: &mut dyn Service) {
        self.accept_due = None;
        for _ in 0..ACCEPT_BUDGET {
            match self.listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer, now, svc),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // E.g. out of descriptors: try again on the next connection attempt.
                    log::warn!("failed to accept HTTP connection: {e}");
                    return;
                }
            }
        }
        // More may wait in the kernel's queue: continue on the next loop turn.
        self.accept_due = Some(now.mono);
    }

    /// Gives a new connection a slot, closing the least valuable one if it must.
    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr, now: Now, svc: &mut dyn Service) {
        let ip = address_key(peer.ip());
        let same = self.conns.iter().flatten().filter(|s| s.peer == ip).count();
        if same >= self.limits.max_conns_per_ip {
            if let Some(v) = self.victim(|s| s.peer == ip) {
                log::debug!("HTTP connections from {ip} at their limit: closing one for {peer}");
                self.drop_conn(v);
            }
        }
        let i = match self.conns.iter().position(Option::is_none) {
            Some(i) => {
                self.at_limit = false;
                i
            }
            None => {
                let Some(v) = self.victim(|_| true) else {
                    log::debug!("closing HTTP connection from {peer}: no connections allowed");
                    return;
                };
                if !self.at_limit {
                    log::warn!(
                        "HTTP connection limit reached ({}): each new connection replaces an idle or slow one",
                        self.conns.len()
                    );
                    self.at_limit = true;
                }
                log::debug!("HTTP connection limit: closing one for {peer}");
                self.drop_conn(v);
                v
            }
        };
        let _ = stream.set_nodelay(true);
        let token = Token(self.base + 1 + i);
        if let Err(e) = self.registry.register(&mut stream, token, Interest::READABLE) {
            log::warn!("failed to register HTTP connection: {e}");
            return;
        }
        self.conns[i] = Some(Slot {
            stream,
            http: Conn::new(now.mono, self.limits.conn),
            wbuf: Vec::new(),
            wpos: 0,
            writable: false,
            shut_write: false,
            awaiting: None,
            peer: ip,
            seq: self.next_seq,
        });
        self.next_seq += 1;
        self.pump(i, now, svc);
    }

    /// The connection worth least among those `filter` picks (see `Standing`).
    fn victim(&self, filter: impl Fn(&Slot) -> bool) -> Option<usize> {
        self.conns
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().filter(|s| filter(s)).map(|s| (i, s)))
            .min_by_key(|(_, s)| {
                let (standing, since) = s.http.standing();
                (standing, since, s.seq)
            })
            .map(|(i, _)| i)
    }

    /// Request bytes that count against connection `i`'s reads: what every other connection
    /// buffers, plus the rest of each older request's declared body that fits the budget
    /// (oldest first), so that older bodies are read whole and younger ones wait for room.
    fn used_by_others(&self, i: usize) -> usize {
        let Some(Some(me)) = self.conns.get(i) else {
            return 0;
        };
        let mine = me.age();
        let mut used: usize = self.conns.iter().flatten().map(|s| s.http.buffered()).sum();
        let mut older: Vec<_> = self
            .conns
            .iter()
            .flatten()
            .filter(|s| s.age() < mine)
            .map(|s| (s.age(), s.http.claim() - s.http.buffered()))
            .filter(|(_, rest)| *rest > 0)
            .collect();
        crate::sort::sort(&mut older);
        for (_, rest) in older {
            if used + rest <= self.limits.buffer_budget {
                used += rest;
            }
        }
        used - me.http.buffered()
    }

    fn pump(&mut self, i: usize, now: Now, svc: &mut dyn Service) {
        loop {
            let allowance = self.limits.buffer_budget.saturating_sub(self.used_by_others(i));
            let token = Token(self.base + 1 + i);
            let Some(Some(slot)) = self.conns.get_mut(i) else {
                return;
            };
            match slot.pump(self.kind, now, &mut self.scratch, svc, allowance) {
                Pumped::Dead => self.drop_conn(i),
                Pumped::Budget => {
                    slot.update_interest(&self.registry, token);
                    if !self.backlog.iter().any(|(j, _)| *j == i) {
                        self.backlog.push((i, now.mono));
                    }
                }
                Pumped::Idle => slot.update_interest(&self.registry, token),
                Pumped::Starved => {
                    slot.update_interest(&self.registry, token);
                    if self.close_slow_request(i, now.mono) {
                        continue;
                    }
                    if !self.starved.contains(&i) {
                        self.starved.push(i);
                    }
                }
            }
            return;
        }
    }

    /// Closes the connection older than `i` whose request holding or claiming budget has been
    /// arriving longest, if that is `SLOW_REQUEST` or longer; otherwise notes when one will be.
    /// A younger request is left alone (a newer connection, or its deadline, ends it if it stalls).
    fn close_slow_request(&mut self, i: usize, now: Instant) -> bool {
        let Some(Some(me)) = self.conns.get(i) else {
            return false;
        };
        let mine = me.age();
        let holders = self.conns.iter().enumerate().filter_map(|(j, s)| {
            let s = s
                .as_ref()
                .filter(|s| j != i && s.age() < mine && s.awaiting.is_none() && s.http.claim() > 0)?;
            Some((j, s.http.partial_since()?))
        });
        let Some((j, since)) = holders.min_by_key(|(_, since)| *since) else {
            return false;
        };
        let slow_at = since + SLOW_REQUEST;
        if slow_at > now {
            self.starved_due = Some(self.starved_due.map_or(slow_at, |t| t.min(slow_at)));
            return false;
        }
        log::debug!("closing a slow HTTP request to free buffer budget");
        self.drop_conn(j);
        true
    }

    fn drop_conn(&mut self, i: usize) {
        if let Some(mut slot) = self.conns.get_mut(i).and_then(Option::take) {
            let _ = self.registry.deregister(&mut slot.stream);
        }
        self.backlog.retain(|(j, _)| *j != i);
        self.starved.retain(|j| *j != i);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.registry.deregister(&mut self.listener);
        for i in 0..self.conns.len() {
            self.drop_conn(i);
        }
    }
}

/// The address a connection counts against: an IPv4 address (IPv4-mapped included), or the
/// /64 of an IPv6 address (what one host usually gets).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Slot {
    /// Response bytes handed to this slot and not yet taken by the socket.
    fn unsent(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// When the request now arriving started (none: younger than any), then accept order.
    fn age(&self) -> (bool, Option<Instant>, u64) {
        let since = self.http.partial_since();
        (since.is_none(), since, self.seq)
    }

    /// Reads, serves and writes until nothing moves, the budget is spent or the socket fails;
    /// reads only while the connection's buffered request bytes stay within `allowance`.
    fn pump(
        &mut self,
        kind: Listener,
        now: Now,
        scratch: &mut [u8],
        svc: &mut dyn Service,
        allowance: usize,
    ) -> Pumped {
        for _ in 0..PUMP_BUDGET {
            let mut progress = false;
            let mut starved = false;
            while self.http.wants_input() && self.unsent() < UNSENT_HIGH {
                // A draining connection's input is discarded; an open one may fill what its
                // claim leaves of the allowance, plus what it already claimed.
                let room = match self.http.state() {
                    ConnState::Open if self.http.claim() > allowance => 0,
                    ConnState::Open => allowance - self.http.buffered(),
                    _ => scratch.len(),
                };
                let Some(buf) = scratch.get_mut(..room.min(READ_CHUNK)).filter(|b| !b.is_empty()) else {
                    starved = true;
                    break;
                };
                match self.stream.read(buf) {
                    Ok(0) => {
                        self.http.handle_eof(now.mono);
                        progress = true;
                        break;
                    }
                    Ok(n) => {
                        self.http.handle_input(now.mono, buf.get(..n).unwrap_or(&[]));
                        progress = true;
                        // One chunk per round keeps a fast sender from monopolising the loop.
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Pumped::Dead,
                }
            }
            // Bytes the socket took are dropped before more are added, or once they are half
            // the buffer (a large answer draining).
            if self.wpos > 0 && (self.unsent() < UNSENT_HIGH || self.wpos >= self.wbuf.len() / 2) {
                self.wbuf.drain(..self.wpos);
                self.wpos = 0;
            }
            while self.awaiting.is_none() && self.unsent() < UNSENT_HIGH {
                let Some(req) = self.http.poll_request() else {
                    break;
                };
                match svc.serve(kind, &req, now) {
                    Reply::Now(resp) => self.http.handle_response(now.mono, resp),
                    Reply::Later(ticket) => self.awaiting = Some(ticket),
                }
                self.http.poll_transmit(&mut self.wbuf);
                progress = true;
            }
            self.http.poll_transmit(&mut self.wbuf);
            let mut sent = 0;
            while self.wpos < self.wbuf.len() {
                match self.stream.write(self.wbuf.get(self.wpos..).unwrap_or(&[])) {
                    Ok(0) => return Pumped::Dead,
                    Ok(n) => {
                        self.wpos += n;
                        sent += n;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Pumped::Dead,
                }
            }
            if self.wpos == self.wbuf.len() {
                self.wbuf.clear();
                self.wpos = 0;
                if self.wbuf.capacity() > UNSENT_HIGH {
                    self.wbuf = Vec::new();
                }
            }
            progress |= sent > 0;
            self.http.handle_sent(now.mono, sent, self.wbuf.is_empty());
            match self.http.state() {
                ConnState::Closed => return Pumped::Dead,
                ConnState::Draining if !self.shut_write => {
                    let _ = self.stream.shutdown(Shutdown::Write);
                    self.shut_write = true;
                    progress = true;
                }
                _ => {}
            }
            if !progress {
                return if starved { Pumped::Starved } else { Pumped::Idle };
            }
        }
        Pumped::Budget
    }

    fn update_interest(&mut self, registry: &Registry, token: Token) {
        let want = !self.wbuf.is_empty();
        if want == self.writable {
            return;
        }
        let interest = if want { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        if registry.reregister(&mut self.stream, token, interest).is_ok() {
            self.writable = want;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::{Request, Response};
    use mio::Events;
    use std::net::TcpStream as StdStream;
    use std::time::Duration;

    thread_local! {
        /// Requests `Sized` answered on this test's thread.
        static SERVED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Answers every request with a body of the size named by its path (`/1000`).
    struct Sized;

    impl Service for Sized {
        fn serve(&mut self, _: Listener, req: &Request, _: Now) -> Reply {
            SERVED.set(SERVED.get() + 1);
            if let Some(t) = req.path().strip_prefix("/later/") {
                return Reply::Later(t.parse().unwrap_or(0));
            }
            let n: usize = req.path().trim_start_matches('/').parse().unwrap_or(0);
            Reply::Now(Response::new(200, "text/plain", vec![b'x'; n]))
        }
    }

    fn server(poll: &Poll, max_conns: usize) -> HttpServer {
        let addr = "127.0.0.1:0".parse().unwrap();
        HttpServer::bind(
            poll,
            Listener::Rpc,
            addr,
            1000,
            ServerLimits { max_conns, ..ServerLimits::default() },
        )
        .unwrap()
    }

    /// Runs the loop until `done` holds or two seconds pass.
    fn run(poll: &mut Poll, srv: &mut HttpServer, done: impl FnMut(&HttpServer) -> bool) {
        run_for(poll, srv, Duration::from_secs(2), done);
    }

    /// Runs the loop until `done` holds or `limit` passes; returns whether `done` held.
    fn run_for(
        poll: &mut Poll,
        srv: &mut HttpServer,
        limit: Duration,
        mut done: impl FnMut(&HttpServer) -> bool,
    ) -> bool {
        let mut events = Events::with_capacity(256);
        let end = Instant::now() + limit;
        while !done(srv) {
            if Instant::now() >= end {
                return false;
            }
            turn(poll, srv, &mut events);
        }
        true
    }

    /// Runs the loop for 20 ms.
    fn settle(poll: &mut Poll, srv: &mut HttpServer) {
        run_for(poll, srv, Duration::from_millis(20), |_| false);
    }

    /// One loop turn: waits for readiness (10 ms at most), handles it, then services.
    fn turn(poll: &mut Poll, srv: &mut HttpServer, events: &mut Events) {
        let now = Instant::now();
        let wait = srv.poll_timeout().map_or(Duration::from_millis(10), |(t, _)| {
            t.saturating_duration_since(now).min(Duration::from_millis(10))
        });
        poll.poll(events, Some(wait)).unwrap();
        let now = crate::io::clock::now();
        for ev in events.iter() {
            assert!(srv.on_ready(ev.token(), now, &mut Sized));
        }
        srv.service(now, &mut Sized);
    }

    /// Tells whether the server closed `s` (end of input or a reset), waiting up to `wait`.
    fn closed(s: &mut StdStream, wait: Duration) -> bool {
        s.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 256];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) => return !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            }
        }
    }

    /// Sends a request on a new connection and returns the response, running the loop
    /// meanwhile; fails unless it comes within a second.
    fn request_within_a_second(poll: &mut Poll, srv: &mut HttpServer, req: &'static [u8], body_len: usize) {
        let addr = srv.local_addr();
        let t0 = Instant::now();
        let client = std::thread::spawn(move || {
            let mut s = StdStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(req).unwrap();
            read_response(&mut s, body_len)
        });
        assert!(run_for(poll, srv, Duration::from_secs(5), |_| client.is_finished()));
        let got = client.join().unwrap();
        let took = t0.elapsed();
        assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"), "{}", String::from_utf8_lossy(&got));
        assert!(took < Duration::from_secs(1), "answered after {took:?}");
    }

    /// Reads one response whose body has `body_len` bytes.
    fn read_response(s: &mut StdStream, body_len: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let head = got.windows(4).position(|w| w == b"\r\n\r\n");
            if head.is_some_and(|h| got.len() >= h + 4 + body_len) {
                return got;
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn a_full_server_evicts_idle_keep_alive_then_the_slowest() {
        let mut poll = Poll::new().unwrap();
        let mut srv = server(&poll, 2);
        assert!(!srv.on_ready(Token(5), crate::io::clock::now(), &mut Sized));
        // The oldest: a request head that never ends.
        let mut slow = StdStream::connect(srv.local_addr()).unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        run(&mut poll, &mut srv, |s| {
            s.connections() == 1 && s.conns.iter().flatten().all(|c| c.http.buffered() > 0)
        });
        // Then a keep-alive connection, answered and idle.
        let mut idle = StdStream::connect(srv.local_addr()).unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        idle.write_all(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let reader = std::thread::spawn(move || {
            let got = read_response(&mut idle, 1);
            (idle, got)
        });
        run(&mut poll, &mut srv, |_| reader.is_finished());
        let (mut idle, got) = reader.join().unwrap();
        assert!(got.ends_with(b"\r\n\r\nx"));
        // Full: a new connection takes the idle one's place, though the slow one is older.
        let mut c = StdStream::connect(srv.local_addr()).unwrap();
        run(&mut poll, &mut srv, |s| s.at_limit);
        assert!(closed(&mut idle, Duration::from_secs(2)), "the idle connection was not evicted");
        assert_eq!(srv.connections(), 2);
        // The next takes the slowest's place.
        let _d = StdStream::connect(srv.local_addr()).unwrap();
        run(&mut poll, &mut srv, |s| s.next_seq == 4);
        assert!(closed(&mut slow, Duration::from_secs(2)), "the slow connection was not evicted");
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        c.write_all(b"GET /3 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let reader = std::thread::spawn(move || read_response(&mut c, 3));
        run(&mut poll, &mut srv, |_| reader.is_finished());
        assert!(reader.join().unwrap().ends_with(b"\r\n\r\nxxx"));
    }

    #[test]
    fn idle_connections_cannot_lock_out_a_new_request() {
        let mut poll = Poll::new().unwrap();
        let addr = "127.0.0.1:0".parse().unwrap();
        let mut srv = HttpServer::bind(&poll, Listener::Rpc, addr, 1000, ServerLimits::default()).unwrap();
        // A request whose answer is computed elsewhere: kept while idle ones can go.
        let mut waiting = StdStream::connect(srv.local_addr()).unwrap();
        waiting.write_all(b"GET /later/7 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        run(&mut poll, &mut srv, |s| s.conns.iter().flatten().any(|slot| slot.awaiting == Some(7)));
        // Ten times the server's connections, all idle, all from the honest client's address.
        let mut idle: Vec<StdStream> = Vec::new();
        for _ in 0..10 * DEFAULT_MAX_CONNS {
            idle.push(StdStream::connect(srv.local_addr()).unwrap());
            if idle.len() % 64 == 0 {
                settle(&mut poll, &mut srv);
            }
        }
        run(&mut poll, &mut srv, |s| s.accept_due.is_none() && s.connections() >= DEFAULT_MAX_CONNS_PER_IP);
        assert!(srv.connections() <= DEFAULT_MAX_CONNS_PER_IP, "{} connections", srv.connections());
        request_within_a_second(&mut poll, &mut srv, b"GET /5 HTTP/1.1\r\nHost: t\r\n\r\n", 5);
        // The oldest idle ones went first; the waiting request was kept.
        assert!(closed(&mut idle[0], Duration::from_secs(2)));
        let now = crate::io::clock::now();
        assert!(srv.complete(7, Response::new(200, "text/plain", b"late".to_vec()), now, &mut Sized));
        let reader = std::thread::spawn(move || read_response(&mut waiting, 4));
        run(&mut poll, &mut srv, |_| reader.is_finished());
        assert!(reader.join().unwrap().ends_with(b"late"));
    }

    #[test]
    fn slowloris_connections_cannot_lock_out_a_new_request() {
        let mut poll = Poll::new().unwrap();
        let mut srv = server(&poll, DEFAULT_MAX_CONNS);
        let mut slow: Vec<StdStream> = Vec::new();
        for i in 0..5 * DEFAULT_MAX_CONNS {
            let mut s = StdStream::connect(srv.local_addr()).unwrap();
            // Heads that never end, at different stages.
            let head: &[u8] =
                if i % 2 == 0 { b"POST / HTTP/1.1\r\nHo" } else { b"GET / HTTP/1.1\r\nHost: t\r\nX: y" };
            s.write_all(head).unwrap();
            slow.push(s);
            if slow.len() % 64 == 0 {
                settle(&mut poll, &mut srv);
            }
        }
        run(&mut poll, &mut srv, |s| s.accept_due.is_none());
        // They keep trickling bytes.
        for s in &mut slow {
            let _ = s.write_all(b"z");
        }
        run_for(&mut poll, &mut srv, Duration::from_millis(100), |_| false);
        assert!(srv.conns.iter().flatten().all(|s| s.http.partial_since().is_some()));
        request_within_a_second(&mut poll, &mut srv, b"GET /5 HTTP/1.1\r\nHost: t\r\n\r\n", 5);
        // The slowest went first.
        assert!(closed(&mut slow[0], Duration::from_secs(2)));
    }

    #[test]
    fn the_buffer_budget_holds_with_many_partial_large_bodies() {
        const ATTACKERS: usize = 40;
        let mut poll = Poll::new().unwrap();
        let mut srv = server(&poll, DEFAULT_MAX_CONNS);
        let max_body = Limits::default().max_body;
        let head = format!("POST /1 HTTP/1.1\r\nHost: t\r\nContent-Length: {max_body}\r\n\r\n");
        // Each sends a head and all its body but the last byte, as fast as it is read.
        let mut attackers: Vec<(StdStream, Vec<u8>, usize)> = (0..ATTACKERS)
            .map(|_| {
                let s = StdStream::connect(srv.local_addr()).unwrap();
                s.set_nonblocking(true).unwrap();
                let mut bytes = head.clone().into_bytes();
                bytes.resize(bytes.len() + max_body - 1, b'x');
                (s, bytes, 0)
            })
            .collect();
        let mut events = Events::with_capacity(256);
        let mut peak = 0;
        let end = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < end {
            for (s, bytes, at) in &mut attackers {
                while *at < bytes.len() {
                    match s.write(&bytes[*at..]) {
                        Ok(n) => *at += n,
                        Err(_) => break,
                    }
                }
            }
            turn(&mut poll, &mut srv, &mut events);
            peak = peak.max(srv.buffered());
        }
        let budget = DEFAULT_BUFFER_BUDGET;
        eprintln!("{ATTACKERS} partial {max_body}-byte bodies: peak buffered {peak} bytes (budget {budget})");
        assert!(peak <= budget, "{peak} > {budget}");
        assert!(peak > budget / 2, "the attack did not reach the budget: {peak}");
        // An honest body of the largest size still gets through (closing slow ones for room).
        let addr = srv.local_addr();
        let honest = std::thread::spawn(move || {
            let mut s = StdStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut req =
                format!("POST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: {max_body}\r\n\r\n").into_bytes();
            req.resize(req.len() + max_body, b'y');
            s.write_all(&req).unwrap();
            read_response(&mut s, 2)
        });
        let t0 = Instant::now();
        while !honest.is_finished() && t0.elapsed() < Duration::from_secs(8) {
            turn(&mut poll, &mut srv, &mut events);
            peak = peak.max(srv.buffered());
        }
        let got = honest.join().unwrap();
        assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"), "{}", String::from_utf8_lossy(&got));
        assert!(peak <= budget, "{peak} > {budget}");
        eprintln!("honest {max_body}-byte body answered after {:?}", t0.elapsed());
    }

    #[test]
    fn bodies_declared_and_never_sent_give_way_to_a_waiting_one() {
        let mut poll = Poll::new().unwrap();
        let mut srv = server(&poll, DEFAULT_MAX_CONNS);
        let max_body = Limits::default().max_body;
        let head = format!("POST /1 HTTP/1.1\r\nHost: t\r\nContent-Length: {max_body}\r\n\r\n");
        // Four heads claim 20 MiB of the 16 MiB budget and send nothing more.
        let _claims: Vec<StdStream> = (0..4)
            .map(|_| {
                let mut s = StdStream::connect(srv.local_addr()).unwrap();
                s.write_all(head.as_bytes()).unwrap();
                s
            })
            .collect();
        run(&mut poll, &mut srv, |s| s.conns.iter().flatten().filter(|c| c.http.claim() > 0).count() == 4);
        let addr = srv.local_addr();
        let t0 = Instant::now();
        let honest = std::thread::spawn(move || {
            let mut s = StdStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut req =
                format!("POST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: {max_body}\r\n\r\n").into_bytes();
            req.resize(req.len() + max_body, b'y');
            s.write_all(&req).unwrap();
            read_response(&mut s, 2)
        });
        let mut peak = 0;
        let mut events = Events::with_capacity(64);
        while !honest.is_finished() && t0.elapsed() < Duration::from_secs(8) {
            turn(&mut poll, &mut srv, &mut events);
            peak = peak.max(srv.buffered());
        }
        let got = honest.join().unwrap();
        assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"), "{}", String::from_utf8_lossy(&got));
        // Once the claims were slow (2 s), not at their 10 s request deadline.
        let took = t0.elapsed();
        assert!(took < SLOW_REQUEST + Duration::from_secs(2), "answered after {took:?}");
        assert!(peak <= DEFAULT_BUFFER_BUDGET);
    }

    #[test]
    fn a_client_that_does_not_read_its_answers_stops_being_read() {
        const REQUESTS: usize = 10_000;
        const BODY: usize = 4000;
        let mut poll = Poll::new().unwrap();
        let mut srv = server(&poll, 4);
        let mut c = StdStream::connect(srv.local_addr()).unwrap();
        let mut reader = c.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            let one = format!("GET /{BODY} HTTP/1.1\r\nHost: t\r\n\r\n");
            // Blocks once the server stops reading.
            c.write_all(one.repeat(REQUESTS).as_bytes()).unwrap();
        });
        // Long enough to fill the kernel's buffers both ways; the client reads nothing.
        let mut events = Events::with_capacity(64);
        let (mut held, mut buffered, mut served) = (0, 0, Vec::new());
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(900) {
            turn(&mut poll, &mut srv, &mut events);
            for slot in srv.conns.iter().flatten() {
                held = held.max(slot.wbuf.len());
                buffered = buffered.max(slot.http.buffered());
            }
            served.push((start.elapsed(), SERVED.get()));
        }
        let at =
            |ms: u64| served.iter().rev().find(|(t, _)| *t <= Duration::from_millis(ms)).map_or(0, |s| s.1);
        eprintln!(
            "a client not reading: {} of {REQUESTS} answered, at most {held} response bytes held, {buffered} request bytes",
            at(900)
        );
        assert!(at(900) < REQUESTS / 2, "the server kept reading: {} answered", at(900));
        assert_eq!(at(500), at(900), "the server kept reading");
        // One answer past the mark may be held.
        assert!(held <= UNSENT_HIGH + BODY + 100, "{held} response bytes held");
        assert!(buffered <= READ_CHUNK, "{buffered} request bytes");
        // Once the client reads, every answer arrives.
        let counter = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0usize;
            let want = REQUESTS
                * (BODY
                    + "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4000\r\n\r\n".len());
            reader.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            while total < want {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
            total == want
        });
        assert!(run_for(&mut poll, &mut srv, Duration::from_secs(20), |_| counter.is_finished()));
        assert!(counter.join().unwrap(), "not every answer arrived");
        writer.join().unwrap();
    }

    #[test]
    fn later_answers_keep_request_order() {
        let mut poll = Poll::new().unwrap();
        let mut srv = server(&poll, 4);
        let mut c = StdStream::connect(srv.local_addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Pipelined: a request answered later, then one answered at once.
        c.write_all(b"GET /later/7 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        run(&mut poll, &mut srv, |s| s.conns.iter().flatten().any(|slot| slot.awaiting == Some(7)));
        let now = crate::io::clock::now();
        assert!(!srv.complete(8, Response::new(200, "text/plain", b"no".to_vec()), now, &mut Sized));
        assert!(srv.complete(7, Response::new(200, "text/plain", b"late".to_vec()), now, &mut Sized));
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.ends_with(b"\r\n\r\nxx") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            got
        });
        run(&mut poll, &mut srv, |_| reader.is_finished());
        let got = String::from_utf8(reader.join().unwrap()).unwrap();
        let late = got.find("late").unwrap();
        let xx = got.rfind("xx").unwrap();
        assert!(late < xx, "{got}");
    }

    #[test]
    fn large_responses_wait_for_a_slow_reader() {
        let mut poll = Poll::new().unwrap();
        let mut srv = server(&poll, 4);
        let mut c = StdStream::connect(srv.local_addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = 8 * 1024 * 1024;
        c.write_all(format!("GET /{n} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).unwrap();
        // The client does not read: the kernel buffers fill and the server waits for WRITABLE.
        run(&mut poll, &mut srv, |s| s.conns.iter().flatten().any(|slot| slot.writable));
        let reader = std::thread::spawn(move || read_response(&mut c, n));
        run(&mut poll, &mut srv, |_| reader.is_finished());
        let got = reader.join().unwrap();
        assert_eq!(got.len() - got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() - 4, n);
    }
}
