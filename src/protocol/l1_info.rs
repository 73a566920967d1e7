//! The L1-attributes deposit: the first transaction of every L2 block, a call to the L1Block
//! predeploy carrying the L1 origin and fee parameters (op-node `derive/l1_block_info.go`; specs
//! `protocol/deposits.md`, `{ecotone,isthmus,jovian}/l1-attributes.md`).
//!
//! Four calldata formats exist, told apart by their selector: Bedrock (ABI words), Ecotone
//! (packed), Isthmus (+ operator fee), Jovian (+ DA footprint scalar). A fork's activation block
//! still uses the previous format. Also the EIP-4844 blob base fee the Ecotone formats carry.

use std::fmt;

use super::deposit::l1_info_source;
use super::header::Header;
use super::primitives::{Address, Bytes, B256, U256};
use super::system_config::{SystemConfig, SystemConfigError};
use super::tx::DepositTx;
use crate::protocol::rollup::{Fork, RollupConfig};

/// The sender of L1-info deposits.
pub const L1_INFO_DEPOSITOR: Address = Address([
    0xde, 0xad, 0xde, 0xad, 0xde, 0xad, 0xde, 0xad, 0xde, 0xad, 0xde, 0xad, 0xde, 0xad, 0xde, 0xad, 0xde,
    0xad, 0x00, 0x01,
]);
/// The L1Block predeploy.
pub const L1_BLOCK_ADDRESS: Address =
    Address([0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x15]);
/// Gas of the L1-info deposit before Regolith (a system transaction, gas not charged).
pub const L1_INFO_GAS_BEDROCK: u64 = 150_000_000;
/// Gas of the L1-info deposit (and other system deposits) from Regolith.
pub const REGOLITH_SYSTEM_TX_GAS: u64 = 1_000_000;
/// The DA footprint gas scalar used while the SystemConfig holds 0.
pub const DA_FOOTPRINT_GAS_SCALAR_DEFAULT: u16 = 400;

/// EIP-4844 `MIN_BASE_FEE_PER_BLOB_GAS`.
pub const MIN_BLOB_BASE_FEE: u64 = 1;
/// EIP-4844 `BLOB_BASE_FEE_UPDATE_FRACTION` (Cancun).
pub const BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN: u64 = 3_338_477;
/// EIP-7691 `BLOB_BASE_FEE_UPDATE_FRACTION` (Prague).
pub const BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE: u64 = 5_007_716;

/// The calldata layouts of the L1-info deposit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum L1InfoFormat {
    /// `setL1BlockValues(uint64,uint64,uint256,bytes32,uint64,bytes32,uint256,uint256)`.
    #[default]
    Bedrock,
    /// `setL1BlockValuesEcotone()`.
    Ecotone,
    /// `setL1BlockValuesIsthmus()`.
    Isthmus,
    /// `setL1BlockValuesJovian()`.
    Jovian,
}

impl L1InfoFormat {
    /// Every format, oldest first.
    pub const ALL: [L1InfoFormat; 4] =
        [L1InfoFormat::Bedrock, L1InfoFormat::Ecotone, L1InfoFormat::Isthmus, L1InfoFormat::Jovian];

    /// The function selector (first 4 bytes of keccak256 of the signature).
    pub fn selector(self) -> [u8; 4] {
        match self {
            L1InfoFormat::Bedrock => [0x01, 0x5d, 0x8e, 0xb9],
            L1InfoFormat::Ecotone => [0x44, 0x0a, 0x5e, 0x20],
            L1InfoFormat::Isthmus => [0x09, 0x89, 0x99, 0xbe],
            L1InfoFormat::Jovian => [0x3d, 0xb6, 0xbe, 0x2b],
        }
    }

    /// The exact calldata length, selector included.
    pub fn calldata_len(self) -> usize {
        match self {
            L1InfoFormat::Bedrock => 4 + 32 * 8,
            L1InfoFormat::Ecotone => 4 + 32 * 5,
            L1InfoFormat::Isthmus => 4 + 32 * 5 + 4 + 8,
            L1InfoFormat::Jovian => 4 + 32 * 5 + 4 + 8 + 2,
        }
    }

