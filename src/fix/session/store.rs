//! Message stores: [`MessageStore`] (documented there, with the file formats).

use std::io;

use crate::fix::codec::UtcTimestamp;

mod file;

pub use file::{FileStore, FsyncPolicy};

/// What a session needs from its store.
///
/// Where a session keeps its sequence numbers and the messages it sent, for ResendRequests
/// (FIX 4.4 Volume 2, "Message Recovery"): in memory ([`MemoryStore`], bounded) or on disk
/// ([`FileStore`]) so the next session continues the sequence after a restart or a crash.
///
/// # File formats
///
/// Three files per session, next to each other (`<dir>/<SenderCompID>-<TargetCompID>.fixlog`,
/// `.fixidx`, `.fixseq`):
///
/// - **The log** (`.fixlog`), append-only. Each record is
///
///   ```text
///     kind u8 | seq u64 LE | len u32 LE | crc32c u32 LE (of kind, seq, len, payload) | payload
///   ```
///
///   with kinds *sent* (a message went out as `seq`; the payload is the message for application
///   messages, empty for administrative ones) and *next outbound* (the number was set). Logs of
///   earlier versions also hold *next inbound* records; they are read once and then superseded by
///   the `.fixseq` file.
/// - **The index** (`.fixidx`): one 16-byte entry `seq u64 LE | log offset u64 LE` per *sent*
///   record, ascending by `seq`. A resend finds the record with one `pread` of the index (numbers
///   are consecutive, so the entry's position is known) and one of the log. Entries are written in
///   batches (at [`MessageStore::flush`] or every 256 records); the log is the truth and the index
///   is completed from it on open.
/// - **The inbound number** (`.fixseq`): two 32-byte slots `generation u64 | next inbound u64 |
///   creation time u64 (UTC ns, 0: unknown) | crc32c u32 | 0 u32`, written alternately in place;
///   the valid slot with the higher generation wins, so a torn write leaves the previous value.
///
/// Opening reads the index's last entry, checks its record in the log and replays the log after it
/// (normally that one record): the cost does not grow with the log. A torn or corrupt tail (the
/// process died mid-write) is cut off at the last whole record, so the log is always a prefix of
/// what was written. Memory does not grow with the number of messages either: nothing of the log
/// or the index is kept resident beyond a 256-entry batch and the buffer of the last message read.
///
/// # Durability
///
/// Every *sent* record reaches the OS with one `write` before the session hands the message to the
/// network: a process crash loses no sent message. The inbound number is written once per
/// [`MessageStore::flush`], which the endpoint calls once per poll (after draining the socket), not
/// once per received message; a crash loses at most the inbound numbers of the last poll, and the
/// counterparty resends those messages on the next Logon (PossDupFlag=Y). [`FsyncPolicy::EveryRecord`]
/// also survives a power cut, at the price of a disk flush per message.
///
/// A reset (ResetSeqNumFlag) empties the index and replaces the log through a temporary file
/// renamed over it (compaction).
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
    /// Sets the next expected inbound number. A persistent store may hold it back until
    /// [`MessageStore::flush`].
    fn set_next_target_seq(&mut self, seq: u64) -> io::Result<()>;
    /// The application message sent as `seq`, if it is kept (a file store reads it from disk into
    /// a buffer it reuses).
    fn sent(&mut self, seq: u64) -> io::Result<Option<&[u8]>>;
    /// Both numbers back to 1 and every kept message dropped (ResetSeqNumFlag).
    fn reset(&mut self) -> io::Result<()>;
    /// Persists what is held back (the inbound number, index entries). Called once per poll.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// When the sequence numbers last started from 1 (the store was created or reset), if known:
    /// a session schedule resets them when this lies before the current period.
    fn creation_time(&self) -> Option<UtcTimestamp> {
        None
    }
    /// Records the [`creation_time`](MessageStore::creation_time) (the caller passes the time).
    fn set_creation_time(&mut self, time: UtcTimestamp) -> io::Result<()> {
        let _ = time;
        Ok(())
    }
}

