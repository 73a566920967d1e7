//! Built-in networks for `--network NAME`: every mainnet and sepolia chain of the superchain
//! registry, under op-node's names (`<chain>-<superchain>`, e.g. `unichain-mainnet`,
//! `soneium-minato-sepolia`; `mainnet` and `sepolia` are op-node's legacy aliases of the OP chains).
//!
//! The facts live in `networks.txt` beside this file, in op-lite's own format, with the registry
//! commit they were taken from; `platform/networks.py` regenerates it from a registry clone and
//! build.rs compiles it into the `NETWORKS` table below. Turning a table row into a rollup config
//! follows op-node's `LoadOPStackRollupConfig`: Regolith at genesis, the Bedrock channel timeout of
//! 300 L1 blocks, the registry's alt-DA section (which op-lite then refuses to run), and no protocol
//! versions address (the registry dropped it in 2026-07 once op-node stopped reading it).

use crate::protocol::block_ref::BlockId;
use crate::protocol::primitives::{Address, B256, B64};
use crate::protocol::rollup::{ChainOpConfig, Fork, ForkTimes, Genesis, RollupConfig};
use crate::protocol::system_config::SystemConfig;

/// A built-in network: its rollup config plus the registry facts op-node ships alongside it.
#[derive(Debug, Clone)]
pub struct Network {
    /// op-node's name, e.g. `op-mainnet`.
    pub name: &'static str,
    pub rollup: RollupConfig,
    /// The registry's UnsafeBlockSigner, used until the runtime config has been read from L1.
    pub unsafe_block_signer: Address,
}

/// op-node's default discovery bootnodes (op-node/p2p/config.go `DefaultBootnodes`, optimism
/// commit d317e96c): one list for every network, as op-node uses it when `--p2p.bootnodes` is
/// not given. They are ENRs and enodes, for discv5.
pub const DEFAULT_BOOTNODES: [&str; 9] = [
    // OP Labs
    "enode://869d07b5932f17e8490990f75a3f94195e9504ddb6b85f7189e5a9c0a8fff8b00aecf6f3ac450ecba6cdabdb5858788a94bde2b613e0f2d82e9b395355f76d1a@34.65.67.101:30305",
    "enode://2d4e7e9d48f4dd4efe9342706dd1b0024681bd4c3300d021f86fc75eab7865d4e0cbec6fbc883f011cfd6a57423e7e2f6e104baad2b744c3cafaec6bc7dc92c1@34.65.43.171:30305",
    "enode://9d7a3efefe442351217e73b3a593bcb8efffb55b4807699972145324eab5e6b382152f8d24f6301baebbfb5ecd4127bd3faab2842c04cd432bdf50ba092f6645@34.65.109.126:30305",
    // Base
    "enr:-J24QNz9lbrKbN4iSmmjtnr7SjUMk4zB7f1krHZcTZx-JRKZd0kA2gjufUROD6T3sOWDVDnFJRvqBBo62zuF-hYCohOGAYiOoEyEgmlkgnY0gmlwhAPniryHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQKNVFlCxh_B-716tTs-h1vMzZkSs1FTu_OYTNjgufplG4N0Y3CCJAaDdWRwgiQG",
    "enr:-J24QH-f1wt99sfpHy4c0QJM-NfmsIfmlLAMMcgZCUEgKG_BBYFc6FwYgaMJMQN5dsRBJApIok0jFn-9CS842lGpLmqGAYiOoDRAgmlkgnY0gmlwhLhIgb2Hb3BzdGFja4OFQgCJc2VjcDI1NmsxoQJ9FTIv8B9myn1MWaC_2lJ-sMoeCDkusCsk4BYHjjCq04N0Y3CCJAaDdWRwgiQG",
    "enr:-J24QDXyyxvQYsd0yfsN0cRr1lZ1N11zGTplMNlW4xNEc7LkPXh0NAJ9iSOVdRO95GPYAIc6xmyoCCG6_0JxdL3a0zaGAYiOoAjFgmlkgnY0gmlwhAPckbGHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQJwoS7tzwxqXSyFL7g0JM-KWVbgvjfB8JA__T7yY_cYboN0Y3CCJAaDdWRwgiQG",
    "enr:-J24QHmGyBwUZXIcsGYMaUqGGSl4CFdx9Tozu-vQCn5bHIQbR7On7dZbU61vYvfrJr30t0iahSqhc64J46MnUO2JvQaGAYiOoCKKgmlkgnY0gmlwhAPnCzSHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQINc4fSijfbNIiGhcgvwjsjxVFJHUstK9L1T8OTKUjgloN0Y3CCJAaDdWRwgiQG",
    "enr:-J24QG3ypT4xSu0gjb5PABCmVxZqBjVw9ca7pvsI8jl4KATYAnxBmfkaIuEqy9sKvDHKuNCsy57WwK9wTt2aQgcaDDyGAYiOoGAXgmlkgnY0gmlwhDbGmZaHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQIeAK_--tcLEiu7HvoUlbV52MspE0uCocsx1f_rYvRenIN0Y3CCJAaDdWRwgiQG",
    // Conduit
    "enode://9d7a3efefe442351217e73b3a593bcb8efffb55b4807699972145324eab5e6b382152f8d24f6301baebbfb5ecd4127bd3faab2842c04cd432bdf50ba092f6645@34.65.109.126:30305",
];

