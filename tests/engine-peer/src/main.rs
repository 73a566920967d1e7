//! `engine-peer`: an executing OP Stack execution engine for op-lite's tests, on the OP EVM
//! (`alloy-op-evm` over `op-revm`) with the state in memory.
//!
//! usage: engine-peer --genesis DIR/genesis.json --jwt DIR/jwt.hex [--port P] [--datadir D]
//!                    [--forget-last N] [--pool N]
//!
//! Prints `engine-peer serving at http://127.0.0.1:PORT` once listening. With `--datadir`, the
//! blocks it imports and its forkchoice are kept there and replayed at the next start;
//! `--forget-last N` then drops the last N canonical blocks first, as an engine that restarts
//! without its unpersisted blocks does (op-reth did: 77 -> 75).

mod chain;
mod genesis;
mod http;
mod mempool;
mod rpc;
mod state;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{json, Value};

use chain::Chain;

struct Args {
    genesis: PathBuf,
    jwt: PathBuf,
    port: u16,
    datadir: Option<PathBuf>,
    forget_last: u64,
    pool: usize,
}

const USAGE: &str =
    "usage: engine-peer --genesis FILE --jwt FILE [--port P] [--datadir DIR] [--forget-last N] [--pool N]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        genesis: PathBuf::new(),
        jwt: PathBuf::new(),
        port: 0,
        datadir: None,
        forget_last: 0,
        pool: 4096,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--genesis" => a.genesis = value()?.into(),
            "--jwt" => a.jwt = value()?.into(),
            "--port" => a.port = value()?.parse().map_err(|_| "--port: a number")?,
            "--datadir" => a.datadir = Some(value()?.into()),
            "--forget-last" => a.forget_last = value()?.parse().map_err(|_| "--forget-last: a number")?,
            "--pool" => a.pool = value()?.parse().map_err(|_| "--pool: a number")?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if a.genesis.as_os_str().is_empty() || a.jwt.as_os_str().is_empty() {
        return Err(USAGE.into());
    }
    Ok(a)
}

fn read_secret(path: &Path) -> Result<[u8; 32], String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes: alloy_primitives::Bytes =
        text.trim().parse().map_err(|e| format!("{}: {e}", path.display()))?;
    bytes.as_ref().try_into().map_err(|_| format!("{}: want 32 bytes hex", path.display()))
}

/// The files `--datadir` keeps: imported blocks (newPayload calls, one JSON line each) and the
/// last forkchoice state.
struct Store {
    blocks: PathBuf,
    forkchoice: PathBuf,
}

impl Store {
    fn open(dir: &Path) -> Result<Store, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Store { blocks: dir.join("blocks.jsonl"), forkchoice: dir.join("forkchoice.json") })
    }

    /// Replays what was kept into `chain`, dropping the last `forget` canonical blocks.
    fn replay(&self, chain: &mut Chain, forget: u64) -> Result<(), String> {
        let text = std::fs::read_to_string(&self.blocks).unwrap_or_default();
        for line in text.lines() {
            let call: Value =
                serde_json::from_str(line).map_err(|e| format!("{}: {e}", self.blocks.display()))?;
            let method = call["method"].as_str().unwrap_or_default();
            rpc::call(chain, method, &call["params"])
                .map_err(|e| format!("replaying {method}: {}", e.message))?;
        }
        if let Ok(fc) = std::fs::read_to_string(&self.forkchoice) {
            let fc: Value =
                serde_json::from_str(&fc).map_err(|e| format!("{}: {e}", self.forkchoice.display()))?;
            rpc::call(chain, "engine_forkchoiceUpdatedV3", &json!([fc, null]))
                .map_err(|e| format!("replaying the forkchoice: {}", e.message))?;
        }
        if forget > 0 {
            let head = chain.head().header.number;
            let keep = head.saturating_sub(forget);
            let kept = chain.canonical[keep as usize];
            chain.blocks.retain(|_, b| b.header.number <= keep);
            chain.canonical.truncate(keep as usize + 1);
            for h in [&mut chain.safe, &mut chain.finalized] {
                if !chain.blocks.contains_key(h) {
                    *h = kept;
                }
            }
            eprintln!("engine-peer: forgot blocks {}..={head}, head is {keep}", keep + 1);
            let blocks = &chain.blocks;
            let kept_lines: Vec<&str> = text
                .lines()
                .filter(|l| {
                    serde_json::from_str::<Value>(l)
                        .ok()
                        .and_then(|c| {
                            c["params"][0]["blockHash"]
                                .as_str()
                                .and_then(|h| h.parse::<alloy_primitives::B256>().ok())
                        })
                        .is_some_and(|h| blocks.contains_key(&h))
                })
                .collect();
            let mut out = kept_lines.join("\n");
            if !out.is_empty() {
                out.push('\n');
            }
            std::fs::write(&self.blocks, out).map_err(|e| e.to_string())?;
            self.save_forkchoice(chain);
        }
        Ok(())
    }

    fn save_block(&self, method: &str, params: &Value) {
        let line = json!({"method": method, "params": params}).to_string();
        let r = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.blocks)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = r {
            eprintln!("engine-peer: {}: {e}", self.blocks.display());
        }
    }

    fn save_forkchoice(&self, chain: &Chain) {
        let fc = json!({
            "headBlockHash": chain.head().hash,
            "safeBlockHash": chain.safe,
            "finalizedBlockHash": chain.finalized,
        });
        if let Err(e) = std::fs::write(&self.forkchoice, fc.to_string()) {
            eprintln!("engine-peer: {}: {e}", self.forkchoice.display());
        }
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let run = || -> Result<(), String> {
        let genesis: Value = serde_json::from_str(
            &std::fs::read_to_string(&args.genesis)
                .map_err(|e| format!("{}: {e}", args.genesis.display()))?,
        )
        .map_err(|e| format!("{}: {e}", args.genesis.display()))?;
        let secret = read_secret(&args.jwt)?;
        let mut chain = Chain::new(&genesis, args.pool)?;
        let store = args.datadir.as_deref().map(Store::open).transpose()?;
        if let Some(s) = &store {
            s.replay(&mut chain, args.forget_last)?;
        }
        let listener = std::net::TcpListener::bind(("127.0.0.1", args.port)).map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!(
            "engine-peer serving at http://{addr} (chain {}, genesis {}, head {})",
            chain.spec.chain_id,
            chain.genesis,
            chain.head().header.number
        );
        let _ = std::io::stdout().flush();
        let chain = Mutex::new(chain);
        http::serve(listener, secret, move |req| {
            let id = req.get("id").cloned().unwrap_or(Value::Null);
            let method = req["method"].as_str().unwrap_or_default();
            let params = req.get("params").cloned().unwrap_or(json!([]));
            let mut chain = chain.lock().unwrap_or_else(|e| e.into_inner());
            let blocks_before = chain.blocks.len();
            let result = rpc::call(&mut chain, method, &params);
            if let (Some(s), Ok(_)) = (&store, &result) {
                if method.starts_with("engine_newPayload") && chain.blocks.len() > blocks_before {
                    s.save_block(method, &params);
                }
                if method.starts_with("engine_forkchoiceUpdated") {
                    s.save_forkchoice(&chain);
                }
            }
            match result {
                Ok(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
                Err(e) => {
                    json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}})
                }
            }
        });
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("engine-peer: {e}");
        std::process::exit(1);
    }
}
