//! The devnet as servers: the L1 simulator (JSON-RPC and the beacon API), the engine stand-in
//! (Engine API with JWT) and, with an external sequencer, the sequencer's engine, served on
//! loopback from a thread of their own (`io::server_thread`), the chain advancing with the wall
//! clock times a speed factor. The node under test talks to them over HTTP exactly as it talks
//! to real upstreams.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::sync::mpsc::Receiver;

use super::chain::{Devnet, DevnetParams, Sequencing};
use super::feed::FeedStep;
use super::serve::DevnetService;
use crate::io::devnet_feed::FeedThread;
use crate::io::server_thread::{ServerThread, TimedService};
use crate::protocol::rollup::RollupConfig;
use crate::rpc::{self, Listener, Reply, Service};
use crate::time::Now;

/// Blocks (and blobs) kept by the simulated chains.
const KEEP_BLOCKS: u64 = 4096;
const KEEP_BLOB_BLOCKS: u64 = 4096;

/// A running devnet; stops when dropped.
pub struct DevnetHandle {
    pub l1_url: String,
    /// The engine the node under test drives: the stand-in, or the one given.
    pub engine_url: String,
    /// Whether `engine_url` is the devnet's engine stand-in.
    pub engine_is_stand_in: bool,
    /// The sequencer node's engine: the stand-in with `Sequencing::NodeOnStandIn`, the one
    /// given with `Sequencing::NodeElsewhere`.
    pub seq_engine_url: Option<String>,
    pub rollup: RollupConfig,
    /// An L1 block time in wall-clock time (the chain's block time over the speed).
    pub l1_block_wall: std::time::Duration,
    // Dropped in this order: the servers (and with them the feed's receiver), then the feed.
    _servers: ServerThread,
    _feed: Option<FeedThread>,
}

/// Where and how fast the devnet runs.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    pub l1_addr: SocketAddr,
    pub engine_addr: SocketAddr,
    /// The node's engine when not the stand-in (served on `engine_addr` otherwise).
    pub engine_url: Option<String>,
    /// With `Sequencing::NodeElsewhere`: the sequencer's engine, read by the batcher.
    pub seq_engine_url: Option<String>,
    /// Chain seconds per wall-clock second.
    pub speed: f64,
    /// Keep `params.genesis_time` (a devnet from a directory: chain time is the wall clock,
    /// the L1 mining the blocks since genesis at once) instead of starting the chain now.
    pub keep_genesis: bool,
    pub params: DevnetParams,
}

impl DevnetHandle {
    /// Binds the servers and starts the chain: from genesis now, or (`keep_genesis`) at the
    /// wall clock's time.
    pub fn spawn(mut opts: DevnetOptions, jwt: [u8; 32], now: Now) -> std::io::Result<DevnetHandle> {
        if !opts.keep_genesis {
            opts.params.genesis_time = now.unix();
        }
        let chain_start = if opts.keep_genesis { now.unix() } else { opts.params.genesis_time };
        let net = Devnet::new(opts.params.clone()).map_err(std::io::Error::other)?;
        let rollup = net.rollup_config().clone();
        let mut listeners = vec![(Listener::DevnetL1, opts.l1_addr)];
        if opts.engine_url.is_none() {
            listeners.push((Listener::DevnetEngine, opts.engine_addr));
        }
        if opts.params.sequencing == Sequencing::NodeOnStandIn {
            listeners.push((Listener::DevnetSeqEngine, SocketAddr::from(([127, 0, 0, 1], 0))));
        }
        let (feed, steps) = match (&opts.seq_engine_url, opts.params.sequencing) {
            (Some(url), Sequencing::NodeElsewhere) => {
                let (f, rx) = FeedThread::spawn(url, jwt, net.cfg.clone(), opts.params.txs_per_block > 0)?;
                (Some(f), Some(rx))
            }
            (None, Sequencing::NodeElsewhere) => {
                return Err(std::io::Error::other("a sequencer elsewhere needs its engine's URL"))
            }
            _ => (None, None),
        };
        let speed = opts.speed;
        let l1_block_wall = std::time::Duration::from_secs_f64(opts.params.l1_block_time as f64 / speed);
        let servers = ServerThread::spawn("devnet", &listeners, move |_| {
            // Load the KZG setup before the chain's clock starts (seconds on a small board,
            // minutes under emulation), so blocks are not skipped while it loads.
            let _ = crate::protocol::blob::kzg_commitment(&vec![0u8; crate::protocol::blob::BLOB_SIZE]);
            let svc = DevnetService::new(net, jwt, Box::new(crate::io::clock::mono))?;
            Ok(Running { svc, start: None, chain_start, speed, steps })
        })?;
        let url = |kind: Listener| {
            listeners
                .iter()
                .position(|(k, _)| *k == kind)
                .and_then(|i| servers.addrs.get(i))
                .map(|a| format!("http://{a}"))
        };
        Ok(DevnetHandle {
            l1_url: url(Listener::DevnetL1).unwrap_or_default(),
            engine_url: opts.engine_url.clone().or_else(|| url(Listener::DevnetEngine)).unwrap_or_default(),
            engine_is_stand_in: opts.engine_url.is_none(),
            seq_engine_url: opts.seq_engine_url.clone().or_else(|| url(Listener::DevnetSeqEngine)),
            rollup,
            l1_block_wall,
            _servers: servers,
            _feed: feed,
        })
    }
}

