//! The gossip node, sans-IO: TCP connections (bytes in and out, identified by a `ConnId` the I/O
//! layer keeps) upgraded as libp2p upgrades them — multistream-select `/noise`, the Noise XX
//! handshake, multistream-select `/yamux/1.0.0` inside it — and then yamux streams negotiated
//! per protocol: `/meshsub/1.1.0` and `1.0.0` into the gossipsub router, `/ipfs/id/1.0.0`
//! answered with our identify record, `/ipfs/ping/1.0.0` echoed, and op-node's
//! `payload_by_number` answered "not found".
//!
//! The swarm owns the router and op-node's block validator: messages on the block topics are
//! validated against the unsafe block signer (from the runtime config) and the wall clock, the
//! verdict goes back to the router (only accepted blocks are relayed), and accepted blocks wait
//! in `take_blocks` for the engine controller. Static peers and bootnodes are dialled and
//! redialled with exponential backoff; connections are limited by `--p2p.peers.hi`, blocked
//! and banned peers refused, and a handshake must finish within 10 s.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k256::ecdsa::SigningKey;

use super::blocks::{block_topics, sign_block, BlockValidator, Signers, Validation};
use super::gossipsub::{Config as RouterConfig, Protocol as MeshProtocol, Router};
use super::identity::{Keypair, PeerId};
use super::multiaddr::Multiaddr;
use super::multistream::Negotiation;
use super::noise::{self, NoiseSession};
use super::reqresp::{self, NotFoundResponder};
use super::yamux::{self, Mode, StreamEvent};
use crate::protocol::payload::ExecutionPayloadEnvelope;
use crate::protocol::rollup::RollupConfig;
use crate::protocol::varint;
use crate::time::Now;

pub type ConnId = u64;

pub const IDENTIFY: &str = "/ipfs/id/1.0.0";
pub const PING: &str = "/ipfs/ping/1.0.0";
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const REDIAL_MIN: Duration = Duration::from_secs(2);
const REDIAL_MAX: Duration = Duration::from_secs(60);
/// Raw bytes queued for a socket beyond which the connection is dropped (a peer not reading).
const MAX_CONN_BACKLOG: usize = 16 << 20;
/// The identify record is small; a bigger message is refused.
const MAX_IDENTIFY: usize = 8 * 1024;

/// How the gossip node runs (op-node's `--p2p.*` flags).
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    pub listen: Option<SocketAddr>,
    /// `--p2p.static` and `--p2p.bootnodes`: dialled and kept connected.
    pub static_peers: Vec<Multiaddr>,
    /// `--p2p.peers.lo`: below this many peers, static peers are redialled promptly.
    pub peers_lo: usize,
    /// `--p2p.peers.hi`: connections beyond this are refused.
    pub peers_hi: usize,
    /// `--p2p.ban.peers`: let the router's score ban misbehaving peers.
    pub ban_peers: bool,
    pub agent: String,
}

/// A connected peer, for `opp2p_peers` and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub peer: PeerId,
    pub addr: SocketAddr,
    pub outbound: bool,
    pub gossip: Option<&'static str>,
    pub protocols: Vec<String>,
}

#[derive(Debug)]
enum Sub {
    Negotiating {
        neg: Negotiation,
        ours: bool,
    },
    /// Our outbound `/meshsub` stream.
    MeshOut,
    /// The peer's `/meshsub` stream into the router.
    MeshIn,
    Identify {
        buf: Vec<u8>,
    },
    Ping,
    ReqResp(NotFoundResponder),
}

enum Phase {
    Security(Negotiation),
    Handshake(NoiseSession),
    Muxer(NoiseSession, Negotiation),
    Open(NoiseSession, yamux::Session),
    Closed,
}

struct Conn {
    outbound: bool,
    remote: SocketAddr,
    expected: Option<PeerId>,
    phase: Phase,
    peer: Option<PeerId>,
    out: Vec<u8>,
    deadline: Option<Instant>,
    subs: BTreeMap<u32, Sub>,
    mesh_out: Option<(u32, MeshProtocol)>,
    in_router: bool,
    protocols: Vec<String>,
}

struct StaticPeer {
    addr: Multiaddr,
    conn: Option<ConnId>,
    next_dial: Instant,
    backoff: Duration,
}

/// Counters for metrics and `opp2p_peerStats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwarmStats {
    pub handshakes: u64,
    pub handshake_failures: u64,
    pub blocks_accepted: u64,
    pub blocks_rejected: u64,
    pub blocks_ignored: u64,
    pub published: u64,
}

