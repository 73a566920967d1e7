//! Logger set-up: text (op-node terminal style) or JSON lines on stderr, with a level that can be
//! changed while running (`admin_setLogLevel`).

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use log::LevelFilter;

/// Output format of `--log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global logger. The dependency crates stay at `info` or above whatever the
/// node's level; `RUST_LOG` may refine filters further.
pub fn init(level: LevelFilter, format: LogFormat, color: bool) {
    let mut b = env_logger::Builder::new();
    b.filter_level(LevelFilter::Trace)
        .filter_module("ureq", LevelFilter::Info)
        .filter_module("ureq_proto", LevelFilter::Info)
        .filter_module("rustls", LevelFilter::Warn)
        .filter_module("mio", LevelFilter::Info);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.format(move |buf, rec| {
        let ts = utc_timestamp(SystemTime::now());
        match format {
            LogFormat::Json => {
                let line = serde_json::json!({
                    "t": ts,
                    "lvl": rec.level().as_str().to_ascii_lowercase(),
                    "msg": rec.args().to_string(),
                    "target": rec.target(),
                });
                writeln!(buf, "{line}")
            }
            LogFormat::Text => {
                let lvl = match rec.level() {
                    log::Level::Error => "ERROR",
                    log::Level::Warn => "WARN ",
                    log::Level::Info => "INFO ",
                    log::Level::Debug => "DEBUG",
                    log::Level::Trace => "TRACE",
                };
                if color {
                    let code = match rec.level() {
                        log::Level::Error => "31",
                        log::Level::Warn => "33",
                        log::Level::Info => "32",
                        log::Level::Debug => "36",
                        log::Level::Trace => "35",
                    };
                    writeln!(buf, "\x1b[{code}m{lvl}\x1b[0m [{ts}] {}", rec.args())
                } else {
                    writeln!(buf, "{lvl} [{ts}] {}", rec.args())
                }
            }
        }
    });
    // A second init (tests) keeps the first logger; only the level changes.
    let _ = b.try_init();
    set_level(level);
}

/// Changes the live log level.
pub fn set_level(level: LevelFilter) {
    log::set_max_level(level);
}

/// `2006-01-02T15:04:05.000Z` from a system time.
pub fn utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = crate::time::civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_iso8601() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_694_158_125_123);
        assert_eq!(utc_timestamp(t), "2023-09-08T07:28:45.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_timestamp(leap), "2000-02-29T00:00:00.000Z");
    }
}
