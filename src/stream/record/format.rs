//! Encoder and decoder of the recording file format (specified in the [parent module](super)).
//!
//! The encode and decode functions are sans-IO: bytes in, bytes or borrowed views out, no clock (times
//! are passed in). [`RecordReader`] drives the decoder over any [`Read`] and [`RecordWriter`] drives the
//! encoder into any [`Write`] under a [`FlushPolicy`].

use std::io::{self, Read, Write};

use super::crc::{crc32c, Crc32c};
use super::FlushPolicy;

/// The eight bytes every recording starts with.
pub const MAGIC: [u8; 8] = *b"\x89HWR\r\n\x1a\n";
/// The format version this module writes and reads.
pub const VERSION: u16 = 1;
/// Longest label, in bytes.
pub const MAX_LABEL: usize = 1024;
/// Largest payload of one record, in bytes (16 MiB). Bounds the reader's memory.
pub const MAX_PAYLOAD: usize = 16 << 20;
/// Size of the fixed part of a record, before the payload.
pub const RECORD_HEADER_LEN: usize = 20;
/// Record flag: the next record carries more bytes of the same read or write.
pub const FLAG_CONTINUED: u8 = 0x01;

/// Size of the header before the label.
const HEADER_FIXED_LEN: usize = 22;

/// What a record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// Bytes a `read` returned.
    Inbound = 1,
    /// Bytes the inner stream accepted from a `write`.
    Outbound = 2,
    /// A `read` returned `Ok(0)`: the peer closed its side.
    Eof = 3,
    /// A `read` returned `WouldBlock` (one record per run of them).
    Gap = 4,
}

impl RecordKind {
    /// The kind with this wire value.
    pub fn from_u8(v: u8) -> Option<RecordKind> {
        Some(match v {
            1 => RecordKind::Inbound,
            2 => RecordKind::Outbound,
            3 => RecordKind::Eof,
            4 => RecordKind::Gap,
            _ => return None,
        })
    }

    /// A short lowercase name: `in`, `out`, `eof`, `gap`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Inbound => "in",
            RecordKind::Outbound => "out",
            RecordKind::Eof => "eof",
            RecordKind::Gap => "gap",
        }
    }

    /// `true` for the kinds that carry bytes.
    pub fn has_payload(self) -> bool {
        matches!(self, RecordKind::Inbound | RecordKind::Outbound)
    }
}

/// The decoded file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version (always [`VERSION`] for a header this module decoded).
    pub version: u16,
    /// When the recording began: nanoseconds since the UNIX epoch, UTC.
    pub start_unix_ns: u64,
    /// The label given when recording.
    pub label: String,
}

/// One decoded record, borrowing its payload from the decoder's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// What happened.
    pub kind: RecordKind,
    /// The next record continues this read or write (see [`FLAG_CONTINUED`]).
    pub continued: bool,
    /// Nanoseconds since the header's start time.
    pub time_ns: u64,
    /// The bytes (empty for [`RecordKind::Eof`] and [`RecordKind::Gap`]).
    pub payload: &'a [u8],
}

impl RecordRef<'_> {
    /// Bytes this record occupies in the file.
    pub fn encoded_len(&self) -> usize {
        RECORD_HEADER_LEN + self.payload.len()
    }
}

/// How a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// The file ends exactly after its last record.
    Complete,
    /// The file ends inside a record: `len` bytes at file offset `offset` are a partial record and
    /// were ignored. Everything before `offset` was read.
    Truncated {
        /// File offset where the partial record starts.
        offset: u64,
        /// How many bytes of it the file holds.
        len: usize,
    },
}

