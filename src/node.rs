//! The node: op-node's `OpNode`. `Node::new` runs the init sequence (tracer, event system, then
//! each part as its issue lands), `run` drives the loop, `stop` shuts parts down in op-node's
//! order. A failing init step is reported as "failed to init <part>: <cause>" after stopping
//! whatever had already started.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::core::{self, CoreParams};
use crate::derive::data::{Arrival, FetchRequest, SharedData};
use crate::driver::l1_poll::L1Poller;
use crate::driver::metrics::{MetricsRecorder, SharedMetrics, METRICS};
use crate::driver::runtime_config::RuntimeConfigLoader;
use crate::driver::status::StatusTracker;
use crate::event::{Event, Request, System, MAX_QUEUED_EVENTS};
use crate::io::beacon::{BeaconClient, BeaconConfig};
use crate::io::http_server::{HttpServer, DEFAULT_MAX_CONNS};
use crate::io::upstream::{EngineClient, EngineJob, L1Client, L1Job};
use crate::io::workers::{SubmitError, Worker};
use crate::io::{self, driver::Exit, driver::Shell};
use crate::p2p::blocks::Signers;
use crate::p2p::swarm::{Swarm, SwarmConfig};
use crate::protocol::l1_chain::L1ChainSpec;
use crate::protocol::payload::ExecutionPayloadEnvelope;
use crate::rpc::deferred::{Deferred, RpcJob, RPC_CALLS};
use crate::rpc::jsonrpc::Body;
use crate::rpc::{self, Dispatcher, Listener, Reply, Ticket};
use crate::safedb::{SafeDbDeriver, SafeDbWrite, SAFE_DB};
use crate::time::Now;
use crate::version::VERSION_WITH_META;

/// A part of the node that failed to start.
#[derive(Debug)]
pub struct InitError {
    pub part: &'static str,
    pub cause: String,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to init {}: {}", self.part, self.cause)
    }
}

impl std::error::Error for InitError {}

/// Options that are not op-node flags but shape how the node runs (tests, devnet).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Do not install SIGINT/SIGTERM handlers (embedded and test nodes).
    pub no_signals: bool,
    /// Seed for jitter; `None` picks one from the clock.
    pub seed: Option<u64>,
}

/// The gossip node and its sockets.
pub struct P2pPart {
    pub swarm: Swarm,
    pub net: io::p2p::P2pNet,
}

/// One step of the init sequence.
type InitStep = fn(&mut Node, u64) -> Result<(), String>;

/// Jobs queued per worker; past this, requests wait in the node's backlog.
const WORKER_QUEUE: usize = 64;
/// Timeout of L1 execution RPC calls.
const L1_RPC_TIMEOUT: Duration = Duration::from_secs(20);
/// Timeout of beacon API calls (a response can carry several MB of blobs).
const BEACON_TIMEOUT: Duration = Duration::from_secs(30);
/// Stack of the beacon worker: c-kzg keeps whole blobs (128 KiB) on the stack.
const BEACON_STACK: usize = 2 << 20;
/// The Engine API methods op-lite calls, announced with `engine_exchangeCapabilities`.
pub const ENGINE_METHODS: &[&str] = &[
    "engine_forkchoiceUpdatedV1",
    "engine_forkchoiceUpdatedV2",
    "engine_forkchoiceUpdatedV3",
    "engine_newPayloadV2",
    "engine_newPayloadV3",
    "engine_newPayloadV4",
    "engine_getPayloadV2",
    "engine_getPayloadV3",
    "engine_getPayloadV4",
    "engine_getPayloadV5",
];

/// The worker threads for the upstreams, and requests waiting for room in their queues.
#[derive(Default)]
struct Upstream {
    l1: Option<Worker<L1Job>>,
    beacon: Option<Worker<FetchRequest>>,
    engine: Option<Worker<EngineJob>>,
    /// Deferred RPC calls' engine work, on its own connection so that RPC load cannot hold up
    /// derivation's engine calls (nor the reverse).
    rpc: Option<Worker<RpcJob>>,
    safedb: Option<Worker<SafeDbWrite>>,
    backlog: VecDeque<Request>,
}

