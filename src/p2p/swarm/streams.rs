//! The yamux streams of an open connection: our outbound `/meshsub` stream (opened once per
//! connection) and each inbound stream negotiated with multistream-select, then served by
//! protocol — gossipsub (`/meshsub/1.1.0`, `1.0.0`) into the router, identify answered with our
//! record, ping echoed, and `payload_by_number` answered "not found".

use super::conn::Conn;
use super::{Swarm, IDENTIFY, PING};
use crate::p2p::gossipsub::Protocol as MeshProtocol;
use crate::p2p::identity::PeerId;
use crate::p2p::multiaddr::Multiaddr;
use crate::p2p::multistream::Negotiation;
use crate::p2p::noise::NoiseSession;
use crate::p2p::reqresp::{self, NotFoundResponder};
use crate::p2p::yamux::{self, StreamEvent};
use crate::protocol::varint;
use crate::time::Now;

/// The identify record is small; a bigger message is refused.
const MAX_IDENTIFY: usize = 8 * 1024;

/// What a yamux stream of an open connection carries.
#[derive(Debug)]
pub(super) enum Sub {
    Negotiating {
        neg: Negotiation,
        ours: bool,
    },
    /// Our outbound `/meshsub` stream.
    MeshOut,
    /// The peer's `/meshsub` stream into the router.
    MeshIn,
    Identify {
        buf: Vec<u8>,
    },
    Ping,
    ReqResp(NotFoundResponder),
}

fn put_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    varint::put(out, field << 3 | 2);
    varint::put(out, b.len() as u64);
    out.extend_from_slice(b);
}

impl Swarm {
    /// Decrypted, demultiplexed data on an open connection.
    pub(super) fn open_data(
        &mut self,
        c: &mut Conn,
        s: &mut NoiseSession,
        mux: &mut yamux::Session,
        input: &[u8],
        now: Now,
    ) -> Result<(), String> {
        if !input.is_empty() {
            s.handle_input(input).map_err(|e| e.to_string())?;
        }
        let mut plain = Vec::new();
        if s.poll_plaintext(&mut plain) {
            mux.handle_input(&plain).map_err(|e| format!("yamux: {e}"))?;
        }
        let peer = c.peer.clone().ok_or("no peer after the handshake")?;
        if c.mesh_out.is_none() && !c.subs.values().any(|s| matches!(s, Sub::Negotiating { ours: true, .. }))
        {
            // Our gossipsub stream, opened once per connection.
            let id = mux.open_stream().map_err(|e| e.to_string())?;
            let protos: Vec<&str> = MeshProtocol::SUPPORTED.iter().map(|p| p.id()).collect();
            let mut neg = Negotiation::dialer(&protos);
            let mut b = Vec::new();
            neg.poll_transmit(&mut b);
            mux.write(id, &b).map_err(|e| e.to_string())?;
            c.subs.insert(id, Sub::Negotiating { neg, ours: true });
        }
        while let Some(ev) = mux.poll_event() {
            match ev {
                StreamEvent::Inbound(id) => {
                    let chain = reqresp::protocol_id(self.rollup.l2_chain_id);
                    let with_slash = format!("{chain}/");
                    let neg = Negotiation::listener(&[
                        MeshProtocol::V11.id(),
                        MeshProtocol::V10.id(),
                        IDENTIFY,
                        PING,
                        &chain,
                        &with_slash,
                    ]);
                    c.subs.insert(id, Sub::Negotiating { neg, ours: false });
                    self.stream_data(c, mux, id, &[], &peer, now)?;
                }
                StreamEvent::Data(id, d) => self.stream_data(c, mux, id, &d, &peer, now)?,
                StreamEvent::Closed(id) => match c.subs.get_mut(&id) {
                    Some(Sub::ReqResp(r)) => {
                        r.handle_eof();
                        self.stream_data(c, mux, id, &[], &peer, now)?;
                    }
                    Some(Sub::Identify { .. }) => {
                        c.subs.remove(&id);
                    }
                    _ => mux.close(id),
                },
                StreamEvent::Reset(id) => {
                    if let Some(Sub::MeshOut) = c.subs.remove(&id) {
                        c.mesh_out = None;
                    }
                }
            }
        }
        self.flush_router(c, mux, &peer);
        let mut plain = Vec::new();
        mux.poll_transmit(&mut plain);
        if !plain.is_empty() {
            s.send(&plain).map_err(|e| e.to_string())?;
        }
        s.poll_transmit(&mut c.out);
        Ok(())
    }

