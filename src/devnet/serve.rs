//! The devnet's endpoints, sans-IO: the L1 simulator's JSON-RPC (`eth_*` as the node's L1
//! client uses it) and beacon API (genesis, spec, version, blobs, blob sidecars) on one listener,
//! and the engine stand-in's Engine API plus `eth_getBlockBy*` behind JWT on another, in the
//! forms real nodes answer. `host` serves them on loopback.

use std::time::Instant;

use serde_json::{json, Value};

use super::chain::Devnet;
use super::engine_sim::EngineSim;
use crate::engine::api::{
    EngineCall, EngineError, EngineReply, ForkchoiceState, PayloadInfo, ENGINE_METHODS,
};
use crate::protocol::blob::{kzg_commitment, versioned_hash};
use crate::protocol::header::Header;
use crate::protocol::payload::{ExecutionPayload, ExecutionPayloadEnvelope, PayloadAttributes};
use crate::protocol::primitives::{parse_quantity, quantity, to_hex_prefixed, Address, B256, B64, U256};
use crate::protocol::tx::{Transaction, TxLocation};
use crate::rpc::{self, CallRecord, Dispatcher, Listener, Params, RpcContext, RpcError};
use crate::time::Now;

/// The devnet as the RPC methods see it.
pub struct DevnetCtx {
    pub net: Devnet,
    /// The engine stand-in's JWT secret.
    pub jwt: [u8; 32],
    clock: Box<dyn Fn() -> Instant>,
    /// Requests served, per listener (L1, engines).
    pub served: (u64, u64),
    /// The engine request being served is for the sequencer's engine.
    seq_engine: bool,
}

impl RpcContext for DevnetCtx {
    fn mono(&self) -> Instant {
        (self.clock)()
    }

    fn record_call(&mut self, _call: &CallRecord<'_>) {}
}

/// The devnet's two HTTP services.
pub struct DevnetService {
    pub ctx: DevnetCtx,
    l1: Dispatcher<DevnetCtx>,
    engine: Dispatcher<DevnetCtx>,
}

const VERSION: &str = concat!("op-lite-devnet/", env!("CARGO_PKG_VERSION"));

fn block_json(header: &Header, hash: B256, txs: &[Transaction], full: bool) -> Value {
    let mut v = serde_json::to_value(header).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert("hash".into(), json!(hash));
        let txs: Vec<Value> = txs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if full {
                    t.rpc_json(Some(TxLocation {
                        block_hash: hash,
                        block_number: header.number,
                        index: i as u64,
                    }))
                } else {
                    json!(t.hash())
                }
            })
            .collect();
        m.insert("transactions".into(), Value::Array(txs));
        m.insert("uncles".into(), json!([]));
        if header.withdrawals_root.is_some() {
            m.insert("withdrawals".into(), json!([]));
        }
    }
    v
}

fn engine_err(e: EngineError) -> RpcError {
    match e {
        EngineError::Rpc { code, message } => RpcError::new(code, message),
        EngineError::Transport(m) => RpcError::server(m),
    }
}

/// A block id: a tag, a number, or (for `ByHash`) a hash.
enum Id {
    Tag(String),
    Number(u64),
}

fn block_id(p: &Params<'_>, i: usize) -> Result<Id, RpcError> {
    let s: String = p.required(i)?;
    match parse_quantity(&s) {
        Ok(n) => Ok(Id::Number(n)),
        Err(_) => Ok(Id::Tag(s)),
    }
}

// ---- L1 ----

fn l1_block(c: &DevnetCtx, by: Result<Id, B256>) -> Option<&super::l1_sim::SimL1Block> {
    let l1 = &c.net.l1;
    match by {
        Ok(Id::Number(n)) => l1.block_by_number(n),
        Ok(Id::Tag(t)) => match t.as_str() {
            "latest" | "pending" => Some(l1.head()),
            "safe" => Some(l1.safe()),
            "finalized" => Some(l1.finalized()),
            "earliest" => Some(l1.genesis()),
            _ => None,
        },
        Err(h) => l1.block_by_hash(&h),
    }
}

