//! The devnet batcher's reader of a sequencer's engine elsewhere (`devnet::feed`): a thread
//! that fetches the sequenced blocks with `eth_getBlockByNumber` (full transactions) and sends
//! the devnet's user transfers with `eth_sendRawTransaction`, over the Engine API's
//! authenticated port, twice a second. The blocks go to the devnet's server thread through a
//! bounded channel: a batcher that falls behind holds the reader back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::upstream::EngineClient;
use crate::devnet::feed::{FeedStep, SequencerFeed};
use crate::protocol::rollup::RollupConfig;

/// Steps queued for the devnet at most.
const QUEUE: usize = 4096;
/// Blocks fetched per round at most (a sequencer catching up is read over several rounds).
const BLOCKS_PER_ROUND: usize = 256;
const ROUND: Duration = Duration::from_millis(500);
const TIMEOUT: Duration = Duration::from_secs(10);

/// The running reader; stops when dropped.
pub struct FeedThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FeedThread {
    /// Starts reading the sequencer's engine at `url`; the steps arrive on the receiver.
    pub fn spawn(
        url: &str,
        jwt: [u8; 32],
        cfg: Arc<RollupConfig>,
        transfers: bool,
    ) -> std::io::Result<(FeedThread, Receiver<FeedStep>)> {
        let (tx, rx) = sync_channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let feed = SequencerFeed::new(cfg.l2_chain_id, transfers, cfg.genesis.l2_time);
        let client = EngineClient::new(url, jwt, TIMEOUT, cfg);
        let url = url.to_string();
        let thread = std::thread::Builder::new()
            .name("devnet-feed".into())
            .spawn(move || run(client, feed, &tx, &stop2, &url))?;
        Ok((FeedThread { stop, thread: Some(thread) }, rx))
    }
}

impl Drop for FeedThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    mut client: EngineClient,
    mut feed: SequencerFeed,
    tx: &SyncSender<FeedStep>,
    stop: &AtomicBool,
    url: &str,
) {
    let mut last_error = String::new();
    let mut report = |r: Result<(), String>| match r {
        Ok(()) => last_error.clear(),
        Err(e) if e != last_error => {
            log::warn!("devnet batcher: sequencer engine {url}: {e}");
            last_error = e;
        }
        Err(_) => {}
    };
    while !stop.load(Ordering::Relaxed) {
        let mut fetched = Ok(());
        for _ in 0..BLOCKS_PER_ROUND {
            match client.block_by_number(feed.next_block()) {
                Ok(Some(block)) => {
                    for step in feed.handle_block(&block) {
                        // Blocks while the queue is full; fails once the devnet has stopped.
                        if tx.send(step).is_err() {
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    fetched = Err(format!("block {}: {e}", feed.next_block()));
                    break;
                }
            }
        }
        report(fetched);
        for raw in feed.poll_transfers(super::clock::now().unix()) {
            if let Err(e) = client.send_raw_transaction(&raw) {
                log::debug!("devnet: transfer not accepted by {url}: {e}");
            }
        }
        // Sleep a round, in slices, to stop promptly.
        for _ in 0..5 {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(ROUND / 5);
        }
    }
}
