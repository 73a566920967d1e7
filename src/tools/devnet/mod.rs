//! `op-lite devnet`: the embedded default. Starts the devnet (L1 simulator with its beacon API,
//! a batcher, an engine stand-in) on loopback and runs the real node against it over HTTP,
//! printing the node's unsafe / safe / finalized heads as they advance, until Ctrl-C or until
//! the safe head reaches `--blocks N`. Node flags may follow and override the devnet's.
//!
//! `--from DIR` runs the devnet `op-lite devnet init DIR` wrote, whose genesis real execution
//! engines start from; `--engine` / `--sequencer-engine` name such engines.

pub mod engine;
pub mod init;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, RawArgs};
use crate::devnet::chain::{Devnet, DevnetParams, Sequencing};
use crate::devnet::dir::{self, JWT_FILE, L1_CHAIN_FILE, ROLLUP_FILE};
use crate::devnet::host::{DevnetHandle, DevnetOptions, EngineHandle};
use crate::devnet::report::Reporter;
use crate::driver::runtime_config::{ProtocolVersion, OP_LITE_SUPPORT};
use crate::io::files;
use crate::io::node::{exit_code, NodeThread, RunOptions, Shell};
use crate::io::upstream::EngineClient;
use crate::protocol::rollup::{Fork, RollupConfig};

const USAGE: &str = "\
usage: op-lite devnet [--blocks N] [--speed X] [--l1-port P] [--engine-port P] [CHAIN FLAGS] [NODE FLAGS...]
       op-lite devnet --with-sequencer [--blocks N] [CHAIN FLAGS] [NODE FLAGS...]
       op-lite devnet --light [--blocks N] [CHAIN FLAGS] [NODE FLAGS...]
       op-lite devnet --serve-only [--with-sequencer] [--speed X] [--l1-port P] [--engine-port P] [CHAIN FLAGS]
       op-lite devnet init DIR [...]     write a devnet for real execution engines (see devnet init --help)
       op-lite devnet engine --from DIR [--port P]   an engine stand-in for it (see devnet engine --help)
       op-lite devnet --from DIR --with-sequencer [--sequencer-engine URL] [--engine URL] [--blocks N]
                      [--serve-only] [NODE FLAGS...]

