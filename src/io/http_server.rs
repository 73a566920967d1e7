//! The socket side of the RPC and metrics servers: a mio `TcpListener` and up to `max_conns`
//! connections in a slab keyed by token (`base` is the listener, `base + 1 + i` connection `i`).
//! Each connection's bytes go through an `rpc::http::Conn`; complete requests are answered by a
//! `Service`, at once or, when it replies `Later(ticket)`, through `complete(ticket, ..)` once a
//! worker's result is in (the connection waits meanwhile; its idle deadline still applies).
//!
//! Readiness is edge-triggered: reads continue until `WouldBlock` or until the connection stops
//! wanting input (backpressure), writes until `WouldBlock`, and `WRITABLE` interest is held only
//! while bytes are pending. Work per readiness is bounded (`PUMP_BUDGET`); a connection that used
//! its budget is continued by `service` on the next loop turn, which `poll_timeout` makes
//! immediate. Past `max_conns`, new connections are accepted and closed at once.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Poll, Registry, Token};

use crate::rpc::http::{Conn, ConnState, Limits, Response};
use crate::rpc::{Listener, Reply, Service, Ticket};
use crate::time::Now;

/// Connections per server unless configured otherwise.
pub const DEFAULT_MAX_CONNS: usize = 64;

/// Bytes read per `read` call.
const READ_CHUNK: usize = 16 * 1024;

/// Unwritten response bytes past which pipelined requests wait for the client to read.
const WRITE_HIGH: usize = 256 * 1024;

/// Read/serve/write rounds per connection per loop turn.
const PUMP_BUDGET: usize = 16;

/// One HTTP listener and its connections.
pub struct HttpServer {
    listener: TcpListener,
    kind: Listener,
    registry: Registry,
    base: usize,
    conns: Vec<Option<Slot>>,
    limits: Limits,
    addr: SocketAddr,
    scratch: Vec<u8>,
    /// Connections that ran out of budget, with the time they did (already due).
    backlog: Vec<(usize, Instant)>,
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
}

enum Pumped {
    Idle,
    Budget,
    Dead,
}

impl HttpServer {
    /// Binds `addr` (port 0 picks a free port) and registers the listener as token `base`.
    pub fn bind(
        poll: &Poll,
        kind: Listener,
        addr: SocketAddr,
        base: usize,
        max_conns: usize,
        limits: Limits,
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
            conns: (0..max_conns).map(|_| None).collect(),
            limits,
            addr,
            scratch: vec![0; READ_CHUNK],
            backlog: Vec::new(),
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

    /// Continues connections that used their budget and closes those past their deadline.
    pub fn service(&mut self, now: Now, svc: &mut dyn Service) {
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
    }

    /// Returns the earliest connection deadline (now, if a connection waits in the backlog).
    pub fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        let backlog = self.backlog.first().map(|(_, t)| (*t, "http-backlog"));
        self.conns
            .iter()
            .flatten()
            .filter_map(|s| s.http.poll_timeout())
            .chain(backlog)
            .min_by_key(|(t, _)| *t)
    }

