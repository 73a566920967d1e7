//! The gossipsub v1.1 router (`/meshsub/1.1.0`; `/meshsub/1.0.0` peers are answered too) as a
//! sans-IO state machine, configured as op-node configures go-libp2p-pubsub
//! (`op-node/p2p/gossip.go`): D 8 / Dlo 6 / Dhi 12 / Dlazy 6, a 500 ms heartbeat, a message
//! cache of 12 windows gossiping 3, a 65 s seen cache, `StrictNoSign`, the OP message id, a
//! 10 MiB RPC limit, no peer exchange, no flood publishing, an allowlist of topics.
//!
//! Inputs: `add_peer` / `remove_peer` as the transport's `/meshsub` streams come and go, the
//! bytes of a peer's inbound stream (`on_data`: varint-length-prefixed `RPC` protobufs, any
//! split), `subscribe` / `publish` from the application, validation verdicts
//! (`report_validation`) and `handle_timeout`. Outputs: framed RPCs per peer (`poll_transmit`
//! or `take_outbound`), messages to validate (`take_received`), and peers to disconnect
//! (`take_disconnects`: malformed streams and temporary bans).
//!
//! The transport's part: `P` is its peer id (libp2p `PeerId` bytes; `Clone + Ord`). Per
//! connected peer it opens one outbound stream, negotiating `Protocol::SUPPORTED` in order, and
//! then calls `add_peer` with the negotiated version, whether it dialled the connection (for
//! the outbound mesh quota) and the remote IP; it feeds the bytes of the peer's inbound
//! `/meshsub` stream to `on_data`, writes `poll_transmit` frames to the outbound stream, calls
//! `remove_peer` when the connection closes, closes `take_disconnects` peers and refuses
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

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// A message to validate, from `take_received`.
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

/// The light peer score: weights, decay and thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreParams {
    /// Weight of the squared invalid-message counter (P₄).
    pub invalid_message_weight: f64,
    pub invalid_message_decay: f64,
    /// Weight of the squared surplus of peers sharing an IP (IPv6: a /64) (P₆).
    pub ip_colocation_weight: f64,
    pub ip_colocation_threshold: usize,
    /// Weight of the squared behaviour-penalty excess over the threshold (P₇).
    pub behaviour_penalty_weight: f64,
    pub behaviour_penalty_threshold: f64,
    pub behaviour_penalty_decay: f64,
    pub decay_interval: Duration,
    /// Counters decayed below this become 0.
    pub decay_to_zero: f64,
    /// How long a disconnected peer's penalties are remembered.
    pub retain_score: Duration,
    /// Below: no gossip to or from the peer.
    pub gossip_threshold: f64,
    /// Below: none of our own messages go to the peer.
    pub publish_threshold: f64,
    /// Below: the peer's RPCs are ignored.
    pub graylist_threshold: f64,
    /// Below: the peer is disconnected and refused for `ban_duration`.
    pub ban_threshold: f64,
    pub ban_duration: Duration,
}

impl ScoreParams {
    /// op-node's "light" scoring for a chain with `block_time`-second blocks: colocation and
    /// behaviour weights of `LightPeerScoreParams`, decay over ten 6-block epochs, the
    /// thresholds of `NewPeerScoreThresholds`, and the default ban (-100, 1 h). op-node
    /// configures no topic scores; the invalid-message term (-10 × n²: graylisted at 3, banned
    /// at 4) stands in for its application score's rejected-payload penalty.
    pub fn light(block_time: u64) -> ScoreParams {
        let slot = Duration::from_secs(if block_time == 0 { 2 } else { block_time });
        // op-node's ScoreDecay(10 epochs, slot): reach 1% after 60 slots.
        let decay = 0.01f64.powf(1.0 / 60.0);
        ScoreParams {
            invalid_message_weight: -10.0,
            invalid_message_decay: decay,
            ip_colocation_weight: -35.0,
            ip_colocation_threshold: 10,
            behaviour_penalty_weight: -16.0,
            behaviour_penalty_threshold: 6.0,
            behaviour_penalty_decay: decay,
            decay_interval: slot,
            decay_to_zero: 0.01,
            retain_score: slot * 600,
            gossip_threshold: -10.0,
            publish_threshold: -40.0,
            graylist_threshold: -40.0,
            ban_threshold: -100.0,
            ban_duration: Duration::from_secs(3600),
        }
    }
}

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
    disconnects: Vec<(P, Disconnect)>,
    dirty: BTreeSet<u64>,
    /// Peers whose mesh control waits for queue room; retried every heartbeat.
    stalled: BTreeSet<u64>,
    buffered: usize,
    next_heartbeat: Instant,
    next_decay: Instant,
    stats: Stats,
}

const MAX_BANS: usize = 1024;
const MAX_RETAINED: usize = 1024;
const MAX_BACKOFFS: usize = 4096;
/// PRUNE backoffs beyond a day are taken as a day.
const MAX_BACKOFF: Duration = Duration::from_secs(86_400);

struct Msg {
    id: MsgId,
    topic: usize,
    data: Arc<[u8]>,
}

enum Queued {
    Frame(Vec<u8>),
    Msg(Arc<Msg>),
}

#[derive(Default)]
struct Control {
    subs: Vec<(bool, usize)>,
    graft: Vec<usize>,
    prune: Vec<(usize, u64)>,
    ihave: Vec<(usize, Vec<MsgId>)>,
    iwant: Vec<MsgId>,
}

impl Control {
    fn is_empty(&self) -> bool {
        self.subs.is_empty()
            && self.graft.is_empty()
            && self.prune.is_empty()
            && self.ihave.is_empty()
            && self.iwant.is_empty()
    }
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

struct Fanout {
    peers: BTreeSet<u64>,
    last_publish: Instant,
}

struct Pending<P> {
    msg: Arc<Msg>,
    from: P,
    /// Peers that delivered it again while it awaited its verdict.
    also: Vec<P>,
    deadline: Instant,
}

struct Retained {
    invalid: f64,
    behaviour: f64,
    until: Instant,
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
            disconnects: Vec::new(),
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

    /// Remembers a disconnected peer's penalties for `retain_score`.
    fn retain(&mut self, key: P, invalid: f64, behaviour: f64, now: Instant) {
        if self.retained.len() >= MAX_RETAINED && !self.retained.contains_key(&key) {
            evict_earliest(&mut self.retained, |r| r.until);
        }
        let until = now + self.cfg.score.retain_score;
        self.retained.insert(key, Retained { invalid, behaviour, until });
    }

