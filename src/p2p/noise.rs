//! The libp2p Noise secure channel (`/noise`): `Noise_XX_25519_ChaChaPoly_SHA256` (the `snow`
//! crate does the Noise state machine) with libp2p's handshake payload — each side's identity
//! key and its signature over `"noise-libp2p-static-key:" ‖ static X25519 key` — and 2-byte
//! big-endian length framing of every Noise message (at most 65,535 bytes).
//!
//! Sans-IO, with no timers: call `handle_input` with received ciphertext (any split) and `send`
//! with plaintext once `is_established`, then drain `poll_transmit` (ciphertext for the
//! socket) and `poll_plaintext` (decrypted data for the layer above) until they return false.
//! The handshake authenticates the remote peer id (checked against the expected one when
//! dialling); any failure ends the session.
//!
//! The session's key material (its static and ephemeral X25519 keys) comes from the RNG the
//! caller passes to `initiator` / `responder`: the OS's in production, a seeded one in tests,
//! where handshakes then replay byte for byte.

use std::fmt;

use rand_core::CryptoRngCore;

use super::identity::{IdentityError, Keypair, PeerId, PublicKey};
use crate::protocol::varint::{self, VarintError};

pub const PROTOCOL: &str = "/noise";
const PARAMS: &str = "Noise_XX_25519_ChaChaPoly_SHA256";
const STATIC_KEY_DOMAIN: &[u8] = b"noise-libp2p-static-key:";
/// The largest Noise message, and the plaintext that fits in one transport message.
const MAX_MESSAGE: usize = 65_535;
const MAX_PLAINTEXT: usize = MAX_MESSAGE - 16;
/// Received plaintext not yet taken by the layer above, beyond which the peer is dropped.
const MAX_PLAINTEXT_BUFFER: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoiseError {
    /// The Noise protocol failed (bad message, decryption failure).
    Noise(String),
    /// The handshake payload is malformed or its signature does not verify.
    Payload(&'static str),
    Identity(IdentityError),
    /// The dialled address promised another peer.
    UnexpectedPeer {
        expected: PeerId,
        got: PeerId,
    },
    /// The layer above does not keep up with received data.
    BufferFull,
    Closed,
}

impl fmt::Display for NoiseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoiseError::Noise(e) => write!(f, "noise: {e}"),
            NoiseError::Payload(why) => write!(f, "noise handshake payload: {why}"),
            NoiseError::Identity(e) => write!(f, "noise handshake identity: {e}"),
            NoiseError::UnexpectedPeer { expected, got } => write!(f, "dialled {expected}, reached {got}"),
            NoiseError::BufferFull => f.write_str("received data is not being consumed"),
            NoiseError::Closed => f.write_str("session failed earlier"),
        }
    }
}

impl std::error::Error for NoiseError {}

fn noise_err(e: snow::Error) -> NoiseError {
    NoiseError::Noise(e.to_string())
}

enum State {
    Handshake(Box<snow::HandshakeState>),
    Transport(Box<snow::TransportState>),
    Failed,
}

/// One Noise session over a connection.
pub struct NoiseSession {
    state: State,
    initiator: bool,
    identity: Keypair,
    expected: Option<PeerId>,
    remote: Option<PeerId>,
    /// This session's static X25519 public key (signed in our payload).
    local_static: Vec<u8>,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    plain: Vec<u8>,
}

impl fmt::Debug for NoiseSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoiseSession(initiator={}, remote={:?})", self.initiator, self.remote)
    }
}

/// The `NoiseHandshakePayload` protobuf: identity key (1) and signature (2).
fn encode_payload(identity: &Keypair, static_key: &[u8]) -> Vec<u8> {
    let key = identity.public().to_protobuf();
    let sig = identity.sign(&[STATIC_KEY_DOMAIN, static_key].concat());
    let mut out = Vec::with_capacity(key.len() + sig.len() + 6);
    for (tag, field) in [(0x0a, &key), (0x12, &sig)] {
        out.push(tag);
        varint::put(&mut out, field.len() as u64);
        out.extend_from_slice(field);
    }
    out
}

fn read_varint(b: &[u8], pos: &mut usize) -> Result<u64, NoiseError> {
    varint::read_at(b, pos).map_err(|e| match e {
        VarintError::Truncated => NoiseError::Payload("truncated"),
        VarintError::Overflow => NoiseError::Payload("bad varint"),
    })
}

