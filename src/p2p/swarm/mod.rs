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
//! in `poll_block` for the engine controller. Static peers and bootnodes are dialled and
//! redialled with exponential backoff; admitted peers are limited by `--p2p.peers.hi`, inbound
//! handshakes wait in a small pool of their own and must finish within 5 s, and blocked and
//! banned peers are refused.
//!
//! Call order: feed the sockets' events — `handle_inbound` (an accepted TCP connection),
//! `handle_input` (bytes read), `handle_closed` (a socket closed or a dial failed) — and the
//! commands (`dial`, `publish_block`, `disconnect`, `block`); then drain `poll_dial`
//! (connections to open) and `poll_close` (sockets to close) until `None`, `poll_transmit` for
//! every `writable` connection, and `poll_block` until `None`; then wait for `poll_timeout` and
//! call `handle_timeout` (only what is due fires, so a spurious call is harmless).
//!
//! This file holds the `Swarm` type, its configuration and public API; `conn` upgrades one
//! connection, `dial` decides who is connected, `streams` negotiates and serves yamux streams.

mod conn;
mod dial;
mod streams;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use k256::ecdsa::SigningKey;
use rand_core::CryptoRngCore;

use self::conn::{Conn, Phase};
use self::dial::StaticPeer;
use super::blocks::{block_topics, sign_block, BlockValidator, Signers, Validation};
use super::gossipsub::{Config as RouterConfig, Router};
use super::identity::{Keypair, PeerId};
use super::multiaddr::Multiaddr;
use crate::protocol::payload::ExecutionPayloadEnvelope;
use crate::protocol::rollup::RollupConfig;
use crate::time::Now;

pub type ConnId = u64;

pub const IDENTIFY: &str = "/ipfs/id/1.0.0";
pub const PING: &str = "/ipfs/ping/1.0.0";

/// How the gossip node runs (op-node's `--p2p.*` flags).
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    pub listen: Option<SocketAddr>,
    /// `--p2p.static` and `--p2p.bootnodes`: dialled and kept connected.
    pub static_peers: Vec<Multiaddr>,
    /// `--p2p.peers.lo`: below this many peers, static peers are redialled promptly.
    pub peers_lo: usize,
    /// `--p2p.peers.hi`: admitted peers beyond which inbound peers and the operator's dials are
    /// refused (handshakes still pending do not count; static peers are exempt).
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
    /// Key material for the Noise handshakes.
    noise_rng: Box<dyn CryptoRngCore + Send>,
    conns: BTreeMap<ConnId, Conn>,
    by_peer: BTreeMap<PeerId, ConnId>,
    statics: Vec<StaticPeer>,
    blocked: BTreeSet<PeerId>,
    next_conn: ConnId,
    /// Counts accepts, dials and bytes received during handshakes: orders pending connections
    /// by how long they have been quiet, exactly even when many arrive at one instant.
    events: u64,
    dials: VecDeque<(ConnId, SocketAddr)>,
    closes: VecDeque<ConnId>,
    blocks: VecDeque<ExecutionPayloadEnvelope>,
    pub stats: SwarmStats,
}

