//! A sans-IO HTTP/1.1 server connection (quinn-proto's shape): bytes in through `handle_input`
//! and `handle_eof`, complete requests out through `poll_request`, answers in through
//! `handle_response`, bytes out through `poll_transmit` (and `handle_sent` for what the socket
//! took), and deadlines through `poll_timeout` / `handle_timeout`.
//!
//! Call order: after each input (`handle_input`, `handle_eof`, `handle_response`,
//! `handle_timeout`), drain `poll_request` until `None` and answer each, then `poll_transmit`
//! and report with `handle_sent`; then wait for readable input (while `wants_input`) or
//! `poll_timeout`.
//!
//! Keep-alive and pipelining are supported; responses leave in request order. A body comes with
//! `Content-Length` or as `Transfer-Encoding: chunked` (decoded as it arrives, `max_body`
//! applying to the decoded bytes; trailers are read and ignored). Lines end in CRLF: a bare LF in
//! a request head or in chunked framing gets 400 as soon as it arrives. Every buffer is bounded
//! by `Limits`; a malformed request gets its error response after the responses to the requests
//! before it, then the connection closes. A request whose head does not complete within
//! `header_timeout` of its first byte (for a new connection's first request: of the accept, as
//! Go's `ReadHeaderTimeout`), or which does not complete within `request_timeout` (slowloris),
//! or a connection without progress for `idle_timeout`, is closed. When the server
//! closes, it first half-closes and drains the peer's input for `linger`, so that the final
//! response is not lost to a TCP reset.
//!
//! For the owner of many connections, `buffered` and `claim` tell how many request bytes a
//! connection holds and will hold (to keep one budget across connections), and `standing` how
//! much it is worth keeping when a new connection needs its place.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Most header fields a request may carry: 64 (more get 431).
pub const MAX_HEADERS: usize = 64;

/// Longest chunk-size line of a chunked body (size and extensions): 4 KiB, as Go allows; longer
/// gets 400.
pub const MAX_CHUNK_LINE: usize = 4096;

/// Buffers that grew past this (64 KiB) for one large request are freed once the request is
/// done.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Limits that bound one connection's memory and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Request line plus header fields, and the trailers of a chunked body; more gets 431.
    /// Default 16 KiB.
    pub max_header_bytes: usize,
    /// Largest body, declared (`Content-Length`) or decoded (chunked); more gets 413. Default
    /// 5 MiB (geth's).
    pub max_body: usize,
    /// Parsed requests waiting for their turn; while this many wait, the connection is not read.
    /// Default 16.
    pub max_pipelined: usize,
    /// From a request's first byte to the end of its header block. Default 5 s.
    pub header_timeout: Duration,
    /// From a request's first byte to its last (the body's deadline). Default 10 s.
    pub request_timeout: Duration,
    /// Without any input or output progress, e.g. a keep-alive connection between requests.
    /// Default 30 s (geth: 120 s; a small board keeps fewer idle sockets).
    pub idle_timeout: Duration,
    /// How long input is drained after the server half-closed. Default 2 s.
    pub linger: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            max_body: 5 * 1024 * 1024,
            max_pipelined: 16,
            header_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            linger: Duration::from_secs(2),
        }
    }
}

/// A complete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method token as sent (`GET`, `POST`, ...).
    pub method: String,
    /// The request target: path and optional `?query`.
    pub target: String,
    /// The `Content-Type` header when present and valid UTF-8.
    pub content_type: Option<String>,
    /// The `Authorization` header when present and valid UTF-8 (JWT-protected endpoints).
    pub authorization: Option<String>,
    /// The body (`Content-Length` bytes, or the decoded chunks).
    pub body: Vec<u8>,
}

impl Request {
    /// Returns the target without its query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target.as_str(), |(p, _)| p)
    }

    /// Returns the query (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
}

/// A response; `Content-Length` and `Connection` are added when it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'static str>,
    /// The body (not sent for `HEAD` requests).
    pub body: Vec<u8>,
}

impl Response {
    /// Builds a response with a body of the given type.
    pub fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Response { status, content_type: Some(content_type), body }
    }

    /// Builds a plain-text error as Go's `http.Error` writes it (message plus newline).
    pub fn text(status: u16, msg: &str) -> Self {
        let mut body = Vec::with_capacity(msg.len() + 1);
        body.extend_from_slice(msg.as_bytes());
        body.push(b'\n');
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    /// Builds a response without a body.
    pub fn empty(status: u16) -> Self {
        Response { status, content_type: None, body: Vec::new() }
    }
}

/// What the socket owner should do with the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Reading requests and writing responses.
    Open,
    /// Everything was sent: shut down the write side and keep reading (input is discarded)
    /// until end of input or the linger deadline.
    Draining,
    /// Drop the socket.
    Closed,
}

/// How much a connection is worth keeping when a new one needs its place, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// Its last response is out; it only lingers.
    Closing,
    /// Between requests: nothing received, waiting or unsent.
    Idle,
    /// The peer owes progress: a request still arriving (a new connection's first included),
    /// or answers it does not read.
    Stalled,
    /// Complete requests wait for their turn.
    Busy,
    /// A request is being answered (e.g. a deferred answer is computed).
    Answering,
}

/// One server-side HTTP/1.1 connection.
#[derive(Debug)]
pub struct Conn {
    limits: Limits,
    state: ConnState,
    linger_until: Option<Instant>,
    /// Unparsed input.
    inbuf: Vec<u8>,
    /// Bytes of `inbuf` already searched for the end of the header block.
    scanned: usize,
    /// A parsed head whose body is still arriving.
    head: Option<Head>,
    /// When the first byte of the request the peer is still sending arrived, or the connection
    /// was accepted (`None` between requests and while the pipeline is full: then the wait is
    /// not the peer's).
    partial_since: Option<Instant>,
    queue: VecDeque<Item>,
    /// Body and target bytes held by `queue`.
    queued_bytes: usize,
    /// The request handed out by `poll_request` and not yet answered.
    outstanding: Option<Meta>,
    out: Vec<u8>,
    /// Since when output handed out by `poll_transmit` waits for the socket without progress.
    unsent_since: Option<Instant>,
    last_activity: Instant,
    /// No further requests are read (after a failure, `Connection: close` or end of input).
    input_done: bool,
    eof: bool,
}