/// Decodes the payload and checks the signature over the remote static key; returns the
/// remote's peer id.
fn verify_payload(payload: &[u8], remote_static: &[u8]) -> Result<PeerId, NoiseError> {
    let (mut key, mut sig) = (None, None);
    let mut pos = 0;
    while pos < payload.len() {
        let tag = read_varint(payload, &mut pos)?;
        match tag & 7 {
            0 => {
                read_varint(payload, &mut pos)?;
            }
            2 => {
                let len = read_varint(payload, &mut pos)?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| pos.checked_add(l))
                    .filter(|e| *e <= payload.len());
                let end = end.ok_or(NoiseError::Payload("truncated field"))?;
                let field = &payload[pos..end];
                match tag >> 3 {
                    1 => key = Some(field),
                    2 => sig = Some(field),
                    _ => {}
                }
                pos = end;
            }
            _ => return Err(NoiseError::Payload("unsupported wire type")),
        }
    }
    let key = PublicKey::from_protobuf(key.ok_or(NoiseError::Payload("no identity key"))?)
        .map_err(NoiseError::Identity)?;
    let sig = sig.ok_or(NoiseError::Payload("no identity signature"))?;
    key.verify(&[STATIC_KEY_DOMAIN, remote_static].concat(), sig).map_err(NoiseError::Identity)?;
    Ok(key.peer_id())
}

impl NoiseSession {
    fn new(
        identity: &Keypair,
        initiator: bool,
        expected: Option<PeerId>,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<NoiseSession, NoiseError> {
        // A fresh static Noise key per session, authenticated by the identity key (libp2p
        // allows this and advises against storing Noise keys).
        let mut static_private = [0u8; 32];
        rng.fill_bytes(&mut static_private);
        let mut ephemeral_seed = [0u8; 32];
        rng.fill_bytes(&mut ephemeral_seed);
        let resolver = Box::new(suite::Resolver::new(ephemeral_seed));
        let builder = snow::Builder::with_resolver(PARAMS.parse().map_err(noise_err)?, resolver)
            .local_private_key(&static_private);
        let hs = if initiator { builder.build_initiator() } else { builder.build_responder() }
            .map_err(noise_err)?;
        let mut s = NoiseSession {
            state: State::Handshake(Box::new(hs)),
            initiator,
            identity: identity.clone(),
            expected,
            remote: None,
            local_static: suite::public_key(&static_private).to_vec(),
            inbuf: Vec::new(),
            out: Vec::new(),
            plain: Vec::new(),
        };
        if initiator {
            // -> e
            s.write_handshake(&[])?;
        }
        Ok(s)
    }

    /// The dialling side; `expected` is the peer id the address promised, if any. The
    /// session's keys are drawn from `rng` (64 bytes).
    pub fn initiator(
        identity: &Keypair,
        expected: Option<PeerId>,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<NoiseSession, NoiseError> {
        NoiseSession::new(identity, true, expected, rng)
    }

    /// The listening side. The session's keys are drawn from `rng` (64 bytes).
    pub fn responder(identity: &Keypair, rng: &mut dyn CryptoRngCore) -> Result<NoiseSession, NoiseError> {
        NoiseSession::new(identity, false, None, rng)
    }

    fn frame(&mut self, msg: &[u8]) {
        self.out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        self.out.extend_from_slice(msg);
    }

    fn write_handshake(&mut self, payload: &[u8]) -> Result<(), NoiseError> {
        let State::Handshake(hs) = &mut self.state else { return Err(NoiseError::Closed) };
        let mut buf = vec![0u8; MAX_MESSAGE];
        let n = hs.write_message(payload, &mut buf).map_err(noise_err)?;
        self.frame(&buf[..n]);
        Ok(())
    }

    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Transport(_))
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    /// The authenticated remote peer, once its payload verified.
    pub fn remote_peer(&self) -> Option<&PeerId> {
        self.remote.as_ref()
    }

    /// Feeds received bytes.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), NoiseError> {
        if self.is_failed() {
            return Err(NoiseError::Closed);
        }
        self.inbuf.extend_from_slice(data);
        let r = self.process();
        if r.is_err() {
            self.state = State::Failed;
            self.inbuf = Vec::new();
        }
        r
    }

