//! op-node's RPC methods (`optimism_*`, `admin_*`), registered on the node's `Dispatcher` as
//! its parts land. Each is a plain function over the node state it reads; a method whose part
//! is missing (the sequencer's `admin_*`, `opp2p_*`) is not registered, so it answers "method
//! not found". Shapes and error texts follow op-node's `node/api.go`.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::deferred::{Deferred, RpcJob, RpcJobOutput, RPC_CALLS};
use super::jsonrpc::{
    raw_json, CallId, Dispatcher, DuplicateMethod, Params, RpcContext, RpcError, INTERNAL_ERROR,
};
use crate::core::SEQUENCER;
use crate::driver::sequencer::Sequencer;
use crate::driver::status::{StatusTracker, SyncStatus};
use crate::event::Event;
use crate::node::Node;
use crate::protocol::block_ref::{BlockId, L2BlockRef};
use crate::protocol::output_root::OUTPUT_VERSION_V0;
use crate::protocol::payload::ExecutionPayloadEnvelope;
use crate::protocol::primitives::B256;
use crate::safedb::{SafeDbDeriver, SAFE_DB};
use crate::time::Now;

/// Registers the methods that need no node part beyond the binary itself.
pub fn register_static<C: RpcContext>(d: &mut Dispatcher<C>) -> Result<(), DuplicateMethod> {
    d.register("optimism_version", 0, optimism_version)
}

/// Registers the methods of a verifier node (its L2 part and, when enabled, the admin API).
pub fn register_node(d: &mut Dispatcher<Node>) -> Result<(), DuplicateMethod> {
    d.register_raw("optimism_syncStatus", 0, sync_status)?;
    d.register_raw("optimism_rollupConfig", 0, rollup_config)?;
    d.register_deferred("optimism_outputAtBlock", 1, output_at_block)?;
    d.register_raw("optimism_safeHeadAtL1Block", 1, safe_head_at_l1_block)?;
    d.register("admin_resetDerivationPipeline", 0, reset_derivation_pipeline)?;
    d.register("admin_setLogLevel", 1, set_log_level)?;
    d.register("admin_postUnsafePayload", 1, post_unsafe_payload)?;
    d.register("admin_startSequencer", 1, start_sequencer)?;
    d.register("admin_stopSequencer", 0, stop_sequencer)?;
    d.register("admin_sequencerActive", 0, sequencer_active)?;
    d.register("admin_setRecoverMode", 1, set_recover_mode)
}

/// The sequencer, or op-node's `DisabledSequencer` error.
fn sequencer(n: &mut Node) -> Result<&mut Sequencer, RpcError> {
    n.system.get_mut::<Sequencer>(SEQUENCER).ok_or_else(|| RpcError::server("sequencer is not enabled"))
}

/// Persists the sequencer's new state before it changes (op-node's state listener).
fn persist_sequencer_state(n: &Node, started: bool) -> Result<(), RpcError> {
    let Some(path) = &n.config.admin_state else { return Ok(()) };
    crate::io::admin_state::write(path, started).map_err(|e| {
        let what = if started { "start" } else { "stop" };
        RpcError::server(format!("failed to notify sequencer-state listener of {what}: {e}"))
    })
}

fn start_sequencer(n: &mut Node, p: &Params<'_>, now: Now) -> Result<Value, RpcError> {
    let head: B256 = p.required(0)?;
    sequencer(n)?.check_start(head).map_err(|e| RpcError::server(e.to_string()))?;
    persist_sequencer_state(n, true)?;
    sequencer(n)?.force_start(now);
    Ok(Value::Null)
}

fn stop_sequencer(n: &mut Node, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    sequencer(n)?.check_stop().map_err(|e| RpcError::server(e.to_string()))?;
    persist_sequencer_state(n, false)?;
    let head = sequencer(n)?.stop().map_err(|e| RpcError::server(e.to_string()))?;
    Ok(serde_json::to_value(head).unwrap_or(Value::Null))
}

