//! The node shell: the sans-IO `node::Node` with the sockets, threads, clocks and files it
//! needs. `Shell::start` runs op-node's init sequence (tracer, event system, L1, beacon, L2,
//! runtime config, P2P, RPC server, metrics server), each part binding its sockets and spawning
//! its workers; `run` drives the loop (`io::driver`); `stop` shuts parts down in reverse order.
//! A failing init step is reported as `failed to init <part>: <cause>` after stopping whatever
//! had already started.
//!
//! Each loop turn the shell hands the node's requests to the worker threads (a request that
//! finds a queue full waits in a backlog), its safe-head writes to the store's worker, its
//! finished RPC answers to the waiting HTTP connections, and its gossip bytes to the P2P
//! sockets. The node's `Host` effects (the admin-state file, the log level, `/proc`) are carried
//! out here too.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::beacon::{BeaconClient, BeaconConfig};
use super::driver::{self, EventLoop, Exit};
use super::http_server::{HttpServer, ServerLimits};
use super::p2p::P2pNet;
use super::rpc_client::{RateLimiter, RpcStats};
use super::upstream::{EngineClient, EngineJob, FollowClient, L1Client, L1Job};
use super::workers::{Completions, JobQueue, Pool, SubmitError, Worker};
use super::{admin_state, clock, jwt, safedb_file};
use crate::config::Config;
use crate::derive::data::{CacheLimits, FetchRequest};
use crate::driver::l1_poll::L1Poller;
use crate::driver::runtime_config::RuntimeConfigLoader;
use crate::driver::safedb::{SafeDbDeriver, SafeDbWrite, DEFAULT_MAX_ENTRIES};
use crate::engine::api::ENGINE_METHODS;
use crate::event::{Event, Request, MAX_QUEUED_EVENTS};
use crate::metrics::{ProcStats, RpcClientStats};
use crate::node::{Core, Gossip, Host, Node, Params};
use crate::p2p::blocks::Signers;
use crate::p2p::discovery::Discovery;
use crate::p2p::multiaddr::Multiaddr;
use crate::p2p::swarm::{Swarm, SwarmConfig};
use crate::protocol::l1_chain::L1ChainSpec;
use crate::rpc::deferred::{RpcJob, MAX_CALLS};
use crate::rpc::Listener;
use crate::time::Now;
use crate::version::VERSION_WITH_META;

/// A part of the node that failed to start.
#[derive(Debug)]
pub struct InitError {
    pub part: &'static str,
    pub cause: String,
    /// A file the configuration names is unusable (bad content, too large, a foreign store):
    /// a configuration error, which restarting cannot fix.
    pub config: bool,
}

/// Why an init step failed.
#[derive(Debug)]
pub enum StepError {
    /// A file the configuration names is unusable.
    Config(String),
    /// Anything else (a socket, a thread, an upstream).
    Runtime(String),
}

impl From<String> for StepError {
    fn from(s: String) -> StepError {
        StepError::Runtime(s)
    }
}

impl From<&str> for StepError {
    fn from(s: &str) -> StepError {
        StepError::Runtime(s.to_string())
    }
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to init {}: {}", self.part, self.cause)
    }
}

impl std::error::Error for InitError {}

impl InitError {
    /// The process exit code: 2 for a configuration error (not restarted by the systemd unit),
    /// else 1.
    pub fn exit_code(&self) -> u8 {
        if self.config {
            2
        } else {
            1
        }
    }
}

/// Options that are not op-node flags but shape how the node runs (tests, devnet).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Do not install SIGINT/SIGTERM handlers (embedded and test nodes).
    pub no_signals: bool,
    /// Seed for jitter; `None` picks one from the clock.
    pub seed: Option<u64>,
}

/// Jobs queued per worker; past this, requests wait in the shell's backlog.
const WORKER_QUEUE: usize = 64;
/// Timeout of L1 execution RPC calls.
const L1_RPC_TIMEOUT: Duration = Duration::from_secs(20);
/// Timeout of beacon API calls (a response can carry several MB of blobs).
const BEACON_TIMEOUT: Duration = Duration::from_secs(30);
/// Stack of the beacon worker: room for blst's MSM and blob decoding (only the pages used are
/// ever touched).
const BEACON_STACK: usize = 2 << 20;

/// The worker threads for the upstreams, and requests waiting for room in their queues.
#[derive(Default)]
struct Upstream {
    /// Up to `--l1.max-concurrency` threads, started on demand.
    l1: Option<Pool<L1Job>>,
    beacon: Option<Worker<FetchRequest>>,
    engine: Option<Worker<EngineJob>>,
    /// Deferred RPC calls' engine work, on its own connection so that RPC load cannot hold up
    /// derivation's engine calls (nor the reverse).
    rpc: Option<Worker<RpcJob>>,
    safedb: Option<Worker<SafeDbWrite>>,
    /// The follow source's poller (`--l2.follow.source`).
    follow: Option<Worker<()>>,
    backlog: VecDeque<Request>,
}

