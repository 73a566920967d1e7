//! The devnet's chain, advanced on its own clock: a producer builds L2 blocks of synthetic
//! transfers on a private engine stand-in (with the node's own attributes code), a batcher posts
//! them to the L1 simulator as real channels — zlib span batches in frames, alternately as
//! calldata and as blobs — and a user deposits through the portal now and then. The node under
//! test drives a second engine stand-in and must derive the same blocks from L1 alone.
//!
//! Pure: `host` serves it over HTTP (L1 JSON-RPC, the beacon API, the Engine API).

use std::sync::Arc;

use crate::derive::attributes::prepare_payload_attributes;
use crate::derive::data::{Arrival, CacheLimits, ChainData, FetchRequest, L2Label};
use crate::derive::{Cx, DeriveMetrics, StageError};
use crate::driver::runtime_config::{ProtocolVersion, OP_LITE_SUPPORT};
use crate::engine::api::{
    fcu_version, get_payload_version, new_payload_version, EngineCall, EngineReply, ForkchoiceState,
    PayloadInfo,
};
use crate::protocol::blob::{kzg_commitment, versioned_hash};
use crate::protocol::block_ref::L2BlockRef;
use crate::protocol::channel_out::{self, BatchKind, Compressor, L2BlockInput};
use crate::protocol::deposit::encode_deposit_log;
use crate::protocol::l1_chain::L1ChainSpec;
use crate::protocol::primitives::{keccak256, Address, Bytes, U256};
use crate::protocol::proof::named_slot;
use crate::protocol::rollup::{Fork, RollupConfig};
use crate::protocol::tx::{DepositTx, SignedTx, EIP1559_TX_TYPE, EIP4844_TX_TYPE};
use crate::rng::Rng;

use super::engine_sim::EngineSim;
use super::l1_sim::{Account, L1Sim};
use super::{rollup_config, DEVNET_L1_CHAIN_ID};

/// Blocks in one channel at most (half an hour of 2 s blocks); a sequencer catching up on
/// hours of chain is batched over several L1 blocks.
const MAX_CHANNEL_BLOCKS: usize = 900;

/// Frames larger than this go out as several transactions (op-batcher's default calldata size).
const MAX_CALLDATA_FRAME: usize = 120_000;

/// Who builds the devnet's L2 chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequencing {
    /// The devnet's own producer, on `seq`, on the devnet's clock.
    Producer,
    /// A sequencer node driving `seq` over the Engine API: the devnet mines L1, fills `seq`'s
    /// mempool with user transfers and batches what the node sequenced.
    NodeOnStandIn,
    /// A sequencer node driving an engine elsewhere: its blocks arrive through
    /// `push_sequenced` (a `feed::SequencerFeed` reads them), the devnet mines L1 and batches.
    NodeElsewhere,
}

/// How the devnet runs.
#[derive(Debug, Clone)]
pub struct DevnetParams {
    /// L1 genesis time (the L2 genesis shares it).
    pub genesis_time: u64,
    /// Seconds between L1 blocks (chain time).
    pub l1_block_time: u64,
    pub seq_window_size: u64,
    /// User transfers per L2 block.
    pub txs_per_block: u64,
    /// Every this many L1 blocks a user deposit goes through the portal (0: never).
    pub deposit_every: u64,
    /// The protocol version L1 signals as required and recommended.
    pub protocol_version: ProtocolVersion,
    /// The producer picks L1 origins at least this many blocks below the L1 head (op-node's
    /// `--sequencer.l1-confs`; 0 adopts each L1 block as soon as its time is reached).
    pub sequencer_l1_confs: u64,
    /// The batcher posts nothing: tests take the sequenced blocks (`take_unbatched`) and post
    /// their own batcher transactions.
    pub manual_batcher: bool,
    /// Changes to the devnet's fork schedule (`super::fork_schedule`: every fork through
    /// Jovian at genesis): seconds after genesis, or `None` for not scheduled.
    pub forks: Vec<(crate::protocol::rollup::Fork, Option<u64>)>,
    /// The rollup config's channel timeout (L1 blocks).
    pub channel_timeout: u64,
    /// Who builds the L2 chain the batcher posts.
    pub sequencing: Sequencing,
    pub seed: u64,
}

