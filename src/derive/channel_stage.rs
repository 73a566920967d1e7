//! Channel bank (pre-Holocene: many channels in FIFO order, timeouts by fork, a total size cap
//! with pruning, Canyon's "first ready channel" rule) and channel assembler (Holocene: one
//! channel at a time, strictly in order). The mux switches at Holocene activation or reset.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::frame_queue::FrameQueue;
use super::{Cx, StageError, StageResult};
use crate::protocol::block_ref::L1BlockRef;
use crate::protocol::channel::Channel;
use crate::protocol::frame::Frame;
use crate::protocol::rollup::Fork;

type ChannelId = [u8; 16];

/// op-node `ChannelBank`.
#[derive(Debug, Default)]
pub struct ChannelBank {
    channels: HashMap<ChannelId, Channel>,
    queue: Vec<ChannelId>,
}

/// op-node `ChannelAssembler`.
#[derive(Debug, Default)]
pub struct ChannelAssembler {
    channel: Option<Channel>,
}

#[derive(Debug)]
enum Kind {
    Bank(ChannelBank),
    Assembler(ChannelAssembler),
}

/// op-node `ChannelMux`: the active channel stage and the frame queue before it.
#[derive(Debug)]
pub struct ChannelStage {
    pub prev: FrameQueue,
    kind: Kind,
}

impl Default for ChannelStage {
    fn default() -> Self {
        ChannelStage { prev: FrameQueue::default(), kind: Kind::Bank(ChannelBank::default()) }
    }
}

fn timed_out(open: u64, origin: &L1BlockRef, cx: &Cx) -> bool {
    open.saturating_add(cx.cfg.channel_timeout(origin.timestamp)) < origin.number
}

impl ChannelStage {
    pub fn origin(&self) -> L1BlockRef {
        self.prev.origin()
    }

    pub fn is_holocene(&self) -> bool {
        matches!(self.kind, Kind::Assembler(_))
    }

    /// Picks the stage for `base` and empties it (op-node `ChannelMux.Reset`).
    pub fn reset(&mut self, base: &L1BlockRef, cx: &Cx) {
        self.kind = if cx.cfg.is_active(Fork::Holocene, base.timestamp) {
            Kind::Assembler(ChannelAssembler::default())
        } else {
            Kind::Bank(ChannelBank::default())
        };
    }

    /// Switches to the channel assembler when Holocene activates.
    pub fn transform_holocene(&mut self) {
        if matches!(self.kind, Kind::Bank(_)) {
            log::info!("ChannelMux: transforming to Holocene stage");
            self.kind = Kind::Assembler(ChannelAssembler::default());
        }
    }

    /// Drops the channel being assembled (Holocene: an invalid batch flushes its channel).
    pub fn flush_channel(&mut self) {
        if let Kind::Assembler(a) = &mut self.kind {
            a.channel = None;
        }
    }

    /// The data of the next complete channel.
    pub fn next_raw_channel(&mut self, cx: &mut Cx) -> StageResult<Vec<u8>> {
        match &mut self.kind {
            Kind::Bank(b) => b.next_raw_channel(&mut self.prev, cx),
            Kind::Assembler(a) => a.next_raw_channel(&mut self.prev, cx),
        }
    }

    /// Bytes buffered in channels (for metrics and memory accounting).
    pub fn buffered_bytes(&self) -> u64 {
        match &self.kind {
            Kind::Bank(b) => b.channels.values().map(|c| c.size()).sum(),
            Kind::Assembler(a) => a.channel.as_ref().map_or(0, |c| c.size()),
        }
    }
}

impl ChannelBank {
    fn next_raw_channel(&mut self, prev: &mut FrameQueue, cx: &mut Cx) -> StageResult<Vec<u8>> {
        match self.read(prev.origin(), cx) {
            Err(StageError::Eof) => {}
            other => return other,
        }
        let frame = prev.next_frame(cx)?;
        self.ingest_frame(frame, prev.origin(), cx);
        Err(StageError::NotEnoughData)
    }

