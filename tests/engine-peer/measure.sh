#!/usr/bin/env bash
# Measures a sequencer op-lite and a verifier op-lite on two engine peers: the devnet's genesis
# lies BLOCKS*2 seconds in the past, so the sequencer builds BLOCKS blocks as fast as its engine
# takes them and the verifier follows by gossip; prints the blocks per second the pair sustained
# while catching up and each op-lite's CPU time (user+system) per 1,000 blocks.
#   usage: tests/engine-peer/measure.sh [BLOCKS] [OP_LITE] [ENGINE_PEER]
set -euo pipefail
blocks=${1:-1000}
op_lite=${2:-target/release/op-lite}
peer=${3:-${OP_LITE_ENGINE_PEER:-tests/engine-peer/target/release/engine-peer}}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
age=$((blocks * 2 + 10))
"$op_lite" devnet init "$dir" --genesis-time $(( $(date +%s) - age )) --seq-window-size $((age / 3 + 100)) >/dev/null
for e in a b; do
  "$peer" --genesis "$dir/genesis.json" --jwt "$dir/jwt.hex" >"$dir/$e.out" 2>"$dir/$e.err" &
  pids+=($!)
done
for e in a b; do
  for _ in $(seq 100); do grep -q "serving at" "$dir/$e.out" && break; sleep 0.1; done
done
a=$(grep -o 'http://[0-9.:]*' "$dir/a.out" | head -1); b=$(grep -o 'http://[0-9.:]*' "$dir/b.out" | head -1)
"$op_lite" devnet --from "$dir" --serve-only --with-sequencer --sequencer-engine "$a" --engine "$b" >"$dir/devnet.out" 2>"$dir/devnet.err" &
pids+=($!)
for _ in $(seq 300); do grep -q "^(files in" "$dir/devnet.out" && break; sleep 0.1; done
seq_args=$(grep -A1 "sequencer node" "$dir/devnet.out" | tail -1 | sed 's/^ *op-lite //')
ver_args=$(grep -A1 "verifier node" "$dir/devnet.out" | tail -1 | sed 's/^ *op-lite //')
t0=$(date +%s.%N)
# shellcheck disable=SC2086
"$op_lite" $seq_args --rpc.port 0 2>"$dir/seq.err" & seq_pid=$!; pids+=($seq_pid)
# shellcheck disable=SC2086
"$op_lite" $ver_args 2>"$dir/ver.err" & ver_pid=$!; pids+=($ver_pid)
jwt=$(cat "$dir/jwt.hex")
latest() { # the head number of the engine at $1 (JWT signed here with openssl)
  local now hdr pay sig
  now=$(date +%s)
  hdr=$(printf '{"alg":"HS256","typ":"JWT"}' | base64 -w0 | tr '+/' '-_' | tr -d '=')
  pay=$(printf '{"iat":%s}' "$now" | base64 -w0 | tr '+/' '-_' | tr -d '=')
  sig=$(printf '%s.%s' "$hdr" "$pay" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:${jwt#0x}" -binary | base64 -w0 | tr '+/' '-_' | tr -d '=')
  curl -s -H "Authorization: Bearer $hdr.$pay.$sig" -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}' "$1" | sed 's/.*"result":"\(0x[0-9a-f]*\)".*/\1/'
}
ticks=$(getconf CLK_TCK)
cpu() { awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
while :; do
  na=$(( $(latest "$a") )); nb=$(( $(latest "$b") ))
  [ "$na" -ge "$blocks" ] && [ "$nb" -ge "$blocks" ] && break
  sleep 0.5
done
t1=$(date +%s.%N)
sc=$(cpu $seq_pid); vc=$(cpu $ver_pid)
awk -v n="$blocks" -v t0="$t0" -v t1="$t1" -v sc="$sc" -v vc="$vc" 'BEGIN {
  d = t1 - t0
  printf "%d blocks in %.1f s: %.1f blocks/s (sequencer building on engine A, verifier following on B)\n", n, d, n / d
  printf "op-lite CPU per 1,000 blocks: sequencer %.2f s, verifier %.2f s\n", sc * 1000 / n, vc * 1000 / n
}'
