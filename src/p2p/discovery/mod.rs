//! Peer discovery: node records (ENR, EIP-778) and the discv5 protocol on them, sans-IO.
//!
//! `Discovery` is what op-node's discovery process does: it joins the discv5 network through
//! the bootnodes, keeps a Kademlia table of nodes that answered, runs random-walk lookups
//! (FINDNODE towards random targets, three in flight, the sixteen closest asked; 5 s apart while
//! the node wants peers, 20 s once it has them, op-node's pace), keeps table
//! entries alive by PING, answers other nodes' PING and FINDNODE, and hands out the records
//! that pass op-node's filter (an `opstack` entry with this chain's id and version 0, and a TCP
//! port) as candidates to dial over libp2p.
//!
//! Call order: `handle_packet(from, bytes, now)` for each UDP datagram; `handle_timeout(now)`
//! when `poll_timeout()` is due; then drain `poll_transmit()` and `poll_found()`.

pub mod enr;
pub mod ip_votes;
pub mod session;
pub mod table;
pub mod wire;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k256::ecdsa::SigningKey;

use crate::protocol::primitives::B256;
use crate::rng::Rng;
use enr::Enr;
use session::{Contact, SessionEvent, Sessions};
use table::{log2_distance, Inserted, Table};

/// Parallel FINDNODE requests of a lookup (Kademlia's alpha).
pub const LOOKUP_PARALLELISM: usize = 3;
/// Nodes a lookup converges on (and asks).
pub const LOOKUP_RESULTS: usize = 16;
/// Candidates a lookup holds (records from NODES answers, not yet asked).
const MAX_CANDIDATES: usize = 64;
/// Pause between lookups while the node wants peers, and once it has enough (op-node's
/// discoverIntervalFast / Slow).
pub const LOOKUP_INTERVAL_FAST: Duration = Duration::from_secs(5);
pub const LOOKUP_INTERVAL: Duration = Duration::from_secs(20);
/// The longest pause after lookups nobody answered (the pause doubles from
/// `LOOKUP_INTERVAL_FAST` with each such lookup; an answer resets it): an offline node, or one
/// whose bootnodes are all gone, does not wake every second to time out the same requests.
pub const LOOKUP_BACKOFF_MAX: Duration = Duration::from_secs(160);
/// How often the stalest table entry is pinged, and how old it must be.
pub const PING_INTERVAL: Duration = Duration::from_secs(10);
pub const LIVENESS_AGE: Duration = Duration::from_secs(300);
/// Records handed out as dial candidates are remembered (by node id and seq) so each is
/// handed out once; the memory is bounded.
const MAX_SEEN: usize = 4096;
/// Dial candidates waiting to be taken.
const MAX_FOUND: usize = 256;
/// Records returned for one FINDNODE (the spec's recommendation).
const FINDNODE_RESULTS: usize = 16;

/// Which OP chain to find peers of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    pub chain_id: u64,
}

impl Filter {
    /// op-node's filter: an `opstack` entry with our chain id and version 0.
    pub fn accepts(&self, e: &Enr) -> bool {
        matches!(e.opstack(), Ok(Some(o)) if o.chain_id == self.chain_id && o.version == 0)
    }
}

/// A bootnode: a record, or an enode (id, key and UDP endpoint, no record yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootnode {
    Enr(Box<Enr>),
    Enode(Contact),
}

