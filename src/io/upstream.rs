//! The upstream clients, each on its own worker thread: L1 execution RPC (blocks, receipts,
//! head labels), the L1 beacon API (blobs, checked against their versioned hashes with KZG), and
//! the execution engine (Engine API calls with JWT, L2 blocks). Requests come from the core;
//! answers go back as events.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::rpc_client::{ClientError, RpcClient, RpcStats, SharedLimiter};
use crate::derive::data::{Arrival, BlockInfo, FetchRequest};
use crate::derive::l2::{self, L2BlockParts};
use crate::driver::l1_poll::L1Label;
use crate::driver::runtime_config::{ProtocolVersion, RuntimeConfigData};
use crate::driver::status::SyncStatus;
use crate::engine::api::{EngineCall, EngineError, EngineReply};
use crate::event::Event;
use crate::protocol::block::{verify_receipts_root, RpcBlock};
use crate::protocol::output_root::OutputV0;
use crate::protocol::payload::ExecutionPayloadEnvelope;
use crate::protocol::primitives::{keccak256, quantity, Address, Bytes, B256, U256};
use crate::protocol::proof::{named_slot, AccountProof};
use crate::protocol::receipt::{Receipt, RpcReceipt};
use crate::protocol::rollup::{Fork, RollupConfig};
use crate::rpc::deferred::{RpcJob, RpcJobOutput, L2_TO_L1_MESSAGE_PASSER};

/// Work for the L1 worker.
#[derive(Debug, Clone)]
pub enum L1Job {
    Fetch(FetchRequest),
    /// A label's block; `txs`: with its transactions (only the latest poll asks).
    Poll {
        label: L1Label,
        txs: bool,
    },
    /// Read the runtime config at `at` (a cached header: only the proofs are fetched), or
    /// `confs` blocks behind the head.
    RuntimeConfig {
        at: Option<Arc<BlockInfo>>,
        confs: u64,
        system_config: Address,
        protocol_versions: Address,
    },
}

/// How receipts are fetched from L1 (`--l1.rpckind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptsMethod {
    /// `eth_getBlockReceipts`.
    BlockReceipts,
    /// `debug_getRawReceipts`.
    DebugRawReceipts,
    /// `eth_getTransactionReceipt` per transaction.
    PerTransaction,
}

/// The L1 execution RPC client.
pub struct L1Client {
    rpc: RpcClient,
    trust: bool,
    receipts: ReceiptsMethod,
    max_batch: usize,
    stats: Option<RpcStats>,
}

fn arrival_err(req: FetchRequest, e: impl std::fmt::Display) -> Event {
    Event::ChainDataArrived(Box::new(Arrival::Failed(req, e.to_string())))
}

impl L1Client {
    pub fn new(url: &str, trust: bool, receipts: ReceiptsMethod, timeout: Duration) -> L1Client {
        L1Client {
            rpc: RpcClient::new(url, timeout, None, Vec::new()),
            trust,
            receipts,
            max_batch: 20,
            stats: None,
        }
    }

    /// `--l1.rpc-max-batch-size`: receipts fetched per JSON-RPC batch.
    pub fn with_max_batch(mut self, n: usize) -> L1Client {
        self.max_batch = n.max(1);
        self
    }

    /// `--l1.rpc-rate-limit` (requests a second; 0: none), bursting up to the batch size as
    /// op-node's rate-limiting client does. Call after `with_max_batch`.
    pub fn with_rate_limit(mut self, per_second: f64) -> L1Client {
        let burst = self.max_batch;
        self.rpc = self.rpc.with_rate_limit(per_second, burst);
        self
    }

    /// Paces the client with a limiter shared by every L1 worker thread (the limit is global).
    pub fn with_limiter(mut self, limiter: Option<SharedLimiter>) -> L1Client {
        self.rpc = self.rpc.with_limiter(limiter);
        self
    }

    /// Counts the client's requests under `rpc="l1"`.
    pub fn with_stats(mut self, stats: RpcStats) -> L1Client {
        self.rpc = self.rpc.with_stats(stats.clone(), "l1");
        self.stats = Some(stats);
        self
    }

