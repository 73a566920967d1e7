//! The node: op-node's `OpNode`. `Node::new` runs the init sequence (tracer, event system, then
//! each part as its issue lands), `run` drives the loop, `stop` shuts parts down in op-node's
//! order. A failing init step is reported as "failed to init <part>: <cause>" after stopping
//! whatever had already started.

use std::fmt;
use std::net::SocketAddr;

use crate::config::Config;
use crate::driver::sched::{Backoff, StepScheduler};
use crate::driver::sync::SyncDeriver;
use crate::event::{Event, Request, System, MAX_QUEUED_EVENTS};
use crate::io::http_server::{HttpServer, DEFAULT_MAX_CONNS};
use crate::io::{self, driver::Exit, driver::Shell};
use crate::metrics::Metrics;
use crate::rpc::{self, Dispatcher, Listener};
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

/// One step of the init sequence.
type InitStep = fn(&mut Node, u64) -> Result<(), String>;

/// A started op-lite node.
pub struct Node {
    pub config: Config,
    pub system: System,
    pub shell: Shell,
    pub metrics: Metrics,
    /// The JSON-RPC method table; parts register their methods here as they start.
    pub rpc: Dispatcher<Node>,
    /// Parts in the order they started; stopped in reverse.
    started: Vec<&'static str>,
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
            metrics: Metrics::new(),
            rpc,
            started: Vec::new(),
        };
        let steps: [(&'static str, InitStep); 4] = [
            ("the tracer", Node::init_tracer),
            ("the event system", Node::init_event_system),
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
        node.metrics.record_info(VERSION_WITH_META);
        node.metrics.record_up();
        Ok(node)
    }

    fn init_tracer(&mut self, _seed: u64) -> Result<(), String> {
        // The log tracer writes at trace level; the metrics tracer is always on (event counts
        // per name, served on /metrics once the metrics server lands).
        log::debug!("event tracing enabled (trace level)");
        Ok(())
    }

    fn init_event_system(&mut self, seed: u64) -> Result<(), String> {
        let s = &mut self.system;
        s.register("step-scheduler", Box::new(StepScheduler::new(Backoff::exponential(seed))))
            .map_err(|e| e.to_string())?;
        s.register("sync", Box::new(SyncDeriver::new())).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn init_rpc_server(&mut self, _seed: u64) -> Result<(), String> {
        rpc::methods::register_static(&mut self.rpc).map_err(|e| e.to_string())?;
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
        while let Some(part) = self.started.pop() {
            let server = match part {
                "the RPC server" => Some(Listener::Rpc),
                "the metrics server" => Some(Listener::Metrics),
                _ => None,
            };
            if let Some(kind) = server {
                self.shell.http.retain(|s| s.listener() != kind);
            }
            log::debug!("stopped {part}");
        }
        log::info!("rollup node stopped");
    }

    /// Hands the core's I/O requests to the workers.
    pub(crate) fn dispatch_requests(&mut self) {
        for req in self.system.take_requests() {
            match req {
                Request::Fetch(f) => log::debug!("no L1/L2 client configured for request {f:?}"),
                Request::Engine { id, call } => {
                    log::debug!("no engine client configured for request {id} {}", call.method())
                }
                Request::PollL1(label) => log::debug!("no L1 client configured to poll {label:?}"),
            }
        }
    }

    /// A registered socket became ready.
    pub(crate) fn on_socket_ready(&mut self, token: mio::Token, _ev: &mio::event::Event) {
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

    /// Names of the parts that started, in order.
    pub fn started_parts(&self) -> &[&'static str] {
        &self.started
    }
}

impl rpc::Service for Node {
    fn serve(&mut self, listener: Listener, req: &rpc::Request, now: Now) -> rpc::Response {
        match listener {
            Listener::Rpc => {
                // The table is taken out while its methods run on the node.
                let table = std::mem::take(&mut self.rpc);
                let resp = rpc::serve_rpc(req, VERSION_WITH_META, |body| table.handle(self, body, now));
                self.rpc = table;
                resp
            }
            Listener::Metrics => {
                self.metrics.update_events(self.system.metrics(), self.system.pending());
                if let Some(p) = io::procfs::read_self() {
                    self.metrics.set_process(&p);
                }
                rpc::serve_metrics(self.metrics.render())
            }
        }
    }
}

impl rpc::RpcContext for Node {
    fn mono(&self) -> std::time::Instant {
        io::clock::mono()
    }

    fn record_call(&mut self, call: &rpc::CallRecord<'_>) {
        self.metrics.record_rpc_call(call);
    }
}
