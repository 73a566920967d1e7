//! The L1 SystemConfig as the rollup sees it (op-node `eth.SystemConfig`): batcher, fee scalars,
//! gas limit and the later fee-market parameters. Updated from the `ConfigUpdate` logs of the L1
//! SystemConfig contract (op-node `derive/system_config.go`; specs `protocol/system-config.md`).
//!
//! Input is untrusted L1 logs: a malformed update is skipped, never applied in part.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::eip1559::{Eip1559Error, Eip1559Params};
use super::primitives::{Address, B256, B64};
use super::receipt::{Log, Receipt};
use crate::protocol::rollup::{Fork, RollupConfig};

/// The rollup-relevant SystemConfig values in force at some L1 block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemConfig {
    /// The authorized batch sender.
    #[serde(alias = "batcherAddress")]
    pub batcher_addr: Address,
    /// Pre-Ecotone L1 fee overhead; unused from Ecotone on.
    pub overhead: B256,
    /// L1 fee scalar. From Ecotone: version byte 0 (legacy) or 1 (base fee + blob base fee scalars).
    pub scalar: B256,
    pub gas_limit: u64,
    /// Holocene: denominator (u32 BE) || elasticity (u32 BE); zero means "use the chain defaults".
    #[serde(default)]
    pub eip1559_params: B64,
    /// Isthmus: operator fee scalar (u32) and constant (u64), packed as in the SystemConfig contract.
    #[serde(default)]
    pub operator_fee_params: B256,
    /// Jovian: minimum base fee.
    #[serde(default)]
    pub min_base_fee: u64,
    /// Jovian: DA footprint gas scalar.
    #[serde(default)]
    pub da_footprint_gas_scalar: u16,
}

/// Version byte of a pre-Ecotone (Bedrock) L1 fee scalar.
pub const L1_SCALAR_BEDROCK: u8 = 0;
/// Version byte of an Ecotone L1 fee scalar (base fee + blob base fee scalars).
pub const L1_SCALAR_ECOTONE: u8 = 1;

/// keccak256("ConfigUpdate(uint256,uint8,bytes)").
pub const CONFIG_UPDATE_TOPIC: B256 = B256([
    0x1d, 0x2b, 0x0b, 0xda, 0x21, 0xd5, 0x6b, 0x8b, 0xd1, 0x2d, 0x4f, 0x94, 0xeb, 0xac, 0xff, 0xdf, 0xb3,
    0x5f, 0x5e, 0x22, 0x6f, 0x84, 0xb4, 0x61, 0x10, 0x3b, 0xb8, 0xbe, 0xab, 0x63, 0x53, 0xbe,
]);

/// The only `ConfigUpdate` event version (topic 1).
pub const CONFIG_UPDATE_VERSION_0: B256 = B256::ZERO;

/// Why a SystemConfig value or a `ConfigUpdate` log is invalid. Update errors only skip the
/// log: op-node applies each valid update and ignores the rest, since nothing can repair them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemConfigError {
    /// The event needs 3 topics (identity, version, update type).
    TopicCount(usize),
    NotConfigUpdate(B256),
    UnknownVersion(B256),
    UnknownUpdateType(B256),
    /// The ABI offset of the `bytes` payload is not 32.
    InvalidPointer,
    /// The ABI length of the payload is not the size of the update type.
    InvalidLength,
    /// The payload is truncated or a value has non-zero padding.
    BadValue(&'static str),
    TooManyBytes,
    InvalidEip1559Params(Eip1559Error),
    /// An L1 fee scalar of unknown version, or a version 1 scalar with non-zero padding.
    InvalidScalar(B256),
}

