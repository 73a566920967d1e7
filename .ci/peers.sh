#!/usr/bin/env bash
# Installs the real peers that tests/peers/upstreams.rs talks to, pinned, from the npm registry into a
# cache directory: anvil (the L1: execution RPC and beacon blobs endpoint) and EthereumJS (an
# Engine API with JWT). Exports their paths as OP_LITE_ANVIL and OP_LITE_ETHEREUMJS.
#
#   source .ci/peers.sh       # exports into the calling shell (what .ci/run does)
#   eval "$(.ci/peers.sh)"    # run on its own, it prints the export lines instead
#
# OP_LITE_PEERS_DIR sets the cache directory (default ~/.cache/op-lite-peers). A cache that
# already holds the pinned versions is used as it is, without the network. Needs node and npm.

op_lite_peers() {
  local dir="${OP_LITE_PEERS_DIR:-${HOME:-/tmp}/.cache/op-lite-peers}"
  local anvil_pkg=@foundry-rs/anvil-linux-amd64 anvil_version=1.7.1
  local ejs_pkg=@ethereumjs/client ejs_version=0.10.5
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "peers.sh: node and npm are required" >&2
    return 1
  fi
  if [ "$(uname -sm)" != "Linux x86_64" ]; then
    echo "peers.sh: anvil's npm package ($anvil_pkg) is for Linux x86_64 only, not $(uname -sm)" >&2
    return 1
  fi
  local have_anvil have_ejs
  have_anvil="$(node -p "require('$dir/node_modules/$anvil_pkg/package.json').version" 2>/dev/null || true)"
  have_ejs="$(node -p "require('$dir/node_modules/$ejs_pkg/package.json').version" 2>/dev/null || true)"
  if [ "$have_anvil" != "$anvil_version" ] || [ "$have_ejs" != "$ejs_version" ]; then
    echo "peers.sh: installing $anvil_pkg@$anvil_version and $ejs_pkg@$ejs_version into $dir" >&2
    mkdir -p "$dir" || return 1
    npm install --no-audit --no-fund --save-exact --prefix "$dir" \
      "$anvil_pkg@$anvil_version" "$ejs_pkg@$ejs_version" >&2 || return 1
  fi
  OP_LITE_ANVIL="$dir/node_modules/.bin/anvil"
  OP_LITE_ETHEREUMJS="$dir/node_modules/.bin/ethereumjs"
  if ! "$OP_LITE_ANVIL" --version >/dev/null || ! "$OP_LITE_ETHEREUMJS" --version >/dev/null; then
    echo "peers.sh: the installed peers in $dir do not run" >&2
    return 1
  fi
  export OP_LITE_ANVIL OP_LITE_ETHEREUMJS
  echo "peers.sh: anvil $anvil_version and EthereumJS $ejs_version from $dir" >&2
}

if (return 0 2>/dev/null); then
  op_lite_peers
  _op_lite_peers_status=$?
  unset -f op_lite_peers
  return "$_op_lite_peers_status"
fi
set -euo pipefail
op_lite_peers
printf 'export OP_LITE_ANVIL=%q\nexport OP_LITE_ETHEREUMJS=%q\n' "$OP_LITE_ANVIL" "$OP_LITE_ETHEREUMJS"