    /// Feeds bytes read from the peer's inbound stream: every complete RPC frame is processed
    /// and a partial one buffered. On error the peer is dropped (see `take_disconnects`).
    pub fn on_data(&mut self, key: &P, data: &[u8], now: Instant) -> Result<(), RouterError> {
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

    /// Every queued frame of every peer (one frame per entry).
    pub fn take_outbound(&mut self) -> Vec<(P, Vec<u8>)> {
        let keys: Vec<P> = self.ids.keys().cloned().collect();
        let mut out = Vec::new();
        for key in keys {
            let mut frame = Vec::new();
            while self.poll_transmit(&key, &mut frame) {
                out.push((key.clone(), std::mem::take(&mut frame)));
            }
        }
        out
    }

    /// Messages awaiting validation; answer each with `report_validation`.
    pub fn take_received(&mut self) -> Vec<Received<P>> {
        self.received.drain(..).collect()
    }

    /// Peers to disconnect, with the reason; the router has already forgotten them.
    pub fn take_disconnects(&mut self) -> Vec<(P, Disconnect)> {
        std::mem::take(&mut self.disconnects)
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

    fn read_frames(&mut self, idx: u64, data: &[u8], now: Instant) -> Result<(), RouterError> {
        let Some(peer) = self.peers.get_mut(&idx) else { return Ok(()) };
        let mut buf = std::mem::take(&mut peer.inbuf);
        self.buffered -= buf.len();
        let from_buf = !buf.is_empty();
        if from_buf {
            buf.extend_from_slice(data);
        }
        let input: &[u8] = if from_buf { &buf } else { data };
        let mut pos = 0;
        while let Some((head, len)) = split_frame(&input[pos..], self.cfg.max_transmit_size)? {
            let body = &input[pos + head..pos + head + len];
            pos += head + len;
            self.handle_rpc(idx, body, now)?;
            if !self.peers.contains_key(&idx) {
                return Ok(());
            }
        }
        let rest = input.len() - pos;
        if self.buffered + rest > self.cfg.max_buffered {
            return Err(RouterError::BufferLimit { max: self.cfg.max_buffered });
        }
        let keep = if from_buf {
            buf.drain(..pos);
            buf
        } else {
            data[pos..].to_vec()
        };
        self.buffered += keep.len();
        if let Some(peer) = self.peers.get_mut(&idx) {
            peer.inbuf = keep;
        }
        Ok(())
    }

    fn handle_rpc(&mut self, idx: u64, rpc: &[u8], now: Instant) -> Result<(), RouterError> {
        pb::check(rpc, &pb::RPC)?;
        self.stats.rpcs += 1;
        let Some(peer) = self.peers.get(&idx) else { return Ok(()) };
        if self.score_of(peer) < self.cfg.score.graylist_threshold {
            self.stats.graylisted_rpcs += 1;
            return Ok(());
        }
        for sub in pb::bytes(rpc, 1) {
            let subscribe = pb::last_varint(sub, 1).unwrap_or(0) != 0;
            let Some(t) = pb::last_bytes(sub, 2).and_then(|n| self.topic_index(n)) else { continue };
            self.on_peer_subscription(idx, t, subscribe);
        }
        for (n, msg) in pb::bytes(rpc, 2).enumerate() {
            if n >= self.cfg.max_messages_per_rpc {
                self.stats.throttled += 1;
                continue;
            }
            self.on_message(idx, msg, now);
            if !self.peers.contains_key(&idx) {
                return Ok(());
            }
        }
        let controls: Vec<&[u8]> = pb::bytes(rpc, 3).collect();
        let each = |field| controls.iter().copied().flat_map(move |c| pb::bytes(c, field));
        self.on_ihave(idx, each(1), now);
        for iwant in each(2) {
            self.on_iwant(idx, iwant);
        }
        for graft in each(3) {
            self.on_graft(idx, graft, now);
            if !self.peers.contains_key(&idx) {
                return Ok(());
            }
        }
        for prune in each(4) {
            self.on_prune(idx, prune, now);
        }
        Ok(())
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

    fn on_ihave<'a>(&mut self, idx: u64, ihaves: impl Iterator<Item = &'a [u8]>, now: Instant) {
        let Some(peer) = self.peers.get(&idx) else { return };
        if self.score_of(peer) < self.cfg.score.gossip_threshold {
            return;
        }
        let budget = self.cfg.max_ihave_length.saturating_sub(peer.asked);
        let mut want: BTreeSet<MsgId> = BTreeSet::new();
        for ihave in ihaves {
            let Some(peer) = self.peers.get_mut(&idx) else { return };
            peer.ihaves += 1;
            if peer.ihaves > self.cfg.max_ihave_messages {
                break;
            }
            let topic = pb::last_bytes(ihave, 1).and_then(|n| self.topic_index(n));
            if !topic.is_some_and(|t| self.mesh.contains_key(&t)) {
                continue;
            }
            for id in pb::bytes(ihave, 2).filter_map(|b| MsgId::try_from(b).ok()) {
                if want.len() >= budget {
                    break;
                }
                if !self.seen.contains(&id) {
                    want.insert(id);
                }
            }
        }
        if want.is_empty() {
            return;
        }
        let want: Vec<MsgId> = want.into_iter().collect();
        // One random id of the request is tracked: if it never arrives the promise is broken.
        let tracked = want[self.rng.below(want.len() as u64) as usize];
        self.promises.entry(tracked).or_default().push((idx, now + self.cfg.iwant_followup));
        if let Some(peer) = self.peers.get_mut(&idx) {
            peer.asked += want.len();
            peer.control.iwant.extend(want);
            self.dirty.insert(idx);
        }
    }

    fn on_iwant(&mut self, idx: u64, iwant: &[u8]) {
        let Some(peer) = self.peers.get(&idx) else { return };
        if self.score_of(peer) < self.cfg.score.gossip_threshold {
            return;
        }
        for id in pb::bytes(iwant, 1).filter_map(|b| MsgId::try_from(b).ok()) {
            if let Some(msg) = self.mcache.get_for_peer(&id, idx, self.cfg.gossip_retransmission) {
                self.stats.iwant_served += 1;
                self.enqueue(idx, msg);
            }
        }
    }

    fn on_graft(&mut self, idx: u64, graft: &[u8], now: Instant) {
        // GRAFTs for topics we have no mesh in are ignored, not answered (spam hardening).
        let Some(t) = pb::last_bytes(graft, 1).and_then(|n| self.topic_index(n)) else { return };
        let Some(peer) = self.peers.get(&idx) else { return };
        let mesh_len = match self.mesh.get(&t) {
            Some(m) if m.contains(&idx) => return,
            Some(m) => m.len(),
            None => return,
        };
        let key = peer.key.clone();
        if let Some(until) = self.backoff.get(&(key.clone(), t)).copied().filter(|u| now < *u) {
            let mut penalty = 1.0;
            // Within graft_flood_threshold of the PRUNE itself: a flood, penalised twice.
            if until
                .checked_sub(self.cfg.prune_backoff)
                .is_some_and(|pruned| now < pruned + self.cfg.graft_flood_threshold)
            {
                penalty += 1.0;
            }
            if let Some(p) = self.peers.get_mut(&idx) {
                p.behaviour += penalty;
            }
            self.prune(idx, t, self.cfg.prune_backoff, now);
            self.check_ban(idx, now);
            return;
        }
        let score = self.score_of(peer);
        if score < 0.0 || (mesh_len >= self.cfg.d_hi && !peer.outbound) {
            self.prune(idx, t, self.cfg.prune_backoff, now);
            return;
        }
        if let Some(m) = self.mesh.get_mut(&t) {
            m.insert(idx);
        }
    }

    fn on_prune(&mut self, idx: u64, prune: &[u8], now: Instant) {
        let Some(t) = pb::last_bytes(prune, 1).and_then(|n| self.topic_index(n)) else { return };
        let Some(m) = self.mesh.get_mut(&t) else { return };
        m.remove(&idx);
        let backoff = match pb::last_varint(prune, 3) {
            Some(s) if s > 0 => Duration::from_secs(s).min(MAX_BACKOFF),
            _ => self.cfg.prune_backoff,
        };
        self.add_backoff(idx, t, backoff, now);
    }

    fn penalize_invalid(&mut self, key: &P, now: Instant) {
        if let Some(idx) = self.ids.get(key).copied() {
            if let Some(p) = self.peers.get_mut(&idx) {
                p.invalid += 1.0;
            }
            self.check_ban(idx, now);
        } else {
            let (invalid, behaviour) =
                self.retained.get(key).map_or((0.0, 0.0), |r| (r.invalid, r.behaviour));
            self.retain(key.clone(), invalid + 1.0, behaviour, now);
        }
    }

    fn check_ban(&mut self, idx: u64, now: Instant) {
        let Some(peer) = self.peers.get(&idx) else { return };
        if self.score_of(peer) >= self.cfg.score.ban_threshold {
            return;
        }
        if self.bans.len() >= MAX_BANS {
            evict_earliest(&mut self.bans, |t| *t);
        }
        self.bans.insert(peer.key.clone(), now + self.cfg.score.ban_duration);
        self.stats.bans += 1;
        self.drop_peer(idx, Disconnect::Banned, now);
    }

    fn drop_peer(&mut self, idx: u64, reason: Disconnect, now: Instant) {
        let Some(key) = self.peers.get(&idx).map(|p| p.key.clone()) else { return };
        self.remove_peer(&key, now);
        self.disconnects.push((key, reason));
    }

    fn score_of(&self, p: &Peer<P>) -> f64 {
        let s = &self.cfg.score;
        let mut score = p.invalid * p.invalid * s.invalid_message_weight;
        let colocated = self.ips.get(&p.ip).copied().unwrap_or(0);
        if colocated > s.ip_colocation_threshold {
            let surplus = (colocated - s.ip_colocation_threshold) as f64;
            score += surplus * surplus * s.ip_colocation_weight;
        }
        let excess = p.behaviour - s.behaviour_penalty_threshold;
        if excess > 0.0 {
            score += excess * excess * s.behaviour_penalty_weight;
        }
        score
    }

    fn scores(&self) -> BTreeMap<u64, f64> {
        self.peers.iter().map(|(i, p)| (*i, self.score_of(p))).collect()
    }

    fn heartbeat(&mut self, now: Instant) {
        self.expire(now);
        self.decay(now);
        self.break_promises(now);
        let low: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| self.score_of(p) < self.cfg.score.ban_threshold)
            .map(|(i, _)| *i)
            .collect();
        for idx in low {
            self.check_ban(idx, now);
        }
        for p in self.peers.values_mut() {
            p.ihaves = 0;
            p.asked = 0;
        }
        let scores = self.scores();
        let topics: Vec<usize> = self.mesh.keys().copied().collect();
        for t in topics {
            self.maintain_mesh(t, &scores, now);
        }
        self.maintain_fanout(&scores, now);
        let gossip: Vec<(usize, BTreeSet<u64>)> = self
            .mesh
            .iter()
            .map(|(t, m)| (*t, m.clone()))
            .chain(self.fanout.iter().map(|(t, f)| (*t, f.peers.clone())))
            .collect();
        for (t, exclude) in gossip {
            self.emit_gossip(t, &exclude, &scores);
        }
        self.mcache.shift();
        self.dirty.append(&mut self.stalled);
        self.flush();
    }

    fn expire(&mut self, now: Instant) {
        self.seen.expire(now);
        let timed_out: Vec<MsgId> =
            self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| *id).collect();
        for id in timed_out {
            if let Some(p) = self.pending.remove(&id) {
                self.pending_bytes -= p.msg.data.len();
            }
            self.seen.set(&id, Verdict::Ignored);
            self.stats.validation_timeouts += 1;
        }
        self.bans.retain(|_, t| *t > now);
        self.retained.retain(|_, r| r.until > now);
        let slack = self.cfg.heartbeat_interval;
        self.backoff.retain(|_, t| *t + slack > now);
    }