/// What the init sequence starts, in op-node's order, and stops in reverse: the sockets and
/// workers of each part, and the derivers the node is assembled from once all have started.
struct Parts {
    config: Config,
    ev: EventLoop,
    /// The RPC and metrics servers that are running.
    http: Vec<HttpServer>,
    /// The gossip sockets (unless `--p2p.disable`).
    p2p_net: Option<P2pNet>,
    /// discv5's UDP socket and peer store directory.
    discv5_net: Option<super::discv5::Discv5Net>,
    /// discv5's peer store, written while the node runs and at stop.
    discovery_store: Option<super::discv5::StoreSaver>,
    /// systemd notifications, when run as a `Type=notify` service.
    notify: Option<super::sd_notify::SdNotify>,
    upstream: Upstream,
    /// The upstream clients' request counts (op-node's `rpc_client_*` metrics).
    rpc_stats: RpcStats,
    /// Parts in the order they started.
    started: Vec<&'static str>,
    l1_poller: Option<L1Poller>,
    core: Option<Core>,
    runtime_config: Option<RuntimeConfigLoader>,
    gossip: Option<Gossip>,
}

/// One step of the init sequence.
type InitStep = fn(&mut Parts, u64) -> Result<(), StepError>;

/// The node's effects outside its state.
struct ShellHost {
    admin_state: Option<PathBuf>,
    wakeups: Arc<super::driver::Wakeups>,
    rpc_stats: RpcStats,
}

impl Host for ShellHost {
    fn persist_sequencer_state(&mut self, started: bool) -> Result<(), String> {
        match &self.admin_state {
            Some(path) => admin_state::write(path, started),
            None => Ok(()),
        }
    }

    fn set_log_level(&mut self, level: &str) -> Result<(), String> {
        let filter =
            crate::config::parse_log_level(level).ok_or_else(|| format!("unknown level: {level}"))?;
        super::log::set_level(filter);
        log::info!("log level set to {filter}");
        Ok(())
    }

    fn process_stats(&mut self) -> Option<ProcStats> {
        super::procfs::read_self()
    }

    fn loop_wakeups(&mut self) -> Vec<(&'static str, &'static str, u64)> {
        self.wakeups.snapshot()
    }

    fn rpc_clients(&mut self) -> Vec<RpcClientStats> {
        self.rpc_stats.snapshot()
    }
}

/// A started op-lite node with its sockets and workers.
pub struct Shell {
    pub node: Node,
    parts: Parts,
}

impl Shell {
    /// Runs the init sequence.
    pub fn start(config: Config, opts: RunOptions) -> Result<Shell, InitError> {
        log::info!("initializing rollup node version={VERSION_WITH_META}");
        let seed = opts.seed.unwrap_or_else(clock::seed);
        let ev = EventLoop::new(!opts.no_signals).map_err(|e| InitError {
            part: "the event loop",
            cause: e.to_string(),
            config: false,
        })?;
        let mut parts = Parts {
            config,
            ev,
            http: Vec::new(),
            p2p_net: None,
            discv5_net: None,
            discovery_store: None,
            notify: super::sd_notify::SdNotify::from_env(),
            upstream: Upstream::default(),
            rpc_stats: RpcStats::default(),
            started: Vec::new(),
            l1_poller: None,
            core: None,
            runtime_config: None,
            gossip: None,
        };
        let steps: [(&'static str, InitStep); 9] = [
            ("the tracer", Parts::init_tracer),
            ("the event system", Parts::init_event_system),
            ("L1", Parts::init_l1),
            ("the L1 beacon API", Parts::init_l1_beacon_api),
            ("L2", Parts::init_l2),
            ("the runtime config", Parts::init_runtime_config),
            ("P2P", Parts::init_p2p),
            ("the RPC server", Parts::init_rpc_server),
            ("the metrics server", Parts::init_metrics_server),
        ];
        for (part, init) in steps {
            if let Err(e) = init(&mut parts, seed) {
                parts.stop();
                let (cause, config) = match e {
                    StepError::Config(c) => (c, true),
                    StepError::Runtime(c) => (c, false),
                };
                return Err(InitError { part, cause, config });
            }
            parts.started.push(part);
        }
        match parts.assemble() {
            Ok(node) => Ok(Shell { node, parts }),
            Err(cause) => {
                parts.stop();
                Err(InitError { part: "the RPC server", cause, config: false })
            }
        }
    }
}

impl Parts {
    fn init_tracer(&mut self, _seed: u64) -> Result<(), StepError> {
        // The log tracer writes at trace level; the metrics tracer is always on (event counts
        // per name, served on /metrics).
        log::debug!("event tracing enabled (trace level)");
        Ok(())
    }

