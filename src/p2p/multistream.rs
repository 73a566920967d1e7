//! multistream-select 1.0 (`/multistream/1.0.0`): how a connection and each yamux stream agree
//! on a protocol. Messages are varint-length-prefixed lines; the dialer proposes protocols in
//! order (sending the header and its first proposal at once), the listener echoes a protocol it
//! speaks or answers `na`.
//!
//! Sans-IO, with no timers: call `handle_input` with received bytes (any split), then drain
//! `poll_transmit` until it returns false. Once `protocol` names the agreed protocol,
//! `poll_remaining` hands over the bytes that followed the negotiation: they belong to that
//! protocol.

use std::fmt;

use crate::protocol::varint::{self, VarintError};

pub const HEADER: &str = "/multistream/1.0.0";
const NA: &str = "na";
/// Protocol ids are short; a longer message is an attack or garbage.
const MAX_MESSAGE: usize = 1024;
/// Proposals a listener answers before giving up on the peer.
const MAX_PROPOSALS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultistreamError {
    MessageTooLong {
        len: u64,
    },
    BadVarint,
    /// A message that is not a newline-terminated UTF-8 line.
    BadMessage,
    WrongHeader(String),
    /// The dialer's proposals were all refused.
    NoProtocol,
    /// The listener answered something that is neither the proposal nor `na`.
    UnexpectedResponse(String),
    TooManyProposals,
}

impl fmt::Display for MultistreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultistreamError::MessageTooLong { len } => {
                write!(f, "message of {len} bytes exceeds {MAX_MESSAGE}")
            }
            MultistreamError::BadVarint => f.write_str("bad length prefix"),
            MultistreamError::BadMessage => f.write_str("message is not a UTF-8 line"),
            MultistreamError::WrongHeader(h) => write!(f, "expected {HEADER}, got {h:?}"),
            MultistreamError::NoProtocol => f.write_str("no protocol in common"),
            MultistreamError::UnexpectedResponse(r) => write!(f, "unexpected response {r:?}"),
            MultistreamError::TooManyProposals => f.write_str("too many proposals"),
        }
    }
}

impl std::error::Error for MultistreamError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    AwaitHeader,
    /// Dialer: waiting for the answer to `proposals[next - 1]`.
    AwaitAnswer,
    /// Listener: waiting for a proposal.
    AwaitProposal,
    Done(String),
    Failed(MultistreamError),
}

/// One negotiation, as dialer or listener.
#[derive(Debug, Clone)]
pub struct Negotiation {
    dialer: bool,
    protocols: Vec<String>,
    next: usize,
    proposals_seen: usize,
    state: State,
    inbuf: Vec<u8>,
    out: Vec<u8>,
}

fn put_message(out: &mut Vec<u8>, msg: &str) {
    varint::put(out, msg.len() as u64 + 1);
    out.extend_from_slice(msg.as_bytes());
    out.push(b'\n');
}

/// Splits one complete message off `buf` (`Ok(None)` until it is complete).
fn take_message(buf: &mut Vec<u8>) -> Result<Option<String>, MultistreamError> {
    // Messages are short: a length takes at most two bytes.
    let (len, i) = match varint::read(buf.get(..2).unwrap_or(buf)) {
        Ok(v) => v,
        Err(VarintError::Truncated) if buf.len() < 2 => return Ok(None),
        Err(_) => return Err(MultistreamError::BadVarint),
    };
    let end = match usize::try_from(len) {
        Ok(n) if n <= MAX_MESSAGE => i + n,
        _ => return Err(MultistreamError::MessageTooLong { len }),
    };
    if buf.len() < end {
        return Ok(None);
    }
    let msg = buf.get(i..end).ok_or(MultistreamError::BadMessage)?;
    let line = msg.strip_suffix(b"\n").ok_or(MultistreamError::BadMessage)?;
    let s = std::str::from_utf8(line).map_err(|_| MultistreamError::BadMessage)?.to_string();
    buf.drain(..end);
    Ok(Some(s))
}

impl Negotiation {
    /// A dialer proposing `protocols` in preference order (header and first proposal go out at
    /// once, as go-libp2p and rust-libp2p do).
    pub fn dialer(protocols: &[&str]) -> Negotiation {
        let mut n = Negotiation {
            dialer: true,
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            next: 0,
            proposals_seen: 0,
            state: State::AwaitHeader,
            inbuf: Vec::new(),
            out: Vec::new(),
        };
        put_message(&mut n.out, HEADER);
        n.propose();
        n
    }

    /// A listener speaking `protocols`.
    pub fn listener(protocols: &[&str]) -> Negotiation {
        let mut n = Negotiation {
            dialer: false,
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            next: 0,
            proposals_seen: 0,
            state: State::AwaitHeader,
            inbuf: Vec::new(),
            out: Vec::new(),
        };
        put_message(&mut n.out, HEADER);
        n
    }

    fn propose(&mut self) {
        match self.protocols.get(self.next) {
            Some(p) => {
                put_message(&mut self.out, &p.clone());
                self.next += 1;
            }
            None => self.state = State::Failed(MultistreamError::NoProtocol),
        }
    }

