//! Transaction receipts and logs: EIP-2718 consensus encoding (what `receiptsRoot` commits to
//! and `debug_getRawReceipts` returns) and the JSON-RPC form.

use serde::Deserialize;

use super::primitives::{serde_quantity, Address, Bloom, Bytes, B256};
use super::rlp::{self, Rlp, RlpError};

/// A log entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Log {
    pub address: Address,
    pub topics: Vec<B256>,
    pub data: Bytes,
}

/// A consensus receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub tx_type: u8,
    /// Post-Byzantium status (true = success).
    pub success: bool,
    pub cumulative_gas_used: u64,
    pub logs_bloom: Bloom,
    pub logs: Vec<Log>,
    /// OP deposit receipts (L2 only): nonce and receipt version, when present.
    pub deposit_nonce: Option<u64>,
    pub deposit_receipt_version: Option<u64>,
}

impl Receipt {
    /// The receipt as `eth_getBlockReceipts` returns it (the devnet's L1 serves this;
    /// `RpcReceipt::to_receipt` reads it back).
    pub fn rpc_json(&self, tx_hash: B256, at: super::tx::TxLocation) -> serde_json::Value {
        use super::primitives::quantity;
        let mut v = serde_json::json!({
            "type": quantity(self.tx_type as u64),
            "status": quantity(self.success as u64),
            "cumulativeGasUsed": quantity(self.cumulative_gas_used),
            "logsBloom": self.logs_bloom,
            "logs": self.logs,
            "transactionHash": tx_hash,
            "transactionIndex": quantity(at.index),
            "blockHash": at.block_hash,
            "blockNumber": quantity(at.block_number),
        });
        if let Some(m) = v.as_object_mut() {
            if let Some(n) = self.deposit_nonce {
                m.insert("depositNonce".into(), quantity(n).into());
            }
            if let Some(n) = self.deposit_receipt_version {
                m.insert("depositReceiptVersion".into(), quantity(n).into());
            }
        }
        v
    }

    /// EIP-2718 encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.tx_type != 0 {
            out.push(self.tx_type);
        }
        rlp::put_list(&mut out, |o| {
            rlp::put_bool(o, self.success);
            rlp::put_u64(o, self.cumulative_gas_used);
            rlp::put_bytes(o, &self.logs_bloom.0);
            rlp::put_list(o, |o| {
                for l in &self.logs {
                    rlp::put_list(o, |o| {
                        rlp::put_bytes(o, &l.address.0);
                        rlp::put_list(o, |o| {
                            for t in &l.topics {
                                rlp::put_bytes(o, &t.0);
                            }
                        });
                        rlp::put_bytes(o, &l.data);
                    });
                }
            });
            if let Some(n) = self.deposit_nonce {
                rlp::put_u64(o, n);
                if let Some(v) = self.deposit_receipt_version {
                    rlp::put_u64(o, v);
                }
            }
        });
        out
    }

    /// Decodes EIP-2718 receipt bytes.
    pub fn decode(bytes: &[u8]) -> Result<Receipt, RlpError> {
        let first = *bytes.first().ok_or(RlpError::Truncated)?;
        let (tx_type, payload) = if first >= 0xc0 { (0, bytes) } else { (first, &bytes[1..]) };
        // Known types, and future EIP-2718 types (0x05..=0x7d) decoded best-effort as the
        // typed receipt layout (derivation spec, "On Future-Proof Transaction Log Derivation").
        if !matches!(tx_type, 0..=0x7e) {
            return Err(RlpError::Custom("invalid receipt type"));
        }
        let mut r = Rlp::list(payload)?;
        let status = r.next_bytes()?;
        let success = match status {
            [] => false,
            [1] => true,
            // Pre-Byzantium post-state root: treat as success (irrelevant for the rollup).
            s if s.len() == 32 => true,
            _ => return Err(RlpError::Custom("invalid receipt status")),
        };
        let cumulative_gas_used = r.next_u64()?;
        let logs_bloom = Bloom(r.next_fixed::<256>()?);
        let mut logs_rlp = r.next_list()?;
        let mut logs = Vec::new();
        while !logs_rlp.is_empty() {
            let mut l = logs_rlp.next_list()?;
            let address = l.next_address()?;
            let mut topics_rlp = l.next_list()?;
            let mut topics = Vec::new();
            while !topics_rlp.is_empty() {
                topics.push(topics_rlp.next_b256()?);
            }
            let data = Bytes(l.next_bytes()?.to_vec());
            l.finish()?;
            logs.push(Log { address, topics, data });
        }
        let (mut deposit_nonce, mut deposit_receipt_version) = (None, None);
        if tx_type == 0x7e && !r.is_empty() {
            deposit_nonce = Some(r.next_u64()?);
            if !r.is_empty() {
                deposit_receipt_version = Some(r.next_u64()?);
            }
        }
        r.finish()?;
        Ok(Receipt {
            tx_type,
            success,
            cumulative_gas_used,
            logs_bloom,
            logs,
            deposit_nonce,
            deposit_receipt_version,
        })
    }
}