impl fmt::Display for SystemConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SystemConfigError::*;
        match self {
            TopicCount(n) => write!(
                f,
                "expected 3 event topics (event identity, indexed version, indexed updateType), got {n}"
            ),
            NotConfigUpdate(t) => write!(f, "invalid SystemConfig update event: {t}"),
            UnknownVersion(v) => write!(f, "unknown SystemConfig event version: {v}"),
            UnknownUpdateType(t) => write!(f, "unknown SystemConfig event type: {t}"),
            InvalidPointer => write!(f, "error parsing system config: invalid pointer field"),
            InvalidLength => write!(f, "error parsing system config: invalid length field"),
            BadValue(what) => write!(f, "error parsing system config: could not read {what}"),
            TooManyBytes => write!(f, "error parsing system config: too many bytes"),
            InvalidEip1559Params(e) => write!(f, "invalid EIP-1559 parameters: {e}"),
            InvalidScalar(s) => write!(f, "unexpected system config scalar: {s}"),
        }
    }
}

impl std::error::Error for SystemConfigError {}

/// A `ConfigUpdate` log that was skipped, with its position in the L1 block's receipts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedUpdate {
    pub receipt: usize,
    pub log: usize,
    pub error: SystemConfigError,
}

impl fmt::Display for SkippedUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformatted L1 system sysCfg log in receipt {}, log {}: {}",
            self.receipt, self.log, self.error
        )
    }
}

/// The update types of the `ConfigUpdate` event (topic 2), numbered as in the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateType {
    Batcher = 0,
    FeeScalars = 1,
    GasLimit = 2,
    UnsafeBlockSigner = 3,
    Eip1559Params = 4,
    OperatorFeeParams = 5,
    MinBaseFee = 6,
    DaFootprintGasScalar = 7,
}

impl UpdateType {
    fn from_topic(t: &B256) -> Option<Self> {
        use UpdateType::*;
        if t.0[..31].iter().any(|b| *b != 0) {
            return None;
        }
        Some(match t.0[31] {
            0 => Batcher,
            1 => FeeScalars,
            2 => GasLimit,
            3 => UnsafeBlockSigner,
            4 => Eip1559Params,
            5 => OperatorFeeParams,
            6 => MinBaseFee,
            7 => DaFootprintGasScalar,
            _ => return None,
        })
    }
}

/// A decoded `ConfigUpdate(uint256 indexed version, uint8 indexed updateType, bytes data)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigUpdate {
    Batcher(Address),
    FeeScalars {
        overhead: B256,
        scalar: B256,
    },
    GasLimit(u64),
    UnsafeBlockSigner(Address),
    /// Holocene: validated `denominator ++ elasticity`.
    Eip1559Params(B64),
    /// Isthmus: the packed operator fee scalar and constant.
    OperatorFeeParams(B256),
    /// Jovian.
    MinBaseFee(u64),
    /// Jovian.
    DaFootprintGasScalar(u16),
}

impl ConfigUpdate {
    /// Decodes a `ConfigUpdate` log of any update type (op-node `ProcessSystemConfigUpdateLogEvent`
    /// parsing, plus the unsafe block signer that derivation ignores).
    pub fn decode(log: &Log) -> Result<ConfigUpdate, SystemConfigError> {
        Self::decode_payload(update_type(log)?, &log.data)
    }

    fn decode_payload(ty: UpdateType, data: &[u8]) -> Result<ConfigUpdate, SystemConfigError> {
        use SystemConfigError::BadValue;
        let len = if ty == UpdateType::FeeScalars { 64 } else { 32 };
        let mut r = Words::new(data, len)?;
        let update = match ty {
            UpdateType::Batcher => ConfigUpdate::Batcher(r.address("address")?),
            UpdateType::UnsafeBlockSigner => ConfigUpdate::UnsafeBlockSigner(r.address("address")?),
            UpdateType::FeeScalars => ConfigUpdate::FeeScalars {
                overhead: r.word().ok_or(BadValue("overhead"))?,
                scalar: r.word().ok_or(BadValue("scalar"))?,
            },
            UpdateType::GasLimit => ConfigUpdate::GasLimit(r.uint::<8>("gas limit")?),
            UpdateType::Eip1559Params => {
                let w = r.word().ok_or(BadValue("eip-1559 params"))?;
                // Only the low 8 bytes count; the rest of the word is not checked (op-node).
                ConfigUpdate::Eip1559Params(B64::from_slice(&w.0[24..]).unwrap_or_default())
            }
            UpdateType::OperatorFeeParams => {
                ConfigUpdate::OperatorFeeParams(r.word().ok_or(BadValue("operator fee params"))?)
            }
            UpdateType::MinBaseFee => ConfigUpdate::MinBaseFee(r.uint::<8>("minBaseFee")?),
            // Two bytes always fit a u16.
            UpdateType::DaFootprintGasScalar => {
                ConfigUpdate::DaFootprintGasScalar(r.uint::<2>("DA footprint gas scalar")? as u16)
            }
        };
        r.finish()?;
        if let ConfigUpdate::Eip1559Params(p) = update {
            Eip1559Params::from_b64(p).validate().map_err(SystemConfigError::InvalidEip1559Params)?;
        }
        Ok(update)
    }
}