    fn process(&mut self) -> Result<(), NoiseError> {
        let mut pos = 0;
        while self.inbuf.len() >= pos + 2 {
            let len = usize::from(u16::from_be_bytes([self.inbuf[pos], self.inbuf[pos + 1]]));
            if self.inbuf.len() < pos + 2 + len {
                break;
            }
            let msg = self.inbuf[pos + 2..pos + 2 + len].to_vec();
            pos += 2 + len;
            self.on_message(&msg)?;
        }
        self.inbuf.drain(..pos);
        if self.plain.len() > MAX_PLAINTEXT_BUFFER {
            return Err(NoiseError::BufferFull);
        }
        Ok(())
    }

    fn on_message(&mut self, msg: &[u8]) -> Result<(), NoiseError> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        match &mut self.state {
            State::Transport(t) => {
                let n = t.read_message(msg, &mut buf).map_err(noise_err)?;
                self.plain.extend_from_slice(&buf[..n]);
            }
            State::Handshake(hs) => {
                let n = hs.read_message(msg, &mut buf).map_err(noise_err)?;
                let payload = &buf[..n];
                let remote_static = hs.get_remote_static().map(<[u8]>::to_vec);
                let local_static = self.local_static.clone();
                match (self.initiator, remote_static) {
                    // <- e: the responder answers with e, ee, s, es and its payload.
                    (false, None) => {
                        let payload = encode_payload(&self.identity, &local_static);
                        self.write_handshake(&payload)?;
                    }
                    // <- e, ee, s, es (initiator) or -> s, se (responder): check the payload.
                    (_, Some(rs)) => {
                        let peer = verify_payload(payload, &rs)?;
                        if let Some(expected) = &self.expected {
                            if *expected != peer {
                                return Err(NoiseError::UnexpectedPeer {
                                    expected: expected.clone(),
                                    got: peer,
                                });
                            }
                        }
                        self.remote = Some(peer);
                        if self.initiator {
                            let payload = encode_payload(&self.identity, &local_static);
                            self.write_handshake(&payload)?;
                        }
                    }
                    (true, None) => return Err(NoiseError::Payload("responder sent no static key")),
                }
                self.finish_handshake()?;
            }
            State::Failed => return Err(NoiseError::Closed),
        }
        Ok(())
    }

    fn finish_handshake(&mut self) -> Result<(), NoiseError> {
        let done = matches!(&self.state, State::Handshake(hs) if hs.is_handshake_finished());
        if done {
            if let State::Handshake(hs) = std::mem::replace(&mut self.state, State::Failed) {
                self.state = State::Transport(Box::new(hs.into_transport_mode().map_err(noise_err)?));
            }
        }
        Ok(())
    }

    /// Encrypts application data (split into Noise messages) for sending.
    pub fn send(&mut self, plain: &[u8]) -> Result<(), NoiseError> {
        let State::Transport(t) = &mut self.state else { return Err(NoiseError::Closed) };
        let mut buf = vec![0u8; MAX_MESSAGE];
        for chunk in plain.chunks(MAX_PLAINTEXT) {
            let n = t.write_message(chunk, &mut buf).map_err(noise_err)?;
            self.out.extend_from_slice(&(n as u16).to_be_bytes());
            self.out.extend_from_slice(&buf[..n]);
        }
        Ok(())
    }

    /// Moves the framed bytes to send into `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.out.is_empty() {
            return false;
        }
        out.append(&mut self.out);
        true
    }

    /// Moves the decrypted application data received so far into `out`; returns whether there
    /// was any.
    pub fn poll_plaintext(&mut self, out: &mut Vec<u8>) -> bool {
        if self.plain.is_empty() {
            return false;
        }
        if out.is_empty() {
            std::mem::swap(out, &mut self.plain);
        } else {
            out.append(&mut self.plain);
        }
        true
    }

    /// Bytes waiting to be sent (for back-pressure).
    pub fn pending_out(&self) -> usize {
        self.out.len()
    }
}

/// The one Noise suite libp2p uses, for `snow`: X25519, ChaCha20-Poly1305 and SHA-256 only.
/// snow's default resolver would also link AES-GCM, BLAKE2 and SHA-512, which libp2p never
/// negotiates.
mod suite {
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    use chacha20poly1305::ChaCha20Poly1305;
    use curve25519_dalek::montgomery::MontgomeryPoint;
    use rand_core::{CryptoRng, RngCore};
    use sha2::{Digest, Sha256};
    use snow::params::{CipherChoice, DHChoice, HashChoice};
    use snow::resolvers::CryptoResolver;
    use snow::types::{Cipher, Dh, Hash, Random};

