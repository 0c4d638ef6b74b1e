//! Receive buffers that live on huge pages when a pool of them is handed over.
//!
//! The protocol clients (WebSocket, HTTP, FIX) read into one buffer each, for the life of the
//! connection, and touch it for every message: the hot read buffers. A [`BufPool`] is a region of
//! huge pages carved into equal slots; it belongs to whoever made it and is handed to whoever makes
//! buffers: [`HotBuf::in_pool`] takes a slot of a given pool, and [`HotBuf::new`] a slot of the
//! pool entered on the calling thread ([`BufPool::enter`]), heap memory otherwise. The XDP stack
//! makes a pool sized for its own connections (`crate::xdp::XdpConfig::huge_pages`, feature `xdp`)
//! and enters it on its IO thread, where every client over its streams is built (a stack and its
//! streams never leave their thread); another thread, or another stack's, is not affected.
//!
//! Slots are taken and returned when a buffer is created, outgrown or dropped (at connect and
//! disconnect), never per message; the pool's free list sits behind a mutex for that reason only.
//! A buffer that grows past its slot moves to the heap, contents kept.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

/// A region carved into equal slots. Every [`HotBuf`] in a slot holds an `Arc` of its pool, so the
/// region stays mapped while any of them lives.
struct Pool {
    base: NonNull<u8>,
    layout: std::alloc::Layout,
    slot_size: usize,
    free: Mutex<Vec<usize>>,
    on_huge_pages: bool,
}

// SAFETY: the region is plain memory; each slot is used by exactly one `HotBuf` at a time (taken
// from and returned to `free` under its mutex), so sharing the pool between threads is sound.
unsafe impl Send for Pool {}
// SAFETY: as above: the only shared mutable state is the mutex-protected free list.
unsafe impl Sync for Pool {}

impl Pool {
    /// `slots` slots of `slot_size` bytes (a multiple of 4096) on huge pages, or `None` when the
    /// kernel has too few free.
    #[cfg(feature = "xdp")]
    fn on_huge_pages(slots: usize, slot_size: usize) -> Option<Pool> {
        let layout = Self::layout(slots, slot_size)?;
        // Asked first: the huge-page allocator assumes a kernel with HugeTLB (it cannot size a
        // mapping without `Hugepagesize` in /proc/meminfo).
        let (free, size) = huge_pages();
        if !huge_pages_suffice(free, size, layout.size()) {
            return None;
        }
        // SAFETY: the layout has a non-zero size; the region is released in `Drop` with it.
        let base = NonNull::new(unsafe { hugepage_rs::alloc(layout) })?;
        Some(Pool::new(base, layout, slots, slot_size, true))
    }

    /// The same over ordinary memory (tests of the slot logic).
    #[cfg(test)]
    fn on_heap(slots: usize, slot_size: usize) -> Option<Pool> {
        let layout = Self::layout(slots, slot_size)?;
        // SAFETY: the layout has a non-zero size; the region is released in `Drop` with it.
        let base = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        Some(Pool::new(base, layout, slots, slot_size, false))
    }

    #[cfg(any(feature = "xdp", test))]
    fn layout(slots: usize, slot_size: usize) -> Option<std::alloc::Layout> {
        if slots == 0 || slot_size == 0 || slot_size % 4096 != 0 {
            return None;
        }
        std::alloc::Layout::from_size_align(slots.checked_mul(slot_size)?, 4096).ok()
    }

    #[cfg(any(feature = "xdp", test))]
    fn new(
        base: NonNull<u8>,
        layout: std::alloc::Layout,
        slots: usize,
        slot_size: usize,
        on_huge_pages: bool,
    ) -> Pool {
        Pool {
            base,
            layout,
            slot_size,
            free: Mutex::new((0..slots).rev().collect()),
            on_huge_pages,
        }
    }

    fn take(&self) -> Option<usize> {
        self.free.lock().ok()?.pop()
    }

    fn give_back(&self, slot: usize) {
        if let Ok(mut free) = self.free.lock() {
            free.push(slot);
        }
    }

