//! HTTP/1.1 JSON-RPC over loopback with Engine API authentication: every request carries
//! `Authorization: Bearer <JWT>`, an HS256 token signed with the shared secret whose `iat`
//! lies within 60 s of now (Engine API "Authentication"). One thread per connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// Largest request body accepted.
const MAX_BODY: usize = 32 << 20;
/// How far `iat` may be from now, in seconds.
const IAT_WINDOW: u64 = 60;

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            b'=' => continue,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Checks a bearer token against `secret` at unix time `now`.
pub fn check_jwt(token: &str, secret: &[u8; 32], now: u64) -> Result<(), String> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("malformed token".into());
    };
    let header: Value =
        serde_json::from_slice(&b64url_decode(h).ok_or("bad header encoding")?).map_err(|_| "bad header")?;
    if header["alg"] != "HS256" {
        return Err(format!("unsupported alg {}", header["alg"]));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|e| e.to_string())?;
    mac.update(format!("{h}.{p}").as_bytes());
    mac.verify_slice(&b64url_decode(sig).ok_or("bad signature encoding")?)
        .map_err(|_| "signature invalid")?;
    let claims: Value =
        serde_json::from_slice(&b64url_decode(p).ok_or("bad claims encoding")?).map_err(|_| "bad claims")?;
    let iat = claims["iat"].as_u64().ok_or("iat missing")?;
    if iat.abs_diff(now) > IAT_WINDOW {
        return Err(format!("stale token: iat {iat}, now {now}"));
    }
    Ok(())
}

/// Serves `listener` forever, answering each JSON-RPC request body with `handle`.
pub fn serve(
    listener: TcpListener,
    secret: [u8; 32],
    handle: impl Fn(&Value) -> Value + Send + Sync + 'static,
) {
    let handle = std::sync::Arc::new(handle);
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let handle = handle.clone();
        std::thread::spawn(move || {
            let _ = connection(conn, &secret, &*handle);
        });
    }
}

fn respond(w: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    w.flush()
}

fn connection(conn: TcpStream, secret: &[u8; 32], handle: &dyn Fn(&Value) -> Value) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let (mut len, mut auth, mut close) = (0usize, None, false);
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let Some((k, v)) = h.split_once(':') else { continue };
            let v = v.trim();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.parse().unwrap_or(0),
                "authorization" => auth = v.strip_prefix("Bearer ").map(str::to_string),
                "connection" => close = v.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        if len > MAX_BODY {
            return respond(&mut w, "413 Payload Too Large", "");
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if let Err(e) =
            auth.ok_or_else(|| "missing token".to_string()).and_then(|t| check_jwt(&t, secret, now))
        {
            respond(&mut w, "401 Unauthorized", &json!({"error": e}).to_string())?;
            continue;
        }
        let answer = match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Array(calls)) => Value::Array(calls.iter().map(handle).collect()),
            Ok(call) => handle(&call),
            Err(e) => {
                json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": e.to_string()}})
            }
        };
        respond(&mut w, "200 OK", &answer.to_string())?;
        if close {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64url(data: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }

    fn token(secret: &[u8; 32], iat: u64, alg: &str) -> String {
        let h = b64url(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
        let p = b64url(format!(r#"{{"iat":{iat}}}"#).as_bytes());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{h}.{p}").as_bytes());
        format!("{h}.{p}.{}", b64url(&mac.finalize().into_bytes()))
    }

    #[test]
    fn tokens_are_checked_for_signature_algorithm_and_age() {
        let secret = [7u8; 32];
        assert_eq!(check_jwt(&token(&secret, 1000, "HS256"), &secret, 1030), Ok(()));
        assert_eq!(check_jwt(&token(&secret, 1000, "HS256"), &secret, 970), Ok(()));
        assert!(check_jwt(&token(&secret, 1000, "HS256"), &secret, 1061).unwrap_err().contains("stale"));
        assert!(check_jwt(&token(&[8u8; 32], 1000, "HS256"), &secret, 1000)
            .unwrap_err()
            .contains("signature"));
        assert!(check_jwt(&token(&secret, 1000, "none"), &secret, 1000).unwrap_err().contains("alg"));
        assert!(check_jwt("a.b", &secret, 1000).is_err());
    }
}