/// Everything that can be wrong with a recording (and with a strict replay).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The file does not start with [`MAGIC`]: not a recording.
    #[error("not a hotwire recording (bad magic)")]
    BadMagic,
    /// A format version this build does not read.
    #[error("unsupported recording format version {0}")]
    UnsupportedVersion(u16),
    /// Header flags this version does not define.
    #[error("unknown header flags {0:#06x}")]
    HeaderFlags(u16),
    /// A label longer than [`MAX_LABEL`].
    #[error("label of {0} bytes is longer than the limit")]
    LabelTooLong(usize),
    /// A label that is not UTF-8.
    #[error("label is not UTF-8")]
    LabelNotUtf8,
    /// The header's checksum does not match its bytes.
    #[error("header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    HeaderChecksum {
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the bytes in the file.
        computed: u32,
    },
    /// The file ends before the header does.
    #[error("file ends inside the header (after {len} bytes)")]
    TruncatedHeader {
        /// Bytes the file holds.
        len: usize,
    },
    /// A record kind this version does not define.
    #[error("record at byte {offset}: unknown kind {kind}")]
    UnknownKind {
        /// File offset of the record.
        offset: u64,
        /// The kind byte.
        kind: u8,
    },
    /// Record flags or reserved bits this version does not define.
    #[error("record at byte {offset}: unknown flags or reserved bits {bits:#06x}")]
    RecordFlags {
        /// File offset of the record.
        offset: u64,
        /// Bytes 1..4 of the record (flags, then the reserved field).
        bits: u32,
    },
    /// A payload length above [`MAX_PAYLOAD`], or a non-zero length on an event record.
    #[error("record at byte {offset}: impossible length {len}")]
    RecordLength {
        /// File offset of the record.
        offset: u64,
        /// The length field.
        len: u32,
    },
    /// A record whose checksum does not match its bytes.
    #[error("record at byte {offset}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    RecordChecksum {
        /// File offset of the record.
        offset: u64,
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the bytes in the file.
        computed: u32,
    },
    /// A strict [`Replay`](super::Replay) was written bytes that differ from the recorded outbound
    /// bytes.
    #[error("replay: outbound byte {offset} is {found:#04x}, the recording has {expected:?}")]
    OutboundMismatch {
        /// Position in the outbound byte stream (all outbound payloads back to back).
        offset: u64,
        /// The recorded byte, `None` when the recording has no more outbound bytes.
        expected: Option<u8>,
        /// The byte written.
        found: u8,
    },
    /// Reading or writing the file failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<RecordError> for io::Error {
    fn from(e: RecordError) -> io::Error {
        match e {
            RecordError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Appends the file header to `out`.
pub fn encode_header(
    start_unix_ns: u64,
    label: &str,
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    if label.len() > MAX_LABEL {
        return Err(RecordError::LabelTooLong(label.len()));
    }
    let from = out.len();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&start_unix_ns.to_le_bytes());
    out.extend_from_slice(&(label.len() as u16).to_le_bytes());
    out.extend_from_slice(label.as_bytes());
    let crc = crc32c(&out[from..]);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Decodes the header at the start of `buf`: `Ok(Some((header, len)))`, or `Ok(None)` when `buf` is a
/// valid but incomplete prefix of a header.
pub fn decode_header(buf: &[u8]) -> Result<Option<(Header, usize)>, RecordError> {
    let m = buf.len().min(MAGIC.len());
    if buf[..m] != MAGIC[..m] {
        return Err(RecordError::BadMagic);
    }
    if buf.len() < HEADER_FIXED_LEN {
        return Ok(None);
    }
    let version = u16::from_le_bytes([buf[8], buf[9]]);
    if version != VERSION {
        return Err(RecordError::UnsupportedVersion(version));
    }
    let flags = u16::from_le_bytes([buf[10], buf[11]]);
    let label_len = u16::from_le_bytes([buf[20], buf[21]]) as usize;
    let total = HEADER_FIXED_LEN + label_len + 4;
    if buf.len() < total {
        // Flags and label length are checked once the checksum can vouch for them; a bad length
        // that asks for more than the limit is refused at once so the caller does not wait for it.
        if label_len > MAX_LABEL {
            return Err(RecordError::LabelTooLong(label_len));
        }
        return Ok(None);
    }
    let body = &buf[..HEADER_FIXED_LEN + label_len];
    let stored = u32::from_le_bytes(buf[total - 4..total].try_into().expect("4 bytes"));
    let computed = crc32c(body);
    if stored != computed {
        return Err(RecordError::HeaderChecksum { stored, computed });
    }
    if flags != 0 {
        return Err(RecordError::HeaderFlags(flags));
    }
    if label_len > MAX_LABEL {
        return Err(RecordError::LabelTooLong(label_len));
    }
    let label = std::str::from_utf8(&body[HEADER_FIXED_LEN..])
        .map_err(|_| RecordError::LabelNotUtf8)?
        .to_owned();
    let start_unix_ns = u64::from_le_bytes(buf[12..20].try_into().expect("8 bytes"));
    Ok(Some((
        Header {
            version,
            start_unix_ns,
            label,
        },
        total,
    )))
}

/// The fixed part of a record (everything but the payload), checksum included.
///
/// # Panics
///
/// If `payload` is longer than [`MAX_PAYLOAD`], or non-empty for an event kind: a caller bug, never
/// peer input ([`RecordWriter`] splits long payloads).
pub fn encode_record_header(
    kind: RecordKind,
    continued: bool,
    time_ns: u64,
    payload: &[u8],
) -> [u8; RECORD_HEADER_LEN] {
    assert!(
        payload.len() <= MAX_PAYLOAD,
        "record payload over MAX_PAYLOAD"
    );
    assert!(
        kind.has_payload() || payload.is_empty(),
        "event record with a payload"
    );
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[0] = kind as u8;
    h[1] = if continued { FLAG_CONTINUED } else { 0 };
    h[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[8..16].copy_from_slice(&time_ns.to_le_bytes());
    let mut crc = Crc32c::new();
    crc.update(&h[..16]);
    crc.update(payload);
    h[16..20].copy_from_slice(&crc.finish().to_le_bytes());
    h
}

/// Appends one whole record to `out` (see [`encode_record_header`] for the panics).
pub fn encode_record(
    kind: RecordKind,
    continued: bool,
    time_ns: u64,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&encode_record_header(kind, continued, time_ns, payload));
    out.extend_from_slice(payload);
}

/// A record located in a buffer: the payload as a range, so callers can re-borrow after moving on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located {
    pub(crate) kind: RecordKind,
    pub(crate) continued: bool,
    pub(crate) time_ns: u64,
    /// Payload position relative to the start of the decoded slice.
    pub(crate) payload: (usize, usize),
}

impl Located {
    pub(crate) fn len(&self) -> usize {
        self.payload.1
    }

    pub(crate) fn view<'a>(&self, buf: &'a [u8]) -> RecordRef<'a> {
        RecordRef {
            kind: self.kind,
            continued: self.continued,
            time_ns: self.time_ns,
            payload: &buf[self.payload.0..self.payload.1],
        }
    }
}

