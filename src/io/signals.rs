//! SIGINT / SIGTERM as loop input. The first signal asks for a graceful stop in op-node's order;
//! the second exits at once.

use mio::{Interest, Registry, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

/// What the loop should do after reading pending signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    None,
    GracefulStop,
    ExitNow,
}

/// The registered signal source and how many signals arrived so far.
pub struct SignalWatch {
    signals: Signals,
    received: u32,
}

impl SignalWatch {
    pub fn register(registry: &Registry, token: Token) -> std::io::Result<Self> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        registry.register(&mut signals, token, Interest::READABLE)?;
        Ok(SignalWatch { signals, received: 0 })
    }

    /// Reads pending signals.
    pub fn on_readable(&mut self) -> SignalAction {
        let mut action = SignalAction::None;
        for sig in self.signals.pending() {
            self.received += 1;
            let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
            if self.received == 1 {
                ::log::info!("received {name}, stopping gracefully (send again to exit immediately)");
                action = SignalAction::GracefulStop;
            } else {
                ::log::warn!("received {name} again, exiting immediately");
                return SignalAction::ExitNow;
            }
        }
        action
    }
}

/// Blocks until SIGINT or SIGTERM (for commands that only serve, such as `devnet --serve-only`).
pub fn wait_for_stop() -> std::io::Result<()> {
    let mut poll = mio::Poll::new()?;
    let mut watch = SignalWatch::register(poll.registry(), Token(0))?;
    let mut events = mio::Events::with_capacity(4);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if watch.on_readable() != SignalAction::None {
            return Ok(());
        }
    }
}
