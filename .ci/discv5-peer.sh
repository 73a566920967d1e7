# Builds the sigp discv5 interop peer (tests/discv5-peer, its own workspace and target dir, so
# repeated runs reuse the build) and exports OP_LITE_DISCV5_PEER for tests/peers/discv5.rs.
# Sourced by .ci/run.
peer_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/discv5-peer"
if cargo build -q --release --locked --manifest-path "$peer_dir/Cargo.toml"; then
  export OP_LITE_DISCV5_PEER="$peer_dir/target/release/discv5-peer"
  echo "discv5 peer: $OP_LITE_DISCV5_PEER"
else
  echo "discv5 peer: build failed"
  return 1
fi
