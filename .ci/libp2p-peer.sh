# Builds the rust-libp2p interop peer (tests/libp2p-peer, its own workspace and target dir, so
# repeated runs reuse the build) and exports OP_LITE_LIBP2P_PEER for tests/peers/libp2p.rs.
# Sourced by .ci/run.
peer_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/libp2p-peer"
if cargo build -q --release --locked --manifest-path "$peer_dir/Cargo.toml"; then
  export OP_LITE_LIBP2P_PEER="$peer_dir/target/release/libp2p-peer"
  echo "libp2p peer: $OP_LITE_LIBP2P_PEER"
else
  echo "libp2p peer: build failed"
  return 1
fi
