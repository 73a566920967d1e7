//! The flag table: every command-line flag op-lite accepts, with op-node's name, environment
//! variable(s), default, category and usage. This is the single place flags are defined; `cli`
//! parses against it and `--help` prints it.
//!
//! Names and variables follow op-node's `op-node/flags/flags.go`, `p2p_flags.go` and the shared
//! `op-service` flag sets (log, metrics, rpc, overrides). Most variables are `OP_NODE_` + the
//! upper-snake-case name, but not all (e.g. `--l1` reads `OP_NODE_L1_ETH_RPC`).

/// The value a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Str,
    /// A path or URL; like `Str` but documented as such.
    Path,
    U64,
    /// A signed integer (op-node's `IntFlag`).
    Int,
    Port,
    /// A Go duration (`12s`, `1m30s`, `500ms`).
    Duration,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    /// Comma-separated, and the flag may repeat.
    List,
}

/// op-node's help categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    Rollup,
    L1Rpc,
    Sequencer,
    Operations,
    P2p,
    Misc,
}

impl Category {
    pub fn title(self) -> &'static str {
        match self {
            Category::Rollup => "1. ROLLUP",
            Category::L1Rpc => "2. L1 RPC",
            Category::Sequencer => "3. SEQUENCER",
            Category::Operations => "4. LOGGING, METRICS, DEBUGGING, AND API",
            Category::P2p => "5. PEER-TO-PEER",
            Category::Misc => "7. MISC",
        }
    }

    pub const ALL: [Category; 6] = [
        Category::Rollup,
        Category::L1Rpc,
        Category::Sequencer,
        Category::Operations,
        Category::P2p,
        Category::Misc,
    ];
}

/// How op-lite treats a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Implemented.
    Yes,
    /// Accepted so op-node command lines keep working, but deliberately without effect; setting
    /// it logs this explanation as a warning. (op-node itself keeps several such no-op flags.)
    Ignored(&'static str),
}

/// One flag.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub env: &'static [&'static str],
    pub kind: Kind,
    pub default: Option<&'static str>,
    pub category: Category,
    pub usage: &'static str,
    pub support: Support,
}

const fn f(
    name: &'static str,
    env: &'static [&'static str],
    kind: Kind,
    default: Option<&'static str>,
    category: Category,
    usage: &'static str,
) -> Flag {
    Flag { name, aliases: &[], env, kind, default, category, usage, support: Support::Yes }
}

const fn aliased(alias: &'static [&'static str], flag: Flag) -> Flag {
    Flag { aliases: alias, ..flag }
}

const fn ignored(
    name: &'static str,
    env: &'static [&'static str],
    kind: Kind,
    category: Category,
    why: &'static str,
) -> Flag {
    Flag {
        name,
        aliases: &[],
        env,
        kind,
        default: None,
        category,
        usage: why,
        support: Support::Ignored(why),
    }
}

use Category::*;
use Kind::*;

pub const SYNC_MODES: &[&str] = &["consensus-layer", "execution-layer"];
pub const RPC_KINDS: &[&str] = &[
    "alchemy",
    "quicknode",
    "infura",
    "parity",
    "nethermind",
    "debug_geth",
    "erigon",
    "basic",
    "any",
    "standard",
];
pub const LOG_LEVELS: &[&str] = &[
    "trace", "trce", "debug", "dbug", "info", "warn", "error", "eror", "crit", "TRACE", "DEBUG", "INFO",
    "WARN", "ERROR", "CRIT",
];
pub const LOG_FORMATS: &[&str] = &["text", "terminal", "logfmt", "logfmtms", "json", "jsonms"];
pub const HALT_LEVELS: &[&str] = &["major", "minor", "patch", "none"];