/// Checks and locates the record at the start of `buf`, which sits at file offset `offset` (used in
/// errors only). `Ok(None)`: `buf` holds only part of the record.
pub(crate) fn locate_record(buf: &[u8], offset: u64) -> Result<Option<Located>, RecordError> {
    if buf.len() < RECORD_HEADER_LEN {
        return Ok(None);
    }
    let kind = RecordKind::from_u8(buf[0]).ok_or(RecordError::UnknownKind {
        offset,
        kind: buf[0],
    })?;
    let bits = u32::from_le_bytes([buf[1], buf[2], buf[3], 0]);
    if bits & !(FLAG_CONTINUED as u32) != 0 || (bits != 0 && !kind.has_payload()) {
        return Err(RecordError::RecordFlags { offset, bits });
    }
    let len = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    if len as usize > MAX_PAYLOAD || (len != 0 && !kind.has_payload()) {
        return Err(RecordError::RecordLength { offset, len });
    }
    let end = RECORD_HEADER_LEN + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    let stored = u32::from_le_bytes(buf[16..20].try_into().expect("4 bytes"));
    let mut crc = Crc32c::new();
    crc.update(&buf[..16]);
    crc.update(&buf[RECORD_HEADER_LEN..end]);
    let computed = crc.finish();
    if stored != computed {
        return Err(RecordError::RecordChecksum {
            offset,
            stored,
            computed,
        });
    }
    Ok(Some(Located {
        kind,
        continued: bits != 0,
        time_ns: u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes")),
        payload: (RECORD_HEADER_LEN, end),
    }))
}