fn sequencer_active(n: &mut Node, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    Ok(Value::Bool(n.system.get::<Sequencer>(SEQUENCER).is_some_and(|s| s.active())))
}

fn set_recover_mode(n: &mut Node, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let mode: bool = p.required(0)?;
    sequencer(n)?.set_recover_mode(mode);
    log::info!("sequencer recover mode set to {mode}");
    Ok(Value::Null)
}

/// `optimism_version`: op-node answers `version.Version + "-" + version.Meta`; op-lite's
/// metadata is its git commit.
fn optimism_version<C>(_: &mut C, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    Ok(Value::String(crate::version::VERSION_WITH_META.to_string()))
}

/// The node's sync status (op-node `eth.SyncStatus`).
pub fn status(n: &Node) -> SyncStatus {
    n.system.get::<StatusTracker>(crate::core::STATUS).map(|t| t.status).unwrap_or_default()
}

fn sync_status(n: &mut Node, _: &Params<'_>, _: Now) -> Result<Box<RawValue>, RpcError> {
    raw_json(&status(n))
}

fn rollup_config(n: &mut Node, _: &Params<'_>, _: Now) -> Result<Box<RawValue>, RpcError> {
    raw_json(&n.config.rollup)
}

/// Decodes argument `i` as geth's `hexutil.Uint64`, with geth's messages.
pub fn uint64_arg(p: &Params<'_>, i: usize) -> Result<u64, RpcError> {
    let raw = p.raw(i).filter(|r| *r != "null");
    let Some(raw) = raw else {
        return Err(RpcError::invalid_params(format!("missing value for required argument {i}")));
    };
    let bad = |why: &str| {
        RpcError::invalid_params(format!(
            "invalid argument {i}: json: cannot unmarshal {why} into Go value of type hexutil.Uint64"
        ))
    };
    let s: String = match serde_json::from_str(raw) {
        Ok(s) if raw.starts_with('"') => s,
        _ => return Err(bad("non-string")),
    };
    // geth's checks, in geth's order; an empty string reads as zero there.
    if s.is_empty() {
        return Ok(0);
    }
    let Some(digits) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) else {
        return Err(bad("hex string without 0x prefix"));
    };
    if digits.is_empty() {
        return Err(bad("hex string \"0x\""));
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Err(bad("hex number with leading zero digits"));
    }
    if digits.len() > 16 {
        return Err(bad("hex number > 64 bits"));
    }
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("invalid hex string"));
    }
    u64::from_str_radix(digits, 16).map_err(|_| bad("invalid hex string"))
}

/// `optimism_outputAtBlock`: answered once the engine worker has the block (and its proof).
fn output_at_block(n: &mut Node, p: &Params<'_>, now: Now) -> Result<CallId, RpcError> {
    let number = uint64_arg(p, 0)?;
    let store = n
        .system
        .get_mut::<Deferred>(RPC_CALLS)
        .ok_or_else(|| RpcError::new(INTERNAL_ERROR, "no store for deferred calls"))?;
    let call = store.start(now)?;
    if let Err(e) = n.submit_rpc_job(RpcJob::OutputAtBlock { call, number }) {
        if let Some(store) = n.system.get_mut::<Deferred>(RPC_CALLS) {
            store.abandon(call);
        }
        return Err(e);
    }
    Ok(call)
}

/// op-node `eth.OutputResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutputResponse<'a> {
    version: B256,
    output_root: B256,
    block_ref: &'a L2BlockRef,
    withdrawal_storage_root: B256,
    state_root: B256,
    sync_status: &'a SyncStatus,
}

/// The JSON result of a finished deferred call.
pub fn deferred_result(out: &RpcJobOutput, status: &SyncStatus) -> Result<Box<RawValue>, RpcError> {
    match out {
        RpcJobOutput::Output { block, output } => raw_json(&OutputResponse {
            version: OUTPUT_VERSION_V0,
            output_root: output.root(),
            block_ref: block,
            withdrawal_storage_root: output.message_passer_storage_root,
            state_root: output.state_root,
            sync_status: status,
        }),
    }
}

