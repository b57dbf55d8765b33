#!/usr/bin/env bash
# Runs every test of the workspace. The tests build the example functions
# for wasm32-wasip1 themselves, so the target must be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip1 wasm32-wasip2
cargo test --workspace --locked "$@"
