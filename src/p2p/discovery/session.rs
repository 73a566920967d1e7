//! discv5 sessions, sans-IO: which keys talk to which node at which UDP address, the
//! handshake in both directions, and our requests until they are answered or time out.
//!
//! Call order: `handle_packet(from, bytes, now, known)` for every datagram, `request(..)` to
//! ask a node something, `handle_timeout(now)` when `poll_timeout()` is due; then drain
//! `poll_transmit()` (datagrams to send) and `poll_event()` (what happened). `known` looks up
//! the records of nodes we know (the routing table), needed to check a handshake's proof.
//!
//! Bounds, because every packet may come from a stranger: sessions, challenges (WHOAREYOU we
//! sent) and our pending requests are capped and the oldest give way; a challenge is used once
//! (a replayed handshake finds none); a WHOAREYOU that answers no request of ours is dropped;
//! NODES answers are capped in count and records.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k256::ecdsa::SigningKey;

use super::enr::Enr;
use super::wire::{self, Kind, Message, Nonce};
use crate::protocol::primitives::B256;

/// How long a request waits for its answer (the spec suggests 500 ms; a handshake adds a
/// round trip).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Times a request is sent again after a timeout.
pub const RETRIES: u8 = 1;
/// Sessions kept (least recently used go first).
pub const MAX_SESSIONS: usize = 512;
/// WHOAREYOU challenges awaiting a handshake.
pub const MAX_CHALLENGES: usize = 256;
/// How long a challenge stays valid.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(2);
/// Our requests in flight.
pub const MAX_PENDING: usize = 256;
/// NODES messages accepted for one FINDNODE, and records in all of them.
pub const MAX_NODES_MESSAGES: u64 = 8;
pub const MAX_NODES_RECORDS: usize = 32;

/// Where a node is and how to check its handshake: its id, UDP address and public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: B256,
    pub addr: SocketAddr,
    pub pubkey: [u8; 33],
}

impl Contact {
    /// From a record with a valid signature and a UDP endpoint.
    pub fn from_enr(e: &Enr) -> Option<Contact> {
        if !e.signature_valid {
            return None;
        }
        let addr = match (e.ip(), e.udp()) {
            (Some(ip), Some(port)) => SocketAddr::from((ip, port)),
            _ => SocketAddr::from((e.ip6()?, e.udp6()?)),
        };
        Some(Contact { id: e.node_id, addr, pubkey: e.public_key })
    }
}

/// What the sessions report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// A session is up with `id` at `addr`; `record` when the peer sent its record.
    Established { id: B256, addr: SocketAddr, record: Option<Box<Enr>>, inbound: bool },
    /// A node pinged us (answered already) with its record's sequence number.
    Pinged { id: B256, addr: SocketAddr, enr_seq: u64 },
    /// A node asks for nodes at these distances: answer with `respond_nodes`.
    FindNode { id: B256, addr: SocketAddr, req_id: Vec<u8>, distances: Vec<u16> },
    /// Answer to our PING `req`: the node's record sequence and our address as it sees it.
    Pong { id: B256, req: u64, enr_seq: u64, observed: SocketAddr },
    /// Answer to our FINDNODE `req`: the records (RLP), all NODES messages together.
    Nodes { id: B256, req: u64, records: Vec<Vec<u8>> },
    /// Our request `req` got no (valid) answer.
    Failed { id: B256, req: u64, why: &'static str },
}

#[derive(Debug)]
struct Session {
    write: [u8; 16],
    read: [u8; 16],
    last_used: Instant,
}

#[derive(Debug)]
struct Challenge {
    data: Vec<u8>,
    sent: Instant,
}

#[derive(Debug)]
struct Pending {
    to: Contact,
    msg: Message,
    nonce: Nonce,
    sent: Instant,
    retries: u8,
    /// NODES gathered so far: messages seen, the total announced, records.
    nodes: (u64, u64, Vec<Vec<u8>>),
    /// Held back (not sent) while a handshake with the node is under way: sent over the
    /// session once it exists (a second random packet would get no second WHOAREYOU).
    queued: bool,
}

/// Counters for the metrics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    pub packets_in: u64,
    pub packets_dropped: u64,
    pub whoareyou_sent: u64,
    pub handshakes_in: u64,
    pub handshakes_out: u64,
}

