//! Transaction envelopes (EIP-2718): legacy (pre-EIP-155 and EIP-155), EIP-2930, EIP-1559,
//! EIP-4844, EIP-7702 and the OP deposit (0x7E); encoding, decoding, hashing and sender recovery.
//!
//! Decoding keeps the original bytes so the hash and the transactions root need no re-encoding;
//! encoding is byte-exact for everything decoding accepts.

use std::fmt;

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use serde::Deserialize;

use super::primitives::{keccak256, Address, Bytes, B256, U256};
use super::rlp::{self, Rlp, RlpError};

pub const LEGACY_TX_TYPE: u8 = 0x00;
pub const EIP2930_TX_TYPE: u8 = 0x01;
pub const EIP1559_TX_TYPE: u8 = 0x02;
pub const EIP4844_TX_TYPE: u8 = 0x03;
pub const EIP7702_TX_TYPE: u8 = 0x04;
pub const DEPOSIT_TX_TYPE: u8 = 0x7e;

/// Why transaction bytes or JSON were rejected, or a sender could not be recovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxError {
    Empty,
    UnknownType(u8),
    Rlp(RlpError),
    /// A legacy `v` that is neither 27/28 nor an EIP-155 value.
    InvalidV(u64),
    InvalidSignature,
    /// A required JSON field is missing or malformed.
    Json(String),
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxError::Empty => write!(f, "empty transaction"),
            TxError::UnknownType(t) => write!(f, "unknown transaction type {t:#04x}"),
            TxError::Rlp(e) => write!(f, "transaction: {e}"),
            TxError::InvalidV(v) => write!(f, "invalid legacy signature v {v}"),
            TxError::InvalidSignature => write!(f, "invalid transaction signature"),
            TxError::Json(m) => write!(f, "transaction JSON: {m}"),
        }
    }
}

impl std::error::Error for TxError {}

impl From<RlpError> for TxError {
    fn from(e: RlpError) -> Self {
        TxError::Rlp(e)
    }
}

/// One EIP-2930 access list entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessListItem {
    pub address: Address,
    pub storage_keys: Vec<B256>,
}

/// One EIP-7702 authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub chain_id: U256,
    pub address: Address,
    pub nonce: u64,
    pub y_parity: u8,
    pub r: U256,
    pub s: U256,
}

/// An ECDSA signature. For legacy transactions `v` is the raw value (27/28 or EIP-155);
/// for typed ones it is the y-parity (0/1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxSignature {
    pub v: u64,
    pub r: U256,
    pub s: U256,
}

/// The fields of every signed (non-deposit) transaction type; unused ones stay at defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignedTx {
    pub tx_type: u8,
    /// Absent for pre-EIP-155 legacy transactions.
    pub chain_id: Option<u64>,
    pub nonce: u64,
    /// Legacy and 2930 gas price; 1559-style `max_fee_per_gas` otherwise.
    pub gas_price: u128,
    pub max_priority_fee_per_gas: u128,
    pub gas_limit: u64,
    pub to: Option<Address>,
    pub value: U256,
    pub input: Bytes,
    pub access_list: Vec<AccessListItem>,
    pub max_fee_per_blob_gas: u128,
    pub blob_versioned_hashes: Vec<B256>,
    pub authorization_list: Vec<Authorization>,
    pub sig: TxSignature,
}

/// An OP Stack deposit transaction (type 0x7E).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DepositTx {
    pub source_hash: B256,
    pub from: Address,
    pub to: Option<Address>,
    pub mint: U256,
    pub value: U256,
    pub gas_limit: u64,
    pub is_system_tx: bool,
    pub input: Bytes,
}

/// A transaction of any supported type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxBody {
    Signed(SignedTx),
    Deposit(DepositTx),
}

/// A transaction with its canonical EIP-2718 encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub body: TxBody,
    encoded: Vec<u8>,
}

