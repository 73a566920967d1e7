//! Configuration in two stages (ripgrep's model): `cli::RawArgs` collects flag values from the
//! command line and the `OP_NODE_*` environment; `Config::from_raw` types and validates them
//! into the settings the node runs with, failing with an error that names the flag.

pub mod cli;
pub mod flags;
pub mod networks;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use log::LevelFilter;

pub use cli::{RawArgs, UsageError};

use crate::driver::runtime_config::HaltLevel;
use crate::driver::sequencer::{SequencerConfig, DEFAULT_SEALING_DURATION};
use crate::engine::SyncMode;
use crate::io::log::LogFormat;
use crate::io::upstream::ReceiptsMethod;
use crate::protocol::primitives::Address;
use crate::protocol::rollup::{Fork, RollupConfig};

/// Subcommands, for `--help`.
pub const COMMANDS: &[(&str, &str)] = &[
    ("(none)", "run the rollup node"),
    (
        "replay FIXTURE",
        "derive L2 payloads from a recorded L1 range (--check compares with its expected values)",
    ),
    (
        "decode KIND FILE",
        "print batcher data, channels, L1 batcher txs, blobs or gossip blocks as JSON (decode --help)",
    ),
    ("networks [show NAME]", "list the built-in --network names, or print one's rollup.json"),
];

/// L1 endpoints and how to use them.
#[derive(Debug, Clone, PartialEq)]
pub struct L1Config {
    pub rpc: String,
    pub beacon: Option<String>,
    pub beacon_fallbacks: Vec<String>,
    /// `--l1.beacon-header` split into name and value.
    pub beacon_header: Option<(String, String)>,
    pub beacon_ignore: bool,
    pub beacon_fetch_all_sidecars: bool,
    pub beacon_slot_duration_override: Option<u64>,
    pub trust_rpc: bool,
    pub rpc_kind: String,
    pub receipts: ReceiptsMethod,
    /// `--l1.rpc-max-batch-size`: 1..=500, as op-node's `L1EndpointConfig.Check`.
    pub rpc_max_batch_size: usize,
    /// `--l1.max-concurrency`: L1 calls (a batch is one) in flight at once, each on its own
    /// worker thread, started on demand.
    pub max_concurrency: usize,
    /// `--l1.cache-size`: entries of the L1 header, body and receipt caches; 0 means 3/2 of
    /// the sequencing window (see `l1_cache_entries`).
    pub cache_size: u64,
    /// `--l1.rpc-rate-limit`: L1 requests per second (a batch counts as its calls and may burst
    /// up to the batch size); 0 disables it.
    pub rpc_rate_limit: f64,
    pub http_poll_interval: Duration,
    /// Zero disables safe / finalized polling.
    pub epoch_poll_interval: Duration,
    /// Zero loads the runtime config once.
    pub runtime_config_reload_interval: Duration,
    pub verifier_confs: u64,
    /// `--rollup.l1-chain-config`: the L1's blob schedule when it is not a built-in chain.
    pub chain_config: Option<crate::protocol::l1_chain::L1ChainSpec>,
}

/// The execution engine.
#[derive(Debug, Clone, PartialEq)]
pub struct L2Config {
    pub engine: Option<String>,
    pub jwt_secret: Option<PathBuf>,
    pub engine_rpc_timeout: Duration,
    /// `--l2.follow.source`: follow this node's safe and finalized heads instead of deriving.
    pub follow: Option<FollowConfig>,
}

/// Follow mode (op-node's light CL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowConfig {
    /// The source node's RPC URL (`optimism_syncStatus`).
    pub url: String,
    pub timeout: Duration,
    /// `--l2.follow.source.skip-l1-check`.
    pub skip_l1_check: bool,
}

/// An HTTP listener address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    pub addr: IpAddr,
    pub port: u16,
}

/// Logging settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    pub level: LevelFilter,
    pub format: LogFormat,
    pub color: bool,
}

/// The validated configuration the node runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub rollup: RollupConfig,
    /// The built-in network's name, when `--network` was used.
    pub network: Option<String>,
    /// Known unsafe block signer (from the built-in network), until L1 says otherwise.
    pub unsafe_block_signer: Option<Address>,
    pub l1: L1Config,
    pub l2: L2Config,
    pub rpc: Listen,
    pub rpc_enable_admin: bool,
    /// `--safedb.path`: where the safe-head store lives; none disables it.
    pub safedb_path: Option<PathBuf>,
    pub metrics_enabled: bool,
    pub metrics: Listen,
    pub log: LogConfig,
    pub rollup_halt: Option<HaltLevel>,
    pub sync_mode: SyncMode,
    pub p2p_disabled: bool,
    pub p2p: P2pConfig,
    /// `--sequencer.enabled` and its settings.
    pub sequencer: Option<SequencerConfig>,
    /// `--rpc.admin-state`: where admin_startSequencer / admin_stopSequencer persist.
    pub admin_state: Option<PathBuf>,
}

