//! The gossipsub v1.1 router (`/meshsub/1.1.0`; `/meshsub/1.0.0` peers are answered too) as a
//! sans-IO state machine, configured as op-node configures go-libp2p-pubsub
//! (`op-node/p2p/gossip.go`): D 8 / Dlo 6 / Dhi 12 / Dlazy 6, a 500 ms heartbeat, a message
//! cache of 12 windows gossiping 3, a 65 s seen cache, `StrictNoSign`, the OP message id, a
//! 10 MiB RPC limit, no peer exchange, no flood publishing, an allowlist of topics.
//!
//! Inputs: `add_peer` / `remove_peer` as the transport's `/meshsub` streams come and go, the
//! bytes of a peer's inbound stream (`handle_input`: varint-length-prefixed `RPC` protobufs,
//! any split), `subscribe` / `publish` from the application, validation verdicts
//! (`report_validation`) and `handle_timeout`. Outputs: framed RPCs per peer (`poll_transmit`,
//! or `poll_outbound` for every peer), messages to validate (`poll_received`), and peers to
//! disconnect (`poll_disconnect`: malformed streams and temporary bans).
//!
//! Call order: after any input, drain `poll_received` until `None` (answering each with
//! `report_validation`), `poll_disconnect` until `None`, and `poll_transmit` for each peer until
//! it returns false; then wait for `poll_timeout` and call `handle_timeout` (early calls are
//! no-ops).
//!
//! The transport's part: `P` is its peer id (libp2p `PeerId` bytes; `Clone + Ord`). Per
//! connected peer it opens one outbound stream, negotiating `Protocol::SUPPORTED` in order, and
//! then calls `add_peer` with the negotiated version, whether it dialled the connection (for
//! the outbound mesh quota) and the remote IP; it feeds the bytes of the peer's inbound
//! `/meshsub` stream to `handle_input`, writes `poll_transmit` frames to the outbound stream,
//! calls `remove_peer` when the connection closes, closes `poll_disconnect` peers and refuses
//! banned ones (`is_banned`) until the ban ends.
//!
//! Only messages the application accepts enter the message cache and are forwarded (op-node
//! validates before relaying). The score is a light version of gossipsub's: invalid messages
//! (P₄, counted across topics), IP colocation (P₆) and behaviour penalties (P₇: GRAFT during
//! backoff, broken IWANT promises), with op-node's thresholds and a temporary ban (op-node's
//! `p2p.ban.threshold` -100 for `p2p.ban.duration` 1 h). Below the graylist threshold (-40) a
//! peer's RPCs are ignored, so a ban follows offences judged together (four invalid messages
//! awaiting validation, a burst of early GRAFTs) or IP colocation. Memory is bounded: per-peer queues
//! (count and bytes), the seen cache, the message cache, pending validations, the inbound
//! reassembly buffers, the ban and retained-score lists.
//!
//! This file holds the router's types, configuration and public API and the handling of
//! received messages; `rpc` is the wire format, `mesh` the heartbeat and mesh upkeep, `score`
//! the peer score, `cache` the seen and message caches, `pb` the protobuf helpers.

mod cache;
mod mesh;
mod pb;
mod rpc;
mod score;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::cache::{MessageCache, SeenCache, Verdict};
use self::mesh::Fanout;
use self::rpc::{encode_control_frame, encode_message_frame, message_frame_len, Control};
pub use self::score::ScoreParams;
use self::score::{colocation_key, Retained};
use crate::protocol::gossip::{message_id, MAX_GOSSIP_SIZE};
use crate::rng::Rng;

/// A gossipsub message id: the OP id, 20 bytes of SHA-256.
pub type MsgId = [u8; 20];

/// The gossipsub protocol version a peer's stream negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `/meshsub/1.0.0`: PRUNE carries no backoff.
    V10,
    /// `/meshsub/1.1.0`.
    V11,
}

impl Protocol {
    /// The versions offered, in preference order.
    pub const SUPPORTED: [Protocol; 2] = [Protocol::V11, Protocol::V10];

    /// The multistream-select protocol id.
    pub fn id(self) -> &'static str {
        match self {
            Protocol::V10 => "/meshsub/1.0.0",
            Protocol::V11 => "/meshsub/1.1.0",
        }
    }

    /// The version with protocol id `id`.
    pub fn from_id(id: &str) -> Option<Protocol> {
        Self::SUPPORTED.into_iter().find(|p| p.id() == id)
    }
}

/// How the application judged a received message (gossipsub v1.1 extended validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// Valid: cached, delivered and forwarded to the mesh.
    Accept,
    /// Invalid: dropped and the sender penalised.
    Reject,
    /// Dropped without penalty (duplicate block, not ready to judge).
    Ignore,
}

/// A message to validate, from `poll_received`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received<P> {
    pub id: MsgId,
    pub topic: String,
    pub data: Arc<[u8]>,
    /// The peer that delivered it first.
    pub from: P,
}

/// Why the router wants a peer disconnected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disconnect {
    /// The score fell below the ban threshold; the peer is refused until the ban expires.
    Banned,
    /// The stream carried something that is not a gossipsub RPC.
    Malformed(RouterError),
}

/// Errors of the router: configuration, peers, malformed input, publishing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterError {
    BadConfig(&'static str),
    UnknownPeer,
    AlreadyConnected,
    /// The peer is banned for `remaining` more.
    Banned {
        remaining: Duration,
    },
    FrameTooLarge {
        len: u64,
        max: usize,
    },
    /// The reassembly buffers of all peers together would exceed their budget.
    BufferLimit {
        max: usize,
    },
    /// A protobuf varint longer than 10 bytes or overflowing 64 bits.
    BadVarint,
    /// A protobuf field runs past the end of its message.
    Truncated,
    WrongWireType {
        field: u64,
        wire: u8,
    },
    /// Field number 0, which protobuf reserves.
    FieldZero,
    /// A `required` field (the message topic) is absent.
    MissingField {
        field: u64,
    },
    UnknownTopic(String),
    MessageTooLarge {
        len: usize,
        max: usize,
    },
    /// The message was published or received within the seen TTL.
    Duplicate,
}