fn l1_block_json(b: &super::l1_sim::SimL1Block, full: bool) -> Value {
    block_json(&b.info.header, b.info.hash, &b.txs, full)
}

fn eth_get_block_by_number(c: &mut DevnetCtx, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let full = p.optional::<bool>(1)?.unwrap_or(false);
    Ok(l1_block(c, Ok(block_id(p, 0)?)).map_or(Value::Null, |b| l1_block_json(b, full)))
}

fn eth_get_block_by_hash(c: &mut DevnetCtx, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let full = p.optional::<bool>(1)?.unwrap_or(false);
    Ok(l1_block(c, Err(p.required::<B256>(0)?)).map_or(Value::Null, |b| l1_block_json(b, full)))
}

fn eth_get_block_receipts(c: &mut DevnetCtx, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let id: String = p.required(0)?;
    let by = match id.parse::<B256>() {
        Ok(h) => Err(h),
        Err(_) => Ok(block_id(p, 0)?),
    };
    let Some(b) = l1_block(c, by) else { return Ok(Value::Null) };
    let rs: Vec<Value> = b
        .receipts
        .iter()
        .zip(&b.txs)
        .enumerate()
        .map(|(i, (r, t))| {
            r.rpc_json(
                t.hash(),
                TxLocation { block_hash: b.info.hash, block_number: b.info.number(), index: i as u64 },
            )
        })
        .collect();
    Ok(Value::Array(rs))
}

fn eth_get_proof(c: &mut DevnetCtx, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let address: Address = p.required(0)?;
    let slots: Vec<U256> = p.required(1)?;
    if slots.len() > 256 {
        return Err(RpcError::invalid_params("too many storage keys"));
    }
    let at: String = p.required(2)?;
    let known = match at.parse::<B256>() {
        Ok(h) => c.net.l1.block_by_hash(&h).is_some(),
        Err(_) => l1_block(c, Ok(block_id(p, 2)?)).is_some(),
    };
    if !known {
        return Err(RpcError::server("header not found"));
    }
    // The simulator's state never changes, so every block's root commits to this snapshot.
    serde_json::to_value(c.net.l1.snapshot().proof(&address, &slots))
        .map_err(|e| RpcError::server(e.to_string()))
}

fn l1_chain_id(c: &mut DevnetCtx, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    Ok(json!(quantity(c.net.l1.chain_id)))
}

fn l1_block_number(c: &mut DevnetCtx, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    Ok(json!(quantity(c.net.l1.head().info.number())))
}