    fn free_slots(&self) -> usize {
        self.free.lock().map_or(0, |f| f.len())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if self.on_huge_pages {
            #[cfg(feature = "xdp")]
            // SAFETY: `base` came from `hugepage_rs::alloc` with this layout; freed once.
            unsafe {
                hugepage_rs::dealloc(self.base.as_ptr(), self.layout)
            }
        } else {
            // SAFETY: `base` came from `std::alloc::alloc_zeroed` with this layout; freed once.
            unsafe { std::alloc::dealloc(self.base.as_ptr(), self.layout) }
        }
    }
}

/// `(free huge pages, huge page size in bytes)` from /proc/meminfo (zeros without HugeTLB).
#[cfg(feature = "xdp")]
fn huge_pages() -> (u64, u64) {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("HugePages_Free:"), field("Hugepagesize:") * 1024)
}

/// `true` when the kernel has HugeTLB (`size` > 0) and at least `bytes` of free huge pages.
#[cfg(feature = "xdp")]
fn huge_pages_suffice(free: u64, size: u64, bytes: usize) -> bool {
    size > 0 && free.saturating_mul(size) >= bytes as u64
}

/// A pool of equal read-buffer slots on huge pages, shared by its clones; the region stays mapped
/// while the pool or any buffer in it lives.
#[derive(Clone)]
pub struct BufPool(Arc<Pool>);

impl std::fmt::Debug for BufPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufPool")
            .field("slot_size", &self.slot_size())
            .field("free_slots", &self.free_slots())
            .field("on_huge_pages", &self.0.on_huge_pages)
            .finish()
    }
}

thread_local! {
    /// The pool [`HotBuf::new`] takes from on this thread ([`BufPool::enter`]).
    static ENTERED: std::cell::RefCell<Option<BufPool>> = const { std::cell::RefCell::new(None) };
}

impl BufPool {
    /// `slots` slots of `slot_size` bytes (rounded up to 4 KiB) on huge pages. `None` when too few
    /// huge pages are free, or in a build without the `xdp` feature (which brings the huge-page
    /// allocator).
    pub fn on_huge_pages(slots: usize, slot_size: usize) -> Option<BufPool> {
        #[cfg(feature = "xdp")]
        {
            let size = slot_size.checked_next_multiple_of(4096)?;
            Pool::on_huge_pages(slots, size).map(|p| BufPool(Arc::new(p)))
        }
        #[cfg(not(feature = "xdp"))]
        {
            let _ = (slots, slot_size);
            None
        }
    }

    /// Bytes per slot.
    pub fn slot_size(&self) -> usize {
        self.0.slot_size
    }

    /// Slots not in use.
    pub fn free_slots(&self) -> usize {
        self.0.free_slots()
    }

    /// Makes this the pool [`HotBuf::new`] takes from on the calling thread; returns the one
    /// entered before, if any.
    pub fn enter(&self) -> Option<BufPool> {
        ENTERED.with(|e| e.borrow_mut().replace(self.clone()))
    }

    /// Leaves the calling thread without a pool if this one is entered (a pool entered since by
    /// someone else stays).
    pub fn leave(&self) {
        ENTERED.with(|e| {
            let mut e = e.borrow_mut();
            if e.as_ref().is_some_and(|p| Arc::ptr_eq(&p.0, &self.0)) {
                *e = None;
            }
        });
    }

    /// The pool entered on the calling thread.
    pub fn entered() -> Option<BufPool> {
        ENTERED.with(|e| e.borrow().clone())
    }
}

enum Repr {
    Heap(Vec<u8>),
    Slot {
        pool: Arc<Pool>,
        slot: usize,
        len: usize,
    },
}

/// A fixed-length, growable byte buffer: a pool slot when one fits, the heap otherwise.
pub struct HotBuf {
    repr: Repr,
}

impl std::fmt::Debug for HotBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotBuf")
            .field("len", &self.len())
            .field("on_huge_pages", &self.on_huge_pages())
            .finish()
    }
}

