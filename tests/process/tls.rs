//! https:// upstreams trust the system's root certificates, as op-node does: a node pointed at an
//! L1 endpoint whose certificate a private CA signed reaches it once `SSL_CERT_FILE` names that
//! CA, is refused by it otherwise, and an unusable `SSL_CERT_FILE` stops the start with exit 2.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::ring::kx_group;
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::version::{TLS12, TLS13};
use rustls::SupportedProtocolVersion;

use crate::support::bin;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA and a `localhost` / 127.0.0.1 server certificate it signed, in `dir`.
/// A key algorithm as `openssl genpkey` takes it.
const P256: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
const P384: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"];
const RSA: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];

/// A private CA (`ca.pem`) with a `ca` key signing with `digest`, and a `leaf` key's server
/// certificate for localhost (`server.pem`, `server.key`).
fn private_ca(dir: &Path, ca: &[&str], leaf: &[&str], digest: &str) {
    let genpkey = |out: &str, alg: &[&str]| {
        let mut args = vec!["genpkey"];
        args.extend_from_slice(alg);
        args.extend_from_slice(&["-out", out]);
        openssl(dir, &args);
    };
    genpkey("ca.key", ca);
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            digest,
            "-subj",
            "/CN=op-lite test CA",
            "-days",
            "2",
            "-out",
            "ca.pem",
        ],
    );
    genpkey("server.key", leaf);
    openssl(dir, &["req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "server.csr"]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            digest,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
    );
}

/// An HTTPS server (rustls with ring) offering only the key exchange `group` and the protocol
/// `versions`, answering every request with a JSON-RPC error; sends "first request line, user
/// agent, group, version" it reads, or the TLS error, for each connection.
fn serve(
    dir: &Path,
    group: &'static dyn SupportedKxGroup,
    versions: &[&'static SupportedProtocolVersion],
) -> (u16, mpsc::Receiver<Result<String, String>>) {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("server.pem")).unwrap().map(|c| c.unwrap()).collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let provider = CryptoProvider { kx_groups: vec![group], ..rustls::crypto::ring::default_provider() };
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(sock) = sock else { return };
            let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, sock);
            let mut reader = BufReader::new(&mut tls);
            let mut head = String::new();
            let mut agent = String::new();
            let mut len = 0usize;
            let got = loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) => break Err("closed".to_string()),
                    Ok(_) => {}
                    Err(e) => break Err(e.to_string()),
                }
                let lower = line.to_ascii_lowercase();
                if head.is_empty() {
                    head = line.trim_end().to_string();
                } else if let Some(v) = lower.strip_prefix("user-agent:") {
                    agent = v.trim().to_string();
                } else if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                } else if line == "\r\n" {
                    let mut body = vec![0; len];
                    let _ = reader.read_exact(&mut body);
                    let group = tls.conn.negotiated_key_exchange_group().map(|g| g.name());
                    let version = tls.conn.protocol_version();
                    break Ok(format!("{head} {agent} {group:?} {version:?}"));
                }
            };
            let ok = got.is_ok();
            if tx.send(got).is_err() {
                return;
            }
            if ok {
                let body = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"test server"}}"#;
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.flush();
            }
        }
    });
    (port, rx)
}

fn node(dir: &Path, port: u16, cert_file: Option<&Path>) -> std::process::Child {
    let mut cmd = Command::new(bin());
    cmd.args(["--network", "op-sepolia", "--l1.beacon.ignore", "--p2p.disable", "--rpc.port", "0"])
        .arg("--l1")
        .arg(format!("https://localhost:{port}"))
        .args(["--l2", "http://127.0.0.1:9", "--l2.jwt-secret"])
        .arg(dir.join("jwt.hex"))
        .env_remove("OP_NODE_NETWORK")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match cert_file {
        Some(f) => cmd.env("SSL_CERT_FILE", f),
        None => cmd.env_remove("SSL_CERT_FILE"),
    };
    cmd.spawn().unwrap()
}

