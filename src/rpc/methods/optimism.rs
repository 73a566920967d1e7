//! The `optimism_*` namespace: sync status, rollup config, version, output roots (answered once
//! the engine worker has the block and its proof) and the safe-head store.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{uint64_arg, NodeApi};
use crate::driver::status::SyncStatus;
use crate::event::Request;
use crate::protocol::block_ref::{BlockId, L2BlockRef};
use crate::protocol::output_root::OUTPUT_VERSION_V0;
use crate::protocol::primitives::B256;
use crate::rpc::deferred::{RpcJob, RpcJobOutput};
use crate::rpc::jsonrpc::{raw_json, CallId, Dispatcher, DuplicateMethod, Params, RpcError, INTERNAL_ERROR};
use crate::time::Now;

/// Registers the namespace's node methods (`optimism_version` is registered on its own).
pub fn register<N: NodeApi>(d: &mut Dispatcher<N>) -> Result<(), DuplicateMethod> {
    d.register_raw("optimism_syncStatus", 0, sync_status)?;
    d.register_raw("optimism_rollupConfig", 0, rollup_config)?;
    d.register_deferred("optimism_outputAtBlock", 1, output_at_block)?;
    d.register_raw("optimism_safeHeadAtL1Block", 1, safe_head_at_l1_block)
}

/// `optimism_version`: op-node answers `version.Version + "-" + version.Meta`; op-lite's
/// metadata is its git commit.
pub fn version<C>(_: &mut C, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    Ok(Value::String(crate::version::VERSION_WITH_META.to_string()))
}

fn sync_status<N: NodeApi>(n: &mut N, _: &Params<'_>, _: Now) -> Result<Box<RawValue>, RpcError> {
    raw_json(&n.sync_status())
}

fn rollup_config<N: NodeApi>(n: &mut N, _: &Params<'_>, _: Now) -> Result<Box<RawValue>, RpcError> {
    raw_json(n.rollup_config())
}

/// `optimism_outputAtBlock`: answered once the engine worker has the block (and its proof).
fn output_at_block<N: NodeApi>(n: &mut N, p: &Params<'_>, now: Now) -> Result<CallId, RpcError> {
    let number = uint64_arg(p, 0)?;
    let store =
        n.deferred_calls().ok_or_else(|| RpcError::new(INTERNAL_ERROR, "no store for deferred calls"))?;
    let call = store.start(now)?;
    n.request(Request::Rpc(RpcJob::OutputAtBlock { call, number }));
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

fn safe_head_at_l1_block<N: NodeApi>(n: &mut N, p: &Params<'_>, _: Now) -> Result<Box<RawValue>, RpcError> {
    let number = uint64_arg(p, 0)?;
    let Some(store) = n.safe_heads() else {
        return Err(RpcError::server(format!(
            "failed to get safe head at l1 block {}: safe head database not enabled",
            crate::protocol::primitives::quantity(number)
        )));
    };
    let e = store.at(number).ok_or_else(|| RpcError::server("not found"))?;
    raw_json(&SafeHeadResponse { l1_block: e.l1, safe_head: e.safe })
}
