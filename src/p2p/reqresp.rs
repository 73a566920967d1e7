//! The `payload_by_number` req-resp protocol (`specs/protocol/rollup-node-p2p.md`, op-node's
//! `op-node/p2p/sync.go`), served as "not found": the network is retiring it, but peers
//! down-score nodes that leave its streams unanswered.
//!
//! A request is an 8-byte little-endian block number, after which the requester closes its
//! write side. A response starts with a result byte (0 success, 1 not found, 2 invalid
//! request, 3 other error); only success carries a version and payload. As op-node does on a
//! failed request, the responder writes the single result byte and closes the stream: not
//! found for a whole request, "other error" for one cut short or not read within 10 s.
//!
//! Sans-IO, one `NotFoundResponder` per stream: call `handle_input` with the stream's bytes (it
//! returns how many it consumed) and `handle_eof` when the requester closes its side, then
//! drain `poll_transmit` and close the stream once `is_done`; wait for `poll_timeout` and call
//! `handle_timeout` (a call before the deadline does nothing).

use std::time::{Duration, Instant};

/// op-node's read deadline for the request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The request: a little-endian `uint64` block number.
pub const REQUEST_LEN: usize = 8;

/// The protocol id op-node registers, `/opstack/req/payload_by_number/<chain>/0` (the spec
/// writes a trailing slash that op-node does not).
pub fn protocol_id(chain_id: u64) -> String {
    format!("/opstack/req/payload_by_number/{chain_id}/0")
}

/// True for the protocol id of chain `chain_id`, with or without the spec's trailing slash.
pub fn is_protocol(id: &str, chain_id: u64) -> bool {
    let want = protocol_id(chain_id);
    id.strip_suffix('/').unwrap_or(id) == want
}

/// A response's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ResultCode {
    Success = 0,
    NotFound = 1,
    InvalidRequest = 2,
    Unknown = 3,
}

/// One inbound `payload_by_number` stream, answered "not found".
#[derive(Debug, Clone)]
pub struct NotFoundResponder {
    request: [u8; REQUEST_LEN],
    read: usize,
    deadline: Instant,
    answer: Option<ResultCode>,
    sent: bool,
}

impl NotFoundResponder {
    /// A responder for a stream opened at `now`.
    pub fn new(now: Instant) -> Self {
        NotFoundResponder {
            request: [0; REQUEST_LEN],
            read: 0,
            deadline: now + REQUEST_TIMEOUT,
            answer: None,
            sent: false,
        }
    }

    /// Takes request bytes and returns how many it consumed; bytes past the request are not
    /// consumed (op-node reads 8 bytes and closes its read side).
    pub fn handle_input(&mut self, data: &[u8]) -> usize {
        if self.answer.is_some() {
            return 0;
        }
        let n = data.len().min(REQUEST_LEN - self.read);
        self.request[self.read..self.read + n].copy_from_slice(&data[..n]);
        self.read += n;
        if self.read == REQUEST_LEN {
            self.answer = Some(ResultCode::NotFound);
        }
        n
    }

    /// The requester closed its write side.
    pub fn handle_eof(&mut self) {
        self.answer.get_or_insert(ResultCode::Unknown);
    }

    /// Gives up on an unfinished request at the deadline; otherwise does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.deadline {
            self.answer.get_or_insert(ResultCode::Unknown);
        }
    }

    /// The read deadline while the request is incomplete.
    pub fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        self.answer.is_none().then_some((self.deadline, "payload-by-number-read"))
    }

    /// Appends the response once it is decided; the transport then closes the stream.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        match self.answer {
            Some(code) if !self.sent => {
                out.push(code as u8);
                self.sent = true;
                true
            }
            _ => false,
        }
    }

    /// True once the response has been handed out: close the stream.
    pub fn is_done(&self) -> bool {
        self.sent
    }

    /// The requested block number, once read.
    pub fn requested(&self) -> Option<u64> {
        (self.read == REQUEST_LEN).then(|| u64::from_le_bytes(self.request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::time::test_now;

    #[test]
    fn protocol_ids() {
        assert_eq!(protocol_id(10), "/opstack/req/payload_by_number/10/0");
        assert!(is_protocol("/opstack/req/payload_by_number/11155420/0", 11_155_420));
        assert!(is_protocol("/opstack/req/payload_by_number/11155420/0/", 11_155_420));
        assert!(!is_protocol("/opstack/req/payload_by_number/10/0", 11_155_420));
        assert!(!is_protocol("/opstack/req/payload_by_number/10/1", 10));
    }

    #[test]
    fn whole_request_in_any_split_is_answered_not_found() {
        let t0 = test_now().mono;
        let req = 26_207_960u64.to_le_bytes();
        for cut in 0..=REQUEST_LEN {
            let mut r = NotFoundResponder::new(t0);
            let mut out = Vec::new();
            assert_eq!(r.handle_input(&req[..cut]), cut);
            assert_eq!(r.poll_transmit(&mut out), cut == REQUEST_LEN);
            let mut rest = req[cut..].to_vec();
            rest.extend_from_slice(b"trailing");
            assert_eq!(r.handle_input(&rest), REQUEST_LEN - cut);
            assert!(r.poll_transmit(&mut out) || cut == REQUEST_LEN);
            assert_eq!(out, [1]);
            assert!(r.is_done() && !r.poll_transmit(&mut out));
            assert_eq!(r.requested(), Some(26_207_960));
            assert_eq!(r.poll_timeout(), None);
        }
    }

    #[test]
    fn short_or_slow_requests_get_the_unknown_error() {
        let t0 = test_now().mono;
        let mut r = NotFoundResponder::new(t0);
        r.handle_input(&[1, 2, 3]);
        r.handle_eof();
        let mut out = Vec::new();
        assert!(r.poll_transmit(&mut out));
        assert_eq!((out.as_slice(), r.requested()), ([3u8].as_slice(), None));

        let mut r = NotFoundResponder::new(t0);
        assert_eq!(r.poll_timeout(), Some((t0 + REQUEST_TIMEOUT, "payload-by-number-read")));
        r.handle_timeout(t0 + Duration::from_secs(9));
        assert!(!r.poll_transmit(&mut out));
        r.handle_timeout(t0 + REQUEST_TIMEOUT);
        out.clear();
        assert!(r.poll_transmit(&mut out));
        assert_eq!(out, [ResultCode::Unknown as u8]);
        // Late input no longer changes the answer.
        assert_eq!(r.handle_input(&[0; 8]), 0);
    }

    #[test]
    fn random_input_never_panics_and_answers_once() {
        let t0 = test_now().mono;
        let mut rng = Rng::new(0xfeed);
        for _ in 0..2000 {
            let mut r = NotFoundResponder::new(t0);
            let mut out = Vec::new();
            for _ in 0..rng.below(6) {
                let mut chunk = vec![0u8; rng.below(12) as usize];
                rng.fill(&mut chunk);
                assert!(r.handle_input(&chunk) <= chunk.len());
                r.poll_transmit(&mut out);
            }
            match rng.below(3) {
                0 => r.handle_eof(),
                1 => r.handle_timeout(t0 + REQUEST_TIMEOUT),
                _ => {}
            }
            r.poll_transmit(&mut out);
            assert!(out.len() <= 1);
            if let Some(code) = out.first() {
                assert!(*code == 1 || *code == 3);
            }
        }
    }
}
