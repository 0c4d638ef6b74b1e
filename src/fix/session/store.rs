//! Where a session keeps its sequence numbers and the messages it sent, for ResendRequests
//! (FIX 4.4 Volume 2, "Message Recovery"): in memory ([`MemoryStore`]) or in a crash-safe file
//! ([`FileStore`]) so the next session continues the sequence after a restart or a crash.
//!
//! # File format
//!
//! One append-only log per session (`<dir>/<SenderCompID>-<TargetCompID>.fixlog`). Each record is
//!
//! ```text
//!   kind u8 | seq u64 LE | len u32 LE | crc32c u32 LE (of kind, seq, len, payload) | payload
//! ```
//!
//! with kinds *sent* (a message went out as `seq`; the payload is the message for application
//! messages, empty for administrative ones), *next inbound* and *next outbound* (a sequence number
//! was set). Opening the log replays it; a torn or corrupt tail (the process died mid-write) is cut
//! off at the last whole record, so the file is always a prefix of what was written. A reset
//! rewrites the log from scratch into a temporary file and renames it over the old one (compaction),
//! so a crash during a reset leaves either the old log or the new one.
//!
//! Every record reaches the OS with one `write` before the session hands the message to the network:
//! a process crash loses nothing. [`FsyncPolicy::EveryRecord`] also survives a power cut, at the
//! price of a disk flush per message.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::stream::record::crc::Crc32c;

/// What a session needs from its store.
pub trait MessageStore {
    /// The MsgSeqNum of the next message sent.
    fn next_sender_seq(&self) -> u64;
    /// The MsgSeqNum expected on the next message received.
    fn next_target_seq(&self) -> u64;
    /// Records that message `seq` was sent (the next outbound number becomes `seq + 1`). `message`
    /// is the whole message for application messages (kept for resends), `None` for administrative
    /// ones (gap-filled on a resend).
    fn record_sent(&mut self, seq: u64, message: Option<&[u8]>) -> io::Result<()>;
    /// Sets the next outbound number.
    fn set_next_sender_seq(&mut self, seq: u64) -> io::Result<()>;
    /// Sets the next expected inbound number.
    fn set_next_target_seq(&mut self, seq: u64) -> io::Result<()>;
    /// The application message sent as `seq`, if it is kept.
    fn sent(&self, seq: u64) -> Option<&[u8]>;
    /// Both numbers back to 1 and every kept message dropped (ResetSeqNumFlag).
    fn reset(&mut self) -> io::Result<()>;
}

/// Sent messages kept in one arena, indexed by sequence number (ascending, as they are sent).
#[derive(Debug, Default)]
struct SentIndex {
    data: Vec<u8>,
    /// `(seq, offset, len)`, sorted by `seq`.
    index: Vec<(u64, usize, usize)>,
}

impl SentIndex {
    fn insert(&mut self, seq: u64, message: &[u8]) {
        // A sequence number sent again after a SequenceReset replaces what was kept beyond it.
        if self.index.last().is_some_and(|&(last, _, _)| last >= seq) {
            let keep = self.index.partition_point(|&(s, _, _)| s < seq);
            let cut = self
                .index
                .get(keep)
                .map_or(self.data.len(), |&(_, off, _)| off);
            self.index.truncate(keep);
            self.data.truncate(cut);
        }
        self.index.push((seq, self.data.len(), message.len()));
        self.data.extend_from_slice(message);
    }

    fn get(&self, seq: u64) -> Option<&[u8]> {
        let i = self.index.binary_search_by_key(&seq, |&(s, _, _)| s).ok()?;
        let (_, off, len) = self.index[i];
        self.data.get(off..off + len)
    }
}

/// A store that lives as long as the process (tests, venues that reset every session).
#[derive(Debug)]
pub struct MemoryStore {
    sender: u64,
    target: u64,
    sent: SentIndex,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            sender: 1,
            target: 1,
            sent: SentIndex::default(),
        }
    }
}

