//! A discv5 peer on sigp's `discv5` crate (the implementation Lighthouse and reth run), for
//! op-lite's discovery interop tests.
//!
//! usage: discv5-peer [--udp PORT] [--key HEX32] [--opstack CHAIN_ID] [--tcp PORT]
//!                    [--bootnode ENR]...
//! Binds UDP on 127.0.0.1 (port 0: a free one), signs a record with ip, udp and optionally tcp
//! and op-node's `opstack` entry (an RLP byte string: uvarint(chain id) ++ uvarint(0)), adds
//! the bootnodes to its table and starts the service.
//! stdout: one JSON object per line: `listening` (enr, nodeId, udp) first, then `discovered`,
//! `session_established`, `node_inserted`, `unverifiable_enr`, `sessions_expired`,
//! `socket_updated`, `talk_request` as the service reports them, and one answer per command.
//! The crate reports no event for PING or FINDNODE requests it answers.
//! stdin: one JSON object per line:
//!   {"cmd":"ping","enr":E}                      -> {"event":"pong","nodeId":..,"ok":..,"enrSeq"|"error":..}
//!   {"cmd":"find_node","enr":E,"distances":[..]} -> {"event":"nodes","nodeId":..,"ok":..,"enrs":[..]}
//!   {"cmd":"lookup"}                            -> {"event":"lookup","ok":..,"enrs":[..]}
//!   {"cmd":"table"}                             -> {"event":"table","enrs":[..]}
//!   {"cmd":"add","enr":E}                       -> {"event":"added","ok":..}
//!   {"cmd":"quit"}
//! RUST_LOG (e.g. `discv5=debug`) turns on the crate's logs on stderr.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use discv5::enr::{CombinedKey, NodeId};
use discv5::{ConfigBuilder, Discv5, Enr, Event, ListenConfig};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

fn emit(v: Value) {
    println!("{v}");
}

fn arg_values(args: &[String], name: &str) -> Vec<String> {
    args.windows(2).filter(|w| w[0] == name).map(|w| w[1].clone()).collect()
}

fn node_id(id: &NodeId) -> String {
    format!("0x{}", hex::encode(id.raw()))
}

fn texts(enrs: &[Enr]) -> Vec<String> {
    enrs.iter().map(|e| e.to_base64()).collect()
}