/// Validates the topics of a `ConfigUpdate` log and returns its update type.
fn update_type(log: &Log) -> Result<UpdateType, SystemConfigError> {
    let [topic0, version, ty] = log.topics.as_slice() else {
        return Err(SystemConfigError::TopicCount(log.topics.len()));
    };
    if *topic0 != CONFIG_UPDATE_TOPIC {
        return Err(SystemConfigError::NotConfigUpdate(*topic0));
    }
    if *version != CONFIG_UPDATE_VERSION_0 {
        return Err(SystemConfigError::UnknownVersion(*version));
    }
    UpdateType::from_topic(ty).ok_or(SystemConfigError::UnknownUpdateType(*ty))
}

/// A reader of ABI-encoded `bytes` whose content is `len` bytes of 32-byte words.
struct Words<'a> {
    rest: &'a [u8],
}

impl<'a> Words<'a> {
    fn new(data: &'a [u8], len: u64) -> Result<Self, SystemConfigError> {
        let mut r = Words { rest: data };
        if r.uint::<8>("").ok() != Some(32) {
            return Err(SystemConfigError::InvalidPointer);
        }
        if r.uint::<8>("").ok() != Some(len) {
            return Err(SystemConfigError::InvalidLength);
        }
        Ok(r)
    }

    fn word(&mut self) -> Option<B256> {
        let (w, rest) = self.rest.split_first_chunk::<32>()?;
        self.rest = rest;
        Some(B256(*w))
    }

    /// A big-endian unsigned value of `N` bytes, left-padded with zeros to a word.
    fn uint<const N: usize>(&mut self, what: &'static str) -> Result<u64, SystemConfigError> {
        let w = self.word().ok_or(SystemConfigError::BadValue(what))?;
        let (pad, v) = w.0.split_at(32 - N);
        if pad.iter().any(|b| *b != 0) {
            return Err(SystemConfigError::BadValue(what));
        }
        Ok(v.iter().fold(0u64, |acc, b| acc << 8 | *b as u64))
    }

    fn address(&mut self, what: &'static str) -> Result<Address, SystemConfigError> {
        let w = self.word().ok_or(SystemConfigError::BadValue(what))?;
        if w.0[..12].iter().any(|b| *b != 0) {
            return Err(SystemConfigError::BadValue(what));
        }
        Ok(Address::from_slice(&w.0[12..]).unwrap_or_default())
    }

    fn finish(&self) -> Result<(), SystemConfigError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(SystemConfigError::TooManyBytes)
        }
    }
}

/// The Ecotone L1 fee scalars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EcotoneScalars {
    pub blob_base_fee_scalar: u32,
    pub base_fee_scalar: u32,
}

/// The Isthmus operator fee parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OperatorFee {
    pub scalar: u32,
    pub constant: u64,
}

fn be_u32(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |acc, x| acc << 8 | *x as u32)
}

fn be_u64(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, x| acc << 8 | *x as u64)
}

/// Checks an L1 fee scalar as Ecotone reads it (op-node `CheckEcotoneL1SystemConfigScalar`);
/// Err(true) marks a version 0 scalar with non-zero padding, which the spec maps to u32::MAX.
fn check_ecotone_scalar(s: &B256) -> Result<(), bool> {
    match s.0[0] {
        L1_SCALAR_BEDROCK if s.0[1..28].iter().any(|b| *b != 0) => Err(true),
        L1_SCALAR_BEDROCK => Ok(()),
        L1_SCALAR_ECOTONE if s.0[1..24].iter().any(|b| *b != 0) => Err(false),
        L1_SCALAR_ECOTONE => Ok(()),
        _ => Err(false),
    }
}

