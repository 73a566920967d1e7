//! An L1 chain simulator's logic: blocks with real headers (hash, transactions root, receipts
//! root, logs bloom), signed batcher transactions (calldata or blob-carrying type 3),
//! TransactionDeposited and ConfigUpdate logs with receipts, blobs by versioned hash, head /
//! safe / finalized labels, and reorgs. Pure: the devnet serves it over JSON-RPC and the beacon
//! API; tests read it directly.

use std::collections::HashMap;

use k256::ecdsa::SigningKey;

use crate::derive::data::BlockInfo;
use crate::protocol::block_ref::L1BlockRef;
use crate::protocol::header::{Header, Withdrawal, EMPTY_OMMERS_HASH};
use crate::protocol::primitives::{keccak256, Address, Bloom, Bytes, B256, U256};
use crate::protocol::proof::{SnapshotAccount, StateSnapshot, EMPTY_CODE_HASH};
use crate::protocol::receipt::{Log, Receipt};
use crate::protocol::trie::{ordered_root, EMPTY_ROOT};
use crate::protocol::tx::{address_of, SignedTx, Transaction, TxBody, TxSignature};

/// One simulated L1 block.
#[derive(Debug, Clone)]
pub struct SimL1Block {
    pub info: BlockInfo,
    pub txs: Vec<Transaction>,
    pub receipts: Vec<Receipt>,
}

impl SimL1Block {
    pub fn block_ref(&self) -> L1BlockRef {
        self.info.block_ref()
    }
}

/// What the next block will contain.
#[derive(Debug, Clone, Default)]
pub struct PendingBlock {
    pub txs: Vec<Transaction>,
    pub receipts_logs: Vec<Vec<Log>>,
    pub success: Vec<bool>,
}

/// A signer: a secp256k1 key and its address, with a nonce.
#[derive(Clone)]
pub struct Account {
    key: SigningKey,
    pub address: Address,
    pub nonce: u64,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Account({})", self.address)
    }
}

impl Account {
    /// A deterministic dev account from a seed string.
    pub fn from_seed(seed: &str) -> Account {
        let mut k = keccak256(seed.as_bytes()).0;
        loop {
            if let Ok(key) = SigningKey::from_slice(&k) {
                let address = address_of(key.verifying_key());
                return Account { key, address, nonce: 0 };
            }
            k = keccak256(k).0;
        }
    }

    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes().into()
    }

    /// Signs `tx` (EIP-155 / typed), filling chain id, nonce and signature.
    pub fn sign(&mut self, mut tx: SignedTx, chain_id: u64) -> Transaction {
        tx.chain_id = Some(chain_id);
        tx.nonce = self.nonce;
        self.nonce += 1;
        let hash = tx.signing_hash();
        let (sig, rec) = self.key.sign_prehash_recoverable(&hash.0).unwrap_or_else(|_| unreachable_sig());
        let (r, s) = sig.split_bytes();
        let parity = rec.is_y_odd() as u64;
        tx.sig = TxSignature {
            v: if tx.tx_type == 0 { chain_id * 2 + 35 + parity } else { parity },
            r: U256::from_be_slice(&r).unwrap_or_default(),
            s: U256::from_be_slice(&s).unwrap_or_default(),
        };
        Transaction::new(TxBody::Signed(tx))
    }
}

/// Signing a 32-byte prehash with a valid key cannot fail; this keeps the signature shape if a
/// future k256 did.
fn unreachable_sig() -> (k256::ecdsa::Signature, k256::ecdsa::RecoveryId) {
    let sig = k256::ecdsa::Signature::from_scalars([1u8; 32], [1u8; 32])
        .unwrap_or_else(|_| panic!("constant signature"));
    (sig, k256::ecdsa::RecoveryId::new(false, false))
}