impl Swarm {
    /// A swarm with no connections. `seed` drives the router's peer selection; `noise_rng`
    /// gives the Noise handshakes their key material and must be cryptographically secure
    /// outside tests (the I/O layer passes the OS's).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        key: Keypair,
        cfg: SwarmConfig,
        rollup: Arc<RollupConfig>,
        signers: Signers,
        sequencer_key: Option<SigningKey>,
        seed: u64,
        noise_rng: Box<dyn CryptoRngCore + Send>,
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
        let statics = cfg.static_peers.iter().map(|a| StaticPeer::new(a.clone(), now)).collect();
        Ok(Swarm {
            key,
            cfg,
            rollup,
            router,
            validator: BlockValidator::default(),
            signers,
            sequencer_key,
            noise_rng,
            conns: BTreeMap::new(),
            by_peer: BTreeMap::new(),
            statics,
            blocked: BTreeSet::new(),
            next_conn: 1,
            events: 0,
            dials: VecDeque::new(),
            closes: VecDeque::new(),
            blocks: VecDeque::new(),
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

    /// The next validated block for the engine controller.
    pub fn poll_block(&mut self) -> Option<ExecutionPayloadEnvelope> {
        self.blocks.pop_front()
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

    /// Router work after input: validation of received messages, disconnects, output.
    fn after_io(&mut self, now: Now) {
        self.validate(now);
        while let Some((peer, why)) = self.router.poll_disconnect() {
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
        while let Some(m) = self.router.poll_received() {
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
                    self.blocks.push_back(*a.envelope.clone());
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

    /// The next gossipsub heartbeat: the swarm's periodic wake-up, every 500 ms.
    pub fn next_heartbeat(&self) -> Option<Instant> {
        self.router.poll_timeout().map(|(t, _)| t)
    }

    /// The earliest deadline: the router's heartbeat, a handshake timeout, a redial.
    pub fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        let handshakes = self.conns.values().filter_map(|c| c.deadline).map(|t| (t, "p2p handshake"));
        let redials = self.statics.iter().filter(|s| s.conn.is_none()).map(|s| (s.next_dial, "p2p redial"));
        let keepalives = self.conns.values().filter_map(|c| match &c.phase {
            Phase::Open(_, mux) => mux.poll_timeout(),
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
        self.conn_timeouts(now);
        self.redial(now);
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

    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.by_peer.contains_key(peer)
    }

    /// Fewer peers (connected and being dialled) than `--p2p.peers.lo`: discovered peers are
    /// dialled.
    pub fn wants_peers(&self) -> bool {
        let dialling = self.conns.values().filter(|c| c.outbound && c.deadline.is_some()).count();
        self.by_peer.len() + dialling < self.cfg.peers_lo
    }

    /// Peers in the mesh of the block topic of the current fork.
    pub fn mesh_size(&self) -> usize {
        block_topics(self.rollup.l2_chain_id)
            .iter()
            .map(|t| self.router.mesh_peers(t).len())
            .max()
            .unwrap_or(0)
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
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::p2p::noise::test_rng::TestRng;
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

    pub(crate) fn config() -> SwarmConfig {
        SwarmConfig {
            listen: None,
            static_peers: Vec::new(),
            peers_lo: 1,
            peers_hi: 8,
            ban_peers: true,
            agent: "op-lite/test".into(),
        }
    }

    pub(super) fn swarm(seed: u8, seq: Option<&SigningKey>, signer: Address, now: Now) -> Swarm {
        swarm_with(seed, config(), seq, signer, now)
    }

    pub(super) fn swarm_with(
        seed: u8,
        cfg: SwarmConfig,
        seq: Option<&SigningKey>,
        signer: Address,
        now: Now,
    ) -> Swarm {
        Swarm::new(
            Keypair::from_secret(&[seed; 32]).unwrap(),
            cfg,
            rollup(),
            Signers::only(signer),
            seq.cloned(),
            seed as u64,
            Box::new(TestRng::new(seed as u64)),
            now,
        )
        .unwrap()
    }

    /// Moves bytes both ways until quiet, splitting them at random.
    pub(super) fn pump(
        a: &mut Swarm,
        ca: ConnId,
        b: &mut Swarm,
        cb: ConnId,
        now: Now,
        rng: &mut crate::rng::Rng,
    ) {
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
                        dst.handle_input(dc, &rest[..n], now);
                        rest = &rest[n..];
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// `d` dials `l`, which accepts the connection from `from`: the two ends' ids, before any
    /// byte has moved.
    pub(super) fn dial_in(d: &mut Swarm, l: &mut Swarm, from: SocketAddr, now: Now) -> (ConnId, ConnId) {
        let to = Multiaddr::new("10.0.0.99:9222".parse().unwrap(), Some(l.local_peer()));
        let cd = d.dial(&to, now).unwrap();
        assert_eq!(d.poll_dial(), Some((cd, to.addr)));
        let cl = l.handle_inbound(from, now).unwrap();
        (cd, cl)
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
        assert_eq!((a.poll_dial(), a.poll_dial()), (Some((ca, target.addr)), None));
        let cb = b.handle_inbound("10.0.0.1:40000".parse().unwrap(), now).unwrap();
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
        let got: Vec<_> = std::iter::from_fn(|| a.poll_block()).collect();
        assert_eq!(got.len(), 1, "stats {:?}", a.stats);
        assert_eq!(got[0], env);
        // The same block again is a duplicate: not delivered twice.
        b.publish_block(env, t).unwrap_err();
        // A signer the node does not trust: rejected.
        let mut c = swarm(3, Some(&SigningKey::from_slice(&[43; 32]).unwrap()), signer, t);
        let cc = c.handle_inbound("10.0.0.1:40001".parse().unwrap(), t).unwrap();
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
        assert_eq!(a.poll_block(), None);
        assert_eq!(a.stats.blocks_rejected, 1);
    }
}
