//! The gossip transport's sockets on the node's mio loop: the `--p2p.listen.*` TCP listener,
//! outbound dials the swarm asks for, reads into `Swarm::handle_input` and writes of what
//! `Swarm::poll_transmit` hands out (kept while a socket is not writable). Also the identity
//! key file (`--p2p.priv.path`), created on first start as op-node does.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::path::Path;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Poll, Registry, Token};

use crate::p2p::identity::Keypair;
use crate::p2p::swarm::{ConnId, Swarm};
use crate::time::Now;

/// A TCP port free on 127.0.0.1 now (for a node started later: another process may take it
/// meanwhile).
pub fn free_loopback_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// First token of the gossip sockets (the listener); connections follow.
pub const P2P_TOKENS: usize = 3000;
const MAX_SOCKETS: usize = 1000;
const READ_CHUNK: usize = 64 * 1024;
/// Reads per socket per readiness event, so one peer cannot starve the loop.
const READ_BUDGET: usize = 16;

struct Socket {
    stream: TcpStream,
    conn: ConnId,
    out: Vec<u8>,
    connected: bool,
}

/// The listener and the peer sockets.
pub struct P2pNet {
    registry: Registry,
    listener: Option<TcpListener>,
    local: Option<SocketAddr>,
    sockets: HashMap<usize, Socket>,
    by_conn: HashMap<ConnId, usize>,
    next_slot: usize,
    /// The read buffer, reused.
    scratch: Vec<u8>,
}

/// A new identity key from the OS's randomness.
pub fn generate_key() -> Result<Keypair, String> {
    let mut seed = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?;
    loop {
        f.read_exact(&mut seed).map_err(|e| format!("/dev/urandom: {e}"))?;
        if let Ok(k) = Keypair::from_secret(&seed) {
            return Ok(k);
        }
    }
}

/// The OS's randomness, for the key material of the swarm's Noise handshakes.
pub fn noise_rng() -> Box<dyn rand_core::CryptoRngCore + Send> {
    Box::new(rand_core::OsRng)
}

