//! systemd's notify protocol, written here rather than linked from libsystemd: datagrams of
//! `KEY=VALUE` lines to the unix socket in `$NOTIFY_SOCKET` (a path, or `@name` for the abstract
//! namespace). The node sends `READY=1` once it serves RPC and its engine has answered,
//! `STATUS=` with its heads, `WATCHDOG=1` from the poll loop at half of `$WATCHDOG_USEC`, and
//! `STOPPING=1` on shutdown. Without `$NOTIFY_SOCKET` every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Where notifications go, and the watchdog period.
pub struct SdNotify {
    socket: UnixDatagram,
    target: Target,
    /// Half the watchdog timeout, when systemd asked for a watchdog.
    pub watchdog_every: Option<Duration>,
    next_watchdog: Option<Instant>,
    ready: bool,
    last_status: String,
    last_status_at: Option<Instant>,
}

enum Target {
    Path(std::path::PathBuf),
    #[cfg(target_os = "linux")]
    Abstract(Vec<u8>),
}

/// Status lines go out at most this often.
const STATUS_EVERY: Duration = Duration::from_secs(1);

impl SdNotify {
    /// From the environment; `None` when not run under a notify-aware service manager.
    pub fn from_env() -> Option<SdNotify> {
        let env = |k: &str| std::env::var_os(k).and_then(|v| v.into_string().ok());
        let path = env("NOTIFY_SOCKET").filter(|p| !p.is_empty())?;
        let target = match path.strip_prefix('@') {
            #[cfg(target_os = "linux")]
            Some(name) => Target::Abstract(name.as_bytes().to_vec()),
            #[cfg(not(target_os = "linux"))]
            Some(_) => return None,
            None => Target::Path(path.into()),
        };
        // The watchdog is ours only if WATCHDOG_PID is unset or names this process.
        let for_us = env("WATCHDOG_PID").is_none_or(|p| p.parse::<u32>().ok() == Some(std::process::id()));
        let watchdog_every = env("WATCHDOG_USEC")
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0 && for_us)
            .map(|u| Duration::from_micros(u / 2));
        let socket = match UnixDatagram::unbound() {
            Ok(s) => s,
            Err(e) => {
                log::warn!("sd_notify: cannot create a socket: {e}");
                return None;
            }
        };
        let _ = socket.set_nonblocking(true);
        Some(SdNotify {
            socket,
            target,
            watchdog_every,
            next_watchdog: None,
            ready: false,
            last_status: String::new(),
            last_status_at: None,
        })
    }

    /// Sends one notification; failures are logged, never fatal.
    pub fn send(&self, msg: &str) {
        let r = match &self.target {
            Target::Path(p) => self.socket.send_to(msg.as_bytes(), p),
            #[cfg(target_os = "linux")]
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .and_then(|a| self.socket.send_to_addr(msg.as_bytes(), &a))
            }
        };
        if let Err(e) = r {
            log::debug!("sd_notify: {e}");
        }
    }

    /// `READY=1`, once.
    pub fn ready(&mut self, status: &str) {
        if !self.ready {
            self.ready = true;
            self.send(&format!("READY=1\nSTATUS={status}"));
            self.last_status = status.to_string();
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// `STATUS=` when it changed, at most once a second.
    pub fn status(&mut self, status: &str, now: Instant) {
        if status == self.last_status || self.last_status_at.is_some_and(|t| now < t + STATUS_EVERY) {
            return;
        }
        self.send(&format!("STATUS={status}"));
        self.last_status = status.to_string();
        self.last_status_at = Some(now);
    }

    /// When the loop must wake for the next watchdog ping.
    pub fn watchdog_deadline(&self) -> Option<Instant> {
        self.next_watchdog
    }

    /// Pings the watchdog if due; called every loop turn, so a stuck loop stops pinging.
    pub fn watchdog(&mut self, now: Instant) {
        let Some(every) = self.watchdog_every else { return };
        if self.next_watchdog.is_none_or(|t| now >= t) {
            self.send("WATCHDOG=1");
            self.next_watchdog = Some(now + every);
        }
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}
