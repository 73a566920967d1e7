//! op-node's RPC methods (`optimism_*`, `admin_*`, `opp2p_*`), registered on the node's
//! `Dispatcher` as its parts land. Each is a plain function over the node state it reads.

use serde_json::Value;

use super::jsonrpc::{Dispatcher, DuplicateMethod, Params, RpcContext, RpcError};
use crate::time::Now;

/// Registers the methods that need no node part beyond the binary itself.
pub fn register_static<C: RpcContext>(d: &mut Dispatcher<C>) -> Result<(), DuplicateMethod> {
    d.register("optimism_version", 0, optimism_version)
}

/// `optimism_version`: op-node answers `version.Version + "-" + version.Meta`; op-lite's
/// metadata is its git commit.
fn optimism_version<C>(_: &mut C, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    Ok(Value::String(crate::version::VERSION_WITH_META.to_string()))
}
