//! Recursive Length Prefix encoding (Ethereum yellow paper, appendix B).
//!
//! The decoder is a bounds-checked cursor over a borrowed slice: it never allocates and never
//! panics on hostile input; every read returns `RlpError` instead. Integers must be canonical
//! (no leading zeros, single bytes below 0x80 not wrapped), as go-ethereum's decoder requires.

use std::fmt;

use super::primitives::{Address, B256, U256};

/// Why RLP input was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RlpError {
    /// The input ended inside an item.
    Truncated,
    /// A string was found where a list was expected, or the reverse.
    UnexpectedList,
    UnexpectedString,
    /// Non-canonical form: a length prefix or integer with leading zeros, a long form for a
    /// short payload, or a single byte < 0x80 wrapped in a string header.
    NonCanonical,
    /// An integer wider than the target type.
    Overflow,
    /// A fixed-size field with the wrong length.
    WrongLength {
        expected: usize,
        got: usize,
    },
    /// Bytes left over after the top-level item or inside a list.
    TrailingBytes,
    /// Any other structural rule (e.g. an unknown enum tag).
    Custom(&'static str),
}

impl fmt::Display for RlpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RlpError::Truncated => write!(f, "rlp: input truncated"),
            RlpError::UnexpectedList => write!(f, "rlp: expected string, got list"),
            RlpError::UnexpectedString => write!(f, "rlp: expected list, got string"),
            RlpError::NonCanonical => write!(f, "rlp: non-canonical encoding"),
            RlpError::Overflow => write!(f, "rlp: integer overflow"),
            RlpError::WrongLength { expected, got } => {
                write!(f, "rlp: wrong length {got}, want {expected}")
            }
            RlpError::TrailingBytes => write!(f, "rlp: trailing bytes"),
            RlpError::Custom(m) => write!(f, "rlp: {m}"),
        }
    }
}

impl std::error::Error for RlpError {}

/// A decoded item header: whether it is a list, and the payload it spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub list: bool,
    pub payload_len: usize,
    /// Bytes taken by the header itself.
    pub header_len: usize,
}

/// Reads the header at the start of `buf`, checking the payload fits in `buf`.
pub fn decode_header(buf: &[u8]) -> Result<Header, RlpError> {
    let b0 = *buf.first().ok_or(RlpError::Truncated)?;
    let (list, payload_len, header_len) = match b0 {
        0x00..=0x7f => (false, 1, 0),
        0x80..=0xb7 => {
            let len = (b0 - 0x80) as usize;
            if len == 1 && buf.get(1).is_some_and(|b| *b < 0x80) {
                return Err(RlpError::NonCanonical);
            }
            (false, len, 1)
        }
        0xb8..=0xbf => {
            let ll = (b0 - 0xb7) as usize;
            let len = read_len(buf, ll)?;
            (false, len, 1 + ll)
        }
        0xc0..=0xf7 => (true, (b0 - 0xc0) as usize, 1),
        0xf8..=0xff => {
            let ll = (b0 - 0xf7) as usize;
            let len = read_len(buf, ll)?;
            (true, len, 1 + ll)
        }
    };
    if buf.len() - header_len < payload_len {
        return Err(RlpError::Truncated);
    }
    Ok(Header { list, payload_len, header_len })
}

fn read_len(buf: &[u8], ll: usize) -> Result<usize, RlpError> {
    let bytes = buf.get(1..1 + ll).ok_or(RlpError::Truncated)?;
    if bytes[0] == 0 {
        return Err(RlpError::NonCanonical);
    }
    if ll > 8 {
        return Err(RlpError::Overflow);
    }
    let mut len = 0u64;
    for b in bytes {
        len = len << 8 | *b as u64;
    }
    if len < 56 {
        return Err(RlpError::NonCanonical);
    }
    usize::try_from(len).map_err(|_| RlpError::Overflow)
}

/// Total encoded size (header + payload) of the item at the start of `buf`.
pub fn item_len(buf: &[u8]) -> Result<usize, RlpError> {
    let h = decode_header(buf)?;
    Ok(h.header_len + h.payload_len)
}

/// A cursor over a sequence of RLP items (a list payload or a whole buffer).
#[derive(Debug, Clone)]
pub struct Rlp<'a> {
    buf: &'a [u8],
}

