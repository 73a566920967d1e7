//! op-node's `opp2p_*` methods (`op-service/apis/p2p.go` shapes), registered when P2P runs:
//! the node's own record, its peers, gossip statistics, and connecting, disconnecting,
//! blocking and unblocking peers.

use serde::Serialize;
use serde_json::Value;

use super::{GossipView, NodeApi};
use crate::p2p::identity::PeerId;
use crate::p2p::multiaddr::Multiaddr;
use crate::p2p::swarm::{PeerInfo, IDENTIFY, PING};
use crate::rpc::jsonrpc::{Dispatcher, DuplicateMethod, Params, RpcError};
use crate::time::Now;

/// Registers the `opp2p` namespace.
pub fn register<N: NodeApi>(d: &mut Dispatcher<N>) -> Result<(), DuplicateMethod> {
    d.register("opp2p_self", 0, self_info)?;
    d.register("opp2p_peers", 1, peers)?;
    d.register("opp2p_peerStats", 0, peer_stats)?;
    d.register("opp2p_connectPeer", 1, connect_peer)?;
    d.register("opp2p_disconnectPeer", 1, disconnect_peer)?;
    d.register("opp2p_blockPeer", 1, block_peer)?;
    d.register("opp2p_unblockPeer", 1, unblock_peer)?;
    d.register("opp2p_listBlockedPeers", 0, list_blocked)
}

fn part<N: NodeApi>(n: &mut N) -> Result<GossipView<'_>, RpcError> {
    n.gossip().ok_or_else(|| RpcError::server("p2p is disabled"))
}

/// libp2p's `Connectedness` and `Direction` are numbers on the wire.
const CONNECTED: u8 = 1;
const INBOUND: u8 = 1;
const OUTBOUND: u8 = 2;

#[derive(Serialize)]
struct GossipScores {
    total: f64,
}

#[derive(Serialize)]
struct Scores {
    gossip: GossipScores,
}

/// op-node `apis.PeerInfo`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    #[serde(rename = "peerID")]
    peer_id: String,
    #[serde(rename = "nodeID")]
    node_id: String,
    user_agent: String,
    protocol_version: String,
    #[serde(rename = "ENR")]
    enr: String,
    addresses: Vec<String>,
    protocols: Vec<String>,
    connectedness: u8,
    direction: u8,
    protected: bool,
    #[serde(rename = "chainID")]
    chain_id: u64,
    latency: u64,
    gossip_blocks: bool,
    scores: Scores,
}

fn info(chain_id: u64, p: &GossipView<'_>, peer: &PeerInfo) -> Info {
    Info {
        peer_id: peer.peer.to_string(),
        node_id: "0".repeat(64),
        user_agent: String::new(),
        protocol_version: String::new(),
        enr: String::new(),
        addresses: vec![Multiaddr::new(peer.addr, None).to_string()],
        protocols: peer.protocols.clone(),
        connectedness: CONNECTED,
        direction: if peer.outbound { OUTBOUND } else { INBOUND },
        protected: false,
        chain_id,
        latency: 0,
        gossip_blocks: peer.gossip.is_some(),
        scores: Scores { gossip: GossipScores { total: p.swarm.score(&peer.peer).unwrap_or(0.0) } },
    }
}

fn json<T: Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::server(e.to_string()))
}