/// The default bound of a [`MemoryStore`]: 64 MiB of kept messages.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;

/// Sent messages kept in one arena, indexed by sequence number (ascending, as they are sent).
#[derive(Debug, Default)]
struct SentIndex {
    data: Vec<u8>,
    /// `(seq, offset, len)`, sorted by `seq`.
    index: Vec<(u64, usize, usize)>,
}

impl SentIndex {
    fn insert(&mut self, seq: u64, message: &[u8], max_bytes: usize) {
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
        if self.data.len() > max_bytes {
            // Forget the oldest quarter at once, so the copy is paid rarely.
            let drop_to = self.data.len() - max_bytes + max_bytes / 4;
            let n = self
                .index
                .partition_point(|&(_, off, len)| off + len <= drop_to)
                .min(self.index.len() - 1);
            let cut = self.index[n].1;
            self.index.drain(..n);
            self.data.drain(..cut);
            for e in &mut self.index {
                e.1 -= cut;
            }
        }
    }

    fn get(&self, seq: u64) -> Option<&[u8]> {
        let i = self.index.binary_search_by_key(&seq, |&(s, _, _)| s).ok()?;
        let (_, off, len) = self.index[i];
        self.data.get(off..off + len)
    }
}

/// A store that lives as long as the process (tests, venues that reset every session). It keeps
/// the most recent messages up to a byte bound ([`DEFAULT_MEMORY_BYTES`]); older ones are
/// gap-filled when the counterparty asks for them.
#[derive(Debug)]
pub struct MemoryStore {
    sender: u64,
    target: u64,
    sent: SentIndex,
    max_bytes: usize,
    created: Option<UtcTimestamp>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::with_max_bytes(DEFAULT_MEMORY_BYTES)
    }
}

impl MemoryStore {
    /// An empty store: both numbers at 1.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// An empty store keeping at most `max_bytes` of sent messages (at least the latest one).
    pub fn with_max_bytes(max_bytes: usize) -> MemoryStore {
        MemoryStore {
            sender: 1,
            target: 1,
            sent: SentIndex::default(),
            max_bytes,
            created: None,
        }
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
            self.sent.insert(seq, m, self.max_bytes);
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
    fn sent(&mut self, seq: u64) -> io::Result<Option<&[u8]>> {
        Ok(self.sent.get(seq))
    }
    fn reset(&mut self) -> io::Result<()> {
        *self = MemoryStore::with_max_bytes(self.max_bytes);
        Ok(())
    }
    fn creation_time(&self) -> Option<UtcTimestamp> {
        self.created
    }
    fn set_creation_time(&mut self, time: UtcTimestamp) -> io::Result<()> {
        self.created = Some(time);
        Ok(())
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
    fn sent(&mut self, seq: u64) -> io::Result<Option<&[u8]>> {
        each_store!(self, s => s.sent(seq))
    }
    fn reset(&mut self) -> io::Result<()> {
        each_store!(self, s => s.reset())
    }
    fn flush(&mut self) -> io::Result<()> {
        each_store!(self, s => s.flush())
    }
    fn creation_time(&self) -> Option<UtcTimestamp> {
        each_store!(self, s => s.creation_time())
    }
    fn set_creation_time(&mut self, time: UtcTimestamp) -> io::Result<()> {
        each_store!(self, s => s.set_creation_time(time))
    }
}

#[cfg(test)]
mod tests {
    use super::file::RECORD_HEADER;
    use super::*;

    /// The message kept as `seq`, copied out.
    fn got(s: &mut impl MessageStore, seq: u64) -> Option<Vec<u8>> {
        s.sent(seq).unwrap().map(<[u8]>::to_vec)
    }

    fn some(b: &[u8]) -> Option<Vec<u8>> {
        Some(b.to_vec())
    }

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
            (got(&mut s, 1), got(&mut s, 2), got(&mut s, 3)),
            (None, some(b"two"), some(b"three"))
        );
        // Sending 2 again (after a SequenceReset back) forgets the old 2 and 3.
        s.record_sent(2, Some(b"new two")).unwrap();
        assert_eq!((got(&mut s, 2), got(&mut s, 3)), (some(b"new two"), None));
        s.reset().unwrap();
        assert_eq!(
            (s.next_sender_seq(), s.next_target_seq(), got(&mut s, 2)),
            (1, 1, None)
        );
    }

