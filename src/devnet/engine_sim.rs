//! The engine stand-in's logic: an Engine API (forkchoiceUpdated V1–V3, getPayload V2–V5,
//! newPayload V2–V4) over a chain of deterministic blocks. It executes nothing: a block's state
//! root is a hash of its parent's and its transactions, so two stand-ins given the same
//! attributes build the same blocks, hash for hash. It checks what op-geth would reject for OP
//! semantics: method versions by fork, attribute fields by fork, block hashes.
//!
//! Pure: the devnet serves it over HTTP with JWT; tests call `handle` directly.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::derive::data::L2BlockData;
use crate::derive::l2::{self, L2BlockParts};
use crate::engine::api::{
    codes, fcu_version, get_payload_version, new_payload_version, EngineCall, EngineError, EngineReply,
    ExecutionStatus, ForkchoiceState, ForkchoiceUpdatedResult, PayloadStatus,
};
use crate::protocol::eip1559::ExtraData;
use crate::protocol::header::{Header, EMPTY_OMMERS_HASH};
use crate::protocol::payload::{ExecutionPayload, ExecutionPayloadEnvelope, PayloadAttributes};
use crate::protocol::primitives::{keccak256, Bytes, B256, B64, U256};
use crate::protocol::rollup::{Fork, RollupConfig};
use crate::protocol::tx::DEPOSIT_TX_TYPE;

/// The base fee every stand-in block carries.
pub const BASE_FEE: u64 = super::genesis::GENESIS_BASE_FEE;

/// A stored block.
#[derive(Debug, Clone)]
pub struct SimBlock {
    pub envelope: ExecutionPayloadEnvelope,
    pub header: Header,
}

/// The stand-in engine.
#[derive(Debug)]
pub struct EngineSim {
    cfg: Arc<RollupConfig>,
    blocks: HashMap<B256, SimBlock>,
    /// The head chain by number.
    canonical: BTreeMap<u64, B256>,
    pub head: B256,
    pub safe: B256,
    pub finalized: B256,
    building: HashMap<B64, ExecutionPayloadEnvelope>,
    next_id: u64,
    /// Fault injection: answer every call with SYNCING (forkchoice) or errors.
    pub syncing: bool,
    /// Transactions waiting for a block built without `noTxPool` (the stand-in's mempool).
    pub pool: Vec<Bytes>,
}

fn err(code: i64, message: impl Into<String>) -> EngineError {
    EngineError::Rpc { code, message: message.into() }
}

fn status(s: ExecutionStatus, latest: Option<B256>, e: Option<String>) -> PayloadStatus {
    PayloadStatus { status: s, latest_valid_hash: latest, validation_error: e }
}

impl EngineSim {
    /// A chain holding only the stand-in's genesis block (see `genesis_block`; a config for the
    /// stand-in takes its genesis hash from there).
    pub fn new(cfg: Arc<RollupConfig>) -> Self {
        let genesis = Self::genesis_block(&cfg);
        let hash = genesis.envelope.execution_payload.block_hash;
        let mut sim = EngineSim {
            cfg,
            blocks: HashMap::new(),
            canonical: BTreeMap::new(),
            head: hash,
            safe: hash,
            finalized: hash,
            building: HashMap::new(),
            next_id: 0,
            syncing: false,
            pool: Vec::new(),
        };
        sim.canonical.insert(genesis.header.number, hash);
        sim.blocks.insert(hash, genesis);
        sim
    }

    /// The genesis block the stand-in starts from, for building a devnet config around it.
    pub fn genesis_block(cfg: &RollupConfig) -> SimBlock {
        // The header a real engine computes from the devnet's genesis.json (`devnet::genesis`),
        // so a chain begun on the stand-in and one begun on op-reth share their genesis.
        let header = super::genesis::header(cfg, &super::genesis::devnet_alloc(cfg));
        let withdrawals = cfg.is_active(Fork::Canyon, header.timestamp).then(Vec::new);
        let envelope = ExecutionPayloadEnvelope::from_block(&header, Vec::new(), withdrawals);
        SimBlock { envelope, header }
    }

