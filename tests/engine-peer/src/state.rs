//! The world state after a block, in memory: accounts in persistent maps (a block's state shares
//! everything it did not change with its parent's, so every block keeps its own), the state and
//! storage roots from `alloy-trie`, EIP-1186 proofs, and the read side revm executes against.
//!
//! Call order: `State::genesis` from the alloc; per block `executor_db` gives the pre-state to
//! revm's `State` (with bundle updates), and `apply` folds the resulting bundle into a copy.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_rlp::Encodable;
use alloy_trie::proof::ProofRetainer;
use alloy_trie::{HashBuilder, Nibbles, TrieAccount, EMPTY_ROOT_HASH, KECCAK_EMPTY};
use revm::bytecode::Bytecode;
use revm::database::BundleState;
use revm::state::AccountInfo;

/// One account: its fields and its storage keyed by the slot's hash (trie order).
#[derive(Clone, Debug, Default)]
pub struct Account {
    pub nonce: u64,
    pub balance: U256,
    pub code_hash: B256,
    /// keccak(slot) -> (slot, value), non-zero values only.
    pub storage: imbl::OrdMap<B256, (U256, U256)>,
    /// The storage root, computed once per version of `storage`.
    pub storage_root: B256,
}

impl Account {
    fn is_empty(&self) -> bool {
        self.nonce == 0
            && self.balance.is_zero()
            && (self.code_hash == KECCAK_EMPTY || self.code_hash.is_zero())
    }

    fn info(&self) -> AccountInfo {
        AccountInfo {
            balance: self.balance,
            nonce: self.nonce,
            code_hash: self.code_hash,
            ..Default::default()
        }
    }

    pub fn slot(&self, slot: U256) -> U256 {
        self.storage.get(&keccak256(slot.to_be_bytes::<32>())).map_or(U256::ZERO, |(_, v)| *v)
    }
}

/// Contract code by hash, shared by every state (code never changes under its hash).
pub type Codes = HashMap<B256, Bytecode>;

/// A whole state: accounts by address, plus the code they refer to.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub accounts: imbl::OrdMap<Address, Arc<Account>>,
}

/// The value a storage trie holds for a slot: the RLP of the trimmed big-endian value.
fn slot_rlp(v: &U256) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode(&mut out);
    out
}

fn storage_root(storage: &imbl::OrdMap<B256, (U256, U256)>) -> B256 {
    if storage.is_empty() {
        return EMPTY_ROOT_HASH;
    }
    let mut hb = HashBuilder::default();
    for (k, (_, v)) in storage.iter() {
        hb.add_leaf(Nibbles::unpack(k), &slot_rlp(v));
    }
    hb.root()
}

fn trie_account(a: &Account) -> Vec<u8> {
    let mut out = Vec::new();
    TrieAccount::new(a.nonce, a.balance, a.storage_root, a.code_hash).encode(&mut out);
    out
}

/// An EIP-1186 answer for one account.
#[derive(Debug)]
pub struct AccountProof {
    pub account: Account,
    pub account_proof: Vec<Bytes>,
    /// (slot, value, proof) per asked slot.
    pub storage_proofs: Vec<(U256, U256, Vec<Bytes>)>,
}

impl State {
    /// The genesis state from `(address, balance, nonce, code, storage)` entries.
    pub fn genesis(alloc: Vec<(Address, U256, u64, Bytes, Vec<(U256, U256)>)>, codes: &mut Codes) -> State {
        let mut accounts = imbl::OrdMap::new();
        for (address, balance, nonce, code, storage) in alloc {
            let code_hash = if code.is_empty() {
                KECCAK_EMPTY
            } else {
                let b = Bytecode::new_raw(code);
                let h = b.hash_slow();
                codes.insert(h, b);
                h
            };
            let storage: imbl::OrdMap<B256, (U256, U256)> = storage
                .into_iter()
                .filter(|(_, v)| !v.is_zero())
                .map(|(k, v)| (keccak256(k.to_be_bytes::<32>()), (k, v)))
                .collect();
            let storage_root = storage_root(&storage);
            accounts.insert(address, Arc::new(Account { nonce, balance, code_hash, storage, storage_root }));
        }
        State { accounts }
    }

    pub fn account(&self, a: &Address) -> Option<&Arc<Account>> {
        self.accounts.get(a)
    }

    /// The state root.
    pub fn root(&self) -> B256 {
        self.account_trie(None).0
    }

    /// The account trie's root, and the proof nodes on the path to `target` when given.
    fn account_trie(&self, target: Option<&Address>) -> (B256, Vec<Bytes>) {
        let mut leaves: Vec<(B256, Vec<u8>)> =
            self.accounts.iter().map(|(a, acc)| (keccak256(a), trie_account(acc))).collect();
        leaves.sort_by(|a, b| a.0.cmp(&b.0));
        proof_of(&leaves, target.map(keccak256))
    }

    /// The EIP-1186 proof of `address` and its `slots`.
    pub fn proof(&self, address: &Address, slots: &[U256]) -> AccountProof {
        let (_, account_proof) = self.account_trie(Some(address));
        let account = self.accounts.get(address).map(|a| (**a).clone()).unwrap_or(Account {
            code_hash: KECCAK_EMPTY,
            storage_root: EMPTY_ROOT_HASH,
            ..Default::default()
        });
        let leaves: Vec<(B256, Vec<u8>)> =
            account.storage.iter().map(|(k, (_, v))| (*k, slot_rlp(v))).collect();
        let storage_proofs = slots
            .iter()
            .map(|s| {
                let (_, p) = proof_of(&leaves, Some(keccak256(s.to_be_bytes::<32>())));
                (*s, account.slot(*s), p)
            })
            .collect();
        AccountProof { account, account_proof, storage_proofs }
    }