impl Transaction {
    /// Decodes EIP-2718 bytes (a legacy RLP list, or `type || payload`).
    pub fn decode(bytes: &[u8]) -> Result<Transaction, TxError> {
        let first = *bytes.first().ok_or(TxError::Empty)?;
        let body = if first >= 0xc0 {
            TxBody::Signed(decode_legacy(bytes)?)
        } else {
            let payload = &bytes[1..];
            match first {
                EIP2930_TX_TYPE | EIP1559_TX_TYPE | EIP4844_TX_TYPE | EIP7702_TX_TYPE => {
                    TxBody::Signed(decode_typed(first, payload)?)
                }
                DEPOSIT_TX_TYPE => TxBody::Deposit(decode_deposit(payload)?),
                t => return Err(TxError::UnknownType(t)),
            }
        };
        Ok(Transaction { body, encoded: bytes.to_vec() })
    }

    /// Builds a transaction from its fields, encoding it canonically.
    pub fn new(body: TxBody) -> Transaction {
        let encoded = match &body {
            TxBody::Signed(t) => encode_signed(t),
            TxBody::Deposit(d) => encode_deposit(d),
        };
        Transaction { body, encoded }
    }

    /// The EIP-2718 encoding (what a block's transaction list and the tx root commit to).
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    pub fn into_encoded(self) -> Vec<u8> {
        self.encoded
    }

    pub fn hash(&self) -> B256 {
        keccak256(&self.encoded)
    }

    pub fn tx_type(&self) -> u8 {
        match &self.body {
            TxBody::Signed(t) => t.tx_type,
            TxBody::Deposit(_) => DEPOSIT_TX_TYPE,
        }
    }

    pub fn to(&self) -> Option<Address> {
        match &self.body {
            TxBody::Signed(t) => t.to,
            TxBody::Deposit(d) => d.to,
        }
    }

    pub fn input(&self) -> &[u8] {
        match &self.body {
            TxBody::Signed(t) => &t.input,
            TxBody::Deposit(d) => &d.input,
        }
    }

    pub fn blob_versioned_hashes(&self) -> &[B256] {
        match &self.body {
            TxBody::Signed(t) => &t.blob_versioned_hashes,
            TxBody::Deposit(_) => &[],
        }
    }

    pub fn as_signed(&self) -> Option<&SignedTx> {
        match &self.body {
            TxBody::Signed(t) => Some(t),
            TxBody::Deposit(_) => None,
        }
    }

    pub fn as_deposit(&self) -> Option<&DepositTx> {
        match &self.body {
            TxBody::Deposit(d) => Some(d),
            TxBody::Signed(_) => None,
        }
    }

    /// The sender: recovered from the signature, or a deposit's `from`.
    pub fn sender(&self) -> Result<Address, TxError> {
        match &self.body {
            TxBody::Deposit(d) => Ok(d.from),
            TxBody::Signed(t) => t.recover_sender(),
        }
    }
}

impl SignedTx {
    /// The hash the sender signed.
    pub fn signing_hash(&self) -> B256 {
        let mut out = Vec::with_capacity(self.input.len() + 128);
        if self.tx_type == LEGACY_TX_TYPE {
            rlp::put_list(&mut out, |o| {
                legacy_fields(o, self, &self.input);
                if let Some(id) = self.chain_id {
                    rlp::put_u64(o, id);
                    o.push(0x80);
                    o.push(0x80);
                }
            });
        } else {
            out.push(self.tx_type);
            rlp::put_list(&mut out, |o| typed_fields(o, self, &self.input));
        }
        keccak256(&out)
    }

    /// The y-parity of the signature (0 or 1).
    pub fn y_parity(&self) -> Result<u8, TxError> {
        if self.tx_type != LEGACY_TX_TYPE {
            return match self.sig.v {
                0 | 1 => Ok(self.sig.v as u8),
                v => Err(TxError::InvalidV(v)),
            };
        }
        match self.sig.v {
            27 | 28 => Ok((self.sig.v - 27) as u8),
            v if v >= 35 => Ok(((v - 35) % 2) as u8),
            v => Err(TxError::InvalidV(v)),
        }
    }

    /// Recovers the signer (secp256k1 via k256).
    pub fn recover_sender(&self) -> Result<Address, TxError> {
        recover_address(&self.signing_hash(), self.y_parity()?, &self.sig.r, &self.sig.s)
    }
}

