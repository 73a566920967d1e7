//! The engine's chain: every block it holds (each with its post-state), the canonical chain to
//! the forkchoice head, block building from payload attributes, and block import (re-execution
//! and checking) for newPayload. Answers as op-reth does: SYNCING for an unknown parent or
//! head, INVALID with a reason (and the last valid ancestor) for a block that does not
//! execute to what it claims, -38002 for a forkchoice whose safe or finalized block is not an
//! ancestor of its head.
//!
//! Call order: `Chain::new` from genesis; `new_payload` and `forkchoice_updated` as the Engine
//! API calls arrive; `payload` for getPayload; `send_transaction` for the mempool.

use std::collections::HashMap;
use std::sync::Arc;

use alloy_consensus::proofs::{calculate_receipt_root, calculate_transaction_root};
use alloy_consensus::transaction::{Recovered, SignerRecoverable};
use alloy_consensus::{Header, Transaction, TxReceipt, EMPTY_OMMER_ROOT_HASH};
use alloy_eips::eip1559::calc_next_block_base_fee;
use alloy_eips::eip2718::{Decodable2718, WithEncoded};
use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
use alloy_evm::block::{BlockExecutor, BlockExecutorFactory};
use alloy_evm::EvmFactory;
use alloy_op_evm::block::receipt_builder::OpAlloyReceiptBuilder;
use alloy_op_evm::{evm_env_for_op_block, OpBlockExecutionCtx, OpBlockExecutorFactory, OpEvmFactory, OpTx};
use alloy_op_hardforks::OpHardfork;
use alloy_primitives::{keccak256, Address, Bloom, Bytes, B256, B64};
use alloy_trie::EMPTY_ROOT_HASH;
use op_alloy::consensus::{
    decode_holocene_extra_data, decode_jovian_extra_data, encode_holocene_extra_data,
    encode_jovian_extra_data, OpReceiptEnvelope, OpTxEnvelope,
};
use revm::database::states::bundle_state::BundleRetention;

use crate::genesis::{self, MESSAGE_PASSER};
use crate::mempool::Pool;
use crate::state::{Codes, PreState, State};

/// One transaction of a block, decoded and with its sender.
#[derive(Clone, Debug)]
pub struct Tx {
    pub raw: Bytes,
    pub envelope: OpTxEnvelope,
    pub sender: Address,
    pub hash: B256,
}

impl Tx {
    /// Decodes an EIP-2718 transaction and recovers its sender.
    pub fn decode(raw: Bytes) -> Result<Tx, String> {
        let envelope =
            OpTxEnvelope::decode_2718(&mut raw.as_ref()).map_err(|e| format!("bad transaction: {e}"))?;
        let sender = envelope.recover_signer().map_err(|e| format!("bad signature: {e}"))?;
        let hash = keccak256(&raw);
        Ok(Tx { raw, envelope, sender, hash })
    }

    pub fn is_deposit(&self) -> bool {
        matches!(self.envelope, OpTxEnvelope::Deposit(_))
    }
}

/// A block the engine holds, with what executing it gave.
#[derive(Debug)]
pub struct Block {
    pub header: Header,
    pub hash: B256,
    pub txs: Vec<Tx>,
    pub receipts: Vec<OpReceiptEnvelope>,
    pub state: State,
}

/// What a block is built from or checked against (the header fields that are inputs).
#[derive(Clone, Debug)]
pub struct BlockInput {
    pub timestamp: u64,
    pub fee_recipient: Address,
    pub prev_randao: B256,
    pub gas_limit: u64,
    pub extra_data: Bytes,
    pub parent_beacon_block_root: Option<B256>,
}

/// Payload attributes as the rollup node sends them (already version-checked).
#[derive(Clone, Debug)]
pub struct Attributes {
    pub timestamp: u64,
    pub prev_randao: B256,
    pub fee_recipient: Address,
    pub withdrawals: Option<Vec<serde_json::Value>>,
    pub parent_beacon_block_root: Option<B256>,
    pub transactions: Vec<Bytes>,
    pub no_tx_pool: bool,
    pub gas_limit: Option<u64>,
    pub eip1559_params: Option<B64>,
    pub min_base_fee: Option<u64>,
}

/// A payload status as the Engine API spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Valid(B256),
    Syncing,
    Invalid { latest_valid: Option<B256>, reason: String },
}