/// discv5's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Where the UDP socket binds (`--p2p.listen.ip`, `--p2p.listen.udp` or the TCP port).
    pub listen: std::net::SocketAddr,
    /// `--p2p.advertise.ip`; the listen IP when that is a specific address.
    pub advertise_ip: Option<std::net::IpAddr>,
    /// `--p2p.advertise.tcp` / `.udp`; 0: the bound ports.
    pub advertise_tcp: u16,
    pub advertise_udp: u16,
    /// `--p2p.discovery.path`; `None` for `memory`.
    pub path: Option<PathBuf>,
}

/// The gossip flags (`--p2p.*`).
#[derive(Debug, Clone)]
pub struct P2pConfig {
    pub listen: std::net::SocketAddr,
    /// `--p2p.static` plus the multiaddr entries of `--p2p.bootnodes`.
    pub static_peers: Vec<crate::p2p::multiaddr::Multiaddr>,
    /// The discovery records (`enr:` and `enode://` entries) of `--p2p.bootnodes`, or op-node's
    /// default bootnodes when the flag is not given; they need discv5.
    pub discovery_bootnodes: Vec<String>,
    /// Whether `discovery_bootnodes` are op-node's defaults rather than the operator's.
    pub default_bootnodes: bool,
    /// discv5 (unless `--p2p.no-discovery`).
    pub discovery: Option<DiscoveryConfig>,
    pub priv_path: PathBuf,
    pub peers_lo: usize,
    pub peers_hi: usize,
    /// `--p2p.sequencer.key`, hex.
    pub sequencer_key: Option<[u8; 32]>,
    pub ban_peers: bool,
}

/// A configuration error, naming the flag it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub flag: &'static str,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--{}: {}", self.flag, self.msg)
    }
}

impl std::error::Error for ConfigError {}

fn err(flag: &'static str, msg: impl Into<String>) -> ConfigError {
    ConfigError { flag, msg: msg.into() }
}

/// op-node's bound on `--l1.cache-size` (`L1EndpointConfig.Check`).
pub const MAX_L1_CACHE_SIZE: u64 = 1_000_000;

/// The L1 cache entries for `--l1.cache-size`: the flag's value, or 3/2 of the sequencing window
/// when it is 0 (op-node's rule).
pub fn l1_cache_entries(cache_size: u64, seq_window_size: u64) -> usize {
    let n = if cache_size == 0 { seq_window_size.saturating_mul(3) / 2 } else { cache_size };
    n.min(MAX_L1_CACHE_SIZE) as usize
}

/// The fork override flags and the fork each sets.
const OVERRIDES: &[(&str, Option<Fork>)] = &[
    ("override.canyon", Some(Fork::Canyon)),
    ("override.delta", Some(Fork::Delta)),
    ("override.ecotone", Some(Fork::Ecotone)),
    ("override.fjord", Some(Fork::Fjord)),
    ("override.granite", Some(Fork::Granite)),
    ("override.holocene", Some(Fork::Holocene)),
    ("override.pectrablobschedule", None),
    ("override.isthmus", Some(Fork::Isthmus)),
    ("override.jovian", Some(Fork::Jovian)),
    ("override.karst", Some(Fork::Karst)),
];

