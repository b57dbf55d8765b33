//! Measurements of this process (Linux `/proc`): resident memory and open
//! file descriptors, for "memory stays bounded" and "no fd leak" checks.

/// Resident set size of this process in KiB (0 where `/proc` is missing).
pub fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Open file descriptors of this process (0 where `/proc` is missing).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}