/// An Engine API error (code and message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: i64,
    pub message: String,
}

impl ApiError {
    pub fn new(code: i64, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }
}

/// Unknown payload (getPayload).
pub const UNKNOWN_PAYLOAD: i64 = -38001;
/// Invalid forkchoice state.
pub const INVALID_FORKCHOICE: i64 = -38002;
/// Invalid payload attributes.
pub const INVALID_ATTRIBUTES: i64 = -38003;

/// How many built payloads are kept for getPayload.
const KEEP_PAYLOADS: usize = 64;

/// The chain and everything the engine keeps.
pub struct Chain {
    pub spec: genesis::Chain,
    pub codes: Codes,
    pub blocks: HashMap<B256, Arc<Block>>,
    /// Hashes of blocks that failed to import, with their last valid ancestor.
    pub invalid: HashMap<B256, B256>,
    /// Canonical block hashes by number (genesis first).
    pub canonical: Vec<B256>,
    pub genesis: B256,
    pub safe: B256,
    pub finalized: B256,
    /// Built payloads by id, oldest first.
    pub payloads: Vec<(B64, Arc<Block>)>,
    pub pool: Pool,
    /// Transaction hash -> (block hash, index), for the blocks held.
    pub tx_index: HashMap<B256, (B256, usize)>,
    /// Forkchoice updates refused with -38002 (for tests to read).
    pub refused_forkchoice: u64,
}

impl Chain {
    /// A chain at the genesis of `genesis_json`.
    pub fn new(genesis_json: &serde_json::Value, pool_cap: usize) -> Result<Chain, String> {
        let mut codes = Codes::new();
        let (spec, state, header) = genesis::load(genesis_json, &mut codes)?;
        let hash = header.hash_slow();
        let block = Arc::new(Block { header, hash, txs: Vec::new(), receipts: Vec::new(), state });
        let mut blocks = HashMap::new();
        blocks.insert(hash, block);
        Ok(Chain {
            spec,
            codes,
            blocks,
            invalid: HashMap::new(),
            canonical: vec![hash],
            genesis: hash,
            safe: hash,
            finalized: hash,
            payloads: Vec::new(),
            pool: Pool::new(pool_cap),
            tx_index: HashMap::new(),
            refused_forkchoice: 0,
        })
    }

    pub fn head(&self) -> &Arc<Block> {
        &self.blocks[self.canonical.last().expect("genesis")]
    }

    pub fn block(&self, hash: &B256) -> Option<&Arc<Block>> {
        self.blocks.get(hash)
    }

    pub fn canonical_block(&self, number: u64) -> Option<&Arc<Block>> {
        self.canonical.get(number as usize).and_then(|h| self.blocks.get(h))
    }

    /// Whether `hash` is `head` or one of its ancestors.
    fn is_ancestor(&self, hash: &B256, head: &Arc<Block>) -> bool {
        let Some(b) = self.blocks.get(hash) else { return false };
        let mut cur = head.clone();
        while cur.header.number > b.header.number {
            match self.blocks.get(&cur.header.parent_hash) {
                Some(p) => cur = p.clone(),
                None => return false,
            }
        }
        cur.hash == *hash
    }

    /// engine_forkchoiceUpdated: moves the canonical chain to `head` (checking that safe and
    /// finalized are its ancestors) and builds a payload on it when given attributes.
    pub fn forkchoice_updated(
        &mut self,
        head: B256,
        safe: B256,
        finalized: B256,
        attrs: Option<(Attributes, u8)>,
    ) -> Result<(Status, Option<B64>), ApiError> {
        if let Some(lvh) = self.invalid.get(&head) {
            return Ok((
                Status::Invalid { latest_valid: Some(*lvh), reason: "invalid head block".into() },
                None,
            ));
        }
        let Some(head_block) = self.blocks.get(&head).cloned() else {
            return Ok((Status::Syncing, None));
        };
        for (what, h) in [("safe", safe), ("finalized", finalized)] {
            if !h.is_zero() && !self.is_ancestor(&h, &head_block) {
                self.refused_forkchoice += 1;
                eprintln!(
                    "engine-peer: refused forkchoice: {what} block {h} is not an ancestor of head {head}"
                );
                return Err(ApiError::new(INVALID_FORKCHOICE, "Invalid forkchoice state"));
            }
        }
        self.set_head(&head_block);
        if !safe.is_zero() {
            self.safe = safe;
        }
        if !finalized.is_zero() {
            self.finalized = finalized;
        }
        let id = match attrs {
            None => None,
            Some((a, version)) => Some(self.build(&head_block, a, version)?),
        };
        Ok((Status::Valid(head), id))
    }

