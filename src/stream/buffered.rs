//! Write coalescing: [`Buffered`] (documented there).

use std::io::{self, Read, Write};
use std::os::fd::RawFd;

use super::{impl_mio_source, would_block, Stream};

/// A write-coalescing stream.
///
/// Write coalescing: a protocol frame (header + payload) leaves in one syscall.
///
/// [`Buffered`] collects writes in a fixed buffer allocated once, and hands them to the inner stream on
/// [`Write::flush`] (or when the buffer fills). A write larger than the whole buffer goes straight to
/// the inner stream after what is already queued, so ordering is kept and nothing is copied twice.
/// Reads pass through untouched.
#[derive(Debug)]
pub struct Buffered<S> {
    inner: S,
    buf: Box<[u8]>,
    /// Bytes `start..end` of `buf` are queued and not yet written.
    start: usize,
    end: usize,
}

impl<S: Stream> Buffered<S> {
    /// Wraps `inner` with a write buffer of `capacity` bytes (at least 1).
    pub fn with_capacity(inner: S, capacity: usize) -> Self {
        Buffered {
            inner,
            buf: vec![0u8; capacity.max(1)].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Bytes queued and not yet handed to the inner stream.
    pub fn queued(&self) -> usize {
        self.end - self.start
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream, mutably. Writing to it directly bypasses (and reorders against) the queue.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the stream; queued bytes are returned alongside it so nothing is lost silently.
    pub fn into_parts(self) -> (S, Vec<u8>) {
        let rest = self.buf[self.start..self.end].to_vec();
        (self.inner, rest)
    }

    /// Writes queued bytes to the inner stream until it would block or the queue is empty.
    fn drain(&mut self) -> io::Result<()> {
        while self.start < self.end {
            match self.inner.write(&self.buf[self.start..self.end]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.start += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.start = 0;
        self.end = 0;
        Ok(())
    }
}

impl<S: Stream> Write for Buffered<S> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.buf.len() - self.end < data.len() {
            // Make room: move queued bytes out, then compact what the inner stream refused.
            match self.drain() {
                Ok(()) => {}
                Err(e) if would_block(&e) => {
                    self.buf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                }
                Err(e) => return Err(e),
            }
            if self.start == self.end && data.len() >= self.buf.len() {
                // Too big to ever fit and nothing queued ahead of it: pass it straight through.
                return self.inner.write(data);
            }
        }
        let room = self.buf.len() - self.end;
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = room.min(data.len());
        self.buf[self.end..self.end + n].copy_from_slice(&data[..n]);
        self.end += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.inner.flush()
    }
}

impl<S: Stream> Read for Buffered<S> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<S: Stream> Stream for Buffered<S> {
    fn poll_connect(&mut self) -> io::Result<bool> {
        self.inner.poll_connect()
    }
    fn read_pending(&self) -> bool {
        self.inner.read_pending()
    }
    fn raw_fd(&self) -> Option<RawFd> {
        self.inner.raw_fd()
    }
    /// Writes the queued bytes first; `WouldBlock` while some remain.
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.flush()?;
        self.inner.shutdown_write()
    }
}

impl_mio_source!(Buffered<S>, S: Stream);

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory stream that accepts at most `budget` bytes per write call and counts calls,
    /// returning `WouldBlock` when `blocked`.
    #[derive(Default)]
    struct Sink {
        out: Vec<u8>,
        calls: usize,
        budget: usize,
        blocked: bool,
    }
    impl Read for Sink {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.blocked {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls += 1;
            let n = b.len().min(self.budget);
            self.out.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Stream for Sink {}

    #[test]
    fn header_and_payload_leave_in_one_call() {
        let mut b = Buffered::with_capacity(
            Sink {
                budget: 1 << 20,
                ..Default::default()
            },
            64,
        );
        b.write_all(b"\x81\x05").unwrap();
        b.write_all(b"hello").unwrap();
        b.flush().unwrap();
        assert_eq!(b.get_ref().calls, 1);
        assert_eq!(b.get_ref().out, b"\x81\x05hello");
    }

    #[test]
    fn large_writes_pass_through_in_order() {
        let mut b = Buffered::with_capacity(
            Sink {
                budget: 1 << 20,
                ..Default::default()
            },
            8,
        );
        b.write_all(b"abc").unwrap();
        let big: Vec<u8> = (0..100u8).collect();
        b.write_all(&big).unwrap();
        b.write_all(b"xyz").unwrap();
        b.flush().unwrap();
        let mut want = b"abc".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"xyz");
        assert_eq!(b.get_ref().out, want);
    }

    #[test]
    fn would_block_keeps_everything_queued() {
        let mut b = Buffered::with_capacity(
            Sink {
                budget: 3,
                blocked: true,
                ..Default::default()
            },
            16,
        );
        assert_eq!(b.write(b"0123456789").unwrap(), 10);
        assert!(would_block(&b.flush().unwrap_err()));
        // The buffer has 6 bytes left: a larger write is partially accepted, then refused.
        assert_eq!(b.write(b"abcdefgh").unwrap(), 6);
        assert!(would_block(&b.write(b"zz").unwrap_err()));
        b.get_mut().blocked = false;
        b.flush().unwrap();
        assert_eq!(b.get_ref().out, b"0123456789abcdef");
        assert_eq!(b.queued(), 0);
    }
}