    /// The format of a calldata, by its selector.
    pub fn of(data: &[u8]) -> Option<L1InfoFormat> {
        let sel = data.get(..4)?;
        Self::ALL.into_iter().find(|f| f.selector() == sel)
    }

    /// The format of the L1-info deposit of the L2 block at `l2_time`: a fork's format applies
    /// from the block after its activation block (op-node `is<Fork>ButNotFirstBlock`).
    pub fn at(cfg: &RollupConfig, l2_time: u64) -> L1InfoFormat {
        if after_activation(cfg, Fork::Jovian, l2_time) {
            L1InfoFormat::Jovian
        } else if after_activation(cfg, Fork::Isthmus, l2_time) {
            L1InfoFormat::Isthmus
        } else if after_activation(cfg, Fork::Ecotone, l2_time) {
            L1InfoFormat::Ecotone
        } else {
            L1InfoFormat::Bedrock
        }
    }
}

impl fmt::Display for L1InfoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            L1InfoFormat::Bedrock => "bedrock",
            L1InfoFormat::Ecotone => "ecotone",
            L1InfoFormat::Isthmus => "isthmus",
            L1InfoFormat::Jovian => "jovian",
        })
    }
}

fn after_activation(cfg: &RollupConfig, fork: Fork, t: u64) -> bool {
    cfg.is_active(fork, t) && !cfg.is_activation_block(fork, t)
}

/// Why L1-info calldata could not be decoded or built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L1InfoError {
    /// The calldata does not start with a known selector.
    UnknownSelector(Vec<u8>),
    BadLength {
        format: L1InfoFormat,
        got: usize,
    },
    /// An ABI word of a smaller type has non-zero padding.
    NonZeroPadding(&'static str),
    /// The calldata is valid but not in the format the L2 block time calls for.
    UnexpectedFormat {
        expected: L1InfoFormat,
        got: L1InfoFormat,
    },
    /// The SystemConfig scalar cannot be read as Ecotone scalars.
    SystemConfig(SystemConfigError),
}

impl fmt::Display for L1InfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            L1InfoError::UnknownSelector(s) => {
                write!(f, "invalid function signature {}", Bytes(s.clone()))
            }
            L1InfoError::BadLength { format, got } => write!(
                f,
                "{format} l1 block info data is unexpected length: {got}, want {}",
                format.calldata_len()
            ),
            L1InfoError::NonZeroPadding(field) => write!(f, "{field} padding was not empty"),
            L1InfoError::UnexpectedFormat { expected, got } => {
                write!(f, "l1 block info in {got} format, expected {expected}")
            }
            L1InfoError::SystemConfig(e) => write!(f, "l1 block info: {e}"),
        }
    }
}

impl std::error::Error for L1InfoError {}

/// The values of an L1-info deposit. Fields a format does not carry stay zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct L1BlockInfo {
    pub format: L1InfoFormat,
    pub number: u64,
    pub time: u64,
    pub base_fee: U256,
    pub block_hash: B256,
    /// The number of L2 blocks since the start of the epoch.
    pub sequence_number: u64,
    pub batcher_addr: Address,
    /// Bedrock only.
    pub l1_fee_overhead: B256,
    /// Bedrock only.
    pub l1_fee_scalar: B256,
    /// From Ecotone.
    pub blob_base_fee: U256,
    pub base_fee_scalar: u32,
    pub blob_base_fee_scalar: u32,
    /// From Isthmus.
    pub operator_fee_scalar: u32,
    pub operator_fee_constant: u64,
    /// From Jovian.
    pub da_footprint_gas_scalar: u16,
}

fn word_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&[0; 24]);
    out.extend_from_slice(&v.to_be_bytes());
}

