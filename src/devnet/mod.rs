//! The embedded local devnet (`op-lite devnet`): an L1 simulator, a batcher posting real
//! frames, channels and span batches, and an engine stand-in — all in-process on loopback — for
//! the real node to follow. Behind the `devnet` cargo feature (on by default).

pub mod chain;
pub mod engine_sim;
pub mod host;
pub mod l1_sim;
pub mod report;
pub mod serve;

use crate::protocol::block_ref::BlockId;
use crate::protocol::primitives::{Address, B256, B64};
use crate::protocol::rollup::{ChainOpConfig, ForkTimes, Genesis, RollupConfig};
use crate::protocol::system_config::SystemConfig;

/// L1 chain id of the devnet.
pub const DEVNET_L1_CHAIN_ID: u64 = 900;
/// The devnet's ProtocolVersions contract (its storage holds the required and recommended
/// protocol versions the runtime config reads).
pub const PROTOCOL_VERSIONS: Address = Address([0x44; 20]);
/// L2 chain id of the devnet.
pub const DEVNET_L2_CHAIN_ID: u64 = 901;

/// The devnet's rollup config: genesis on the simulator's L1 genesis and the stand-in's L2
/// genesis, every fork up to Jovian active from genesis (Karst and later not scheduled), and
/// the given batcher and sequencing window.
pub fn rollup_config(
    l1_genesis: BlockId,
    l1_genesis_time: u64,
    batcher: Address,
    seq_window_size: u64,
) -> RollupConfig {
    let forks = ForkTimes {
        regolith_time: Some(0),
        canyon_time: Some(0),
        delta_time: Some(0),
        ecotone_time: Some(0),
        fjord_time: Some(0),
        granite_time: Some(0),
        holocene_time: Some(0),
        pectra_blob_schedule_time: None,
        isthmus_time: Some(0),
        jovian_time: Some(0),
        karst_time: None,
        interop_time: None,
    };
    let mut scalar = [0u8; 32];
    scalar[0] = 1;
    scalar[28..].copy_from_slice(&1368u32.to_be_bytes());
    let mut cfg = RollupConfig {
        genesis: Genesis {
            l1: l1_genesis,
            l2: BlockId { hash: B256([1; 32]), number: 0 },
            l2_time: l1_genesis_time,
            system_config: SystemConfig {
                batcher_addr: batcher,
                overhead: B256::ZERO,
                scalar: B256(scalar),
                gas_limit: 30_000_000,
                eip1559_params: B64([0, 0, 0, 250, 0, 0, 0, 6]),
                ..SystemConfig::default()
            },
        },
        block_time: 2,
        max_sequencer_drift: 600,
        seq_window_size,
        channel_timeout_bedrock: 50,
        l1_chain_id: DEVNET_L1_CHAIN_ID,
        l2_chain_id: DEVNET_L2_CHAIN_ID,
        forks,
        batch_inbox_address: {
            let mut a = [0u8; 20];
            a[0] = 0xff;
            a[18..].copy_from_slice(&(DEVNET_L2_CHAIN_ID as u16).to_be_bytes());
            Address(a)
        },
        deposit_contract_address: Address([0x42; 20]),
        l1_system_config_address: Address([0x43; 20]),
        protocol_versions_address: PROTOCOL_VERSIONS,
        chain_op_config: Some(ChainOpConfig::default()),
        keep_karst_upgrade_gas: false,
        alt_da: None,
    };
    cfg.genesis.l2.hash = engine_sim::EngineSim::genesis_block(&cfg).envelope.execution_payload.block_hash;
    cfg
}