/// Every flag op-lite accepts.
pub const FLAGS: &[Flag] = &[
    // 1. ROLLUP
    f("l1", &["OP_NODE_L1_ETH_RPC"], Path, Some("http://127.0.0.1:8545"), Rollup,
      "Address of L1 User JSON-RPC endpoint to use (eth namespace required)"),
    f("l2", &["OP_NODE_L2_ENGINE_RPC"], Path, None, Rollup,
      "Address of L2 Engine JSON-RPC endpoints to use (engine and eth namespace required)"),
    f("l2.jwt-secret", &["OP_NODE_L2_ENGINE_AUTH"], Path, None, Rollup,
      "Path to JWT secret key. Keys are 32 bytes, hex encoded in a file. A new key will be generated if the file is empty or absent."),
    f("l1.beacon", &["OP_NODE_L1_BEACON"], Path, None, Rollup,
      "Address of L1 Beacon-node HTTP endpoint to use."),
    f("syncmode", &["OP_NODE_SYNCMODE"], Enum(SYNC_MODES), Some("consensus-layer"), Rollup,
      "Blockchain sync mode (options: consensus-layer, execution-layer)"),
    f("l2.engine-rpc-timeout", &["OP_NODE_L2_ENGINE_RPC_TIMEOUT"], Duration, Some("10s"), Rollup,
      "L2 engine client rpc timeout"),
    f("l2.follow.source", &["OP_NODE_L2_FOLLOW_SOURCE"], Path, None, Rollup,
      "Address of L2 CL RPC HTTP endpoint to follow source"),
    f("l2.follow.source.rpc-timeout", &["OP_NODE_L2_FOLLOW_SOURCE_RPC_TIMEOUT"], Duration, Some("10s"), Rollup,
      "Timeout for RPC requests to the L2 follow source"),
    f("l2.follow.source.skip-l1-check", &["OP_NODE_L2_FOLLOW_SOURCE_SKIP_L1_CHECK"], Bool, Some("false"), Rollup,
      "Do not check the follow source's L1 origins against L1: its L1 view is taken as is, and L1 is only read where other flags need it"),
    f("rollup.l1-chain-config", &["OP_NODE_ROLLUP_L1_CHAIN_CONFIG"], Path, None, Rollup,
      "Path to .json file with the chain configuration for the L1, either in the direct format or genesis.json format (i.e. embedded under the .config property). Not necessary / will be ignored if using Ethereum mainnet, Sepolia, Holesky or Hoodi as an L1."),
    f("rollup.config", &["OP_NODE_ROLLUP_CONFIG"], Path, None, Rollup,
      "Rollup chain parameters (op-node rollup.json)"),
    f("network", &["OP_NODE_NETWORK"], Str, None, Rollup,
      "Predefined network selection: every mainnet and sepolia chain of the superchain registry by op-node's name, e.g. op-mainnet, base-sepolia, unichain-mainnet (`op-lite networks` lists them)"),
    f("rollup.halt", &["OP_NODE_ROLLUP_HALT"], Enum(HALT_LEVELS), None, Rollup,
      "Opt-in option to halt on incompatible protocol version requirements of the given level (major/minor/patch/none), as signaled onchain in L1"),
    f("override.canyon", &["OP_NODE_OVERRIDE_CANYON"], U64, None, Rollup,
      "Manually specify the Canyon fork timestamp, overriding the bundled setting"),
    f("override.delta", &["OP_NODE_OVERRIDE_DELTA"], U64, None, Rollup,
      "Manually specify the Delta fork timestamp, overriding the bundled setting"),
    f("override.ecotone", &["OP_NODE_OVERRIDE_ECOTONE"], U64, None, Rollup,
      "Manually specify the Ecotone fork timestamp, overriding the bundled setting"),
    f("override.fjord", &["OP_NODE_OVERRIDE_FJORD"], U64, None, Rollup,
      "Manually specify the Fjord fork timestamp, overriding the bundled setting"),
    f("override.granite", &["OP_NODE_OVERRIDE_GRANITE"], U64, None, Rollup,
      "Manually specify the Granite fork timestamp, overriding the bundled setting"),
    f("override.holocene", &["OP_NODE_OVERRIDE_HOLOCENE"], U64, None, Rollup,
      "Manually specify the Holocene fork timestamp, overriding the bundled setting"),
    f("override.pectrablobschedule", &["OP_NODE_OVERRIDE_PECTRABLOBSCHEDULE"], U64, None, Rollup,
      "Manually specify the PectraBlobSchedule fork timestamp, overriding the bundled setting"),
    f("override.isthmus", &["OP_NODE_OVERRIDE_ISTHMUS"], U64, None, Rollup,
      "Manually specify the Isthmus fork timestamp, overriding the bundled setting"),
    f("override.jovian", &["OP_NODE_OVERRIDE_JOVIAN"], U64, None, Rollup,
      "Manually specify the Jovian fork timestamp, overriding the bundled setting"),
    f("override.karst", &["OP_NODE_OVERRIDE_KARST"], U64, None, Rollup,
      "Manually specify the Karst fork timestamp, overriding the bundled setting"),
    // 2. L1 RPC
    f("l1.trustrpc", &["OP_NODE_L1_TRUST_RPC"], Bool, Some("false"), L1Rpc,
      "Trust the L1 RPC, sync faster at risk of malicious/buggy RPC providing bad or inconsistent L1 data"),
    f("l1.rpckind", &["OP_NODE_L1_RPC_KIND"], Enum(RPC_KINDS), Some("standard"), L1Rpc,
      "The kind of RPC provider, used to inform optimal transactions receipts fetching: debug_geth uses debug_getRawReceipts, basic fetches receipts per transaction, all others use eth_getBlockReceipts"),
    f("l1.http-poll-interval", &["OP_NODE_L1_HTTP_POLL_INTERVAL"], Duration, Some("12s"), L1Rpc,
      "Polling interval for latest-block subscription when using an HTTP RPC provider."),
    f("l1.epoch-poll-interval", &["OP_NODE_L1_EPOCH_POLL_INTERVAL"], Duration, Some("6m24s"), L1Rpc,
      "Poll interval for retrieving new L1 epoch updates such as safe and finalized block changes. Disabled if 0 or negative."),
    f("l1.runtime-config-reload-interval", &["OP_NODE_L1_RUNTIME_CONFIG_RELOAD_INTERVAL"], Duration, Some("10m0s"), L1Rpc,
      "Poll interval for reloading the runtime config, useful when config events are not being picked up. Disabled if 0 or negative."),
    f("l1.rpc-rate-limit", &["OP_NODE_L1_RPC_RATE_LIMIT"], Str, Some("0"), L1Rpc,
      "Optional self-imposed global rate-limit on L1 RPC requests, specified in requests / second. Disabled if set to 0."),
    f("l1.rpc-max-batch-size", &["OP_NODE_L1_RPC_MAX_BATCH_SIZE"], U64, Some("20"), L1Rpc,
      "Maximum number of RPC requests to bundle, e.g. during L1 blocks receipt fetching. The L1 RPC rate limit counts this as N items, but allows it to burst at once."),
    f("l1.max-concurrency", &["OP_NODE_L1_MAX_CONCURRENCY"], Int, Some("10"), L1Rpc,
      "Maximum number of concurrent RPC requests to make to the L1 RPC provider."),
    f("l1.cache-size", &["OP_NODE_L1_CACHE_SIZE"], U64, Some("900"), L1Rpc,
      "Cache size for blocks, receipts and transactions. If this flag is set to 0, 3/2 of the sequencing window size is used (usually 2400)."),
    f("l1.beacon-header", &["OP_NODE_L1_BEACON_HEADER"], Str, None, L1Rpc,
      "Optional HTTP header to add to all requests to the L1 Beacon endpoint. Format: 'X-Key: Value'"),
    aliased(&["l1.beacon-archiver"], f("l1.beacon-fallbacks", &["OP_NODE_L1_BEACON_FALLBACKS", "OP_NODE_L1_BEACON_ARCHIVER"], List, None, L1Rpc,
      "Addresses of L1 Beacon-API compatible HTTP fallback endpoints. Used to fetch blob sidecars not available at the l1.beacon (e.g. expired blobs).")),
    f("l1.beacon.ignore", &["OP_NODE_L1_BEACON_IGNORE"], Bool, Some("false"), L1Rpc,
      "When false, halts op-node startup if the healthcheck to the Beacon-node endpoint fails."),
    f("l1.beacon.fetch-all-sidecars", &["OP_NODE_L1_BEACON_FETCH_ALL_SIDECARS"], Bool, Some("false"), L1Rpc,
      "If true, all sidecars are fetched and filtered locally. Workaround for buggy Beacon nodes."),
    f("l1.beacon.slot-duration-override", &["OP_NODE_L1_BEACON_SLOT_DURATION_OVERRIDE"], U64, Some("0"), L1Rpc,
      "L1 slot duration in seconds. If non-zero, skips the beacon /eth/v1/config/spec fetch and uses this as SECONDS_PER_SLOT (devnets, anvil)."),
    f("verifier.l1-confs", &["OP_NODE_VERIFIER_L1_CONFS"], U64, Some("0"), L1Rpc,
      "Number of L1 blocks to keep distance from the L1 head before deriving L2 data from. Reorgs are supported, but may be slow to perform."),
    // 3. SEQUENCER
    f("sequencer.enabled", &["OP_NODE_SEQUENCER_ENABLED"], Bool, Some("false"), Sequencer,
      "Enable sequencing of new L2 blocks. A separate batch submitter has to be deployed to publish the data for verifiers."),
    f("sequencer.stopped", &["OP_NODE_SEQUENCER_STOPPED"], Bool, Some("false"), Sequencer,
      "Initialize the sequencer in a stopped state. The sequencer can be started using the admin_startSequencer RPC"),
    f("sequencer.max-safe-lag", &["OP_NODE_SEQUENCER_MAX_SAFE_LAG"], U64, Some("0"), Sequencer,
      "Maximum number of L2 blocks for restricting the distance between L2 safe and unsafe. Disabled if 0."),
    f("sequencer.l1-confs", &["OP_NODE_SEQUENCER_L1_CONFS"], U64, Some("4"), Sequencer,
      "Number of L1 blocks to keep distance from the L1 head as a sequencer for picking an L1 origin."),
    f("sequencer.recover", &["OP_NODE_SEQUENCER_RECOVER"], Bool, Some("false"), Sequencer,
      "Forces the sequencer to strictly prepare the next L1 origin and create empty L2 blocks"),
    f("sequencer.sealing-duration", &["OP_NODE_SEQUENCER_SEALING_DURATION"], Duration, Some("50ms"), Sequencer,
      "This is the amount of the time the sequencer allocates to sealing the block (i.e. it will fetch the payload from the execution engine this much prior to the block's timestamp). If this is <= 0 it is automatically adjusted to 50ms."),
    // 5. LOGGING, METRICS, DEBUGGING, AND API
    f("rpc.addr", &["OP_NODE_RPC_ADDR"], Str, Some("127.0.0.1"), Operations,
      "RPC listening address (op-lite binds loopback by default, a deliberately safer default than exposing the node)"),
    f("rpc.port", &["OP_NODE_RPC_PORT"], Port, Some("9545"), Operations, "RPC listening port"),
    f("rpc.enable-admin", &["OP_NODE_RPC_ENABLE_ADMIN"], Bool, Some("false"), Operations,
      "Enable the admin API"),
    f("metrics.enabled", &["OP_NODE_METRICS_ENABLED"], Bool, Some("false"), Operations,
      "Enable the metrics server"),
    f("metrics.addr", &["OP_NODE_METRICS_ADDR"], Str, Some("127.0.0.1"), Operations,
      "Metrics listening address (op-node defaults to 0.0.0.0; op-lite binds loopback by default, deliberately safer)"),
    f("metrics.port", &["OP_NODE_METRICS_PORT"], Port, Some("7300"), Operations, "Metrics listening port"),
    f("rpc.admin-state", &["OP_NODE_RPC_ADMIN_STATE"], Path, None, Operations,
      "File path used to persist state changes made via the admin API so they persist across restarts. Disabled if not set."),
    f("safedb.path", &["OP_NODE_SAFEDB_PATH"], Path, None, Operations,
      "File path used to persist safe head update data. Disabled if not set."),
    f("log.level", &["OP_NODE_LOG_LEVEL"], Enum(LOG_LEVELS), Some("info"), Operations,
      "The lowest log level that will be output"),
    f("log.format", &["OP_NODE_LOG_FORMAT"], Enum(LOG_FORMATS), Some("text"), Operations,
      "Format the log output: text (also terminal, logfmt, logfmtms) or json (also jsonms)"),
    f("log.color", &["OP_NODE_LOG_COLOR"], Bool, Some("false"), Operations,
      "Color the log output if in terminal mode"),
    ignored("snapshotlog.file", &["OP_NODE_SNAPSHOT_LOG"], Path, Operations,
      "Deprecated in op-node: this flag is ignored, but kept for compatibility."),
    ignored("heartbeat.enabled", &["OP_NODE_HEARTBEAT_ENABLED"], Bool, Operations,
      "Deprecated in op-node: no-op flag."),
    ignored("heartbeat.moniker", &["OP_NODE_HEARTBEAT_MONIKER"], Str, Operations,
      "Deprecated in op-node: no-op flag."),
    ignored("heartbeat.url", &["OP_NODE_HEARTBEAT_URL"], Str, Operations,
      "Deprecated in op-node: no-op flag."),
    ignored("beta.extra-networks", &["OP_NODE_BETA_EXTRA_NETWORKS"], Bool, Rollup,
      "Legacy op-node flag, ignored: all built-in networks are always enabled."),
    // 6. PEER-TO-PEER
    f("p2p.disable", &["OP_NODE_P2P_DISABLE"], Bool, Some("false"), P2p,
      "Completely disable the P2P stack"),
    f("p2p.listen.ip", &["OP_NODE_P2P_LISTEN_IP"], Str, Some("0.0.0.0"), P2p,
      "IP to bind LibP2P to"),
    f("p2p.listen.tcp", &["OP_NODE_P2P_LISTEN_TCP_PORT"], Port, Some("9222"), P2p,
      "TCP port to bind LibP2P to. Any available system port if set to 0."),
    f("p2p.no-discovery", &["OP_NODE_P2P_NO_DISCOVERY"], Bool, Some("false"), P2p,
      "Disable Discv5 (node discovery)"),
    f("p2p.listen.udp", &["OP_NODE_P2P_LISTEN_UDP_PORT"], Port, Some("0"), P2p,
      "UDP port to bind Discv5 to. Same as TCP port if left 0."),
    f("p2p.advertise.ip", &["OP_NODE_P2P_ADVERTISE_IP"], Str, None, P2p,
      "The IP address to advertise in Discv5, put into the ENR of the node (op-lite takes an IP address, not a host name)"),
    f("p2p.advertise.tcp", &["OP_NODE_P2P_ADVERTISE_TCP"], Port, Some("0"), P2p,
      "The TCP port to advertise in Discv5, put into the ENR of the node. Set to p2p.listen.tcp value if 0."),
    f("p2p.advertise.udp", &["OP_NODE_P2P_ADVERTISE_UDP"], Port, Some("0"), P2p,
      "The UDP port to advertise in Discv5 as fallback if not determined by Discv5, put into the ENR of the node. Set to p2p.listen.udp value if 0."),
    f("p2p.discovery.path", &["OP_NODE_P2P_DISCOVERY_PATH"], Path, Some("opnode_discovery_db"), P2p,
      "Discovered ENRs are persisted in a database to recover from a restart without having to bootstrap the discovery process again. Set to 'memory' to never persist the peerstore."),
    f("p2p.static", &["OP_NODE_P2P_STATIC"], List, None, P2p,
      "Comma-separated multiaddr-format peer list. Static connections to make and maintain, these peers will be regarded as trusted."),
    f("p2p.bootnodes", &["OP_NODE_P2P_BOOTNODES"], List, None, P2p,
      "Comma-separated base64-format ENR list (enode:// entries too). Bootnodes to start discovering other node records from (default: op-node's bootnodes); a multiaddr entry is dialled like a static peer."),
    f("p2p.priv.path", &["OP_NODE_P2P_PRIV_PATH"], Path, Some("opnode_p2p_priv.txt"), P2p,
      "Read the hex-encoded 32-byte private key for the peer ID from this txt file. Created if not already exists. Important to persist to keep the same network identity after restarting, maintaining the previous advertised identity."),
    f("p2p.peers.lo", &["OP_NODE_P2P_PEERS_LO"], U64, Some("20"), P2p,
      "Low-tide peer count. The node actively searches for new peer connections if below this amount."),
    f("p2p.peers.hi", &["OP_NODE_P2P_PEERS_HI"], U64, Some("30"), P2p,
      "High-tide peer count. Connections beyond it are refused."),
    f("p2p.sequencer.key", &["OP_NODE_P2P_SEQUENCER_KEY"], Str, None, P2p,
      "Hex-encoded private key for signing off on p2p application messages as sequencer."),
    f("p2p.ban.peers", &["OP_NODE_P2P_PEER_BANNING"], Bool, Some("true"), P2p,
      "Enables peer banning."),
];