fn word_address(out: &mut Vec<u8>, a: &Address) {
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&a.0);
}

/// A cursor over calldata whose length was checked; reads past the end yield zeros.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        match self.0.split_first_chunk::<N>() {
            Some((head, rest)) => {
                self.0 = rest;
                *head
            }
            None => [0; N],
        }
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take())
    }

    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take())
    }

    fn b256(&mut self) -> B256 {
        B256(self.take())
    }

    fn word_u64(&mut self, field: &'static str) -> Result<u64, L1InfoError> {
        let pad: [u8; 24] = self.take();
        if pad != [0; 24] {
            return Err(L1InfoError::NonZeroPadding(field));
        }
        Ok(self.u64())
    }

    fn word_address(&mut self, field: &'static str) -> Result<Address, L1InfoError> {
        let pad: [u8; 12] = self.take();
        if pad != [0; 12] {
            return Err(L1InfoError::NonZeroPadding(field));
        }
        Ok(Address(self.take()))
    }
}

impl L1BlockInfo {
    /// The calldata in `self.format`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.format.calldata_len());
        out.extend_from_slice(&self.format.selector());
        if self.format == L1InfoFormat::Bedrock {
            word_u64(&mut out, self.number);
            word_u64(&mut out, self.time);
            out.extend_from_slice(&self.base_fee.0);
            out.extend_from_slice(&self.block_hash.0);
            word_u64(&mut out, self.sequence_number);
            word_address(&mut out, &self.batcher_addr);
            out.extend_from_slice(&self.l1_fee_overhead.0);
            out.extend_from_slice(&self.l1_fee_scalar.0);
            return out;
        }
        out.extend_from_slice(&self.base_fee_scalar.to_be_bytes());
        out.extend_from_slice(&self.blob_base_fee_scalar.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.time.to_be_bytes());
        out.extend_from_slice(&self.number.to_be_bytes());
        out.extend_from_slice(&self.base_fee.0);
        out.extend_from_slice(&self.blob_base_fee.0);
        out.extend_from_slice(&self.block_hash.0);
        word_address(&mut out, &self.batcher_addr);
        if self.format >= L1InfoFormat::Isthmus {
            out.extend_from_slice(&self.operator_fee_scalar.to_be_bytes());
            out.extend_from_slice(&self.operator_fee_constant.to_be_bytes());
        }
        if self.format == L1InfoFormat::Jovian {
            out.extend_from_slice(&self.da_footprint_gas_scalar.to_be_bytes());
        }
        out
    }

    /// Decodes calldata of any format, chosen by its selector; the length must match exactly.
    pub fn decode(data: &[u8]) -> Result<L1BlockInfo, L1InfoError> {
        let format = L1InfoFormat::of(data)
            .ok_or_else(|| L1InfoError::UnknownSelector(data.iter().take(4).copied().collect()))?;
        if data.len() != format.calldata_len() {
            return Err(L1InfoError::BadLength { format, got: data.len() });
        }
        let mut r = Reader(data.get(4..).unwrap_or_default());
        let mut info = L1BlockInfo { format, ..Default::default() };
        if format == L1InfoFormat::Bedrock {
            info.number = r.word_u64("number")?;
            info.time = r.word_u64("time")?;
            info.base_fee = U256(r.take());
            info.block_hash = r.b256();
            info.sequence_number = r.word_u64("sequence number")?;
            info.batcher_addr = r.word_address("batcher")?;
            info.l1_fee_overhead = r.b256();
            info.l1_fee_scalar = r.b256();
            return Ok(info);
        }
        info.base_fee_scalar = r.u32();
        info.blob_base_fee_scalar = r.u32();
        info.sequence_number = r.u64();
        info.time = r.u64();
        info.number = r.u64();
        info.base_fee = U256(r.take());
        info.blob_base_fee = U256(r.take());
        info.block_hash = r.b256();
        info.batcher_addr = r.word_address("batcher")?;
        if format >= L1InfoFormat::Isthmus {
            info.operator_fee_scalar = r.u32();
            info.operator_fee_constant = r.u64();
        }
        if format == L1InfoFormat::Jovian {
            info.da_footprint_gas_scalar = u16::from_be_bytes(r.take());
        }
        Ok(info)
    }

    /// Decodes the L1-info calldata of the L2 block at `l2_time`, requiring the format that
    /// block must use (op-node `L1BlockInfoFromBytes`).
    pub fn decode_at(cfg: &RollupConfig, l2_time: u64, data: &[u8]) -> Result<L1BlockInfo, L1InfoError> {
        let expected = L1InfoFormat::at(cfg, l2_time);
        let info = Self::decode(data)?;
        if info.format != expected {
            return Err(L1InfoError::UnexpectedFormat { expected, got: info.format });
        }
        Ok(info)
    }
}

