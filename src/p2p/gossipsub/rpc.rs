//! The gossipsub RPC on the wire: varint-length-prefixed `RPC` protobufs. Inbound, a peer's
//! stream is reassembled into frames, each checked against the schema and handed to the
//! router's handlers (subscriptions, messages, control); outbound, a message frame and a
//! control frame (subscriptions, IHAVE, IWANT, GRAFT, PRUNE) are encoded.

use std::fmt;
use std::time::Instant;

use super::pb;
use super::{MsgId, Protocol, Router, RouterError};

#[derive(Default)]
pub(super) struct Control {
    pub(super) subs: Vec<(bool, usize)>,
    pub(super) graft: Vec<usize>,
    pub(super) prune: Vec<(usize, u64)>,
    pub(super) ihave: Vec<(usize, Vec<MsgId>)>,
    pub(super) iwant: Vec<MsgId>,
}

impl Control {
    pub(super) fn is_empty(&self) -> bool {
        self.subs.is_empty()
            && self.graft.is_empty()
            && self.prune.is_empty()
            && self.ihave.is_empty()
            && self.iwant.is_empty()
    }
}

impl<P: Clone + Ord + fmt::Debug> Router<P> {
    pub(super) fn read_frames(&mut self, idx: u64, data: &[u8], now: Instant) -> Result<(), RouterError> {
        let Some(peer) = self.peers.get_mut(&idx) else { return Ok(()) };
        let mut buf = std::mem::take(&mut peer.inbuf);
        self.buffered -= buf.len();
        let from_buf = !buf.is_empty();
        if from_buf {
            buf.extend_from_slice(data);
        }
        let input: &[u8] = if from_buf { &buf } else { data };
        let mut pos = 0;
        while let Some((head, len)) = split_frame(&input[pos..], self.cfg.max_transmit_size)? {
            let body = &input[pos + head..pos + head + len];
            pos += head + len;
            self.handle_rpc(idx, body, now)?;
            if !self.peers.contains_key(&idx) {
                return Ok(());
            }
        }
        let rest = input.len() - pos;
        if self.buffered + rest > self.cfg.max_buffered {
            return Err(RouterError::BufferLimit { max: self.cfg.max_buffered });
        }
        let keep = if from_buf {
            buf.drain(..pos);
            buf
        } else {
            data[pos..].to_vec()
        };
        self.buffered += keep.len();
        if let Some(peer) = self.peers.get_mut(&idx) {
            peer.inbuf = keep;
        }
        Ok(())
    }

    fn handle_rpc(&mut self, idx: u64, rpc: &[u8], now: Instant) -> Result<(), RouterError> {
        pb::check(rpc, &pb::RPC)?;
        self.stats.rpcs += 1;
        let Some(peer) = self.peers.get(&idx) else { return Ok(()) };
        if self.score_of(peer) < self.cfg.score.graylist_threshold {
            self.stats.graylisted_rpcs += 1;
            return Ok(());
        }
        for sub in pb::bytes(rpc, 1) {
            let subscribe = pb::last_varint(sub, 1).unwrap_or(0) != 0;
            let Some(t) = pb::last_bytes(sub, 2).and_then(|n| self.topic_index(n)) else { continue };
            self.on_peer_subscription(idx, t, subscribe);
        }
        for (n, msg) in pb::bytes(rpc, 2).enumerate() {
            if n >= self.cfg.max_messages_per_rpc {
                self.stats.throttled += 1;
                continue;
            }
            self.on_message(idx, msg, now);
            if !self.peers.contains_key(&idx) {
                return Ok(());
            }
        }
        let controls: Vec<&[u8]> = pb::bytes(rpc, 3).collect();
        let each = |field| controls.iter().copied().flat_map(move |c| pb::bytes(c, field));
        self.on_ihave(idx, each(1), now);
        for iwant in each(2) {
            self.on_iwant(idx, iwant);
        }
        for graft in each(3) {
            self.on_graft(idx, graft, now);
            if !self.peers.contains_key(&idx) {
                return Ok(());
            }
        }
        for prune in each(4) {
            self.on_prune(idx, prune, now);
        }
        Ok(())
    }
}

