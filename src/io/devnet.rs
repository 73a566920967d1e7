//! The devnet's servers on their own thread and `mio` loop: the L1 simulator (JSON-RPC and the
//! beacon API) and the engine stand-in (Engine API with JWT) on loopback, the chain advancing
//! with the wall clock times a speed factor. The node under test talks to them over HTTP
//! exactly as it talks to real upstreams.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};

use super::clock;
use super::http_server::{HttpServer, DEFAULT_MAX_CONNS};
use crate::devnet::chain::{Devnet, DevnetParams};
use crate::devnet::serve::DevnetService;
use crate::protocol::rollup::RollupConfig;
use crate::rpc::{self, Listener};

const WAKE: Token = Token(0);
const L1_TOKENS: usize = 100;
const ENGINE_TOKENS: usize = 300;
const SEQ_ENGINE_TOKENS: usize = 500;
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
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
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
    pub fn spawn(mut opts: DevnetOptions, jwt: [u8; 32]) -> std::io::Result<DevnetHandle> {
        opts.params.genesis_time = clock::now().unix_ms / 1000;
        let net = Devnet::new(opts.params.clone());
        let rollup = net.rollup_config().clone();
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let limits = rpc::http::Limits::default();
        let l1 =
            HttpServer::bind(&poll, Listener::DevnetL1, opts.l1_addr, L1_TOKENS, DEFAULT_MAX_CONNS, limits)?;
        let engine = HttpServer::bind(
            &poll,
            Listener::DevnetEngine,
            opts.engine_addr,
            ENGINE_TOKENS,
            DEFAULT_MAX_CONNS,
            limits,
        )?;
        let seq_engine = if opts.params.external_sequencer {
            let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
            let listener = Listener::DevnetSeqEngine;
            Some(HttpServer::bind(&poll, listener, loopback, SEQ_ENGINE_TOKENS, DEFAULT_MAX_CONNS, limits)?)
        } else {
            None
        };
        let (l1_url, engine_url) =
            (format!("http://{}", l1.local_addr()), format!("http://{}", engine.local_addr()));
        let seq_engine_url = seq_engine.as_ref().map(|s| format!("http://{}", s.local_addr()));
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("devnet".into())
            .spawn(move || run(poll, [Some(l1), Some(engine), seq_engine], net, jwt, opts, stop2))?;
        Ok(DevnetHandle { l1_url, engine_url, seq_engine_url, rollup, stop, waker, thread: Some(thread) })
    }
}

impl Drop for DevnetHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    mut poll: Poll,
    mut servers: [Option<HttpServer>; 3],
    net: Devnet,
    jwt: [u8; 32],
    opts: DevnetOptions,
    stop: Arc<AtomicBool>,
) {
    let genesis = opts.params.genesis_time;
    // Load the KZG setup before the chain's clock starts (seconds on a small board, minutes
    // under emulation), so blocks are not skipped while it loads.
    let _ = crate::protocol::blob::kzg_commitment(&[0u8; crate::protocol::blob::BLOB_SIZE]);
    let start = clock::mono();
    let mut svc = match DevnetService::new(net, jwt, Box::new(clock::mono)) {
        Ok(s) => s,
        Err(e) => {
            log::error!("devnet: {e}");
            return;
        }
    };
    let mut events = Events::with_capacity(64);
    let chain_secs = |at: Instant| (at.saturating_duration_since(start).as_secs_f64() * opts.speed) as u64;
    while !stop.load(Ordering::Relaxed) {
        let now = clock::now();
        let net = &mut svc.ctx.net;
        if let Err(e) = net.advance_to(genesis + chain_secs(now.mono)) {
            log::error!("devnet chain stopped: {e}");
            return;
        }
        net.l1.prune(KEEP_BLOCKS, KEEP_BLOB_BLOCKS);
        net.engine.prune(KEEP_BLOCKS);
        // Sleep until the next block is due or a server needs attention.
        let (l1_next, l2_next) = net.next_times();
        let due = start + Duration::from_secs_f64((l1_next.min(l2_next) - genesis) as f64 / opts.speed);
        let deadline = servers
            .iter()
            .flatten()
            .filter_map(|s| s.poll_timeout().map(|t| t.0))
            .chain([due])
            .min()
            .unwrap_or(due);
        if let Err(e) = poll.poll(&mut events, Some(deadline.saturating_duration_since(now.mono))) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                log::error!("devnet poll failed: {e}");
                return;
            }
        }
        let now = clock::now();
        for ev in events.iter() {
            let t = ev.token();
            if t != WAKE && !servers.iter_mut().flatten().any(|s| s.on_ready(t, now, &mut svc)) {
                log::debug!("devnet: readiness for unknown token {}", t.0);
            }
        }
        for s in servers.iter_mut().flatten() {
            s.service(now, &mut svc);
        }
    }
}

/// A node on its own thread (the devnet's sequencer beside the verifier in the main thread).
pub struct NodeThread {
    stop: crate::io::workers::Completions<crate::event::Event>,
    thread: Option<JoinHandle<crate::io::driver::Exit>>,
    /// The node's RPC address, once it listens.
    pub rpc: Option<SocketAddr>,
    /// The node's gossip address with its peer id, when P2P runs.
    pub p2p: Option<crate::p2p::multiaddr::Multiaddr>,
}

impl NodeThread {
    /// Builds and runs a node on a new thread (without signal handlers: the caller stops it).
    pub fn spawn(config: crate::config::Config, name: &str) -> Result<NodeThread, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let opts = crate::node::RunOptions { no_signals: true, seed: None };
                let mut node = match crate::node::Node::new(config, opts) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return crate::io::driver::Exit::Critical("init failed".into());
                    }
                };
                let p2p = node.p2p.as_ref().and_then(|p| {
                    p.net
                        .local_addr()
                        .map(|a| crate::p2p::multiaddr::Multiaddr::new(a, Some(p.swarm.local_peer())))
                });
                let _ = tx.send(Ok((node.shell.completions(), node.rpc_addr(), p2p)));
                node.run()
            })
            .map_err(|e| format!("failed to start the {name} thread: {e}"))?;
        match rx.recv() {
            Ok(Ok((stop, rpc, p2p))) => Ok(NodeThread { stop, thread: Some(thread), rpc, p2p }),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("the {name} thread ended during init")),
        }
    }
}

impl Drop for NodeThread {
    fn drop(&mut self) {
        let _ = self.stop.send(crate::event::Event::ShutdownRequested);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
