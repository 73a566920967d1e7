# Builds the sigp discv5 interop peer (tests/discv5-peer) and exports OP_LITE_DISCV5_PEER for
# tests/peers/discv5.rs. Sourced by .ci/run.
source "$(dirname "${BASH_SOURCE[0]}")/rust-peer.sh"
build_rust_peer discv5-peer OP_LITE_DISCV5_PEER
