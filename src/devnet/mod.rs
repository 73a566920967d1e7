//! The embedded local devnet (`op-lite devnet`): an L1 simulator, a batcher posting real
//! frames, channels and span batches, and an engine stand-in — all in-process on loopback — for
//! the real node to follow. Behind the `devnet` cargo feature (on by default).

pub mod chain;
pub mod dir;
pub mod engine_sim;
pub mod feed;
pub mod genesis;
pub mod host;
pub mod l1_sim;
pub mod report;
pub mod serve;

use crate::protocol::block_ref::BlockId;
use crate::protocol::primitives::{Address, B256, B64};
use crate::protocol::rollup::{ChainOpConfig, Fork, ForkTimes, Genesis, RollupConfig};
use crate::protocol::system_config::SystemConfig;

/// L1 chain id of the devnet.
pub const DEVNET_L1_CHAIN_ID: u64 = 900;
/// The devnet's ProtocolVersions contract (its storage holds the required and recommended
/// protocol versions the runtime config reads).
pub const PROTOCOL_VERSIONS: Address = Address([0x44; 20]);
/// L2 chain id of the devnet.
pub const DEVNET_L2_CHAIN_ID: u64 = 901;

/// Forks the devnet schedules by default, in seconds after genesis: every fork through Jovian
/// at genesis, Karst and Interop not scheduled.
pub fn default_forks() -> ForkTimes {
    let mut f = ForkTimes::default();
    for fork in Fork::ALL {
        if fork <= Fork::Jovian {
            f.set(fork, Some(0));
        }
    }
    f
}

/// The devnet's fork schedule (seconds after genesis) with `overrides` applied, as
/// `--fork NAME=SECONDS` and `--fork NAME=off` give them: turning a fork off turns off every
/// later one; a fork left at its default never activates before the one preceding it (it
/// moves with it); an explicit time before an earlier fork's, or a fork on after one that is
/// off, is an error, as op-node rejects such a rollup config.
pub fn fork_schedule(overrides: &[(Fork, Option<u64>)]) -> Result<ForkTimes, String> {
    let mut f = default_forks();
    let explicit = |fork: Fork| overrides.iter().rev().find(|(o, _)| *o == fork).map(|(_, t)| *t);
    let mut prev: Option<(Fork, Option<u64>)> = None;
    for fork in Fork::ALL {
        let t = match (explicit(fork), prev) {
            (Some(t), None) => t,
            (Some(Some(t)), Some((p, Some(pt)))) if t < pt => {
                return Err(format!("--fork {fork}={t} activates before {p} (at {pt})"))
            }
            (Some(Some(t)), Some((p, None))) => {
                return Err(format!("--fork {fork}={t} needs {p}, which is off"))
            }
            (Some(t), Some(_)) => t,
            (None, Some((_, None))) => None,
            (None, Some((_, Some(pt)))) => f.get(fork).map(|t| t.max(pt)),
            (None, None) => f.get(fork),
        };
        f.set(fork, t);
        prev = Some((fork, t));
    }
    Ok(f)
}

/// Parses `NAME=SECONDS` or `NAME=off` (a `--fork` value).
pub fn parse_fork(v: &str) -> Result<(Fork, Option<u64>), String> {
    let (name, at) = v.split_once('=').ok_or(format!("--fork {v:?}: expected NAME=SECONDS or NAME=off"))?;
    let fork = Fork::ALL
        .into_iter()
        .find(|f| f.name() == name.to_ascii_lowercase())
        .ok_or(format!("--fork {v:?}: unknown fork {name:?}"))?;
    if fork == Fork::Regolith {
        return Err("--fork regolith: the devnet starts after Bedrock with Regolith at genesis".into());
    }
    let at = match at {
        "off" => None,
        s => Some(
            s.parse::<u64>().map_err(|_| format!("--fork {v:?}: expected seconds after genesis or off"))?,
        ),
    };
    Ok((fork, at))
}

/// The devnet's rollup config: genesis on the simulator's L1 genesis and the stand-in's L2
/// genesis (the one `genesis::genesis_json` describes), the forks at `forks` seconds after
/// genesis, and the given batcher, sequencing window and channel timeout.
pub fn rollup_config(
    l1_genesis: BlockId,
    l1_genesis_time: u64,
    batcher: Address,
    seq_window_size: u64,
    channel_timeout: u64,
    forks: &ForkTimes,
) -> RollupConfig {
    let mut times = ForkTimes::default();
    for fork in Fork::ALL {
        // A fork at genesis is written as time 0, as op-node's configs do.
        times.set(fork, forks.get(fork).map(|dt| if dt == 0 { 0 } else { l1_genesis_time + dt }));
    }
    let forks = times;
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
        channel_timeout_bedrock: channel_timeout,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_schedule_keeps_forks_in_order() {
        let d = fork_schedule(&[]).unwrap();
        assert_eq!((d.jovian_time, d.karst_time, d.interop_time), (Some(0), None, None));
        // Off turns off what follows.
        let f = fork_schedule(&[parse_fork("isthmus=off").unwrap()]).unwrap();
        assert_eq!((f.holocene_time, f.isthmus_time, f.jovian_time), (Some(0), None, None));
        // A later time carries the default forks after it along.
        let f = fork_schedule(&[parse_fork("granite=60").unwrap()]).unwrap();
        assert_eq!(
            (f.fjord_time, f.granite_time, f.holocene_time, f.jovian_time),
            (Some(0), Some(60), Some(60), Some(60))
        );
        assert_eq!(f.karst_time, None);
        let f = fork_schedule(&[parse_fork("karst=120").unwrap()]).unwrap();
        assert_eq!((f.jovian_time, f.karst_time), (Some(0), Some(120)));
        // Explicit times out of order, or a fork on after one that is off: refused.
        let e = fork_schedule(&[parse_fork("granite=60").unwrap(), parse_fork("holocene=30").unwrap()]);
        assert!(e.unwrap_err().contains("before granite"));
        let e = fork_schedule(&[parse_fork("isthmus=off").unwrap(), parse_fork("jovian=0").unwrap()]);
        assert!(e.unwrap_err().contains("needs isthmus"));
        for bad in ["jovian", "jovian=soon", "shanghai=0", "regolith=5"] {
            assert!(parse_fork(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_fork("Karst=off").unwrap(), (Fork::Karst, None));
    }
}