impl Bootnode {
    /// `enr:...` or `enode://<128 hex>@<ip>:<port>[?discport=<port>]`.
    pub fn parse(s: &str) -> Result<Bootnode, String> {
        if s.starts_with("enr:") {
            return Enr::from_text(s).map(|e| Bootnode::Enr(Box::new(e))).map_err(|e| e.to_string());
        }
        let rest =
            s.strip_prefix("enode://").ok_or_else(|| format!("not an enr: or enode:// record: {s}"))?;
        let (key, addr) = rest.split_once('@').ok_or("enode without @host:port")?;
        let raw = crate::protocol::primitives::from_hex(key).map_err(|e| format!("enode key: {e}"))?;
        if raw.len() != 64 {
            return Err("enode key is not 64 bytes".into());
        }
        let mut sec1 = vec![4u8];
        sec1.extend_from_slice(&raw);
        let vk =
            k256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| "enode key is not on the curve")?;
        let (hostport, query) = addr.split_once('?').unwrap_or((addr, ""));
        let mut sa: SocketAddr = hostport.parse().map_err(|_| format!("enode address {hostport:?}"))?;
        if let Some(d) = query.split('&').find_map(|kv| kv.strip_prefix("discport=")) {
            sa.set_port(d.parse().map_err(|_| format!("enode discport {d:?}"))?);
        }
        let pubkey: [u8; 33] = vk.to_encoded_point(true).as_bytes().try_into().map_err(|_| "key")?;
        Ok(Bootnode::Enode(Contact { id: wire::node_id(&vk), addr: sa, pubkey }))
    }

    pub fn contact(&self) -> Option<Contact> {
        match self {
            Bootnode::Enr(e) => Contact::from_enr(e),
            Bootnode::Enode(c) => Some(c.clone()),
        }
    }
}

/// Why we asked a node something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Lookup,
    Liveness,
    /// FINDNODE at distance 0: its current record.
    Record,
}

#[derive(Debug)]
struct Lookup {
    target: B256,
    asked: HashSet<B256>,
    /// Not yet asked, kept sorted closest first.
    candidates: Vec<Contact>,
    /// The records of candidates (an asked node that answers enters the table with it).
    records: HashMap<B256, Enr>,
    in_flight: usize,
    /// Whether any node asked answered.
    answered: bool,
}

/// Counters for the metrics (op-node's discovery names where it has them).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryStats {
    pub lookups: u64,
    pub records_received: u64,
    pub records_invalid: u64,
    pub found: u64,
    pub filtered_out: u64,
    /// Times our record took the endpoint other nodes see us at.
    pub address_updates: u64,
}

/// The discovery service of one node.
pub struct Discovery {
    pub sessions: Sessions,
    table: Table,
    filter: Filter,
    bootnodes: Vec<Bootnode>,
    rng: Rng,
    purposes: HashMap<u64, Purpose>,
    lookup: Option<Lookup>,
    next_lookup: Option<Instant>,
    /// Lookups in a row that nobody answered.
    unanswered_lookups: u32,
    next_ping: Option<Instant>,
    found: VecDeque<Enr>,
    seen: HashMap<B256, u64>,
    /// The node has fewer peers than it wants: lookups run at the fast pace.
    pub wants_peers: bool,
    pub stats: DiscoveryStats,
    /// Our record has no IP: the endpoint PONGs report is learnt into it.
    ip_votes: Option<ip_votes::IpVotes>,
    /// Nodes whose record (from a handshake) has no address, by id: the sequence number seen
    /// and the public key. A PING announcing a newer record gets that record asked for (the
    /// node may have learnt its address). Bounded: the oldest goes.
    addressless: VecDeque<(B256, u64, [u8; 33])>,
}

/// Addressless nodes remembered.
const MAX_ADDRESSLESS: usize = 64;

impl Discovery {
    /// `key_material` feeds the sessions' keys and nonces (the OS's randomness in the node);
    /// `seed` the lookups' random targets.
    pub fn new(
        key: SigningKey,
        own: Enr,
        filter: Filter,
        bootnodes: Vec<Bootnode>,
        key_material: Box<dyn rand_core::RngCore + Send>,
        seed: u64,
    ) -> Discovery {
        let learn_address = own.ip().is_none() && own.ip6().is_none();
        let sessions = Sessions::new(key, own, key_material);
        let table = Table::new(sessions.node_id());
        Discovery {
            sessions,
            table,
            filter,
            bootnodes,
            rng: Rng::new(seed),
            purposes: HashMap::new(),
            lookup: None,
            next_lookup: None,
            unanswered_lookups: 0,
            next_ping: None,
            found: VecDeque::new(),
            seen: HashMap::new(),
            wants_peers: true,
            stats: DiscoveryStats::default(),
            ip_votes: learn_address.then(ip_votes::IpVotes::default),
            addressless: VecDeque::new(),
        }
    }

    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    /// The table's records that pass the filter and have a TCP port: dialled again when the
    /// node still wants peers after the first offers (a dial failed, a peer left).
    pub fn dial_records(&self) -> Vec<Enr> {
        self.table
            .entries()
            .map(|e| &e.enr)
            .filter(|e| self.filter.accepts(e) && (e.tcp().is_some() || e.tcp6().is_some()))
            .cloned()
            .collect()
    }

