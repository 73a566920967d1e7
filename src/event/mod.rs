//! The event system (op-node `op-service/event`): one `Event` enum, `Deriver`s that react to
//! events and emit more, and a bounded single-threaded FIFO executor that runs them to
//! quiescence. I/O requests that derivers make are collected beside the events and handed to
//! the worker threads by `src/io/`.

mod system;
mod trace;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use system::{Aborted, Clock, Derivers, System, MAX_QUEUED_EVENTS};
pub use trace::{EventCounts, EventMetrics, LogTracer};

use crate::derive::attributes::AttributesWithParent;
use crate::derive::data::{Arrival, FetchRequest};
use crate::engine::api::{EngineCall, EngineError, EngineReply, PayloadInfo};
pub use crate::engine::{BuildJob, EngineHeads, SealedBlock};
use crate::protocol::block_ref::{BlockId, L1BlockRef, L2BlockRef};
use crate::protocol::payload::ExecutionPayloadEnvelope;
use crate::time::Now;

/// Everything that happens inside the node, as one enum.
///
/// Facts are past tense, requests imperative; each has a stable kebab-case name (`Event::name`)
/// used by the log tracer and the per-event metrics.
#[derive(Debug, Clone)]
pub enum Event {
    // -- step scheduling (op-node driver/steps.go) --
    /// Ask for a derivation step; with `reset_backoff` the retry backoff starts over.
    StepReq {
        reset_backoff: bool,
    },
    /// Ask for a step after at least `delay`.
    StepDelayedReq {
        delay: Duration,
    },
    /// The driver loop's timer fired: count an attempt and step.
    StepAttempt,
    /// Perform one sync step.
    Step,
    /// Healthy progress: forget past failures.
    ResetStepBackoff,

    // -- errors, by severity --
    /// Something is inconsistent (e.g. an L1 reorg): reset derivation and the engine state.
    Reset {
        err: String,
    },
    /// L1 data could not be fetched now; retry with backoff.
    L1TemporaryError {
        err: String,
    },
    /// The engine could not be reached or refused; retry with backoff.
    EngineTemporaryError {
        err: String,
    },
    /// Unrecoverable: stop processing events and exit non-zero.
    CriticalError {
        err: String,
    },

    // -- derivation --
    /// Step the pipeline towards attributes for the block after `pending_safe`.
    PipelineStep {
        pending_safe: L2BlockRef,
    },
    /// New attributes for the engine; no more until `ConfirmReceivedAttributes`.
    DerivedAttributes(Box<AttributesWithParent>),
    ConfirmReceivedAttributes,
    /// Holocene: the engine rejected derived attributes; derive the deposits-only block.
    DepositsOnlyAttributesRequest {
        parent: BlockId,
        derived_from: L1BlockRef,
    },
    /// The pipeline moved to a new L1 origin.
    DeriverL1Status {
        origin: L1BlockRef,
        last_l2: L2BlockRef,
    },
    /// All L1 data up to the origin was used.
    ExhaustedL1 {
        origin: L1BlockRef,
        last_l2: L2BlockRef,
    },
    /// Chain data the pipeline asked for arrived (or failed).
    ChainDataArrived(Box<Arrival>),
    /// The L1 head moved (from the L1 head poller).
    L1HeadUpdated(L1BlockRef),
    /// The `latest` poll's answer with the block it read (`Arrival::L1Header`, or
    /// `Arrival::L1Block` when it asked for the transactions): the chain-data deriver files it in
    /// the caches, so derivation at the tip reads the head from them, then emits `L1HeadUpdated`.
    L1HeadPolled(Box<Arrival>),
    /// Polling an L1 label failed.
    L1PollFailed {
        label: &'static str,
        err: String,
    },
    /// Operator request (admin_resetDerivationPipeline).
    ResetPipelineRequest,

    // -- follow mode (`--l2.follow.source`) --
    /// The follow source's `optimism_syncStatus`, or why it could not be read.
    FollowSourceStatus(Result<Box<crate::driver::status::SyncStatus>, String>),
    /// The source's heads, checked: the engine adopts them (op-node `FollowSource`). `local` is
    /// the local engine's block at `local_safe`'s height (`None`: the engine has none).
    FollowSource(Box<crate::driver::follow::FollowRefs>),
    /// One follow-source poll ended with this result (`follow_source_requests_total{result}`).
    FollowSourceChecked {
        result: &'static str,
    },