fn self_info<N: NodeApi>(n: &mut N, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let chain = n.rollup_config().l2_chain_id;
    let p = part(n)?;
    let me = p.swarm.local_peer();
    let mut addresses: Vec<String> =
        p.listen.map(|a| Multiaddr::new(a, Some(me.clone())).to_string()).into_iter().collect();
    // op-node lists the discovery address beside the libp2p one.
    if let Some((_, udp)) = &p.discovery {
        let ip = match udp.ip() {
            std::net::IpAddr::V4(_) => "ip4",
            std::net::IpAddr::V6(_) => "ip6",
        };
        addresses.push(format!("/{ip}/{}/udp/{}", udp.ip(), udp.port()));
    }
    let (node_id, enr) = match &p.discovery {
        Some((e, _)) => (e.node_id.to_string().trim_start_matches("0x").to_string(), e.to_text()),
        None => ("0".repeat(64), String::new()),
    };
    let gossip: Vec<String> =
        crate::p2p::gossipsub::Protocol::SUPPORTED.iter().map(|p| p.id().to_string()).collect();
    json(Info {
        peer_id: me.to_string(),
        node_id,
        user_agent: format!("op-lite/{}", crate::version::VERSION_WITH_META),
        protocol_version: String::new(),
        enr,
        addresses,
        protocols: gossip
            .into_iter()
            .chain([IDENTIFY.into(), PING.into(), crate::p2p::reqresp::protocol_id(chain)])
            .collect(),
        connectedness: 0,
        direction: 0,
        protected: false,
        chain_id: chain,
        latency: 0,
        gossip_blocks: true,
        scores: Scores { gossip: GossipScores { total: 0.0 } },
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dump {
    total_connected: usize,
    peers: serde_json::Map<String, Value>,
    banned_peers: Vec<String>,
    #[serde(rename = "bannedIPS")]
    banned_ips: Vec<String>,
    banned_subnets: Vec<String>,
}

fn peers<N: NodeApi>(n: &mut N, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let _connected_only: bool = p.required(0)?;
    let chain = n.rollup_config().l2_chain_id;
    let part = part(n)?;
    let list = part.swarm.peers();
    let mut peers = serde_json::Map::new();
    for peer in &list {
        peers.insert(peer.peer.to_string(), json(info(chain, &part, peer))?);
    }
    json(Dump {
        total_connected: list.len(),
        peers,
        banned_peers: part.swarm.blocked().iter().map(PeerId::to_string).collect(),
        banned_ips: Vec::new(),
        banned_subnets: Vec::new(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    connected: usize,
    table: usize,
    blocks_topic: usize,
    blocks_topic_v2: usize,
    blocks_topic_v3: usize,
    blocks_topic_v4: usize,
    banned: usize,
    known: usize,
}

fn peer_stats<N: NodeApi>(n: &mut N, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let chain = n.rollup_config().l2_chain_id;
    let p = part(n)?;
    let topics = crate::p2p::blocks::block_topics(chain);
    let on = |i: usize| topics.get(i).map_or(0, |t| p.swarm.topic_peer_count(t));
    json(Stats {
        connected: p.swarm.peer_count(),
        table: 0,
        blocks_topic: on(0),
        blocks_topic_v2: on(1),
        blocks_topic_v3: on(2),
        blocks_topic_v4: on(3),
        banned: p.swarm.blocked().len(),
        known: p.swarm.peer_count(),
    })
}

fn peer_arg(p: &Params<'_>) -> Result<PeerId, RpcError> {
    let s: String = p.required(0)?;
    PeerId::parse(&s).map_err(|e| RpcError::invalid_params(format!("invalid peer ID: {e}")))
}

fn connect_peer<N: NodeApi>(n: &mut N, p: &Params<'_>, now: Now) -> Result<Value, RpcError> {
    let s: String = p.required(0)?;
    let addr =
        Multiaddr::parse(&s).map_err(|e| RpcError::server(format!("failed to parse multi addr: {e}")))?;
    if addr.peer.is_none() {
        return Err(RpcError::server("failed to parse multi addr: no /p2p/<peer id>"));
    }
    let part = part(n)?;
    part.swarm.dial(&addr, now).map_err(|e| RpcError::server(format!("failed to connect to peer: {e}")))?;
    Ok(Value::Null)
}

fn disconnect_peer<N: NodeApi>(n: &mut N, p: &Params<'_>, now: Now) -> Result<Value, RpcError> {
    let peer = peer_arg(p)?;
    let part = part(n)?;
    part.swarm.disconnect(&peer, now);
    Ok(Value::Null)
}

fn block_peer<N: NodeApi>(n: &mut N, p: &Params<'_>, now: Now) -> Result<Value, RpcError> {
    let peer = peer_arg(p)?;
    let part = part(n)?;
    part.swarm.block(peer, now);
    Ok(Value::Null)
}

fn unblock_peer<N: NodeApi>(n: &mut N, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let peer = peer_arg(p)?;
    part(n)?.swarm.unblock(&peer);
    Ok(Value::Null)
}

fn list_blocked<N: NodeApi>(n: &mut N, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
    let list: Vec<String> = part(n)?.swarm.blocked().iter().map(PeerId::to_string).collect();
    json(list)
}
