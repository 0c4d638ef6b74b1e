//! Recording and replay: [`Recorded`] writes every byte a stream carries to a file, with its exact read
//! boundaries and timestamps; [`Replay`] plays the inbound side of such a file back as a stream, so a
//! protocol client runs offline, deterministically, with the same reads it saw live.
//!
//! Where the recorder sits decides what is recorded: `tcp.into_tls(..)?.into_recorded(..)` records the
//! plaintext the application exchanged, `tcp.into_recorded(..)?.into_tls(..)` records the TLS records
//! as they crossed the socket. Both compose by value; the recorder adds no dynamic dispatch.
//!
//! # What is recorded
//!
//! | stream call                                        | record                                   |
//! |----------------------------------------------------|------------------------------------------|
//! | `read` returned `Ok(n)`, `n > 0`                   | [`Inbound`](RecordKind::Inbound), the `n` bytes  |
//! | `write` returned `Ok(n)`, `n > 0`                  | [`Outbound`](RecordKind::Outbound), the `n` bytes the inner stream accepted |
//! | `read` returned `Ok(0)` (first time only)          | [`Eof`](RecordKind::Eof)                 |
//! | `read` returned `WouldBlock` (once per run of them) | [`Gap`](RecordKind::Gap), unless [`RecordOptions::record_gaps`] is off |
//!
//! `Interrupted` and other errors are not recorded. A run of `WouldBlock` reads with no inbound bytes
//! or end of stream between them is one gap: the replay returns `WouldBlock` once there, which is what
//! a client draining until `WouldBlock` needs to see to behave as it did live.
//!
//! # File format, version 1
//!
//! All integers are little-endian. The file is a header followed by zero or more records, back to
//! back, with no padding and no trailer, so an append-only writer that dies leaves a valid prefix.
//!
//! ## Header (26 + L bytes)
//!
//! | offset | size | field                                                                     |
//! |--------|------|---------------------------------------------------------------------------|
//! | 0      | 8    | magic `89 48 57 52 0D 0A 1A 0A` (`\x89HWR\r\n\x1a\n`)                      |
//! | 8      | 2    | format version, `1`                                                       |
//! | 10     | 2    | header flags, `0` (readers reject anything else)                          |
//! | 12     | 8    | `start`: wall-clock time the recording began, nanoseconds since the UNIX epoch (UTC, `CLOCK_REALTIME`) |
//! | 20     | 2    | `L`: label length in bytes, at most [`MAX_LABEL`]                         |
//! | 22     | L    | label, UTF-8 (free text such as `"ws feed, plaintext"`; may be empty)     |
//! | 22+L   | 4    | CRC-32C of bytes `0 .. 22+L`                                              |
//!
//! The magic's first byte is not ASCII and it contains CR LF, LF and Ctrl-Z, so a file mangled by a
//! text-mode transfer or mistaken for text is rejected at once (the PNG trick).
//!
//! ## Record (20 + N bytes)
//!
//! | offset | size | field                                                                     |
//! |--------|------|---------------------------------------------------------------------------|
//! | 0      | 1    | kind: `1` inbound, `2` outbound, `3` end of stream, `4` gap (`WouldBlock`) |
//! | 1      | 1    | flags: bit 0 `CONTINUED` (the next record carries more bytes of the same read or write); other bits `0` |
//! | 2      | 2    | reserved, `0`                                                             |
//! | 4      | 4    | `N`: payload length, at most [`MAX_PAYLOAD`]; `0` for end of stream and gap |
//! | 8      | 8    | time since `start` in nanoseconds, measured on the monotonic clock (`CLOCK_MONOTONIC`), so it never goes backwards across a wall-clock step |
//! | 16     | 4    | CRC-32C of bytes `0 .. 16` of the record followed by the `N` payload bytes  |
//! | 20     | N    | payload: the bytes exactly as the stream call returned or accepted them   |
//!
//! A record's absolute time is `start + time`. A single read or write of more than [`MAX_PAYLOAD`]
//! bytes (only possible with a buffer that large) is stored as consecutive records of the same kind,
//! all but the last flagged `CONTINUED`; [`Replay`] joins them back into one read.
//!
//! The checksum is CRC-32C (Castagnoli, reflected polynomial `0x82F63B78`, initial value and final
//! XOR `0xFFFFFFFF`; the CRC of ASCII `"123456789"` is `0xE3069283`), the one used by iSCSI, ext4 and
//! SCTP.
//!
//! ## Reading a file
//!
//! A reader checks the header, then decodes records until the file ends. If the file ends exactly
//! after a record, the recording is complete. If it ends inside a record (the writer crashed or the
//! disk filled mid-write), every record before it is valid and the partial tail is reported as
//! [`Tail::Truncated`], not as an error. A whole record whose checksum does not match, whose kind or
//! flags are unknown, or whose length exceeds the limits is corruption: [`RecordError`].
//!
//! # Flushing
//!
//! [`FlushPolicy::Buffered`] (the default) collects records in a buffer allocated once and writes it
//! to the file when it fills, on [`Recorded::flush_recording`], and when the recorder is dropped. A
//! crash loses at most one buffer, and because the buffer is written whole-records-first the file
//! stays readable up to the last whole record written. [`FlushPolicy::EveryRecord`] hands each record
//! to the OS at once (one `write` per stream call: slower, loses nothing if the process dies).
//!
//! Neither policy calls `fsync`; surviving a power cut is the file system's business.