/// Decodes the record at the start of `buf` (at file offset `offset`, for errors):
/// `Ok(Some((record, len)))`, or `Ok(None)` when `buf` holds only part of it.
pub fn decode_record(
    buf: &[u8],
    offset: u64,
) -> Result<Option<(RecordRef<'_>, usize)>, RecordError> {
    Ok(locate_record(buf, offset)?.map(|l| (l.view(buf), l.len())))
}

/// Reads a recording from any [`Read`]: the header at construction, then one record per
/// [`next_record`](Self::next_record), borrowing each payload from an internal buffer.
///
/// Memory is bounded: the buffer grows to at most one record ([`MAX_PAYLOAD`] plus its header).
#[derive(Debug)]
pub struct RecordReader<R> {
    src: R,
    header: Header,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[pos..end]`; `buf[pos]` is at file offset `offset`.
    pos: usize,
    end: usize,
    offset: u64,
    /// Set once reading has stopped: `Some(tail)` at the end of the file, `None` after an error.
    finished: Option<Option<Tail>>,
}

impl<R: Read> RecordReader<R> {
    /// Reads and checks the header.
    pub fn new(src: R) -> Result<Self, RecordError> {
        let mut r = RecordReader {
            src,
            header: Header {
                version: VERSION,
                start_unix_ns: 0,
                label: String::new(),
            },
            buf: vec![0; 64 * 1024],
            pos: 0,
            end: 0,
            offset: 0,
            finished: None,
        };
        loop {
            if let Some((header, len)) = decode_header(&r.buf[..r.end])? {
                r.header = header;
                r.pos = len;
                r.offset = len as u64;
                return Ok(r);
            }
            if r.fill()? == 0 {
                return Err(RecordError::TruncatedHeader { len: r.end });
            }
        }
    }

    /// The file header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// File offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// How the file ended, once [`next_record`](Self::next_record) has returned `Ok(None)`.
    pub fn tail(&self) -> Option<Tail> {
        self.finished.flatten()
    }

    /// The next record; `Ok(None)` at the end of the file, whether it ends cleanly or inside a record
    /// (see [`tail`](Self::tail)). After an error or the end, keeps returning `Ok(None)`.
    pub fn next_record(&mut self) -> Result<Option<RecordRef<'_>>, RecordError> {
        if self.finished.is_some() {
            return Ok(None);
        }
        loop {
            match locate_record(&self.buf[self.pos..self.end], self.offset) {
                Ok(Some(loc)) => {
                    let start = self.pos;
                    self.pos += loc.len();
                    self.offset += loc.len() as u64;
                    return Ok(Some(loc.view(&self.buf[start..self.end])));
                }
                Ok(None) => {}
                Err(e) => {
                    self.finished = Some(None);
                    return Err(e);
                }
            }
            match self.fill() {
                Ok(0) => {
                    let len = self.end - self.pos;
                    self.finished = Some(Some(if len == 0 {
                        Tail::Complete
                    } else {
                        Tail::Truncated {
                            offset: self.offset,
                            len,
                        }
                    }));
                    return Ok(None);
                }
                Ok(_) => {}
                Err(e) => {
                    self.finished = Some(None);
                    return Err(e.into());
                }
            }
        }
    }

    /// Reads more bytes after the unconsumed ones, making room first. Returns how many arrived.
    fn fill(&mut self) -> io::Result<usize> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            // Only reached with a record larger than the buffer, whose length the decoder has
            // already bounded by MAX_PAYLOAD.
            let want = (self.buf.len() * 2)
                .min(RECORD_HEADER_LEN + MAX_PAYLOAD)
                .max(self.end + 1);
            self.buf.resize(want, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Writes a recording to any [`Write`]: the header at construction, then one record per
/// [`record`](Self::record), under a [`FlushPolicy`].
///
/// Records are encoded into one buffer allocated at construction; in steady state nothing is
/// allocated per record. After a failed write the writer refuses further records (a record half
/// written would make every later one unreadable), so the file stays a valid prefix.
#[derive(Debug)]
pub struct RecordWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    /// `None`: every record goes out at once.
    cap: Option<usize>,
    poisoned: bool,
}

impl<W: Write> RecordWriter<W> {
    /// Writes the header (and flushes it, so even an empty recording is identifiable).
    pub fn new(
        mut out: W,
        start_unix_ns: u64,
        label: &str,
        flush: FlushPolicy,
    ) -> io::Result<Self> {
        let cap = match flush {
            FlushPolicy::EveryRecord => None,
            FlushPolicy::Buffered(n) => Some(n.max(RECORD_HEADER_LEN)),
        };
        let mut buf = Vec::with_capacity(cap.unwrap_or(4096).max(HEADER_FIXED_LEN + MAX_LABEL + 4));
        encode_header(start_unix_ns, label, &mut buf)?;
        out.write_all(&buf)?;
        out.flush()?;
        buf.clear();
        Ok(RecordWriter {
            out,
            buf,
            cap,
            poisoned: false,
        })
    }

    /// Appends a record of `kind` at `time_ns` after the start. A payload over [`MAX_PAYLOAD`] is
    /// split into records flagged [`FLAG_CONTINUED`]; a payload given to an event kind is dropped.
    pub fn record(&mut self, kind: RecordKind, time_ns: u64, payload: &[u8]) -> io::Result<()> {
        if self.poisoned {
            return Err(io::Error::other("an earlier write to the recording failed"));
        }
        let payload = if kind.has_payload() { payload } else { &[][..] };
        let mut rest = payload;
        loop {
            let n = rest.len().min(MAX_PAYLOAD);
            let (chunk, tail) = rest.split_at(n);
            let continued = !tail.is_empty();
            if let Err(e) = self.push(kind, continued, time_ns, chunk) {
                self.poisoned = true;
                return Err(e);
            }
            rest = tail;
            if !continued {
                return Ok(());
            }
        }
    }

    fn push(
        &mut self,
        kind: RecordKind,
        continued: bool,
        time_ns: u64,
        payload: &[u8],
    ) -> io::Result<()> {
        let head = encode_record_header(kind, continued, time_ns, payload);
        let total = RECORD_HEADER_LEN + payload.len();
        match self.cap {
            None => {
                self.buf.extend_from_slice(&head);
                self.buf.extend_from_slice(payload);
                self.write_buf()
            }
            Some(cap) => {
                if self.buf.len() + total > cap {
                    self.write_buf()?;
                }
                if total > cap {
                    // Larger than the whole buffer: straight to the file, without copying it.
                    self.out.write_all(&head)?;
                    self.out.write_all(payload)
                } else {
                    self.buf.extend_from_slice(&head);
                    self.buf.extend_from_slice(payload);
                    Ok(())
                }
            }
        }
    }

    fn write_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let r = self.out.write_all(&self.buf);
            self.buf.clear();
            r?;
        }
        Ok(())
    }

    /// Writes buffered records to the output and flushes it.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.poisoned {
            return Err(io::Error::other("an earlier write to the recording failed"));
        }
        let r = self.write_buf().and_then(|()| self.out.flush());
        if r.is_err() {
            self.poisoned = true;
        }
        r
    }

    /// Bytes of records buffered and not yet written.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The output.
    pub fn get_ref(&self) -> &W {
        &self.out
    }
}

impl<W: Write> Drop for RecordWriter<W> {
    fn drop(&mut self) {
        if !self.poisoned && !self.buf.is_empty() {
            if let Err(e) = self.flush() {
                log::warn!("recording: final flush failed, last records lost: {e}");
            }
        }
    }
}
