//! The node as sans-IO state: op-node's `OpNode` without its sockets. `Node` holds the derivers
//! with their event queue (`Core`), the JSON-RPC method table, and the gossip node; it serves
//! HTTP requests (`rpc::Service`) and RPC methods (`rpc::methods::NodeApi`) from that state and
//! asks its `Host` (the shell in `io::node`) for the few effects outside it: the admin-state
//! file, the log level, process statistics.
//!
//! Call order (the shell's loop): inputs through `emit` and the servers, `handle_timeout(now)`,
//! `relay_gossip(now)`, `drain_bounded(now, budget)`; then drain the outputs: `poll_requests(now)`
//! (I/O for the workers), `poll_safedb_write()`, `poll_rpc_responses(now)` (answers for waiting
//! HTTP connections); then wait for `poll_timeout()`.

pub mod derivers;

use std::net::SocketAddr;
use std::time::Instant;

use crate::driver::safedb::{SafeDbWrite, SafeHeads};
use crate::driver::sequencer::Sequencer;
use crate::driver::status::SyncStatus;
use crate::event::{Aborted, Event, Request};
use crate::metrics::{Metrics, MetricsRecorder, ProcStats, CONTENT_TYPE};
use crate::p2p::blocks::Signers;
use crate::p2p::discovery::Discovery;
use crate::p2p::multiaddr::Multiaddr;
use crate::p2p::swarm::Swarm;
use crate::protocol::block_ref::BlockId;
use crate::protocol::primitives::B256;
use crate::protocol::rollup::RollupConfig;
use crate::rpc::deferred::{Deferred, CALL_TIMEOUT, MAX_CALLS};
use crate::rpc::jsonrpc::{self, Body, DuplicateMethod};
use crate::rpc::methods::{self, GossipView, NodeApi};
use crate::rpc::{self, CallRecord, Dispatcher, Listener, Reply, Response, RpcContext, Ticket};
use crate::time::Now;
use crate::version::VERSION_WITH_META;

pub use derivers::{Core, Derivers, Params};

/// What the node asks of the process it runs in. The shell carries these out with files and
/// the logger; tests keep them in memory.
pub trait Host {
    /// Persists the sequencer's started state (`--rpc.admin-state`); nothing to do without it.
    fn persist_sequencer_state(&mut self, started: bool) -> Result<(), String>;
    /// Sets the log level by its op-node name (`admin_setLogLevel`).
    fn set_log_level(&mut self, level: &str) -> Result<(), String>;
    /// The process's CPU, memory and descriptor figures, for a metrics scrape.
    fn process_stats(&mut self) -> Option<ProcStats>;
    /// The event loop's wake-ups by cause (kind, what, count), for a metrics scrape.
    fn loop_wakeups(&mut self) -> Vec<(&'static str, &'static str, u64)> {
        Vec::new()
    }
    /// The upstream clients' request counts by (rpc, method), for a metrics scrape.
    fn rpc_clients(&mut self) -> Vec<crate::metrics::RpcClientStats> {
        Vec::new()
    }
}

/// The deadlines that may wait for the next gossipsub heartbeat (at most its 500 ms): polls and
/// housekeeping that are seconds apart and whose lateness nobody sees: the L1 head poll (12 s,
/// op-node's default), the runtime-config reload, and discv5's lookups, pings and request
/// timeouts (1 s). Derivation's delayed steps, the sequencer, RPC and connection deadlines
/// stay exact.
pub const COALESCED: [&str; 3] = ["l1-poll", "runtime-config", "discv5"];

/// The gossip node.
pub struct Gossip {
    pub swarm: Swarm,
    /// The address its listener is bound to.
    pub listen: Option<SocketAddr>,
    /// discv5 peer discovery (unless `--p2p.no-discovery`) with the address its UDP socket
    /// is bound to.
    pub discovery: Option<(Discovery, SocketAddr)>,
    /// Discovered peers to dial while the node has fewer than `--p2p.peers.lo`.
    pub candidates: std::collections::VecDeque<Multiaddr>,
    /// Whether discovery has had its first timer pass (which starts it).
    pub discovery_started: bool,
    /// When the table's records may be offered again as dial candidates.
    next_refill: Option<std::time::Instant>,
}