/// Whether the `openssl` tool is there (it makes the private CAs); says "skipped" when not,
/// fails under CI=true.
fn have_openssl() -> bool {
    if Command::new("openssl").arg("version").output().is_ok() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "openssl is needed under CI=true");
    eprintln!("skipped: openssl not found");
    false
}

#[test]
fn https_upstreams_trust_the_system_roots_or_ssl_cert_file() {
    if !have_openssl() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("op-lite-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    private_ca(&dir, P256, P256, "-sha256");
    let (port, seen) = serve(&dir, kx_group::X25519, &[&TLS13, &TLS12]);

    // Trusting the private CA: the node's L1 calls arrive over TLS.
    let mut n = node(&dir, port, Some(&dir.join("ca.pem")));
    let got = seen.recv_timeout(Duration::from_secs(30)).expect("a connection from the node");
    let _ = n.kill();
    let _ = n.wait();
    let line = got.expect("a TLS request");
    assert!(line.starts_with("POST / HTTP/1.1 op-lite/"), "{line}");
    assert!(line.ends_with(" Some(X25519) Some(TLSv1_3)"), "{line}");
    while seen.try_recv().is_ok() {}

    // The system's store does not know the private CA: the handshake fails, no request is read.
    let mut n = node(&dir, port, None);
    let got = seen.recv_timeout(Duration::from_secs(30)).expect("a connection from the node");
    let _ = n.kill();
    let _ = n.wait();
    assert!(got.is_err(), "{got:?}");

    // An SSL_CERT_FILE without certificates, or missing: refused at start, naming the file.
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    for file in [dir.join("empty.pem"), dir.join("missing.pem")] {
        let out = node(&dir, port, Some(&file)).wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("root certificates {}", file.display())), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What one handshake uses: its name, the CA's and the leaf's key algorithms, the CA's digest,
/// the one group and version the server offers.
type Case = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
    &'static dyn SupportedKxGroup,
    &'static SupportedProtocolVersion,
);

/// Every certificate and key-exchange kind the client has: ECDSA P-256 and P-384 chains (their
/// curves mixed, signed with SHA-256 and SHA-384), RSA, and the secp256r1 and secp384r1 groups in
/// TLS 1.3 and 1.2, each offered alone by the server, so the handshake succeeds only through it.
#[test]
fn https_upstreams_speak_every_curve_and_certificate_kind() {
    if !have_openssl() {
        return;
    }
    let cases: [Case; 4] = [
        ("P-384 CA, P-256 leaf", P384, P256, "-sha384", kx_group::SECP256R1, &TLS13),
        ("P-256 CA, P-384 leaf", P256, P384, "-sha256", kx_group::SECP384R1, &TLS13),
        ("P-256 CA, P-384 leaf, TLS 1.2", P256, P384, "-sha384", kx_group::SECP384R1, &TLS12),
        ("RSA chain, TLS 1.2", RSA, RSA, "-sha256", kx_group::SECP256R1, &TLS12),
    ];
    for (i, (what, ca, leaf, digest, group, version)) in cases.into_iter().enumerate() {
        let dir = std::env::temp_dir().join(format!("op-lite-tls-kinds-{}-{i}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        private_ca(&dir, ca, leaf, digest);
        let (port, seen) = serve(&dir, group, &[version]);
        let mut n = node(&dir, port, Some(&dir.join("ca.pem")));
        let got = seen.recv_timeout(Duration::from_secs(30)).expect("a connection from the node");
        let _ = n.kill();
        let _ = n.wait();
        let line = got.unwrap_or_else(|e| panic!("{what}: {e}"));
        let want = format!(" Some({:?}) Some({:?})", group.name(), version.version);
        assert!(line.starts_with("POST / HTTP/1.1 op-lite/") && line.ends_with(&want), "{what}: {line}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
