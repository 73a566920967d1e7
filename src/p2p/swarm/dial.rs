//! Who the swarm is connected to: dials (the operator's and the static peers', redialled every
//! second until first reached (for 30 s at most), then with exponential backoff from 2 s to 60 s), inbound connections through a small pool of pending
//! handshakes, the admission of an authenticated peer (not ourselves, blocked, banned, already
//! connected, or inbound beyond `--p2p.peers.hi`), closing connections, and the operator's
//! disconnect and block list.
//!
//! Until its upgrade finishes an inbound connection is a socket anyone can open, so it never
//! takes a peer slot: it waits in the pending pool, at most `MAX_PENDING_INBOUND` of them and
//! `MAX_PENDING_PER_IP` from one address, each for at most `HANDSHAKE_TIMEOUT`. A newcomer to a
//! full pool evicts the most stalled pending handshake (silent ones first, the oldest first), so
//! sockets that stall and reconnect cannot keep out an honest peer, which speaks at once.
//! `--p2p.peers.hi` counts admitted peers only. Our own dials never enter the pool, and static
//! peers are dialled and admitted whatever the peer count (op-node's connection manager
//! protects them the same way).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::conn::Phase;
use super::{ConnId, Swarm};
use crate::p2p::identity::PeerId;
use crate::p2p::multiaddr::Multiaddr;
use crate::time::Now;

const REDIAL_MIN: Duration = Duration::from_secs(2);
const REDIAL_MAX: Duration = Duration::from_secs(60);
/// A static peer never reached yet is dialled every second for this long before the backoff
/// grows: nodes started together (a verifier beside its sequencer) find each other at once.
pub(super) const FIRST_CONTACT: Duration = Duration::from_secs(30);
const FIRST_CONTACT_REDIAL: Duration = Duration::from_secs(1);
/// Inbound connections still upgrading (not yet authenticated and admitted) held at once: 16,
/// go-libp2p's accept queue. Each costs a socket and a few KB (at most one partial 64 KB Noise
/// message); an honest upgrade takes well under a second, so 16 absorb a burst of peers
/// reconnecting at once.
pub(super) const MAX_PENDING_INBOUND: usize = 16;
/// Pending inbound connections from one IPv4 address or IPv6 /56: 8, go-libp2p's per-address
/// connection limit. One host (or one NAT) holds at most half of the pool; a newcomer from an
/// address at its share evicts a pending handshake from that same address.
pub(super) const MAX_PENDING_PER_IP: usize = 8;

/// A `--p2p.static` or bootnode address, kept connected.
pub(super) struct StaticPeer {
    addr: Multiaddr,
    pub(super) conn: Option<ConnId>,
    pub(super) next_dial: Instant,
    backoff: Duration,
    /// Until first connected (and at most `FIRST_CONTACT` after start), redials are prompt.
    seeking_until: Option<Instant>,
}

impl StaticPeer {
    pub(super) fn new(addr: Multiaddr, now: Now) -> StaticPeer {
        StaticPeer {
            addr,
            conn: None,
            next_dial: now.mono,
            backoff: REDIAL_MIN,
            seeking_until: Some(now.mono + FIRST_CONTACT),
        }
    }

    /// Schedules the next dial after a failed or lost one.
    fn dial_later(&mut self, now: Now) {
        if self.seeking_until.is_some_and(|t| now.mono < t) {
            self.next_dial = now.mono + FIRST_CONTACT_REDIAL;
            return;
        }
        self.next_dial = now.mono + self.backoff;
        self.backoff = (self.backoff * 2).min(REDIAL_MAX);
    }
}

/// What `MAX_PENDING_PER_IP` counts by: the IPv4 address, or the IPv6 /56 (a host's usual
/// delegation, go-libp2p's IPv6 prefix for the same limit).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 72) - 1)).into()),
        v4 => v4,
    }
}

impl Swarm {
    /// Dials `addr` (`opp2p_connectPeer`): the I/O layer takes the dial from `poll_dial` and
    /// reports `handle_closed` if it fails. Refused at the peer limit.
    pub fn dial(&mut self, addr: &Multiaddr, now: Now) -> Result<ConnId, String> {
        self.dial_as(addr, false, now)
    }