/// The simulated chain.
#[derive(Debug)]
pub struct L1Sim {
    pub chain_id: u64,
    pub block_time: u64,
    blocks: Vec<SimL1Block>,
    /// Side blocks of abandoned forks, still served by hash.
    by_hash: HashMap<B256, SimL1Block>,
    blobs: HashMap<B256, Vec<u8>>,
    pub pending: PendingBlock,
    /// Blocks between head and safe / finalized.
    pub safe_distance: u64,
    pub finalized_distance: u64,
    /// Accounts with storage that the state root commits to (for `eth_getProof`).
    pub state: Vec<(Address, Vec<(U256, U256)>)>,
    /// Genesis, kept once older blocks are pruned.
    genesis: Option<SimL1Block>,
    salt: u64,
}

impl L1Sim {
    /// A chain with only a genesis block at `genesis_time`.
    pub fn new(chain_id: u64, genesis_time: u64, block_time: u64) -> L1Sim {
        let mut sim = L1Sim {
            chain_id,
            block_time,
            blocks: Vec::new(),
            by_hash: HashMap::new(),
            blobs: HashMap::new(),
            pending: PendingBlock::default(),
            safe_distance: 2,
            finalized_distance: 4,
            state: Vec::new(),
            genesis: None,
            salt: 0,
        };
        sim.seal_at(genesis_time);
        sim
    }

    pub fn genesis(&self) -> &SimL1Block {
        self.genesis.as_ref().unwrap_or(&self.blocks[0])
    }

    /// Forgets blocks more than `keep` below the head, and blobs more than `keep_blobs` below
    /// it (a long-running devnet stays bounded; beacon nodes prune blobs too). Genesis stays.
    pub fn prune(&mut self, keep: u64, keep_blobs: u64) {
        if self.genesis.is_none() {
            self.genesis = self.blocks.first().cloned();
        }
        let head = self.head().info.number();
        let blob_floor = head.saturating_sub(keep_blobs);
        for b in self.blocks.iter().filter(|b| b.info.number() < blob_floor) {
            for t in &b.txs {
                if let TxBody::Signed(s) = &t.body {
                    for h in &s.blob_versioned_hashes {
                        self.blobs.remove(h);
                    }
                }
            }
        }
        let floor = head.saturating_sub(keep);
        let drop = self.blocks.iter().take_while(|b| b.info.number() < floor).count();
        self.blocks.drain(..drop);
        let side_floor = floor;
        self.by_hash.retain(|_, b| b.info.number() >= side_floor);
    }

    pub fn head(&self) -> &SimL1Block {
        &self.blocks[self.blocks.len() - 1]
    }

    pub fn safe(&self) -> &SimL1Block {
        &self.blocks
            [self.blocks.len().saturating_sub(1 + self.safe_distance as usize).min(self.blocks.len() - 1)]
    }

    pub fn finalized(&self) -> &SimL1Block {
        &self.blocks[self
            .blocks
            .len()
            .saturating_sub(1 + self.finalized_distance as usize)
            .min(self.blocks.len() - 1)]
    }

    pub fn block_by_number(&self, n: u64) -> Option<&SimL1Block> {
        self.blocks.get(n.checked_sub(self.blocks[0].info.number()).unwrap_or(u64::MAX) as usize)
    }

    pub fn block_by_hash(&self, h: &B256) -> Option<&SimL1Block> {
        self.blocks.iter().find(|b| b.info.hash == *h).or_else(|| self.by_hash.get(h))
    }

    /// The blob with this versioned hash (stored without its zero tail, which OP blobs with
    /// little data are mostly made of, so the simulator can keep them as long as its blocks).
    pub fn blob(&self, versioned_hash: &B256) -> Option<Vec<u8>> {
        let mut b = self.blobs.get(versioned_hash)?.clone();
        b.resize(crate::protocol::blob::BLOB_SIZE, 0);
        Some(b)
    }

    /// Stores a blob under its versioned hash (the caller computed it from the commitment).
    pub fn add_blob(&mut self, versioned_hash: B256, mut blob: Vec<u8>) {
        let len = blob.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        blob.truncate(len);
        blob.shrink_to_fit();
        self.blobs.insert(versioned_hash, blob);
    }

