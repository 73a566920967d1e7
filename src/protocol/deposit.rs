//! Deposit source hashes and user deposits: the `TransactionDeposited` event of the
//! OptimismPortal turned into deposit transactions (op-node `deposit_log.go`, `deposit_source.go`,
//! `deposits.go`; specs `protocol/deposits.md`).
//!
//! Input is untrusted L1 logs; every malformed deposit log is an error, because a deposit may
//! never be skipped (op-node treats it as critical).

use std::fmt;

use super::primitives::{keccak256, Address, Bytes, B256, U256};
use super::receipt::{Log, Receipt};
use super::tx::DepositTx;

/// Source-hash domain of user deposits.
pub const USER_DEPOSIT_DOMAIN: u64 = 0;
/// Source-hash domain of L1-info deposits.
pub const L1_INFO_DEPOSIT_DOMAIN: u64 = 1;
/// Source-hash domain of network-upgrade deposits.
pub const UPGRADE_DEPOSIT_DOMAIN: u64 = 2;
/// Source-hash domain of the interop invalidated-block deposit. Domain 3 (an early interop
/// "deposits complete" transaction) is deprecated and unused in op-node.
pub const INVALIDATED_BLOCK_DOMAIN: u64 = 4;

/// keccak256("TransactionDeposited(address,address,uint256,bytes)").
pub const DEPOSIT_EVENT_TOPIC: B256 = B256([
    0xb3, 0x81, 0x35, 0x68, 0xd9, 0x99, 0x1f, 0xc9, 0x51, 0x96, 0x1f, 0xcb, 0x4c, 0x78, 0x48, 0x93, 0x57,
    0x42, 0x40, 0xa2, 0x89, 0x25, 0x60, 0x4d, 0x09, 0xfc, 0x57, 0x7c, 0x55, 0xbb, 0x7c, 0x32,
]);

/// The only deposit event version (topic 3).
pub const DEPOSIT_EVENT_VERSION_0: B256 = B256::ZERO;

/// mint (32) + value (32) + gas (8) + isCreation (1).
const OPAQUE_FIXED_LEN: usize = 73;

/// Why a `TransactionDeposited` log could not be turned into a deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepositError {
    /// The event needs 4 topics (identity, from, to, version).
    TopicCount(usize),
    /// Topic 0 is not the `TransactionDeposited` event.
    NotDepositEvent(B256),
    /// Fewer than 64 bytes of data: no ABI header for `opaqueData`.
    IncompleteHeader(usize),
    /// ABI data must be whole 32-byte words.
    Unaligned(usize),
    /// The `opaqueData` offset is not 32.
    BadOffset,
    /// The `opaqueData` length overruns the data or leaves more than one word of padding.
    BadLength,
    UnknownVersion(B256),
    /// Version 0 `opaqueData` shorter than its 73 fixed bytes.
    OpaqueTooShort(usize),
    /// A malformed deposit log at a position in an L1 block's receipts.
    InReceipt {
        receipt: usize,
        log: usize,
        error: Box<DepositError>,
    },
}

impl fmt::Display for DepositError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DepositError::TopicCount(n) => write!(
                f,
                "expected 4 event topics (event identity, indexed from, indexed to, indexed version), got {n}"
            ),
            DepositError::NotDepositEvent(t) => {
                write!(f, "invalid deposit event selector: {t}, expected {DEPOSIT_EVENT_TOPIC}")
            }
            DepositError::IncompleteHeader(n) => {
                write!(f, "incomplete opaqueData slice header ({n} bytes)")
            }
            DepositError::Unaligned(n) => {
                write!(f, "expected log data to be multiple of 32 bytes: got {n} bytes")
            }
            DepositError::BadOffset => write!(f, "invalid opaqueData slice header offset"),
            DepositError::BadLength => write!(f, "invalid opaqueData slice header length"),
            DepositError::UnknownVersion(v) => write!(f, "invalid deposit version, got {v}"),
            DepositError::OpaqueTooShort(n) => {
                write!(f, "unexpected opaqueData length: {n}")
            }
            DepositError::InReceipt { receipt, log, error } => {
                write!(f, "malformatted L1 deposit log in receipt {receipt}, log {log}: {error}")
            }
        }
    }
}