    /// Runs one job.
    pub fn handle(&mut self, job: L1Job) -> Event {
        match job {
            L1Job::Poll { label: L1Label::Latest, txs } => match self.latest(txs) {
                Ok(Some(a)) => Event::L1HeadPolled(Box::new(a)),
                Ok(None) => Event::L1PollFailed { label: "latest", err: "no such block".into() },
                Err(e) => Event::L1PollFailed { label: "latest", err: e },
            },
            L1Job::Poll { label, .. } => match self.header(json!(label.tag())) {
                Ok(Some(info)) => {
                    let r = info.block_ref();
                    match label {
                        L1Label::Latest => Event::L1HeadUpdated(r),
                        L1Label::Safe => Event::L1SafeUpdated(r),
                        L1Label::Finalized => Event::L1FinalizedUpdated(r),
                    }
                }
                Ok(None) => Event::L1PollFailed { label: label.tag(), err: "no such block".into() },
                Err(e) => Event::L1PollFailed { label: label.tag(), err: e },
            },
            L1Job::Fetch(req) => self.fetch(req),
            L1Job::RuntimeConfig { at, confs, system_config, protocol_versions } => {
                match self.runtime_config(at, confs, system_config, protocol_versions) {
                    Ok(d) => Event::RuntimeConfigLoaded(Box::new(d)),
                    Err(err) => Event::RuntimeConfigLoadFailed { err },
                }
            }
        }
    }

    /// Storage slots of `address` at block `hash`, proven against its state root (op-node's
    /// `ReadStorageAt`, which verifies the `eth_getProof` answer the same way).
    pub fn storage_at(
        &mut self,
        address: &Address,
        slots: &[U256],
        header: &BlockInfo,
    ) -> Result<Vec<U256>, String> {
        // Keys go as 32-byte words (op-node's `common.Hash`): reth and anvil reject quantities
        // such as "0x0" or an odd number of digits.
        let keys: Vec<B256> = slots.iter().map(|s| B256(s.0)).collect();
        let v = self
            .rpc
            .call("eth_getProof", json!([address, keys, header.hash]))
            .map_err(|e| format!("eth_getProof: {e}"))?;
        let proof: AccountProof = v.parse().map_err(|e| format!("malformed eth_getProof: {e}"))?;
        if proof.address != *address {
            return Err(format!("eth_getProof answered for {} instead of {address}", proof.address));
        }
        proof.verify(&header.header.state_root).map_err(|e| format!("invalid storage proof: {e}"))?;
        slots.iter().map(|s| proof.slot(s).ok_or_else(|| format!("eth_getProof without slot {s}"))).collect()
    }

    fn runtime_config(
        &mut self,
        at: Option<Arc<BlockInfo>>,
        confs: u64,
        system_config: Address,
        protocol_versions: Address,
    ) -> Result<RuntimeConfigData, String> {
        let at = match at {
            Some(at) => at,
            None => {
                let head = self.header(json!("latest"))?.ok_or("no L1 head")?;
                let n = head.header.number.saturating_sub(confs);
                match confs {
                    0 => Arc::new(head),
                    _ => {
                        Arc::new(self.header(json!(quantity(n)))?.ok_or_else(|| format!("no L1 block {n}"))?)
                    }
                }
            }
        };
        let signer_slot = U256(keccak256(b"systemconfig.unsafeblocksigner").0);
        let signer = self.storage_at(&system_config, &[signer_slot], &at)?[0];
        let (mut required, mut recommended) = (ProtocolVersion::default(), ProtocolVersion::default());
        if protocol_versions != Address::ZERO {
            let slots = [named_slot("protocolversion.required"), named_slot("protocolversion.recommended")];
            let v = self.storage_at(&protocol_versions, &slots, &at)?;
            required = ProtocolVersion(v[0].0);
            recommended = ProtocolVersion(v[1].0);
        }
        let mut a = [0u8; 20];
        a.copy_from_slice(&signer.0[12..]);
        Ok(RuntimeConfigData {
            l1_hash: at.hash,
            l1_number: at.header.number,
            unsafe_block_signer: Address(a),
            required,
            recommended,
        })
    }

