#!/usr/bin/env bash
# Hostile load: runs each attack of the "Limits" list against a release node following the
# devnet on 127.0.0.1 and prints, per attack, the node's peak RSS, the share of legitimate RPC
# requests answered within 1 s (one every 100 ms on a fresh connection) with their latency, and
# how long RSS took to come back within 2 MB of where it was when the attack began. Every attacker connects from 127.0.0.1,
# the honest client's address, so a per-IP cap alone cannot pass. A measurement, not a test:
# it prints a table and the budgets with PASS / FAIL, and exits 0.
#
#   bash benches/hostile.sh                 # about 4 minutes
#   HOSTILE_ONLY=pipelined bash benches/hostile.sh   # the HTTP attacks whose name matches
#
# Needs python3 (the attack clients are benches/hostile.py). The P2P rows need the rust-libp2p
# peer (`source .ci/libp2p-peer.sh` builds it, or $OP_LITE_LIBP2P_PEER); without it they say
# "skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
ulimit -n 16384 2>/dev/null || ulimit -n 4096 2>/dev/null || true

cargo build -q --release || { echo "build failed"; exit 0; }
bin=$PWD/target/release/op-lite
py=(python3 benches/hostile.py)
peer_bin=${OP_LITE_LIBP2P_PEER:-$PWD/tests/libp2p-peer/target/release/libp2p-peer}
[ -x "$peer_bin" ] || peer_bin=""
tmp=$(mktemp -d)
# The rust peers read commands from standard input and stop at its end: give them a pipe
# that stays open while this script runs.
mkfifo "$tmp/hold"
exec 9<>"$tmp/hold"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