Runs a local chain in-process on 127.0.0.1 and the real node against it over HTTP:
an L1 simulator (JSON-RPC and beacon API) fed by a batcher that posts span batches as calldata
and as blobs, user deposits, and an engine stand-in behind JWT. Prints the node's L2 heads as
they move. Needs no external endpoint.

  --blocks N        stop once the node's safe head reaches L2 block N (default: run until Ctrl-C)
  --speed X         chain seconds per wall-clock second (default 4; L2 blocks every 2 chain s,
                    L1 blocks every 6)
  --l1-port P       port of the L1 JSON-RPC / beacon endpoint (default: any free port)
  --engine-port P   port of the engine stand-in (default: any free port)
  --protocol-version vX.Y.Z
                    the protocol version L1 signals as required (default: the one op-lite
                    supports); with --rollup.halt the node halts on a newer one (exit 3)
  --serve-only      run only the devnet (no node): prints the complete node command lines, their
                    files (rollup config, L1 chain config, JWT secret, P2P keys) in a directory
                    that stays after exit, and serves until Ctrl-C
  --with-sequencer  the L2 chain comes from a second op-lite node in sequencer mode (on its own
                    engine, in real time: --speed 1) that gossips its blocks to the verifier node
                    over libp2p on loopback; the batcher posts them to L1 and the verifier
                    derives them too
  --light           a light node: as --with-sequencer, plus a source node that derives the chain
                    from L1 (and gets the sequencer's blocks by gossip), and the node reported on
                    follows the source's safe and finalized heads over RPC (--l2.follow.source)
                    on an engine stand-in of its own, its unsafe blocks by gossip from the
                    sequencer; node flags apply to the light node

Chain flags (the rollup config; with --from, DIR/rollup.json fixes them):
  --fork NAME=SECONDS | NAME=off   fork schedule, as for devnet init (default: through jovian at genesis)
  --seq-window-size N              sequencing window, L1 blocks (default 100)
  --channel-timeout N              channel timeout, L1 blocks (default 50)

Real execution engines (op-reth, op-geth), started from DIR/genesis.json with DIR/jwt.hex:
  --from DIR                 run the devnet DIR holds (its genesis, rollup config, JWT secret); the
                             L1 mines the blocks since genesis at once, which must lie within half
                             the sequencing window
  --sequencer-engine URL     the sequencer node's engine (Engine API URL); the batcher reads the
                             blocks it sequenced there (eth_getBlockByNumber) and sends the users'
                             transfers to it (eth_sendRawTransaction). Default: an engine stand-in
  --engine URL               the verifier node's engine (default: an engine stand-in). Needs
                             --with-sequencer and --sequencer-engine: the verifier's engine rebuilds
                             the sequencer's blocks, and a stand-in's blocks a real engine cannot
                             reproduce (nor the reverse)
  Both engines must hold only the genesis block: the devnet's L1 is new on every run.

Any other flag is a node flag (see op-lite --help), e.g. --rpc.port 9545 --metrics.enabled
--log.level info. The node polls the devnet L1 head once per L1 block time (1.5s at --speed 4,
6s in real time: op-node's default 12s poll against 12s L1 blocks keeps the same ratio) and its
safe and finalized blocks every 4 L1 block times (the devnet L1 finalizes 4 blocks back); it runs
with --p2p.disable unless --with-sequencer connects it to the sequencer node. At exit it prints,
per node, the L1 blocks it followed and the L1 execution and beacon requests it made for them.
";

/// `vMAJOR.MINOR.PATCH` as a protocol version.
fn parse_version(v: &str) -> Option<ProtocolVersion> {
    let mut it = v.strip_prefix('v').unwrap_or(v).split('.').map(|p| p.parse::<u32>().ok());
    let (major, minor, patch) = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then(|| ProtocolVersion::v0(major, minor, patch, 0))
}

fn flag<T: std::str::FromStr>(p: &mut pico_args::Arguments, name: &'static str) -> Result<Option<T>, String> {
    p.opt_value_from_str::<_, String>(name)
        .map_err(|e| format!("{name}: {e}"))?
        .map(|v| v.parse::<T>().map_err(|_| format!("invalid value {v:?} for {name}")))
        .transpose()
}

/// What the command line asks for.
struct Args {
    blocks: Option<u64>,
    speed: f64,
    l1_port: u16,
    engine_port: u16,
    version: Option<ProtocolVersion>,
    serve_only: bool,
    with_sequencer: bool,
    light: bool,
    from: Option<PathBuf>,
    engine: Option<String>,
    seq_engine: Option<String>,
    forks: Vec<(Fork, Option<u64>)>,
    seq_window_size: Option<u64>,
    channel_timeout: Option<u64>,
}

fn parse(p: &mut pico_args::Arguments) -> Result<Args, String> {
    let blocks: Option<u64> = flag(p, "--blocks")?;
    let speed: Option<f64> = flag(p, "--speed")?;
    if let Some(s) = speed.filter(|s| !(0.1..=100.0).contains(s)) {
        return Err(format!("--speed {s}: must be between 0.1 and 100"));
    }
    let l1_port: u16 = flag(p, "--l1-port")?.unwrap_or(0);
    let engine_port: u16 = flag(p, "--engine-port")?.unwrap_or(0);
    let version = match flag::<String>(p, "--protocol-version")? {
        None => None,
        Some(v) => Some(
            parse_version(&v).ok_or(format!("--protocol-version: expected vMAJOR.MINOR.PATCH, got {v:?}"))?,
        ),
    };
    let mut forks = Vec::new();
    while let Some(v) = flag::<String>(p, "--fork")? {
        forks.push(crate::devnet::parse_fork(&v)?);
    }
    crate::devnet::fork_schedule(&forks)?;
    let a = Args {
        blocks,
        speed: speed.unwrap_or(4.0),
        l1_port,
        engine_port,
        version,
        serve_only: p.contains("--serve-only"),
        with_sequencer: p.contains("--with-sequencer"),
        light: p.contains("--light"),
        from: flag(p, "--from")?,
        engine: flag(p, "--engine")?,
        seq_engine: flag(p, "--sequencer-engine")?,
        forks,
        seq_window_size: flag(p, "--seq-window-size")?,
        channel_timeout: flag(p, "--channel-timeout")?,
    };
    if a.light {
        for (f, set) in
            [("--from", a.from.is_some()), ("--serve-only", a.serve_only), ("--engine", a.engine.is_some())]
        {
            if set {
                return Err(format!("--light runs three nodes on engine stand-ins: it does not take {f}"));
            }
        }
    }
    let a = Args { with_sequencer: a.with_sequencer || a.light, ..a };
    let fixed_by_dir = [
        ("--fork", !a.forks.is_empty()),
        ("--seq-window-size", a.seq_window_size.is_some()),
        ("--channel-timeout", a.channel_timeout.is_some()),
        ("--protocol-version", a.version.is_some()),
    ];
    if a.from.is_some() {
        if let Some((f, _)) = fixed_by_dir.iter().find(|(_, set)| *set) {
            return Err(format!("{f}: the devnet's chain is fixed by --from DIR (set it at devnet init)"));
        }
    } else if let Some(f) = [("--engine", a.engine.is_some()), ("--sequencer-engine", a.seq_engine.is_some())]
        .iter()
        .find(|(_, set)| *set)
        .map(|(f, _)| f)
    {
        return Err(format!(
            "{f} needs --from DIR: a real engine starts from the genesis `op-lite devnet init DIR` writes"
        ));
    }
    if (a.engine.is_some() || a.seq_engine.is_some()) && !a.with_sequencer {
        return Err(
            "--engine / --sequencer-engine need --with-sequencer: the devnet's own producer builds on \
                    the engine stand-in, whose blocks a real engine cannot reproduce"
                .into(),
        );
    }
    if a.engine.is_some() != a.seq_engine.is_some() {
        return Err("--engine and --sequencer-engine go together: the verifier's engine must rebuild the blocks \
                    the sequencer's built, hash for hash, and a stand-in does not reproduce a real engine's blocks \
                    (nor the reverse)"
            .into());
    }
    if a.with_sequencer || a.from.is_some() {
        match speed {
            Some(s) if s != 1.0 => {
                return Err(format!(
                    "--speed {s}: with --with-sequencer or --from the chain runs in real time (a sequencer keeps \
                     wall-clock block times)"
                ))
            }
            _ => return Ok(Args { speed: 1.0, ..a }),
        }
    }
    Ok(a)
}

/// Where the node's files are: a devnet directory, or a temporary one for this run (kept after
/// `--serve-only`, whose printed command lines name it).
struct NodeFiles {
    dir: PathBuf,
    temporary: bool,
}

impl NodeFiles {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

pub fn main(args: Vec<OsString>) -> u8 {
    match args.first().and_then(|a| a.to_str()) {
        Some("init") => return init::main(args[1..].to_vec()),
        Some("engine") => return engine::main(args[1..].to_vec()),
        _ => {}
    }
    let mut p = pico_args::Arguments::from_vec(args);
    if p.contains(["-h", "--help"]) {
        crate::io::out::print(USAGE);
        return 0;
    }
    let a = match parse(&mut p) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("op-lite devnet: {e}");
            return 2;
        }
    };
    let node_flags = p.finish();
    if a.serve_only {
        if let Some(f) = node_flags.first() {
            eprintln!("op-lite devnet: --serve-only takes no node flags (got {})", f.to_string_lossy());
            return 2;
        }
    }
    let sequencing = match (a.with_sequencer, &a.seq_engine) {
        (false, _) => Sequencing::Producer,
        (true, None) => Sequencing::NodeOnStandIn,
        (true, Some(_)) => Sequencing::NodeElsewhere,
    };
    let now = crate::io::clock::now();
    let prepared = match &a.from {
        Some(dir) => from_dir(dir, &a, now.unix()),
        None => temp_dir(&a, now.unix()),
    };
    let (files, mut params, jwt) = match prepared {
        Ok(v) => v,
        Err(e) => {
            eprintln!("op-lite devnet: {e}");
            return 1;
        }
    };
    params.sequencing = sequencing;
    let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let opts = DevnetOptions {
        l1_addr: loopback(a.l1_port),
        engine_addr: loopback(a.engine_port),
        engine_url: a.engine.clone(),
        seq_engine_url: a.seq_engine.clone(),
        speed: a.speed,
        keep_genesis: a.from.is_some(),
        params,
    };
    let code = match DevnetHandle::spawn(opts, jwt, now) {
        Err(e) => {
            eprintln!("op-lite devnet: failed to start the devnet: {e}");
            1
        }
        Ok(devnet) => {
            let written = if files.temporary { write_chain_files(&files, &devnet.rollup) } else { Ok(()) };
            let code = match written {
                Err(e) => {
                    eprintln!("op-lite devnet: {e}");
                    1
                }
                Ok(()) if a.serve_only => serve(&devnet, &files),
                Ok(()) => run_node(&devnet, &files, node_flags, a.blocks, a.light.then_some(jwt)),
            };
            drop(devnet);
            code
        }
    };
    if files.temporary && !a.serve_only {
        files::remove_dir_all(&files.dir);
    }
    code
}

/// A fresh devnet (genesis now) with its files in a temporary directory.
fn temp_dir(a: &Args, now: u64) -> Result<(NodeFiles, DevnetParams, [u8; 32]), String> {
    let d = DevnetParams::default();
    let params = DevnetParams {
        genesis_time: now,
        protocol_version: a.version.unwrap_or(OP_LITE_SUPPORT),
        forks: a.forks.clone(),
        seq_window_size: a.seq_window_size.unwrap_or(d.seq_window_size),
        channel_timeout: a.channel_timeout.unwrap_or(d.channel_timeout),
        ..d
    };
    let dir = files::temp_path(&format!("op-lite-devnet-{}", std::process::id()));
    files::remove_dir_all(&dir);
    files::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let files = NodeFiles { dir, temporary: true };
    let jwt = crate::io::jwt::load_or_create_secret(&files.path(JWT_FILE))?;
    Ok((files, params, jwt))
}

/// The rollup config and L1 chain config of a fresh devnet, once its genesis is known.
fn write_chain_files(files: &NodeFiles, rollup: &RollupConfig) -> Result<(), String> {
    let json = serde_json::to_string_pretty(rollup).unwrap_or_default();
    for (name, text) in [(ROLLUP_FILE, json), (L1_CHAIN_FILE, dir::l1_chain_json(rollup.l1_chain_id))] {
        let path = files.path(name);
        files::write(&path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// The rollup config, devnet parameters and JWT secret of the devnet in `dir`, checked: the
/// rollup config is the one those parameters rebuild.
pub fn load_dir(dir: &Path) -> Result<(RollupConfig, DevnetParams, [u8; 32]), String> {
    let path = dir.join(ROLLUP_FILE);
    let text = files::read_to_string(&path, files::MAX_CONFIG_FILE).map_err(|e| {
        format!(
            "{}: {e} (write the devnet with `op-lite devnet init {}` first)",
            path.display(),
            dir.display()
        )
    })?;
    let cfg = RollupConfig::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let params = dir::params_for(&cfg);
    let rebuilt = Devnet::new(params.clone())?;
    dir::check_rebuilt(&cfg, rebuilt.rollup_config()).map_err(|e| format!("{}: {e}", dir.display()))?;
    let jwt_path = dir.join(JWT_FILE);
    let jwt_text = files::read_to_string(&jwt_path, files::MAX_SMALL_FILE)
        .map_err(|e| format!("{}: {e}", jwt_path.display()))?;
    let jwt = crate::protocol::primitives::from_hex_fixed::<32>(jwt_text.trim())
        .map_err(|e| format!("{}: {e} (want 32 bytes hex)", jwt_path.display()))?;
    Ok((cfg, params, jwt))
}

/// The devnet `op-lite devnet init` wrote into `dir`, checked: the rollup config is the one the
/// devnet rebuilds, its genesis recent enough to catch up within the sequencing window, and
/// the engines named hold that genesis and nothing after it.
fn from_dir(dir: &Path, a: &Args, now: u64) -> Result<(NodeFiles, DevnetParams, [u8; 32]), String> {
    let (cfg, params, jwt) = load_dir(dir)?;
    let age = now.saturating_sub(cfg.genesis.l2_time);
    let window = cfg.seq_window_size * params.l1_block_time;
    if age > window / 2 {
        return Err(format!(
            "{d}'s genesis is {age} s old; its L1 would have to mine {blocks} blocks at once and the sequencer \
             to build every L2 block since, which only works within half the sequencing window ({half} s). \
             Write a new genesis with `op-lite devnet init {d} --force` (with --seq-window-size N for a longer \
             window), and start the engines afresh from it (op-reth: a new --datadir)",
            d = dir.display(),
            blocks = age / params.l1_block_time,
            half = window / 2,
        ));
    }
    let l1_chain = dir.join(L1_CHAIN_FILE);
    if !files::exists(&l1_chain) {
        files::write(&l1_chain, dir::l1_chain_json(cfg.l1_chain_id).as_bytes())
            .map_err(|e| format!("{}: {e}", l1_chain.display()))?;
    }
    let cfg = std::sync::Arc::new(cfg);
    for (role, url) in [("sequencer", &a.seq_engine), ("verifier", &a.engine)] {
        if let Some(url) = url {
            check_engine(role, url, jwt, &cfg, dir)?;
        }
    }
    Ok((NodeFiles { dir: dir.to_path_buf(), temporary: false }, params, jwt))
}

/// An engine for the devnet in `dir` answers with the JWT secret, on the devnet's chain, with
/// its genesis and no block after it. Waits up to 20 s for one still starting.
fn check_engine(
    role: &str,
    url: &str,
    jwt: [u8; 32],
    cfg: &std::sync::Arc<RollupConfig>,
    dir: &Path,
) -> Result<(), String> {
    let mut client = EngineClient::new(url, jwt, Duration::from_secs(5), cfg.clone());
    let deadline = crate::io::clock::mono() + Duration::from_secs(20);
    let chain_id = loop {
        match client.chain_id() {
            Ok(id) => break id,
            Err(crate::io::rpc_client::ClientError::Transport(e)) if crate::io::clock::mono() < deadline => {
                log::debug!("{role} engine {url}: {e}; retrying");
                crate::io::clock::sleep(Duration::from_millis(500));
            }
            Err(e) => {
                return Err(format!(
                    "{role} engine {url}: {e} (is it running, with --authrpc.jwtsecret {}?)",
                    dir.join(JWT_FILE).display()
                ))
            }
        }
    };
    if chain_id != cfg.l2_chain_id {
        return Err(format!(
            "{role} engine {url} runs chain {chain_id}, the devnet chain {}: start it from {}",
            cfg.l2_chain_id,
            dir.join(dir::GENESIS_FILE).display()
        ));
    }
    let at = |tag: &str, client: &mut EngineClient| {
        client.block_id(tag).map_err(|e| format!("{role} engine {url}: block {tag}: {e}"))
    };
    match at("0x0", &mut client)? {
        Some((_, h)) if h == cfg.genesis.l2.hash => {}
        other => {
            return Err(format!(
                "{role} engine {url} has genesis {}, {} names {}: start it from {} (op-reth: --chain, with a new --datadir)",
                other.map_or("(none)".into(), |(_, h)| h.to_string()),
                dir.join(ROLLUP_FILE).display(),
                cfg.genesis.l2.hash,
                dir.join(dir::GENESIS_FILE).display()
            ))
        }
    }
    if let Some((n, _)) = at("latest", &mut client)?.filter(|(n, _)| *n > 0) {
        return Err(format!(
            "{role} engine {url} already holds L2 blocks up to {n} from an earlier run; the devnet's L1 is new on \
             every run, so its engines start at genesis: remove the engine's data (op-reth: its --datadir), start \
             it again from {}, and run the devnet again",
            dir.join(dir::GENESIS_FILE).display()
        ));
    }
    Ok(())
}

/// Which node a command line is for.
enum Role<'a> {
    /// Signs and gossips its blocks from `p2p_port` (0: any); RPC on `rpc_port`.
    Sequencer { p2p_port: u16, rpc_port: u16 },
    /// Follows L1, and the sequencer at `static_peer` by gossip when there is one.
    Verifier { static_peer: Option<&'a str> },
    /// `--light`'s source: a verifier that also serves RPC on a free port.
    Source { static_peer: &'a str },
    /// `--light`'s light node: follows `source` over RPC on its own `engine`, gossip from
    /// the sequencer.
    Light { static_peer: &'a str, source: &'a str, engine: &'a str },
}

/// L1 block times between safe / finalized polls: the devnet L1 finalizes 4 blocks behind its
/// head (op-node's default 6m24s is the 32 slots of a real L1's epoch).
const EPOCH_POLL_BLOCKS: u32 = 4;

/// A node's flags against the devnet (complete: an operator can run them as printed). The head
/// is polled once per L1 block time, op-node's ratio (12s against 12s blocks).
fn node_args(devnet: &DevnetHandle, files: &NodeFiles, role: &Role<'_>) -> Vec<String> {
    let path = |name: &str| files.path(name).to_string_lossy().into_owned();
    let engine = match role {
        Role::Sequencer { .. } => devnet.seq_engine_url.clone().unwrap_or_default(),
        Role::Verifier { .. } | Role::Source { .. } => devnet.engine_url.clone(),
        Role::Light { engine, .. } => engine.to_string(),
    };
    let mut args: Vec<String> = vec![
        "--rollup.config".into(),
        path(ROLLUP_FILE),
        "--rollup.l1-chain-config".into(),
        path(L1_CHAIN_FILE),
        "--l1".into(),
        devnet.l1_url.clone(),
        "--l1.beacon".into(),
        devnet.l1_url.clone(),
        "--l2".into(),
        engine,
        "--l2.jwt-secret".into(),
        path(JWT_FILE),
        "--l1.http-poll-interval".into(),
        format!("{}ms", devnet.l1_block_wall.as_millis().max(1)),
        // The devnet's nodes find each other through --p2p.static; discv5 would ask op-node's
        // public bootnodes (and keep a peer store in the working directory).
        "--p2p.no-discovery".into(),
        "--l1.epoch-poll-interval".into(),
        format!("{}ms", (devnet.l1_block_wall * EPOCH_POLL_BLOCKS).as_millis().max(1)),
    ];
    let more: Vec<String> = match role {
        Role::Sequencer { p2p_port, rpc_port } => {
            // The key the devnet's SystemConfig names as the unsafe block signer.
            let key = crate::devnet::l1_sim::Account::from_seed(dir::SEQUENCER_SEED).secret();
            vec![
                "--sequencer.enabled".into(),
                "--p2p.sequencer.key".into(),
                crate::protocol::primitives::to_hex(&key),
                "--p2p.listen.ip".into(),
                "127.0.0.1".into(),
                "--p2p.listen.tcp".into(),
                p2p_port.to_string(),
                "--p2p.priv.path".into(),
                path("sequencer.p2p.key"),
                "--rpc.port".into(),
                rpc_port.to_string(),
            ]
        }
        Role::Verifier { static_peer: Some(peer) } => gossip_peer(peer, path("verifier.p2p.key")),
        Role::Verifier { static_peer: None } => vec!["--p2p.disable".into()],
        Role::Source { static_peer } => {
            let mut a = gossip_peer(static_peer, path("source.p2p.key"));
            a.extend(["--rpc.port".into(), "0".into()]);
            a
        }
        Role::Light { static_peer, source, .. } => {
            let mut a = gossip_peer(static_peer, path("light.p2p.key"));
            a.extend(["--l2.follow.source".into(), source.to_string()]);
            a
        }
    };
    args.extend(more);
    args
}

/// A node that gossips with the sequencer at `peer` from any loopback port, its key at `key`.
fn gossip_peer(peer: &str, key: String) -> Vec<String> {
    let flags =
        ["--p2p.listen.ip", "127.0.0.1", "--p2p.listen.tcp", "0", "--p2p.static", peer, "--p2p.priv.path"];
    let mut a: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    a.push(key);
    a
}

/// A node's configuration from its flags and `extra` (which win).
fn node_config(args: Vec<String>, extra: Vec<OsString>) -> Result<(Config, Vec<String>), u8> {
    let mut all: Vec<OsString> = args.into_iter().map(OsString::from).collect();
    all.extend(extra);
    let env: Vec<(String, String)> = std::env::vars().collect();
    let raw = RawArgs::parse(all, &env).map_err(|e| {
        eprintln!("op-lite devnet: {e}");
        2u8
    })?;
    let read = |p: &str| files::read_to_string(p, files::MAX_CONFIG_FILE);
    let config = Config::from_raw(&raw, &read).map_err(|e| {
        eprintln!("op-lite devnet: {e}");
        2u8
    })?;
    Ok((config, raw.warnings))
}

/// `--serve-only`: the devnet for nodes run separately (other processes, a service manager).
/// Prints their command lines and serves until SIGINT / SIGTERM; the files stay.
fn serve(devnet: &DevnetHandle, files: &NodeFiles) -> u8 {
    let engines = match &devnet.seq_engine_url {
        Some(seq) => format!("verifier engine at {}, sequencer engine at {seq}", devnet.engine_url),
        None => format!("engine stand-in at {}", devnet.engine_url),
    };
    let mut out = format!("devnet serving: L1 and beacon at {}, {engines}\n", devnet.l1_url);
    let line = |args: Vec<String>| format!("  op-lite {}\n", args.join(" "));
    if devnet.seq_engine_url.is_some() {
        let key_path = files.path("sequencer.p2p.key");
        let peer = crate::io::p2p::load_or_create_key(&key_path)
            .and_then(|k| Ok((k, crate::io::p2p::free_loopback_port().map_err(|e| e.to_string())?)));
        let (key, port) = match peer {
            Ok(v) => v,
            Err(e) => {
                eprintln!("op-lite devnet: {}: {e}", key_path.display());
                return 1;
            }
        };
        let addr = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", key.peer_id());
        out += "run the sequencer node with:\n";
        out += &line(node_args(devnet, files, &Role::Sequencer { p2p_port: port, rpc_port: 9546 }));
        out += "and the verifier node with:\n";
        out += &line(node_args(devnet, files, &Role::Verifier { static_peer: Some(&addr) }));
    } else {
        out += "run the node with:\n";
        out += &line(node_args(devnet, files, &Role::Verifier { static_peer: None }));
    }
    out += &format!("(files in {}, kept after exit)", files.dir.display());
    crate::io::out::println(&out);
    match crate::io::signals::wait_for_stop() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("op-lite devnet: {e}");
            1
        }
    }
}

fn run_node(
    devnet: &DevnetHandle,
    files: &NodeFiles,
    user: Vec<OsString>,
    blocks: Option<u64>,
    light: Option<[u8; 32]>,
) -> u8 {
    let quiet = || vec![OsString::from("--log.level"), OsString::from("warn")];
    let with_user = |u: &[OsString]| quiet().into_iter().chain(u.iter().cloned()).collect::<Vec<_>>();
    // The log is the process's: set up from the user's flags before either node starts.
    match node_config(node_args(devnet, files, &Role::Verifier { static_peer: None }), with_user(&user)) {
        Ok((c, _)) => crate::io::log::init(c.log.level, c.log.format, c.log.color),
        Err(code) => return code,
    }
    if files.temporary {
        // Fresh identities for a fresh chain.
        for who in ["sequencer", "verifier", "source", "light"] {
            files::remove(&files.path(&format!("{who}.p2p.key")));
        }
    }
    let sequencer = match &devnet.seq_engine_url {
        Some(_) => {
            let args = node_args(devnet, files, &Role::Sequencer { p2p_port: 0, rpc_port: 0 });
            let (seq_config, _) = match node_config(args, quiet()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match NodeThread::spawn(seq_config, "sequencer") {
                Ok(t) => Some(t),
                Err(e) => {
                    log::error!("sequencer node: {e}");
                    return 1;
                }
            }
        }
        None => None,
    };
    let static_peer = sequencer.as_ref().and_then(|s| s.p2p.as_ref()).map(|a| a.to_string());
    // --light: the source node on the devnet's engine, the light node on an engine of its own.
    let (source, light_engine) = match (light, static_peer.as_deref()) {
        (Some(jwt), Some(peer)) => match start_source(devnet, files, peer, jwt) {
            Ok(v) => (Some(v.0), Some(v.1)),
            Err(e) => {
                log::error!("{e}");
                return 1;
            }
        },
        _ => (None, None),
    };
    let source_url = source.as_ref().and_then(|s| s.rpc).map(|a| format!("http://{a}"));
    let role = match (static_peer.as_deref(), &source_url, &light_engine) {
        (Some(peer), Some(source), Some(engine)) => {
            Role::Light { static_peer: peer, source, engine: &engine.url }
        }
        (peer, _, _) => Role::Verifier { static_peer: peer },
    };
    let args = node_args(devnet, files, &role);
    let (config, warnings) = match node_config(args, with_user(&user)) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for w in &warnings {
        log::warn!("{w}");
    }
    let mut shell = match Shell::start(config, RunOptions::default()) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            return e.exit_code();
        }
    };
    // The progress lines go to standard output; once nobody reads it, the node stops.
    let reporter = Reporter::new(blocks, Box::new(crate::io::out::println));
    let safe_updates = reporter.safe_updates.clone();
    shell.node.core.derivers.extra.push(("devnet-reporter", Box::new(reporter)));
    let engine_url = light_engine.as_ref().map_or(devnet.engine_url.as_str(), |e| e.url.as_str());
    crate::io::out::println(&format!(
        "devnet: L1 and beacon at {}, {} at {}, {}node RPC at {}",
        devnet.l1_url,
        if devnet.engine_is_stand_in { "engine stand-in" } else { "engine" },
        engine_url,
        if light_engine.is_some() { "light " } else { "" },
        shell.rpc_addr().map_or("(none)".into(), |a| format!("http://{a}"))
    ));
    if let Some(url) = &source_url {
        crate::io::out::println(&format!(
            "devnet: source node (deriving from L1) on engine stand-in {}, its RPC at {url}",
            devnet.engine_url
        ));
    }
    if let (Some(s), Some(url)) = (&sequencer, &devnet.seq_engine_url) {
        crate::io::out::println(&format!(
            "devnet: sequencer node on engine {url}, its RPC at {}",
            s.rpc.map_or("(none)".into(), |a| format!("http://{a}"))
        ));
    }
    let stats = shell.rpc_stats();
    let code = exit_code(&shell.run());
    let seq_stats = sequencer.as_ref().map(|s| s.rpc_stats.clone());
    let source_stats = source.as_ref().map(|s| s.rpc_stats.clone());
    drop(source);
    drop(sequencer);
    let who = if light_engine.is_some() { "light node" } else { "verifier" };
    crate::io::out::println(&l1_usage(who, &stats));
    if light_engine.is_some() {
        let updates = safe_updates.get();
        let l1 = stats.requests("l1");
        let per = if updates == 0 { "-".to_string() } else { format!("{:.2}", l1 as f64 / updates as f64) };
        crate::io::out::println(&format!(
            "devnet: light node: {updates} safe-head updates, {per} L1 requests per update, {} follow-source requests",
            stats.requests("follow-source-api")
        ));
    }
    if let Some(s) = source_stats {
        crate::io::out::println(&l1_usage("source", &s));
    }
    if let Some(s) = seq_stats {
        crate::io::out::println(&l1_usage("sequencer", &s));
    }
    code
}

/// `--light`'s source node (a verifier with RPC, gossip from the sequencer at `peer`) and the
/// light node's engine stand-in (the devnet's genesis, JWT secret `jwt`).
fn start_source(
    devnet: &DevnetHandle,
    files: &NodeFiles,
    peer: &str,
    jwt: [u8; 32],
) -> Result<(NodeThread, EngineHandle), String> {
    let args = node_args(devnet, files, &Role::Source { static_peer: peer });
    let quiet = vec![OsString::from("--log.level"), OsString::from("warn")];
    let (config, _) = node_config(args, quiet).map_err(|_| "source node: bad flags".to_string())?;
    let source = NodeThread::spawn(config, "source").map_err(|e| format!("source node: {e}"))?;
    let params = crate::devnet::dir::params_for(&devnet.rollup);
    let engine = EngineHandle::spawn(params, jwt, SocketAddr::from(([127, 0, 0, 1], 0)))
        .map_err(|e| format!("light node's engine stand-in: {e}"))?;
    Ok((source, engine))
}

/// One line on a node's L1 use: the L1 blocks it followed (its L1 head's advance), its L1
/// execution and beacon requests, the requests per L1 block, and the split by method.
fn l1_usage(who: &str, stats: &crate::io::rpc_client::RpcStats) -> String {
    let blocks = stats.l1_heads().map_or(0, |(first, last)| last.saturating_sub(first));
    let (l1, beacon) = (stats.requests("l1"), stats.requests("l1-beacon"));
    let per_block =
        |n: u64| if blocks == 0 { "-".to_string() } else { format!("{:.2}", n as f64 / blocks as f64) };
    let split = |rpc: &str| {
        stats.requests_by_method(rpc).iter().map(|(m, n)| format!("{m} {n}")).collect::<Vec<_>>().join(", ")
    };
    format!(
        "devnet: {who}: {blocks} L1 blocks followed, {l1} L1 requests ({} per block: {}), {beacon} beacon requests ({} per block: {})",
        per_block(l1),
        split("l1"),
        per_block(beacon),
        split("l1-beacon"),
    )
}