/// The session layer of one node.
pub struct Sessions {
    key: SigningKey,
    id: B256,
    /// Our record (its sequence number goes in PING/PONG, the record into handshakes).
    enr: Enr,
    /// Ephemeral keys, nonces, masking IVs, id-nonces and request ids: the OS's randomness in
    /// the node (predictable ones would let others forge or read our sessions).
    rng: Box<dyn rand_core::RngCore + Send>,
    sessions: HashMap<(B256, SocketAddr), Session>,
    challenges: HashMap<(B256, SocketAddr), Challenge>,
    pending: HashMap<u64, Pending>,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<SessionEvent>,
    pub stats: SessionStats,
}

impl Sessions {
    pub fn new(key: SigningKey, enr: Enr, rng: Box<dyn rand_core::RngCore + Send>) -> Sessions {
        let id = wire::node_id(key.verifying_key());
        Sessions {
            key,
            id,
            enr,
            rng,
            sessions: HashMap::new(),
            challenges: HashMap::new(),
            pending: HashMap::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: SessionStats::default(),
        }
    }

    pub fn node_id(&self) -> B256 {
        self.id
    }

    pub fn enr(&self) -> &Enr {
        &self.enr
    }

    /// A new record of ours (a changed address): later handshakes carry it.
    pub fn set_enr(&mut self, enr: Enr) {
        self.enr = enr;
    }