/// Splits the length prefix off `buf`: `(prefix length, body length)`, or None if incomplete.
pub(super) fn split_frame(buf: &[u8], max: usize) -> Result<Option<(usize, usize)>, RouterError> {
    let mut pos = 0;
    let len = match pb::read_varint(buf, &mut pos) {
        Ok(len) => len,
        Err(RouterError::Truncated) => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = match usize::try_from(len) {
        Ok(n) if n <= max => n,
        _ => return Err(RouterError::FrameTooLarge { len, max }),
    };
    Ok((buf.len() - pos >= len).then_some((pos, len)))
}

/// Frame length of an RPC carrying one message (`data`, `topic`) and nothing else.
pub(super) fn message_frame_len(topic_len: usize, data_len: usize) -> usize {
    let msg = pb::field_len(data_len) + pb::field_len(topic_len);
    let rpc = pb::field_len(msg);
    pb::varint_len(rpc as u64) + rpc
}

pub(super) fn encode_message_frame(topic: &str, data: &[u8], out: &mut Vec<u8>) {
    let msg = pb::field_len(data.len()) + pb::field_len(topic.len());
    pb::put_varint(out, pb::field_len(msg) as u64);
    pb::put_key(out, 2, pb::LEN);
    pb::put_varint(out, msg as u64);
    pb::put_bytes(out, 2, data);
    pb::put_bytes(out, 4, topic.as_bytes());
}

pub(super) fn encode_control_frame(topics: &[String], c: &Control, protocol: Protocol) -> Vec<u8> {
    let topic = |t: usize| topics[t].as_bytes();
    let mut rpc = Vec::new();
    for (subscribe, t) in &c.subs {
        pb::put_message(&mut rpc, 1, |m| {
            pb::put_varint_field(m, 1, u64::from(*subscribe));
            pb::put_bytes(m, 2, topic(*t));
        });
    }
    let has_control = !(c.ihave.is_empty() && c.iwant.is_empty() && c.graft.is_empty() && c.prune.is_empty());
    if has_control {
        pb::put_message(&mut rpc, 3, |ctl| {
            for (t, ids) in &c.ihave {
                pb::put_message(ctl, 1, |m| {
                    pb::put_bytes(m, 1, topic(*t));
                    ids.iter().for_each(|id| pb::put_bytes(m, 2, id));
                });
            }
            if !c.iwant.is_empty() {
                pb::put_message(ctl, 2, |m| c.iwant.iter().for_each(|id| pb::put_bytes(m, 1, id)));
            }
            for t in &c.graft {
                pb::put_message(ctl, 3, |m| pb::put_bytes(m, 1, topic(*t)));
            }
            for (t, backoff) in &c.prune {
                pb::put_message(ctl, 4, |m| {
                    pb::put_bytes(m, 1, topic(*t));
                    if protocol == Protocol::V11 {
                        pb::put_varint_field(m, 3, *backoff);
                    }
                });
            }
        });
    }
    let mut frame = Vec::with_capacity(rpc.len() + 5);
    pb::put_varint(&mut frame, rpc.len() as u64);
    frame.extend_from_slice(&rpc);
    frame
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::super::*;
    use super::*;
    use crate::rng::Rng;
    use crate::time::test_now;

    #[test]
    fn frames_split_anywhere_give_the_same_result() {
        let s = stream();
        let run = |cut: usize, cut2: usize| {
            let t0 = test_now().mono;
            let mut r = router(cfg(), t0);
            r.subscribe(TOPIC, t0).unwrap();
            r.add_peer(1, true, ip(1), Protocol::V11, t0).unwrap();
            r.handle_input(&1, &s[..cut], t0).unwrap();
            r.handle_input(&1, &s[cut..cut2], t0).unwrap();
            r.handle_input(&1, &s[cut2..], t0).unwrap();
            assert_eq!(r.buffered, 0);
            let got: Vec<Vec<u8>> = received(&mut r).iter().map(|m| m.data.to_vec()).collect();
            (got, sent(&mut r, 1).iwant, r.mesh_peers(TOPIC), r.stats().rpcs)
        };
        let whole = run(s.len(), s.len());
        assert_eq!(whole.0, [b"one".to_vec(), vec![7; 300]]);
        assert_eq!((whole.1.len(), whole.2.as_slice(), whole.3), (2, &[1][..], 3));
        for cut in 0..=s.len() {
            assert_eq!(run(cut, cut), whole, "cut at {cut}");
            assert_eq!(run(cut / 2, cut), whole, "cuts at {} and {cut}", cut / 2);
        }
    }

    #[test]
    fn malformed_frames_drop_the_peer() {
        let t0 = test_now().mono;
        let cases: Vec<(Vec<u8>, RouterError)> = vec![
            (vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80], RouterError::BadVarint),
            (vec![0x81, 0x80, 0x80, 0x05], RouterError::FrameTooLarge { len: (5 << 21) + 1, max: 10 << 20 }),
            (vec![2, 0x08, 0x01], RouterError::WrongWireType { field: 1, wire: 0 }),
            (vec![2, 0x0a, 0x05], RouterError::Truncated),
            (vec![2, 0x0b, 0x00], RouterError::WrongWireType { field: 1, wire: 3 }),
            (vec![2, 0x02, 0x00], RouterError::FieldZero),
            (
                frame(|rpc| pb::put_message(rpc, 2, |m| pb::put_bytes(m, 2, b"no topic"))),
                RouterError::MissingField { field: 4 },
            ),
            (
                frame(|rpc| ctl(rpc, |c| pb::put_varint_field(c, 4, 1))),
                RouterError::WrongWireType { field: 4, wire: 0 },
            ),
        ];
        for (bytes, want) in cases {
            let mut r = router(cfg(), t0);
            r.add_peer(1, true, ip(1), Protocol::V11, t0).unwrap();
            assert_eq!(r.handle_input(&1, &bytes, t0), Err(want.clone()));
            assert_eq!(disconnects(&mut r), [(1, Disconnect::Malformed(want))]);
            assert_eq!((r.score(&1), r.handle_input(&1, &[0], t0)), (None, Err(RouterError::UnknownPeer)));
            // Reconnecting carries the penalty.
            r.add_peer(1, true, ip(1), Protocol::V11, t0).unwrap();
            assert_eq!(r.score(&1), Some(-10.0));
        }
        // Unknown fields and fixed-width values are skipped, as protobuf requires.
        let mut r = router(cfg(), t0);
        r.add_peer(1, true, ip(1), Protocol::V11, t0).unwrap();
        let f = frame(|rpc| {
            pb::put_bytes(rpc, 10, b"partial");
            pb::put_key(rpc, 11, 1);
            rpc.extend_from_slice(&[0; 8]);
            pb::put_key(rpc, 12, 5);
            rpc.extend_from_slice(&[0; 4]);
        });
        assert_eq!(r.handle_input(&1, &f, t0), Ok(()));
    }

    #[test]
    fn random_and_mutated_input_never_panics_and_stays_bounded() {
        let t0 = test_now().mono;
        let mut rng = Rng::new(0x9055);
        let base = stream();
        let mut small = cfg();
        small.max_buffered = 1 << 16;
        let mut r = router(small, t0);
        r.subscribe(TOPIC, t0).unwrap();
        let mut errors = 0;
        for i in 0..4000u32 {
            let peer = i % 8;
            if r.score(&peer).is_none() {
                let _ = r.add_peer(peer, i % 2 == 0, ip(peer), Protocol::V11, t0);
            }
            let mut buf = if i % 3 == 0 {
                let mut b = vec![0u8; rng.below(400) as usize];
                rng.fill(&mut b);
                b
            } else {
                base.clone()
            };
            for _ in 0..=rng.below(4) {
                if !buf.is_empty() {
                    let at = rng.below(buf.len() as u64) as usize;
                    buf[at] = rng.next_u64() as u8;
                }
            }
            buf.truncate(rng.below(buf.len() as u64 + 1) as usize);
            if r.handle_input(&peer, &buf, t0).is_err() {
                errors += 1;
                assert!(r.score(&peer).is_none(), "a failing peer is dropped");
            }
            while let Some(m) = r.poll_received() {
                r.report_validation(&m.id, Acceptance::Ignore, t0);
            }
            discard_outbound(&mut r);
            disconnects(&mut r);
            assert!(r.buffered <= 1 << 16);
            assert!(r.pending.len() <= 256 && r.seen.map.len() <= 4096);
        }
        assert!(errors > 100);
        // A frame header announcing 10 MiB is buffered up to the global limit, then refused.
        let mut r = router(Config { max_buffered: 1 << 20, ..cfg() }, t0);
        r.add_peer(1, true, ip(1), Protocol::V11, t0).unwrap();
        let mut hdr = Vec::new();
        pb::put_varint(&mut hdr, 10 << 20);
        r.handle_input(&1, &hdr, t0).unwrap();
        let chunk = vec![0u8; 64 << 10];
        let mut result = Ok(());
        for _ in 0..20 {
            result = r.handle_input(&1, &chunk, t0);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(RouterError::BufferLimit { max: 1 << 20 }));
        assert_eq!(r.buffered, 0);
    }

    #[test]
    fn message_frame_len_matches_the_encoding() {
        assert_eq!(message_frame_len(TOPIC.len(), 1000), {
            let mut f = Vec::new();
            encode_message_frame(TOPIC, &[0; 1000], &mut f);
            f.len()
        });
    }
}
