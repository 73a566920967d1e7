//! `op-lite devnet`: the embedded default. Starts the devnet (L1 simulator with its beacon API,
//! a batcher, an engine stand-in) on loopback and runs the real node against it over HTTP,
//! printing the node's unsafe / safe / finalized heads as they advance, until Ctrl-C or until
//! the safe head reaches `--blocks N`. Node flags may follow and override the devnet's.

pub mod init;

use std::ffi::OsString;
use std::net::SocketAddr;

use crate::config::{Config, RawArgs};
use crate::devnet::chain::DevnetParams;
use crate::devnet::host::{DevnetHandle, DevnetOptions};
use crate::devnet::report::Reporter;
use crate::devnet::DEVNET_L1_CHAIN_ID;
use crate::driver::runtime_config::{ProtocolVersion, OP_LITE_SUPPORT};
use crate::io::files;
use crate::io::node::{exit_code, NodeThread, RunOptions, Shell};
use crate::protocol::l1_chain::L1ChainSpec;

const USAGE: &str = "\
usage: op-lite devnet init DIR [...]   (see op-lite devnet init --help)
       op-lite devnet [--blocks N] [--speed X] [--l1-port P] [--engine-port P] [NODE FLAGS...]
       op-lite devnet --with-sequencer [--blocks N] [NODE FLAGS...]
       op-lite devnet --serve-only [--speed X] [--l1-port P] [--engine-port P]

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
  --serve-only      run only the devnet (no node): prints the node command line, with the rollup
                    config and JWT secret written to temporary files, and serves until Ctrl-C
  --with-sequencer  the L2 chain comes from a second op-lite node in sequencer mode (on its own
                    engine stand-in, in real time: --speed 1) that gossips its blocks to the
                    verifier node over libp2p on loopback; the batcher posts them to L1 and the
                    verifier derives them too

Any other flag is a node flag (see op-lite --help), e.g. --rpc.port 9545 --metrics.enabled
--log.level info. The node polls the devnet L1 every 250ms; it runs with --p2p.disable unless
--with-sequencer connects it to the sequencer node.
";

/// `vMAJOR.MINOR.PATCH` as a protocol version.
fn parse_version(v: &str) -> Option<ProtocolVersion> {
    let mut it = v.strip_prefix('v').unwrap_or(v).split('.').map(|p| p.parse::<u32>().ok());
    let (major, minor, patch) = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then(|| ProtocolVersion::v0(major, minor, patch, 0))
}

/// The rollup config path the node is given; its contents come from the devnet.
const DEVNET_ROLLUP: &str = "<devnet rollup config>";

fn flag<T: std::str::FromStr>(p: &mut pico_args::Arguments, name: &'static str) -> Result<Option<T>, String> {
    p.opt_value_from_str::<_, String>(name)
        .map_err(|e| format!("{name}: {e}"))?
        .map(|v| v.parse::<T>().map_err(|_| format!("invalid value {v:?} for {name}")))
        .transpose()
}

