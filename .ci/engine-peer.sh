# Builds the executing engine peer (tests/engine-peer, its own workspace) and exports
# OP_LITE_ENGINE_PEER for tests/peers/engine.rs. Its target directory lives in the cache
# (${OP_LITE_CACHE:-$HOME/.cache/op-lite}/engine-peer-target) when that can be made, so a new
# clone reuses the last build (cargo rebuilds what a changed Cargo.lock needs); otherwise in
# the clone. A cold build takes a few minutes on 2 cores (profile: opt-level 1, no LTO, 16
# codegen units). Sourced by .ci/run.
peer_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/engine-peer"
peer_target="$peer_dir/target"
peer_cache="${OP_LITE_CACHE:-$HOME/.cache/op-lite}"
if mkdir -p "$peer_cache/engine-peer-target" 2>/dev/null; then
  peer_target="$peer_cache/engine-peer-target"
fi
peer_start=$SECONDS
if CARGO_TARGET_DIR="$peer_target" cargo build -q --release --locked --manifest-path "$peer_dir/Cargo.toml"; then
  export OP_LITE_ENGINE_PEER="$peer_target/release/engine-peer"
  echo "engine peer: $OP_LITE_ENGINE_PEER (built in $((SECONDS - peer_start)) s)"
else
  echo "engine peer: build failed"
  return 1
fi
