#!/usr/bin/env bash
# A/B of two gateway binaries on this machine: each workload runs on BASE
# and on NEW in turn, ROUNDS rounds (3 by default), each run against a
# freshly spawned gateway with a fresh database, and the medians are
# printed per workload and binary. Use it when a machine's speed varies
# from day to day, as shared ones do: only figures taken in the same hour
# compare. Every run targets 127.0.0.1 only and is bounded by the tool's
# --timeout.
#   scripts/bench-ab.sh ./switchboard-before ./switchboard-after
#   ROUNDS=1 scripts/bench-ab.sh OLD NEW
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: scripts/bench-ab.sh BASE_BINARY NEW_BINARY" >&2; exit 2; }
base=$(realpath "$1")
new=$(realpath "$2")
log=$PWD/bench-ab.log # every run's JSON line, prefixed by side and workload
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
go build -o "$OUT/switchboard-bench" ./cmd/switchboard-bench

run() { # label, binary, tool arguments
  local label=$1 bin=$2 name=$3; shift 3
  "$OUT/switchboard-bench" "$@" --spawn "$bin" --timeout 3m 2>/dev/null | grep '^{' | sed "s/^/$name $label /" >> "$OUT/ab.log" || true
}
# Odd rounds run BASE first, even rounds NEW first: on a shared machine
# whose speed drifts within minutes, a fixed order favours one side.
for round in $(seq "$ROUNDS"); do
  order="base new"
  [ $((round % 2)) -eq 0 ] && order="new base"
  for side in $order; do
    bin=$base
    [ "$side" = new ] && bin=$new
    run roundtrip  "$bin" "$side" roundtrip --clients 100 --duration 10s
    run idle-users "$bin" "$side" idle --clients 19000 --rate 5000 --hold 5s --sources 8 --users 19000
    run connect    "$bin" "$side" idle --clients 10000 --rate 0 --hold 2s --sources 8
    run chat4-100  "$bin" "$side" chat --clients 1000 --senders 4 --rate 100 --duration 10s
    run chat4-200  "$bin" "$side" chat --clients 1000 --senders 4 --rate 200 --duration 10s
    run chat10-200 "$bin" "$side" chat --clients 1000 --senders 10 --rate 200 --duration 10s
    run fanout1k   "$bin" "$side" fanout --clients 1000 --rate 300 --duration 10s
    run fanout10k  "$bin" "$side" fanout --clients 10000 --rate 15 --duration 10s --connect-rate 4000 --sources 4
  done
done
cp "$OUT/ab.log" "$log"
echo "runs: $log" >&2

# Medians per workload and side. Rates are per second; CPU per operation
# is the gateway's cores divided by the rate (connects for idle runs).
awk '
function med(list,   n, a, i, j, t) {
  n = split(list, a, " ")
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
  return n ? a[int((n + 1) / 2)] : "-"
}
function field(line, name,   m) {
  if (match(line, "\"" name "\":[-0-9.e+]*")) return substr(line, RSTART + length(name) + 3, RLENGTH - length(name) - 3)
  return ""
}
{
  key = $2 " " $1
  if (!(key in seen)) { seen[key] = 1; order[++nkeys] = key }
  rate = field($0, "perSec"); if (rate == "") rate = field($0, "connectsPerSec")
  cpu = field($0, "gatewayCpuCores")
  rates[key] = rates[key] " " rate
  perop[key] = perop[key] " " (rate > 0 ? cpu / rate * 1e6 : 0)
  p99[key] = p99[key] " " field($0, "p99ms")
  rss[key] = rss[key] " " field($0, "gatewayRssPerConnKiB")
}
END {
  print "| workload | binary | rate/s | gateway µs/op | p99 ms | RSS KiB/conn |"
  print "|---|---|---|---|---|---|"
  for (i = 1; i <= nkeys; i++) {
    k = order[i]; split(k, part, " ")
    r = med(rss[k]); if (r != "-") r = sprintf("%.1f", r)
    printf "| %s | %s | %.0f | %.1f | %s | %s |\n", part[1], part[2], med(rates[k]), med(perop[k]), med(p99[k]), r
  }
}' "$log"
