#!/usr/bin/env python3
"""perf samples (cpu-clock, 2999 Hz) of one server -> CPU microseconds per
request by category. Usage: profile_categories.py PERF_DATA REQUESTS [--others]
(bench/profile.sh runs it)."""
import sys, subprocess, collections, re
data, reqs = sys.argv[1], int(sys.argv[2])
out = subprocess.run(["perf","script","-i",data,"-F","ip,sym,dso"], capture_output=True, text=True).stdout
rules = [
 ("guest code (JIT)", lambda s,d: "[JIT]" in d or "jitted" in d or re.search(r"perf-[0-9]+\.map", d)),
 ("kernel: scheduling, wake-ups, interrupts", lambda s,d: "kernel" in d and re.search(r"task_switch|spin_unlock|irqentry|schedule|wake|futex|select_task|enqueue|dequeue|update_curr|pick_next|__switch_to|idle|hrtimer|rcu|tick", s)),
 ("kernel: memory (page faults, pagemap reset, madvise)", lambda s,d: "kernel" in d and re.search(r"page|pgd|pmd|pte|madvise|mt_find|vma|zap|fault|mm_|tlb|folio|lru|memcg|clear_user|virt_addr", s)),
 ("kernel: sockets, TCP, syscalls, epoll", lambda s,d: "kernel" in d),
 ("wasmtime-wasi (WASI context, host calls)", lambda s,d: "wasmtime_wasi" in s or "wasi_common" in s or "cap_std" in s),
 ("wasmtime (store, instantiate, pooling allocator, call)", lambda s,d: "wasmtime" in s or "cranelift" in s),
 ("HTTP (hyper, httparse, axum, tower, http)", lambda s,d: re.search(r"hyper|httparse|axum|tower|\bhttp::|http_body", s)),
 ("JSON (serde_json)", lambda s,d: "serde_json" in s or "serde" in s),
 ("tokio (scheduler, timers, I/O driver)", lambda s,d: "tokio" in s or "mio" in s),
 ("aether (handlers, executor, metrics, request context)", lambda s,d: "aether" in s or "metrics" in s or "quanta" in s),
 ("libc: malloc/free", lambda s,d: re.search(r"malloc|free|_int_|consolidate|realloc|calloc", s)),
 ("libc: memmove/memset/memcmp", lambda s,d: re.search(r"mem(move|set|cpy|cmp)", s)),
 ("libc/vdso other (clock_gettime, writev, futex wrappers)", lambda s,d: "libc" in d or "vdso" in d or "libm" in d),
 ("other", lambda s,d: True),
]
counts = collections.Counter(); total = 0; others = collections.Counter()
for line in out.splitlines():
    m = re.match(r"\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$", line)
    if not m: continue
    s, d = m.group(2), m.group(3)
    total += 1
    for name, f in rules:
        if f(s, d):
            counts[name] += 1
            if name == "other": others[(s[:70], d[-30:])] += 1
            break
hz = 2999
print(f"samples {total}, requests {reqs}, CPU per request {total/hz/reqs*1e6:.2f} us")
for name, _ in rules:
    c = counts[name]
    if c: print(f"| {name} | {c/hz/reqs*1e6:.2f} | {100*c/total:.1f} % |")

if "--others" in sys.argv[3:]:
    for k, v in others.most_common(12): print(v, k)