    fn decay(&mut self, now: Instant) {
        let interval = self.cfg.score.decay_interval;
        if now < self.next_decay {
            return;
        }
        let periods = (now - self.next_decay).as_nanos() / interval.as_nanos() + 1;
        self.next_decay += interval * u32::try_from(periods).unwrap_or(u32::MAX).min(1 << 20);
        if self.next_decay <= now {
            self.next_decay = now + interval;
        }
        let n = i32::try_from(periods).unwrap_or(i32::MAX);
        let s = &self.cfg.score;
        let decayed = |x: f64, f: f64| {
            let y = x * f.powi(n);
            if y < s.decay_to_zero {
                0.0
            } else {
                y
            }
        };
        for p in self.peers.values_mut() {
            p.invalid = decayed(p.invalid, s.invalid_message_decay);
            p.behaviour = decayed(p.behaviour, s.behaviour_penalty_decay);
        }
        for r in self.retained.values_mut() {
            r.invalid = decayed(r.invalid, s.invalid_message_decay);
            r.behaviour = decayed(r.behaviour, s.behaviour_penalty_decay);
        }
    }

    fn break_promises(&mut self, now: Instant) {
        let mut broken: BTreeMap<u64, f64> = BTreeMap::new();
        self.promises.retain(|_, list| {
            list.retain(|(idx, deadline)| {
                let kept = *deadline > now;
                if !kept {
                    *broken.entry(*idx).or_default() += 1.0;
                }
                kept
            });
            !list.is_empty()
        });
        for (idx, n) in broken {
            if let Some(p) = self.peers.get_mut(&idx) {
                p.behaviour += n;
                self.stats.broken_promises += n as u64;
            }
            self.check_ban(idx, now);
        }
    }

    fn maintain_mesh(&mut self, t: usize, scores: &BTreeMap<u64, f64>, now: Instant) {
        let mut mesh = self.mesh.remove(&t).unwrap_or_default();
        let score = |p: &u64| scores.get(p).copied().unwrap_or(f64::NEG_INFINITY);
        let negative: Vec<u64> = mesh.iter().copied().filter(|p| score(p) < 0.0).collect();
        for p in negative {
            mesh.remove(&p);
            self.prune(p, t, self.cfg.prune_backoff, now);
        }
        if mesh.len() < self.cfg.d_lo {
            let candidates = self.graft_candidates(t, &mesh, scores, now);
            let need = self.cfg.d - mesh.len();
            for p in self.pick(candidates, need) {
                mesh.insert(p);
                self.graft(p, t);
            }
        }
        if mesh.len() > self.cfg.d_hi {
            let keep = self.select_survivors(&mesh, scores);
            let dropped: Vec<u64> = mesh.difference(&keep).copied().collect();
            for p in dropped {
                self.prune(p, t, self.cfg.prune_backoff, now);
            }
            mesh = keep;
        }
        let outbound = mesh.iter().filter(|p| self.is_outbound(**p)).count();
        if mesh.len() >= self.cfg.d_lo && outbound < self.cfg.d_out {
            let mut candidates = self.graft_candidates(t, &mesh, scores, now);
            candidates.retain(|p| self.is_outbound(*p));
            for p in self.pick(candidates, self.cfg.d_out - outbound) {
                mesh.insert(p);
                self.graft(p, t);
            }
        }
        self.mesh.insert(t, mesh);
    }

    /// Survivors of an oversubscribed mesh: the `d_score` best, then random peers up to `d`,
    /// with at least `d_out` outbound peers swapped in for the last inbound ones.
    fn select_survivors(&mut self, mesh: &BTreeSet<u64>, scores: &BTreeMap<u64, f64>) -> BTreeSet<u64> {
        let mut list: Vec<u64> = mesh.iter().copied().collect();
        shuffle(&mut self.rng, &mut list);
        let score = |p: &u64| scores.get(p).copied().unwrap_or(f64::NEG_INFINITY);
        list.sort_by(|a, b| score(b).total_cmp(&score(a)));
        let best = self.cfg.d_score.min(list.len());
        shuffle(&mut self.rng, &mut list[best..]);
        let (keep, rest) = list.split_at(self.cfg.d.min(list.len()));
        let mut keep = keep.to_vec();
        let outbound = keep.iter().filter(|p| self.is_outbound(**p)).count();
        let extra: Vec<u64> = rest
            .iter()
            .copied()
            .filter(|p| self.is_outbound(*p))
            .take(self.cfg.d_out.saturating_sub(outbound))
            .collect();
        for e in extra {
            if let Some(pos) = keep.iter().rposition(|p| !self.is_outbound(*p)) {
                keep[pos] = e;
            }
        }
        keep.into_iter().collect()
    }

    fn maintain_fanout(&mut self, scores: &BTreeMap<u64, f64>, now: Instant) {
        let ttl = self.cfg.fanout_ttl;
        self.fanout.retain(|_, f| f.last_publish + ttl > now);
        let topics: Vec<usize> = self.fanout.keys().copied().collect();
        let threshold = self.cfg.score.publish_threshold;
        for t in topics {
            let Some(mut f) = self.fanout.remove(&t) else { continue };
            let topic_peers = &self.topic_peers[t];
            f.peers.retain(|p| topic_peers.contains(p) && scores.get(p).is_some_and(|s| *s >= threshold));
            if f.peers.len() < self.cfg.d {
                let candidates: Vec<u64> = topic_peers
                    .iter()
                    .copied()
                    .filter(|p| !f.peers.contains(p) && scores.get(p).is_some_and(|s| *s >= threshold))
                    .collect();
                let need = self.cfg.d - f.peers.len();
                f.peers.extend(self.pick(candidates, need));
            }
            self.fanout.insert(t, f);
        }
    }

    fn emit_gossip(&mut self, t: usize, exclude: &BTreeSet<u64>, scores: &BTreeMap<u64, f64>) {
        let ids = self.mcache.gossip_ids(t, self.cfg.history_gossip);
        if ids.is_empty() {
            return;
        }
        let threshold = self.cfg.score.gossip_threshold;
        let candidates: Vec<u64> = self.topic_peers[t]
            .iter()
            .copied()
            .filter(|p| !exclude.contains(p) && scores.get(p).is_some_and(|s| *s >= threshold))
            .collect();
        let target = self.cfg.d_lazy.max((self.cfg.gossip_factor * candidates.len() as f64) as usize);
        for p in self.pick(candidates, target) {
            let mut ids = ids.clone();
            if ids.len() > self.cfg.max_ihave_length {
                shuffle(&mut self.rng, &mut ids);
                ids.truncate(self.cfg.max_ihave_length);
            }
            if let Some(peer) = self.peers.get_mut(&p) {
                peer.control.ihave.push((t, ids));
                self.dirty.insert(p);
            }
        }
    }

    /// Topic peers outside `mesh` with a non-negative score and no backoff.
    fn graft_candidates(
        &self,
        t: usize,
        mesh: &BTreeSet<u64>,
        scores: &BTreeMap<u64, f64>,
        now: Instant,
    ) -> Vec<u64> {
        self.topic_peers[t]
            .iter()
            .copied()
            .filter(|p| !mesh.contains(p) && scores.get(p).is_some_and(|s| *s >= 0.0))
            .filter(|p| !self.in_backoff(*p, t, now))
            .collect()
    }

    /// True until a heartbeat after the backoff ends: slack for the clock offset to the peer,
    /// which refuses (and penalises) a GRAFT that comes too early.
    fn in_backoff(&self, idx: u64, t: usize, now: Instant) -> bool {
        let Some(peer) = self.peers.get(&idx) else { return false };
        let slack = self.cfg.heartbeat_interval;
        self.backoff.get(&(peer.key.clone(), t)).is_some_and(|until| *until + slack > now)
    }

    fn is_outbound(&self, idx: u64) -> bool {
        self.peers.get(&idx).is_some_and(|p| p.outbound)
    }

    fn pick(&mut self, mut candidates: Vec<u64>, n: usize) -> Vec<u64> {
        shuffle(&mut self.rng, &mut candidates);
        candidates.truncate(n);
        candidates
    }

    fn announce(&mut self, subscribe: bool, t: usize) {
        for (idx, p) in self.peers.iter_mut() {
            p.control.subs.push((subscribe, t));
            self.dirty.insert(*idx);
        }
    }

    fn graft(&mut self, idx: u64, t: usize) {
        if let Some(p) = self.peers.get_mut(&idx) {
            p.control.graft.push(t);
            self.dirty.insert(idx);
        }
    }

    fn prune(&mut self, idx: u64, t: usize, backoff: Duration, now: Instant) {
        self.add_backoff(idx, t, backoff, now);
        if let Some(p) = self.peers.get_mut(&idx) {
            p.control.prune.push((t, backoff.as_secs()));
            self.dirty.insert(idx);
        }
    }