#[derive(Debug)]
struct Head {
    method: String,
    target: String,
    content_type: Option<String>,
    authorization: Option<String>,
    body: Body,
    meta: Meta,
}

#[derive(Debug)]
enum Body {
    /// `Content-Length` bytes, taken from `inbuf` once all are in.
    Length(usize),
    /// `Transfer-Encoding: chunked`, decoded as it arrives.
    Chunked { at: Chunk, decoded: Vec<u8> },
}

/// Where a chunked body's decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// This many data bytes of the current chunk are still to come.
    Data(usize),
    /// Before the CRLF that ends a chunk's data.
    DataEnd,
    /// Reading trailer lines after the last chunk; this many bytes of them so far.
    Trailers(usize),
}

/// What the response writer needs to know about its request.
#[derive(Debug, Clone, Copy)]
struct Meta {
    keep_alive: bool,
    http10: bool,
    head_only: bool,
}

#[derive(Debug)]
enum Item {
    Request(Request, Meta),
    /// An error response that ends the connection.
    Fail(u16, String),
}

impl Conn {
    /// Starts a connection accepted at `now`.
    pub fn new(now: Instant, limits: Limits) -> Self {
        Conn {
            limits,
            state: ConnState::Open,
            linger_until: None,
            inbuf: Vec::new(),
            scanned: 0,
            head: None,
            // The first request is due from the accept: a connection that never sends is as
            // slow as one that sends a byte a second.
            partial_since: Some(now),
            queue: VecDeque::new(),
            queued_bytes: 0,
            outstanding: None,
            out: Vec::new(),
            unsent_since: None,
            last_activity: now,
            input_done: false,
            eof: false,
        }
    }

    /// Returns what the socket owner should do now.
    pub fn state(&self) -> ConnState {
        self.state
    }

    /// Tells whether the owner should read more input into `handle_input` (false applies
    /// backpressure: the peer's bytes stay in the kernel until requests are answered).
    pub fn wants_input(&self) -> bool {
        match self.state {
            ConnState::Open => {
                !self.input_done
                    && self.queue.len() < self.limits.max_pipelined
                    && self.buffered() < self.limits.max_header_bytes.saturating_add(self.limits.max_body)
            }
            ConnState::Draining => !self.eof,
            ConnState::Closed => false,
        }
    }

    /// Returns the request bytes held: unparsed input, a chunked body decoded so far, and
    /// requests waiting for their turn.
    pub fn buffered(&self) -> usize {
        let decoded = match &self.head {
            Some(Head { body: Body::Chunked { decoded, .. }, .. }) => decoded.len(),
            _ => 0,
        };
        self.inbuf.len() + decoded + self.queued_bytes
    }

    /// Returns the request bytes held once the request now arriving is complete: `buffered`
    /// plus the rest of a declared body (a chunked body claims only what arrived).
    pub fn claim(&self) -> usize {
        let rest = match &self.head {
            Some(Head { body: Body::Length(n), .. }) => n.saturating_sub(self.inbuf.len()),
            _ => 0,
        };
        self.buffered().saturating_add(rest)
    }

    /// Returns when the first byte of the request the peer is still sending arrived.
    pub fn partial_since(&self) -> Option<Instant> {
        self.partial_since
    }

