//! Real clocks.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::time::Now;

/// Reads the monotonic and wall clocks together.
pub fn now() -> Now {
    let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    Now::new(Instant::now(), unix_ms)
}

/// The monotonic clock alone, for the event system's processing-time metrics.
pub fn mono() -> Instant {
    Instant::now()
}

/// Blocks the calling thread for `d` (command-line tools waiting on something outside).
pub fn sleep(d: std::time::Duration) {
    std::thread::sleep(d)
}

/// A seed for jitter RNGs that differs between runs.
pub fn seed() -> u64 {
    let n = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    n ^ (std::process::id() as u64).rotate_left(32)
}
