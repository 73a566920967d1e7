//! The devnet's progress line: prints the node's unsafe / safe / finalized L2 heads and its L1
//! view whenever they move, and asks the node to stop once its safe head reaches the target.

use crate::event::{Deriver, Emitter, Event, Request};
use crate::protocol::block_ref::{L1BlockRef, L2BlockRef};
use crate::time::Now;

/// Watches the node's forkchoice.
#[derive(Debug, Default)]
pub struct Reporter {
    /// Stop once the safe head reaches this L2 block.
    pub target: Option<u64>,
    last: Option<(u64, u64, u64)>,
    l1_head: Option<L1BlockRef>,
    stopping: bool,
}

impl Reporter {
    pub fn new(target: Option<u64>) -> Self {
        Reporter { target, ..Reporter::default() }
    }

    fn short(r: &L2BlockRef) -> String {
        let h = r.hash.to_string();
        format!("#{} {}", r.number, &h[..10.min(h.len())])
    }
}

impl Deriver for Reporter {
    fn on_event(&mut self, ev: &Event, _now: Now, out: &mut Emitter) -> bool {
        match ev {
            Event::L1HeadUpdated(r) => {
                self.l1_head = Some(*r);
                false
            }
            Event::ForkchoiceUpdate(h) => {
                let key = (h.unsafe_head.number, h.safe.number, h.finalized.number);
                if self.last == Some(key) {
                    return false;
                }
                self.last = Some(key);
                println!(
                    "l2 unsafe {}  safe {}  finalized {}  | l1 head #{}",
                    Self::short(&h.unsafe_head),
                    Self::short(&h.safe),
                    Self::short(&h.finalized),
                    self.l1_head.map_or(0, |r| r.number)
                );
                if let Some(t) = self.target.filter(|t| h.safe.number >= *t && !self.stopping) {
                    self.stopping = true;
                    println!("safe head reached L2 block {t}: stopping");
                    out.request(Request::Stop);
                }
                true
            }
            _ => false,
        }
    }
}