/// The gossip node.
pub struct Swarm {
    key: Keypair,
    cfg: SwarmConfig,
    rollup: Arc<RollupConfig>,
    router: Router<PeerId>,
    validator: BlockValidator,
    signers: Signers,
    sequencer_key: Option<SigningKey>,
    conns: BTreeMap<ConnId, Conn>,
    by_peer: BTreeMap<PeerId, ConnId>,
    statics: Vec<StaticPeer>,
    blocked: BTreeSet<PeerId>,
    next_conn: ConnId,
    dials: Vec<(ConnId, SocketAddr)>,
    closes: Vec<ConnId>,
    blocks: Vec<ExecutionPayloadEnvelope>,
    pub stats: SwarmStats,
}

fn put_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    varint::put(out, field << 3 | 2);
    varint::put(out, b.len() as u64);
    out.extend_from_slice(b);
}

impl Swarm {
    pub fn new(
        key: Keypair,
        cfg: SwarmConfig,
        rollup: Arc<RollupConfig>,
        signers: Signers,
        sequencer_key: Option<SigningKey>,
        seed: u64,
        now: Now,
    ) -> Result<Swarm, String> {
        let topics = block_topics(rollup.l2_chain_id);
        let mut rc = RouterConfig::op_node(topics.clone(), rollup.block_time);
        if !cfg.ban_peers {
            rc.score.ban_threshold = f64::NEG_INFINITY;
        }
        let mut router = Router::new(rc, seed, now.mono).map_err(|e| format!("gossipsub: {e}"))?;
        for t in &topics {
            router.subscribe(t, now.mono).map_err(|e| format!("gossipsub subscribe {t}: {e}"))?;
        }
        let statics = cfg
            .static_peers
            .iter()
            .map(|a| StaticPeer { addr: a.clone(), conn: None, next_dial: now.mono, backoff: REDIAL_MIN })
            .collect();
        Ok(Swarm {
            key,
            cfg,
            rollup,
            router,
            validator: BlockValidator::default(),
            signers,
            sequencer_key,
            conns: BTreeMap::new(),
            by_peer: BTreeMap::new(),
            statics,
            blocked: BTreeSet::new(),
            next_conn: 1,
            dials: Vec::new(),
            closes: Vec::new(),
            blocks: Vec::new(),
            stats: SwarmStats::default(),
        })
    }

    pub fn local_peer(&self) -> PeerId {
        self.key.peer_id()
    }

    /// The unsafe block signer changed (runtime config reload).
    pub fn set_signers(&mut self, signers: Signers) {
        self.signers = signers;
    }

    fn new_conn(&mut self, outbound: bool, remote: SocketAddr, expected: Option<PeerId>, now: Now) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
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

