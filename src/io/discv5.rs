//! discv5's UDP socket on the node's mio loop, and its peer store file.
//!
//! Reads hand each datagram to `Discovery::handle_packet` (at most `READ_BUDGET` per readiness
//! event; a datagram larger than the protocol's 1280 bytes is dropped unread); writes send what
//! `Discovery::poll_transmit` hands out, dropping a datagram the socket cannot take now (UDP
//! may lose it anyway; the protocol retries).
//!
//! The peer store (`--p2p.discovery.path`, a directory as op-node's) holds `records.txt`: our
//! own record on the first line (its sequence number goes up when its content changes), then
//! the table's records, one `enr:` text per line; bounded when read.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mio::net::UdpSocket;
use mio::{Interest, Poll, Token};

use crate::p2p::discovery::enr::Enr;
use crate::p2p::discovery::wire::MAX_PACKET_SIZE;
use crate::p2p::discovery::Discovery;
use crate::time::Now;

/// The discv5 socket's token.
pub const DISCV5_TOKEN: Token = Token(2);
/// Datagrams read per readiness event.
const READ_BUDGET: usize = 64;
/// Records read back from the store (a table holds at most 4096).
pub const MAX_STORED_RECORDS: usize = 512;
/// The store file's size limit when read.
const MAX_STORE_BYTES: u64 = 256 << 10;

/// The UDP socket.
pub struct Discv5Net {
    socket: UdpSocket,
    local: SocketAddr,
    buf: Vec<u8>,
}

impl Discv5Net {
    pub fn bind(poll: &Poll, addr: SocketAddr) -> std::io::Result<Discv5Net> {
        let mut socket = UdpSocket::bind(addr)?;
        poll.registry().register(&mut socket, DISCV5_TOKEN, Interest::READABLE)?;
        let local = socket.local_addr()?;
        Ok(Discv5Net { socket, local, buf: vec![0; MAX_PACKET_SIZE + 1] })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Hands the datagrams waiting on the socket to discovery.
    pub fn on_ready(&mut self, disc: &mut Discovery, now: Now) {
        for _ in 0..READ_BUDGET {
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, from)) if n <= MAX_PACKET_SIZE => disc.handle_packet(from, &self.buf[..n], now.mono),
                Ok((_, from)) => {
                    crate::trace!("discv5: datagram over {MAX_PACKET_SIZE} bytes from {from} dropped")
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("discv5: receive failed: {e}");
                    return;
                }
            }
        }
    }

    /// Sends what discovery has to send.
    pub fn flush(&mut self, disc: &mut Discovery) {
        while let Some((to, d)) = disc.poll_transmit() {
            match self.socket.send_to(&d, to) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    crate::trace!("discv5: socket full, datagram to {to} dropped");
                }
                Err(e) => crate::trace!("discv5: send to {to} failed: {e}"),
            }
        }
    }
}

fn store_file(dir: &Path) -> PathBuf {
    dir.join("records.txt")
}

/// Our last record and the stored table, from the store in `dir` (missing: none; unreadable
/// lines are skipped).
pub fn load_store(dir: &Path) -> (Option<Enr>, Vec<Enr>) {
    let path = store_file(dir);
    let text = match super::files::read_to_string(&path, MAX_STORE_BYTES) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return (None, Vec::new()),
        Err(e) => {
            log::warn!("discv5 peer store {}: {e}; starting without it", path.display());
            return (None, Vec::new());
        }
    };
    let mut lines = text.lines();
    let own = lines.next().and_then(|l| Enr::from_text(l).ok()).filter(|e| e.signature_valid);
    let records = lines
        .filter_map(|l| Enr::from_text(l).ok())
        .filter(|e| e.signature_valid)
        .take(MAX_STORED_RECORDS)
        .collect();
    (own, records)
}

/// The store's content: our record, then the table's records.
pub fn store_text(own: &Enr, records: &[Enr]) -> String {
    let mut text = own.to_text();
    text.push('\n');
    for r in records.iter().take(MAX_STORED_RECORDS) {
        text.push_str(&r.to_text());
        text.push('\n');
    }
    text
}

/// Writes the store's content to `dir` (replaced whole: a crash leaves the old or the new).
pub fn save_store(dir: &Path, text: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = store_file(dir);
    super::files::write_atomic(&path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// The peer store written while the node runs (op-node's store is a database written as
/// peers come and go): every `STORE_INTERVAL` when its content changed, and at stop, so a
/// crash or power loss costs at most that much of the table.
pub struct StoreSaver {
    dir: PathBuf,
    due: std::time::Instant,
    /// Hash of the content last written (or read at start).
    last: u64,
}

/// How often the peer store is written when its content changed.
pub const STORE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

fn content_hash(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl StoreSaver {
    pub fn new(dir: PathBuf, now: std::time::Instant) -> Self {
        StoreSaver { dir, due: now + STORE_INTERVAL, last: 0 }
    }

    pub fn deadline(&self) -> std::time::Instant {
        self.due
    }

    /// Writes the store when due (or `force`, at stop) and changed since the last write.
    pub fn save(&mut self, d: &Discovery, now: Now, force: bool) {
        if !force && now.mono < self.due {
            return;
        }
        self.due = now.mono + STORE_INTERVAL;
        let text = store_text(d.sessions.enr(), &d.records());
        let hash = content_hash(&text);
        if hash == self.last {
            return;
        }
        match save_store(&self.dir, &text) {
            Ok(()) => {
                self.last = hash;
                log::info!("saved {} discv5 records to {}", d.table_len(), self.dir.display())
            }
            Err(e) => log::warn!("discv5 peer store: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p2p::discovery::tests::identity;
    use crate::p2p::discovery::Filter;
    use crate::rng::Rng;

    #[test]
    fn the_store_is_written_when_due_and_changed_and_at_stop_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("op-lite-discv5-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (key, own) = identity(1, 10);
        let d = Discovery::new(key, own.clone(), Filter { chain_id: 10 }, vec![], Box::new(Rng::new(5)), 5);
        let t0 = crate::time::test_now().mono;
        let mut saver = StoreSaver::new(dir.clone(), t0);
        assert_eq!(saver.deadline(), t0 + STORE_INTERVAL);
        let file = store_file(&dir);
        // Not due yet: nothing written.
        saver.save(&d, Now::new(t0, 0), false);
        assert!(!file.exists());
        // Due: written, read back as our record and the table's.
        saver.save(&d, Now::new(t0 + STORE_INTERVAL, 0), false);
        assert_eq!(load_store(&dir), (Some(own.clone()), vec![]));
        assert_eq!(saver.deadline(), t0 + 2 * STORE_INTERVAL);
        // Unchanged content is not written again (a board's SD card is spared).
        std::fs::remove_file(&file).unwrap();
        saver.save(&d, Now::new(t0 + 2 * STORE_INTERVAL, 0), false);
        assert!(!file.exists());
        saver.save(&d, Now::new(t0, 0), true);
        assert!(!file.exists(), "unchanged: not written even at stop");
        // Changed content (here a new record of ours) is written at stop, whole, with no
        // temporary file left behind.
        let (key2, own2) = identity(2, 10);
        let d2 =
            Discovery::new(key2, own2.clone(), Filter { chain_id: 10 }, vec![], Box::new(Rng::new(6)), 6);
        saver.save(&d2, Now::new(t0, 0), true);
        assert_eq!(load_store(&dir), (Some(own2), vec![]));
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(names.iter().all(|n| n != "records.txt.tmp"), "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