    /// A dial; a static peer's (`protected`) is made whatever the peer count, as op-node's
    /// connection manager protects static peers.
    fn dial_as(&mut self, addr: &Multiaddr, protected: bool, now: Now) -> Result<ConnId, String> {
        if let Some(p) = &addr.peer {
            if self.blocked.contains(p) {
                return Err(format!("peer {p} is blocked"));
            }
            if self.by_peer.contains_key(p) {
                return Err(format!("already connected to {p}"));
            }
        }
        let dialling = self.conns.values().filter(|c| c.outbound && c.deadline.is_some()).count();
        if !protected && self.by_peer.len() + dialling >= self.cfg.peers_hi {
            return Err(format!("at the peer limit ({})", self.cfg.peers_hi));
        }
        let id = self.new_conn(true, addr.addr, addr.peer.clone(), now);
        self.dials.push_back((id, addr.addr));
        Ok(id)
    }

    /// An inbound TCP connection, taken into the pending pool. When the pool, or the share of
    /// the remote's address, is full, the most stalled pending handshake is closed to make room
    /// (it comes out of `poll_close`). `None` would refuse the socket; the pool makes room
    /// instead, and the peer limit is checked once the peer is authenticated.
    pub fn handle_inbound(&mut self, remote: SocketAddr, now: Now) -> Option<ConnId> {
        while let Some(victim) = self.pending_victim(remote.ip()) {
            self.fail(victim, "pending handshake evicted for a newcomer: the pool is full", now);
        }
        Some(self.new_conn(false, remote, None, now))
    }

    /// The pending inbound connection a newcomer from `ip` evicts, if the pool has no room for
    /// it: from the newcomer's own address when that has its share, else from the whole pool;
    /// a silent one before one that spoke, the longest quiet first.
    fn pending_victim(&self, ip: IpAddr) -> Option<ConnId> {
        let key = address_key(ip);
        let pending = self.conns.iter().filter(|(_, c)| !c.outbound && c.deadline.is_some());
        let total = pending.clone().count();
        let ours = pending.clone().filter(|(_, c)| address_key(c.remote.ip()) == key).count();
        let crowded = ours >= MAX_PENDING_PER_IP;
        if !crowded && total < MAX_PENDING_INBOUND {
            return None;
        }
        pending
            .filter(|(_, c)| !crowded || address_key(c.remote.ip()) == key)
            .min_by_key(|(_, c)| (c.spoke, c.quiet_since))
            .map(|(id, _)| *id)
    }

    /// The next connection the I/O layer must open, and where to.
    pub fn poll_dial(&mut self) -> Option<(ConnId, SocketAddr)> {
        self.dials.pop_front()
    }

    /// The next connection the I/O layer must close.
    pub fn poll_close(&mut self) -> Option<ConnId> {
        self.closes.pop_front()
    }

    pub(super) fn fail(&mut self, id: ConnId, why: &str, now: Now) {
        if let Some(c) = self.conns.get(&id) {
            log::debug!("closing connection {id} to {} ({:?}): {why}", c.remote, c.peer);
        }
        self.closes.push_back(id);
        self.handle_closed(id, now);
    }

    /// The socket closed (or a dial failed).
    pub fn handle_closed(&mut self, id: ConnId, now: Now) {
        let Some(c) = self.conns.remove(&id) else { return };
        if c.deadline.is_some() {
            self.stats.handshake_failures += 1;
        }
        if let Some(p) = &c.peer {
            if self.by_peer.get(p) == Some(&id) {
                self.by_peer.remove(p);
                log::info!("disconnected from peer {p} at {}", c.remote);
            }
            if c.in_router {
                self.router.remove_peer(p, now.mono);
            }
        }
        for s in &mut self.statics {
            if s.conn == Some(id) {
                s.conn = None;
                s.dial_later(now);
            }
        }
    }