rss() { awk '$1=="VmRSS:"{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
mb() { awk -v k="$1" 'BEGIN{printf "%.1f MB", k/1024}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
# Waits up to $2 seconds for a line matching $3 in file $1; prints the line.
wait_line() {
  local f=$1 secs=$2 pat=$3 i
  for ((i = 0; i < secs * 20; i++)); do
    grep -m1 -E "$pat" "$f" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
declare -A result
attacks=()

# ---- the devnet and the node ----------------------------------------------------------------
TMPDIR="$tmp" "$bin" devnet --serve-only --speed 4 >"$tmp/serve.out" 2>"$tmp/serve.err" &
pids+=($!)
wait_line "$tmp/serve.out" 20 "op-lite --rollup.config" >/dev/null || { echo "devnet did not start"; exit 0; }
read -r -a node_cmd <<<"$(sed -n 3p "$tmp/serve.out" | sed 's/^ *op-lite //; s/--p2p.disable//')"
rpc=$(free_port)
metrics=$(free_port)
p2p=$(free_port)

static_args=()
static_port=""
if [ -n "$peer_bin" ]; then
  static_port=$(free_port)
  static_key=$(printf '22%.0s' $(seq 32))
  "$peer_bin" --chain-id 901 --listen "/ip4/127.0.0.1/tcp/$static_port" --key "$static_key" >"$tmp/static.out" 2>/dev/null <&9 &
  static_pid=$!
  pids+=("$static_pid")
  static_addr=$(wait_line "$tmp/static.out" 10 '"listening"' | python3 -c 'import json,sys; print(json.load(sys.stdin)["addr"])')
  static_args=(--p2p.static "$static_addr")
fi

# The node runs as the systemd unit runs it (platform/systemd/op-lite.service).
while read -r kv; do export "${kv?}"; done < <(sed -n "s/^Environment=//p" platform/systemd/op-lite.service)
"$bin" "${node_cmd[@]}" --rpc.port "$rpc" --metrics.enabled --metrics.port "$metrics" \
  --p2p.listen.ip 127.0.0.1 --p2p.listen.tcp "$p2p" \
  --p2p.priv.path "$tmp/p2p.key" "${static_args[@]}" --log.level info >"$tmp/node.log" 2>&1 &
node=$!
pids+=("$node")
wait_line "$tmp/node.log" 30 "Started JSON-RPC server" >/dev/null || { echo "node did not start"; cat "$tmp/node.log"; exit 0; }
node_id=$(wait_line "$tmp/node.log" 10 "started P2P host" | sed 's/.*peer_id=//')
sleep 5
baseline=$(rss "$node")
echo "== hostile load on a devnet node (pid $node), baseline RSS $(mb "$baseline")"
printf '  %-34s %-22s %-34s %s\n' attack "peak RSS" "legitimate RPC (within 1 s)" "back to its start + 2 MB"

# Runs an attack (the command given) for 15 s while probing, then measures recovery.
measure() {
  local name=$1
  shift
  if [ -n "${HOSTILE_ONLY:-}" ] && ! grep -qE "$HOSTILE_ONLY" <<<"$name"; then
    return
  fi
  attacks+=("$name")
  "$@" >"$tmp/attack.out" 2>&1 &
  local apid=$! peak base
  base=$(rss "$node")
  peak=$base
  sleep 3
  "${py[@]}" probe "127.0.0.1:$rpc" 12 >"$tmp/probe.out" 2>&1 &
  local ppid=$!
  while kill -0 "$ppid" 2>/dev/null; do
    local r
    r=$(rss "$node")
    [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.2
  done
  kill "$apid" 2>/dev/null
  wait "$apid" 2>/dev/null
  local t0 rec="not within 15 s"
  t0=$(now)
  for _ in $(seq 75); do
    local r
    r=$(rss "$node")
    [ "$r" -gt "$peak" ] && peak=$r
    if [ "$r" -le $((base + 2048)) ]; then
      rec="$(since "$t0") s"
      break
    fi
    sleep 0.2
  done
  local probe
  probe=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print("%d/%d (%.0f%%) p50 %s ms p99 %s ms" % (p["answered_within_1s"], p["requests"], 100*p["rate"], p["p50_ms"], p["p99_ms"]))' "$tmp/probe.out" 2>/dev/null || echo "probe failed")
  printf '  %-34s %-22s %-34s %s\n' "$name" "$(mb "$peak") (+$(mb $((peak - base))))" "$probe" "$rec (from $(mb "$base"))"
  result["$name-peak"]=$peak
  result["$name-rate"]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rate"])' "$tmp/probe.out" 2>/dev/null || echo 0)
  result["$name-recovered"]=$rec
}

measure "idle x2000" "${py[@]}" idle "127.0.0.1:$rpc" 2000 30
measure "slowloris x500 (1 byte/s)" "${py[@]}" slowloris "127.0.0.1:$rpc" 500 30
measure "partial 5 MiB bodies x64" "${py[@]}" partial "127.0.0.1:$rpc" 64 5242880 30
measure "partial bodies on RPC and metrics" sh -c \
  "python3 benches/hostile.py partial 127.0.0.1:$rpc 64 5242880 30 & python3 benches/hostile.py partial 127.0.0.1:$metrics 64 5242880 30; wait"
measure "pipelined unread 32 x 10,000" "${py[@]}" pipeline "127.0.0.1:$rpc" 32 10000 30
measure "slowloris x500 + idle x2000" sh -c \
  "python3 benches/hostile.py slowloris 127.0.0.1:$rpc 500 30 & python3 benches/hostile.py idle 127.0.0.1:$rpc 2000 30; wait"

# ---- P2P: stalled handshakes against a static peer and a new honest peer ---------------------
echo
echo "== P2P: 40 stalled handshakes reconnecting continuously"
if [ -z "$peer_bin" ]; then
  echo "  skipped: the rust-libp2p peer is not built (source .ci/libp2p-peer.sh)"
else
  # The static peer restarts (same address and key); op-lite redials it. First without attack.
  # Sets $took to the seconds until op-lite redialled the restarted static peer.
  redial() {
    kill "$static_pid" 2>/dev/null
    wait "$static_pid" 2>/dev/null
    local t0
    t0=$(now)
    "$peer_bin" --chain-id 901 --listen "/ip4/127.0.0.1/tcp/$static_port" --key "$static_key" >"$tmp/static.out" 2>/dev/null <&9 &
    static_pid=$!
    pids+=("$static_pid")
    if wait_line "$tmp/static.out" 60 '"connected"' >/dev/null; then took=$(since "$t0"); else took="none in 60"; fi
  }
  # Sets $took to the seconds until a new peer dialling op-lite was connected.
  honest() {
    local t0 pid
    t0=$(now)
    "$peer_bin" --chain-id 901 --dial "/ip4/127.0.0.1/tcp/$p2p/p2p/$node_id" >"$tmp/honest.out" 2>/dev/null <&9 &
    pid=$!
    if wait_line "$tmp/honest.out" 30 '"connected"' >/dev/null; then took=$(since "$t0"); else took="none in 30"; fi
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  }
  took=""
  redial
  quiet_redial=$took
  base=$(rss "$node")
  "${py[@]}" p2p-stall "127.0.0.1:$p2p" 40 40 >"$tmp/stall.out" 2>&1 &
  spid=$!
  peak=$base
  ( while kill -0 "$spid" 2>/dev/null; do rss "$node"; sleep 0.2; done ) >"$tmp/p2p-rss" &
  sampler=$!
  sleep 5
  redial
  attack_redial=$took
  honest
  attack_honest=$took
  kill "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
  kill "$sampler" 2>/dev/null
  wait "$sampler" 2>/dev/null
  peak=$(sort -n "$tmp/p2p-rss" | tail -n1)
  peak=${peak:-$base}
  echo "  static peer redial: $quiet_redial s without attack, $attack_redial s under attack"
  echo "  new honest inbound peer connected after: $attack_honest s"
  echo "  node RSS growth during the attack: +$(mb $((peak - base)))"
  result[p2p-growth]=$((peak - base))
  result[p2p-honest]=$attack_honest
  result[p2p-redial]=$attack_redial
  result[p2p-quiet-redial]=$quiet_redial
fi

# ---- Upstream: a 50 MB L1 answer ------------------------------------------------------------
echo
echo "== upstream: an L1 endpoint answering every call with 50 MB"
big=$(free_port)
"${py[@]}" big-l1 "$big" 52428800 &
pids+=($!)
sleep 0.5
up_cmd=()
skip_next=0
for a in "${node_cmd[@]}"; do
  if [ "$skip_next" = 1 ]; then skip_next=0; continue; fi
  if [ "$a" = "--l1" ]; then skip_next=1; continue; fi
  up_cmd+=("$a")
done
"$bin" "${up_cmd[@]}" --l1 "http://127.0.0.1:$big" --rpc.port 0 --p2p.disable --log.level info >"$tmp/up.log" 2>&1 &
up=$!
pids+=("$up")
up_peak=0
for _ in $(seq 100); do
  r=$(rss "$up")
  [ "$r" -gt "$up_peak" ] && up_peak=$r
  sleep 0.1
done
refused=$(grep -c "larger than the limit\|reading response" "$tmp/up.log")
limit_kb=$((32 * 1024))
echo "  peak RSS $(mb "$up_peak") (baseline $(mb "$baseline"), limit 32 MiB), $refused answers refused in 10 s"
kill "$up" 2>/dev/null

# ---- budgets ----------------------------------------------------------------------------------
echo
echo "== budgets"
verdict() { if [ "$1" = 1 ]; then echo PASS; else echo FAIL; fi; }
worst=0
for k in "${attacks[@]}"; do
  p=${result["$k-peak"]:-0}
  [ "$p" -gt "$worst" ] && worst=$p
done
ok=$(python3 -c "print(1 if float('${result["slowloris x500 + idle x2000-rate"]:-0}') >= 0.95 else 0)")
echo "  HTTP: >= 95% of legitimate requests within 1 s under 500 slowloris + 2,000 idle: $(verdict "$ok") (${result["slowloris x500 + idle x2000-rate"]:-0})"
echo "  memory: peak RSS <= 48 MB under every HTTP attack: $(verdict $((worst <= 48 * 1024))) ($(mb "$worst"))"
recovered=1
for k in "${attacks[@]}"; do
  case ${result["$k-recovered"]:-} in *"not within"*|"") recovered=0 ;; esac
done
echo "  memory: back within 2 MB of its start within 15 s after each attack: $(verdict $recovered)"
if [ -n "$peer_bin" ]; then
  g=${result[p2p-growth]:-0}
  echo "  P2P: RSS growth < 2 MB under 40 stalled handshakes: $(verdict $((g < 2048))) (+$(mb "$g"))"
  honest_ok=$(python3 -c "print(1 if '${result[p2p-honest]}'.replace('.','',1).isdigit() else 0)")
  echo "  P2P: a new honest peer connects: $(verdict "$honest_ok") (${result[p2p-honest]} s)"
  redial_ok=$(python3 -c "
q, a = '${result[p2p-quiet-redial]}', '${result[p2p-redial]}'
try: print(1 if float(a) <= max(float(q) * 1.5, float(q) + 2) else 0)
except ValueError: print(0)")
  echo "  P2P: the static peer reconnects within its normal redial time: $(verdict "$redial_ok") (${result[p2p-redial]} s vs ${result[p2p-quiet-redial]} s)"
fi
echo "  upstream: a 50 MB answer refused with peak RSS <= baseline + 2 x 32 MiB: $(verdict $((refused > 0 && up_peak <= baseline + 2 * limit_kb)))"
exit 0
