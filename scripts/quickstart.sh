#!/usr/bin/env bash
# The original Aether quick start, word for word: `cargo run --bin
# aether-control`, `cargo run --bin aether-engine` (no flags, no files),
# then its three curl commands: deploy hello_world as wasm_b64, execute it
# with {"msg":"Hello from Aether!"}, read the manifest. Every field the
# original answers show is checked. CI runs it on its fresh clone.
#
# It uses the default ports 9090 and 9091 and the default ./data and
# ./functions of the checkout; it refuses to start when something already
# listens on those ports, and removes those directories afterwards only if
# it created them.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1 >/dev/null 2>&1 || rustup target add wasm32-wasip1

for port in 9090 9091; do
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "error: something already listens on 127.0.0.1:$port; stop it first" >&2
    exit 1
  fi
done

echo "== building examples/hello_world (the function the quick start deploys)"
(cd examples && cargo build --release --locked -p hello_world)
wasm=examples/target/wasm32-wasip1/release/hello_world.wasm

logs=$(mktemp -d)
created=()
for dir in data functions; do [ -e "$dir" ] || created+=("$dir"); done
pgids=()
cleanup() {
  for pgid in "${pgids[@]}"; do kill -TERM -- "-$pgid" 2>/dev/null || true; done
  for pgid in "${pgids[@]}"; do
    for _ in $(seq 1 100); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
  done
  for dir in "${created[@]}"; do rm -rf "$dir"; done
  rm -rf "$logs"
}
trap cleanup EXIT

wait_healthy() {
  # `cargo run` may have to build first.
  for _ in $(seq 1 3000); do
    curl -fsS "$1/health" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "error: $1 did not start; its log:" >&2
  cat "$2" >&2
  exit 1
}

echo "== Control Plane (Port 9090): cargo run --bin aether-control"
setsid cargo run --bin aether-control >"$logs/control.log" 2>&1 &
pgids+=($!)
wait_healthy http://127.0.0.1:9090 "$logs/control.log"
echo "== Edge Node (Port 9091): cargo run --bin aether-engine"
setsid cargo run --bin aether-engine >"$logs/edge.log" 2>&1 &
pgids+=($!)
wait_healthy http://127.0.0.1:9091 "$logs/edge.log"

check() { # NAME JSON PYTHON-ASSERTIONS (on `r`)
  if ! python3 -c "
import json, re, sys
r = json.loads(sys.argv[1])
iso = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$')
$3
" "$2"; then
    echo "error: $1 answered $2" >&2
    echo "--- control plane log" >&2; cat "$logs/control.log" >&2
    echo "--- edge log" >&2; cat "$logs/edge.log" >&2
    exit 1
  fi
  echo "$1: $2"
}

echo "== deploy"
# The same body as printed; through stdin (-d @-) because the module's
# base64 is longer than a command line may be.
deployed=$(printf '{\n"name": "hello_world",\n"wasm_b64": "%s"\n}' "$(base64 -w0 "$wasm")" |
curl -fsS -X POST http://127.0.0.1:9090/api/functions \
-H "Content-Type: application/json" \
-d @-)
check deploy "$deployed" '
assert r["status"] == "success", r
assert r["function_id"] == "hello_world", r
assert iso.match(r["deployed_at"]), r'

echo "== execute"
executed=$(curl -fsS -X POST http://127.0.0.1:9091/execute \
-H "Content-Type: application/json" \
-d '{
"function": "hello_world",
"input": {
"msg": "Hello from Aether!"
}
}')
check execute "$executed" '
assert r["output"] == "Hello from Aether!", r
assert isinstance(r["execution_time_ms"], (int, float)) and r["execution_time_ms"] >= 0, r
assert isinstance(r["memory_used_kb"], int) and r["memory_used_kb"] > 0, r'

echo "== manifest"
manifest=$(curl -fsS http://127.0.0.1:9090/api/functions/manifest)
check manifest "$manifest" '
[f] = [f for f in r["functions"] if f["name"] == "hello_world"]
assert isinstance(f["size_kb"], int) and f["size_kb"] > 0, f
assert iso.match(f["uploaded_at"]), f'

echo "== the edge registered by itself"
nodes=$(curl -fsS http://127.0.0.1:9090/api/nodes)
check nodes "$nodes" '
nodes = r["nodes"] if isinstance(r, dict) else r
assert any(n["status"] == "online" for n in nodes), nodes'
echo "original quick start: OK"
