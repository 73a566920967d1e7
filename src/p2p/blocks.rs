//! OP unsafe-block gossip over gossipsub: the block topics of a chain, the block validator
//! (op-node's `BuildBlocksValidator`, `op-node/p2p/gossip.go`) and the signed message the
//! sequencer publishes.
//!
//! Validation follows op-node's order, which checks the signature right after decompression
//! so that nothing unsigned is decoded or hashed: snappy and size limits, the signature against
//! the unsafe block signer (or the previous one during a rotation's grace period), the SSZ
//! payload of the topic's version, the timestamp window against the wall clock passed in
//! (60 s back, 5 s ahead), the block hash, the version's field rules (Jovian-aware), and the
//! blocks seen per height. Like op-node, a seventh distinct block at one height is rejected
//! (six pass: the check is "more than five already seen"), and a block hash seen before is
//! ignored. An accepted block becomes `Event::ReceivedUnsafePayload` for the engine controller.

use std::collections::BTreeMap;
use std::fmt;

use k256::ecdsa::SigningKey;

use super::gossipsub::Acceptance;
use crate::event::Event;
use crate::protocol::gossip::{
    check_fields, decode_envelope, decompress, recover_signer, BlockVersion, GossipError, SignedBlock,
    MIN_GOSSIP_SIZE, SIGNATURE_LEN,
};
use crate::protocol::payload::{ExecutionPayloadEnvelope, PayloadError};
use crate::protocol::primitives::{keccak256, Address, B256};
use crate::protocol::rollup::RollupConfig;

/// op-node's default `p2p.gossip.timestamp.threshold`: blocks older than this are rejected.
pub const DEFAULT_TIMESTAMP_THRESHOLD: u64 = 60;
/// Blocks further than this into the future are rejected.
pub const MAX_FUTURE_SECS: u64 = 5;
/// Distinct blocks already seen at one height beyond which another is rejected.
pub const MAX_BLOCKS_PER_HEIGHT: usize = 5;
/// Heights remembered for the per-height check (op-node's LRU size).
pub const SEEN_HEIGHTS: usize = 1000;

/// The block topics of chain `chain_id`, V1 to V4 (`/optimism/<chain>/<0..3>/blocks`).
pub fn block_topics(chain_id: u64) -> Vec<String> {
    BlockVersion::ALL.iter().map(|v| v.topic(chain_id)).collect()
}

/// The addresses allowed to sign blocks: the runtime config's unsafe block signer and, during
/// a rotation's grace period, the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signers {
    pub current: Address,
    pub previous: Option<Address>,
}

impl Signers {
    /// Only `current` may sign.
    pub fn only(current: Address) -> Signers {
        Signers { current, previous: None }
    }
}

/// Why a block message was rejected or ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    /// The topic is not one of the chain's block topics.
    UnknownTopic(String),
    /// No unsafe block signer is known yet (ignored, as op-node does).
    NoSigner,
    /// Bad compression, size, signature encoding or SSZ payload.
    Decode(GossipError),
    WrongSigner {
        expected: Address,
        got: Address,
    },
    TooOld {
        timestamp: u64,
        now: u64,
    },
    TooNew {
        timestamp: u64,
        now: u64,
    },
    BlockHash(PayloadError),
    /// A field rule of the topic's version (withdrawals, blob gas).
    Fields(GossipError),
    TooManyBlocks {
        height: u64,
    },
    /// The same block hash passed before (ignored).
    AlreadySeen {
        hash: B256,
    },
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::UnknownTopic(t) => write!(f, "{t:?} is not a block topic of this chain"),
            BlockError::NoSigner => write!(f, "no unsafe block signer known"),
            BlockError::Decode(e) => write!(f, "undecodable block message: {e}"),
            BlockError::WrongSigner { expected, got } => write!(f, "block signed by {got}, want {expected}"),
            BlockError::TooOld { timestamp, now } => {
                write!(f, "block timestamp {timestamp} too old at {now}")
            }
            BlockError::TooNew { timestamp, now } => {
                write!(f, "block timestamp {timestamp} too far in the future at {now}")
            }
            BlockError::BlockHash(e) => write!(f, "bad block hash: {e}"),
            BlockError::Fields(e) => write!(f, "block breaks its version's rules: {e}"),
            BlockError::TooManyBlocks { height } => write!(f, "too many blocks seen at height {height}"),
            BlockError::AlreadySeen { hash } => write!(f, "block {hash} already seen"),
        }
    }
}

impl std::error::Error for BlockError {}