/// Go's `binary.PutUvarint`.
fn uvarint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn parse_enr(cmd: &Value) -> Result<Enr, String> {
    let text = cmd["enr"].as_str().ok_or("missing \"enr\"")?;
    text.parse::<Enr>().map_err(|e| format!("bad enr: {e}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let args: Vec<String> = std::env::args().collect();
    let one = |name: &str| arg_values(&args, name).into_iter().next();
    let mut port: u16 = one("--udp").map(|p| p.parse()).transpose()?.unwrap_or(0);
    if port == 0 {
        // The crate cannot report the port it bound; a probe socket picks a free one.
        port = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
    }
    let key = match one("--key") {
        Some(k) => CombinedKey::secp256k1_from_bytes(&mut hex::decode(k.trim_start_matches("0x"))?)?,
        None => CombinedKey::generate_secp256k1(),
    };
    let mut builder = Enr::builder();
    builder.ip4(Ipv4Addr::LOCALHOST).udp4(port);
    if let Some(tcp) = one("--tcp") {
        builder.tcp4(tcp.parse()?);
    }
    if let Some(chain) = one("--opstack") {
        let mut v = Vec::new();
        uvarint(chain.parse()?, &mut v);
        uvarint(0, &mut v);
        builder.add_value("opstack", &alloy_rlp::Bytes::from(v));
    }
    let enr = builder.build(&key).map_err(|e| format!("record: {e:?}"))?;

    let config = ConfigBuilder::new(ListenConfig::from_ip(IpAddr::V4(Ipv4Addr::LOCALHOST), port)).build();
    let mut discv5 = Discv5::new(enr, key, config)?;
    for b in arg_values(&args, "--bootnode") {
        let enr: Enr = b.parse().map_err(|e| format!("bad --bootnode: {e}"))?;
        discv5.add_enr(enr)?;
    }
    discv5.start().await.map_err(|e| format!("start: {e:?}"))?;
    let local = discv5.local_enr();
    emit(json!({
        "event": "listening",
        "enr": local.to_base64(),
        "nodeId": node_id(&local.node_id()),
        "udp": port,
    }));
    let mut events = discv5.event_stream().await.map_err(|e| format!("events: {e:?}"))?;
    let discv5 = Arc::new(discv5);
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = stdin.next_line() => {
                let Ok(Some(line)) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let cmd: Value = match serde_json::from_str(&line) {
                    Ok(v) => v,
                    Err(e) => {
                        emit(json!({"event": "error", "error": format!("bad command {line:?}: {e}")}));
                        continue;
                    }
                };
                if cmd["cmd"] == "quit" {
                    break;
                }
                command(&discv5, cmd);
            }
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                match ev {
                    Event::Discovered(enr) => emit(json!({
                        "event": "discovered", "nodeId": node_id(&enr.node_id()), "enr": enr.to_base64(),
                    })),
                    Event::SessionEstablished(enr, addr) => emit(json!({
                        "event": "session_established", "nodeId": node_id(&enr.node_id()),
                        "enr": enr.to_base64(), "addr": addr.to_string(),
                    })),
                    Event::NodeInserted { node_id: id, replaced } => emit(json!({
                        "event": "node_inserted", "nodeId": node_id(&id),
                        "replaced": replaced.map(|r| node_id(&r)),
                    })),
                    Event::UnverifiableEnr { enr, socket, node_id: id } => emit(json!({
                        "event": "unverifiable_enr", "nodeId": node_id(&id), "enr": enr.to_base64(),
                        "addr": socket.to_string(),
                    })),
                    Event::SessionsExpired(addrs) => emit(json!({
                        "event": "sessions_expired",
                        "nodeIds": addrs.iter().map(|a| node_id(&a.node_id)).collect::<Vec<_>>(),
                    })),
                    Event::SocketUpdated(addr) => emit(json!({"event": "socket_updated", "addr": addr.to_string()})),
                    Event::TalkRequest(req) => {
                        emit(json!({
                            "event": "talk_request", "nodeId": node_id(req.node_id()),
                            "protocol": format!("0x{}", hex::encode(req.protocol())),
                            "body": format!("0x{}", hex::encode(req.body())),
                        }));
                        let _ = req.respond(Vec::new());
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Starts one command; its answer is printed when it completes, so commands overlap.
fn command(discv5: &Arc<Discv5>, cmd: Value) {
    let name = cmd["cmd"].as_str().unwrap_or_default().to_string();
    match name.as_str() {
        "ping" | "find_node" => {
            let enr = match parse_enr(&cmd) {
                Ok(e) => e,
                Err(e) => return emit(json!({"event": "error", "cmd": name, "error": e})),
            };
            let id = node_id(&enr.node_id());
            if name == "ping" {
                let fut = discv5.send_ping(enr);
                tokio::spawn(async move {
                    match fut.await {
                        Ok(p) => emit(json!({
                            "event": "pong", "nodeId": id, "ok": true, "enrSeq": p.enr_seq,
                            "ip": p.ip.to_string(), "port": p.port,
                        })),
                        Err(e) => emit(
                            json!({"event": "pong", "nodeId": id, "ok": false, "error": format!("{e:?}")}),
                        ),
                    }
                });
            } else {
                let distances: Vec<u64> = cmd["distances"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_else(|| vec![256]);
                let fut = discv5.find_node_designated_peer(enr, distances);
                tokio::spawn(async move {
                    match fut.await {
                        Ok(enrs) => {
                            emit(json!({"event": "nodes", "nodeId": id, "ok": true, "enrs": texts(&enrs)}))
                        }
                        Err(e) => emit(json!({
                            "event": "nodes", "nodeId": id, "ok": false, "enrs": [], "error": format!("{e:?}"),
                        })),
                    }
                });
            }
        }
        "lookup" => {
            let fut = discv5.find_node(NodeId::random());
            tokio::spawn(async move {
                match fut.await {
                    Ok(enrs) => emit(json!({"event": "lookup", "ok": true, "enrs": texts(&enrs)})),
                    Err(e) => {
                        emit(json!({"event": "lookup", "ok": false, "enrs": [], "error": format!("{e:?}")}))
                    }
                }
            });
        }
        "table" => emit(json!({"event": "table", "enrs": texts(&discv5.table_entries_enr())})),
        "add" => match parse_enr(&cmd) {
            Ok(enr) => match discv5.add_enr(enr) {
                Ok(()) => emit(json!({"event": "added", "ok": true})),
                Err(e) => emit(json!({"event": "added", "ok": false, "error": e})),
            },
            Err(e) => emit(json!({"event": "error", "cmd": name, "error": e})),
        },
        _ => emit(json!({"event": "error", "error": format!("unknown command {name:?}")})),
    }
}
