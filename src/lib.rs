//! op-lite: an OP Stack rollup node (what op-node is in Go) for constrained hosts.
//!
//! # Architecture
//!
//! One thread owns all state. A `mio::Poll` loop (`io::driver`) replaces op-node's `select`:
//!
//! ```text
//!  sockets, timers, waker --> io::driver --> Events --> event::System --> node::Derivers
//!                                 ^                          |
//!                                 |                          v
//!       worker results + Waker <- ureq worker threads <- Requests
//! ```
//!
//! * Everything that decides — derivers, the derivation pipeline, the engine controller,
//!   protocol codecs, gossip state machines, RPC handling — is sans-IO: it takes inputs and
//!   `time::Now` as arguments. Only `io/` reads clocks, spawns threads, touches sockets or files
//!   (`clippy.toml` enforces it).
//! * The event system (`event`) is op-node's: one `Event` enum, derivers reacting in a fixed
//!   order (the named fields of `node::Derivers`), a bounded FIFO queue (10,000), tracers, and
//!   an abort flag set by a `CriticalError`.
//! * Loop rule: after any input, fire due timers and drain events until the queue is empty (in
//!   bounded batches), hand requests to workers, then block in `poll` until the earliest deadline.
//! * Every state machine speaks one verb set: `handle_*` for inputs, `poll_*` for outputs,
//!   `poll_timeout` / `handle_timeout` for deadlines (derivers: op-node's `on_event`).
//! * Step scheduling (`driver::sched`) keeps op-node's exponential backoff with a stored
//!   deadline instead of a Go timer channel.
//!
//! # Module map (one room per concern)
//!
//! ```text
//! config    TOP: flags + OP_NODE_* env, cli (two stages), networks, Config; imported only by
//!           main.rs, tools/, the node shell (io::node) and devnet
//! protocol  pure data and codecs: primitives, rlp, varint, txs, deposits, L1 info, frames,
//!           channels, channel_out, batches, blobs, payloads, rollup config, L1 chain spec,
//!           block refs, output roots, JWT tokens, gossip encoding, upgrades
//! event     Event, Request, Deriver, System (bounded queue, tracers, critical-error abort)
//! derive    the derivation pipeline (stages named after the spec) and the chain-data caches
//! driver    sync deriver, step scheduler, status, finality, L1 polling, runtime config,
//!           sequencer, the safe-head store's logic
//! engine    api (types, the ENGINE_METHODS list), controller/{forkchoice, build, insert,
//!           el_sync, reset}, attributes handler, unsafe payload queue
//! p2p       identity, multiaddr, multistream, noise, yamux, swarm/, gossipsub/, blocks,
//!           reqresp: state machines over bytes
//! rpc       http (bytes <-> requests), jsonrpc, deferred calls, methods/{optimism, admin,
//!           p2p} served through `methods::NodeApi`
//! metrics   registry, op-node's catalogue, the recorder deriver
//! node      the sans-IO node: `Core` (derivers + queue + chain data) and `Node` (+ RPC
//!           table, gossip node, `Host` for effects outside it)
//! io        the ONLY room with sockets, threads, clocks and files: the loop, the node shell,
//!           ureq workers and clients, HTTP servers, P2P sockets, signals, sd_notify, files
//! devnet    the embedded devnet: chain, l1_sim, engine_sim, serve, host, report
//! tools     thin commands: decode, replay, devnet, p2p
//! time, rng, version   small leaves: `Now`, a seeded PRNG, build metadata
//! ```
//!
//! Import cycles between these rooms, each for a reason:
//! * `event` <-> `derive`, `driver`, `engine`, `rpc`: `Event` is one enum naming the facts and
//!   requests of every component (op-node declares its events per package; a single Rust enum
//!   needs their payload types), and every deriver emits it.
//! * `config` <-> `io`: the node shell in `io` is started from a `Config`, and `Config` holds the
//!   settings types the shell's clients own (`io::upstream::ReceiptsMethod`, `io::log::LogFormat`).

#![forbid(unsafe_code)]

/// `log::trace!` for op-lite's own trace lines (event tracing, discv5 packets), checked against
/// the runtime level only. Release builds compile every other crate's trace-level logging out
/// (`log`'s `release_max_level_debug`: rustls' and ureq's handshake and connection dumps, 25 KB
/// of the aarch64 binary); `--log.level trace` still shows these.
macro_rules! trace {
    (target: $target:expr, $($arg:tt)+) => {
        if log::Level::Trace <= log::max_level() {
            log::logger().log(
                &log::Record::builder()
                    .args(format_args!($($arg)+))
                    .level(log::Level::Trace)
                    .target($target)
                    .module_path_static(Some(module_path!()))
                    .file_static(Some(file!()))
                    .line(Some(line!()))
                    .build(),
            );
        }
    };
    ($($arg:tt)+) => {
        trace!(target: module_path!(), $($arg)+)
    };
}
pub(crate) use trace;

pub mod config;
pub mod derive;
#[cfg(feature = "devnet")]
pub mod devnet;
pub mod driver;
pub mod engine;
pub mod event;
pub mod io;
pub mod metrics;
pub mod node;
pub mod p2p;
pub mod protocol;
pub mod rng;
pub mod rpc;
pub mod sort;
pub mod time;
pub mod tools;
pub mod version;
