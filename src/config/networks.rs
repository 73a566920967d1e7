//! Built-in networks for `--network NAME`.
//!
//! Values are taken from the superchain-registry (github.com/ethereum-optimism/superchain-registry):
//! `superchain/configs/{mainnet,sepolia}/{op,base}.toml`, the superchain-wide `superchain.toml` fork
//! times, and `superchain/extra/addresses/addresses.json` (OptimismPortalProxy, SystemConfigProxy,
//! UnsafeBlockSigner). OP chains at registry commit 8336d2ae (2026-08); Base chains at 5b055be4, the
//! last commit before Base left the registry (2026-04). `tests/` checks every value against those files.

use crate::protocol::block_ref::BlockId;
use crate::protocol::primitives::{Address, B256, B64};
use crate::protocol::rollup::{ChainOpConfig, ForkTimes, Genesis, RollupConfig};
use crate::protocol::system_config::SystemConfig;

/// A built-in network: its rollup config plus the registry facts op-node ships alongside it.
#[derive(Debug, Clone)]
pub struct Network {
    pub name: &'static str,
    pub rollup: RollupConfig,
    /// The registry's UnsafeBlockSigner, used until the runtime config has been read from L1.
    pub unsafe_block_signer: Address,
}

/// Names accepted by `--network`.
pub const NETWORK_NAMES: [&str; 4] = ["op-mainnet", "op-sepolia", "base-mainnet", "base-sepolia"];

/// Looks up a built-in network by name (also accepting op-node's `<chain>-<superchain>` aliases).
pub fn by_name(name: &str) -> Option<Network> {
    let n = match name {
        "op-mainnet" | "mainnet-op" => op_mainnet(),
        "op-sepolia" | "sepolia-op" => op_sepolia(),
        "base-mainnet" | "mainnet-base" => base_mainnet(),
        "base-sepolia" | "sepolia-base" => base_sepolia(),
        _ => return None,
    };
    Some(n)
}

const fn nib(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("bad hex in built-in network table"),
    }
}

/// Compile-time hex decoding: a malformed constant fails the build, never the node.
const fn hex<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    assert!(b.len() == 2 + 2 * N, "wrong hex length in built-in network table");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = nib(b[2 + 2 * i]) << 4 | nib(b[3 + 2 * i]);
        i += 1;
    }
    out
}

const fn addr(s: &str) -> Address {
    Address(hex::<20>(s))
}

const fn h256(s: &str) -> B256 {
    B256(hex::<32>(s))
}

const MAINNET_FORKS: ForkTimes = ForkTimes {
    regolith_time: Some(0),
    canyon_time: Some(1704992401),
    delta_time: Some(1708560000),
    ecotone_time: Some(1710374401),
    fjord_time: Some(1720627201),
    granite_time: Some(1726070401),
    holocene_time: Some(1736445601),
    pectra_blob_schedule_time: None,
    isthmus_time: Some(1746806401),
    jovian_time: Some(1764691201),
    karst_time: Some(1783526401),
    interop_time: None,
};

const SEPOLIA_FORKS: ForkTimes = ForkTimes {
    regolith_time: Some(0),
    canyon_time: Some(1699981200),
    delta_time: Some(1703203200),
    ecotone_time: Some(1708534800),
    fjord_time: Some(1716998400),
    granite_time: Some(1723478400),
    holocene_time: Some(1732633200),
    pectra_blob_schedule_time: Some(1742486400),
    isthmus_time: Some(1744905600),
    jovian_time: Some(1763568001),
    karst_time: Some(1781712001),
    interop_time: None,
};

const PROTOCOL_VERSIONS_MAINNET: Address = addr("0x8062AbC286f5e7D9428a0Ccb9AbD71e50d93b935");
const PROTOCOL_VERSIONS_SEPOLIA: Address = addr("0x79ADD5713B383DAa0a138d3C4780C7A1804a8090");

const BEDROCK_OVERHEAD: B256 = h256("0x00000000000000000000000000000000000000000000000000000000000000bc");
const BEDROCK_SCALAR: B256 = h256("0x00000000000000000000000000000000000000000000000000000000000a6fe0");