impl fmt::Display for RouterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouterError::BadConfig(why) => write!(f, "bad gossipsub config: {why}"),
            RouterError::UnknownPeer => write!(f, "unknown peer"),
            RouterError::AlreadyConnected => write!(f, "peer already connected"),
            RouterError::Banned { remaining } => write!(f, "peer banned for {}s more", remaining.as_secs()),
            RouterError::FrameTooLarge { len, max } => write!(f, "RPC frame of {len} bytes exceeds {max}"),
            RouterError::BufferLimit { max } => write!(f, "inbound buffers would exceed {max} bytes"),
            RouterError::BadVarint => write!(f, "malformed varint"),
            RouterError::Truncated => write!(f, "truncated protobuf field"),
            RouterError::WrongWireType { field, wire } => {
                write!(f, "protobuf field {field} has wire type {wire}")
            }
            RouterError::FieldZero => write!(f, "protobuf field number 0"),
            RouterError::MissingField { field } => write!(f, "required protobuf field {field} missing"),
            RouterError::UnknownTopic(t) => write!(f, "topic {t:?} is not allowed"),
            RouterError::MessageTooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the {max}-byte RPC limit")
            }
            RouterError::Duplicate => write!(f, "message already seen"),
        }
    }
}

impl std::error::Error for RouterError {}

/// Router parameters; `Config::op_node` gives op-node's.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The topics peers may subscribe to and send (op-node's allowlist filter); at most 64.
    pub topics: Vec<String>,
    pub d: usize,
    pub d_lo: usize,
    pub d_hi: usize,
    pub d_lazy: usize,
    /// Mesh peers kept by score when pruning an oversubscribed mesh.
    pub d_score: usize,
    /// Outbound-connection quota of each mesh.
    pub d_out: usize,
    pub heartbeat_interval: Duration,
    pub fanout_ttl: Duration,
    pub history_length: usize,
    pub history_gossip: usize,
    pub seen_ttl: Duration,
    pub prune_backoff: Duration,
    pub unsubscribe_backoff: Duration,
    /// A GRAFT this soon after our PRUNE costs a second behaviour penalty.
    pub graft_flood_threshold: Duration,
    /// Share of eligible peers that receive gossip, when more than `d_lazy`.
    pub gossip_factor: f64,
    /// Message ids we ask one peer for per heartbeat.
    pub max_ihave_length: usize,
    /// IHAVE messages we take from one peer per heartbeat.
    pub max_ihave_messages: usize,
    /// Time for a peer to deliver a message it advertised and we asked for.
    pub iwant_followup: Duration,
    /// Times one peer may fetch the same message with IWANT.
    pub gossip_retransmission: u8,
    pub flood_publish: bool,
    /// Largest RPC, in and out.
    pub max_transmit_size: usize,
    /// Messages of one RPC that are processed; the rest are dropped.
    pub max_messages_per_rpc: usize,
    /// Outbound RPCs queued per peer; more are dropped and counted.
    pub max_queue_len: usize,
    /// Outbound message bytes queued per peer.
    pub max_queue_bytes: usize,
    /// Bytes of partial inbound frames buffered across all peers.
    pub max_buffered: usize,
    /// Messages awaiting a verdict; more are dropped (op-node's validate queue).
    pub max_pending_validation: usize,
    /// Bytes of the messages awaiting a verdict.
    pub max_pending_bytes: usize,
    /// A message without a verdict after this is ignored (op-node's validator timeout).
    pub validation_timeout: Duration,
    pub max_seen: usize,
    /// Messages, and their bytes, held by the message cache.
    pub max_cached: usize,
    pub max_cached_bytes: usize,
    pub score: ScoreParams,
}

impl Config {
    /// op-node's gossip parameters for the given topics and block time.
    pub fn op_node(topics: Vec<String>, block_time: u64) -> Config {
        let heartbeat = Duration::from_millis(500);
        Config {
            topics,
            d: 8,
            d_lo: 6,
            d_hi: 12,
            d_lazy: 6,
            d_score: 4,
            d_out: 2,
            heartbeat_interval: heartbeat,
            fanout_ttl: Duration::from_secs(24),
            history_length: 12,
            history_gossip: 3,
            seen_ttl: heartbeat * 130,
            prune_backoff: Duration::from_secs(60),
            unsubscribe_backoff: Duration::from_secs(10),
            graft_flood_threshold: Duration::from_secs(10),
            gossip_factor: 0.25,
            max_ihave_length: 5000,
            max_ihave_messages: 10,
            iwant_followup: Duration::from_secs(3),
            gossip_retransmission: 3,
            flood_publish: false,
            max_transmit_size: MAX_GOSSIP_SIZE,
            max_messages_per_rpc: 128,
            max_queue_len: 256,
            max_queue_bytes: 32 << 20,
            max_buffered: 64 << 20,
            max_pending_validation: 256,
            max_pending_bytes: 64 << 20,
            validation_timeout: Duration::from_secs(3),
            max_seen: 4096,
            max_cached: 512,
            max_cached_bytes: 64 << 20,
            score: ScoreParams::light(block_time),
        }
    }

    fn check(&self) -> Result<(), RouterError> {
        let bad = |why| Err(RouterError::BadConfig(why));
        if self.topics.len() > 64 {
            return bad("more than 64 topics");
        }
        if !(self.d_lo <= self.d && self.d <= self.d_hi) {
            return bad("need d_lo <= d <= d_hi");
        }
        if self.d_out >= self.d_lo.max(1) || self.d_out > self.d / 2 {
            return bad("need d_out < d_lo and d_out <= d / 2");
        }
        if self.history_gossip > self.history_length || self.history_length == 0 {
            return bad("need 0 < history_gossip <= history_length");
        }
        if self.heartbeat_interval.is_zero() || self.score.decay_interval.is_zero() {
            return bad("intervals must be positive");
        }
        Ok(())
    }
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub rpcs: u64,
    pub messages: u64,
    pub duplicates: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub ignored: u64,
    /// Messages carrying `from`, `seqno`, `signature` or `key` (StrictNoSign).
    pub unexpected_auth: u64,
    /// Messages on topics we are not subscribed to.
    pub unknown_topic: u64,
    /// Messages dropped because too many awaited validation, or over the per-RPC limit.
    pub throttled: u64,
    pub validation_timeouts: u64,
    /// Outbound RPCs dropped because a peer's queue was full.
    pub queue_drops: u64,
    pub graylisted_rpcs: u64,
    pub malformed: u64,
    pub iwant_served: u64,
    pub broken_promises: u64,
    pub bans: u64,
}

