#!/usr/bin/env bash
# The main job in one command: builds Aether and the example function, starts
# a local stack (control plane + one edge, on loopback), deploys
# examples/hello_world to the control plane, waits for the edge to serve it,
# calls it with the original curl command, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1 >/dev/null 2>&1 || rustup target add wasm32-wasip1

# AETHER_DEMO_PROFILE=dev reuses a debug build (CI runs the demo after the
# tests, which built one); the default is an optimised build.
profile=${AETHER_DEMO_PROFILE:-release}
case "$profile" in
  release) bin=target/release ;;
  dev) bin=target/debug ;;
  *) echo "error: AETHER_DEMO_PROFILE must be release or dev" >&2; exit 2 ;;
esac
echo "== building aether-control, aether-engine ($profile) and examples/hello_world"
cargo build --profile "$profile" --locked -p aether-control -p aether-engine
(cd examples && cargo build --release --locked -p hello_world)
wasm=examples/target/wasm32-wasip1/release/hello_world.wasm

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

control_port=${AETHER_DEMO_CONTROL_PORT:-9090}
edge_port=${AETHER_DEMO_EDGE_PORT:-9091}
control="http://127.0.0.1:$control_port"
edge="http://127.0.0.1:$edge_port"

wait_healthy() {
  for _ in $(seq 1 200); do
    curl -fsS "$1/health" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "error: $1 did not start; its log:" >&2
  cat "$2" >&2
  exit 1
}

"$bin/aether-control" --port "$control_port" --db "$work/control/control.db" \
  --func-dir "$work/control/blobs" >"$work/control.log" 2>&1 &
pids+=($!)
wait_healthy "$control" "$work/control.log"
"$bin/aether-engine" --port "$edge_port" --func-dir "$work/edge/functions" \
  --data-dir "$work/edge/data" --control-url "$control" >"$work/edge.log" 2>&1 &
pids+=($!)
wait_healthy "$edge" "$work/edge.log"
echo "== control plane $control, edge $edge"

echo "== deploying hello_world"
printf '{"name":"hello_world","wasm_b64":"%s"}' "$(base64 -w0 "$wasm")" >"$work/deploy.json"
curl -fsS -X POST "$control/api/functions" -H 'Content-Type: application/json' -d @"$work/deploy.json"
echo

echo "== curl -X POST $edge/execute -H 'Content-Type: application/json' -d '{\"function\":\"hello_world\",\"input\":{\"msg\":\"Hello from Aether!\"}}'"
response=$(curl -sS -X POST "$edge/execute" -H 'Content-Type: application/json' \
  -d '{"function":"hello_world","input":{"msg":"Hello from Aether!"}}')
echo "$response"
output=$(printf '%s' "$response" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("output", ""))')
echo
echo "$output"
test "$output" = "Hello from Aether!"