impl Default for DevnetParams {
    fn default() -> Self {
        DevnetParams {
            genesis_time: 1_700_000_000,
            l1_block_time: 6,
            seq_window_size: 100,
            txs_per_block: 2,
            deposit_every: 5,
            protocol_version: OP_LITE_SUPPORT,
            sequencer_l1_confs: 0,
            manual_batcher: false,
            forks: Vec::new(),
            sequencing: Sequencing::Producer,
            channel_timeout: 50,
            seed: 1,
        }
    }
}

/// The devnet's state.
pub struct Devnet {
    pub cfg: Arc<RollupConfig>,
    pub params: DevnetParams,
    pub l1: L1Sim,
    /// The engine the node under test drives.
    pub engine: EngineSim,
    /// The producer's engine: the chain as sequenced (driven by an external sequencer when
    /// `Sequencing::NodeOnStandIn`).
    pub seq: EngineSim,
    /// With an external sequencer: the last sequenced block handed to the batcher.
    batched: Option<L2BlockRef>,
    /// The L2 blocks each recent L1 block carried, so an L1 reorg re-queues them (op-batcher
    /// resubmits what a reorg dropped).
    carried: std::collections::BTreeMap<u64, Vec<L2BlockInput>>,
    seq_data: ChainData,
    l1_spec: L1ChainSpec,
    /// The SystemConfig's batcher at genesis.
    pub batcher: Account,
    users: Vec<Account>,
    depositor: Account,
    /// The address the runtime config reads as the unsafe block signer.
    pub unsafe_signer: Address,
    unbatched: Vec<L2BlockInput>,
    rng: Rng,
    l1_blocks_built: u64,
    /// Batcher transactions posted so far (calldata, blob).
    pub posted: (u64, u64),
    /// Channels posted so far (of singular batches, of a span batch).
    pub channels: (u64, u64),
    pub deposits: u64,
}

impl Devnet {
    /// The devnet for `params`; fails on a fork schedule op-node would reject.
    pub fn new(params: DevnetParams) -> Result<Devnet, String> {
        let mut l1 = L1Sim::new(DEVNET_L1_CHAIN_ID, params.genesis_time, params.l1_block_time);
        let batcher = Account::from_seed("op-lite devnet batcher");
        let forks = super::fork_schedule(&params.forks)?;
        let config = |l1: &L1Sim| {
            rollup_config(
                l1.genesis().block_ref().id(),
                l1.genesis().info.time(),
                batcher.address,
                params.seq_window_size,
                params.channel_timeout,
                &forks,
            )
        };
        let unsafe_signer = Account::from_seed("op-lite devnet sequencer").address;
        // SystemConfig's unsafe block signer slot, so the runtime config reads it by proof; the
        // genesis state root commits to it, so the config is made after.
        let slot = U256(keccak256(b"systemconfig.unsafeblocksigner").0);
        let mut value = [0u8; 32];
        value[12..].copy_from_slice(&unsafe_signer.0);
        let versions = vec![
            (named_slot("protocolversion.required"), U256(params.protocol_version.0)),
            (named_slot("protocolversion.recommended"), U256(params.protocol_version.0)),
        ];
        l1.state = vec![
            (config(&l1).l1_system_config_address, vec![(slot, U256(value))]),
            (super::PROTOCOL_VERSIONS, versions),
        ];
        l1.reseal_genesis();
        let cfg = Arc::new(config(&l1));
        cfg.check().map_err(|e| format!("devnet rollup config: {e}"))?;
        let limits = CacheLimits::default();
        Ok(Devnet {
            engine: EngineSim::new(cfg.clone()),
            seq: EngineSim::new(cfg.clone()),
            seq_data: ChainData::new(limits, cfg.deposit_contract_address, cfg.l1_system_config_address),
            l1_spec: L1ChainSpec::dev(DEVNET_L1_CHAIN_ID),
            users: (0..super::genesis::USERS).map(super::genesis::user).collect(),
            depositor: Account::from_seed("op-lite devnet depositor"),
            batcher,
            unsafe_signer,
            unbatched: Vec::new(),
            batched: None,
            carried: Default::default(),
            rng: Rng::new(params.seed),
            l1_blocks_built: 0,
            posted: (0, 0),
            channels: (0, 0),
            deposits: 0,
            cfg,
            params,
            l1,
        })
    }

    /// The rollup config the node must run with.
    pub fn rollup_config(&self) -> &RollupConfig {
        &self.cfg
    }

