//! Regression tests: each is named after the defect it pins, and says how the defect showed.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use op_lite::config::networks::op_mainnet;
use op_lite::p2p::blocks::Signers;
use op_lite::p2p::identity::Keypair;
use op_lite::p2p::multiaddr::Multiaddr;
use op_lite::p2p::swarm::{ConnId, Swarm, SwarmConfig};
use op_lite::protocol::primitives::Address;
use op_lite::protocol::rollup::RollupConfig;
use op_lite::time::Now;

use crate::sim::derivation::Sim;

/// With the engine down, an idle pipeline reset the step backoff, so idle -> forkchoice retry
/// -> failure -> step ran again at once: a CPU spin on a board whose execution engine is down
/// (here the simulated node never settled at one instant). The backoff must hold while the
/// engine fails, and the node must recover when it is back.
#[test]
fn idle_pipeline_reset_the_step_backoff_while_the_engine_was_down() {
    // A short sequencing window: empty epochs expire, so there are blocks to derive.
    let mut sim = Sim::new(4);
    sim.engine_down = true;
    // Ten L1 blocks (120 s) arrive while every engine call fails.
    sim.l1_blocks(10);
    let calls = sim.engine_calls;
    assert!(calls > 0, "the node keeps retrying");
    assert!(calls <= 120, "{calls} engine calls in 120 s: retries without backoff");
    assert_eq!(sim.status().safe_l2.number, 0);
    sim.engine_down = false;
    sim.l1_blocks(2);
    assert!(sim.status().safe_l2.number > 0, "the node recovers once the engine is back");
}

/// A gossip node with op-node's default peer limits (`--p2p.peers.lo` 20, `.hi` 30).
fn gossip_node(seed: u8, static_peers: Vec<Multiaddr>, rollup: &Arc<RollupConfig>, now: Now) -> Swarm {
    let cfg = SwarmConfig {
        listen: None,
        static_peers,
        peers_lo: 20,
        peers_hi: 30,
        ban_peers: true,
        agent: "op-lite/regression".into(),
    };
    let key = Keypair::from_secret(&[seed; 32]).unwrap();
    let rng = op_lite::io::p2p::noise_rng();
    Swarm::new(key, cfg, rollup.clone(), Signers::only(Address::ZERO), None, seed.into(), rng, now).unwrap()
}

/// Moves one batch of bytes each way between `a`'s connection `ca` and `b`'s `cb`.
fn exchange(a: &mut Swarm, ca: ConnId, b: &mut Swarm, cb: ConnId, now: Now) {
    let mut buf = Vec::new();
    if a.poll_transmit(ca, &mut buf) {
        b.handle_input(cb, &buf, now);
        buf.clear();
    }
    if b.poll_transmit(cb, &mut buf) {
        a.handle_input(ca, &buf, now);
    }
}

/// Sockets that connected and never sent a byte counted against `--p2p.peers.hi` like peers:
/// about peers.hi of them, reconnecting whenever closed, made the swarm refuse every dial and
/// inbound connection, so a static peer's redial failed for the whole attack (it got back in
/// about 25 s after the attack stopped). Here 40 such sockets from 127.0.0.1 (peers.hi is 30)
/// reconnect as soon as they are closed or refused, for 30 s of virtual time: the static peer
/// must be admitted at once, reconnect within its 2 s redial after its connection drops, and
/// a new peer dialling in from 127.0.0.1 too must get through.
#[test]
fn unauthenticated_sockets_took_the_peer_slots_of_a_static_peer() {
    let t0 = Now::new(Instant::now(), 1_750_000_000_000);
    let rollup = Arc::new(op_mainnet().rollup);
    let mut st = gossip_node(2, Vec::new(), &rollup, t0);
    let st_addr = Multiaddr::new(SocketAddr::from(([10, 0, 0, 2], 9222)), Some(st.local_peer()));
    let mut node = gossip_node(1, vec![st_addr.clone()], &rollup, t0);
    let mut newcomer = gossip_node(3, Vec::new(), &rollup, t0);
    let localhost = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));

    let mut stalled = BTreeSet::new();
    let (mut port, mut accepted) = (1000u16, 0);
    // (node's connection, the other end's) for the static peer and the newcomer.
    let mut st_link: Option<(ConnId, ConnId)> = None;
    let mut new_link: Option<(ConnId, ConnId)> = None;
    let mut st_connected_at = Vec::new();
    let mut st_was_up = false;
    let tick = Duration::from_millis(10);
    for step in 0..3000u32 {
        let t = t0.advance(tick * step);
        while stalled.len() < 40 {
            port = port.wrapping_add(1);
            let Some(id) = node.handle_inbound(localhost(port), t) else { break };
            stalled.insert(id);
            accepted += 1;
        }
        node.handle_timeout(t);
        while let Some((cn, to)) = node.poll_dial() {
            assert_eq!(to, st_addr.addr, "only the static peer is dialled");
            let cs = st.handle_inbound(SocketAddr::from(([10, 0, 0, 1], 40_000)), t).unwrap();
            st_link = Some((cn, cs));
        }
        if step == 1000 {
            // The static peer's connection drops at 10 s.
            if let Some((cn, cs)) = st_link.take() {
                node.handle_closed(cn, t);
                st.handle_closed(cs, t);
            }
        }
        if step == 1500 {
            // A new peer dials in from 127.0.0.1 at 15 s.
            let to = Multiaddr::new(SocketAddr::from(([10, 0, 0, 1], 9222)), Some(node.local_peer()));
            let cw = newcomer.dial(&to, t).unwrap();
            while newcomer.poll_dial().is_some() {}
            new_link = node.handle_inbound(localhost(50_000), t).map(|cn| (cn, cw));
        }
        while let Some(id) = node.poll_close() {
            stalled.remove(&id);
            if let Some((_, cs)) = st_link.filter(|(cn, _)| *cn == id) {
                st.handle_closed(cs, t);
                st_link = None;
            }
            if let Some((_, cw)) = new_link.filter(|(cn, _)| *cn == id) {
                newcomer.handle_closed(cw, t);
                new_link = None;
            }
        }
        if let Some((cn, cs)) = st_link {
            exchange(&mut node, cn, &mut st, cs, t);
        }
        if let Some((cn, cw)) = new_link {
            exchange(&mut node, cn, &mut newcomer, cw, t);
        }
        let up = node.peers().iter().any(|p| p.peer == st.local_peer());
        if up && !st_was_up {
            st_connected_at.push(t.mono - t0.mono);
        }
        st_was_up = up;
    }
    let at = |i: usize| st_connected_at.get(i).copied();
    assert!(
        at(0).is_some_and(|d| d < Duration::from_millis(200)),
        "the static peer was not admitted at once while 40 stalled handshakes were pending: {st_connected_at:?}"
    );
    assert!(
        at(1).is_some_and(|d| d <= Duration::from_millis(12_200)),
        "the static peer did not reconnect within its 2 s redial after dropping at 10 s: {st_connected_at:?}"
    );
    assert_eq!(st_connected_at.len(), 2, "the static peer stayed connected");
    assert_eq!(newcomer.peer_count(), 1, "the new peer from 127.0.0.1 got through");
    assert_eq!(node.peer_count(), 2);
    assert!(accepted > 100, "the stalled sockets kept reconnecting ({accepted} accepted)");
}