    /// Returns how much the connection is worth keeping, and since when it stands so (within
    /// a standing, the older goes first).
    pub fn standing(&self) -> (Standing, Instant) {
        if self.state != ConnState::Open {
            return (Standing::Closing, self.last_activity);
        }
        if self.outstanding.is_some() {
            return (Standing::Answering, self.last_activity);
        }
        let stalled = match (self.partial_since, self.unsent_since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(since) = stalled {
            return (Standing::Stalled, since);
        }
        if !self.queue.is_empty() || !self.out.is_empty() || self.head.is_some() {
            return (Standing::Busy, self.last_activity);
        }
        (Standing::Idle, self.last_activity)
    }

    /// Takes bytes read from the peer.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if data.is_empty() || self.state != ConnState::Open || self.input_done {
            return;
        }
        self.last_activity = now;
        self.inbuf.extend_from_slice(data);
        self.parse(now);
    }

    /// The peer closed its write side: a partial request is dropped; complete ones are still
    /// answered, and the connection closes at the next `handle_sent` that finds all sent.
    pub fn handle_eof(&mut self, now: Instant) {
        self.eof = true;
        self.input_done = true;
        self.head = None;
        self.inbuf = Vec::new();
        self.partial_since = None;
        self.last_activity = now;
        if self.state == ConnState::Draining {
            self.close();
        }
    }

    /// Returns the next request to answer; `None` until the previous one was answered.
    pub fn poll_request(&mut self) -> Option<Request> {
        if self.outstanding.is_some() || self.state != ConnState::Open {
            return None;
        }
        self.flush_failures();
        if !matches!(self.queue.front(), Some(Item::Request(..))) {
            return None;
        }
        let Some(Item::Request(req, meta)) = self.queue.pop_front() else {
            return None;
        };
        self.queued_bytes = self.queued_bytes.saturating_sub(req.body.len() + req.target.len());
        self.outstanding = Some(meta);
        Some(req)
    }

    /// Answers the request last returned by `poll_request` (ignored if there is none).
    pub fn handle_response(&mut self, now: Instant, resp: Response) {
        let Some(meta) = self.outstanding.take() else {
            return;
        };
        write_response(&mut self.out, &resp, meta);
        self.parse(now);
        self.flush_failures();
    }

    /// Appends pending output to `buf`; returns whether there was any.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> bool {
        if self.out.is_empty() {
            return false;
        }
        if buf.is_empty() {
            std::mem::swap(buf, &mut self.out);
        } else {
            buf.append(&mut self.out);
        }
        if self.out.capacity() > KEEP_CAPACITY {
            self.out = Vec::new();
        }
        true
    }

    /// Reports a write attempt: `sent` bytes went out, and whether everything handed out by
    /// `poll_transmit` has now been written.
    pub fn handle_sent(&mut self, now: Instant, sent: usize, flushed: bool) {
        if sent > 0 {
            self.last_activity = now;
        }
        if flushed {
            self.unsent_since = None;
        } else if sent > 0 || self.unsent_since.is_none() {
            self.unsent_since = Some(now);
        }
        if flushed && self.state == ConnState::Open && self.input_done && self.idle() {
            if self.eof {
                self.close();
            } else {
                self.state = ConnState::Draining;
                self.linger_until = Some(now + self.limits.linger);
            }
        }
    }

    /// Returns the next deadline and what it is for.
    pub fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        match self.state {
            ConnState::Open => {
                let idle = (self.last_activity + self.limits.idle_timeout, "http-idle");
                let request = self.partial_since.map(|t| match self.head {
                    Some(_) => (t + self.limits.request_timeout, "http-request"),
                    None => (t + self.limits.header_timeout, "http-header"),
                });
                Some(match request {
                    Some(r) if r.0 < idle.0 => r,
                    _ => idle,
                })
            }
            ConnState::Draining => self.linger_until.map(|t| (t, "http-linger")),
            ConnState::Closed => None,
        }
    }

    /// Closes the connection if its deadline passed; earlier calls are no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((t, what)) = self.poll_timeout() {
            if t <= now {
                log::debug!("closing HTTP connection: {what} timeout");
                self.close();
            }
        }
    }

    fn close(&mut self) {
        self.state = ConnState::Closed;
        self.inbuf = Vec::new();
        self.out = Vec::new();
        self.queue.clear();
        self.queued_bytes = 0;
        self.head = None;
        self.partial_since = None;
    }

    /// Nothing is queued, outstanding or waiting to be handed out.
    fn idle(&self) -> bool {
        self.queue.is_empty() && self.outstanding.is_none() && self.out.is_empty()
    }

    /// Writes queued error responses that are next in line.
    fn flush_failures(&mut self) {
        while self.outstanding.is_none() {
            let Some(Item::Fail(status, msg)) = self.queue.front() else {
                return;
            };
            let resp = Response::new(*status, "text/plain; charset=utf-8", msg.as_bytes().to_vec());
            let meta = Meta { keep_alive: false, http10: false, head_only: false };
            write_response(&mut self.out, &resp, meta);
            self.queue.pop_front();
        }
    }

    /// Parses as many complete requests from `inbuf` as the pipeline allows.
    fn parse(&mut self, now: Instant) {
        // Stopped for want of the peer's bytes (rather than for a full pipeline).
        let mut starved = false;
        while !self.input_done && self.queue.len() < self.limits.max_pipelined {
            if self.head.is_none() {
                match self.parse_head() {
                    Ok(Some(head)) => self.head = Some(head),
                    Ok(None) => {
                        starved = true;
                        break;
                    }
                    Err((status, msg)) => {
                        self.fail(status, msg);
                        break;
                    }
                }
            }
            let Some(mut head) = self.head.take() else {
                break;
            };
            let body = match self.take_body(&mut head) {
                Ok(Some(body)) => body,
                Ok(None) => {
                    self.head = Some(head);
                    starved = true;
                    break;
                }
                Err((status, msg)) => {
                    self.fail(status, msg);
                    break;
                }
            };
            self.queued_bytes += body.len() + head.target.len();
            if !head.meta.keep_alive {
                self.input_done = true;
            }
            self.queue.push_back(Item::Request(
                Request {
                    method: head.method,
                    target: head.target,
                    content_type: head.content_type,
                    authorization: head.authorization,
                    body,
                },
                head.meta,
            ));
            self.partial_since = None;
        }
        if self.input_done {
            self.inbuf = Vec::new();
            self.scanned = 0;
        } else if self.inbuf.capacity() > KEEP_CAPACITY && self.inbuf.len() < KEEP_CAPACITY / 4 {
            self.inbuf.shrink_to(KEEP_CAPACITY / 4);
        }
        let started = self.head.is_some() || !self.inbuf.is_empty();
        if !starved || !started || self.input_done {
            self.partial_since = None;
        } else if self.partial_since.is_none() {
            self.partial_since = Some(now);
        }
    }

    /// Queues an error response and stops reading requests.
    fn fail(&mut self, status: u16, msg: String) {
        log::debug!("rejecting HTTP request: {status} {msg}");
        self.queue.push_back(Item::Fail(status, msg));
        self.input_done = true;
        self.head = None;
    }

    /// Returns the body of `head` once it is complete.
    fn take_body(&mut self, head: &mut Head) -> Result<Option<Vec<u8>>, (u16, String)> {
        match &mut head.body {
            Body::Length(n) => {
                let n = *n;
                if self.inbuf.len() < n {
                    // Grown once to the declared size rather than by doubling (and copying).
                    if n > KEEP_CAPACITY {
                        self.inbuf.reserve_exact(n - self.inbuf.len());
                    }
                    return Ok(None);
                }
                if n > KEEP_CAPACITY {
                    // A large body keeps the buffer it arrived in; what follows it moves.
                    let rest = self.inbuf.split_off(n);
                    return Ok(Some(std::mem::replace(&mut self.inbuf, rest)));
                }
                Ok(Some(self.inbuf.drain(..n).collect()))
            }
            Body::Chunked { at, decoded } => {
                let (used, done) = decode_chunked(&self.inbuf, at, decoded, &self.limits)?;
                self.inbuf.drain(..used);
                Ok(done.then(|| std::mem::take(decoded)))
            }
        }
    }

    /// Parses the request line and headers once the header block is complete.
    fn parse_head(&mut self) -> Result<Option<Head>, (u16, String)> {
        // Clients may send stray line breaks between requests (RFC 9112 section 2.2); they are
        // dropped once a request line starts, and until then count against the header deadline.
        let blank = self.inbuf.iter().take_while(|b| **b == b'\r' || **b == b'\n').count();
        if blank == self.inbuf.len() {
            if blank > self.limits.max_header_bytes {
                return Err((431, "431 Request Header Fields Too Large".into()));
            }
            return Ok(None);
        }
        if blank > 0 {
            self.inbuf.drain(..blank);
            self.scanned = self.scanned.saturating_sub(blank);
        }
        let end = match find_header_end(&self.inbuf, self.scanned) {
            Err(BareLf) => return Err(bad("line ending in a bare LF")),
            Ok(None) => {
                self.scanned = self.inbuf.len();
                if self.inbuf.len() > self.limits.max_header_bytes {
                    return Err((431, "431 Request Header Fields Too Large".into()));
                }
                return Ok(None);
            }
            Ok(Some(end)) => end,
        };
        if end > self.limits.max_header_bytes {
            return Err((431, "431 Request Header Fields Too Large".into()));
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut fields);
        let parsed = match req.parse(&self.inbuf[..end]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Err(bad("malformed header block")),
            Err(httparse::Error::TooManyHeaders) => {
                return Err((431, "431 Request Header Fields Too Large".into()))
            }
            Err(e) => return Err(bad(&e.to_string())),
        };
        let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
            return Err(bad("malformed request line"));
        };
        let mut content_length: Option<u64> = None;
        let mut chunked = false;
        let mut content_type = None;
        let mut authorization = None;
        let mut has_host = false;
        let mut close = false;
        let mut keep_alive = false;
        let mut expect_continue = false;
        for h in req.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                let v = parse_content_length(h.value).ok_or_else(|| bad("bad Content-Length"))?;
                if content_length.is_some_and(|c| c != v) {
                    return Err(bad("conflicting Content-Length"));
                }
                content_length = Some(v);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Go's rule: one coding, and it is chunked.
                if chunked || !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                    return Err((501, "Unsupported transfer encoding".into()));
                }
                chunked = true;
            } else if name.eq_ignore_ascii_case("content-type") {
                content_type = std::str::from_utf8(h.value).ok().map(str::to_string);
            } else if name.eq_ignore_ascii_case("authorization") {
                authorization = std::str::from_utf8(h.value).ok().map(str::to_string);
            } else if name.eq_ignore_ascii_case("host") {
                has_host = true;
            } else if name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|b| *b == b',') {
                    let token = token.trim_ascii();
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case("expect") {
                if !h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                    return Err((417, "417 Expectation Failed".into()));
                }
                expect_continue = true;
            }
        }
        let http10 = version == 0;
        if !http10 && !has_host {
            return Err(bad("missing required Host header"));
        }
        let body = if chunked {
            // Both framings at once is how requests are smuggled past a proxy (RFC 9112
            // section 6.3); HTTP/1.0 has no chunked coding.
            if content_length.is_some() {
                return Err(bad("both Transfer-Encoding and Content-Length"));
            }
            if http10 {
                return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
            }
            Body::Chunked { at: Chunk::Size, decoded: Vec::new() }
        } else {
            let body_len = content_length.unwrap_or(0);
            let max = self.limits.max_body as u64;
            if body_len > max {
                // geth's text for a body over its limit.
                return Err((413, format!("content length too large ({body_len}>{max})\n")));
            }
            // Bounded by max_body above.
            Body::Length(usize::try_from(body_len).unwrap_or(usize::MAX))
        };
        let head = Head {
            method: method.to_string(),
            target: target.to_string(),
            content_type,
            authorization,
            body,
            meta: Meta {
                keep_alive: if http10 { keep_alive && !close } else { !close },
                http10,
                head_only: method == "HEAD",
            },
        };
        self.inbuf.drain(..parsed);
        self.scanned = 0;
        let body_due = match head.body {
            Body::Length(n) => n > self.inbuf.len(),
            Body::Chunked { .. } => self.inbuf.is_empty(),
        };
        // The client waits for this before sending its body; only safe to send when no earlier
        // response is still due.
        if expect_continue && body_due && self.queue.is_empty() && self.outstanding.is_none() {
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        Ok(Some(head))
    }
}

