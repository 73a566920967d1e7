#!/usr/bin/env bash
# Footprint report: binary sizes per target and feature set, memory and CPU of a devnet run and
# of `op-lite replay`, idle wake-ups, time to RPC ready, and the kona comparison; then the
# budgets with PASS / FAIL. A measurement, not a test: it prints a table and exits 0.
#
#   bash benches/footprint.sh            # everything (builds 8 release binaries: ~10 min)
#   SKIP_CROSS=1 bash benches/footprint.sh   # host target only
#
# Needs the cross toolchains of .cargo/config.toml for the ARM rows (.ci/run installs them).
set -uo pipefail
cd "$(dirname "$0")/.."

fixtures="${OP_LITE_FIXTURES:-../shared/fixtures}"
host=$(rustc -vV | sed -n 's/^host: //p')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
declare -A result

row() { printf '  %-52s %s\n' "$1" "$2"; }
kb() { awk '{printf "%.1f MB", $1/1024}' <<<"$1"; }

# ---- binary sizes ---------------------------------------------------------------------------
echo "== release binary size (opt-level z, fat LTO, 1 codegen unit, panic=abort, stripped)"
targets=("$host")
if [ -z "${SKIP_CROSS:-}" ]; then
  targets+=(aarch64-unknown-linux-gnu aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf)
fi
for t in "${targets[@]}"; do
  [ "$t" = "$host" ] || rustup target add "$t" >/dev/null 2>&1 || true
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

# ---- devnet run: 2,000 L2 blocks --------------------------------------------------------------
echo
echo "== the node follows the devnet for 2,000 L2 blocks (devnet in its own process: --serve-only)"
TMPDIR="$tmp" "$bin" devnet --serve-only --speed 100 >"$tmp/serve.out" 2>"$tmp/serve.err" &
serve_pid=$!
for _ in $(seq 100); do [ -s "$tmp/serve.out" ] && break; sleep 0.1; done
read -r -a node_cmd <<<"$(sed -n 3p "$tmp/serve.out" | sed 's/^ *op-lite //')"
"$bin" "${node_cmd[@]}" --rpc.port 0 --log.level info >"$tmp/node.out" 2>&1 &
pid=$!
peak=0
samples=()
safe=0
start=$(date +%s.%N)
while kill -0 "$pid" 2>/dev/null && [ "$safe" -lt 2000 ]; do
  sleep 0.5
  rss=$(status "$pid" VmRSS)
  [ -n "$rss" ] && samples+=("$rss")
  hwm=$(status "$pid" VmHWM)
  [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
  safe=$(grep -o 'l2_safe=0x[0-9a-f]*:[0-9]*' "$tmp/node.out" | tail -n1 | sed 's/.*://')
  safe=${safe:-0}
done
ticks=$(cpu_ticks "$pid")
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
kill -INT "$pid" "$serve_pid"
wait "$pid" "$serve_pid"
n=${#samples[@]}
# Steady: the median of the second half of the run.
steady=$(printf '%s\n' "${samples[@]:$((n / 2))}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
row "safe head reached" "L2 block $safe in ${elapsed%.*} s"
row "node peak RSS (VmHWM)" "$(kb "$peak")"
row "node steady RSS (median, second half)" "$(kb "$steady")"
cpu_node=$(echo "scale=2; $ticks / $hz" | bc)
row "node CPU" "$cpu_node s"
row "node CPU per 1,000 L2 blocks derived" "$(echo "scale=2; $cpu_node * 1000 / ($safe + 1)" | bc) s"
result[steady]=$steady

# ---- replay of the real fixture ---------------------------------------------------------------
echo
echo "== op-lite replay of the real OP Mainnet range (derivation-e2e)"
fx="$fixtures/derivation-e2e/op-mainnet-bedrock-l1-18090205-18090218/fixture.json"
if [ -f "$fx" ]; then
  /usr/bin/time -f "%M %e %U %S" -o "$tmp/replay.time" "$bin" replay "$fx" --check >/dev/null 2>"$tmp/replay.err"
  read -r maxrss wall user sys <"$tmp/replay.time"
  row "result" "$(tail -n1 "$tmp/replay.err")"
  row "peak RSS" "$(kb "$maxrss")"
  row "wall / CPU" "$wall s / $(echo "$user + $sys" | bc) s"
else
  row "replay" "skipped: fixtures not found"
fi

# ---- idle wake-ups and time to RPC ready ------------------------------------------------------
echo
echo "== idle node (unreachable upstreams, nothing to do but its timers)"
port=$((20000 + RANDOM % 20000))
t0=$(date +%s%N)
"$bin" --network op-mainnet --p2p.disable --l1 http://127.0.0.1:9 --l2 http://127.0.0.1:9 \
  --l2.jwt-secret "$tmp/jwt.hex" --l1.beacon.ignore --rpc.port "$port" --log.level error &
pid=$!
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.001; done
t1=$(date +%s%N)
row "start to RPC ready" "$(( (t1 - t0) / 1000000 )) ms"
sleep 5
c0=$(( $(status "$pid" voluntary_ctxt_switches) + $(status "$pid" nonvoluntary_ctxt_switches) ))
sleep 60
c1=$(( $(status "$pid" voluntary_ctxt_switches) + $(status "$pid" nonvoluntary_ctxt_switches) ))
kill -INT "$pid"
wait "$pid"
wakeups=$((c1 - c0))
row "event-loop wake-ups per minute (main thread)" "$wakeups"
result[wakeups]=$wakeups

# ---- kona ---------------------------------------------------------------------------------------
echo
echo "== the same decode and derivation work in kona (benches/kona-compare)"
if [ -f benches/kona-compare/Cargo.toml ]; then
  cargo run -q --release --manifest-path benches/kona-compare/Cargo.toml 2>&1 | sed 's/^/  /'
else
  row "kona comparison" "benches/kona-compare not present"
fi

# ---- budgets ----------------------------------------------------------------------------------
echo
echo "== budgets"
verdict() { if [ "$1" = 1 ]; then echo PASS; else echo FAIL; fi; }
a64=${result[size-aarch64-unknown-linux-gnu-default]:-}
if [ -n "$a64" ]; then
  row "aarch64 binary < 4 MB with every feature" "$(verdict "$((a64 < 4194304))") ($a64 bytes)"
else
  row "aarch64 binary < 4 MB with every feature" "not measured (SKIP_CROSS or build failed)"
fi
row "steady RSS < 16 MB following the devnet" "$(verdict "$((${result[steady]:-999999} < 16384))") ($(kb "${result[steady]:-0}"))"
row "idle wake-ups < 10 per second" "$(verdict "$((${result[wakeups]:-999999} < 600))") (${result[wakeups]:-?} per minute)"