/// A receipt as JSON-RPC returns it (`eth_getBlockReceipts`, `eth_getTransactionReceipt`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcReceipt {
    #[serde(default, with = "serde_quantity::opt")]
    pub r#type: Option<u64>,
    #[serde(default, with = "serde_quantity::opt")]
    pub status: Option<u64>,
    #[serde(with = "serde_quantity")]
    pub cumulative_gas_used: u64,
    pub logs_bloom: Bloom,
    pub logs: Vec<Log>,
    pub transaction_hash: Option<B256>,
    #[serde(default, with = "serde_quantity::opt")]
    pub transaction_index: Option<u64>,
    pub block_hash: Option<B256>,
    #[serde(default, with = "serde_quantity::opt")]
    pub deposit_nonce: Option<u64>,
    #[serde(default, with = "serde_quantity::opt")]
    pub deposit_receipt_version: Option<u64>,
}

impl RpcReceipt {
    pub fn to_receipt(&self) -> Result<Receipt, RlpError> {
        let tx_type = u8::try_from(self.r#type.unwrap_or(0)).map_err(|_| RlpError::Custom("receipt type"))?;
        Ok(Receipt {
            tx_type,
            success: self.status == Some(1),
            cumulative_gas_used: self.cumulative_gas_used,
            logs_bloom: self.logs_bloom,
            logs: self.logs.clone(),
            deposit_nonce: self.deposit_nonce,
            deposit_receipt_version: self.deposit_receipt_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn future_receipt_types_decode_best_effort() {
        let r = Receipt {
            tx_type: 0x05,
            success: true,
            cumulative_gas_used: 1,
            logs_bloom: Bloom::ZERO,
            logs: vec![],
            deposit_nonce: None,
            deposit_receipt_version: None,
        };
        assert_eq!(Receipt::decode(&r.encode()).unwrap(), r);
        assert!(Receipt::decode(&[0x7f, 0xc0]).is_err());
    }

    #[test]
    fn round_trip_and_truncation() {
        let mut bloom = Bloom::ZERO;
        bloom.accrue(&[9u8; 20]);
        let r = Receipt {
            tx_type: 2,
            success: true,
            cumulative_gas_used: 21_000,
            logs_bloom: bloom,
            logs: vec![Log {
                address: Address([9; 20]),
                topics: vec![B256([1; 32])],
                data: Bytes(vec![1, 2]),
            }],
            deposit_nonce: None,
            deposit_receipt_version: None,
        };
        let enc = r.encode();
        assert_eq!(Receipt::decode(&enc).unwrap(), r);
        for n in 0..enc.len() {
            assert!(Receipt::decode(&enc[..n]).is_err());
        }
    }
}
