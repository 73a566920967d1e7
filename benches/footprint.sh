#!/usr/bin/env bash
# Footprint report: binary sizes per target and feature set, memory and CPU of a devnet run and
# of `op-lite replay`, idle wake-ups (P2P off, and gossip on with two peers) with their causes,
# time to RPC ready, and the kona comparison; then the budgets with PASS / FAIL. A measurement,
# not a test: it prints a table and exits 0.
#
#   bash benches/footprint.sh                # everything (builds 10 release binaries: ~15 min)
#   SKIP_CROSS=1 bash benches/footprint.sh   # host target only
#   SKIP_KONA=1 bash benches/footprint.sh    # without the kona comparison (its first build is long)
#
# The ARM rows need the cross toolchains of .cargo/config.toml: gcc-aarch64-linux-gnu with
# libc6-dev-arm64-cross and gcc-arm-linux-gnueabihf with libc6-dev-armhf-cross (.ci/run installs
# them); the rust targets are added here. The node runs as the systemd unit runs it: with the
# unit's Environment= settings (glibc's malloc tuning).
set -uo pipefail
cd "$(dirname "$0")/.."

fixtures="${OP_LITE_FIXTURES:-../shared/fixtures}"
host=$(rustc -vV | sed -n 's/^host: //p')
tmp=$(mktemp -d)
pids=()
trap 'kill -INT "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
declare -A result
read -r -a unit_env <<<"$(sed -n 's/^Environment=//p' platform/systemd/op-lite.service | tr '\n' ' ')"

row() { printf '  %-56s %s\n' "$1" "$2"; }
kb() { awk '{printf "%.1f MB", $1/1024}' <<<"$1"; }

# ---- binary sizes ---------------------------------------------------------------------------
echo "== release binary size (opt-level z, fat LTO, 1 codegen unit, panic=abort, no unwind tables, stripped)"
# What a cross row needs beyond the rust target: the C cross compiler and its target's libc
# headers (C code in ring and blst), as .ci/run installs them.
cross_missing() {
  case $1 in
    aarch64-unknown-linux-gnu)
      command -v aarch64-linux-gnu-gcc >/dev/null || echo "gcc-aarch64-linux-gnu"
      [ -f /usr/aarch64-linux-gnu/include/stdio.h ] || echo "libc6-dev-arm64-cross" ;;
    aarch64-unknown-linux-musl)
      command -v aarch64-linux-gnu-gcc >/dev/null || echo "gcc-aarch64-linux-gnu" ;;
    armv7-unknown-linux-gnueabihf)
      command -v arm-linux-gnueabihf-gcc >/dev/null || echo "gcc-arm-linux-gnueabihf"
      [ -f /usr/arm-linux-gnueabihf/include/stdio.h ] || echo "libc6-dev-armhf-cross" ;;
  esac
}
targets=("$host")
if [ -z "${SKIP_CROSS:-}" ]; then
  targets+=(aarch64-unknown-linux-gnu aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf)
fi
for t in "${targets[@]}"; do
  if [ "$t" != "$host" ]; then
    missing=$(cross_missing "$t" | tr '\n' ' ')
    if [ -n "$missing" ]; then
      row "$t" "not built: install the Debian packages ${missing}(as .ci/run does)"
      continue
    fi
    if ! rustup target add "$t" >"$tmp/rustup.log" 2>&1; then
      row "$t" "not built: rustup target add $t failed: $(tail -n1 "$tmp/rustup.log")"
      continue
    fi
  fi
  for feat in "default" "no-tls" "no-devnet"; do
    case $feat in
      default) flags=() ;;
      no-tls) flags=(--no-default-features --features devnet) ;;
      no-devnet) flags=(--no-default-features --features tls) ;;
    esac
    if cargo build -q --release --target "$t" "${flags[@]}" --target-dir "$tmp/size" 2>"$tmp/build.log"; then
      size=$(stat -c %s "$tmp/size/$t/release/op-lite")
      row "$t ($feat)" "$(awk -v s="$size" 'BEGIN{printf "%d bytes (%.2f MB)", s, s/1048576}')"
      result["size-$t-$feat"]=$size
    else
      # The first error line says why (cargo's last line is only "build failed, waiting ...").
      why=$(grep -m1 -E '(^error|fatal error|error:)' "$tmp/build.log")
      row "$t ($feat)" "build failed: ${why:-$(tail -n1 "$tmp/build.log")}"
    fi
  done
