//! The recorder's hot path does not allocate: after warm-up, reads and writes through `Recorded`
//! (with either flush policy) make no heap allocation, counted by a global allocator.

use std::io::{self, Read, Write};

use hotwire::stream::record::IntoRecorded;
use hotwire::stream::record::{FlushPolicy, RecordOptions};
use hotwire::stream::Stream;

mod alloc_counter;

use alloc_counter::allocs;

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
        let mut step = |s: &mut hotwire::stream::record::Recorded<Endless>| {
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