    /// Chain time of the next L1 block and of the next L2 block (never, with an external
    /// sequencer).
    pub fn next_times(&self) -> (u64, u64) {
        let l2 = if self.params.sequencing != Sequencing::Producer {
            u64::MAX
        } else {
            self.seq.block(&self.seq.head).map_or(0, |b| b.header.timestamp) + self.cfg.block_time
        };
        (self.l1.head().info.time() + self.params.l1_block_time, l2)
    }

    /// Builds every L1 and L2 block due by chain time `t`, in time order (L1 first on ties, so
    /// an L2 block can take the new L1 block as its origin).
    pub fn advance_to(&mut self, t: u64) -> Result<(), String> {
        loop {
            let (l1, l2) = self.next_times();
            if l1.min(l2) > t {
                return Ok(());
            }
            if l1 <= l2 {
                self.mine_l1()?;
            } else {
                self.produce_l2()?;
            }
        }
    }

    /// The producer's head.
    pub fn sequenced_head(&self) -> u64 {
        self.seq.head_number()
    }

    /// A block of the sequenced chain (what a sequencer gossips; what an EL syncs from peers).
    pub fn sequenced_block(&self, n: u64) -> Option<&super::engine_sim::SimBlock> {
        self.seq.block_by_number(n)
    }

    fn seq_head_ref(&mut self) -> Result<L2BlockRef, String> {
        let h = self.seq.head;
        let d = self.seq.block_data(&h).ok_or("producer head unknown")?;
        self.seq_data.apply(Arrival::L2Block(d.clone()), &self.cfg);
        Ok(d.block_ref)
    }

    /// Sequences one L2 block on the producer's engine: the latest L1 block not newer than the
    /// block's time is its origin.
    fn produce_l2(&mut self) -> Result<(), String> {
        self.build_l2(false)
    }

    /// Builds the next block on `seq`: with synthetic user transfers (`noTxPool`), or from the
    /// engine's pool as a sequencer node does.
    fn build_l2(&mut self, from_pool: bool) -> Result<(), String> {
        let parent = self.seq_head_ref()?;
        let t = parent.timestamp + self.cfg.block_time;
        let head_l1 = self.l1.head().info.number();
        // One epoch step at most per block, as a sequencer does.
        let mut origin_n = parent.l1origin.number;
        let confs = self.params.sequencer_l1_confs;
        if origin_n + confs < head_l1
            && self.l1.block_by_number(origin_n + 1).is_some_and(|b| b.info.time() <= t)
        {
            origin_n += 1;
        }
        let origin = self.l1.block_by_number(origin_n).ok_or("origin unknown")?.block_ref().id();
        let mut attrs = loop {
            let mut metrics = DeriveMetrics::default();
            let mut cx =
                Cx { cfg: &self.cfg, l1: &self.l1_spec, data: &mut self.seq_data, metrics: &mut metrics };
            match prepare_payload_attributes(&mut cx, &parent, origin) {
                Ok(a) => break a,
                Err(StageError::NotYet) => {
                    let reqs = self.seq_data.poll_requests();
                    if reqs.is_empty() {
                        return Err("attributes wait for nothing".into());
                    }
                    for r in reqs {
                        let a = serve_fetch(&self.l1, &self.seq, r);
                        self.seq_data.apply(a, &self.cfg);
                    }
                }
                Err(e) => return Err(format!("cannot sequence block {}: {e:?}", parent.number + 1)),
            }
        };
        // User transfers ride along as sequenced transactions (the stand-in has no pool);
        // upgrade blocks carry none, as the spec requires.
        let upgrade_block = !crate::derive::codec::upgrade_transactions(&self.cfg, t)?.0.is_empty();
        if !upgrade_block && !from_pool {
            for i in 0..self.params.txs_per_block {
                let tx = self.user_transfer(i);
                attrs.transactions.push(tx);
            }
        }
        attrs.no_tx_pool = !from_pool;
        let fc = ForkchoiceState {
            head_block_hash: parent.hash,
            safe_block_hash: self.seq.safe,
            finalized_block_hash: self.seq.finalized,
        };
        let call = EngineCall::ForkchoiceUpdated {
            version: fcu_version(&self.cfg, t),
            state: fc,
            attributes: Some(Box::new(attrs)),
        };
        let id = match self.seq.handle(&call).map_err(|e| e.to_string())? {
            EngineReply::Forkchoice(r) => r.payload_id.ok_or("no payload id")?,
            other => return Err(format!("unexpected reply {other:?}")),
        };
        let info = PayloadInfo { id, timestamp: t };
        let env = match self
            .seq
            .handle(&EngineCall::GetPayload { version: get_payload_version(&self.cfg, t), info })
        {
            Ok(EngineReply::Payload(env)) => env,
            other => return Err(format!("getPayload: {other:?}")),
        };
        let hash = env.execution_payload.block_hash;
        let np = EngineCall::NewPayload { version: new_payload_version(&self.cfg, t), envelope: env.clone() };
        self.seq.handle(&np).map_err(|e| e.to_string())?;
        let fc = ForkchoiceState { head_block_hash: hash, ..fc };
        self.seq
            .handle(&EngineCall::ForkchoiceUpdated {
                version: fcu_version(&self.cfg, t),
                state: fc,
                attributes: None,
            })
            .map_err(|e| e.to_string())?;
        let block = self.seq.block_data(&hash).ok_or("sealed block unknown")?;
        let r = block.block_ref;
        if from_pool {
            return Ok(());
        }
        self.unbatched.push(L2BlockInput {
            number: r.number,
            timestamp: r.timestamp,
            parent_hash: r.parent_hash,
            hash: r.hash,
            l1_origin: r.l1origin,
            sequence_number: r.sequence_number,
            transactions: env.execution_payload.transactions.clone(),
        });
        self.seq.prune(4096);
        Ok(())
    }