    /// Dials `addr` (`opp2p_connectPeer` and static peers): the I/O layer takes the dial from
    /// `take_dials` and reports `on_closed` if it fails.
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
        self.dials.push((id, addr.addr));
        Ok(id)
    }

    /// An inbound TCP connection; `None` refuses it (at the limit).
    pub fn on_inbound(&mut self, remote: SocketAddr, now: Now) -> Option<ConnId> {
        if self.conns.len() >= self.cfg.peers_hi {
            log::debug!("refusing inbound connection from {remote}: at the peer limit");
            return None;
        }
        Some(self.new_conn(false, remote, None, now))
    }

    pub fn take_dials(&mut self) -> Vec<(ConnId, SocketAddr)> {
        std::mem::take(&mut self.dials)
    }

    /// Connections the I/O layer must close.
    pub fn take_closes(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.closes)
    }

    /// Validated blocks for the engine controller.
    pub fn take_blocks(&mut self) -> Vec<ExecutionPayloadEnvelope> {
        std::mem::take(&mut self.blocks)
    }

    /// Bytes for the socket of `conn`.
    pub fn poll_transmit(&mut self, conn: ConnId, out: &mut Vec<u8>) -> bool {
        match self.conns.get_mut(&conn) {
            Some(c) if !c.out.is_empty() => {
                out.append(&mut c.out);
                true
            }
            _ => false,
        }
    }

    /// Connections with bytes waiting.
    pub fn writable(&self) -> Vec<ConnId> {
        self.conns.iter().filter(|(_, c)| !c.out.is_empty()).map(|(id, _)| *id).collect()
    }

    fn fail(&mut self, id: ConnId, why: &str, now: Now) {
        if let Some(c) = self.conns.get(&id) {
            log::debug!("closing connection {id} to {} ({:?}): {why}", c.remote, c.peer);
        }
        self.closes.push(id);
        self.on_closed(id, now);
    }

    /// The socket closed (or a dial failed).
    pub fn on_closed(&mut self, id: ConnId, now: Now) {
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

    /// Bytes from the socket of `conn`.
    pub fn on_data(&mut self, id: ConnId, data: &[u8], now: Now) {
        if let Err(e) = self.process(id, data, now) {
            self.fail(id, &e, now);
        }
        self.after_io(now);
    }

    fn process(&mut self, id: ConnId, data: &[u8], now: Now) -> Result<(), String> {
        let Some(mut c) = self.conns.remove(&id) else { return Ok(()) };
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
                    neg.on_data(&input).map_err(|e| format!("multistream: {e}"))?;
                    neg.poll_transmit(&mut c.out);
                    if neg.protocol().is_none() {
                        c.phase = Phase::Security(neg);
                        return Ok(());
                    }
                    input = neg.take_remaining();
                    let mut s = if c.outbound {
                        NoiseSession::initiator(&self.key, c.expected.clone())
                    } else {
                        NoiseSession::responder(&self.key)
                    }
                    .map_err(|e| e.to_string())?;
                    s.poll_transmit(&mut c.out);
                    c.phase = Phase::Handshake(s);
                }
                Phase::Handshake(mut s) => {
                    s.on_data(&input).map_err(|e| e.to_string())?;
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
                        s.on_data(&input).map_err(|e| e.to_string())?;
                    }
                    neg.on_data(&s.take_plaintext()).map_err(|e| format!("muxer multistream: {e}"))?;
                    let mut plain = Vec::new();
                    neg.poll_transmit(&mut plain);
                    s.send(&plain).map_err(|e| e.to_string())?;
                    s.poll_transmit(&mut c.out);
                    if neg.protocol().is_none() {
                        c.phase = Phase::Muxer(s, neg);
                        return Ok(());
                    }
                    let mut mux = yamux::Session::new(if c.outbound { Mode::Client } else { Mode::Server });
                    mux.on_data(&neg.take_remaining()).map_err(|e| format!("yamux: {e}"))?;
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

    /// Decrypted, demultiplexed data on an open connection.
    fn open_data(
        &mut self,
        c: &mut Conn,
        s: &mut NoiseSession,
        mux: &mut yamux::Session,
        input: &[u8],
        now: Now,
    ) -> Result<(), String> {
        if !input.is_empty() {
            s.on_data(input).map_err(|e| e.to_string())?;
        }
        let plain = s.take_plaintext();
        if !plain.is_empty() {
            mux.on_data(&plain).map_err(|e| format!("yamux: {e}"))?;
        }
        let peer = c.peer.clone().ok_or("no peer after the handshake")?;
        if c.mesh_out.is_none() && !c.subs.values().any(|s| matches!(s, Sub::Negotiating { ours: true, .. }))
        {
            // Our gossipsub stream, opened once per connection.
            let id = mux.open_stream().map_err(|e| e.to_string())?;
            let protos: Vec<&str> = MeshProtocol::SUPPORTED.iter().map(|p| p.id()).collect();
            let mut neg = Negotiation::dialer(&protos);
            let mut b = Vec::new();
            neg.poll_transmit(&mut b);
            mux.write(id, &b).map_err(|e| e.to_string())?;
            c.subs.insert(id, Sub::Negotiating { neg, ours: true });
        }
        while let Some(ev) = mux.poll_event() {
            match ev {
                StreamEvent::Inbound(id) => {
                    let chain = reqresp::protocol_id(self.rollup.l2_chain_id);
                    let with_slash = format!("{chain}/");
                    let neg = Negotiation::listener(&[
                        MeshProtocol::V11.id(),
                        MeshProtocol::V10.id(),
                        IDENTIFY,
                        PING,
                        &chain,
                        &with_slash,
                    ]);
                    c.subs.insert(id, Sub::Negotiating { neg, ours: false });
                    self.stream_data(c, mux, id, &[], &peer, now)?;
                }
                StreamEvent::Data(id, d) => self.stream_data(c, mux, id, &d, &peer, now)?,
                StreamEvent::Closed(id) => match c.subs.get_mut(&id) {
                    Some(Sub::ReqResp(r)) => {
                        r.handle_eof();
                        self.stream_data(c, mux, id, &[], &peer, now)?;
                    }
                    Some(Sub::Identify { .. }) => {
                        c.subs.remove(&id);
                    }
                    _ => mux.close(id),
                },
                StreamEvent::Reset(id) => {
                    if let Some(Sub::MeshOut) = c.subs.remove(&id) {
                        c.mesh_out = None;
                    }
                }
            }
        }
        self.flush_router(c, mux, &peer);
        let mut plain = Vec::new();
        mux.poll_transmit(&mut plain);
        if !plain.is_empty() {
            s.send(&plain).map_err(|e| e.to_string())?;
        }
        s.poll_transmit(&mut c.out);
        Ok(())
    }

    fn stream_data(
        &mut self,
        c: &mut Conn,
        mux: &mut yamux::Session,
        id: u32,
        data: &[u8],
        peer: &PeerId,
        now: Now,
    ) -> Result<(), String> {
        let Some(sub) = c.subs.remove(&id) else { return Ok(()) };
        let mut data = data.to_vec();
        let sub = match sub {
            Sub::Negotiating { mut neg, ours } => {
                if neg.on_data(&data).is_err() {
                    mux.reset(id);
                    return Ok(());
                }
                let mut b = Vec::new();
                neg.poll_transmit(&mut b);
                if !b.is_empty() {
                    mux.write(id, &b).map_err(|e| e.to_string())?;
                }
                let Some(proto) = neg.protocol().map(str::to_string) else {
                    c.subs.insert(id, Sub::Negotiating { neg, ours });
                    return Ok(());
                };
                data = neg.take_remaining();
                if !c.protocols.contains(&proto) {
                    c.protocols.push(proto.clone());
                }
                match (ours, proto.as_str()) {
                    (true, p) => {
                        let Some(mp) = MeshProtocol::from_id(p) else {
                            mux.reset(id);
                            return Ok(());
                        };
                        c.mesh_out = Some((id, mp));
                        if self.router.add_peer(peer.clone(), c.outbound, c.remote.ip(), mp, now.mono).is_ok()
                        {
                            c.in_router = true;
                        } else {
                            return Err("gossipsub refused the peer (banned or duplicate)".into());
                        }
                        Sub::MeshOut
                    }
                    (false, IDENTIFY) => {
                        let mut msg = Vec::new();
                        let record = self.identify_record(c);
                        varint::put(&mut msg, record.len() as u64);
                        msg.extend(record);
                        mux.write(id, &msg).map_err(|e| e.to_string())?;
                        mux.close(id);
                        Sub::Identify { buf: Vec::new() }
                    }
                    (false, PING) => Sub::Ping,
                    (false, p) if MeshProtocol::from_id(p).is_some() => Sub::MeshIn,
                    (false, _) => Sub::ReqResp(NotFoundResponder::new(now.mono)),
                }
            }
            other => other,
        };
        let keep = match sub {
            Sub::MeshIn => {
                if !data.is_empty() {
                    self.router.on_data(peer, &data, now.mono).map_err(|e| format!("gossipsub: {e}"))?;
                }
                Some(Sub::MeshIn)
            }
            Sub::Ping => {
                if !data.is_empty() {
                    mux.write(id, &data).map_err(|e| e.to_string())?;
                }
                Some(Sub::Ping)
            }
            Sub::ReqResp(mut r) => {
                r.handle_input(&data);
                let mut b = Vec::new();
                if r.poll_transmit(&mut b) {
                    mux.write(id, &b).map_err(|e| e.to_string())?;
                    mux.close(id);
                }
                (!r.is_done()).then_some(Sub::ReqResp(r))
            }
            Sub::Identify { mut buf } => {
                // A peer pushing identify to us: read and bound it, keep the agent.
                buf.extend_from_slice(&data);
                if buf.len() > MAX_IDENTIFY {
                    mux.reset(id);
                    None
                } else {
                    Some(Sub::Identify { buf })
                }
            }
            other => Some(other),
        };
        if let Some(k) = keep {
            c.subs.insert(id, k);
        }
        Ok(())
    }

    /// Our identify record (protobuf): public key, listen address, protocols, observed
    /// address, protocol and agent versions.
    fn identify_record(&self, c: &Conn) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, &self.key.public().to_protobuf());
        if let Some(l) = self.cfg.listen {
            put_bytes(&mut out, 2, &Multiaddr::new(l, None).to_bytes());
        }
        let chain = reqresp::protocol_id(self.rollup.l2_chain_id);
        for p in [MeshProtocol::V11.id(), MeshProtocol::V10.id(), IDENTIFY, PING, chain.as_str()] {
            put_bytes(&mut out, 3, p.as_bytes());
        }
        put_bytes(&mut out, 4, &Multiaddr::new(c.remote, None).to_bytes());
        put_bytes(&mut out, 5, b"");
        put_bytes(&mut out, 6, self.cfg.agent.as_bytes());
        out
    }

    fn flush_router(&mut self, c: &mut Conn, mux: &mut yamux::Session, peer: &PeerId) {
        let Some((id, _)) = c.mesh_out else { return };
        let mut buf = Vec::new();
        while self.router.poll_transmit(peer, &mut buf) {}
        if !buf.is_empty() && mux.write(id, &buf).is_err() {
            log::debug!("gossip stream to {peer} is full: dropping {} bytes", buf.len());
        }
    }

    /// A connection finished its handshake: register the peer once.
    fn connected(&mut self, id: ConnId, now: Now) -> Result<(), String> {
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

    /// Moves router output and stream work of one open connection to its socket buffer.
    fn pump_conn(&mut self, id: ConnId, now: Now) {
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

    /// Router work after input: validation of received messages, disconnects, output.
    fn after_io(&mut self, now: Now) {
        self.validate(now);
        for (peer, why) in self.router.take_disconnects() {
            if let Some(id) = self.by_peer.get(&peer).copied() {
                self.fail(id, &format!("gossipsub: {why:?}"), now);
            }
        }
        let open: Vec<ConnId> =
            self.conns.iter().filter(|(_, c)| c.mesh_out.is_some()).map(|(id, _)| *id).collect();
        for id in open {
            self.pump_conn(id, now);
        }
    }

    fn validate(&mut self, now: Now) {
        for m in self.router.take_received() {
            let v = self.validator.validate_topic(&self.rollup, &m.topic, &m.data, &self.signers, now.unix());
            match &v {
                Validation::Accept(a) => {
                    self.stats.blocks_accepted += 1;
                    let p = &a.envelope.execution_payload;
                    log::info!(
                        "received gossip block number={} hash={} from={}",
                        p.block_number,
                        p.block_hash,
                        m.from
                    );
                    self.blocks.push(*a.envelope.clone());
                }
                Validation::Reject(e) => {
                    self.stats.blocks_rejected += 1;
                    log::warn!("rejected gossip block from {}: {e}", m.from);
                }
                Validation::Ignore(e) => {
                    self.stats.blocks_ignored += 1;
                    log::debug!("ignored gossip block from {}: {e}", m.from);
                }
            }
            self.router.report_validation(&m.id, v.acceptance(), now.mono);
        }
    }

    /// The earliest deadline: the router's heartbeat, a handshake timeout, a redial.
    pub fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        let handshakes = self.conns.values().filter_map(|c| c.deadline).map(|t| (t, "p2p handshake"));
        let redials = self.statics.iter().filter(|s| s.conn.is_none()).map(|s| (s.next_dial, "p2p redial"));
        let keepalives = self.conns.values().filter_map(|c| match &c.phase {
            Phase::Open(_, mux) => mux.poll_timeout().map(|t| (t, "yamux keep-alive")),
            _ => None,
        });
        self.router
            .poll_timeout()
            .into_iter()
            .chain(handshakes)
            .chain(redials)
            .chain(keepalives)
            .min_by_key(|(t, _)| *t)
    }

    /// Fires due timers: router heartbeat, handshake timeouts, static peer (re)dials.
    pub fn handle_timeout(&mut self, now: Now) {
        self.router.handle_timeout(now.mono);
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
        self.after_io(now);
    }

    /// Signs a block the sequencer sealed and publishes it on the fork's topic.
    pub fn publish_block(&mut self, env: ExecutionPayloadEnvelope, now: Now) -> Result<(), String> {
        let key = self.sequencer_key.as_ref().ok_or("no --p2p.sequencer.key to sign blocks with")?;
        let msg = sign_block(&self.rollup, env, key).map_err(|e| e.to_string())?;
        self.router.publish(&msg.topic, msg.data, now.mono).map_err(|e| e.to_string())?;
        self.stats.published += 1;
        self.after_io(now);
        Ok(())
    }

    /// Connected peers (handshake done).
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.by_peer
            .iter()
            .filter_map(|(p, id)| self.conns.get(id).map(|c| (p, c)))
            .map(|(p, c)| PeerInfo {
                peer: p.clone(),
                addr: c.remote,
                outbound: c.outbound,
                gossip: c.mesh_out.map(|(_, m)| m.id()),
                protocols: c.protocols.clone(),
            })
            .collect()
    }

    /// Peers subscribed to `topic`.
    pub fn topic_peer_count(&self, topic: &str) -> usize {
        self.router.topic_peers(topic).len()
    }

    pub fn peer_count(&self) -> usize {
        self.by_peer.len()
    }

    /// Peers in the mesh of the block topic of the current fork.
    pub fn mesh_size(&self) -> usize {
        block_topics(self.rollup.l2_chain_id)
            .iter()
            .map(|t| self.router.mesh_peers(t).len())
            .max()
            .unwrap_or(0)
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

    /// Peer score and gossip counters, for `opp2p_peerStats` and metrics.
    pub fn router_stats(&self) -> &super::gossipsub::Stats {
        self.router.stats()
    }

    pub fn score(&self, peer: &PeerId) -> Option<f64> {
        self.router.score(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::payload::ExecutionPayload;
    use crate::protocol::primitives::{Address, Bytes, U256};
    use crate::protocol::rollup::Fork;
    use crate::protocol::tx::address_of;
    use crate::time::test_now;

    fn rollup() -> Arc<RollupConfig> {
        let mut cfg = RollupConfig::from_json(crate::protocol::rollup::tests_support::BASE_JSON).unwrap();
        cfg.apply_overrides(&[
            (Fork::Canyon, 0),
            (Fork::Delta, 0),
            (Fork::Ecotone, 0),
            (Fork::Fjord, 0),
            (Fork::Granite, 0),
            (Fork::Holocene, 0),
            (Fork::Isthmus, 0),
            (Fork::Jovian, 0),
        ]);
        Arc::new(cfg)
    }

    fn swarm(seed: u8, seq: Option<&SigningKey>, signer: Address, now: Now) -> Swarm {
        let cfg = SwarmConfig {
            listen: None,
            static_peers: Vec::new(),
            peers_lo: 1,
            peers_hi: 8,
            ban_peers: true,
            agent: "op-lite/test".into(),
        };
        Swarm::new(
            Keypair::from_secret(&[seed; 32]).unwrap(),
            cfg,
            rollup(),
            Signers::only(signer),
            seq.cloned(),
            seed as u64,
            now,
        )
        .unwrap()
    }

    /// Moves bytes both ways until quiet, splitting them at random.
    fn pump(a: &mut Swarm, ca: ConnId, b: &mut Swarm, cb: ConnId, now: Now, rng: &mut crate::rng::Rng) {
        for _ in 0..50 {
            let mut moved = false;
            for dir in 0..2 {
                let (src, sc, dst, dc) =
                    if dir == 0 { (&mut *a, ca, &mut *b, cb) } else { (&mut *b, cb, &mut *a, ca) };
                let mut bytes = Vec::new();
                if src.poll_transmit(sc, &mut bytes) {
                    moved = true;
                    let mut rest = &bytes[..];
                    while !rest.is_empty() {
                        let n = 1 + rng.below(rest.len() as u64) as usize;
                        dst.on_data(dc, &rest[..n], now);
                        rest = &rest[n..];
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn block(cfg: &RollupConfig, number: u64, now: Now) -> ExecutionPayloadEnvelope {
        let mut env = ExecutionPayloadEnvelope {
            parent_beacon_block_root: Some(Default::default()),
            execution_payload: ExecutionPayload {
                block_number: number,
                timestamp: now.unix(),
                gas_limit: 30_000_000,
                base_fee_per_gas: U256::from_u64(7),
                transactions: vec![Bytes(vec![0x7e, 0xc0])],
                withdrawals: Some(Vec::new()),
                blob_gas_used: Some(0),
                excess_blob_gas: Some(0),
                withdrawals_root: Some(Default::default()),
                extra_data: Bytes(
                    crate::derive::l2::extra_data_for(cfg, now.unix(), Some(Default::default()), Some(0))
                        .unwrap(),
                ),
                ..ExecutionPayload::default()
            },
        };
        env.execution_payload.block_hash = env.compute_block_hash().unwrap();
        env
    }

    #[test]
    fn two_nodes_handshake_subscribe_and_gossip_a_signed_block() {
        let now = test_now();
        let mut rng = crate::rng::Rng::new(11);
        let seq_key = SigningKey::from_slice(&[42; 32]).unwrap();
        let signer = address_of(seq_key.verifying_key());
        let mut a = swarm(1, None, signer, now);
        let mut b = swarm(2, Some(&seq_key), signer, now);
        let target = Multiaddr::new("10.0.0.2:9222".parse().unwrap(), Some(b.local_peer()));
        let ca = a.dial(&target, now).unwrap();
        assert_eq!(a.take_dials(), vec![(ca, target.addr)]);
        let cb = b.on_inbound("10.0.0.1:40000".parse().unwrap(), now).unwrap();
        pump(&mut a, ca, &mut b, cb, now, &mut rng);
        assert_eq!(a.peers().len(), 1);
        assert_eq!(a.peers()[0].peer, b.local_peer());
        assert_eq!(b.peers()[0].peer, a.local_peer());
        assert_eq!(a.peers()[0].gossip, Some("/meshsub/1.1.0"));
        // Heartbeats graft the mesh.
        let mut t = now;
        for _ in 0..4 {
            t = t.advance(Duration::from_millis(600));
            a.handle_timeout(t);
            b.handle_timeout(t);
            pump(&mut a, ca, &mut b, cb, t, &mut rng);
        }
        assert_eq!(a.mesh_size(), 1);
        let cfg = rollup();
        let env = block(&cfg, 7, t);
        b.publish_block(env.clone(), t).unwrap();
        pump(&mut a, ca, &mut b, cb, t, &mut rng);
        let got = a.take_blocks();
        assert_eq!(got.len(), 1, "stats {:?}", a.stats);
        assert_eq!(got[0], env);
        // The same block again is a duplicate: not delivered twice.
        b.publish_block(env, t).unwrap_err();
        // A signer the node does not trust: rejected.
        let mut c = swarm(3, Some(&SigningKey::from_slice(&[43; 32]).unwrap()), signer, t);
        let cc = c.on_inbound("10.0.0.1:40001".parse().unwrap(), t).unwrap();
        let target = Multiaddr::new("10.0.0.3:9222".parse().unwrap(), Some(c.local_peer()));
        let ca2 = a.dial(&target, t).unwrap();
        pump(&mut a, ca2, &mut c, cc, t, &mut rng);
        for _ in 0..4 {
            t = t.advance(Duration::from_millis(600));
            a.handle_timeout(t);
            c.handle_timeout(t);
            pump(&mut a, ca2, &mut c, cc, t, &mut rng);
        }
        c.publish_block(block(&cfg, 8, t), t).unwrap();
        pump(&mut a, ca2, &mut c, cc, t, &mut rng);
        assert!(a.take_blocks().is_empty());
        assert_eq!(a.stats.blocks_rejected, 1);
    }

    #[test]
    fn a_peer_that_stops_answering_keep_alives_is_dropped() {
        let now = test_now();
        let mut rng = crate::rng::Rng::new(12);
        let mut a = swarm(1, None, Address::ZERO, now);
        let mut b = swarm(2, None, Address::ZERO, now);
        let ca =
            a.dial(&Multiaddr::new("10.0.0.2:9222".parse().unwrap(), Some(b.local_peer())), now).unwrap();
        let cb = b.on_inbound("10.0.0.1:40000".parse().unwrap(), now).unwrap();
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
        assert!(a.take_closes().contains(&ca));
    }

    #[test]
    fn garbage_peers_and_silent_handshakes_are_dropped() {
        let now = test_now();
        let mut a = swarm(1, None, Address::ZERO, now);
        let mut rng = crate::rng::Rng::new(5);
        for _ in 0..500 {
            let id = a.on_inbound("10.0.0.9:1".parse().unwrap(), now).unwrap();
            let mut junk = vec![0u8; rng.below(300) as usize];
            rng.fill(&mut junk);
            a.on_data(id, &junk, now);
            a.on_closed(id, now);
        }
        assert!(a.conns.is_empty());
        let id = a.on_inbound("10.0.0.9:2".parse().unwrap(), now).unwrap();
        a.handle_timeout(now.advance(HANDSHAKE_TIMEOUT + Duration::from_secs(1)));
        assert!(a.take_closes().contains(&id), "the silent connection is closed");
    }
}
