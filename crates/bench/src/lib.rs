//! Helpers shared by the benchmark ceilings (see `bench/run.sh`).

/// Seconds to run, from the first argument (default 10).
pub fn seconds_arg(default: u64) -> u64 {
    std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(default)
}