/// Recovers the address that signed `hash` with (`y_parity`, r, s).
pub fn recover_address(hash: &B256, y_parity: u8, r: &U256, s: &U256) -> Result<Address, TxError> {
    let mut rs = [0u8; 64];
    rs[..32].copy_from_slice(&r.0);
    rs[32..].copy_from_slice(&s.0);
    let mut sig = Signature::from_slice(&rs).map_err(|_| TxError::InvalidSignature)?;
    let mut parity = y_parity & 1 == 1;
    // Ethereum signatures from `ecrecover` may carry a high s; k256 wants it normalized, which
    // mirrors the point and so flips the recovery parity.
    if let Some(low) = sig.normalize_s() {
        sig = low;
        parity = !parity;
    }
    let rec = RecoveryId::new(parity, false);
    let key =
        VerifyingKey::recover_from_prehash(&hash.0, &sig, rec).map_err(|_| TxError::InvalidSignature)?;
    Ok(address_of(&key))
}

/// The Ethereum address of a public key.
pub fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    let h = keccak256(&point.as_bytes()[1..]);
    Address::from_slice(&h.0[12..]).unwrap_or_default()
}

fn legacy_fields(o: &mut Vec<u8>, t: &SignedTx, input: &[u8]) {
    rlp::put_u64(o, t.nonce);
    rlp::put_u128(o, t.gas_price);
    rlp::put_u64(o, t.gas_limit);
    rlp::put_opt_address(o, &t.to);
    rlp::put_u256(o, &t.value);
    rlp::put_bytes(o, input);
}

pub fn put_access_list(o: &mut Vec<u8>, list: &[AccessListItem]) {
    rlp::put_list(o, |o| {
        for item in list {
            rlp::put_list(o, |o| {
                rlp::put_bytes(o, &item.address.0);
                rlp::put_list(o, |o| {
                    for k in &item.storage_keys {
                        rlp::put_bytes(o, &k.0);
                    }
                });
            });
        }
    });
}

pub fn put_authorizations(o: &mut Vec<u8>, list: &[Authorization]) {
    rlp::put_list(o, |o| {
        for a in list {
            rlp::put_list(o, |o| {
                rlp::put_u256(o, &a.chain_id);
                rlp::put_bytes(o, &a.address.0);
                rlp::put_u64(o, a.nonce);
                rlp::put_u64(o, a.y_parity as u64);
                rlp::put_u256(o, &a.r);
                rlp::put_u256(o, &a.s);
            });
        }
    });
}

/// The unsigned fields of a typed transaction, in order.
fn typed_fields(o: &mut Vec<u8>, t: &SignedTx, input: &[u8]) {
    rlp::put_u64(o, t.chain_id.unwrap_or(0));
    rlp::put_u64(o, t.nonce);
    if t.tx_type != EIP2930_TX_TYPE {
        rlp::put_u128(o, t.max_priority_fee_per_gas);
    }
    rlp::put_u128(o, t.gas_price);
    rlp::put_u64(o, t.gas_limit);
    rlp::put_opt_address(o, &t.to);
    rlp::put_u256(o, &t.value);
    rlp::put_bytes(o, input);
    put_access_list(o, &t.access_list);
    if t.tx_type == EIP4844_TX_TYPE {
        rlp::put_u128(o, t.max_fee_per_blob_gas);
        rlp::put_list(o, |o| {
            for h in &t.blob_versioned_hashes {
                rlp::put_bytes(o, &h.0);
            }
        });
    }
    if t.tx_type == EIP7702_TX_TYPE {
        put_authorizations(o, &t.authorization_list);
    }
}

fn put_sig(o: &mut Vec<u8>, sig: &TxSignature) {
    rlp::put_u64(o, sig.v);
    rlp::put_u256(o, &sig.r);
    rlp::put_u256(o, &sig.s);
}

fn encode_signed(t: &SignedTx) -> Vec<u8> {
    encode_signed_with_input(t, &t.input)
}