/// Pause between offering the table's records again while the node wants peers (op-node's
/// connectionIntervalFast).
pub const REFILL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Discovered peers waiting to be dialled.
pub const MAX_DIAL_CANDIDATES: usize = 64;

impl Gossip {
    pub fn new(
        swarm: Swarm,
        listen: Option<SocketAddr>,
        discovery: Option<(Discovery, SocketAddr)>,
    ) -> Gossip {
        Gossip {
            swarm,
            listen,
            discovery,
            candidates: Default::default(),
            discovery_started: false,
            next_refill: None,
        }
    }

    /// Takes the records discovery found and dials them while the node wants peers
    /// (unprotected dials, within `--p2p.peers.lo`).
    pub fn dial_discovered(&mut self, now: Now) {
        let Some((disc, _)) = &mut self.discovery else { return };
        disc.wants_peers = self.swarm.wants_peers();
        let mut found: Vec<_> = std::iter::from_fn(|| disc.poll_found()).collect();
        if found.is_empty()
            && self.candidates.is_empty()
            && self.swarm.wants_peers()
            && self.next_refill.is_none_or(|t| t <= now.mono)
        {
            self.next_refill = Some(now.mono + REFILL_INTERVAL);
            found = disc.dial_records();
        }
        for e in found {
            let (Some(peer), Some(addr)) = (e.peer_id().ok(), dial_addr(&e)) else { continue };
            if self.swarm.is_connected(&peer)
                || self.candidates.iter().any(|c| c.peer.as_ref() == Some(&peer))
            {
                continue;
            }
            if self.candidates.len() >= MAX_DIAL_CANDIDATES {
                self.candidates.pop_front();
            }
            self.candidates.push_back(Multiaddr { addr, peer: Some(peer) });
        }
        while self.swarm.wants_peers() {
            let Some(m) = self.candidates.pop_front() else { break };
            match self.swarm.dial(&m, now) {
                Ok(_) => log::debug!("dialling discovered peer {m}"),
                Err(e) => crate::trace!("not dialling discovered peer {m}: {e}"),
            }
        }
    }
}

/// Where a discovered node takes libp2p connections: its IPv4 address and TCP port, else IPv6.
fn dial_addr(e: &crate::p2p::discovery::enr::Enr) -> Option<SocketAddr> {
    match (e.ip(), e.tcp()) {
        (Some(ip), Some(port)) => Some(SocketAddr::from((ip, port))),
        _ => Some(SocketAddr::from((e.ip6()?, e.tcp6()?))),
    }
}

/// The sans-IO node.
pub struct Node {
    pub core: Core,
    /// The JSON-RPC method table; the shell registers the methods as their parts start.
    pub rpc: Dispatcher<Node>,
    pub gossip: Option<Gossip>,
    host: Box<dyn Host>,
    /// The ticket of the last RPC request answered later.
    last_ticket: Ticket,
}

impl Node {
    /// A node over `core`; `enable_admin` serves the `admin_*` namespace.
    pub fn new(mut core: Core, enable_admin: bool, host: Box<dyn Host>) -> Node {
        core.derivers.metrics.get_or_insert_with(MetricsRecorder::default);
        let rpc = Dispatcher::new(VERSION_WITH_META, enable_admin, jsonrpc::Limits::default());
        let mut node = Node { core, rpc, gossip: None, host, last_ticket: 0 };
        node.metrics().record_info(VERSION_WITH_META);
        node.metrics().record_up();
        node
    }

    /// Serves the node's RPC methods (and `opp2p_*` when gossip runs) with a store for calls
    /// answered later.
    pub fn serve_rpc(&mut self) -> Result<(), DuplicateMethod> {
        methods::register_static(&mut self.rpc)?;
        methods::register_node(&mut self.rpc)?;
        if self.gossip.is_some() {
            methods::p2p::register(&mut self.rpc)?;
        }
        self.core.derivers.rpc_calls = Some(Deferred::new(MAX_CALLS, CALL_TIMEOUT));
        Ok(())
    }

    /// op-node's metrics.
    pub fn metrics(&mut self) -> &mut Metrics {
        &mut self.core.derivers.metrics.get_or_insert_with(MetricsRecorder::default).metrics
    }