    /// Our record with `entries` set, re-signed under the next sequence number (PONGs then
    /// announce it, and nodes ask for it).
    pub fn update_enr(&mut self, entries: Vec<(Vec<u8>, Vec<u8>)>) {
        self.enr = self.enr.updated(&self.key, entries);
    }

    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    fn random<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.rng.fill_bytes(&mut b);
        b
    }

    /// Sends `msg` to `to`; returns the request number its answer will carry, or `None` when
    /// too many requests are in flight.
    pub fn request(
        &mut self,
        to: Contact,
        msg: impl FnOnce(Vec<u8>) -> Message,
        now: Instant,
    ) -> Option<u64> {
        if self.pending.len() >= MAX_PENDING {
            return None;
        }
        let req = u64::from_be_bytes(self.random());
        let msg = msg(req.to_be_bytes().to_vec());
        let handshaking = !self.sessions.contains_key(&(to.id, to.addr))
            && self.pending.values().any(|p| p.to.id == to.id && p.to.addr == to.addr && !p.queued);
        let nonce = if handshaking { [0; 12] } else { self.send_message(&to, &msg, now) };
        let pending = Pending {
            to,
            msg,
            nonce,
            sent: now,
            retries: RETRIES,
            nodes: (0, 0, Vec::new()),
            queued: handshaking,
        };
        self.pending.insert(req, pending);
        Some(req)
    }

    /// PING `to` with our record's sequence number.
    pub fn ping(&mut self, to: Contact, now: Instant) -> Option<u64> {
        let seq = self.enr.seq;
        self.request(to, |req_id| Message::Ping { req_id, enr_seq: seq }, now)
    }

    /// FINDNODE `to` at `distances`.
    pub fn find_node(&mut self, to: Contact, distances: Vec<u16>, now: Instant) -> Option<u64> {
        self.request(to, |req_id| Message::FindNode { req_id, distances }, now)
    }

    /// An ordinary packet with `msg` under the session's key, or random bytes to start a
    /// handshake when there is no session. Returns the packet's nonce.
    fn send_message(&mut self, to: &Contact, msg: &Message, now: Instant) -> Nonce {
        let nonce: Nonce = self.random();
        let iv: [u8; 16] = self.random();
        let ad = wire::authenticated_data(&iv, &nonce, &Kind::Message { src_id: self.id });
        let sealed = match self.sessions.get_mut(&(to.id, to.addr)) {
            Some(s) => {
                s.last_used = now;
                wire::seal(&s.write, &nonce, &msg.encode(), &ad)
            }
            // No keys: the peer cannot open this and answers WHOAREYOU.
            None => self.random::<20>().to_vec(),
        };
        self.out.push_back((to.addr, wire::encode(&to.id, &ad, &sealed)));
        nonce
    }

    /// One datagram from `from`.
    pub fn handle_packet(
        &mut self,
        from: SocketAddr,
        bytes: &[u8],
        now: Instant,
        known: &dyn Fn(&B256) -> Option<Enr>,
    ) {
        self.stats.packets_in += 1;
        let p = match wire::decode(&self.id, bytes) {
            Ok(p) => p,
            Err(e) => {
                self.stats.packets_dropped += 1;
                crate::trace!("discv5: dropped packet from {from}: {e}");
                return;
            }
        };
        match p.kind.clone() {
            Kind::Message { src_id } => self.on_message(from, src_id, &p, now, known),
            Kind::WhoAreYou { enr_seq, .. } => self.on_whoareyou(from, &p, enr_seq, now),
            Kind::Handshake { src_id, id_signature, eph_pubkey, record } => {
                self.on_handshake(from, src_id, &id_signature, &eph_pubkey, record, &p, now, known)
            }
        }
    }

    fn on_message(
        &mut self,
        from: SocketAddr,
        src: B256,
        p: &wire::Packet,
        now: Instant,
        known: &dyn Fn(&B256) -> Option<Enr>,
    ) {
        let opened = self
            .sessions
            .get(&(src, from))
            .and_then(|s| wire::open(&s.read, &p.nonce, &p.message, &p.authenticated));
        match opened {
            Some(pt) => {
                if let Some(s) = self.sessions.get_mut(&(src, from)) {
                    s.last_used = now;
                }
                self.on_plaintext(from, src, &pt, now);
            }
            None => self.challenge(from, src, p.nonce, now, known),
        }
    }

    /// WHOAREYOU to a sender whose packet we cannot open.
    fn challenge(
        &mut self,
        from: SocketAddr,
        src: B256,
        nonce: Nonce,
        now: Instant,
        known: &dyn Fn(&B256) -> Option<Enr>,
    ) {
        // One live challenge per node and address: a flood of packets gets one answer.
        if self
            .challenges
            .get(&(src, from))
            .is_some_and(|c| now.saturating_duration_since(c.sent) < CHALLENGE_TTL)
        {
            return;
        }
        if self.challenges.len() >= MAX_CHALLENGES {
            self.challenges.retain(|_, c| now.saturating_duration_since(c.sent) < CHALLENGE_TTL);
            if self.challenges.len() >= MAX_CHALLENGES {
                if let Some(oldest) = self.challenges.iter().min_by_key(|(_, c)| c.sent).map(|(k, _)| *k) {
                    self.challenges.remove(&oldest);
                }
            }
        }
        let id_nonce: [u8; 16] = self.random();
        let iv: [u8; 16] = self.random();
        let enr_seq = known(&src).map_or(0, |e| e.seq);
        let kind = Kind::WhoAreYou { id_nonce, enr_seq };
        let data = wire::authenticated_data(&iv, &nonce, &kind);
        self.out.push_back((from, wire::encode(&src, &data, &[])));
        self.challenges.insert((src, from), Challenge { data, sent: now });
        self.stats.whoareyou_sent += 1;
    }

    /// A WHOAREYOU answering one of our packets: hand over the request in a handshake.
    fn on_whoareyou(&mut self, from: SocketAddr, p: &wire::Packet, enr_seq: u64, now: Instant) {
        let Some(req) =
            self.pending.iter().find(|(_, r)| r.nonce == p.nonce && r.to.addr == from).map(|(k, _)| *k)
        else {
            self.stats.packets_dropped += 1;
            crate::trace!("discv5: WHOAREYOU from {from} answers no request of ours");
            return;
        };
        let Some(to) = self.pending.get(&req).map(|r| r.to.clone()) else { return };
        let msg = match self.pending.get(&req) {
            Some(r) => r.msg.clone(),
            None => return,
        };
        let eph_secret: [u8; 32] = self.random();
        let Ok(eph) = SigningKey::from_slice(&eph_secret) else { return };
        let Some(secret) = wire::ecdh(&to.pubkey, &eph) else {
            self.fail(req, "bad public key");
            return;
        };
        let eph_pub = eph.verifying_key().to_encoded_point(true).as_bytes().to_vec();
        let challenge = &p.authenticated;
        let (initiator, recipient) = wire::derive_keys(&secret, challenge, &self.id, &to.id);
        let id_signature = wire::id_sign(&self.key, challenge, &eph_pub, &to.id).to_vec();
        let record = (enr_seq < self.enr.seq).then(|| self.enr.raw().to_vec());
        let kind = Kind::Handshake { src_id: self.id, id_signature, eph_pubkey: eph_pub, record };
        let nonce: Nonce = self.random();
        let iv: [u8; 16] = self.random();
        let ad = wire::authenticated_data(&iv, &nonce, &kind);
        let sealed = wire::seal(&initiator, &nonce, &msg.encode(), &ad);
        self.out.push_back((to.addr, wire::encode(&to.id, &ad, &sealed)));
        self.install(to.id, to.addr, initiator, recipient, now);
        self.stats.handshakes_out += 1;
        crate::trace!("discv5: handshake with {} at {} done (we initiated)", to.id, to.addr);
        if let Some(r) = self.pending.get_mut(&req) {
            r.nonce = nonce;
            r.sent = now;
        }
        // Requests held back while the handshake was under way go over the new session.
        let held: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.queued && p.to.id == to.id && p.to.addr == to.addr)
            .map(|(k, _)| *k)
            .collect();
        for k in held {
            let Some(msg) = self.pending.get(&k).map(|p| p.msg.clone()) else { continue };
            let nonce = self.send_message(&to, &msg, now);
            if let Some(p) = self.pending.get_mut(&k) {
                p.nonce = nonce;
                p.sent = now;
                p.queued = false;
            }
        }
        self.events.push_back(SessionEvent::Established {
            id: to.id,
            addr: to.addr,
            record: None,
            inbound: false,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn on_handshake(
        &mut self,
        from: SocketAddr,
        src: B256,
        id_signature: &[u8],
        eph_pubkey: &[u8],
        record: Option<Vec<u8>>,
        p: &wire::Packet,
        now: Instant,
        known: &dyn Fn(&B256) -> Option<Enr>,
    ) {
        // Used once: a replay finds nothing.
        let Some(challenge) = self.challenges.remove(&(src, from)) else {
            self.stats.packets_dropped += 1;
            return;
        };
        if now.saturating_duration_since(challenge.sent) >= CHALLENGE_TTL {
            self.stats.packets_dropped += 1;
            return;
        }
        let enr = match record {
            Some(r) => match Enr::decode(&r) {
                Ok(e) if e.signature_valid && e.node_id == src => Some(e),
                _ => {
                    self.stats.packets_dropped += 1;
                    return;
                }
            },
            None => None,
        };
        let Some(pubkey) = enr.as_ref().map(|e| e.public_key).or_else(|| known(&src).map(|e| e.public_key))
        else {
            self.stats.packets_dropped += 1;
            crate::trace!("discv5: handshake from {from} without a record we know");
            return;
        };
        if !wire::id_verify(&pubkey, id_signature, &challenge.data, eph_pubkey, &self.id) {
            self.stats.packets_dropped += 1;
            return;
        }
        let Some(secret) = wire::ecdh(eph_pubkey, &self.key) else {
            self.stats.packets_dropped += 1;
            return;
        };
        let (initiator, recipient) = wire::derive_keys(&secret, &challenge.data, &src, &self.id);
        let Some(pt) = wire::open(&initiator, &p.nonce, &p.message, &p.authenticated) else {
            self.stats.packets_dropped += 1;
            return;
        };
        self.install(src, from, recipient, initiator, now);
        self.stats.handshakes_in += 1;
        crate::trace!("discv5: handshake with {src} at {from} done (they initiated)");
        self.events.push_back(SessionEvent::Established {
            id: src,
            addr: from,
            record: enr.map(Box::new),
            inbound: true,
        });
        self.on_plaintext(from, src, &pt, now);
    }

    fn install(&mut self, id: B256, addr: SocketAddr, write: [u8; 16], read: [u8; 16], now: Instant) {
        if self.sessions.len() >= MAX_SESSIONS && !self.sessions.contains_key(&(id, addr)) {
            if let Some(oldest) = self.sessions.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| *k) {
                self.sessions.remove(&oldest);
            }
        }
        self.sessions.insert((id, addr), Session { write, read, last_used: now });
    }

    /// A message that opened under a session.
    fn on_plaintext(&mut self, from: SocketAddr, src: B256, pt: &[u8], now: Instant) {
        let msg = match Message::decode(pt) {
            Ok(m) => m,
            Err(e) => {
                self.stats.packets_dropped += 1;
                crate::trace!("discv5: bad message from {from}: {e}");
                return;
            }
        };
        match msg {
            Message::Ping { req_id, enr_seq } => {
                let pong = Message::Pong { req_id, enr_seq: self.enr.seq, ip: from.ip(), port: from.port() };
                self.reply(src, from, &pong, now);
                self.events.push_back(SessionEvent::Pinged { id: src, addr: from, enr_seq });
            }
            Message::FindNode { req_id, distances } => {
                self.events.push_back(SessionEvent::FindNode { id: src, addr: from, req_id, distances })
            }
            Message::TalkReq { req_id, .. } => {
                // No talk protocols: the empty answer the spec asks for.
                self.reply(src, from, &Message::TalkResp { req_id, response: Vec::new() }, now);
            }
            Message::Pong { req_id, enr_seq, ip, port } => {
                if let Some(req) = self.answer(src, from, &req_id, |m| matches!(m, Message::Ping { .. })) {
                    self.pending.remove(&req);
                    let observed = SocketAddr::from((ip, port));
                    self.events.push_back(SessionEvent::Pong { id: src, req, enr_seq, observed });
                }
            }
            Message::Nodes { req_id, total, records } => {
                let Some(req) = self.answer(src, from, &req_id, |m| matches!(m, Message::FindNode { .. }))
                else {
                    return;
                };
                let Some(p) = self.pending.get_mut(&req) else { return };
                let (seen, announced, all) = &mut p.nodes;
                *seen += 1;
                *announced = total.clamp(1, MAX_NODES_MESSAGES);
                let room = MAX_NODES_RECORDS.saturating_sub(all.len());
                all.extend(records.into_iter().take(room));
                if *seen >= *announced {
                    let records = std::mem::take(all);
                    self.pending.remove(&req);
                    self.events.push_back(SessionEvent::Nodes { id: src, req, records });
                }
            }
            Message::TalkResp { .. } => {}
        }
    }

    /// Our request this answers: same node, address and request id, of the right kind.
    fn answer(
        &self,
        src: B256,
        from: SocketAddr,
        req_id: &[u8],
        kind: impl Fn(&Message) -> bool,
    ) -> Option<u64> {
        let req = u64::from_be_bytes(req_id.try_into().ok()?);
        let p = self.pending.get(&req)?;
        (p.to.id == src && p.to.addr == from && kind(&p.msg)).then_some(req)
    }

    fn reply(&mut self, to: B256, addr: SocketAddr, msg: &Message, now: Instant) {
        let Some(s) = self.sessions.get_mut(&(to, addr)) else { return };
        s.last_used = now;
        let write = s.write;
        let nonce: Nonce = self.random();
        let iv: [u8; 16] = self.random();
        let ad = wire::authenticated_data(&iv, &nonce, &Kind::Message { src_id: self.id });
        let sealed = wire::seal(&write, &nonce, &msg.encode(), &ad);
        self.out.push_back((addr, wire::encode(&to, &ad, &sealed)));
    }

    /// Answers a FINDNODE with `records` (RLP), split into NODES messages that fit a packet.
    pub fn respond_nodes(
        &mut self,
        to: B256,
        addr: SocketAddr,
        req_id: Vec<u8>,
        records: &[Vec<u8>],
        now: Instant,
    ) {
        // Room for records in one packet: the packet minus header, tag and the message's own
        // framing (type, list headers, request id, total).
        const ROOM: usize = wire::MAX_PACKET_SIZE - 16 - 23 - 32 - wire::TAG_SIZE - 1 - 3 - 9 - 9 - 3;
        let mut chunks: Vec<Vec<Vec<u8>>> = vec![Vec::new()];
        let mut used = 0;
        for r in records {
            if used + r.len() > ROOM && !chunks.last().is_some_and(|c| c.is_empty()) {
                chunks.push(Vec::new());
                used = 0;
            }
            used += r.len();
            if let Some(c) = chunks.last_mut() {
                c.push(r.clone());
            }
        }
        let total = chunks.len() as u64;
        for c in chunks {
            let msg = Message::Nodes { req_id: req_id.clone(), total, records: c };
            self.reply(to, addr, &msg, now);
        }
    }

    fn fail(&mut self, req: u64, why: &'static str) {
        if let Some(p) = self.pending.remove(&req) {
            self.events.push_back(SessionEvent::Failed { id: p.to.id, req, why });
        }
    }

    /// The earliest request timeout.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.sent + REQUEST_TIMEOUT).min()
    }

    /// Requests past their timeout are sent again (a new handshake if the session was lost)
    /// or fail; expired challenges go.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<u64> =
            self.pending.iter().filter(|(_, p)| now >= p.sent + REQUEST_TIMEOUT).map(|(k, _)| *k).collect();
        for req in due {
            let Some(p) = self.pending.get(&req) else { continue };
            if p.retries == 0 || p.nodes.0 > 0 {
                // A partial NODES answer is as good as it gets.
                if let Some(p) = self.pending.remove(&req) {
                    if p.nodes.0 > 0 {
                        self.events.push_back(SessionEvent::Nodes { id: p.to.id, req, records: p.nodes.2 });
                    } else {
                        self.events.push_back(SessionEvent::Failed { id: p.to.id, req, why: "timeout" });
                    }
                }
                continue;
            }
            let (to, msg) = (p.to.clone(), p.msg.clone());
            crate::trace!("discv5: request to {} at {} timed out; sending it again", to.id, to.addr);
            let nonce = self.send_message(&to, &msg, now);
            if let Some(p) = self.pending.get_mut(&req) {
                p.retries -= 1;
                p.nonce = nonce;
                p.sent = now;
                p.queued = false;
            }
        }
        self.challenges.retain(|_, c| now.saturating_duration_since(c.sent) < CHALLENGE_TTL);
    }

    /// Forgets the session with a node (it went silent; the next request shakes hands anew).
    pub fn drop_session(&mut self, id: &B256, addr: SocketAddr) {
        self.sessions.remove(&(*id, addr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(seed: u8, port: u16) -> (Sessions, Contact) {
        let key = SigningKey::from_slice(&[seed; 32]).unwrap();
        let entries = vec![
            super::super::enr::entry_bytes("ip", &[127, 0, 0, 1]),
            super::super::enr::entry_u64("udp", port as u64),
        ];
        let enr = Enr::sign(&key, 1, entries);
        let contact = Contact::from_enr(&enr).unwrap();
        (Sessions::new(key, enr, Box::new(crate::rng::Rng::new(seed as u64))), contact)
    }

    /// Delivers every datagram until both sides are quiet.
    fn exchange(
        a: &mut Sessions,
        a_addr: SocketAddr,
        b: &mut Sessions,
        b_addr: SocketAddr,
        now: Instant,
    ) -> usize {
        let (a_enr, b_enr) = (a.enr().clone(), b.enr().clone());
        let mut n = 0;
        loop {
            let mut moved = false;
            while let Some((to, d)) = a.poll_transmit() {
                assert_eq!(to, b_addr);
                assert!(d.len() <= wire::MAX_PACKET_SIZE);
                let known = a_enr.clone();
                b.handle_packet(a_addr, &d, now, &|id| (*id == known.node_id).then(|| known.clone()));
                moved = true;
                n += 1;
            }
            while let Some((to, d)) = b.poll_transmit() {
                assert_eq!(to, a_addr);
                let known = b_enr.clone();
                a.handle_packet(b_addr, &d, now, &|id| (*id == known.node_id).then(|| known.clone()));
                moved = true;
                n += 1;
            }
            if !moved {
                return n;
            }
        }
    }

    fn events(s: &mut Sessions) -> Vec<SessionEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    #[test]
    fn ping_shakes_hands_then_reuses_the_session() {
        let now = crate::time::test_now().mono;
        let (mut a, ca) = node(1, 30301);
        let (mut b, cb) = node(2, 30302);
        let req = a.ping(cb.clone(), now).unwrap();
        // random packet -> WHOAREYOU -> handshake with PING -> PONG
        assert_eq!(exchange(&mut a, ca.addr, &mut b, cb.addr, now), 4);
        let ev = events(&mut a);
        assert!(matches!(&ev[0], SessionEvent::Established { inbound: false, .. }));
        assert!(
            matches!(&ev[1], SessionEvent::Pong { req: r, enr_seq: 1, observed, .. } if *r == req && *observed == ca.addr)
        );
        let ev = events(&mut b);
        assert!(
            matches!(&ev[0], SessionEvent::Established { id, inbound: true, record: None, .. } if *id == ca.id),
            "B knew A's record at seq 1: none sent"
        );
        assert!(matches!(&ev[1], SessionEvent::Pinged { enr_seq: 1, .. }));
        assert_eq!((a.pending(), a.sessions(), b.sessions()), (0, 1, 1));
        // Second request: no handshake, two packets.
        a.find_node(cb.clone(), vec![0], now).unwrap();
        assert_eq!(exchange(&mut a, ca.addr, &mut b, cb.addr, now), 1);
        let Some(SessionEvent::FindNode { req_id, distances, .. }) = b.poll_event() else { panic!() };
        assert_eq!(distances, vec![0]);
        let records = vec![b.enr().raw().to_vec(); 20];
        b.respond_nodes(ca.id, ca.addr, req_id, &records, now);
        // 20 records of 134 bytes: three packets under 1280 bytes (`exchange` checks the size).
        assert_eq!(exchange(&mut a, ca.addr, &mut b, cb.addr, now), 3);
        let Some(SessionEvent::Nodes { records: got, .. }) = a.poll_event() else { panic!() };
        assert_eq!(got, records);
    }

    #[test]
    fn the_record_goes_along_when_the_challenger_does_not_know_it() {
        let now = crate::time::test_now().mono;
        let (mut a, ca) = node(1, 30301);
        let (mut b, cb) = node(2, 30302);
        a.ping(cb.clone(), now).unwrap();
        // B knows nothing about A: its WHOAREYOU says seq 0, A's handshake carries its record.
        while let Some((_, d)) = a.poll_transmit() {
            b.handle_packet(ca.addr, &d, now, &|_| None);
        }
        while let Some((_, d)) = b.poll_transmit() {
            a.handle_packet(cb.addr, &d, now, &|_| None);
        }
        while let Some((_, d)) = a.poll_transmit() {
            b.handle_packet(ca.addr, &d, now, &|_| None);
        }
        let ev = events(&mut b);
        assert!(matches!(&ev[0], SessionEvent::Established { record: Some(r), .. } if r.node_id == ca.id));
    }

    #[test]
    fn replays_unsolicited_challenges_and_floods_are_dropped() {
        let now = crate::time::test_now().mono;
        let (mut a, ca) = node(1, 30301);
        let (mut b, cb) = node(2, 30302);
        a.ping(cb.clone(), now).unwrap();
        let (_, first) = a.poll_transmit().unwrap();
        let known = a.enr().clone();
        let k = move |id: &B256| (*id == known.node_id).then(|| known.clone());
        b.handle_packet(ca.addr, &first, now, &k);
        let (_, whoareyou) = b.poll_transmit().unwrap();
        a.handle_packet(cb.addr, &whoareyou, now, &|_| None);
        let (_, handshake) = a.poll_transmit().unwrap();
        b.handle_packet(ca.addr, &handshake, now, &k);
        assert_eq!(b.stats.handshakes_in, 1);
        b.poll_transmit();
        // The same handshake again: its challenge is gone.
        let dropped = b.stats.packets_dropped;
        b.handle_packet(ca.addr, &handshake, now, &k);
        assert_eq!((b.stats.handshakes_in, b.stats.packets_dropped), (1, dropped + 1));
        // The WHOAREYOU again, and a stranger's: no request of A's matches.
        a.handle_packet(cb.addr, &whoareyou, now, &|_| None);
        assert!(a.poll_transmit().is_none());
        // A flood of undecryptable packets from one address: one WHOAREYOU.
        let (mut c, cc) = node(3, 30303);
        for _ in 0..100 {
            c.ping(cb.clone(), now).unwrap();
        }
        let mut sent = 0;
        while let Some((_, d)) = c.poll_transmit() {
            b.handle_packet(cc.addr, &d, now, &|_| None);
        }
        while b.poll_transmit().is_some() {
            sent += 1;
        }
        assert_eq!(sent, 1);
        // From many addresses: challenges stay bounded.
        for port in 0..2000u16 {
            c.ping(Contact { addr: SocketAddr::from(([10, 0, 0, 1], port)), ..cb.clone() }, now);
        }
        while let Some((_, d)) = c.poll_transmit() {
            b.handle_packet(SocketAddr::from(([10, 0, 0, 2], 1 + (d[0] as u16))), &d, now, &|_| None);
        }
        assert!(b.challenges.len() <= MAX_CHALLENGES);
        assert!(c.pending() <= MAX_PENDING);
    }

    #[test]
    fn nodes_floods_are_capped_and_unsolicited_answers_dropped() {
        let now = crate::time::test_now().mono;
        let (mut a, ca) = node(1, 30301);
        let (mut b, cb) = node(2, 30302);
        a.ping(cb.clone(), now).unwrap();
        exchange(&mut a, ca.addr, &mut b, cb.addr, now);
        events(&mut a);
        events(&mut b);
        let req = a.find_node(cb.clone(), vec![256], now).unwrap();
        exchange(&mut a, ca.addr, &mut b, cb.addr, now);
        let Some(SessionEvent::FindNode { req_id, .. }) = b.poll_event() else { panic!() };
        // B answers with 100 NODES messages, each claiming a total of 1000, 3 records each.
        let rec = b.enr().raw().to_vec();
        for _ in 0..100 {
            let m = Message::Nodes { req_id: req_id.clone(), total: 1000, records: vec![rec.clone(); 3] };
            b.reply(ca.id, ca.addr, &m, now);
        }
        // And answers to requests A never made.
        for id in 0..50u64 {
            let m =
                Message::Nodes { req_id: id.to_be_bytes().to_vec(), total: 1, records: vec![rec.clone()] };
            b.reply(ca.id, ca.addr, &m, now);
            let p =
                Message::Pong { req_id: id.to_be_bytes().to_vec(), enr_seq: 9, ip: ca.addr.ip(), port: 1 };
            b.reply(ca.id, ca.addr, &p, now);
        }
        exchange(&mut a, ca.addr, &mut b, cb.addr, now);
        let ev = events(&mut a);
        assert_eq!(ev.len(), 1, "one answer, after the capped 8 messages: {ev:?}");
        let SessionEvent::Nodes { req: r, records, .. } = &ev[0] else { panic!() };
        assert_eq!((*r, records.len()), (req, 24));
        assert_eq!(a.pending(), 0);
    }

    #[test]
    fn requests_made_during_a_handshake_wait_for_its_session() {
        let now = crate::time::test_now().mono;
        let (mut a, ca) = node(1, 30301);
        let (mut b, cb) = node(2, 30302);
        a.ping(cb.clone(), now).unwrap();
        a.find_node(cb.clone(), vec![0], now).unwrap();
        a.find_node(cb.clone(), vec![256], now).unwrap();
        // One random packet, not three: the others wait for the session.
        let sent: Vec<_> = std::iter::from_fn(|| a.poll_transmit()).collect();
        assert_eq!(sent.len(), 1);
        let known = a.enr().clone();
        b.handle_packet(ca.addr, &sent[0].1, now, &|id| (*id == known.node_id).then(|| known.clone()));
        // random -> WHOAREYOU -> handshake (PING) + the two held requests -> their answers.
        exchange(&mut a, ca.addr, &mut b, cb.addr, now);
        let finds: Vec<_> = std::iter::from_fn(|| b.poll_event())
            .filter_map(|e| match e {
                SessionEvent::FindNode { req_id, .. } => Some(req_id),
                _ => None,
            })
            .collect();
        assert_eq!(finds.len(), 2, "both FINDNODEs arrived at once, no timeout");
        assert_eq!(b.stats.whoareyou_sent, 1);
    }

    #[test]
    fn a_silent_node_fails_after_a_retry() {
        let now = crate::time::test_now().mono;
        let (mut a, _) = node(1, 30301);
        let (_, cb) = node(2, 30302);
        let req = a.ping(cb, now).unwrap();
        assert!(a.poll_transmit().is_some());
        a.handle_timeout(now + REQUEST_TIMEOUT);
        assert!(a.poll_transmit().is_some(), "sent again");
        assert!(a.poll_event().is_none());
        a.handle_timeout(now + 2 * REQUEST_TIMEOUT);
        assert!(
            matches!(a.poll_event(), Some(SessionEvent::Failed { req: r, why: "timeout", .. }) if r == req)
        );
        assert_eq!((a.pending(), a.poll_timeout()), (0, None));
    }
}