pub fn main(args: Vec<OsString>) -> u8 {
    if args.first().is_some_and(|a| a == "init") {
        return init::main(args[1..].to_vec());
    }
    let mut p = pico_args::Arguments::from_vec(args);
    if p.contains(["-h", "--help"]) {
        crate::io::out::print(USAGE);
        return 0;
    }
    let parsed = (|| -> Result<_, String> {
        let blocks: Option<u64> = flag(&mut p, "--blocks")?;
        let speed: f64 = flag(&mut p, "--speed")?.unwrap_or(4.0);
        if !(0.1..=100.0).contains(&speed) {
            return Err(format!("--speed {speed}: must be between 0.1 and 100"));
        }
        let l1_port: u16 = flag(&mut p, "--l1-port")?.unwrap_or(0);
        let engine_port: u16 = flag(&mut p, "--engine-port")?.unwrap_or(0);
        let version = match flag::<String>(&mut p, "--protocol-version")? {
            None => OP_LITE_SUPPORT,
            Some(v) => parse_version(&v)
                .ok_or(format!("--protocol-version: expected vMAJOR.MINOR.PATCH, got {v:?}"))?,
        };
        let with_sequencer = p.contains("--with-sequencer");
        let speed = match (with_sequencer, speed) {
            (true, s) if s != 4.0 && s != 1.0 => {
                return Err(format!("--speed {s}: --with-sequencer runs in real time (the sequencer keeps wall-clock block times)"))
            }
            (true, _) => 1.0,
            (false, s) => s,
        };
        Ok((blocks, speed, l1_port, engine_port, p.contains("--serve-only"), version, with_sequencer))
    })();
    let (blocks, speed, l1_port, engine_port, serve_only, version, with_sequencer) = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!("op-lite devnet: {e}");
            return 2;
        }
    };
    let node_flags = p.finish();

    let jwt_path = files::temp_path(&format!("op-lite-devnet-{}.jwt", std::process::id()));
    files::remove(&jwt_path);
    let jwt = match crate::io::jwt::load_or_create_secret(&jwt_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("op-lite devnet: {e}");
            return 1;
        }
    };
    let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let opts = DevnetOptions {
        l1_addr: loopback(l1_port),
        engine_addr: loopback(engine_port),
        speed,
        params: DevnetParams {
            protocol_version: version,
            external_sequencer: with_sequencer,
            ..DevnetParams::default()
        },
    };
    let devnet = match DevnetHandle::spawn(opts, jwt, crate::io::clock::now()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("op-lite devnet: failed to start the devnet servers: {e}");
            files::remove(&jwt_path);
            return 1;
        }
    };
    let code = if serve_only && with_sequencer {
        eprintln!("op-lite devnet: --serve-only and --with-sequencer exclude each other");
        2
    } else if serve_only {
        serve(&devnet, &jwt_path, &node_flags)
    } else {
        run_node(&devnet, &jwt_path, node_flags, blocks)
    };
    drop(devnet);
    files::remove(&jwt_path);
    code
}

/// `--serve-only`: the devnet for a node run separately (another process, another host's
/// service manager). Serves until SIGINT / SIGTERM.
fn serve(devnet: &DevnetHandle, jwt: &std::path::Path, extra: &[OsString]) -> u8 {
    if let Some(f) = extra.first() {
        eprintln!("op-lite devnet: --serve-only takes no node flags (got {})", f.to_string_lossy());
        return 2;
    }
    let rollup = jwt.with_extension("rollup.json");
    let json = serde_json::to_string_pretty(&devnet.rollup).unwrap_or_default();
    if let Err(e) = files::write(&rollup, json.as_bytes()) {
        eprintln!("op-lite devnet: {}: {e}", rollup.display());
        return 1;
    }
    crate::io::out::println(&format!(
        "devnet serving: L1 and beacon at {l1}, engine stand-in at {en}\nrun the node with:\n  op-lite --rollup.config {r} --l1 {l1} --l1.beacon {l1} --l2 {en} --l2.jwt-secret {j} --l1.http-poll-interval 250ms --l1.epoch-poll-interval 1s --p2p.disable",
        l1 = devnet.l1_url,
        en = devnet.engine_url,
        r = rollup.display(),
        j = jwt.display()
    ));
    let r = crate::io::signals::wait_for_stop();
    files::remove(&rollup);
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("op-lite devnet: {e}");
            1
        }
    }
}

