# build_rust_peer NAME VAR [TARGET_DIR]: builds the interop peer tests/NAME (its own workspace,
# release, --locked) into TARGET_DIR (default: the workspace's own target dir, so repeated runs
# reuse the build) and exports VAR as its binary. Sourced by the .ci/*-peer.sh scripts.
build_rust_peer() {
  local dir target start=$SECONDS
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/$1"
  target="${3:-$dir/target}"
  if CARGO_TARGET_DIR="$target" cargo build -q --release --locked --manifest-path "$dir/Cargo.toml"; then
    export "$2=$target/release/$1"
    echo "$1: ${!2} (built in $((SECONDS - start)) s)"
  else
    echo "$1: build failed"
    return 1
  fi
}
