//! The Holocene/Jovian EIP-1559 parameters: the 8-byte `eip1559Params` of the SystemConfig and
//! payload attributes, and the L2 header `extraData` that carries them (specs
//! `holocene/exec-engine.md`, `jovian/exec-engine.md`; op-geth `consensus/misc/eip1559`,
//! op-alloy `eip1559.rs`).
//!
//! Holocene extraData: `0x00 ++ denominator (u32 BE) ++ elasticity (u32 BE)`, 9 bytes.
//! Jovian extraData: `0x01 ++ denominator ++ elasticity ++ minBaseFee (u64 BE)`, 17 bytes.
//! All-zero params mean "the chain's pre-Holocene defaults" (Canyon denominator, elasticity).

use std::fmt;

use super::primitives::B64;
use crate::protocol::rollup::{ChainOpConfig, Fork, RollupConfig};

/// The version byte of Holocene extraData.
pub const HOLOCENE_EXTRA_DATA_VERSION: u8 = 0;
/// The version byte of Jovian extraData.
pub const JOVIAN_EXTRA_DATA_VERSION: u8 = 1;
/// The length of Holocene extraData.
pub const HOLOCENE_EXTRA_DATA_LEN: usize = 9;
/// The length of Jovian extraData.
pub const JOVIAN_EXTRA_DATA_LEN: usize = 17;

/// Why EIP-1559 params or an extraData field are invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eip1559Error {
    /// A zero denominator is only allowed together with a zero elasticity.
    ZeroDenominator {
        elasticity: u32,
    },
    BadLength {
        expected: usize,
        got: usize,
    },
    BadVersion {
        expected: u8,
        got: u8,
    },
    /// A chain default does not fit the 32-bit field.
    DenominatorOverflow(u64),
    ElasticityOverflow(u64),
    /// Before Holocene the extraData must be empty.
    NotEmptyBeforeHolocene(usize),
}

impl fmt::Display for Eip1559Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Eip1559Error::ZeroDenominator { elasticity } => write!(
                f,
                "holocene params cannot have a 0 denominator unless elasticity is also 0 (elasticity {elasticity})"
            ),
            Eip1559Error::BadLength { expected, got } => {
                write!(f, "extraData should be {expected} bytes, got {got}")
            }
            Eip1559Error::BadVersion { expected, got } => {
                write!(f, "extraData version byte should be {expected}, got {got}")
            }
            Eip1559Error::DenominatorOverflow(v) => {
                write!(f, "default EIP-1559 denominator {v} exceeds 32 bits")
            }
            Eip1559Error::ElasticityOverflow(v) => {
                write!(f, "default EIP-1559 elasticity {v} exceeds 32 bits")
            }
            Eip1559Error::NotEmptyBeforeHolocene(n) => {
                write!(f, "extraData must be empty before Holocene, got {n} bytes")
            }
        }
    }
}

impl std::error::Error for Eip1559Error {}

/// The base-fee change denominator and elasticity multiplier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Eip1559Params {
    pub denominator: u32,
    pub elasticity: u32,
}

impl Eip1559Params {
    /// Splits the 8-byte form `denominator ++ elasticity` (no validation).
    pub fn from_b64(p: B64) -> Self {
        let [d0, d1, d2, d3, e0, e1, e2, e3] = p.0;
        Eip1559Params {
            denominator: u32::from_be_bytes([d0, d1, d2, d3]),
            elasticity: u32::from_be_bytes([e0, e1, e2, e3]),
        }
    }

    /// Joins the params into the 8-byte form.
    pub fn to_b64(self) -> B64 {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.denominator.to_be_bytes());
        b[4..].copy_from_slice(&self.elasticity.to_be_bytes());
        B64(b)
    }

    /// True for the all-zero params that stand for the chain defaults.
    pub fn is_zero(self) -> bool {
        self.denominator == 0 && self.elasticity == 0
    }

    /// Checks the Holocene rule: a zero denominator needs a zero elasticity.
    pub fn validate(self) -> Result<(), Eip1559Error> {
        if self.denominator == 0 && self.elasticity != 0 {
            return Err(Eip1559Error::ZeroDenominator { elasticity: self.elasticity });
        }
        Ok(())
    }

    /// Replaces all-zero params by the chain's Canyon defaults, as the execution engine does.
    pub fn or_default(self, chain: &ChainOpConfig) -> Result<Self, Eip1559Error> {
        if !self.is_zero() {
            return Ok(self);
        }
        let d = chain.eip1559_denominator_canyon;
        let e = chain.eip1559_elasticity;
        Ok(Eip1559Params {
            denominator: u32::try_from(d).map_err(|_| Eip1559Error::DenominatorOverflow(d))?,
            elasticity: u32::try_from(e).map_err(|_| Eip1559Error::ElasticityOverflow(e))?,
        })
    }
}

/// The EIP-1559 content of an L2 header's extraData; `min_base_fee` is present from Jovian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtraData {
    pub params: Eip1559Params,
    pub min_base_fee: Option<u64>,
}

impl ExtraData {
    /// The extraData a block built from these payload attributes carries: zero params become
    /// the chain defaults; `min_base_fee` is given from Jovian on.
    pub fn from_attributes(
        params: B64,
        min_base_fee: Option<u64>,
        chain: &ChainOpConfig,
    ) -> Result<Self, Eip1559Error> {
        let params = Eip1559Params::from_b64(params);
        params.validate()?;
        Ok(ExtraData { params: params.or_default(chain)?, min_base_fee })
    }

