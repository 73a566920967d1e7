//! Process statistics from Linux `/proc`, as Prometheus' process collector reads them: CPU time
//! and start time from `/proc/self/stat` (in USER_HZ ticks, which Linux fixes at 100 for user
//! space), memory from `/proc/self/status`, descriptors from `/proc/self/fd` and
//! `/proc/self/limits`, boot time from `/proc/stat`.

use std::fs;

use crate::metrics::ProcStats;

/// Linux reports process times to user space in units of 1/100 s.
const USER_HZ: f64 = 100.0;

/// Reads this process's statistics; `None` where `/proc` is missing or unreadable.
pub fn read_self() -> Option<ProcStats> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let boot = fs::read_to_string("/proc/stat").ok()?;
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let open_fds = fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    parse(&stat, &status, &boot, &limits, open_fds)
}

/// Combines the texts of the `/proc` files into statistics.
fn parse(stat: &str, status: &str, boot: &str, limits: &str, open_fds: f64) -> Option<ProcStats> {
    // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime/stime are fields 14/15, starttime field 22.
    let field = |n: usize| -> Option<f64> { fields.get(n.checked_sub(3)?)?.parse().ok() };
    let (utime, stime, start) = (field(14)?, field(15)?, field(22)?);
    let btime: f64 = boot.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    let kb = |key: &str| -> Option<f64> {
        let v = status.lines().find_map(|l| l.strip_prefix(key))?;
        let n: f64 = v.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(n * 1024.0)
    };
    let max_fds = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next())
        .map(|soft| soft.parse().unwrap_or(f64::INFINITY))?;
    Some(ProcStats {
        cpu_seconds: (utime + stime) / USER_HZ,
        resident_bytes: kb("VmRSS:")?,
        virtual_bytes: kb("VmSize:")?,
        start_time_seconds: btime + start / USER_HZ,
        open_fds,
        max_fds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (op lite (x)) S 1 4242 4242 0 -1 4194560 1200 0 0 0 \
        250 50 0 0 20 0 3 0 123456 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 \
        0 0 0 17 1 0 0 0 0 0\n";
    const STATUS: &str = "Name:\top-lite\nVmSize:\t  102400 kB\nVmRSS:\t    10240 kB\n";
    const BOOT: &str = "cpu  1 2 3 4\nbtime 1700000000\nprocesses 10\n";
    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units\n\
        Max open files            1024                 1048576              files\n";

    #[test]
    fn parses_proc_texts() {
        let p = parse(STAT, STATUS, BOOT, LIMITS, 7.0).unwrap();
        assert_eq!(p.cpu_seconds, 3.0);
        assert_eq!(p.start_time_seconds, 1_700_000_000.0 + 1234.56);
        assert_eq!(p.resident_bytes, 10_485_760.0);
        assert_eq!(p.virtual_bytes, 104_857_600.0);
        assert_eq!((p.open_fds, p.max_fds), (7.0, 1024.0));
        let unlimited = LIMITS.replace("1024   ", "unlimited");
        assert!(parse(STAT, STATUS, BOOT, &unlimited, 7.0).unwrap().max_fds.is_infinite());
    }

    #[test]
    fn truncated_or_garbage_texts_are_none_not_panics() {
        for n in 0..STAT.len() {
            let _ = parse(&STAT[..n], STATUS, BOOT, LIMITS, 0.0);
        }
        assert!(parse("garbage", STATUS, BOOT, LIMITS, 0.0).is_none());
        assert!(parse(STAT, "", BOOT, LIMITS, 0.0).is_none());
        assert!(parse(STAT, STATUS, "", LIMITS, 0.0).is_none());
    }

    #[test]
    fn reads_this_process() {
        if std::path::Path::new("/proc/self/stat").exists() {
            let p = read_self().unwrap();
            assert!(p.resident_bytes > 0.0 && p.open_fds > 0.0 && p.start_time_seconds > 1e9);
        }
    }
}