    pub fn block(&self, hash: &B256) -> Option<&SimBlock> {
        self.blocks.get(hash)
    }

    /// The block at `n` on the head chain.
    pub fn block_by_number(&self, n: u64) -> Option<&SimBlock> {
        self.canonical.get(&n).and_then(|h| self.blocks.get(h))
    }

    pub fn head_number(&self) -> u64 {
        self.blocks.get(&self.head).map_or(0, |b| b.header.number)
    }

    /// A block as the node's L2 fetches see it.
    pub fn block_data(&self, hash: &B256) -> Option<L2BlockData> {
        let b = self.blocks.get(hash)?;
        let p = &b.envelope.execution_payload;
        let parts = L2BlockParts::of_payload(p);
        let mut d = l2::block_data(&self.cfg, &parts).ok()?;
        d.header = Some(Arc::new(b.header.clone()));
        Some(d)
    }

    /// Handles one Engine API call.
    pub fn handle(&mut self, call: &EngineCall) -> Result<EngineReply, EngineError> {
        match call {
            EngineCall::ForkchoiceUpdated { version, state, attributes } => {
                self.forkchoice_updated(*version, state, attributes.as_deref()).map(EngineReply::Forkchoice)
            }
            EngineCall::GetPayload { version, info } => {
                let env = self
                    .building
                    .get(&info.id)
                    .ok_or_else(|| err(codes::UNKNOWN_PAYLOAD, "Unknown payload"))?;
                let want = get_payload_version(&self.cfg, env.execution_payload.timestamp);
                if *version != want {
                    return Err(err(
                        codes::UNSUPPORTED_FORK,
                        format!("Unsupported fork: getPayloadV{version}, want V{want}"),
                    ));
                }
                Ok(EngineReply::Payload(Box::new(env.clone())))
            }
            EngineCall::NewPayload { version, envelope } => {
                self.new_payload(*version, envelope).map(EngineReply::NewPayload)
            }
        }
    }

    fn forkchoice_updated(
        &mut self,
        version: u8,
        fc: &ForkchoiceState,
        attrs: Option<&PayloadAttributes>,
    ) -> Result<ForkchoiceUpdatedResult, EngineError> {
        if self.syncing || !self.blocks.contains_key(&fc.head_block_hash) {
            return Ok(ForkchoiceUpdatedResult {
                payload_status: status(ExecutionStatus::Syncing, None, None),
                payload_id: None,
            });
        }
        for h in [fc.safe_block_hash, fc.finalized_block_hash] {
            if !h.is_zero() && !self.blocks.contains_key(&h) {
                return Err(err(codes::INVALID_FORKCHOICE_STATE, format!("unknown block {h}")));
            }
        }
        // As geth: the head becomes canonical first, then finalized and safe must be on its chain.
        self.set_head(fc.head_block_hash);
        for (h, what) in [(fc.finalized_block_hash, "final"), (fc.safe_block_hash, "safe")] {
            if !h.is_zero() && !self.is_canonical(&h) {
                return Err(err(
                    codes::INVALID_FORKCHOICE_STATE,
                    format!("{what} block not in canonical chain"),
                ));
            }
        }
        self.safe = fc.safe_block_hash;
        self.finalized = fc.finalized_block_hash;
        let valid = status(ExecutionStatus::Valid, Some(fc.head_block_hash), None);
        let Some(a) = attrs else {
            return Ok(ForkchoiceUpdatedResult { payload_status: valid, payload_id: None });
        };
        let want = fcu_version(&self.cfg, a.timestamp);
        if version != want {
            return Err(err(
                codes::UNSUPPORTED_FORK,
                format!("Unsupported fork: forkchoiceUpdatedV{version}, want V{want}"),
            ));
        }
        let parent = self
            .blocks
            .get(&fc.head_block_hash)
            .cloned()
            .ok_or_else(|| err(codes::INVALID_FORKCHOICE_STATE, "unknown head"))?;
        let mut a = a.clone();
        if !a.no_tx_pool {
            a.transactions.append(&mut self.pool);
        }
        let env = self.build(&parent, &a).map_err(|e| err(codes::INVALID_PAYLOAD_ATTRIBUTES, e))?;
        self.next_id += 1;
        let id = B64(self.next_id.to_be_bytes());
        self.building.insert(id, env);
        if self.building.len() > 64 {
            let oldest = *self.building.keys().min().unwrap_or(&id);
            self.building.remove(&oldest);
        }
        Ok(ForkchoiceUpdatedResult { payload_status: valid, payload_id: Some(id) })
    }