    /// Starts driving: the first step request, as op-node's event loop does on start.
    pub fn start(&mut self) {
        self.core.emit(Event::StepReq { reset_backoff: false });
    }

    /// Queues an input event.
    pub fn emit(&mut self, ev: Event) {
        self.core.emit(ev);
    }

    /// Fires the derivers' and the gossip node's due timers.
    pub fn handle_timeout(&mut self, now: Now) {
        self.core.handle_timeout(now);
        if let Some(g) = &mut self.gossip {
            if g.swarm.poll_timeout().is_some_and(|(t, _)| t <= now.mono) {
                g.swarm.handle_timeout(now);
            }
            if let Some((d, _)) = &mut g.discovery {
                if !g.discovery_started || d.poll_timeout().is_some_and(|(t, _)| t <= now.mono) {
                    g.discovery_started = true;
                    d.handle_timeout(now.mono);
                }
            }
        }
    }

    /// Moves the gossip node's validated blocks to the engine controller and keeps its block
    /// signer in step with the runtime config.
    pub fn relay_gossip(&mut self, now: Now) {
        let Some(g) = &mut self.gossip else { return };
        if let Some(rc) = self.core.derivers.runtime_config.as_ref().and_then(|l| l.current.as_ref()) {
            g.swarm.set_signers(Signers::only(rc.unsafe_block_signer));
        }
        while let Some(env) = g.swarm.poll_block() {
            self.core.emit(Event::ReceivedUnsafePayload(Box::new(env)));
        }
        g.dial_discovered(now);
        let peers = g.swarm.peer_count();
        self.metrics().set_peer_count(peers);
    }

    /// Runs at most `budget` queued events.
    pub fn drain_bounded(&mut self, now: Now, budget: usize) -> Result<usize, Aborted> {
        self.core.drain_bounded(now, budget)
    }

    /// Events queued and not yet run.
    pub fn pending(&self) -> usize {
        self.core.pending()
    }