/// The router for peers identified by `P` (the transport's peer id).
pub struct Router<P> {
    cfg: Config,
    rng: Rng,
    ids: BTreeMap<P, u64>,
    peers: BTreeMap<u64, Peer<P>>,
    next_idx: u64,
    ips: BTreeMap<IpAddr, usize>,
    topic_peers: Vec<BTreeSet<u64>>,
    subscribed: u64,
    mesh: BTreeMap<usize, BTreeSet<u64>>,
    fanout: BTreeMap<usize, Fanout>,
    backoff: BTreeMap<(P, usize), Instant>,
    mcache: MessageCache,
    seen: SeenCache,
    pending: BTreeMap<MsgId, Pending<P>>,
    pending_bytes: usize,
    received: VecDeque<Received<P>>,
    /// IWANT promises: message id -> (peer, deadline).
    promises: BTreeMap<MsgId, Vec<(u64, Instant)>>,
    retained: BTreeMap<P, Retained>,
    bans: BTreeMap<P, Instant>,
    disconnects: VecDeque<(P, Disconnect)>,
    dirty: BTreeSet<u64>,
    /// Peers whose mesh control waits for queue room; retried every heartbeat.
    stalled: BTreeSet<u64>,
    buffered: usize,
    next_heartbeat: Instant,
    next_decay: Instant,
    stats: Stats,
}

struct Msg {
    id: MsgId,
    topic: usize,
    data: Arc<[u8]>,
}

enum Queued {
    Frame(Vec<u8>),
    Msg(Arc<Msg>),
}

struct Peer<P> {
    key: P,
    outbound: bool,
    ip: IpAddr,
    protocol: Protocol,
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    control: Control,
    inbuf: Vec<u8>,
    invalid: f64,
    behaviour: f64,
    ihaves: usize,
    asked: usize,
}

struct Pending<P> {
    msg: Arc<Msg>,
    from: P,
    /// Peers that delivered it again while it awaited its verdict.
    also: Vec<P>,
    deadline: Instant,
}

impl<P: Clone + Ord + fmt::Debug> Router<P> {
    /// A router with no peers or subscriptions; `seed` drives peer selection.
    pub fn new(cfg: Config, seed: u64, now: Instant) -> Result<Self, RouterError> {
        cfg.check()?;
        Ok(Router {
            topic_peers: vec![BTreeSet::new(); cfg.topics.len()],
            mcache: MessageCache::new(cfg.history_length, cfg.max_cached, cfg.max_cached_bytes),
            seen: SeenCache::new(cfg.seen_ttl, cfg.max_seen),
            next_heartbeat: now + cfg.heartbeat_interval,
            next_decay: now + cfg.score.decay_interval,
            cfg,
            rng: Rng::new(seed),
            ids: BTreeMap::new(),
            peers: BTreeMap::new(),
            next_idx: 0,
            ips: BTreeMap::new(),
            subscribed: 0,
            mesh: BTreeMap::new(),
            fanout: BTreeMap::new(),
            backoff: BTreeMap::new(),
            pending: BTreeMap::new(),
            pending_bytes: 0,
            received: VecDeque::new(),
            promises: BTreeMap::new(),
            retained: BTreeMap::new(),
            bans: BTreeMap::new(),
            disconnects: VecDeque::new(),
            dirty: BTreeSet::new(),
            stalled: BTreeSet::new(),
            buffered: 0,
            stats: Stats::default(),
        })
    }

    /// Registers a peer whose `/meshsub` stream negotiated `protocol`; `outbound` if we dialled
    /// it. Our subscriptions are queued for it.
    pub fn add_peer(
        &mut self,
        key: P,
        outbound: bool,
        ip: IpAddr,
        protocol: Protocol,
        now: Instant,
    ) -> Result<(), RouterError> {
        if let Some(until) = self.bans.get(&key).filter(|t| **t > now) {
            return Err(RouterError::Banned { remaining: *until - now });
        }
        if self.ids.contains_key(&key) {
            return Err(RouterError::AlreadyConnected);
        }
        let (invalid, behaviour) = match self.retained.remove(&key) {
            Some(r) if r.until > now => (r.invalid, r.behaviour),
            _ => (0.0, 0.0),
        };
        let idx = self.next_idx;
        self.next_idx += 1;
        let ip = colocation_key(ip);
        *self.ips.entry(ip).or_default() += 1;
        let subs = (0..self.cfg.topics.len()).filter(|t| self.is_subscribed(*t)).map(|t| (true, t)).collect();
        let peer = Peer {
            key: key.clone(),
            outbound,
            ip,
            protocol,
            queue: VecDeque::new(),
            queued_bytes: 0,
            control: Control { subs, ..Control::default() },
            inbuf: Vec::new(),
            invalid,
            behaviour,
            ihaves: 0,
            asked: 0,
        };
        self.ids.insert(key, idx);
        self.peers.insert(idx, peer);
        self.dirty.insert(idx);
        self.flush();
        Ok(())
    }

    /// Forgets a peer (its stream or connection closed); penalties are retained for a while.
    pub fn remove_peer(&mut self, key: &P, now: Instant) {
        let Some(idx) = self.ids.remove(key) else { return };
        let Some(peer) = self.peers.remove(&idx) else { return };
        if let Some(n) = self.ips.get_mut(&peer.ip) {
            *n -= 1;
            if *n == 0 {
                self.ips.remove(&peer.ip);
            }
        }
        for set in &mut self.topic_peers {
            set.remove(&idx);
        }
        for set in self.mesh.values_mut() {
            set.remove(&idx);
        }
        for f in self.fanout.values_mut() {
            f.peers.remove(&idx);
        }
        self.dirty.remove(&idx);
        self.stalled.remove(&idx);
        self.buffered -= peer.inbuf.len();
        if peer.invalid > 0.0 || peer.behaviour > 0.0 {
            self.retain(peer.key, peer.invalid, peer.behaviour, now);
        }
    }

