//! The rollup configuration (op-node `rollup.Config`): genesis, timing, fork activation times,
//! addresses, and the protocol constants that change by fork. Loads op-node's `rollup.json`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::protocol::block_ref::BlockId;
use crate::protocol::primitives::{Address, B256};
use crate::protocol::system_config::SystemConfig;

/// `MAX_RLP_BYTES_PER_CHANNEL` before Fjord.
pub const MAX_RLP_BYTES_PER_CHANNEL_BEDROCK: u64 = 10_000_000;
/// `MAX_RLP_BYTES_PER_CHANNEL` from Fjord.
pub const MAX_RLP_BYTES_PER_CHANNEL_FJORD: u64 = 100_000_000;
/// `MAX_CHANNEL_BANK_SIZE` before Fjord.
pub const MAX_CHANNEL_BANK_SIZE_BEDROCK: u64 = 100_000_000;
/// `MAX_CHANNEL_BANK_SIZE` from Fjord.
pub const MAX_CHANNEL_BANK_SIZE_FJORD: u64 = 1_000_000_000;
/// The constant max sequencer drift from Fjord.
pub const MAX_SEQUENCER_DRIFT_FJORD: u64 = 1800;
/// `CHANNEL_TIMEOUT` from Granite.
pub const CHANNEL_TIMEOUT_GRANITE: u64 = 50;

/// The network upgrades op-lite knows, in activation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fork {
    Regolith,
    Canyon,
    Delta,
    Ecotone,
    Fjord,
    Granite,
    Holocene,
    Isthmus,
    Jovian,
    Karst,
    Interop,
}

impl Fork {
    /// Every fork in order.
    pub const ALL: [Fork; 11] = [
        Fork::Regolith,
        Fork::Canyon,
        Fork::Delta,
        Fork::Ecotone,
        Fork::Fjord,
        Fork::Granite,
        Fork::Holocene,
        Fork::Isthmus,
        Fork::Jovian,
        Fork::Karst,
        Fork::Interop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fork::Regolith => "regolith",
            Fork::Canyon => "canyon",
            Fork::Delta => "delta",
            Fork::Ecotone => "ecotone",
            Fork::Fjord => "fjord",
            Fork::Granite => "granite",
            Fork::Holocene => "holocene",
            Fork::Isthmus => "isthmus",
            Fork::Jovian => "jovian",
            Fork::Karst => "karst",
            Fork::Interop => "interop",
        }
    }
}

impl fmt::Display for Fork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Activation timestamps; `None` means not scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ForkTimes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regolith_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canyon_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecotone_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fjord_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granite_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holocene_time: Option<u64>,
    /// L1 (not L2) fork: from this L2 time the L1 blob base fee uses Prague's update fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pectra_blob_schedule_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isthmus_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jovian_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub karst_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interop_time: Option<u64>,
}

impl ForkTimes {
    pub fn get(&self, fork: Fork) -> Option<u64> {
        match fork {
            Fork::Regolith => self.regolith_time,
            Fork::Canyon => self.canyon_time,
            Fork::Delta => self.delta_time,
            Fork::Ecotone => self.ecotone_time,
            Fork::Fjord => self.fjord_time,
            Fork::Granite => self.granite_time,
            Fork::Holocene => self.holocene_time,
            Fork::Isthmus => self.isthmus_time,
            Fork::Jovian => self.jovian_time,
            Fork::Karst => self.karst_time,
            Fork::Interop => self.interop_time,
        }
    }

    pub fn set(&mut self, fork: Fork, t: Option<u64>) {
        let slot = match fork {
            Fork::Regolith => &mut self.regolith_time,
            Fork::Canyon => &mut self.canyon_time,
            Fork::Delta => &mut self.delta_time,
            Fork::Ecotone => &mut self.ecotone_time,
            Fork::Fjord => &mut self.fjord_time,
            Fork::Granite => &mut self.granite_time,
            Fork::Holocene => &mut self.holocene_time,
            Fork::Isthmus => &mut self.isthmus_time,
            Fork::Jovian => &mut self.jovian_time,
            Fork::Karst => &mut self.karst_time,
            Fork::Interop => &mut self.interop_time,
        };
        *slot = t;
    }
}

/// The genesis anchor of the rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Genesis {
    pub l1: BlockId,
    pub l2: BlockId,
    pub l2_time: u64,
    pub system_config: SystemConfig,
}

/// EIP-1559 parameters of the L2 chain (op-geth `params.OptimismConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainOpConfig {
    pub eip1559_elasticity: u64,
    pub eip1559_denominator: u64,
    pub eip1559_denominator_canyon: u64,
}