    /// Adds a transaction to the next block, with the logs its receipt should carry.
    pub fn include(&mut self, tx: Transaction, logs: Vec<Log>, success: bool) {
        self.pending.txs.push(tx);
        self.pending.receipts_logs.push(logs);
        self.pending.success.push(success);
    }

    /// Rebuilds the genesis block after `state` changed (only before any other block).
    pub fn reseal_genesis(&mut self) {
        if self.blocks.len() == 1 {
            let t = self.blocks[0].info.time();
            self.blocks.clear();
            self.seal_at(t);
        }
    }

    /// The state `eth_getProof` answers from (what the state roots commit to).
    pub fn snapshot(&self) -> StateSnapshot<'_> {
        let accounts = self
            .state
            .iter()
            .map(|(a, slots)| SnapshotAccount {
                address: *a,
                nonce: 1,
                balance: U256::ZERO,
                code_hash: EMPTY_CODE_HASH,
                storage: slots,
            })
            .collect();
        StateSnapshot { accounts }
    }

    /// The state root: of `state` when set, else a per-block stand-in value.
    fn state_root(&self, parent_hash: &B256) -> B256 {
        if self.state.is_empty() {
            return keccak256([parent_hash.0, [self.salt as u8; 32]].concat());
        }
        self.snapshot().root()
    }

    /// Seals the pending transactions into the next block.
    pub fn seal(&mut self) -> &SimL1Block {
        let t = self.head().info.time() + self.block_time;
        self.seal_at(t)
    }

    fn seal_at(&mut self, timestamp: u64) -> &SimL1Block {
        let pending = std::mem::take(&mut self.pending);
        let (number, parent_hash) = match self.blocks.last() {
            Some(p) => (p.info.number() + 1, p.info.hash),
            None => (0, B256::ZERO),
        };
        let mut receipts = Vec::with_capacity(pending.txs.len());
        let mut bloom = Bloom::ZERO;
        let mut cumulative = 0u64;
        for (i, logs) in pending.receipts_logs.into_iter().enumerate() {
            cumulative += 21_000;
            let mut rb = Bloom::ZERO;
            for l in &logs {
                rb.accrue(&l.address.0);
                for t in &l.topics {
                    rb.accrue(&t.0);
                }
            }
            for (a, b) in bloom.0.iter_mut().zip(rb.0.iter()) {
                *a |= *b;
            }
            let success = pending.success.get(i).copied().unwrap_or(true);
            receipts.push(Receipt {
                tx_type: pending.txs[i].tx_type(),
                success,
                cumulative_gas_used: cumulative,
                logs_bloom: rb,
                logs: if success { logs } else { Vec::new() },
                deposit_nonce: None,
                deposit_receipt_version: None,
            });
        }
        let tx_bytes: Vec<&[u8]> = pending.txs.iter().map(|t| t.encoded()).collect();
        let receipt_bytes: Vec<Vec<u8>> = receipts.iter().map(|r| r.encode()).collect();
        let header = Header {
            parent_hash,
            ommers_hash: EMPTY_OMMERS_HASH,
            beneficiary: Address::ZERO,
            state_root: self.state_root(&parent_hash),
            transactions_root: ordered_root(&tx_bytes),
            receipts_root: ordered_root(&receipt_bytes),
            logs_bloom: bloom,
            difficulty: U256::ZERO,
            number,
            gas_limit: 30_000_000,
            gas_used: cumulative,
            timestamp,
            extra_data: Bytes(self.salt.to_be_bytes().to_vec()),
            mix_hash: keccak256(
                [b"randao".as_slice(), &number.to_be_bytes(), &self.salt.to_be_bytes()].concat(),
            ),
            nonce: Default::default(),
            base_fee_per_gas: Some(7),
            withdrawals_root: Some(ordered_root::<Vec<u8>>(&[])),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
            parent_beacon_block_root: Some(keccak256([b"beacon".as_slice(), &number.to_be_bytes()].concat())),
            requests_hash: None,
        };
        debug_assert_eq!(header.withdrawals_root, Some(EMPTY_ROOT));
        let block = SimL1Block { info: BlockInfo::new(header), txs: pending.txs, receipts };
        self.blocks.push(block);
        self.head()
    }

    /// Replaces the chain above `number` with new empty blocks (`depth` of them): a reorg.
    pub fn reorg_from(&mut self, number: u64, depth: u64) {
        self.salt += 1;
        let base = self.blocks[0].info.number();
        let keep = (number.saturating_sub(base)) as usize;
        for b in self.blocks.drain(keep.min(self.blocks.len())..) {
            self.by_hash.insert(b.info.hash, b);
        }
        for _ in 0..depth {
            self.seal();
        }
    }

    /// All withdrawals of a block (always none: the simulator has no beacon chain).
    pub fn withdrawals(&self) -> Vec<Withdrawal> {
        Vec::new()
    }
}