    /// With an external sequencer: queues the blocks it produced since the last batch (from
    /// its safe head again if its chain was reorganised under the batcher, as op-batcher
    /// does) and tops up its engine's mempool with user transfers.
    fn collect_sequenced(&mut self) -> Result<(), String> {
        let on_chain = |r: &L2BlockRef| {
            self.seq.block_by_number(r.number).map(|b| b.envelope.execution_payload.block_hash)
                == Some(r.hash)
        };
        if self.batched.is_some_and(|b| !on_chain(&b)) {
            log::warn!("devnet batcher: the sequenced chain was reorganised, re-batching from its safe head");
            self.batched = self.seq.block_data(&self.seq.safe).map(|d| d.block_ref);
            self.unbatched.clear();
        }
        let from = self.batched.map_or(1, |b| b.number + 1);
        for n in from..=self.seq.head_number() {
            let Some(b) = self.seq.block_by_number(n) else { break };
            let d = self
                .seq
                .block_data(&b.envelope.execution_payload.block_hash)
                .ok_or("sequenced block unknown")?;
            let r = d.block_ref;
            self.unbatched.push(L2BlockInput {
                number: r.number,
                timestamp: r.timestamp,
                parent_hash: r.parent_hash,
                hash: r.hash,
                l1_origin: r.l1origin,
                sequence_number: r.sequence_number,
                transactions: b.envelope.execution_payload.transactions.clone(),
            });
            self.batched = Some(r);
        }
        let per_l1_block = self.params.txs_per_block * self.params.l1_block_time / self.cfg.block_time.max(1);
        for _ in 0..per_l1_block {
            if self.seq.pool.len() >= 256 {
                break;
            }
            let tx = self.user_transfer(0);
            self.seq.pool.push(tx);
        }
        self.seq.prune(4096);
        Ok(())
    }

    /// A signed transfer between two of the devnet's users.
    fn user_transfer(&mut self, i: u64) -> Bytes {
        let n = self.users.len() as u64;
        let from = (self.rng.below(n)) as usize;
        let to = self.users[((from as u64 + 1 + i) % n) as usize].address;
        let tx = super::genesis::user_transfer(to, U256::from_u64(1 + self.rng.below(1_000_000)));
        Bytes(self.users[from].sign(tx, self.cfg.l2_chain_id).encoded().to_vec())
    }

