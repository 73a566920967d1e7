//! `op-lite devnet init DIR`: writes a devnet directory (`devnet::dir`) for real execution
//! engines, whose genesis is now.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::flag;
use crate::devnet::chain::{Devnet, DevnetParams};
use crate::devnet::dir::{self, GENESIS_FILE, JWT_FILE, KEYS_FILE, ROLLUP_FILE};
use crate::io::files;

pub const USAGE: &str = "\
usage: op-lite devnet init DIR [--fork NAME=SECONDS|NAME=off]... [--seq-window-size N]
                               [--channel-timeout N] [--genesis-time UNIX] [--force]

Writes a devnet whose genesis is now into DIR, for execution engines to start from and for
`op-lite devnet --from DIR` to run:
  genesis.json  the L2 genesis in the op-geth / op-reth format (funded users, the EIP-4788 and
                EIP-2935 system contracts)
  rollup.json   the rollup config; genesis.l2.hash is genesis.json's genesis block hash
  jwt.hex       the Engine API secret
  keys.json     the dev accounts and their keys

  --fork NAME=SECONDS   activate fork NAME that many seconds after genesis (default: every fork
                        through jovian at genesis, karst and interop off)
  --fork NAME=off       do not schedule NAME nor any later fork (for an engine that does not know
                        it, e.g. --fork jovian=off)
  --seq-window-size N   sequencing window in L1 blocks (default 100; a devnet can start at most
                        half a window, N x 3 s, after its genesis)
  --channel-timeout N   channel timeout in L1 blocks (default 50)
  --genesis-time UNIX   genesis time in unix seconds (default: now)
  --force               replace the files of an existing devnet in DIR (the engines' data must be
                        made anew from the new genesis.json)
";

pub fn main(args: Vec<OsString>) -> u8 {
    let mut p = pico_args::Arguments::from_vec(args);
    if p.contains(["-h", "--help"]) {
        crate::io::out::print(USAGE);
        return 0;
    }
    let parsed = (|| -> Result<_, String> {
        let defaults = DevnetParams::default();
        let mut forks = Vec::new();
        while let Some(v) = flag::<String>(&mut p, "--fork")? {
            forks.push(crate::devnet::parse_fork(&v)?);
        }
        crate::devnet::fork_schedule(&forks)?;
        let seq_window_size = flag(&mut p, "--seq-window-size")?.unwrap_or(defaults.seq_window_size);
        let channel_timeout = flag(&mut p, "--channel-timeout")?.unwrap_or(defaults.channel_timeout);
        let genesis_time: Option<u64> = flag(&mut p, "--genesis-time")?;
        let force = p.contains("--force");
        let dir: PathBuf = p.free_from_str().map_err(|_| "missing DIR".to_string())?;
        if let Some(e) = crate::tools::unexpected(&p.finish()) {
            return Err(e);
        }
        Ok((dir, DevnetParams { forks, seq_window_size, channel_timeout, ..defaults }, force, genesis_time))
    })();
    let (dir, mut params, force, genesis_time) = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!("op-lite devnet init: {e}\n\n{USAGE}");
            return 2;
        }
    };
    params.genesis_time = genesis_time.unwrap_or_else(|| crate::io::clock::now().unix());
    match init(&dir, params, force) {
        Ok(net) => {
            let cfg = net.rollup_config();
            crate::io::out::println(&format!(
                "devnet written to {d}: L2 chain {l2} (genesis {g}), L1 chain {l1} (genesis {l1g}), genesis time {t}\n\
                 start an engine from it, e.g. op-reth:\n  \
                 op-reth node --chain {d}/{GENESIS_FILE} --authrpc.jwtsecret {d}/{JWT_FILE} --authrpc.port 8551 --datadir DATADIR\n\
                 then the devnet (within {secs} s, half the sequencing window):\n  \
                 op-lite devnet --from {d} --with-sequencer --sequencer-engine http://127.0.0.1:8551 --engine URL_OF_A_SECOND_ENGINE",
                d = dir.display(),
                l2 = cfg.l2_chain_id,
                g = cfg.genesis.l2.hash,
                l1 = cfg.l1_chain_id,
                l1g = cfg.genesis.l1.hash,
                t = cfg.genesis.l2_time,
                secs = cfg.seq_window_size * net.params.l1_block_time / 2,
            ));
            0
        }
        Err(e) => {
            eprintln!("op-lite devnet init: {e}");
            1
        }
    }
}

/// Writes the devnet for `params` into `dir` (an existing devnet there only with `force`).
pub fn init(dir: &Path, params: DevnetParams, force: bool) -> Result<Devnet, String> {
    let net = Devnet::new(params)?;
    let names = [GENESIS_FILE, ROLLUP_FILE, JWT_FILE, KEYS_FILE];
    if !force {
        if let Some(f) = names.iter().map(|n| dir.join(n)).find(|p| files::exists(p)) {
            return Err(format!(
                "{} exists: {} already holds a devnet (--force replaces it; the engines' data must then be made anew)",
                f.display(),
                dir.display()
            ));
        }
    }
    files::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let f = dir::files(&net);
    for (name, text) in [(GENESIS_FILE, &f.genesis), (ROLLUP_FILE, &f.rollup), (KEYS_FILE, &f.keys)] {
        let path = dir.join(name);
        files::write(&path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let jwt = dir.join(JWT_FILE);
    files::remove(&jwt);
    crate::io::jwt::load_or_create_secret(&jwt)?;
    Ok(net)
}
