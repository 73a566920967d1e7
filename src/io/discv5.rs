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
                    log::trace!("discv5: datagram over {MAX_PACKET_SIZE} bytes from {from} dropped")
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
                    log::trace!("discv5: socket full, datagram to {to} dropped");
                }
                Err(e) => log::trace!("discv5: send to {to} failed: {e}"),
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

/// Writes our record and the table's records to the store in `dir`.
pub fn save_store(dir: &Path, own: &Enr, records: &[Enr]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut text = own.to_text();
    text.push('\n');
    for r in records.iter().take(MAX_STORED_RECORDS) {
        text.push_str(&r.to_text());
        text.push('\n');
    }
    let path = store_file(dir);
    super::files::write(&path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}
