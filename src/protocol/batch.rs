//! Batches (derivation spec, "Batch Format"): one item of a channel is an RLP string holding
//! `batch_type ++ content`, a singular batch (type 0, one L2 block) or a span batch (type 1,
//! Delta). Decoding takes untrusted channel data; encoding is byte-exact.

use std::fmt;

use super::primitives::{Bytes, B256};
use super::rlp::{self, Rlp, RlpError};
use super::span_batch::{RawSpanBatch, SpanBatchError};
use crate::protocol::block_ref::BlockId;

/// The batch type byte of singular batches.
pub const SINGULAR_BATCH_TYPE: u8 = 0;
/// The batch type byte of span batches (Delta).
pub const SPAN_BATCH_TYPE: u8 = 1;

/// Why a batch was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// The batch has no type byte.
    Empty,
    /// A batch type other than singular or span.
    UnknownType(u8),
    /// The singular batch's RLP is malformed.
    Rlp(RlpError),
    /// The span batch is malformed.
    Span(SpanBatchError),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Empty => write!(f, "empty batch"),
            BatchError::UnknownType(t) => write!(f, "unknown batch type {t}"),
            BatchError::Rlp(e) => write!(f, "singular batch: {e}"),
            BatchError::Span(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BatchError {}

impl From<RlpError> for BatchError {
    fn from(e: RlpError) -> Self {
        BatchError::Rlp(e)
    }
}

impl From<SpanBatchError> for BatchError {
    fn from(e: SpanBatchError) -> Self {
        BatchError::Span(e)
    }
}

/// The input for one L2 block: `[parent_hash, epoch_number, epoch_hash, timestamp, transactions]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SingularBatch {
    pub parent_hash: B256,
    pub epoch_num: u64,
    pub epoch_hash: B256,
    pub timestamp: u64,
    /// EIP-2718 encodings.
    pub transactions: Vec<Bytes>,
}

impl SingularBatch {
    /// Decodes the RLP list at the start of `content`; bytes after it are ignored, as op-node's
    /// stream decoder (and the spec's note on extra content) allows.
    pub fn decode(content: &[u8]) -> Result<SingularBatch, RlpError> {
        let mut r = Rlp::new(content).next_list()?;
        let mut b = SingularBatch {
            parent_hash: r.next_b256()?,
            epoch_num: r.next_u64()?,
            epoch_hash: r.next_b256()?,
            timestamp: r.next_u64()?,
            transactions: Vec::new(),
        };
        let mut txs = r.next_list()?;
        while !txs.is_empty() {
            b.transactions.push(Bytes(txs.next_bytes()?.to_vec()));
        }
        r.finish()?;
        Ok(b)
    }

    /// Appends the RLP list (the content after the type byte).
    pub fn encode(&self, out: &mut Vec<u8>) {
        rlp::put_list(out, |o| {
            rlp::put_bytes(o, &self.parent_hash.0);
            rlp::put_u64(o, self.epoch_num);
            rlp::put_bytes(o, &self.epoch_hash.0);
            rlp::put_u64(o, self.timestamp);
            rlp::put_list(o, |o| {
                for tx in &self.transactions {
                    rlp::put_bytes(o, tx);
                }
            });
        });
    }

    /// Returns the L1 origin the batch names.
    pub fn epoch(&self) -> BlockId {
        BlockId { hash: self.epoch_hash, number: self.epoch_num }
    }
}

/// A decoded batch of either type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchData {
    Singular(SingularBatch),
    Span(Box<RawSpanBatch>),
}

impl BatchData {
    /// Decodes `batch_type ++ content` (the payload of one channel item).
    pub fn decode(typed: &[u8]) -> Result<BatchData, BatchError> {
        let (&ty, content) = typed.split_first().ok_or(BatchError::Empty)?;
        match ty {
            SINGULAR_BATCH_TYPE => Ok(BatchData::Singular(SingularBatch::decode(content)?)),
            SPAN_BATCH_TYPE => Ok(BatchData::Span(Box::new(RawSpanBatch::decode(content)?))),
            t => Err(BatchError::UnknownType(t)),
        }
    }