    /// The I/O the node needs from its shell. Sealed blocks are gossiped here (the gossip node
    /// is part of the node); `Request::Stop` asks the shell to stop.
    pub fn poll_requests(&mut self, now: Now) -> Vec<Request> {
        let reqs = self.core.poll_requests();
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            match r {
                Request::PublishBlock(env) => self.publish_block(*env, now),
                r => out.push(r),
            }
        }
        out
    }

    fn publish_block(&mut self, env: crate::protocol::payload::ExecutionPayloadEnvelope, now: Now) {
        let (number, hash) = (env.execution_payload.block_number, env.execution_payload.block_hash);
        let Some(g) = &mut self.gossip else {
            log::debug!("not gossiping sequenced block number={number} hash={hash}: P2P is disabled");
            return;
        };
        match g.swarm.publish_block(env, now) {
            Ok(()) => log::debug!("gossiped sequenced block number={number} hash={hash}"),
            Err(e) => {
                log::warn!("failed to gossip sequenced block number={number} hash={hash}: {e}");
                self.metrics().record_publishing_error(now);
            }
        }
    }

    /// The event that answers a request no worker can take, so the deriver waiting for it
    /// moves on (`None` for requests nobody waits on).
    pub fn unanswerable(req: Request, why: &str) -> Option<Event> {
        use crate::derive::data::{Arrival, FetchRequest};
        Some(match req {
            Request::Fetch(f) => {
                let msg = match &f {
                    FetchRequest::Blobs { .. } => format!("no L1 beacon API to fetch blobs from ({why})"),
                    _ => why.to_string(),
                };
                Event::ChainDataArrived(Box::new(Arrival::Failed(f, msg)))
            }
            Request::Engine { id, .. } => Event::EngineReplied {
                id,
                result: Err(crate::engine::api::EngineError::Transport(why.to_string())),
            },
            Request::PollL1 { label, .. } => Event::L1PollFailed { label: label.tag(), err: why.to_string() },
            Request::LoadRuntimeConfig { .. } => Event::RuntimeConfigLoadFailed { err: why.to_string() },
            Request::PollFollowSource => Event::FollowSourceStatus(Err(why.to_string())),
            Request::Rpc(crate::rpc::deferred::RpcJob::OutputAtBlock { call, .. }) => {
                Event::RpcJobDone { call, result: Err(why.to_string()) }
            }
            Request::Stop | Request::PublishBlock(_) => return None,
        })
    }

    /// The safe-head store's next write, one at a time (`SafeDbWritten` ends it).
    pub fn poll_safedb_write(&mut self) -> Option<SafeDbWrite> {
        self.core.derivers.safedb.as_mut()?.poll_write()
    }

    /// Responses completed since the last call, for the HTTP connections waiting on them.
    pub fn poll_rpc_responses(&mut self, now: Now) -> Vec<(Ticket, Response)> {
        let done = match &mut self.core.derivers.rpc_calls {
            Some(d) => d.poll_done(),
            None => return Vec::new(),
        };
        if done.is_empty() {
            return Vec::new();
        }
        let status = self.core.status();
        let Some(store) = &mut self.core.derivers.rpc_calls else { return Vec::new() };
        let metrics = &mut self.core.derivers.metrics.get_or_insert_with(MetricsRecorder::default).metrics;
        let mut ready = Vec::new();
        for (call, out) in done {
            let result = out.and_then(|o| methods::deferred_result(&o, &status));
            let (record, body) = store.fill(call, &result, now.mono);
            if let Some(r) = record {
                metrics.record_rpc_call(&r);
            }
            ready.extend(body.map(|(ticket, body)| (ticket, rpc::json_response(body))));
        }
        ready
    }

    /// The earliest deadline of the derivers and the gossip node. With gossip on, the deadlines
    /// in [`COALESCED`] that fall before the next gossipsub heartbeat wait for it (timer slack,
    /// as the kernel gives timers): the loop wakes every 500 ms for the heartbeat anyway, and
    /// each of these would otherwise be one more wake-up of an idle node.
    pub fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        let gossip = self.gossip.as_ref().and_then(|g| g.swarm.poll_timeout());
        let heartbeat = self.gossip.as_ref().and_then(|g| g.swarm.next_heartbeat());
        let slack = |(t, what): (Instant, &'static str)| match heartbeat {
            Some(h) if t < h && COALESCED.contains(&what) => (h, "gossipsub-heartbeat"),
            _ => (t, what),
        };
        let discovery = self.gossip.as_ref().and_then(|g| g.discovery.as_ref()?.0.poll_timeout()).map(slack);
        self.core.poll_timeout_by(slack).into_iter().chain(gossip).chain(discovery).min_by_key(|(t, _)| *t)
    }

    /// The sync status.
    pub fn status(&self) -> SyncStatus {
        self.core.status()
    }

    /// Whether the engine has answered (its heads are known).
    pub fn engine_answered(&self) -> bool {
        self.core.status().unsafe_l2.hash != B256::ZERO
    }

    /// The heads in one line (systemd `STATUS=`).
    pub fn status_line(&self) -> String {
        let s = self.core.status();
        format!(
            "unsafe #{} safe #{} finalized #{} l1 #{}",
            s.unsafe_l2.number, s.safe_l2.number, s.finalized_l2.number, s.head_l1.number
        )
    }

    /// Copies counters kept elsewhere into the metrics before a scrape.
    fn update_metrics(&mut self, now: Now) {
        let process = self.host.process_stats();
        let wakeups = self.host.loop_wakeups();
        let rpc_clients = self.host.rpc_clients();
        let discovery = self.gossip.as_ref().and_then(|g| g.discovery.as_ref());
        let discovery = discovery.map(|(d, _)| (d.table_len(), d.stats, d.sessions.stats));
        let d = &mut self.core.derivers;
        let m = &mut d.metrics.get_or_insert_with(MetricsRecorder::default).metrics;
        m.update_events(self.core.system.metrics(), self.core.system.pending());
        if let Some(p) = process {
            m.set_process(&p);
        }
        m.set_loop_wakeups(&wakeups);
        m.set_rpc_clients(&rpc_clients);
        if let Some((table, stats, sessions)) = discovery {
            m.set_discovery(table, &stats, &sessions);
        }
        m.sync_derive(&d.pipeline.metrics, now);
        let q = &d.engine.unsafe_payloads;
        match q.peek() {
            Some(next) => {
                let p = &next.execution_payload;
                let id = BlockId { hash: p.block_hash, number: p.block_number };
                m.record_unsafe_payloads_buffer(q.len() as u64, q.mem_size(), id, now);
            }
            None => m.set_unsafe_payloads_buffer(0, 0),
        }
        let data = self.core.data.borrow();
        m.set_chain_data(data.receipts_skipped_by_bloom, data.bytes());
    }

    /// Serves a JSON-RPC body; a body with deferred calls waits in the store under a ticket.
    fn serve_json_rpc(&mut self, req: &rpc::Request, now: Now) -> Reply {
        // The table is taken out while its methods run on the node.
        let table = std::mem::take(&mut self.rpc);
        let reply = rpc::serve_rpc_deferred(req, VERSION_WITH_META, |body| {
            match table.handle_body(self, body, now) {
                Body::Ready(b) => Ok(b),
                Body::Pending(mut p) => {
                    self.last_ticket += 1;
                    let ticket = self.last_ticket;
                    let Some(store) = &mut self.core.derivers.rpc_calls else {
                        for r in p.fail_open(&jsonrpc::no_store(), now.mono) {
                            self.metrics().record_rpc_call(&r);
                        }
                        return Ok(Some(p.into_bytes()));
                    };
                    store.hold(ticket, p);
                    Err(ticket)
                }
            }
        });
        self.rpc = table;
        reply
    }
}