    fn stream_data(
        &mut self,
        c: &mut Conn,
        mux: &mut yamux::Session,
        id: u32,
        data: &[u8],
        peer: &PeerId,
        now: Now,
    ) -> Result<(), String> {
        let Some(sub) = c.subs.remove(&id) else { return Ok(()) };
        let mut data = data.to_vec();
        let sub = match sub {
            Sub::Negotiating { mut neg, ours } => {
                if neg.handle_input(&data).is_err() {
                    mux.reset(id);
                    return Ok(());
                }
                let mut b = Vec::new();
                neg.poll_transmit(&mut b);
                if !b.is_empty() {
                    mux.write(id, &b).map_err(|e| e.to_string())?;
                }
                let Some(proto) = neg.protocol().map(str::to_string) else {
                    c.subs.insert(id, Sub::Negotiating { neg, ours });
                    return Ok(());
                };
                data.clear();
                neg.poll_remaining(&mut data);
                if !c.protocols.contains(&proto) {
                    c.protocols.push(proto.clone());
                }
                match (ours, proto.as_str()) {
                    (true, p) => {
                        let Some(mp) = MeshProtocol::from_id(p) else {
                            mux.reset(id);
                            return Ok(());
                        };
                        c.mesh_out = Some((id, mp));
                        if self.router.add_peer(peer.clone(), c.outbound, c.remote.ip(), mp, now.mono).is_ok()
                        {
                            c.in_router = true;
                        } else {
                            return Err("gossipsub refused the peer (banned or duplicate)".into());
                        }
                        Sub::MeshOut
                    }
                    (false, IDENTIFY) => {
                        let mut msg = Vec::new();
                        let record = self.identify_record(c);
                        varint::put(&mut msg, record.len() as u64);
                        msg.extend(record);
                        mux.write(id, &msg).map_err(|e| e.to_string())?;
                        mux.close(id);
                        Sub::Identify { buf: Vec::new() }
                    }
                    (false, PING) => Sub::Ping,
                    (false, p) if MeshProtocol::from_id(p).is_some() => Sub::MeshIn,
                    (false, _) => Sub::ReqResp(NotFoundResponder::new(now.mono)),
                }
            }
            other => other,
        };
        let keep = match sub {
            Sub::MeshIn => {
                if !data.is_empty() {
                    self.router.handle_input(peer, &data, now.mono).map_err(|e| format!("gossipsub: {e}"))?;
                }
                Some(Sub::MeshIn)
            }
            Sub::Ping => {
                if !data.is_empty() {
                    mux.write(id, &data).map_err(|e| e.to_string())?;
                }
                Some(Sub::Ping)
            }
            Sub::ReqResp(mut r) => {
                r.handle_input(&data);
                let mut b = Vec::new();
                if r.poll_transmit(&mut b) {
                    mux.write(id, &b).map_err(|e| e.to_string())?;
                    mux.close(id);
                }
                (!r.is_done()).then_some(Sub::ReqResp(r))
            }
            Sub::Identify { mut buf } => {
                // A peer pushing identify to us: read and bound it, keep the agent.
                buf.extend_from_slice(&data);
                if buf.len() > MAX_IDENTIFY {
                    mux.reset(id);
                    None
                } else {
                    Some(Sub::Identify { buf })
                }
            }
            other => Some(other),
        };
        if let Some(k) = keep {
            c.subs.insert(id, k);
        }
        Ok(())
    }

    /// Our identify record (protobuf): public key, listen address, protocols, observed
    /// address, protocol and agent versions.
    fn identify_record(&self, c: &Conn) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, &self.key.public().to_protobuf());
        if let Some(l) = self.cfg.listen {
            put_bytes(&mut out, 2, &Multiaddr::new(l, None).to_bytes());
        }
        let chain = reqresp::protocol_id(self.rollup.l2_chain_id);
        for p in [MeshProtocol::V11.id(), MeshProtocol::V10.id(), IDENTIFY, PING, chain.as_str()] {
            put_bytes(&mut out, 3, p.as_bytes());
        }
        put_bytes(&mut out, 4, &Multiaddr::new(c.remote, None).to_bytes());
        put_bytes(&mut out, 5, b"");
        put_bytes(&mut out, 6, self.cfg.agent.as_bytes());
        out
    }

    fn flush_router(&mut self, c: &mut Conn, mux: &mut yamux::Session, peer: &PeerId) {
        let Some((id, _)) = c.mesh_out else { return };
        let mut buf = Vec::new();
        while self.router.poll_transmit(peer, &mut buf) {}
        if !buf.is_empty() && mux.write(id, &buf).is_err() {
            log::debug!("gossip stream to {peer} is full: dropping {} bytes", buf.len());
        }
    }
}