    /// Feeds bytes read from the peer's inbound stream: every complete RPC frame is processed
    /// and a partial one buffered. On error the peer is dropped (see `poll_disconnect`).
    pub fn handle_input(&mut self, key: &P, data: &[u8], now: Instant) -> Result<(), RouterError> {
        let Some(&idx) = self.ids.get(key) else { return Err(RouterError::UnknownPeer) };
        let result = self.read_frames(idx, data, now);
        if let Err(e) = &result {
            self.stats.malformed += 1;
            if let Some(p) = self.peers.get_mut(&idx) {
                p.invalid += 1.0;
            }
            self.drop_peer(idx, Disconnect::Malformed(e.clone()), now);
        }
        self.flush();
        result
    }

    /// Subscribes to an allowed topic: announces it and grafts a mesh (fanout peers first).
    pub fn subscribe(&mut self, topic: &str, now: Instant) -> Result<(), RouterError> {
        let t = self.topic_index(topic.as_bytes()).ok_or_else(|| RouterError::UnknownTopic(topic.into()))?;
        if self.is_subscribed(t) {
            return Ok(());
        }
        self.subscribed |= 1 << t;
        self.announce(true, t);
        let scores = self.scores();
        let mut mesh = BTreeSet::new();
        if let Some(f) = self.fanout.remove(&t) {
            let eligible = |p: &u64| scores.get(p).is_some_and(|s| *s >= 0.0) && !self.in_backoff(*p, t, now);
            mesh = f.peers.into_iter().filter(eligible).collect();
        }
        let candidates = self.graft_candidates(t, &mesh, &scores, now);
        let need = self.cfg.d.saturating_sub(mesh.len());
        mesh.extend(self.pick(candidates, need));
        for p in &mesh {
            self.graft(*p, t);
        }
        self.mesh.insert(t, mesh);
        self.flush();
        Ok(())
    }

    /// Unsubscribes: announces it and prunes the mesh with the unsubscribe backoff.
    pub fn unsubscribe(&mut self, topic: &str, now: Instant) -> Result<(), RouterError> {
        let t = self.topic_index(topic.as_bytes()).ok_or_else(|| RouterError::UnknownTopic(topic.into()))?;
        if !self.is_subscribed(t) {
            return Ok(());
        }
        self.subscribed &= !(1 << t);
        self.announce(false, t);
        for p in self.mesh.remove(&t).unwrap_or_default() {
            self.prune(p, t, self.cfg.unsubscribe_backoff, now);
        }
        self.flush();
        Ok(())
    }

    /// Publishes our own message: to the mesh if subscribed, else to the topic's fanout (or to
    /// every topic peer above the publish threshold with flood publishing).
    pub fn publish(&mut self, topic: &str, data: Vec<u8>, now: Instant) -> Result<MsgId, RouterError> {
        let t = self.topic_index(topic.as_bytes()).ok_or_else(|| RouterError::UnknownTopic(topic.into()))?;
        let len = message_frame_len(topic.len(), data.len());
        if len > self.cfg.max_transmit_size {
            return Err(RouterError::MessageTooLarge { len, max: self.cfg.max_transmit_size });
        }
        let id = message_id(topic, &data);
        if self.seen.contains(&id) {
            return Err(RouterError::Duplicate);
        }
        self.seen.insert(id, Verdict::Accepted, now);
        let msg = Arc::new(Msg { id, topic: t, data: data.into() });
        self.mcache.put(&msg);
        let scores = self.scores();
        let publishable = |p: &u64| scores.get(p).is_some_and(|s| *s >= self.cfg.score.publish_threshold);
        let targets: Vec<u64> = if self.cfg.flood_publish {
            self.topic_peers[t].iter().copied().filter(publishable).collect()
        } else if let Some(mesh) = self.mesh.get(&t) {
            mesh.iter().copied().collect()
        } else {
            let mut peers = self.fanout.get(&t).map(|f| f.peers.clone()).unwrap_or_default();
            if peers.is_empty() {
                let candidates: Vec<u64> = self.topic_peers[t].iter().copied().filter(publishable).collect();
                peers = self.pick(candidates, self.cfg.d).into_iter().collect();
            }
            let targets = peers.iter().copied().collect();
            self.fanout.insert(t, Fanout { peers, last_publish: now });
            targets
        };
        for p in targets {
            self.enqueue(p, msg.clone());
        }
        self.flush();
        Ok(id)
    }

    /// Applies the application's verdict on a received message. Returns false when the message
    /// is no longer pending (timed out, or reported twice).
    pub fn report_validation(&mut self, id: &MsgId, verdict: Acceptance, now: Instant) -> bool {
        let Some(pending) = self.pending.remove(id) else { return false };
        self.pending_bytes -= pending.msg.data.len();
        match verdict {
            Acceptance::Accept => {
                self.stats.accepted += 1;
                self.seen.set(id, Verdict::Accepted);
                self.mcache.put(&pending.msg);
                let skip: BTreeSet<u64> = std::iter::once(&pending.from)
                    .chain(&pending.also)
                    .filter_map(|k| self.ids.get(k).copied())
                    .collect();
                let targets: Vec<u64> = self
                    .mesh
                    .get(&pending.msg.topic)
                    .map(|m| m.difference(&skip).copied().collect())
                    .unwrap_or_default();
                for p in targets {
                    self.enqueue(p, pending.msg.clone());
                }
            }
            Acceptance::Reject => {
                self.stats.rejected += 1;
                self.seen.set(id, Verdict::Rejected);
                for key in std::iter::once(&pending.from).chain(&pending.also) {
                    self.penalize_invalid(key, now);
                }
            }
            Acceptance::Ignore => {
                self.stats.ignored += 1;
                self.seen.set(id, Verdict::Ignored);
            }
        }
        self.flush();
        true
    }