/// The devnet's services and its clock: chain time is `chain_start` plus the wall time since
/// `start` (the first tick) times `speed`.
struct Running {
    svc: DevnetService,
    start: Option<Instant>,
    chain_start: u64,
    speed: f64,
    /// Blocks sequenced elsewhere, from the feed.
    steps: Option<Receiver<FeedStep>>,
}

/// Sequenced blocks the batcher holds at most; the feed waits beyond (a bounded channel).
const MAX_UNBATCHED: usize = 8192;

impl TimedService for Running {
    fn tick(&mut self, now: Now) -> Result<Instant, String> {
        let start = *self.start.get_or_insert(now.mono);
        let chain_secs = (now.mono.saturating_duration_since(start).as_secs_f64() * self.speed) as u64;
        let net = &mut self.svc.ctx.net;
        if let Some(rx) = &self.steps {
            while net.unbatched_len() < MAX_UNBATCHED {
                match rx.try_recv() {
                    Ok(step) => net.push_sequenced(step),
                    Err(_) => break,
                }
            }
        }
        net.advance_to(self.chain_start + chain_secs).map_err(|e| format!("devnet chain stopped: {e}"))?;
        net.l1.prune(KEEP_BLOCKS, KEEP_BLOB_BLOCKS);
        net.engine.prune(KEEP_BLOCKS);
        let (l1_next, l2_next) = net.next_times();
        let next = l1_next.min(l2_next).saturating_sub(self.chain_start);
        Ok(start + Duration::from_secs_f64(next as f64 / self.speed))
    }
}

/// An engine stand-in served on its own (`op-lite devnet engine`), as a real engine started
/// from the devnet's genesis.json would be: the same genesis, JWT, Engine API and `eth_`
/// methods; it keeps no time of its own.
pub struct EngineHandle {
    pub url: String,
    _servers: ServerThread,
}

impl EngineHandle {
    pub fn spawn(params: DevnetParams, jwt: [u8; 32], addr: SocketAddr) -> std::io::Result<EngineHandle> {
        let net = Devnet::new(params).map_err(std::io::Error::other)?;
        let servers = ServerThread::spawn("engine", &[(Listener::DevnetEngine, addr)], move |_| {
            Ok(Idle(DevnetService::new(net, jwt, Box::new(crate::io::clock::mono))?))
        })?;
        let url = servers.addrs.first().map(|a| format!("http://{a}")).unwrap_or_default();
        Ok(EngineHandle { url, _servers: servers })
    }
}

/// Services that only answer requests.
struct Idle(DevnetService);

impl TimedService for Idle {
    fn tick(&mut self, now: Now) -> Result<Instant, String> {
        self.0.ctx.net.engine.prune(KEEP_BLOCKS);
        Ok(now.mono + Duration::from_secs(60))
    }
}

impl Service for Idle {
    fn serve(&mut self, listener: Listener, req: &rpc::Request, now: Now) -> Reply {
        self.0.serve(listener, req, now)
    }
}

impl Service for Running {
    fn serve(&mut self, listener: Listener, req: &rpc::Request, now: Now) -> Reply {
        self.svc.serve(listener, req, now)
    }
}