/// The EIP-2718 encoding of `t` with `input` as its data (`t.input` is not read): what span
/// batch derivation builds each transaction with, its data never copied but into the result.
pub(crate) fn encode_signed_with_input(t: &SignedTx, input: &[u8]) -> Vec<u8> {
    // Room for the fields and signature around the data, and for the list header.
    let expect = input.len() + 150;
    let mut out = Vec::with_capacity(expect + 10);
    if t.tx_type == LEGACY_TX_TYPE {
        rlp::put_list_of_about(&mut out, expect, |o| {
            legacy_fields(o, t, input);
            put_sig(o, &t.sig);
        });
    } else {
        out.push(t.tx_type);
        rlp::put_list_of_about(&mut out, expect, |o| {
            typed_fields(o, t, input);
            put_sig(o, &t.sig);
        });
    }
    out
}

fn encode_deposit(d: &DepositTx) -> Vec<u8> {
    let mut out = Vec::with_capacity(d.input.len() + 160);
    out.push(DEPOSIT_TX_TYPE);
    rlp::put_list(&mut out, |o| {
        rlp::put_bytes(o, &d.source_hash.0);
        rlp::put_bytes(o, &d.from.0);
        rlp::put_opt_address(o, &d.to);
        rlp::put_u256(o, &d.mint);
        rlp::put_u256(o, &d.value);
        rlp::put_u64(o, d.gas_limit);
        rlp::put_bool(o, d.is_system_tx);
        rlp::put_bytes(o, &d.input);
    });
    out
}

fn decode_sig(r: &mut Rlp<'_>) -> Result<TxSignature, TxError> {
    Ok(TxSignature { v: r.next_u64()?, r: r.next_u256()?, s: r.next_u256()? })
}

fn decode_legacy(bytes: &[u8]) -> Result<SignedTx, TxError> {
    let mut r = Rlp::list(bytes)?;
    let mut t = SignedTx {
        tx_type: LEGACY_TX_TYPE,
        nonce: r.next_u64()?,
        gas_price: r.next_u128()?,
        gas_limit: r.next_u64()?,
        to: r.next_opt_address()?,
        value: r.next_u256()?,
        input: Bytes(r.next_bytes()?.to_vec()),
        ..SignedTx::default()
    };
    t.sig = decode_sig(&mut r)?;
    r.finish()?;
    t.chain_id = match t.sig.v {
        27 | 28 => None,
        v if v >= 35 => Some((v - 35) / 2),
        v => return Err(TxError::InvalidV(v)),
    };
    Ok(t)
}

pub fn decode_access_list(r: &mut Rlp<'_>) -> Result<Vec<AccessListItem>, TxError> {
    let mut list = r.next_list()?;
    let mut out = Vec::new();
    while !list.is_empty() {
        let mut item = list.next_list()?;
        let address = item.next_address()?;
        let mut keys = item.next_list()?;
        let mut storage_keys = Vec::new();
        while !keys.is_empty() {
            storage_keys.push(keys.next_b256()?);
        }
        item.finish()?;
        out.push(AccessListItem { address, storage_keys });
    }
    Ok(out)
}

pub fn decode_authorizations(r: &mut Rlp<'_>) -> Result<Vec<Authorization>, TxError> {
    let mut list = r.next_list()?;
    let mut out = Vec::new();
    while !list.is_empty() {
        let mut a = list.next_list()?;
        let auth = Authorization {
            chain_id: a.next_u256()?,
            address: a.next_address()?,
            nonce: a.next_u64()?,
            y_parity: u8::try_from(a.next_u64()?).map_err(|_| RlpError::Overflow)?,
            r: a.next_u256()?,
            s: a.next_u256()?,
        };
        a.finish()?;
        out.push(auth);
    }
    Ok(out)
}

