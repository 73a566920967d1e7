//! Ethereum primitives: fixed hashes, addresses, a byte string, a 256-bit integer, hex in the
//! JSON-RPC conventions (DATA: even-length `0x` hex; QUANTITY: `0x` hex without leading zeros),
//! and keccak256.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use sha3::{Digest, Keccak256};

/// Why a hex string did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HexError {
    MissingPrefix,
    OddLength,
    InvalidChar(char),
    WrongLength { expected: usize, got: usize },
    LeadingZero,
    Empty,
    Overflow,
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::MissingPrefix => write!(f, "hex string without 0x prefix"),
            HexError::OddLength => write!(f, "hex string of odd length"),
            HexError::InvalidChar(c) => write!(f, "invalid hex character {c:?}"),
            HexError::WrongLength { expected, got } => {
                write!(f, "hex string has length {got}, want {expected} bytes")
            }
            HexError::LeadingZero => write!(f, "hex number with leading zero digits"),
            HexError::Empty => write!(f, "empty hex number"),
            HexError::Overflow => write!(f, "hex number too large"),
        }
    }
}

impl std::error::Error for HexError {}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes`, without prefix.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// `0x`-prefixed lower-case hex of `bytes` (JSON-RPC DATA).
pub fn to_hex_prefixed(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    s.push_str(&to_hex(bytes));
    s
}

fn nibble(c: u8) -> Result<u8, HexError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(HexError::InvalidChar(c as char)),
    }
}

/// Strips an optional `0x`/`0X` prefix.
pub fn strip_0x(s: &str) -> &str {
    s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s)
}

/// Decodes hex with or without a `0x` prefix.
pub fn from_hex(s: &str) -> Result<Vec<u8>, HexError> {
    let s = strip_0x(s).as_bytes();
    if s.len() % 2 != 0 {
        return Err(HexError::OddLength);
    }
    let mut out = Vec::with_capacity(s.len() / 2);
    for pair in s.chunks_exact(2) {
        out.push(nibble(pair[0])? << 4 | nibble(pair[1])?);
    }
    Ok(out)
}

/// Decodes hex into a fixed-size array; the string must encode exactly `N` bytes.
pub fn from_hex_fixed<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let body = strip_0x(s).as_bytes();
    if body.len() != N * 2 {
        return Err(HexError::WrongLength { expected: N, got: body.len() / 2 });
    }
    let mut out = [0u8; N];
    for (i, pair) in body.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Ok(out)
}

/// Parses a JSON-RPC QUANTITY (`0x` + hex digits, no leading zeros; `0x0` is zero).
pub fn parse_quantity(s: &str) -> Result<u64, HexError> {
    let body = s.strip_prefix("0x").ok_or(HexError::MissingPrefix)?;
    if body.is_empty() {
        return Err(HexError::Empty);
    }
    if body.len() > 1 && body.starts_with('0') {
        return Err(HexError::LeadingZero);
    }
    if body.len() > 16 {
        return Err(HexError::Overflow);
    }
    let mut v = 0u64;
    for c in body.bytes() {
        v = v << 4 | nibble(c)? as u64;
    }
    Ok(v)
}

/// Formats a JSON-RPC QUANTITY.
pub fn quantity(v: u64) -> String {
    format!("{v:#x}")
}

/// keccak256 of `data`.
pub fn keccak256(data: impl AsRef<[u8]>) -> B256 {
    B256(Keccak256::digest(data.as_ref()).into())
}

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $n:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $n]);

        impl $name {
            pub const ZERO: Self = Self([0u8; $n]);
            pub const LEN: usize = $n;

            /// Copies a slice of exactly the right length.
            pub fn from_slice(s: &[u8]) -> Option<Self> {
                <[u8; $n]>::try_from(s).ok().map(Self)
            }

            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            pub fn is_zero(&self) -> bool {
                self.0.iter().all(|b| *b == 0)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::ZERO
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl From<[u8; $n]> for $name {
            fn from(b: [u8; $n]) -> Self {
                Self(b)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("0x")?;
                f.write_str(&to_hex(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = HexError;
            fn from_str(s: &str) -> Result<Self, HexError> {
                from_hex_fixed::<$n>(s).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(de::Error::custom)
            }
        }
    };
}

fixed_bytes!(
    /// A 32-byte hash.
    B256,
    32
);
fixed_bytes!(
    /// A 20-byte account address.
    Address,
    20
);
fixed_bytes!(
    /// An 8-byte value (e.g. the Holocene EIP-1559 params in a SystemConfig).
    B64,
    8
);
fixed_bytes!(
    /// A 2048-bit log bloom filter.
    Bloom,
    256
);

impl Address {
    /// The EIP-55 mixed-case checksum form.
    pub fn to_checksum(&self) -> String {
        let hex = to_hex(&self.0);
        let hash = keccak256(hex.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in hex.chars().enumerate() {
            let shift = if i % 2 == 0 { 4 } else { 0 };
            let h = (hash.0[i / 2] >> shift) & 0x0f;
            if c.is_ascii_alphabetic() && h >= 8 {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl Bloom {
    /// Adds `data` (an address or topic) to the filter, as the yellow paper's M3:2048.
    pub fn accrue(&mut self, data: &[u8]) {
        let h = keccak256(data);
        for i in [0usize, 2, 4] {
            let bit = ((h.0[i] as usize) << 8 | h.0[i + 1] as usize) & 2047;
            self.0[255 - bit / 8] |= 1 << (bit % 8);
        }
    }

    /// True when `data` may have been added; false proves it was not.
    pub fn may_contain(&self, data: &[u8]) -> bool {
        let h = keccak256(data);
        [0usize, 2, 4].iter().all(|&i| {
            let bit = ((h.0[i] as usize) << 8 | h.0[i + 1] as usize) & 2047;
            self.0[255 - bit / 8] & (1 << (bit % 8)) != 0
        })
    }
}

/// An owned byte string, serialized as JSON-RPC DATA.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Bytes(v.to_vec())
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Bytes {
    type Err = HexError;
    fn from_str(s: &str) -> Result<Self, HexError> {
        if !(s.starts_with("0x") || s.starts_with("0X")) {
            return Err(HexError::MissingPrefix);
        }
        from_hex(s).map(Bytes)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor of `&str`: a streaming reader lends its scratch buffer, so the hex text
        // (twice the bytes) is never copied into a String of its own.
        struct Hex;
        impl de::Visitor<'_> for Hex {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("0x-prefixed hex bytes")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Bytes, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Hex)
    }
}

/// An unsigned 256-bit integer, big-endian. Only what the protocol needs: conversion,
/// comparison, checked add/mul by small values and decimal/hex text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct U256(pub [u8; 32]);

impl U256 {
    pub const ZERO: U256 = U256([0u8; 32]);
    pub const MAX: U256 = U256([0xffu8; 32]);

    pub fn from_u64(v: u64) -> Self {
        Self::from_u128(v as u128)
    }

    pub fn from_u128(v: u128) -> Self {
        let mut b = [0u8; 32];
        b[16..].copy_from_slice(&v.to_be_bytes());
        U256(b)
    }

    /// From big-endian bytes of at most 32 bytes.
    pub fn from_be_slice(s: &[u8]) -> Option<Self> {
        if s.len() > 32 {
            return None;
        }
        let mut b = [0u8; 32];
        b[32 - s.len()..].copy_from_slice(s);
        Some(U256(b))
    }

    pub fn to_be_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Big-endian bytes with leading zeros removed (the RLP integer form).
    pub fn to_be_trimmed(&self) -> &[u8] {
        let first = self.0.iter().position(|b| *b != 0).unwrap_or(32);
        &self.0[first..]
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0u8; 32]
    }

    pub fn to_u64(&self) -> Option<u64> {
        if self.0[..24].iter().any(|b| *b != 0) {
            return None;
        }
        Some(u64::from_be_bytes(self.0[24..].try_into().unwrap_or([0; 8])))
    }

    pub fn to_u128(&self) -> Option<u128> {
        if self.0[..16].iter().any(|b| *b != 0) {
            return None;
        }
        Some(u128::from_be_bytes(self.0[16..].try_into().unwrap_or([0; 16])))
    }

    fn limbs(&self) -> [u64; 4] {
        let mut l = [0u64; 4];
        for (i, limb) in l.iter_mut().enumerate() {
            let off = 24 - i * 8;
            *limb = u64::from_be_bytes(self.0[off..off + 8].try_into().unwrap_or([0; 8]));
        }
        l
    }

    fn from_limbs(l: [u64; 4]) -> Self {
        let mut b = [0u8; 32];
        for (i, limb) in l.iter().enumerate() {
            let off = 24 - i * 8;
            b[off..off + 8].copy_from_slice(&limb.to_be_bytes());
        }
        U256(b)
    }

    pub fn checked_add(&self, o: &U256) -> Option<U256> {
        let (a, b) = (self.limbs(), o.limbs());
        let mut r = [0u64; 4];
        let mut carry = 0u64;
        for i in 0..4 {
            let (s1, c1) = a[i].overflowing_add(b[i]);
            let (s2, c2) = s1.overflowing_add(carry);
            r[i] = s2;
            carry = (c1 as u64) + (c2 as u64);
        }
        (carry == 0).then(|| U256::from_limbs(r))
    }

    /// `self * m + a`, None on overflow.
    pub fn checked_mul_add_small(&self, m: u64, a: u64) -> Option<U256> {
        let l = self.limbs();
        let mut r = [0u64; 4];
        let mut carry = a as u128;
        for i in 0..4 {
            let v = l[i] as u128 * m as u128 + carry;
            r[i] = v as u64;
            carry = v >> 64;
        }
        (carry == 0).then(|| U256::from_limbs(r))
    }

    /// Divides by a small value, returning quotient and remainder.
    pub fn div_rem_small(&self, d: u64) -> (U256, u64) {
        let l = self.limbs();
        let mut q = [0u64; 4];
        let mut rem = 0u128;
        for i in (0..4).rev() {
            let cur = rem << 64 | l[i] as u128;
            q[i] = (cur / d as u128) as u64;
            rem = cur % d as u128;
        }
        (U256::from_limbs(q), rem as u64)
    }

    /// Parses decimal digits, or `0x` hex.
    pub fn parse(s: &str) -> Result<U256, HexError> {
        if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            if h.is_empty() {
                return Err(HexError::Empty);
            }
            if h.len() > 64 {
                let extra = &h[..h.len() - 64];
                if extra.bytes().any(|c| c != b'0') {
                    return Err(HexError::Overflow);
                }
            }
            let h = if h.len() > 64 { &h[h.len() - 64..] } else { h };
            let padded = format!("{h:0>64}");
            return from_hex_fixed::<32>(&padded).map(U256);
        }
        if s.is_empty() {
            return Err(HexError::Empty);
        }
        let mut v = U256::ZERO;
        for c in s.bytes() {
            if !c.is_ascii_digit() {
                return Err(HexError::InvalidChar(c as char));
            }
            v = v.checked_mul_add_small(10, (c - b'0') as u64).ok_or(HexError::Overflow)?;
        }
        Ok(v)
    }

    /// JSON-RPC QUANTITY text.
    pub fn to_quantity(&self) -> String {
        let t = to_hex(self.to_be_trimmed());
        let t = t.trim_start_matches('0');
        if t.is_empty() {
            "0x0".to_string()
        } else {
            format!("0x{t}")
        }
    }
}

impl fmt::Display for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let mut digits = Vec::with_capacity(78);
        let mut v = *self;
        while !v.is_zero() {
            let (q, r) = v.div_rem_small(10);
            digits.push(b'0' + r as u8);
            v = q;
        }
        digits.reverse();
        f.write_str(std::str::from_utf8(&digits).unwrap_or("?"))
    }
}

impl fmt::Debug for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for U256 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_quantity())
    }
}

impl<'de> Deserialize<'de> for U256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = U256;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 256-bit number as hex or decimal string, or a JSON number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<U256, E> {
                Ok(U256::from_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<U256, E> {
                U256::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Serde helpers for u64 as JSON-RPC QUANTITY; deserialization also accepts a JSON number.
pub mod serde_quantity {
    use super::*;

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&quantity(*v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = u64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hex quantity string or a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
                Ok(v)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
                parse_quantity(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }

    /// The same for `Option<u64>` (absent or null -> None).
    pub mod opt {
        use super::*;

        pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.serialize_str(&quantity(*v)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
            #[derive(Deserialize)]
            struct W(#[serde(with = "super")] u64);
            Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        assert_eq!(from_hex("0x00ff10").unwrap(), vec![0, 255, 16]);
        assert_eq!(from_hex("00FF10").unwrap(), vec![0, 255, 16]);
        assert_eq!(from_hex("0x").unwrap(), Vec::<u8>::new());
        assert_eq!(from_hex("0x0"), Err(HexError::OddLength));
        assert_eq!(from_hex("0xzz"), Err(HexError::InvalidChar('z')));
        assert_eq!(to_hex_prefixed(&[0xab, 0x01]), "0xab01");
        assert!("0x12".parse::<Address>().is_err());
    }

    #[test]
    fn quantities_follow_json_rpc() {
        assert_eq!(parse_quantity("0x0"), Ok(0));
        assert_eq!(parse_quantity("0x400"), Ok(1024));
        assert_eq!(parse_quantity("0x0400"), Err(HexError::LeadingZero));
        assert_eq!(parse_quantity("0x"), Err(HexError::Empty));
        assert_eq!(parse_quantity("400"), Err(HexError::MissingPrefix));
        assert_eq!(parse_quantity("0x1ffffffffffffffff"), Err(HexError::Overflow));
        assert_eq!(quantity(0), "0x0");
        assert_eq!(quantity(1024), "0x400");
    }

    #[test]
    fn keccak_of_empty() {
        assert_eq!(
            keccak256([]).to_string(),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    #[test]
    fn checksum_address() {
        let a: Address = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed".parse().unwrap();
        assert_eq!(a.to_checksum(), "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
    }

    #[test]
    fn u256_text() {
        let v = U256::parse("115792089237316195423570985008687907853269984665640564039457584007913129639935")
            .unwrap();
        assert_eq!(v, U256::MAX);
        assert_eq!(
            v.to_string(),
            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        );
        assert!(U256::parse(
            "115792089237316195423570985008687907853269984665640564039457584007913129639936"
        )
        .is_err());
        assert_eq!(U256::parse("0x0a").unwrap().to_u64(), Some(10));
        assert_eq!(U256::from_u64(0).to_quantity(), "0x0");
        assert_eq!(U256::from_u64(255).to_quantity(), "0xff");
        assert_eq!(U256::from_u64(7).checked_add(&U256::from_u64(5)), Some(U256::from_u64(12)));
        assert_eq!(U256::MAX.checked_add(&U256::from_u64(1)), None);
        let v: U256 = serde_json::from_str("\"0x1bc16d674ec80000\"").unwrap();
        assert_eq!(v.to_u64(), Some(2_000_000_000_000_000_000));
    }

    #[test]
    fn bloom_accrue_and_test() {
        let mut b = Bloom::ZERO;
        let a = [0x11u8; 20];
        assert!(!b.may_contain(&a));
        b.accrue(&a);
        assert!(b.may_contain(&a));
    }
}