impl Default for ChainOpConfig {
    fn default() -> Self {
        ChainOpConfig { eip1559_elasticity: 6, eip1559_denominator: 50, eip1559_denominator_canyon: 250 }
    }
}

/// The full rollup configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupConfig {
    pub genesis: Genesis,
    pub block_time: u64,
    /// Pre-Fjord max sequencer drift (seconds).
    #[serde(default)]
    pub max_sequencer_drift: u64,
    pub seq_window_size: u64,
    /// Pre-Granite channel timeout (L1 blocks).
    #[serde(rename = "channel_timeout")]
    pub channel_timeout_bedrock: u64,
    pub l1_chain_id: u64,
    pub l2_chain_id: u64,
    #[serde(flatten)]
    pub forks: ForkTimes,
    pub batch_inbox_address: Address,
    pub deposit_contract_address: Address,
    pub l1_system_config_address: Address,
    #[serde(default)]
    pub protocol_versions_address: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_op_config: Option<ChainOpConfig>,
    /// Karst: keep the gas limit of the Karst upgrade transactions in the activation block.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_karst_upgrade_gas: bool,
    /// Alt-DA is not supported by op-lite; the field is kept to reject such configs clearly (and
    /// printed in a built-in network's rollup.json as op-node prints it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_da: Option<serde_json::Value>,
}

/// op-lite's ranges for the rollup config's numbers, far beyond any published chain's (2 s
/// blocks, a 3,600-block window, 600 s drift, 300-block channel timeout), so that every
/// timestamp and block-number sum the node makes stays in range.
pub const MAX_BLOCK_TIME: u64 = 3600;
/// Largest sequencing window (L1 blocks): 4.5 months of 12 s blocks.
pub const MAX_SEQ_WINDOW_SIZE: u64 = 1_000_000;
/// Largest pre-Fjord max sequencer drift (seconds): a week.
pub const MAX_SEQUENCER_DRIFT: u64 = 7 * 24 * 3600;
/// Largest pre-Granite channel timeout (L1 blocks).
pub const MAX_CHANNEL_TIMEOUT: u64 = 1_000_000;
/// Latest L2 genesis time (unix seconds, year 36812).
pub const MAX_GENESIS_TIME: u64 = 1 << 40;