impl Config {
    /// Types and validates raw flag values. `read_file` loads `--rollup.config` (injected so
    /// tests need no files).
    pub fn from_raw(
        raw: &RawArgs,
        read_file: &dyn Fn(&str) -> std::io::Result<String>,
    ) -> Result<Config, ConfigError> {
        let (mut rollup, network, signer) = match (raw.str("rollup.config"), raw.str("network")) {
            (Some(_), Some(_)) => {
                return Err(err("network", "cannot specify both --rollup.config and --network"))
            }
            (None, None) => return Err(err("network", "flag --rollup.config or --network is required")),
            (Some(path), None) => {
                let text = read_file(&path)
                    .map_err(|e| err("rollup.config", format!("failed to read {path}: {e}")))?;
                let cfg = RollupConfig::from_json(&text)
                    .map_err(|e| err("rollup.config", format!("{path}: {e}")))?;
                (cfg, None, None)
            }
            (None, Some(name)) => {
                let n = networks::by_name(&name).ok_or_else(|| err("network", networks::unknown(&name)))?;
                (n.rollup, Some(n.name.to_string()), Some(n.unsafe_block_signer))
            }
        };
        for (flag, fork) in OVERRIDES {
            if let Some(t) = raw.u64(flag).filter(|_| raw.is_set(flag)) {
                match fork {
                    Some(fork) => rollup.apply_overrides(&[(*fork, t)]),
                    None => rollup.forks.pectra_blob_schedule_time = Some(t),
                }
            }
        }
        rollup.check().map_err(|e| {
            let flag = if raw.is_set("rollup.config") { "rollup.config" } else { "network" };
            err(flag, e.to_string())
        })?;

        let rpc_kind = raw.str("l1.rpckind").unwrap_or_else(|| "standard".into());
        let receipts = match rpc_kind.as_str() {
            "debug_geth" => ReceiptsMethod::DebugRawReceipts,
            "basic" => ReceiptsMethod::PerTransaction,
            _ => ReceiptsMethod::BlockReceipts,
        };
        let beacon_header = match raw.str("l1.beacon-header") {
            None => None,
            Some(h) => match h.split_once(':') {
                Some((k, v)) if !k.trim().is_empty() => Some((k.trim().to_string(), v.trim().to_string())),
                _ => return Err(err("l1.beacon-header", format!("expected 'X-Key: Value', got {h:?}"))),
            },
        };
        let chain_config = match raw.str("rollup.l1-chain-config") {
            None => None,
            Some(path) => {
                let text = read_file(&path)
                    .map_err(|e| err("rollup.l1-chain-config", format!("failed to read {path}: {e}")))?;
                let spec = crate::protocol::l1_chain::L1ChainSpec::from_json(&text)
                    .map_err(|e| err("rollup.l1-chain-config", format!("{path}: {e}")))?;
                if spec.chain_id != rollup.l1_chain_id {
                    return Err(err(
                        "rollup.l1-chain-config",
                        format!(
                            "chain id {} differs from the rollup config's L1 chain id {}",
                            spec.chain_id, rollup.l1_chain_id
                        ),
                    ));
                }
                Some(spec)
            }
        };
        let l1 = L1Config {
            rpc: raw.str("l1").unwrap_or_default(),
            beacon: raw.str("l1.beacon"),
            beacon_fallbacks: raw.list("l1.beacon-fallbacks"),
            beacon_header,
            beacon_ignore: raw.bool("l1.beacon.ignore"),
            beacon_fetch_all_sidecars: raw.bool("l1.beacon.fetch-all-sidecars"),
            beacon_slot_duration_override: raw.u64("l1.beacon.slot-duration-override").filter(|s| *s > 0),
            trust_rpc: raw.bool("l1.trustrpc"),
            rpc_kind,
            receipts,
            rpc_max_batch_size: match raw.u64("l1.rpc-max-batch-size").unwrap_or(20) {
                n @ 1..=500 => n as usize,
                n => {
                    return Err(err(
                        "l1.rpc-max-batch-size",
                        format!("batch size is invalid or unreasonable: {n} (must be 1 to 500)"),
                    ))
                }
            },
            max_concurrency: match raw.i64("l1.max-concurrency").unwrap_or(10) {
                n if n >= 1 => n as usize,
                n => {
                    return Err(err(
                        "l1.max-concurrency",
                        format!("max concurrent requests cannot be less than 1, was {n}"),
                    ))
                }
            },
            cache_size: match raw.u64("l1.cache-size").unwrap_or(900) {
                n if n > MAX_L1_CACHE_SIZE => {
                    return Err(err("l1.cache-size", format!("cache size is dangerously large: {n}")))
                }
                n => n,
            },
            rpc_rate_limit: match raw.str("l1.rpc-rate-limit") {
                None => 0.0,
                Some(v) => {
                    v.trim().parse::<f64>().ok().filter(|r| r.is_finite() && *r >= 0.0).ok_or_else(|| {
                        err("l1.rpc-rate-limit", format!("not a rate in requests per second: {v:?}"))
                    })?
                }
            },
            http_poll_interval: raw.duration("l1.http-poll-interval").unwrap_or(Duration::from_secs(12)),
            epoch_poll_interval: raw.duration("l1.epoch-poll-interval").unwrap_or(Duration::from_secs(384)),
            runtime_config_reload_interval: raw
                .duration("l1.runtime-config-reload-interval")
                .unwrap_or(Duration::from_secs(600)),
            verifier_confs: raw.u64("verifier.l1-confs").unwrap_or(0),
            chain_config,
        };
        check_url("l1", &l1.rpc)?;
        if let Some(b) = &l1.beacon {
            check_url("l1.beacon", b)?;
        }
        for b in &l1.beacon_fallbacks {
            check_url("l1.beacon-fallbacks", b)?;
        }
        if l1.http_poll_interval.is_zero() {
            return Err(err("l1.http-poll-interval", "must be greater than 0"));
        }
        let l2 = L2Config {
            engine: raw.str("l2"),
            jwt_secret: raw.str("l2.jwt-secret").map(PathBuf::from),
            engine_rpc_timeout: raw.duration("l2.engine-rpc-timeout").unwrap_or(Duration::from_secs(10)),
            follow: raw.str("l2.follow.source").filter(|u| !u.is_empty()).map(|url| FollowConfig {
                url,
                timeout: raw.duration("l2.follow.source.rpc-timeout").unwrap_or(Duration::from_secs(10)),
                skip_l1_check: raw.bool("l2.follow.source.skip-l1-check"),
            }),
        };
        match &l2.follow {
            None if raw.bool("l2.follow.source.skip-l1-check") => {
                return Err(err(
                    "l2.follow.source.skip-l1-check",
                    "--l2.follow.source.skip-l1-check requires --l2.follow.source to be set",
                ))
            }
            None => {}
            Some(f) => {
                check_url("l2.follow.source", &f.url)?;
                if f.timeout.is_zero() {
                    return Err(err("l2.follow.source.rpc-timeout", "must be greater than 0"));
                }
                if raw.str("safedb.path").is_some_and(|p| !p.is_empty()) {
                    return Err(err(
                        "safedb.path",
                        "a node following --l2.follow.source derives nothing from L1, so it has no L1 block to record \
                         for its safe heads: serve the safe-head database from the source node instead",
                    ));
                }
            }
        }
        if let Some(e) = &l2.engine {
            check_url("l2", e)?;
        }
        // op-node's CheckRequired (--l1 has a default).
        for (flag, missing) in [("l2", l2.engine.is_none()), ("l2.jwt-secret", l2.jwt_secret.is_none())] {
            if missing {
                return Err(err(flag, format!("flag {flag} is required")));
            }
        }
        if l2.engine_rpc_timeout.is_zero() {
            return Err(err("l2.engine-rpc-timeout", "must be greater than 0"));
        }

        let listen = |addr: &'static str, port: &'static str| -> Result<Listen, ConfigError> {
            let a = raw.str(addr).unwrap_or_default();
            let addr_ip: IpAddr = a.parse().map_err(|_| err(addr, format!("not an IP address: {a:?}")))?;
            Ok(Listen { addr: addr_ip, port: raw.u64(port).unwrap_or(0) as u16 })
        };
        let log = LogConfig {
            level: raw.str("log.level").as_deref().and_then(parse_log_level).unwrap_or(LevelFilter::Info),
            format: match raw.str("log.format").as_deref() {
                Some("json") | Some("jsonms") => LogFormat::Json,
                _ => LogFormat::Text,
            },
            color: raw.bool("log.color"),
        };
        let rollup_halt = match raw.str("rollup.halt").as_deref() {
            Some("major") => Some(HaltLevel::Major),
            Some("minor") => Some(HaltLevel::Minor),
            Some("patch") => Some(HaltLevel::Patch),
            _ => None,
        };
        let sync_mode = match raw.str("syncmode").as_deref() {
            Some("execution-layer") => SyncMode::ExecutionLayer,
            _ => SyncMode::ConsensusLayer,
        };
        let listen_ip = raw.str("p2p.listen.ip").unwrap_or_else(|| "0.0.0.0".into());
        let listen_ip: IpAddr = listen_ip
            .parse()
            .map_err(|_| err("p2p.listen.ip", format!("not an IP address: {listen_ip:?}")))?;
        let mut static_peers = Vec::new();
        for s in raw.list("p2p.static") {
            static_peers.push(
                crate::p2p::multiaddr::Multiaddr::parse(&s).map_err(|e| err("p2p.static", e.to_string()))?,
            );
        }
        let mut discovery_bootnodes = Vec::new();
        let bootnodes = raw.list("p2p.bootnodes");
        let default_bootnodes = bootnodes.is_empty();
        if default_bootnodes {
            discovery_bootnodes = networks::DEFAULT_BOOTNODES.iter().map(|s| s.to_string()).collect();
        }
        for s in bootnodes {
            if s.starts_with("enr:") || s.starts_with("enode://") {
                discovery_bootnodes.push(s);
            } else {
                static_peers.push(
                    crate::p2p::multiaddr::Multiaddr::parse(&s)
                        .map_err(|e| err("p2p.bootnodes", e.to_string()))?,
                );
            }
        }
        let sequencer_key = match raw.str("p2p.sequencer.key").filter(|k| !k.is_empty()) {
            None => None,
            Some(k) => {
                let k = k.trim().strip_prefix("0x").unwrap_or(k.trim()).to_string();
                let bytes = crate::protocol::primitives::from_hex_fixed::<32>(&k)
                    .map_err(|_| err("p2p.sequencer.key", "expected a 32-byte hex private key"))?;
                if k256::ecdsa::SigningKey::from_slice(&bytes).is_err() {
                    return Err(err("p2p.sequencer.key", "not a valid secp256k1 private key"));
                }
                Some(bytes)
            }
        };
        let peers_hi = raw.u64("p2p.peers.hi").unwrap_or(30) as usize;
        let tcp_port = raw.u64("p2p.listen.tcp").unwrap_or(9222) as u16;
        let discovery = if raw.bool("p2p.no-discovery") {
            None
        } else {
            let advertise_ip = match raw.str("p2p.advertise.ip").filter(|s| !s.is_empty()) {
                Some(s) => Some(s.parse::<std::net::IpAddr>().map_err(|_| {
                    err(
                        "p2p.advertise.ip",
                        format!("not an IP address: {s:?} (op-lite does not resolve host names)"),
                    )
                })?),
                None => Some(listen_ip).filter(|ip| !ip.is_unspecified()),
            };
            let udp = raw.u64("p2p.listen.udp").unwrap_or(0) as u16;
            Some(DiscoveryConfig {
                listen: std::net::SocketAddr::new(listen_ip, if udp == 0 { tcp_port } else { udp }),
                advertise_ip,
                advertise_tcp: raw.u64("p2p.advertise.tcp").unwrap_or(0) as u16,
                advertise_udp: raw.u64("p2p.advertise.udp").unwrap_or(0) as u16,
                path: match raw.str("p2p.discovery.path").unwrap_or_else(|| "opnode_discovery_db".into()) {
                    p if p == "memory" || p.is_empty() => None,
                    p => Some(PathBuf::from(p)),
                },
            })
        };
        let p2p = P2pConfig {
            listen: std::net::SocketAddr::new(listen_ip, tcp_port),
            static_peers,
            discovery_bootnodes,
            default_bootnodes,
            discovery,
            priv_path: PathBuf::from(
                raw.str("p2p.priv.path").unwrap_or_else(|| "opnode_p2p_priv.txt".into()),
            ),
            peers_lo: (raw.u64("p2p.peers.lo").unwrap_or(20) as usize).min(peers_hi),
            peers_hi,
            sequencer_key,
            ban_peers: raw.bool("p2p.ban.peers"),
        };
        let sequencer = raw.bool("sequencer.enabled").then(|| SequencerConfig {
            active: !raw.bool("sequencer.stopped"),
            l1_confs: raw.u64("sequencer.l1-confs").unwrap_or(4),
            sealing_duration: raw
                .duration("sequencer.sealing-duration")
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_SEALING_DURATION),
            max_safe_lag: raw.u64("sequencer.max-safe-lag").unwrap_or(0),
            recover: raw.bool("sequencer.recover"),
        });
        Ok(Config {
            rollup,
            network,
            unsafe_block_signer: signer,
            l1,
            l2,
            rpc: listen("rpc.addr", "rpc.port")?,
            rpc_enable_admin: raw.bool("rpc.enable-admin"),
            safedb_path: raw.str("safedb.path").filter(|p| !p.is_empty()).map(PathBuf::from),
            metrics_enabled: raw.bool("metrics.enabled"),
            metrics: listen("metrics.addr", "metrics.port")?,
            log,
            rollup_halt,
            sync_mode,
            p2p_disabled: raw.bool("p2p.disable"),
            p2p,
            sequencer,
            admin_state: raw.str("rpc.admin-state").filter(|p| !p.is_empty()).map(PathBuf::from),
        })
    }
}

