//! The stack's TCP sockets and the huge-page arena their buffers live in, as one type.
//!
//! smoltcp's socket set borrows its sockets' buffers for its whole life, and the stack owns both
//! the set and the memory, so the borrow cannot be named as a lifetime of the stack. [`Sockets`]
//! keeps the two together and carries the invariant in its type: an arena slot exists only as the
//! buffers of a socket inside this set (the `'static` slices never leave this module), a slot
//! goes back to the arena only after its socket was removed and dropped, and [`Drop`] drops the
//! set before the arena, whatever the field order.

use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;

use super::umem::MemFacts;

/// One huge-page region carved into `slots` slots of `slot_size` bytes.
struct Arena {
    base: NonNull<u8>,
    layout: std::alloc::Layout,
    slot_size: usize,
    free: Vec<usize>,
}

impl Arena {
    /// An arena on huge pages, or `None` when not enough huge pages are free.
    fn on_huge_pages(slots: usize, slot_size: usize, facts: &MemFacts) -> Option<Arena> {
        let bytes = slots.checked_mul(slot_size)?;
        if slots == 0 || facts.huge_size == 0 || facts.huge_free * facts.huge_size < bytes as u64 {
            return None;
        }
        let layout = std::alloc::Layout::from_size_align(bytes, 4096).ok()?;
        // SAFETY: the layout has a non-zero size; the block is released in `Drop` with the same
        // layout.
        let base = NonNull::new(unsafe { hugepage_rs::alloc(layout) })?;
        Some(Arena {
            base,
            layout,
            slot_size,
            free: (0..slots).rev().collect(),
        })
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: `base` came from `hugepage_rs::alloc` with this layout and is freed once.
        unsafe { hugepage_rs::dealloc(self.base.as_ptr(), self.layout) }
    }
}

/// The TCP sockets of a stack, their buffers in a huge-page arena while it has room and on the
/// heap otherwise.
pub(crate) struct Sockets {
    set: ManuallyDrop<SocketSet<'static>>,
    arena: Option<Arena>,
    /// The arena slot of each socket whose buffers are in it.
    slots: Vec<(SocketHandle, usize)>,
    /// Receive and send buffer of each socket, bytes.
    buffer_size: usize,
}

impl std::fmt::Debug for Sockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sockets")
            .field("sockets", &self.set.iter().count())
            .field("in_arena", &self.slots.len())
            .field("arena_free", &self.arena.as_ref().map(|a| a.free.len()))
            .finish()
    }
}

impl Sockets {
    /// Sockets with buffers of `buffer_size` bytes each way; with `huge_pages`, an arena for
    /// `max_connections` of them when enough huge pages are free.
    pub(crate) fn new(
        buffer_size: usize,
        max_connections: usize,
        huge_pages: bool,
        facts: &MemFacts,
    ) -> Sockets {
        let arena = huge_pages
            .then(|| Arena::on_huge_pages(max_connections, buffer_size * 2, facts))
            .flatten();
        Sockets {
            set: ManuallyDrop::new(SocketSet::new(Vec::new())),
            arena,
            slots: Vec::new(),
            buffer_size,
        }
    }

    /// `true` when the buffers are on huge pages (while the arena has room).
    pub(crate) fn on_huge_pages(&self) -> bool {
        self.arena.is_some()
    }

    /// Adds a TCP socket after `setup` (options, `connect`) succeeded on it; on an error the
    /// socket is dropped and its slot returned.
    pub(crate) fn add<E>(
        &mut self,
        setup: impl FnOnce(&mut tcp::Socket<'static>) -> Result<(), E>,
    ) -> Result<SocketHandle, E> {
        let slot = self.arena.as_mut().and_then(|a| a.free.pop());
        let mut socket = match (slot, self.arena.as_ref()) {
            (Some(index), Some(arena)) => {
                // SAFETY: the slot lies inside the region (index < slots) and was on the free list,
                // so nothing else refers to it; it stays mapped until the arena drops, which
                // `Drop` does only after the set (and with it every socket) is gone. The slices
                // live only inside this socket, which lives only in this set (or is dropped below).
                let mem: &'static mut [u8] = unsafe {
                    std::slice::from_raw_parts_mut(
                        arena.base.as_ptr().add(index * arena.slot_size),
                        arena.slot_size,
                    )
                };
                let (rx, tx) = mem.split_at_mut(self.buffer_size);
                tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx))
            }
            _ => tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0u8; self.buffer_size]),
                tcp::SocketBuffer::new(vec![0u8; self.buffer_size]),
            ),
        };
        if let Err(e) = setup(&mut socket) {
            drop(socket);
            if let (Some(index), Some(arena)) = (slot, self.arena.as_mut()) {
                arena.free.push(index);
            }
            return Err(e);
        }
        let handle = self.set.add(socket);
        if let Some(index) = slot {
            self.slots.push((handle, index));
        }
        Ok(handle)
    }

    /// Removes and drops a socket, then returns its slot to the arena.
    pub(crate) fn remove(&mut self, handle: SocketHandle) {
        drop(self.set.remove(handle));
        if let Some(at) = self.slots.iter().position(|(h, _)| *h == handle) {
            let (_, index) = self.slots.swap_remove(at);
            if let Some(arena) = self.arena.as_mut() {
                arena.free.push(index);
            }
        }
    }

    /// A socket of the set.
    pub(crate) fn get_mut(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.set.get_mut::<tcp::Socket>(handle)
    }

    /// Sockets in the set.
    pub(crate) fn count(&self) -> usize {
        self.set.iter().count()
    }

    /// The set, for `Interface::poll`. Sockets leave it only through [`Sockets::remove`]: nothing
    /// else in the stack calls `SocketSet::remove`.
    pub(crate) fn set_mut(&mut self) -> &mut SocketSet<'static> {
        &mut self.set
    }
}

impl Drop for Sockets {
    fn drop(&mut self) {
        // SAFETY: dropped once, here, before the arena (a later field, dropped after this body)
        // whose slots its sockets borrow.
        unsafe { ManuallyDrop::drop(&mut self.set) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_sockets_come_and_go() {
        let facts = MemFacts {
            cap_ipc_lock: true,
            memlock: u64::MAX,
            huge_free: 0,
            huge_size: 0,
        };
        let mut s = Sockets::new(4096, 4, true, &facts);
        assert!(!s.on_huge_pages(), "no huge pages free: the heap");
        let h = s.add(|_| Ok::<(), ()>(())).unwrap();
        assert_eq!(s.add(|_| Err("refused")), Err("refused"));
        assert_eq!(s.count(), 1);
        assert_eq!(s.get_mut(h).recv_capacity(), 4096);
        s.remove(h);
        assert_eq!(s.count(), 0);
    }
}
