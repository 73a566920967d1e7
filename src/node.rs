//! The node: op-node's `OpNode`. `Node::new` runs the init sequence (tracer, event system, then
//! each part as its issue lands), `run` drives the loop, `stop` shuts parts down in op-node's
//! order. A failing init step is reported as "failed to init <part>: <cause>" after stopping
//! whatever had already started.

use std::fmt;

use crate::config::Config;
use crate::driver::sched::{Backoff, StepScheduler};
use crate::driver::sync::SyncDeriver;
use crate::event::{Event, Request, System, MAX_QUEUED_EVENTS};
use crate::io::{self, driver::Exit, driver::Shell};

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
        let mut node = Node {
            config,
            system: System::new(MAX_QUEUED_EVENTS, Box::new(io::clock::mono)),
            shell,
            started: Vec::new(),
        };
        let steps: [(&'static str, InitStep); 2] =
            [("the tracer", Node::init_tracer), ("the event system", Node::init_event_system)];
        for (part, init) in steps {
            if let Err(cause) = init(&mut node, seed) {
                node.stop();
                return Err(InitError { part, cause });
            }
            node.started.push(part);
        }
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
        log::warn!("readiness for unknown token {}", token.0);
    }

    /// Names of the parts that started, in order.
    pub fn started_parts(&self) -> &[&'static str] {
        &self.started
    }
}
