//! One connection's upgrade, as libp2p upgrades TCP: multistream-select `/noise`, the Noise XX
//! handshake, multistream-select `/yamux/1.0.0` inside the secure channel, then the yamux
//! session whose streams `streams` serves. Bytes from the socket go in (`handle_input`);
//! bytes for it collect in the connection's buffer for `Swarm::poll_transmit`. A handshake
//! must finish within `HANDSHAKE_TIMEOUT`, an open session must answer yamux keep-alives, and
//! a peer must read what it is sent.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::streams::Sub;
use super::{ConnId, Swarm};
use crate::p2p::gossipsub::Protocol as MeshProtocol;
use crate::p2p::identity::PeerId;
use crate::p2p::multistream::Negotiation;
use crate::p2p::noise::{self, NoiseSession};
use crate::p2p::yamux::{self, Mode};
use crate::time::Now;

/// How long a connection has from its TCP accept (or dial) to an admitted peer — multistream,
/// Noise XX, multistream again for yamux: 5 s. An honest upgrade is three or four round trips
/// and a signature each way, under a second across continents even on a small board, and a TCP
/// dial still gets one SYN retransmit (after 1 s) inside it. A socket that stalls holds its
/// pending slot this long at most (go-libp2p allows 15 s for an inbound upgrade).
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Raw bytes queued for a socket beyond which the connection is dropped (a peer not reading).
const MAX_CONN_BACKLOG: usize = 16 << 20;

/// How far a connection's upgrade got.
pub(super) enum Phase {
    Security(Negotiation),
    Handshake(NoiseSession),
    Muxer(NoiseSession, Negotiation),
    Open(NoiseSession, yamux::Session),
    Closed,
}

/// One TCP connection and its upgrade state.
pub(super) struct Conn {
    pub(super) outbound: bool,
    pub(super) remote: SocketAddr,
    expected: Option<PeerId>,
    pub(super) phase: Phase,
    pub(super) peer: Option<PeerId>,
    pub(super) out: Vec<u8>,
    /// The handshake deadline, until the peer is admitted: while it is set the connection is
    /// pending, and an inbound one counts against the pending pool, not `--p2p.peers.hi`.
    pub(super) deadline: Option<Instant>,
    /// Whether the remote has sent any byte yet.
    pub(super) spoke: bool,
    /// The swarm's `events` count when the remote last sent bytes (or the connection opened):
    /// the pending pool evicts the silent, then the longest quiet, handshake first.
    pub(super) quiet_since: u64,
    pub(super) subs: BTreeMap<u32, Sub>,
    pub(super) mesh_out: Option<(u32, MeshProtocol)>,
    pub(super) in_router: bool,
    pub(super) protocols: Vec<String>,
}

