# Shared by bench/ab.sh and bench/profile.sh (sourced, from the repository
# root): a scratch directory holding hello_world, servers killed on exit,
# free ports, and wrk's hello_world request.

# Sets $work (a scratch dir with functions/hello_world.wasm, from $1) and
# $pids (servers to kill); both go on exit.
bench_setup() {
  work=$(mktemp -d)
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
  mkdir -p "$work/functions"
  cp "$1" "$work/functions/hello_world.wasm"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Writes a wrk script to $1 that POSTs the original hello_world request to
# /execute and reports with the Lua `done` function given as $2.
hello_lua() {
  cat >"$1" <<'L'
wrk.method = "POST"
wrk.path = "/execute"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"function":"hello_world","input":{"msg":"Hello from Aether!"}}'
L
  printf '%s\n' "$2" >>"$1"
}