/// Why a rollup config is unusable (op-node `cfg.Check()` and loading errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    BlockTimeZero,
    MissingChannelTimeout,
    InvalidSeqWindowSize,
    InvalidMaxSeqDrift,
    MissingGenesisL1Hash,
    MissingGenesisL2Hash,
    GenesisHashesSame,
    MissingGenesisL2Time,
    MissingBatcherAddr,
    MissingScalar,
    MissingGasLimit,
    MissingBatchInboxAddress,
    MissingDepositContractAddress,
    MissingL1ChainId,
    MissingL2ChainId,
    ChainIdsSame,
    ForkPriorMissing {
        fork: Fork,
        prior: Fork,
    },
    ForkOrder {
        fork: Fork,
        time: u64,
        prior: Fork,
        prior_time: u64,
    },
    AltDaUnsupported,
    /// A number past op-lite's range for it.
    OutOfRange {
        field: &'static str,
        value: u64,
        max: u64,
    },
    /// An EIP-1559 parameter of zero (op-geth divides by the denominators).
    ZeroEip1559Param(&'static str),
    Parse(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::BlockTimeZero => write!(f, "block time cannot be 0"),
            ConfigError::MissingChannelTimeout => {
                write!(f, "channel timeout must be set, this should cover at least a L1 block time")
            }
            ConfigError::InvalidSeqWindowSize => {
                write!(f, "sequencing window size must at least be 2")
            }
            ConfigError::InvalidMaxSeqDrift => {
                write!(f, "max sequencer drift must be greater than 0")
            }
            ConfigError::MissingGenesisL1Hash => write!(f, "genesis L1 hash cannot be empty"),
            ConfigError::MissingGenesisL2Hash => write!(f, "genesis L2 hash cannot be empty"),
            ConfigError::GenesisHashesSame => {
                write!(f, "achievement get! rollup inception: L1 and L2 genesis cannot be the same")
            }
            ConfigError::MissingGenesisL2Time => write!(f, "missing L2 genesis time"),
            ConfigError::MissingBatcherAddr => {
                write!(f, "missing genesis system config batcher address")
            }
            ConfigError::MissingScalar => write!(f, "missing genesis system config scalar"),
            ConfigError::MissingGasLimit => write!(f, "missing genesis system config gas limit"),
            ConfigError::MissingBatchInboxAddress => write!(f, "missing batch inbox address"),
            ConfigError::MissingDepositContractAddress => {
                write!(f, "missing deposit contract address")
            }
            ConfigError::MissingL1ChainId => write!(f, "L1 chain ID must not be nil"),
            ConfigError::MissingL2ChainId => write!(f, "L2 chain ID must not be nil"),
            ConfigError::ChainIdsSame => write!(f, "L1 and L2 chain IDs must be different"),
            ConfigError::ForkPriorMissing { fork, prior } => {
                write!(f, "fork {fork} set, but prior fork {prior} missing")
            }
            ConfigError::ForkOrder { fork, time, prior, prior_time } => {
                write!(f, "fork {fork} set to {time}, but prior fork {prior} has higher offset {prior_time}")
            }
            ConfigError::AltDaUnsupported => {
                write!(f, "alt-DA (alt_da) chains are not supported by op-lite")
            }
            ConfigError::OutOfRange { field, value, max } => {
                write!(f, "{field} {value} is out of range (at most {max})")
            }
            ConfigError::ZeroEip1559Param(field) => write!(f, "chain_op_config.{field} cannot be 0"),
            ConfigError::Parse(e) => write!(f, "invalid rollup config: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl RollupConfig {
    /// Parses op-node's `rollup.json` (unknown fields are ignored) and checks it.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let cfg: RollupConfig = serde_json::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Validation as op-node's `Config.Check()`, plus op-lite's own limits.
    pub fn check(&self) -> Result<(), ConfigError> {
        use ConfigError::*;
        if self.block_time == 0 {
            return Err(BlockTimeZero);
        }
        if self.channel_timeout_bedrock == 0 {
            return Err(MissingChannelTimeout);
        }
        if self.seq_window_size < 2 {
            return Err(InvalidSeqWindowSize);
        }
        if self.max_sequencer_drift == 0 {
            return Err(InvalidMaxSeqDrift);
        }
        if self.genesis.l1.hash.is_zero() {
            return Err(MissingGenesisL1Hash);
        }
        if self.genesis.l2.hash.is_zero() {
            return Err(MissingGenesisL2Hash);
        }
        if self.genesis.l1.hash == self.genesis.l2.hash {
            return Err(GenesisHashesSame);
        }
        if self.genesis.l2_time == 0 {
            return Err(MissingGenesisL2Time);
        }
        if self.genesis.system_config.batcher_addr.is_zero() {
            return Err(MissingBatcherAddr);
        }
        if self.genesis.system_config.scalar.is_zero() {
            return Err(MissingScalar);
        }
        if self.genesis.system_config.gas_limit == 0 {
            return Err(MissingGasLimit);
        }
        if self.batch_inbox_address.is_zero() {
            return Err(MissingBatchInboxAddress);
        }
        if self.deposit_contract_address.is_zero() {
            return Err(MissingDepositContractAddress);
        }
        if self.l1_chain_id == 0 {
            return Err(MissingL1ChainId);
        }
        if self.l2_chain_id == 0 {
            return Err(MissingL2ChainId);
        }
        if self.l1_chain_id == self.l2_chain_id {
            return Err(ChainIdsSame);
        }
        if self.alt_da.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(AltDaUnsupported);
        }
        let ranges = [
            ("block_time", self.block_time, MAX_BLOCK_TIME),
            ("seq_window_size", self.seq_window_size, MAX_SEQ_WINDOW_SIZE),
            ("max_sequencer_drift", self.max_sequencer_drift, MAX_SEQUENCER_DRIFT),
            ("channel_timeout", self.channel_timeout_bedrock, MAX_CHANNEL_TIMEOUT),
            ("genesis.l2_time", self.genesis.l2_time, MAX_GENESIS_TIME),
        ];
        if let Some((field, value, max)) = ranges.into_iter().find(|(_, v, max)| v > max) {
            return Err(OutOfRange { field, value, max });
        }
        if let Some(c) = self.chain_op_config {
            let params = [
                ("eip1559Elasticity", c.eip1559_elasticity),
                ("eip1559Denominator", c.eip1559_denominator),
                ("eip1559DenominatorCanyon", c.eip1559_denominator_canyon),
            ];
            if let Some((field, _)) = params.into_iter().find(|(_, v)| *v == 0) {
                return Err(ZeroEip1559Param(field));
            }
        }
        // Every fork (but Interop, which may be scheduled independently) needs its predecessor
        // scheduled no later than itself.
        let ordered = &Fork::ALL[..Fork::ALL.len() - 1];
        for pair in ordered.windows(2) {
            let (prior, fork) = (pair[0], pair[1]);
            match (self.forks.get(prior), self.forks.get(fork)) {
                (None, Some(_)) => return Err(ForkPriorMissing { fork, prior }),
                (Some(a), Some(b)) if a > b => return Err(ForkOrder { fork, time: b, prior, prior_time: a }),
                _ => {}
            }
        }
        Ok(())
    }

    /// True when `fork` is active at L2 time `t`.
    pub fn is_active(&self, fork: Fork, t: u64) -> bool {
        self.forks.get(fork).is_some_and(|at| t >= at)
    }

    /// True when the L2 block at time `t` is the first block with `fork` active.
    pub fn is_activation_block(&self, fork: Fork, t: u64) -> bool {
        self.is_active(fork, t) && t >= self.block_time && !self.is_active(fork, t - self.block_time)
    }

    /// The latest fork active at `t`, if any.
    pub fn active_fork(&self, t: u64) -> Option<Fork> {
        Fork::ALL.iter().rev().copied().find(|f| self.is_active(*f, t))
    }

    pub fn is_pectra_blob_schedule(&self, t: u64) -> bool {
        self.forks.pectra_blob_schedule_time.is_some_and(|at| t >= at)
    }

    /// Max sequencer drift in seconds for an L2 block at `t`.
    pub fn max_sequencer_drift(&self, t: u64) -> u64 {
        if self.is_active(Fork::Fjord, t) {
            MAX_SEQUENCER_DRIFT_FJORD
        } else {
            self.max_sequencer_drift
        }
    }

    /// Max RLP bytes a channel may decompress to, for an L1 origin at time `t`.
    pub fn max_rlp_bytes_per_channel(&self, t: u64) -> u64 {
        if self.is_active(Fork::Fjord, t) {
            MAX_RLP_BYTES_PER_CHANNEL_FJORD
        } else {
            MAX_RLP_BYTES_PER_CHANNEL_BEDROCK
        }
    }

    /// Max total bytes buffered in the channel bank, by L1 origin time.
    pub fn max_channel_bank_size(&self, t: u64) -> u64 {
        if self.is_active(Fork::Fjord, t) {
            MAX_CHANNEL_BANK_SIZE_FJORD
        } else {
            MAX_CHANNEL_BANK_SIZE_BEDROCK
        }
    }

    /// Channel timeout in L1 blocks, by L1 origin time.
    pub fn channel_timeout(&self, t: u64) -> u64 {
        if self.is_active(Fork::Granite, t) {
            CHANNEL_TIMEOUT_GRANITE
        } else {
            self.channel_timeout_bedrock
        }
    }

    /// The L2 block number with timestamp `t` (t >= genesis time).
    pub fn target_block_number(&self, t: u64) -> Option<u64> {
        let since = t.checked_sub(self.genesis.l2_time)?;
        Some(self.genesis.l2.number.saturating_add(since / self.block_time))
    }

    /// The chain's EIP-1559 parameters (defaults to OP Mainnet's when absent).
    pub fn chain_op_config(&self) -> ChainOpConfig {
        self.chain_op_config.unwrap_or_default()
    }

    /// Overrides fork times as op-node's `--override.<fork>` flags do.
    pub fn apply_overrides(&mut self, overrides: &[(Fork, u64)]) {
        for (fork, t) in overrides {
            self.forks.set(*fork, Some(*t));
        }
    }

    /// The genesis L2 hash, for convenience.
    pub fn genesis_l2_hash(&self) -> B256 {
        self.genesis.l2.hash
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// Base Mainnet's published op-node rollup.json (base-org/node), plus an unknown field.
    pub const BASE_JSON: &str = r#"{
      "genesis": {
        "l1": {"hash": "0x5c13d307623a926cd31415036c8b7fa14572f9dac64528e857a470511fc30771", "number": 17481768},
        "l2": {"hash": "0xf712aa9241cc24369b143cf6dce85f0902a9731e70d66818a3a5845b296c73dd", "number": 0},
        "l2_time": 1686789347,
        "system_config": {
          "batcherAddr": "0x5050f69a9786f081509234f1a7f4684b5e5b76c9",
          "overhead": "0x00000000000000000000000000000000000000000000000000000000000000bc",
          "scalar": "0x00000000000000000000000000000000000000000000000000000000000a6fe0",
          "gasLimit": 30000000
        }
      },
      "block_time": 2, "max_sequencer_drift": 600, "seq_window_size": 3600, "channel_timeout": 300,
      "l1_chain_id": 1, "l2_chain_id": 8453, "regolith_time": 0,
      "batch_inbox_address": "0xff00000000000000000000000000000000008453",
      "deposit_contract_address": "0x49048044d57e1c92a77f79988d21fa8faf74e97e",
      "l1_system_config_address": "0x73a79fab69143498ed3712e519a88a918e1f4072",
      "some_future_field": {"ignored": true}
    }"#;

    /// Base Mainnet's config with every fork from Canyon to `last` activated at
    /// `first_time`, `first_time + step`, ... in fork order.
    pub fn with_forks_until(last: super::Fork, first_time: u64, step: u64) -> super::RollupConfig {
        use super::Fork::*;
        let mut c = super::RollupConfig::from_json(BASE_JSON).expect("BASE_JSON parses");
        let order = [Canyon, Delta, Ecotone, Fjord, Granite, Holocene, Isthmus, Jovian, Karst];
        let n = order.iter().position(|f| *f == last).map_or(0, |i| i + 1);
        for (i, f) in order.iter().take(n).enumerate() {
            c.forks.set(*f, Some(first_time + step * i as u64));
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RollupConfig {
        RollupConfig::from_json(tests_support::BASE_JSON).unwrap()
    }

    #[test]
    fn parses_op_node_rollup_json() {
        let c = base();
        assert_eq!(c.l2_chain_id, 8453);
        assert_eq!(c.genesis.system_config.gas_limit, 30_000_000);
        assert_eq!(c.forks.regolith_time, Some(0));
        assert!(c.is_active(Fork::Regolith, 0));
        assert!(!c.is_active(Fork::Canyon, u64::MAX));
        assert_eq!(c.channel_timeout(0), 300);
    }

    #[test]
    fn check_reports_each_problem() {
        let mut c = base();
        c.block_time = 0;
        assert_eq!(c.check(), Err(ConfigError::BlockTimeZero));
        let mut c = base();
        c.batch_inbox_address = Address::ZERO;
        assert_eq!(c.check(), Err(ConfigError::MissingBatchInboxAddress));
        let mut c = base();
        c.forks.delta_time = Some(10);
        assert_eq!(c.check(), Err(ConfigError::ForkPriorMissing { fork: Fork::Delta, prior: Fork::Canyon }));
        let mut c = base();
        c.forks.canyon_time = Some(20);
        c.forks.delta_time = Some(10);
        assert_eq!(
            c.check(),
            Err(ConfigError::ForkOrder { fork: Fork::Delta, time: 10, prior: Fork::Canyon, prior_time: 20 })
        );
        let mut c = base();
        c.genesis.l2.hash = c.genesis.l1.hash;
        assert_eq!(c.check(), Err(ConfigError::GenesisHashesSame));
        assert!(matches!(RollupConfig::from_json("{}"), Err(ConfigError::Parse(_))));
        let mut c = base();
        c.block_time = u64::MAX;
        assert_eq!(
            c.check(),
            Err(ConfigError::OutOfRange { field: "block_time", value: u64::MAX, max: MAX_BLOCK_TIME })
        );
        let mut c = base();
        c.seq_window_size = u64::MAX;
        assert!(matches!(c.check(), Err(ConfigError::OutOfRange { field: "seq_window_size", .. })));
        let mut c = base();
        c.genesis.l2_time = u64::MAX;
        assert!(matches!(c.check(), Err(ConfigError::OutOfRange { field: "genesis.l2_time", .. })));
        let mut c = base();
        c.chain_op_config = Some(ChainOpConfig { eip1559_denominator: 0, ..ChainOpConfig::default() });
        assert_eq!(c.check(), Err(ConfigError::ZeroEip1559Param("eip1559Denominator")));
        assert_eq!(
            ConfigError::ZeroEip1559Param("eip1559Denominator").to_string(),
            "chain_op_config.eip1559Denominator cannot be 0"
        );
    }

    #[test]
    fn fork_dependent_constants() {
        let mut c = base();
        c.apply_overrides(&[
            (Fork::Canyon, 100),
            (Fork::Delta, 100),
            (Fork::Ecotone, 100),
            (Fork::Fjord, 200),
            (Fork::Granite, 300),
        ]);
        c.check().unwrap();
        assert_eq!(c.max_sequencer_drift(199), 600);
        assert_eq!(c.max_sequencer_drift(200), 1800);
        assert_eq!(c.max_rlp_bytes_per_channel(200), 100_000_000);
        assert_eq!(c.channel_timeout(299), 300);
        assert_eq!(c.channel_timeout(300), 50);
        assert!(c.is_activation_block(Fork::Fjord, 200));
        assert!(!c.is_activation_block(Fork::Fjord, 202));
        assert_eq!(c.active_fork(250), Some(Fork::Fjord));
    }
}
