//! Raw flag values from the command line (pico-args) and the environment, against the flag
//! table. A flag given on the command line wins over its variable; the variable wins over the
//! default. Values stay strings here; `Config::from_raw` types and validates them.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use super::flags::{self, Flag, Kind, Support};

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cli,
    Env(&'static str),
}

/// A usage error: always names the flag; the binary prints it on one line and exits 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Flag values as given, before typing.
#[derive(Debug, Clone, Default)]
pub struct RawArgs {
    values: BTreeMap<&'static str, (Vec<String>, Source)>,
    /// Messages to log once logging is up (unknown variables, ignored flags).
    pub warnings: Vec<String>,
}

impl RawArgs {
    /// Parses `args` (without the program name) and the environment `env`.
    pub fn parse(args: Vec<OsString>, env: &[(String, String)]) -> Result<RawArgs, UsageError> {
        let mut pargs = pico_args::Arguments::from_vec(args);
        let mut raw = RawArgs::default();
        for flag in flags::FLAGS {
            let names = std::iter::once(flag.name).chain(flag.aliases.iter().copied());
            for name in names {
                let key = format!("--{name}");
                let got = take_cli(&mut pargs, flag, &key)?;
                if !got.is_empty() {
                    raw.values.entry(flag.name).or_insert_with(|| (Vec::new(), Source::Cli)).0.extend(got);
                }
            }
        }
        let rest = pargs.finish();
        if let Some(first) = rest.first() {
            let s = first.to_string_lossy();
            return Err(UsageError(if s.starts_with('-') {
                format!("flag provided but not defined: {s}")
            } else {
                format!("unexpected argument: {s}")
            }));
        }
        for flag in flags::FLAGS {
            if raw.values.contains_key(flag.name) {
                continue;
            }
            if let Some((var, val)) = flag
                .env
                .iter()
                .find_map(|var| env.iter().find(|(k, _)| k == var).map(|(_, v)| (*var, v.clone())))
            {
                let vals = if flag.kind == Kind::List { split_list(&val) } else { vec![val] };
                raw.values.insert(flag.name, (vals, Source::Env(var)));
            }
        }
        raw.warnings.extend(unknown_env_vars(env));
        for flag in flags::FLAGS {
            if let (Support::Ignored(why), true) = (flag.support, raw.values.contains_key(flag.name)) {
                raw.warnings.push(format!("flag --{} has no effect in op-lite: {why}", flag.name));
            }
        }
        for (name, (vals, _)) in &raw.values {
            let flag = flags::find(name).ok_or_else(|| UsageError(format!("unknown flag {name}")))?;
            for v in vals {
                check_value(flag, v)?;
            }
        }
        Ok(raw)
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn source(&self, name: &str) -> Option<Source> {
        self.values.get(name).map(|v| v.1)
    }

    /// The value (last one given) or the flag's default.
    pub fn str(&self, name: &str) -> Option<String> {
        self.values
            .get(name)
            .and_then(|(v, _)| v.last().cloned())
            .or_else(|| flags::find(name).and_then(|f| f.default).map(str::to_string))
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        self.values.get(name).map(|(v, _)| v.clone()).unwrap_or_default()
    }

    pub fn bool(&self, name: &str) -> bool {
        self.str(name).map(|v| parse_bool(&v).unwrap_or(false)).unwrap_or(false)
    }

    pub fn u64(&self, name: &str) -> Option<u64> {
        self.str(name).and_then(|v| v.parse().ok())
    }

    pub fn i64(&self, name: &str) -> Option<i64> {
        self.str(name).and_then(|v| v.parse().ok())
    }

    pub fn duration(&self, name: &str) -> Option<Duration> {
        self.str(name).and_then(|v| parse_duration(&v).ok())
    }
}

/// Takes every occurrence of `key` from the command line.
fn take_cli(pargs: &mut pico_args::Arguments, flag: &Flag, key: &str) -> Result<Vec<String>, UsageError> {
    let mut out = Vec::new();
    let key = static_key(key);
    if flag.kind == Kind::Bool {
        // `--flag` alone means true; `--flag=false` also works (urfave/cli bool flags). Bare
        // occurrences are taken first, so what remains can only be the `=value` form.
        while pargs.contains(key) {
            out.push("true".to_string());
        }
    }
    loop {
        let v: Result<Option<String>, _> = pargs.opt_value_from_str(key);
        match v {
            Ok(Some(v)) if flag.kind == Kind::List => out.extend(split_list(&v)),
            Ok(Some(v)) => out.push(v),
            Ok(None) => break,
            Err(pico_args::Error::OptionWithoutAValue(_)) => {
                return Err(UsageError(format!("flag needs an argument: -{key}")))
            }
            Err(e) => return Err(UsageError(format!("invalid value for flag {key}: {e}"))),
        }
    }
    Ok(out)
}

/// pico-args wants `&'static str` keys; the `--name` strings are built once per process.
fn static_key(key: &str) -> &'static str {
    use std::sync::OnceLock;
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        flags::FLAGS
            .iter()
            .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
            .map(|n| &*Box::leak(format!("--{n}").into_boxed_str()))
            .collect()
    });
    keys.iter().copied().find(|k| *k == key).unwrap_or("--")
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn check_value(flag: &Flag, v: &str) -> Result<(), UsageError> {
    let bad = |why: String| UsageError(format!("invalid value {v:?} for flag --{}: {why}", flag.name));
    match flag.kind {
        Kind::Bool => parse_bool(v).map(|_| ()).ok_or_else(|| bad("not a boolean".into())),
        Kind::U64 => v.parse::<u64>().map(|_| ()).map_err(|e| bad(e.to_string())),
        Kind::Int => v.parse::<i64>().map(|_| ()).map_err(|e| bad(e.to_string())),
        Kind::Port => v.parse::<u16>().map(|_| ()).map_err(|e| bad(e.to_string())),
        Kind::Duration => parse_duration(v).map(|_| ()).map_err(bad),
        Kind::Enum(words) => {
            if words.contains(&v) {
                Ok(())
            } else {
                Err(bad(format!("must be one of {}", words.join(", "))))
            }
        }
        Kind::Str | Kind::Path | Kind::List => Ok(()),
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `time.ParseDuration`: a sequence of decimal numbers with units ns, us (µs), ms, s, m, h;
/// "0" alone is allowed without unit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.starts_with('-') {
        return Err("negative duration".into());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        if num.is_empty() || num == "." {
            return Err(format!("invalid duration {s:?}"));
        }
        let unit_end = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let nanos_per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("missing unit in duration {s:?}")),
            u => return Err(format!("unknown unit {u:?} in duration {s:?}")),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let int: u128 =
            if int.is_empty() { 0 } else { int.parse().map_err(|_| format!("invalid duration {s:?}"))? };
        let mut v = int.checked_mul(nanos_per).ok_or("duration overflow")?;
        let mut scale = nanos_per;
        for d in frac.chars() {
            scale /= 10;
            v += d.to_digit(10).ok_or("invalid duration")? as u128 * scale;
        }
        total = total.checked_add(v).ok_or("duration overflow")?;
        rest = tail;
    }
    u64::try_from(total).map(Duration::from_nanos).map_err(|_| "duration overflow".into())
}