impl HotBuf {
    /// `len` zero bytes, in a slot of the pool entered on this thread ([`BufPool::enter`]) when
    /// one is free and large enough, on the heap otherwise.
    pub fn new(len: usize) -> HotBuf {
        let pool = ENTERED.with(|e| e.borrow().as_ref().map(|p| Arc::clone(&p.0)));
        HotBuf::from_pool(pool, len)
    }

    /// `len` zero bytes, in a slot of `pool` when one is free and large enough, on the heap
    /// otherwise.
    pub fn in_pool(pool: Option<&BufPool>, len: usize) -> HotBuf {
        HotBuf::from_pool(pool.map(|p| Arc::clone(&p.0)), len)
    }

    fn from_pool(pool: Option<Arc<Pool>>, len: usize) -> HotBuf {
        if let Some(pool) = pool.filter(|p| len <= p.slot_size && len > 0) {
            if let Some(slot) = pool.take() {
                let mut buf = HotBuf {
                    repr: Repr::Slot { pool, slot, len },
                };
                // A slot may hold an earlier buffer's bytes: hand out zeros, as `vec!` does.
                buf.fill(0);
                return buf;
            }
        }
        HotBuf {
            repr: Repr::Heap(vec![0; len]),
        }
    }

    /// `true` when the bytes are in a huge-page slot.
    pub fn on_huge_pages(&self) -> bool {
        matches!(&self.repr, Repr::Slot { pool, .. } if pool.on_huge_pages)
    }

    /// Changes the length, keeping the bytes up to the shorter of the two lengths and zeroing any
    /// new ones. A slot buffer that outgrows its slot moves to the heap.
    pub fn resize(&mut self, new_len: usize) {
        let stays_in_slot = match &mut self.repr {
            Repr::Heap(v) => {
                v.resize(new_len, 0);
                return;
            }
            Repr::Slot { pool, len, .. } if new_len <= pool.slot_size => {
                let old = *len;
                *len = new_len;
                Some(old)
            }
            Repr::Slot { .. } => None,
        };
        match stays_in_slot {
            Some(old) if new_len > old => self[old..].fill(0),
            Some(_) => {}
            None => {
                let mut v = Vec::with_capacity(new_len);
                v.extend_from_slice(self);
                v.resize(new_len, 0);
                // Dropping the old representation gives its slot back.
                self.repr = Repr::Heap(v);
            }
        }
    }
}

impl Deref for HotBuf {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.repr {
            Repr::Heap(v) => v,
            // SAFETY: the slot lies inside the pool's region (slot < slots), is used by this buffer
            // alone until it is given back in `drop`, and the `Arc` keeps the region mapped.
            Repr::Slot { pool, slot, len } => unsafe {
                std::slice::from_raw_parts(pool.base.as_ptr().add(slot * pool.slot_size), *len)
            },
        }
    }
}

impl DerefMut for HotBuf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.repr {
            Repr::Heap(v) => v,
            // SAFETY: as in `deref`; `&mut self` makes this the only reference to the slot.
            Repr::Slot { pool, slot, len } => unsafe {
                std::slice::from_raw_parts_mut(pool.base.as_ptr().add(*slot * pool.slot_size), *len)
            },
        }
    }
}