impl std::error::Error for DepositError {}

/// The source hash `keccak256(uint256(domain) ++ id)` shared by every deposit kind.
pub fn source_hash(domain: u64, id: &B256) -> B256 {
    let mut input = [0u8; 64];
    input[24..32].copy_from_slice(&domain.to_be_bytes());
    input[32..].copy_from_slice(&id.0);
    keccak256(input)
}

fn block_scoped_id(l1_block_hash: &B256, n: u64) -> B256 {
    let mut input = [0u8; 64];
    input[..32].copy_from_slice(&l1_block_hash.0);
    input[56..].copy_from_slice(&n.to_be_bytes());
    keccak256(input)
}

/// Source hash of the user deposit emitted as log `log_index` (block-wide) of an L1 block.
pub fn user_deposit_source(l1_block_hash: &B256, log_index: u64) -> B256 {
    source_hash(USER_DEPOSIT_DOMAIN, &block_scoped_id(l1_block_hash, log_index))
}

/// Source hash of the L1-info deposit of the `seq_number`-th L2 block of an epoch.
pub fn l1_info_source(l1_block_hash: &B256, seq_number: u64) -> B256 {
    source_hash(L1_INFO_DEPOSIT_DOMAIN, &block_scoped_id(l1_block_hash, seq_number))
}

/// Source hash of a network-upgrade deposit, identified by its intent string.
pub fn upgrade_source(intent: &str) -> B256 {
    source_hash(UPGRADE_DEPOSIT_DOMAIN, &keccak256(intent.as_bytes()))
}

/// Source hash of the interop deposit that invalidates the block with this output root.
pub fn invalidated_block_source(output_root: &B256) -> B256 {
    source_hash(INVALIDATED_BLOCK_DOMAIN, output_root)
}

fn word_as_u64(word: &[u8]) -> Option<u64> {
    U256::from_be_slice(word).and_then(|v| v.to_u64())
}

fn address_of_topic(topic: &B256) -> Address {
    // op-node takes the low 20 bytes without checking the padding.
    let mut a = [0u8; 20];
    a.copy_from_slice(&topic.0[12..]);
    Address(a)
}

/// Decodes a `TransactionDeposited` log (op-node `UnmarshalDepositLogEvent`); `log_index` is the
/// log's position among all logs of the L1 block `l1_block_hash`.
pub fn decode_deposit_log(
    log: &Log,
    l1_block_hash: &B256,
    log_index: u64,
) -> Result<DepositTx, DepositError> {
    let [topic0, from, to, version] = log.topics.as_slice() else {
        return Err(DepositError::TopicCount(log.topics.len()));
    };
    if *topic0 != DEPOSIT_EVENT_TOPIC {
        return Err(DepositError::NotDepositEvent(*topic0));
    }
    let data = log.data.as_ref();
    if data.len() < 64 {
        return Err(DepositError::IncompleteHeader(data.len()));
    }
    if data.len() % 32 != 0 {
        return Err(DepositError::Unaligned(data.len()));
    }
    if word_as_u64(&data[..32]) != Some(32) {
        return Err(DepositError::BadOffset);
    }
    let room = data.len() - 64;
    // The length must fit the data, with less than one word of padding after it.
    let len = word_as_u64(&data[32..64])
        .and_then(|l| usize::try_from(l).ok())
        .filter(|&l| l <= room && l + 32 > room)
        .ok_or(DepositError::BadLength)?;
    let opaque = &data[64..64 + len];
    if *version != DEPOSIT_EVENT_VERSION_0 {
        return Err(DepositError::UnknownVersion(*version));
    }
    if opaque.len() < OPAQUE_FIXED_LEN {
        return Err(DepositError::OpaqueTooShort(opaque.len()));
    }
    let mut gas = [0u8; 8];
    gas.copy_from_slice(&opaque[64..72]);
    let is_creation = opaque[72] != 0;
    Ok(DepositTx {
        source_hash: user_deposit_source(l1_block_hash, log_index),
        from: address_of_topic(from),
        to: (!is_creation).then(|| address_of_topic(to)),
        mint: U256::from_be_slice(&opaque[..32]).unwrap_or_default(),
        value: U256::from_be_slice(&opaque[32..64]).unwrap_or_default(),
        gas_limit: u64::from_be_bytes(gas),
        is_system_tx: false,
        input: Bytes(opaque[OPAQUE_FIXED_LEN..].to_vec()),
    })
}

