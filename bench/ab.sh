#!/usr/bin/env bash
# A/B throughput of two aether-engine binaries on hello_world, side by side
# in one run: both edges start standalone on loopback over the same
# function, and wrk (c=16, 2 threads) alternates between them for ROUNDS
# rounds of SECS seconds each, so machine noise lands on both alike. Prints
# each round and the medians of req/s and p99 (ms), and the ratio B/A.
#
#   bench/ab.sh OLD_ENGINE NEW_ENGINE [ROUNDS] [SECS]
#
# e.g. a build of the previous commit against this one:
#   git worktree add /tmp/base HEAD~1 && (cd /tmp/base && cargo build --release -p aether-engine)
#   cargo build --release -p aether-engine
#   (cd examples && cargo build --release -p hello_world)
#   bench/ab.sh /tmp/base/target/release/aether-engine target/release/aether-engine 10 5
#
# AB_A_ARGS / AB_B_ARGS add flags to one side; a side given --tls-cert is
# called over https (wrk does not verify the certificate). E.g. plain HTTP
# against HTTPS on one binary, with a throwaway self-signed certificate:
#   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
#     -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout /tmp/k.pem -out /tmp/c.pem
#   AB_B_ARGS="--tls-cert /tmp/c.pem --tls-key /tmp/k.pem" \
#     bench/ab.sh target/release/aether-engine target/release/aether-engine 10 5
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: bench/ab.sh OLD_ENGINE NEW_ENGINE [ROUNDS] [SECS]" >&2; exit 2; }
a=$(realpath "$1") b=$(realpath "$2") rounds=${3:-10} secs=${4:-5}
wasm=examples/target/wasm32-wasip1/release/hello_world.wasm
[ -f "$wasm" ] || { echo "build the example first: (cd examples && cargo build --release -p hello_world)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 2; }

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_setup "$wasm"
hello_lua "$work/hello.lua" 'done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.3f\n", summary.requests / (summary.duration / 1e6), latency:percentile(99) / 1000))
end'

start() { # binary, name, extra flags → url
  local port scheme=http; port=$(free_port)
  mkdir -p "$work/$2"
  case " $3 " in *" --tls-cert "*) scheme=https ;; esac
  # Standalone by the variable, which an older binary without --standalone
  # ignores (it was standalone without --control-url anyway).
  # shellcheck disable=SC2086 # the extra flags are words
  AETHER_STANDALONE=1 "$1" --port "$port" --func-dir "$work/functions" --data-dir "$work/$2" $3 >"$work/$2.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -fsk "$scheme://127.0.0.1:$port/health" >/dev/null 2>&1 && { echo "$scheme://127.0.0.1:$port"; return; }
    sleep 0.1
  done
  echo "edge $2 did not start; log:" >&2; cat "$work/$2.log" >&2; exit 1
}
url_a=$(start "$a" a "${AB_A_ARGS:-}")
url_b=$(start "$b" b "${AB_B_ARGS:-}")
run() { wrk -t 2 -c 16 -d "${2}s" -s "$work/hello.lua" "$1" | awk '/^RESULT/ {print $2, $3}'; }
run "$url_a" 1 >/dev/null; run "$url_b" 1 >/dev/null   # warm-up

echo "round  A req/s  A p99 ms  B req/s  B p99 ms"
: >"$work/results"
for r in $(seq "$rounds"); do
  # Alternate which side goes first, so neither always runs on a warmer box.
  if [ $((r % 2)) = 1 ]; then ra=$(run "$url_a" "$secs"); rb=$(run "$url_b" "$secs");
  else rb=$(run "$url_b" "$secs"); ra=$(run "$url_a" "$secs"); fi
  echo "$r $ra $rb" | tee -a "$work/results" | awk '{printf "%5d  %7.0f  %8.3f  %7.0f  %8.3f\n", $1, $2, $3, $4, $5}'
done
python3 - "$work/results" <<'EOF'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
med = lambda i: statistics.median(r[i] for r in rows)
ratios = [r[3] / r[1] for r in rows]
print(f"median  A {med(1):.0f} req/s p99 {med(2):.3f} ms | B {med(3):.0f} req/s p99 {med(4):.3f} ms")
print(f"B/A throughput: median of paired ratios {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")
EOF