    /// The head block: its header, or with `txs` its transactions too (verified as any fetch).
    fn latest(&mut self, txs: bool) -> Result<Option<Arrival>, String> {
        let v = self.rpc.call("eth_getBlockByNumber", json!(["latest", txs])).map_err(|e| e.to_string())?;
        let Some(b) = RpcBlock::parse(v.text()).map_err(|e| e.to_string())? else { return Ok(None) };
        let header = b.verified_header(self.trust).map_err(|e| e.to_string())?;
        if let Some(s) = &self.stats {
            s.note_l1_head(header.number);
        }
        let info = BlockInfo { hash: b.hash, header };
        if !txs {
            return Ok(Some(Arrival::L1Header(info)));
        }
        let txs = b.verified_transactions(self.trust).map_err(|e| e.to_string())?;
        Ok(Some(Arrival::L1Block(info, txs)))
    }

    fn header(&mut self, id: Value) -> Result<Option<BlockInfo>, String> {
        let method = if id.as_str().is_some_and(|s| s.len() == 66) {
            "eth_getBlockByHash"
        } else {
            "eth_getBlockByNumber"
        };
        let v = self.rpc.call(method, json!([id, false])).map_err(|e| e.to_string())?;
        let Some(b) = RpcBlock::parse(v.text()).map_err(|e| e.to_string())? else { return Ok(None) };
        let header = b.verified_header(self.trust).map_err(|e| e.to_string())?;
        Ok(Some(BlockInfo { hash: b.hash, header }))
    }

    fn fetch(&mut self, req: FetchRequest) -> Event {
        let result = match &req {
            FetchRequest::L1HeaderByNumber(n) => {
                self.header(json!(quantity(*n))).map(|o| o.map(Arrival::L1Header))
            }
            FetchRequest::L1HeaderByHash(h) => self.header(json!(h)).map(|o| o.map(Arrival::L1Header)),
            FetchRequest::L1BlockByHash(h) => self.block(h),
            FetchRequest::L1Receipts { hash, receipts_root } => {
                self.receipts(hash, receipts_root).map(|o| o.map(|r| Arrival::L1Receipts(*hash, r)))
            }
            other => Err(format!("not an L1 request: {other:?}")),
        };
        match result {
            Ok(Some(a)) => Event::ChainDataArrived(Box::new(a)),
            Ok(None) => Event::ChainDataArrived(Box::new(Arrival::NotFound(req))),
            Err(e) => arrival_err(req, e),
        }
    }

    fn block(&mut self, h: &B256) -> Result<Option<Arrival>, String> {
        let v = self.rpc.call("eth_getBlockByHash", json!([h, true])).map_err(|e| e.to_string())?;
        let Some(b) = RpcBlock::parse(v.text()).map_err(|e| e.to_string())? else { return Ok(None) };
        let header = b.verified_header(self.trust).map_err(|e| e.to_string())?;
        let txs = b.verified_transactions(self.trust).map_err(|e| e.to_string())?;
        Ok(Some(Arrival::L1Block(BlockInfo { hash: b.hash, header }, txs)))
    }

    /// Receipts by the configured method, checked against `root` unless trusted (the root of
    /// the header the pipeline holds: the request carries it, so the header is not read again).
    fn receipts(&mut self, h: &B256, root: &B256) -> Result<Option<Vec<Receipt>>, String> {
        let receipts = match self.receipts {
            ReceiptsMethod::BlockReceipts => {
                let v = self.rpc.call("eth_getBlockReceipts", json!([h])).map_err(|e| e.to_string())?;
                let Some(rs) =
                    v.parse::<Option<Vec<RpcReceipt>>>().map_err(|e| format!("malformed receipts: {e}"))?
                else {
                    return Ok(None);
                };
                rs.iter().map(|r| r.to_receipt().map_err(|e| e.to_string())).collect::<Result<Vec<_>, _>>()?
            }
            ReceiptsMethod::DebugRawReceipts => {
                let v = self.rpc.call("debug_getRawReceipts", json!([h])).map_err(|e| e.to_string())?;
                let raw: Vec<Bytes> = v.parse().map_err(|e| format!("malformed raw receipts: {e}"))?;
                raw.iter()
                    .map(|r| Receipt::decode(r).map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()?
            }
            ReceiptsMethod::PerTransaction => {
                let v = self.rpc.call("eth_getBlockByHash", json!([h, false])).map_err(|e| e.to_string())?;
                #[derive(serde::Deserialize)]
                struct TxHashes {
                    #[serde(default)]
                    transactions: Vec<B256>,
                }
                let hashes = v.parse::<Option<TxHashes>>().map_err(|e| e.to_string())?;
                let hashes = hashes.map(|h| h.transactions).unwrap_or_default();
                let mut out = Vec::with_capacity(hashes.len());
                for chunk in hashes.chunks(self.max_batch) {
                    let calls: Vec<(&str, Value)> =
                        chunk.iter().map(|t| ("eth_getTransactionReceipt", json!([t]))).collect();
                    for r in self.rpc.batch(&calls).map_err(|e| e.to_string())? {
                        let v = r.map_err(|e| e.to_string())?;
                        let rr: RpcReceipt = v.parse().map_err(|e| format!("malformed receipt: {e}"))?;
                        out.push(rr.to_receipt().map_err(|e| e.to_string())?);
                    }
                }
                out
            }
        };
        if !self.trust {
            verify_receipts_root(root, &receipts).map_err(|e| e.to_string())?;
        }
        Ok(Some(receipts))
    }
}

/// The follow source (`--l2.follow.source`): a rollup node's RPC, read for its sync status.
pub struct FollowClient {
    rpc: RpcClient,
}

/// Largest `optimism_syncStatus` answer read from a follow source (a real one is about 3 KB).
pub const MAX_SYNC_STATUS_BYTES: u64 = 64 << 10;

impl FollowClient {
    pub fn new(url: &str, timeout: Duration) -> FollowClient {
        FollowClient {
            rpc: RpcClient::new(url, timeout, None, Vec::new()).with_max_response(MAX_SYNC_STATUS_BYTES),
        }
    }