impl MemoryStore {
    /// An empty store: both numbers at 1.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl MessageStore for MemoryStore {
    fn next_sender_seq(&self) -> u64 {
        self.sender
    }
    fn next_target_seq(&self) -> u64 {
        self.target
    }
    fn record_sent(&mut self, seq: u64, message: Option<&[u8]>) -> io::Result<()> {
        if let Some(m) = message {
            self.sent.insert(seq, m);
        }
        self.sender = seq + 1;
        Ok(())
    }
    fn set_next_sender_seq(&mut self, seq: u64) -> io::Result<()> {
        self.sender = seq;
        Ok(())
    }
    fn set_next_target_seq(&mut self, seq: u64) -> io::Result<()> {
        self.target = seq;
        Ok(())
    }
    fn sent(&self, seq: u64) -> Option<&[u8]> {
        self.sent.get(seq)
    }
    fn reset(&mut self) -> io::Result<()> {
        *self = MemoryStore::default();
        Ok(())
    }
}

/// When the file store asks the disk to persist a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// Never: records reach the OS (surviving a process crash) but not necessarily the disk.
    #[default]
    Never,
    /// `fdatasync` after every record: survives a power cut; costs a disk flush per message.
    EveryRecord,
}

const KIND_SENT: u8 = 1;
const KIND_NEXT_TARGET: u8 = 2;
const KIND_NEXT_SENDER: u8 = 3;
const RECORD_HEADER: usize = 1 + 8 + 4 + 4;
/// Largest payload accepted when replaying a log (bounded memory on a corrupt length).
const MAX_RECORD: usize = 16 << 20;

/// A crash-safe append log of sequence numbers and sent messages (see the [module docs](self)).
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    file: File,
    fsync: FsyncPolicy,
    mem: MemoryStore,
    record: Vec<u8>,
}

impl FileStore {
    /// Opens (or creates) the log for the session `sender` → `target` in `dir`, replaying what it
    /// holds. A torn tail is cut off.
    pub fn open(dir: impl AsRef<Path>, sender: &str, target: &str) -> io::Result<FileStore> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let name = format!("{}-{}.fixlog", file_safe(sender), file_safe(target));
        FileStore::open_path(dir.join(name))
    }

    /// Opens (or creates) the log at `path`.
    pub fn open_path(path: impl Into<PathBuf>) -> io::Result<FileStore> {
        let path = path.into();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut mem = MemoryStore::default();
        let valid = replay(&bytes, &mut mem);
        if valid < bytes.len() {
            log::warn!(
                "{}: cutting a torn or corrupt tail of {} bytes",
                path.display(),
                bytes.len() - valid
            );
            file.set_len(valid as u64)?;
        }
        Ok(FileStore {
            path,
            file,
            fsync: FsyncPolicy::default(),
            mem,
            record: Vec::with_capacity(4096),
        })
    }

    /// Sets when records are flushed to disk.
    pub fn with_fsync(mut self, policy: FsyncPolicy) -> FileStore {
        self.fsync = policy;
        self
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&mut self, kind: u8, seq: u64, payload: &[u8]) -> io::Result<()> {
        self.record.clear();
        encode_record(&mut self.record, kind, seq, payload);
        self.file.write_all(&self.record)?;
        if self.fsync == FsyncPolicy::EveryRecord {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Rewrites the log with only the current state (both numbers and the kept messages), through
    /// a temporary file renamed over the log.
    pub fn compact(&mut self) -> io::Result<()> {
        let tmp = self.path.with_extension("fixlog.tmp");
        let mut out = Vec::with_capacity(self.mem.sent.data.len() + 64);
        for &(seq, off, len) in &self.mem.sent.index {
            encode_record(
                &mut out,
                KIND_SENT,
                seq,
                &self.mem.sent.data[off..off + len],
            );
        }
        encode_record(&mut out, KIND_NEXT_SENDER, self.mem.sender, &[]);
        encode_record(&mut out, KIND_NEXT_TARGET, self.mem.target, &[]);
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&out)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            // Persist the rename itself.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        self.file = OpenOptions::new()
            .append(true)
            .read(true)
            .open(&self.path)?;
        Ok(())
    }
}

fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn encode_record(out: &mut Vec<u8>, kind: u8, seq: u64, payload: &[u8]) {
    let start = out.len();
    out.push(kind);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
    let mut crc = Crc32c::new();
    crc.update(&out[start..start + 13]);
    crc.update(payload);
    let crc = crc.finish().to_le_bytes();
    out[start + 13..start + 17].copy_from_slice(&crc);
}

/// Applies the whole records of `bytes` to `mem`; returns how many bytes they span.
fn replay(bytes: &[u8], mem: &mut MemoryStore) -> usize {
    let mut at = 0;
    while let Some(h) = bytes.get(at..at + RECORD_HEADER) {
        let kind = h[0];
        let seq = u64::from_le_bytes(h[1..9].try_into().unwrap_or_default());
        let len = u32::from_le_bytes(h[9..13].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(h[13..17].try_into().unwrap_or_default());
        if len > MAX_RECORD {
            break;
        }
        let Some(payload) = bytes.get(at + RECORD_HEADER..at + RECORD_HEADER + len) else {
            break;
        };
        let mut c = Crc32c::new();
        c.update(&h[..13]);
        c.update(payload);
        if c.finish() != crc {
            break;
        }
        match kind {
            KIND_SENT => {
                let message = (!payload.is_empty()).then_some(payload);
                let _ = mem.record_sent(seq, message);
            }
            KIND_NEXT_TARGET => mem.target = seq,
            KIND_NEXT_SENDER => mem.sender = seq,
            _ => break,
        }
        at += RECORD_HEADER + len;
    }
    at
}

impl MessageStore for FileStore {
    fn next_sender_seq(&self) -> u64 {
        self.mem.sender
    }
    fn next_target_seq(&self) -> u64 {
        self.mem.target
    }
    fn record_sent(&mut self, seq: u64, message: Option<&[u8]>) -> io::Result<()> {
        self.append(KIND_SENT, seq, message.unwrap_or_default())?;
        self.mem.record_sent(seq, message)
    }
    fn set_next_sender_seq(&mut self, seq: u64) -> io::Result<()> {
        self.append(KIND_NEXT_SENDER, seq, &[])?;
        self.mem.set_next_sender_seq(seq)
    }
    fn set_next_target_seq(&mut self, seq: u64) -> io::Result<()> {
        self.append(KIND_NEXT_TARGET, seq, &[])?;
        self.mem.set_next_target_seq(seq)
    }
    fn sent(&self, seq: u64) -> Option<&[u8]> {
        self.mem.sent(seq)
    }
    fn reset(&mut self) -> io::Result<()> {
        self.mem.reset()?;
        self.compact()
    }
}

/// A store chosen at run time (from configuration), without a trait object.
#[derive(Debug)]
pub enum AnyStore {
    /// In memory.
    Memory(MemoryStore),
    /// In a file.
    File(FileStore),
}

macro_rules! each_store {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Memory($s) => $e,
            AnyStore::File($s) => $e,
        }
    };
}

