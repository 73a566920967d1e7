//! Node records published by op-node (its default bootnodes, `DEFAULT_BOOTNODES`) and kona
//! (its bootnode list, crates/node/peers/src/bootnodes.rs, and a record in its tests with the
//! libp2p peer id kona derives from it): each decodes, its signature verifies, and its `opstack`
//! entry names the chain the operator runs it for.

use op_lite::config::networks::DEFAULT_BOOTNODES;
use op_lite::p2p::discovery::enr::Enr;

/// kona's OP Stack bootnodes of 2025 (ENR entries), with the chains their `opstack` entries
/// name: Base Goerli (84531) and OP Goerli (420) for the three kona still lists under "OP
/// Mainnet", Base mainnet (8453) for the rest.
const KONA: [(&str, u64); 7] = [
    ("enr:-J64QBbwPjPLZ6IOOToOLsSjtFUjjzN66qmBZdUexpO32Klrc458Q24kbty2PdRaLacHM5z-cZQr8mjeQu3pik6jPSOGAYYFIqBfgmlkgnY0gmlwhDaRWFWHb3BzdGFja4SzlAUAiXNlY3AyNTZrMaECmeSnJh7zjKrDSPoNMGXoopeDF4hhpj5I0OsQUUt4u8uDdGNwgiQGg3VkcIIkBg", 84531),
    ("enr:-J64QAlTCDa188Hl1OGv5_2Kj2nWCsvxMVc_rEnLtw7RPFbOfqUOV6khXT_PH6cC603I2ynY31rSQ8sI9gLeJbfFGaWGAYYFIrpdgmlkgnY0gmlwhANWgzCHb3BzdGFja4SzlAUAiXNlY3AyNTZrMaECkySjcg-2v0uWAsFsZZu43qNHppGr2D5F913Qqs5jDCGDdGNwgiQGg3VkcIIkBg", 84531),
    ("enr:-J24QGEzN4mJgLWNTUNwj7riVJ2ZjRLenOFccl2dbRFxHHOCCZx8SXWzgf-sLzrGs6QgqSFCvGXVgGPBkRkfOWlT1-iGAYe6Cu93gmlkgnY0gmlwhCJBEUSHb3BzdGFja4OkAwCJc2VjcDI1NmsxoQLuYIwaYOHg3CUQhCkS-RsSHmUd1b_x93-9yQ5ItS6udIN0Y3CCIyuDdWRwgiMr", 420),
    ("enr:-J24QNz9lbrKbN4iSmmjtnr7SjUMk4zB7f1krHZcTZx-JRKZd0kA2gjufUROD6T3sOWDVDnFJRvqBBo62zuF-hYCohOGAYiOoEyEgmlkgnY0gmlwhAPniryHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQKNVFlCxh_B-716tTs-h1vMzZkSs1FTu_OYTNjgufplG4N0Y3CCJAaDdWRwgiQG", 8453),
    ("enr:-J24QH-f1wt99sfpHy4c0QJM-NfmsIfmlLAMMcgZCUEgKG_BBYFc6FwYgaMJMQN5dsRBJApIok0jFn-9CS842lGpLmqGAYiOoDRAgmlkgnY0gmlwhLhIgb2Hb3BzdGFja4OFQgCJc2VjcDI1NmsxoQJ9FTIv8B9myn1MWaC_2lJ-sMoeCDkusCsk4BYHjjCq04N0Y3CCJAaDdWRwgiQG", 8453),
    ("enr:-J24QDXyyxvQYsd0yfsN0cRr1lZ1N11zGTplMNlW4xNEc7LkPXh0NAJ9iSOVdRO95GPYAIc6xmyoCCG6_0JxdL3a0zaGAYiOoAjFgmlkgnY0gmlwhAPckbGHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQJwoS7tzwxqXSyFL7g0JM-KWVbgvjfB8JA__T7yY_cYboN0Y3CCJAaDdWRwgiQG", 8453),
    ("enr:-J24QG3ypT4xSu0gjb5PABCmVxZqBjVw9ca7pvsI8jl4KATYAnxBmfkaIuEqy9sKvDHKuNCsy57WwK9wTt2aQgcaDDyGAYiOoGAXgmlkgnY0gmlwhDbGmZaHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQIeAK_--tcLEiu7HvoUlbV52MspE0uCocsx1f_rYvRenIN0Y3CCJAaDdWRwgiQG", 8453),
];

/// The record in kona's bootnode tests and the libp2p peer id kona derives from its key.
const KONA_PEER: (&str, &str) = (
    "enr:-Jy4QHRgJ9rnWbTs0oOfv8IHt77NDhHE3rwXf3fCh8RRN8sze4gyuQ2MkAapZwneDd_LH77TGCRS5N4wPGm-J5Hh-oCDAQKOgmlkgnY0gmlwhC36_pOHb3BzdGFja4Xkq4MBAIlzZWNwMjU2azGhAqUtGspoH5IzIIAwaqcipQFWripEU12KAiKFqRKDCZWxg3RjcIIjK4N1ZHCCIys",
    "16Uiu2HAm6YT98Hd3qAtop3TFM75uXvuyEhZYwPCfZ9mzRckmFkmW",
);

#[test]
fn op_node_default_bootnode_records_verify_and_name_base() {
    let enrs: Vec<&str> = DEFAULT_BOOTNODES.iter().copied().filter(|b| b.starts_with("enr:")).collect();
    assert_eq!(enrs.len(), 5);
    for text in enrs {
        let e = Enr::from_text(text).unwrap();
        assert!(e.signature_valid, "{text}");
        assert_eq!(e.opstack().unwrap().map(|o| (o.chain_id, o.version)), Some((8453, 0)), "{text}");
        assert_eq!((e.tcp(), e.udp()), (Some(9222), Some(9222)));
        assert_eq!(e.to_text(), text, "re-encodes to the same text");
    }
}

#[test]
fn kona_bootnode_records_verify_with_their_chains() {
    for (text, chain) in KONA {
        let e = Enr::from_text(text).unwrap();
        assert!(e.signature_valid, "{text}");
        assert_eq!(e.opstack().unwrap().map(|o| o.chain_id), Some(chain), "{text}");
        assert!(e.ip().is_some() && e.udp().is_some());
    }
    let (text, peer) = KONA_PEER;
    let e = Enr::from_text(text).unwrap();
    assert!(e.signature_valid);
    assert_eq!(e.peer_id().unwrap().to_string(), peer);
}