    const TAG_LEN: usize = 16;

    /// The suite, with the seed of the session's ephemeral key.
    pub struct Resolver {
        ephemeral_seed: [u8; 32],
    }

    impl Resolver {
        pub fn new(ephemeral_seed: [u8; 32]) -> Resolver {
            Resolver { ephemeral_seed }
        }
    }

    impl CryptoResolver for Resolver {
        fn resolve_rng(&self) -> Option<Box<dyn Random>> {
            Some(Box::new(KeyStream::new(self.ephemeral_seed)))
        }

        fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
            matches!(choice, DHChoice::Curve25519).then(|| Box::new(X25519::default()) as Box<dyn Dh>)
        }

        fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
            matches!(choice, HashChoice::SHA256).then(|| Box::new(Sha(Sha256::new())) as Box<dyn Hash>)
        }

        fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
            matches!(choice, CipherChoice::ChaChaPoly)
                .then(|| Box::new(ChaChaPoly::default()) as Box<dyn Cipher>)
        }
    }

    /// The X25519 public key of `private`.
    pub fn public_key(private: &[u8; 32]) -> [u8; 32] {
        MontgomeryPoint::mul_base_clamped(*private).to_bytes()
    }

    /// What snow draws the ephemeral key from (32 bytes, once per XX handshake): SHA-256 in
    /// counter mode over a seed the session took from the caller's RNG, so the handshake needs
    /// no randomness of its own.
    struct KeyStream {
        seed: [u8; 32],
        counter: u64,
        block: [u8; 32],
        used: usize,
    }

    impl KeyStream {
        fn new(seed: [u8; 32]) -> KeyStream {
            KeyStream { seed, counter: 0, block: [0; 32], used: 32 }
        }
    }

    impl RngCore for KeyStream {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                if self.used == self.block.len() {
                    self.block = Sha256::new()
                        .chain_update(self.seed)
                        .chain_update(self.counter.to_le_bytes())
                        .finalize()
                        .into();
                    self.counter += 1;
                    self.used = 0;
                }
                *b = self.block[self.used];
                self.used += 1;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    impl CryptoRng for KeyStream {}
    impl Random for KeyStream {}

    #[derive(Default)]
    struct X25519 {
        private: [u8; 32],
        public: [u8; 32],
    }

    impl X25519 {
        fn derive(&mut self) {
            self.public = MontgomeryPoint::mul_base_clamped(self.private).to_bytes();
        }
    }

    impl Dh for X25519 {
        fn name(&self) -> &'static str {
            "25519"
        }
        fn pub_len(&self) -> usize {
            32
        }
        fn priv_len(&self) -> usize {
            32
        }
        fn set(&mut self, privkey: &[u8]) {
            let n = privkey.len().min(32);
            self.private[..n].copy_from_slice(&privkey[..n]);
            self.derive();
        }
        fn generate(&mut self, rng: &mut dyn Random) {
            rng.fill_bytes(&mut self.private);
            self.derive();
        }
        fn pubkey(&self) -> &[u8] {
            &self.public
        }
        fn privkey(&self) -> &[u8] {
            &self.private
        }
        fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
            let theirs: [u8; 32] = pubkey.get(..32).and_then(|p| p.try_into().ok()).ok_or(snow::Error::Dh)?;
            let shared = MontgomeryPoint(theirs).mul_clamped(self.private).to_bytes();
            out.get_mut(..32).ok_or(snow::Error::Dh)?.copy_from_slice(&shared);
            Ok(())
        }
    }

    #[derive(Default)]
    struct ChaChaPoly {
        key: [u8; 32],
    }

    /// Noise's ChaChaPoly nonce: 32 zero bits, then the counter little-endian.
    fn nonce(n: u64) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[4..].copy_from_slice(&n.to_le_bytes());
        b
    }

    impl Cipher for ChaChaPoly {
        fn name(&self) -> &'static str {
            "ChaChaPoly"
        }
        fn set(&mut self, key: &[u8]) {
            let n = key.len().min(32);
            self.key[..n].copy_from_slice(&key[..n]);
        }
        fn encrypt(&self, n: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
            let len = plaintext.len();
            out[..len].copy_from_slice(plaintext);
            let aead = ChaCha20Poly1305::new(&self.key.into());
            match aead.encrypt_in_place_detached(&nonce(n).into(), authtext, &mut out[..len]) {
                Ok(tag) => {
                    out[len..len + TAG_LEN].copy_from_slice(&tag);
                    len + TAG_LEN
                }
                // Only a message over 256 GiB fails; snow never asks for one.
                Err(_) => 0,
            }
        }
        fn decrypt(
            &self,
            n: u64,
            authtext: &[u8],
            ciphertext: &[u8],
            out: &mut [u8],
        ) -> Result<usize, snow::Error> {
            let len = ciphertext.len().checked_sub(TAG_LEN).ok_or(snow::Error::Decrypt)?;
            out[..len].copy_from_slice(&ciphertext[..len]);
            let aead = ChaCha20Poly1305::new(&self.key.into());
            aead.decrypt_in_place_detached(
                &nonce(n).into(),
                authtext,
                &mut out[..len],
                ciphertext[len..].into(),
            )
            .map_err(|_| snow::Error::Decrypt)?;
            Ok(len)
        }
    }

    struct Sha(Sha256);

    impl Hash for Sha {
        fn name(&self) -> &'static str {
            "SHA256"
        }
        fn block_len(&self) -> usize {
            64
        }
        fn hash_len(&self) -> usize {
            32
        }
        fn reset(&mut self) {
            self.0 = Sha256::new();
        }
        fn input(&mut self, data: &[u8]) {
            self.0.update(data);
        }
        fn result(&mut self, out: &mut [u8]) {
            out[..32].copy_from_slice(&self.0.finalize_reset());
        }
    }
}