/// A started op-lite node.
pub struct Node {
    pub config: Config,
    pub system: System,
    pub shell: Shell,
    /// op-node's metrics; the metrics recorder deriver writes them too.
    pub metrics: SharedMetrics,
    /// The JSON-RPC method table; parts register their methods here as they start.
    pub rpc: Dispatcher<Node>,
    /// The chain-data caches the derivers share (once L2 is up).
    pub data: Option<SharedData>,
    /// The gossip node and its sockets (unless `--p2p.disable`).
    pub p2p: Option<P2pPart>,
    upstream: Upstream,
    /// Parts in the order they started; stopped in reverse.
    started: Vec<&'static str>,
    /// The ticket of the last RPC request answered later.
    last_ticket: Ticket,
}

impl Node {
    /// Runs the init sequence.
    pub fn new(config: Config, opts: RunOptions) -> Result<Node, InitError> {
        log::info!("initializing rollup node version={}", crate::version::VERSION_WITH_META);
        let seed = opts.seed.unwrap_or_else(io::clock::seed);
        let shell = Shell::new(!opts.no_signals)
            .map_err(|e| InitError { part: "the event loop", cause: e.to_string() })?;
        let rpc =
            Dispatcher::new(VERSION_WITH_META, config.rpc_enable_admin, rpc::jsonrpc::Limits::default());
        let mut node = Node {
            config,
            system: System::new(MAX_QUEUED_EVENTS, Box::new(io::clock::mono)),
            shell,
            metrics: SharedMetrics::default(),
            rpc,
            data: None,
            p2p: None,
            upstream: Upstream::default(),
            started: Vec::new(),
            last_ticket: 0,
        };
        let steps: [(&'static str, InitStep); 9] = [
            ("the tracer", Node::init_tracer),
            ("the event system", Node::init_event_system),
            ("L1", Node::init_l1),
            ("the L1 beacon API", Node::init_l1_beacon_api),
            ("L2", Node::init_l2),
            ("the runtime config", Node::init_runtime_config),
            ("P2P", Node::init_p2p),
            ("the RPC server", Node::init_rpc_server),
            ("the metrics server", Node::init_metrics_server),
        ];
        for (part, init) in steps {
            if let Err(cause) = init(&mut node, seed) {
                node.stop();
                return Err(InitError { part, cause });
            }
            node.started.push(part);
        }
        node.metrics.borrow_mut().record_info(VERSION_WITH_META);
        node.metrics.borrow_mut().record_up();
        Ok(node)
    }

    fn init_tracer(&mut self, _seed: u64) -> Result<(), String> {
        // The log tracer writes at trace level; the metrics tracer is always on (event counts
        // per name, served on /metrics once the metrics server lands).
        log::debug!("event tracing enabled (trace level)");
        Ok(())
    }

    fn init_event_system(&mut self, _seed: u64) -> Result<(), String> {
        // The system exists from `Node::new` on; its derivers join as their parts start. The
        // metrics recorder only observes, so its place in the fan-out order does not matter.
        log::debug!("event system ready (queue cap {MAX_QUEUED_EVENTS})");
        let recorder = MetricsRecorder::new(self.metrics.clone());
        self.system.register(METRICS, Box::new(recorder)).map_err(|e| e.to_string())
    }

    fn init_l1(&mut self, _seed: u64) -> Result<(), String> {
        let c = &self.config.l1;
        let mut client = L1Client::new(&c.rpc, c.trust_rpc, c.receipts, L1_RPC_TIMEOUT)
            .with_max_batch(c.rpc_max_batch_size);
        let worker =
            Worker::spawn("l1-rpc", WORKER_QUEUE, self.shell.completions(), move |job| client.handle(job))
                .map_err(|e| format!("failed to start the L1 worker: {e}"))?;
        self.upstream.l1 = Some(worker);
        self.system
            .register("l1-poller", Box::new(L1Poller::new(c.http_poll_interval, c.epoch_poll_interval)))
            .map_err(|e| e.to_string())?;
        log::info!("L1 RPC {} (trust_rpc={}, rpc_kind={})", c.rpc, c.trust_rpc, c.rpc_kind);
        Ok(())
    }

    /// op-node's `initL1BeaconAPI`: needed once Ecotone is scheduled.
    fn init_l1_beacon_api(&mut self, _seed: u64) -> Result<(), String> {
        let Some(ecotone) = self.config.rollup.forks.ecotone_time else {
            log::info!("no L1 beacon API needed: Ecotone is not scheduled");
            return Ok(());
        };
        let c = &self.config.l1;
        let Some(url) = &c.beacon else {
            if c.beacon_ignore {
                log::warn!(
                    "This endpoint is required for the Ecotone upgrade, but is missing, and configured to be ignored. \
                     The node may be unable to retrieve EIP-4844 blobs data."
                );
                return Ok(());
            }
            log::error!(
                "The Ecotone upgrade requires a L1 Beacon API endpoint, to retrieve EIP-4844 blobs data. \
                 This can be ignored with the --l1.beacon.ignore option, but the node may be unable to sync from L1 without this endpoint."
            );
            return Err(format!("missing L1 Beacon API endpoint (mandatory for Ecotone at t={ecotone})"));
        };
        let bc = BeaconConfig {
            url: url.clone(),
            fallbacks: c.beacon_fallbacks.clone(),
            header: c.beacon_header.clone(),
            fetch_all_sidecars: c.beacon_fetch_all_sidecars,
            slot_duration_override: c.beacon_slot_duration_override,
            timeout: BEACON_TIMEOUT,
        };
        let mut client = BeaconClient::new(&bc);
        io::beacon::startup_check(&client, c.beacon_ignore)?;
        let done = self.shell.completions();
        let worker = Worker::spawn_with_stack("l1-beacon", WORKER_QUEUE, BEACON_STACK, done, move |req| {
            client.handle(req)
        })
        .map_err(|e| format!("failed to start the beacon worker: {e}"))?;
        self.upstream.beacon = Some(worker);
        Ok(())
    }

    /// The engine client and the verifier's derivers (op-node's `initL2`, which builds the driver).
    fn init_l2(&mut self, seed: u64) -> Result<(), String> {
        let (Some(url), Some(jwt_path)) = (&self.config.l2.engine, &self.config.l2.jwt_secret) else {
            return Err("--l2 and --l2.jwt-secret are required".into());
        };
        let secret = io::jwt::load_or_create_secret(jwt_path)?;
        let rollup = Arc::new(self.config.rollup.clone());
        let timeout = self.config.l2.engine_rpc_timeout;
        let mut rpc_client = EngineClient::new(url, secret, timeout, rollup.clone());
        let rpc_worker =
            Worker::spawn("l2-rpc", rpc::deferred::MAX_CALLS, self.shell.completions(), move |job| {
                rpc_client.handle_rpc(job)
            })
            .map_err(|e| format!("failed to start the RPC worker: {e}"))?;
        self.upstream.rpc = Some(rpc_worker);
        let mut client = EngineClient::new(url, secret, timeout, rollup.clone());
        let (mut announced, mut attempts) = (false, 0u32);
        let worker = Worker::spawn("l2-engine", WORKER_QUEUE, self.shell.completions(), move |job| {
            // engine_exchangeCapabilities before the first call (and again until it works).
            if !announced {
                attempts += 1;
                match client.exchange_capabilities(ENGINE_METHODS) {
                    Ok(theirs) => {
                        announced = true;
                        let missing: Vec<&str> = ENGINE_METHODS
                            .iter()
                            .copied()
                            .filter(|m| !theirs.iter().any(|t| t == m))
                            .collect();
                        if missing.is_empty() {
                            log::info!("engine supports every Engine API method op-lite uses");
                        } else {
                            log::warn!("engine does not announce {}", missing.join(", "));
                        }
                    }
                    Err(e) if attempts == 1 => log::warn!("engine_exchangeCapabilities failed: {e}"),
                    Err(e) => log::debug!("engine_exchangeCapabilities failed: {e}"),
                }
            }
            client.handle(job)
        })
        .map_err(|e| format!("failed to start the engine worker: {e}"))?;
        self.upstream.engine = Some(worker);

        let l1_spec = match (L1ChainSpec::by_chain_id(rollup.l1_chain_id), &self.config.l1.chain_config) {
            (Some(s), _) => s,
            (None, Some(s)) => s.clone(),
            (None, None) => {
                log::warn!(
                    "L1 chain {} is not built in and --rollup.l1-chain-config is not set: assuming Cancun and Prague blob parameters from genesis",
                    rollup.l1_chain_id
                );
                L1ChainSpec::dev(rollup.l1_chain_id)
            }
        };
        let mut params = CoreParams::new(rollup, Arc::new(l1_spec), seed);
        params.sync_mode = self.config.sync_mode;
        params.verifier_confs = self.config.l1.verifier_confs;
        let data = params.chain_data();
        core::register_verifier(&mut self.system, &params, &data).map_err(|e| e.to_string())?;
        if let Some(mut conf) = self.config.sequencer {
            // op-node: the persisted admin state wins over --sequencer.stopped, and the initial
            // state is persisted.
            if let Some(path) = &self.config.admin_state {
                if let Some(started) = io::admin_state::read(path)? {
                    log::info!("sequencer state from {}: started={started}", path.display());
                    conf.active = started;
                }
                io::admin_state::write(path, conf.active)?;
            }
            if conf.recover {
                log::warn!("sequencer is in recover mode");
            }
            log::info!("sequencer enabled active={} l1_confs={}", conf.active, conf.l1_confs);
            core::register_sequencer(&mut self.system, &params, &data, conf, io::clock::now())
                .map_err(|e| e.to_string())?;
        }
        log::info!("L2 engine {url} (rpc timeout {:?})", self.config.l2.engine_rpc_timeout);
        self.init_safedb(&data)?;
        self.data = Some(data);
        Ok(())
    }

    /// op-node opens its safe head database with L2 (`--safedb.path`; disabled if unset).
    fn init_safedb(&mut self, data: &crate::derive::data::SharedData) -> Result<(), String> {
        let Some(path) = self.config.safedb_path.clone() else {
            return Ok(());
        };
        log::info!("safe head database enabled path={}", path.display());
        let genesis = self.config.rollup.genesis.l2;
        let (store, mut file) =
            io::safedb_file::open(&path, genesis.hash, crate::safedb::DEFAULT_MAX_ENTRIES)
                .map_err(|e| format!("failed to create safe head database at {}: {e}", path.display()))?;
        let worker = Worker::spawn("safedb", WORKER_QUEUE, self.shell.completions(), move |w| {
            Event::SafeDbWritten { result: file.write(w) }
        })
        .map_err(|e| format!("failed to start the safe head database worker: {e}"))?;
        self.upstream.safedb = Some(worker);
        let deriver = SafeDbDeriver::new(store, genesis, data.clone());
        self.system.register(SAFE_DB, Box::new(deriver)).map_err(|e| e.to_string())
    }

    /// op-node's P2P setup: identity key, listener, static peers; gossip blocks go to the
    /// engine controller and the sequencer's blocks out to the network.
    fn init_p2p(&mut self, seed: u64) -> Result<(), String> {
        if self.config.p2p_disabled {
            log::info!("P2P is disabled");
            return Ok(());
        }
        let c = self.config.p2p.clone();
        let key = io::p2p::load_or_create_key(&c.priv_path)?;
        if c.enr_bootnodes > 0 {
            log::warn!(
                "ignoring {} ENR bootnodes: discv5 peer discovery is not implemented; give peers as multiaddrs in --p2p.static",
                c.enr_bootnodes
            );
        }
        let sequencer_key = match c.sequencer_key {
            Some(k) => Some(
                k256::ecdsa::SigningKey::from_slice(&k).map_err(|e| format!("--p2p.sequencer.key: {e}"))?,
            ),
            None => None,
        };
        if self.config.sequencer.is_some() && sequencer_key.is_none() {
            log::warn!("the sequencer has no --p2p.sequencer.key: its blocks will not be gossiped");
        }
        let net = io::p2p::P2pNet::bind(&self.shell.poll, Some(c.listen))
            .map_err(|e| format!("failed to listen for P2P on {}: {e}", c.listen))?;
        let listen = net.local_addr();
        let signer = self.config.unsafe_block_signer.unwrap_or_default();
        let cfg = SwarmConfig {
            listen,
            static_peers: c.static_peers,
            peers_lo: c.peers_lo,
            peers_hi: c.peers_hi,
            ban_peers: c.ban_peers,
            agent: format!("op-lite/{}", crate::version::VERSION_WITH_META),
        };
        let rollup = Arc::new(self.config.rollup.clone());
        let rng = io::p2p::noise_rng();
        let swarm =
            Swarm::new(key, cfg, rollup, Signers::only(signer), sequencer_key, seed, rng, io::clock::now())?;
        log::info!(
            "started P2P host addr=/ip4/{}/tcp/{}/p2p/{} peer_id={}",
            listen.map_or("0.0.0.0".into(), |a| a.ip().to_string()),
            listen.map_or(0, |a| a.port()),
            swarm.local_peer(),
            swarm.local_peer()
        );
        self.p2p = Some(P2pPart { swarm, net });
        Ok(())
    }

    /// Gossip work each loop turn: due timers, the signer from the runtime config, socket
    /// writes, and validated blocks into the engine controller's queue.
    pub(crate) fn service_p2p(&mut self, now: Now) {
        let Some(p) = &mut self.p2p else { return };
        if p.swarm.poll_timeout().is_some_and(|(t, _)| t <= now.mono) {
            p.swarm.handle_timeout(now);
        }
        if let Some(rc) =
            self.system.get::<RuntimeConfigLoader>("runtime-config").and_then(|l| l.current.as_ref())
        {
            p.swarm.set_signers(Signers::only(rc.unsafe_block_signer));
        }
        p.net.flush(&mut p.swarm, now);
        let blocks: Vec<_> = std::iter::from_fn(|| p.swarm.poll_block()).collect();
        let peers = p.swarm.peer_count();
        self.metrics.borrow_mut().set_peer_count(peers);
        for env in blocks {
            self.system.emit(Event::ReceivedUnsafePayload(Box::new(env)));
        }
    }

    /// The gossip node's next deadline.
    pub(crate) fn p2p_timeout(&self) -> Option<(std::time::Instant, &'static str)> {
        self.p2p.as_ref().and_then(|p| p.swarm.poll_timeout())
    }

    fn init_runtime_config(&mut self, _seed: u64) -> Result<(), String> {
        let loader =
            RuntimeConfigLoader::new(self.config.l1.runtime_config_reload_interval, self.config.rollup_halt);
        self.system.register("runtime-config", Box::new(loader)).map_err(|e| e.to_string())
    }

    fn init_rpc_server(&mut self, _seed: u64) -> Result<(), String> {
        rpc::methods::register_static(&mut self.rpc).map_err(|e| e.to_string())?;
        rpc::methods::register_node(&mut self.rpc).map_err(|e| e.to_string())?;
        if self.p2p.is_some() {
            rpc::p2p::register(&mut self.rpc).map_err(|e| e.to_string())?;
        }
        let calls = Deferred::new(rpc::deferred::MAX_CALLS, rpc::deferred::CALL_TIMEOUT);
        self.system.register(RPC_CALLS, Box::new(calls)).map_err(|e| e.to_string())?;
        if self.config.rpc_enable_admin {
            log::info!("Admin RPC enabled");
        }
        log::info!("Starting JSON-RPC server");
        let addr = SocketAddr::new(self.config.rpc.addr, self.config.rpc.port);
        let srv = self.bind_http(Listener::Rpc, addr, io::driver::RPC_TOKENS)?;
        log::info!("Started JSON-RPC server addr={}", srv.local_addr());
        self.shell.http.push(srv);
        Ok(())
    }

    fn init_metrics_server(&mut self, _seed: u64) -> Result<(), String> {
        if !self.config.metrics_enabled {
            log::info!("metrics disabled");
            return Ok(());
        }
        let addr = SocketAddr::new(self.config.metrics.addr, self.config.metrics.port);
        let srv = self.bind_http(Listener::Metrics, addr, io::driver::METRICS_TOKENS)?;
        log::info!("started metrics server addr={}", srv.local_addr());
        self.shell.http.push(srv);
        Ok(())
    }

    fn bind_http(&self, kind: Listener, addr: SocketAddr, base: usize) -> Result<HttpServer, String> {
        HttpServer::bind(&self.shell.poll, kind, addr, base, DEFAULT_MAX_CONNS, rpc::http::Limits::default())
            .map_err(|e| format!("failed to bind to address {addr}: {e}"))
    }

    /// Starts driving: the first step request, as op-node's event loop does on start.
    pub fn start(&mut self) {
        log::info!(
            "starting rollup node network={} l2_chain_id={} sync_mode={}",
            self.config.network.as_deref().unwrap_or("custom"),
            self.config.rollup.l2_chain_id,
            self.config.sync_mode.as_str()
        );
        self.system.emit(Event::StepReq { reset_backoff: false });
    }

    /// Runs the loop until stopped; then stops every part.
    pub fn run(&mut self) -> Exit {
        self.start();
        let exit = io::driver::run(self);
        if exit != Exit::Immediate {
            self.stop();
        }
        exit
    }

    /// Stops started parts in reverse order (op-node `Stop`).
    pub fn stop(&mut self) {
        if let Some(n) = &self.shell.notify {
            n.stopping();
        }
        while let Some(part) = self.started.pop() {
            match part {
                "the RPC server" => self.shell.http.retain(|s| s.listener() != Listener::Rpc),
                "the metrics server" => self.shell.http.retain(|s| s.listener() != Listener::Metrics),
                "L2" => {
                    drop(self.upstream.engine.take());
                    drop(self.upstream.rpc.take());
                    drop(self.upstream.safedb.take());
                }
                "the L1 beacon API" => drop(self.upstream.beacon.take()),
                "L1" => drop(self.upstream.l1.take()),
                _ => {}
            }
            log::debug!("stopped {part}");
        }
        log::info!("rollup node stopped");
    }

    /// Hands the core's I/O requests to the workers (requests that find a queue full wait in
    /// the backlog and go first next time), the safe-head store's writes to its worker, and
    /// finished deferred RPC calls to their clients.
    pub(crate) fn dispatch_requests(&mut self) {
        self.finish_rpc_calls();
        self.persist_safedb();
        let mut reqs = std::mem::take(&mut self.upstream.backlog);
        reqs.extend(self.system.take_requests());
        if let Some(d) = &self.data {
            reqs.extend(d.borrow_mut().take_requests().into_iter().map(Request::Fetch));
        }
        for req in reqs {
            if req == Request::Stop {
                self.shell.request_stop();
                continue;
            }
            if let Request::PublishBlock(env) = req {
                self.publish_block(*env);
                continue;
            }
            if let Err(failed) = self.submit(req) {
                let (req, e) = *failed;
                match e {
                    SubmitError::Full => self.upstream.backlog.push_back(req),
                    SubmitError::Closed => self.unanswerable(req, "worker stopped"),
                }
            }
        }
    }

    fn submit(&mut self, req: Request) -> Result<(), Box<(Request, SubmitError)>> {
        let up = &self.upstream;
        match req {
            Request::Fetch(f @ FetchRequest::Blobs { .. }) => match &up.beacon {
                Some(w) => w.try_submit(f).map_err(|(f, e)| Box::new((Request::Fetch(f), e))),
                None => Err(Box::new((Request::Fetch(f), SubmitError::Closed))),
            },
            Request::Fetch(
                f @ (FetchRequest::L2BlockByNumber(_)
                | FetchRequest::L2BlockByHash(_)
                | FetchRequest::L2BlockByLabel(_)),
            ) => submit_to(&up.engine, EngineJob::Fetch(f)),
            Request::Engine { id, call } => submit_to(&up.engine, EngineJob::Call { id, call }),
            Request::Fetch(f) => submit_to(&up.l1, L1Job::Fetch(f)),
            Request::PollL1(label) => submit_to(&up.l1, L1Job::Poll(label)),
            Request::Stop | Request::PublishBlock(_) => Ok(()),
            Request::LoadRuntimeConfig => {
                let r = &self.config.rollup;
                let job = L1Job::RuntimeConfig {
                    confs: self.config.l1.verifier_confs,
                    system_config: r.l1_system_config_address,
                    protocol_versions: r.protocol_versions_address,
                };
                submit_to(&up.l1, job)
            }
        }
    }

    /// Gossips a block the sequencer sealed (signed with `--p2p.sequencer.key`).
    fn publish_block(&mut self, env: ExecutionPayloadEnvelope) {
        let (number, hash) = (env.execution_payload.block_number, env.execution_payload.block_hash);
        let Some(p) = &mut self.p2p else {
            log::debug!("not gossiping sequenced block number={number} hash={hash}: P2P is disabled");
            return;
        };
        let now = io::clock::now();
        match p.swarm.publish_block(env, now) {
            Ok(()) => log::debug!("gossiped sequenced block number={number} hash={hash}"),
            Err(e) => {
                log::warn!("failed to gossip sequenced block number={number} hash={hash}: {e}");
                self.metrics.borrow_mut().record_publishing_error(now);
            }
        }
        if let Some(p) = &mut self.p2p {
            p.net.flush(&mut p.swarm, now);
        }
    }

    /// Answers a request no worker can take, so the deriver waiting for it moves on.
    fn unanswerable(&mut self, req: Request, why: &str) {
        let ev = match req {
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
            Request::PollL1(label) => Event::L1PollFailed { label: label.tag(), err: why.to_string() },
            Request::LoadRuntimeConfig => Event::RuntimeConfigLoadFailed { err: why.to_string() },
            Request::Stop | Request::PublishBlock(_) => return,
        };
        self.system.emit(ev);
    }

    /// The heads in one line (systemd `STATUS=`).
    pub fn status_line(&self) -> Option<String> {
        let s = &self.system.get::<StatusTracker>(core::STATUS)?.status;
        Some(format!(
            "unsafe #{} safe #{} finalized #{} l1 #{}",
            s.unsafe_l2.number, s.safe_l2.number, s.finalized_l2.number, s.head_l1.number
        ))
    }

    /// systemd: the watchdog ping, `READY=1` once RPC listens and the engine has answered
    /// (its heads are known), then `STATUS=` as the heads move.
    pub(crate) fn service_notify(&mut self, now: Now) {
        if self.shell.notify.is_none() {
            return;
        }
        let engine_answered = self
            .system
            .get::<StatusTracker>(core::STATUS)
            .is_some_and(|t| t.status.unsafe_l2.hash != crate::protocol::primitives::B256::ZERO);
        let rpc_listens = self.rpc_addr().is_some();
        let line = self.status_line().unwrap_or_default();
        let Some(n) = self.shell.notify.as_mut() else { return };
        n.watchdog(now.mono);
        if n.is_ready() {
            n.status(&line, now.mono);
        } else if engine_answered && rpc_listens {
            n.ready(&line);
        }
    }

    /// A registered socket became ready.
    pub(crate) fn on_socket_ready(&mut self, token: mio::Token, ev: &mio::event::Event) {
        if io::p2p::P2pNet::owns(token) {
            let now = io::clock::now();
            if let Some(p) = &mut self.p2p {
                p.net.on_ready(token, ev, &mut p.swarm, now);
            }
            return;
        }
        // The servers are taken out while they run so that the node can answer their requests.
        let mut servers = std::mem::take(&mut self.shell.http);
        let now = io::clock::now();
        let handled = servers.iter_mut().any(|s| s.on_ready(token, now, self));
        self.shell.http = servers;
        if !handled {
            log::warn!("readiness for unknown token {}", token.0);
        }
    }

    /// Lets the HTTP servers continue busy connections and expire idle ones.
    pub(crate) fn service_http(&mut self, now: Now) {
        let mut servers = std::mem::take(&mut self.shell.http);
        for s in &mut servers {
            s.service(now, self);
        }
        self.shell.http = servers;
    }

    /// Hands a deferred call's job to the RPC worker.
    pub(crate) fn submit_rpc_job(&mut self, job: RpcJob) -> Result<(), rpc::RpcError> {
        let Some(w) = &self.upstream.rpc else {
            return Err(rpc::RpcError::server("the L2 engine client is not running"));
        };
        w.submit(job).map_err(|e| match e {
            SubmitError::Full => rpc::RpcError::server("too many pending requests"),
            SubmitError::Closed => rpc::RpcError::server("the L2 engine client stopped"),
        })
    }

    /// Hands the safe-head store's next write to its worker.
    fn persist_safedb(&mut self) {
        let Some(db) = self.system.get_mut::<SafeDbDeriver>(SAFE_DB) else { return };
        let Some(write) = db.poll_write() else { return };
        let submitted = match &self.upstream.safedb {
            Some(w) => w.submit(write).map_err(|e| e.to_string()),
            None => Err("safe head database worker stopped".to_string()),
        };
        if let Err(err) = submitted {
            self.system.emit(Event::SafeDbWritten { result: Err(err) });
        }
    }

    /// Fills finished deferred calls into their response bodies and sends completed bodies.
    fn finish_rpc_calls(&mut self) {
        let done = match self.system.get_mut::<Deferred>(RPC_CALLS) {
            Some(d) => d.take_done(),
            None => return,
        };
        if done.is_empty() {
            return;
        }
        let status = rpc::methods::status(self);
        let now = io::clock::now();
        let Some(store) = self.system.get_mut::<Deferred>(RPC_CALLS) else { return };
        let mut ready = Vec::new();
        for (call, out) in done {
            let result = out.and_then(|o| rpc::methods::deferred_result(&o, &status));
            let (record, body) = store.fill(call, &result, now.mono);
            if let Some(r) = record {
                self.metrics.borrow_mut().record_rpc_call(&r);
            }
            ready.extend(body);
        }
        let mut servers = std::mem::take(&mut self.shell.http);
        for (ticket, body) in ready {
            let resp = rpc::json_response(body);
            if !servers.iter_mut().any(|s| s.complete(ticket, resp.clone(), now, self)) {
                log::debug!("RPC client left before its answer was ready");
            }
        }
        self.shell.http = servers;
    }

    /// Copies counters kept elsewhere into the metrics before a scrape.
    fn update_metrics(&mut self, now: crate::time::Now) {
        let mut m = self.metrics.borrow_mut();
        m.update_events(self.system.metrics(), self.system.pending());
        if let Some(p) = io::procfs::read_self() {
            m.set_process(&p);
        }
        if let Some(d) = self.system.get::<crate::derive::deriver::PipelineDeriver>(core::PIPELINE) {
            m.sync_derive(&d.metrics, now);
        }
        if let Some(e) = self.system.get::<crate::engine::controller::EngineController>(core::ENGINE) {
            let q = &e.unsafe_payloads;
            match q.peek() {
                Some(next) => {
                    let p = &next.execution_payload;
                    let id =
                        crate::protocol::block_ref::BlockId { hash: p.block_hash, number: p.block_number };
                    m.record_unsafe_payloads_buffer(q.len() as u64, q.mem_size(), id, now);
                }
                None => m.set_unsafe_payloads_buffer(0, 0),
            }
        }
        if let Some(d) = &self.data {
            let d = d.borrow();
            m.set_chain_data(d.receipts_skipped_by_bloom, d.bytes());
        }
    }

    /// The address the JSON-RPC server listens on.
    pub fn rpc_addr(&self) -> Option<SocketAddr> {
        self.shell.http.iter().find(|s| s.listener() == Listener::Rpc).map(|s| s.local_addr())
    }

    /// Names of the parts that started, in order.
    pub fn started_parts(&self) -> &[&'static str] {
        &self.started
    }
}

/// The process exit code for how the loop ended: 0 clean stop, 1 critical error, 3 halted on
/// a required protocol version (`--rollup.halt`; distinct so a service manager need not restart
/// it), 130 forced exit on a second signal.
pub fn exit_code(exit: &Exit) -> u8 {
    match exit {
        Exit::Stopped => 0,
        Exit::Immediate => 130,
        Exit::Critical(e) if e == crate::driver::runtime_config::HALT_MESSAGE => {
            log::error!("node halted: {e}");
            3
        }
        Exit::Critical(e) => {
            log::error!("node stopped after a critical error: {e}");
            1
        }
    }
}

/// Submits a job; one that cannot be queued comes back as the request it was made from.
fn submit_to<J: Send + Into<Request> + 'static>(
    w: &Option<Worker<J>>,
    job: J,
) -> Result<(), Box<(Request, SubmitError)>> {
    match w {
        Some(w) => w.try_submit(job).map_err(|(j, e)| Box::new((j.into(), e))),
        None => Err(Box::new((job.into(), SubmitError::Closed))),
    }
}