    // -- derivation signals that the sync deriver reacts to --
    /// The pipeline has nothing more to do until new inputs arrive.
    DeriverIdle,
    /// The pipeline made progress and can continue right away.
    DeriverMore,
    /// The engine was reset to these heads; the pipeline may reset too.
    EngineResetConfirmed(Box<EngineHeads>),
    ConfirmPipelineReset,
    ResetEngineRequest,
    TryBackupUnsafeReorg,
    TryUpdateEngine,
    PendingSafeRequest,
    /// The engine reports whether it is busy with execution-layer sync.
    EngineSyncStatus {
        syncing: bool,
    },

    // -- engine (op-node rollup/engine events) --
    /// The engine accepted a forkchoice with these heads.
    ForkchoiceUpdate(Box<EngineHeads>),
    /// The unsafe head moved.
    UnsafeUpdate(L2BlockRef),
    /// Answer to `PendingSafeRequest`: where the next derived block builds.
    PendingSafeUpdate {
        pending_safe: L2BlockRef,
        unsafe_head: L2BlockRef,
    },
    LocalSafeUpdate {
        safe: L2BlockRef,
        source: L1BlockRef,
    },
    /// Derived attributes matched the existing unsafe block: move the safe labels onto it.
    SafeConsolidated {
        safe: L2BlockRef,
        concluding: bool,
        source: L1BlockRef,
    },
    /// A block became safe, derived from `source`.
    SafeDerived {
        safe: L2BlockRef,
        source: L1BlockRef,
    },
    FinalizedUpdate(L2BlockRef),
    /// The sequencer's timer fired: start, seal or re-insert a block (op-node
    /// `SequencerActionEvent`).
    SequencerAction,
    /// Build a block from attributes (derived, or the sequencer's).
    BuildStart(Box<AttributesWithParent>),
    BuildStarted(Box<BuildJob>),
    /// Fetch the built payload.
    BuildSeal(Box<BuildJob>),
    BuildSealed(Box<SealedBlock>),
    BuildInvalid {
        attributes: Box<AttributesWithParent>,
        err: String,
    },
    /// Stop a build job without inserting it.
    BuildCancel {
        info: PayloadInfo,
        force: bool,
    },
    InvalidPayloadAttributes {
        attributes: Box<AttributesWithParent>,
        err: String,
    },
    PayloadSealInvalid {
        job: Box<BuildJob>,
        err: String,
    },
    PayloadSealExpired {
        job: Box<BuildJob>,
        err: String,
    },
    /// Insert a sealed payload.
    PayloadProcess(Box<SealedBlock>),
    PayloadSuccess(Box<SealedBlock>),
    PayloadInvalid {
        block: BlockId,
        err: String,
    },
    /// An unsafe block from gossip (or admin_postUnsafePayload) for the unsafe queue.
    ReceivedUnsafePayload(Box<ExecutionPayloadEnvelope>),
    /// The finalizer found a new finalized L2 block.
    PromoteFinalized(L2BlockRef),
    TryFinalize,
    /// The L1 safe / finalized heads moved (from the epoch poller).
    L1SafeUpdated(L1BlockRef),
    L1FinalizedUpdated(L1BlockRef),
    /// The answer to an engine request.
    EngineReplied {
        id: u64,
        result: Result<EngineReply, EngineError>,
    },

    /// The runtime config was read from L1 (storage proofs checked).
    RuntimeConfigLoaded(Box<crate::driver::runtime_config::RuntimeConfigData>),
    RuntimeConfigLoadFailed {
        err: String,
    },

    // -- RPC and persistence --
    /// A worker's answer to a deferred RPC call's job (`rpc::deferred::RpcJob`).
    RpcJobDone {
        call: crate::rpc::jsonrpc::CallId,
        result: Result<Box<crate::rpc::deferred::RpcJobOutput>, String>,
    },
    /// A safe-head store write (`safedb::SafeDbDeriver::poll_write`) finished.
    SafeDbWritten {
        result: Result<(), String>,
    },