    /// Makes `head` the canonical tip (a reorg when it is not on the current chain) and
    /// drops pool transactions its state makes stale.
    fn set_head(&mut self, head: &Arc<Block>) {
        let mut path = Vec::new();
        let mut cur = head.clone();
        loop {
            let n = cur.header.number as usize;
            if self.canonical.get(n) == Some(&cur.hash) {
                break;
            }
            path.push(cur.hash);
            match self.blocks.get(&cur.header.parent_hash) {
                Some(p) => cur = p.clone(),
                None => break,
            }
        }
        self.canonical.truncate(cur.header.number as usize + 1);
        self.canonical.extend(path.into_iter().rev());
        self.pool.prune(&head.state);
    }

    /// Builds a block on `parent` from `a`: its transactions first, then (unless noTxPool)
    /// the pool's, as gas allows. Returns the payload id.
    fn build(&mut self, parent: &Arc<Block>, a: Attributes, version: u8) -> Result<B64, ApiError> {
        let bad = |m: String| ApiError::new(INVALID_ATTRIBUTES, format!("Invalid payload attributes: {m}"));
        let t = a.timestamp;
        if t <= parent.header.timestamp {
            return Err(bad(format!("timestamp {t} not after the parent's {}", parent.header.timestamp)));
        }
        let spec = &self.spec;
        let active = |f| spec.active(f, t);
        let gas_limit = a.gas_limit.ok_or_else(|| bad("gasLimit missing".into()))?;
        if active(OpHardfork::Canyon) != a.withdrawals.is_some() {
            return Err(bad("withdrawals must be given exactly from Canyon (Shanghai)".into()));
        }
        if active(OpHardfork::Ecotone) != a.parent_beacon_block_root.is_some() {
            return Err(bad("parentBeaconBlockRoot must be given exactly from Ecotone (Cancun)".into()));
        }
        if active(OpHardfork::Holocene) != a.eip1559_params.is_some() {
            return Err(bad("eip1559Params must be given exactly from Holocene".into()));
        }
        if active(OpHardfork::Jovian) != a.min_base_fee.is_some() {
            return Err(bad("minBaseFee must be given exactly from Jovian".into()));
        }
        let params = spec.base_fee_params_at(t);
        let extra_data = match (a.eip1559_params, a.min_base_fee) {
            (Some(p), Some(min)) => {
                encode_jovian_extra_data(p, params, min).map_err(|e| bad(e.to_string()))?
            }
            (Some(p), None) => encode_holocene_extra_data(p, params).map_err(|e| bad(e.to_string()))?,
            _ => Bytes::new(),
        };
        let forced = a
            .transactions
            .iter()
            .map(|raw| Tx::decode(raw.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let pool = if a.no_tx_pool { Vec::new() } else { self.pool.candidates(&parent.state) };
        let input = BlockInput {
            timestamp: t,
            fee_recipient: a.fee_recipient,
            prev_randao: a.prev_randao,
            gas_limit,
            extra_data,
            parent_beacon_block_root: a.parent_beacon_block_root,
        };
        let (block, dropped) = self.execute(parent, &input, forced, pool).map_err(bad)?;
        for h in dropped {
            self.pool.remove(&h);
        }
        let mut id_input = parent.hash.to_vec();
        id_input.push(version);
        id_input.extend_from_slice(block.hash.as_slice());
        let id = B64::from_slice(&keccak256(&id_input)[..8]);
        self.payloads.retain(|(i, _)| *i != id);
        self.payloads.push((id, Arc::new(block)));
        if self.payloads.len() > KEEP_PAYLOADS {
            self.payloads.remove(0);
        }
        Ok(id)
    }

    /// The payload built under `id`.
    pub fn payload(&self, id: &B64) -> Option<&Arc<Block>> {
        self.payloads.iter().find(|(i, _)| i == id).map(|(_, b)| b)
    }

    /// engine_newPayload: imports the block `claimed` (its header as the payload spells it,
    /// hash included) with `txs`, re-executing it on its parent.
    pub fn new_payload(&mut self, claimed: &Header, claimed_hash: B256, txs: Vec<Bytes>) -> Status {
        if self.blocks.contains_key(&claimed_hash) {
            return Status::Valid(claimed_hash);
        }
        if let Some(lvh) = self.invalid.get(&claimed.parent_hash).copied() {
            self.invalid.insert(claimed_hash, lvh);
            return Status::Invalid {
                latest_valid: Some(lvh),
                reason: "links to a previously rejected block".into(),
            };
        }
        let computed = claimed.hash_slow();
        if computed != claimed_hash {
            return Status::Invalid {
                latest_valid: None,
                reason: format!("block hash mismatch: want {claimed_hash}, got {computed}"),
            };
        }
        let Some(parent) = self.blocks.get(&claimed.parent_hash).cloned() else {
            return Status::Syncing;
        };
        let invalid = |chain: &mut Chain, reason: String| {
            chain.invalid.insert(claimed_hash, parent.hash);
            Status::Invalid { latest_valid: Some(parent.hash), reason }
        };
        if claimed.number != parent.header.number + 1 {
            return invalid(
                self,
                format!("block number {} after parent {}", claimed.number, parent.header.number),
            );
        }
        let txs = match txs.into_iter().map(Tx::decode).collect::<Result<Vec<_>, _>>() {
            Ok(t) => t,
            Err(e) => return invalid(self, e),
        };
        let input = BlockInput {
            timestamp: claimed.timestamp,
            fee_recipient: claimed.beneficiary,
            prev_randao: claimed.mix_hash,
            gas_limit: claimed.gas_limit,
            extra_data: claimed.extra_data.clone(),
            parent_beacon_block_root: claimed.parent_beacon_block_root,
        };
        let block = match self.execute(&parent, &input, txs, Vec::new()) {
            Ok((b, _)) => b,
            Err(e) => return invalid(self, e),
        };
        if block.hash != claimed_hash {
            let reason = header_mismatch(claimed, &block.header);
            return invalid(self, reason);
        }
        self.insert(block);
        Status::Valid(claimed_hash)
    }

    fn insert(&mut self, block: Block) {
        for (i, t) in block.txs.iter().enumerate() {
            self.tx_index.insert(t.hash, (block.hash, i));
        }
        self.blocks.insert(block.hash, Arc::new(block));
    }

    /// Validates the extraData of a block at `t` (Holocene / Jovian encodings).
    fn check_extra_data(&self, t: u64, extra: &[u8]) -> Result<(), String> {
        if self.spec.active(OpHardfork::Jovian, t) {
            decode_jovian_extra_data(extra).map(|_| ()).map_err(|e| format!("extraData: {e}"))
        } else if self.spec.active(OpHardfork::Holocene, t) {
            decode_holocene_extra_data(extra).map(|_| ()).map_err(|e| format!("extraData: {e}"))
        } else {
            Ok(())
        }
    }

    /// The base fee of the block after `parent` at `t`: London's rule with the chain's
    /// parameters, Holocene's parameters from the parent's extraData, and from Jovian the
    /// parent's DA footprint (blobGasUsed) counted as gas and the minimum base fee.
    pub fn next_base_fee(&self, parent: &Header, t: u64) -> Result<u64, String> {
        let pt = parent.timestamp;
        let params = |e: u32, d: u32| {
            if e == 0 && d == 0 {
                self.spec.base_fee_params_at(t)
            } else {
                alloy_eips::eip1559::BaseFeeParams::new(d as u128, e as u128)
            }
        };
        let base = parent.base_fee_per_gas.unwrap_or_default();
        if self.spec.active(OpHardfork::Jovian, pt) {
            let (e, d, min) =
                decode_jovian_extra_data(&parent.extra_data).map_err(|e| format!("parent extraData: {e}"))?;
            let used = parent.gas_used.max(parent.blob_gas_used.unwrap_or_default());
            Ok(calc_next_block_base_fee(used, parent.gas_limit, base, params(e, d)).max(min))
        } else if self.spec.active(OpHardfork::Holocene, pt) {
            let (e, d) = decode_holocene_extra_data(&parent.extra_data)
                .map_err(|e| format!("parent extraData: {e}"))?;
            Ok(calc_next_block_base_fee(parent.gas_used, parent.gas_limit, base, params(e, d)))
        } else {
            Ok(parent.next_block_base_fee(self.spec.base_fee_params_at(t)).unwrap_or_default())
        }
    }

    /// Executes a block on `parent`: `forced` transactions (each must execute), then `pool`
    /// ones as gas allows (those that fail are left out and returned). The block is complete:
    /// roots, bloom, gas, DA footprint, hash.
    pub fn execute(
        &mut self,
        parent: &Arc<Block>,
        input: &BlockInput,
        forced: Vec<Tx>,
        pool: Vec<Tx>,
    ) -> Result<(Block, Vec<B256>), String> {
        let t = input.timestamp;
        let spec = self.spec.clone();
        let active = |f| spec.active(f, t);
        self.check_extra_data(t, &input.extra_data)?;
        if active(OpHardfork::Ecotone) != input.parent_beacon_block_root.is_some() {
            return Err("parent beacon block root must be present exactly from Ecotone".into());
        }
        let base_fee = self.next_base_fee(&parent.header, t)?;
        let mut header = Header {
            parent_hash: parent.hash,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: input.fee_recipient,
            number: parent.header.number + 1,
            gas_limit: input.gas_limit,
            timestamp: t,
            extra_data: input.extra_data.clone(),
            mix_hash: input.prev_randao,
            base_fee_per_gas: Some(base_fee),
            parent_beacon_block_root: input.parent_beacon_block_root,
            ..Default::default()
        };
        let mut hashes = HashMap::new();
        let mut cur = parent.clone();
        for _ in 0..256 {
            hashes.insert(cur.header.number, cur.hash);
            match self.blocks.get(&cur.header.parent_hash) {
                Some(p) => cur = p.clone(),
                None => break,
            }
        }
        let env = evm_env_for_op_block(&header, &spec.forks, spec.chain_id);
        let pre = PreState { state: &parent.state, codes: &self.codes, hashes };
        let mut db = revm::database::State::builder().with_database(pre).with_bundle_update().build();
        let factory = OpBlockExecutorFactory::new(
            OpAlloyReceiptBuilder::default(),
            spec.forks.clone(),
            OpEvmFactory::<OpTx>::default(),
        );
        let evm = factory.evm_factory().create_evm(&mut db, env);
        let ctx = OpBlockExecutionCtx {
            parent_hash: parent.hash,
            parent_beacon_block_root: input.parent_beacon_block_root,
            extra_data: input.extra_data.clone(),
        };
        let mut executor = factory.create_executor(evm, ctx);
        executor.apply_pre_execution_changes().map_err(|e| format!("pre-execution: {e}"))?;
        let mut included = Vec::new();
        for (i, tx) in forced.into_iter().enumerate() {
            let exec =
                WithEncoded::new(tx.raw.clone(), Recovered::new_unchecked(tx.envelope.clone(), tx.sender));
            executor.execute_transaction(exec).map_err(|e| format!("transaction {i} ({}): {e}", tx.hash))?;
            included.push(tx);
        }
        let mut dropped = Vec::new();
        let mut used = executor.receipts().last().map_or(0, |r| r.cumulative_gas_used());
        for tx in pool {
            if tx.envelope.gas_limit() > input.gas_limit.saturating_sub(used) {
                continue;
            }
            let exec =
                WithEncoded::new(tx.raw.clone(), Recovered::new_unchecked(tx.envelope.clone(), tx.sender));
            match executor.execute_transaction(exec) {
                Ok(_) => {
                    used = executor.receipts().last().map_or(0, |r| r.cumulative_gas_used());
                    included.push(tx);
                }
                Err(e) => {
                    eprintln!("engine-peer: left out pool transaction {}: {e}", tx.hash);
                    dropped.push(tx.hash);
                }
            }
        }
        let (evm, result) = executor.finish().map_err(|e| format!("finishing the block: {e}"))?;
        drop(evm);
        db.merge_transitions(BundleRetention::PlainState);
        let bundle = db.take_bundle();
        drop(db);
        let state = parent.state.apply(bundle, &mut self.codes);

        let mut bloom = Bloom::default();
        for r in &result.receipts {
            bloom.accrue_bloom(&r.bloom());
        }
        header.state_root = state.root();
        header.transactions_root =
            calculate_transaction_root(&included.iter().map(|t| &t.envelope).collect::<Vec<_>>());
        header.receipts_root = calculate_receipt_root(&result.receipts);
        header.logs_bloom = bloom;
        header.gas_used = result.gas_used;
        header.withdrawals_root = if active(OpHardfork::Isthmus) {
            Some(state.account(&MESSAGE_PASSER).map_or(EMPTY_ROOT_HASH, |a| a.storage_root))
        } else {
            active(OpHardfork::Canyon).then_some(EMPTY_ROOT_HASH)
        };
        if active(OpHardfork::Ecotone) {
            header.blob_gas_used = Some(if active(OpHardfork::Jovian) { result.blob_gas_used } else { 0 });
            header.excess_blob_gas = Some(0);
        }
        header.requests_hash = active(OpHardfork::Isthmus).then_some(EMPTY_REQUESTS_HASH);
        let hash = header.hash_slow();
        Ok((Block { header, hash, txs: included, receipts: result.receipts, state }, dropped))
    }

    /// eth_sendRawTransaction: into the pool, checked against the head's state.
    pub fn send_transaction(&mut self, raw: Bytes) -> Result<B256, String> {
        let tx = Tx::decode(raw)?;
        if tx.is_deposit() {
            return Err("deposit transactions cannot be sent".into());
        }
        if let Some(id) = tx.envelope.chain_id() {
            if id != self.spec.chain_id {
                return Err(format!("invalid chain id {id}"));
            }
        }
        let head = self.head().clone();
        self.pool.insert(tx, &head.state)
    }
}

/// Which header field differs, for an INVALID answer.
fn header_mismatch(claimed: &Header, computed: &Header) -> String {
    let pairs: [(&str, String, String); 9] = [
        ("state root", claimed.state_root.to_string(), computed.state_root.to_string()),
        ("receipts root", claimed.receipts_root.to_string(), computed.receipts_root.to_string()),
        ("transactions root", claimed.transactions_root.to_string(), computed.transactions_root.to_string()),
        ("gas used", claimed.gas_used.to_string(), computed.gas_used.to_string()),
        ("base fee", format!("{:?}", claimed.base_fee_per_gas), format!("{:?}", computed.base_fee_per_gas)),
        ("logs bloom", claimed.logs_bloom.to_string(), computed.logs_bloom.to_string()),
        (
            "withdrawals root",
            format!("{:?}", claimed.withdrawals_root),
            format!("{:?}", computed.withdrawals_root),
        ),
        ("blob gas used", format!("{:?}", claimed.blob_gas_used), format!("{:?}", computed.blob_gas_used)),
        ("requests hash", format!("{:?}", claimed.requests_hash), format!("{:?}", computed.requests_hash)),
    ];
    for (what, c, g) in pairs {
        if c != g {
            return format!("{what} mismatch: block has {c}, execution gives {g}");
        }
    }
    "block does not match its execution".into()
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use alloy_consensus::{SignableTransaction, TxEip1559};
    use alloy_eips::eip2718::Encodable2718;
    use alloy_primitives::{Sealed, Signature, TxKind, U256};
    use op_alloy::consensus::TxDeposit;
    use serde_json::json;

    /// The test key's account (funded at genesis).
    pub fn key() -> (k256::ecdsa::SigningKey, Address) {
        let key = k256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap();
        let addr = alloy_primitives::Address::from_public_key(key.verifying_key());
        (key, addr)
    }

    /// A genesis with every fork through Jovian at genesis unless `isthmus_at` moves Isthmus
    /// and Jovian later.
    pub fn genesis(isthmus_at: u64) -> serde_json::Value {
        let (_, user) = key();
        json!({
            "config": {
                "chainId": 901, "regolithTime": 0, "canyonTime": 0, "ecotoneTime": 0, "fjordTime": 0,
                "graniteTime": 0, "holoceneTime": 0, "isthmusTime": isthmus_at, "jovianTime": isthmus_at,
                "optimism": {"eip1559Elasticity": 6, "eip1559Denominator": 50, "eip1559DenominatorCanyon": 250}
            },
            "timestamp": "0x3e8", "gasLimit": "0x1c9c380", "baseFeePerGas": "0xf4240",
            "extraData": if isthmus_at == 0 { "0x01000000fa000000060000000000000000" } else { "0x00000000fa00000006" },
            "alloc": { user.to_string(): {"balance": "0xd3c21bcecceda1000000"} }
        })
    }

    pub fn transfer(nonce: u64, to: Address, value: u64) -> Bytes {
        let (key, _) = key();
        let tx = TxEip1559 {
            chain_id: 901,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000,
            to: TxKind::Call(to),
            value: U256::from(value),
            ..Default::default()
        };
        let (sig, recid) = key.sign_prehash_recoverable(tx.signature_hash().as_slice()).unwrap();
        let sig = Signature::from_signature_and_parity(sig, recid.is_y_odd());
        OpTxEnvelope::Eip1559(tx.into_signed(sig)).encoded_2718().into()
    }

    pub fn deposit(to: Address, mint: u128) -> Bytes {
        let d = TxDeposit {
            source_hash: B256::repeat_byte(9),
            from: Address::repeat_byte(0xde),
            to: TxKind::Call(to),
            mint,
            value: U256::from(mint),
            gas_limit: 100_000,
            is_system_transaction: false,
            input: Bytes::new(),
        };
        OpTxEnvelope::Deposit(Sealed::new(d)).encoded_2718().into()
    }

    pub fn attrs(t: u64, txs: Vec<Bytes>, no_tx_pool: bool, min_base_fee: Option<u64>) -> Attributes {
        Attributes {
            timestamp: t,
            prev_randao: B256::repeat_byte(1),
            fee_recipient: Address::repeat_byte(0xfe),
            withdrawals: Some(Vec::new()),
            parent_beacon_block_root: Some(B256::repeat_byte(2)),
            transactions: txs,
            no_tx_pool,
            gas_limit: Some(30_000_000),
            eip1559_params: Some(B64::ZERO),
            min_base_fee,
        }
    }

    fn build(c: &mut Chain, a: Attributes) -> Arc<Block> {
        let head = c.head().hash;
        let (_, id) = c.forkchoice_updated(head, head, c.finalized, Some((a, 3))).unwrap();
        c.payload(&id.unwrap()).unwrap().clone()
    }

    #[test]
    fn a_built_block_imports_on_a_second_engine() {
        let g = genesis(0);
        let (mut a, mut b) = (Chain::new(&g, 16).unwrap(), Chain::new(&g, 16).unwrap());
        assert_eq!(a.genesis, b.genesis);
        let (_, user) = key();
        let to = Address::repeat_byte(0x77);
        a.send_transaction(transfer(0, to, 5)).unwrap();
        a.send_transaction(transfer(1, to, 6)).unwrap();
        assert!(a.send_transaction(transfer(0, to, 5)).is_ok(), "the same transaction again");
        let blk = build(&mut a, attrs(1002, vec![deposit(to, 1_000)], false, Some(0)));
        assert_eq!(blk.txs.len(), 3, "the deposit, then both pool transactions");
        assert_eq!(blk.state.account(&to).unwrap().balance, U256::from(1_011));
        assert_eq!(blk.state.account(&user).unwrap().nonce, 2);
        assert_eq!(blk.header.withdrawals_root, Some(EMPTY_ROOT_HASH));
        let txs: Vec<Bytes> = blk.txs.iter().map(|t| t.raw.clone()).collect();
        assert_eq!(b.new_payload(&blk.header, blk.hash, txs.clone()), Status::Valid(blk.hash));
        assert_eq!(a.new_payload(&blk.header, blk.hash, txs), Status::Valid(blk.hash));
        let (s, _) = a.forkchoice_updated(blk.hash, a.genesis, a.genesis, None).unwrap();
        assert_eq!(s, Status::Valid(blk.hash));
        assert_eq!(a.pool.len(), 0, "included transactions leave the pool");
        assert_eq!(b.block(&blk.hash).unwrap().state.root(), blk.header.state_root);
    }

    #[test]
    fn blocks_that_do_not_execute_to_their_header_are_invalid() {
        let g = genesis(0);
        let mut a = Chain::new(&g, 16).unwrap();
        let mut b = Chain::new(&g, 16).unwrap();
        let blk = build(&mut a, attrs(1002, vec![deposit(Address::repeat_byte(1), 5)], true, Some(0)));
        let txs: Vec<Bytes> = blk.txs.iter().map(|t| t.raw.clone()).collect();
        let mut bad = blk.header.clone();
        bad.state_root = B256::repeat_byte(3);
        match b.new_payload(&bad, bad.hash_slow(), txs.clone()) {
            Status::Invalid { latest_valid, reason } => {
                assert_eq!(latest_valid, Some(b.genesis));
                assert!(reason.contains("state root"), "{reason}");
            }
            s => panic!("{s:?}"),
        }
        // A child of the rejected block is rejected too, naming the same last valid block.
        let mut child = blk.header.clone();
        child.parent_hash = bad.hash_slow();
        child.number = 2;
        assert!(
            matches!(b.new_payload(&child, child.hash_slow(), vec![]), Status::Invalid { latest_valid: Some(h), .. } if h == b.genesis)
        );
        // A hash that is not the header's.
        assert!(matches!(
            b.new_payload(&blk.header, B256::repeat_byte(4), txs.clone()),
            Status::Invalid { latest_valid: None, .. }
        ));
        // An unknown parent: SYNCING.
        let mut orphan = blk.header.clone();
        orphan.parent_hash = B256::repeat_byte(5);
        assert_eq!(b.new_payload(&orphan, orphan.hash_slow(), txs.clone()), Status::Syncing);
        // The base fee is the parent's rule, not the builder's say.
        let mut fee = blk.header.clone();
        fee.base_fee_per_gas = Some(7);
        match b.new_payload(&fee, fee.hash_slow(), txs) {
            Status::Invalid { reason, .. } => assert!(reason.contains("base fee"), "{reason}"),
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn forkchoice_needs_safe_and_finalized_to_be_ancestors_of_head() {
        let mut a = Chain::new(&genesis(0), 16).unwrap();
        let g = a.genesis;
        let x = build(&mut a, attrs(1002, vec![], true, Some(0)));
        let y = build(&mut a, attrs(1002, vec![deposit(Address::repeat_byte(1), 5)], true, Some(0)));
        for blk in [&x, &y] {
            let txs = blk.txs.iter().map(|t| t.raw.clone()).collect();
            assert_eq!(a.new_payload(&blk.header, blk.hash, txs), Status::Valid(blk.hash));
        }
        let err = a.forkchoice_updated(x.hash, y.hash, g, None).unwrap_err();
        assert_eq!(err.code, INVALID_FORKCHOICE);
        assert_eq!(a.refused_forkchoice, 1);
        assert_eq!(a.forkchoice_updated(x.hash, x.hash, g, None).unwrap().0, Status::Valid(x.hash));
        assert_eq!(a.forkchoice_updated(B256::repeat_byte(8), g, g, None).unwrap().0, Status::Syncing);
        // Reorg to the sibling.
        assert_eq!(a.forkchoice_updated(y.hash, g, g, None).unwrap().0, Status::Valid(y.hash));
        assert_eq!(a.canonical_block(1).unwrap().hash, y.hash);
    }

    #[test]
    fn jovian_clamps_the_base_fee_to_the_minimum_and_isthmus_starts_mid_chain() {
        let mut a = Chain::new(&genesis(1004), 16).unwrap();
        // Block 1 (before Isthmus): Holocene extraData, no minimum base fee allowed.
        assert!(a
            .forkchoice_updated(
                a.genesis,
                a.genesis,
                a.genesis,
                Some((attrs(1002, vec![], true, Some(1)), 3))
            )
            .is_err());
        let b1 = build(&mut a, attrs(1002, vec![], true, None));
        assert_eq!(b1.header.extra_data.len(), 9);
        assert_eq!(b1.header.requests_hash, None);
        let txs = Vec::new();
        a.new_payload(&b1.header, b1.hash, txs);
        a.forkchoice_updated(b1.hash, a.genesis, a.genesis, None).unwrap();
        // Block 2 (Isthmus and Jovian): a minimum base fee far above the current one.
        let b2 = build(&mut a, attrs(1004, vec![], true, Some(5_000_000_000)));
        assert_eq!(b2.header.extra_data.len(), 17);
        assert_eq!(b2.header.requests_hash, Some(EMPTY_REQUESTS_HASH));
        assert!(
            b2.header.base_fee_per_gas.unwrap() < 5_000_000_000,
            "the minimum applies from the next block"
        );
        a.new_payload(&b2.header, b2.hash, Vec::new());
        a.forkchoice_updated(b2.hash, a.genesis, a.genesis, None).unwrap();
        let b3 = build(&mut a, attrs(1006, vec![], true, Some(5_000_000_000)));
        assert_eq!(b3.header.base_fee_per_gas, Some(5_000_000_000));
    }
}
