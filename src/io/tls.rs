//! TLS for the upstream clients (L1 RPC, beacon API, engine): rustls with ring's primitives,
//! trusting the system's root certificates, as op-node does (Go's crypto/x509 reads the same
//! files). An operator's own CA, for an L1 node behind a private one, is trusted by adding it to
//! the system store or by pointing `SSL_CERT_FILE` at a bundle.
//!
//! The store is read once, on first use, and only when an https:// endpoint is configured:
//! `SSL_CERT_FILE` if set, else the first bundle of `BUNDLES` that exists. Without one, an https
//! endpoint is refused at start with a message naming the files tried.

use std::sync::{Arc, OnceLock};

use rustls::crypto::{CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom, WebPkiSupportedAlgorithms};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::SigningKey;
use rustls::SignatureScheme;

use super::tls_ec;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// Where the distributions keep the PEM bundle of trusted roots (Go's list): Debian, Ubuntu,
/// Raspberry Pi OS, Arch, Gentoo; Fedora and RHEL; openSUSE; OpenELEC; CentOS/RHEL 7; Alpine.
pub const BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Largest bundle read (Debian's is about 220 KB).
const MAX_BUNDLE: u64 = 4 << 20;

/// The system's roots, read once: (the file, its certificates) or why there are none.
fn roots() -> &'static Result<(String, RootCerts), String> {
    static ROOTS: OnceLock<Result<(String, RootCerts), String>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let from_env = std::env::var("SSL_CERT_FILE").ok().filter(|p| !p.is_empty());
        let path = match &from_env {
            Some(p) => p.clone(),
            None => BUNDLES
                .iter()
                .find(|p| super::files::exists(std::path::Path::new(p)))
                .map(|p| p.to_string())
                .ok_or_else(|| {
                    format!(
                        "no root certificates for https:// endpoints: none of {} exists (install the \
                     ca-certificates package, or set SSL_CERT_FILE to a PEM bundle)",
                        BUNDLES.join(", ")
                    )
                })?,
        };
        let pem =
            super::files::read(&path, MAX_BUNDLE).map_err(|e| format!("root certificates {path}: {e}"))?;
        load(&pem).map(|certs| (path.clone(), certs)).map_err(|e| format!("root certificates {path}: {e}"))
    })
}

/// The certificates of a PEM bundle (other PEM items are skipped).
fn load(pem: &[u8]) -> Result<RootCerts, String> {
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e.to_string())),
        })
        .collect::<Result<_, _>>()?;
    if certs.is_empty() {
        return Err("no certificates in the file".into());
    }
    Ok(RootCerts::new_with_certs(&certs))
}

/// Whether the endpoints can be reached: an https:// one needs the system's roots. Names the
/// file the roots came from, when one was needed and read.
pub fn check<'a>(urls: impl IntoIterator<Item = &'a str>) -> Result<Option<&'static str>, String> {
    if !any_https(urls) {
        return Ok(None);
    }
    roots().as_ref().map(|(path, _)| Some(path.as_str())).map_err(Clone::clone)
}

/// Whether a client of these endpoints speaks TLS to any of them.
pub fn any_https<'a>(urls: impl IntoIterator<Item = &'a str>) -> bool {
    urls.into_iter().any(|u| u.starts_with("https://"))
}

/// ring's cipher suites and X25519, RustCrypto's P-256 and P-384 (`io::tls_ec`: ECDH and ECDSA
/// verification, without ring's 152 KB P-256 table), ring's RSA and Ed25519 verification, and no
/// signing keys: a client certificate is never configured, and ring's private-key loading and
/// signing (RSA, ECDSA, Ed25519) would otherwise be linked in. The same suites, groups (in
/// ring's order of preference) and signature schemes as `rustls::crypto::ring::default_provider`.
fn provider() -> CryptoProvider {
    use rustls::crypto::ring::{kx_group, DEFAULT_CIPHER_SUITES};
    CryptoProvider {
        cipher_suites: DEFAULT_CIPHER_SUITES.to_vec(),
        kx_groups: vec![kx_group::X25519, tls_ec::SECP256R1, tls_ec::SECP384R1],
        signature_verification_algorithms: SIGNATURE_ALGORITHMS,
        secure_random: &SystemRandom,
        key_provider: &NoClientKeys,
    }
}

