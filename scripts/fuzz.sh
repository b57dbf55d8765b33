#!/usr/bin/env bash
# Long fuzzing pass: runs every cargo-fuzz target in fuzz/ for SECONDS each
# (default 600), one after the other, then prints each target's executions,
# exec/s and result. Not part of CI (CI runs the bounded stand-ins in
# aether-hostile: decoders::random_and_mutated_inputs_never_panic_a_decoder
# and generated::wasm_smith_modules_never_take_the_host_down).
#
#   scripts/fuzz.sh [SECONDS] [extra libFuzzer flags...]
#   FUZZ_TARGETS="execute_generated config" scripts/fuzz.sh 60
#
# The toolchain is stable; cargo-fuzz needs nightly flags, hence
# RUSTC_BOOTSTRAP=1. Corpora grow in fuzz/corpus/<target>, crashes land in
# fuzz/artifacts/<target> (both ignored by git). -timeout=20 makes any
# single input that runs 20 s a finding (libFuzzer's default is 1200 s;
# execute_generated's own check is 100 ms + 2 s per invocation).
#
# execute_generated also gets -entropic=0 -len_control=0 -max_len=16384:
# every input runs wasmtime and cranelift (about 30 000 coverage features
# per input), and the entropic scheduler's per-feature bookkeeping took 68 %
# of the CPU (perf: 5 exec/s, 25 with -entropic=0); and wasm-smith needs
# kilobytes of input for non-trivial modules, while libFuzzer's length
# control kept inputs at 4 bytes for the first minute.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-600}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS] [extra libFuzzer flags...]" >&2
  exit 2
fi
shift || true

export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
echo "== building: $(echo $targets)"
for t in $targets; do
  cargo fuzz build "$t"
done

logs="$(mktemp -d /tmp/aether-fuzz.XXXXXX)"
echo "== logs in $logs"
summary=()
status=0
for t in $targets; do
  flags=()
  if [ "$t" = execute_generated ]; then
    flags=(-entropic=0 -len_control=0 -max_len=16384)
  fi
  echo "== $t: ${seconds} s ${flags[*]}"
  if cargo fuzz run "$t" -- -max_total_time="$seconds" -timeout=20 \
       -print_final_stats=1 "${flags[@]}" "$@" 2>&1 | tee "$logs/$t.log"; then
    result="no finding"
  else
    result="FINDING (see fuzz/artifacts/$t/ and $logs/$t.log)"
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' || echo "?")
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' || echo "?")
  summary+=("$t: ${execs} execs, ${rate} exec/s, $result")
done

echo "== summary (${seconds} s per target)"
printf '%s\n' "${summary[@]}"
exit "$status"
