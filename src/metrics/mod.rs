//! Metrics with op-node's names, types, help texts and labels (namespace `op_node`, subsystem
//! `default`, so `op_node_default_*`), kept in a small single-threaded registry and rendered in
//! the Prometheus text exposition format (version 0.0.4).
//!
//! `Registry` holds counter, gauge and histogram families; `Metrics` registers op-node's
//! families (plus op-lite's own, prefixed `op_lite_`) and offers its `Record*` methods, which
//! the metrics recorder (`recorder`) calls from events. Values that live elsewhere
//! (event-system counters, the pipeline's counters, the chain-data caches' figures, the
//! unsafe-payload buffer, process statistics from `io::procfs`) are copied in just before a
//! scrape. Every family caps its label sets at `MAX_SERIES`, so labels from the outside (RPC
//! method names) cannot grow memory without bound.

pub mod catalogue;
pub mod recorder;
pub mod registry;

pub use catalogue::{Metrics, ProcStats, RpcClientStats};
pub use recorder::MetricsRecorder;
pub use registry::{Registry, CONTENT_TYPE, MAX_SERIES, NAMESPACE};