    /// Counts its requests under op-node's `follow-source-api` label.
    pub fn with_stats(mut self, stats: RpcStats) -> FollowClient {
        self.rpc = self.rpc.with_stats(stats, "follow-source-api");
        self
    }

    /// `optimism_syncStatus`, as an event for the core.
    pub fn sync_status(&mut self) -> Event {
        let status =
            self.rpc.call("optimism_syncStatus", json!([])).map_err(|e| e.to_string()).and_then(|v| {
                v.parse::<SyncStatus>().map_err(|e| format!("malformed optimism_syncStatus: {e}"))
            });
        Event::FollowSourceStatus(status.map(Box::new))
    }
}

/// Work for the engine worker.
#[derive(Debug, Clone)]
pub enum EngineJob {
    Call { id: u64, call: EngineCall },
    Fetch(FetchRequest),
}

/// The execution engine client (authenticated RPC: engine_ and eth_ namespaces).
pub struct EngineClient {
    rpc: RpcClient,
    cfg: Arc<RollupConfig>,
}

impl EngineClient {
    pub fn new(url: &str, jwt: [u8; 32], timeout: Duration, cfg: Arc<RollupConfig>) -> EngineClient {
        EngineClient { rpc: RpcClient::new(url, timeout, Some(jwt), Vec::new()), cfg }
    }

    /// Counts the client's requests under `rpc="engine-api"`.
    pub fn with_stats(mut self, stats: RpcStats) -> EngineClient {
        self.rpc = self.rpc.with_stats(stats, "engine-api");
        self
    }

    pub fn handle(&mut self, job: EngineJob) -> Event {
        match job {
            EngineJob::Call { id, call } => Event::EngineReplied { id, result: self.call(&call) },
            EngineJob::Fetch(req) => self.fetch(req),
        }
    }

    /// Runs a deferred RPC call's job (on the node's RPC worker, beside the engine worker).
    pub fn handle_rpc(&mut self, job: RpcJob) -> Event {
        match job {
            RpcJob::OutputAtBlock { call, number } => {
                Event::RpcJobDone { call, result: self.output_at_block(number).map(Box::new) }
            }
        }
    }