    #[test]
    fn memory_store_is_bounded() {
        let mut s = MemoryStore::with_max_bytes(1000);
        for seq in 1..=10_000 {
            s.record_sent(seq, Some(&[b'x'; 100])).unwrap();
            assert!(s.sent.data.len() <= 1000 && s.sent.index.len() <= 10);
        }
        // The latest messages are kept, the oldest forgotten.
        assert_eq!(got(&mut s, 10_000), Some(vec![b'x'; 100]));
        assert_eq!(got(&mut s, 9_995), Some(vec![b'x'; 100]));
        assert_eq!(got(&mut s, 1), None);
        assert!(s.sent.data.capacity() < 4000);
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
        let mut s = FileStore::open(dir.path(), "DESK", "VEN/UE").unwrap();
        assert_eq!((s.next_sender_seq(), s.next_target_seq()), (4, 5));
        assert_eq!(got(&mut s, 2), some(b"order 2"));
        drop(s);
        // Every possible torn tail: the store opens with the records before it.
        let last = full.len() - (RECORD_HEADER + 7);
        for cut in last..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let mut s = FileStore::open_path(&path).unwrap();
            assert_eq!(
                (s.next_sender_seq(), got(&mut s, 3)),
                (3, None),
                "cut {cut}"
            );
            assert_eq!(std::fs::metadata(&path).unwrap().len(), last as u64);
            // And appends after the cut are read back.
            s.record_sent(3, Some(b"again")).unwrap();
            drop(s);
            let mut s = FileStore::open_path(&path).unwrap();
            assert_eq!(got(&mut s, 3), some(b"again"));
        }
        // A flipped byte in the middle: opening reads only the tail, so the damage shows when the
        // record is read (it is gap-filled instead of resent)...
        let mut bad = full.clone();
        bad[RECORD_HEADER + 2] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let mut s = FileStore::open_path(&path).unwrap();
        assert_eq!((s.next_sender_seq(), got(&mut s, 2)), (4, None));
        assert_eq!(got(&mut s, 3), some(b"order 3"));
        drop(s);
        // ...and when the index is lost, the rebuild from the log ends the replay there.
        std::fs::remove_file(path.with_extension("fixidx")).unwrap();
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
        let mut s = FileStore::open_path(&path).unwrap();
        assert_eq!((s.next_sender_seq(), s.next_target_seq()), (2, 2));
        assert_eq!((got(&mut s, 1), got(&mut s, 50)), (some(b"first"), None));
        // Compaction keeps the kept messages.
        s.compact().unwrap();
        drop(s);
        let mut s = FileStore::open_path(&path).unwrap();
        assert_eq!((s.next_sender_seq(), got(&mut s, 1)), (2, some(b"first")));
    }

    #[test]
    fn file_store_opens_from_the_index_and_finds_every_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.fixlog");
        let mut s = FileStore::open_path(&path).unwrap();
        // 3000 numbers with a jump and a step back (SequenceReset), admin ones in between.
        for seq in (1..=1000).chain(5000..=6000).chain(5500..=6499) {
            let body = format!("message {seq}");
            let kept = (seq % 7 != 0).then_some(body.as_bytes());
            s.record_sent(seq, kept).unwrap();
            if seq % 100 == 0 {
                s.set_next_target_seq(seq).unwrap();
                s.flush().unwrap();
            }
        }
        let check = |s: &mut FileStore| {
            for seq in (1..=1000).chain(5000..=6499) {
                let want = (seq % 7 != 0).then(|| format!("message {seq}").into_bytes());
                assert_eq!(got(s, seq), want, "{seq}");
            }
            for seq in [0, 1001, 4999, 6500] {
                assert_eq!(got(s, seq), None, "{seq}");
            }
            assert_eq!(s.next_sender_seq(), 6500);
        };
        check(&mut s);
        drop(s);
        // Reopening replays one record, not the log.
        let log_len = std::fs::metadata(&path).unwrap().len();
        let mut s = FileStore::open_path(&path).unwrap();
        assert_eq!(s.next_target_seq(), 6400);
        assert!(
            s.replayed_on_open() < 40 && log_len > 50_000,
            "{}",
            s.replayed_on_open()
        );
        check(&mut s);
        drop(s);
        // A crash before the index batch was written: the index is completed from the log.
        let idx = path.with_extension("fixidx");
        let entries = std::fs::metadata(&idx).unwrap().len() / 16;
        let f = std::fs::OpenOptions::new().write(true).open(&idx).unwrap();
        f.set_len((entries - 300) * 16 + 5).unwrap();
        drop(f);
        let mut s = FileStore::open_path(&path).unwrap();
        assert!(s.replayed_on_open() > 300 * 17);
        check(&mut s);
    }

    #[test]
    fn the_inbound_number_is_written_once_per_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.fixlog");
        let seq_file = path.with_extension("fixseq");
        let mut s = FileStore::open_path(&path).unwrap();
        s.flush().unwrap();
        let before = std::fs::read(&seq_file).unwrap();
        // A poll's worth of received messages: nothing reaches the file until the flush.
        for target in 2..=500 {
            s.set_next_target_seq(target).unwrap();
        }
        assert_eq!(std::fs::read(&seq_file).unwrap(), before);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            0,
            "nothing in the log"
        );
        s.flush().unwrap();
        let after = std::fs::read(&seq_file).unwrap();
        assert_ne!(after, before);
        // One slot was written: the other still holds the previous value.
        assert_eq!(after.len(), 64);
        assert!(after[..32] == before[..32] || after[32..] == before[32..]);
        // A flush with nothing new writes nothing.
        s.flush().unwrap();
        assert_eq!(std::fs::read(&seq_file).unwrap(), after);
        drop(s);
        let s = FileStore::open_path(&path).unwrap();
        assert_eq!(s.next_target_seq(), 500);
        // A torn write of the newer slot: the older one is used.
        let mut torn = after.clone();
        let newer = if after[..32] == before[..32] { 32 } else { 0 };
        torn[newer + 10] ^= 0xff;
        drop(s);
        std::fs::write(&seq_file, &torn).unwrap();
        let s = FileStore::open_path(&path).unwrap();
        assert_ne!(s.next_target_seq(), 500);
    }

    #[test]
    fn the_creation_time_survives_reopen_and_a_reset_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.fixlog");
        let mut s = FileStore::open_path(&path).unwrap();
        assert_eq!(s.creation_time(), None);
        s.set_creation_time(UtcTimestamp(1_700_000_000_000_000_000))
            .unwrap();
        s.record_sent(1, Some(b"x")).unwrap();
        drop(s);
        let mut s = FileStore::open_path(&path).unwrap();
        assert_eq!(
            s.creation_time(),
            Some(UtcTimestamp(1_700_000_000_000_000_000))
        );
        s.reset().unwrap();
        assert_eq!(s.creation_time(), None);
        drop(s);
        assert_eq!(FileStore::open_path(&path).unwrap().creation_time(), None);
        let mut m = MemoryStore::new();
        m.set_creation_time(UtcTimestamp(5)).unwrap();
        assert_eq!(m.creation_time(), Some(UtcTimestamp(5)));
        m.reset().unwrap();
        assert_eq!(m.creation_time(), None);
    }
}