/// A block that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub envelope: Box<ExecutionPayloadEnvelope>,
    pub signer: Address,
    /// Signed by the previous signer during its grace period.
    pub by_previous_signer: bool,
}

impl Accepted {
    /// The event that hands the block to the engine controller's unsafe queue.
    pub fn into_event(self) -> Event {
        Event::ReceivedUnsafePayload(self.envelope)
    }
}

/// The verdict on one block message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    Accept(Accepted),
    /// Invalid: dropped and the sender penalised.
    Reject(BlockError),
    /// Dropped without penalty.
    Ignore(BlockError),
}

impl Validation {
    /// The gossipsub verdict to report for the message.
    pub fn acceptance(&self) -> Acceptance {
        match self {
            Validation::Accept(_) => Acceptance::Accept,
            Validation::Reject(_) => Acceptance::Reject,
            Validation::Ignore(_) => Acceptance::Ignore,
        }
    }
}

/// op-node's block validator, with its per-height memory of block hashes.
#[derive(Debug, Clone)]
pub struct BlockValidator {
    timestamp_threshold: u64,
    seen: BTreeMap<u64, Vec<B256>>,
}

impl Default for BlockValidator {
    fn default() -> Self {
        Self::new(DEFAULT_TIMESTAMP_THRESHOLD)
    }
}

impl BlockValidator {
    /// A validator rejecting blocks older than `timestamp_threshold` seconds.
    pub fn new(timestamp_threshold: u64) -> Self {
        BlockValidator { timestamp_threshold, seen: BTreeMap::new() }
    }

    /// Validates a message received on `topic` (the topic selects the block version).
    pub fn validate_topic(
        &mut self,
        cfg: &RollupConfig,
        topic: &str,
        data: &[u8],
        signers: &Signers,
        unix_now: u64,
    ) -> Validation {
        match BlockVersion::from_topic(topic, cfg.l2_chain_id) {
            Some(version) => self.validate(cfg, version, data, signers, unix_now),
            None => Validation::Reject(BlockError::UnknownTopic(topic.into())),
        }
    }

    /// Validates a message of the `version` topic at wall-clock time `unix_now` (seconds).
    pub fn validate(
        &mut self,
        cfg: &RollupConfig,
        version: BlockVersion,
        data: &[u8],
        signers: &Signers,
        unix_now: u64,
    ) -> Validation {
        use Validation::{Ignore, Reject};
        let plain = match decompress(data) {
            Ok(p) => p,
            Err(e) => return Reject(BlockError::Decode(e)),
        };
        let too_small = GossipError::TooSmall { len: plain.len(), min: MIN_GOSSIP_SIZE };
        let signed = plain.split_first_chunk::<SIGNATURE_LEN>().filter(|(_, rest)| !rest.is_empty());
        let Some((sig, payload)) = signed else { return Reject(BlockError::Decode(too_small)) };
        if signers.current == Address::ZERO {
            return Ignore(BlockError::NoSigner);
        }
        let signer = match recover_signer(cfg.l2_chain_id, &keccak256(payload), sig) {
            Ok(a) => a,
            Err(e) => return Reject(BlockError::Decode(e)),
        };
        let by_previous_signer = signer != signers.current;
        if by_previous_signer && signers.previous.filter(|p| *p != Address::ZERO) != Some(signer) {
            return Reject(BlockError::WrongSigner { expected: signers.current, got: signer });
        }
        let envelope = match decode_envelope(payload, version) {
            Ok(e) => e,
            Err(e) => return Reject(BlockError::Decode(e)),
        };
        let p = &envelope.execution_payload;
        if p.timestamp < unix_now.saturating_sub(self.timestamp_threshold) {
            return Reject(BlockError::TooOld { timestamp: p.timestamp, now: unix_now });
        }
        if p.timestamp > unix_now.saturating_add(MAX_FUTURE_SECS) {
            return Reject(BlockError::TooNew { timestamp: p.timestamp, now: unix_now });
        }
        if let Err(e) = envelope.check_block_hash() {
            return Reject(BlockError::BlockHash(e));
        }
        if let Err(e) = check_fields(&envelope, version, cfg) {
            return Reject(BlockError::Fields(e));
        }
        let (height, hash) = (p.block_number, p.block_hash);
        let seen = self.seen.entry(height).or_default();
        if seen.len() > MAX_BLOCKS_PER_HEIGHT {
            return Reject(BlockError::TooManyBlocks { height });
        }
        if seen.contains(&hash) {
            return Ignore(BlockError::AlreadySeen { hash });
        }
        seen.push(hash);
        if self.seen.len() > SEEN_HEIGHTS {
            self.seen.pop_first();
        }
        Validation::Accept(Accepted { envelope: Box::new(envelope), signer, by_previous_signer })
    }
}

