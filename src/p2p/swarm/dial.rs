//! Who the swarm is connected to: dials (the operator's and the static peers', redialled with
//! exponential backoff from 2 s to 60 s), inbound connections up to `--p2p.peers.hi`, the
//! admission of an authenticated peer (not ourselves, blocked, banned or already connected),
//! closing connections, and the operator's disconnect and block list.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::conn::Phase;
use super::{ConnId, Swarm};
use crate::p2p::identity::PeerId;
use crate::p2p::multiaddr::Multiaddr;
use crate::time::Now;

const REDIAL_MIN: Duration = Duration::from_secs(2);
const REDIAL_MAX: Duration = Duration::from_secs(60);

/// A `--p2p.static` or bootnode address, kept connected.
pub(super) struct StaticPeer {
    addr: Multiaddr,
    pub(super) conn: Option<ConnId>,
    pub(super) next_dial: Instant,
    backoff: Duration,
}

impl StaticPeer {
    pub(super) fn new(addr: Multiaddr, now: Now) -> StaticPeer {
        StaticPeer { addr, conn: None, next_dial: now.mono, backoff: REDIAL_MIN }
    }
}

impl Swarm {
    /// Dials `addr` (`opp2p_connectPeer` and static peers): the I/O layer takes the dial from
    /// `poll_dial` and reports `handle_closed` if it fails.
    pub fn dial(&mut self, addr: &Multiaddr, now: Now) -> Result<ConnId, String> {
        if let Some(p) = &addr.peer {
            if self.blocked.contains(p) {
                return Err(format!("peer {p} is blocked"));
            }
            if self.by_peer.contains_key(p) {
                return Err(format!("already connected to {p}"));
            }
        }
        if self.conns.len() >= self.cfg.peers_hi {
            return Err(format!("at the peer limit ({})", self.cfg.peers_hi));
        }
        let id = self.new_conn(true, addr.addr, addr.peer.clone(), now);
        self.dials.push_back((id, addr.addr));
        Ok(id)
    }

    /// An inbound TCP connection; `None` refuses it (at the limit).
    pub fn handle_inbound(&mut self, remote: SocketAddr, now: Now) -> Option<ConnId> {
        if self.conns.len() >= self.cfg.peers_hi {
            log::debug!("refusing inbound connection from {remote}: at the peer limit");
            return None;
        }
        Some(self.new_conn(false, remote, None, now))
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
                s.next_dial = now.mono + s.backoff;
                s.backoff = (s.backoff * 2).min(REDIAL_MAX);
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
        if let Some(other) = self.by_peer.get(&peer) {
            if *other != id {
                return Err(format!("already connected to {peer}"));
            }
        }
        log::info!(
            "connected to peer {peer} at {} ({})",
            c.remote,
            if c.outbound { "outbound" } else { "inbound" }
        );
        self.by_peer.insert(peer.clone(), id);
        for s in &mut self.statics {
            if s.conn == Some(id) {
                s.backoff = REDIAL_MIN;
            }
        }
        // Open our gossip stream now rather than on the next inbound byte.
        self.pump_conn(id, now);
        Ok(())
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
            match self.dial(&addr, now) {
                Ok(id) => {
                    log::debug!("dialling static peer {addr}");
                    self.statics[i].conn = Some(id);
                }
                Err(e) => {
                    log::debug!("not dialling static peer {addr}: {e}");
                    let s = &mut self.statics[i];
                    s.next_dial = now.mono + s.backoff;
                    s.backoff = (s.backoff * 2).min(REDIAL_MAX);
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