fn sys(batcher: Address, overhead: B256, scalar: B256, gas_limit: u64) -> SystemConfig {
    SystemConfig {
        batcher_addr: batcher,
        overhead,
        scalar,
        gas_limit,
        eip1559_params: B64::ZERO,
        ..SystemConfig::default()
    }
}

struct Entry {
    l2_chain_id: u64,
    l1_chain_id: u64,
    genesis_l1: (u64, B256),
    genesis_l2: (u64, B256),
    l2_time: u64,
    system_config: SystemConfig,
    inbox: Address,
    portal: Address,
    system_config_proxy: Address,
    protocol_versions: Address,
    forks: ForkTimes,
    eip1559: ChainOpConfig,
}

fn build(name: &'static str, e: Entry, unsafe_block_signer: Address) -> Network {
    let rollup = RollupConfig {
        genesis: Genesis {
            l1: BlockId { number: e.genesis_l1.0, hash: e.genesis_l1.1 },
            l2: BlockId { number: e.genesis_l2.0, hash: e.genesis_l2.1 },
            l2_time: e.l2_time,
            system_config: e.system_config,
        },
        block_time: 2,
        max_sequencer_drift: 600,
        seq_window_size: 3600,
        channel_timeout_bedrock: 300,
        l1_chain_id: e.l1_chain_id,
        l2_chain_id: e.l2_chain_id,
        forks: e.forks,
        batch_inbox_address: e.inbox,
        deposit_contract_address: e.portal,
        l1_system_config_address: e.system_config_proxy,
        protocol_versions_address: e.protocol_versions,
        chain_op_config: Some(e.eip1559),
        keep_karst_upgrade_gas: e.forks.karst_time.is_some(),
        alt_da: None,
    };
    Network { name, rollup, unsafe_block_signer }
}

const OP_EIP1559: ChainOpConfig =
    ChainOpConfig { eip1559_elasticity: 6, eip1559_denominator: 50, eip1559_denominator_canyon: 250 };

/// OP Mainnet (chain 10).
pub fn op_mainnet() -> Network {
    build(
        "op-mainnet",
        Entry {
            l2_chain_id: 10,
            l1_chain_id: 1,
            genesis_l1: (
                17422590,
                h256("0x438335a20d98863a4c0c97999eb2481921ccd28553eac6f913af7c12aec04108"),
            ),
            genesis_l2: (
                105235063,
                h256("0xdbf6a80fef073de06add9b0d14026d6e5a86c85f6d102c36d3d8e9cf89c2afd3"),
            ),
            l2_time: 1686068903,
            system_config: sys(
                addr("0x6887246668a3b87F54DeB3b94Ba47a6f63F32985"),
                BEDROCK_OVERHEAD,
                BEDROCK_SCALAR,
                30_000_000,
            ),
            inbox: addr("0xFF00000000000000000000000000000000000010"),
            portal: addr("0xbEb5Fc579115071764c7423A4f12eDde41f106Ed"),
            system_config_proxy: addr("0x229047fed2591dbec1eF1118d64F7aF3dB9EB290"),
            protocol_versions: PROTOCOL_VERSIONS_MAINNET,
            forks: MAINNET_FORKS,
            eip1559: OP_EIP1559,
        },
        addr("0xAAAA45d9549EDA09E70937013520214382Ffc4A2"),
    )
}

/// OP Sepolia (chain 11155420).
pub fn op_sepolia() -> Network {
    build(
        "op-sepolia",
        Entry {
            l2_chain_id: 11155420,
            l1_chain_id: 11155111,
            genesis_l1: (4071408, h256("0x48f520cf4ddaf34c8336e6e490632ea3cf1e5e93b0b2bc6e917557e31845371b")),
            genesis_l2: (0, h256("0x102de6ffb001480cc9b8b548fd05c34cd4f46ae4aa91759393db90ea0409887d")),
            l2_time: 1691802540,
            system_config: sys(
                addr("0x8F23BB38F531600e5d8FDDaAEC41F13FaB46E98c"),
                BEDROCK_OVERHEAD,
                BEDROCK_SCALAR,
                30_000_000,
            ),
            inbox: addr("0xff00000000000000000000000000000011155420"),
            portal: addr("0x16Fc5058F25648194471939df75CF27A2fdC48BC"),
            system_config_proxy: addr("0x034edD2A225f7f429A63E0f1D2084B9E0A93b538"),
            protocol_versions: PROTOCOL_VERSIONS_SEPOLIA,
            forks: SEPOLIA_FORKS,
            eip1559: OP_EIP1559,
        },
        addr("0x57CACBB0d30b01eb2462e5dC940c161aff3230D3"),
    )
}