impl rpc::Service for Node {
    fn serve(&mut self, listener: Listener, req: &rpc::Request, now: Now) -> Reply {
        match listener {
            Listener::Rpc => self.serve_json_rpc(req, now),
            Listener::Metrics => {
                self.update_metrics(now);
                let text = self.metrics().render();
                Response::new(200, CONTENT_TYPE, text.into_bytes()).into()
            }
            Listener::DevnetL1 | Listener::DevnetEngine | Listener::DevnetSeqEngine => {
                Response::text(404, "404 page not found").into()
            }
        }
    }
}

impl RpcContext for Node {
    fn mono(&self) -> Instant {
        self.core.system.mono()
    }

    fn record_call(&mut self, call: &CallRecord<'_>) {
        self.metrics().record_rpc_call(call);
    }
}

impl NodeApi for Node {
    fn sync_status(&self) -> SyncStatus {
        self.core.status()
    }

    fn rollup_config(&self) -> &RollupConfig {
        &self.core.params.rollup
    }

    fn sequencer(&mut self) -> Option<&mut Sequencer> {
        self.core.derivers.sequencer.as_mut()
    }

    fn safe_heads(&self) -> Option<&SafeHeads> {
        self.core.derivers.safedb.as_ref().map(|d| &d.store)
    }

    fn deferred_calls(&mut self) -> Option<&mut Deferred> {
        self.core.derivers.rpc_calls.as_mut()
    }