/// The forks of a row's `forks`, in networks.txt's order (Regolith is always at genesis).
const FORKS: [Option<Fork>; 11] = [
    Some(Fork::Canyon),
    Some(Fork::Delta),
    Some(Fork::Ecotone),
    Some(Fork::Fjord),
    Some(Fork::Granite),
    Some(Fork::Holocene),
    None, // the Pectra blob schedule, an L1 change the rollup config carries
    Some(Fork::Isthmus),
    Some(Fork::Jovian),
    Some(Fork::Karst),
    Some(Fork::Interop),
];

/// A fork the registry does not schedule for a chain.
const NO_FORK: u32 = u32::MAX;

/// One network as build.rs writes it from networks.txt. Values that fit are `u32` (times until
/// 2106; a literal out of range fails the build), so the 54 rows take about 20 KB.
struct Row {
    name: &'static str,
    l1_chain_id: u32,
    l2_chain_id: u64,
    block_time: u32,
    seq_window_size: u32,
    max_sequencer_drift: u32,
    genesis_l1: (u32, [u8; 32]),
    genesis_l2: (u32, [u8; 32]),
    genesis_l2_time: u32,
    batcher: [u8; 20],
    overhead: [u8; 32],
    scalar: [u8; 32],
    gas_limit: u64,
    batch_inbox: [u8; 20],
    deposit_contract: [u8; 20],
    system_config: [u8; 20],
    unsafe_block_signer: [u8; 20],
    eip1559: [u32; 3],
    forks: [u32; 11],
    keep_karst_upgrade_gas: bool,
    alt_da: Option<&'static AltDaRow>,
}

/// The registry's `alt_da` section (op-node's `AltDAConfig`).
struct AltDaRow {
    commitment_type: &'static str,
    challenge_contract: [u8; 20],
    challenge_window: u64,
    resolve_window: u64,
}

include!(concat!(env!("OUT_DIR"), "/networks_table.rs"));