    fn add_backoff(&mut self, idx: u64, t: usize, backoff: Duration, now: Instant) {
        let Some(key) = self.peers.get(&idx).map(|p| p.key.clone()) else { return };
        let until = now + backoff;
        let full = self.backoff.len() >= MAX_BACKOFFS;
        match self.backoff.get_mut(&(key.clone(), t)) {
            Some(old) => *old = (*old).max(until),
            None if !full => {
                self.backoff.insert((key, t), until);
            }
            None => {}
        }
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

/// Peers on one IPv4 address, or one IPv6 /64, count as colocated.
fn colocation_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

fn evict_earliest<K: Ord + Clone, V>(map: &mut BTreeMap<K, V>, at: impl Fn(&V) -> Instant) {
    if let Some(k) = map.iter().min_by_key(|(_, v)| at(v)).map(|(k, _)| k.clone()) {
        map.remove(&k);
    }
}

fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// Splits the length prefix off `buf`: `(prefix length, body length)`, or None if incomplete.
fn split_frame(buf: &[u8], max: usize) -> Result<Option<(usize, usize)>, RouterError> {
    let mut pos = 0;
    let len = match pb::read_varint(buf, &mut pos) {
        Ok(len) => len,
        Err(RouterError::Truncated) => return Ok(None),
        Err(e) => return Err(e),
    };
    if len > max as u64 {
        return Err(RouterError::FrameTooLarge { len, max });
    }
    let len = len as usize;
    Ok((buf.len() - pos >= len).then_some((pos, len)))
}

/// Frame length of an RPC carrying one message (`data`, `topic`) and nothing else.
fn message_frame_len(topic_len: usize, data_len: usize) -> usize {
    let msg = pb::field_len(data_len) + pb::field_len(topic_len);
    let rpc = pb::field_len(msg);
    pb::varint_len(rpc as u64) + rpc
}

fn encode_message_frame(topic: &str, data: &[u8], out: &mut Vec<u8>) {
    let msg = pb::field_len(data.len()) + pb::field_len(topic.len());
    pb::put_varint(out, pb::field_len(msg) as u64);
    pb::put_key(out, 2, pb::LEN);
    pb::put_varint(out, msg as u64);
    pb::put_bytes(out, 2, data);
    pb::put_bytes(out, 4, topic.as_bytes());
}

fn encode_control_frame(topics: &[String], c: &Control, protocol: Protocol) -> Vec<u8> {
    let topic = |t: usize| topics[t].as_bytes();
    let mut rpc = Vec::new();
    for (subscribe, t) in &c.subs {
        pb::put_message(&mut rpc, 1, |m| {
            pb::put_varint_field(m, 1, u64::from(*subscribe));
            pb::put_bytes(m, 2, topic(*t));
        });
    }
    let has_control = !(c.ihave.is_empty() && c.iwant.is_empty() && c.graft.is_empty() && c.prune.is_empty());
    if has_control {
        pb::put_message(&mut rpc, 3, |ctl| {
            for (t, ids) in &c.ihave {
                pb::put_message(ctl, 1, |m| {
                    pb::put_bytes(m, 1, topic(*t));
                    ids.iter().for_each(|id| pb::put_bytes(m, 2, id));
                });
            }
            if !c.iwant.is_empty() {
                pb::put_message(ctl, 2, |m| c.iwant.iter().for_each(|id| pb::put_bytes(m, 1, id)));
            }
            for t in &c.graft {
                pb::put_message(ctl, 3, |m| pb::put_bytes(m, 1, topic(*t)));
            }
            for (t, backoff) in &c.prune {
                pb::put_message(ctl, 4, |m| {
                    pb::put_bytes(m, 1, topic(*t));
                    if protocol == Protocol::V11 {
                        pb::put_varint_field(m, 3, *backoff);
                    }
                });
            }
        });
    }
    let mut frame = Vec::with_capacity(rpc.len() + 5);
    pb::put_varint(&mut frame, rpc.len() as u64);
    frame.extend_from_slice(&rpc);
    frame
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pending,
    Accepted,
    Rejected,
    Ignored,
}

/// Ids seen within the TTL (first-seen), oldest first, capped.
struct SeenCache {
    ttl: Duration,
    cap: usize,
    map: HashMap<MsgId, Verdict>,
    order: VecDeque<(Instant, MsgId)>,
}

impl SeenCache {
    fn new(ttl: Duration, cap: usize) -> Self {
        SeenCache { ttl, cap, map: HashMap::new(), order: VecDeque::new() }
    }

    fn contains(&self, id: &MsgId) -> bool {
        self.map.contains_key(id)
    }

    fn get(&self, id: &MsgId) -> Option<Verdict> {
        self.map.get(id).copied()
    }

    fn insert(&mut self, id: MsgId, v: Verdict, now: Instant) {
        while self.order.len() >= self.cap {
            let Some((_, old)) = self.order.pop_front() else { break };
            self.map.remove(&old);
        }
        self.map.insert(id, v);
        self.order.push_back((now, id));
    }

    fn set(&mut self, id: &MsgId, v: Verdict) {
        if let Some(old) = self.map.get_mut(id) {
            *old = v;
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, id)) = self.order.front().copied() {
            if at + self.ttl > now {
                break;
            }
            self.order.pop_front();
            self.map.remove(&id);
        }
    }
}

struct Cached {
    msg: Arc<Msg>,
    /// IWANT fetches per peer.
    fetches: Vec<(u64, u8)>,
}

/// Accepted and published messages by heartbeat window, newest first, for IWANT answers and
/// IHAVE gossip.
struct MessageCache {
    windows: VecDeque<Vec<MsgId>>,
    entries: HashMap<MsgId, Cached>,
    cap: usize,
    bytes: usize,
    max_bytes: usize,
}

impl MessageCache {
    fn new(history: usize, cap: usize, max_bytes: usize) -> Self {
        let mut windows = VecDeque::with_capacity(history);
        windows.resize_with(history, Vec::new);
        MessageCache { windows, entries: HashMap::new(), cap, bytes: 0, max_bytes }
    }

    /// Caches a message unless the cache is full (it is then only missing from gossip).
    fn put(&mut self, msg: &Arc<Msg>) {
        let full = self.entries.len() >= self.cap || self.bytes + msg.data.len() > self.max_bytes;
        if full || self.entries.contains_key(&msg.id) {
            return;
        }
        self.bytes += msg.data.len();
        self.entries.insert(msg.id, Cached { msg: msg.clone(), fetches: Vec::new() });
        if let Some(w) = self.windows.front_mut() {
            w.push(msg.id);
        }
    }

    /// The message for an IWANT of `peer`, unless it already fetched it `limit` times.
    fn get_for_peer(&mut self, id: &MsgId, peer: u64, limit: u8) -> Option<Arc<Msg>> {
        let c = self.entries.get_mut(id)?;
        let n = match c.fetches.iter_mut().position(|(p, _)| *p == peer) {
            Some(i) => i,
            None => {
                c.fetches.push((peer, 0));
                c.fetches.len() - 1
            }
        };
        let count = &mut c.fetches.get_mut(n)?.1;
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(c.msg.clone())
    }

    fn gossip_ids(&self, topic: usize, windows: usize) -> Vec<MsgId> {
        self.windows
            .iter()
            .take(windows)
            .flatten()
            .filter(|id| self.entries.get(*id).is_some_and(|c| c.msg.topic == topic))
            .copied()
            .collect()
    }

    fn shift(&mut self) {
        if let Some(old) = self.windows.pop_back() {
            for id in old {
                if let Some(c) = self.entries.remove(&id) {
                    self.bytes -= c.msg.data.len();
                }
            }
        }
        self.windows.push_front(Vec::new());
    }
}

/// Minimal protobuf (proto2 wire format) for the gossipsub RPC: a schema check over the whole
/// RPC, then zero-copy field iteration. Temporary, until the transport's `protobuf.rs` is
/// shared.
mod pb {
    use super::RouterError;
    use crate::protocol::varint::{self, VarintError};

    pub const VARINT: u8 = 0;
    pub const LEN: u8 = 2;

    #[derive(Clone, Copy)]
    pub enum Value<'a> {
        Varint(u64),
        Bytes(&'a [u8]),
        /// A fixed-width value, with its wire type (1 or 5).
        Fixed(u8),
    }

    pub enum Kind {
        Varint,
        Bytes,
        Msg(&'static Schema),
    }

    /// Known fields with their kinds (unknown fields are skipped) and the required ones.
    pub struct Schema {
        pub fields: &'static [(u64, Kind)],
        pub required: &'static [u64],
    }

    const fn schema(fields: &'static [(u64, Kind)]) -> Schema {
        Schema { fields, required: &[] }
    }

    const SUB_OPTS: Schema =
        schema(&[(1, Kind::Varint), (2, Kind::Bytes), (3, Kind::Varint), (4, Kind::Varint)]);
    const MESSAGE: Schema = Schema {
        fields: &[
            (1, Kind::Bytes),
            (2, Kind::Bytes),
            (3, Kind::Bytes),
            (4, Kind::Bytes),
            (5, Kind::Bytes),
            (6, Kind::Bytes),
        ],
        required: &[4],
    };
    const IHAVE: Schema = schema(&[(1, Kind::Bytes), (2, Kind::Bytes)]);
    const IDS: Schema = schema(&[(1, Kind::Bytes)]);
    const PEER_INFO: Schema = schema(&[(1, Kind::Bytes), (2, Kind::Bytes)]);
    const PRUNE: Schema = schema(&[(1, Kind::Bytes), (2, Kind::Msg(&PEER_INFO)), (3, Kind::Varint)]);
    const EXTENSIONS: Schema = schema(&[(10, Kind::Varint)]);
    const CONTROL: Schema = schema(&[
        (1, Kind::Msg(&IHAVE)),
        (2, Kind::Msg(&IDS)),
        (3, Kind::Msg(&IDS)),
        (4, Kind::Msg(&PRUNE)),
        (5, Kind::Msg(&IDS)),
        (6, Kind::Msg(&EXTENSIONS)),
    ]);
    pub const RPC: Schema =
        schema(&[(1, Kind::Msg(&SUB_OPTS)), (2, Kind::Msg(&MESSAGE)), (3, Kind::Msg(&CONTROL))]);