/// Looks a flag up by name or alias (without leading dashes).
pub fn find(name: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.name == name || f.aliases.contains(&name))
}

/// Every environment variable some flag reads.
pub fn known_env_vars() -> impl Iterator<Item = &'static str> {
    FLAGS.iter().flat_map(|f| f.env.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_and_env_vars_are_unique() {
        let mut names = HashSet::new();
        let mut envs = HashSet::new();
        for f in FLAGS {
            assert!(names.insert(f.name), "duplicate flag {}", f.name);
            for a in f.aliases {
                assert!(names.insert(a), "duplicate alias {a}");
            }
            for e in f.env {
                assert!(envs.insert(*e), "duplicate env var {e}");
                assert!(e.starts_with("OP_NODE_"), "{e}");
            }
        }
    }

    #[test]
    fn irregular_env_vars_match_op_node() {
        let env = |n: &str| find(n).unwrap().env[0];
        assert_eq!(env("l1"), "OP_NODE_L1_ETH_RPC");
        assert_eq!(env("l2"), "OP_NODE_L2_ENGINE_RPC");
        assert_eq!(env("l2.jwt-secret"), "OP_NODE_L2_ENGINE_AUTH");
        assert_eq!(env("l1.trustrpc"), "OP_NODE_L1_TRUST_RPC");
        assert_eq!(env("l1.rpckind"), "OP_NODE_L1_RPC_KIND");
        assert_eq!(env("l1.beacon"), "OP_NODE_L1_BEACON");
    }

    #[test]
    fn defaults_parse_as_their_kind() {
        for f in FLAGS {
            if let (Some(d), Kind::Enum(words)) = (f.default, f.kind) {
                assert!(words.contains(&d), "{}: default {d} not allowed", f.name);
            }
        }
    }
}