/// op-node `eth.SafeHeadResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SafeHeadResponse {
    l1_block: BlockId,
    safe_head: BlockId,
}

fn safe_head_at_l1_block(n: &mut Node, p: &Params<'_>, _: Now) -> Result<Box<RawValue>, RpcError> {
    let number = uint64_arg(p, 0)?;
    let Some(db) = n.system.get::<SafeDbDeriver>(SAFE_DB) else {
        return Err(RpcError::server(format!(
            "failed to get safe head at l1 block {}: safe head database not enabled",
            crate::protocol::primitives::quantity(number)
        )));
    };
    let e = db.store.at(number).ok_or_else(|| RpcError::server("not found"))?;
    raw_json(&SafeHeadResponse { l1_block: e.l1, safe_head: e.safe })
}

/// op-node's driver resets the pipeline (not the engine) on this request.
fn reset_derivation_pipeline(n: &mut Node, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    log::warn!("derivation pipeline is manually reset");
    n.system.emit(Event::ResetPipelineRequest);
    Ok(Value::Null)
}

fn set_log_level(_: &mut Node, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let s: String = p.required(0)?;
    let level =
        crate::config::parse_log_level(&s).ok_or_else(|| RpcError::server(format!("unknown level: {s}")))?;
    crate::io::log::set_level(level);
    log::info!("log level set to {level}");
    Ok(Value::Null)
}

/// For op-conductor's failover: the payload goes to the engine controller as a gossiped block
/// would, once its block hash checks out.
fn post_unsafe_payload(n: &mut Node, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let env: ExecutionPayloadEnvelope = p.required(0)?;
    let claimed = env.execution_payload.block_hash;
    let actual = env.compute_block_hash().map_err(|e| RpcError::server(format!("invalid payload: {e}")))?;
    if actual != claimed {
        log::error!("payload has bad block hash bad_hash={claimed} actual={actual}");
        return Err(RpcError::server(format!(
            "payload has bad block hash: {claimed}, actual block hash is: {actual}"
        )));
    }
    n.system.emit(Event::ReceivedUnsafePayload(Box::new(env)));
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(json: &str) -> Result<u64, String> {
        let body = format!(r#"[{json}]"#);
        let raw: Vec<&serde_json::value::RawValue> = serde_json::from_str(&body).unwrap();
        let p = Params::from_raw(raw);
        uint64_arg(&p, 0).map_err(|e| e.message)
    }

    #[test]
    fn uint64_args_read_as_geth_reads_them() {
        assert_eq!(arg(r#""0x0""#), Ok(0));
        assert_eq!(arg(r#""0x1f""#), Ok(31));
        assert_eq!(arg(r#""0xffffffffffffffff""#), Ok(u64::MAX));
        assert_eq!(arg(r#""""#), Ok(0));
        assert_eq!(arg(r#""0X1F""#), Ok(31));
        let t = "into Go value of type hexutil.Uint64";
        for (input, why) in [
            ("5", "non-string"),
            (r#""5""#, "hex string without 0x prefix"),
            (r#""0x""#, "hex string \"0x\""),
            (r#""0x01""#, "hex number with leading zero digits"),
            (r#""0xzz""#, "invalid hex string"),
            (r#""0x10000000000000000""#, "hex number > 64 bits"),
            (r#""0xzzzzzzzzzzzzzzzzz""#, "hex number > 64 bits"),
            (r#""0x+1""#, "invalid hex string"),
        ] {
            assert_eq!(
                arg(input),
                Err(format!("invalid argument 0: json: cannot unmarshal {why} {t}")),
                "{input}"
            );
        }
        assert_eq!(arg("null"), Err("missing value for required argument 0".into()));
    }
}