/// A block message ready for `Router::publish`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub topic: String,
    pub version: BlockVersion,
    /// The snappy-compressed signed message.
    pub data: Vec<u8>,
}

/// Signs a sealed block with the sequencer's key for the topic of its timestamp's fork.
pub fn sign_block(
    cfg: &RollupConfig,
    envelope: ExecutionPayloadEnvelope,
    key: &SigningKey,
) -> Result<Publication, GossipError> {
    let version = BlockVersion::at(cfg, envelope.execution_payload.timestamp);
    let data = SignedBlock::sign(envelope, version, cfg.l2_chain_id, key)?.encode(version)?;
    Ok(Publication { topic: version.topic(cfg.l2_chain_id), version, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::gossip::compress;
    use crate::protocol::header::Withdrawal;
    use crate::protocol::payload::ExecutionPayload;
    use crate::protocol::primitives::{Bloom, Bytes, U256};
    use crate::protocol::rollup::Fork;
    use crate::protocol::tx::address_of;
    use crate::rng::Rng;

    fn cfg() -> RollupConfig {
        let mut cfg = RollupConfig::from_json(crate::protocol::rollup::tests_support::BASE_JSON).unwrap();
        cfg.apply_overrides(&[
            (Fork::Canyon, 1000),
            (Fork::Delta, 1000),
            (Fork::Ecotone, 2000),
            (Fork::Fjord, 2000),
            (Fork::Granite, 2000),
            (Fork::Holocene, 2000),
            (Fork::Isthmus, 3000),
            (Fork::Jovian, 4000),
        ]);
        cfg
    }

    fn key(n: u8) -> SigningKey {
        SigningKey::from_slice(&[n; 32]).unwrap()
    }

    fn signer(n: u8) -> Address {
        address_of(key(n).verifying_key())
    }

    /// A block of the version active at `timestamp`, with a correct hash.
    fn block(timestamp: u64, number: u64, salt: u8) -> ExecutionPayloadEnvelope {
        let v = BlockVersion::at(&cfg(), timestamp);
        let payload = ExecutionPayload {
            parent_hash: B256([1; 32]),
            fee_recipient: Address([2; 20]),
            state_root: B256([salt; 32]),
            receipts_root: B256([4; 32]),
            logs_bloom: Bloom([0; 256]),
            prev_randao: B256([6; 32]),
            block_number: number,
            gas_limit: 30_000_000,
            gas_used: 21_000,
            timestamp,
            extra_data: Bytes(vec![]),
            base_fee_per_gas: U256::from_u64(7),
            block_hash: B256::ZERO,
            transactions: vec![Bytes(vec![0x7e; 40]), Bytes(vec![2; 100])],
            withdrawals: v.has_withdrawals().then(Vec::new),
            blob_gas_used: v.has_blob_properties().then_some(0),
            excess_blob_gas: v.has_blob_properties().then_some(0),
            withdrawals_root: v.has_withdrawals_root().then_some(B256([9; 32])),
        };
        let mut env = ExecutionPayloadEnvelope {
            parent_beacon_block_root: v.has_parent_beacon_block_root().then_some(B256([10; 32])),
            execution_payload: payload,
        };
        env.execution_payload.block_hash = env.compute_block_hash().unwrap();
        env
    }

    fn publish(env: &ExecutionPayloadEnvelope, k: u8) -> Publication {
        sign_block(&cfg(), env.clone(), &key(k)).unwrap()
    }

    fn check(v: &mut BlockValidator, p: &Publication, now: u64) -> Validation {
        v.validate_topic(&cfg(), &p.topic, &p.data, &Signers::only(signer(1)), now)
    }

    #[test]
    fn topics_follow_the_forks() {
        assert_eq!(
            block_topics(10),
            [
                "/optimism/10/0/blocks",
                "/optimism/10/1/blocks",
                "/optimism/10/2/blocks",
                "/optimism/10/3/blocks"
            ]
        );
        let versions: Vec<BlockVersion> =
            [500, 1500, 2500, 3500].iter().map(|t| publish(&block(*t, 1, 0), 1).version).collect();
        assert_eq!(versions, BlockVersion::ALL);
        assert_eq!(publish(&block(2500, 1, 0), 1).topic, "/optimism/8453/2/blocks");
    }

    #[test]
    fn valid_blocks_of_every_version_are_accepted() {
        for t in [500, 1500, 2500, 3500, 4500] {
            let env = block(t, 1, 0);
            let mut v = BlockValidator::default();
            match check(&mut v, &publish(&env, 1), t) {
                Validation::Accept(a) => {
                    assert_eq!(
                        (*a.envelope.clone(), a.signer, a.by_previous_signer),
                        (env.clone(), signer(1), false)
                    );
                    assert!(matches!(a.into_event(), Event::ReceivedUnsafePayload(e) if *e == env));
                }
                other => panic!("{t}: {other:?}"),
            }
        }
    }

    #[test]
    fn only_the_unsafe_block_signer_is_accepted() {
        let p = publish(&block(2500, 1, 0), 2);
        let mut v = BlockValidator::default();
        let c = cfg();
        assert_eq!(
            v.validate_topic(&c, &p.topic, &p.data, &Signers::only(signer(1)), 2500),
            Validation::Reject(BlockError::WrongSigner { expected: signer(1), got: signer(2) })
        );
        assert_eq!(
            v.validate_topic(&c, &p.topic, &p.data, &Signers::only(Address::ZERO), 2500),
            Validation::Ignore(BlockError::NoSigner)
        );
        let rotating = Signers { current: signer(1), previous: Some(signer(2)) };
        match v.validate_topic(&c, &p.topic, &p.data, &rotating, 2500) {
            Validation::Accept(a) => assert!(a.by_previous_signer && a.signer == signer(2)),
            other => panic!("{other:?}"),
        }
        // Another chain's signature recovers to another address.
        let mut other = cfg();
        other.l2_chain_id = 10;
        let p = sign_block(&other, block(2500, 2, 0), &key(1)).unwrap();
        let r = v.validate(&c, BlockVersion::V3, &p.data, &Signers::only(signer(1)), 2500);
        assert!(matches!(r, Validation::Reject(BlockError::WrongSigner { .. })), "{r:?}");
    }

    #[test]
    fn the_timestamp_window_is_60s_back_and_5s_ahead() {
        let p = publish(&block(2500, 1, 0), 1);
        let at = |now| check(&mut BlockValidator::default(), &p, now);
        assert!(matches!(at(2560), Validation::Accept(_)));
        assert_eq!(at(2561), Validation::Reject(BlockError::TooOld { timestamp: 2500, now: 2561 }));
        assert!(matches!(at(2495), Validation::Accept(_)));
        assert_eq!(at(2494), Validation::Reject(BlockError::TooNew { timestamp: 2500, now: 2494 }));
        let mut strict = BlockValidator::new(10);
        assert!(matches!(check(&mut strict, &p, 2511), Validation::Reject(BlockError::TooOld { .. })));
    }

    #[test]
    fn a_wrong_block_hash_is_rejected() {
        let mut env = block(2500, 1, 0);
        env.execution_payload.block_hash = B256([0xab; 32]);
        let r = check(&mut BlockValidator::default(), &publish(&env, 1), 2500);
        assert!(
            matches!(r, Validation::Reject(BlockError::BlockHash(PayloadError::BlockHashMismatch { .. }))),
            "{r:?}"
        );
    }

    #[test]
    fn blocks_per_height_are_limited_and_duplicates_ignored() {
        let mut v = BlockValidator::default();
        let blocks: Vec<Publication> = (0..7).map(|salt| publish(&block(2500, 9, salt), 1)).collect();
        for p in &blocks[..6] {
            assert!(matches!(check(&mut v, p, 2500), Validation::Accept(_)));
        }
        assert_eq!(
            check(&mut v, &blocks[6], 2500),
            Validation::Reject(BlockError::TooManyBlocks { height: 9 })
        );
        // Another height is unaffected; a repeat of a passed block is ignored.
        let mut v = BlockValidator::default();
        let p = publish(&block(2500, 10, 0), 1);
        assert!(matches!(check(&mut v, &p, 2500), Validation::Accept(_)));
        let hash = block(2500, 10, 0).execution_payload.block_hash;
        assert_eq!(check(&mut v, &p, 2500), Validation::Ignore(BlockError::AlreadySeen { hash }));
        assert_eq!(check(&mut v, &p, 2500).acceptance(), Acceptance::Ignore);
    }

    #[test]
    fn seen_heights_are_bounded() {
        let mut v = BlockValidator::default();
        for n in 0..1100 {
            assert!(matches!(check(&mut v, &publish(&block(2500, n, 0), 1), 2500), Validation::Accept(_)));
        }
        assert_eq!(v.seen.len(), SEEN_HEIGHTS);
        assert_eq!(v.seen.first_key_value().map(|(h, _)| *h), Some(100));
    }

    #[test]
    fn a_block_on_another_versions_topic_is_rejected() {
        let c = cfg();
        for t in [500, 1500, 2500, 3500] {
            let p = publish(&block(t, 1, 0), 1);
            for other in BlockVersion::ALL.into_iter().filter(|o| *o != p.version) {
                let r = BlockValidator::default().validate(&c, other, &p.data, &Signers::only(signer(1)), t);
                assert_eq!(r.acceptance(), Acceptance::Reject, "{:?} on {other:?}: {r:?}", p.version);
            }
        }
        let p = publish(&block(2500, 1, 0), 1);
        assert_eq!(
            BlockValidator::default().validate_topic(
                &c,
                "/optimism/10/2/blocks",
                &p.data,
                &Signers::only(signer(1)),
                2500
            ),
            Validation::Reject(BlockError::UnknownTopic("/optimism/10/2/blocks".into()))
        );
    }

    #[test]
    fn version_field_rules_apply() {
        let w = Withdrawal { index: 1, validator_index: 2, address: Address([3; 20]), amount: 4 };
        let mut env = block(1500, 1, 0);
        env.execution_payload.withdrawals = Some(vec![w]);
        env.execution_payload.block_hash = env.compute_block_hash().unwrap();
        let r = check(&mut BlockValidator::default(), &publish(&env, 1), 1500);
        assert_eq!(r, Validation::Reject(BlockError::Fields(GossipError::NonEmptyWithdrawals(1))));
        // Blob gas used is zero until Jovian, where it carries the DA footprint.
        for (t, ok) in [(2500, false), (4500, true)] {
            let mut env = block(t, 1, 0);
            env.execution_payload.blob_gas_used = Some(5);
            env.execution_payload.block_hash = env.compute_block_hash().unwrap();
            let r = check(&mut BlockValidator::default(), &publish(&env, 1), t);
            assert_eq!(matches!(r, Validation::Accept(_)), ok, "{t}: {r:?}");
        }
        let mut env = block(4500, 1, 0);
        env.execution_payload.excess_blob_gas = Some(1);
        env.execution_payload.block_hash = env.compute_block_hash().unwrap();
        let r = check(&mut BlockValidator::default(), &publish(&env, 1), 4500);
        assert!(matches!(r, Validation::Reject(BlockError::Fields(GossipError::NonZeroBlobGas { .. }))));
    }

    #[test]
    fn truncated_random_and_mutated_messages_are_rejected_without_panic() {
        let c = cfg();
        let signers = Signers::only(signer(1));
        let p = publish(&block(2500, 1, 0), 1);
        let plain = decompress(&p.data).unwrap();
        for n in 0..p.data.len() {
            let r = BlockValidator::default().validate(&c, BlockVersion::V3, &p.data[..n], &signers, 2500);
            assert_eq!(r.acceptance(), Acceptance::Reject, "{n}");
        }
        for n in 0..plain.len() {
            let cut = compress(&plain[..n]).unwrap();
            let r = BlockValidator::default().validate(&c, BlockVersion::V3, &cut, &signers, 2500);
            assert_eq!(r.acceptance(), Acceptance::Reject, "{n}");
        }
        assert_eq!(
            BlockValidator::default().validate(
                &c,
                BlockVersion::V3,
                &compress(&[0; 65]).unwrap(),
                &signers,
                2500
            ),
            Validation::Reject(BlockError::Decode(GossipError::TooSmall { len: 65, min: 66 }))
        );
        let mut rng = Rng::new(0xb10c);
        let mut v = BlockValidator::default();
        for i in 0..3000 {
            let mut buf = if i % 2 == 0 { p.data.clone() } else { plain.clone() };
            for _ in 0..=rng.below(3) {
                let at = rng.below(buf.len() as u64) as usize;
                buf[at] = rng.next_u64() as u8;
            }
            if i % 2 == 1 {
                buf = compress(&buf).unwrap();
            }
            let r = v.validate(&c, BlockVersion::V3, &buf, &signers, 2500);
            // Only a mutation that decompresses to the original message may pass.
            if r.acceptance() == Acceptance::Accept {
                assert_eq!(decompress(&buf).unwrap(), plain, "mutation {i} passed");
                v = BlockValidator::default();
            }
        }
    }
}