fn decode_typed(tx_type: u8, payload: &[u8]) -> Result<SignedTx, TxError> {
    let mut r = Rlp::list(payload)?;
    let mut t =
        SignedTx { tx_type, chain_id: Some(r.next_u64()?), nonce: r.next_u64()?, ..SignedTx::default() };
    if tx_type != EIP2930_TX_TYPE {
        t.max_priority_fee_per_gas = r.next_u128()?;
    }
    t.gas_price = r.next_u128()?;
    t.gas_limit = r.next_u64()?;
    t.to = r.next_opt_address()?;
    if t.to.is_none() && (tx_type == EIP4844_TX_TYPE || tx_type == EIP7702_TX_TYPE) {
        return Err(TxError::Rlp(RlpError::Custom("blob and set-code transactions need a recipient")));
    }
    t.value = r.next_u256()?;
    t.input = Bytes(r.next_bytes()?.to_vec());
    t.access_list = decode_access_list(&mut r)?;
    if tx_type == EIP4844_TX_TYPE {
        t.max_fee_per_blob_gas = r.next_u128()?;
        let mut hashes = r.next_list()?;
        while !hashes.is_empty() {
            t.blob_versioned_hashes.push(hashes.next_b256()?);
        }
    }
    if tx_type == EIP7702_TX_TYPE {
        t.authorization_list = decode_authorizations(&mut r)?;
    }
    t.sig = decode_sig(&mut r)?;
    r.finish()?;
    if t.sig.v > 1 {
        return Err(TxError::InvalidV(t.sig.v));
    }
    Ok(t)
}

fn decode_deposit(payload: &[u8]) -> Result<DepositTx, TxError> {
    let mut r = Rlp::list(payload)?;
    let d = DepositTx {
        source_hash: r.next_b256()?,
        from: r.next_address()?,
        to: r.next_opt_address()?,
        mint: r.next_u256()?,
        value: r.next_u256()?,
        gas_limit: r.next_u64()?,
        is_system_tx: r.next_bool()?,
        input: Bytes(r.next_bytes()?.to_vec()),
    };
    r.finish()?;
    Ok(d)
}

/// Where a transaction sits, for its JSON-RPC form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    pub block_hash: B256,
    pub block_number: u64,
    pub index: u64,
}

impl Transaction {
    /// The transaction as JSON-RPC returns it in a block with full transactions (the devnet's
    /// L1 and engine stand-in serve this; `RpcTransaction::to_transaction` reads it back).
    pub fn rpc_json(&self, at: Option<TxLocation>) -> serde_json::Value {
        use super::primitives::quantity;
        use serde_json::json;
        let u128q = |v: u128| U256::from_u128(v);
        let mut o = match &self.body {
            TxBody::Deposit(d) => json!({
                "type": quantity(DEPOSIT_TX_TYPE as u64), "sourceHash": d.source_hash, "from": d.from,
                "to": d.to, "mint": d.mint, "value": d.value, "gas": quantity(d.gas_limit),
                "isSystemTx": d.is_system_tx, "input": d.input, "nonce": "0x0",
            }),
            TxBody::Signed(t) => {
                let mut o = json!({
                    "type": quantity(t.tx_type as u64), "nonce": quantity(t.nonce), "gas": quantity(t.gas_limit),
                    "to": t.to, "value": t.value, "input": t.input, "v": quantity(t.sig.v), "r": t.sig.r, "s": t.sig.s,
                });
                let m = o.as_object_mut().expect("an object literal");
                if let Some(c) = t.chain_id {
                    m.insert("chainId".into(), json!(quantity(c)));
                }
                if t.tx_type != LEGACY_TX_TYPE {
                    m.insert("yParity".into(), json!(quantity(t.sig.v)));
                    m.insert("accessList".into(), json!(t.access_list));
                }
                if t.tx_type >= EIP1559_TX_TYPE {
                    m.insert("maxFeePerGas".into(), json!(u128q(t.gas_price)));
                    m.insert("maxPriorityFeePerGas".into(), json!(u128q(t.max_priority_fee_per_gas)));
                } else {
                    m.insert("gasPrice".into(), json!(u128q(t.gas_price)));
                }
                if t.tx_type == EIP4844_TX_TYPE {
                    m.insert("maxFeePerBlobGas".into(), json!(u128q(t.max_fee_per_blob_gas)));
                    m.insert("blobVersionedHashes".into(), json!(t.blob_versioned_hashes));
                }
                if t.tx_type == EIP7702_TX_TYPE {
                    let auths: Vec<_> = t
                        .authorization_list
                        .iter()
                        .map(|a| {
                            json!({"chainId": a.chain_id, "address": a.address, "nonce": quantity(a.nonce),
                                "yParity": quantity(a.y_parity as u64), "r": a.r, "s": a.s})
                        })
                        .collect();
                    m.insert("authorizationList".into(), json!(auths));
                }
                if let Ok(from) = self.sender() {
                    m.insert("from".into(), json!(from));
                }
                o
            }
        };
        let m = o.as_object_mut().expect("an object literal");
        m.insert("hash".into(), json!(self.hash()));
        if let Some(at) = at {
            m.insert("blockHash".into(), json!(at.block_hash));
            m.insert("blockNumber".into(), json!(quantity(at.block_number)));
            m.insert("transactionIndex".into(), json!(quantity(at.index)));
        }
        o
    }
}