    fn ingest_frame(&mut self, f: Frame, origin: L1BlockRef, cx: &mut Cx) {
        let id = f.channel_id;
        let ch = match self.channels.entry(id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                log::info!("created new channel channel={} origin={origin}", hex16(&id));
                self.queue.push(id);
                e.insert(Channel::new(id, origin, false))
            }
        };
        if timed_out(ch.open_block().number, &origin, cx) {
            log::warn!("channel is timed out, ignore frame channel={} frame={}", hex16(&id), f.number);
            return;
        }
        if let Err(e) = ch.add_frame(f, origin) {
            log::warn!("failed to ingest frame into channel channel={}: {e}", hex16(&id));
            return;
        }
        self.prune(origin, cx);
    }

    /// Evicts the oldest channels while the bank exceeds its size limit.
    fn prune(&mut self, origin: L1BlockRef, cx: &Cx) {
        let limit = cx.cfg.max_channel_bank_size(origin.timestamp);
        let mut total: u64 = self.channels.values().map(|c| c.size()).sum();
        while total > limit && !self.queue.is_empty() {
            let id = self.queue.remove(0);
            if let Some(ch) = self.channels.remove(&id) {
                log::info!("pruning channel channel={} size={} total={total}", hex16(&id), ch.size());
                total -= ch.size();
            }
        }
    }

    fn read(&mut self, origin: L1BlockRef, cx: &mut Cx) -> StageResult<Vec<u8>> {
        let Some(first) = self.queue.first().copied() else {
            return Err(StageError::Eof);
        };
        let open = self.channels.get(&first).map_or(0, |c| c.open_block().number);
        if timed_out(open, &origin, cx) {
            log::info!("channel timed out channel={}", hex16(&first));
            cx.metrics.channel_timeouts += 1;
            self.channels.remove(&first);
            self.queue.remove(0);
            // Several channels may time out at once: let the caller come back.
            return Err(StageError::NotEnoughData);
        }
        if !cx.cfg.is_active(Fork::Canyon, origin.timestamp) {
            return self.try_read_at(0, origin, cx);
        }
        for i in 0..self.queue.len() {
            if let Ok(data) = self.try_read_at(i, origin, cx) {
                return Ok(data);
            }
        }
        Err(StageError::Eof)
    }

    fn try_read_at(&mut self, i: usize, origin: L1BlockRef, cx: &Cx) -> StageResult<Vec<u8>> {
        let id = self.queue[i];
        let Some(ch) = self.channels.get(&id) else {
            return Err(StageError::Eof);
        };
        if timed_out(ch.open_block().number, &origin, cx) || !ch.is_ready() {
            return Err(StageError::Eof);
        }
        log::info!("reading channel channel={} origin={origin}", hex16(&id));
        self.queue.remove(i);
        let ch = self.channels.remove(&id).ok_or(StageError::Eof)?;
        ch.reader_bytes().ok_or(StageError::Eof)
    }
}

impl ChannelAssembler {
    fn next_raw_channel(&mut self, prev: &mut FrameQueue, cx: &mut Cx) -> StageResult<Vec<u8>> {
        let origin = prev.origin();
        if self.channel.as_ref().is_some_and(|c| timed_out(c.open_block().number, &origin, cx)) {
            cx.metrics.channel_timeouts += 1;
            self.channel = None;
        }
        if self.channel.as_ref().is_some_and(|c| c.is_ready()) {
            return Err(StageError::critical("unexpected ready channel"));
        }
        loop {
            let frame = prev.next_frame(cx)?;
            let is_last = frame.is_last;
            if frame.number == 0 {
                self.channel = Some(Channel::new(frame.channel_id, origin, true));
                log::info!("created new channel channel={} origin={origin}", hex16(&frame.channel_id));
            }
            let Some(ch) = self.channel.as_mut() else {
                log::warn!(
                    "dropping non-first frame without channel frame_channel={} frame_number={}",
                    hex16(&frame.channel_id),
                    frame.number
                );
                continue;
            };
            if let Err(e) = ch.add_frame(frame, origin) {
                log::warn!("failed to add frame to channel: {e}");
                continue;
            }
            if ch.size() > cx.cfg.max_rlp_bytes_per_channel(origin.timestamp) {
                log::warn!("dropping oversized channel channel={}", hex16(&ch.id()));
                self.channel = None;
                continue;
            }
            if is_last {
                break;
            }
        }
        match self.channel.take() {
            Some(ch) if ch.is_ready() => {
                ch.reader_bytes().ok_or(StageError::critical("ready channel without data"))
            }
            _ => Err(StageError::critical("unexpected non-ready channel")),
        }
    }
}

fn hex16(id: &ChannelId) -> String {
    crate::protocol::primitives::to_hex(id)
}
