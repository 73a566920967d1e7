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
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_now() -> Now {
    Now::new(Instant::now(), 1_700_000_000_000)
}