/// Formats a duration the way Go prints it (`12s`, `6m24s`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms % 1000 != 0 && ms < 1000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if h > 0 || m > 0 {
        out += &format!("{m}m");
    }
    let frac = d.subsec_millis();
    if frac > 0 {
        out += &format!("{sec}.{frac:03}s");
    } else {
        out += &format!("{sec}s");
    }
    out
}

/// op-node's `ValidateEnvVars`: `OP_NODE_*` variables that no flag reads.
fn unknown_env_vars(env: &[(String, String)]) -> Vec<String> {
    let known: Vec<&str> = flags::known_env_vars().collect();
    env.iter()
        .filter(|(k, _)| k.starts_with("OP_NODE") && !known.contains(&k.as_str()))
        .map(|(k, _)| format!("Unknown env var {k} (no op-lite flag reads it)"))
        .collect()
}

/// The `--help` text: flags grouped by category with their variables and defaults.
pub fn help_text() -> String {
    let mut s = String::new();
    s.push_str("op-lite: an OP Stack rollup node (op-node compatible) for constrained hosts\n\n");
    s.push_str("USAGE:\n   op-lite [flags]\n   op-lite <command> [args]\n\nCOMMANDS:\n");
    for (cmd, what) in super::COMMANDS {
        s.push_str(&format!("   {cmd:<16} {what}\n"));
    }
    s.push_str("\nFLAGS:\n");
    for cat in flags::Category::ALL {
        let in_cat: Vec<&Flag> = flags::FLAGS.iter().filter(|f| f.category == cat).collect();
        if in_cat.is_empty() && cat != flags::Category::Misc {
            continue;
        }
        s.push_str(&format!("\n   {}\n\n", cat.title()));
        for f in in_cat {
            let value = if f.kind == Kind::Bool { "" } else { " value" };
            let mut names = format!("--{}{}", f.name, value);
            for a in f.aliases {
                names.push_str(&format!(", --{a}"));
            }
            let mut line = format!("   {names:<34} {}", f.usage);
            if let Some(d) = f.default {
                line.push_str(&format!(" (default: {d})"));
            }
            if !f.env.is_empty() {
                line.push_str(&format!(" [${}]", f.env.join(", $")));
            }
            s.push_str(&line);
            s.push('\n');
        }
        if cat == flags::Category::Misc {
            s.push_str("   --help, -h                         show help\n");
            s.push_str("   --version, -v                      print the version\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn cli_wins_over_env_and_env_over_default() {
        let raw = RawArgs::parse(
            args(&["--l1", "http://cli:8545", "--rpc.port=9999"]),
            &env(&[("OP_NODE_L1_ETH_RPC", "http://env:8545"), ("OP_NODE_L2_ENGINE_RPC", "http://l2:8551")]),
        )
        .unwrap();
        assert_eq!(raw.str("l1").as_deref(), Some("http://cli:8545"));
        assert_eq!(raw.source("l1"), Some(Source::Cli));
        assert_eq!(raw.str("l2").as_deref(), Some("http://l2:8551"));
        assert_eq!(raw.source("l2"), Some(Source::Env("OP_NODE_L2_ENGINE_RPC")));
        assert_eq!(raw.u64("rpc.port"), Some(9999));
        assert_eq!(raw.str("metrics.port").as_deref(), Some("7300"));
        assert!(!raw.is_set("metrics.port"));
    }

    #[test]
    fn bool_flags_take_optional_values() {
        let raw = RawArgs::parse(args(&["--rpc.enable-admin", "--l1.trustrpc=false", "--p2p.disable"]), &[])
            .unwrap();
        assert!(raw.bool("rpc.enable-admin"));
        assert!(!raw.bool("l1.trustrpc"));
        assert!(raw.bool("p2p.disable"));
        let raw = RawArgs::parse(vec![], &env(&[("OP_NODE_METRICS_ENABLED", "true")])).unwrap();
        assert!(raw.bool("metrics.enabled"));
    }

    #[test]
    fn usage_errors_name_the_flag() {
        let e = RawArgs::parse(args(&["--no-such-flag"]), &[]).unwrap_err();
        assert_eq!(e.0, "flag provided but not defined: --no-such-flag");
        let e = RawArgs::parse(args(&["--rpc.port"]), &[]).unwrap_err();
        assert!(e.0.contains("rpc.port"), "{e}");
        let e = RawArgs::parse(args(&["--rpc.port", "http"]), &[]).unwrap_err();
        assert!(e.0.contains("--rpc.port"), "{e}");
        let e = RawArgs::parse(args(&["--syncmode", "fast"]), &[]).unwrap_err();
        assert!(e.0.contains("--syncmode") && e.0.contains("consensus-layer"), "{e}");
        let e = RawArgs::parse(args(&["--l1.http-poll-interval", "12"]), &[]).unwrap_err();
        assert!(e.0.contains("missing unit"), "{e}");
        let e = RawArgs::parse(vec![], &env(&[("OP_NODE_RPC_PORT", "x")])).unwrap_err();
        assert!(e.0.contains("--rpc.port"), "{e}");
        let e = RawArgs::parse(args(&["stray"]), &[]).unwrap_err();
        assert_eq!(e.0, "unexpected argument: stray");
    }

    #[test]
    fn unknown_op_node_env_vars_warn() {
        let raw = RawArgs::parse(vec![], &env(&[("OP_NODE_L1_ETH_RPCC", "x"), ("OTHER", "y")])).unwrap();
        assert_eq!(raw.warnings.len(), 1);
        assert!(raw.warnings[0].contains("OP_NODE_L1_ETH_RPCC"));
    }

    #[test]
    fn ignored_flags_warn_when_set() {
        let raw = RawArgs::parse(args(&["--heartbeat.enabled"]), &[]).unwrap();
        assert!(raw.warnings.iter().any(|w| w.contains("--heartbeat.enabled")));
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("12s"), Ok(Duration::from_secs(12)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("12").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1x").is_err());
        assert_eq!(format_duration(Duration::from_secs(384)), "6m24s");
        assert_eq!(format_duration(Duration::from_secs(12)), "12s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn help_lists_every_flag_with_env_and_default() {
        let h = help_text();
        for f in flags::FLAGS {
            assert!(h.contains(&format!("--{}", f.name)), "{}", f.name);
            for e in f.env {
                assert!(h.contains(e), "{e}");
            }
        }
        assert!(h.contains("(default: 9545)"));
        assert!(h.contains("1. ROLLUP"));
    }
}
