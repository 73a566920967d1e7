//! Simulated time: the node's sans-IO core, wired as the node wires it, driven by the devnet's
//! L1 simulator and engine stand-in on virtual time — no sockets, no threads, no sleeping.

pub mod derivation;
mod faults;
mod follow;
mod scenarios;
pub(crate) mod sequencer;

/// A node's sans-IO core on virtual time, answered from the devnet: the verifier's derivers
/// (plus the sequencer when configured) over `engine`, the devnet's L1 and its beacon blobs.
pub struct Core {
    pub core: op_lite::node::Core,
}

/// Which of the devnet's engines a core drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineOf {
    /// The verifier's engine stand-in.
    Node,
    /// The producer's (sequencer's) engine.
    Sequencer,
}

impl Core {
    pub fn new(
        devnet: &op_lite::devnet::chain::Devnet,
        now: op_lite::time::Now,
        sequencer: Option<op_lite::driver::sequencer::SequencerConfig>,
    ) -> Core {
        use std::sync::Arc;
        let cfg = Arc::new(devnet.rollup_config().clone());
        let l1 = op_lite::protocol::l1_chain::L1ChainSpec::dev(op_lite::devnet::DEVNET_L1_CHAIN_ID);
        let mut core = op_lite::node::Core::at(op_lite::node::Params::new(cfg, Arc::new(l1), 5), now);
        core.derivers.l1_poller = Some(op_lite::driver::l1_poll::L1Poller::new(
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(6),
        ));
        if let Some(conf) = sequencer {
            core.add_sequencer(conf, now);
        }
        core.emit(op_lite::event::Event::StepReq { reset_backoff: false });
        Core { core }
    }

    pub fn status(&self) -> op_lite::driver::status::SyncStatus {
        self.core.status()
    }

    /// Answers a request from the devnet (published blocks are left to the caller).
    pub fn answer(
        devnet: &mut op_lite::devnet::chain::Devnet,
        engine: EngineOf,
        r: op_lite::event::Request,
    ) -> Result<op_lite::event::Event, op_lite::event::Request> {
        use op_lite::driver::l1_poll::L1Label;
        use op_lite::event::{Event, Request};
        let e = match engine {
            EngineOf::Node => &mut devnet.engine,
            EngineOf::Sequencer => &mut devnet.seq,
        };
        let l1 = &devnet.l1;
        Ok(match r {
            Request::Fetch(f) => {
                Event::ChainDataArrived(Box::new(op_lite::devnet::chain::serve_fetch(l1, e, f)))
            }
            Request::PollL1 { label: L1Label::Latest, .. } => Event::L1HeadUpdated(l1.head().block_ref()),
            Request::PollL1 { label: L1Label::Safe, .. } => Event::L1SafeUpdated(l1.safe().block_ref()),
            Request::PollL1 { label: L1Label::Finalized, .. } => {
                Event::L1FinalizedUpdated(l1.finalized().block_ref())
            }
            Request::Engine { id, call } => Event::EngineReplied { id, result: e.handle(&call) },
            other => return Err(other),
        })
    }

    /// One turn: due timers, the queue, and the requests it made (taken out for answering).
    /// Returns the requests and whether the core is idle.
    pub fn turn(&mut self, now: op_lite::time::Now) -> (Vec<op_lite::event::Request>, bool) {
        self.core.handle_timeout(now);
        self.core.drain(now).expect("no critical error");
        let reqs = self.core.poll_requests();
        let due = self.core.poll_timeout().is_some_and(|(t, _)| t <= now.mono);
        let idle = reqs.is_empty() && self.core.pending() == 0 && !due;
        (reqs, idle)
    }

    /// Runs to quiescence, answering from the devnet (other requests are dropped).
    pub fn settle(
        &mut self,
        devnet: &mut op_lite::devnet::chain::Devnet,
        engine: EngineOf,
        now: op_lite::time::Now,
    ) {
        for _ in 0..100_000 {
            let (reqs, idle) = self.turn(now);
            if idle {
                return;
            }
            for r in reqs {
                if let Ok(ev) = Core::answer(devnet, engine, r) {
                    self.core.emit(ev);
                }
            }
        }
        panic!("the core did not settle");
    }
}
