//! Channel reader: decompresses a channel (zlib, or brotli from Fjord) within the fork's RLP
//! byte limit and yields its batches in order; a malformed batch ends the channel, keeping the
//! batches read before it. Span batches before Delta are dropped.

use super::channel_stage::ChannelStage;
use super::codec::{self, Batch};
use super::{Cx, StageError, StageResult};
use crate::protocol::block_ref::L1BlockRef;
use crate::protocol::rollup::Fork;

/// The decompressed channel being read.
#[derive(Debug)]
struct Reader {
    data: Vec<u8>,
    offset: usize,
}

/// op-node `ChannelInReader`.
#[derive(Debug, Default)]
pub struct ChannelReader {
    pub prev: ChannelStage,
    reader: Option<Reader>,
}

impl ChannelReader {
    pub fn origin(&self) -> L1BlockRef {
        self.prev.origin()
    }

    pub fn next_batch(&mut self, cx: &mut Cx) -> StageResult<Batch> {
        if self.reader.is_none() {
            let raw = self.prev.next_raw_channel(cx)?;
            let origin = self.origin();
            let max = cx.cfg.max_rlp_bytes_per_channel(origin.timestamp);
            let fjord = cx.cfg.is_active(Fork::Fjord, origin.timestamp);
            match codec::decompress_channel(&raw, max, fjord) {
                Ok(data) => {
                    cx.metrics.channel_input_bytes += raw.len() as u64;
                    self.reader = Some(Reader { data, offset: 0 });
                }
                Err(e) => {
                    log::warn!("failed to create batch reader from channel data, dropping channel origin={origin}: {e}");
                    return Err(StageError::NotEnoughData);
                }
            }
        }
        let Some(r) = self.reader.as_mut() else {
            return Err(StageError::NotEnoughData);
        };
        // A batch that does not decode ends the channel (op-node's batch reader fails); a span
        // batch that decodes but cannot be turned into blocks is dropped alone.
        let decoded = match codec::next_batch_item(&r.data, &mut r.offset) {
            None => Err("end of channel".to_string()),
            Some(Err(e)) => Err(e),
            Some(Ok(item)) => codec::decode_batch_data(item),
        };
        let data = match decoded {
            Ok(d) => d,
            Err(e) => {
                if r.offset < r.data.len() {
                    log::warn!("failed to read batch from channel reader, skipping to next channel now: {e}");
                }
                self.reader = None;
                return Err(StageError::NotEnoughData);
            }
        };
        let origin = self.origin();
        match data {
            codec::DecodedBatch::Singular(b) => {
                cx.metrics.derived_batches_singular += 1;
                log::info!(
                    "decoded singular batch from channel timestamp={} epoch={} txs={} origin={origin}",
                    b.timestamp,
                    b.epoch_num,
                    b.transactions.len()
                );
                Ok(Batch::Singular(b))
            }
            codec::DecodedBatch::Span(raw) => {
                if !cx.cfg.is_active(Fork::Delta, origin.timestamp) {
                    log::warn!("dropping span batch before Delta activation origin={origin}");
                    return Err(StageError::NotEnoughData);
                }
                match codec::derive_span_batch(&raw, cx.cfg) {
                    Ok(s) => {
                        cx.metrics.derived_batches_span += 1;
                        log::info!(
                            "decoded span batch from channel timestamp={} blocks={} origin={origin}",
                            s.first_timestamp(),
                            s.blocks.len()
                        );
                        Ok(Batch::Span(s))
                    }
                    Err(e) => {
                        log::warn!("dropping malformed span batch origin={origin}: {e}");
                        Err(StageError::NotEnoughData)
                    }
                }
            }
        }
    }

    /// Drops the rest of the current channel (Holocene flush).
    pub fn flush_channel(&mut self) {
        self.reader = None;
        self.prev.flush_channel();
    }

    pub fn reset(&mut self) {
        self.reader = None;
    }
}
