//! The devnet as servers: the L1 simulator (JSON-RPC and the beacon API), the engine stand-in
//! (Engine API with JWT) and, with an external sequencer, the sequencer's engine, served on
//! loopback from a thread of their own (`io::server_thread`), the chain advancing with the wall
//! clock times a speed factor. The node under test talks to them over HTTP exactly as it talks
//! to real upstreams.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::chain::{Devnet, DevnetParams};
use super::serve::DevnetService;
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
    pub engine_url: String,
    /// The sequencer's engine, with `params.external_sequencer`.
    pub seq_engine_url: Option<String>,
    pub rollup: RollupConfig,
    _servers: ServerThread,
}

/// Where and how fast the devnet runs.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    pub l1_addr: SocketAddr,
    pub engine_addr: SocketAddr,
    /// Chain seconds per wall-clock second.
    pub speed: f64,
    pub params: DevnetParams,
}

impl DevnetHandle {
    /// Binds the servers and starts the chain. The L1 genesis is "now" in chain time.
    pub fn spawn(mut opts: DevnetOptions, jwt: [u8; 32], now: Now) -> std::io::Result<DevnetHandle> {
        opts.params.genesis_time = now.unix();
        let net = Devnet::new(opts.params.clone()).map_err(std::io::Error::other)?;
        let rollup = net.rollup_config().clone();
        let mut listeners =
            vec![(Listener::DevnetL1, opts.l1_addr), (Listener::DevnetEngine, opts.engine_addr)];
        if opts.params.external_sequencer {
            listeners.push((Listener::DevnetSeqEngine, SocketAddr::from(([127, 0, 0, 1], 0))));
        }
        let (genesis, speed) = (opts.params.genesis_time, opts.speed);
        let servers = ServerThread::spawn("devnet", &listeners, move |_| {
            // Load the KZG setup before the chain's clock starts (seconds on a small board,
            // minutes under emulation), so blocks are not skipped while it loads.
            let _ = crate::protocol::blob::kzg_commitment(&[0u8; crate::protocol::blob::BLOB_SIZE]);
            let svc = DevnetService::new(net, jwt, Box::new(crate::io::clock::mono))?;
            Ok(Running { svc, start: None, genesis, speed })
        })?;
        let url = |i: usize| servers.addrs.get(i).map(|a| format!("http://{a}"));
        Ok(DevnetHandle {
            l1_url: url(0).unwrap_or_default(),
            engine_url: url(1).unwrap_or_default(),
            seq_engine_url: url(2),
            rollup,
            _servers: servers,
        })
    }
}

/// The devnet's services and its clock: chain time is `genesis` plus the wall time since
/// `start` (the first tick) times `speed`.
struct Running {
    svc: DevnetService,
    start: Option<Instant>,
    genesis: u64,
    speed: f64,
}

impl TimedService for Running {
    fn tick(&mut self, now: Now) -> Result<Instant, String> {
        let start = *self.start.get_or_insert(now.mono);
        let chain_secs = (now.mono.saturating_duration_since(start).as_secs_f64() * self.speed) as u64;
        let net = &mut self.svc.ctx.net;
        net.advance_to(self.genesis + chain_secs).map_err(|e| format!("devnet chain stopped: {e}"))?;
        net.l1.prune(KEEP_BLOCKS, KEEP_BLOB_BLOCKS);
        net.engine.prune(KEEP_BLOCKS);
        let (l1_next, l2_next) = net.next_times();
        let next = l1_next.min(l2_next).saturating_sub(self.genesis);
        Ok(start + Duration::from_secs_f64(next as f64 / self.speed))
    }
}

impl Service for Running {
    fn serve(&mut self, listener: Listener, req: &rpc::Request, now: Now) -> Reply {
        self.svc.serve(listener, req, now)
    }
}