impl<'a> Rlp<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Rlp { buf }
    }

    /// Opens the list item that `buf` must consist of exactly.
    pub fn list(buf: &'a [u8]) -> Result<Self, RlpError> {
        let mut outer = Rlp::new(buf);
        let inner = outer.next_list()?;
        outer.finish()?;
        Ok(inner)
    }

    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails unless every item was consumed.
    pub fn finish(&self) -> Result<(), RlpError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(RlpError::TrailingBytes)
        }
    }

    /// The next item, raw (header included).
    pub fn next_raw(&mut self) -> Result<&'a [u8], RlpError> {
        let h = decode_header(self.buf)?;
        let total = h.header_len + h.payload_len;
        let (item, rest) = self.buf.split_at(total);
        self.buf = rest;
        Ok(item)
    }

    /// The next item's string payload.
    pub fn next_bytes(&mut self) -> Result<&'a [u8], RlpError> {
        let h = decode_header(self.buf)?;
        if h.list {
            return Err(RlpError::UnexpectedList);
        }
        let payload = &self.buf[h.header_len..h.header_len + h.payload_len];
        self.buf = &self.buf[h.header_len + h.payload_len..];
        Ok(payload)
    }

    /// The next item as a list cursor.
    pub fn next_list(&mut self) -> Result<Rlp<'a>, RlpError> {
        let h = decode_header(self.buf)?;
        if !h.list {
            return Err(RlpError::UnexpectedString);
        }
        let payload = &self.buf[h.header_len..h.header_len + h.payload_len];
        self.buf = &self.buf[h.header_len + h.payload_len..];
        Ok(Rlp::new(payload))
    }

    /// True when the next item is a list.
    pub fn peek_is_list(&self) -> Result<bool, RlpError> {
        Ok(decode_header(self.buf)?.list)
    }

    pub fn next_u64(&mut self) -> Result<u64, RlpError> {
        let b = self.next_uint_bytes(8)?;
        Ok(b.iter().fold(0u64, |acc, x| acc << 8 | *x as u64))
    }

    pub fn next_u128(&mut self) -> Result<u128, RlpError> {
        let b = self.next_uint_bytes(16)?;
        Ok(b.iter().fold(0u128, |acc, x| acc << 8 | *x as u128))
    }

    pub fn next_u256(&mut self) -> Result<U256, RlpError> {
        let b = self.next_uint_bytes(32)?;
        U256::from_be_slice(b).ok_or(RlpError::Overflow)
    }

    pub fn next_bool(&mut self) -> Result<bool, RlpError> {
        match self.next_u64()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(RlpError::Custom("bool out of range")),
        }
    }

    fn next_uint_bytes(&mut self, max: usize) -> Result<&'a [u8], RlpError> {
        let b = self.next_bytes()?;
        if b.len() > max {
            return Err(RlpError::Overflow);
        }
        if b.first() == Some(&0) {
            return Err(RlpError::NonCanonical);
        }
        Ok(b)
    }

    pub fn next_fixed<const N: usize>(&mut self) -> Result<[u8; N], RlpError> {
        let b = self.next_bytes()?;
        <[u8; N]>::try_from(b).map_err(|_| RlpError::WrongLength { expected: N, got: b.len() })
    }

    pub fn next_b256(&mut self) -> Result<B256, RlpError> {
        self.next_fixed::<32>().map(B256)
    }

    pub fn next_address(&mut self) -> Result<Address, RlpError> {
        self.next_fixed::<20>().map(Address)
    }

    /// An address, or None for the empty string (contract creation `to`).
    pub fn next_opt_address(&mut self) -> Result<Option<Address>, RlpError> {
        let b = self.next_bytes()?;
        match b.len() {
            0 => Ok(None),
            20 => Ok(Address::from_slice(b)),
            n => Err(RlpError::WrongLength { expected: 20, got: n }),
        }
    }
}

/// Appends RLP encodings to a caller-owned buffer.
pub struct Encoder<'a> {
    pub out: &'a mut Vec<u8>,
}

/// Length of the header for a payload of `len` bytes.
pub fn header_len(len: usize) -> usize {
    if len < 56 {
        1
    } else {
        1 + be_len(len as u64)
    }
}

fn be_len(v: u64) -> usize {
    8 - (v.leading_zeros() / 8) as usize
}

