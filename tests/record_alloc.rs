//! The recorder's hot path does not allocate: after warm-up, reads and writes through `Recorded`
//! (with either flush policy) make no heap allocation, counted by a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Read, Write};

use hotwire::stream::record::{FlushPolicy, RecordOptions};
use hotwire::stream::{IntoRecorded, Stream};

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

/// Counts allocations made on the current thread, then defers to the system allocator.
struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; the counter is a thread-local `Cell` that
// needs no allocation.
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

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

/// Reads return a fixed message, every other one `WouldBlock`; writes accept everything.
struct Endless {
    toggle: bool,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.toggle = !self.toggle;
        if self.toggle {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let msg = b"{\"e\":\"trade\",\"p\":\"42.5\",\"q\":\"0.01\"}";
        buf[..msg.len()].copy_from_slice(msg);
        Ok(msg.len())
    }
}

impl Write for Endless {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Endless {}

#[test]
fn recording_does_not_allocate_per_record() {
    let dir = tempfile::tempdir().unwrap();
    for flush in [FlushPolicy::EveryRecord, FlushPolicy::Buffered(4096)] {
        let options = RecordOptions {
            flush,
            ..RecordOptions::default()
        };
        let mut s = Endless { toggle: false }
            .into_recorded_with(dir.path().join("alloc.hwr"), options)
            .unwrap();
        let mut buf = [0u8; 256];
        let mut step = |s: &mut hotwire::stream::Recorded<Endless>| {
            let _ = s.read(&mut buf);
            let _ = s.read(&mut buf);
            s.write_all(b"{\"op\":\"ping\"}").unwrap();
        };
        for _ in 0..1_000 {
            step(&mut s);
        }
        let before = allocs();
        for _ in 0..10_000 {
            step(&mut s);
        }
        let made = allocs() - before;
        s.flush_recording().unwrap();
        assert_eq!(
            made, 0,
            "{flush:?}: {made} allocations in 30,000 recorded events"
        );
        drop(s);
        let file = std::fs::File::open(dir.path().join("alloc.hwr")).unwrap();
        let mut r = hotwire::stream::record::RecordReader::new(io::BufReader::new(file)).unwrap();
        let mut n = 0;
        while r.next_record().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 11_000 * 3);
    }
}