    // -- lifecycle --
    /// The node is shutting down gracefully.
    ShutdownRequested,
}

impl Event {
    /// The stable kebab-case name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Event::StepReq { .. } => "step-req",
            Event::StepDelayedReq { .. } => "step-delayed-req",
            Event::StepAttempt => "step-attempt",
            Event::Step => "step",
            Event::ResetStepBackoff => "reset-step-backoff",
            Event::Reset { .. } => "reset-event",
            Event::L1TemporaryError { .. } => "l1-temporary-error",
            Event::EngineTemporaryError { .. } => "engine-temporary-error",
            Event::CriticalError { .. } => "critical-error",
            Event::PipelineStep { .. } => "pipeline-step",
            Event::DerivedAttributes(_) => "derived-attributes",
            Event::ConfirmReceivedAttributes => "confirm-received-attributes",
            Event::DepositsOnlyAttributesRequest { .. } => "deposits-only-payload-attributes-request",
            Event::DeriverL1Status { .. } => "deriver-l1-status",
            Event::ExhaustedL1 { .. } => "exhausted-l1",
            Event::ChainDataArrived(_) => "chain-data-arrived",
            Event::L1HeadPolled(_) => "l1-head-polled",
            Event::L1HeadUpdated(_) => "l1-head-updated",
            Event::L1PollFailed { .. } => "l1-poll-failed",
            Event::ResetPipelineRequest => "reset-pipeline-request",
            Event::FollowSourceStatus(_) => "follow-source-status",
            Event::FollowSource(_) => "follow-source",
            Event::FollowSourceChecked { .. } => "follow-source-checked",
            Event::DeriverIdle => "derivation-idle",
            Event::DeriverMore => "deriver-more",
            Event::EngineResetConfirmed(_) => "engine-reset-confirmed",
            Event::ForkchoiceUpdate(_) => "forkchoice-update",
            Event::UnsafeUpdate(_) => "unsafe-update",
            Event::PendingSafeUpdate { .. } => "pending-safe-update",
            Event::LocalSafeUpdate { .. } => "local-safe-update",
            Event::SafeConsolidated { .. } => "safe-consolidated",
            Event::SafeDerived { .. } => "safe-derived",
            Event::FinalizedUpdate(_) => "finalized-update",
            Event::SequencerAction => "sequencer-action",
            Event::BuildStart(_) => "build-start",
            Event::BuildStarted(_) => "build-started",
            Event::BuildSeal(_) => "build-seal",
            Event::BuildSealed(_) => "build-sealed",
            Event::BuildInvalid { .. } => "build-invalid",
            Event::BuildCancel { .. } => "build-cancel",
            Event::InvalidPayloadAttributes { .. } => "invalid-payload-attributes",
            Event::PayloadSealInvalid { .. } => "payload-seal-invalid",
            Event::PayloadSealExpired { .. } => "payload-seal-expired-error",
            Event::PayloadProcess(_) => "payload-process",
            Event::PayloadSuccess(_) => "payload-success",
            Event::PayloadInvalid { .. } => "payload-invalid",
            Event::ReceivedUnsafePayload(_) => "received-unsafe-payload",
            Event::PromoteFinalized(_) => "promote-finalized",
            Event::TryFinalize => "try-finalize",
            Event::L1SafeUpdated(_) => "l1-safe-updated",
            Event::L1FinalizedUpdated(_) => "l1-finalized-updated",
            Event::EngineReplied { .. } => "engine-replied",
            Event::ConfirmPipelineReset => "confirm-pipeline-reset",
            Event::ResetEngineRequest => "reset-engine-request",
            Event::TryBackupUnsafeReorg => "try-backup-unsafe-reorg",
            Event::TryUpdateEngine => "try-update-engine",
            Event::PendingSafeRequest => "pending-safe-request",
            Event::EngineSyncStatus { .. } => "engine-sync-status",
            Event::RuntimeConfigLoaded(_) => "runtime-config-loaded",
            Event::RuntimeConfigLoadFailed { .. } => "runtime-config-load-failed",
            Event::RpcJobDone { .. } => "rpc-job-done",
            Event::SafeDbWritten { .. } => "safedb-written",
            Event::ShutdownRequested => "shutdown-requested",
        }
    }
}

