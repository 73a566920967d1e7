//! op-node's RPC methods, each a plain function over the node state it reads: `optimism_*`
//! (`optimism`), `admin_*` (`admin`) and `opp2p_*` (`p2p`). The methods reach the node through
//! `NodeApi`, which the sans-IO node implements; effects outside the node (the admin-state file,
//! the log level) are carried out by the node's host. A method whose part is missing (`opp2p_*`
//! without P2P) is not registered, so it answers "method not found". Shapes and error texts
//! follow op-node's `node/api.go` and `op-service/apis`.

pub mod admin;
pub mod optimism;
pub mod p2p;

use crate::driver::safedb::SafeHeads;
use crate::driver::sequencer::Sequencer;
use crate::driver::status::SyncStatus;
use crate::event::{Event, Request};
use crate::p2p::swarm::Swarm;
use crate::protocol::rollup::RollupConfig;

use super::deferred::Deferred;
use super::jsonrpc::{Dispatcher, DuplicateMethod, Params, RpcContext, RpcError};

pub use optimism::deferred_result;

/// The gossip node as the `opp2p_*` methods see it.
pub struct GossipView<'a> {
    pub swarm: &'a mut Swarm,
    /// The address the libp2p listener is bound to.
    pub listen: Option<std::net::SocketAddr>,
    /// discv5: our record and the UDP address it is bound to.
    pub discovery: Option<(crate::p2p::discovery::enr::Enr, std::net::SocketAddr)>,
}

/// What the RPC methods read from and ask of the node.
pub trait NodeApi: RpcContext {
    /// The sync status (op-node `eth.SyncStatus`).
    fn sync_status(&self) -> SyncStatus;
    /// The rollup config the node runs with.
    fn rollup_config(&self) -> &RollupConfig;
    /// The sequencer, when `--sequencer.enabled`.
    fn sequencer(&mut self) -> Option<&mut Sequencer>;
    /// The safe-head store, when `--safedb.path`.
    fn safe_heads(&self) -> Option<&SafeHeads>;
    /// The store of calls answered later.
    fn deferred_calls(&mut self) -> Option<&mut Deferred>;
    /// The gossip node, unless `--p2p.disable`.
    fn gossip(&mut self) -> Option<GossipView<'_>>;
    /// Queues an event for the node's derivers.
    fn emit(&mut self, ev: Event);
    /// Asks the node's shell for I/O; the answer comes back as an event.
    fn request(&mut self, req: Request);
    /// Persists the sequencer's started state (`--rpc.admin-state`) before it changes.
    fn persist_sequencer_state(&mut self, started: bool) -> Result<(), String>;
    /// Sets the log level by its op-node name; an unknown name is an error.
    fn set_log_level(&mut self, level: &str) -> Result<(), String>;
}

/// Registers the methods that need no node part beyond the binary itself.
pub fn register_static<C: RpcContext>(d: &mut Dispatcher<C>) -> Result<(), DuplicateMethod> {
    d.register("optimism_version", 0, optimism::version)
}

/// Registers the methods of a verifier node (its L2 part and, when enabled, the admin API).
pub fn register_node<N: NodeApi>(d: &mut Dispatcher<N>) -> Result<(), DuplicateMethod> {
    optimism::register(d)?;
    admin::register(d)
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