/// A beacon API GET: (status, JSON body).
pub fn beacon_get(net: &Devnet, target: &str) -> (u16, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let genesis = net.l1.genesis().info.time();
    let secs = net.params.l1_block_time;
    let not_found = |m: &str| (404, json!({"code": 404, "message": m}).to_string());
    let ok = |v: Value| (200, json!({ "data": v }).to_string());
    if path == "/eth/v1/beacon/genesis" {
        return ok(
            json!({"genesis_time": genesis.to_string(), "genesis_validators_root": B256::ZERO, "genesis_fork_version": "0x00000000"}),
        );
    }
    if path == "/eth/v1/config/spec" {
        return ok(json!({"SECONDS_PER_SLOT": secs.to_string()}));
    }
    if path == "/eth/v1/node/version" {
        return ok(json!({"version": VERSION}));
    }
    let (sidecars, slot) = if let Some(s) = path.strip_prefix("/eth/v1/beacon/blobs/") {
        (false, s)
    } else if let Some(s) = path.strip_prefix("/eth/v1/beacon/blob_sidecars/") {
        (true, s)
    } else {
        return not_found("not found");
    };
    let Ok(slot) = slot.parse::<u64>() else {
        return (400, json!({"code": 400, "message": "invalid block id"}).to_string());
    };
    let time = genesis.saturating_add(slot.saturating_mul(secs));
    let head = net.l1.head().info.number();
    let Some(block) =
        (0..=head).rev().filter_map(|n| net.l1.block_by_number(n)).find(|b| b.info.time() == time)
    else {
        return not_found("Block not found");
    };
    let wanted: Vec<B256> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("versioned_hashes="))
        .filter_map(|h| h.parse().ok())
        .collect();
    let hashes: Vec<B256> = block
        .txs
        .iter()
        .filter_map(|t| match &t.body {
            crate::protocol::tx::TxBody::Signed(s) => Some(s.blob_versioned_hashes.clone()),
            _ => None,
        })
        .flatten()
        .filter(|h| wanted.is_empty() || wanted.contains(h))
        .collect();
    let mut out = Vec::with_capacity(hashes.len());
    for (i, h) in hashes.iter().enumerate() {
        let Some(blob) = net.l1.blob(h) else { continue };
        let blob = &blob;
        if sidecars {
            let c = kzg_commitment(blob).map(|c| to_hex_prefixed(&c)).unwrap_or_default();
            out.push(json!({"index": i.to_string(), "blob": to_hex_prefixed(blob), "kzg_commitment": c}));
        } else {
            debug_assert!(kzg_commitment(blob).map(|c| versioned_hash(&c) == *h).unwrap_or(false));
            out.push(json!(to_hex_prefixed(blob)));
        }
    }
    ok(Value::Array(out))
}

// ---- engine ----

fn sim(c: &mut DevnetCtx) -> &mut EngineSim {
    if c.seq_engine {
        &mut c.net.seq
    } else {
        &mut c.net.engine
    }
}