/// Reads a log level as op-service does (case-insensitive; `crit` maps to `error`).
pub fn parse_log_level(s: &str) -> Option<LevelFilter> {
    match s.to_ascii_lowercase().as_str() {
        "trace" | "trce" => Some(LevelFilter::Trace),
        "debug" | "dbug" => Some(LevelFilter::Debug),
        "info" => Some(LevelFilter::Info),
        "warn" => Some(LevelFilter::Warn),
        "error" | "eror" | "crit" => Some(LevelFilter::Error),
        _ => None,
    }
}

fn check_url(flag: &'static str, url: &str) -> Result<(), ConfigError> {
    let ok = url.starts_with("http://") || url.starts_with("https://");
    if !ok {
        return Err(err(
            flag,
            format!("unsupported endpoint {url:?}: only http:// and https:// URLs are supported"),
        ));
    }
    #[cfg(not(feature = "tls"))]
    if url.starts_with("https://") {
        return Err(err(flag, "https:// endpoints need a build with the `tls` feature"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    /// Parses `args`, adding the required engine flags unless the test gives them.
    fn raw(args: &[&str]) -> RawArgs {
        let mut v: Vec<OsString> = args.iter().map(OsString::from).collect();
        for (flag, val) in [("--l2", "http://127.0.0.1:8551"), ("--l2.jwt-secret", "/tmp/jwt.hex")] {
            if !args.contains(&flag) {
                v.extend([OsString::from(flag), OsString::from(val)]);
            }
        }
        RawArgs::parse(v, &[]).unwrap()
    }

    #[test]
    fn engine_flags_are_required_like_op_node() {
        let parse = |args: &[&str]| {
            let raw = RawArgs::parse(args.iter().map(OsString::from).collect(), &[]).unwrap();
            Config::from_raw(&raw, &no_files)
        };
        let e = parse(&["--network", "op-mainnet"]).unwrap_err();
        assert_eq!(e.to_string(), "--l2: flag l2 is required");
        let e = parse(&["--network", "op-mainnet", "--l2", "http://x:8551"]).unwrap_err();
        assert_eq!(e.flag, "l2.jwt-secret");
        let c = parse(&["--network", "op-mainnet", "--l2", "http://x:8551", "--l2.jwt-secret", "j"]).unwrap();
        assert_eq!(c.l2.engine_rpc_timeout, Duration::from_secs(10));
        assert_eq!(c.l1.epoch_poll_interval, Duration::from_secs(384));
        assert_eq!(c.l1.runtime_config_reload_interval, Duration::from_secs(600));
        assert_eq!(c.l1.rpc_max_batch_size, 20);
        assert_eq!(c.l1.rpc_rate_limit, 0.0);
    }

    #[test]
    fn l1_rate_limit_is_requests_per_second() {
        let c = Config::from_raw(&raw(&["--network", "op-mainnet", "--l1.rpc-rate-limit", "2.5"]), &no_files)
            .unwrap();
        assert_eq!(c.l1.rpc_rate_limit, 2.5);
        for bad in ["fast", "-1", "NaN", "inf"] {
            let e =
                Config::from_raw(&raw(&["--network", "op-mainnet", "--l1.rpc-rate-limit", bad]), &no_files)
                    .unwrap_err();
            assert_eq!(e.flag, "l1.rpc-rate-limit", "{bad}");
        }
    }

    #[test]
    fn follow_source_flags_as_op_node() {
        let c = Config::from_raw(&raw(&["--network", "op-mainnet"]), &no_files).unwrap();
        assert_eq!(c.l2.follow, None);
        let args = ["--network", "op-mainnet", "--l2.follow.source", "http://source:9545"];
        let c = Config::from_raw(&raw(&args), &no_files).unwrap();
        let want = FollowConfig {
            url: "http://source:9545".into(),
            timeout: Duration::from_secs(10),
            skip_l1_check: false,
        };
        assert_eq!(c.l2.follow, Some(want));
        let more = [&args[..], &["--l2.follow.source.skip-l1-check", "--l2.follow.source.rpc-timeout", "3s"]]
            .concat();
        let f = Config::from_raw(&raw(&more), &no_files).unwrap().l2.follow.unwrap();
        assert!(f.skip_l1_check);
        assert_eq!(f.timeout, Duration::from_secs(3));
        // Refused: the check flag alone, a safe-head database, a bad URL.
        let e = Config::from_raw(
            &raw(&["--network", "op-mainnet", "--l2.follow.source.skip-l1-check"]),
            &no_files,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "--l2.follow.source.skip-l1-check: --l2.follow.source.skip-l1-check requires --l2.follow.source to be set");
        let with_db = [&args[..], &["--safedb.path", "/var/lib/op-lite/safedb"]].concat();
        assert_eq!(Config::from_raw(&raw(&with_db), &no_files).unwrap_err().flag, "safedb.path");
        let bad = ["--network", "op-mainnet", "--l2.follow.source", "source:9545"];
        assert_eq!(Config::from_raw(&raw(&bad), &no_files).unwrap_err().flag, "l2.follow.source");
    }

    #[test]
    fn l1_endpoint_checks_as_op_node() {
        let parse =
            |flag: &str, v: &str| Config::from_raw(&raw(&["--network", "op-mainnet", flag, v]), &no_files);
        let c = Config::from_raw(&raw(&["--network", "op-mainnet"]), &no_files).unwrap();
        assert_eq!((c.l1.max_concurrency, c.l1.cache_size), (10, 900));
        for (flag, ok, bad) in [
            ("--l1.rpc-max-batch-size", ["1", "500"], ["0", "501"]),
            ("--l1.max-concurrency", ["1", "64"], ["0", "-3"]),
            ("--l1.cache-size", ["0", "1000000"], ["1000001", "4000000000"]),
        ] {
            for v in ok {
                assert!(parse(flag, v).is_ok(), "{flag} {v}");
            }
            for v in bad {
                let e = parse(flag, v).unwrap_err();
                assert_eq!(format!("--{}", e.flag), flag, "{v}");
            }
        }
        assert_eq!(
            parse("--l1.rpc-max-batch-size", "1000").unwrap_err().to_string(),
            "--l1.rpc-max-batch-size: batch size is invalid or unreasonable: 1000 (must be 1 to 500)"
        );
        assert_eq!(
            parse("--l1.max-concurrency", "0").unwrap_err().to_string(),
            "--l1.max-concurrency: max concurrent requests cannot be less than 1, was 0"
        );
        assert_eq!(parse("--l1.max-concurrency", "3").unwrap().l1.max_concurrency, 3);
        assert_eq!(parse("--l1.cache-size", "0").unwrap().l1.cache_size, 0);
    }

    #[test]
    fn l1_cache_size_zero_is_three_halves_of_the_window() {
        assert_eq!(l1_cache_entries(900, 3600), 900);
        assert_eq!(l1_cache_entries(0, 3600), 5400);
        assert_eq!(l1_cache_entries(0, 1600), 2400);
        assert_eq!(l1_cache_entries(0, u64::MAX), MAX_L1_CACHE_SIZE as usize);
    }

    #[test]
    fn any_registry_network_by_name_and_bootnodes_as_op_node() {
        let c = Config::from_raw(&raw(&["--network", "unichain-mainnet"]), &no_files).unwrap();
        assert_eq!(c.rollup.l2_chain_id, 130);
        assert_eq!(c.network.as_deref(), Some("unichain-mainnet"));
        // No --p2p.bootnodes: op-node's defaults (discovery records, for discv5).
        assert!(c.p2p.default_bootnodes);
        assert_eq!(c.p2p.discovery_bootnodes.len(), networks::DEFAULT_BOOTNODES.len());
        assert!(c.p2p.static_peers.is_empty());
        let enode = networks::DEFAULT_BOOTNODES[0];
        let peer = "/ip4/10.0.0.1/tcp/9222/p2p/16Uiu2HAmPCHtgjoa9c8dkxkMG1ULHZDXm6ZUqy1xdeNd2tR4BoRe";
        let c = Config::from_raw(
            &raw(&["--network", "ink-sepolia", "--p2p.bootnodes", &format!("{enode},{peer}")]),
            &no_files,
        )
        .unwrap();
        assert!(!c.p2p.default_bootnodes);
        assert_eq!(c.p2p.discovery_bootnodes, vec![enode.to_string()]);
        assert_eq!(c.p2p.static_peers.len(), 1);
        let e = Config::from_raw(&raw(&["--network", "unichain"]), &no_files).unwrap_err();
        assert_eq!(e.flag, "network");
        assert!(e.to_string().contains("did you mean unichain-mainnet, unichain-sepolia?"), "{e}");
    }

    #[test]
    fn discovery_flags_as_op_node() {
        let c = Config::from_raw(&raw(&["--network", "op-mainnet"]), &no_files).unwrap();
        let d = c.p2p.discovery.unwrap();
        assert_eq!(d.listen.port(), 9222, "the UDP port defaults to the TCP port");
        assert_eq!((d.advertise_ip, d.advertise_tcp, d.advertise_udp), (None, 0, 0));
        assert_eq!(d.path, Some(PathBuf::from("opnode_discovery_db")));
        let args = [
            "--network",
            "op-mainnet",
            "--p2p.listen.ip",
            "10.0.0.2",
            "--p2p.listen.udp",
            "30303",
            "--p2p.discovery.path",
            "memory",
        ];
        let d = Config::from_raw(&raw(&args), &no_files).unwrap().p2p.discovery.unwrap();
        assert_eq!(d.listen.to_string(), "10.0.0.2:30303");
        assert_eq!(d.advertise_ip, Some("10.0.0.2".parse().unwrap()), "a specific listen IP is advertised");
        assert_eq!(d.path, None);
        let off =
            Config::from_raw(&raw(&["--network", "op-mainnet", "--p2p.no-discovery"]), &no_files).unwrap();
        assert!(off.p2p.discovery.is_none());
        let e = Config::from_raw(
            &raw(&["--network", "op-mainnet", "--p2p.advertise.ip", "node.example"]),
            &no_files,
        )
        .unwrap_err();
        assert_eq!(e.flag, "p2p.advertise.ip");
    }

    #[test]
    fn beacon_flags() {
        let c = Config::from_raw(
            &raw(&[
                "--network",
                "op-sepolia",
                "--l1.beacon",
                "http://b:5052",
                "--l1.beacon-archiver",
                "http://a:1,http://c:2",
                "--l1.beacon-header",
                "X-Key: some value",
                "--l1.beacon.slot-duration-override",
                "2",
            ]),
            &no_files,
        )
        .unwrap();
        assert_eq!(c.l1.beacon_fallbacks, vec!["http://a:1", "http://c:2"]);
        assert_eq!(c.l1.beacon_header, Some(("X-Key".into(), "some value".into())));
        assert_eq!(c.l1.beacon_slot_duration_override, Some(2));
        let e =
            Config::from_raw(&raw(&["--network", "op-sepolia", "--l1.beacon-header", "nocolon"]), &no_files)
                .unwrap_err();
        assert_eq!(e.flag, "l1.beacon-header");
        let e = Config::from_raw(
            &raw(&["--network", "op-sepolia", "--l1.beacon-fallbacks", "ftp://x"]),
            &no_files,
        )
        .unwrap_err();
        assert_eq!(e.flag, "l1.beacon-fallbacks");
    }

    fn no_files(p: &str) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{p}: no such file")))
    }

    #[test]
    fn network_or_rollup_config_is_required() {
        let e = Config::from_raw(&raw(&[]), &no_files).unwrap_err();
        assert_eq!(e.flag, "network");
        let e = Config::from_raw(&raw(&["--network", "op-mainnet", "--rollup.config", "x"]), &no_files)
            .unwrap_err();
        assert!(e.msg.contains("cannot specify both"));
        let e = Config::from_raw(&raw(&["--network", "nope"]), &no_files).unwrap_err();
        assert!(e.to_string().starts_with("--network: unknown network"), "{e}");
        let e = Config::from_raw(&raw(&["--rollup.config", "/missing.json"]), &no_files).unwrap_err();
        assert_eq!(e.flag, "rollup.config");
    }

    #[test]
    fn built_in_network_with_overrides() {
        let c =
            Config::from_raw(&raw(&["--network", "op-sepolia", "--override.karst", "1900000000"]), &no_files)
                .unwrap();
        assert_eq!(c.rollup.l2_chain_id, 11155420);
        assert_eq!(c.rollup.forks.karst_time, Some(1_900_000_000));
        assert_eq!(c.network.as_deref(), Some("op-sepolia"));
        assert_eq!(c.rpc.port, 9545);
        assert_eq!(c.rpc.addr.to_string(), "127.0.0.1");
        assert_eq!(c.metrics.addr.to_string(), "127.0.0.1");
        assert_eq!(c.l1.receipts, ReceiptsMethod::BlockReceipts);
        // An override that breaks fork order is a config error.
        let e = Config::from_raw(
            &raw(&["--network", "op-mainnet", "--override.canyon", "1900000000"]),
            &no_files,
        )
        .unwrap_err();
        assert!(e.msg.contains("delta"), "{e}");
    }

    #[test]
    fn rollup_config_file_is_loaded_and_checked() {
        let json = crate::protocol::rollup::tests_support::BASE_JSON;
        let read = |_: &str| Ok(json.to_string());
        let c =
            Config::from_raw(&raw(&["--rollup.config", "base.json", "--l1.rpckind", "debug_geth"]), &read)
                .unwrap();
        assert_eq!(c.rollup.l2_chain_id, 8453);
        assert_eq!(c.l1.receipts, ReceiptsMethod::DebugRawReceipts);
        let bad = |_: &str| Ok("{\"block_time\": 0}".to_string());
        let e = Config::from_raw(&raw(&["--rollup.config", "bad.json"]), &bad).unwrap_err();
        assert!(e.to_string().starts_with("--rollup.config: bad.json: invalid rollup config"), "{e}");
    }

    #[test]
    fn endpoints_and_addresses_are_validated() {
        let e =
            Config::from_raw(&raw(&["--network", "op-mainnet", "--l1", "ws://x"]), &no_files).unwrap_err();
        assert_eq!(e.flag, "l1");
        let e = Config::from_raw(&raw(&["--network", "op-mainnet", "--rpc.addr", "localhost:1"]), &no_files)
            .unwrap_err();
        assert_eq!(e.flag, "rpc.addr");
    }
}
