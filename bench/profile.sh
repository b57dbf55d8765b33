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
# it; compare categories and the two servers within one run. Each server is
# therefore first measured without perf too, from /proc: its CPU per request
# split into user and kernel time, and its context switches per request.
# perf's cost falls mostly on context switches (every switch of a profiled
# thread switches its perf event too), so the profile's "kernel:
# scheduling" row is far larger than without perf: trust the /proc line
# for what scheduling costs, and the profile for where user time goes.
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
by_thread() { # pid → "tid name voluntary involuntary" per thread
  for t in /proc/"$1"/task/*; do
    printf '%s %s %s\n' "${t##*/}" "$(tr ' ' _ <"$t/comm")" \
      "$(awk '/^voluntary_ctxt/ {v = $2} /^nonvoluntary_ctxt/ {n = $2} END {print v, n}' "$t/status")"
  done 2>/dev/null | sort
}
cputicks() { # pid → "user kernel" clock ticks so far, all threads
  awk '{print $14, $15}' /proc/"$1"/stat
}
unprofiled() { # name pid url script: the same load without perf, from /proc
  local before ticks0 after ticks1 n hz; hz=$(getconf CLK_TCK)
  before=$(switches "$2"); ticks0=$(cputicks "$2"); by_thread "$2" >"$work/$1.threads0"
  wrk -t 2 -c 16 -d "${secs}s" --latency -s "$4" "$3" >"$work/$1.plain"
  after=$(switches "$2"); ticks1=$(cputicks "$2"); by_thread "$2" >"$work/$1.threads1"
  n=$(awk '/^RESULT/ {print $2}' "$work/$1.plain")
  echo "$ticks0 $ticks1" | awk -v n="$n" -v hz="$hz" -v cs=$((after - before)) -v name="$1" \
    -v rps="$(awk '/Requests\/sec/ {print $2}' "$work/$1.plain")" \
    -v p50="$(awk '$1 == "50%" {print $2}' "$work/$1.plain")" -v p99="$(awk '$1 == "99%" {print $2}' "$work/$1.plain")" \
    '{u = ($3 - $1) / hz * 1e6 / n; k = ($4 - $2) / hz * 1e6 / n;
      printf "== %s without perf: %s req/s, p50 %s, p99 %s, CPU per request %.1f us (user %.1f, kernel %.1f), %.2f context switches per request\n", name, rps, p50, p99, u + k, u, k, cs / n}'
  # Which threads switch: voluntary (it waited) and involuntary (it was
  # preempted) switches per request, by thread name.
  join "$work/$1.threads0" "$work/$1.threads1" | awk -v n="$n" -v secs="$secs" \
    '{v[$2] += $6 - $3; i[$2] += $7 - $4} END {for (t in v) if (v[t] + i[t] > 0)
      printf "   %-16s %.3f voluntary + %.3f involuntary switches per request (%.0f/s)\n",
        t, v[t] / n, i[t] / n, (v[t] + i[t]) / secs}' | sort -k2 -rn
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
unprofiled edge "$edge" "http://127.0.0.1:$edge_port" "$work/hello.lua"
unprofiled static "$static" "http://127.0.0.1:$static_port/" "$work/static.lua"
profile edge "$edge" "http://127.0.0.1:$edge_port" "$work/hello.lua"
profile static "$static" "http://127.0.0.1:$static_port/" "$work/static.lua"