/// Encodes a deposit as the `TransactionDeposited` log the portal would emit (op-node
/// `MarshalDepositLogEvent`); the inverse of [`decode_deposit_log`] up to the source hash.
pub fn encode_deposit_log(deposit_contract: &Address, dep: &DepositTx) -> Log {
    let topic_of = |a: &Address| {
        let mut t = [0u8; 32];
        t[12..].copy_from_slice(&a.0);
        B256(t)
    };
    let opaque_len = OPAQUE_FIXED_LEN + dep.input.len();
    let mut data = Vec::with_capacity(64 + opaque_len + 32);
    data.extend_from_slice(&U256::from_u64(32).0);
    data.extend_from_slice(&U256::from_u64(opaque_len as u64).0);
    data.extend_from_slice(&dep.mint.0);
    data.extend_from_slice(&dep.value.0);
    data.extend_from_slice(&dep.gas_limit.to_be_bytes());
    data.push(dep.to.is_none() as u8);
    data.extend_from_slice(&dep.input);
    data.resize(data.len().div_ceil(32) * 32, 0);
    Log {
        address: *deposit_contract,
        topics: vec![
            DEPOSIT_EVENT_TOPIC,
            topic_of(&dep.from),
            dep.to.as_ref().map(topic_of).unwrap_or_default(),
            DEPOSIT_EVENT_VERSION_0,
        ],
        data: Bytes(data),
    }
}

