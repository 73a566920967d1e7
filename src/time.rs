//! The current time as the core sees it: a monotonic instant for deadlines and the wall clock
//! (unix milliseconds) for chain timestamps. Only `src/io/` reads the real clocks; tests build
//! `Now` values by hand and advance them.

use std::time::{Duration, Instant};

/// One reading of both clocks, passed to every deriver call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    pub unix_ms: u64,
}

impl Now {
    pub fn new(mono: Instant, unix_ms: u64) -> Self {
        Now { mono, unix_ms }
    }

    /// Wall-clock seconds since the unix epoch.
    pub fn unix(&self) -> u64 {
        self.unix_ms / 1000
    }

    /// Both clocks moved forward by `d` (virtual time in tests).
    pub fn advance(self, d: Duration) -> Now {
        Now { mono: self.mono + d, unix_ms: self.unix_ms + d.as_millis() as u64 }
    }
}

/// A starting point for virtual-time tests: the one place tests read the clock.
/// `2006-01-02` (UTC) for a unix time in seconds.
pub fn utc_date(unix: u64) -> String {
    let (y, m, d) = civil_from_days((unix / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Howard Hinnant's days-to-civil algorithm: days since 1970-01-01 -> (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_now() -> Now {
    Now::new(Instant::now(), 1_700_000_000_000)
}