    /// Reads a varint of at most 10 bytes; `Truncated` if `buf` ends inside it.
    pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, RouterError> {
        varint::read_at(buf, pos).map_err(|e| match e {
            VarintError::Truncated => RouterError::Truncated,
            VarintError::Overflow => RouterError::BadVarint,
        })
    }

    /// The fields of a message in wire order; stops after the first error.
    pub struct Fields<'a> {
        buf: &'a [u8],
        pos: usize,
    }

    pub fn fields(buf: &[u8]) -> Fields<'_> {
        Fields { buf, pos: 0 }
    }

    impl<'a> Fields<'a> {
        fn read(&mut self) -> Result<(u64, Value<'a>), RouterError> {
            let key = read_varint(self.buf, &mut self.pos)?;
            let field = key >> 3;
            if field == 0 {
                return Err(RouterError::FieldZero);
            }
            let value = match (key & 7) as u8 {
                VARINT => Value::Varint(read_varint(self.buf, &mut self.pos)?),
                LEN => {
                    let len = read_varint(self.buf, &mut self.pos)?;
                    let end = usize::try_from(len)
                        .ok()
                        .and_then(|l| self.pos.checked_add(l))
                        .filter(|e| *e <= self.buf.len())
                        .ok_or(RouterError::Truncated)?;
                    let b = &self.buf[self.pos..end];
                    self.pos = end;
                    Value::Bytes(b)
                }
                w @ (1 | 5) => {
                    let n = if w == 1 { 8 } else { 4 };
                    self.pos = self
                        .pos
                        .checked_add(n)
                        .filter(|e| *e <= self.buf.len())
                        .ok_or(RouterError::Truncated)?;
                    Value::Fixed(w)
                }
                wire => return Err(RouterError::WrongWireType { field, wire }),
            };
            Ok((field, value))
        }
    }

    impl<'a> Iterator for Fields<'a> {
        type Item = Result<(u64, Value<'a>), RouterError>;

        fn next(&mut self) -> Option<Self::Item> {
            if self.pos >= self.buf.len() {
                return None;
            }
            let r = self.read();
            if r.is_err() {
                self.pos = self.buf.len();
            }
            Some(r)
        }
    }

    /// Checks that `buf` parses as `schema`, recursively (the schemas nest three deep).
    pub fn check(buf: &[u8], schema: &Schema) -> Result<(), RouterError> {
        let mut found = 0u32;
        for f in fields(buf) {
            let (n, v) = f?;
            let Some((_, kind)) = schema.fields.iter().find(|(k, _)| *k == n) else { continue };
            match (kind, v) {
                (Kind::Varint, Value::Varint(_)) | (Kind::Bytes, Value::Bytes(_)) => {}
                (Kind::Msg(inner), Value::Bytes(b)) => check(b, inner)?,
                (_, Value::Varint(_)) => return Err(RouterError::WrongWireType { field: n, wire: VARINT }),
                (_, Value::Bytes(_)) => return Err(RouterError::WrongWireType { field: n, wire: LEN }),
                (_, Value::Fixed(wire)) => return Err(RouterError::WrongWireType { field: n, wire }),
            }
            if let Some(i) = schema.required.iter().position(|r| *r == n) {
                found |= 1 << i;
            }
        }
        match schema.required.iter().enumerate().find(|(i, _)| found & (1 << i) == 0) {
            Some((_, field)) => Err(RouterError::MissingField { field: *field }),
            None => Ok(()),
        }
    }

    /// Every length-delimited occurrence of `field` (a checked message never fails here).
    pub fn bytes(buf: &[u8], field: u64) -> impl Iterator<Item = &[u8]> {
        fields(buf).filter_map(move |f| match f {
            Ok((n, Value::Bytes(b))) if n == field => Some(b),
            _ => None,
        })
    }

    /// The last occurrence of a singular bytes field (proto semantics: the last one wins).
    pub fn last_bytes(buf: &[u8], field: u64) -> Option<&[u8]> {
        bytes(buf, field).last()
    }

    pub fn last_varint(buf: &[u8], field: u64) -> Option<u64> {
        fields(buf)
            .filter_map(|f| match f {
                Ok((n, Value::Varint(v))) if n == field => Some(v),
                _ => None,
            })
            .last()
    }

    pub fn has(buf: &[u8], field: u64) -> bool {
        fields(buf).any(|f| matches!(f, Ok((n, _)) if n == field))
    }

    pub use crate::protocol::varint::len as varint_len;

    /// Encoded size of a length-delimited field with a one-byte key.
    pub fn field_len(len: usize) -> usize {
        1 + varint_len(len as u64) + len
    }

    pub use crate::protocol::varint::put as put_varint;

    pub fn put_key(out: &mut Vec<u8>, field: u64, wire: u8) {
        put_varint(out, field << 3 | u64::from(wire));
    }

    pub fn put_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
        put_key(out, field, LEN);
        put_varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }

    pub fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
        put_key(out, field, VARINT);
        put_varint(out, v);
    }

