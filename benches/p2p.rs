//! The gossip transport in process: time for a full libp2p connection setup between two swarms
//! (multistream-select, the Noise XX handshake with identity signatures, yamux, the gossipsub
//! stream negotiation and subscription exchange), and the heap each connected peer costs a node
//! (a counting allocator around 32 peers connecting to one swarm).
//!
//! `cargo bench --bench p2p`; `cargo test --benches` runs a few iterations.

#![allow(clippy::disallowed_methods)]

// Each bench uses part of what the benches share.
#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use op_lite::p2p::blocks::Signers;
use op_lite::p2p::identity::Keypair;
use op_lite::p2p::multiaddr::Multiaddr;
use op_lite::p2p::swarm::{ConnId, Swarm, SwarmConfig};
use op_lite::protocol::primitives::Address;
use op_lite::protocol::rollup::RollupConfig;
use op_lite::time::Now;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

fn swarm(seed: u32, cfg: &Arc<RollupConfig>, now: Now) -> Swarm {
    let mut secret = [1u8; 32];
    secret[..4].copy_from_slice(&seed.to_be_bytes());
    let c = SwarmConfig {
        listen: None,
        static_peers: Vec::new(),
        peers_lo: 1,
        peers_hi: 64,
        ban_peers: true,
        agent: "op-lite/bench".into(),
    };
    Swarm::new(
        Keypair::from_secret(&secret).unwrap(),
        c,
        cfg.clone(),
        Signers::only(Address::ZERO),
        None,
        seed as u64,
        op_lite::io::p2p::noise_rng(),
        now,
    )
    .unwrap()
}

/// Moves bytes between the two ends until both are quiet.
fn pump(a: &mut Swarm, ca: ConnId, b: &mut Swarm, cb: ConnId, now: Now) {
    let mut buf = Vec::new();
    loop {
        let mut moved = false;
        if a.poll_transmit(ca, &mut buf) {
            b.handle_input(cb, &buf, now);
            buf.clear();
            moved = true;
        }
        if b.poll_transmit(cb, &mut buf) {
            a.handle_input(ca, &buf, now);
            buf.clear();
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

fn connect(a: &mut Swarm, b: &mut Swarm, i: u16, now: Now) {
    let addr = Multiaddr::new(std::net::SocketAddr::from(([10, 0, 0, 2], 9222)), Some(b.local_peer()));
    let ca = a.dial(&addr, now).unwrap();
    while a.poll_dial().is_some() {}
    let cb =
        b.handle_inbound(std::net::SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 4000)), now).unwrap();
    pump(a, ca, b, cb, now);
    assert!(a.peers().iter().any(|p| p.peer == b.local_peer()), "connected");
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let cfg = Arc::new(op_lite::config::networks::op_mainnet().rollup);
    let now = Now::new(Instant::now(), 1_750_000_000_000);

    let rounds = if full { 200 } else { 3 };
    let mut total = Duration::ZERO;
    for i in 0..rounds {
        let mut a = swarm(2 * i + 1, &cfg, now);
        let mut b = swarm(2 * i + 2, &cfg, now);
        let t = Instant::now();
        connect(&mut a, &mut b, 1, now);
        total += t.elapsed();
    }
    println!(
        "connection setup (multistream, Noise XX + identity signatures, yamux, gossipsub streams): {:.2} ms per handshake, both sides, one core",
        total.as_secs_f64() * 1e3 / rounds as f64
    );

    let peers = if full { 32 } else { 4 };
    let mut hub = swarm(1000, &cfg, now);
    let before = common::heap_now();
    let mut others: Vec<Swarm> = (0..peers).map(|i| swarm(2000 + i, &cfg, now)).collect();
    for (i, o) in others.iter_mut().enumerate() {
        connect(o, &mut hub, i as u16, now);
    }
    // The dialling swarms are freed entirely; what remains is the hub's growth.
    drop(others);
    let per_peer = common::heap_now().saturating_sub(before) / peers as usize;
    println!("heap per connected peer at a node: {:.1} KB ({peers} peers)", per_peer as f64 / 1024.0);
    println!("connected peers at the hub: {}", hub.peer_count());
}
