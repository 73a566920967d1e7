//! The multiaddrs op-lite dials and announces: `/ip4/<a>/tcp/<port>[/p2p/<peer id>]` and the
//! `/ip6` form, in text (flags, logs, RPC) and in the binary form identify carries.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::identity::PeerId;

const CODE_IP4: u8 = 0x04;
const CODE_TCP: u8 = 0x06;
const CODE_IP6: u8 = 0x29;
/// `p2p` is 421: varint 0xa5 0x03.
const CODE_P2P: [u8; 2] = [0xa5, 0x03];

/// A TCP address with an optional peer id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Multiaddr {
    pub addr: SocketAddr,
    pub peer: Option<PeerId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiaddrError(pub String);

impl fmt::Display for MultiaddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad multiaddr: {}", self.0)
    }
}

impl std::error::Error for MultiaddrError {}

impl Multiaddr {
    pub fn new(addr: SocketAddr, peer: Option<PeerId>) -> Multiaddr {
        Multiaddr { addr, peer }
    }

    /// Parses `/ip4|ip6/<ip>/tcp/<port>[/p2p/<id>]` (`/ipfs/` is the old name of `/p2p/`).
    pub fn parse(s: &str) -> Result<Multiaddr, MultiaddrError> {
        let bad = |why: &str| MultiaddrError(format!("{s:?}: {why}"));
        let parts: Vec<&str> = s.trim().split('/').collect();
        let (ip, port, rest) = match parts.as_slice() {
            ["", "ip4" | "ip6", ip, "tcp", port, rest @ ..] => (ip, port, rest),
            _ => return Err(bad("expected /ip4|ip6/<address>/tcp/<port>[/p2p/<peer id>]")),
        };
        let ip: IpAddr = ip.parse().map_err(|_| bad("bad IP address"))?;
        if (parts[1] == "ip4") != ip.is_ipv4() {
            return Err(bad("address family does not match"));
        }
        let port: u16 = port.parse().map_err(|_| bad("bad TCP port"))?;
        let peer = match rest {
            [] | [""] => None,
            ["p2p" | "ipfs", id] => Some(PeerId::parse(id).map_err(|e| bad(&e.to_string()))?),
            _ => return Err(bad("only /p2p/<peer id> may follow the TCP port")),
        };
        Ok(Multiaddr { addr: SocketAddr::new(ip, port), peer })
    }

    /// The binary multiaddr (identify's listen and observed addresses).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self.addr.ip() {
            IpAddr::V4(ip) => {
                out.push(CODE_IP4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(CODE_IP6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.push(CODE_TCP);
        out.extend_from_slice(&self.addr.port().to_be_bytes());
        if let Some(p) = &self.peer {
            out.extend_from_slice(&CODE_P2P);
            out.push(p.as_bytes().len() as u8);
            out.extend_from_slice(p.as_bytes());
        }
        out
    }
}

impl fmt::Display for Multiaddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fam = if self.addr.is_ipv4() { "ip4" } else { "ip6" };
        write!(f, "/{fam}/{}/tcp/{}", self.addr.ip(), self.addr.port())?;
        if let Some(p) = &self.peer {
            write!(f, "/p2p/{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p2p::identity::Keypair;

    #[test]
    fn text_and_binary_forms() {
        let id = Keypair::from_secret(&[4; 32]).unwrap().peer_id();
        let text = format!("/ip4/10.0.0.1/tcp/9222/p2p/{id}");
        let m = Multiaddr::parse(&text).unwrap();
        assert_eq!(m.to_string(), text);
        assert_eq!(m.addr, "10.0.0.1:9222".parse().unwrap());
        let b = m.to_bytes();
        assert_eq!(&b[..8], &[0x04, 10, 0, 0, 1, 0x06, 0x24, 0x06]);
        assert_eq!(&b[8..10], &[0xa5, 0x03]);
        assert_eq!(Multiaddr::parse("/ip6/::1/tcp/1").unwrap().to_bytes()[0], 0x29);
        assert_eq!(Multiaddr::parse(&format!("/ip4/1.2.3.4/tcp/5/ipfs/{id}")).unwrap().peer, Some(id));
        for bad in [
            "",
            "/ip4/1.2.3.4",
            "/ip4/::1/tcp/1",
            "/ip4/1.2.3.4/tcp/99999",
            "/dns4/x/tcp/1",
            "/ip4/1.2.3.4/tcp/1/p2p/xyz",
            "/ip4/1.2.3.4/udp/1",
        ] {
            assert!(Multiaddr::parse(bad).is_err(), "{bad}");
        }
    }
}
