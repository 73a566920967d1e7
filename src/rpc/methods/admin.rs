//! The `admin_*` namespace (served with `--rpc.enable-admin`): pipeline reset, log level,
//! posting unsafe payloads (op-conductor), and the sequencer's start / stop / recover controls.
//! Without `--sequencer.enabled` the sequencer methods answer op-node's "sequencer is not
//! enabled".

use serde_json::Value;

use super::NodeApi;
use crate::driver::sequencer::Sequencer;
use crate::event::Event;
use crate::protocol::payload::ExecutionPayloadEnvelope;
use crate::protocol::primitives::B256;
use crate::rpc::jsonrpc::{Dispatcher, DuplicateMethod, Params, RpcError};
use crate::time::Now;

/// Registers the namespace (the dispatcher serves it only with the admin API enabled).
pub fn register<N: NodeApi>(d: &mut Dispatcher<N>) -> Result<(), DuplicateMethod> {
    d.register("admin_resetDerivationPipeline", 0, reset_derivation_pipeline)?;
    d.register("admin_setLogLevel", 1, set_log_level)?;
    d.register("admin_postUnsafePayload", 1, post_unsafe_payload)?;
    d.register("admin_startSequencer", 1, start_sequencer)?;
    d.register("admin_stopSequencer", 0, stop_sequencer)?;
    d.register("admin_sequencerActive", 0, sequencer_active)?;
    d.register("admin_setRecoverMode", 1, set_recover_mode)
}

/// The sequencer, or op-node's `DisabledSequencer` error.
fn sequencer<N: NodeApi>(n: &mut N) -> Result<&mut Sequencer, RpcError> {
    n.sequencer().ok_or_else(|| RpcError::server("sequencer is not enabled"))
}

/// Persists the sequencer's new state before it changes (op-node's state listener).
fn persist_sequencer_state<N: NodeApi>(n: &mut N, started: bool) -> Result<(), RpcError> {
    n.persist_sequencer_state(started).map_err(|e| {
        let what = if started { "start" } else { "stop" };
        RpcError::server(format!("failed to notify sequencer-state listener of {what}: {e}"))
    })
}

fn start_sequencer<N: NodeApi>(n: &mut N, p: &Params<'_>, now: Now) -> Result<Value, RpcError> {
    let head: B256 = p.required(0)?;
    sequencer(n)?.check_start(head).map_err(|e| RpcError::server(e.to_string()))?;
    persist_sequencer_state(n, true)?;
    sequencer(n)?.force_start(now);
    Ok(Value::Null)
}

fn stop_sequencer<N: NodeApi>(n: &mut N, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    sequencer(n)?.check_stop().map_err(|e| RpcError::server(e.to_string()))?;
    persist_sequencer_state(n, false)?;
    let head = sequencer(n)?.stop().map_err(|e| RpcError::server(e.to_string()))?;
    Ok(serde_json::to_value(head).unwrap_or(Value::Null))
}

fn sequencer_active<N: NodeApi>(n: &mut N, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    Ok(Value::Bool(n.sequencer().is_some_and(|s| s.active())))
}

fn set_recover_mode<N: NodeApi>(n: &mut N, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let mode: bool = p.required(0)?;
    sequencer(n)?.set_recover_mode(mode);
    log::info!("sequencer recover mode set to {mode}");
    Ok(Value::Null)
}

/// op-node's driver resets the pipeline (not the engine) on this request.
fn reset_derivation_pipeline<N: NodeApi>(n: &mut N, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    log::warn!("derivation pipeline is manually reset");
    n.emit(Event::ResetPipelineRequest);
    Ok(Value::Null)
}

fn set_log_level<N: NodeApi>(n: &mut N, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let s: String = p.required(0)?;
    n.set_log_level(&s).map_err(RpcError::server)?;
    Ok(Value::Null)
}

/// For op-conductor's failover: the payload goes to the engine controller as a gossiped block
/// would, once its block hash checks out.
fn post_unsafe_payload<N: NodeApi>(n: &mut N, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let env: ExecutionPayloadEnvelope = p.required(0)?;
    let claimed = env.execution_payload.block_hash;
    let actual = env.compute_block_hash().map_err(|e| RpcError::server(format!("invalid payload: {e}")))?;
    if actual != claimed {
        log::error!("payload has bad block hash bad_hash={claimed} actual={actual}");
        return Err(RpcError::server(format!(
            "payload has bad block hash: {claimed}, actual block hash is: {actual}"
        )));
    }
    n.emit(Event::ReceivedUnsafePayload(Box::new(env)));
    Ok(Value::Null)
}
