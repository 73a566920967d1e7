//! OP Stack blob encoding, version 0 (`specs/protocol/ecotone/derivation.md`, "Blob Encoding"):
//! batcher data packed into the 4096 field elements of an EIP-4844 blob, and the versioned hash
//! of a blob's KZG commitment.
//!
//! Each round of 4 field elements carries 127 bytes: four 31-byte tails in the low bytes, plus
//! three bytes split into four 6-bit chunks in the elements' top bytes, whose two high bits stay
//! zero. The byte stream starts with the version (0) and a 3-byte big-endian length; everything
//! past the length must be zero so that encoding is a bijection.

use std::fmt;

use sha2::{Digest, Sha256};

use super::primitives::B256;

/// Bytes in a blob: 4096 field elements of 32 bytes.
pub const BLOB_SIZE: usize = 4096 * 32;
/// The most data one blob carries: 1024 rounds of 127 bytes, less the 4-byte header.
pub const MAX_BLOB_DATA_SIZE: usize = (4 * 31 + 3) * 1024 - 4;
/// The only blob encoding version defined so far.
pub const ENCODING_VERSION: u8 = 0;
/// Bytes in a KZG commitment.
pub const COMMITMENT_SIZE: usize = 48;
/// The version byte of a KZG versioned hash (EIP-4844 `VERSIONED_HASH_VERSION_KZG`).
pub const VERSIONED_HASH_VERSION_KZG: u8 = 1;

const ROUNDS: usize = 1024;
const ROUND_BYTES: usize = 4 * 31 + 3;

/// Why a blob is not OP-encoded data (the blob is then ignored), or data does not fit one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobError {
    WrongSize(usize),
    BadVersion(u8),
    BadLength(usize),
    /// A field element whose top two bits are set.
    BadFieldElement(usize),
    /// A non-zero byte past the declared length, at this offset from the start of the data.
    TrailingData(usize),
    DataTooLarge(usize),
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobError::WrongSize(n) => write!(f, "blob of {n} bytes, want {BLOB_SIZE}"),
            BlobError::BadVersion(v) => {
                write!(f, "blob encoding version {v}, want {ENCODING_VERSION}")
            }
            BlobError::BadLength(n) => {
                write!(f, "blob data length {n} exceeds {MAX_BLOB_DATA_SIZE}")
            }
            BlobError::BadFieldElement(i) => write!(f, "field element {i} has its top bits set"),
            BlobError::TrailingData(at) => {
                write!(f, "non-zero blob data at {at}, past the declared length")
            }
            BlobError::DataTooLarge(n) => {
                write!(f, "{n} bytes do not fit a blob (max {MAX_BLOB_DATA_SIZE})")
            }
        }
    }
}

impl std::error::Error for BlobError {}

/// Decodes an OP-encoded blob into the data it carries.
pub fn decode_blob(blob: &[u8]) -> Result<Vec<u8>, BlobError> {
    if blob.len() != BLOB_SIZE {
        return Err(BlobError::WrongSize(blob.len()));
    }
    let (version, len) = (blob[1], u32::from_be_bytes([0, blob[2], blob[3], blob[4]]) as usize);
    if version != ENCODING_VERSION {
        return Err(BlobError::BadVersion(version));
    }
    if len > MAX_BLOB_DATA_SIZE {
        return Err(BlobError::BadLength(len));
    }
    // Decode every round: rounds past the data must be all zero, which is exactly what op-node
    // checks by stopping early and then requiring the rest of the blob to be zero.
    let mut stream = Vec::with_capacity(ROUNDS * ROUND_BYTES);
    for (round, chunk) in blob.chunks_exact(128).enumerate() {
        let mut top = [0u8; 4];
        for (i, t) in top.iter_mut().enumerate() {
            let b = chunk[32 * i];
            // op-node and kona never check the first element's top bits (they are masked off
            // below); doing so here would reject blobs that they accept.
            if b & 0b1100_0000 != 0 && (round, i) != (0, 0) {
                return Err(BlobError::BadFieldElement(4 * round + i));
            }
            *t = b & 0b0011_1111;
        }
        let x = top[0] | (top[1] & 0b0011_0000) << 2;
        let y = (top[1] & 0b0000_1111) | (top[3] & 0b0000_1111) << 4;
        let z = top[2] | (top[3] & 0b0011_0000) << 2;
        for (i, extra) in [Some(x), Some(y), Some(z), None].into_iter().enumerate() {
            stream.extend_from_slice(&chunk[32 * i + 1..32 * i + 32]);
            stream.extend(extra);
        }
    }
    let end = 4 + len;
    if let Some(at) = stream[end..].iter().position(|b| *b != 0) {
        return Err(BlobError::TrailingData(end + at - 4));
    }
    stream.truncate(end);
    stream.drain(..4);
    // No spare capacity kept: the retrieval queue holds a block's blobs, and a frame that is
    // all of one shares the buffer (frame::SHARE_SLACK counts capacity).
    stream.shrink_to_fit();
    Ok(stream)
}