    fn init_event_system(&mut self, _seed: u64) -> Result<(), StepError> {
        // The queue is built with the verifier's derivers (L2); the other derivers are made as
        // their parts start, and all of them meet in the node once every part has started.
        log::debug!("event system ready (queue cap {MAX_QUEUED_EVENTS})");
        Ok(())
    }

    fn init_l1(&mut self, _seed: u64) -> Result<(), StepError> {
        let c = &self.config.l1;
        // An https:// upstream needs the system's root certificates: refused now, not at the
        // first call, when they are missing.
        #[cfg(feature = "tls")]
        {
            let urls = std::iter::once(c.rpc.as_str())
                .chain(self.config.l2.engine.as_deref())
                .chain(c.beacon.as_deref())
                .chain(c.beacon_fallbacks.iter().map(String::as_str));
            if let Some(file) = super::tls::check(urls).map_err(StepError::Config)? {
                log::info!("root certificates for https:// endpoints from {file}");
            }
        }
        // One limiter for every L1 thread: the rate limit is global, bursting up to the batch size.
        let limiter = (c.rpc_rate_limit > 0.0).then(|| {
            Arc::new(std::sync::Mutex::new(RateLimiter::new(c.rpc_rate_limit, c.rpc_max_batch_size)))
        });
        let (url, trust, receipts, batch) = (c.rpc.clone(), c.trust_rpc, c.receipts, c.rpc_max_batch_size);
        let stats = self.rpc_stats.clone();
        let make = move || {
            let mut client = L1Client::new(&url, trust, receipts, L1_RPC_TIMEOUT)
                .with_max_batch(batch)
                .with_limiter(limiter.clone())
                .with_stats(stats.clone());
            move |job| client.handle(job)
        };
        let pool = Pool::spawn("l1-rpc", c.max_concurrency, WORKER_QUEUE, self.ev.completions(), make)
            .map_err(|e| format!("failed to start the L1 worker: {e}"))?;
        self.upstream.l1 = Some(pool);
        // Following a source, a verifier derives nothing and polls no L1: unchecked, its L1
        // heads are the source's; checked, the source's claims are checked on demand against
        // the L1 blocks they name (fetched when the cache lacks them), and the newest of those
        // is its L1 head.
        match self.config.l2.follow.as_ref().filter(|_| self.config.sequencer.is_none()) {
            Some(f) if f.skip_l1_check => {
                log::info!("L1 heads are not polled: they come from the follow source, unchecked")
            }
            Some(_) => {
                log::info!("L1 heads are not polled: the follow source's claims are checked on demand")
            }
            None => self.l1_poller = Some(L1Poller::new(c.http_poll_interval, c.epoch_poll_interval)),
        }
        log::info!("L1 RPC {} (trust_rpc={}, rpc_kind={})", c.rpc, c.trust_rpc, c.rpc_kind);
        if c.rpc_rate_limit > 0.0 {
            log::info!(
                "L1 RPC rate limit {} requests/s, bursts of up to {}",
                c.rpc_rate_limit,
                c.rpc_max_batch_size
            );
        }
        Ok(())
    }

    /// op-node's `initL1BeaconAPI`: needed once Ecotone is scheduled.
    fn init_l1_beacon_api(&mut self, _seed: u64) -> Result<(), StepError> {
        if let Some(f) = &self.config.l2.follow {
            log::info!("no L1 beacon API needed: the safe chain comes from {}, not from L1 blobs", f.url);
            return Ok(());
        }
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
            return Err(
                format!("missing L1 Beacon API endpoint (mandatory for Ecotone at t={ecotone})").into()
            );
        };
        let bc = BeaconConfig {
            url: url.clone(),
            fallbacks: c.beacon_fallbacks.clone(),
            header: c.beacon_header.clone(),
            fetch_all_sidecars: c.beacon_fetch_all_sidecars,
            slot_duration_override: c.beacon_slot_duration_override,
            timeout: BEACON_TIMEOUT,
        };
        let mut client = BeaconClient::new(&bc).with_stats(self.rpc_stats.clone());
        super::beacon::startup_check(&client, c.beacon_ignore)?;
        let done = self.ev.completions();
        let worker = Worker::spawn_with_stack("l1-beacon", WORKER_QUEUE, BEACON_STACK, done, move |req| {
            client.handle(req)
        })
        .map_err(|e| format!("failed to start the beacon worker: {e}"))?;
        self.upstream.beacon = Some(worker);
        Ok(())
    }

