//! The L1 SystemConfig as the rollup sees it (op-node `eth.SystemConfig`): batcher, fee scalars,
//! gas limit and the later fee-market parameters. Updated from `ConfigUpdate` logs.

use serde::{Deserialize, Serialize};

use super::primitives::{Address, B256, B64};

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
