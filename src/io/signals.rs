//! SIGINT / SIGTERM as loop input. The first signal asks for a graceful stop in op-node's order;
//! the second exits at once with code 130, from the signal handler itself: the graceful stop may
//! be waiting on a worker blocked in a slow upstream call, with no loop left to read the signal.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use mio::{Interest, Registry, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

/// The exit code of a second signal (128 + SIGINT, as shells report an interrupted program).
pub const EXIT_FORCED: i32 = 130;

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
        // The first signal arms the exit that the second one takes (signal-hook's recipe: the
        // conditional exit is registered first, so the first signal only arms it).
        let armed = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM] {
            signal_hook::flag::register_conditional_shutdown(sig, EXIT_FORCED, armed.clone())?;
            signal_hook::flag::register(sig, armed.clone())?;
        }
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
