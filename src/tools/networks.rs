//! `op-lite networks`: the built-in networks (`--network NAME`). Without arguments it lists them:
//! name, L2 chain id, L1, the newest fork active now and the next one scheduled; `show NAME`
//! prints a network's rollup config as op-node's `rollup.json`, ready for `--rollup.config`.

use std::ffi::OsString;

use crate::config::networks::{self, Network};
use crate::protocol::rollup::Fork;

const USAGE: &str = "\
usage: op-lite networks              list the built-in networks (name, L2 chain id, L1, forks)
       op-lite networks show NAME    print NAME's rollup.json, as op-node loads it for --network NAME
";

/// Runs the command; `now` is the wall clock (unix seconds) for \"active now\".
pub fn main(args: Vec<OsString>, now: u64) -> u8 {
    let mut p = pico_args::Arguments::from_vec(args);
    if p.contains(["-h", "--help"]) {
        crate::io::out::print(USAGE);
        return 0;
    }
    let cmd: Option<String> = match p.subcommand() {
        Ok(c) => c,
        Err(e) => return usage(&e.to_string()),
    };
    match cmd.as_deref() {
        None => {
            crate::io::out::print(&list(now));
            0
        }
        Some("show") => {
            let name: Option<String> = p.opt_free_from_str().ok().flatten();
            let Some(name) = name else { return usage("show needs a network NAME") };
            if let Some(e) = super::unexpected(&p.finish()) {
                return usage(&e);
            }
            match networks::by_name(&name) {
                Some(n) => {
                    crate::io::out::println(&rollup_json(&n));
                    0
                }
                None => {
                    eprintln!("op-lite networks show: {}", networks::unknown(&name));
                    2
                }
            }
        }
        Some(other) => usage(&format!("unknown subcommand {other:?}")),
    }
}

fn usage(msg: &str) -> u8 {
    eprintln!("op-lite networks: {msg}\n{USAGE}");
    2
}

/// The rollup.json text of a built-in network.
pub fn rollup_json(n: &Network) -> String {
    serde_json::to_string_pretty(&n.rollup).unwrap_or_default()
}

/// The table `op-lite networks` prints.
pub fn list(now: u64) -> String {
    let mut out =
        format!("{:<28} {:>10}  {:<8} {:<12} {}\n", "NAME", "CHAIN ID", "L1", "ACTIVE NOW", "NEXT FORK");
    let mut count = 0;
    for n in networks::all() {
        count += 1;
        let c = &n.rollup;
        let l1 = match c.l1_chain_id {
            1 => "mainnet".to_string(),
            11_155_111 => "sepolia".to_string(),
            id => id.to_string(),
        };
        let active = c.active_fork(now).map_or("bedrock", Fork::name);
        let next = Fork::ALL
            .iter()
            .filter_map(|f| c.forks.get(*f).filter(|t| *t > now).map(|t| (t, *f)))
            .min()
            .map_or("-".to_string(), |(t, f)| format!("{} {}", f.name(), crate::time::utc_date(t)));
        let mut line = format!("{:<28} {:>10}  {:<8} {:<12} {}", n.name, c.l2_chain_id, l1, active, next);
        if c.alt_da.is_some() {
            line.push_str("  (alt-DA: not supported by op-lite)");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "{count} networks from the superchain registry; `op-lite networks show NAME` prints one's rollup.json\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rollup::RollupConfig;

    #[test]
    fn the_list_names_every_network_with_its_forks_now() {
        // 2026-12-05: Karst active on OP Mainnet, never scheduled on Base Mainnet.
        let now = 1_796_428_800;
        let text = list(now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), networks::names().count() + 2);
        let op = lines.iter().find(|l| l.starts_with("op-mainnet ")).unwrap();
        assert_eq!(op.split_whitespace().collect::<Vec<_>>(), ["op-mainnet", "10", "mainnet", "karst", "-"]);
        let base = lines.iter().find(|l| l.starts_with("base-mainnet ")).unwrap();
        assert!(base.contains(" jovian "), "{base}");
        // Before OP Mainnet's Karst: the next fork with its date.
        let earlier = list(1_783_526_400);
        let op = earlier.lines().find(|l| l.starts_with("op-mainnet ")).unwrap();
        assert!(op.ends_with("jovian       karst 2026-07-08"), "{op}");
        assert!(text
            .lines()
            .any(|l| l.starts_with("automata-mainnet ") && l.ends_with("not supported by op-lite)")));
    }

    #[test]
    fn show_prints_a_rollup_json_that_loads_back() {
        for n in networks::all() {
            let text = rollup_json(&n);
            let back: RollupConfig = serde_json::from_str(&text).unwrap();
            assert_eq!(back, n.rollup, "{}", n.name);
            if n.rollup.alt_da.is_none() {
                assert_eq!(RollupConfig::from_json(&text).unwrap(), n.rollup);
            }
        }
        let v: serde_json::Value = serde_json::from_str(&rollup_json(&networks::op_mainnet())).unwrap();
        assert_eq!(v["l2_chain_id"], 10);
        assert_eq!(v["channel_timeout"], 300);
        assert_eq!(v["regolith_time"], 0);
        assert_eq!(v["karst_time"], 1783526401);
        assert_eq!(v["chain_op_config"]["eip1559DenominatorCanyon"], 250);
    }
}
