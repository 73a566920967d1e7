# Builds the executing engine peer (tests/engine-peer, its own workspace) and exports
# OP_LITE_ENGINE_PEER for tests/peers/engine.rs. Its target directory lives in the cache
# (${OP_LITE_CACHE:-$HOME/.cache/op-lite}/engine-peer-target) when that can be made, so a new
# clone reuses the last build (cargo rebuilds what a changed Cargo.lock needs); otherwise in
# the clone. A cold build takes a few minutes on 2 cores (profile: opt-level 1, no LTO, 16
# codegen units). Sourced by .ci/run.
peer_target=""
peer_cache="${OP_LITE_CACHE:-$HOME/.cache/op-lite}"
if mkdir -p "$peer_cache/engine-peer-target" 2>/dev/null; then
  peer_target="$peer_cache/engine-peer-target"
fi
source "$(dirname "${BASH_SOURCE[0]}")/rust-peer.sh"
build_rust_peer engine-peer OP_LITE_ENGINE_PEER "$peer_target"