fn bad(detail: &str) -> (u16, String) {
    (400, format!("400 Bad Request: {detail}"))
}

/// A line ended in LF without CR.
struct BareLf;

/// Finds the end of the header block (after its blank line), searching from `from`.
fn find_header_end(buf: &[u8], from: usize) -> Result<Option<usize>, BareLf> {
    let mut at = from;
    while let Some(i) = buf.get(at..).and_then(|t| t.iter().position(|b| *b == b'\n')) {
        let lf = at + i;
        if lf == 0 || buf.get(lf - 1) != Some(&b'\r') {
            return Err(BareLf);
        }
        if lf >= 3 && buf.get(lf - 3..lf - 1) == Some(b"\r\n") {
            return Ok(Some(lf + 1));
        }
        at = lf + 1;
    }
    Ok(None)
}

/// Decodes chunked framing from the front of `buf` into `body`; returns the bytes of `buf` used
/// and whether the body, trailers included, is complete.
fn decode_chunked(
    buf: &[u8],
    at: &mut Chunk,
    body: &mut Vec<u8>,
    limits: &Limits,
) -> Result<(usize, bool), (u16, String)> {
    let mut pos = 0;
    loop {
        let rest = buf.get(pos..).unwrap_or(&[]);
        match *at {
            Chunk::Size => {
                let Some(line) = crlf_line(rest, MAX_CHUNK_LINE)? else {
                    return Ok((pos, false));
                };
                pos += line.len() + 2;
                let size = parse_chunk_size(line).ok_or_else(|| bad("malformed chunk size"))?;
                if size > limits.max_body.saturating_sub(body.len()) {
                    let max = limits.max_body;
                    return Err((413, format!("request body too large (>{max})\n")));
                }
                *at = if size == 0 { Chunk::Trailers(0) } else { Chunk::Data(size) };
            }
            Chunk::Data(left) => {
                if rest.is_empty() {
                    return Ok((pos, false));
                }
                let n = left.min(rest.len());
                body.extend_from_slice(rest.get(..n).unwrap_or(&[]));
                pos += n;
                *at = if n == left { Chunk::DataEnd } else { Chunk::Data(left - n) };
            }
            Chunk::DataEnd => {
                match rest {
                    [b'\r', b'\n', ..] => {}
                    [] | [b'\r'] => return Ok((pos, false)),
                    _ => return Err(bad("malformed chunk: data not followed by CRLF")),
                }
                pos += 2;
                *at = Chunk::Size;
            }
            Chunk::Trailers(seen) => {
                let room = limits.max_header_bytes.saturating_sub(seen);
                let line = match crlf_line(rest, room) {
                    Ok(Some(line)) => line,
                    Ok(None) => return Ok((pos, false)),
                    Err(LineError::TooLong) => {
                        return Err((431, "431 Request Header Fields Too Large".into()))
                    }
                    Err(e) => return Err(e.into()),
                };
                pos += line.len() + 2;
                if line.is_empty() {
                    return Ok((pos, true));
                }
                if !line.contains(&b':') {
                    return Err(bad("malformed trailer"));
                }
                *at = Chunk::Trailers(seen + line.len() + 2);
            }
        }
    }
}