/// Deterministic key material for tests: `crate::rng::Rng` (SplitMix64) behind the
/// `rand_core` traits, so handshakes replay byte for byte. Not cryptographic.
#[cfg(test)]
pub(crate) mod test_rng {
    use rand_core::{CryptoRng, RngCore};

    pub(crate) struct TestRng(crate::rng::Rng);

    impl TestRng {
        pub(crate) fn new(seed: u64) -> TestRng {
            TestRng(crate::rng::Rng::new(seed))
        }
    }

    impl RngCore for TestRng {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            self.0.next_u64()
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            self.0.fill(dest)
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.0.fill(dest);
            Ok(())
        }
    }

    impl CryptoRng for TestRng {}
}

#[cfg(test)]
mod tests {
    use super::test_rng::TestRng;
    use super::*;
    use crate::rng::Rng;

    fn transfer(src: &mut NoiseSession, dst: &mut NoiseSession, rng: &mut Rng) {
        let mut bytes = Vec::new();
        src.poll_transmit(&mut bytes);
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = 1 + rng.below(rest.len() as u64) as usize;
            dst.handle_input(&rest[..n]).unwrap();
            rest = &rest[n..];
        }
    }

    fn pump(a: &mut NoiseSession, b: &mut NoiseSession, rng: &mut Rng) {
        for _ in 0..6 {
            transfer(a, b, rng);
            transfer(b, a, rng);
        }
    }

    #[test]
    fn handshake_authenticates_both_peers_and_carries_data() {
        let mut rng = Rng::new(5);
        let mut keys = TestRng::new(5);
        let (ka, kb) = (Keypair::from_secret(&[1; 32]).unwrap(), Keypair::from_secret(&[2; 32]).unwrap());
        let mut a = NoiseSession::initiator(&ka, Some(kb.peer_id()), &mut keys).unwrap();
        let mut b = NoiseSession::responder(&kb, &mut keys).unwrap();
        pump(&mut a, &mut b, &mut rng);
        assert!(a.is_established() && b.is_established());
        assert_eq!(a.remote_peer(), Some(&kb.peer_id()));
        assert_eq!(b.remote_peer(), Some(&ka.peer_id()));
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        a.send(&big).unwrap();
        b.send(b"pong").unwrap();
        pump(&mut a, &mut b, &mut rng);
        let (mut got_b, mut got_a) = (Vec::new(), Vec::new());
        assert!(b.poll_plaintext(&mut got_b) && a.poll_plaintext(&mut got_a));
        assert_eq!((got_b, got_a), (big, b"pong".to_vec()));
    }

    #[test]
    fn the_wrong_peer_and_tampered_messages_are_refused() {
        let mut rng = Rng::new(6);
        let mut keys = TestRng::new(6);
        let (ka, kb) = (Keypair::from_secret(&[1; 32]).unwrap(), Keypair::from_secret(&[2; 32]).unwrap());
        let other = Keypair::from_secret(&[3; 32]).unwrap().peer_id();
        let mut a = NoiseSession::initiator(&ka, Some(other), &mut keys).unwrap();
        let mut b = NoiseSession::responder(&kb, &mut keys).unwrap();
        let mut m1 = Vec::new();
        a.poll_transmit(&mut m1);
        b.handle_input(&m1).unwrap();
        let mut m2 = Vec::new();
        b.poll_transmit(&mut m2);
        assert!(matches!(a.handle_input(&m2), Err(NoiseError::UnexpectedPeer { .. })));
        assert_eq!(a.handle_input(&[0]), Err(NoiseError::Closed));

        let mut a = NoiseSession::initiator(&ka, None, &mut keys).unwrap();
        let mut b = NoiseSession::responder(&kb, &mut keys).unwrap();
        pump(&mut a, &mut b, &mut rng);
        a.send(b"hello").unwrap();
        let mut c = Vec::new();
        a.poll_transmit(&mut c);
        let last = c.len() - 1;
        c[last] ^= 1;
        assert!(matches!(b.handle_input(&c), Err(NoiseError::Noise(_))));
        assert!(b.is_failed());
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut rng = Rng::new(7);
        let mut keys = TestRng::new(7);
        let kb = Keypair::from_secret(&[2; 32]).unwrap();
        let ka = Keypair::from_secret(&[1; 32]).unwrap();
        let mut a = NoiseSession::initiator(&ka, None, &mut keys).unwrap();
        let mut m1 = Vec::new();
        a.poll_transmit(&mut m1);
        for n in 0..m1.len() {
            let mut b = NoiseSession::responder(&kb, &mut keys).unwrap();
            b.handle_input(&m1[..n]).unwrap();
            assert!(!b.is_established());
        }
        for _ in 0..2000 {
            let mut bytes = vec![0u8; rng.below(200) as usize];
            rng.fill(&mut bytes);
            let mut b = NoiseSession::responder(&kb, &mut keys).unwrap();
            let _ = b.handle_input(&bytes);
            let mut a = NoiseSession::initiator(&ka, None, &mut keys).unwrap();
            let _ = a.handle_input(&bytes);
        }
        // Payloads: truncations and garbage are errors.
        let good = encode_payload(&ka, &[9; 32]);
        assert!(verify_payload(&good, &[9; 32]).is_ok());
        assert!(verify_payload(&good, &[8; 32]).is_err());
        for n in 0..good.len() {
            assert!(verify_payload(&good[..n], &[9; 32]).is_err());
        }
    }

    /// A handshake and one message each way, a whole flight at a time: every byte each side
    /// sent.
    fn transcript(seed_a: u64, seed_b: u64) -> Vec<Vec<u8>> {
        let (ka, kb) = (Keypair::from_secret(&[1; 32]).unwrap(), Keypair::from_secret(&[2; 32]).unwrap());
        let mut a = NoiseSession::initiator(&ka, Some(kb.peer_id()), &mut TestRng::new(seed_a)).unwrap();
        let mut b = NoiseSession::responder(&kb, &mut TestRng::new(seed_b)).unwrap();
        let mut wire = Vec::new();
        for _ in 0..3 {
            let mut m = Vec::new();
            a.poll_transmit(&mut m);
            b.handle_input(&m).unwrap();
            wire.push(m);
            let mut m = Vec::new();
            b.poll_transmit(&mut m);
            a.handle_input(&m).unwrap();
            wire.push(m);
        }
        assert!(a.is_established() && b.is_established());
        a.send(b"ping").unwrap();
        b.send(b"pong").unwrap();
        for s in [&mut a, &mut b] {
            let mut m = Vec::new();
            s.poll_transmit(&mut m);
            wire.push(m);
        }
        wire
    }

    #[test]
    fn handshakes_with_the_same_seeds_replay_byte_for_byte() {
        let first = transcript(1, 2);
        assert_eq!(first, transcript(1, 2));
        assert!(first.iter().map(Vec::len).sum::<usize>() > 200);
        assert_ne!(first, transcript(1, 3), "the responder's keys come from its RNG");
        assert_ne!(first, transcript(4, 2), "the initiator's keys come from its RNG");
    }
}
