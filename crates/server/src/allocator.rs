//! mimalloc's options the server sets at start (see `bound_allocator_memory`
//! in `main.rs` for the rest of how memory is bounded).

use std::os::raw::{c_int, c_long};

// Linked from libmimalloc-sys (the `mimalloc` crate's C library).
use mimalloc as _;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (its 16th option;
/// libmimalloc-sys 0.1.49 builds mimalloc 3 and does not name it). The test
/// below checks that this index still holds its documented default, 1 s.
const MI_OPTION_PURGE_DELAY: c_int = 15;

unsafe extern "C" {
    fn mi_option_get(option: c_int) -> c_long;
    fn mi_option_set(option: c_int, value: c_long);
}

/// Gives freed memory back to the system at once instead of a second later
/// (mimalloc 3's default delay): pages freed by one burst of work (requests,
/// a batch of mails, a login's hash) stayed resident while the next burst
/// took pages of its own, and the peaks stacked. Peak RSS under the
/// benchmark fell ~2 MiB on MariaDB; no CPU cost was measurable
/// (docs/benchmarks.md). `MIMALLOC_PURGE_DELAY` in the environment still wins.
pub fn purge_freed_memory_at_once() {
    // SAFETY: reads and sets an integer option; mimalloc reads it at each
    // purge. An index that does not hold the expected default (another
    // mimalloc) is left alone.
    unsafe {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() && mi_option_get(MI_OPTION_PURGE_DELAY) == 1000 {
            mi_option_set(MI_OPTION_PURGE_DELAY, 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_where_it_is_expected_and_takes_the_setting() {
        // SAFETY: reads an integer option.
        let default = unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(default, 1000, "mimalloc 3's purge delay defaults to 1000 ms: is the option index still 15?");
        purge_freed_memory_at_once();
        // SAFETY: as above.
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 0);
    }
}
