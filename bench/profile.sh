#!/usr/bin/env bash
# Where the CPU of one `/execute` hello_world goes, next to the static hyper
# server's: perf (cpu-clock, no hardware counters needed) samples each
# release server for SECS seconds under wrk c=16, then
# bench/profile_categories.py turns the samples into CPU microseconds per
# request by category (kernel scheduling, sockets, wasmtime, HTTP, JSON,
# guest code, ...).
#
#   cargo build --release -p aether-engine -p aether-bench
#   (cd examples && cargo build --release -p hello_world)
#   bench/profile.sh [SECS]
#
# perf adds its own cost, so the absolute figures are higher than without
# it; compare categories and the two servers within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
for tool in perf wrk python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 2; }
done
wasm=examples/target/wasm32-wasip1/release/hello_world.wasm
edge_bin=target/release/aether-engine static_bin=target/release/aether-static-server
for f in "$wasm" "$edge_bin" "$static_bin"; do
  [ -f "$f" ] || { echo "$f is missing: see the build commands at the top of $0" >&2; exit 2; }
done

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_setup "$wasm"
count='done = function(summary) io.write(string.format("RESULT %d\n", summary.requests)) end'
hello_lua "$work/hello.lua" "$count"
printf '%s\n' "$count" >"$work/static.lua"
edge_port=$(free_port) static_port=$(free_port)
AETHER_STANDALONE=1 "$edge_bin" --port "$edge_port" --func-dir "$work/functions" --data-dir "$work/data" >"$work/edge.log" 2>&1 &
edge=$!; pids+=("$edge")
"$static_bin" "127.0.0.1:$static_port" >"$work/static.log" 2>&1 &
static=$!; pids+=("$static")
for url in "http://127.0.0.1:$edge_port/health" "http://127.0.0.1:$static_port/"; do
  for _ in $(seq 100); do curl -fs "$url" >/dev/null 2>&1 && break; sleep 0.1; done
done
wrk -t 2 -c 16 -d 2s -s "$work/hello.lua" "http://127.0.0.1:$edge_port" >/dev/null  # warm-up

switches() { # pid → context switches so far, all threads
  cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'
}
profile() { # name pid url script
  perf record -q -e cpu-clock -F 2999 -p "$2" -o "$work/$1.data" -- sleep "$secs" >/dev/null 2>&1 &
  local rec=$! before; before=$(switches "$2")
  wrk -t 2 -c 16 -d "${secs}s" --latency -s "$4" "$3" >"$work/$1.wrk"
  local after; after=$(switches "$2")
  wait "$rec"
  local n; n=$(awk '/^RESULT/ {print $2}' "$work/$1.wrk")
  echo "== $1: $(awk '/Requests\/sec/ {print $2}' "$work/$1.wrk") req/s, p50 $(awk '$1 == "50%" {print $2}' "$work/$1.wrk"), p99 $(awk '$1 == "99%" {print $2}' "$work/$1.wrk"), $(python3 -c "print(round(($after - $before) / $n, 2))") context switches per request, $(ls /proc/"$2"/task | wc -l) threads"
  python3 bench/profile_categories.py "$work/$1.data" "$n"
}
profile edge "$edge" "http://127.0.0.1:$edge_port" "$work/hello.lua"
profile static "$static" "http://127.0.0.1:$static_port/" "$work/static.lua"
