//! Giving freed memory back to the system once a thread goes idle.
//!
//! mimalloc returns freed pages to the system lazily, from inside later allocations and
//! frees. A thread that drained a deep queue and then has nothing to do would never get
//! there, and the server would keep its peak footprint until the next burst of work.
//! The event loop ([`crate::reactor`]) calls [`give_back`] when its thread has been idle
//! for a while.
#![allow(unsafe_code)]

/// Collects this thread's free pages and returns every unused page to the system now
/// (madvise), instead of at some later allocation. Costs a walk over this thread's
/// heap: call it when idle, not per job.
pub fn give_back() {
    // SAFETY: mi_collect has no preconditions; it only touches mimalloc's own state of
    // the calling thread and its process-wide arenas, under mimalloc's own locks. When
    // mimalloc is not the global allocator (unit tests) it finds nothing to collect.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