    /// The engine client and the verifier's derivers (op-node's `initL2`, which builds the driver).
    fn init_l2(&mut self, seed: u64) -> Result<(), StepError> {
        let (Some(url), Some(jwt_path)) = (&self.config.l2.engine, &self.config.l2.jwt_secret) else {
            return Err("--l2 and --l2.jwt-secret are required".into());
        };
        let secret = jwt::load_or_create_secret(jwt_path).map_err(StepError::Config)?;
        let rollup = Arc::new(self.config.rollup.clone());
        let timeout = self.config.l2.engine_rpc_timeout;
        let mut rpc_client =
            EngineClient::new(url, secret, timeout, rollup.clone()).with_stats(self.rpc_stats.clone());
        let rpc_worker =
            Worker::spawn("l2-rpc", MAX_CALLS, self.ev.completions(), move |job| rpc_client.handle_rpc(job))
                .map_err(|e| format!("failed to start the RPC worker: {e}"))?;
        self.upstream.rpc = Some(rpc_worker);
        let mut client =
            EngineClient::new(url, secret, timeout, rollup.clone()).with_stats(self.rpc_stats.clone());
        let (mut announced, mut attempts) = (false, 0u32);
        let worker = Worker::spawn("l2-engine", WORKER_QUEUE, self.ev.completions(), move |job| {
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
        let mut params = Params::new(rollup, Arc::new(l1_spec), seed);
        params.sync_mode = self.config.sync_mode;
        params.verifier_confs = self.config.l1.verifier_confs;
        let window = params.rollup.seq_window_size;
        let entries = crate::config::l1_cache_entries(self.config.l1.cache_size, window);
        params.cache = CacheLimits::default().with_l1_entries(entries);
        let mut core = Core::verifier(params, Box::new(clock::mono));
        core.derivers.l1_poller = self.l1_poller.take();
        if let Some(mut conf) = self.config.sequencer {
            // op-node: the persisted admin state wins over --sequencer.stopped, and the initial
            // state is persisted.
            if let Some(path) = &self.config.admin_state {
                if let Some(started) = admin_state::read(path).map_err(StepError::Config)? {
                    log::info!("sequencer state from {}: started={started}", path.display());
                    conf.active = started;
                }
                admin_state::write(path, conf.active)?;
            }
            if conf.recover {
                log::warn!("sequencer is in recover mode");
            }
            log::info!("sequencer enabled active={} l1_confs={}", conf.active, conf.l1_confs);
            core.add_sequencer(conf, clock::now());
        }
        log::info!("L2 engine {url} (rpc timeout {:?})", self.config.l2.engine_rpc_timeout);
        if let Some(f) = &self.config.l2.follow {
            let mut client = FollowClient::new(&f.url, f.timeout).with_stats(self.rpc_stats.clone());
            let worker =
                Worker::spawn("follow-source", 1, self.ev.completions(), move |()| client.sync_status())
                    .map_err(|e| format!("failed to start the follow source worker: {e}"))?;
            self.upstream.follow = Some(worker);
            core.follow_source(!f.skip_l1_check);
            log::info!(
                "following the safe and finalized heads of {} (every {} s{}); derivation is off",
                f.url,
                2 * self.config.rollup.block_time,
                if f.skip_l1_check { ", its L1 view taken unchecked" } else { ", checked against L1" }
            );
        }
        self.init_safedb(&mut core)?;
        self.core = Some(core);
        Ok(())
    }

    /// op-node opens its safe head database with L2 (`--safedb.path`; disabled if unset).
    fn init_safedb(&mut self, core: &mut Core) -> Result<(), StepError> {
        let Some(path) = self.config.safedb_path.clone() else {
            return Ok(());
        };
        log::info!("safe head database enabled path={}", path.display());
        let genesis = self.config.rollup.genesis.l2;
        let (store, mut file) = safedb_file::open(&path, genesis.hash, DEFAULT_MAX_ENTRIES).map_err(|e| {
            StepError::Config(format!("failed to create safe head database at {}: {e}", path.display()))
        })?;
        let worker = Worker::spawn("safedb", WORKER_QUEUE, self.ev.completions(), move |w| {
            Event::SafeDbWritten { result: file.write(w) }
        })
        .map_err(|e| format!("failed to start the safe head database worker: {e}"))?;
        self.upstream.safedb = Some(worker);
        core.derivers.safedb = Some(SafeDbDeriver::new(store, genesis, core.data.clone()));
        Ok(())
    }

    fn init_runtime_config(&mut self, _seed: u64) -> Result<(), StepError> {
        let interval = self.config.l1.runtime_config_reload_interval;
        self.runtime_config = Some(RuntimeConfigLoader::new(interval, self.config.rollup_halt));
        Ok(())
    }

    /// op-node's P2P setup: identity key, listener, static peers; gossip blocks go to the
    /// engine controller and the sequencer's blocks out to the network.
    fn init_p2p(&mut self, seed: u64) -> Result<(), StepError> {
        if self.config.p2p_disabled {
            log::info!("P2P is disabled");
            return Ok(());
        }
        let c = self.config.p2p.clone();
        let key = super::p2p::load_or_create_key(&c.priv_path).map_err(StepError::Config)?;
        let sequencer_key = match c.sequencer_key {
            Some(k) => Some(
                k256::ecdsa::SigningKey::from_slice(&k)
                    .map_err(|e| StepError::Config(format!("--p2p.sequencer.key: {e}")))?,
            ),
            None => None,
        };
        if self.config.sequencer.is_some() && sequencer_key.is_none() {
            log::warn!("the sequencer has no --p2p.sequencer.key: its blocks will not be gossiped");
        }
        let net = P2pNet::bind(&self.ev.poll, Some(c.listen))
            .map_err(|e| format!("failed to listen for P2P on {}: {e}", c.listen))?;
        let listen = net.local_addr();
        let signer = self.config.unsafe_block_signer.unwrap_or_default();
        let cfg = SwarmConfig {
            listen,
            static_peers: c.static_peers.clone(),
            peers_lo: c.peers_lo,
            peers_hi: c.peers_hi,
            ban_peers: c.ban_peers,
            agent: format!("op-lite/{VERSION_WITH_META}"),
        };
        let rollup = Arc::new(self.config.rollup.clone());
        let rng = super::p2p::noise_rng();
        let swarm = Swarm::new(
            key.clone(),
            cfg,
            rollup,
            Signers::only(signer),
            sequencer_key,
            seed,
            rng,
            clock::now(),
        )?;
        log::info!(
            "started P2P host addr=/ip4/{}/tcp/{}/p2p/{} peer_id={}",
            listen.map_or("0.0.0.0".into(), |a| a.ip().to_string()),
            listen.map_or(0, |a| a.port()),
            swarm.local_peer(),
            swarm.local_peer()
        );
        let discovery = match &c.discovery {
            Some(d) => Some(self.init_discovery(d, &c, &key, listen, seed)?),
            None => {
                log::info!("discv5 peer discovery is off (--p2p.no-discovery)");
                None
            }
        };
        self.gossip = Some(Gossip::new(swarm, listen, discovery));
        self.p2p_net = Some(net);
        Ok(())
    }

    /// discv5 on its UDP socket: our record (`--p2p.advertise.*` or the bound ports, op-node's
    /// `opstack` entry), its sequence number kept across restarts in the peer store, the
    /// bootnodes, and the records stored by the last run.
    fn init_discovery(
        &mut self,
        d: &crate::config::DiscoveryConfig,
        c: &crate::config::P2pConfig,
        key: &crate::p2p::identity::Keypair,
        tcp: Option<SocketAddr>,
        seed: u64,
    ) -> Result<(Discovery, SocketAddr), StepError> {
        use crate::p2p::discovery::{enr, Bootnode, Filter};
        let mut bootnodes = Vec::new();
        for b in &c.discovery_bootnodes {
            match Bootnode::parse(b) {
                Ok(n) => bootnodes.push(n),
                Err(e) if c.default_bootnodes => log::warn!("default bootnode skipped: {e}"),
                Err(e) => return Err(StepError::Config(format!("--p2p.bootnodes: {e}"))),
            }
        }
        let net = super::discv5::Discv5Net::bind(&self.ev.poll, d.listen)
            .map_err(|e| format!("failed to bind discv5 to udp {}: {e}", d.listen))?;
        let udp = net.local_addr();
        let secret = crate::protocol::primitives::from_hex_fixed::<32>(&key.to_hex())
            .map_err(|_| "p2p key".to_string())?;
        let signing = k256::ecdsa::SigningKey::from_slice(&secret).map_err(|e| format!("p2p key: {e}"))?;
        let tcp_port = if d.advertise_tcp != 0 { d.advertise_tcp } else { tcp.map_or(0, |a| a.port()) };
        let udp_port = if d.advertise_udp != 0 { d.advertise_udp } else { udp.port() };
        let mut pairs = vec![
            (
                b"opstack".to_vec(),
                enr::OpStack { chain_id: self.config.rollup.l2_chain_id, version: 0 }.encode(),
            ),
            enr::entry_u64("tcp", tcp_port as u64),
            enr::entry_u64("udp", udp_port as u64),
        ];
        match d.advertise_ip {
            Some(std::net::IpAddr::V4(ip)) => pairs.push(enr::entry_bytes("ip", &ip.octets())),
            Some(std::net::IpAddr::V6(ip)) => pairs.push(enr::entry_bytes("ip6", &ip.octets())),
            None => log::info!(
                "discv5: no --p2p.advertise.ip and --p2p.listen.ip is unspecified: our record gets the IP \
                 other nodes see us at once they agree on it"
            ),
        }
        let (previous, stored) = d.path.as_deref().map(super::discv5::load_store).unwrap_or_default();
        // The same content keeps its sequence number (and signature); a change bumps it.
        let probe = enr::Enr::sign(&signing, previous.as_ref().map_or(1, |p| p.seq), pairs.clone());
        let own = match previous {
            Some(p) if p.node_id == probe.node_id && p.same_entries(&probe) => p,
            Some(p) if p.node_id == probe.node_id => enr::Enr::sign(&signing, p.seq + 1, pairs),
            _ => probe,
        };
        let filter = Filter { chain_id: self.config.rollup.l2_chain_id };
        let mut disc =
            Discovery::new(signing, own.clone(), filter, bootnodes, Box::new(rand_core::OsRng), seed);
        let now = clock::now().mono;
        for r in stored {
            disc.add_stored(r, now);
        }
        log::info!(
            "started discv5 udp={udp} node_id={} seq={} bootnodes={} stored={} enr={}",
            own.node_id,
            own.seq,
            c.discovery_bootnodes.len(),
            disc.table_len(),
            own.to_text()
        );
        self.discv5_net = Some(net);
        self.discovery_store = d.path.clone().map(|dir| super::discv5::StoreSaver::new(dir, now));
        Ok((disc, udp))
    }

    fn init_rpc_server(&mut self, _seed: u64) -> Result<(), StepError> {
        if self.config.rpc_enable_admin {
            log::info!("Admin RPC enabled");
        }
        log::info!("Starting JSON-RPC server");
        let addr = SocketAddr::new(self.config.rpc.addr, self.config.rpc.port);
        let srv = self.bind_http(Listener::Rpc, addr, driver::RPC_TOKENS)?;
        log::info!("Started JSON-RPC server addr={}", srv.local_addr());
        self.http.push(srv);
        Ok(())
    }

    fn init_metrics_server(&mut self, _seed: u64) -> Result<(), StepError> {
        if !self.config.metrics_enabled {
            log::info!("metrics disabled");
            return Ok(());
        }
        let addr = SocketAddr::new(self.config.metrics.addr, self.config.metrics.port);
        let srv = self.bind_http(Listener::Metrics, addr, driver::METRICS_TOKENS)?;
        log::info!("started metrics server addr={}", srv.local_addr());
        self.http.push(srv);
        Ok(())
    }

    /// The node, from the derivers and the gossip node the steps built, with its RPC methods.
    fn assemble(&mut self) -> Result<Node, String> {
        let mut core = self.core.take().ok_or("L2 did not start")?;
        core.derivers.runtime_config = self
            .runtime_config
            .take()
            .map(|r| r.with_cache(core.data.clone(), self.config.l1.verifier_confs));
        let host = Box::new(ShellHost {
            admin_state: self.config.admin_state.clone(),
            wakeups: self.ev.wakeups.clone(),
            rpc_stats: self.rpc_stats.clone(),
        });
        let mut node = Node::new(core, self.config.rpc_enable_admin, host);
        node.gossip = self.gossip.take();
        node.serve_rpc().map_err(|e| e.to_string())?;
        Ok(node)
    }

    fn bind_http(&self, kind: Listener, addr: SocketAddr, base: usize) -> Result<HttpServer, String> {
        HttpServer::bind(&self.ev.poll, kind, addr, base, ServerLimits::for_listener(kind))
            .map_err(|e| format!("failed to bind to address {addr}: {e}"))
    }

    /// Stops started parts in reverse order (op-node `Stop`).
    pub fn stop(&mut self) {
        if let Some(n) = &self.notify {
            n.stopping();
        }
        while let Some(part) = self.started.pop() {
            match part {
                "the RPC server" => self.http.retain(|s| s.listener() != Listener::Rpc),
                "the metrics server" => self.http.retain(|s| s.listener() != Listener::Metrics),
                "P2P" => {
                    drop(self.p2p_net.take());
                    drop(self.discv5_net.take());
                }
                "L2" => {
                    drop(self.upstream.engine.take());
                    drop(self.upstream.rpc.take());
                    drop(self.upstream.safedb.take());
                    drop(self.upstream.follow.take());
                }
                "the L1 beacon API" => drop(self.upstream.beacon.take()),
                "L1" => drop(self.upstream.l1.take()),
                _ => {}
            }
            log::debug!("stopped {part}");
        }
        log::info!("rollup node stopped");
    }
}

impl Shell {
    /// Runs the loop until stopped; then stops every part.
    pub fn run(&mut self) -> Exit {
        let c = &self.parts.config;
        log::info!(
            "starting rollup node network={} l2_chain_id={} sync_mode={}",
            c.network.as_deref().unwrap_or("custom"),
            c.rollup.l2_chain_id,
            c.sync_mode.as_str()
        );
        self.node.start();
        let exit = driver::run(self);
        self.save_discovery(clock::now(), true);
        if exit != Exit::Immediate {
            self.parts.stop();
        }
        exit
    }

    /// The configuration the node was started with.
    pub fn config(&self) -> &Config {
        &self.parts.config
    }

    /// The loop's poll, waker and signal source.
    pub(crate) fn event_loop(&mut self) -> &mut EventLoop {
        &mut self.parts.ev
    }

    /// Hands the node's I/O requests to the workers (requests that find a queue full wait in
    /// the backlog and go first next time), the safe-head store's writes to its worker, and
    /// finished deferred RPC calls to their clients.
    pub(crate) fn dispatch_requests(&mut self, now: Now) {
        self.finish_rpc_calls(now);
        self.persist_safedb();
        let mut reqs = std::mem::take(&mut self.parts.upstream.backlog);
        reqs.extend(self.node.poll_requests(now));
        for req in reqs {
            if req == Request::Stop {
                self.parts.ev.request_stop();
                continue;
            }
            if let Err(failed) = self.submit(req) {
                let (req, e) = *failed;
                match (e, req) {
                    // An RPC client gets its answer now rather than waiting behind others.
                    (SubmitError::Full, Request::Rpc(job)) => {
                        self.unanswerable(Request::Rpc(job), "too many pending requests")
                    }
                    (SubmitError::Full, req) => self.parts.upstream.backlog.push_back(req),
                    (SubmitError::Closed, req) => self.unanswerable(req, "worker stopped"),
                }
            }
        }
    }

    fn submit(&mut self, req: Request) -> Result<(), Box<(Request, SubmitError)>> {
        let up = &self.parts.upstream;
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
            Request::PollL1 { label, txs } => submit_to(&up.l1, L1Job::Poll { label, txs }),
            Request::Rpc(job) => submit_to(&up.rpc, job),
            Request::PollFollowSource => submit_to(&up.follow, ()),
            Request::Stop | Request::PublishBlock(_) => Ok(()),
            Request::LoadRuntimeConfig { at } => {
                let r = &self.parts.config.rollup;
                let job = L1Job::RuntimeConfig {
                    at,
                    confs: self.parts.config.l1.verifier_confs,
                    system_config: r.l1_system_config_address,
                    protocol_versions: r.protocol_versions_address,
                };
                submit_to(&up.l1, job)
            }
        }
    }

    /// Answers a request no worker can take, so whoever waits for it moves on.
    fn unanswerable(&mut self, req: Request, why: &str) {
        if let Some(ev) = Node::unanswerable(req, why) {
            self.node.emit(ev);
        }
    }

    /// Hands the safe-head store's next write to its worker.
    fn persist_safedb(&mut self) {
        let Some(write) = self.node.poll_safedb_write() else { return };
        let submitted = match &self.parts.upstream.safedb {
            Some(w) => w.submit(write).map_err(|e| e.to_string()),
            None => Err("safe head database worker stopped".to_string()),
        };
        if let Err(err) = submitted {
            self.node.emit(Event::SafeDbWritten { result: Err(err) });
        }
    }

    /// Sends finished deferred calls to the connections waiting for them.
    fn finish_rpc_calls(&mut self, now: Now) {
        for (ticket, resp) in self.node.poll_rpc_responses(now) {
            let node = &mut self.node;
            if !self.parts.http.iter_mut().any(|s| s.complete(ticket, resp.clone(), now, node)) {
                log::debug!("RPC client left before its answer was ready");
            }
        }
    }

    /// systemd: the watchdog ping, `READY=1` once RPC listens and the engine has answered
    /// (its heads are known), then `STATUS=` as the heads move.
    pub(crate) fn service_notify(&mut self, now: Now) {
        if self.parts.notify.is_none() {
            return;
        }
        let engine_answered = self.node.engine_answered();
        let rpc_listens = self.rpc_addr().is_some();
        let line = self.node.status_line();
        let Some(n) = self.parts.notify.as_mut() else { return };
        n.watchdog(now.mono);
        if n.is_ready() {
            n.status(&line, now.mono);
        } else if engine_answered && rpc_listens {
            n.ready(&line);
        }
    }

    /// A registered socket became ready.
    pub(crate) fn on_socket_ready(&mut self, token: mio::Token, ev: &mio::event::Event) {
        let now = clock::now();
        if token == super::discv5::DISCV5_TOKEN {
            if let (Some(net), Some((d, _))) =
                (&mut self.parts.discv5_net, self.node.gossip.as_mut().and_then(|g| g.discovery.as_mut()))
            {
                net.on_ready(d, now);
                net.flush(d);
            }
            return;
        }
        if P2pNet::owns(token) {
            if let (Some(net), Some(g)) = (&mut self.parts.p2p_net, &mut self.node.gossip) {
                net.on_ready(token, ev, &mut g.swarm, now);
            }
            return;
        }
        let node = &mut self.node;
        if !self.parts.http.iter_mut().any(|s| s.on_ready(token, now, node)) {
            log::warn!("readiness for unknown token {}", token.0);
        }
    }

    /// Lets the HTTP servers continue busy connections and expire idle ones.
    pub(crate) fn service_http(&mut self, now: Now) {
        for s in &mut self.parts.http {
            s.service(now, &mut self.node);
        }
    }

    /// Starts the gossip node's dials, closes its dropped connections and writes its bytes.
    pub(crate) fn flush_p2p(&mut self, now: Now) {
        if let (Some(net), Some(g)) = (&mut self.parts.p2p_net, &mut self.node.gossip) {
            net.flush(&mut g.swarm, now);
        }
        if let (Some(net), Some((d, _))) =
            (&mut self.parts.discv5_net, self.node.gossip.as_mut().and_then(|g| g.discovery.as_mut()))
        {
            net.flush(d);
        }
    }

    /// Writes discv5's peer store when due and changed, or at stop (`force`): the records let
    /// the next start skip the bootnodes.
    pub(crate) fn save_discovery(&mut self, now: Now, force: bool) {
        let (Some(saver), Some((d, _))) =
            (&mut self.parts.discovery_store, self.node.gossip.as_ref().and_then(|g| g.discovery.as_ref()))
        else {
            return;
        };
        saver.save(d, now, force);
    }

    /// The earliest deadline of the node, the servers and the watchdog.
    pub(crate) fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        let http = self.parts.http.iter().filter_map(|s| s.poll_timeout());
        let watchdog =
            self.parts.notify.as_ref().and_then(|n| n.watchdog_deadline()).map(|t| (t, "watchdog"));
        let store = self.parts.discovery_store.as_ref().map(|s| (s.deadline(), "discv5-store"));
        self.node.poll_timeout().into_iter().chain(http).chain(watchdog).chain(store).min_by_key(|(t, _)| *t)
    }

