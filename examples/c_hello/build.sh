#!/usr/bin/env bash
# Builds examples/c_hello/c_hello.wasm, a WASI preview-1 command, with clang
# and wasi-libc. On Debian/Ubuntu:
#
#   apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32
#
# (clang compiles, lld's wasm-ld links, wasi-libc is the C library and its
# sysroot, libclang-rt-dev-wasm32 the compiler builtins). With the WASI SDK
# instead, set CC=/opt/wasi-sdk/bin/clang and WASI_SYSROOT=/opt/wasi-sdk/share/wasi-sysroot.
set -euo pipefail
cd "$(dirname "$0")"

CC=${CC:-clang}
# Debian's wasi-libc installs its headers and libraries in the compiler's
# default search paths (/usr/include/wasm32-wasi, /usr/lib/wasm32-wasi), so
# no --sysroot is needed there; other installs name theirs.
sysroot=()
if [ -n "${WASI_SYSROOT:-}" ]; then
  sysroot=(--sysroot="$WASI_SYSROOT")
elif [ -d /usr/share/wasi-sysroot ]; then
  sysroot=(--sysroot=/usr/share/wasi-sysroot)
fi

# `wasm32-wasi` is the preview-1 triple every clang knows; clang 18+ also
# calls it `wasm32-wasip1`.
target=wasm32-wasi
if "$CC" --target=wasm32-wasip1 -print-targets >/dev/null 2>&1 \
   && "$CC" --version | grep -Eq 'clang version (1[89]|[2-9][0-9])\.'; then
  target=wasm32-wasip1
fi

"$CC" --target="$target" "${sysroot[@]}" -O2 -Wall -Wextra -Werror \
  -o c_hello.wasm hello.c
echo "built $(pwd)/c_hello.wasm ($(wc -c <c_hello.wasm) bytes, $target)"