/// Collects the user deposits of an L1 block from its receipts, in order (op-node
/// `UserDeposits`): logs of `deposit_contract` whose topic 0 is the deposit event, in
/// successful receipts only. Log indices count every log of the block, as the L1 RPC does.
pub fn user_deposits(
    receipts: &[Receipt],
    deposit_contract: &Address,
    l1_block_hash: &B256,
) -> Result<Vec<DepositTx>, DepositError> {
    let mut out = Vec::new();
    let mut log_index = 0u64;
    for (i, receipt) in receipts.iter().enumerate() {
        for (j, log) in receipt.logs.iter().enumerate() {
            let index = log_index;
            log_index += 1;
            if !receipt.success
                || log.address != *deposit_contract
                || log.topics.first() != Some(&DEPOSIT_EVENT_TOPIC)
            {
                continue;
            }
            let dep = decode_deposit_log(log, l1_block_hash, index).map_err(|e| DepositError::InReceipt {
                receipt: i,
                log: j,
                error: Box::new(e),
            })?;
            out.push(dep);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::primitives::Bloom;
    use crate::rng::Rng;

    fn sample() -> DepositTx {
        DepositTx {
            source_hash: B256::ZERO,
            from: Address([0x11; 20]),
            to: Some(Address([0x22; 20])),
            mint: U256::from_u64(10),
            value: U256::from_u64(100),
            gas_limit: 1000,
            is_system_tx: false,
            input: Bytes(vec![0xab; 45]),
        }
    }

    #[test]
    fn topic_is_keccak_of_event_signature() {
        assert_eq!(keccak256(b"TransactionDeposited(address,address,uint256,bytes)"), DEPOSIT_EVENT_TOPIC);
    }

    #[test]
    fn log_round_trip() {
        let hash = B256([7; 32]);
        for to in [Some(Address([0x22; 20])), None] {
            for len in [0usize, 1, 31, 32, 45, 100] {
                let mut dep = DepositTx { to, input: Bytes(vec![0x5a; len]), ..sample() };
                let log = encode_deposit_log(&Address([9; 20]), &dep);
                dep.source_hash = user_deposit_source(&hash, 3);
                assert_eq!(decode_deposit_log(&log, &hash, 3), Ok(dep));
            }
        }
    }

    #[test]
    fn rejects_malformed_logs() {
        let good = encode_deposit_log(&Address::ZERO, &sample());
        let decode = |l: &Log| decode_deposit_log(l, &B256::ZERO, 0);

        let mut l = good.clone();
        l.topics.pop();
        assert_eq!(decode(&l), Err(DepositError::TopicCount(3)));
        let mut l = good.clone();
        l.topics[0] = B256([1; 32]);
        assert!(matches!(decode(&l), Err(DepositError::NotDepositEvent(_))));
        let mut l = good.clone();
        l.topics[3] = B256([1; 32]);
        assert!(matches!(decode(&l), Err(DepositError::UnknownVersion(_))));
        let mut l = good.clone();
        l.data.0[31] = 0x40;
        assert_eq!(decode(&l), Err(DepositError::BadOffset));
        let mut l = good.clone();
        l.data.0[63] = 0xff;
        assert_eq!(decode(&l), Err(DepositError::BadLength));
        // A whole extra word of padding is not minimal.
        let mut l = good.clone();
        l.data.0.extend_from_slice(&[0; 32]);
        assert_eq!(decode(&l), Err(DepositError::BadLength));
        let mut l = good.clone();
        l.data.0.push(0);
        assert_eq!(decode(&l), Err(DepositError::Unaligned(193)));
        // A length word above u64 is rejected, not truncated.
        let mut l = good.clone();
        l.data.0[40] = 1;
        assert_eq!(decode(&l), Err(DepositError::BadLength));
        let mut l = good;
        l.data = Bytes([&U256::from_u64(32).0[..], &U256::from_u64(72).0[..], &[0u8; 96][..]].concat());
        assert_eq!(decode(&l), Err(DepositError::OpaqueTooShort(72)));
    }

    #[test]
    fn truncated_and_random_data_never_panic() {
        let good = encode_deposit_log(&Address::ZERO, &sample());
        for n in 0..good.data.len() {
            let mut l = good.clone();
            l.data.0.truncate(n);
            assert!(decode_deposit_log(&l, &B256::ZERO, 0).is_err());
        }
        let mut rng = Rng::new(0xdead);
        for _ in 0..4000 {
            let mut l = good.clone();
            let len = rng.below(300) as usize;
            l.data.0 = vec![0; len];
            rng.fill(&mut l.data.0);
            if rng.below(2) == 0 && len >= 64 {
                // Keep a plausible header so the deeper checks are reached too.
                l.data.0[..64].copy_from_slice(&good.data.0[..64]);
                l.data.0[63] = rng.below(256) as u8;
            }
            let _ = decode_deposit_log(&l, &B256::ZERO, 0);
        }
    }

    #[test]
    fn collects_from_successful_receipts_with_block_log_index() {
        let contract = Address([0x42; 20]);
        let dep_log = encode_deposit_log(&contract, &sample());
        let other =
            Log { address: Address([1; 20]), topics: vec![DEPOSIT_EVENT_TOPIC], data: Bytes::default() };
        let receipt = |success, logs: Vec<Log>| Receipt {
            tx_type: 2,
            success,
            cumulative_gas_used: 0,
            logs_bloom: Bloom::ZERO,
            logs,
            deposit_nonce: None,
            deposit_receipt_version: None,
        };
        let receipts = [
            receipt(true, vec![other.clone(), dep_log.clone()]),
            receipt(false, vec![dep_log.clone()]),
            receipt(true, vec![other, dep_log]),
        ];
        let hash = B256([3; 32]);
        let deps = user_deposits(&receipts, &contract, &hash).unwrap();
        let sources: Vec<B256> = deps.iter().map(|d| d.source_hash).collect();
        assert_eq!(sources, vec![user_deposit_source(&hash, 1), user_deposit_source(&hash, 4)]);

        let mut bad = encode_deposit_log(&contract, &sample());
        bad.topics.pop();
        let err = user_deposits(&[receipt(true, vec![bad])], &contract, &hash).unwrap_err();
        assert!(matches!(err, DepositError::InReceipt { receipt: 0, log: 0, .. }));
    }
}