/// An I/O request for the worker threads; results come back as events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Chain data for the derivation caches; answered with `Event::ChainDataArrived`.
    Fetch(FetchRequest),
    /// An Engine API call; answered with `Event::EngineReplied` carrying the same id.
    Engine { id: u64, call: EngineCall },
    /// Poll an L1 label; answered with `L1HeadPolled` or `L1HeadUpdated` (latest),
    /// `L1SafeUpdated`, `L1FinalizedUpdated`, or `L1PollFailed`. `txs`: read the block with its
    /// transactions (the latest poll when derivation waits at the tip).
    PollL1 { label: crate::driver::l1_poll::L1Label, txs: bool },
    /// Read the runtime config from L1 state; answered with `RuntimeConfigLoaded` or
    /// `RuntimeConfigLoadFailed`. `at`: the block to read at, from the header cache (only its
    /// storage proofs are fetched); `None`: `confs` behind L1's head, both headers fetched.
    LoadRuntimeConfig { at: Option<std::sync::Arc<crate::derive::data::BlockInfo>> },
    /// Sign a block the sequencer sealed and publish it on the fork's gossip topic.
    PublishBlock(Box<ExecutionPayloadEnvelope>),
    /// Work of an RPC call answered later; answered with `Event::RpcJobDone`.
    Rpc(crate::rpc::deferred::RpcJob),
    /// Read the follow source's sync status; answered with `Event::FollowSourceStatus`.
    PollFollowSource,
    /// Stop the node gracefully (e.g. the devnet reached its target).
    Stop,
}

/// Where derivers put the events and requests they produce. Bounded: past the cap, events are
/// dropped and counted, never queued (op-node's sanity limit).
pub struct Emitter {
    queue: VecDeque<Event>,
    cap: usize,
    dropped: u64,
    abort: Option<String>,
    requests: Vec<Request>,
    /// Name of the deriver currently running, for tracing ("" outside of derivers).
    pub(crate) current: &'static str,
    pub(crate) metrics: EventMetrics,
    pub(crate) log: LogTracer,
}

impl Emitter {
    pub fn with_cap(cap: usize) -> Self {
        Emitter {
            queue: VecDeque::new(),
            cap,
            dropped: 0,
            abort: None,
            requests: Vec::new(),
            current: "",
            metrics: EventMetrics::default(),
            log: LogTracer,
        }
    }

    /// Queues `ev` for every deriver. A `CriticalError` sets the abort flag at once.
    pub fn emit(&mut self, ev: Event) {
        if let Event::CriticalError { err } = &ev {
            if self.abort.is_none() {
                self.abort = Some(err.clone());
            }
        }
        self.log.on_emit(self.current, &ev);
        if self.queue.len() >= self.cap {
            self.dropped += 1;
            self.metrics.on_dropped(&ev);
            log::error!(
                "event queue full ({} events), dropping event {} from {}",
                self.queue.len(),
                ev.name(),
                if self.current.is_empty() { "driver" } else { self.current }
            );
            return;
        }
        self.metrics.on_emit(&ev);
        self.queue.push_back(ev);
    }

    /// Asks the I/O layer to do something; the result arrives later as an event.
    pub fn request(&mut self, req: Request) {
        self.requests.push(req);
    }

    pub fn poll_requests(&mut self) -> Vec<Request> {
        std::mem::take(&mut self.requests)
    }

    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The critical error that aborted the system, if any.
    pub fn aborted(&self) -> Option<&str> {
        self.abort.as_deref()
    }

    pub(crate) fn pop(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }

    /// The events currently queued, oldest first (for tests and debugging).
    pub fn queued(&self) -> impl Iterator<Item = &Event> {
        self.queue.iter()
    }
}

/// A component that reacts to events (op-node `event.Deriver`).
///
/// `on_event` returns whether the event concerned it (for tracing). Timers are exposed as a
/// deadline in `poll_timeout`; the driver calls `handle_timeout` when it may have passed, and
/// spurious calls must be no-ops.
pub trait Deriver {
    fn on_event(&mut self, ev: &Event, now: Now, out: &mut Emitter) -> bool;

    fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        None
    }

    fn handle_timeout(&mut self, _now: Now, _out: &mut Emitter) {}
}