impl Row {
    fn network(&self) -> Network {
        let mut forks = ForkTimes { regolith_time: Some(0), ..ForkTimes::default() };
        for (fork, &t) in FORKS.iter().zip(&self.forks) {
            let t = (t != NO_FORK).then_some(u64::from(t));
            match fork {
                Some(f) => forks.set(*f, t),
                None => forks.pectra_blob_schedule_time = t,
            }
        }
        let alt_da = self.alt_da.map(|a| {
            serde_json::json!({
                "da_commitment_type": a.commitment_type,
                "da_challenge_contract_address": Address(a.challenge_contract),
                "da_challenge_window": a.challenge_window,
                "da_resolve_window": a.resolve_window,
            })
        });
        let [eip1559_elasticity, eip1559_denominator, eip1559_denominator_canyon] =
            self.eip1559.map(u64::from);
        let rollup = RollupConfig {
            genesis: Genesis {
                l1: BlockId { number: self.genesis_l1.0.into(), hash: B256(self.genesis_l1.1) },
                l2: BlockId { number: self.genesis_l2.0.into(), hash: B256(self.genesis_l2.1) },
                l2_time: self.genesis_l2_time.into(),
                system_config: SystemConfig {
                    batcher_addr: Address(self.batcher),
                    overhead: B256(self.overhead),
                    scalar: B256(self.scalar),
                    gas_limit: self.gas_limit,
                    eip1559_params: B64::ZERO,
                    ..SystemConfig::default()
                },
            },
            block_time: self.block_time.into(),
            max_sequencer_drift: self.max_sequencer_drift.into(),
            seq_window_size: self.seq_window_size.into(),
            channel_timeout_bedrock: 300,
            l1_chain_id: self.l1_chain_id.into(),
            l2_chain_id: self.l2_chain_id,
            forks,
            batch_inbox_address: Address(self.batch_inbox),
            deposit_contract_address: Address(self.deposit_contract),
            l1_system_config_address: Address(self.system_config),
            protocol_versions_address: Address::ZERO,
            chain_op_config: Some(ChainOpConfig {
                eip1559_elasticity,
                eip1559_denominator,
                eip1559_denominator_canyon,
            }),
            keep_karst_upgrade_gas: self.keep_karst_upgrade_gas,
            alt_da,
        };
        Network { name: self.name, rollup, unsafe_block_signer: Address(self.unsafe_block_signer) }
    }
}

/// The names `--network` accepts, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    NETWORKS.iter().map(|r| r.name)
}

/// Every built-in network, sorted by name.
pub fn all() -> impl Iterator<Item = Network> {
    NETWORKS.iter().map(Row::network)
}

/// Looks up a built-in network as op-node does: by name, ignoring case, with the legacy
/// aliases `mainnet` and `sepolia` for the OP chains.
pub fn by_name(name: &str) -> Option<Network> {
    let name = match name {
        "mainnet" => "op-mainnet",
        "sepolia" => "op-sepolia",
        n => n,
    };
    NETWORKS.iter().find(|r| r.name.eq_ignore_ascii_case(name)).map(Row::network)
}

/// The error for a name `by_name` does not know, with the closest names (a substring match or a
/// small edit distance), as `--network unichain` suggests `unichain-mainnet, unichain-sepolia`.
pub fn unknown(name: &str) -> String {
    let want = name.to_ascii_lowercase();
    let mut close: Vec<(usize, &str)> = NETWORKS
        .iter()
        .filter_map(|r| {
            let d = edit_distance(&want, r.name);
            let near = d <= 3 || (want.len() >= 3 && r.name.contains(want.as_str()));
            near.then_some((d, r.name))
        })
        .collect();
    crate::sort::sort(&mut close);
    let mut msg = format!("unknown network {name:?}");
    if !close.is_empty() {
        let list: Vec<&str> = close.iter().take(6).map(|(_, n)| *n).collect();
        msg.push_str(&format!("; did you mean {}?", list.join(", ")));
    }
    msg.push_str(&format!(" (`op-lite networks` lists all {})", NETWORKS.len()));
    msg
}

/// Levenshtein distance over bytes (network names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn known(name: &str) -> Network {
    by_name(name).unwrap_or_else(|| panic!("{name} is in networks.txt"))
}

/// OP Mainnet (chain 10).
pub fn op_mainnet() -> Network {
    known("op-mainnet")
}

/// OP Sepolia (chain 11155420).
pub fn op_sepolia() -> Network {
    known("op-sepolia")
}

/// Base Mainnet (chain 8453), as the registry last listed it (2026-04): no Karst.
pub fn base_mainnet() -> Network {
    known("base-mainnet")
}

