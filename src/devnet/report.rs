//! The devnet's progress line: writes the node's unsafe / safe / finalized L2 heads and its L1
//! view to a sink whenever they move, and asks the node to stop once its safe head reaches the
//! target, or once the sink is closed (nobody reads the lines any more).

use crate::event::{Deriver, Emitter, Event, Request};
use crate::protocol::block_ref::{L1BlockRef, L2BlockRef};
use crate::time::Now;

/// Where the lines go: returns false once they cannot be written (a closed pipe).
pub type Sink = Box<dyn FnMut(&str) -> bool>;

/// Watches the node's forkchoice.
pub struct Reporter {
    /// Stop once the safe head reaches this L2 block.
    pub target: Option<u64>,
    sink: Sink,
    last: Option<(u64, u64, u64)>,
    l1_head: Option<L1BlockRef>,
    /// A light node's source: its safe and finalized heights when last polled.
    source: Option<(u64, u64)>,
    /// Times the safe head moved (shared with whoever reports at exit).
    pub safe_updates: std::rc::Rc<std::cell::Cell<u64>>,
    stopping: bool,
}

impl Reporter {
    pub fn new(target: Option<u64>, sink: Sink) -> Self {
        Reporter {
            target,
            sink,
            last: None,
            l1_head: None,
            source: None,
            safe_updates: Default::default(),
            stopping: false,
        }
    }

    /// Writes a line; a closed sink stops the node (once).
    fn say(&mut self, line: &str, out: &mut Emitter) {
        if self.stopping {
            return;
        }
        if !(self.sink)(line) {
            self.stopping = true;
            log::info!("devnet: standard output is closed, stopping");
            out.request(Request::Stop);
        }
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
            Event::FollowSourceStatus(Ok(s)) => {
                self.source = Some((s.safe_l2.number, s.finalized_l2.number));
                false
            }
            Event::ForkchoiceUpdate(h) => {
                let key = (h.unsafe_head.number, h.safe.number, h.finalized.number);
                if self.last == Some(key) {
                    return false;
                }
                if self.last.is_some_and(|(_, safe, _)| safe != key.1) {
                    self.safe_updates.set(self.safe_updates.get() + 1);
                }
                self.last = Some(key);
                let mut line = format!(
                    "l2 unsafe {}  safe {}  finalized {}  | l1 head #{}",
                    Self::short(&h.unsafe_head),
                    Self::short(&h.safe),
                    Self::short(&h.finalized),
                    self.l1_head.map_or(0, |r| r.number)
                );
                if let Some((safe, finalized)) = self.source {
                    line += &format!("  | source safe #{safe} finalized #{finalized}");
                }
                self.say(&line, out);
                if let Some(t) = self.target.filter(|t| h.safe.number >= *t && !self.stopping) {
                    self.say(&format!("safe head reached L2 block {t}: stopping"), out);
                    self.stopping = true;
                    out.request(Request::Stop);
                }
                true
            }
            _ => false,
        }
    }
}