/// Certificate and handshake signatures op-lite verifies: rustls' ring list, its ECDSA from
/// `io::tls_ec`. For TLS 1.2 a scheme does not fix the curve, hence two algorithms for each.
static SIGNATURE_ALGORITHMS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        tls_ec::ECDSA_P256_SHA256,
        tls_ec::ECDSA_P256_SHA384,
        tls_ec::ECDSA_P384_SHA256,
        tls_ec::ECDSA_P384_SHA384,
        webpki::ring::ED25519,
        webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        webpki::ring::RSA_PKCS1_2048_8192_SHA384,
        webpki::ring::RSA_PKCS1_2048_8192_SHA512,
        webpki::ring::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
        webpki::ring::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
        webpki::ring::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    ],
    mapping: &[
        (SignatureScheme::ECDSA_NISTP384_SHA384, &[tls_ec::ECDSA_P384_SHA384, tls_ec::ECDSA_P256_SHA384]),
        (SignatureScheme::ECDSA_NISTP256_SHA256, &[tls_ec::ECDSA_P256_SHA256, tls_ec::ECDSA_P384_SHA256]),
        (SignatureScheme::ED25519, &[webpki::ring::ED25519]),
        (SignatureScheme::RSA_PSS_SHA512, &[webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY]),
        (SignatureScheme::RSA_PSS_SHA384, &[webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY]),
        (SignatureScheme::RSA_PSS_SHA256, &[webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY]),
        (SignatureScheme::RSA_PKCS1_SHA512, &[webpki::ring::RSA_PKCS1_2048_8192_SHA512]),
        (SignatureScheme::RSA_PKCS1_SHA384, &[webpki::ring::RSA_PKCS1_2048_8192_SHA384]),
        (SignatureScheme::RSA_PKCS1_SHA256, &[webpki::ring::RSA_PKCS1_2048_8192_SHA256]),
    ],
};

/// The system's CSPRNG (getrandom), for TLS randoms and key shares.
#[derive(Debug)]
struct SystemRandom;

impl SecureRandom for SystemRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        use rand_core::RngCore;
        rand_core::OsRng.try_fill_bytes(buf).map_err(|_| GetRandomFailed)
    }
}

/// Refuses every private key: op-lite authenticates to no TLS server with a certificate.
#[derive(Debug)]
struct NoClientKeys;

impl KeyProvider for NoClientKeys {
    fn load_private_key(&self, _: PrivateKeyDer<'static>) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        Err(rustls::Error::General("TLS client certificates are not supported".into()))
    }
}

/// The TLS settings of a client: ring's provider (less its signing keys), and the system's roots
/// when it has an https:// endpoint (`https`); for http:// only they are not read.
pub fn config(https: bool) -> TlsConfig {
    let provider = Arc::new(provider());
    let mut b = TlsConfig::builder().unversioned_rustls_crypto_provider(provider);
    if https {
        // Without roots (refused at start by `check`) every certificate is unknown.
        let roots =
            roots().as_ref().map(|(_, r)| r.clone()).unwrap_or_else(|_| RootCerts::new_with_certs(&[]));
        b = b.root_certs(roots);
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_parse_and_empty_ones_are_refused() {
        // The machine's own store, when it has one (CI installs ca-certificates with curl).
        if let Some(path) = BUNDLES.iter().find(|p| super::super::files::exists(std::path::Path::new(p))) {
            let pem = super::super::files::read(path, MAX_BUNDLE).unwrap();
            match load(&pem).unwrap() {
                RootCerts::Specific(c) => assert!(c.len() > 50, "{path}: {} roots", c.len()),
                _ => panic!("specific roots"),
            }
        }
        assert_eq!(load(b"").unwrap_err(), "no certificates in the file");
        assert_eq!(load(b"hello\n").unwrap_err(), "no certificates in the file");
        assert!(load(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").is_err());
        assert_eq!(check(["http://a", "http://b"]).unwrap(), None);
    }
}