    /// Posts the unbatched L2 blocks (one channel) and seals the next L1 block.
    fn mine_l1(&mut self) -> Result<(), String> {
        self.l1_blocks_built += 1;
        if self.params.sequencing == Sequencing::NodeOnStandIn {
            self.collect_sequenced()?;
        }
        if !self.unbatched.is_empty() && !self.params.manual_batcher {
            let rest = self.unbatched.split_off(self.unbatched.len().min(MAX_CHANNEL_BLOCKS));
            let blocks = std::mem::replace(&mut self.unbatched, rest);
            let sealing = self.l1.head().info.number() + 1;
            self.carried.insert(sealing, blocks.clone());
            while self.carried.len() > 64 {
                self.carried.pop_first();
            }
            let id = channel_out::random_channel_id(&mut self.rng);
            // Span batches once Delta is active at the first block's L1 origin (derivation drops
            // a span batch whose origin or inclusion block predates Delta), singular before.
            let first_origin_time = blocks
                .first()
                .and_then(|b| self.l1.block_by_number(b.l1_origin.number))
                .map_or(0, |b| b.info.time());
            let kind = if self.cfg.is_active(Fork::Delta, first_origin_time) {
                self.channels.1 += 1;
                BatchKind::Span
            } else {
                self.channels.0 += 1;
                BatchKind::Singular
            };
            // Blobs every other L1 block once Ecotone is active at the inclusion block (before
            // it derivation reads only calldata).
            let inclusion_time = self.l1.head().info.time() + self.params.l1_block_time;
            let use_blobs =
                self.l1_blocks_built % 2 == 0 && self.cfg.is_active(Fork::Ecotone, inclusion_time);
            let max_frame = if use_blobs { channel_out::MAX_BLOB_FRAME_SIZE } else { MAX_CALLDATA_FRAME };
            let frames = channel_out::channel_frames(
                &self.cfg,
                id,
                kind,
                &blocks,
                Compressor::Zlib { level: channel_out::ZLIB_BEST_COMPRESSION },
                max_frame,
            )
            .map_err(|e| format!("batcher: {e}"))?;
            if use_blobs {
                let blobs = channel_out::blob_payloads(&frames).map_err(|e| format!("batcher: {e}"))?;
                let mut hashes = Vec::with_capacity(blobs.len());
                for b in blobs {
                    let h = versioned_hash(&kzg_commitment(&b).map_err(|e| e.to_string())?);
                    self.l1.add_blob(h, b);
                    hashes.push(h);
                }
                let tx = SignedTx {
                    tx_type: EIP4844_TX_TYPE,
                    gas_price: 30_000_000_000,
                    max_priority_fee_per_gas: 1_000_000_000,
                    gas_limit: 21_000,
                    to: Some(self.cfg.batch_inbox_address),
                    max_fee_per_blob_gas: 1_000_000_000,
                    blob_versioned_hashes: hashes,
                    ..SignedTx::default()
                };
                let tx = self.batcher.sign(tx, DEVNET_L1_CHAIN_ID);
                self.l1.include(tx, Vec::new(), true);
                self.posted.1 += 1;
            } else {
                for data in channel_out::calldata_payloads(&frames) {
                    let tx = SignedTx {
                        tx_type: EIP1559_TX_TYPE,
                        gas_price: 30_000_000_000,
                        max_priority_fee_per_gas: 1_000_000_000,
                        gas_limit: 21_000 + 16 * data.len() as u64,
                        to: Some(self.cfg.batch_inbox_address),
                        input: Bytes(data),
                        ..SignedTx::default()
                    };
                    let tx = self.batcher.sign(tx, DEVNET_L1_CHAIN_ID);
                    self.l1.include(tx, Vec::new(), true);
                    self.posted.0 += 1;
                }
            }
        }
        if self.params.deposit_every > 0 && self.l1_blocks_built % self.params.deposit_every == 0 {
            self.deposit();
        }
        self.l1.seal();
        Ok(())
    }

    /// A step of the sequenced chain built elsewhere (`Sequencing::NodeElsewhere`): the next
    /// block to batch, or a reorganisation whose blocks not posted yet are dropped (blocks
    /// already on L1 stay there; derivation keeps the batches that fit the safe chain).
    pub fn push_sequenced(&mut self, step: super::feed::FeedStep) {
        match step {
            super::feed::FeedStep::Block(b) => self.unbatched.push(b),
            super::feed::FeedStep::Reorg { from } => self.unbatched.retain(|b| b.number < from),
        }
    }

    /// How many sequenced blocks wait for the batcher.
    pub fn unbatched_len(&self) -> usize {
        self.unbatched.len()
    }

    /// The sequenced blocks not batched yet (with `manual_batcher`, all of them), oldest first.
    pub fn poll_unbatched(&mut self) -> Vec<L2BlockInput> {
        std::mem::take(&mut self.unbatched)
    }

    /// Reorganises the L1 head: the top `depth` blocks are replaced by empty ones, and the L2
    /// blocks their batches carried go back to the batcher, to be posted again.
    pub fn reorg_l1(&mut self, depth: u64) {
        let from = self.l1.head().info.number().saturating_sub(depth) + 1;
        let mut lost: Vec<L2BlockInput> = self.carried.split_off(&from).into_values().flatten().collect();
        lost.append(&mut self.unbatched);
        crate::sort::sort_by_key(&mut lost, |b| b.number);
        lost.dedup_by_key(|b| b.number);
        self.unbatched = lost;
        self.l1.reorg_from(from, depth);
    }

