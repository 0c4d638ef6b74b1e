//! [`Replay`]: a recording played back as a stream.

use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::path::Path;

use super::format::{decode_header, locate_record, Header, Located, RecordError, RecordKind, Tail};
use crate::stream::{impl_mio_source, Stream};

/// The inbound side of a recording, played back as a non-blocking stream.
///
/// - `read` returns the recorded inbound bytes with their recorded boundaries: one read returns
///   bytes of one recorded read only (part of it when the buffer is smaller; the rest comes on the
///   next read), never bytes of two.
/// - Where a gap was recorded, `read` returns `WouldBlock` once.
/// - At the recorded end of stream, and at the end of the file, `read` returns `Ok(0)` (and keeps
///   doing so).
/// - `write` accepts every byte. In [strict](Self::strict) mode the bytes must equal the recorded
///   outbound bytes (compared as one byte stream, since write boundaries depend on the caller), and
///   the first difference is an [`RecordError::OutboundMismatch`] error.
///
/// The whole file is read into memory and checked when the replay is opened, so a corrupted record
/// is reported before the first read, and reads are plain copies. A file cut off inside a record
/// replays up to its last whole record ([`tail`](Self::tail) says so).
#[derive(Debug)]
pub struct Replay {
    data: Vec<u8>,
    header: Header,
    /// End of the last whole record.
    end: usize,
    tail: Tail,
    /// Offset of the next record the read side looks at.
    rd: usize,
    /// Unread bytes of the current inbound record, as a range of `data`.
    cur: (usize, usize),
    /// The current inbound record continues in the next one (one read larger than a record).
    cur_continued: bool,
    /// Time of the last record the read side consumed, nanoseconds since the start.
    time_ns: u64,
    eof: bool,
    strict: bool,
    /// Offset of the next record the write side looks at, and the unmatched part of the current
    /// outbound record.
    wr: usize,
    wcur: (usize, usize),
    written: u64,
    /// [`Stream::shutdown_write`] was called.
    write_shut: bool,
}

impl Replay {
    /// Opens and checks the recording at `path`.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Replay> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot read recording {}: {e}", path.display()),
            )
        })?;
        Replay::from_bytes(data)
    }

    /// Reads a whole recording from `src` and checks it.
    pub fn from_reader(mut src: impl Read) -> io::Result<Replay> {
        let mut data = Vec::new();
        src.read_to_end(&mut data)?;
        Replay::from_bytes(data)
    }

    /// Checks a recording held in memory. Errors are of kind `InvalidData` and carry a
    /// [`RecordError`] (reach it with [`io::Error::get_ref`] and `downcast_ref`).
    pub fn from_bytes(data: Vec<u8>) -> io::Result<Replay> {
        let (header, first) = match decode_header(&data)? {
            Some(h) => h,
            None => return Err(RecordError::TruncatedHeader { len: data.len() }.into()),
        };
        let mut end = first;
        let tail = loop {
            match locate_record(&data[end..], end as u64)? {
                Some(loc) => end += loc.len(),
                None if end == data.len() => break Tail::Complete,
                None => {
                    break Tail::Truncated {
                        offset: end as u64,
                        len: data.len() - end,
                    }
                }
            }
        };
        Ok(Replay {
            data,
            header,
            end,
            tail,
            rd: first,
            cur: (0, 0),
            cur_continued: false,
            time_ns: 0,
            eof: false,
            strict: false,
            wr: first,
            wcur: (0, 0),
            written: 0,
            write_shut: false,
        })
    }

    /// Turns strict mode on or off: in strict mode writes must match the recorded outbound bytes.
    pub fn strict(mut self, on: bool) -> Self {
        self.strict = on;
        self
    }

    /// The recording's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// How the file ended.
    pub fn tail(&self) -> Tail {
        self.tail
    }

    /// Recorded wall-clock time of the last record the reads reached, in nanoseconds since the UNIX
    /// epoch: the `now` a client driven by this replay should use to behave as it did live.
    pub fn now_unix_ns(&self) -> u64 {
        self.header.start_unix_ns.saturating_add(self.time_ns)
    }

    /// Bytes written so far (in strict mode: matched against the recording).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// In strict mode, `true` once every recorded outbound byte has been written.
    pub fn outbound_complete(&mut self) -> bool {
        self.wcur.0 == self.wcur.1 && self.next_outbound().is_none()
    }

    /// The whole record at `at`, if any. Records before `end` were checked at construction.
    fn located(&self, at: usize) -> Option<Located> {
        if at >= self.end {
            return None;
        }
        locate_record(&self.data[at..self.end], at as u64)
            .ok()
            .flatten()
    }

    /// Moves the write side to the next outbound record with bytes; `None` when there is none.
    fn next_outbound(&mut self) -> Option<()> {
        while self.wcur.0 == self.wcur.1 {
            let at = self.wr;
            let loc = self.located(at)?;
            self.wr += loc.len();
            if loc.kind == RecordKind::Outbound {
                self.wcur = (at + loc.payload.0, at + loc.payload.1);
            }
        }
        Some(())
    }
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        loop {
            let (from, to) = self.cur;
            if from < to {
                let k = (to - from).min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&self.data[from..from + k]);
                self.cur.0 += k;
                n += k;
                if n == buf.len() {
                    return Ok(n);
                }
            }
            // The current record is used up: stop at its boundary unless the read continues.
            if (n > 0 && !self.cur_continued) || self.eof {
                return Ok(n);
            }
            let at = self.rd;
            let Some(loc) = self.located(at) else {
                self.eof = true;
                return Ok(n);
            };
            self.rd += loc.len();
            self.time_ns = loc.time_ns;
            self.cur_continued = false;
            match loc.kind {
                RecordKind::Inbound => {
                    self.cur = (at + loc.payload.0, at + loc.payload.1);
                    self.cur_continued = loc.continued;
                }
                RecordKind::Outbound => {}
                RecordKind::Gap if n == 0 => return Err(io::ErrorKind::WouldBlock.into()),
                RecordKind::Gap => return Ok(n),
                RecordKind::Eof => {
                    self.eof = true;
                    return Ok(n);
                }
            }
        }
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.write_shut {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown_write",
            ));
        }
        if !self.strict {
            self.written += buf.len() as u64;
            return Ok(buf.len());
        }
        let mut rest = buf;
        while !rest.is_empty() {
            if self.next_outbound().is_none() {
                return Err(RecordError::OutboundMismatch {
                    offset: self.written,
                    expected: None,
                    found: rest[0],
                }
                .into());
            }
            let (from, to) = self.wcur;
            let k = (to - from).min(rest.len());
            let want = &self.data[from..from + k];
            if let Some(i) = want.iter().zip(rest).position(|(a, b)| a != b) {
                return Err(RecordError::OutboundMismatch {
                    offset: self.written + i as u64,
                    expected: Some(want[i]),
                    found: rest[i],
                }
                .into());
            }
            self.wcur.0 += k;
            self.written += k as u64;
            rest = &rest[k..];
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Replay {
    fn poll_connect(&mut self) -> io::Result<bool> {
        Ok(true)
    }

    /// `true` while the reads have not reached the recorded end: there is always something to do
    /// (bytes, a gap, or the end of stream), and no descriptor to wait on.
    fn read_pending(&self) -> bool {
        !self.eof
    }

    fn raw_fd(&self) -> Option<RawFd> {
        None
    }

    /// Ends the write side: later writes fail with `BrokenPipe`, as on a socket. Reads go on to the
    /// recorded end.
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.write_shut = true;
        Ok(())
    }
}

impl_mio_source!(Replay);