    /// The state after applying `bundle` (a block's changes) to `self`.
    pub fn apply(&self, bundle: BundleState, codes: &mut Codes) -> State {
        let mut accounts = self.accounts.clone();
        for (hash, code) in bundle.contracts {
            codes.entry(hash).or_insert(code);
        }
        for (address, acc) in bundle.state {
            let Some(info) = acc.info.clone() else {
                accounts.remove(&address);
                continue;
            };
            let mut next = match (acc.was_destroyed(), accounts.get(&address)) {
                (false, Some(old)) => (**old).clone(),
                _ => Account::default(),
            };
            next.nonce = info.nonce;
            next.balance = info.balance;
            next.code_hash = info.code_hash;
            if let Some(code) = info.code {
                codes.entry(info.code_hash).or_insert(code);
            }
            let mut changed = acc.was_destroyed() || next.storage_root.is_zero();
            for (slot, value) in acc.storage {
                let key = keccak256(slot.to_be_bytes::<32>());
                let v = value.present_value;
                if v.is_zero() {
                    changed |= next.storage.remove(&key).is_some();
                } else if next.storage.get(&key).map(|(_, old)| *old) != Some(v) {
                    next.storage.insert(key, (slot, v));
                    changed = true;
                }
            }
            if changed {
                next.storage_root = storage_root(&next.storage);
            }
            // EIP-161: an account left empty is not in the trie.
            if next.is_empty() && next.storage.is_empty() {
                accounts.remove(&address);
            } else {
                accounts.insert(address, Arc::new(next));
            }
        }
        State { accounts }
    }
}

/// Root of the trie of sorted `leaves`, and the proof nodes (root first) for `target`.
fn proof_of(leaves: &[(B256, Vec<u8>)], target: Option<B256>) -> (B256, Vec<Bytes>) {
    if leaves.is_empty() {
        // The empty trie's proof is its one (empty) root node.
        return (EMPTY_ROOT_HASH, if target.is_some() { vec![Bytes::from_static(&[0x80])] } else { vec![] });
    }
    let Some(target) = target else {
        let mut hb = HashBuilder::default();
        for (k, v) in leaves {
            hb.add_leaf(Nibbles::unpack(k), v);
        }
        return (hb.root(), Vec::new());
    };
    let path = Nibbles::unpack(target);
    let mut hb = HashBuilder::default().with_proof_retainer(ProofRetainer::new(vec![path]));
    for (k, v) in leaves {
        hb.add_leaf(Nibbles::unpack(k), v);
    }
    let root = hb.root();
    let nodes = hb.take_proof_nodes().matching_nodes_sorted(&path).into_iter().map(|(_, n)| n).collect();
    (root, nodes)
}

/// The pre-state revm reads while executing a block: `state`, the shared code, and the hashes
/// of the 256 blocks before it (BLOCKHASH).
pub struct PreState<'a> {
    pub state: &'a State,
    pub codes: &'a Codes,
    pub hashes: HashMap<u64, B256>,
}

impl std::fmt::Debug for PreState<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreState({} accounts)", self.state.accounts.len())
    }
}

impl revm::Database for PreState<'_> {
    type Error = Infallible;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Infallible> {
        Ok(self.state.accounts.get(&address).map(|a| {
            let mut info = a.info();
            info.code = self.codes.get(&a.code_hash).cloned();
            info
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Infallible> {
        Ok(self.codes.get(&code_hash).cloned().unwrap_or_default())
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, Infallible> {
        Ok(self.state.accounts.get(&address).map_or(U256::ZERO, |a| a.slot(index)))
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Infallible> {
        Ok(self.hashes.get(&number).copied().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_single_account_roots() {
        assert_eq!(State::default().root(), EMPTY_ROOT_HASH);
        // An account with only a balance: the root is the hash of one leaf node whose path is
        // the whole hashed address; the proof is that one node, hashing to the root.
        let mut codes = Codes::new();
        let a = Address::repeat_byte(1);
        let s = State::genesis(vec![(a, U256::from(5), 0, Bytes::new(), vec![])], &mut codes);
        let p = s.proof(&a, &[U256::from(1)]);
        assert_eq!(p.account_proof.len(), 1);
        assert_eq!(keccak256(&p.account_proof[0]), s.root());
        assert_eq!(p.account.storage_root, EMPTY_ROOT_HASH);
        assert_eq!(p.storage_proofs[0].2, vec![Bytes::from_static(&[0x80])]);
    }

    #[test]
    fn storage_proofs_lead_to_the_storage_root() {
        let mut codes = Codes::new();
        let a = Address::repeat_byte(2);
        let slots: Vec<(U256, U256)> = (1..40u64).map(|i| (U256::from(i), U256::from(i * 7))).collect();
        let s = State::genesis(vec![(a, U256::ZERO, 1, Bytes::from_static(&[0x00]), slots)], &mut codes);
        let p = s.proof(&a, &[U256::from(3), U256::from(99)]);
        assert_eq!(keccak256(&p.storage_proofs[0].2[0]), p.account.storage_root);
        assert_eq!(p.storage_proofs[0].1, U256::from(21));
        assert_eq!(p.storage_proofs[1].1, U256::ZERO);
        assert_eq!(keccak256(&p.account_proof[0]), s.root());
    }
}