    /// A user deposit: a portal call whose receipt carries a TransactionDeposited log.
    fn deposit(&mut self) {
        let to = self.users[0].address;
        let dep = DepositTx {
            from: self.depositor.address,
            to: Some(to),
            mint: U256::from_u64(1_000_000_000_000_000),
            value: U256::from_u64(1_000_000_000_000_000),
            gas_limit: 100_000,
            ..DepositTx::default()
        };
        let log = encode_deposit_log(&self.cfg.deposit_contract_address, &dep);
        let tx = SignedTx {
            tx_type: EIP1559_TX_TYPE,
            gas_price: 30_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            gas_limit: 150_000,
            to: Some(self.cfg.deposit_contract_address),
            value: dep.mint,
            ..SignedTx::default()
        };
        let tx = self.depositor.sign(tx, DEVNET_L1_CHAIN_ID);
        self.l1.include(tx, vec![log], true);
        self.deposits += 1;
    }
}

/// Answers a chain-data request from a simulated L1 and engine (the devnet producer and the
/// in-process test harness read them the way the node's workers read real ones).
pub fn serve_fetch(l1: &L1Sim, engine: &EngineSim, req: FetchRequest) -> Arrival {
    use FetchRequest::*;
    let found = match &req {
        L1HeaderByNumber(n) => l1.block_by_number(*n).map(|b| Arrival::L1Header(b.info.clone())),
        L1HeaderByHash(h) => l1.block_by_hash(h).map(|b| Arrival::L1Header(b.info.clone())),
        L1BlockByHash(h) => l1.block_by_hash(h).map(|b| Arrival::L1Block(b.info.clone(), b.txs.clone())),
        L1Receipts { hash: h, .. } => {
            l1.block_by_hash(h).map(|b| Arrival::L1Receipts(*h, b.receipts.clone()))
        }
        Blobs { block, hashes } => hashes
            .iter()
            .map(|h| l1.blob(h))
            .collect::<Option<Vec<_>>>()
            .map(|blobs| Arrival::Blobs { block: *block, hashes: hashes.clone(), blobs }),
        L2BlockByNumber(n) => engine
            .block_by_number(*n)
            .and_then(|b| engine.block_data(&b.envelope.execution_payload.block_hash))
            .map(Arrival::L2Block),
        L2BlockByHash(h) => engine.block_data(h).map(Arrival::L2Block),
        L2BlockByLabel(label) => {
            let h = match label {
                L2Label::Unsafe => engine.head,
                L2Label::Safe => engine.safe,
                L2Label::Finalized => engine.finalized,
            };
            return Arrival::L2Label(*label, engine.block_data(&h));
        }
    };
    found.unwrap_or(Arrival::NotFound(req))
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::Devnet;

    /// Builds `n` blocks on the sequencer engine from its pool, as a sequencer node would, L1
    /// moving along (one L1 block per three L2 blocks).
    pub fn sequence(d: &mut Devnet, n: u64) {
        for _ in 0..n {
            let next = d.seq.block(&d.seq.head).unwrap().header.timestamp + d.cfg.block_time;
            while d.l1.head().info.time() + d.params.l1_block_time <= next {
                d.mine_l1().unwrap();
            }
            d.build_l2(true).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produces_and_batches_blocks_on_its_own_clock() {
        let p = DevnetParams { deposit_every: 2, ..DevnetParams::default() };
        let mut d = Devnet::new(p.clone()).unwrap();
        d.advance_to(p.genesis_time + 60).unwrap();
        assert_eq!(d.sequenced_head(), 30, "one L2 block every 2 s");
        assert_eq!(d.l1.head().info.number(), 10, "one L1 block every 6 s");
        assert!(d.posted.0 > 0 && d.posted.1 > 0, "calldata and blobs: {:?}", d.posted);
        assert!(d.deposits >= 4);
        // The L1 state proves the unsafe block signer.
        let slot = U256(keccak256(b"systemconfig.unsafeblocksigner").0);
        let proof = d.l1.snapshot().proof(&d.cfg.l1_system_config_address, &[slot]);
        proof.verify(&d.l1.head().info.header.state_root).unwrap();
        assert_eq!(&proof.slot(&slot).unwrap().0[12..], &d.unsafe_signer.0);
    }
}