fn version_of(method: &str) -> u8 {
    method.rsplit('V').next().and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn forkchoice_updated(c: &mut DevnetCtx, p: &Params<'_>, version: u8) -> Result<Value, RpcError> {
    let state: ForkchoiceState = p.required(0)?;
    let attributes: Option<PayloadAttributes> = p.optional(1)?;
    let call = EngineCall::ForkchoiceUpdated { version, state, attributes: attributes.map(Box::new) };
    match sim(c).handle(&call).map_err(engine_err)? {
        EngineReply::Forkchoice(r) => serde_json::to_value(r).map_err(|e| RpcError::server(e.to_string())),
        _ => Err(RpcError::server("unexpected reply")),
    }
}

fn new_payload(c: &mut DevnetCtx, p: &Params<'_>, version: u8) -> Result<Value, RpcError> {
    let execution_payload: ExecutionPayload = p.required(0)?;
    let parent_beacon_block_root: Option<B256> = if version >= 3 { Some(p.required(2)?) } else { None };
    let envelope = Box::new(ExecutionPayloadEnvelope { parent_beacon_block_root, execution_payload });
    match sim(c).handle(&EngineCall::NewPayload { version, envelope }).map_err(engine_err)? {
        EngineReply::NewPayload(s) => serde_json::to_value(s).map_err(|e| RpcError::server(e.to_string())),
        _ => Err(RpcError::server("unexpected reply")),
    }
}

fn get_payload(c: &mut DevnetCtx, p: &Params<'_>, version: u8) -> Result<Value, RpcError> {
    let id: B64 = p.required(0)?;
    let info = PayloadInfo { id, timestamp: 0 };
    match sim(c).handle(&EngineCall::GetPayload { version, info }).map_err(engine_err)? {
        EngineReply::Payload(env) => {
            let mut v = json!({"executionPayload": env.execution_payload, "blockValue": "0x0"});
            if version >= 3 {
                v["parentBeaconBlockRoot"] = json!(env.parent_beacon_block_root);
                v["blobsBundle"] = json!({"commitments": [], "proofs": [], "blobs": []});
                v["shouldOverrideBuilder"] = json!(false);
            }
            if version >= 4 {
                v["executionRequests"] = json!([]);
            }
            Ok(v)
        }
        _ => Err(RpcError::server("unexpected reply")),
    }
}

macro_rules! versioned {
    ($name:ident, $f:ident, $v:expr) => {
        fn $name(c: &mut DevnetCtx, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
            $f(c, p, $v)
        }
    };
}

versioned!(fcu1, forkchoice_updated, 1);
versioned!(fcu2, forkchoice_updated, 2);
versioned!(fcu3, forkchoice_updated, 3);
versioned!(np2, new_payload, 2);
versioned!(np3, new_payload, 3);
versioned!(np4, new_payload, 4);
versioned!(gp2, get_payload, 2);
versioned!(gp3, get_payload, 3);
versioned!(gp4, get_payload, 4);
versioned!(gp5, get_payload, 5);

fn exchange_capabilities(_: &mut DevnetCtx, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let _theirs: Vec<String> = p.required(0)?;
    Ok(json!(ENGINE_METHODS))
}

fn l2_block(c: &DevnetCtx, by: Result<Id, B256>, full: bool) -> Value {
    let e = if c.seq_engine { &c.net.seq } else { &c.net.engine };
    let hash = match by {
        Ok(Id::Number(n)) => e.block_by_number(n).map(|b| b.envelope.execution_payload.block_hash),
        Ok(Id::Tag(t)) => match t.as_str() {
            "latest" | "pending" => Some(e.head),
            "safe" => Some(e.safe),
            "finalized" => Some(e.finalized),
            "earliest" => e.block_by_number(0).map(|b| b.envelope.execution_payload.block_hash),
            _ => None,
        },
        Err(h) => Some(h),
    };
    let Some(b) = hash.and_then(|h| e.block(&h)) else { return Value::Null };
    let txs: Vec<Transaction> = b
        .envelope
        .execution_payload
        .transactions
        .iter()
        .filter_map(|t| Transaction::decode(t).ok())
        .collect();
    block_json(&b.header, b.envelope.execution_payload.block_hash, &txs, full)
}

fn l2_get_block_by_number(c: &mut DevnetCtx, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let full = p.optional::<bool>(1)?.unwrap_or(false);
    Ok(l2_block(c, Ok(block_id(p, 0)?), full))
}

fn l2_get_block_by_hash(c: &mut DevnetCtx, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let full = p.optional::<bool>(1)?.unwrap_or(false);
    Ok(l2_block(c, Err(p.required::<B256>(0)?), full))
}

/// The stand-in's mempool: a transaction that decodes, is signed for this chain and is not
/// there yet waits for the next block built without `noTxPool` (as on op-reth's auth port).
fn l2_send_raw_transaction(c: &mut DevnetCtx, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    const MAX_POOL: usize = 1024;
    let raw: crate::protocol::primitives::Bytes = p.required(0)?;
    let tx = Transaction::decode(&raw)
        .map_err(|e| RpcError::invalid_params(format!("invalid transaction: {e}")))?;
    let signed =
        tx.as_signed().ok_or_else(|| RpcError::invalid_params("deposit transactions are not accepted"))?;
    if signed.chain_id.is_some_and(|id| id != c.net.cfg.l2_chain_id) {
        return Err(RpcError::server("invalid chain id"));
    }
    tx.sender().map_err(|e| RpcError::invalid_params(format!("invalid signature: {e}")))?;
    let pool = &mut sim(c).pool;
    if pool.contains(&raw) {
        return Err(RpcError::server("already known"));
    }
    if pool.len() >= MAX_POOL {
        return Err(RpcError::server("txpool is full"));
    }
    pool.push(raw.clone());
    Ok(json!(crate::protocol::primitives::keccak256(&raw)))
}

fn l2_chain_id(c: &mut DevnetCtx, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    Ok(json!(quantity(c.net.cfg.l2_chain_id)))
}

impl DevnetService {
    /// Builds the method tables around a devnet; `clock` reads the monotonic clock.
    pub fn new(net: Devnet, jwt: [u8; 32], clock: Box<dyn Fn() -> Instant>) -> Result<Self, String> {
        let e = |e: rpc::jsonrpc::DuplicateMethod| e.to_string();
        let limits = rpc::jsonrpc::Limits::default();
        let mut l1 = Dispatcher::new(VERSION, false, limits);
        l1.register("eth_chainId", 0, l1_chain_id).map_err(e)?;
        l1.register("eth_blockNumber", 0, l1_block_number).map_err(e)?;
        l1.register("eth_getBlockByNumber", 2, eth_get_block_by_number).map_err(e)?;
        l1.register("eth_getBlockByHash", 2, eth_get_block_by_hash).map_err(e)?;
        l1.register("eth_getBlockReceipts", 1, eth_get_block_receipts).map_err(e)?;
        l1.register("eth_getProof", 3, eth_get_proof).map_err(e)?;
        let mut engine = Dispatcher::new(VERSION, false, limits);
        let fns: [(&'static str, rpc::jsonrpc::Handler<DevnetCtx>); 10] = [
            ("engine_forkchoiceUpdatedV1", fcu1),
            ("engine_forkchoiceUpdatedV2", fcu2),
            ("engine_forkchoiceUpdatedV3", fcu3),
            ("engine_newPayloadV2", np2),
            ("engine_newPayloadV3", np3),
            ("engine_newPayloadV4", np4),
            ("engine_getPayloadV2", gp2),
            ("engine_getPayloadV3", gp3),
            ("engine_getPayloadV4", gp4),
            ("engine_getPayloadV5", gp5),
        ];
        for (name, f) in fns {
            debug_assert_eq!(
                version_of(name) as usize,
                name.chars().last().and_then(|c| c.to_digit(10)).unwrap_or(0) as usize
            );
            engine.register(name, 4, f).map_err(e)?;
        }
        engine.register("engine_exchangeCapabilities", 1, exchange_capabilities).map_err(e)?;
        engine.register("eth_chainId", 0, l2_chain_id).map_err(e)?;
        engine.register("eth_getBlockByNumber", 2, l2_get_block_by_number).map_err(e)?;
        engine.register("eth_getBlockByHash", 2, l2_get_block_by_hash).map_err(e)?;
        engine.register("eth_sendRawTransaction", 1, l2_send_raw_transaction).map_err(e)?;
        Ok(DevnetService {
            ctx: DevnetCtx { net, jwt, clock, served: (0, 0), seq_engine: false },
            l1,
            engine,
        })
    }
}

impl rpc::Service for DevnetService {
    fn serve(&mut self, listener: Listener, req: &rpc::Request, now: Now) -> rpc::Reply {
        self.answer(listener, req, now).into()
    }
}

impl DevnetService {
    fn answer(&mut self, listener: Listener, req: &rpc::Request, now: Now) -> rpc::Response {
        match listener {
            Listener::DevnetL1 => {
                self.ctx.served.0 += 1;
                if req.method == "GET" && req.path().starts_with("/eth/v1/") {
                    let (status, body) = beacon_get(&self.ctx.net, &req.target);
                    return rpc::Response::new(status, "application/json", body.into_bytes());
                }
                let (table, ctx) = (&self.l1, &mut self.ctx);
                rpc::serve_rpc(req, VERSION, |body| table.handle(ctx, body, now))
            }
            Listener::DevnetEngine | Listener::DevnetSeqEngine => {
                self.ctx.served.1 += 1;
                self.ctx.seq_engine = listener == Listener::DevnetSeqEngine;
                let token = req.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer "));
                let secs = now.unix_ms / 1000;
                if let Err(e) = token
                    .ok_or("missing token".to_string())
                    .and_then(|t| crate::protocol::jwt::verify(&self.ctx.jwt, t, secs, 60))
                {
                    return rpc::Response::text(401, &format!("invalid token: {e}"));
                }
                let (table, ctx) = (&self.engine, &mut self.ctx);
                rpc::serve_rpc(req, VERSION, |body| table.handle(ctx, body, now))
            }
            _ => rpc::Response::text(404, "404 page not found"),
        }
    }
}