    pub fn put_message(out: &mut Vec<u8>, field: u64, body: impl FnOnce(&mut Vec<u8>)) {
        let mut m = Vec::new();
        body(&mut m);
        put_bytes(out, field, &m);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::time::test_now;

    const TOPIC: &str = "/optimism/10/2/blocks";
    const OTHER: &str = "/optimism/10/3/blocks";

    fn cfg() -> Config {
        Config::op_node(vec![TOPIC.into(), OTHER.into()], 2)
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    fn router(cfg: Config, t0: Instant) -> Router<u32> {
        Router::new(cfg, 7, t0).unwrap()
    }

    // Hand-built RPCs from a simulated peer.
    fn frame(body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut rpc = Vec::new();
        body(&mut rpc);
        let mut f = Vec::new();
        pb::put_varint(&mut f, rpc.len() as u64);
        f.extend_from_slice(&rpc);
        f
    }

    fn sub(rpc: &mut Vec<u8>, topic: &str, subscribe: bool) {
        pb::put_message(rpc, 1, |m| {
            pb::put_varint_field(m, 1, u64::from(subscribe));
            pb::put_bytes(m, 2, topic.as_bytes());
        });
    }

    fn msg(rpc: &mut Vec<u8>, topic: &str, data: &[u8]) {
        pb::put_message(rpc, 2, |m| {
            pb::put_bytes(m, 2, data);
            pb::put_bytes(m, 4, topic.as_bytes());
        });
    }

    fn ctl(rpc: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
        pb::put_message(rpc, 3, body);
    }

    fn graft(c: &mut Vec<u8>, topic: &str) {
        pb::put_message(c, 3, |m| pb::put_bytes(m, 1, topic.as_bytes()));
    }

    fn prune(c: &mut Vec<u8>, topic: &str, backoff: u64) {
        pb::put_message(c, 4, |m| {
            pb::put_bytes(m, 1, topic.as_bytes());
            pb::put_varint_field(m, 3, backoff);
        });
    }

    fn ihave(c: &mut Vec<u8>, topic: &str, ids: &[MsgId]) {
        pb::put_message(c, 1, |m| {
            pb::put_bytes(m, 1, topic.as_bytes());
            ids.iter().for_each(|id| pb::put_bytes(m, 2, id));
        });
    }

    fn iwant(c: &mut Vec<u8>, ids: &[MsgId]) {
        pb::put_message(c, 2, |m| ids.iter().for_each(|id| pb::put_bytes(m, 1, id)));
    }

    /// What a router sent, decoded.
    #[derive(Debug, Default)]
    struct Sent {
        subs: Vec<(bool, String)>,
        msgs: Vec<Vec<u8>>,
        ihave: Vec<MsgId>,
        iwant: Vec<MsgId>,
        graft: Vec<String>,
        prune: Vec<(String, Option<u64>)>,
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    fn ids(buf: &[u8], field: u64) -> impl Iterator<Item = MsgId> + '_ {
        pb::bytes(buf, field).map(|b| MsgId::try_from(b).unwrap())
    }

    fn decode_into(s: &mut Sent, frame: &[u8]) {
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
    fn sent_all(r: &mut Router<u32>) -> BTreeMap<u32, Sent> {
        let mut all: BTreeMap<u32, Sent> = BTreeMap::new();
        for (to, f) in r.take_outbound() {
            decode_into(all.entry(to).or_default(), &f);
        }
        all
    }

    /// Everything `r` queued for `peer`, decoded (other peers' frames are discarded).
    fn sent(r: &mut Router<u32>, peer: u32) -> Sent {
        sent_all(r).remove(&peer).unwrap_or_default()
    }

    /// Routers wired together in memory through `take_outbound` / `on_data`.
    struct Net {
        nodes: BTreeMap<u32, Router<u32>>,
        now: Instant,
        /// The verdict given to every received message (None: the test reports).
        verdict: Option<Acceptance>,
        delivered: BTreeMap<u32, Vec<Received<u32>>>,
    }

    impl Net {
        fn new(n: u32, cfg: Config) -> Net {
            let now = test_now().mono;
            let nodes = (0..n).map(|i| (i, Router::new(cfg.clone(), u64::from(i), now).unwrap())).collect();
            Net { nodes, now, verdict: Some(Acceptance::Accept), delivered: BTreeMap::new() }
        }

        fn node(&mut self, i: u32) -> &mut Router<u32> {
            self.nodes.get_mut(&i).unwrap()
        }

        /// `a` dials `b`.
        fn connect(&mut self, a: u32, b: u32) {
            let now = self.now;
            self.node(a).add_peer(b, true, ip(b), Protocol::V11, now).unwrap();
            self.node(b).add_peer(a, false, ip(a), Protocol::V11, now).unwrap();
        }

        fn subscribe_all(&mut self, topic: &str) {
            for r in self.nodes.values_mut() {
                r.subscribe(topic, self.now).unwrap();
            }
            self.pump();
        }

        fn pump(&mut self) {
            let now = self.now;
            for _ in 0..1000 {
                let mut moved = false;
                let ids: Vec<u32> = self.nodes.keys().copied().collect();
                for from in &ids {
                    for (to, f) in self.node(*from).take_outbound() {
                        moved = true;
                        if let Some(r) = self.nodes.get_mut(&to) {
                            r.on_data(from, &f, now).unwrap();
                        }
                    }
                }
                for (id, r) in self.nodes.iter_mut() {
                    for m in r.take_received() {
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

        fn advance(&mut self, d: Duration) {
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

        fn mesh(&self, i: u32) -> BTreeSet<u32> {
            self.nodes[&i].mesh_peers(TOPIC).into_iter().collect()
        }
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
    fn meshes_form_within_bounds_and_agree() {
        let mut net = Net::new(20, cfg());
        for a in 0..20 {
            for b in a + 1..20 {
                net.connect(a, b);
            }
        }
        net.subscribe_all(TOPIC);
        net.advance(Duration::from_secs(5));
        for i in 0..20 {
            let mesh = net.mesh(i);
            assert!((6..=12).contains(&mesh.len()), "node {i}: {}", mesh.len());
            for p in mesh {
                assert!(net.mesh(p).contains(&i), "{i} has {p} in its mesh but not vice versa");
            }
            assert_eq!(net.nodes[&i].topic_peers(TOPIC).len(), 19);
        }
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
    fn gossip_recovers_a_message_outside_the_mesh() {
        // Node 0 keeps a mesh of one; both peers dialled it, so the second one's GRAFT is
        // refused and it only hears of the message through IHAVE.
        let small = Config { d: 1, d_lo: 1, d_hi: 1, d_lazy: 1, d_score: 1, d_out: 0, ..cfg() };
        let mut net = Net::new(3, small);
        net.connect(1, 0);
        net.connect(2, 0);
        net.subscribe_all(TOPIC);
        net.advance(Duration::from_secs(2));
        let mesh = net.mesh(0);
        assert_eq!(mesh.len(), 1);
        let outside = if mesh.contains(&1) { 2 } else { 1 };
        let now = net.now;
        let id = net.node(0).publish(TOPIC, b"block".to_vec(), now).unwrap();
        net.pump();
        assert!(!net.delivered.get(&outside).is_some_and(|d| d.iter().any(|m| m.id == id)));
        net.advance(Duration::from_millis(500));
        assert_eq!(net.delivered[&outside].iter().filter(|m| m.id == id).count(), 1);
        assert_eq!(net.nodes[&0].stats().iwant_served, 1);
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
        r.on_data(&1, &f, t0).unwrap();
        r.on_data(&1, &f, t0).unwrap();
        r.on_data(&2, &f, t0).unwrap();
        let got = r.take_received();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].from, &*got[0].data, got[0].topic.as_str()), (1, &b"hello"[..], TOPIC));
        assert_eq!(got[0].id, message_id(TOPIC, b"hello"));
        assert_eq!(r.stats().duplicates, 2);
        // Not forwarded back to either sender.
        r.take_outbound();
        assert!(r.report_validation(&got[0].id, Acceptance::Accept, t0));
        assert!(!r.report_validation(&got[0].id, Acceptance::Accept, t0));
        assert!(sent(&mut r, 1).msgs.is_empty());
        // Messages on topics we did not join are dropped.
        r.on_data(&1, &frame(|rpc| msg(rpc, OTHER, b"x")), t0).unwrap();
        r.on_data(&1, &frame(|rpc| msg(rpc, "/other", b"x")), t0).unwrap();
        assert!(r.take_received().is_empty());
        assert_eq!(r.stats().unknown_topic, 2);
    }

    #[test]
    fn seen_ids_expire_after_the_ttl() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        let f = frame(|rpc| msg(rpc, TOPIC, b"again"));
        r.on_data(&1, &f, t0).unwrap();
        let id = r.take_received()[0].id;
        r.report_validation(&id, Acceptance::Ignore, t0);
        let t = t0 + Duration::from_secs(64);
        r.handle_timeout(t);
        r.on_data(&1, &f, t).unwrap();
        assert!(r.take_received().is_empty());
        let t = t0 + Duration::from_secs(66);
        r.handle_timeout(t);
        r.on_data(&1, &f, t).unwrap();
        assert_eq!(r.take_received().len(), 1);
    }

    #[test]
    fn messages_awaiting_validation_are_bounded() {
        let t0 = test_now().mono;
        let mut r = router(Config { max_pending_validation: 3, max_pending_bytes: 2500, ..cfg() }, t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        for n in 0..4u8 {
            r.on_data(&1, &frame(|rpc| msg(rpc, TOPIC, &[n; 1000])), t0).unwrap();
        }
        assert_eq!((r.take_received().len(), r.stats().throttled), (2, 2));
        let many = frame(|rpc| (0..200u8).for_each(|n| msg(rpc, TOPIC, &[n; 10])));
        let mut r = router(cfg(), t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        r.on_data(&1, &many, t0).unwrap();
        assert_eq!((r.take_received().len(), r.stats().throttled), (128, 72));
    }

    #[test]
    fn unanswered_validations_time_out() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        r.on_data(&1, &frame(|rpc| msg(rpc, TOPIC, b"slow")), t0).unwrap();
        let id = r.take_received()[0].id;
        r.handle_timeout(t0 + Duration::from_secs(4));
        assert!(!r.report_validation(&id, Acceptance::Accept, t0 + Duration::from_secs(4)));
        assert_eq!(r.stats().validation_timeouts, 1);
    }

    /// A router subscribed to TOPIC with peer 1 (inbound, subscribed) in its mesh.
    fn meshed(cfg: Config, protocol: Protocol) -> (Router<u32>, Instant) {
        let t0 = test_now().mono;
        let mut r = router(cfg, t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), protocol, t0).unwrap();
        assert_eq!(sent(&mut r, 1).subs, [(true, TOPIC.to_string())]);
        r.on_data(&1, &frame(|rpc| sub(rpc, TOPIC, true)), t0).unwrap();
        let t = t0 + Duration::from_millis(500);
        r.handle_timeout(t);
        assert_eq!(sent(&mut r, 1).graft, [TOPIC]);
        assert_eq!(r.mesh_peers(TOPIC), [1]);
        (r, t)
    }

    #[test]
    fn prune_backoff_is_kept_and_early_grafts_are_penalised() {
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        r.on_data(&1, &frame(|rpc| ctl(rpc, |c| prune(c, TOPIC, 60))), t).unwrap();
        assert!(r.mesh_peers(TOPIC).is_empty());
        // No regraft during the backoff.
        for s in 1..=10 {
            r.handle_timeout(t + Duration::from_secs(s));
            assert!(sent(&mut r, 1).graft.is_empty());
        }
        // A GRAFT during the backoff is answered with PRUNE and penalised; repeated GRAFTs
        // within the flood threshold cost double and end in a ban.
        let g = frame(|rpc| ctl(rpc, |c| graft(c, TOPIC)));
        let at = t + Duration::from_secs(5);
        for n in 1..=4 {
            r.on_data(&1, &g, at).unwrap();
            assert_eq!(sent(&mut r, 1).prune, [(TOPIC.to_string(), Some(60))], "graft {n}");
            assert!(r.mesh_peers(TOPIC).is_empty());
        }
        assert_eq!(r.score(&1), Some(-16.0 * 2.0 * 2.0));
        // Graylisted below -40: further RPCs are ignored.
        r.on_data(&1, &g, at).unwrap();
        assert!(sent(&mut r, 1).prune.is_empty());
        assert_eq!(r.stats().graylisted_rpcs, 1);
        // Five GRAFTs in one RPC reach the ban threshold.
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        r.on_data(&1, &frame(|rpc| ctl(rpc, |c| prune(c, TOPIC, 60))), t).unwrap();
        let flood = frame(|rpc| ctl(rpc, |c| (0..5).for_each(|_| graft(c, TOPIC))));
        r.on_data(&1, &flood, t).unwrap();
        assert!(r.is_banned(&1, t));
        assert_eq!(r.take_disconnects(), [(1, Disconnect::Banned)]);
    }

    #[test]
    fn the_mesh_is_regrafted_after_the_backoff() {
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        r.on_data(&1, &frame(|rpc| ctl(rpc, |c| prune(c, TOPIC, 30))), t).unwrap();
        r.handle_timeout(t + Duration::from_secs(30));
        assert!(sent(&mut r, 1).graft.is_empty(), "a heartbeat of slack");
        r.handle_timeout(t + Duration::from_millis(30_600));
        assert_eq!(sent(&mut r, 1).graft, [TOPIC]);
        // A GRAFT after the backoff is accepted.
        r.on_data(&1, &frame(|rpc| ctl(rpc, |c| graft(c, TOPIC))), t + Duration::from_secs(31)).unwrap();
        assert_eq!(r.mesh_peers(TOPIC), [1]);
        assert_eq!(r.score(&1), Some(0.0));
    }

    #[test]
    fn unsubscribing_prunes_with_the_unsubscribe_backoff() {
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        r.unsubscribe(TOPIC, t).unwrap();
        let s = sent(&mut r, 1);
        assert_eq!(s.subs, [(false, TOPIC.to_string())]);
        assert_eq!(s.prune, [(TOPIC.to_string(), Some(10))]);
        // Resubscribing within the backoff grafts nobody; the heartbeat after it does.
        r.subscribe(TOPIC, t + Duration::from_secs(1)).unwrap();
        assert!(sent(&mut r, 1).graft.is_empty());
        r.handle_timeout(t + Duration::from_secs(11));
        assert_eq!(sent(&mut r, 1).graft, [TOPIC]);
        // Version 1.0 peers get no backoff field.
        let (mut r, t) = meshed(cfg(), Protocol::V10);
        r.unsubscribe(TOPIC, t).unwrap();
        assert_eq!(sent(&mut r, 1).prune, [(TOPIC.to_string(), None)]);
        // GRAFTs for topics without a mesh are ignored, not answered.
        r.on_data(&1, &frame(|rpc| ctl(rpc, |c| graft(c, TOPIC))), t).unwrap();
        assert!(sent(&mut r, 1).prune.is_empty());
        assert_eq!(r.score(&1), Some(0.0));
    }

    #[test]
    fn oversubscribed_meshes_shrink_to_d_keeping_outbound_peers() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        r.subscribe(TOPIC, t0).unwrap();
        for p in 0..20u32 {
            r.add_peer(p, p >= 17, ip(p), Protocol::V11, t0).unwrap();
            r.on_data(&p, &frame(|rpc| sub(rpc, TOPIC, true)), t0).unwrap();
        }
        // Inbound GRAFTs beyond Dhi are refused; outbound ones are always taken.
        for p in 0..20u32 {
            r.on_data(&p, &frame(|rpc| ctl(rpc, |c| graft(c, TOPIC))), t0).unwrap();
        }
        assert_eq!(r.mesh_peers(TOPIC).len(), 15);
        r.handle_timeout(t0 + Duration::from_millis(500));
        let mesh = r.mesh_peers(TOPIC);
        assert_eq!(mesh.len(), 8);
        assert!(mesh.iter().filter(|p| **p >= 17).count() >= 2);
        let pruned: usize = sent_all(&mut r).values().map(|s| s.prune.len()).sum();
        assert_eq!(pruned, 5 + 7);
    }

    #[test]
    fn iwant_is_served_up_to_the_retransmission_limit() {
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        let id = r.publish(TOPIC, b"block".to_vec(), t).unwrap();
        assert_eq!(sent(&mut r, 1).msgs, [b"block".to_vec()]);
        let f = frame(|rpc| ctl(rpc, |c| iwant(c, &[id, [9; 20]])));
        for _ in 0..5 {
            r.on_data(&1, &f, t).unwrap();
        }
        assert_eq!(sent(&mut r, 1).msgs.len(), 3);
        // Gone once the cache shifted past its 12 windows.
        r.add_peer(2, false, ip(2), Protocol::V11, t).unwrap();
        let mut now = t;
        for _ in 0..11 {
            now += Duration::from_millis(500);
            r.handle_timeout(now);
        }
        r.on_data(&2, &frame(|rpc| ctl(rpc, |c| iwant(c, &[id]))), now).unwrap();
        assert_eq!(sent(&mut r, 2).msgs.len(), 1);
        r.handle_timeout(now + Duration::from_millis(500));
        r.on_data(&2, &frame(|rpc| ctl(rpc, |c| iwant(c, &[id]))), now).unwrap();
        assert!(sent(&mut r, 2).msgs.is_empty());
    }

    #[test]
    fn ihave_is_answered_and_broken_promises_are_penalised() {
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        // Each IHAVE answered with an IWANT tracks one promise.
        for n in 0..8u8 {
            let ids: Vec<MsgId> = (0..3).map(|i| [n * 3 + i; 20]).collect();
            r.on_data(&1, &frame(|rpc| ctl(rpc, |c| ihave(c, TOPIC, &ids))), t).unwrap();
            assert_eq!(sent(&mut r, 1).iwant, ids, "ihave {n}");
        }
        r.handle_timeout(t + Duration::from_millis(2500));
        assert_eq!(r.stats().broken_promises, 0);
        r.handle_timeout(t + Duration::from_millis(3500));
        assert_eq!(r.stats().broken_promises, 8);
        // Eight broken promises: two past the threshold of 6.
        assert_eq!(r.score(&1), Some(-16.0 * 2.0 * 2.0));

        // A delivered message fulfils its promise; a seen one is not asked for.
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        let data = b"delivered".to_vec();
        let id = message_id(TOPIC, &data);
        let have = frame(|rpc| ctl(rpc, |c| ihave(c, TOPIC, &[id])));
        r.on_data(&1, &have, t).unwrap();
        assert_eq!(sent(&mut r, 1).iwant, [id]);
        r.on_data(&1, &frame(|rpc| msg(rpc, TOPIC, &data)), t).unwrap();
        r.handle_timeout(t + Duration::from_secs(4));
        assert_eq!(r.stats().broken_promises, 0);
        r.on_data(&1, &have, t).unwrap();
        assert!(sent(&mut r, 1).iwant.is_empty(), "seen");
    }

    #[test]
    fn ihave_is_bounded_per_heartbeat() {
        let (mut r, t) = meshed(cfg(), Protocol::V11);
        let ids: Vec<MsgId> = (0..6000u32)
            .map(|i| {
                let mut id = [0; 20];
                id[..4].copy_from_slice(&i.to_le_bytes());
                id
            })
            .collect();
        r.on_data(&1, &frame(|rpc| ctl(rpc, |c| ihave(c, TOPIC, &ids))), t).unwrap();
        assert_eq!(sent(&mut r, 1).iwant.len(), 5000);
        r.on_data(&1, &frame(|rpc| ctl(rpc, |c| ihave(c, TOPIC, &ids[..10]))), t).unwrap();
        assert!(sent(&mut r, 1).iwant.is_empty());
        // IHAVE for a topic without a mesh is ignored.
        r.handle_timeout(t + Duration::from_secs(1));
        r.on_data(&1, &frame(|rpc| ctl(rpc, |c| ihave(c, OTHER, &[[1; 20]]))), t).unwrap();
        assert!(sent(&mut r, 1).iwant.is_empty());
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
        r.on_data(&1, &frame(|rpc| ctl(rpc, |c| prune(c, TOPIC, 1))), t).unwrap();
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
    fn peers_sending_invalid_messages_are_banned_for_an_hour() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        r.add_peer(2, false, ip(2), Protocol::V11, t0).unwrap();
        for n in 0..4u8 {
            r.on_data(&1, &frame(|rpc| msg(rpc, TOPIC, &[n; 100])), t0).unwrap();
        }
        let got = r.take_received();
        assert_eq!(got.len(), 4);
        for (n, m) in got.iter().enumerate().take(3) {
            r.report_validation(&m.id, Acceptance::Reject, t0);
            assert_eq!(r.score(&1), Some(-10.0 * ((n + 1) * (n + 1)) as f64));
        }
        // Graylisted: RPCs are ignored.
        r.on_data(&1, &frame(|rpc| msg(rpc, TOPIC, b"more")), t0).unwrap();
        assert!(r.take_received().is_empty());
        assert_eq!(r.stats().graylisted_rpcs, 1);
        // A duplicate of a rejected message costs its sender too.
        r.on_data(&2, &frame(|rpc| msg(rpc, TOPIC, &[0; 100])), t0).unwrap();
        assert_eq!(r.score(&2), Some(-10.0));
        r.report_validation(&got[3].id, Acceptance::Reject, t0);
        assert_eq!(r.take_disconnects(), [(1, Disconnect::Banned)]);
        assert_eq!(r.score(&1), None);
        assert_eq!(r.banned_peers(t0), [(1, t0 + Duration::from_secs(3600))]);
        assert!(matches!(r.add_peer(1, true, ip(1), Protocol::V11, t0), Err(RouterError::Banned { .. })));
        let later = t0 + Duration::from_secs(3601);
        r.handle_timeout(later);
        assert!(r.banned_peers(later).is_empty());
        r.add_peer(1, true, ip(1), Protocol::V11, later).unwrap();
        assert_eq!(r.score(&1), Some(0.0));
    }

    #[test]
    fn penalties_survive_a_reconnect_and_decay() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        r.subscribe(TOPIC, t0).unwrap();
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        r.on_data(&1, &frame(|rpc| msg(rpc, TOPIC, b"bad")), t0).unwrap();
        let id = r.take_received()[0].id;
        r.report_validation(&id, Acceptance::Reject, t0);
        r.remove_peer(&1, t0);
        r.add_peer(1, false, ip(1), Protocol::V11, t0).unwrap();
        assert_eq!(r.score(&1), Some(-10.0));
        // 1% after 60 decay intervals of 2 s, then zero.
        r.handle_timeout(t0 + Duration::from_secs(2 * 61 + 1));
        assert_eq!(r.score(&1), Some(0.0));
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
        r.on_data(&1, &f, t0).unwrap();
        assert!(r.take_received().is_empty());
        assert_eq!(r.stats().unexpected_auth, 4);
        assert_eq!(r.take_disconnects(), [(1, Disconnect::Banned)]);
    }

    #[test]
    fn colocated_peers_lose_score() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        let shared = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        for p in 0..11 {
            r.add_peer(p, false, shared, Protocol::V11, t0).unwrap();
        }
        assert_eq!(r.score(&0), Some(-35.0));
        // IPv6 peers in one /64 share a slot; another /64 does not.
        r.add_peer(20, false, "2001:db8::1".parse().unwrap(), Protocol::V11, t0).unwrap();
        r.add_peer(21, false, "2001:db8::2".parse().unwrap(), Protocol::V11, t0).unwrap();
        r.add_peer(22, false, "2001:db9::1".parse().unwrap(), Protocol::V11, t0).unwrap();
        assert_eq!(
            colocation_key("2001:db8::1".parse().unwrap()),
            colocation_key("2001:db8::ff".parse().unwrap())
        );
        r.remove_peer(&10, t0);
        assert_eq!(r.score(&0), Some(0.0));
    }

    #[test]
    fn fanout_publishes_to_d_peers_and_expires() {
        let t0 = test_now().mono;
        let mut r = router(cfg(), t0);
        for p in 0..12 {
            r.add_peer(p, true, ip(p), Protocol::V11, t0).unwrap();
            r.on_data(&p, &frame(|rpc| sub(rpc, OTHER, true)), t0).unwrap();
        }
        r.take_outbound();
        r.publish(OTHER, b"from the sequencer".to_vec(), t0).unwrap();
        let first: BTreeSet<u32> =
            sent_all(&mut r).into_iter().filter(|(_, s)| s.msgs.len() == 1).map(|(p, _)| p).collect();
        assert_eq!(first.len(), 8);
        r.publish(OTHER, b"second".to_vec(), t0).unwrap();
        let second: BTreeSet<u32> = sent_all(&mut r).into_keys().collect();
        assert_eq!(second, first, "the fanout set is kept");
        assert_eq!(r.fanout.len(), 1);
        r.handle_timeout(t0 + Duration::from_secs(25));
        assert!(r.fanout.is_empty());
        // Subscribing moves fanout peers into the mesh.
        r.publish(OTHER, b"third".to_vec(), t0 + Duration::from_secs(25)).unwrap();
        r.subscribe(OTHER, t0 + Duration::from_secs(25)).unwrap();
        assert_eq!(r.mesh_peers(OTHER).len(), 8);
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

    fn stream() -> Vec<u8> {
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
    fn frames_split_anywhere_give_the_same_result() {
        let s = stream();
        let run = |cut: usize, cut2: usize| {
            let t0 = test_now().mono;
            let mut r = router(cfg(), t0);
            r.subscribe(TOPIC, t0).unwrap();
            r.add_peer(1, true, ip(1), Protocol::V11, t0).unwrap();
            r.on_data(&1, &s[..cut], t0).unwrap();
            r.on_data(&1, &s[cut..cut2], t0).unwrap();
            r.on_data(&1, &s[cut2..], t0).unwrap();
            assert_eq!(r.buffered, 0);
            let got: Vec<Vec<u8>> = r.take_received().iter().map(|m| m.data.to_vec()).collect();
            (got, sent(&mut r, 1).iwant, r.mesh_peers(TOPIC), r.stats().rpcs)
        };
        let whole = run(s.len(), s.len());
        assert_eq!(whole.0, [b"one".to_vec(), vec![7; 300]]);
        assert_eq!((whole.1.len(), whole.2.as_slice(), whole.3), (2, &[1][..], 3));
        for cut in 0..=s.len() {
            assert_eq!(run(cut, cut), whole, "cut at {cut}");
            assert_eq!(run(cut / 2, cut), whole, "cuts at {} and {cut}", cut / 2);
        }
    }

    #[test]
    fn malformed_frames_drop_the_peer() {
        let t0 = test_now().mono;
        let cases: Vec<(Vec<u8>, RouterError)> = vec![
            (vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80], RouterError::BadVarint),
            (vec![0x81, 0x80, 0x80, 0x05], RouterError::FrameTooLarge { len: (5 << 21) + 1, max: 10 << 20 }),
            (vec![2, 0x08, 0x01], RouterError::WrongWireType { field: 1, wire: 0 }),
            (vec![2, 0x0a, 0x05], RouterError::Truncated),
            (vec![2, 0x0b, 0x00], RouterError::WrongWireType { field: 1, wire: 3 }),
            (vec![2, 0x02, 0x00], RouterError::FieldZero),
            (
                frame(|rpc| pb::put_message(rpc, 2, |m| pb::put_bytes(m, 2, b"no topic"))),
                RouterError::MissingField { field: 4 },
            ),
            (
                frame(|rpc| ctl(rpc, |c| pb::put_varint_field(c, 4, 1))),
                RouterError::WrongWireType { field: 4, wire: 0 },
            ),
        ];
        for (bytes, want) in cases {
            let mut r = router(cfg(), t0);
            r.add_peer(1, true, ip(1), Protocol::V11, t0).unwrap();
            assert_eq!(r.on_data(&1, &bytes, t0), Err(want.clone()));
            assert_eq!(r.take_disconnects(), [(1, Disconnect::Malformed(want))]);
            assert_eq!((r.score(&1), r.on_data(&1, &[0], t0)), (None, Err(RouterError::UnknownPeer)));
            // Reconnecting carries the penalty.
            r.add_peer(1, true, ip(1), Protocol::V11, t0).unwrap();
            assert_eq!(r.score(&1), Some(-10.0));
        }
        // Unknown fields and fixed-width values are skipped, as protobuf requires.
        let mut r = router(cfg(), t0);
        r.add_peer(1, true, ip(1), Protocol::V11, t0).unwrap();
        let f = frame(|rpc| {
            pb::put_bytes(rpc, 10, b"partial");
            pb::put_key(rpc, 11, 1);
            rpc.extend_from_slice(&[0; 8]);
            pb::put_key(rpc, 12, 5);
            rpc.extend_from_slice(&[0; 4]);
        });
        assert_eq!(r.on_data(&1, &f, t0), Ok(()));
    }

    #[test]
    fn random_and_mutated_input_never_panics_and_stays_bounded() {
        let t0 = test_now().mono;
        let mut rng = Rng::new(0x9055);
        let base = stream();
        let mut small = cfg();
        small.max_buffered = 1 << 16;
        let mut r = router(small, t0);
        r.subscribe(TOPIC, t0).unwrap();
        let mut errors = 0;
        for i in 0..4000u32 {
            let peer = i % 8;
            if r.score(&peer).is_none() {
                let _ = r.add_peer(peer, i % 2 == 0, ip(peer), Protocol::V11, t0);
            }
            let mut buf = if i % 3 == 0 {
                let mut b = vec![0u8; rng.below(400) as usize];
                rng.fill(&mut b);
                b
            } else {
                base.clone()
            };
            for _ in 0..=rng.below(4) {
                if !buf.is_empty() {
                    let at = rng.below(buf.len() as u64) as usize;
                    buf[at] = rng.next_u64() as u8;
                }
            }
            buf.truncate(rng.below(buf.len() as u64 + 1) as usize);
            if r.on_data(&peer, &buf, t0).is_err() {
                errors += 1;
                assert!(r.score(&peer).is_none(), "a failing peer is dropped");
            }
            for m in r.take_received() {
                r.report_validation(&m.id, Acceptance::Ignore, t0);
            }
            r.take_outbound();
            r.take_disconnects();
            assert!(r.buffered <= 1 << 16);
            assert!(r.pending.len() <= 256 && r.seen.map.len() <= 4096);
        }
        assert!(errors > 100);
        // A frame header announcing 10 MiB is buffered up to the global limit, then refused.
        let mut r = router(Config { max_buffered: 1 << 20, ..cfg() }, t0);
        r.add_peer(1, true, ip(1), Protocol::V11, t0).unwrap();
        let mut hdr = Vec::new();
        pb::put_varint(&mut hdr, 10 << 20);
        r.on_data(&1, &hdr, t0).unwrap();
        let chunk = vec![0u8; 64 << 10];
        let mut result = Ok(());
        for _ in 0..20 {
            result = r.on_data(&1, &chunk, t0);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(RouterError::BufferLimit { max: 1 << 20 }));
        assert_eq!(r.buffered, 0);
    }

    #[test]
    fn protobuf_helpers() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut b = Vec::new();
            pb::put_varint(&mut b, v);
            assert_eq!(b.len(), pb::varint_len(v));
            let mut pos = 0;
            assert_eq!((pb::read_varint(&b, &mut pos), pos), (Ok(v), b.len()));
            for cut in 0..b.len() {
                assert_eq!(pb::read_varint(&b[..cut], &mut 0), Err(RouterError::Truncated));
            }
        }
        // 11 bytes, or a 10th byte carrying more than bit 63.
        assert_eq!(pb::read_varint(&[0xff; 11], &mut 0), Err(RouterError::BadVarint));
        let mut over = [0xff; 10];
        over[9] = 0x02;
        assert_eq!(pb::read_varint(&over, &mut 0), Err(RouterError::BadVarint));
        assert_eq!(message_frame_len(TOPIC.len(), 1000), {
            let mut f = Vec::new();
            encode_message_frame(TOPIC, &[0; 1000], &mut f);
            f.len()
        });
    }
}