    /// Whether `hash` is on the head's chain.
    fn is_canonical(&self, hash: &B256) -> bool {
        self.blocks.get(hash).is_some_and(|b| self.canonical.get(&b.header.number) == Some(hash))
    }

    fn set_head(&mut self, head: B256) {
        self.head = head;
        // Re-index the head chain back to where it joins the old one.
        let mut h = head;
        while let Some(b) = self.blocks.get(&h) {
            let n = b.header.number;
            if self.canonical.get(&n) == Some(&h) {
                break;
            }
            self.canonical.insert(n, h);
            h = b.header.parent_hash;
        }
        let top = self.blocks.get(&head).map_or(0, |b| b.header.number);
        self.canonical.retain(|n, _| *n <= top);
    }

    /// Checks attributes the way op-geth does for the forks in force, and builds the block.
    fn build(&self, parent: &SimBlock, a: &PayloadAttributes) -> Result<ExecutionPayloadEnvelope, String> {
        let cfg = &self.cfg;
        let t = a.timestamp;
        let p = &parent.envelope.execution_payload;
        if t <= p.timestamp {
            return Err(format!("invalid timestamp {t}, parent {}", p.timestamp));
        }
        if cfg.is_active(Fork::Canyon, t) != a.withdrawals.is_some() {
            return Err("withdrawals must be given exactly from Canyon".into());
        }
        if a.withdrawals.as_ref().is_some_and(|w| !w.is_empty()) {
            return Err("withdrawals must be empty on OP".into());
        }
        if cfg.is_active(Fork::Ecotone, t) != a.parent_beacon_block_root.is_some() {
            return Err("parentBeaconBlockRoot must be given exactly from Ecotone".into());
        }
        if cfg.is_active(Fork::Holocene, t) != a.eip1559_params.is_some() {
            return Err("eip1559Params must be given exactly from Holocene".into());
        }
        if cfg.is_active(Fork::Jovian, t) != a.min_base_fee.is_some() {
            return Err("minBaseFee must be given exactly from Jovian".into());
        }
        let gas_limit = a.gas_limit.ok_or("gasLimit is required")?;
        if a.transactions.iter().any(|tx| tx.is_empty()) {
            return Err("empty transaction".into());
        }
        let extra = match a.eip1559_params {
            Some(params) => ExtraData::from_attributes(params, a.min_base_fee, &cfg.chain_op_config())
                .map_err(|e| e.to_string())?
                .encode(),
            None => Vec::new(),
        };
        let tx_hash = keccak256(a.transactions.iter().flat_map(|t| keccak256(t).0).collect::<Vec<u8>>());
        let state_root = keccak256([p.state_root.0, tx_hash.0].concat());
        let user_txs = a.transactions.iter().filter(|t| t.first() != Some(&DEPOSIT_TX_TYPE)).count() as u64;
        let payload = ExecutionPayload {
            parent_hash: p.block_hash,
            fee_recipient: a.suggested_fee_recipient,
            state_root,
            receipts_root: keccak256([state_root.0, [1; 32]].concat()),
            logs_bloom: Default::default(),
            prev_randao: a.prev_randao,
            block_number: p.block_number + 1,
            gas_limit,
            gas_used: (50_000 + 21_000 * user_txs).min(gas_limit),
            timestamp: t,
            extra_data: Bytes(extra),
            base_fee_per_gas: U256::from_u64(BASE_FEE),
            block_hash: B256::ZERO,
            transactions: a.transactions.clone(),
            withdrawals: a.withdrawals.clone(),
            blob_gas_used: cfg.is_active(Fork::Ecotone, t).then_some(0),
            excess_blob_gas: cfg.is_active(Fork::Ecotone, t).then_some(0),
            withdrawals_root: cfg
                .is_active(Fork::Isthmus, t)
                .then(|| keccak256([state_root.0, [2; 32]].concat())),
        };
        let mut env = ExecutionPayloadEnvelope {
            parent_beacon_block_root: a.parent_beacon_block_root,
            execution_payload: payload,
        };
        env.execution_payload.block_hash = env.compute_block_hash().map_err(|e| e.to_string())?;
        Ok(env)
    }