impl Swarm {
    pub(super) fn new_conn(
        &mut self,
        outbound: bool,
        remote: SocketAddr,
        expected: Option<PeerId>,
        now: Now,
    ) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        self.events += 1;
        let neg = if outbound {
            Negotiation::dialer(&[noise::PROTOCOL])
        } else {
            Negotiation::listener(&[noise::PROTOCOL])
        };
        let mut c = Conn {
            outbound,
            remote,
            expected,
            phase: Phase::Security(neg),
            peer: None,
            out: Vec::new(),
            deadline: Some(now.mono + HANDSHAKE_TIMEOUT),
            spoke: false,
            quiet_since: self.events,
            subs: BTreeMap::new(),
            mesh_out: None,
            in_router: false,
            protocols: Vec::new(),
        };
        if let Phase::Security(n) = &mut c.phase {
            n.poll_transmit(&mut c.out);
        }
        self.conns.insert(id, c);
        id
    }

    /// Bytes from the socket of `conn`.
    pub fn handle_input(&mut self, id: ConnId, data: &[u8], now: Now) {
        if let Err(e) = self.process(id, data, now) {
            self.fail(id, &e, now);
        }
        self.after_io(now);
    }

    fn process(&mut self, id: ConnId, data: &[u8], now: Now) -> Result<(), String> {
        let Some(mut c) = self.conns.remove(&id) else { return Ok(()) };
        if !data.is_empty() && c.deadline.is_some() {
            self.events += 1;
            c.spoke = true;
            c.quiet_since = self.events;
        }
        let r = self.advance(&mut c, data, now);
        let backlog = c.out.len();
        self.conns.insert(id, c);
        r?;
        if backlog > MAX_CONN_BACKLOG {
            return Err("peer does not read".into());
        }
        self.connected(id, now)
    }

    /// Runs the upgrade phases over `data`, then the streams.
    fn advance(&mut self, c: &mut Conn, data: &[u8], now: Now) -> Result<(), String> {
        let mut input = data.to_vec();
        loop {
            match std::mem::replace(&mut c.phase, Phase::Closed) {
                Phase::Security(mut neg) => {
                    neg.handle_input(&input).map_err(|e| format!("multistream: {e}"))?;
                    neg.poll_transmit(&mut c.out);
                    if neg.protocol().is_none() {
                        c.phase = Phase::Security(neg);
                        return Ok(());
                    }
                    input.clear();
                    neg.poll_remaining(&mut input);
                    let rng = &mut *self.noise_rng;
                    let mut s = if c.outbound {
                        NoiseSession::initiator(&self.key, c.expected.clone(), rng)
                    } else {
                        NoiseSession::responder(&self.key, rng)
                    }
                    .map_err(|e| e.to_string())?;
                    s.poll_transmit(&mut c.out);
                    c.phase = Phase::Handshake(s);
                }
                Phase::Handshake(mut s) => {
                    s.handle_input(&input).map_err(|e| e.to_string())?;
                    s.poll_transmit(&mut c.out);
                    if !s.is_established() {
                        c.phase = Phase::Handshake(s);
                        return Ok(());
                    }
                    c.peer = s.remote_peer().cloned();
                    let mut neg = if c.outbound {
                        Negotiation::dialer(&[yamux::PROTOCOL])
                    } else {
                        Negotiation::listener(&[yamux::PROTOCOL])
                    };
                    let mut plain = Vec::new();
                    neg.poll_transmit(&mut plain);
                    s.send(&plain).map_err(|e| e.to_string())?;
                    s.poll_transmit(&mut c.out);
                    // Transport data that came with the last handshake message is already
                    // decrypted inside the session; the muxer phase takes it from there.
                    input = Vec::new();
                    c.phase = Phase::Muxer(s, neg);
                }
                Phase::Muxer(mut s, mut neg) => {
                    if !input.is_empty() {
                        s.handle_input(&input).map_err(|e| e.to_string())?;
                    }
                    let mut received = Vec::new();
                    s.poll_plaintext(&mut received);
                    neg.handle_input(&received).map_err(|e| format!("muxer multistream: {e}"))?;
                    let mut plain = Vec::new();
                    neg.poll_transmit(&mut plain);
                    s.send(&plain).map_err(|e| e.to_string())?;
                    s.poll_transmit(&mut c.out);
                    if neg.protocol().is_none() {
                        c.phase = Phase::Muxer(s, neg);
                        return Ok(());
                    }
                    let mut mux = yamux::Session::new(if c.outbound { Mode::Client } else { Mode::Server });
                    let mut rest = Vec::new();
                    neg.poll_remaining(&mut rest);
                    mux.handle_input(&rest).map_err(|e| format!("yamux: {e}"))?;
                    input = Vec::new();
                    c.phase = Phase::Open(s, mux);
                }
                Phase::Open(mut s, mut mux) => {
                    let r = self.open_data(c, &mut s, &mut mux, &input, now);
                    c.phase = Phase::Open(s, mux);
                    return r;
                }
                Phase::Closed => return Err("connection closed".into()),
            }
        }
    }

    /// Moves router output and stream work of one open connection to its socket buffer.
    pub(super) fn pump_conn(&mut self, id: ConnId, now: Now) {
        let Some(mut c) = self.conns.remove(&id) else { return };
        let r = match std::mem::replace(&mut c.phase, Phase::Closed) {
            Phase::Open(mut s, mut mux) => {
                let r = self.open_data(&mut c, &mut s, &mut mux, &[], now);
                c.phase = Phase::Open(s, mux);
                r
            }
            other => {
                c.phase = other;
                Ok(())
            }
        };
        self.conns.insert(id, c);
        if let Err(e) = r {
            self.fail(id, &e, now);
        }
    }

    /// Fails connections whose handshake ran out of time and sessions whose keep-alive went
    /// unanswered.
    pub(super) fn conn_timeouts(&mut self, now: Now) {
        let late: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|t| t <= now.mono))
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            self.fail(id, "handshake timed out", now);
        }
        let mut silent = Vec::new();
        for (id, c) in self.conns.iter_mut() {
            if let Phase::Open(_, mux) = &mut c.phase {
                if mux.handle_timeout(now.mono).is_err() {
                    silent.push(*id);
                }
            }
        }
        for id in silent {
            self.fail(id, "yamux keep-alive ping not answered", now);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{pump, swarm};
    use super::*;
    use crate::p2p::multiaddr::Multiaddr;
    use crate::protocol::primitives::Address;
    use crate::time::test_now;

    #[test]
    fn a_peer_that_stops_answering_keep_alives_is_dropped() {
        let now = test_now();
        let mut rng = crate::rng::Rng::new(12);
        let mut a = swarm(1, None, Address::ZERO, now);
        let mut b = swarm(2, None, Address::ZERO, now);
        let ca =
            a.dial(&Multiaddr::new("10.0.0.2:9222".parse().unwrap(), Some(b.local_peer())), now).unwrap();
        let cb = b.handle_inbound("10.0.0.1:40000".parse().unwrap(), now).unwrap();
        pump(&mut a, ca, &mut b, cb, now, &mut rng);
        assert_eq!(a.peer_count(), 1);
        // While b answers, pings keep the connection for minutes.
        let mut t = now;
        for _ in 0..10 {
            t = t.advance(yamux::KEEPALIVE_INTERVAL);
            a.handle_timeout(t);
            b.handle_timeout(t);
            pump(&mut a, ca, &mut b, cb, t, &mut rng);
        }
        assert_eq!(a.peer_count(), 1);
        // b goes silent (its bytes never arrive): a gives up after the keep-alive timeout.
        for _ in 0..4 {
            t = t.advance(yamux::KEEPALIVE_INTERVAL);
            a.handle_timeout(t);
            let mut sink = Vec::new();
            a.poll_transmit(ca, &mut sink);
        }
        assert_eq!(a.peer_count(), 0);
        assert!(std::iter::from_fn(|| a.poll_close()).any(|c| c == ca));
    }

    #[test]
    fn garbage_peers_and_silent_handshakes_are_dropped() {
        let now = test_now();
        let mut a = swarm(1, None, Address::ZERO, now);
        let mut rng = crate::rng::Rng::new(5);
        for _ in 0..500 {
            let id = a.handle_inbound("10.0.0.9:1".parse().unwrap(), now).unwrap();
            let mut junk = vec![0u8; rng.below(300) as usize];
            rng.fill(&mut junk);
            a.handle_input(id, &junk, now);
            a.handle_closed(id, now);
        }
        assert!(a.conns.is_empty());
        let id = a.handle_inbound("10.0.0.9:2".parse().unwrap(), now).unwrap();
        a.handle_timeout(now.advance(HANDSHAKE_TIMEOUT + Duration::from_secs(1)));
        assert!(std::iter::from_fn(|| a.poll_close()).any(|c| c == id), "the silent connection is closed");
    }

    /// Follows `poll_timeout` as the I/O loop does (firing the heartbeats on the way) up to the
    /// next handshake deadline, which it returns; nothing closes before it.
    fn next_handshake_deadline(s: &mut Swarm, t0: Now) -> Instant {
        for _ in 0..100 {
            let (at, what) = s.poll_timeout().unwrap();
            if what == "p2p handshake" {
                return at;
            }
            s.handle_timeout(t0.advance(at - t0.mono));
            assert_eq!(s.poll_close(), None, "closed before its deadline");
        }
        panic!("no handshake deadline")
    }

    #[test]
    fn stalled_handshakes_are_dropped_at_their_deadline_and_not_before() {
        let t0 = test_now();
        let mut n = swarm(1, None, Address::ZERO, t0);
        // Off the heartbeat's 500 ms grid, so that poll_timeout names the handshake deadline.
        let ta = t0.advance(Duration::from_millis(250));
        let first: Vec<ConnId> =
            (1..=3).map(|i| n.handle_inbound(SocketAddr::from(([10, 0, 0, i], 4000)), ta).unwrap()).collect();
        let t1 = ta.advance(Duration::from_secs(1));
        let later = n.handle_inbound("10.0.0.9:4000".parse().unwrap(), t1).unwrap();
        assert_eq!(next_handshake_deadline(&mut n, t0), ta.mono + HANDSHAKE_TIMEOUT);
        // Spurious wake-ups just before the deadline close nothing.
        let early = ta.advance(HANDSHAKE_TIMEOUT - Duration::from_millis(1));
        n.handle_timeout(early);
        n.handle_timeout(early);
        assert_eq!((n.poll_close(), n.conns.len()), (None, 4));
        n.handle_timeout(ta.advance(HANDSHAKE_TIMEOUT));
        assert_eq!(std::iter::from_fn(|| n.poll_close()).collect::<Vec<_>>(), first);
        assert_eq!(n.stats.handshake_failures, 3);
        assert_eq!(next_handshake_deadline(&mut n, t0), t1.mono + HANDSHAKE_TIMEOUT);
        n.handle_timeout(t1.advance(HANDSHAKE_TIMEOUT));
        assert_eq!(n.poll_close(), Some(later));
        assert!(n.conns.is_empty());
        assert!(n.poll_timeout().is_some_and(|(_, what)| what != "p2p handshake"));
    }
}
