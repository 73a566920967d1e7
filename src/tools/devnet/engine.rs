//! `op-lite devnet engine --from DIR`: the engine stand-in on its own port, started from the
//! devnet DIR holds, as op-reth would be from DIR/genesis.json: a stand-in for a real engine
//! where none is installed (and in the tests of `devnet --from`).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::flag;
use crate::devnet::host::EngineHandle;

pub const USAGE: &str = "\
usage: op-lite devnet engine --from DIR [--port P]

Serves the devnet's engine stand-in (Engine API, eth_getBlockBy*, eth_sendRawTransaction,
eth_chainId, behind DIR/jwt.hex) on 127.0.0.1:P (default: any free port), from DIR's genesis.
It executes nothing: its blocks follow from their attributes alone. Prints its URL, serves
until Ctrl-C.
";

pub fn main(args: Vec<OsString>) -> u8 {
    let mut p = pico_args::Arguments::from_vec(args);
    if p.contains(["-h", "--help"]) {
        crate::io::out::print(USAGE);
        return 0;
    }
    let parsed = (|| -> Result<(PathBuf, u16), String> {
        let dir: PathBuf = flag(&mut p, "--from")?.ok_or("--from DIR is required")?;
        let port = flag(&mut p, "--port")?.unwrap_or(0);
        if let Some(e) = crate::tools::unexpected(&p.finish()) {
            return Err(e);
        }
        Ok((dir, port))
    })();
    let (dir, port) = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!("op-lite devnet engine: {e}\n\n{USAGE}");
            return 2;
        }
    };
    let (cfg, params, jwt) = match super::load_dir(&dir) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("op-lite devnet engine: {e}");
            return 1;
        }
    };
    let engine = match EngineHandle::spawn(params, jwt, SocketAddr::from(([127, 0, 0, 1], port))) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("op-lite devnet engine: {e}");
            return 1;
        }
    };
    crate::io::out::println(&format!(
        "engine stand-in serving at {} (chain {}, genesis {})",
        engine.url, cfg.l2_chain_id, cfg.genesis.l2.hash
    ));
    match crate::io::signals::wait_for_stop() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("op-lite devnet engine: {e}");
            1
        }
    }
}