impl From<L1Job> for Request {
    fn from(j: L1Job) -> Request {
        match j {
            L1Job::Fetch(f) => Request::Fetch(f),
            L1Job::Poll(label) => Request::PollL1(label),
            L1Job::RuntimeConfig { .. } => Request::LoadRuntimeConfig,
        }
    }
}

impl From<EngineJob> for Request {
    fn from(j: EngineJob) -> Request {
        match j {
            EngineJob::Fetch(f) => Request::Fetch(f),
            EngineJob::Call { id, call } => Request::Engine { id, call },
        }
    }
}

impl rpc::Service for Node {
    fn serve(&mut self, listener: Listener, req: &rpc::Request, now: Now) -> Reply {
        match listener {
            Listener::Rpc => {
                // The table is taken out while its methods run on the node.
                let table = std::mem::take(&mut self.rpc);
                let reply = rpc::serve_rpc_deferred(req, VERSION_WITH_META, |body| {
                    match table.handle_body(self, body, now) {
                        Body::Ready(b) => Ok(b),
                        Body::Pending(p) => {
                            self.last_ticket += 1;
                            let ticket = self.last_ticket;
                            let Some(store) = self.system.get_mut::<Deferred>(RPC_CALLS) else {
                                let mut p = p;
                                for r in p.fail_open(&rpc::jsonrpc::no_store(), now.mono) {
                                    self.metrics.borrow_mut().record_rpc_call(&r);
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
            Listener::Metrics => {
                self.update_metrics(now);
                rpc::serve_metrics(self.metrics.borrow().render()).into()
            }
            Listener::DevnetL1 | Listener::DevnetEngine | Listener::DevnetSeqEngine => {
                rpc::Response::text(404, "404 page not found").into()
            }
        }
    }
}

impl rpc::RpcContext for Node {
    fn mono(&self) -> std::time::Instant {
        io::clock::mono()
    }

    fn record_call(&mut self, call: &rpc::CallRecord<'_>) {
        self.metrics.borrow_mut().record_rpc_call(call);
    }
}