    /// A connection finished its handshake: register the peer once.
    pub(super) fn connected(&mut self, id: ConnId, now: Now) -> Result<(), String> {
        let Some(c) = self.conns.get_mut(&id) else { return Ok(()) };
        if c.deadline.is_none() || !matches!(c.phase, Phase::Open(..)) {
            return Ok(());
        }
        c.deadline = None;
        let (outbound, remote) = (c.outbound, c.remote);
        let Some(peer) = c.peer.clone() else { return Err("no peer id".into()) };
        self.stats.handshakes += 1;
        if peer == self.key.peer_id() {
            return Err("connected to ourselves".into());
        }
        if self.blocked.contains(&peer) {
            return Err(format!("peer {peer} is blocked"));
        }
        if self.router.is_banned(&peer, now.mono) {
            return Err(format!("peer {peer} is banned"));
        }
        if let Some(other) = self.by_peer.get(&peer).copied() {
            if other != id {
                // Both sides dialled at once (discovered peers often do): each side keeps the
                // connection dialled by the peer with the smaller id, so both keep the same
                // one; refusing the newer one on both sides would close both.
                let keeper_is_ours = self.key.peer_id() < peer;
                let other_outbound = self.conns.get(&other).is_some_and(|c| c.outbound);
                if outbound != keeper_is_ours || other_outbound == keeper_is_ours {
                    return Err(format!("already connected to {peer}"));
                }
                self.fail(
                    other,
                    "simultaneous connection: the peer with the smaller id dialled this one",
                    now,
                );
            }
        }
        // Our own dials passed the limit when they were made; static peers are exempt.
        if !outbound && self.by_peer.len() >= self.cfg.peers_hi && !self.is_static(&peer) {
            return Err(format!("at the peer limit ({})", self.cfg.peers_hi));
        }
        log::info!(
            "connected to peer {peer} at {remote} ({})",
            if outbound { "outbound" } else { "inbound" }
        );
        self.by_peer.insert(peer.clone(), id);
        for s in &mut self.statics {
            if s.conn == Some(id) {
                s.backoff = REDIAL_MIN;
                s.seeking_until = None;
            }
        }
        // Open our gossip stream now rather than on the next inbound byte.
        self.pump_conn(id, now);
        Ok(())
    }

    /// Whether `peer` is a `--p2p.static` (or bootnode) peer: never refused for the peer limit.
    fn is_static(&self, peer: &PeerId) -> bool {
        self.statics.iter().any(|s| s.addr.peer.as_ref() == Some(peer))
    }

    /// Dials the static peers whose redial is due.
    pub(super) fn redial(&mut self, now: Now) {
        for i in 0..self.statics.len() {
            let s = &self.statics[i];
            if s.conn.is_some() || s.next_dial > now.mono {
                continue;
            }
            if s.addr.peer.as_ref().is_some_and(|p| self.by_peer.contains_key(p)) {
                // Connected by the peer's own dial.
                self.statics[i].next_dial = now.mono + REDIAL_MAX;
                continue;
            }
            let addr = s.addr.clone();
            match self.dial_as(&addr, true, now) {
                Ok(id) => {
                    log::debug!("dialling static peer {addr}");
                    self.statics[i].conn = Some(id);
                }
                Err(e) => {
                    log::debug!("not dialling static peer {addr}: {e}");
                    self.statics[i].dial_later(now);
                }
            }
        }
    }

    /// Disconnects a peer (`opp2p_disconnectPeer`).
    pub fn disconnect(&mut self, peer: &PeerId, now: Now) -> bool {
        match self.by_peer.get(peer).copied() {
            Some(id) => {
                self.fail(id, "disconnected by the operator", now);
                true
            }
            None => false,
        }
    }

    /// Blocks a peer (`opp2p_blockPeer`): disconnected and refused from now on.
    pub fn block(&mut self, peer: PeerId, now: Now) {
        self.disconnect(&peer, now);
        self.blocked.insert(peer);
    }

    pub fn unblock(&mut self, peer: &PeerId) -> bool {
        self.blocked.remove(peer)
    }