/// A transaction object as JSON-RPC returns it (`eth_getBlockByNumber(n, true)`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcTransaction {
    #[serde(default, with = "super::primitives::serde_quantity::opt")]
    pub r#type: Option<u64>,
    pub hash: Option<B256>,
    #[serde(default, with = "super::primitives::serde_quantity::opt")]
    pub chain_id: Option<u64>,
    #[serde(default, with = "super::primitives::serde_quantity::opt")]
    pub nonce: Option<u64>,
    pub gas_price: Option<U256>,
    pub max_fee_per_gas: Option<U256>,
    pub max_priority_fee_per_gas: Option<U256>,
    pub max_fee_per_blob_gas: Option<U256>,
    #[serde(default, with = "super::primitives::serde_quantity::opt")]
    pub gas: Option<u64>,
    pub to: Option<Address>,
    pub from: Option<Address>,
    pub value: Option<U256>,
    pub input: Option<Bytes>,
    #[serde(default)]
    pub access_list: Option<Vec<AccessListItem>>,
    #[serde(default)]
    pub blob_versioned_hashes: Option<Vec<B256>>,
    #[serde(default)]
    pub authorization_list: Option<Vec<RpcAuthorization>>,
    pub v: Option<U256>,
    pub y_parity: Option<U256>,
    pub r: Option<U256>,
    pub s: Option<U256>,
    pub source_hash: Option<B256>,
    pub mint: Option<U256>,
    pub is_system_tx: Option<bool>,
}

/// An EIP-7702 authorization in JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcAuthorization {
    pub chain_id: U256,
    pub address: Address,
    #[serde(with = "super::primitives::serde_quantity")]
    pub nonce: u64,
    pub y_parity: U256,
    pub r: U256,
    pub s: U256,
}

fn need<T>(v: Option<T>, field: &str) -> Result<T, TxError> {
    v.ok_or_else(|| TxError::Json(format!("missing {field}")))
}

fn small<T: TryFrom<u128>>(v: U256, field: &str) -> Result<T, TxError> {
    v.to_u128()
        .and_then(|x| T::try_from(x).ok())
        .ok_or_else(|| TxError::Json(format!("{field} out of range")))
}

