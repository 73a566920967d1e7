//! `eth_getProof` responses (EIP-1186), checked against a state root: the account proof must lead
//! from the block's state root to the account, whose storage root must lead to each slot's value.
//! op-node reads the runtime config (unsafe block signer, protocol versions) and output roots'
//! withdrawal storage roots this way rather than trusting the RPC.

use serde::{Deserialize, Serialize};

use super::primitives::{keccak256, Address, Bytes, B256, U256};
use super::rlp::{self, Rlp};
use super::trie::{verify_proof, ProofError, EMPTY_ROOT};

/// keccak256 of empty code.
pub const EMPTY_CODE_HASH: B256 = B256([
    0xc5, 0xd2, 0x46, 0x01, 0x86, 0xf7, 0x23, 0x3c, 0x92, 0x7e, 0x7d, 0xb2, 0xdc, 0xc7, 0x03, 0xc0, 0xe5,
    0x00, 0xb6, 0x53, 0xca, 0x82, 0x27, 0x3b, 0x7b, 0xfa, 0xd8, 0x04, 0x5d, 0x85, 0xa4, 0x70,
]);

/// One storage slot's proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageProof {
    pub key: U256,
    pub value: U256,
    pub proof: Vec<Bytes>,
}

/// An `eth_getProof` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountProof {
    pub address: Address,
    pub account_proof: Vec<Bytes>,
    pub balance: U256,
    pub code_hash: B256,
    #[serde(with = "super::primitives::serde_quantity")]
    pub nonce: u64,
    pub storage_hash: B256,
    pub storage_proof: Vec<StorageProof>,
}

/// The state-trie encoding of an account: `rlp([nonce, balance, storageRoot, codeHash])`.
pub fn encode_account(nonce: u64, balance: &U256, storage_root: &B256, code_hash: &B256) -> Vec<u8> {
    rlp::encode_list(|o| {
        rlp::put_u64(o, nonce);
        rlp::put_u256(o, balance);
        rlp::put_bytes(o, &storage_root.0);
        rlp::put_bytes(o, &code_hash.0);
    })
}

/// The storage-trie encoding of a slot value: `rlp(value)` without leading zeros.
pub fn encode_slot_value(v: &U256) -> Vec<u8> {
    let mut o = Vec::with_capacity(33);
    rlp::put_bytes(&mut o, v.to_be_trimmed());
    o
}

/// Why a proof response is not believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountProofError {
    Proof(ProofError),
    /// The proven account differs from the claimed fields.
    AccountMismatch(Address),
    /// A slot's proven value differs from the claimed one.
    SlotMismatch(U256),
    BadAccount(String),
}

impl std::fmt::Display for AccountProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountProofError::Proof(e) => write!(f, "{e}"),
            AccountProofError::AccountMismatch(a) => write!(f, "account {a} does not match its proof"),
            AccountProofError::SlotMismatch(k) => write!(f, "storage slot {k} does not match its proof"),
            AccountProofError::BadAccount(m) => write!(f, "bad account in proof: {m}"),
        }
    }
}

impl std::error::Error for AccountProofError {}

impl From<ProofError> for AccountProofError {
    fn from(e: ProofError) -> Self {
        AccountProofError::Proof(e)
    }
}

impl AccountProof {
    /// Checks the account and every slot against `state_root` (op-geth's `AccountResult.Verify`).
    pub fn verify(&self, state_root: &B256) -> Result<(), AccountProofError> {
        let proven = verify_proof(state_root, &self.address.0, &self.account_proof)?;
        let claimed = encode_account(self.nonce, &self.balance, &self.storage_hash, &self.code_hash);
        match proven {
            Some(acc) if acc == claimed => {}
            // An absent account is the empty account.
            None if self.nonce == 0
                && self.balance == U256::ZERO
                && self.storage_hash == EMPTY_ROOT
                && (self.code_hash == EMPTY_CODE_HASH || self.code_hash == B256::ZERO) => {}
            Some(acc) => {
                // Report a malformed account distinctly from a mismatching one.
                let mut r = Rlp::list(&acc).map_err(|e| AccountProofError::BadAccount(e.to_string()))?;
                let _ = r.next_u64();
                return Err(AccountProofError::AccountMismatch(self.address));
            }
            None => return Err(AccountProofError::AccountMismatch(self.address)),
        }
        for s in &self.storage_proof {
            let value = verify_proof(&self.storage_hash, &s.key.0, &s.proof)?;
            let proven = match value {
                Some(enc) => {
                    let b = Rlp::new(&enc)
                        .next_bytes()
                        .map_err(|e| AccountProofError::BadAccount(e.to_string()))?;
                    U256::from_be_slice(b).ok_or(AccountProofError::SlotMismatch(s.key))?
                }
                None => U256::ZERO,
            };
            if proven != s.value {
                return Err(AccountProofError::SlotMismatch(s.key));
            }
        }
        Ok(())
    }

    /// The proven value of `slot` (zero when the response has no such slot).
    pub fn slot(&self, slot: &U256) -> Option<U256> {
        self.storage_proof.iter().find(|s| s.key == *slot).map(|s| s.value)
    }
}

/// One account of a `StateSnapshot`.
#[derive(Debug, Clone)]
pub struct SnapshotAccount<'a> {
    pub address: Address,
    pub nonce: u64,
    pub balance: U256,
    pub code_hash: B256,
    pub storage: &'a [(U256, U256)],
}

/// Builds a proof response from a whole state (the devnet's L1 serves `eth_getProof` with it).
pub struct StateSnapshot<'a> {
    pub accounts: Vec<SnapshotAccount<'a>>,
}

