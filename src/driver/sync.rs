//! The sync deriver (op-node `driver.SyncDeriver`): turns `Step` into the sequence of engine
//! and derivation requests, and maps errors and derivation signals onto step scheduling.

use crate::event::{Deriver, Emitter, Event};
use crate::time::Now;

/// Reacts to steps, errors and pipeline signals.
#[derive(Debug, Default)]
pub struct SyncDeriver {
    /// The engine is busy with execution-layer sync; derivation waits.
    engine_syncing: bool,
    /// The engine's last call failed: an idle pipeline then does not reset the step backoff,
    /// or idle -> forkchoice retry -> failure -> step would spin while the engine is down.
    engine_failing: bool,
    resets: u64,
    /// Follow mode: the safe chain comes from a source node, derivation never runs.
    follow: bool,
    /// Follow mode with a sequencer: one engine reset first, so the sequencer starts from the
    /// heads the sync-start search finds (op-node's `NeedInitialResetEngine`).
    initial_reset: bool,
}

impl SyncDeriver {
    pub fn new() -> Self {
        SyncDeriver::default()
    }

    /// With `--syncmode execution-layer` the engine starts in initial EL sync (op-node's
    /// `syncStatusWillStartEL`): derivation waits until the engine reports it finished.
    pub fn for_mode(mode: crate::engine::SyncMode) -> Self {
        SyncDeriver {
            engine_syncing: mode == crate::engine::SyncMode::ExecutionLayer,
            ..SyncDeriver::default()
        }
    }

    /// Follow mode (`--l2.follow.source`): steps keep the engine's forkchoice current but never
    /// ask for derivation; `sequencer` adds the initial engine reset.
    pub fn following(mut self, sequencer: bool) -> Self {
        self.follow = true;
        self.initial_reset = sequencer;
        self
    }

    /// How many resets were requested (for metrics).
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// One sync step. op-node drains between these emissions; here the FIFO queue gives the
    /// same order, and the engine's syncing flag is the one last reported.
    fn sync_step(&mut self, out: &mut Emitter) {
        log::debug!("sync process step");
        out.emit(Event::TryBackupUnsafeReorg);
        out.emit(Event::TryUpdateEngine);
        if self.engine_syncing {
            log::debug!("rollup driver is backing off because execution engine is syncing");
            out.emit(Event::ResetStepBackoff);
            return;
        }
        if self.follow {
            if self.initial_reset {
                log::info!("follow source with a sequencer: resetting the engine once to find its heads");
                out.emit(Event::ResetEngineRequest);
            }
            return;
        }
        // The engine repeats where its pending-safe head is; the attributes handler then asks
        // the pipeline for new attributes if it has none queued.
        out.emit(Event::PendingSafeRequest);
    }
}

impl Deriver for SyncDeriver {
    fn on_event(&mut self, ev: &Event, _now: Now, out: &mut Emitter) -> bool {
        match ev {
            Event::Step => self.sync_step(out),
            Event::Reset { err } => {
                log::warn!("deriver system is resetting err={err}");
                self.resets += 1;
                out.emit(Event::StepReq { reset_backoff: false });
                out.emit(Event::ResetEngineRequest);
            }
            Event::L1TemporaryError { err } => {
                log::warn!("L1 temporary error err={err}");
                out.emit(Event::StepReq { reset_backoff: false });
            }
            Event::EngineTemporaryError { err } => {
                self.engine_failing = true;
                log::warn!("engine temporary error err={err}");
                // Retry the failed attributes on the next step, after backoff.
                out.emit(Event::StepReq { reset_backoff: false });
            }
            Event::EngineResetConfirmed(_) => {
                self.initial_reset = false;
                out.emit(Event::ConfirmPipelineReset)
            }
            // Idle derivation is healthy: wait for new inputs without backoff.
            Event::DeriverIdle if !self.engine_failing => out.emit(Event::ResetStepBackoff),
            Event::DeriverIdle => {}
            Event::ForkchoiceUpdate(_) | Event::PayloadSuccess(_) => self.engine_failing = false,
            // More to do: continue quickly.
            Event::DeriverMore => out.emit(Event::StepReq { reset_backoff: true }),
            Event::EngineSyncStatus { syncing } => self.engine_syncing = *syncing,
            // op-node's driver loop steps on a new L1 head (the data to continue may be there
            // now) and on a new finalized L1 block (more L2 blocks may be final).
            Event::L1HeadUpdated(_) | Event::L1FinalizedUpdated(_) => {
                out.emit(Event::StepReq { reset_backoff: false })
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(d: &mut SyncDeriver, ev: Event) -> Vec<&'static str> {
        let mut out = Emitter::with_cap(64);
        let now = crate::time::test_now();
        assert!(d.on_event(&ev, now, &mut out));
        out.queued().map(|e| e.name()).collect()
    }

    #[test]
    fn step_requests_engine_work_then_pending_safe() {
        let mut d = SyncDeriver::new();
        assert_eq!(
            run(&mut d, Event::Step),
            vec!["try-backup-unsafe-reorg", "try-update-engine", "pending-safe-request"]
        );
    }

    #[test]
    fn step_backs_off_while_engine_syncs() {
        let mut d = SyncDeriver::new();
        run(&mut d, Event::EngineSyncStatus { syncing: true });
        assert_eq!(
            run(&mut d, Event::Step),
            vec!["try-backup-unsafe-reorg", "try-update-engine", "reset-step-backoff"]
        );
    }

    #[test]
    fn follow_mode_never_asks_for_derivation() {
        let mut d = SyncDeriver::new().following(false);
        assert_eq!(run(&mut d, Event::Step), vec!["try-backup-unsafe-reorg", "try-update-engine"]);
        // A sequencer resets the engine once, until the reset is confirmed.
        let mut d = SyncDeriver::new().following(true);
        let first = vec!["try-backup-unsafe-reorg", "try-update-engine", "reset-engine-request"];
        assert_eq!(run(&mut d, Event::Step), first);
        assert_eq!(run(&mut d, Event::Step), first);
        run(&mut d, Event::EngineResetConfirmed(Box::default()));
        assert_eq!(run(&mut d, Event::Step), vec!["try-backup-unsafe-reorg", "try-update-engine"]);
    }

    #[test]
    fn errors_and_signals_map_to_steps() {
        let mut d = SyncDeriver::new();
        assert_eq!(run(&mut d, Event::Reset { err: "x".into() }), vec!["step-req", "reset-engine-request"]);
        assert_eq!(run(&mut d, Event::L1TemporaryError { err: "x".into() }), vec!["step-req"]);
        assert_eq!(run(&mut d, Event::DeriverIdle), vec!["reset-step-backoff"]);
        assert_eq!(run(&mut d, Event::EngineTemporaryError { err: "x".into() }), vec!["step-req"]);
        // A failing engine keeps its backoff through idle derivation, until a call succeeds.
        assert!(run(&mut d, Event::DeriverIdle).is_empty());
        run(&mut d, Event::ForkchoiceUpdate(Box::default()));
        assert_eq!(run(&mut d, Event::DeriverIdle), vec!["reset-step-backoff"]);
        assert_eq!(run(&mut d, Event::DeriverMore), vec!["step-req"]);
        assert_eq!(run(&mut d, Event::EngineResetConfirmed(Box::default())), vec!["confirm-pipeline-reset"]);
        assert_eq!(d.resets(), 1);
        let mut out = Emitter::with_cap(4);
        assert!(!d.on_event(&Event::ShutdownRequested, crate::time::test_now(), &mut out));
    }
}