/// Reads the identity key from `path`, creating it (32 random bytes, hex, mode 0600) when the
/// file does not exist.
pub fn load_or_create_key(path: &Path) -> Result<Keypair, String> {
    match super::files::read_to_string(path, super::files::MAX_SMALL_FILE) {
        Ok(text) => Keypair::from_hex(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let key = generate_key()?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut file = opts.open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            file.write_all(key.to_hex().as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
            log::info!("created a new p2p identity key at {}", path.display());
            Ok(key)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

impl P2pNet {
    /// Binds the listener (`None`: dial only).
    pub fn bind(poll: &Poll, listen: Option<SocketAddr>) -> std::io::Result<P2pNet> {
        let registry = poll.registry().try_clone()?;
        let (listener, local) = match listen {
            Some(addr) => {
                let mut l = TcpListener::bind(addr)?;
                registry.register(&mut l, Token(P2P_TOKENS), Interest::READABLE)?;
                let local = l.local_addr()?;
                (Some(l), Some(local))
            }
            None => (None, None),
        };
        Ok(P2pNet {
            registry,
            listener,
            local,
            sockets: HashMap::new(),
            by_conn: HashMap::new(),
            next_slot: 0,
            scratch: Vec::new(),
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    pub fn owns(token: Token) -> bool {
        (P2P_TOKENS..=P2P_TOKENS + MAX_SOCKETS).contains(&token.0)
    }

    fn slot(&mut self) -> Option<usize> {
        for _ in 0..MAX_SOCKETS {
            let s = self.next_slot;
            self.next_slot = (self.next_slot + 1) % MAX_SOCKETS;
            if !self.sockets.contains_key(&s) {
                return Some(s);
            }
        }
        None
    }

    fn add(&mut self, mut stream: TcpStream, conn: ConnId, connected: bool) -> std::io::Result<usize> {
        let slot = self.slot().ok_or_else(|| std::io::Error::other("no socket slot"))?;
        let _ = stream.set_nodelay(true);
        self.registry.register(
            &mut stream,
            Token(P2P_TOKENS + 1 + slot),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.sockets.insert(slot, Socket { stream, conn, out: Vec::new(), connected });
        self.by_conn.insert(conn, slot);
        Ok(slot)
    }

    fn drop_slot(&mut self, slot: usize) {
        if let Some(mut s) = self.sockets.remove(&slot) {
            let _ = self.registry.deregister(&mut s.stream);
            self.by_conn.remove(&s.conn);
        }
    }

    /// Handles readiness of a gossip socket.
    pub fn on_ready(&mut self, token: Token, ev: &mio::event::Event, swarm: &mut Swarm, now: Now) {
        if token.0 == P2P_TOKENS {
            self.accept(swarm, now);
            return;
        }
        let slot = token.0 - P2P_TOKENS - 1;
        let Some(s) = self.sockets.get_mut(&slot) else { return };
        let conn = s.conn;
        if ev.is_writable() && !s.connected {
            // A dial completed (or failed: the error shows on the first I/O).
            match s.stream.peer_addr() {
                Ok(_) => s.connected = true,
                Err(e) if e.kind() == ErrorKind::NotConnected => return,
                Err(e) => {
                    log::debug!("dial of connection {conn} failed: {e}");
                    self.drop_slot(slot);
                    swarm.handle_closed(conn, now);
                    return;
                }
            }
        }
        if ev.is_readable() || ev.is_read_closed() {
            self.read(slot, swarm, now);
        }
        self.flush(swarm, now);
    }

    /// Hands what a socket has to the swarm (at most `READ_BUDGET` reads); drops it once closed.
    fn read(&mut self, slot: usize, swarm: &mut Swarm, now: Now) {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.resize(READ_CHUNK, 0);
        for _ in 0..READ_BUDGET {
            let Some(s) = self.sockets.get_mut(&slot) else { break };
            let conn = s.conn;
            match s.stream.read(&mut buf) {
                Ok(0) => {
                    self.drop_slot(slot);
                    swarm.handle_closed(conn, now);
                    break;
                }
                Ok(n) => swarm.handle_input(conn, &buf[..n], now),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("read on connection {conn} failed: {e}");
                    self.drop_slot(slot);
                    swarm.handle_closed(conn, now);
                    break;
                }
            }
        }
        self.scratch = buf;
    }

    fn accept(&mut self, swarm: &mut Swarm, now: Now) {
        loop {
            let Some(l) = &self.listener else { return };
            match l.accept() {
                Ok((stream, remote)) => match swarm.handle_inbound(remote, now) {
                    Some(conn) => match self.add(stream, conn, true) {
                        // What a dialer sent already is read before the next accept: under a
                        // flood of silent sockets, a peer that speaks is then told apart from
                        // them when the pending pool must evict one.
                        Ok(slot) => {
                            self.read(slot, swarm, now);
                            // A pending handshake the newcomer evicted goes now, not at the
                            // end of the accept run.
                            self.close_dropped(swarm);
                        }
                        Err(e) => {
                            log::warn!("cannot take connection from {remote}: {e}");
                            swarm.handle_closed(conn, now);
                        }
                    },
                    None => drop(stream),
                },
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("p2p accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Closes the sockets of connections the swarm dropped.
    fn close_dropped(&mut self, swarm: &mut Swarm) {
        while let Some(conn) = swarm.poll_close() {
            if let Some(slot) = self.by_conn.get(&conn).copied() {
                self.drop_slot(slot);
            }
        }
    }

    /// Starts requested dials, closes what the swarm dropped, and writes pending bytes.
    pub fn flush(&mut self, swarm: &mut Swarm, now: Now) {
        while let Some((conn, addr)) = swarm.poll_dial() {
            match TcpStream::connect(addr) {
                Ok(stream) => {
                    if let Err(e) = self.add(stream, conn, false) {
                        log::debug!("dial {addr}: {e}");
                        swarm.handle_closed(conn, now);
                    }
                }
                Err(e) => {
                    log::debug!("dial {addr}: {e}");
                    swarm.handle_closed(conn, now);
                }
            }
        }
        self.close_dropped(swarm);
        for conn in swarm.writable() {
            if let Some(slot) = self.by_conn.get(&conn).copied() {
                if let Some(s) = self.sockets.get_mut(&slot) {
                    swarm.poll_transmit(conn, &mut s.out);
                }
            }
        }
        let mut dead = Vec::new();
        for (slot, s) in self.sockets.iter_mut() {
            while s.connected && !s.out.is_empty() {
                match s.stream.write(&s.out) {
                    Ok(0) => {
                        dead.push(*slot);
                        break;
                    }
                    Ok(n) => {
                        s.out.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        dead.push(*slot);
                        break;
                    }
                }
            }
        }
        for slot in dead {
            if let Some(conn) = self.sockets.get(&slot).map(|s| s.conn) {
                self.drop_slot(slot);
                swarm.handle_closed(conn, now);
            }
        }
    }
}