/// The L1 origin block fields an L1-info deposit carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct L1Origin {
    pub number: u64,
    pub time: u64,
    pub base_fee: U256,
    pub hash: B256,
    /// None before Cancun on L1 (the deposit then carries the minimum, 1).
    pub blob_base_fee: Option<U256>,
}

impl L1Origin {
    /// The fields of an L1 header; the blob base fee uses the update fraction the caller picks
    /// for that L1 block (Cancun, Prague or a later blob schedule).
    pub fn from_header(h: &Header, hash: B256, blob_update_fraction: u64) -> L1Origin {
        L1Origin {
            number: h.number,
            time: h.timestamp,
            base_fee: U256::from_u64(h.base_fee_per_gas.unwrap_or_default()),
            hash,
            blob_base_fee: h.excess_blob_gas.map(|e| blob_base_fee(e, blob_update_fraction)),
        }
    }
}

/// Builds the L1-info deposit of the L2 block at `l2_time` (op-node `L1InfoDeposit`).
pub fn l1_info_deposit(
    cfg: &RollupConfig,
    sys: &SystemConfig,
    seq_number: u64,
    l1: &L1Origin,
    l2_time: u64,
) -> Result<DepositTx, L1InfoError> {
    let mut info = L1BlockInfo {
        format: L1InfoFormat::at(cfg, l2_time),
        number: l1.number,
        time: l1.time,
        base_fee: l1.base_fee,
        block_hash: l1.hash,
        sequence_number: seq_number,
        batcher_addr: sys.batcher_addr,
        ..Default::default()
    };
    if after_activation(cfg, Fork::Ecotone, l2_time) {
        info.blob_base_fee = l1.blob_base_fee.unwrap_or(U256::from_u64(MIN_BLOB_BASE_FEE));
        let scalars = sys.ecotone_scalars().map_err(L1InfoError::SystemConfig)?;
        info.base_fee_scalar = scalars.base_fee_scalar;
        info.blob_base_fee_scalar = scalars.blob_base_fee_scalar;
    } else {
        info.l1_fee_overhead = sys.overhead;
        info.l1_fee_scalar = sys.scalar;
    }
    if after_activation(cfg, Fork::Isthmus, l2_time) {
        let fee = sys.operator_fee();
        info.operator_fee_scalar = fee.scalar;
        info.operator_fee_constant = fee.constant;
    }
    if after_activation(cfg, Fork::Jovian, l2_time) {
        info.da_footprint_gas_scalar = match sys.da_footprint_gas_scalar {
            0 => DA_FOOTPRINT_GAS_SCALAR_DEFAULT,
            s => s,
        };
    }
    let regolith = cfg.is_active(Fork::Regolith, l2_time);
    Ok(DepositTx {
        source_hash: l1_info_source(&l1.hash, seq_number),
        from: L1_INFO_DEPOSITOR,
        to: Some(L1_BLOCK_ADDRESS),
        mint: U256::ZERO,
        value: U256::ZERO,
        gas_limit: if regolith { REGOLITH_SYSTEM_TX_GAS } else { L1_INFO_GAS_BEDROCK },
        is_system_tx: !regolith,
        input: Bytes(info.encode()),
    })
}