    fn new_payload(
        &mut self,
        version: u8,
        env: &ExecutionPayloadEnvelope,
    ) -> Result<PayloadStatus, EngineError> {
        let p = &env.execution_payload;
        let want = new_payload_version(&self.cfg, p.timestamp);
        if version != want {
            return Err(err(
                codes::UNSUPPORTED_FORK,
                format!("Unsupported fork: newPayloadV{version}, want V{want}"),
            ));
        }
        if self.syncing {
            return Ok(status(ExecutionStatus::Syncing, None, None));
        }
        let header = match env.header() {
            Ok(h) => h,
            Err(e) => return Ok(status(ExecutionStatus::Invalid, None, Some(e.to_string()))),
        };
        if header.hash() != p.block_hash {
            return Ok(status(ExecutionStatus::InvalidBlockHash, None, Some("block hash mismatch".into())));
        }
        if header.ommers_hash != EMPTY_OMMERS_HASH {
            return Ok(status(ExecutionStatus::Invalid, None, Some("ommers".into())));
        }
        let Some(parent) = self.blocks.get(&p.parent_hash) else {
            return Ok(status(ExecutionStatus::Syncing, None, None));
        };
        // Re-execute: the block must be what these transactions build on the parent.
        let tx_hash = keccak256(p.transactions.iter().flat_map(|t| keccak256(t).0).collect::<Vec<u8>>());
        if keccak256([parent.envelope.execution_payload.state_root.0, tx_hash.0].concat()) != p.state_root {
            return Ok(status(
                ExecutionStatus::Invalid,
                Some(p.parent_hash),
                Some("state root mismatch".into()),
            ));
        }
        if p.transactions.first().is_none_or(|t| t.first() != Some(&DEPOSIT_TX_TYPE)) {
            return Ok(status(
                ExecutionStatus::Invalid,
                Some(p.parent_hash),
                Some("first transaction must be the L1-info deposit".into()),
            ));
        }
        self.blocks.insert(p.block_hash, SimBlock { envelope: env.clone(), header });
        Ok(status(ExecutionStatus::Valid, Some(p.block_hash), None))
    }

    /// Drops blocks more than `keep` below the head to keep memory bounded.
    pub fn prune(&mut self, keep: u64) {
        let top = self.head_number();
        let min = top.saturating_sub(keep);
        // The genesis block and the forkchoice heads stay whatever their age.
        let pinned = [self.head, self.safe, self.finalized];
        let genesis = self.canonical.get(&0).copied();
        self.blocks.retain(|h, b| b.header.number >= min || pinned.contains(h) || Some(*h) == genesis);
        self.canonical.retain(|n, _| *n >= min || *n == 0);
    }