impl MessageStore for AnyStore {
    fn next_sender_seq(&self) -> u64 {
        each_store!(self, s => s.next_sender_seq())
    }
    fn next_target_seq(&self) -> u64 {
        each_store!(self, s => s.next_target_seq())
    }
    fn record_sent(&mut self, seq: u64, message: Option<&[u8]>) -> io::Result<()> {
        each_store!(self, s => s.record_sent(seq, message))
    }
    fn set_next_sender_seq(&mut self, seq: u64) -> io::Result<()> {
        each_store!(self, s => s.set_next_sender_seq(seq))
    }
    fn set_next_target_seq(&mut self, seq: u64) -> io::Result<()> {
        each_store!(self, s => s.set_next_target_seq(seq))
    }
    fn sent(&self, seq: u64) -> Option<&[u8]> {
        each_store!(self, s => s.sent(seq))
    }
    fn reset(&mut self) -> io::Result<()> {
        each_store!(self, s => s.reset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_keeps_messages_and_numbers() {
        let mut s = MemoryStore::new();
        assert_eq!((s.next_sender_seq(), s.next_target_seq()), (1, 1));
        s.record_sent(1, None).unwrap();
        s.record_sent(2, Some(b"two")).unwrap();
        s.record_sent(3, Some(b"three")).unwrap();
        s.set_next_target_seq(9).unwrap();
        assert_eq!((s.next_sender_seq(), s.next_target_seq()), (4, 9));
        assert_eq!(
            (s.sent(1), s.sent(2), s.sent(3)),
            (None, Some(&b"two"[..]), Some(&b"three"[..]))
        );
        // Sending 2 again (after a SequenceReset back) forgets the old 2 and 3.
        s.record_sent(2, Some(b"new two")).unwrap();
        assert_eq!((s.sent(2), s.sent(3)), (Some(&b"new two"[..]), None));
        s.reset().unwrap();
        assert_eq!(
            (s.next_sender_seq(), s.next_target_seq(), s.sent(2)),
            (1, 1, None)
        );
    }

    #[test]
    fn file_store_survives_reopen_and_torn_tails() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = FileStore::open(dir.path(), "DESK", "VEN/UE").unwrap();
            s.record_sent(1, None).unwrap();
            s.record_sent(2, Some(b"order 2")).unwrap();
            s.set_next_target_seq(5).unwrap();
            s.record_sent(3, Some(b"order 3")).unwrap();
        }
        let path = dir.path().join("DESK-VEN_UE.fixlog");
        let full = std::fs::read(&path).unwrap();
        let s = FileStore::open(dir.path(), "DESK", "VEN/UE").unwrap();
        assert_eq!((s.next_sender_seq(), s.next_target_seq()), (4, 5));
        assert_eq!(s.sent(2), Some(&b"order 2"[..]));
        drop(s);
        // Every possible torn tail: the store opens with the records before it.
        let last = full.len() - (RECORD_HEADER + 7);
        for cut in last..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let mut s = FileStore::open_path(&path).unwrap();
            assert_eq!((s.next_sender_seq(), s.sent(3)), (3, None), "cut {cut}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), last as u64);
            // And appends after the cut are read back.
            s.record_sent(3, Some(b"again")).unwrap();
            drop(s);
            let s = FileStore::open_path(&path).unwrap();
            assert_eq!(s.sent(3), Some(&b"again"[..]));
        }
        // A flipped byte in the middle ends the replay there.
        let mut bad = full.clone();
        bad[RECORD_HEADER + 2] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let s = FileStore::open_path(&path).unwrap();
        assert_eq!(s.next_sender_seq(), 2);
    }

    #[test]
    fn file_store_reset_compacts() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileStore::open(dir.path(), "A", "B")
            .unwrap()
            .with_fsync(FsyncPolicy::EveryRecord);
        for seq in 1..100 {
            s.record_sent(seq, Some(&[b'x'; 200])).unwrap();
        }
        let big = std::fs::metadata(s.path()).unwrap().len();
        s.reset().unwrap();
        let small = std::fs::metadata(s.path()).unwrap().len();
        assert!(small < 100 && big > 20_000, "{big} -> {small}");
        s.record_sent(1, Some(b"first")).unwrap();
        s.set_next_target_seq(2).unwrap();
        let path = s.path().to_owned();
        drop(s);
        let s = FileStore::open_path(&path).unwrap();
        assert_eq!((s.next_sender_seq(), s.next_target_seq()), (2, 2));
        assert_eq!((s.sent(1), s.sent(50)), (Some(&b"first"[..]), None));
        // Compaction keeps the kept messages.
        let mut s = s;
        s.compact().unwrap();
        drop(s);
        let s = FileStore::open_path(&path).unwrap();
        assert_eq!((s.next_sender_seq(), s.sent(1)), (2, Some(&b"first"[..])));
    }
}