/// Writes a header for a string (`list = false`) or list payload of `len` bytes.
pub fn put_header(out: &mut Vec<u8>, list: bool, len: usize) {
    let (short, long) = if list { (0xc0u8, 0xf7u8) } else { (0x80u8, 0xb7u8) };
    if len < 56 {
        out.push(short + len as u8);
    } else {
        let n = be_len(len as u64);
        out.push(long + n as u8);
        out.extend_from_slice(&(len as u64).to_be_bytes()[8 - n..]);
    }
}

/// Encoded length of a byte string.
pub fn bytes_len(b: &[u8]) -> usize {
    if b.len() == 1 && b[0] < 0x80 {
        1
    } else {
        header_len(b.len()) + b.len()
    }
}

/// Encoded length of an unsigned integer given as trimmed big-endian bytes.
pub fn u64_len(v: u64) -> usize {
    if v < 0x80 {
        1
    } else {
        1 + be_len(v)
    }
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    if b.len() == 1 && b[0] < 0x80 {
        out.push(b[0]);
    } else {
        put_header(out, false, b.len());
        out.extend_from_slice(b);
    }
}

pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    if v == 0 {
        out.push(0x80);
    } else {
        let n = be_len(v);
        put_bytes(out, &v.to_be_bytes()[8 - n..]);
    }
}

pub fn put_u128(out: &mut Vec<u8>, v: u128) {
    let b = v.to_be_bytes();
    let first = b.iter().position(|x| *x != 0).unwrap_or(16);
    put_bytes(out, &b[first..]);
}

pub fn put_u256(out: &mut Vec<u8>, v: &U256) {
    put_bytes(out, v.to_be_trimmed());
}

pub fn put_bool(out: &mut Vec<u8>, v: bool) {
    put_u64(out, v as u64);
}

/// Writes `[items...]` where `body` appends the already-encoded items to `out`.
pub fn put_list(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    // The items go straight after a one-byte header; a long header's length bytes are made room
    // for afterwards (no scratch buffer per list: derivation encodes every transaction).
    put_list_of_about(out, 0, body);
}

/// Like [`put_list`], for items of about `expect` bytes: the header's room is set aside for that
/// length first, so a long list (a transaction) is not moved to fit its header afterwards. It
/// is moved only when the guess was wrong by a length byte.
pub fn put_list_of_about(out: &mut Vec<u8>, expect: usize, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    let reserved = list_header_len(expect);
    out.resize(start + reserved, 0);
    body(out);
    close_list(out, start, reserved);
}

fn list_header_len(len: usize) -> usize {
    if len < 56 {
        1
    } else {
        1 + be_len(len as u64)
    }
}

/// Writes the header of the list whose items follow the `reserved` header bytes at `start`,
/// moving the items if the header needs another size.
fn close_list(out: &mut Vec<u8>, start: usize, reserved: usize) {
    let len = out.len() - start - reserved;
    let need = list_header_len(len);
    if need > reserved {
        out.resize(out.len() + need - reserved, 0);
        out.copy_within(start + reserved..start + reserved + len, start + need);
    } else if need < reserved {
        out.copy_within(start + reserved.., start + need);
        out.truncate(start + need + len);
    }
    if len < 56 {
        out[start] = 0xc0 + len as u8;
    } else {
        let n = need - 1;
        out[start] = 0xf7 + n as u8;
        out[start + 1..start + need].copy_from_slice(&(len as u64).to_be_bytes()[8 - n..]);
    }
}

/// Encodes a list whose items `body` writes, returning a new buffer.
pub fn encode_list(body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    put_list(&mut out, body);
    out
}

pub fn put_opt_address(out: &mut Vec<u8>, a: &Option<Address>) {
    match a {
        Some(a) => put_bytes(out, &a.0),
        None => out.push(0x80),
    }
}