/// Why a CRLF-terminated line could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineError {
    BareLf,
    TooLong,
}

impl From<LineError> for (u16, String) {
    fn from(e: LineError) -> Self {
        match e {
            LineError::BareLf => bad("line ending in a bare LF"),
            LineError::TooLong => bad("chunked framing line too long"),
        }
    }
}

/// Returns the CRLF-terminated line at the front of `buf` (without its CRLF), `None` while it is
/// incomplete.
fn crlf_line(buf: &[u8], max: usize) -> Result<Option<&[u8]>, LineError> {
    match buf.iter().position(|b| *b == b'\n') {
        Some(lf) if lf == 0 || buf.get(lf - 1) != Some(&b'\r') => Err(LineError::BareLf),
        Some(lf) if lf - 1 > max => Err(LineError::TooLong),
        Some(lf) => Ok(buf.get(..lf - 1)),
        // The line cannot fit any more (one byte more may be its CR).
        None if buf.len() > max + 1 => Err(LineError::TooLong),
        None => Ok(None),
    }
}

/// Parses a chunk-size line: hex digits, then optional extensions (`;...`), which are ignored.
fn parse_chunk_size(line: &[u8]) -> Option<usize> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return None;
    }
    let (hex, ext) = line.split_at(digits);
    let ext = ext.trim_ascii_start();
    if !ext.is_empty() && ext.first() != Some(&b';') {
        return None;
    }
    hex.iter().try_fold(0usize, |acc, d| {
        let v = char::from(*d).to_digit(16)?;
        acc.checked_mul(16)?.checked_add(usize::try_from(v).ok()?)
    })
}

