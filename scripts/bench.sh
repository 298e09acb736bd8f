#!/usr/bin/env bash
# Runs the standard workloads of docs/benchmarks.md three times each, every
# run against a freshly spawned gateway with a fresh database, and prints the
# medians as Markdown rows to paste into docs/benchmarks.md.
#   scripts/bench.sh            # everything (about 10 minutes)
#   RUNS=1 scripts/bench.sh     # one run each
#   SUITE=protocols scripts/bench.sh  # the transports and protocols rows instead
# Only 127.0.0.1 is targeted; every run is bounded by the tool's --timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
go build -o "$OUT/switchboard" ./cmd/switchboard
go build -o "$OUT/switchboard-bench" ./cmd/switchboard-bench

run() { # name, then tool arguments
  local name=$1 i; shift
  for i in $(seq "$RUNS"); do
    "$OUT/switchboard-bench" "$@" --spawn "$OUT/switchboard" --timeout 3m | tee -a "$OUT/$name.log" >&2
  done
  grep '^{' "$OUT/$name.log" > "$OUT/$name.json"
}

median() { # file, jq-free field extraction: median of a numeric JSON field
  grep -o "\"$2\":[-0-9.e+]*" "$1" | cut -d: -f2 | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'
}
f() { printf '%.*f' "$2" "$(median "$OUT/$1.json" "$3")"; }

if [ "${SUITE:-}" = protocols ]; then
  # Idle memory on every transport and protocol at 10k connections; fan-out
  # and chat with JSON, MessagePack and both in one group, run in turn so
  # each pair shares the machine's state.
  for tp in websockets:json websockets:messagepack serversentevents:json longpolling:json longpolling:messagepack; do
    run "idle-$tp" idle --clients 10000 --rate 2000 --hold 5s --sources 8 --transport "${tp%%:*}" --protocol "${tp##*:}"
  done
  for i in $(seq "$RUNS"); do
    for p in json messagepack mixed; do
      RUNS=1 run "fanout-$p" fanout --clients 1000 --rate 300 --duration 10s --protocol "$p"
      RUNS=1 run "chat-$p" chat --clients 1000 --senders 10 --rate 200 --duration 10s --protocol "$p"
    done
  done
  echo
  echo "| workload | medians of $RUNS runs |"
  echo "|---|---|"
  for tp in websockets:json websockets:messagepack serversentevents:json longpolling:json longpolling:messagepack; do
    echo "| idle 10k, ${tp%%:*}/${tp##*:} | $(f "idle-$tp" 1 gatewayRssPerConnKiB) KiB RSS/conn |"
  done
  for w in fanout-json fanout-messagepack fanout-mixed chat-json chat-messagepack chat-mixed; do
    echo "| $w | $(f $w 0 perSec) deliveries/s, p50 $(f $w 1 p50ms) ms, p99 $(f $w 1 p99ms) ms, lost $(f $w 0 lost), gateway $(f $w 2 gatewayCpuCores) cores |"
  done
  exit 0
fi

run idle      idle      --clients 19000 --rate 5000 --hold 5s --sources 8
run idleusers idle      --clients 19000 --rate 5000 --hold 5s --sources 8 --users 19000
run connect   idle      --clients 10000 --rate 0    --hold 2s --sources 8
run fanout1k  fanout    --clients 1000  --rate 300  --duration 10s
run fanout10k fanout    --clients 10000 --rate 15   --duration 10s --connect-rate 4000 --sources 4
run roundtrip roundtrip --clients 100   --duration 10s
run chat      chat      --clients 1000  --senders 10 --rate 200 --duration 10s
run chat4     chat      --clients 1000  --senders 4  --rate 100 --duration 10s

echo
echo "| workload | medians of $RUNS runs |"
echo "|---|---|"
echo "| idle, 19k clients | $(f idle 1 gatewayRssPerConnKiB) KiB RSS/conn, $(f idle 0 connectsPerSec) connects/s |"
echo "| idle, 19k clients, a user each | $(f idleusers 1 gatewayRssPerConnKiB) KiB RSS/conn, $(f idleusers 0 connectsPerSec) connects/s |"
echo "| connect, 10k clients, unbounded rate | $(f connect 0 connectsPerSec) connects/s, gateway $(f connect 2 gatewayCpuCores) cores |"
for w in fanout1k fanout10k chat chat4; do
  echo "| $w | $(f $w 0 perSec) deliveries/s, p50 $(f $w 1 p50ms) ms, p99 $(f $w 1 p99ms) ms, max $(f $w 1 maxms) ms, lost $(f $w 0 lost), gateway $(f $w 2 gatewayCpuCores) / tool $(f $w 2 toolCpuCores) cores |"
done
echo "| roundtrip, 100 clients | $(f roundtrip 0 perSec) invocations/s, p50 $(f roundtrip 2 p50ms) ms, p99 $(f roundtrip 2 p99ms) ms, gateway $(f roundtrip 2 gatewayCpuCores) / tool $(f roundtrip 2 toolCpuCores) cores |"