    /// The 9-byte Holocene or, with a minimum base fee, 17-byte Jovian encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(JOVIAN_EXTRA_DATA_LEN);
        out.push(match self.min_base_fee {
            None => HOLOCENE_EXTRA_DATA_VERSION,
            Some(_) => JOVIAN_EXTRA_DATA_VERSION,
        });
        out.extend_from_slice(&self.params.to_b64().0);
        if let Some(m) = self.min_base_fee {
            out.extend_from_slice(&m.to_be_bytes());
        }
        out
    }

    /// Decodes either format, chosen by the version byte.
    pub fn decode(extra: &[u8]) -> Result<Self, Eip1559Error> {
        match extra.first() {
            Some(&JOVIAN_EXTRA_DATA_VERSION) => Self::decode_jovian(extra),
            _ => Self::decode_holocene(extra),
        }
    }

    /// Decodes the 9-byte Holocene format (op-geth `ValidateHoloceneExtraData`).
    pub fn decode_holocene(extra: &[u8]) -> Result<Self, Eip1559Error> {
        let params = versioned(extra, HOLOCENE_EXTRA_DATA_VERSION, HOLOCENE_EXTRA_DATA_LEN)?;
        Ok(ExtraData { params, min_base_fee: None })
    }

    /// Decodes the 17-byte Jovian format (op-geth `ValidateJovianExtraData`).
    pub fn decode_jovian(extra: &[u8]) -> Result<Self, Eip1559Error> {
        let params = versioned(extra, JOVIAN_EXTRA_DATA_VERSION, JOVIAN_EXTRA_DATA_LEN)?;
        let mut m = [0u8; 8];
        m.copy_from_slice(extra.get(9..17).unwrap_or(&[0; 8]));
        Ok(ExtraData { params, min_base_fee: Some(u64::from_be_bytes(m)) })
    }

    /// Validates and decodes the extraData of an L2 block at time `t` by the forks active then
    /// (op-geth `ValidateOptimismExtraData` + `DecodeOptimismExtraData`); None before Holocene.
    pub fn decode_at(cfg: &RollupConfig, t: u64, extra: &[u8]) -> Result<Option<Self>, Eip1559Error> {
        if cfg.is_active(Fork::Jovian, t) {
            Self::decode_jovian(extra).map(Some)
        } else if cfg.is_active(Fork::Holocene, t) {
            Self::decode_holocene(extra).map(Some)
        } else if !extra.is_empty() {
            Err(Eip1559Error::NotEmptyBeforeHolocene(extra.len()))
        } else {
            Ok(None)
        }
    }
}

fn versioned(extra: &[u8], version: u8, len: usize) -> Result<Eip1559Params, Eip1559Error> {
    if extra.len() != len {
        return Err(Eip1559Error::BadLength { expected: len, got: extra.len() });
    }
    let got = extra.first().copied().unwrap_or_default();
    if got != version {
        return Err(Eip1559Error::BadVersion { expected: version, got });
    }
    let params = extra.get(1..9).and_then(B64::from_slice).map(Eip1559Params::from_b64).unwrap_or_default();
    params.validate()?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn encodes_and_defaults() {
        let chain = ChainOpConfig::default();
        let e = ExtraData::from_attributes(B64::ZERO, None, &chain).unwrap();
        assert_eq!(e.encode(), [0, 0, 0, 0, 250, 0, 0, 0, 6]);
        let e = ExtraData::from_attributes(B64([0, 0, 0, 8, 0, 0, 0, 2]), Some(7), &chain).unwrap();
        assert_eq!(e.encode(), [1, 0, 0, 0, 8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(ExtraData::decode(&e.encode()), Ok(e));
        assert_eq!(
            ExtraData::from_attributes(B64([0, 0, 0, 0, 0, 0, 0, 2]), None, &chain),
            Err(Eip1559Error::ZeroDenominator { elasticity: 2 })
        );
        let huge = ChainOpConfig { eip1559_denominator_canyon: 1 << 32, ..chain };
        assert_eq!(
            ExtraData::from_attributes(B64::ZERO, None, &huge),
            Err(Eip1559Error::DenominatorOverflow(1 << 32))
        );
    }

    #[test]
    fn rejects_bad_extra_data() {
        assert_eq!(
            ExtraData::decode_holocene(&[1, 0, 0, 0, 8, 0, 0, 0, 8]),
            Err(Eip1559Error::BadVersion { expected: 0, got: 1 })
        );
        assert_eq!(
            ExtraData::decode_holocene(&[0, 0, 0, 0, 0, 0, 0, 0, 8]),
            Err(Eip1559Error::ZeroDenominator { elasticity: 8 })
        );
        // All-zero params in a header are well-formed (op-geth accepts them).
        assert!(ExtraData::decode_holocene(&[0; 9]).is_ok());
    }

    #[test]
    fn truncated_and_random_never_panic() {
        let full = [1u8, 0, 0, 0, 250, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 1, 0];
        for n in 0..full.len() {
            assert!(ExtraData::decode_jovian(&full[..n]).is_err());
            let _ = ExtraData::decode(&full[..n]);
        }
        let mut rng = Rng::new(1559);
        for _ in 0..4000 {
            let mut b = vec![0u8; rng.below(20) as usize];
            rng.fill(&mut b);
            if let Ok(e) = ExtraData::decode(&b) {
                assert_eq!(e.encode(), b);
            }
        }
    }
}