    /// A restart that loses the last `n` canonical blocks (an engine that had not persisted
    /// them, as op-reth going back from 77 to 75): they are gone, and the heads come back to
    /// what is left.
    pub fn restart_losing(&mut self, n: u64) {
        let top = self.head_number();
        let keep = top.saturating_sub(n);
        let lost: Vec<B256> = self.canonical.range(keep + 1..).map(|(_, h)| *h).collect();
        for h in &lost {
            self.blocks.remove(h);
        }
        self.canonical.retain(|k, _| *k <= keep);
        let kept = self.canonical.get(&keep).copied().unwrap_or_default();
        for head in [&mut self.head, &mut self.safe, &mut self.finalized] {
            if lost.contains(head) {
                *head = kept;
            }
        }
        self.building.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devnet::chain::{Devnet, DevnetParams};

    #[test]
    fn genesis_payload_commits_to_the_genesis_files_header() {
        use crate::protocol::rollup::tests_support::with_forks_until;
        // From Bedrock-only to every fork at genesis: the payload the stand-in hands out for
        // block 0 hashes to the header genesis.json describes.
        for last in [Fork::Regolith, Fork::Canyon, Fork::Ecotone, Fork::Holocene, Fork::Isthmus, Fork::Jovian]
        {
            let mut cfg = with_forks_until(last, 0, 0);
            if last == Fork::Regolith {
                cfg.forks = Default::default();
            }
            cfg.genesis.l2_time = 1_000;
            let b = EngineSim::genesis_block(&cfg);
            assert_eq!(b.envelope.header().unwrap(), b.header, "through {last}");
            assert_eq!(b.envelope.execution_payload.block_hash, b.header.hash());
            assert_eq!(
                b.header,
                crate::devnet::genesis::header(&cfg, &crate::devnet::genesis::devnet_alloc(&cfg))
            );
        }
    }

    #[test]
    fn forkchoice_needs_safe_and_finalized_on_the_heads_chain() {
        let params = DevnetParams::default();
        let mut d = Devnet::new(params.clone()).unwrap();
        d.advance_to(params.genesis_time + 6).unwrap();
        let block = |n: u64| d.sequenced_block(n).unwrap().envelope.clone();
        let (one, three) = (block(1), block(3));
        // A sibling of block 1.
        let mut side = one.clone();
        side.execution_payload.prev_randao = B256([0xaa; 32]);
        side.execution_payload.block_hash = side.compute_block_hash().unwrap();
        let version = new_payload_version(d.rollup_config(), side.execution_payload.timestamp);
        let e = &mut d.seq;
        let np = EngineCall::NewPayload { version, envelope: Box::new(side.clone()) };
        assert!(
            matches!(e.handle(&np), Ok(EngineReply::NewPayload(s)) if s.status == ExecutionStatus::Valid)
        );
        let fcu = |head: &ExecutionPayloadEnvelope, safe: &ExecutionPayloadEnvelope| {
            EngineCall::ForkchoiceUpdated {
                version: 3,
                state: ForkchoiceState {
                    head_block_hash: head.execution_payload.block_hash,
                    safe_block_hash: safe.execution_payload.block_hash,
                    finalized_block_hash: B256::ZERO,
                },
                attributes: None,
            }
        };
        assert!(e.handle(&fcu(&three, &one)).is_ok());
        // Safe is block 1, the head a sibling of it: geth's "safe block not in canonical chain".
        let err = e.handle(&fcu(&side, &one)).unwrap_err();
        assert_eq!(err.code(), Some(codes::INVALID_FORKCHOICE_STATE), "{err}");
        assert!(err.to_string().contains("safe block not in canonical chain"), "{err}");
        // As geth, the head moved anyway; back on the main chain the state is valid again.
        assert_eq!(e.head, side.execution_payload.block_hash);
        assert!(e.handle(&fcu(&three, &one)).is_ok());
    }
}
