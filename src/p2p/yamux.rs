//! yamux (`/yamux/1.0.0`, hashicorp's spec as go-yamux and rust-yamux speak it): streams over
//! one secured connection. 12-byte headers (version 0; Data, WindowUpdate, Ping, GoAway; flags
//! SYN / ACK / FIN / RST; stream id; length), odd stream ids for the dialer and even for the
//! listener, a 256 KiB receive window per stream replenished once half is consumed, and sends
//! held back until the peer's window allows them.
//!
//! Sans-IO: call `handle_input` with decrypted bytes from the connection (any split) and the
//! stream commands (`open_stream`, `write`, `close`, `reset`) as the application needs them,
//! then drain `poll_event` until `None` (inbound streams, data, remote close, reset) and
//! `poll_transmit` until it returns false, then wait for `poll_timeout` and call
//! `handle_timeout`: a keep-alive ping goes out every 30 s and must be answered within 60 s.
//! Everything is bounded: streams per session, the send backlog per stream, a frame beyond the
//! receive window is a protocol error that ends the session with GoAway.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

pub const PROTOCOL: &str = "/yamux/1.0.0";
const HEADER: usize = 12;
const TYPE_DATA: u8 = 0;
const TYPE_WINDOW_UPDATE: u8 = 1;
const TYPE_PING: u8 = 2;
const TYPE_GO_AWAY: u8 = 3;
const SYN: u16 = 1;
const ACK: u16 = 2;
const FIN: u16 = 4;
const RST: u16 = 8;
const GO_AWAY_PROTOCOL_ERROR: u32 = 1;
/// The spec's initial window.
pub const INITIAL_WINDOW: u32 = 256 * 1024;
/// Streams open at once; more inbound ones are reset.
pub const MAX_STREAMS: usize = 64;
/// Data a stream may queue beyond the peer's window before writes are refused.
pub const MAX_SEND_BACKLOG: usize = 4 << 20;
/// The largest data frame sent (rust-yamux's split size).
const MAX_FRAME: usize = 16 * 1024;
/// Keep-alive: a ping this often (go-yamux's default interval), answered within the timeout.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YamuxError {
    BadVersion(u8),
    BadType(u8),
    /// Data beyond the window the peer was given.
    WindowExceeded {
        stream: u32,
    },
    /// A new stream with an id of the wrong parity or an id in use.
    BadStreamId(u32),
    TooManyStreams,
    UnknownStream(u32),
    StreamClosed(u32),
    /// The backlog of a stream is full (the peer does not read).
    Backlog(u32),
    /// The peer sent GoAway or the session failed.
    SessionClosed,
    /// The peer did not answer a keep-alive ping in time.
    KeepAliveTimeout,
}

impl fmt::Display for YamuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            YamuxError::BadVersion(v) => write!(f, "yamux version {v}"),
            YamuxError::BadType(t) => write!(f, "yamux frame type {t}"),
            YamuxError::WindowExceeded { stream } => write!(f, "stream {stream} exceeded its receive window"),
            YamuxError::BadStreamId(id) => write!(f, "bad new stream id {id}"),
            YamuxError::TooManyStreams => f.write_str("too many streams"),
            YamuxError::UnknownStream(id) => write!(f, "unknown stream {id}"),
            YamuxError::StreamClosed(id) => write!(f, "stream {id} is closed for writing"),
            YamuxError::Backlog(id) => write!(f, "stream {id} send backlog is full"),
            YamuxError::SessionClosed => f.write_str("session closed"),
            YamuxError::KeepAliveTimeout => f.write_str("keep-alive ping not answered"),
        }
    }
}

impl std::error::Error for YamuxError {}

/// Which side of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The dialer: odd stream ids.
    Client,
    /// The listener: even stream ids.
    Server,
}

/// What happened on a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The peer opened a stream.
    Inbound(u32),
    Data(u32, Vec<u8>),
    /// The peer will send no more on the stream (FIN).
    Closed(u32),
    /// The stream was reset (by the peer, or refused).
    Reset(u32),
}

#[derive(Debug, Default)]
struct Stream {
    send_window: u32,
    recv_window: u32,
    /// Received since the last window update.
    consumed: u32,
    backlog: VecDeque<u8>,
    /// We sent FIN (after the backlog drains).
    local_fin: bool,
    fin_sent: bool,
    remote_fin: bool,
}

