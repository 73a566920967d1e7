//! `op-lite p2p`: op-node's P2P key helpers. `priv2id` reads a hex private key from standard
//! input (or `--file`) and prints its libp2p peer id; `genkey` prints a new private key;
//! `enr decode` prints a node record (EIP-778) as JSON.

use std::ffi::OsString;

use crate::io::files::{read_to_string, MAX_CONFIG_FILE};
use crate::p2p::identity::Keypair;

const USAGE: &str = "\
usage: op-lite p2p priv2id [--file PATH]   print the peer id of a hex private key (stdin by default)
       op-lite p2p genkey                  print a new hex private key (for --p2p.priv.path)
       op-lite p2p enr decode ENR          print a node record as JSON (seq, node id, key, addresses,
                                           op-node's opstack entry, whether its signature is valid)
";

pub fn main(args: Vec<OsString>) -> u8 {
    let mut p = pico_args::Arguments::from_vec(args);
    if p.contains(["-h", "--help"]) {
        crate::io::out::print(USAGE);
        return 0;
    }
    let cmd: Option<String> = p.subcommand().ok().flatten();
    match cmd.as_deref() {
        Some("priv2id") => {
            let file: Option<String> = match p.opt_value_from_str("--file") {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("op-lite p2p priv2id: {e}");
                    return 2;
                }
            };
            if let Some(e) = super::unexpected(&p.finish()) {
                eprintln!("op-lite p2p priv2id: {e} (the key file is given with --file)");
                return 2;
            }
            let text = match file {
                Some(f) => read_to_string(&f, MAX_CONFIG_FILE).map_err(|e| format!("{f}: {e}")),
                None => read_to_string("-", MAX_CONFIG_FILE).map_err(|e| format!("stdin: {e}")),
            };
            match text.and_then(|t| Keypair::from_hex(&t).map_err(|e| e.to_string())) {
                Ok(k) => {
                    crate::io::out::println(&k.peer_id().to_string());
                    0
                }
                Err(e) => {
                    eprintln!("op-lite p2p priv2id: {e}");
                    1
                }
            }
        }
        Some("genkey") => {
            if let Some(e) = super::unexpected(&p.finish()) {
                eprintln!("op-lite p2p genkey: {e}");
                return 2;
            }
            match crate::io::p2p::generate_key() {
                Ok(k) => {
                    crate::io::out::println(&k.to_hex());
                    0
                }
                Err(e) => {
                    eprintln!("op-lite p2p genkey: {e}");
                    1
                }
            }
        }
        Some("enr") => {
            let sub: Option<String> = p.subcommand().ok().flatten();
            let rest = p.finish();
            let (Some("decode"), [record]) = (sub.as_deref(), rest.as_slice()) else {
                eprint!("{USAGE}");
                return 2;
            };
            let text = record.to_string_lossy();
            match crate::p2p::discovery::enr::Enr::from_text(&text) {
                Ok(e) => {
                    crate::io::out::println(&e.to_json().to_string());
                    0
                }
                Err(e) => {
                    eprintln!("op-lite p2p enr decode: {e}");
                    1
                }
            }
        }
        _ => {
            eprint!("{USAGE}");
            2
        }
    }
}
