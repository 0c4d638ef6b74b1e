//! [`Recorded`]: a stream wrapper that records every byte in both directions.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::format::{RecordKind, RecordWriter};
use super::RecordOptions;
use crate::stream::{impl_mio_source, Stream};

/// A stream that records what passes through it (see the [module documentation](super)).
///
/// Reads and writes go to the inner stream unchanged; their results are then recorded. The clock is
/// read once per recorded event (a vDSO call, tens of nanoseconds), and records are encoded into one
/// reused buffer, so the hot path does not allocate.
///
/// When writing the recording fails, what happens depends on [`RecordOptions::fail_on_error`]: by
/// default the stream call *after* the failure returns the error (the call that produced the bytes
/// still returns them, so no data is lost to the caller); otherwise the failure is logged once and
/// recording stops.
#[derive(Debug)]
pub struct Recorded<S> {
    inner: S,
    log: RecordWriter<File>,
    path: PathBuf,
    /// Monotonic clock reading matching the header's start time.
    start: Instant,
    record_gaps: bool,
    fail_on_error: bool,
    /// A `WouldBlock` has been recorded and nothing inbound since.
    in_gap: bool,
    eof_recorded: bool,
    /// Recording has stopped (after a failure with `fail_on_error` off, or once it was reported).
    stopped: bool,
    /// A recording failure still to be reported to the caller.
    pending: Option<io::Error>,
}

impl<S: Stream> Recorded<S> {
    /// Creates (or truncates) the file at `path`, writes the header and starts recording `inner`.
    pub fn create(inner: S, path: impl AsRef<Path>, options: RecordOptions) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create recording {}: {e}", path.display()),
            )
        })?;
        let start = Instant::now();
        let start_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let label = options.label.as_deref().unwrap_or("");
        let log = RecordWriter::new(file, start_unix_ns, label, options.flush)?;
        Ok(Recorded {
            inner,
            log,
            path,
            start,
            record_gaps: options.record_gaps,
            fail_on_error: options.fail_on_error,
            in_gap: false,
            eof_recorded: false,
            stopped: false,
            pending: None,
        })
    }

    /// The recorded stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The recorded stream, mutably. Bytes read or written through it directly are not recorded.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The recording's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes buffered records to the file.
    pub fn flush_recording(&mut self) -> io::Result<()> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        if self.stopped {
            return Ok(());
        }
        self.log.flush()
    }

    /// Stops recording (writing buffered records to the file) and returns the stream. A failure of
    /// that last write is logged; call [`flush_recording`](Self::flush_recording) first to see it.
    pub fn into_inner(self) -> S {
        // Dropping the writer flushes it.
        let Recorded { inner, .. } = self;
        inner
    }

    #[inline]
    fn record(&mut self, kind: RecordKind, payload: &[u8]) {
        if self.stopped {
            return;
        }
        let t = self.start.elapsed().as_nanos() as u64;
        if let Err(e) = self.log.record(kind, t, payload) {
            self.fail(e);
        }
    }

    #[cold]
    fn fail(&mut self, e: io::Error) {
        self.stopped = true;
        let e = io::Error::new(
            e.kind(),
            format!("recording to {} failed: {e}", self.path.display()),
        );
        if self.fail_on_error {
            self.pending = Some(e);
        } else {
            log::warn!("{e}; recording stopped, the stream carries on");
        }
    }

    #[inline]
    fn check(&mut self) -> io::Result<()> {
        match self.pending.take() {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

impl<S: Stream> Read for Recorded<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => {
                if !self.eof_recorded {
                    self.eof_recorded = true;
                    self.in_gap = false;
                    self.record(RecordKind::Eof, &[]);
                }
                Ok(0)
            }
            Ok(n) => {
                if n > 0 {
                    self.in_gap = false;
                    self.record(RecordKind::Inbound, &buf[..n]);
                }
                Ok(n)
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::WouldBlock && self.record_gaps && !self.in_gap {
                    self.in_gap = true;
                    self.record(RecordKind::Gap, &[]);
                }
                Err(e)
            }
        }
    }
}

impl<S: Stream> Write for Recorded<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        let n = self.inner.write(buf)?;
        if n > 0 {
            self.record(RecordKind::Outbound, &buf[..n]);
        }
        Ok(n)
    }

    /// Flushes the inner stream. The recording is not flushed here (that would add a system call to
    /// every protocol flush); see [`Recorded::flush_recording`] and [`FlushPolicy`](super::FlushPolicy).
    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.inner.flush()
    }
}

impl<S: Stream> Stream for Recorded<S> {
    fn poll_connect(&mut self) -> io::Result<bool> {
        self.inner.poll_connect()
    }
    fn read_pending(&self) -> bool {
        self.inner.read_pending()
    }
    fn raw_fd(&self) -> Option<RawFd> {
        self.inner.raw_fd()
    }
    /// Passed to the inner stream. The recording has no record for it: the bytes that went out
    /// before are recorded, and the peer's end of stream is recorded when it is read.
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.check()?;
        self.inner.shutdown_write()
    }
}

impl_mio_source!(Recorded<S>, S: Stream);
