//! A counting global allocator for the allocation tests (`mod alloc_counter;` in a test file
//! installs it for that test binary).
//!
//! Allocations are counted per thread, so peers running on other threads of the same process (an
//! in-process venue, an echo server) do not disturb the count of the thread under test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

/// Counts allocations and reallocations made on the current thread, then defers to `System`.
pub(crate) struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; the counter is a const-initialised
// thread-local `Cell`, which needs no allocation (and `try_with` tolerates thread teardown).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made so far on the current thread.
pub(crate) fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}