    /// Appends `batch_type ++ content`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.batch_type());
        match self {
            BatchData::Singular(b) => b.encode(out),
            BatchData::Span(b) => b.encode(out),
        }
    }

    /// Appends the batch as a channel item: an RLP string holding `batch_type ++ content`.
    pub fn encode_rlp(&self, out: &mut Vec<u8>) {
        let mut typed = Vec::new();
        self.encode(&mut typed);
        rlp::put_bytes(out, &typed);
    }

    /// Returns the batch type byte.
    pub fn batch_type(&self) -> u8 {
        match self {
            BatchData::Singular(_) => SINGULAR_BATCH_TYPE,
            BatchData::Span(_) => SPAN_BATCH_TYPE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn sample() -> SingularBatch {
        SingularBatch {
            parent_hash: B256([1; 32]),
            epoch_num: 8_502_692,
            epoch_hash: B256([2; 32]),
            timestamp: 1_676_565_100,
            transactions: vec![Bytes(vec![0x02, 0xc0]), Bytes(vec![0x05]), Bytes(vec![])],
        }
    }

    fn typed(b: &BatchData) -> Vec<u8> {
        let mut out = Vec::new();
        b.encode(&mut out);
        out
    }

    #[test]
    fn singular_round_trip() {
        let b = BatchData::Singular(sample());
        let bytes = typed(&b);
        assert_eq!(bytes[0], SINGULAR_BATCH_TYPE);
        assert_eq!(BatchData::decode(&bytes).unwrap(), b);
        let mut item = Vec::new();
        b.encode_rlp(&mut item);
        assert_eq!(Rlp::new(&item).next_bytes().unwrap(), &bytes[..]);
        // Extra content after the list is ignored.
        let mut longer = bytes.clone();
        longer.push(0x42);
        assert_eq!(BatchData::decode(&longer).unwrap(), b);
    }

    #[test]
    fn rejects_unknown_types_and_bad_lists() {
        assert_eq!(BatchData::decode(&[]), Err(BatchError::Empty));
        assert_eq!(BatchData::decode(&[2, 0xc0]), Err(BatchError::UnknownType(2)));
        assert!(matches!(BatchData::decode(&[1]), Err(BatchError::Span(SpanBatchError::Truncated(_)))));
        let head = |o: &mut Vec<u8>| {
            rlp::put_bytes(o, &[0; 32]);
            rlp::put_u64(o, 1);
            rlp::put_bytes(o, &[0; 32]);
            rlp::put_u64(o, 1);
        };
        let one_too_many = rlp::encode_list(|o| {
            head(o);
            rlp::put_list(o, |_| {});
            rlp::put_u64(o, 1);
        });
        assert_eq!(SingularBatch::decode(&one_too_many), Err(RlpError::TrailingBytes));
        let list_as_tx = rlp::encode_list(|o| {
            head(o);
            rlp::put_list(o, |o| rlp::put_list(o, |_| {}));
        });
        assert_eq!(SingularBatch::decode(&list_as_tx), Err(RlpError::UnexpectedList));
    }

    #[test]
    fn truncated_prefixes_are_errors() {
        let bytes = typed(&BatchData::Singular(sample()));
        for n in 0..bytes.len() {
            assert!(BatchData::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = Rng::new(0xba7c);
        let good = typed(&BatchData::Singular(sample()));
        for round in 0..4000 {
            let mut buf = if round % 2 == 0 {
                let mut b = vec![0u8; rng.below(120) as usize];
                rng.fill(&mut b);
                b
            } else {
                let mut b = good.clone();
                let i = rng.below(b.len() as u64) as usize;
                b[i] = rng.next_u64() as u8;
                b
            };
            if let Some(b) = buf.first_mut() {
                *b %= 3;
            }
            if let Ok(batch) = BatchData::decode(&buf) {
                assert_eq!(BatchData::decode(&typed(&batch)).unwrap(), batch);
            }
        }
    }
}