    /// op-node's `optimism_outputAtBlock` engine work: the block by number, then the
    /// L2ToL1MessagePasser's storage root, from the header from Isthmus on and before that from
    /// `eth_getProof` checked against the header's state root. Errors read as op-node's.
    pub fn output_at_block(&mut self, number: u64) -> Result<RpcJobOutput, String> {
        let ref_err = |e: String| format!("failed to get L2 block ref with sync status: {e}");
        let data = self
            .l2_block(json!(quantity(number)))
            .map_err(ref_err)?
            .ok_or_else(|| ref_err("not found".into()))?;
        let block = data.block_ref;
        let out_err = |e: String| format!("failed to get L2 output at block {block}: {e}");
        let header = data.header.ok_or_else(|| out_err("no header".into()))?;
        let root = if self.cfg.is_active(Fork::Isthmus, header.timestamp) {
            header.withdrawals_root.ok_or_else(|| out_err("Isthmus block without withdrawalsRoot".into()))?
        } else {
            self.account_proof(&L2_TO_L1_MESSAGE_PASSER, &block.hash, &header.state_root)
                .map_err(out_err)?
                .storage_hash
        };
        let output = OutputV0 {
            state_root: header.state_root,
            message_passer_storage_root: root,
            block_hash: block.hash,
        };
        Ok(RpcJobOutput::Output { block, output })
    }

    /// `eth_getProof` of an account (no storage keys) at block `hash`, verified against
    /// `state_root` (op-service `GetProof` plus `Verify`).
    pub fn account_proof(
        &mut self,
        address: &Address,
        hash: &B256,
        state_root: &B256,
    ) -> Result<AccountProof, String> {
        let v = self
            .rpc
            .call("eth_getProof", json!([address, [], hash]))
            .map_err(|e| format!("failed to get contract proof at block {hash}: {e}"))?;
        if v.is_null() {
            return Err("proof not found".into());
        }
        let proof: AccountProof =
            v.parse().map_err(|e| format!("failed to get contract proof at block {hash}: {e}"))?;
        if proof.address != *address {
            return Err(format!("eth_getProof answered for {} instead of {address}", proof.address));
        }
        proof
            .verify(state_root)
            .map_err(|e| format!("invalid withdrawal root hash, state root was {state_root}: {e}"))?;
        Ok(proof)
    }

    /// `engine_exchangeCapabilities`: the methods the engine supports.
    pub fn exchange_capabilities(&mut self, ours: &[&str]) -> Result<Vec<String>, ClientError> {
        let v = self.rpc.call("engine_exchangeCapabilities", json!([ours]))?;
        v.parse().map_err(|e| ClientError::Transport(e.to_string()))
    }

    /// A block by number with its transactions, as the node reads L2 blocks (`None`: not
    /// there yet).
    pub fn block_by_number(
        &mut self,
        number: u64,
    ) -> Result<Option<crate::derive::data::L2BlockData>, String> {
        self.l2_block(json!(quantity(number)))
    }

    /// The number and hash of block `tag` ("latest", or a quantity), unchecked against the
    /// rollup config (for telling which chain an engine holds).
    pub fn block_id(&mut self, tag: &str) -> Result<Option<(u64, B256)>, String> {
        let v = self.rpc.call("eth_getBlockByNumber", json!([tag, false])).map_err(|e| e.to_string())?;
        #[derive(serde::Deserialize)]
        struct Id {
            number: String,
            hash: B256,
        }
        match v.parse::<Option<Id>>() {
            Ok(None) => Ok(None),
            Ok(Some(id)) => crate::protocol::primitives::parse_quantity(&id.number)
                .map(|n| Some((n, id.hash)))
                .map_err(|_| format!("malformed block {tag}")),
            Err(_) => Err(format!("malformed block {tag}")),
        }
    }

    /// `eth_sendRawTransaction` (the auth port of op-reth and op-geth serves it).
    pub fn send_raw_transaction(&mut self, raw: &Bytes) -> Result<(), ClientError> {
        self.rpc.call("eth_sendRawTransaction", json!([raw])).map(|_| ())
    }

    /// `eth_chainId` of the engine.
    pub fn chain_id(&mut self) -> Result<u64, ClientError> {
        let v = self.rpc.call("eth_chainId", json!([]))?;
        v.parse::<String>()
            .ok()
            .and_then(|s| crate::protocol::primitives::parse_quantity(&s).ok())
            .ok_or_else(|| ClientError::Transport(format!("bad chain id {}", v.text())))
    }