/// Encodes `data` into a blob (what a batcher posts).
pub fn encode_blob(data: &[u8]) -> Result<Vec<u8>, BlobError> {
    if data.len() > MAX_BLOB_DATA_SIZE {
        return Err(BlobError::DataTooLarge(data.len()));
    }
    let mut stream = vec![0u8; ROUNDS * ROUND_BYTES];
    stream[0] = ENCODING_VERSION;
    stream[1..4].copy_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    stream[4..4 + data.len()].copy_from_slice(data);
    let mut blob = vec![0u8; BLOB_SIZE];
    for (chunk, round) in blob.chunks_exact_mut(128).zip(stream.chunks_exact(ROUND_BYTES)) {
        let (x, y, z) = (round[31], round[63], round[95]);
        let top = [
            x & 0b0011_1111,
            (y & 0b0000_1111) | (x & 0b1100_0000) >> 2,
            z & 0b0011_1111,
            (z & 0b1100_0000) >> 2 | (y & 0b1111_0000) >> 4,
        ];
        for (i, t) in top.into_iter().enumerate() {
            chunk[32 * i] = t;
            chunk[32 * i + 1..32 * i + 32].copy_from_slice(&round[32 * i..32 * i + 31]);
        }
    }
    Ok(blob)
}

/// The versioned hash of a KZG commitment: `0x01 ++ sha256(commitment)[1..]`.
pub fn versioned_hash(commitment: &[u8; COMMITMENT_SIZE]) -> B256 {
    let mut h: [u8; 32] = Sha256::digest(commitment).into();
    h[0] = VERSIONED_HASH_VERSION_KZG;
    B256(h)
}

/// Why a blob's KZG commitment could not be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KzgError(pub String);

impl fmt::Display for KzgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kzg: {}", self.0)
    }
}

impl std::error::Error for KzgError {}

/// The KZG commitment of a blob under the Ethereum trusted setup (`protocol::kzg`, checked
/// against c-kzg-4844). Fails for a blob of the wrong size or with a field element not below the
/// BLS modulus. The setup's points are decompressed on first use.
pub fn kzg_commitment(blob: &[u8]) -> Result<[u8; COMMITMENT_SIZE], KzgError> {
    super::kzg::blob_to_commitment(blob).map_err(KzgError)
}

