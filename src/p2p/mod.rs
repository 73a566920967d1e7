//! libp2p networking for unsafe-block gossip: the gossipsub router, the OP block topics and
//! their validator, and the `payload_by_number` responder. All sans-IO; the transport (streams,
//! sockets) feeds bytes in and writes the outputs.

pub mod blocks;
pub mod gossipsub;
pub mod reqresp;