    /// The records of the table (for the peer store).
    pub fn records(&self) -> Vec<Enr> {
        self.table.entries().map(|e| e.enr.clone()).collect()
    }

    /// A record from the peer store: asked for its current record, so it enters the table
    /// only if it answers.
    pub fn add_stored(&mut self, e: Enr, now: Instant) {
        if let Some(c) = Contact::from_enr(&e) {
            self.consider(&e);
            self.ask(c, Purpose::Record, vec![0], now);
        }
    }

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.sessions.poll_transmit()
    }

    /// The next record worth dialling (passes the filter, has a TCP port), each once.
    pub fn poll_found(&mut self) -> Option<Enr> {
        self.found.pop_front()
    }

    /// The next deadline. Before the first `handle_timeout` there is none: the owner calls it
    /// once at start (the loop's first timer pass), which starts the first lookup.
    pub fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        [self.sessions.poll_timeout(), self.next_lookup, self.next_ping]
            .into_iter()
            .flatten()
            .min()
            .map(|t| (t, "discv5"))
    }

    fn ask(&mut self, to: Contact, why: Purpose, distances: Vec<u16>, now: Instant) -> bool {
        match self.sessions.find_node(to, distances, now) {
            Some(req) => {
                self.purposes.insert(req, why);
                true
            }
            None => false,
        }
    }

    /// A record we learnt of: a dial candidate if it passes the filter, once per sequence.
    fn consider(&mut self, e: &Enr) {
        if e.node_id == self.sessions.node_id() || !e.signature_valid {
            return;
        }
        if self.seen.get(&e.node_id).is_some_and(|s| *s >= e.seq) {
            return;
        }
        if self.seen.len() >= MAX_SEEN {
            self.seen.clear();
        }
        self.seen.insert(e.node_id, e.seq);
        if !self.filter.accepts(e) || (e.tcp().is_none() && e.tcp6().is_none()) {
            self.stats.filtered_out += 1;
            return;
        }
        if self.found.len() >= MAX_FOUND {
            self.found.pop_front();
        }
        self.stats.found += 1;
        self.found.push_back(e.clone());
    }

    /// One UDP datagram.
    pub fn handle_packet(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) {
        let table = &self.table;
        let bootnodes = &self.bootnodes;
        let known = |id: &B256| -> Option<Enr> {
            table.get(id).map(|e| e.enr.clone()).or_else(|| {
                bootnodes.iter().find_map(|b| match b {
                    Bootnode::Enr(e) if e.node_id == *id => Some((**e).clone()),
                    _ => None,
                })
            })
        };
        self.sessions.handle_packet(from, bytes, now, &known);
        self.drain_events(now);
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(ev) = self.sessions.poll_event() {
            match ev {
                SessionEvent::Established { record: Some(r), .. } if Contact::from_enr(&r).is_none() => {
                    self.addressless.retain(|(id, ..)| *id != r.node_id);
                    if self.addressless.len() >= MAX_ADDRESSLESS {
                        self.addressless.pop_front();
                    }
                    self.addressless.push_back((r.node_id, r.seq, r.public_key));
                }
                SessionEvent::Established { record: Some(r), .. } => {
                    self.add_live(*r, now);
                }
                SessionEvent::Established { .. } => {}
                SessionEvent::Pinged { id, addr, enr_seq } => {
                    self.table.mark_live(&id, now);
                    self.refresh_if_newer(id, enr_seq, now);
                    if let Some(i) =
                        self.addressless.iter().position(|(a, seq, _)| *a == id && *seq < enr_seq)
                    {
                        if let Some((id, _, pubkey)) = self.addressless.remove(i) {
                            self.ask(Contact { id, addr, pubkey }, Purpose::Record, vec![0], now);
                        }
                    }
                }
                SessionEvent::FindNode { id, addr, req_id, distances } => {
                    let mut records: Vec<Vec<u8>> = Vec::new();
                    if distances.contains(&0) {
                        records.push(self.sessions.enr().raw().to_vec());
                    }
                    records.extend(
                        self.table
                            .at_distances(&distances, FINDNODE_RESULTS)
                            .into_iter()
                            .map(|e| e.raw().to_vec()),
                    );
                    records.truncate(FINDNODE_RESULTS);
                    self.sessions.respond_nodes(id, addr, req_id, &records, now);
                }
                SessionEvent::Pong { id, req, enr_seq, observed } => {
                    self.purposes.remove(&req);
                    self.table.mark_live(&id, now);
                    self.refresh_if_newer(id, enr_seq, now);
                    self.learn_address(id, observed, now);
                }
                SessionEvent::Nodes { id, req, records } => self.on_nodes(id, req, records, now),
                SessionEvent::Failed { id, req, .. } => {
                    if self.purposes.remove(&req) == Some(Purpose::Lookup) {
                        if let Some(l) = &mut self.lookup {
                            l.in_flight = l.in_flight.saturating_sub(1);
                        }
                    }
                    if self.table.mark_failed(&id) {
                        log::debug!("discv5: node {id} left the table (no answer)");
                    }
                }
            }
        }
        self.step_lookup(now);
    }

    /// A PONG named the endpoint it saw us at: when the votes agree on one our record does
    /// not carry, it goes into the record (IP and UDP port; the TCP port stays ours).
    fn learn_address(&mut self, id: B256, observed: SocketAddr, now: Instant) {
        let Some(votes) = &mut self.ip_votes else { return };
        votes.vote(id, observed, now);
        let Some(addr) = votes.winner(now) else { return };
        let own = self.sessions.enr();
        let current = match addr {
            SocketAddr::V4(_) => own.ip().map(std::net::IpAddr::from).zip(own.udp()),
            SocketAddr::V6(_) => own.ip6().map(std::net::IpAddr::from).zip(own.udp6()),
        };
        if current == Some((addr.ip(), addr.port())) {
            return;
        }
        let entries = match addr {
            SocketAddr::V4(a) => {
                vec![enr::entry_bytes("ip", &a.ip().octets()), enr::entry_u64("udp", a.port().into())]
            }
            SocketAddr::V6(a) => {
                vec![enr::entry_bytes("ip6", &a.ip().octets()), enr::entry_u64("udp6", a.port().into())]
            }
        };
        self.sessions.update_enr(entries);
        self.stats.address_updates += 1;
        // The voters hear of the new record at once (a PING carries its sequence number and
        // they ask for it), as sigp's discv5 pings its peers when its record changes.
        let voters: Vec<Contact> =
            votes.voters(now).filter_map(|id| self.table.get(id)).map(|e| e.contact.clone()).collect();
        for c in voters {
            if let Some(req) = self.sessions.ping(c, now) {
                self.purposes.insert(req, Purpose::Liveness);
            }
        }
        log::info!(
            "discv5: other nodes see us at {addr}: our record carries it now (seq {})",
            self.sessions.enr().seq
        );
    }

    /// A node announced a newer record than ours: ask for it.
    fn refresh_if_newer(&mut self, id: B256, seq: u64, now: Instant) {
        let Some(e) = self.table.get(&id) else { return };
        if seq > e.enr.seq {
            let c = e.contact.clone();
            self.ask(c, Purpose::Record, vec![0], now);
        }
    }

    fn add_live(&mut self, e: Enr, now: Instant) {
        self.consider(&e);
        if let Inserted::Full { oldest } = self.table.insert(e, now) {
            if let Some(req) = self.sessions.ping(oldest, now) {
                self.purposes.insert(req, Purpose::Liveness);
            }
        }
    }

    fn on_nodes(&mut self, from: B256, req: u64, records: Vec<Vec<u8>>, now: Instant) {
        let why = self.purposes.remove(&req);
        self.table.mark_live(&from, now);
        // The responder answered: it is live. Its own record (distance 0) or the nodes it knows.
        let mut contacts = Vec::new();
        // A node found by a lookup that answers is live: it enters the table.
        if let Some(e) = self.lookup.as_mut().and_then(|l| l.records.remove(&from)) {
            self.add_live(e, now);
        }
        for raw in records {
            self.stats.records_received += 1;
            let e = match Enr::decode(&raw) {
                Ok(e) if e.signature_valid => e,
                _ => {
                    self.stats.records_invalid += 1;
                    continue;
                }
            };
            if e.node_id == from {
                self.add_live(e, now);
                continue;
            }
            self.consider(&e);
            if let Some(c) = Contact::from_enr(&e) {
                contacts.push((c, e));
            }
        }
        if why == Some(Purpose::Lookup) {
            let local = self.sessions.node_id();
            if let Some(l) = &mut self.lookup {
                l.in_flight = l.in_flight.saturating_sub(1);
                l.answered = true;
                for (c, e) in contacts {
                    if c.id != local && !l.asked.contains(&c.id) && !l.candidates.iter().any(|k| k.id == c.id)
                    {
                        l.candidates.push(c);
                        l.records.insert(e.node_id, e);
                    }
                }
                let target = l.target;
                crate::sort::sort_by_key(&mut l.candidates, |c| table::xor(&c.id, &target));
                l.candidates.truncate(MAX_CANDIDATES);
                let keep: HashSet<B256> =
                    l.candidates.iter().map(|c| c.id).chain(l.asked.iter().copied()).collect();
                l.records.retain(|id, _| keep.contains(id));
            }
        }
    }

    /// Sends the lookup's next FINDNODEs, or ends it.
    fn step_lookup(&mut self, now: Instant) {
        let Some(mut l) = self.lookup.take() else { return };
        while l.in_flight < LOOKUP_PARALLELISM && l.asked.len() < LOOKUP_RESULTS * 2 {
            let Some(c) = (!l.candidates.is_empty()).then(|| l.candidates.remove(0)) else { break };
            l.asked.insert(c.id);
            // The distances where the target's neighbours sit in the asked node's table.
            let d = log2_distance(&c.id, &l.target).max(1);
            let distances: Vec<u16> = [d, d.saturating_add(1).min(256), d.saturating_sub(1).max(1)]
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            if self.ask(c, Purpose::Lookup, distances, now) {
                l.in_flight += 1;
            }
        }
        if l.in_flight == 0 {
            log::debug!("discv5: lookup done, asked {} nodes, table {}", l.asked.len(), self.table.len());
            self.unanswered_lookups = if l.answered { 0 } else { self.unanswered_lookups.saturating_add(1) };
            let pause = if self.unanswered_lookups > 0 {
                LOOKUP_INTERVAL_FAST
                    .saturating_mul(1 << self.unanswered_lookups.min(6))
                    .min(LOOKUP_BACKOFF_MAX)
            } else if self.table.len() < LOOKUP_RESULTS {
                LOOKUP_INTERVAL_FAST
            } else {
                LOOKUP_INTERVAL
            };
            self.next_lookup = Some(now + pause);
        } else {
            self.lookup = Some(l);
        }
    }

    fn start_lookup(&mut self, now: Instant) {
        let mut target = B256::ZERO;
        self.rng.fill(&mut target.0);
        let mut candidates: Vec<Contact> =
            self.table.closest(&target, LOOKUP_RESULTS).into_iter().map(|e| e.contact.clone()).collect();
        if candidates.is_empty() {
            candidates = self.bootnodes.iter().filter_map(Bootnode::contact).collect();
        }
        crate::sort::sort_by_key(&mut candidates, |c| table::xor(&c.id, &target));
        self.stats.lookups += 1;
        self.lookup = Some(Lookup {
            target,
            asked: HashSet::new(),
            candidates,
            records: HashMap::new(),
            in_flight: 0,
            answered: false,
        });
        self.next_lookup = None;
        self.step_lookup(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.sessions.handle_timeout(now);
        self.drain_events(now);
        if self.next_ping.is_none() {
            // First pass: every bootnode is asked for its current record (its answer puts it in
            // the table; an enode has no record until then).
            for c in self.bootnodes.clone().iter().filter_map(Bootnode::contact) {
                self.ask(c, Purpose::Record, vec![0], now);
            }
        }
        if self.lookup.is_none() && self.next_lookup.is_none_or(|t| t <= now) {
            self.start_lookup(now);
        }
        if self.next_ping.is_none_or(|t| t <= now) {
            self.next_ping = Some(now + PING_INTERVAL);
            // Learning our address and no endpoint agreed yet: nodes that have not said where
            // they see us are asked (a PING's answer says), a few at a time.
            if let Some(votes) = self.ip_votes.as_ref().filter(|v| v.winner(now).is_none()) {
                let ask: Vec<Contact> = self
                    .table
                    .entries()
                    .filter(|e| !votes.has_voted(&e.contact.id, now))
                    .take(ip_votes::MIN_VOTES)
                    .map(|e| e.contact.clone())
                    .collect();
                for c in ask {
                    if let Some(req) = self.sessions.ping(c, now) {
                        self.purposes.insert(req, Purpose::Liveness);
                    }
                }
            }
            if let Some(e) = now.checked_sub(LIVENESS_AGE).and_then(|before| self.table.stalest(before)) {
                let c = e.contact.clone();
                if let Some(req) = self.sessions.ping(c, now) {
                    self.purposes.insert(req, Purpose::Liveness);
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A node's key and record: 10.0.0.1:(9000+i), TCP too, `opstack` for `chain`.
    pub(crate) fn identity(i: u64, chain: u64) -> (SigningKey, Enr) {
        let mut k = [7u8; 32];
        k[24..].copy_from_slice(&i.to_be_bytes());
        let key = SigningKey::from_slice(&k).unwrap();
        let port = 9000 + i;
        let pairs = vec![
            enr::entry_bytes("ip", &[10, 0, 0, 1]),
            enr::entry_u64("udp", port),
            enr::entry_u64("tcp", port),
            (b"opstack".to_vec(), enr::OpStack { chain_id: chain, version: 0 }.encode()),
        ];
        let enr = Enr::sign(&key, 1, pairs);
        (key, enr)
    }

    /// Node `i` of a test network on chain 10 whose node 0 is the bootnode (`boot` its record);
    /// `seed` picks its randomness.
    fn member(i: u64, key: SigningKey, enr: Enr, boot: &Enr, seed: u64) -> Discovery {
        let boots = if i == 0 { vec![] } else { vec![Bootnode::Enr(Box::new(boot.clone()))] };
        Discovery::new(key, enr, Filter { chain_id: 10 }, boots, Box::new(Rng::new(seed ^ 0x5e55)), seed)
    }

    /// `n` members on chain 10 with their own records, node 0 the bootnode; node `i` seeded
    /// `seed0 + i`.
    fn network(n: u64, seed0: u64) -> Vec<Discovery> {
        let boot = identity(0, 10).1;
        (0..n)
            .map(|i| {
                let (key, enr) = identity(i, 10);
                member(i, key, enr, &boot, seed0 + i)
            })
            .collect()
    }

    /// Where a node's datagrams come from: 10.0.0.1 (a record without IP too).
    fn addr(e: &Enr) -> SocketAddr {
        SocketAddr::from((e.ip().unwrap_or(std::net::Ipv4Addr::new(10, 0, 0, 1)), e.udp().unwrap()))
    }

    /// Runs the nodes for `secs` virtual seconds, delivering every datagram (`drop` decides
    /// which are lost). Returns the records each node handed out to dial.
    fn run(nodes: &mut [Discovery], secs: u64, mut drop: impl FnMut(&[u8]) -> bool) -> Vec<Vec<Enr>> {
        run_from(nodes, 0, secs, |d| drop(d))
    }

    /// `run`, starting `from` virtual seconds after the tests' t0 (to go on where an earlier
    /// run of the same nodes stopped).
    fn run_from(
        nodes: &mut [Discovery],
        from: u64,
        secs: u64,
        mut drop: impl FnMut(&[u8]) -> bool,
    ) -> Vec<Vec<Enr>> {
        let start = crate::time::test_now().mono + Duration::from_secs(from);
        let mut now = start;
        let end = now + Duration::from_secs(secs);
        let addrs: Vec<SocketAddr> = nodes.iter().map(|n| addr(n.sessions.enr())).collect();
        let mut found = vec![Vec::new(); nodes.len()];
        for n in nodes.iter_mut() {
            n.handle_timeout(now);
        }
        while now < end {
            let mut moved = true;
            while moved {
                moved = false;
                for i in 0..nodes.len() {
                    while let Some((to, d)) = nodes[i].poll_transmit() {
                        moved = true;
                        if drop(&d) {
                            continue;
                        }
                        if let Some(j) = addrs.iter().position(|a| *a == to) {
                            nodes[j].handle_packet(addrs[i], &d, now);
                        }
                    }
                    while let Some(e) = nodes[i].poll_found() {
                        found[i].push(e);
                    }
                }
            }
            now += Duration::from_millis(100);
            for n in nodes.iter_mut() {
                if n.poll_timeout().is_some_and(|(t, _)| t <= now) {
                    n.handle_timeout(now);
                }
            }
        }
        found
    }

    #[test]
    fn bootnodes_parse() {
        let e = "enr:-J24QNz9lbrKbN4iSmmjtnr7SjUMk4zB7f1krHZcTZx-JRKZd0kA2gjufUROD6T3sOWDVDnFJRvqBBo62zuF-hYCohOGAYiOoEyEgmlkgnY0gmlwhAPniryHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQKNVFlCxh_B-716tTs-h1vMzZkSs1FTu_OYTNjgufplG4N0Y3CCJAaDdWRwgiQG";
        assert!(matches!(Bootnode::parse(e), Ok(Bootnode::Enr(_))));
        let n = "enode://869d07b5932f17e8490990f75a3f94195e9504ddb6b85f7189e5a9c0a8fff8b00aecf6f3ac450ecba6cdabdb5858788a94bde2b613e0f2d82e9b395355f76d1a@34.65.67.101:0?discport=30305";
        let Ok(Bootnode::Enode(c)) = Bootnode::parse(n) else { panic!() };
        assert_eq!(c.addr, "34.65.67.101:30305".parse().unwrap());
        for bad in ["enode://00@1.2.3.4:1", "enode://x", "http://x", "enr:x"] {
            assert!(Bootnode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nodes_that_know_one_bootnode_find_each_other_and_filter_other_chains() {
        // Node 0 is the bootnode; 1..=6 on chain 10; node 7 on chain 8453.
        let boot = identity(0, 10).1;
        let mut nodes: Vec<Discovery> = (0..8)
            .map(|i| {
                let (key, enr) = identity(i, if i == 7 { 8453 } else { 10 });
                member(i, key, enr, &boot, i)
            })
            .collect();
        let found = run(&mut nodes, 60, |_| false);
        let ids: Vec<B256> = nodes.iter().map(|n| n.sessions.node_id()).collect();
        for (i, f) in found.iter().enumerate().take(7) {
            let got: HashSet<B256> = f.iter().map(|e| e.node_id).collect();
            for (j, id) in ids.iter().enumerate().take(7) {
                if i != j {
                    assert!(got.contains(id), "node {i} did not find node {j}");
                }
            }
            assert!(!got.contains(&ids[7]), "the other chain's node is never a dial candidate");
            assert_eq!(got.len(), f.len(), "each record handed out once");
            assert!(nodes[i].table_len() >= 5, "node {i} table {}", nodes[i].table_len());
        }
        // Node 7 is in the others' tables (discovered), only filtered from dialling.
        assert!(nodes[1..7].iter().any(|n| n.table.get(&ids[7]).is_some()));
        assert!(nodes[1].stats.filtered_out > 0);
    }

    #[test]
    fn a_node_whose_record_has_no_ip_learns_the_address_others_see_and_they_learn_its_record() {
        let boot = identity(0, 10).1;
        let mut nodes: Vec<Discovery> = (0..6)
            .map(|i| {
                let (key, mut enr) = identity(i, 10);
                if i == 5 {
                    // Listening on 0.0.0.0 with no --p2p.advertise.ip: no IP in the record.
                    let port = 9000 + i;
                    let pairs = vec![
                        enr::entry_u64("udp", port),
                        enr::entry_u64("tcp", port),
                        (b"opstack".to_vec(), enr::OpStack { chain_id: 10, version: 0 }.encode()),
                    ];
                    enr = Enr::sign(&key, 1, pairs);
                }
                member(i, key, enr, &boot, i)
            })
            .collect();
        assert_eq!(nodes[5].sessions.enr().ip(), None);
        assert!(nodes[1].ip_votes.is_none(), "a record with an IP learns nothing");
        run(&mut nodes, 120, |_| false);
        let own = nodes[5].sessions.enr().clone();
        assert_eq!(
            (own.ip(), own.udp(), own.tcp()),
            (Some(std::net::Ipv4Addr::new(10, 0, 0, 1)), Some(9005), Some(9005))
        );
        assert!(own.signature_valid);
        assert_eq!((own.seq, nodes[5].stats.address_updates), (2, 1), "updated once");
        // The others hold its new record (its PONGs announce seq 2, they ask for it).
        let holding =
            nodes[..5].iter().filter(|n| n.table.get(&own.node_id).is_some_and(|e| e.enr.seq == 2)).count();
        assert!(holding >= 3, "{holding} nodes hold the new record");
    }

    #[test]
    fn lookups_nobody_answers_back_off_and_an_answer_resets_them() {
        let mut nodes = network(3, 0);
        // The bootnode is unreachable for 10 minutes, then answers.
        run_from(&mut nodes, 0, 600, |_| true);
        // Every 5 s plus the timeouts it would be about 80 lookups in 10 minutes; backing off
        // (10, 20, 40, 80, 160, 160 ... s) it is a handful.
        assert!(nodes[1].stats.lookups <= 9, "{} lookups", nodes[1].stats.lookups);
        assert!(nodes[1].unanswered_lookups >= 5);
        run_from(&mut nodes, 600, 300, |_| false);
        // Within the longest pause of the bootnode's return, the two others find each other.
        let ids: Vec<B256> = nodes.iter().map(|n| n.sessions.node_id()).collect();
        assert!(nodes[1].table.get(&ids[2]).is_some() && nodes[2].table.get(&ids[1]).is_some());
        assert_eq!(nodes[1].unanswered_lookups, 0, "answers reset the backoff");
    }

    #[test]
    fn hostile_datagrams_leave_the_service_bounded() {
        let (key, enr) = identity(1, 10);
        let mut d =
            Discovery::new(key, enr, Filter { chain_id: 10 }, vec![], Box::new(Rng::new(1 ^ 0x5e55)), 1);
        let mut now = crate::time::test_now().mono;
        d.handle_timeout(now);
        let mut rng = Rng::new(77);
        // Random bytes, and valid-looking headers for our id with garbage after them, from
        // thousands of addresses.
        let own = d.sessions.node_id();
        for i in 0..20_000u32 {
            let from = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 9000));
            let mut b = vec![0u8; rng.below(1300) as usize];
            rng.fill(&mut b);
            if i % 2 == 0 && b.len() > 100 {
                let src = B256([i as u8; 32]);
                let ad = wire::authenticated_data(&[1; 16], &[2; 12], &wire::Kind::Message { src_id: src });
                let pkt = wire::encode(&own, &ad, &b[..64]);
                b = pkt;
            }
            d.handle_packet(from, &b, now);
            while d.poll_transmit().is_some() {}
            if i % 1000 == 0 {
                now += Duration::from_millis(500);
                d.handle_timeout(now);
            }
        }
        assert_eq!(d.table_len(), 0, "strangers never enter the table");
        assert!(d.poll_found().is_none());
        assert!(d.sessions.sessions() == 0 && d.sessions.pending() <= session::MAX_PENDING);
        assert!(d.sessions.stats.whoareyou_sent > 0, "well-formed packets were challenged");
    }

    #[test]
    fn lossy_links_still_converge() {
        let mut nodes = network(5, 100);
        let mut rng = Rng::new(9);
        let found = run(&mut nodes, 120, |_| rng.below(5) == 0);
        for f in &found[1..] {
            assert!(f.len() >= 3, "{} found", f.len());
        }
    }
}