    fn call(&mut self, call: &EngineCall) -> Result<EngineReply, EngineError> {
        let to_err = |e: ClientError| match e {
            ClientError::Rpc { code, message } => EngineError::Rpc { code, message },
            ClientError::Transport(m) => EngineError::Transport(m),
        };
        let bad = |e: serde_json::Error| EngineError::Transport(format!("malformed engine response: {e}"));
        let method = call.method();
        match call {
            EngineCall::ForkchoiceUpdated { state, attributes, .. } => {
                let v = self.rpc.call(&method, json!([state, attributes])).map_err(to_err)?;
                v.parse().map(EngineReply::Forkchoice).map_err(bad)
            }
            EngineCall::NewPayload { version, envelope } => {
                let p = &envelope.execution_payload;
                let params = match version {
                    2 => json!([p]),
                    3 => json!([p, [], envelope.parent_beacon_block_root]),
                    _ => json!([p, [], envelope.parent_beacon_block_root, []]),
                };
                let v = self.rpc.call(&method, params).map_err(to_err)?;
                v.parse().map(EngineReply::NewPayload).map_err(bad)
            }
            EngineCall::GetPayload { info, .. } => {
                // V3+ answers carry blockValue, blobsBundle, ... too: not read.
                let v = self.rpc.call(&method, json!([info.id])).map_err(to_err)?;
                let envelope: ExecutionPayloadEnvelope = v.parse().map_err(bad)?;
                Ok(EngineReply::Payload(Box::new(envelope)))
            }
        }
    }

    fn l2_block(&mut self, id: Value) -> Result<Option<crate::derive::data::L2BlockData>, String> {
        let method = if id.as_str().is_some_and(|s| s.len() == 66) {
            "eth_getBlockByHash"
        } else {
            "eth_getBlockByNumber"
        };
        let v = self.rpc.call(method, json!([id, true])).map_err(|e| e.to_string())?;
        let Some(b) = RpcBlock::parse(v.text()).map_err(|e| e.to_string())? else { return Ok(None) };
        let header = b.verified_header(false).map_err(|e| e.to_string())?;
        let txs: Vec<Bytes> = b
            .verified_transactions(true)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|t| Bytes(t.into_encoded()))
            .collect();
        let parts = L2BlockParts {
            hash: b.hash,
            number: header.number,
            parent_hash: header.parent_hash,
            timestamp: header.timestamp,
            gas_limit: header.gas_limit,
            extra_data: &header.extra_data,
            txs: &txs,
        };
        let mut data = l2::block_data(&self.cfg, &parts)?;
        data.header = Some(Arc::new(header));
        Ok(Some(data))
    }

    fn fetch(&mut self, req: FetchRequest) -> Event {
        let result = match &req {
            FetchRequest::L2BlockByNumber(n) => {
                self.l2_block(json!(quantity(*n))).map(|o| o.map(Arrival::L2Block))
            }
            FetchRequest::L2BlockByHash(h) => self.l2_block(json!(h)).map(|o| o.map(Arrival::L2Block)),
            FetchRequest::L2BlockByLabel(label) => {
                let r = self.l2_block(json!(label.tag()));
                return match r {
                    Ok(d) => Event::ChainDataArrived(Box::new(Arrival::L2Label(*label, d))),
                    Err(e) => arrival_err(req, e),
                };
            }
            other => Err(format!("not an L2 request: {other:?}")),
        };
        match result {
            Ok(Some(a)) => Event::ChainDataArrived(Box::new(a)),
            Ok(None) => Event::ChainDataArrived(Box::new(Arrival::NotFound(req))),
            Err(e) => arrival_err(req, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::stub_http::{StubRequest, StubResponse, StubServer};
    use std::sync::Mutex;

    #[test]
    fn proof_keys_are_sent_as_32_byte_words() {
        let seen = Arc::new(Mutex::new(Value::Null));
        let s2 = seen.clone();
        let srv = StubServer::start(move |r: &StubRequest| {
            *s2.lock().unwrap() = serde_json::from_slice(&r.body).unwrap_or_default();
            StubResponse::json(200, r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"no"}}"#)
        })
        .unwrap();
        let mut l1 = L1Client::new(&srv.url(), false, ReceiptsMethod::BlockReceipts, Duration::from_secs(5));
        let header = BlockInfo::new(crate::protocol::header::Header::default());
        assert!(l1.storage_at(&Address([1; 20]), &[U256::ZERO, U256::from_u64(0xfff)], &header).is_err());
        let keys = seen.lock().unwrap()["params"][1].clone();
        assert_eq!(keys, json!([B256::ZERO, B256(U256::from_u64(0xfff).0)]));
        assert_eq!(keys[0].as_str().map(str::len), Some(66));
    }
}