/// Checks a blob against the versioned hash it was requested by.
pub fn verify_blob(blob: &[u8], expected: &B256) -> Result<(), KzgError> {
    let got = versioned_hash(&kzg_commitment(blob)?);
    if got != *expected {
        return Err(KzgError(format!("blob commits to {got}, not {expected}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn layout_of_a_short_blob() {
        let blob = encode_blob(b"hello").unwrap();
        assert_eq!(&blob[..10], &[0, 0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']);
        assert!(blob[10..].iter().all(|b| *b == 0));
        assert_eq!(decode_blob(&blob).unwrap(), b"hello");
        assert_eq!(decode_blob(&encode_blob(&[]).unwrap()).unwrap(), b"");
    }

    #[test]
    fn six_bit_chunks_land_in_the_top_bytes() {
        // Stream bytes 31, 63 and 95 of the first round (data offsets 27, 59, 91).
        let mut data = vec![0u8; 100];
        data[27] = 0xff;
        data[59] = 0xff;
        data[91] = 0xff;
        let blob = encode_blob(&data).unwrap();
        assert_eq!([blob[0], blob[32], blob[64], blob[96]], [0x3f, 0x3f, 0x3f, 0x3f]);
        assert_eq!(decode_blob(&blob).unwrap(), data);
    }

    #[test]
    fn full_blob_round_trips() {
        let mut rng = Rng::new(1);
        let mut data = vec![0u8; MAX_BLOB_DATA_SIZE];
        rng.fill(&mut data);
        let blob = encode_blob(&data).unwrap();
        assert!(blob.chunks(32).all(|fe| fe[0] & 0xc0 == 0));
        assert_eq!(decode_blob(&blob).unwrap(), data);
        assert_eq!(
            encode_blob(&[0; MAX_BLOB_DATA_SIZE + 1]),
            Err(BlobError::DataTooLarge(MAX_BLOB_DATA_SIZE + 1))
        );
    }

    #[test]
    fn a_blob_of_one_frame_is_parsed_without_a_copy() {
        use crate::protocol::frame::{batcher_tx_data, Frame, FRAME_HEADER_LEN};
        // A full blob, and a channel's last blob, partly filled.
        for len in [MAX_BLOB_DATA_SIZE - 1 - FRAME_HEADER_LEN, 60_000] {
            let frame = Frame { channel_id: [1; 16], number: 0, data: vec![9u8; len].into(), is_last: true };
            let blob = encode_blob(&batcher_tx_data(std::slice::from_ref(&frame))).unwrap();
            let data = std::sync::Arc::new(decode_blob(&blob).unwrap());
            let frames = Frame::parse_shared(&data).unwrap();
            assert_eq!(frames, [frame]);
            assert!(frames[0].data.is_shared(), "{len}");
        }
    }

    #[test]
    fn random_lengths_round_trip() {
        let mut rng = Rng::new(2);
        for _ in 0..60 {
            let len = match rng.below(3) {
                0 => rng.below(300) as usize,
                _ => rng.below(MAX_BLOB_DATA_SIZE as u64 + 1) as usize,
            };
            let mut data = vec![0u8; len];
            rng.fill(&mut data);
            assert_eq!(decode_blob(&encode_blob(&data).unwrap()).unwrap(), data);
        }
    }

    #[test]
    fn malformed_blobs_are_rejected() {
        let good = encode_blob(&[7; 1000]).unwrap();
        let mut b = good.clone();
        b[1] = 1;
        assert_eq!(decode_blob(&b), Err(BlobError::BadVersion(1)));
        let mut b = good.clone();
        b[2] = 0xff;
        assert_eq!(decode_blob(&b), Err(BlobError::BadLength(0xff03e8)));
        let mut b = good.clone();
        b[32 * 5] |= 0x80;
        assert_eq!(decode_blob(&b), Err(BlobError::BadFieldElement(5)));
        let mut b = good.clone();
        b[BLOB_SIZE - 1] = 1;
        assert!(matches!(decode_blob(&b), Err(BlobError::TrailingData(_))));
        // One byte past the data, inside the last used field element.
        let mut b = encode_blob(&[7; 10]).unwrap();
        b[15] = 1;
        assert_eq!(decode_blob(&b), Err(BlobError::TrailingData(10)));
        // A 6-bit chunk carrying a bit past the data.
        let mut b = encode_blob(&[7; 10]).unwrap();
        b[96] = 0x01;
        assert!(matches!(decode_blob(&b), Err(BlobError::TrailingData(_))));
        assert_eq!(decode_blob(&good[1..]), Err(BlobError::WrongSize(BLOB_SIZE - 1)));
        // As in op-node, the first element's top bits are masked rather than checked.
        let mut b = good;
        b[0] |= 0xc0;
        assert_eq!(decode_blob(&b).unwrap(), vec![7; 1000]);
    }

    #[test]
    fn random_blobs_never_panic() {
        let mut rng = Rng::new(3);
        let mut blob = vec![0u8; BLOB_SIZE];
        for i in 0..3000 {
            // Mostly valid headers, so decoding reaches the field elements.
            blob.fill(0);
            let n = rng.below(64) as usize;
            rng.fill(&mut blob[..n]);
            if i % 2 == 0 {
                blob[1] = 0;
                blob[2] &= 1;
            }
            let at = rng.below(BLOB_SIZE as u64) as usize;
            blob[at] = rng.next_u64() as u8;
            if let Ok(data) = decode_blob(&blob) {
                assert_eq!(encode_blob(&data).unwrap()[1..], blob[1..]);
            }
        }
        for n in [0, 1, 5, BLOB_SIZE - 1, BLOB_SIZE + 1] {
            assert_eq!(decode_blob(&vec![0; n]), Err(BlobError::WrongSize(n)));
        }
    }
}