/// Parses a `Content-Length` value: digits only, as Go requires.
fn parse_content_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn write_response(out: &mut Vec<u8>, resp: &Response, meta: Meta) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    if let Some(ct) = resp.content_type {
        let _ = write!(out, "Content-Type: {ct}\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n", resp.body.len());
    if !meta.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if meta.http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !meta.head_only {
        out.extend_from_slice(&resp.body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    const POST: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
        Content-Length: 14\r\n\r\n{\"id\":1,\"a\":2}";

    fn t0() -> Instant {
        crate::time::test_now().mono
    }

    /// Answers every request with its body echoed and returns all output.
    fn answer_all(c: &mut Conn, now: Instant) -> Vec<u8> {
        while let Some(req) = c.poll_request() {
            c.handle_response(now, Response::new(200, "text/plain", req.body));
        }
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        c.handle_sent(now, out.len(), true);
        out
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn get_with_keep_alive() {
        let t = t0();
        let mut c = Conn::new(t, Limits::default());
        c.handle_input(t, b"GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        let req = c.poll_request().unwrap();
        assert_eq!((req.method.as_str(), req.path(), req.query()), ("GET", "/healthz", Some("x=1")));
        assert!(c.poll_request().is_none());
        c.handle_response(t, Response::new(200, "application/json", b"{}".to_vec()));
        let mut out = Vec::new();
        assert!(c.poll_transmit(&mut out));
        assert_eq!(
            text(&out),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
        c.handle_sent(t, out.len(), true);
        assert_eq!(c.state(), ConnState::Open);
        assert!(!c.poll_transmit(&mut out));
    }

    #[test]
    fn every_truncated_prefix_waits_for_the_rest() {
        let t = t0();
        for n in 0..POST.len() {
            let mut c = Conn::new(t, Limits::default());
            c.handle_input(t, &POST[..n]);
            assert!(c.poll_request().is_none(), "prefix {n} made a request");
            assert_eq!(c.state(), ConnState::Open);
            c.handle_input(t, &POST[n..]);
            let req = c.poll_request().unwrap_or_else(|| panic!("prefix {n}"));
            assert_eq!(req.body, b"{\"id\":1,\"a\":2}");
            assert_eq!(req.content_type.as_deref(), Some("application/json"));
        }
        // Byte by byte.
        let mut c = Conn::new(t, Limits::default());
        for b in POST {
            c.handle_input(t, std::slice::from_ref(b));
        }
        assert_eq!(c.poll_request().unwrap().body.len(), 14);
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let t = t0();
        let mut c = Conn::new(t, Limits::default());
        let mut input = Vec::new();
        for body in ["a", "bb", "ccc"] {
            input.extend_from_slice(
                format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                    .as_bytes(),
            );
        }
        c.handle_input(t, &input);
        let out = text(&answer_all(&mut c, t));
        let bodies: Vec<&str> =
            out.split("HTTP/1.1 200 OK").skip(1).map(|r| r.rsplit("\r\n\r\n").next().unwrap()).collect();
        assert_eq!(bodies, ["a", "bb", "ccc"]);
        assert_eq!(c.state(), ConnState::Open);
    }

    #[test]
    fn pipeline_depth_is_bounded_and_resumes() {
        let t = t0();
        let limits = Limits { max_pipelined: 2, ..Limits::default() };
        let mut c = Conn::new(t, limits);
        let one = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        c.handle_input(t, &one.repeat(5));
        assert_eq!(c.queue.len(), 2);
        let out = text(&answer_all(&mut c, t));
        assert_eq!(out.matches("200 OK").count(), 5);
    }

    #[test]
    fn close_and_http10() {
        let t = t0();
        let mut c = Conn::new(t, Limits::default());
        c.handle_input(t, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n");
        let out = text(&answer_all(&mut c, t));
        assert!(out.contains("Connection: close\r\n"));
        assert_eq!(out.matches("HTTP/1.1").count(), 1);
        assert_eq!(c.state(), ConnState::Draining);
        assert_eq!(c.poll_timeout().unwrap().1, "http-linger");
        c.handle_input(t, b"ignored");
        c.handle_eof(t);
        assert_eq!(c.state(), ConnState::Closed);

        let mut c = Conn::new(t, Limits::default());
        c.handle_input(t, b"GET / HTTP/1.0\r\n\r\n");
        assert!(text(&answer_all(&mut c, t)).contains("Connection: close"));
        let mut c = Conn::new(t, Limits::default());
        c.handle_input(t, b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(text(&answer_all(&mut c, t)).contains("Connection: keep-alive"));
        assert_eq!(c.state(), ConnState::Open);
    }

    #[test]
    fn end_of_input_answers_complete_requests_then_closes() {
        let t = t0();
        let mut c = Conn::new(t, Limits::default());
        c.handle_input(t, b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /partial");
        c.handle_eof(t);
        let out = text(&answer_all(&mut c, t));
        assert_eq!(out.matches("200 OK").count(), 1);
        assert_eq!(c.state(), ConnState::Closed);
    }

    fn rejected(input: &[u8]) -> String {
        let t = t0();
        let mut c = Conn::new(t, Limits::default());
        c.handle_input(t, input);
        let out = text(&answer_all(&mut c, t));
        assert_eq!(c.state(), ConnState::Draining, "{out}");
        assert!(out.contains("Connection: close\r\n"), "{out}");
        out
    }

    #[test]
    fn limits_and_malformed_requests() {
        let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n", "a".repeat(17 * 1024));
        assert!(rejected(big.as_bytes()).starts_with("HTTP/1.1 431 "));
        // Over the header limit without ever finishing the header block.
        assert!(rejected(&[b'a'; 17 * 1024]).starts_with("HTTP/1.1 431 "));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("H{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        assert!(rejected(many.as_bytes()).starts_with("HTTP/1.1 431 "));
        let out = rejected(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5242881\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        assert!(out.ends_with("content length too large (5242881>5242880)\n"), "{out}");
        // Go's rule for transfer codings: one, and it is chunked.
        for te in ["gzip", "gzip, chunked", "chunked, chunked"] {
            let req = format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {te}\r\n\r\n");
            let out = rejected(req.as_bytes());
            assert!(out.starts_with("HTTP/1.1 501 Not Implemented\r\n"), "{out}");
        }
        for bad in [
            &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"\x00\x01\x02 garbage\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
            b"G\xffT / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/3.0\r\nHost: x\r\n\r\n",
            // Both framings (request smuggling), or chunked in HTTP/1.0.
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ] {
            assert!(rejected(bad).starts_with("HTTP/1.1 400 "), "{}", text(bad));
        }
        assert!(rejected(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n").starts_with("HTTP/1.1 417 "));
    }

    #[test]
    fn an_error_after_good_requests_comes_after_their_responses() {
        let out =
            rejected(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n\x01\x02\r\n\r\n");
        let statuses: Vec<&str> = out.match_indices("HTTP/1.1 ").map(|(i, _)| &out[i + 9..i + 12]).collect();
        assert_eq!(statuses, ["200", "200", "400"]);
    }

    #[test]
    fn expect_continue_and_head() {
        let t = t0();
        let mut c = Conn::new(t, Limits::default());
        c.handle_input(t, b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
        c.handle_input(t, b"hi");
        assert_eq!(c.poll_request().unwrap().body, b"hi");
        c.handle_response(t, Response::empty(200));

        let mut c = Conn::new(t, Limits::default());
        c.handle_input(t, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        c.poll_request().unwrap();
        c.handle_response(t, Response::new(200, "application/json", b"{}".to_vec()));
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        assert!(text(&out).ends_with("Content-Length: 2\r\n\r\n"));
    }

    #[test]
    fn header_deadline_on_virtual_time() {
        let t = t0();
        let l = Limits::default();
        assert!(l.header_timeout < l.request_timeout && l.request_timeout < l.idle_timeout);
        let mut c = Conn::new(t, l);
        c.handle_input(t, b"GET / HTTP/1.1\r\n");
        // A byte a second keeps the connection active, but the head must be in by its deadline.
        for i in 1..=4 {
            let now = t + Duration::from_secs(i);
            c.handle_input(now, b"X");
            c.handle_timeout(now);
        }
        assert_eq!(c.poll_timeout(), Some((t + l.header_timeout, "http-header")));
        assert_eq!(c.standing(), (Standing::Stalled, t));
        c.handle_timeout(t + l.header_timeout - Duration::from_millis(1));
        assert_eq!(c.state(), ConnState::Open);
        c.handle_timeout(t + l.header_timeout);
        assert_eq!(c.state(), ConnState::Closed);
        assert_eq!(c.poll_timeout(), None);

        // Stray line breaks before a request line run the same clock.
        let mut c = Conn::new(t, l);
        c.handle_input(t, b"\r\n");
        c.handle_input(t + Duration::from_secs(3), b"\r\n");
        assert_eq!(c.poll_timeout(), Some((t + l.header_timeout, "http-header")));
    }

    #[test]
    fn body_deadline_on_virtual_time() {
        let t = t0();
        let l = Limits::default();
        let mut c = Conn::new(t, l);
        c.handle_input(t, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n");
        // The head is in: the body has until the request deadline, from the same first byte.
        assert_eq!(c.poll_timeout(), Some((t + l.request_timeout, "http-request")));
        for i in 1..l.request_timeout.as_secs() {
            let now = t + Duration::from_secs(i);
            c.handle_input(now, b"x");
            c.handle_timeout(now);
            assert_eq!(c.state(), ConnState::Open);
        }
        c.handle_timeout(t + l.request_timeout);
        assert_eq!(c.state(), ConnState::Closed);

        // Chunked bodies too.
        let mut c = Conn::new(t, l);
        c.handle_input(t, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n");
        assert_eq!(c.poll_timeout(), Some((t + l.request_timeout, "http-request")));
    }

    #[test]
    fn idle_keep_alive_deadline_on_virtual_time() {
        let t = t0();
        let l = Limits::default();
        let mut c = Conn::new(t, l);
        // A new connection's first head is due as if its first byte came with the accept.
        assert_eq!(c.poll_timeout(), Some((t + l.header_timeout, "http-header")));
        assert_eq!(c.standing(), (Standing::Stalled, t));
        c.handle_input(t + Duration::from_secs(1), b"GET / HTTP/1.1\r\n");
        assert_eq!(c.poll_timeout(), Some((t + l.header_timeout, "http-header")));
        c.handle_input(t + Duration::from_secs(1), b"Host: x\r\n\r\n");
        let later = t + Duration::from_secs(5);
        answer_all(&mut c, later);
        assert_eq!(c.poll_timeout(), Some((later + l.idle_timeout, "http-idle")));
        assert_eq!(c.standing(), (Standing::Idle, later));
        c.handle_timeout(later + l.idle_timeout - Duration::from_millis(1));
        assert_eq!(c.state(), ConnState::Open);
        c.handle_timeout(later + l.idle_timeout);
        assert_eq!(c.state(), ConnState::Closed);
    }

    #[test]
    fn input_backpressure_is_bounded() {
        let t = t0();
        let l = Limits { max_header_bytes: 64, max_body: 64, max_pipelined: 1, ..Limits::default() };
        let mut c = Conn::new(t, l);
        c.handle_input(t, &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(8));
        assert!(!c.wants_input());
        answer_all(&mut c, t);
        assert!(c.wants_input());
        assert_eq!(c.state(), ConnState::Open);
    }

    const CHUNKED: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
        Content-Type: application/json\r\n\r\n6;ext=1\r\n{\"id\":\r\n8\r\n1,\"a\":2}\r\n0\r\nX-Trailer: t\r\n\r\n";

    #[test]
    fn chunked_bodies_are_decoded_and_trailers_ignored() {
        let t = t0();
        let mut c = Conn::new(t, Limits::default());
        let mut input = CHUNKED.to_vec();
        input.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
        c.handle_input(t, &input);
        let req = c.poll_request().unwrap();
        assert_eq!(req.body, b"{\"id\":1,\"a\":2}");
        assert_eq!(req.content_type.as_deref(), Some("application/json"));
        c.handle_response(t, Response::empty(200));
        // The framing ended exactly where the next request starts.
        assert_eq!(c.poll_request().unwrap().target, "/next");
        c.handle_response(t, Response::empty(200));
        assert_eq!(c.buffered(), 0);

        // Upper-case hex, extensions with spaces, no trailers.
        let mut c = Conn::new(t, Limits::default());
        c.handle_input(
            t,
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n\
              A ; a=b\r\n0123456789\r\n00\r\n\r\n",
        );
        assert_eq!(c.poll_request().unwrap().body, b"0123456789");

        // Expect: 100-continue before a chunked body.
        let mut c = Conn::new(t, Limits::default());
        c.handle_input(
            t,
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
        c.handle_input(t, b"2\r\nhi\r\n0\r\n\r\n");
        assert_eq!(c.poll_request().unwrap().body, b"hi");
    }

    #[test]
    fn every_truncated_prefix_of_a_chunked_request_waits_for_the_rest() {
        let t = t0();
        for n in 0..CHUNKED.len() {
            let mut c = Conn::new(t, Limits::default());
            c.handle_input(t, &CHUNKED[..n]);
            assert!(c.poll_request().is_none(), "prefix {n} made a request");
            assert_eq!(c.state(), ConnState::Open);
            assert!(c.wants_input(), "prefix {n}");
            let mut out = Vec::new();
            assert!(!c.poll_transmit(&mut out), "prefix {n} answered: {}", text(&out));
            c.handle_input(t, &CHUNKED[n..]);
            let req = c.poll_request().unwrap_or_else(|| panic!("prefix {n}"));
            assert_eq!(req.body, b"{\"id\":1,\"a\":2}", "prefix {n}");
        }
        // Byte by byte.
        let mut c = Conn::new(t, Limits::default());
        for b in CHUNKED {
            c.handle_input(t, std::slice::from_ref(b));
        }
        assert_eq!(c.poll_request().unwrap().body.len(), 14);
    }

    #[test]
    fn malformed_chunking_gets_400_and_limits_hold() {
        let head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        for body in [
            "zz\r\n",
            "\r\n",
            "3 x\r\nabc\r\n0\r\n\r\n",
            "3\r\nabcX\r\n0\r\n\r\n",
            "3\nabc\r\n0\r\n\r\n",
            "3\r\nabc\n0\r\n\r\n",
            "fffffffffffffffffffff\r\n",
            "0\r\nno colon\r\n\r\n",
            "0\r\n\n",
        ] {
            let out = rejected(format!("{head}{body}").as_bytes());
            assert!(out.starts_with("HTTP/1.1 400 "), "{body:?}: {out}");
        }
        // A chunk-size line without its end, past the bound.
        let long = format!("{head}1;{}", "e".repeat(MAX_CHUNK_LINE));
        assert!(rejected(long.as_bytes()).starts_with("HTTP/1.1 400 "));
        // Trailers count against the header limit.
        let trailers = format!("{head}0\r\nX: {}\r\n\r\n", "t".repeat(17 * 1024));
        assert!(rejected(trailers.as_bytes()).starts_with("HTTP/1.1 431 "));
        // max_body applies to the decoded body, across chunks.
        let t = t0();
        let mut c = Conn::new(t, Limits { max_body: 10, ..Limits::default() });
        c.handle_input(t, format!("{head}6\r\n123456\r\n").as_bytes());
        assert!(c.poll_request().is_none());
        c.handle_input(t, b"5\r\n");
        let out = text(&answer_all(&mut c, t));
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        assert_eq!(c.state(), ConnState::Draining);
    }

    #[test]
    fn bare_lf_line_endings_get_400_at_once() {
        for bad in [
            &b"GET / HTTP/1.1\n"[..],
            b"GET / HTTP/1.1\nHost: x\n\n",
            b"GET / HTTP/1.1\r\nHost: x\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\n",
            b"GET /\n",
        ] {
            let out = rejected(bad);
            assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{}: {out}", text(bad));
            assert!(out.ends_with("line ending in a bare LF"), "{out}");
        }
        // A stray line break between requests is not a line ending: still ignored.
        let t = t0();
        let mut c = Conn::new(t, Limits::default());
        c.handle_input(t, b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(text(&answer_all(&mut c, t)).matches("200 OK").count(), 2);
    }

    #[test]
    fn a_full_pipeline_stops_input_and_its_clock() {
        let t = t0();
        let l = Limits::default();
        let mut c = Conn::new(t, l);
        let one = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut input = one.repeat(l.max_pipelined + 4);
        input.extend_from_slice(b"GET /partial");
        c.handle_input(t, &input);
        assert!(!c.wants_input(), "reads past a full pipeline");
        // The wait is the server's, not the peer's: no header deadline, and not evicted as slow.
        assert_eq!(c.poll_timeout().unwrap().1, "http-idle");
        assert_eq!(c.standing().0, Standing::Busy);
        let later = t + Duration::from_secs(1);
        let out = text(&answer_all(&mut c, later));
        assert_eq!(out.matches("200 OK").count(), l.max_pipelined + 4);
        assert!(c.wants_input());
        assert_eq!(c.poll_timeout(), Some((later + l.header_timeout, "http-header")));
    }

    #[test]
    fn buffered_claim_and_standing() {
        let t = t0();
        let mut c = Conn::new(t, Limits::default());
        c.handle_input(t, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789");
        assert_eq!((c.buffered(), c.claim()), (10, 1000));
        assert_eq!(c.standing(), (Standing::Stalled, t));
        c.handle_input(t, &[b'x'; 990]);
        assert_eq!((c.buffered(), c.claim()), (1000 + 1, 1000 + 1), "body and target are queued");
        assert_eq!(c.standing().0, Standing::Busy);
        let req = c.poll_request().unwrap();
        assert_eq!((c.buffered(), c.standing().0), (0, Standing::Answering));
        let later = t + Duration::from_secs(1);
        c.handle_response(later, Response::new(200, "text/plain", req.body));
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        // The peer does not read: its answer waits, and the connection stands as stalled.
        c.handle_sent(later, 100, false);
        assert_eq!(c.standing(), (Standing::Stalled, later));
        c.handle_sent(later + Duration::from_secs(1), 0, false);
        assert_eq!(c.standing(), (Standing::Stalled, later));
        c.handle_sent(later + Duration::from_secs(2), out.len() - 100, true);
        assert_eq!(c.standing().0, Standing::Idle);

        let mut c = Conn::new(t, Limits::default());
        c.handle_input(t, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        answer_all(&mut c, t);
        assert_eq!(c.standing().0, Standing::Closing);
    }

    #[test]
    fn random_input_never_panics() {
        let t = t0();
        let mut rng = Rng::new(7);
        let alphabet = b"GET POST / HTTP/1.1\r\n:Host Content-Length 0123456789 \x00\xff";
        let framing = b"0123456789abcdefABCDEF;=:\r\n\r\nxyz ";
        for i in 0..4500 {
            let mut c = Conn::new(t, Limits::default());
            let len = rng.below(300) as usize;
            let mut buf = vec![0u8; len];
            match i % 3 {
                0 => rng.fill(&mut buf),
                1 => {
                    for b in &mut buf {
                        *b = alphabet[rng.below(alphabet.len() as u64) as usize];
                    }
                }
                _ => {
                    // A chunked head, then random chunked framing.
                    for b in &mut buf {
                        *b = framing[rng.below(framing.len() as u64) as usize];
                    }
                    let mut input =
                        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                    if rng.below(2) == 0 {
                        input.extend_from_slice(b"5\r\nhello\r\n");
                    }
                    input.append(&mut buf);
                    buf = input;
                }
            }
            let mut at = 0;
            while at < buf.len() {
                let n = (1 + rng.below(40) as usize).min(buf.len() - at);
                c.handle_input(t, &buf[at..at + n]);
                at += n;
                answer_all(&mut c, t);
                assert!(c.buffered() <= 1024, "{}", c.buffered());
            }
            c.handle_eof(t);
            answer_all(&mut c, t);
            c.handle_timeout(t + Duration::from_secs(120));
            assert_eq!(c.state(), ConnState::Closed);
        }
    }
}
