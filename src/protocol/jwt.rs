//! Engine API authentication tokens (execution-apis `authentication.md`): HS256 JWTs with an
//! `iat` claim, HMAC-SHA256 and unpadded base64url. The secret file lives in `io::jwt`.

use sha2::{Digest, Sha256};

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Unpadded base64url.
pub fn base64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A signed token for this moment (`iat` = unix seconds).
pub fn token(secret: &[u8; 32], iat: u64) -> String {
    let header = base64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = base64url(format!(r#"{{"iat":{iat}}}"#).as_bytes());
    let signing_input = format!("{header}.{claims}");
    let sig = hmac_sha256(secret, signing_input.as_bytes());
    format!("{signing_input}.{}", base64url(&sig))
}

/// Checks a token as an engine does: signature, and `iat` within `leeway` seconds of `now`.
pub fn verify(secret: &[u8; 32], token: &str, now: u64, leeway: u64) -> Result<(), String> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("malformed token".into());
    };
    let want = base64url(&hmac_sha256(secret, format!("{h}.{c}").as_bytes()));
    if want != s {
        return Err("signature mismatch".into());
    }
    let claims = base64url_decode(c).ok_or("bad claims encoding")?;
    let v: serde_json::Value = serde_json::from_slice(&claims).map_err(|e| e.to_string())?;
    let iat = v.get("iat").and_then(|x| x.as_u64()).ok_or("missing iat")?;
    if iat.abs_diff(now) > leeway {
        return Err(format!("stale token: iat {iat}, now {now}"));
    }
    Ok(())
}

/// Unpadded base64url, as JWTs and node records use it (non-canonical trailing bits accepted).
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            crate::protocol::primitives::to_hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn base64url_round_trip() {
        for s in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar", &[0xfb, 0xff]] {
            assert_eq!(base64url_decode(&base64url(s)).unwrap(), s);
        }
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn tokens_verify_within_leeway() {
        let secret = [7u8; 32];
        let t = token(&secret, 1_000);
        assert!(verify(&secret, &t, 1_030, 60).is_ok());
        assert!(verify(&secret, &t, 1_100, 60).is_err());
        assert!(verify(&[8u8; 32], &t, 1_000, 60).is_err());
        assert!(verify(&secret, "a.b", 1_000, 60).is_err());
    }
}