impl Drop for Repr {
    fn drop(&mut self) {
        if let Repr::Slot { pool, slot, .. } = self {
            pool.give_back(*slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(slots: usize) -> Option<Arc<Pool>> {
        Some(pool_arc(slots))
    }

    fn pool_arc(slots: usize) -> Arc<Pool> {
        Arc::new(Pool::on_heap(slots, 8192).unwrap())
    }

    #[cfg(feature = "xdp")]
    #[test]
    fn huge_pages_are_asked_for_only_when_the_kernel_has_them_free() {
        assert!(!huge_pages_suffice(512, 0, 4096), "no HugeTLB");
        assert!(huge_pages_suffice(1, 2 << 20, 2 << 20));
        assert!(!huge_pages_suffice(1, 2 << 20, (2 << 20) + 1));
        assert!(!huge_pages_suffice(0, 2 << 20, 4096));
        assert!(huge_pages_suffice(u64::MAX, 1 << 30, usize::MAX));
    }

    #[test]
    fn an_impossible_slot_size_makes_no_pool() {
        // Rounding up to 4 KiB would overflow: refused, not a panic.
        assert!(BufPool::on_huge_pages(1, usize::MAX).is_none());
        assert!(BufPool::on_huge_pages(0, 4096).is_none());
    }

    #[test]
    fn the_entered_pool_is_this_threads_alone() {
        let pool = BufPool(pool(2).unwrap());
        assert!(pool.enter().is_none());
        let here = HotBuf::new(100);
        assert!(matches!(here.repr, Repr::Slot { .. }));
        let there = std::thread::spawn(|| matches!(HotBuf::new(100).repr, Repr::Heap(_)));
        assert!(there.join().unwrap(), "another thread has no pool");
        assert_eq!(pool.free_slots(), 1);
        let other = BufPool(pool_arc(1));
        other.enter();
        pool.leave();
        assert!(
            BufPool::entered().is_some(),
            "leaving another pool keeps this one"
        );
        other.leave();
        assert!(BufPool::entered().is_none());
        assert!(matches!(HotBuf::new(100).repr, Repr::Heap(_)));
        drop(here);
        assert_eq!(pool.free_slots(), 2);
    }

    #[test]
    fn slots_are_zeroed_reused_and_returned() {
        let p = pool(2);
        let mut a = HotBuf::from_pool(p.clone(), 4096);
        assert!(matches!(a.repr, Repr::Slot { .. }));
        a.fill(0xab);
        drop(a);
        assert_eq!(p.as_ref().unwrap().free_slots(), 2);
        let b = HotBuf::from_pool(p.clone(), 8192);
        assert!(
            b.iter().all(|&x| x == 0),
            "a reused slot is handed out zeroed"
        );
        let c = HotBuf::from_pool(p.clone(), 100);
        let d = HotBuf::from_pool(p.clone(), 100);
        assert!(matches!(c.repr, Repr::Slot { .. }));
        assert!(matches!(d.repr, Repr::Heap(_)), "the pool is empty");
        drop((b, c, d));
        assert_eq!(p.unwrap().free_slots(), 2);
    }

    #[test]
    fn too_large_or_empty_requests_use_the_heap() {
        let p = pool(4);
        assert!(matches!(
            HotBuf::from_pool(p.clone(), 8193).repr,
            Repr::Heap(_)
        ));
        assert!(matches!(
            HotBuf::from_pool(p.clone(), 0).repr,
            Repr::Heap(_)
        ));
        assert!(matches!(HotBuf::from_pool(None, 10).repr, Repr::Heap(_)));
    }

    #[test]
    fn resizing_keeps_the_bytes_and_leaves_the_slot_when_outgrown() {
        let p = pool(1);
        let mut b = HotBuf::from_pool(p.clone(), 1000);
        for (i, x) in b.iter_mut().enumerate() {
            *x = i as u8;
        }
        b.resize(500);
        b.resize(8000);
        assert!(matches!(b.repr, Repr::Slot { .. }));
        assert!(b[..500].iter().enumerate().all(|(i, &x)| x == i as u8));
        assert!(b[500..].iter().all(|&x| x == 0), "regrown bytes are zeroed");
        b.resize(20_000);
        assert!(matches!(b.repr, Repr::Heap(_)));
        assert_eq!(b.len(), 20_000);
        assert!(b[..500].iter().enumerate().all(|(i, &x)| x == i as u8));
        assert_eq!(p.as_ref().unwrap().free_slots(), 1, "the slot went back");
        // The pool outlives the buffers that used it, and the other way round.
        let c = HotBuf::from_pool(p.clone(), 10);
        drop(p);
        assert_eq!(c.len(), 10);
    }

    #[test]
    fn pool_layouts_are_checked() {
        assert!(Pool::layout(0, 4096).is_none());
        assert!(Pool::layout(4, 1000).is_none());
        assert!(Pool::layout(usize::MAX, 4096).is_none());
        assert!(Pool::layout(4, 8192).is_some());
    }
}
