//! A rust-libp2p peer speaking OP Stack block gossip as op-node configures go-libp2p
//! (gossipsub D 8 / Dlo 6 / Dhi 12 / Dlazy 6, 500 ms heartbeat, history 12/3, StrictNoSign,
//! op-node's message id over topic and data, 10 MiB messages; secp256k1 identity, Noise,
//! yamux, identify, ping).
//!
//! usage: libp2p-peer --chain-id N [--listen MULTIADDR] [--dial MULTIADDR]... [--signer ADDRESS]
//!                    [--key HEX32]
//! stdout: one JSON object per line ({"event":"listening"|"connected"|"disconnected"|
//! "subscribed"|"received"|"published"|"publish_error"|"identify"|"ping", ...}).
//! stdin: `publish <topic> 0x<hex>`, `dial <multiaddr>`, `quit`.
//! With --signer, received blocks are validated by signature (independently of op-lite's code)
//! and the verdict is reported to gossipsub, so invalid blocks are not relayed.

use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{
    self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId, ValidationMode,
};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, identity, noise, ping, tcp, yamux, Multiaddr};
use serde_json::json;
use sha2::Digest as _;
use tokio::io::AsyncBufReadExt;

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

fn emit(v: serde_json::Value) {
    println!("{v}");
}

/// op-node's message id (`BuildMsgIdFn`): SHA-256 of a domain, the topic (length as u64
/// little-endian, then the bytes) and the snappy-decoded data, first 20 bytes.
fn message_id(topic: &str, data: &[u8]) -> MessageId {
    let mut h = sha2::Sha256::new();
    let decoded = snap::raw::Decoder::new().decompress_vec(data);
    h.update(if decoded.is_ok() { [1u8, 0, 0, 0] } else { [0u8, 0, 0, 0] });
    h.update((topic.len() as u64).to_le_bytes());
    h.update(topic.as_bytes());
    h.update(decoded.as_deref().unwrap_or(data));
    MessageId::from(h.finalize()[..20].to_vec())
}

/// Recovers the block signer: keccak256(32 zero bytes ‖ chain id ‖ keccak256(payload)),
/// over the bytes after the 65-byte signature.
fn signer(chain_id: u64, data: &[u8]) -> Option<[u8; 20]> {
    let plain = snap::raw::Decoder::new().decompress_vec(data).ok()?;
    if plain.len() < 66 {
        return None;
    }
    let (sig, payload) = plain.split_at(65);
    let mut msg = [0u8; 96];
    msg[56..64].copy_from_slice(&chain_id.to_be_bytes());
    msg[64..].copy_from_slice(&sha3::Keccak256::digest(payload));
    let hash = sha3::Keccak256::digest(msg);
    let recid = k256::ecdsa::RecoveryId::from_byte(sig[64])?;
    let sig = k256::ecdsa::Signature::from_slice(&sig[..64]).ok()?;
    let key = k256::ecdsa::VerifyingKey::recover_from_prehash(&hash, &sig, recid).ok()?;
    let point = key.to_encoded_point(false);
    let addr = sha3::Keccak256::digest(&point.as_bytes()[1..]);
    addr[12..].try_into().ok()
}

