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

/// Environment variable naming the one test a child process runs.
const ALONE: &str = "AETHER_TEST_ALONE";

/// Whole-process measurements (descriptors, RSS) are only true when no
/// other test shares the process: call this first in such a test, with
/// its libtest name (`module::test_name`). In the test binary run by
/// cargo it runs that one test again in a child process of its own and
/// returns `false` once the child passed (the caller then returns); in
/// that child it returns `true` (the caller measures).
///
/// # Panics
///
/// When the child fails (its output is on this test's output).
pub fn alone(test: &str) -> bool {
    if std::env::var(ALONE).is_ok_and(|t| t == test) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let status = std::process::Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(ALONE, test)
        .status()
        .expect("the test binary runs again");
    assert!(
        status.success(),
        "{test}, run alone in a child process, failed: {status}"
    );
    false
}