    fn gossip(&mut self) -> Option<GossipView<'_>> {
        self.gossip.as_mut().map(|g| GossipView {
            swarm: &mut g.swarm,
            listen: g.listen,
            discovery: g.discovery.as_ref().map(|(d, udp)| (d.sessions.enr().clone(), *udp)),
        })
    }

    fn emit(&mut self, ev: Event) {
        self.core.emit(ev);
    }

    fn request(&mut self, req: Request) {
        self.core.system.emitter().request(req);
    }

    fn persist_sequencer_state(&mut self, started: bool) -> Result<(), String> {
        self.host.persist_sequencer_state(started)
    }

    fn set_log_level(&mut self, level: &str) -> Result<(), String> {
        self.host.set_log_level(level)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::event::{Deriver, Emitter};
    use crate::p2p::blocks::Signers;
    use crate::p2p::identity::Keypair;
    use crate::p2p::noise::test_rng::TestRng;
    use crate::protocol::l1_chain::L1ChainSpec;
    use crate::protocol::primitives::Address;
    use crate::time::test_now;

    struct NoHost;

    impl Host for NoHost {
        fn persist_sequencer_state(&mut self, _: bool) -> Result<(), String> {
            Ok(())
        }
        fn set_log_level(&mut self, _: &str) -> Result<(), String> {
            Ok(())
        }
        fn process_stats(&mut self) -> Option<ProcStats> {
            None
        }
    }

    /// A deriver with one deadline under a given name; records when a timer pass first found it due.
    struct Timer {
        due: Instant,
        what: &'static str,
        fired: std::rc::Rc<std::cell::Cell<Option<Instant>>>,
    }

    impl Deriver for Timer {
        fn on_event(&mut self, _: &Event, _: Now, _: &mut Emitter) -> bool {
            false
        }
        fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
            self.fired.get().is_none().then_some((self.due, self.what))
        }
        fn handle_timeout(&mut self, now: Now, _: &mut Emitter) {
            if now.mono >= self.due && self.fired.get().is_none() {
                self.fired.set(Some(now.mono));
            }
        }
    }

    fn node(gossip: bool, now: Now) -> Node {
        let rollup = Arc::new(crate::config::networks::op_mainnet().rollup);
        let l1 = Arc::new(L1ChainSpec::dev(rollup.l1_chain_id));
        let core = Core::at(Params::new(rollup.clone(), l1, 1), now);
        let mut node = Node::new(core, false, Box::new(NoHost));
        if gossip {
            let cfg = crate::p2p::swarm::tests::config();
            let key = Keypair::from_secret(&[1; 32]).unwrap();
            let rng = Box::new(TestRng::new(1));
            let swarm =
                Swarm::new(key, cfg, rollup, Signers::only(Address::ZERO), None, 1, rng, now).unwrap();
            node.gossip = Some(Gossip::new(swarm, None, None));
        }
        node
    }

    #[test]
    fn polls_wait_for_the_gossipsub_heartbeat_and_exact_deadlines_do_not() {
        let now = test_now();
        let ms = |n| now.mono + Duration::from_millis(n);
        let timer = |due, what| {
            let fired = std::rc::Rc::new(std::cell::Cell::new(None));
            (Timer { due, what, fired: fired.clone() }, fired)
        };
        let mut n = node(true, now);
        let heartbeat = n.gossip.as_ref().unwrap().swarm.next_heartbeat().unwrap();
        assert_eq!(heartbeat, ms(500));
        // A runtime-config reload due before the heartbeat: the loop wakes once, at the
        // heartbeat, and both run on that wake-up.
        let (t, reload) = timer(ms(120), "runtime-config");
        n.core.derivers.extra.push(("reload", Box::new(t)));
        assert_eq!(n.poll_timeout(), Some((heartbeat, "gossipsub-heartbeat")));
        n.handle_timeout(Now::new(heartbeat, now.unix_ms + 500));
        assert_eq!(reload.get(), Some(heartbeat));
        // The heartbeat ran: the next one is 500 ms on.
        assert_eq!(n.poll_timeout(), Some((ms(1000), "gossipsub-heartbeat")));
        // A poll due after the next heartbeat waits for the one after it, never fires early.
        let (t, poll) = timer(ms(1200), "l1-poll");
        n.core.derivers.extra.push(("poll", Box::new(t)));
        n.handle_timeout(Now::new(ms(1000), now.unix_ms + 1000));
        assert_eq!(poll.get(), None);
        assert_eq!(n.poll_timeout(), Some((ms(1500), "gossipsub-heartbeat")));
        n.handle_timeout(Now::new(ms(1500), now.unix_ms + 1500));
        assert_eq!(poll.get(), Some(ms(1500)));
        // A delayed derivation step keeps its time, before the heartbeat, though a lenient
        // deadline comes earlier still.
        let (t, _) = timer(ms(1600), "runtime-config");
        n.core.derivers.extra.push(("reload2", Box::new(t)));
        let (t, step) = timer(ms(1700), "delayed-step");
        n.core.derivers.extra.push(("step", Box::new(t)));
        assert_eq!(n.poll_timeout(), Some((ms(1700), "delayed-step")));
        n.handle_timeout(Now::new(ms(1700), now.unix_ms + 1700));
        assert_eq!(step.get(), Some(ms(1700)));
        // Without gossip there is no heartbeat to wait for: every deadline is exact.
        let mut n = node(false, now);
        let (t, _) = timer(ms(120), "runtime-config");
        n.core.derivers.extra.push(("reload", Box::new(t)));
        assert_eq!(n.poll_timeout(), Some((ms(120), "runtime-config")));
    }
}