    /// The next heartbeat.
    pub fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        Some((self.next_heartbeat, "gossipsub-heartbeat"))
    }

    /// Runs the heartbeat when it is due; otherwise does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_heartbeat {
            return;
        }
        self.heartbeat(now);
        self.next_heartbeat += self.cfg.heartbeat_interval;
        if self.next_heartbeat <= now {
            self.next_heartbeat = now + self.cfg.heartbeat_interval;
        }
    }

    /// Appends the next queued RPC frame for `peer` to `out`; false when there is none. Lets the
    /// transport pull only what the stream can take; the rest stays within the queue bounds.
    pub fn poll_transmit(&mut self, key: &P, out: &mut Vec<u8>) -> bool {
        let Some(peer) = self.ids.get(key).and_then(|i| self.peers.get_mut(i)) else { return false };
        let Some(item) = peer.queue.pop_front() else { return false };
        match item {
            Queued::Frame(f) => out.extend_from_slice(&f),
            Queued::Msg(m) => {
                peer.queued_bytes -= m.data.len();
                encode_message_frame(&self.cfg.topics[m.topic], &m.data, out);
            }
        }
        true
    }

    /// The next queued RPC frame of any peer, with the peer: every frame of the lowest peer
    /// first, as `poll_transmit` would give them.
    pub fn poll_outbound(&mut self) -> Option<(P, Vec<u8>)> {
        let (key, _) =
            self.ids.iter().find(|(_, i)| self.peers.get(i).is_some_and(|p| !p.queue.is_empty()))?;
        let key = key.clone();
        let mut frame = Vec::new();
        self.poll_transmit(&key, &mut frame);
        Some((key, frame))
    }

    /// The next message awaiting validation; answer each with `report_validation`.
    pub fn poll_received(&mut self) -> Option<Received<P>> {
        self.received.pop_front()
    }

    /// The next peer to disconnect, with the reason; the router has already forgotten it.
    pub fn poll_disconnect(&mut self) -> Option<(P, Disconnect)> {
        self.disconnects.pop_front()
    }

    /// Peers banned at `now`, with the ban's end.
    pub fn banned_peers(&self, now: Instant) -> Vec<(P, Instant)> {
        self.bans.iter().filter(|(_, t)| **t > now).map(|(k, t)| (k.clone(), *t)).collect()
    }

    /// True while `peer` is banned.
    pub fn is_banned(&self, key: &P, now: Instant) -> bool {
        self.bans.get(key).is_some_and(|t| *t > now)
    }

    /// The current score of a connected peer.
    pub fn score(&self, key: &P) -> Option<f64> {
        self.ids.get(key).and_then(|i| self.peers.get(i)).map(|p| self.score_of(p))
    }

    /// Our mesh peers on `topic`.
    pub fn mesh_peers(&self, topic: &str) -> Vec<P> {
        let t = self.topic_index(topic.as_bytes());
        t.and_then(|t| self.mesh.get(&t)).map(|m| self.keys(m)).unwrap_or_default()
    }

    /// Connected peers subscribed to `topic`.
    pub fn topic_peers(&self, topic: &str) -> Vec<P> {
        let t = self.topic_index(topic.as_bytes());
        t.map(|t| self.keys(&self.topic_peers[t])).unwrap_or_default()
    }

    /// Counters since creation.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Outbound frames queued for `peer`.
    pub fn queued(&self, key: &P) -> usize {
        self.ids.get(key).and_then(|i| self.peers.get(i)).map_or(0, |p| p.queue.len())
    }

    fn keys(&self, set: &BTreeSet<u64>) -> Vec<P> {
        set.iter().filter_map(|i| self.peers.get(i)).map(|p| p.key.clone()).collect()
    }

    fn topic_index(&self, name: &[u8]) -> Option<usize> {
        self.cfg.topics.iter().position(|t| t.as_bytes() == name)
    }

    fn is_subscribed(&self, t: usize) -> bool {
        self.subscribed & (1 << t) != 0
    }

    fn on_peer_subscription(&mut self, idx: u64, t: usize, subscribe: bool) {
        if subscribe {
            self.topic_peers[t].insert(idx);
        } else {
            self.topic_peers[t].remove(&idx);
            if let Some(m) = self.mesh.get_mut(&t) {
                m.remove(&idx);
            }
            if let Some(f) = self.fanout.get_mut(&t) {
                f.peers.remove(&idx);
            }
        }
    }

    fn on_message(&mut self, idx: u64, msg: &[u8], now: Instant) {
        self.stats.messages += 1;
        let Some(from) = self.peers.get(&idx).map(|p| p.key.clone()) else { return };
        // StrictNoSign: origin stamps and signatures must be absent, not just empty.
        if [1, 3, 5, 6].into_iter().any(|f| pb::has(msg, f)) {
            self.stats.unexpected_auth += 1;
            self.penalize_invalid(&from, now);
            return;
        }
        let topic = pb::last_bytes(msg, 4).unwrap_or_default();
        let Some(t) = self.topic_index(topic).filter(|t| self.is_subscribed(*t)) else {
            self.stats.unknown_topic += 1;
            return;
        };
        let data = pb::last_bytes(msg, 2).unwrap_or_default();
        let id = message_id(&self.cfg.topics[t], data);
        self.promises.remove(&id);
        if let Some(verdict) = self.seen.get(&id) {
            self.stats.duplicates += 1;
            match verdict {
                Verdict::Rejected => self.penalize_invalid(&from, now),
                Verdict::Pending => {
                    if let Some(p) = self.pending.get_mut(&id).filter(|p| p.also.len() < self.cfg.d_hi) {
                        p.also.push(from);
                    }
                }
                Verdict::Accepted | Verdict::Ignored => {}
            }
            return;
        }
        let max = self.cfg.max_pending_validation;
        if self.pending.len() >= max
            || self.received.len() >= max
            || self.pending_bytes + data.len() > self.cfg.max_pending_bytes
        {
            self.stats.throttled += 1;
            self.seen.insert(id, Verdict::Ignored, now);
            return;
        }
        self.pending_bytes += data.len();
        self.seen.insert(id, Verdict::Pending, now);
        let msg = Arc::new(Msg { id, topic: t, data: data.into() });
        self.received.push_back(Received {
            id,
            topic: self.cfg.topics[t].clone(),
            data: msg.data.clone(),
            from: from.clone(),
        });
        let deadline = now + self.cfg.validation_timeout;
        self.pending.insert(id, Pending { msg, from, also: Vec::new(), deadline });
    }

    fn drop_peer(&mut self, idx: u64, reason: Disconnect, now: Instant) {
        let Some(key) = self.peers.get(&idx).map(|p| p.key.clone()) else { return };
        self.remove_peer(&key, now);
        self.disconnects.push_back((key, reason));
    }

    /// Queues a message for a peer, or drops and counts it when the queue is full.
    fn enqueue(&mut self, idx: u64, msg: Arc<Msg>) {
        let Some(peer) = self.peers.get_mut(&idx) else { return };
        let bytes = msg.data.len();
        if peer.queue.len() >= self.cfg.max_queue_len || peer.queued_bytes + bytes > self.cfg.max_queue_bytes
        {
            self.stats.queue_drops += 1;
            return;
        }
        peer.queued_bytes += bytes;
        peer.queue.push_back(Queued::Msg(msg));
    }

    /// Encodes each dirty peer's pending control into one RPC. With the queue full, gossip is
    /// dropped but subscriptions, GRAFTs and PRUNEs wait for room, so mesh state stays agreed.
    fn flush(&mut self) {
        for idx in std::mem::take(&mut self.dirty) {
            let Some(peer) = self.peers.get_mut(&idx) else { continue };
            if peer.queue.len() >= self.cfg.max_queue_len {
                if !(peer.control.ihave.is_empty() && peer.control.iwant.is_empty()) {
                    self.stats.queue_drops += 1;
                }
                peer.control.ihave.clear();
                peer.control.iwant.clear();
                if !peer.control.is_empty() {
                    self.stalled.insert(idx);
                }
                continue;
            }
            if peer.control.is_empty() {
                continue;
            }
            let control = std::mem::take(&mut peer.control);
            let frame = encode_control_frame(&self.cfg.topics, &control, peer.protocol);
            peer.queue.push_back(Queued::Frame(frame));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::rpc::split_frame;
    use super::*;
    use crate::time::test_now;

    pub(super) const TOPIC: &str = "/optimism/10/2/blocks";
    pub(super) const OTHER: &str = "/optimism/10/3/blocks";

    pub(super) fn cfg() -> Config {
        Config::op_node(vec![TOPIC.into(), OTHER.into()], 2)
    }

    pub(super) fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    pub(super) fn router(cfg: Config, t0: Instant) -> Router<u32> {
        Router::new(cfg, 7, t0).unwrap()
    }

    // Hand-built RPCs from a simulated peer.
    pub(super) fn frame(body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut rpc = Vec::new();
        body(&mut rpc);
        let mut f = Vec::new();
        pb::put_varint(&mut f, rpc.len() as u64);
        f.extend_from_slice(&rpc);
        f
    }

    pub(super) fn sub(rpc: &mut Vec<u8>, topic: &str, subscribe: bool) {
        pb::put_message(rpc, 1, |m| {
            pb::put_varint_field(m, 1, u64::from(subscribe));
            pb::put_bytes(m, 2, topic.as_bytes());
        });
    }

    pub(super) fn msg(rpc: &mut Vec<u8>, topic: &str, data: &[u8]) {
        pb::put_message(rpc, 2, |m| {
            pb::put_bytes(m, 2, data);
            pb::put_bytes(m, 4, topic.as_bytes());
        });
    }

    pub(super) fn ctl(rpc: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
        pb::put_message(rpc, 3, body);
    }

    pub(super) fn graft(c: &mut Vec<u8>, topic: &str) {
        pb::put_message(c, 3, |m| pb::put_bytes(m, 1, topic.as_bytes()));
    }

    pub(super) fn prune(c: &mut Vec<u8>, topic: &str, backoff: u64) {
        pb::put_message(c, 4, |m| {
            pb::put_bytes(m, 1, topic.as_bytes());
            pb::put_varint_field(m, 3, backoff);
        });
    }

    pub(super) fn ihave(c: &mut Vec<u8>, topic: &str, ids: &[MsgId]) {
        pb::put_message(c, 1, |m| {
            pb::put_bytes(m, 1, topic.as_bytes());
            ids.iter().for_each(|id| pb::put_bytes(m, 2, id));
        });
    }

    pub(super) fn iwant(c: &mut Vec<u8>, ids: &[MsgId]) {
        pb::put_message(c, 2, |m| ids.iter().for_each(|id| pb::put_bytes(m, 1, id)));
    }

    /// What a router sent, decoded.
    #[derive(Debug, Default)]
    pub(super) struct Sent {
        pub(super) subs: Vec<(bool, String)>,
        pub(super) msgs: Vec<Vec<u8>>,
        pub(super) ihave: Vec<MsgId>,
        pub(super) iwant: Vec<MsgId>,
        pub(super) graft: Vec<String>,
        pub(super) prune: Vec<(String, Option<u64>)>,
    }

    pub(super) fn text(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    pub(super) fn ids(buf: &[u8], field: u64) -> impl Iterator<Item = MsgId> + '_ {
        pb::bytes(buf, field).map(|b| MsgId::try_from(b).unwrap())
    }

    pub(super) fn decode_into(s: &mut Sent, frame: &[u8]) {
        let (head, len) = split_frame(frame, MAX_GOSSIP_SIZE).unwrap().unwrap();
        assert_eq!(head + len, frame.len(), "one RPC per frame");
        let rpc = &frame[head..];
        pb::check(rpc, &pb::RPC).unwrap();
        for m in pb::bytes(rpc, 1) {
            s.subs.push((pb::last_varint(m, 1) == Some(1), text(pb::last_bytes(m, 2).unwrap())));
        }
        for m in pb::bytes(rpc, 2) {
            assert!(!pb::has(m, 1) && !pb::has(m, 3) && !pb::has(m, 5) && !pb::has(m, 6), "StrictNoSign");
            s.msgs.push(pb::last_bytes(m, 2).unwrap().to_vec());
        }
        for c in pb::bytes(rpc, 3) {
            pb::bytes(c, 1).for_each(|m| s.ihave.extend(ids(m, 2)));
            pb::bytes(c, 2).for_each(|m| s.iwant.extend(ids(m, 1)));
            pb::bytes(c, 3).for_each(|m| s.graft.push(text(pb::last_bytes(m, 1).unwrap())));
            for m in pb::bytes(c, 4) {
                s.prune.push((text(pb::last_bytes(m, 1).unwrap()), pb::last_varint(m, 3)));
            }
        }
    }

    /// Everything `r` queued, decoded per peer.
    pub(super) fn sent_all(r: &mut Router<u32>) -> BTreeMap<u32, Sent> {
        let mut all: BTreeMap<u32, Sent> = BTreeMap::new();
        while let Some((to, f)) = r.poll_outbound() {
            decode_into(all.entry(to).or_default(), &f);
        }
        all
    }

    /// Everything `r` queued for `peer`, decoded (other peers' frames are discarded).
    pub(super) fn sent(r: &mut Router<u32>, peer: u32) -> Sent {
        sent_all(r).remove(&peer).unwrap_or_default()
    }

    /// Every message awaiting validation.
    pub(super) fn received(r: &mut Router<u32>) -> Vec<Received<u32>> {
        std::iter::from_fn(|| r.poll_received()).collect()
    }

    /// Every peer to disconnect.
    pub(super) fn disconnects(r: &mut Router<u32>) -> Vec<(u32, Disconnect)> {
        std::iter::from_fn(|| r.poll_disconnect()).collect()
    }

    /// Discards every queued frame.
    pub(super) fn discard_outbound(r: &mut Router<u32>) {
        while r.poll_outbound().is_some() {}
    }

    /// Routers wired together in memory through `poll_outbound` / `handle_input`.
    pub(super) struct Net {
        pub(super) nodes: BTreeMap<u32, Router<u32>>,
        pub(super) now: Instant,
        /// The verdict given to every received message (None: the test reports).
        pub(super) verdict: Option<Acceptance>,
        pub(super) delivered: BTreeMap<u32, Vec<Received<u32>>>,
    }

    impl Net {
        pub(super) fn new(n: u32, cfg: Config) -> Net {
            let now = test_now().mono;
            let nodes = (0..n).map(|i| (i, Router::new(cfg.clone(), u64::from(i), now).unwrap())).collect();
            Net { nodes, now, verdict: Some(Acceptance::Accept), delivered: BTreeMap::new() }
        }

        pub(super) fn node(&mut self, i: u32) -> &mut Router<u32> {
            self.nodes.get_mut(&i).unwrap()
        }

        /// `a` dials `b`.
        pub(super) fn connect(&mut self, a: u32, b: u32) {
            let now = self.now;
            self.node(a).add_peer(b, true, ip(b), Protocol::V11, now).unwrap();
            self.node(b).add_peer(a, false, ip(a), Protocol::V11, now).unwrap();
        }

        pub(super) fn subscribe_all(&mut self, topic: &str) {
            for r in self.nodes.values_mut() {
                r.subscribe(topic, self.now).unwrap();
            }
            self.pump();
        }

        pub(super) fn pump(&mut self) {
            let now = self.now;
            for _ in 0..1000 {
                let mut moved = false;
                let ids: Vec<u32> = self.nodes.keys().copied().collect();
                for from in &ids {
                    while let Some((to, f)) = self.node(*from).poll_outbound() {
                        moved = true;
                        if let Some(r) = self.nodes.get_mut(&to) {
                            r.handle_input(from, &f, now).unwrap();
                        }
                    }
                }
                for (id, r) in self.nodes.iter_mut() {
                    while let Some(m) = r.poll_received() {
                        if let Some(v) = self.verdict {
                            assert!(r.report_validation(&m.id, v, now));
                        }
                        self.delivered.entry(*id).or_default().push(m);
                    }
                }
                if !moved {
                    return;
                }
            }
            panic!("network did not settle");
        }

        pub(super) fn advance(&mut self, d: Duration) {
            let end = self.now + d;
            while self.now < end {
                self.now += Duration::from_millis(100);
                let now = self.now;
                for r in self.nodes.values_mut() {
                    r.handle_timeout(now);
                }
                self.pump();
            }
        }

        pub(super) fn mesh(&self, i: u32) -> BTreeSet<u32> {
            self.nodes[&i].mesh_peers(TOPIC).into_iter().collect()
        }
    }

    /// A router subscribed to TOPIC with peer 1 (inbound, subscribed) in its mesh.
    pub(super) fn meshed(cfg: Config, protocol: Protocol) -> (Router<u32>, Instant) {
        let t0 = test_now().mono;
        let mut r = router(cfg, t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), protocol, t0).unwrap();
        assert_eq!(sent(&mut r, 1).subs, [(true, TOPIC.to_string())]);
        r.handle_input(&1, &frame(|rpc| sub(rpc, TOPIC, true)), t0).unwrap();
        let t = t0 + Duration::from_millis(500);
        r.handle_timeout(t);
        assert_eq!(sent(&mut r, 1).graft, [TOPIC]);
        assert_eq!(r.mesh_peers(TOPIC), [1]);
        (r, t)
    }

    pub(super) fn stream() -> Vec<u8> {
        let mut s = frame(|rpc| sub(rpc, TOPIC, true));
        s.extend(frame(|rpc| {
            msg(rpc, TOPIC, b"one");
            msg(rpc, TOPIC, &[7; 300]);
            ctl(rpc, |c| {
                ihave(c, TOPIC, &[[1; 20], [2; 20]]);
                iwant(c, &[[3; 20]]);
                graft(c, TOPIC);
                prune(c, OTHER, 5);
            });
        }));
        s.extend(frame(|_| {}));
        s
    }

    #[test]
    fn config_defaults_are_op_nodes() {
        let c = cfg();
        assert_eq!((c.d, c.d_lo, c.d_hi, c.d_lazy), (8, 6, 12, 6));
        assert_eq!(
            (c.heartbeat_interval, c.history_length, c.history_gossip),
            (Duration::from_millis(500), 12, 3)
        );
        assert_eq!((c.seen_ttl, c.fanout_ttl), (Duration::from_secs(65), Duration::from_secs(24)));
        assert_eq!((c.max_transmit_size, c.max_queue_len, c.flood_publish), (10 << 20, 256, false));
        let mut bad = cfg();
        bad.d_lo = 9;
        assert!(matches!(Router::<u32>::new(bad, 0, test_now().mono), Err(RouterError::BadConfig(_))));
        assert_eq!(Protocol::from_id("/meshsub/1.0.0"), Some(Protocol::V10));
        assert_eq!(Protocol::from_id("/meshsub/1.2.0"), None);
    }

    #[test]
    fn published_messages_reach_every_node_once() {
        let mut net = Net::new(30, cfg());
        let mut rng = Rng::new(3);
        for a in 0..30u32 {
            for _ in 0..4 {
                let b = rng.below(30) as u32;
                if b != a && !net.nodes[&a].topic_peers(TOPIC).contains(&b) && net.node(a).score(&b).is_none()
                {
                    net.connect(a, b);
                }
            }
        }
        net.subscribe_all(TOPIC);
        net.advance(Duration::from_secs(3));
        for n in 0..5u8 {
            let now = net.now;
            let id = net.node(u32::from(n)).publish(TOPIC, vec![n; 1000], now).unwrap();
            net.pump();
            for i in (0..30).filter(|i| *i != u32::from(n)) {
                let got = net.delivered.get(&i).map_or(0, |d| d.iter().filter(|m| m.id == id).count());
                assert_eq!(got, 1, "node {i}, message {n}");
            }
        }
        assert!(net.nodes.values().map(|r| r.stats().duplicates).sum::<u64>() > 0);
        let now = net.now;
        assert_eq!(net.node(0).publish(TOPIC, vec![0; 1000], now), Err(RouterError::Duplicate));
    }

    #[test]
    fn duplicates_are_suppressed_and_reported_once() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        r.subscribe(TOPIC, t0).unwrap();
        for p in 1..=2 {
            r.add_peer(p, false, ip(p), Protocol::V11, t0).unwrap();
        }
        let f = frame(|rpc| msg(rpc, TOPIC, b"hello"));
        r.handle_input(&1, &f, t0).unwrap();
        r.handle_input(&1, &f, t0).unwrap();
        r.handle_input(&2, &f, t0).unwrap();
        let got = received(&mut r);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].from, &*got[0].data, got[0].topic.as_str()), (1, &b"hello"[..], TOPIC));
        assert_eq!(got[0].id, message_id(TOPIC, b"hello"));
        assert_eq!(r.stats().duplicates, 2);
        // Not forwarded back to either sender.
        discard_outbound(&mut r);
        assert!(r.report_validation(&got[0].id, Acceptance::Accept, t0));
        assert!(!r.report_validation(&got[0].id, Acceptance::Accept, t0));
        assert!(sent(&mut r, 1).msgs.is_empty());
        // Messages on topics we did not join are dropped.
        r.handle_input(&1, &frame(|rpc| msg(rpc, OTHER, b"x")), t0).unwrap();
        r.handle_input(&1, &frame(|rpc| msg(rpc, "/other", b"x")), t0).unwrap();
        assert!(received(&mut r).is_empty());
        assert_eq!(r.stats().unknown_topic, 2);
    }

    #[test]
    fn messages_awaiting_validation_are_bounded() {
        let t0 = test_now().mono;
        let mut r = router(Config { max_pending_validation: 3, max_pending_bytes: 2500, ..cfg() }, t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        for n in 0..4u8 {
            r.handle_input(&1, &frame(|rpc| msg(rpc, TOPIC, &[n; 1000])), t0).unwrap();
        }
        assert_eq!((received(&mut r).len(), r.stats().throttled), (2, 2));
        let many = frame(|rpc| (0..200u8).for_each(|n| msg(rpc, TOPIC, &[n; 10])));
        let mut r = router(cfg(), t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        r.handle_input(&1, &many, t0).unwrap();
        assert_eq!((received(&mut r).len(), r.stats().throttled), (128, 72));
    }

    #[test]
    fn unanswered_validations_time_out() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        r.handle_input(&1, &frame(|rpc| msg(rpc, TOPIC, b"slow")), t0).unwrap();
        let id = received(&mut r)[0].id;
        r.handle_timeout(t0 + Duration::from_secs(4));
        assert!(!r.report_validation(&id, Acceptance::Accept, t0 + Duration::from_secs(4)));
        assert_eq!(r.stats().validation_timeouts, 1);
    }

    #[test]
    fn peer_queues_are_bounded() {
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        for n in 0..300u32 {
            r.publish(TOPIC, n.to_le_bytes().to_vec(), t).unwrap();
        }
        assert_eq!(r.queued(&1), 256);
        assert_eq!(r.stats().queue_drops, 44);
        let mut out = Vec::new();
        assert!(r.poll_transmit(&1, &mut out));
        assert_eq!(r.queued(&1), 255);
        // Bytes are bounded too: 1 MiB messages stop at 32 MiB.
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        for n in 0..40u8 {
            r.publish(TOPIC, vec![n; 1 << 20], t).unwrap();
        }
        assert_eq!(r.queued(&1), 32);
        // A full queue keeps GRAFT/PRUNE for later.
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        for n in 0..256u32 {
            r.publish(TOPIC, n.to_le_bytes().to_vec(), t).unwrap();
        }
        r.handle_input(&1, &frame(|rpc| ctl(rpc, |c| prune(c, TOPIC, 1))), t).unwrap();
        r.handle_timeout(t + Duration::from_secs(2));
        assert_eq!(r.mesh_peers(TOPIC), [1]);
        let mut s = Sent::default();
        let mut f = Vec::new();
        while r.poll_transmit(&1, &mut f) {
            decode_into(&mut s, &std::mem::take(&mut f));
        }
        assert_eq!((s.msgs.len(), s.graft.len()), (256, 0));
        r.handle_timeout(t + Duration::from_millis(2500));
        assert_eq!(sent(&mut r, 1).graft, [TOPIC]);
    }

    #[test]
    fn signed_or_stamped_messages_are_rejected() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        let f = frame(|rpc| {
            for field in [1, 3, 5, 6] {
                pb::put_message(rpc, 2, |m| {
                    pb::put_bytes(m, 2, &[field as u8; 8]);
                    pb::put_bytes(m, 4, TOPIC.as_bytes());
                    pb::put_bytes(m, field, &[]);
                });
            }
        });
        r.handle_input(&1, &f, t0).unwrap();
        assert!(received(&mut r).is_empty());
        assert_eq!(r.stats().unexpected_auth, 4);
        assert_eq!(disconnects(&mut r), [(1, Disconnect::Banned)]);
    }

    #[test]
    fn heartbeat_deadlines() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        assert_eq!(r.poll_timeout(), Some((t0 + Duration::from_millis(500), "gossipsub-heartbeat")));
        r.handle_timeout(t0 + Duration::from_millis(100));
        assert_eq!(r.poll_timeout().unwrap().0, t0 + Duration::from_millis(500));
        r.handle_timeout(t0 + Duration::from_millis(500));
        assert_eq!(r.poll_timeout().unwrap().0, t0 + Duration::from_millis(1000));
        // A late wake-up does not try to catch up.
        r.handle_timeout(t0 + Duration::from_secs(10));
        assert_eq!(r.poll_timeout().unwrap().0, t0 + Duration::from_millis(10_500));
    }
}
