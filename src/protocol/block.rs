//! Blocks as JSON-RPC returns them (`eth_getBlockByNumber` / `ByHash`, with or without full
//! transactions), turned into a header and transactions and — unless the RPC is trusted —
//! verified against the commitments: the header hashes to the claimed hash, transactions to the
//! transactions root, receipts to the receipts root.

use serde::Deserialize;

use super::header::{Header, Withdrawal};
use super::primitives::B256;
use super::receipt::Receipt;
use super::trie::ordered_root;
use super::tx::{RpcTransaction, Transaction};

/// Why a block from the RPC was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    Json(String),
    HashMismatch { claimed: B256, computed: B256 },
    TxRootMismatch { claimed: B256, computed: B256 },
    ReceiptsRootMismatch { claimed: B256, computed: B256 },
    BadTransaction { index: usize, err: String },
    TxHashMismatch { index: usize },
}

impl std::fmt::Display for BlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockError::Json(e) => write!(f, "malformed block: {e}"),
            BlockError::HashMismatch { claimed, computed } => {
                write!(f, "block hash mismatch: claimed {claimed}, header hashes to {computed}")
            }
            BlockError::TxRootMismatch { claimed, computed } => {
                write!(f, "transactions root mismatch: header {claimed}, transactions give {computed}")
            }
            BlockError::ReceiptsRootMismatch { claimed, computed } => {
                write!(f, "receipts root mismatch: header {claimed}, receipts give {computed}")
            }
            BlockError::BadTransaction { index, err } => write!(f, "transaction {index}: {err}"),
            BlockError::TxHashMismatch { index } => write!(f, "transaction {index} hash mismatch"),
        }
    }
}

impl std::error::Error for BlockError {}

/// The transactions field: full objects or hashes.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RpcTransactions {
    Full(Vec<RpcTransaction>),
    Hashes(Vec<B256>),
}

/// A block object from JSON-RPC.
#[derive(Debug, Clone, Deserialize)]
pub struct RpcBlock {
    pub hash: B256,
    #[serde(flatten)]
    pub header: Header,
    #[serde(default)]
    pub transactions: Option<RpcTransactions>,
    #[serde(default)]
    pub withdrawals: Option<Vec<Withdrawal>>,
}

impl RpcBlock {
    /// Parses a block result from its JSON text; `null` (no such block) is `Ok(None)`.
    pub fn parse(json: &str) -> Result<Option<RpcBlock>, BlockError> {
        serde_json::from_str(json).map_err(|e| BlockError::Json(e.to_string()))
    }

    /// `parse` of a JSON value (its text: the one path upstream answers take).
    pub fn from_value(v: serde_json::Value) -> Result<Option<RpcBlock>, BlockError> {
        Self::parse(&v.to_string())
    }

    /// Checks the header hashes to the claimed hash (unless `trust`).
    pub fn verified_header(&self, trust: bool) -> Result<Header, BlockError> {
        if !trust {
            let computed = self.header.hash();
            if computed != self.hash {
                return Err(BlockError::HashMismatch { claimed: self.hash, computed });
            }
        }
        Ok(self.header.clone())
    }

    /// The full transactions, checked against the transactions root and their hashes (unless
    /// `trust`).
    pub fn verified_transactions(&self, trust: bool) -> Result<Vec<Transaction>, BlockError> {
        let txs = match &self.transactions {
            Some(RpcTransactions::Full(t)) => t,
            Some(RpcTransactions::Hashes(h)) if h.is_empty() => return Ok(Vec::new()),
            _ => return Err(BlockError::Json("block without full transactions".into())),
        };
        let mut out = Vec::with_capacity(txs.len());
        for (index, t) in txs.iter().enumerate() {
            let tx =
                t.to_transaction().map_err(|e| BlockError::BadTransaction { index, err: e.to_string() })?;
            if !trust && t.hash.is_some_and(|h| h != tx.hash()) {
                return Err(BlockError::TxHashMismatch { index });
            }
            out.push(tx);
        }
        if !trust {
            let computed = ordered_root(&out.iter().map(|t| t.encoded()).collect::<Vec<_>>());
            if computed != self.header.transactions_root {
                return Err(BlockError::TxRootMismatch { claimed: self.header.transactions_root, computed });
            }
        }
        Ok(out)
    }
}

/// Checks receipts against a header's receipts root.
pub fn verify_receipts(header: &Header, receipts: &[Receipt]) -> Result<(), BlockError> {
    verify_receipts_root(&header.receipts_root, receipts)
}

/// Checks receipts against a receipts root taken from a verified header.
pub fn verify_receipts_root(root: &B256, receipts: &[Receipt]) -> Result<(), BlockError> {
    let computed = ordered_root(&receipts.iter().map(|r| r.encode()).collect::<Vec<_>>());
    if computed != *root {
        return Err(BlockError::ReceiptsRootMismatch { claimed: *root, computed });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tampered_blocks_are_rejected() {
        let h = Header { number: 5, gas_limit: 30_000_000, base_fee_per_gas: Some(7), ..Header::default() };
        let mut v = serde_json::to_value(HeaderJson(&h)).unwrap();
        v["hash"] = json!(h.hash());
        v["transactions"] = json!([]);
        let b = RpcBlock::from_value(v.clone()).unwrap().unwrap();
        assert_eq!(b.verified_header(false).unwrap(), h);
        v["number"] = json!("0x6");
        let b = RpcBlock::from_value(v).unwrap().unwrap();
        assert!(matches!(b.verified_header(false), Err(BlockError::HashMismatch { .. })));
        assert!(b.verified_header(true).is_ok());
        assert_eq!(RpcBlock::from_value(serde_json::Value::Null).unwrap().map(|b| b.hash), None);
    }

    /// A header in JSON-RPC form, for tests.
    struct HeaderJson<'a>(&'a Header);

    impl serde::Serialize for HeaderJson<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let h = self.0;
            json!({
                "parentHash": h.parent_hash, "sha3Uncles": h.ommers_hash, "miner": h.beneficiary,
                "stateRoot": h.state_root, "transactionsRoot": h.transactions_root, "receiptsRoot": h.receipts_root,
                "logsBloom": h.logs_bloom, "difficulty": h.difficulty, "number": crate::protocol::primitives::quantity(h.number),
                "gasLimit": crate::protocol::primitives::quantity(h.gas_limit), "gasUsed": crate::protocol::primitives::quantity(h.gas_used),
                "timestamp": crate::protocol::primitives::quantity(h.timestamp), "extraData": h.extra_data, "mixHash": h.mix_hash,
                "nonce": h.nonce, "baseFeePerGas": h.base_fee_per_gas.map(crate::protocol::primitives::quantity),
            })
            .serialize(s)
        }
    }
}