/// The node's configuration against the devnet: the devnet's flags, then `extra` (which win).
fn node_config(
    devnet: &DevnetHandle,
    engine: &str,
    jwt: &std::path::Path,
    extra: Vec<OsString>,
) -> Result<(Config, Vec<String>), u8> {
    // With a sequencer node the two nodes gossip on loopback; otherwise no one is there to talk to.
    let p2p: &[&str] = if devnet.seq_engine_url.is_some() {
        &["--p2p.listen.ip", "127.0.0.1", "--p2p.listen.tcp", "0"]
    } else {
        &["--p2p.disable"]
    };
    let mut args: Vec<OsString> = [
        "--rollup.config",
        DEVNET_ROLLUP,
        "--l1",
        &devnet.l1_url,
        "--l1.beacon",
        &devnet.l1_url,
        "--l2",
        engine,
        "--l2.jwt-secret",
        &jwt.to_string_lossy(),
        "--l1.http-poll-interval",
        "250ms",
        "--l1.epoch-poll-interval",
        "1s",
        "--log.level",
        "warn",
    ]
    .iter()
    .chain(p2p)
    .map(OsString::from)
    .collect();
    args.extend(extra);
    let env: Vec<(String, String)> = std::env::vars().collect();
    let raw = RawArgs::parse(args, &env).map_err(|e| {
        eprintln!("op-lite devnet: {e}");
        2
    })?;
    let rollup_json = serde_json::to_string(&devnet.rollup).unwrap_or_default();
    let read = |p: &str| {
        if p == DEVNET_ROLLUP {
            Ok(rollup_json.clone())
        } else {
            files::read_to_string(p, files::MAX_CONFIG_FILE)
        }
    };
    let mut config = Config::from_raw(&raw, &read).map_err(|e| {
        eprintln!("op-lite devnet: {e}");
        2u8
    })?;
    config.l1.chain_config = Some(L1ChainSpec::dev(DEVNET_L1_CHAIN_ID));
    Ok((config, raw.warnings))
}

fn run_node(devnet: &DevnetHandle, jwt: &std::path::Path, user: Vec<OsString>, blocks: Option<u64>) -> u8 {
    // Identity keys of the devnet's nodes live beside the JWT secret, for this run only.
    let key_path = |who: &str| jwt.with_extension(format!("{who}.p2p.key"));
    // The log is the process's: set up from the user's flags before either node starts.
    match node_config(devnet, &devnet.engine_url, jwt, user.clone()) {
        Ok((c, _)) => crate::io::log::init(c.log.level, c.log.format, c.log.color),
        Err(code) => return code,
    }
    let sequencer = match &devnet.seq_engine_url {
        Some(url) => {
            // The sequencer: its own engine, no public RPC port, signing with the key the
            // devnet's SystemConfig names as the unsafe block signer.
            let key = crate::protocol::primitives::to_hex(
                &crate::devnet::l1_sim::Account::from_seed("op-lite devnet sequencer").secret(),
            );
            let path = key_path("sequencer");
            files::remove(&path);
            let mut extra: Vec<OsString> =
                ["--sequencer.enabled", "--rpc.port", "0", "--p2p.sequencer.key", &key, "--p2p.priv.path"]
                    .iter()
                    .map(OsString::from)
                    .collect();
            extra.push(path.into());
            let (seq_config, _) = match node_config(devnet, url, jwt, extra) {
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
    let mut user = user;
    if let Some(addr) = sequencer.as_ref().and_then(|s| s.p2p.as_ref()) {
        let path = key_path("verifier");
        files::remove(&path);
        user.splice(
            0..0,
            [OsString::from("--p2p.static"), addr.to_string().into(), "--p2p.priv.path".into(), path.into()],
        );
    }
    let (config, warnings) = match node_config(devnet, &devnet.engine_url, jwt, user) {
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
    shell.node.core.derivers.extra.push(("devnet-reporter", Box::new(reporter)));
    crate::io::out::println(&format!(
        "devnet: L1 and beacon at {}, engine stand-in at {}, node RPC at {}",
        devnet.l1_url,
        devnet.engine_url,
        shell.rpc_addr().map_or("(none)".into(), |a| format!("http://{a}"))
    ));
    if let (Some(s), Some(url)) = (&sequencer, &devnet.seq_engine_url) {
        crate::io::out::println(&format!(
            "devnet: sequencer node on engine {url}, its RPC at {}",
            s.rpc.map_or("(none)".into(), |a| format!("http://{a}"))
        ));
    }
    let code = exit_code(&shell.run());
    drop(sequencer);
    for who in ["sequencer", "verifier"] {
        files::remove(&key_path(who));
    }
    code
}
