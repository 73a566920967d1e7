# Builds the rust-libp2p interop peer (tests/libp2p-peer) and exports OP_LITE_LIBP2P_PEER for
# tests/peers/libp2p.rs. Sourced by .ci/run.
source "$(dirname "${BASH_SOURCE[0]}")/rust-peer.sh"
build_rust_peer libp2p-peer OP_LITE_LIBP2P_PEER