impl Encoder<'_> {
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        put_bytes(self.out, b);
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        put_u64(self.out, v);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc_bytes(b: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        put_bytes(&mut o, b);
        o
    }

    #[test]
    fn yellow_paper_examples() {
        assert_eq!(enc_bytes(b"dog"), vec![0x83, b'd', b'o', b'g']);
        assert_eq!(enc_bytes(b""), vec![0x80]);
        assert_eq!(enc_bytes(&[0x0f]), vec![0x0f]);
        assert_eq!(enc_bytes(&[0x80]), vec![0x81, 0x80]);
        let mut o = Vec::new();
        put_u64(&mut o, 0);
        put_u64(&mut o, 1024);
        assert_eq!(o, vec![0x80, 0x82, 0x04, 0x00]);
        let cat_dog = encode_list(|o| {
            put_bytes(o, b"cat");
            put_bytes(o, b"dog");
        });
        assert_eq!(cat_dog, vec![0xc8, 0x83, b'c', b'a', b't', 0x83, b'd', b'o', b'g']);
        // A long list after other bytes: its header's length byte is made room for in place.
        let mut o = vec![0xaa];
        put_list(&mut o, |o| (0..30).for_each(|i| put_u64(o, 0x100 + i)));
        assert_eq!((&o[..3], o.len()), (&[0xaa, 0xf8, 90][..], 93));
        let mut r = Rlp::list(&o[1..]).unwrap();
        assert!((0..30).all(|i| r.next_u64() == Ok(0x100 + i)));
        r.finish().unwrap();
        let lorem = b"Lorem ipsum dolor sit amet, consectetur adipisicing elit";
        let e = enc_bytes(lorem);
        assert_eq!(&e[..2], &[0xb8, 0x38]);
        let mut r = Rlp::new(&e);
        assert_eq!(r.next_bytes().unwrap(), lorem);
        r.finish().unwrap();
    }

    #[test]
    fn a_list_of_any_length_after_any_guess_has_the_canonical_header() {
        // Item bytes on both sides of each header size (1, 2, 3 and 4 bytes), with guesses that
        // are right, too small and too large: always a header written from the real length.
        for items in [0, 1, 54, 55, 56, 57, 254, 255, 256, 257, 65534, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..items).map(|i| (i % 0x7f) as u8).collect();
            let mut want = vec![0xee];
            put_header(&mut want, true, items);
            want.extend_from_slice(&payload);
            for expect in [0, 1, 55, 56, 200, 300, 70000, 1 << 24, items] {
                let mut o = vec![0xee];
                put_list_of_about(&mut o, expect, |o| o.extend_from_slice(&payload));
                assert!(o == want, "{items} item bytes, {expect} expected");
            }
        }
    }

    #[test]
    fn decode_list_and_ints() {
        let e = encode_list(|o| {
            put_u64(o, 0);
            put_u64(o, 0x7f);
            put_u64(o, 0x80);
            put_u64(o, u64::MAX);
        });
        let mut r = Rlp::list(&e).unwrap();
        assert_eq!(r.next_u64().unwrap(), 0);
        assert_eq!(r.next_u64().unwrap(), 0x7f);
        assert_eq!(r.next_u64().unwrap(), 0x80);
        assert_eq!(r.next_u64().unwrap(), u64::MAX);
        r.finish().unwrap();
    }

    #[test]
    fn rejects_non_canonical() {
        assert_eq!(Rlp::new(&[0x81, 0x05]).next_bytes(), Err(RlpError::NonCanonical));
        assert_eq!(Rlp::new(&[0x82, 0x00, 0x01]).next_u64(), Err(RlpError::NonCanonical));
        assert_eq!(Rlp::new(&[0xb8, 0x02, 1, 2]).next_bytes(), Err(RlpError::NonCanonical));
        assert_eq!(Rlp::new(&[0xb9, 0x00, 0x40]).next_bytes(), Err(RlpError::NonCanonical));
        assert_eq!(Rlp::new(&[0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9]).next_u64(), Err(RlpError::Overflow));
    }

    #[test]
    fn truncated_prefixes_never_panic() {
        let e = encode_list(|o| {
            put_bytes(o, &[7u8; 100]);
            put_u64(o, 123456);
            put_list(o, |o| put_bytes(o, b"nested"));
        });
        for n in 0..e.len() {
            let r = Rlp::list(&e[..n]);
            assert!(r.is_err(), "prefix {n} accepted");
        }
        assert!(Rlp::list(&e).is_ok());
    }

    #[test]
    fn random_input_never_panics() {
        let mut x = 0x9e3779b97f4a7c15u64;
        for _ in 0..5000 {
            let mut buf = vec![0u8; (x % 64) as usize];
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let mut r = Rlp::new(&buf);
            while !r.is_empty() {
                if r.next_raw().is_err() {
                    break;
                }
            }
            let _ = Rlp::list(&buf).map(|mut l| l.next_u64());
        }
    }

    #[test]
    fn huge_declared_length_is_truncated_not_allocated() {
        let buf = [0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Rlp::new(&buf).next_bytes(), Err(RlpError::Truncated));
    }
}