/// ABI-encodes a `ConfigUpdate(uint256 indexed version, uint8 indexed updateType, bytes data)`
/// log of the SystemConfig (version 0) with `payload` as the `bytes` content.
pub fn config_update_log(system_config: Address, update_type: u8, payload: &[u8]) -> Log {
    let topic0 = keccak256(b"ConfigUpdate(uint256,uint8,bytes)");
    let mut ty = [0u8; 32];
    ty[31] = update_type;
    let mut data = Vec::with_capacity(64 + payload.len().div_ceil(32) * 32);
    let mut word = [0u8; 32];
    word[31] = 0x20;
    data.extend_from_slice(&word);
    let mut len = [0u8; 32];
    len[24..].copy_from_slice(&(payload.len() as u64).to_be_bytes());
    data.extend_from_slice(&len);
    data.extend_from_slice(payload);
    data.resize(64 + payload.len().div_ceil(32) * 32, 0);
    Log { address: system_config, topics: vec![topic0, B256::ZERO, B256(ty)], data: Bytes(data) }
}

/// A 32-byte ABI word holding an address.
pub fn abi_address(a: &Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(&a.0);
    w
}

/// A 32-byte ABI word holding a u64.
pub fn abi_u64(v: u64) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[24..].copy_from_slice(&v.to_be_bytes());
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::receipt::Receipt;
    use crate::protocol::tx::{SignedTx, EIP1559_TX_TYPE};

    #[test]
    fn blocks_chain_and_commit_to_their_contents() {
        let mut sim = L1Sim::new(900, 1_000, 12);
        let mut batcher = Account::from_seed("batcher");
        let tx = batcher.sign(
            SignedTx {
                tx_type: EIP1559_TX_TYPE,
                gas_limit: 100_000,
                gas_price: 10,
                to: Some(Address([0xff; 20])),
                input: Bytes(vec![0, 1, 2]),
                ..SignedTx::default()
            },
            900,
        );
        assert_eq!(tx.sender().unwrap(), batcher.address);
        sim.include(tx.clone(), vec![], true);
        let b1 = sim.seal().clone();
        assert_eq!(b1.info.header.parent_hash, sim.genesis().info.hash);
        assert_eq!(b1.info.header.transactions_root, ordered_root(&[tx.encoded()]));
        assert_eq!(Receipt::decode(&b1.receipts[0].encode()).unwrap(), b1.receipts[0]);
        assert_eq!(Header::decode(&b1.info.header.encode()).unwrap().hash(), b1.info.hash);
        sim.seal();
        sim.seal();
        let old = sim.block_by_number(2).unwrap().info.hash;
        sim.reorg_from(2, 3);
        assert_ne!(sim.block_by_number(2).unwrap().info.hash, old);
        assert_eq!(sim.head().info.number(), 4);
        assert!(sim.block_by_hash(&old).is_some());
    }

    #[test]
    fn config_update_logs_decode() {
        let a = Address([7; 20]);
        let log = config_update_log(a, 0, &abi_address(&Address([9; 20])));
        let u = crate::protocol::system_config::ConfigUpdate::decode(&log).unwrap();
        assert!(format!("{u:?}").to_lowercase().contains("0909"), "{u:?}");
    }
}