    pub fn blocked(&self) -> Vec<PeerId> {
        self.blocked.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::super::conn::HANDSHAKE_TIMEOUT;
    use super::super::tests::{config, dial_in, pump, swarm, swarm_with};
    use super::super::SwarmConfig;
    use super::*;
    use crate::protocol::primitives::Address;
    use crate::time::test_now;

    const LOCALHOST: [u8; 4] = [127, 0, 0, 1];

    /// Asserts the pending pool's caps, and returns its size.
    fn assert_caps(s: &Swarm) -> usize {
        let mut per_ip = BTreeMap::new();
        let pending = s.conns.values().filter(|c| !c.outbound && c.deadline.is_some());
        for c in pending.clone() {
            *per_ip.entry(address_key(c.remote.ip())).or_insert(0) += 1;
        }
        let n = pending.count();
        assert!(n <= MAX_PENDING_INBOUND, "{n} pending inbound handshakes");
        for (ip, k) in per_ip {
            assert!(k <= MAX_PENDING_PER_IP, "{k} pending inbound handshakes from {ip}");
        }
        n
    }

    /// Sockets from 127.0.0.1 that never send a byte and reconnect as soon as they are closed.
    #[derive(Default)]
    struct Stalled {
        port: u16,
        open: BTreeSet<ConnId>,
        reconnects: usize,
    }

    impl Stalled {
        fn connect(&mut self, n: &mut Swarm, count: usize, now: Now) {
            for _ in 0..count {
                self.port = self.port.wrapping_add(1);
                let id = n.handle_inbound(SocketAddr::from((LOCALHOST, self.port)), now).unwrap();
                self.open.insert(id);
                assert_caps(n);
            }
        }

        /// Takes what `n` closed: every stalled socket among it reconnects. Returns the others.
        fn reconnect(&mut self, n: &mut Swarm, now: Now) -> Vec<ConnId> {
            let mut others = Vec::new();
            let mut again = 0;
            while let Some(c) = n.poll_close() {
                if self.open.remove(&c) {
                    again += 1;
                } else {
                    others.push(c);
                }
            }
            self.reconnects += again;
            self.connect(n, again, now);
            others
        }
    }

    /// Moves bytes between `a` and `n` one batch at a time, as the I/O loop does: what `a`
    /// sent is read, then the sockets `n` closed reconnect (the next accepts), then `n`'s
    /// answer goes out. Returns the connections `n` closed that were not stalled sockets.
    fn pump_under_attack(
        a: &mut Swarm,
        ca: ConnId,
        n: &mut Swarm,
        cn: ConnId,
        stalled: &mut Stalled,
        now: Now,
    ) -> Vec<ConnId> {
        let mut closed = Vec::new();
        for _ in 0..50 {
            let mut moved = false;
            let mut bytes = Vec::new();
            if a.poll_transmit(ca, &mut bytes) {
                n.handle_input(cn, &bytes, now);
                moved = true;
            }
            closed.extend(stalled.reconnect(n, now));
            bytes.clear();
            if n.poll_transmit(cn, &mut bytes) {
                a.handle_input(ca, &bytes, now);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        closed
    }

    #[test]
    fn forty_silent_sockets_from_one_ip_do_not_keep_out_an_honest_newcomer_from_that_ip() {
        let t0 = test_now();
        let mut n = swarm(1, None, Address::ZERO, t0);
        let mut stalled = Stalled::default();
        stalled.connect(&mut n, 40, t0);
        assert_eq!(stalled.reconnect(&mut n, t0), Vec::<ConnId>::new());
        let mut honest = Vec::new();
        // One newcomer at once, one when the stalled sockets' deadline has just rotated them.
        for (seed, t) in [(2, t0), (3, t0.advance(HANDSHAKE_TIMEOUT))] {
            n.handle_timeout(t);
            assert_eq!(stalled.reconnect(&mut n, t), Vec::<ConnId>::new(), "no honest connection is closed");
            let mut h = swarm(seed, None, Address::ZERO, t);
            let (ch, cn) =
                dial_in(&mut h, &mut n, SocketAddr::from((LOCALHOST, 50_000 + u16::from(seed))), t);
            assert_eq!(pump_under_attack(&mut h, ch, &mut n, cn, &mut stalled, t), Vec::<ConnId>::new());
            assert_eq!(h.peer_count(), 1, "the newcomer got through");
            honest.push(h.local_peer());
        }
        let mut peers: Vec<_> = n.peers().into_iter().map(|p| p.peer).collect();
        peers.sort();
        honest.sort();
        assert_eq!(peers, honest);
        assert!(stalled.reconnects > 40, "the stalled sockets kept coming back ({})", stalled.reconnects);
        assert_eq!(assert_caps(&n), MAX_PENDING_PER_IP, "the pool is still full of stalled sockets");
    }

    #[test]
    fn the_peer_limit_counts_admitted_peers_not_pending_handshakes() {
        let t0 = test_now();
        let mut rng = crate::rng::Rng::new(3);
        let mut n = swarm_with(1, SwarmConfig { peers_hi: 2, ..config() }, None, Address::ZERO, t0);
        // Stalled sockets from many addresses fill the whole pool.
        for i in 0..40u8 {
            n.handle_inbound(SocketAddr::from(([10, 1, 0, i % 5], 1000 + u16::from(i))), t0).unwrap();
        }
        assert_eq!(assert_caps(&n), MAX_PENDING_INBOUND);
        let mut honest = Vec::new();
        for seed in 2..=4 {
            let mut h = swarm(seed, None, Address::ZERO, t0);
            let (ch, cn) = dial_in(&mut h, &mut n, SocketAddr::from(([10, 2, 0, seed], 4000)), t0);
            pump(&mut h, ch, &mut n, cn, t0, &mut rng);
            honest.push((h, cn));
        }
        // Two fill --p2p.peers.hi; the third is authenticated, then refused.
        let admitted: Vec<usize> = honest.iter().map(|(h, _)| h.peer_count()).collect();
        assert_eq!((n.peer_count(), admitted), (2, vec![1, 1, 0]));
        assert!(std::iter::from_fn(|| n.poll_close()).any(|c| c == honest[2].1));
        assert_eq!(n.stats.handshakes, 3);
        // So is the operator's dial.
        let other = swarm(5, None, Address::ZERO, t0).local_peer();
        let err = n.dial(&Multiaddr::new("10.0.0.5:9222".parse().unwrap(), Some(other)), t0).unwrap_err();
        assert_eq!(err, "at the peer limit (2)");
    }

    #[test]
    fn a_static_peer_connects_with_the_pool_full_of_stalled_sockets_and_peers_hi_reached() {
        let t0 = test_now();
        let mut rng = crate::rng::Rng::new(4);
        let mut st = swarm(9, None, Address::ZERO, t0);
        let st_addr = Multiaddr::new("10.0.0.9:9222".parse().unwrap(), Some(st.local_peer()));
        let cfg = SwarmConfig { peers_hi: 2, static_peers: vec![st_addr.clone()], ..config() };
        let mut n = swarm_with(1, cfg, None, Address::ZERO, t0);
        let mut honest = Vec::new();
        for seed in 2..=3 {
            let mut h = swarm(seed, None, Address::ZERO, t0);
            let (ch, cn) = dial_in(&mut h, &mut n, SocketAddr::from(([10, 2, 0, seed], 4000)), t0);
            pump(&mut h, ch, &mut n, cn, t0, &mut rng);
            honest.push(h);
        }
        assert_eq!(n.peer_count(), 2, "--p2p.peers.hi reached");
        let mut stalled = Stalled::default();
        stalled.connect(&mut n, 40, t0);
        for i in 0..10u16 {
            n.handle_inbound(SocketAddr::from(([10, 1, 0, 1], 1000 + i)), t0).unwrap();
        }
        assert_eq!(
            stalled.reconnect(&mut n, t0).len(),
            2,
            "the stalled sockets from 10.1.0.1 evicted each other"
        );
        assert_eq!(assert_caps(&n), MAX_PENDING_INBOUND);
        // The static peer is dialled at once and admitted beyond the limit.
        n.handle_timeout(t0);
        let (cn, to) = n.poll_dial().expect("the static peer is dialled");
        assert_eq!(to, st_addr.addr);
        let cs = st.handle_inbound("10.0.0.1:40000".parse().unwrap(), t0).unwrap();
        assert_eq!(pump_under_attack(&mut st, cs, &mut n, cn, &mut stalled, t0), Vec::<ConnId>::new());
        assert_eq!((n.peer_count(), st.peer_count()), (3, 1));
        assert_eq!(assert_caps(&n), MAX_PENDING_INBOUND, "our dial took no room in the pool");
        // The static peer's connection drops, and it dials back in before our redial: admitted.
        let t1 = t0.advance(Duration::from_millis(300));
        n.handle_closed(cn, t1);
        st.handle_closed(cs, t1);
        let (cs, cn) = dial_in(&mut st, &mut n, "10.0.0.9:40001".parse().unwrap(), t1);
        // It evicts a stalled socket (from 10.1.0.1) from the full pool.
        assert!(!pump_under_attack(&mut st, cs, &mut n, cn, &mut stalled, t1).contains(&cn));
        assert_eq!((n.peer_count(), st.peer_count()), (3, 1));
        let peers = n.peers();
        assert!(peers.iter().any(|p| p.peer == st.local_peer() && !p.outbound));
        assert!(honest.iter().all(|h| h.peer_count() == 1), "no honest peer was dropped for it");
    }

    #[test]
    fn a_static_peer_not_up_yet_is_redialled_every_second_then_with_backoff() {
        let t0 = test_now();
        let st = swarm(9, None, Address::ZERO, t0);
        let st_addr = Multiaddr::new("10.0.0.9:9222".parse().unwrap(), Some(st.local_peer()));
        let cfg = SwarmConfig { static_peers: vec![st_addr], ..config() };
        let mut n = swarm_with(1, cfg, None, Address::ZERO, t0);
        let mut t = t0;
        let mut gaps = Vec::new();
        let mut last = t0.mono;
        while t.mono < t0.mono + FIRST_CONTACT + Duration::from_secs(20) {
            n.handle_timeout(t);
            if let Some((conn, _)) = n.poll_dial() {
                gaps.push((t.mono - last).as_secs());
                last = t.mono;
                // Refused: nobody listens there yet.
                n.handle_closed(conn, t);
            }
            t = t.advance(Duration::from_millis(250));
        }
        // Every second while seeking it (a verifier started beside its sequencer finds it at
        // once), then the backoff: 2 s, 4 s, 8 s, ...
        let prompt = gaps.iter().skip(1).take_while(|g| **g == 1).count();
        assert!((28..=30).contains(&prompt), "{gaps:?}");
        assert_eq!(&gaps[prompt + 1..prompt + 4], &[2, 4, 8], "{gaps:?}");
    }

    #[test]
    fn the_pending_pool_never_exceeds_its_caps() {
        let mut t = test_now();
        let mut n = swarm(1, None, Address::ZERO, t);
        let mut rng = crate::rng::Rng::new(21);
        let hosts: [IpAddr; 5] = [
            "127.0.0.1".parse().unwrap(),
            "::ffff:127.0.0.1".parse().unwrap(),
            "10.0.0.7".parse().unwrap(),
            "2001:db8:0:1::1".parse().unwrap(),
            "2001:db8:0:ff:1:2:3:4".parse().unwrap(),
        ];
        let mut port = 0u16;
        for _ in 0..3000 {
            let open: Vec<ConnId> = n.conns.keys().copied().collect();
            let pick = |rng: &mut crate::rng::Rng| open[rng.below(open.len() as u64) as usize];
            match rng.below(10) {
                0..=5 => {
                    port = port.wrapping_add(1);
                    let ip = hosts[rng.below(hosts.len() as u64) as usize];
                    n.handle_inbound(SocketAddr::new(ip, port), t).unwrap();
                }
                // Part of a multistream header: the handshake goes on, still pending.
                6 | 7 if !open.is_empty() => {
                    let header = b"\x13/multistream/1.0.0\n";
                    let k = 1 + rng.below(header.len() as u64 - 1) as usize;
                    n.handle_input(pick(&mut rng), &header[..k], t);
                }
                8 if !open.is_empty() => n.handle_closed(pick(&mut rng), t),
                _ => {
                    t = t.advance(Duration::from_millis(rng.below(1500)));
                    n.handle_timeout(t);
                }
            }
            while n.poll_close().is_some() {}
            assert_caps(&n);
        }
        assert!(n.stats.handshake_failures > 1000, "the pool was kept full: {:?}", n.stats);
    }

    #[test]
    fn per_ip_limits_count_an_ipv4_address_or_an_ipv6_slash_56() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(key("2001:db8:0:1::1"), key("2001:db8:0:ff:1:2:3:4"));
        assert_ne!(key("2001:db8:0:1::1"), key("2001:db8:0:100::1"));
    }
}