impl SystemConfig {
    /// The Ecotone scalars encoded in `scalar` (op-node `EcotoneScalars`): version 0 carries only
    /// the base fee scalar (u32::MAX if its padding is dirty), version 1 both.
    pub fn ecotone_scalars(&self) -> Result<EcotoneScalars, SystemConfigError> {
        let s = &self.scalar.0;
        match check_ecotone_scalar(&self.scalar) {
            Err(true) => Ok(EcotoneScalars { blob_base_fee_scalar: 0, base_fee_scalar: u32::MAX }),
            Err(false) => Err(SystemConfigError::InvalidScalar(self.scalar)),
            Ok(()) if s[0] == L1_SCALAR_BEDROCK => {
                Ok(EcotoneScalars { blob_base_fee_scalar: 0, base_fee_scalar: be_u32(&s[28..]) })
            }
            Ok(()) => Ok(EcotoneScalars {
                blob_base_fee_scalar: be_u32(&s[24..28]),
                base_fee_scalar: be_u32(&s[28..]),
            }),
        }
    }

    /// The operator fee scalar (bytes 20..24) and constant (bytes 24..32) of `operator_fee_params`.
    pub fn operator_fee(&self) -> OperatorFee {
        let p = &self.operator_fee_params.0;
        OperatorFee { scalar: be_u32(&p[20..24]), constant: be_u64(&p[24..]) }
    }

    /// Applies one update; `l1_time` is the L1 block time, which op-node compares against the
    /// (L2) Ecotone activation time to choose how fee scalars are read.
    pub fn apply(&mut self, update: ConfigUpdate, cfg: &RollupConfig, l1_time: u64) {
        match update {
            ConfigUpdate::Batcher(a) => self.batcher_addr = a,
            ConfigUpdate::FeeScalars { overhead, scalar } => {
                if !cfg.is_active(Fork::Ecotone, l1_time) {
                    self.overhead = overhead;
                    self.scalar = scalar;
                } else if check_ecotone_scalar(&scalar).is_ok() {
                    // Invalid Ecotone scalars are ignored, keeping the old one.
                    self.scalar = scalar;
                    self.overhead = B256::ZERO;
                }
            }
            ConfigUpdate::GasLimit(g) => self.gas_limit = g,
            ConfigUpdate::UnsafeBlockSigner(_) => {}
            ConfigUpdate::Eip1559Params(p) => self.eip1559_params = p,
            ConfigUpdate::OperatorFeeParams(p) => self.operator_fee_params = p,
            ConfigUpdate::MinBaseFee(m) => self.min_base_fee = m,
            ConfigUpdate::DaFootprintGasScalar(s) => self.da_footprint_gas_scalar = s,
        }
    }

    /// Decodes and applies one `ConfigUpdate` log. As in op-node, the unsafe block signer update
    /// is accepted without reading its payload: derivation does not use it.
    pub fn apply_log(
        &mut self,
        log: &Log,
        cfg: &RollupConfig,
        l1_time: u64,
    ) -> Result<(), SystemConfigError> {
        let ty = update_type(log)?;
        if ty == UpdateType::UnsafeBlockSigner {
            return Ok(());
        }
        let update = ConfigUpdate::decode_payload(ty, &log.data)?;
        self.apply(update, cfg, l1_time);
        Ok(())
    }