/// Base Sepolia (chain 84532).
pub fn base_sepolia() -> Network {
    known("base-sepolia")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_network_passes_the_checks_except_alt_da() {
        let mut alt_da = Vec::new();
        for n in all() {
            match n.rollup.check() {
                Ok(()) => assert!(n.rollup.alt_da.is_none(), "{}", n.name),
                Err(e) => {
                    assert!(n.rollup.alt_da.is_some(), "{}: {e}", n.name);
                    assert!(e.to_string().contains("alt-DA"), "{}: {e}", n.name);
                    // Everything else about the chain is valid.
                    let mut rest = n.rollup.clone();
                    rest.alt_da = None;
                    rest.check().unwrap_or_else(|e| panic!("{}: {e}", n.name));
                    alt_da.push(n.name);
                }
            }
            assert_eq!(by_name(n.name).unwrap().rollup, n.rollup);
            assert!(n.rollup.is_active(Fork::Regolith, n.rollup.genesis.l2_time));
            assert!(n.unsafe_block_signer != Address::ZERO, "{}", n.name);
        }
        // The registry's alt-DA chains with a challenge contract (the registry's [alt_da] section).
        assert_eq!(alt_da.len(), 8, "{alt_da:?}");
    }

    #[test]
    fn names_and_chain_ids_are_unique_and_sorted() {
        let names: Vec<&str> = names().collect();
        assert!(names.len() >= 50, "{}", names.len());
        assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        let mut ids: Vec<u64> = all().map(|n| n.rollup.l2_chain_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), names.len());
        for n in &names {
            let (_, superchain) = n.rsplit_once('-').unwrap();
            assert!(superchain == "mainnet" || superchain == "sepolia", "{n}");
        }
    }

    #[test]
    fn op_node_names_and_aliases() {
        assert_eq!(by_name("mainnet").unwrap().name, "op-mainnet");
        assert_eq!(by_name("sepolia").unwrap().name, "op-sepolia");
        assert_eq!(by_name("Unichain-Mainnet").unwrap().rollup.l2_chain_id, 130);
        assert_eq!(by_name("ink-sepolia").unwrap().rollup.l2_chain_id, 763373);
        assert_eq!(by_name("soneium-minato-sepolia").unwrap().rollup.l2_chain_id, 1946);
        assert!(by_name("op-goerli").is_none());
        assert!(by_name("").is_none());
    }

    #[test]
    fn unknown_names_suggest_close_ones() {
        let m = unknown("unichain");
        assert!(m.contains("did you mean unichain-mainnet, unichain-sepolia?"), "{m}");
        let m = unknown("op-mainet");
        assert!(m.contains("did you mean op-mainnet"), "{m}");
        let m = unknown("zzzzzzzzzzzz");
        assert!(!m.contains("did you mean"), "{m}");
        assert!(m.contains(&format!("lists all {}", NETWORKS.len())), "{m}");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn registry_facts_become_op_node_fields() {
        let u = by_name("unichain-mainnet").unwrap().rollup;
        assert_eq!(u.block_time, 1);
        assert_eq!(u.forks.canyon_time, Some(0));
        assert_eq!(u.forks.karst_time, Some(1783526401));
        assert!(u.keep_karst_upgrade_gas);
        assert_eq!(u.channel_timeout_bedrock, 300);
        let c = op_mainnet().rollup;
        assert!(c.is_active(Fork::Holocene, 1736445601));
        assert!(!c.is_active(Fork::Holocene, 1736445600));
        assert_eq!(c.forks.pectra_blob_schedule_time, None);
        let s = op_sepolia().rollup;
        assert!(s.is_active(Fork::Jovian, 1763568001));
        assert!(!s.is_active(Fork::Jovian, 1763568000));
        assert_eq!(s.forks.pectra_blob_schedule_time, Some(1742486400));
        assert_eq!(base_mainnet().rollup.forks.karst_time, None);
        let a = by_name("automata-mainnet").unwrap().rollup;
        let alt = a.alt_da.unwrap();
        assert_eq!(alt["da_commitment_type"], "KeccakCommitment");
        assert_eq!(alt["da_challenge_window"], 3600);
    }

    #[test]
    fn default_bootnodes_are_enrs_and_enodes() {
        for b in DEFAULT_BOOTNODES {
            assert!(b.starts_with("enr:-") || b.starts_with("enode://"), "{b}");
        }
    }
}