/// A 512-bit unsigned integer, little-endian limbs: room for the blob fee's Taylor series.
#[derive(Clone, Copy)]
struct Wide([u64; 8]);

impl Wide {
    fn mul_small(&mut self, m: u64) {
        let mut carry = 0u128;
        for limb in self.0.iter_mut() {
            let v = *limb as u128 * m as u128 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
    }

    fn div_small(&mut self, d: u64) {
        let mut rem = 0u128;
        for limb in self.0.iter_mut().rev() {
            let cur = rem << 64 | *limb as u128;
            *limb = (cur / d as u128) as u64;
            rem = cur % d as u128;
        }
    }

    fn add(&mut self, o: &Wide) {
        let mut carry = 0u128;
        for (a, b) in self.0.iter_mut().zip(o.0) {
            let v = *a as u128 + b as u128 + carry;
            *a = v as u64;
            carry = v >> 64;
        }
    }

    fn is_zero(&self) -> bool {
        self.0.iter().all(|l| *l == 0)
    }

    /// True when the value needs more than `limbs` limbs.
    fn exceeds(&self, limbs: usize) -> bool {
        self.0.iter().skip(limbs).any(|l| *l != 0)
    }
}

/// The blob base fee for an L1 block's excess blob gas: EIP-4844
/// `fake_exponential(MIN_BASE_FEE_PER_BLOB_GAS, excess_blob_gas, update_fraction)`.
/// The caller picks the fraction (Cancun, Prague, ...). Values beyond 256 bits, unreachable on a
/// real chain, and a zero fraction saturate to `U256::MAX`.
pub fn blob_base_fee(excess_blob_gas: u64, update_fraction: u64) -> U256 {
    if update_fraction == 0 {
        return U256::MAX;
    }
    let mut acc = Wide([0; 8]);
    acc.0[0] = MIN_BLOB_BASE_FEE * update_fraction;
    let mut output = Wide([0; 8]);
    let mut i = 1u64;
    while !acc.is_zero() {
        output.add(&acc);
        // output / fraction >= 2^320 / 2^64 overflows 256 bits; stop before the terms grow
        // past what 512 bits hold (acc <= output < 2^320, times a u64).
        if output.exceeds(5) {
            return U256::MAX;
        }
        acc.mul_small(excess_blob_gas);
        acc.div_small(update_fraction);
        acc.div_small(i);
        i += 1;
    }
    output.div_small(update_fraction);
    if output.exceeds(4) {
        return U256::MAX;
    }
    let mut be = [0u8; 32];
    for (k, limb) in output.0.iter().take(4).enumerate() {
        be[24 - 8 * k..32 - 8 * k].copy_from_slice(&limb.to_be_bytes());
    }
    U256(be)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::primitives::keccak256;
    use crate::protocol::rollup::tests_support::BASE_JSON;
    use crate::rng::Rng;

    fn cfg() -> RollupConfig {
        let mut c = RollupConfig::from_json(BASE_JSON).unwrap();
        c.apply_overrides(&[
            (Fork::Canyon, 100),
            (Fork::Delta, 100),
            (Fork::Ecotone, 100),
            (Fork::Fjord, 100),
            (Fork::Granite, 100),
            (Fork::Holocene, 100),
            (Fork::Isthmus, 200),
            (Fork::Jovian, 300),
        ]);
        c
    }

    fn sample(format: L1InfoFormat) -> L1BlockInfo {
        let mut i = L1BlockInfo {
            format,
            number: 123,
            time: 456,
            base_fee: U256::from_u64(789),
            block_hash: B256([0xab; 32]),
            sequence_number: 3,
            batcher_addr: Address([0xcd; 20]),
            ..Default::default()
        };
        if format == L1InfoFormat::Bedrock {
            i.l1_fee_overhead = B256([1; 32]);
            i.l1_fee_scalar = B256([2; 32]);
        } else {
            i.blob_base_fee = U256::from_u64(5);
            i.base_fee_scalar = 6;
            i.blob_base_fee_scalar = 7;
        }
        if format >= L1InfoFormat::Isthmus {
            i.operator_fee_scalar = 8;
            i.operator_fee_constant = 9;
        }
        if format == L1InfoFormat::Jovian {
            i.da_footprint_gas_scalar = 10;
        }
        i
    }

    #[test]
    fn selectors_are_keccak_of_signatures() {
        let sigs = [
            "setL1BlockValues(uint64,uint64,uint256,bytes32,uint64,bytes32,uint256,uint256)",
            "setL1BlockValuesEcotone()",
            "setL1BlockValuesIsthmus()",
            "setL1BlockValuesJovian()",
        ];
        for (f, sig) in L1InfoFormat::ALL.into_iter().zip(sigs) {
            assert_eq!(keccak256(sig.as_bytes()).0[..4], f.selector());
        }
    }

    #[test]
    fn round_trips_every_format() {
        for f in L1InfoFormat::ALL {
            let info = sample(f);
            let data = info.encode();
            assert_eq!(data.len(), f.calldata_len());
            assert_eq!(L1BlockInfo::decode(&data), Ok(info));
        }
    }

    #[test]
    fn format_follows_first_block_rules() {
        let c = cfg();
        assert_eq!(L1InfoFormat::at(&c, 98), L1InfoFormat::Bedrock);
        assert_eq!(L1InfoFormat::at(&c, 100), L1InfoFormat::Bedrock);
        assert_eq!(L1InfoFormat::at(&c, 102), L1InfoFormat::Ecotone);
        assert_eq!(L1InfoFormat::at(&c, 200), L1InfoFormat::Ecotone);
        assert_eq!(L1InfoFormat::at(&c, 202), L1InfoFormat::Isthmus);
        assert_eq!(L1InfoFormat::at(&c, 300), L1InfoFormat::Isthmus);
        assert_eq!(L1InfoFormat::at(&c, 302), L1InfoFormat::Jovian);
        let data = sample(L1InfoFormat::Ecotone).encode();
        assert!(L1BlockInfo::decode_at(&c, 150, &data).is_ok());
        assert_eq!(
            L1BlockInfo::decode_at(&c, 100, &data),
            Err(L1InfoError::UnexpectedFormat {
                expected: L1InfoFormat::Bedrock,
                got: L1InfoFormat::Ecotone
            })
        );
    }

    #[test]
    fn deposit_uses_system_config_by_fork() {
        let c = cfg();
        let mut sys = c.genesis.system_config;
        sys.scalar = B256::ZERO;
        sys.scalar.0[0] = 1;
        sys.scalar.0[27] = 2; // blob base fee scalar 2
        sys.scalar.0[31] = 3; // base fee scalar 3
        sys.operator_fee_params.0[23] = 4;
        sys.operator_fee_params.0[31] = 5;
        let l1 = L1Origin {
            number: 10,
            time: 20,
            base_fee: U256::from_u64(30),
            hash: B256([9; 32]),
            blob_base_fee: None,
        };
        let info = |t| {
            let d = l1_info_deposit(&c, &sys, 2, &l1, t).unwrap();
            assert_eq!(d.source_hash, l1_info_source(&l1.hash, 2));
            assert_eq!((d.gas_limit, d.is_system_tx), (1_000_000, false));
            L1BlockInfo::decode(&d.input).unwrap()
        };
        let bedrock = info(100);
        assert_eq!(bedrock.l1_fee_scalar, sys.scalar);
        let ecotone = info(102);
        assert_eq!(
            (ecotone.base_fee_scalar, ecotone.blob_base_fee_scalar, ecotone.blob_base_fee),
            (3, 2, U256::from_u64(1))
        );
        let jovian = info(302);
        assert_eq!(
            (jovian.operator_fee_scalar, jovian.operator_fee_constant, jovian.da_footprint_gas_scalar),
            (4, 5, DA_FOOTPRINT_GAS_SCALAR_DEFAULT)
        );
        sys.scalar.0[0] = 2;
        assert!(matches!(l1_info_deposit(&c, &sys, 0, &l1, 102), Err(L1InfoError::SystemConfig(_))));
        let mut pre_regolith = c.clone();
        pre_regolith.forks.regolith_time = Some(1000);
        let d = l1_info_deposit(&pre_regolith, &sys, 0, &l1, 10).unwrap();
        assert_eq!((d.gas_limit, d.is_system_tx), (150_000_000, true));
    }

    #[test]
    fn rejects_padding_and_lengths() {
        let mut data = sample(L1InfoFormat::Bedrock).encode();
        data[4] = 1;
        assert_eq!(L1BlockInfo::decode(&data), Err(L1InfoError::NonZeroPadding("number")));
        let mut data = sample(L1InfoFormat::Jovian).encode();
        data[4 + 128] = 1;
        assert_eq!(L1BlockInfo::decode(&data), Err(L1InfoError::NonZeroPadding("batcher")));
        data.push(0);
        assert_eq!(
            L1BlockInfo::decode(&data),
            Err(L1InfoError::BadLength { format: L1InfoFormat::Jovian, got: 179 })
        );
        assert!(matches!(L1BlockInfo::decode(&[1, 2, 3, 4]), Err(L1InfoError::UnknownSelector(_))));
    }

    #[test]
    fn truncated_and_random_never_panic() {
        for f in L1InfoFormat::ALL {
            let data = sample(f).encode();
            for n in 0..data.len() {
                assert!(L1BlockInfo::decode(&data[..n]).is_err());
            }
        }
        let mut rng = Rng::new(0x11);
        for _ in 0..4000 {
            let f = L1InfoFormat::ALL[rng.below(4) as usize];
            let mut b = vec![0u8; f.calldata_len() + rng.below(3) as usize - 1];
            rng.fill(&mut b);
            b[..4].copy_from_slice(&f.selector());
            if let Ok(info) = L1BlockInfo::decode(&b) {
                assert_eq!(info.encode(), b);
            }
        }
    }

    #[test]
    fn blob_base_fee_matches_eip_4844() {
        // geth eip4844 TestFakeExponential (factor 1) and TestCalcBlobFee.
        for (num, den, want) in [
            (0, 1, 1u64),
            (2, 1, 6),
            (4, 2, 6),
            (3, 1, 16),
            (6, 2, 18),
            (4, 1, 49),
            (8, 2, 50),
            (5, 1, 136),
            (5, 2, 11),
            (50_000_000, 2_225_652, 5_709_098_764),
            (380_928, 3_338_477, 1),
            (2_314_057, 3_338_477, 1),
            (2_314_058, 3_338_477, 2),
            (10 * 1024 * 1024, 3_338_477, 23),
        ] {
            assert_eq!(blob_base_fee(num, den), U256::from_u64(want), "{num}/{den}");
        }
        // op-service TestCalcBlobFeeCancun and TestCalcBlobFeeAcrossForksWithFixedExcess.
        assert_eq!(
            blob_base_fee(20 * BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN, BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN),
            U256::from_u64(485_165_195)
        );
        assert_eq!(blob_base_fee(40_000_000, BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN), U256::from_u64(159_773));
        assert_eq!(blob_base_fee(40_000_000, BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE), U256::from_u64(2_944));
        assert_eq!(blob_base_fee(u64::MAX, 1), U256::MAX);
        assert_eq!(blob_base_fee(u64::MAX, 3_338_477), U256::MAX);
        assert_eq!(blob_base_fee(1, 0), U256::MAX);
        // e^177 * 1 still fits 256 bits; e^178 does not.
        assert!(blob_base_fee(177 * 1000, 1000) < U256::MAX);
        assert_eq!(blob_base_fee(178 * 1000, 1000), U256::MAX);
    }
}