/// Base Mainnet (chain 8453). Base left the registry before Karst was scheduled for it.
pub fn base_mainnet() -> Network {
    build(
        "base-mainnet",
        Entry {
            l2_chain_id: 8453,
            l1_chain_id: 1,
            genesis_l1: (
                17481768,
                h256("0x5c13d307623a926cd31415036c8b7fa14572f9dac64528e857a470511fc30771"),
            ),
            genesis_l2: (0, h256("0xf712aa9241cc24369b143cf6dce85f0902a9731e70d66818a3a5845b296c73dd")),
            l2_time: 1686789347,
            system_config: sys(
                addr("0x5050F69a9786F081509234F1a7F4684b5E5b76C9"),
                BEDROCK_OVERHEAD,
                BEDROCK_SCALAR,
                30_000_000,
            ),
            inbox: addr("0xFf00000000000000000000000000000000008453"),
            portal: addr("0x49048044D57e1C92A77f79988d21Fa8fAF74E97e"),
            system_config_proxy: addr("0x73a79Fab69143498Ed3712e519A88a918e1f4072"),
            protocol_versions: PROTOCOL_VERSIONS_MAINNET,
            forks: ForkTimes { karst_time: None, ..MAINNET_FORKS },
            eip1559: OP_EIP1559,
        },
        addr("0xAf6E19BE0F9cE7f8afd49a1824851023A8249e8a"),
    )
}

/// Base Sepolia (chain 84532).
pub fn base_sepolia() -> Network {
    build(
        "base-sepolia",
        Entry {
            l2_chain_id: 84532,
            l1_chain_id: 11155111,
            genesis_l1: (4370868, h256("0xcac9a83291d4dec146d6f7f69ab2304f23f5be87b1789119a0c5b1e4482444ed")),
            genesis_l2: (0, h256("0x0dcc9e089e30b90ddfc55be9a37dd15bc551aeee999d2e2b51414c54eaf934e4")),
            l2_time: 1695768288,
            system_config: sys(
                addr("0x6CDEbe940BC0F26850285cacA097C11c33103E47"),
                h256("0x0000000000000000000000000000000000000000000000000000000000000834"),
                h256("0x00000000000000000000000000000000000000000000000000000000000f4240"),
                25_000_000,
            ),
            inbox: addr("0xfF00000000000000000000000000000000084532"),
            portal: addr("0x49f53e41452C74589E85cA1677426Ba426459e85"),
            system_config_proxy: addr("0xf272670eb55e895584501d564AfEB048bEd26194"),
            protocol_versions: PROTOCOL_VERSIONS_SEPOLIA,
            forks: ForkTimes { karst_time: None, ..SEPOLIA_FORKS },
            eip1559: ChainOpConfig { eip1559_elasticity: 10, ..OP_EIP1559 },
        },
        addr("0xb830b99c95Ea32300039624Cb567d324D4b1D83C"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_network_passes_check() {
        for name in NETWORK_NAMES {
            let n = by_name(name).unwrap();
            n.rollup.check().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(n.name, name);
        }
        assert!(by_name("op-goerli").is_none());
    }

    #[test]
    fn fork_predicates_on_op_mainnet() {
        let c = op_mainnet().rollup;
        assert!(c.is_active(crate::protocol::rollup::Fork::Holocene, 1736445601));
        assert!(!c.is_active(crate::protocol::rollup::Fork::Holocene, 1736445600));
        let s = op_sepolia().rollup;
        assert!(s.is_active(crate::protocol::rollup::Fork::Jovian, 1763568001));
        assert!(!s.is_active(crate::protocol::rollup::Fork::Jovian, 1763568000));
    }
}