done
rm -rf "$tmp/size"

cargo build -q --release
bin=target/release/op-lite

# ---- helpers over /proc -----------------------------------------------------------------------
status() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status" 2>/dev/null; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null; }
hz=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 2000); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.01; done; return 1; }
# The loop's wake-ups by cause, from its metrics (op_lite_loop_wakeups_total).
causes() {
  curl -s "http://127.0.0.1:$1/metrics" | awk -F'[{}]' '/^op_lite_loop_wakeups_total/ {
    split($2, l, ","); k=l[1]; w=l[2]; gsub(/.*="|"/, "", k); gsub(/.*="|"/, "", w);
    split($3, v, " "); printf "%s%s: %s %d", sep, k, w, v[1]; sep="; " } END { print "" }'
}

# ---- devnet run: 2,000 L2 blocks --------------------------------------------------------------
follow() { # $1: label; the rest: env settings for the node
  local label=$1; shift
  TMPDIR="$tmp" "$bin" devnet --serve-only --speed 100 >"$tmp/serve.out" 2>"$tmp/serve.err" &
  local serve_pid=$!
  for _ in $(seq 100); do [ -s "$tmp/serve.out" ] && break; sleep 0.1; done
  local node_cmd
  read -r -a node_cmd <<<"$(sed -n 3p "$tmp/serve.out" | sed 's/^ *op-lite //')"
  env "$@" "$bin" "${node_cmd[@]}" --rpc.port 0 --log.level info >"$tmp/node.out" 2>&1 &
  local pid=$!
  local peak=0 samples=() safe=0 start
  start=$(date +%s.%N)
  while kill -0 "$pid" 2>/dev/null && [ "$safe" -lt 2000 ]; do
    sleep 0.5
    local rss hwm
    rss=$(status "$pid" VmRSS)
    [ -n "$rss" ] && samples+=("$rss")
    hwm=$(status "$pid" VmHWM)
    [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
    safe=$(grep -o 'l2_safe=0x[0-9a-f]*:[0-9]*' "$tmp/node.out" | tail -n1 | sed 's/.*://')
    safe=${safe:-0}
  done
  local ticks elapsed
  ticks=$(cpu_ticks "$pid")
  elapsed=$(echo "$(date +%s.%N) - $start" | bc)
  kill -INT "$pid" "$serve_pid"
  wait "$pid" "$serve_pid"
  local n=${#samples[@]}
  # Steady: the median of the second half of the run.
  local steady
  steady=$(printf '%s\n' "${samples[@]:$((n / 2))}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  row "$label: safe head reached" "L2 block $safe in ${elapsed%.*} s"
  row "$label: node peak RSS (VmHWM)" "$(kb "$peak")"
  row "$label: node steady RSS (median, second half)" "$(kb "$steady")"
  local cpu_node
  cpu_node=$(echo "scale=2; $ticks / $hz" | bc)
  row "$label: node CPU per 1,000 L2 blocks derived" "$(echo "scale=2; $cpu_node * 1000 / ($safe + 1)" | bc) s"
  result[steady-$label]=$steady
  result[peak-$label]=$peak
}
echo
echo "== the node follows the devnet for 2,000 L2 blocks (devnet in its own process: --serve-only)"
echo "  unit: as the systemd unit runs it (${unit_env[*]}); plain: without those settings"
follow unit "${unit_env[@]}"
unit_label=unit
follow plain

# ---- replay of the real fixture ---------------------------------------------------------------
echo
echo "== op-lite replay of the real OP Mainnet range (derivation-e2e), streamed from the file"
fx="$fixtures/derivation-e2e/op-mainnet-bedrock-l1-18090205-18090218/fixture.json"
if [ -f "$fx" ]; then
  env "${unit_env[@]}" /usr/bin/time -f "%M %e %U %S" -o "$tmp/replay.time" "$bin" replay "$fx" --check >/dev/null 2>"$tmp/replay.err"
  read -r maxrss wall user sys <"$tmp/replay.time"
  row "result" "$(tail -n1 "$tmp/replay.err")"
  row "peak RSS" "$(kb "$maxrss")"
  row "wall / CPU" "$wall s / $(echo "$user + $sys" | bc) s"
  result[replay]=$maxrss
else
  row "replay" "skipped: fixtures not found"
fi

# ---- idle wake-ups and time to RPC ready ------------------------------------------------------
idle_common=(--network op-mainnet --l1 http://127.0.0.1:9 --l2 http://127.0.0.1:9 --l1.beacon.ignore --log.level error)
echo
echo "== idle node, P2P off (unreachable upstreams, nothing to do but its timers)"
port=$(free_port)
mport=$(free_port)
t0=$(date +%s%N)
env "${unit_env[@]}" "$bin" "${idle_common[@]}" --p2p.disable --l2.jwt-secret "$tmp/jwt.hex" --rpc.port "$port" \
  --metrics.enabled --metrics.port "$mport" &
pid=$!
pids+=("$pid")
wait_http "http://127.0.0.1:$port/healthz"
t1=$(date +%s%N)
row "start to RPC ready" "$(( (t1 - t0) / 1000000 )) ms"
sleep 5
c0=$(( $(status "$pid" voluntary_ctxt_switches) + $(status "$pid" nonvoluntary_ctxt_switches) ))
sleep 60
c1=$(( $(status "$pid" voluntary_ctxt_switches) + $(status "$pid" nonvoluntary_ctxt_switches) ))
row "event-loop wake-ups per minute (main thread)" "$((c1 - c0))"
row "their causes since start" "$(causes "$mport")"
kill -INT "$pid"
wait "$pid"
result[wakeups]=$((c1 - c0))

echo
echo "== idle node, gossip on with two peers (two more op-lite nodes as its static peers)"
peer_args=()
for p in b c; do
  "$bin" p2p genkey >"$tmp/$p.key"
  pp=$(free_port)
  "$bin" "${idle_common[@]}" --l2.jwt-secret "$tmp/$p.jwt" --rpc.port 0 --p2p.priv.path "$tmp/$p.key" --p2p.discovery.path "$tmp/$p.discovery" \
    --p2p.listen.ip 127.0.0.1 --p2p.listen.tcp "$pp" &
  pids+=("$!")
  peer_args+=("/ip4/127.0.0.1/tcp/$pp/p2p/$("$bin" p2p priv2id --file "$tmp/$p.key")")
done
mport=$(free_port)
env "${unit_env[@]}" "$bin" "${idle_common[@]}" --l2.jwt-secret "$tmp/a.jwt" --rpc.port 0 --p2p.priv.path "$tmp/a.key" --p2p.discovery.path "$tmp/a.discovery" \
  --p2p.listen.ip 127.0.0.1 --p2p.listen.tcp 0 --p2p.static "$(IFS=,; echo "${peer_args[*]}")" \
  --metrics.enabled --metrics.port "$mport" &
pid=$!
pids+=("$pid")
wait_http "http://127.0.0.1:$mport/metrics"
sleep 10
peers=$(curl -s "http://127.0.0.1:$mport/metrics" | awk '/^op_node_default_p2p_peer_count/ {print $2}')
c0=$(( $(status "$pid" voluntary_ctxt_switches) + $(status "$pid" nonvoluntary_ctxt_switches) ))
sleep 60
c1=$(( $(status "$pid" voluntary_ctxt_switches) + $(status "$pid" nonvoluntary_ctxt_switches) ))
row "connected peers" "${peers:-?}"
row "event-loop wake-ups per minute (main thread)" "$((c1 - c0))"
row "their causes since start" "$(causes "$mport")"
kill -INT "${pids[@]}" 2>/dev/null
wait 2>/dev/null
pids=()
result[wakeups-gossip]=$((c1 - c0))
result[gossip-peers]=${peers:-0}

# ---- kona ---------------------------------------------------------------------------------------
echo
echo "== the same decode and derivation work in kona (benches/kona-compare)"
if [ -n "${SKIP_KONA:-}" ]; then
  row "kona comparison" "skipped (SKIP_KONA)"
elif [ -f benches/kona-compare/Cargo.toml ]; then
  cargo run -q --release --manifest-path benches/kona-compare/Cargo.toml >"$tmp/kona.out" 2>&1
  sed 's/^/  /' "$tmp/kona.out"
  # Each row ends: op-lite/s kona/s ratio, op-lite heap (N KB), kona heap (N KB), heap ratio.
  result[kona-frame]=$(awk '/^frame parse/ {print $(NF-5)}' "$tmp/kona.out")
  result[kona-zlib]=$(awk '/^zlib channel/ {print $(NF-5)}' "$tmp/kona.out")
  result[kona-pipeline]=$(awk '/^derivation pipeline/ {print $(NF-5)}' "$tmp/kona.out")
  result[kona-pipeline-heap]=$(awk '/^derivation pipeline/ {print $NF}' "$tmp/kona.out")
else
  row "kona comparison" "benches/kona-compare not present"
fi

# ---- budgets ----------------------------------------------------------------------------------
echo
echo "== budgets (issue: footprint, round two)"
verdict() { if [ "$1" = 1 ]; then echo PASS; else echo FAIL; fi; }
ratio_row() { # $1 label, $2 ratio or empty, $3 minimum
  if [ -n "$2" ]; then
    row "$1" "$(verdict "$(echo "$2 >= $3" | bc)") (${2}x)"
  else
    row "$1" "FAIL (not measured)"
  fi
}
a64=${result[size-aarch64-unknown-linux-gnu-default]:-}
if [ -n "$a64" ]; then
  row "aarch64 binary <= 3,000,000 bytes, every default feature" "$(verdict "$((a64 <= 3000000))") ($a64 bytes)"
else
  row "aarch64 binary <= 3,000,000 bytes, every default feature" "not measured (SKIP_CROSS or not built)"
fi
s=${result[steady-$unit_label]:-999999}
p=${result[peak-$unit_label]:-999999}
row "steady RSS <= 10 MB following the devnet" "$(verdict "$((s <= 10240))") ($(kb "$s"))"
row "peak RSS <= 12 MB following the devnet" "$(verdict "$((p <= 12288))") ($(kb "$p"))"
r=${result[replay]:-999999}
row "replay peak RSS <= 12 MB" "$(verdict "$((r <= 12288))") ($(kb "$r"))"
ratio_row "frame parse >= 1.0x kona" "${result[kona-frame]:-}" 1.0
ratio_row "zlib channel -> derived span batch >= 3x kona" "${result[kona-zlib]:-}" 3.0
if [ -n "${result[kona-pipeline]:-}" ]; then
  row "derivation pipeline vs kona-derive, real range" "reported: ${result[kona-pipeline]}x payloads/s, ${result[kona-pipeline-heap]}x peak heap"
else
  row "derivation pipeline vs kona-derive, real range" "FAIL (not measured)"
fi
w=${result[wakeups]:-999999}
row "idle wake-ups <= 1 per second, P2P off" "$(verdict "$((w <= 60))") ($w per minute)"
g=${result[wakeups-gossip]:-999999}
row "idle wake-ups <= 3 per second, gossip on, two peers" "$(verdict "$((g <= 180 && ${result[gossip-peers]:-0} == 2))") ($g per minute, ${result[gossip-peers]:-0} peers)"
