//! Block headers (L1 and L2 share the format) with every field through Prague / Isthmus, their
//! RLP encoding and block hash, and the JSON-RPC form.

use serde::{Deserialize, Serialize};

use super::primitives::{keccak256, serde_quantity, Address, Bloom, Bytes, B256, U256};
use super::rlp::{self, Rlp, RlpError};

/// keccak256(rlp([])): the ommers hash of every post-merge block.
pub const EMPTY_OMMERS_HASH: B256 = B256([
    0x1d, 0xcc, 0x4d, 0xe8, 0xde, 0xc7, 0x5d, 0x7a, 0xab, 0x85, 0xb5, 0x67, 0xb6, 0xcc, 0xd4, 0x1a, 0xd3,
    0x12, 0x45, 0x1b, 0x94, 0x8a, 0x74, 0x13, 0xf0, 0xa1, 0x42, 0xfd, 0x40, 0xd4, 0x93, 0x47,
]);

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub parent_hash: B256,
    #[serde(rename = "sha3Uncles")]
    pub ommers_hash: B256,
    #[serde(rename = "miner")]
    pub beneficiary: Address,
    pub state_root: B256,
    pub transactions_root: B256,
    pub receipts_root: B256,
    pub logs_bloom: Bloom,
    pub difficulty: U256,
    #[serde(with = "serde_quantity")]
    pub number: u64,
    #[serde(with = "serde_quantity")]
    pub gas_limit: u64,
    #[serde(with = "serde_quantity")]
    pub gas_used: u64,
    #[serde(with = "serde_quantity")]
    pub timestamp: u64,
    pub extra_data: Bytes,
    pub mix_hash: B256,
    pub nonce: super::primitives::B64,
    /// London.
    #[serde(default, with = "serde_quantity::opt", skip_serializing_if = "Option::is_none")]
    pub base_fee_per_gas: Option<u64>,
    /// Shanghai / Canyon. On L2 from Isthmus it commits to the L2ToL1MessagePasser storage root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawals_root: Option<B256>,
    /// Cancun / Ecotone.
    #[serde(default, with = "serde_quantity::opt", skip_serializing_if = "Option::is_none")]
    pub blob_gas_used: Option<u64>,
    #[serde(default, with = "serde_quantity::opt", skip_serializing_if = "Option::is_none")]
    pub excess_blob_gas: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_beacon_block_root: Option<B256>,
    /// Prague / Isthmus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_hash: Option<B256>,
}