    /// Feeds received bytes; the negotiation advances as far as they allow.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), MultistreamError> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        self.inbuf.extend_from_slice(data);
        while !matches!(self.state, State::Done(_) | State::Failed(_)) {
            let msg = match take_message(&mut self.inbuf) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    self.state = State::Failed(e.clone());
                    return Err(e);
                }
            };
            self.step(msg);
        }
        if self.inbuf.len() > MAX_MESSAGE + 2 && !matches!(self.state, State::Done(_)) {
            self.state = State::Failed(MultistreamError::MessageTooLong { len: self.inbuf.len() as u64 });
        }
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    fn step(&mut self, msg: String) {
        self.state = match (&self.state, self.dialer) {
            (State::AwaitHeader, _) if msg != HEADER => State::Failed(MultistreamError::WrongHeader(msg)),
            (State::AwaitHeader, true) => State::AwaitAnswer,
            (State::AwaitHeader, false) => State::AwaitProposal,
            (State::AwaitAnswer, _) if msg == NA => {
                self.propose();
                if matches!(self.state, State::Failed(_)) {
                    return;
                }
                State::AwaitAnswer
            }
            (State::AwaitAnswer, _) => {
                if self.next > 0 && self.protocols.get(self.next - 1) == Some(&msg) {
                    State::Done(msg)
                } else {
                    State::Failed(MultistreamError::UnexpectedResponse(msg))
                }
            }
            (State::AwaitProposal, _) => {
                self.proposals_seen += 1;
                if self.proposals_seen > MAX_PROPOSALS {
                    State::Failed(MultistreamError::TooManyProposals)
                } else if self.protocols.contains(&msg) {
                    put_message(&mut self.out, &msg);
                    State::Done(msg)
                } else {
                    put_message(&mut self.out, NA);
                    State::AwaitProposal
                }
            }
            (s, _) => s.clone(),
        };
    }

    /// Moves the bytes to send into `out`; returns whether there were any.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.out.is_empty() {
            return false;
        }
        out.append(&mut self.out);
        true
    }

    /// The agreed protocol, once negotiated.
    pub fn protocol(&self) -> Option<&str> {
        match &self.state {
            State::Done(p) => Some(p),
            _ => None,
        }
    }

    pub fn error(&self) -> Option<&MultistreamError> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Moves the bytes received after the negotiation (the start of the protocol's own data)
    /// into `out`; returns whether there were any.
    pub fn poll_remaining(&mut self, out: &mut Vec<u8>) -> bool {
        if self.inbuf.is_empty() {
            return false;
        }
        out.append(&mut self.inbuf);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Runs both sides over byte pipes split at random points.
    fn run(mut d: Negotiation, mut l: Negotiation, rng: &mut Rng) -> (Negotiation, Negotiation) {
        for _ in 0..20 {
            for (from, to) in [(0, 1), (1, 0)] {
                let mut bytes = Vec::new();
                let src = if from == 0 { &mut d } else { &mut l };
                src.poll_transmit(&mut bytes);
                let dst = if to == 0 { &mut d } else { &mut l };
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let n = 1 + rng.below(rest.len() as u64) as usize;
                    let _ = dst.handle_input(&rest[..n]);
                    rest = &rest[n..];
                }
            }
        }
        (d, l)
    }

    #[test]
    fn agrees_on_the_first_protocol_both_speak() {
        let mut rng = Rng::new(1);
        for _ in 0..50 {
            let (d, l) = run(
                Negotiation::dialer(&["/meshsub/1.2.0", "/meshsub/1.1.0", "/meshsub/1.0.0"]),
                Negotiation::listener(&["/meshsub/1.1.0", "/meshsub/1.0.0"]),
                &mut rng,
            );
            assert_eq!(d.protocol(), Some("/meshsub/1.1.0"));
            assert_eq!(l.protocol(), Some("/meshsub/1.1.0"));
        }
        let (d, l) = run(Negotiation::dialer(&["/noise"]), Negotiation::listener(&["/tls/1.0.0"]), &mut rng);
        assert_eq!(d.error(), Some(&MultistreamError::NoProtocol));
        assert!(l.protocol().is_none());
    }

    #[test]
    fn wire_bytes_match_the_spec_and_trailing_data_is_kept() {
        let mut d = Negotiation::dialer(&["/noise"]);
        let mut out = Vec::new();
        d.poll_transmit(&mut out);
        assert_eq!(out, b"\x13/multistream/1.0.0\n\x07/noise\n");
        // The listener's echo arrives together with the first bytes of the Noise handshake.
        d.handle_input(b"\x13/multistream/1.0.0\n\x07/noise\n\x00\x20abc").unwrap();
        assert_eq!(d.protocol(), Some("/noise"));
        let mut rest = Vec::new();
        assert!(d.poll_remaining(&mut rest));
        assert_eq!(rest, b"\x00\x20abc");
    }

    #[test]
    fn hostile_input_fails_without_panics_or_growth() {
        let mut rng = Rng::new(2);
        let mut good = Vec::new();
        put_message(&mut good, HEADER);
        put_message(&mut good, "/noise");
        for n in 0..good.len() {
            let mut l = Negotiation::listener(&["/noise"]);
            l.handle_input(&good[..n]).unwrap();
            assert!(l.protocol().is_none());
        }
        for _ in 0..3000 {
            let mut b = vec![0u8; rng.below(64) as usize];
            rng.fill(&mut b);
            let mut l = Negotiation::listener(&["/noise"]);
            let _ = l.handle_input(&b);
            let mut d = Negotiation::dialer(&["/noise"]);
            let _ = d.handle_input(&b);
        }
        let mut l = Negotiation::listener(&["/noise"]);
        assert_eq!(l.handle_input(&[0xff, 0xff, 0x7f]), Err(MultistreamError::BadVarint));
        let mut l = Negotiation::listener(&["/noise"]);
        assert!(matches!(l.handle_input(&[0x80, 0x10]), Err(MultistreamError::MessageTooLong { .. })));
        // Endless refused proposals end the negotiation.
        let mut l = Negotiation::listener(&["/noise"]);
        let mut msgs = good[..20].to_vec();
        for i in 0..20 {
            put_message(&mut msgs, &format!("/p/{i}"));
        }
        assert_eq!(l.handle_input(&msgs), Err(MultistreamError::TooManyProposals));
    }
}