    fn accept(&mut self, now: Now, svc: &mut dyn Service) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, peer)) => {
                    let Some(i) = self.conns.iter().position(Option::is_none) else {
                        if !self.at_limit {
                            log::warn!(
                                "HTTP connection limit reached ({}), closing new connections",
                                self.conns.len()
                            );
                            self.at_limit = true;
                        }
                        log::debug!("closing HTTP connection from {peer}: at the limit");
                        continue;
                    };
                    self.at_limit = false;
                    let _ = stream.set_nodelay(true);
                    let token = Token(self.base + 1 + i);
                    if let Err(e) = self.registry.register(&mut stream, token, Interest::READABLE) {
                        log::warn!("failed to register HTTP connection: {e}");
                        continue;
                    }
                    self.conns[i] = Some(Slot {
                        stream,
                        http: Conn::new(now.mono, self.limits),
                        wbuf: Vec::new(),
                        wpos: 0,
                        writable: false,
                        shut_write: false,
                        awaiting: None,
                    });
                    self.pump(i, now, svc);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // E.g. out of descriptors: try again on the next connection attempt.
                    log::warn!("failed to accept HTTP connection: {e}");
                    return;
                }
            }
        }
    }

    fn pump(&mut self, i: usize, now: Now, svc: &mut dyn Service) {
        let Some(Some(slot)) = self.conns.get_mut(i) else {
            return;
        };
        match slot.pump(self.kind, now, &mut self.scratch, svc) {
            Pumped::Dead => self.drop_conn(i),
            Pumped::Budget => {
                slot.update_interest(&self.registry, Token(self.base + 1 + i));
                if !self.backlog.iter().any(|(j, _)| *j == i) {
                    self.backlog.push((i, now.mono));
                }
            }
            Pumped::Idle => slot.update_interest(&self.registry, Token(self.base + 1 + i)),
        }
    }

    fn drop_conn(&mut self, i: usize) {
        if let Some(mut slot) = self.conns.get_mut(i).and_then(Option::take) {
            let _ = self.registry.deregister(&mut slot.stream);
        }
        self.backlog.retain(|(j, _)| *j != i);
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

impl Slot {
    /// Reads, serves and writes until nothing moves, the budget is spent or the socket fails.
    fn pump(&mut self, kind: Listener, now: Now, scratch: &mut [u8], svc: &mut dyn Service) -> Pumped {
        for _ in 0..PUMP_BUDGET {
            let mut progress = false;
            while self.http.wants_input() {
                match self.stream.read(scratch) {
                    Ok(0) => {
                        self.http.handle_eof(now.mono);
                        progress = true;
                        break;
                    }
                    Ok(n) => {
                        self.http.handle_input(now.mono, scratch.get(..n).unwrap_or(&[]));
                        progress = true;
                        // One chunk per round keeps a fast sender from monopolising the loop.
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Pumped::Dead,
                }
            }
            while self.awaiting.is_none() && self.wbuf.len() - self.wpos < WRITE_HIGH {
                let Some(req) = self.http.poll_request() else {
                    break;
                };
                match svc.serve(kind, &req, now) {
                    Reply::Now(resp) => self.http.handle_response(now.mono, resp),
                    Reply::Later(ticket) => self.awaiting = Some(ticket),
                }
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
                if self.wbuf.capacity() > WRITE_HIGH {
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
                return Pumped::Idle;
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

    /// Answers every request with a body of the size named by its path (`/1000`).
    struct Sized;

    impl Service for Sized {
        fn serve(&mut self, _: Listener, req: &Request, _: Now) -> Reply {
            if let Some(t) = req.path().strip_prefix("/later/") {
                return Reply::Later(t.parse().unwrap_or(0));
            }
            let n: usize = req.path().trim_start_matches('/').parse().unwrap_or(0);
            Reply::Now(Response::new(200, "text/plain", vec![b'x'; n]))
        }
    }

    fn server(poll: &Poll, max_conns: usize) -> HttpServer {
        let addr = "127.0.0.1:0".parse().unwrap();
        HttpServer::bind(poll, Listener::Rpc, addr, 1000, max_conns, Limits::default()).unwrap()
    }

    /// Runs the loop until `done` holds or two seconds pass.
    fn run(poll: &mut Poll, srv: &mut HttpServer, mut done: impl FnMut(&HttpServer) -> bool) {
        let mut events = Events::with_capacity(64);
        let end = Instant::now() + Duration::from_secs(2);
        while !done(srv) && Instant::now() < end {
            poll.poll(&mut events, Some(Duration::from_millis(10))).unwrap();
            let now = crate::io::clock::now();
            for ev in events.iter() {
                assert!(srv.on_ready(ev.token(), now, &mut Sized));
            }
            srv.service(now, &mut Sized);
        }
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
    fn connections_beyond_the_limit_are_closed() {
        let mut poll = Poll::new().unwrap();
        let mut srv = server(&poll, 1);
        assert!(!srv.on_ready(Token(5), crate::io::clock::now(), &mut Sized));
        let mut a = StdStream::connect(srv.local_addr()).unwrap();
        run(&mut poll, &mut srv, |s| s.connections() == 1);
        let mut b = StdStream::connect(srv.local_addr()).unwrap();
        b.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        run(&mut poll, &mut srv, |s| s.at_limit);
        let mut buf = [0u8; 1];
        assert_eq!(b.read(&mut buf).unwrap_or(0), 0, "second connection not closed");
        a.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        a.write_all(b"GET /3 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let reader = std::thread::spawn(move || read_response(&mut a, 3));
        run(&mut poll, &mut srv, |_| reader.is_finished());
        assert!(reader.join().unwrap().ends_with(b"\r\n\r\nxxx"));
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