/// One yamux session.
#[derive(Debug)]
pub struct Session {
    mode: Mode,
    next_id: u32,
    streams: BTreeMap<u32, Stream>,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    events: VecDeque<StreamEvent>,
    closed: bool,
    /// When the next keep-alive ping goes out (set by the first `handle_timeout`).
    ping_due: Option<Instant>,
    /// The unanswered keep-alive ping: its opaque value and when it was sent.
    ping_sent: Option<(u32, Instant)>,
    ping_seq: u32,
}

fn header(out: &mut Vec<u8>, ty: u8, flags: u16, stream: u32, len: u32) {
    out.push(0);
    out.push(ty);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
}

impl Session {
    pub fn new(mode: Mode) -> Session {
        Session {
            mode,
            next_id: if mode == Mode::Client { 1 } else { 2 },
            streams: BTreeMap::new(),
            inbuf: Vec::new(),
            out: Vec::new(),
            events: VecDeque::new(),
            closed: false,
            ping_due: None,
            ping_sent: None,
            ping_seq: 0,
        }
    }

    /// The next keep-alive deadline.
    pub fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        let at = match self.ping_sent {
            Some((_, sent)) => Some(sent + KEEPALIVE_TIMEOUT),
            None => self.ping_due,
        };
        at.map(|t| (t, "yamux keep-alive"))
    }

    /// Keep-alive: sends a ping every interval and fails the session when one goes unanswered.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), YamuxError> {
        if self.closed {
            return Ok(());
        }
        if let Some((_, sent)) = self.ping_sent {
            if now >= sent + KEEPALIVE_TIMEOUT {
                self.go_away();
                return Err(YamuxError::KeepAliveTimeout);
            }
            return Ok(());
        }
        match self.ping_due {
            None => self.ping_due = Some(now + KEEPALIVE_INTERVAL),
            Some(due) if now >= due => {
                self.ping_seq = self.ping_seq.wrapping_add(1);
                header(&mut self.out, TYPE_PING, SYN, 0, self.ping_seq);
                self.ping_sent = Some((self.ping_seq, now));
                self.ping_due = Some(now + KEEPALIVE_INTERVAL);
            }
            Some(_) => {}
        }
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Opens an outbound stream (a window update with SYN, as rust-yamux does).
    pub fn open_stream(&mut self) -> Result<u32, YamuxError> {
        if self.closed {
            return Err(YamuxError::SessionClosed);
        }
        if self.streams.len() >= MAX_STREAMS {
            return Err(YamuxError::TooManyStreams);
        }
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(2).ok_or(YamuxError::TooManyStreams)?;
        self.streams.insert(
            id,
            Stream { send_window: INITIAL_WINDOW, recv_window: INITIAL_WINDOW, ..Stream::default() },
        );
        header(&mut self.out, TYPE_WINDOW_UPDATE, SYN, id, 0);
        Ok(id)
    }

    /// Queues data on a stream; it goes out as the peer's window allows.
    pub fn write(&mut self, id: u32, data: &[u8]) -> Result<(), YamuxError> {
        if self.closed {
            return Err(YamuxError::SessionClosed);
        }
        let s = self.streams.get_mut(&id).ok_or(YamuxError::UnknownStream(id))?;
        if s.local_fin {
            return Err(YamuxError::StreamClosed(id));
        }
        if s.backlog.len() + data.len() > MAX_SEND_BACKLOG {
            return Err(YamuxError::Backlog(id));
        }
        s.backlog.extend(data);
        self.flush(id);
        Ok(())
    }

    /// Bytes queued on a stream and not yet sent.
    pub fn backlog(&self, id: u32) -> usize {
        self.streams.get(&id).map_or(0, |s| s.backlog.len())
    }

    /// Half-closes a stream (FIN once its backlog is sent).
    pub fn close(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.local_fin = true;
        }
        self.flush(id);
    }

    /// Resets a stream.
    pub fn reset(&mut self, id: u32) {
        if self.streams.remove(&id).is_some() {
            header(&mut self.out, TYPE_WINDOW_UPDATE, RST, id, 0);
        }
    }

    /// Ends the session (GoAway, normal termination).
    pub fn go_away(&mut self) {
        if !self.closed {
            header(&mut self.out, TYPE_GO_AWAY, 0, 0, 0);
            self.closed = true;
        }
    }

    fn flush(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else { return };
        while !s.backlog.is_empty() && s.send_window > 0 {
            let window = usize::try_from(s.send_window).unwrap_or(usize::MAX);
            let n = s.backlog.len().min(window).min(MAX_FRAME);
            header(&mut self.out, TYPE_DATA, 0, id, n as u32);
            self.out.extend(s.backlog.drain(..n));
            s.send_window -= n as u32;
        }
        if s.local_fin && !s.fin_sent && s.backlog.is_empty() {
            header(&mut self.out, TYPE_WINDOW_UPDATE, FIN, id, 0);
            s.fin_sent = true;
        }
        if s.fin_sent && s.remote_fin {
            self.streams.remove(&id);
        }
    }

    /// Feeds decrypted bytes from the connection.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), YamuxError> {
        if self.closed && self.streams.is_empty() {
            return Err(YamuxError::SessionClosed);
        }
        self.inbuf.extend_from_slice(data);
        let mut pos = 0;
        let result = loop {
            let Some(h) = self.inbuf.get(pos..pos + HEADER) else { break Ok(()) };
            let (version, ty) = (h[0], h[1]);
            let flags = u16::from_be_bytes([h[2], h[3]]);
            let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
            let len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
            if version != 0 {
                break Err(YamuxError::BadVersion(version));
            }
            let body = if ty == TYPE_DATA {
                // Checked against the window before waiting for the body, so a peer cannot
                // make us buffer more than the window.
                if let Some(s) = self.streams.get(&id) {
                    if len > s.recv_window {
                        break Err(YamuxError::WindowExceeded { stream: id });
                    }
                } else if len > INITIAL_WINDOW {
                    break Err(YamuxError::WindowExceeded { stream: id });
                }
                let Ok(body_len) = usize::try_from(len) else {
                    break Err(YamuxError::WindowExceeded { stream: id });
                };
                let Some(b) = self.inbuf.get(pos + HEADER..pos + HEADER + body_len) else { break Ok(()) };
                b.to_vec()
            } else {
                Vec::new()
            };
            pos += HEADER + body.len();
            if let Err(e) = self.on_frame(ty, flags, id, len, body) {
                break Err(e);
            }
        };
        self.inbuf.drain(..pos);
        if let Err(e) = &result {
            if !matches!(e, YamuxError::SessionClosed) {
                header(&mut self.out, TYPE_GO_AWAY, 0, 0, GO_AWAY_PROTOCOL_ERROR);
            }
            self.closed = true;
            self.inbuf = Vec::new();
            for id in std::mem::take(&mut self.streams).into_keys() {
                self.events.push_back(StreamEvent::Reset(id));
            }
        }
        result
    }

    fn on_frame(&mut self, ty: u8, flags: u16, id: u32, len: u32, body: Vec<u8>) -> Result<(), YamuxError> {
        match ty {
            TYPE_PING => {
                if flags & SYN != 0 {
                    header(&mut self.out, TYPE_PING, ACK, 0, len);
                } else if flags & ACK != 0 && self.ping_sent.is_some_and(|(seq, _)| seq == len) {
                    self.ping_sent = None;
                }
                return Ok(());
            }
            TYPE_GO_AWAY => {
                self.closed = true;
                return Ok(());
            }
            TYPE_DATA | TYPE_WINDOW_UPDATE => {}
            other => return Err(YamuxError::BadType(other)),
        }
        if flags & SYN != 0 && !self.streams.contains_key(&id) {
            let theirs = if self.mode == Mode::Client { id % 2 == 0 } else { id % 2 == 1 };
            if id == 0 || !theirs {
                return Err(YamuxError::BadStreamId(id));
            }
            if self.streams.len() >= MAX_STREAMS || self.closed {
                header(&mut self.out, TYPE_WINDOW_UPDATE, RST, id, 0);
                return Ok(());
            }
            self.streams.insert(
                id,
                Stream { send_window: INITIAL_WINDOW, recv_window: INITIAL_WINDOW, ..Stream::default() },
            );
            // Acknowledged at once, so the opener may use its whole window.
            header(&mut self.out, TYPE_WINDOW_UPDATE, ACK, id, 0);
            self.events.push_back(StreamEvent::Inbound(id));
        }
        let Some(s) = self.streams.get_mut(&id) else {
            // Frames for a stream we already dropped (reset, closed) are ignored, as the spec
            // allows, except data that could never be accounted for.
            return Ok(());
        };
        if flags & RST != 0 {
            self.streams.remove(&id);
            self.events.push_back(StreamEvent::Reset(id));
            return Ok(());
        }
        if ty == TYPE_WINDOW_UPDATE {
            s.send_window = s.send_window.saturating_add(len);
        } else if !body.is_empty() {
            s.recv_window -= body.len() as u32;
            s.consumed += body.len() as u32;
            // The data is handed up at once, so the window is replenished as it is consumed.
            if s.consumed >= INITIAL_WINDOW / 2 {
                let delta = std::mem::take(&mut s.consumed);
                s.recv_window += delta;
                header(&mut self.out, TYPE_WINDOW_UPDATE, 0, id, delta);
            }
            self.events.push_back(StreamEvent::Data(id, body));
        }
        if flags & FIN != 0 && !s.remote_fin {
            s.remote_fin = true;
            self.events.push_back(StreamEvent::Closed(id));
        }
        self.flush(id);
        Ok(())
    }

    pub fn poll_event(&mut self) -> Option<StreamEvent> {
        self.events.pop_front()
    }

    /// Moves the bytes to send into `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.out.is_empty() {
            return false;
        }
        out.append(&mut self.out);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn transfer(src: &mut Session, dst: &mut Session, rng: &mut Rng) {
        let mut bytes = Vec::new();
        src.poll_transmit(&mut bytes);
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = 1 + rng.below(rest.len() as u64) as usize;
            dst.handle_input(&rest[..n]).unwrap();
            rest = &rest[n..];
        }
    }

    fn drain(s: &mut Session) -> Vec<StreamEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    #[test]
    fn streams_carry_megabytes_both_ways_under_flow_control() {
        let mut rng = Rng::new(1);
        let (mut c, mut s) = (Session::new(Mode::Client), Session::new(Mode::Server));
        let a = c.open_stream().unwrap();
        let b = c.open_stream().unwrap();
        assert_eq!((a, b), (1, 3));
        let big: Vec<u8> = (0..1_500_000u32).map(|i| (i * 7) as u8).collect();
        c.write(a, &big).unwrap();
        c.write(b, b"small").unwrap();
        c.close(b);
        let (mut got_a, mut got_b, mut closed) = (Vec::new(), Vec::new(), false);
        let mut inbound = Vec::new();
        for _ in 0..200 {
            transfer(&mut c, &mut s, &mut rng);
            transfer(&mut s, &mut c, &mut rng);
            for ev in drain(&mut s) {
                match ev {
                    StreamEvent::Inbound(id) => inbound.push(id),
                    StreamEvent::Data(id, d) if id == a => got_a.extend(d),
                    StreamEvent::Data(_, d) => got_b.extend(d),
                    StreamEvent::Closed(id) => closed |= id == b,
                    StreamEvent::Reset(id) => panic!("reset {id}"),
                }
            }
            // The window keeps the sender from running ahead of the receiver.
            assert!(c.backlog(a) as u64 + got_a.len() as u64 >= big.len() as u64 - INITIAL_WINDOW as u64 * 2);
        }
        assert_eq!(inbound, vec![a, b]);
        assert_eq!(got_a, big);
        assert_eq!(got_b, b"small");
        assert!(closed);
        // The server answers on stream b and closes it: the stream is gone on both sides.
        s.write(b, b"reply").unwrap();
        s.close(b);
        transfer(&mut s, &mut c, &mut rng);
        let evs = drain(&mut c);
        assert!(
            evs.contains(&StreamEvent::Data(b, b"reply".to_vec())) && evs.contains(&StreamEvent::Closed(b))
        );
        transfer(&mut c, &mut s, &mut rng);
        assert_eq!(c.stream_count(), 1);
        assert_eq!(s.stream_count(), 1);
    }

    #[test]
    fn header_layout_ping_reset_and_go_away() {
        let mut s = Session::new(Mode::Server);
        // A ping (SYN) is answered with ACK and the same opaque value.
        s.handle_input(&[0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0x12, 0x34]).unwrap();
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        assert_eq!(out, [0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0x12, 0x34]);
        // Stream 1 opened with data + SYN, then reset by the peer.
        s.handle_input(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, b'h', b'i']).unwrap();
        assert_eq!(drain(&mut s), [StreamEvent::Inbound(1), StreamEvent::Data(1, b"hi".to_vec())]);
        out.clear();
        s.poll_transmit(&mut out);
        assert_eq!(out, [0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0], "window update with ACK");
        s.handle_input(&[0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap();
        assert_eq!(drain(&mut s), [StreamEvent::Reset(1)]);
        // GoAway ends the session.
        s.handle_input(&[0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(s.is_closed());
        assert_eq!(s.open_stream(), Err(YamuxError::SessionClosed));
    }

    #[test]
    fn keep_alive_pings_and_times_out_a_silent_peer() {
        let t0 = crate::time::test_now().mono;
        let mut rng = Rng::new(3);
        let (mut c, mut s) = (Session::new(Mode::Client), Session::new(Mode::Server));
        c.handle_timeout(t0).unwrap();
        assert_eq!(c.poll_timeout(), Some((t0 + KEEPALIVE_INTERVAL, "yamux keep-alive")));
        // An answering peer keeps the session up for hours.
        let mut t = t0;
        for _ in 0..300 {
            t += KEEPALIVE_INTERVAL;
            c.handle_timeout(t).unwrap();
            transfer(&mut c, &mut s, &mut rng);
            transfer(&mut s, &mut c, &mut rng);
        }
        assert!(!c.is_closed());
        // A silent one is given up after the timeout, with GoAway.
        t += KEEPALIVE_INTERVAL;
        c.handle_timeout(t).unwrap();
        let mut ping = Vec::new();
        c.poll_transmit(&mut ping);
        assert_eq!(&ping[..4], &[0, 2, 0, 1], "a ping with SYN");
        c.handle_timeout(t + KEEPALIVE_TIMEOUT - Duration::from_secs(1)).unwrap();
        assert_eq!(c.handle_timeout(t + KEEPALIVE_TIMEOUT), Err(YamuxError::KeepAliveTimeout));
        assert!(c.is_closed());
    }

    #[test]
    fn protocol_violations_end_the_session() {
        // Data beyond the window.
        let mut s = Session::new(Mode::Server);
        let mut f = vec![0, 0, 0, 1, 0, 0, 0, 1];
        f.extend_from_slice(&(INITIAL_WINDOW + 1).to_be_bytes());
        assert_eq!(s.handle_input(&f), Err(YamuxError::WindowExceeded { stream: 1 }));
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        assert_eq!(&out[out.len() - 12..], &[0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], "GoAway protocol error");
        // A new stream with our own parity, a bad version.
        let mut s = Session::new(Mode::Server);
        assert_eq!(s.handle_input(&[0, 1, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0]), Err(YamuxError::BadStreamId(2)));
        let mut s = Session::new(Mode::Server);
        assert_eq!(s.handle_input(&[1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]), Err(YamuxError::BadVersion(1)));
        // Past the stream limit, new streams are reset, not accepted.
        let mut s = Session::new(Mode::Server);
        for i in 0..=MAX_STREAMS as u32 {
            let id = 2 * i + 1;
            let mut f = vec![0, 1, 0, 1];
            f.extend_from_slice(&id.to_be_bytes());
            f.extend_from_slice(&[0, 0, 0, 0]);
            s.handle_input(&f).unwrap();
        }
        assert_eq!(s.stream_count(), MAX_STREAMS);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut rng = Rng::new(9);
        for _ in 0..3000 {
            let mut s = Session::new(if rng.below(2) == 0 { Mode::Client } else { Mode::Server });
            let mut b = vec![0u8; rng.below(100) as usize];
            rng.fill(&mut b);
            if rng.below(2) == 0 && b.len() >= 2 {
                b[0] = 0;
                b[1] = (rng.below(4)) as u8;
            }
            let _ = s.handle_input(&b);
            let _ = s.handle_input(&b);
            let mut out = Vec::new();
            s.poll_transmit(&mut out);
        }
    }
}