impl RpcTransaction {
    /// Rebuilds the transaction from its JSON fields (needed to recompute its hash and the
    /// block's transactions root, and to recover the sender).
    pub fn to_transaction(&self) -> Result<Transaction, TxError> {
        let tx_type = self.r#type.unwrap_or(0);
        let tx_type = u8::try_from(tx_type).map_err(|_| TxError::Json(format!("type {tx_type}")))?;
        if tx_type == DEPOSIT_TX_TYPE {
            let d = DepositTx {
                source_hash: need(self.source_hash, "sourceHash")?,
                from: need(self.from, "from")?,
                to: self.to,
                mint: self.mint.unwrap_or_default(),
                value: need(self.value, "value")?,
                gas_limit: need(self.gas, "gas")?,
                is_system_tx: self.is_system_tx.unwrap_or(false),
                input: need(self.input.clone(), "input")?,
            };
            return Ok(Transaction::new(TxBody::Deposit(d)));
        }
        if !matches!(tx_type, 0..=4) {
            return Err(TxError::UnknownType(tx_type));
        }
        let v = if tx_type == LEGACY_TX_TYPE {
            small::<u64>(need(self.v, "v")?, "v")?
        } else {
            small::<u64>(need(self.y_parity.or(self.v), "yParity")?, "yParity")?
        };
        let sig = TxSignature { v, r: need(self.r, "r")?, s: need(self.s, "s")? };
        let gas_price = if tx_type >= EIP1559_TX_TYPE {
            need(self.max_fee_per_gas, "maxFeePerGas")?
        } else {
            need(self.gas_price, "gasPrice")?
        };
        let chain_id = if tx_type == LEGACY_TX_TYPE {
            match v {
                27 | 28 => None,
                v if v >= 35 => Some((v - 35) / 2),
                v => return Err(TxError::InvalidV(v)),
            }
        } else {
            Some(need(self.chain_id, "chainId")?)
        };
        let authorization_list = self
            .authorization_list
            .iter()
            .flatten()
            .map(|a| {
                Ok(Authorization {
                    chain_id: a.chain_id,
                    address: a.address,
                    nonce: a.nonce,
                    y_parity: small::<u8>(a.y_parity, "authorization yParity")?,
                    r: a.r,
                    s: a.s,
                })
            })
            .collect::<Result<Vec<_>, TxError>>()?;
        let t = SignedTx {
            tx_type,
            chain_id,
            nonce: need(self.nonce, "nonce")?,
            gas_price: small(gas_price, "gas price")?,
            max_priority_fee_per_gas: match self.max_priority_fee_per_gas {
                Some(v) => small(v, "maxPriorityFeePerGas")?,
                None => 0,
            },
            gas_limit: need(self.gas, "gas")?,
            to: self.to,
            value: need(self.value, "value")?,
            input: need(self.input.clone(), "input")?,
            access_list: self.access_list.clone().unwrap_or_default(),
            max_fee_per_blob_gas: match self.max_fee_per_blob_gas {
                Some(v) => small(v, "maxFeePerBlobGas")?,
                None => 0,
            },
            blob_versioned_hashes: self.blob_versioned_hashes.clone().unwrap_or_default(),
            authorization_list,
            sig,
        };
        Ok(Transaction::new(TxBody::Signed(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::primitives::from_hex;

    /// EIP-155's example: nonce 9, 20 gwei, 21000 gas, 1 ether to 0x3535..., chain 1, signed
    /// with key 0x4646...; the spec gives the signing hash, the signed bytes and the sender.
    const EIP155_SIGNED: &str = "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83";

    #[test]
    fn eip155_example_decodes_hashes_and_recovers() {
        let bytes = from_hex(EIP155_SIGNED).unwrap();
        let tx = Transaction::decode(&bytes).unwrap();
        let t = tx.as_signed().unwrap();
        assert_eq!(t.chain_id, Some(1));
        assert_eq!(t.nonce, 9);
        assert_eq!(
            t.signing_hash().to_string(),
            "0xdaf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"
        );
        assert_eq!(
            tx.sender().unwrap(),
            "0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f".parse::<Address>().unwrap()
        );
        assert_eq!(Transaction::new(tx.body.clone()).encoded(), &bytes[..]);
    }

    #[test]
    fn deposit_round_trip() {
        let d = DepositTx {
            source_hash: B256([1; 32]),
            from: Address([2; 20]),
            to: None,
            mint: U256::from_u64(0),
            value: U256::from_u64(5),
            gas_limit: 100_000,
            is_system_tx: false,
            input: Bytes(vec![1, 2, 3]),
        };
        let tx = Transaction::new(TxBody::Deposit(d.clone()));
        assert_eq!(tx.encoded()[0], 0x7e);
        let back = Transaction::decode(tx.encoded()).unwrap();
        assert_eq!(back.as_deposit(), Some(&d));
        assert_eq!(back.sender().unwrap(), Address([2; 20]));
    }

    #[test]
    fn truncations_and_garbage_are_errors() {
        let bytes = from_hex(EIP155_SIGNED).unwrap();
        for n in 0..bytes.len() {
            assert!(Transaction::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
        let mut x = 1u64;
        for _ in 0..3000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = (x >> 58) as usize;
            let mut buf: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8 ^ i as u8).collect();
            if let Some(b) = buf.first_mut() {
                *b = [0x01, 0x02, 0x03, 0x04, 0x7e, 0xf8][(x % 6) as usize];
            }
            let _ = Transaction::decode(&buf);
        }
        assert_eq!(Transaction::decode(&[0x05, 0xc0]), Err(TxError::UnknownType(5)));
    }
}