impl Header {
    /// RLP encoding; optional fields are written up to the last present one.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(640);
        rlp::put_list(&mut out, |o| {
            rlp::put_bytes(o, &self.parent_hash.0);
            rlp::put_bytes(o, &self.ommers_hash.0);
            rlp::put_bytes(o, &self.beneficiary.0);
            rlp::put_bytes(o, &self.state_root.0);
            rlp::put_bytes(o, &self.transactions_root.0);
            rlp::put_bytes(o, &self.receipts_root.0);
            rlp::put_bytes(o, &self.logs_bloom.0);
            rlp::put_u256(o, &self.difficulty);
            rlp::put_u64(o, self.number);
            rlp::put_u64(o, self.gas_limit);
            rlp::put_u64(o, self.gas_used);
            rlp::put_u64(o, self.timestamp);
            rlp::put_bytes(o, &self.extra_data);
            rlp::put_bytes(o, &self.mix_hash.0);
            rlp::put_bytes(o, &self.nonce.0);
            let optional = [
                self.base_fee_per_gas.is_some(),
                self.withdrawals_root.is_some(),
                self.blob_gas_used.is_some(),
                self.excess_blob_gas.is_some(),
                self.parent_beacon_block_root.is_some(),
                self.requests_hash.is_some(),
            ];
            let last = optional.iter().rposition(|p| *p).map_or(0, |i| i + 1);
            for i in 0..last {
                match i {
                    0 => rlp::put_u64(o, self.base_fee_per_gas.unwrap_or(0)),
                    1 => rlp::put_bytes(o, &self.withdrawals_root.unwrap_or_default().0),
                    2 => rlp::put_u64(o, self.blob_gas_used.unwrap_or(0)),
                    3 => rlp::put_u64(o, self.excess_blob_gas.unwrap_or(0)),
                    4 => rlp::put_bytes(o, &self.parent_beacon_block_root.unwrap_or_default().0),
                    _ => rlp::put_bytes(o, &self.requests_hash.unwrap_or_default().0),
                }
            }
        });
        out
    }

    /// keccak256(rlp(header)).
    pub fn hash(&self) -> B256 {
        keccak256(self.encode())
    }

    /// Decodes a header from RLP.
    pub fn decode(bytes: &[u8]) -> Result<Header, RlpError> {
        let mut r = Rlp::list(bytes)?;
        let mut h = Header {
            parent_hash: r.next_b256()?,
            ommers_hash: r.next_b256()?,
            beneficiary: r.next_address()?,
            state_root: r.next_b256()?,
            transactions_root: r.next_b256()?,
            receipts_root: r.next_b256()?,
            logs_bloom: Bloom(r.next_fixed::<256>()?),
            difficulty: r.next_u256()?,
            number: r.next_u64()?,
            gas_limit: r.next_u64()?,
            gas_used: r.next_u64()?,
            timestamp: r.next_u64()?,
            extra_data: Bytes(r.next_bytes()?.to_vec()),
            mix_hash: r.next_b256()?,
            nonce: super::primitives::B64(r.next_fixed::<8>()?),
            ..Header::default()
        };
        if !r.is_empty() {
            h.base_fee_per_gas = Some(r.next_u64()?);
        }
        if !r.is_empty() {
            h.withdrawals_root = Some(r.next_b256()?);
        }
        if !r.is_empty() {
            h.blob_gas_used = Some(r.next_u64()?);
        }
        if !r.is_empty() {
            h.excess_blob_gas = Some(r.next_u64()?);
        }
        if !r.is_empty() {
            h.parent_beacon_block_root = Some(r.next_b256()?);
        }
        if !r.is_empty() {
            h.requests_hash = Some(r.next_b256()?);
        }
        r.finish()?;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_ommers_constant() {
        assert_eq!(EMPTY_OMMERS_HASH, keccak256([0xc0]));
    }

    #[test]
    fn optional_fields_round_trip() {
        let mut h =
            Header { number: 7, gas_limit: 30_000_000, base_fee_per_gas: Some(1), ..Header::default() };
        for step in 0..5 {
            match step {
                1 => h.withdrawals_root = Some(B256([1; 32])),
                2 => {
                    h.blob_gas_used = Some(0);
                    h.excess_blob_gas = Some(0);
                }
                3 => h.parent_beacon_block_root = Some(B256([2; 32])),
                4 => h.requests_hash = Some(B256([3; 32])),
                _ => {}
            }
            let enc = h.encode();
            assert_eq!(Header::decode(&enc).unwrap(), h);
            for n in 0..enc.len() {
                assert!(Header::decode(&enc[..n]).is_err());
            }
        }
    }
}

/// A beacon-chain withdrawal (Shanghai). Always empty on L2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Withdrawal {
    #[serde(with = "serde_quantity")]
    pub index: u64,
    #[serde(with = "serde_quantity")]
    pub validator_index: u64,
    pub address: Address,
    /// Gwei.
    #[serde(with = "serde_quantity")]
    pub amount: u64,
}

impl Withdrawal {
    pub fn encode(&self) -> Vec<u8> {
        rlp::encode_list(|o| {
            rlp::put_u64(o, self.index);
            rlp::put_u64(o, self.validator_index);
            rlp::put_bytes(o, &self.address.0);
            rlp::put_u64(o, self.amount);
        })
    }
}