fn arg_values(args: &[String], name: &str) -> Vec<String> {
    args.windows(2).filter(|w| w[0] == name).map(|w| w[1].clone()).collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let chain_id: u64 = arg_values(&args, "--chain-id").first().ok_or("--chain-id is required")?.parse()?;
    let listen =
        arg_values(&args, "--listen").first().cloned().unwrap_or_else(|| "/ip4/127.0.0.1/tcp/0".into());
    let signer_addr: Option<[u8; 20]> = match arg_values(&args, "--signer").first() {
        Some(s) => Some(hex::decode(s.trim_start_matches("0x"))?.try_into().map_err(|_| "bad --signer")?),
        None => None,
    };
    let key = match arg_values(&args, "--key").first() {
        Some(k) => {
            let secret =
                identity::secp256k1::SecretKey::try_from_bytes(hex::decode(k.trim_start_matches("0x"))?)?;
            identity::Keypair::from(identity::secp256k1::Keypair::from(secret))
        }
        None => identity::Keypair::generate_secp256k1(),
    };

    let config = gossipsub::ConfigBuilder::default()
        .mesh_n(8)
        .mesh_n_low(6)
        .mesh_n_high(12)
        .gossip_lazy(6)
        .heartbeat_interval(Duration::from_millis(500))
        .history_length(12)
        .history_gossip(3)
        .validation_mode(ValidationMode::None)
        .validate_messages()
        .message_id_fn(|m: &gossipsub::Message| message_id(m.topic.as_str(), &m.data))
        .max_transmit_size(10 * 1024 * 1024)
        .build()?;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)?
        .with_behaviour(|key| {
            let gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config.clone())?;
            let identify = identify::Behaviour::new(identify::Config::new("".into(), key.public()));
            Ok(Behaviour { gossipsub, identify, ping: ping::Behaviour::default() })
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    for v in 0..4 {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&IdentTopic::new(format!("/optimism/{chain_id}/{v}/blocks")))?;
    }
    swarm.listen_on(listen.parse()?)?;
    for d in arg_values(&args, "--dial") {
        swarm.dial(d.parse::<Multiaddr>()?)?;
    }
    let me = *swarm.local_peer_id();
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = stdin.next_line() => {
                let Ok(Some(line)) = line else { break };
                let parts: Vec<&str> = line.split_whitespace().collect();
                match parts.as_slice() {
                    ["publish", topic, data] => {
                        let bytes = hex::decode(data.trim_start_matches("0x")).unwrap_or_default();
                        match swarm.behaviour_mut().gossipsub.publish(IdentTopic::new(*topic), bytes) {
                            Ok(id) => emit(json!({"event": "published", "topic": topic, "id": format!("0x{}", hex::encode(id.0))})),
                            Err(e) => emit(json!({"event": "publish_error", "error": e.to_string()})),
                        }
                    }
                    ["dial", addr] => match addr.parse::<Multiaddr>() {
                        Ok(a) => { let _ = swarm.dial(a); }
                        Err(e) => emit(json!({"event": "error", "error": e.to_string()})),
                    },
                    ["quit"] => break,
                    _ => emit(json!({"event": "error", "error": format!("unknown command {line:?}")})),
                }
            }
            ev = swarm.select_next_some() => match ev {
                SwarmEvent::NewListenAddr { address, .. } => {
                    emit(json!({"event": "listening", "addr": format!("{address}/p2p/{me}")}))
                }
                SwarmEvent::ConnectionEstablished { peer_id, .. } => emit(json!({"event": "connected", "peer": peer_id.to_string()})),
                SwarmEvent::ConnectionClosed { peer_id, .. } => emit(json!({"event": "disconnected", "peer": peer_id.to_string()})),
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic })) => {
                    emit(json!({"event": "subscribed", "peer": peer_id.to_string(), "topic": topic.to_string()}))
                }
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source, message_id, message })) => {
                    let valid = match signer_addr {
                        Some(want) => signer(chain_id, &message.data) == Some(want),
                        None => true,
                    };
                    let verdict = if valid { MessageAcceptance::Accept } else { MessageAcceptance::Reject };
                    swarm.behaviour_mut().gossipsub.report_message_validation_result(&message_id, &propagation_source, verdict);
                    emit(json!({
                        "event": "received",
                        "topic": message.topic.to_string(),
                        "data": format!("0x{}", hex::encode(&message.data)),
                        "from": propagation_source.to_string(),
                        "valid": valid,
                    }));
                }
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                    let protocols: Vec<String> = info.protocols.iter().map(|p| p.to_string()).collect();
                    emit(json!({"event": "identify", "peer": peer_id.to_string(), "agent": info.agent_version, "protocols": protocols}))
                }
                SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, result: Ok(rtt), .. })) => {
                    emit(json!({"event": "ping", "peer": peer.to_string(), "rtt_ms": rtt.as_millis() as u64}))
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => emit(json!({"event": "dial_error", "error": error.to_string()})),
                _ => {}
            }
        }
    }
    Ok(())
}