    /// The address the JSON-RPC server listens on.
    pub fn rpc_addr(&self) -> Option<SocketAddr> {
        self.parts.http.iter().find(|s| s.listener() == Listener::Rpc).map(|s| s.local_addr())
    }

    /// The gossip listener's address with the node's peer id, when P2P runs.
    pub fn p2p_addr(&self) -> Option<Multiaddr> {
        let g = self.node.gossip.as_ref()?;
        g.listen.map(|a| Multiaddr::new(a, Some(g.swarm.local_peer())))
    }

    /// A channel into the loop: another thread stops the node with `Event::ShutdownRequested`.
    pub fn completions(&self) -> Completions<Event> {
        self.parts.ev.completions()
    }

    /// The upstream clients' request counts: `requests("l1")` is the L1 execution requests
    /// made, `requests("l1-beacon")` the beacon API's.
    pub fn rpc_stats(&self) -> RpcStats {
        self.parts.rpc_stats.clone()
    }

    /// Names of the parts that started, in order.
    pub fn started_parts(&self) -> &[&'static str] {
        &self.parts.started
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
    w: &Option<impl JobQueue<J>>,
    job: J,
) -> Result<(), Box<(Request, SubmitError)>> {
    match w {
        Some(w) => w.try_submit(job).map_err(|(j, e)| Box::new((j.into(), e))),
        None => Err(Box::new((job.into(), SubmitError::Closed))),
    }
}

impl From<()> for Request {
    fn from((): ()) -> Request {
        Request::PollFollowSource
    }
}

impl From<L1Job> for Request {
    fn from(j: L1Job) -> Request {
        match j {
            L1Job::Fetch(f) => Request::Fetch(f),
            L1Job::Poll { label, txs } => Request::PollL1 { label, txs },
            L1Job::RuntimeConfig { at, .. } => Request::LoadRuntimeConfig { at },
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

impl From<RpcJob> for Request {
    fn from(j: RpcJob) -> Request {
        Request::Rpc(j)
    }
}

/// A node on its own thread (the devnet's sequencer beside the verifier in the main thread);
/// stopped and joined when dropped.
pub struct NodeThread {
    stop: Completions<Event>,
    thread: Option<std::thread::JoinHandle<Exit>>,
    /// The node's RPC address, once it listens.
    pub rpc: Option<SocketAddr>,
    /// The node's gossip address with its peer id, when P2P runs.
    pub p2p: Option<Multiaddr>,
    /// The node's upstream request counts.
    pub rpc_stats: RpcStats,
}

impl NodeThread {
    /// Starts a node on a new thread (without signal handlers: the owner stops it).
    pub fn spawn(config: Config, name: &str) -> Result<NodeThread, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let opts = RunOptions { no_signals: true, seed: None };
                let mut shell = match Shell::start(config, opts) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return Exit::Critical("init failed".into());
                    }
                };
                let _ =
                    tx.send(Ok((shell.completions(), shell.rpc_addr(), shell.p2p_addr(), shell.rpc_stats())));
                shell.run()
            })
            .map_err(|e| format!("failed to start the {name} thread: {e}"))?;
        match rx.recv() {
            Ok(Ok((stop, rpc, p2p, rpc_stats))) => {
                Ok(NodeThread { stop, thread: Some(thread), rpc, p2p, rpc_stats })
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("the {name} thread ended during init")),
        }
    }
}

impl Drop for NodeThread {
    fn drop(&mut self) {
        let _ = self.stop.send(Event::ShutdownRequested);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