    /// Applies the `ConfigUpdate` logs of an L1 block (op-node `UpdateSystemConfigWithL1Receipts`):
    /// logs of `cfg.l1_system_config_address` with the event topic, in successful receipts.
    /// Invalid updates are skipped and returned; derivation ignores them.
    pub fn update_from_receipts(
        &mut self,
        receipts: &[Receipt],
        cfg: &RollupConfig,
        l1_time: u64,
    ) -> Result<(), Vec<SkippedUpdate>> {
        let mut skipped = Vec::new();
        for (i, receipt) in receipts.iter().enumerate().filter(|(_, r)| r.success) {
            for (j, log) in receipt.logs.iter().enumerate() {
                if log.address != cfg.l1_system_config_address
                    || log.topics.first() != Some(&CONFIG_UPDATE_TOPIC)
                {
                    continue;
                }
                if let Err(error) = self.apply_log(log, cfg, l1_time) {
                    skipped.push(SkippedUpdate { receipt: i, log: j, error });
                }
            }
        }
        if skipped.is_empty() {
            Ok(())
        } else {
            Err(skipped)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::primitives::{keccak256, Bloom, Bytes};
    use crate::protocol::rollup::tests_support::BASE_JSON;
    use crate::rng::Rng;

    fn cfg() -> RollupConfig {
        let mut c = RollupConfig::from_json(BASE_JSON).unwrap();
        c.apply_overrides(&[(Fork::Canyon, 100), (Fork::Delta, 100), (Fork::Ecotone, 100)]);
        c
    }

    fn word(v: &[u8]) -> [u8; 32] {
        let mut w = [0u8; 32];
        w[32 - v.len()..].copy_from_slice(v);
        w
    }

    /// A `ConfigUpdate` log with ABI `bytes` data made of `words`.
    fn update_log(ty: u8, words: &[[u8; 32]]) -> Log {
        let mut data = word(&[32]).to_vec();
        data.extend_from_slice(&word(&[(32 * words.len()) as u8]));
        words.iter().for_each(|w| data.extend_from_slice(w));
        Log {
            address: cfg().l1_system_config_address,
            topics: vec![CONFIG_UPDATE_TOPIC, B256::ZERO, B256(word(&[ty]))],
            data: Bytes(data),
        }
    }

    #[test]
    fn topic_is_keccak_of_event_signature() {
        assert_eq!(keccak256(b"ConfigUpdate(uint256,uint8,bytes)"), CONFIG_UPDATE_TOPIC);
    }

    #[test]
    fn applies_every_update_type() {
        let c = cfg();
        let mut s = c.genesis.system_config;
        let scalar = {
            let mut w = word(&[0, 0, 0, 7, 0, 0, 0, 9]);
            w[0] = 1;
            w
        };
        let logs = [
            update_log(0, &[word(&[0x11; 20])]),
            update_log(1, &[word(&[5]), scalar]),
            update_log(2, &[word(&[0x01, 0xc9, 0xc3, 0x80])]),
            update_log(3, &[word(&[0x22; 20])]),
            update_log(4, &[word(&[0, 0, 0, 250, 0, 0, 0, 6])]),
            update_log(5, &[word(&[0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4])]),
            update_log(6, &[word(&[1, 0])]),
            update_log(7, &[word(&[1, 144])]),
        ];
        for l in &logs {
            s.apply_log(l, &c, 100).unwrap();
        }
        assert_eq!(s.batcher_addr, Address([0x11; 20]));
        assert_eq!((s.overhead, s.scalar), (B256::ZERO, B256(scalar)), "Ecotone zeroes the overhead");
        assert_eq!(s.gas_limit, 30_000_000);
        assert_eq!(s.eip1559_params, B64([0, 0, 0, 250, 0, 0, 0, 6]));
        assert_eq!(s.operator_fee(), OperatorFee { scalar: 3, constant: 4 });
        assert_eq!((s.min_base_fee, s.da_footprint_gas_scalar), (256, 400));
        assert_eq!(s.ecotone_scalars(), Ok(EcotoneScalars { blob_base_fee_scalar: 7, base_fee_scalar: 9 }));
        assert_eq!(ConfigUpdate::decode(&logs[3]), Ok(ConfigUpdate::UnsafeBlockSigner(Address([0x22; 20]))));

        // Before Ecotone (by L1 time) overhead and scalar are taken as they are.
        s.apply_log(&update_log(1, &[word(&[5]), word(&[6])]), &c, 99).unwrap();
        assert_eq!((s.overhead, s.scalar), (B256(word(&[5])), B256(word(&[6]))));
    }

    #[test]
    fn skips_invalid_updates_like_op_node() {
        let c = cfg();
        let genesis = c.genesis.system_config;
        let mut s = genesis;
        // An unknown scalar version after Ecotone is ignored without error.
        let mut bad_scalar = [0u8; 32];
        bad_scalar[0] = 2;
        s.apply_log(&update_log(1, &[word(&[5]), bad_scalar]), &c, 100).unwrap();
        assert_eq!(s, genesis);
        // The unsafe block signer payload is not even parsed.
        s.apply_log(&update_log(3, &[]), &c, 100).unwrap();

        let mut wrong_version = update_log(0, &[word(&[1])]);
        wrong_version.topics[1] = B256(word(&[1]));
        let mut extra = update_log(2, &[word(&[1])]);
        extra.data.0.push(0);
        let mut pointer = update_log(2, &[word(&[1])]);
        pointer.data.0[31] = 64;
        let cases = [
            (update_log(8, &[word(&[1])]), "type"),
            (wrong_version, "version"),
            (update_log(0, &[[0xff; 32]]), "address"),
            (update_log(2, &[word(&[1]), word(&[1])]), "length"),
            (extra, "extra"),
            (pointer, "pointer"),
            (update_log(4, &[word(&[0, 0, 0, 0, 0, 0, 0, 6])]), "eip1559"),
            (update_log(7, &[word(&[1, 0, 0])]), "padding"),
        ];
        for (log, what) in &cases {
            assert!(s.apply_log(log, &c, 100).is_err(), "{what}");
        }
        assert_eq!(s, genesis);

        let receipt = |success, logs: Vec<Log>| Receipt {
            tx_type: 2,
            success,
            cumulative_gas_used: 0,
            logs_bloom: Bloom::ZERO,
            logs,
            deposit_nonce: None,
            deposit_receipt_version: None,
        };
        let mut elsewhere = update_log(2, &[word(&[9])]);
        elsewhere.address = Address([1; 20]);
        let receipts = [
            receipt(false, vec![update_log(2, &[word(&[7])])]),
            receipt(true, vec![elsewhere, cases[0].0.clone(), update_log(2, &[word(&[8])])]),
        ];
        let skipped = s.update_from_receipts(&receipts, &c, 100).unwrap_err();
        assert_eq!(s.gas_limit, 8);
        assert_eq!(
            skipped,
            vec![SkippedUpdate {
                receipt: 1,
                log: 1,
                error: SystemConfigError::UnknownUpdateType(B256(word(&[8])))
            }]
        );
    }

    #[test]
    fn ecotone_scalar_versions() {
        let mut s = SystemConfig::default();
        s.scalar.0[31] = 5;
        assert_eq!(
            s.ecotone_scalars().unwrap(),
            EcotoneScalars { blob_base_fee_scalar: 0, base_fee_scalar: 5 }
        );
        s.scalar.0[5] = 1;
        assert_eq!(s.ecotone_scalars().unwrap().base_fee_scalar, u32::MAX);
        s.scalar.0[0] = 1;
        assert!(s.ecotone_scalars().is_err());
    }

    #[test]
    fn truncated_and_random_payloads_never_panic() {
        let c = cfg();
        let full = update_log(1, &[word(&[5]), word(&[6])]);
        for n in 0..full.data.len() {
            let mut l = full.clone();
            l.data.0.truncate(n);
            assert!(ConfigUpdate::decode(&l).is_err());
        }
        let mut rng = Rng::new(7);
        let mut s = SystemConfig::default();
        for _ in 0..4000 {
            let mut l = update_log(rng.below(9) as u8, &[]);
            let mut data = vec![0u8; rng.below(140) as usize];
            rng.fill(&mut data);
            if data.len() >= 64 && rng.below(2) == 0 {
                data[..64].fill(0);
                data[31] = 32;
                data[63] = 32 * (1 + rng.below(2) as u8);
            }
            l.data = Bytes(data);
            let _ = ConfigUpdate::decode(&l);
            let _ = s.apply_log(&l, &c, rng.below(200));
        }
    }
}
