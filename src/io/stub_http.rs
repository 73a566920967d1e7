//! A small threaded HTTP/1.1 server whose answers a closure decides: the upstream that tests
//! and fault scenarios talk to (canned beacon responses, an L1 that answers 500 or garbage, an
//! engine that hangs). One thread, one request per connection, bounded request size. Not used by
//! the node itself: compiled only into the unit tests and, by path, into the integration tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A request as the handler sees it.
#[derive(Debug, Clone)]
pub struct StubRequest {
    /// Path with query string.
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl StubRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The answer: status, content type, body. A `delay` makes the server slow.
#[derive(Debug, Clone)]
pub struct StubResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub delay: Duration,
    /// Sent without `Content-Length`: the body ends when the connection closes.
    pub close_delimited: bool,
}

impl StubResponse {
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        StubResponse { status, body: body.into(), delay: Duration::ZERO, close_delimited: false }
    }
}

/// A running stub server; stops when dropped.
pub struct StubServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

const MAX_REQUEST: usize = 8 << 20;

impl StubServer {
    /// Serves on an ephemeral loopback port.
    pub fn start(
        handler: impl Fn(&StubRequest) -> StubResponse + Send + 'static,
    ) -> std::io::Result<StubServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = thread::Builder::new().name("stub-http".into()).spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if let Err(e) = serve_one(conn, &handler) {
                    log::debug!("stub server: {e}");
                }
            }
        })?;
        Ok(StubServer { addr, stop, handle: Some(handle) })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve_one(conn: TcpStream, handler: &dyn Fn(&StubRequest) -> StubResponse) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let _method = parts.next();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                len = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    if len > MAX_REQUEST {
        return Err(std::io::Error::other("request too large"));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    let resp = handler(&StubRequest { path, headers, body });
    if !resp.delay.is_zero() {
        thread::sleep(resp.delay);
    }
    let mut w = conn;
    let length =
        if resp.close_delimited { String::new() } else { format!("content-length: {}\r\n", resp.body.len()) };
    write!(
        w,
        "HTTP/1.1 {} X\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n",
        resp.status,
    )?;
    w.write_all(&resp.body)?;
    w.flush()
}