use std::io;
use std::path::Path;

pub(crate) mod crc;
pub(crate) mod format;
mod recorded;
mod replay;

#[cfg(test)]
mod tests;

pub use format::{
    decode_header, decode_record, encode_header, encode_record, encode_record_header, Header,
    RecordError, RecordKind, RecordReader, RecordRef, RecordWriter, Tail, FLAG_CONTINUED, MAGIC,
    MAX_LABEL, MAX_PAYLOAD, RECORD_HEADER_LEN, VERSION,
};
pub use recorded::Recorded;
pub use replay::Replay;

use super::Stream;

/// When [`Recorded`] hands records to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Each record is written to the file (one `write` system call) as it is made. Nothing is lost
    /// when the process dies, at the cost of a system call per stream call.
    EveryRecord,
    /// Records collect in a buffer of this many bytes, written when it fills, on
    /// [`Recorded::flush_recording`] and on drop. A crash loses at most this many bytes of records.
    Buffered(usize),
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy::Buffered(64 * 1024)
    }
}

/// How [`Recorded`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOptions {
    /// When records reach the file.
    pub flush: FlushPolicy,
    /// Free text stored in the file header (where the recorder sat, which endpoint), at most
    /// [`MAX_LABEL`] bytes.
    pub label: Option<String>,
    /// Record `WouldBlock` gaps (one per run), so [`Replay`] reproduces them. On by default.
    pub record_gaps: bool,
    /// What a failure to write the recording does to the stream. `true` (the default): the stream
    /// call after the failure returns the error, so no session runs with a silently incomplete
    /// recording. `false`: the failure is logged once and recording stops; the stream carries on.
    pub fail_on_error: bool,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            flush: FlushPolicy::default(),
            label: None,
            record_gaps: true,
            fail_on_error: true,
        }
    }
}

/// `into_recorded` for every stream.
pub trait IntoRecorded: Stream + Sized {
    /// Records this stream to a new file at `path` (replaced if it exists) with default options.
    fn into_recorded(self, path: impl AsRef<Path>) -> io::Result<Recorded<Self>> {
        Recorded::create(self, path, RecordOptions::default())
    }

    /// Records this stream to a new file at `path` (replaced if it exists) with `options`.
    fn into_recorded_with(
        self,
        path: impl AsRef<Path>,
        options: RecordOptions,
    ) -> io::Result<Recorded<Self>> {
        Recorded::create(self, path, options)
    }
}

impl<S: Stream> IntoRecorded for S {}