impl StateSnapshot<'_> {
    fn storage_kv(slots: &[(U256, U256)]) -> Vec<([u8; 32], Vec<u8>)> {
        slots.iter().filter(|(_, v)| *v != U256::ZERO).map(|(k, v)| (k.0, encode_slot_value(v))).collect()
    }

    fn account_kv(&self) -> Vec<([u8; 20], Vec<u8>)> {
        self.accounts
            .iter()
            .map(|a| {
                let root = super::trie::secure_root(&Self::storage_kv(a.storage));
                (a.address.0, encode_account(a.nonce, &a.balance, &root, &a.code_hash))
            })
            .collect()
    }

    /// The state root.
    pub fn root(&self) -> B256 {
        super::trie::secure_root(&self.account_kv())
    }

    /// The `eth_getProof` answer for `address` and `slots`.
    pub fn proof(&self, address: &Address, slots: &[U256]) -> AccountProof {
        let (_, account_proof) = super::trie::secure_proof(&self.account_kv(), &address.0);
        let acc = self.accounts.iter().find(|a| a.address == *address);
        let storage: &[(U256, U256)] = acc.map_or(&[], |a| a.storage);
        let kv = Self::storage_kv(storage);
        let storage_hash = super::trie::secure_root(&kv);
        let storage_proof = slots
            .iter()
            .map(|k| {
                let (_, proof) = super::trie::secure_proof(&kv, &k.0);
                let value = storage.iter().find(|(s, _)| s == k).map_or(U256::ZERO, |(_, v)| *v);
                StorageProof { key: *k, value, proof: proof.into_iter().map(Bytes).collect() }
            })
            .collect();
        AccountProof {
            address: *address,
            account_proof: account_proof.into_iter().map(Bytes).collect(),
            balance: acc.map_or(U256::ZERO, |a| a.balance),
            code_hash: acc.map_or(EMPTY_CODE_HASH, |a| a.code_hash),
            nonce: acc.map_or(0, |a| a.nonce),
            storage_hash,
            storage_proof,
        }
    }
}

/// keccak256 of a storage-slot name minus one, the ERC-1967-style slot derivation of
/// ProtocolVersions (SystemConfig's unsafe block signer slot is the plain hash).
pub fn named_slot(name: &str) -> U256 {
    let mut h = keccak256(name.as_bytes()).0;
    // Subtract one, borrowing from the left.
    for b in h.iter_mut().rev() {
        let (v, borrow) = b.overflowing_sub(1);
        *b = v;
        if !borrow {
            break;
        }
    }
    U256(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(b: u8) -> Address {
        Address([b; 20])
    }

    #[test]
    fn empty_code_hash_constant() {
        assert_eq!(EMPTY_CODE_HASH, keccak256([]));
    }

    #[test]
    fn snapshot_proofs_verify_and_tampering_fails() {
        let slots = [(U256::from_u64(1), U256::from_u64(0xdead)), (named_slot("x"), U256::MAX)];
        let other = [(U256::from_u64(9), U256::from_u64(5))];
        let acct = |address, nonce, balance, code_hash, storage| SnapshotAccount {
            address,
            nonce,
            balance: U256::from_u64(balance),
            code_hash,
            storage,
        };
        let s = StateSnapshot {
            accounts: vec![
                acct(addr(1), 3, 100, keccak256(b"code"), &slots),
                acct(addr(2), 0, 7, EMPTY_CODE_HASH, &other),
                acct(addr(3), 1, 0, EMPTY_CODE_HASH, &[]),
            ],
        };
        let root = s.root();
        let p = s.proof(&addr(1), &[U256::from_u64(1), named_slot("x"), U256::from_u64(2)]);
        p.verify(&root).unwrap();
        assert_eq!(p.slot(&U256::from_u64(1)), Some(U256::from_u64(0xdead)));
        assert_eq!(p.slot(&U256::from_u64(2)), Some(U256::ZERO));
        // A lie about a value, the balance, or the wrong root is caught.
        let mut bad = p.clone();
        bad.storage_proof[0].value = U256::from_u64(0xbeef);
        assert_eq!(bad.verify(&root), Err(AccountProofError::SlotMismatch(U256::from_u64(1))));
        let mut bad = p.clone();
        bad.balance = U256::from_u64(101);
        assert_eq!(bad.verify(&root), Err(AccountProofError::AccountMismatch(addr(1))));
        assert!(p.verify(&B256([5; 32])).is_err());
        // An absent account proves as empty.
        let absent = s.proof(&addr(9), &[U256::from_u64(1)]);
        absent.verify(&root).unwrap();
        assert_eq!(absent.slot(&U256::from_u64(1)), Some(U256::ZERO));
        // JSON round trip (the wire form).
        let j = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<AccountProof>(&j).unwrap(), p);
    }

    #[test]
    fn op_node_runtime_config_slots() {
        // op-node's constants for the runtime config.
        let hex = |u: U256| crate::protocol::primitives::to_hex(&u.0);
        assert_eq!(
            hex(U256(keccak256(b"systemconfig.unsafeblocksigner").0)),
            "65a7ed542fb37fe237fdfbdd70b31598523fe5b32879e307bae27a0bd9581c08"
        );
        assert_eq!(
            hex(named_slot("protocolversion.required")),
            "4aaefe95bd84fd3f32700cf3b7566bc944b73138e41958b5785826df2aecace0"
        );
        assert_eq!(
            hex(named_slot("protocolversion.recommended")),
            "e314dfc40f0025322aacc0ba8ef420b62fb3b702cf01e0cdf3d829117ac2ff1a"
        );
    }
}
