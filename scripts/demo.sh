#!/usr/bin/env bash
# The five-minute tour in one command: builds the edge and the example
# function, starts an edge on a free port with hello_world in its function
# directory, calls it with the original curl command, and stops the edge.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1 >/dev/null 2>&1 || rustup target add wasm32-wasip1

echo "== building aether-engine and examples/hello_world (release)"
cargo build --release --locked -p aether-engine
(cd examples && cargo build --release --locked -p hello_world)

work=$(mktemp -d)
trap 'kill "$engine_pid" 2>/dev/null || true; wait "$engine_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/functions"
cp examples/target/wasm32-wasip1/release/hello_world.wasm "$work/functions/"

port=${AETHER_DEMO_PORT:-9091}
./target/release/aether-engine --port "$port" --func-dir "$work/functions" --data-dir "$work/data" \
  >"$work/engine.log" 2>&1 &
engine_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "== edge up: $(curl -fsS "http://127.0.0.1:$port/health")"

echo "== curl -X POST http://127.0.0.1:$port/execute -d '{\"function\":\"hello_world\",\"input\":{\"msg\":\"Hello from Aether!\"}}'"
response=$(curl -sS -X POST "http://127.0.0.1:$port/execute" \
  -H 'Content-Type: application/json' \
  -d '{"function":"hello_world","input":{"msg":"Hello from Aether!"}}')
echo "$response"
output=$(printf '%s' "$response" | python3 -c 'import json,sys; print(json.load(sys.stdin)["output"])')
echo
echo "$output"
test "$output" = "Hello from Aether!"
