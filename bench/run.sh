#!/usr/bin/env bash
# Side-by-side load benchmark of Aether's `/execute` against `wasmtime serve`
# and a static hyper server, on loopback, with wrk. One command:
#
#   bench/run.sh            # full run (about 3 minutes once built), writes
#                           # the load section of BENCHMARKS.md
#   bench/run.sh --smoke    # seconds: c=16, 1 s per point, no wasmtime
#                           # install, BENCHMARKS.md untouched; on the
#                           # debug build the tests made (CI: it checks the
#                           # harness works, its numbers mean nothing)
#   bench/run.sh --no-wasmtime   # full run without installing wasmtime-cli
#                                # (its row is left out unless already cached)
#
# Installs wrk (apt) and wasmtime-cli (cargo install, cached in
# bench/.tools) when missing, builds the release binaries, the example
# functions and bench/wasi-http-hello, then runs `aether-bench load`, which
# starts every server on free ports and kills them when done. This script
# stops that process group on exit, error or Ctrl-C, and bounds the
# measurement with a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
started=$SECONDS

WASMTIME_VERSION=48.0.8
tools=$root/bench/.tools
smoke=0
install_wasmtime=1
for arg in "$@"; do
  case $arg in
    --smoke) smoke=1; install_wasmtime=0 ;;
    --no-wasmtime) install_wasmtime=0 ;;
    *) echo "usage: bench/run.sh [--smoke] [--no-wasmtime]" >&2; exit 2 ;;
  esac
done

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk"
  as_root apt-get install -y wrk >/dev/null 2>&1 ||
    { as_root apt-get update >/dev/null && as_root apt-get install -y wrk >/dev/null; }
fi

for target in wasm32-wasip1 wasm32-wasip2; do
  rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target"
done

wasmtime_args=()
wasmtime=$tools/bin/wasmtime
if [ "$install_wasmtime" = 1 ] && ! { [ -x "$wasmtime" ] && "$wasmtime" --version | grep -q "$WASMTIME_VERSION"; }; then
  echo "== installing wasmtime-cli $WASMTIME_VERSION into bench/.tools (once; a long build)"
  nice -n 19 cargo install --locked "wasmtime-cli@$WASMTIME_VERSION" --root "$tools"
fi

if [ "$smoke" = 1 ]; then
  echo "== building debug binaries and the examples"
  cargo build -p aether-engine -p aether-control -p aether-bench
  bin=$root/target/debug
else
  echo "== building release binaries, examples and the wasi-http component"
  cargo build --release -p aether-engine -p aether-control -p aether-bench
  bin=$root/target/release
fi
(cd examples && cargo build --release -p hello_world -p json_transform -p cgi_hello)
# hello_world as a preview-2 command component, and the wasi-http hello
# component (the edge's /fn rows, and `wasmtime serve`'s baseline).
(cd examples && cargo build --release -p hello_world --target wasm32-wasip2 --target-dir target/wasip2)
(cd bench/wasi-http-hello && cargo build --release --target wasm32-wasip2)
if [ -x "$wasmtime" ]; then
  wasmtime_args=(--wasmtime "$wasmtime"
    --component "$root/bench/wasi-http-hello/target/wasm32-wasip2/release/wasi_http_hello.wasm")
fi

if [ "$smoke" = 1 ]; then
  load_args=(--duration 1 --concurrency 16)
  limit=120
else
  load_args=(--duration 5 --out "$root/BENCHMARKS.md")
  limit=600
fi

# `timeout` runs the benchmark in a process group of its own; killing that
# group stops exactly what this script started (wrk, edges, baselines).
bench_pid=
stop() {
  if [ -n "$bench_pid" ]; then
    kill -TERM -- "-$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

echo "== measuring (bounded to ${limit}s)"
timeout -k 10 "$limit" "$bin/aether-bench" load "${load_args[@]}" "${wasmtime_args[@]}" &
bench_pid=$!
status=0
wait "$bench_pid" || status=$?
bench_pid=
echo "== bench/run.sh took $((SECONDS - started)) s"
exit "$status"
