//! [`FileStore`]: the resend window on disk, with an on-disk index, so memory stays flat however
//! many messages a session sends (see the [store module docs](super) for the file formats).

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::MessageStore;
use crate::fix::codec::UtcTimestamp;
use crate::stream::record::crc::Crc32c;

/// When the file store asks the disk to persist a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// Never: records reach the OS (surviving a process crash) but not necessarily the disk.
    #[default]
    Never,
    /// `fdatasync` after every record (and after every flush of the sequence numbers): survives a
    /// power cut; costs a disk flush per message.
    EveryRecord,
}

const KIND_SENT: u8 = 1;
const KIND_NEXT_TARGET: u8 = 2;
const KIND_NEXT_SENDER: u8 = 3;
pub(super) const RECORD_HEADER: usize = 1 + 8 + 4 + 4;
/// Largest payload accepted when reading a log (bounded memory on a corrupt length).
const MAX_RECORD: usize = 16 << 20;
/// One index entry: `seq u64 LE | log offset u64 LE`.
const ENTRY: usize = 16;
/// Index entries kept in memory until the next flush (they are rebuilt from the log after a crash).
const PENDING_ENTRIES: usize = 256;
/// One sequence-number slot: `generation u64 | next target u64 | creation ns u64 | crc32c u32 |
/// 0 u32`.
const SLOT: usize = 32;

/// A crash-safe store of sequence numbers and sent messages (its file formats and durability: see
/// [`MessageStore`](crate::fix::MessageStore)).
///
/// Memory use is fixed: the messages stay in the log, the index on disk; a resend reads them back
/// with `pread`. Opening reads the last index entry and the log after it, not the whole log.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    log: File,
    index: File,
    seq_file: File,
    fsync: FsyncPolicy,
    sender: u64,
    target: u64,
    /// The target number on disk (a flush writes it when it differs).
    target_on_disk: u64,
    generation: u64,
    /// When the numbers last started from 1 (UTC ns; 0: unknown).
    created: u64,
    /// Length of the log (where the next record goes).
    log_len: u64,
    /// Entries in the index file.
    index_len: u64,
    /// The first and last `(seq, offset)` of the index file.
    first: Option<(u64, u64)>,
    last: Option<(u64, u64)>,
    /// Entries not yet written to the index file, after `last`.
    pending: Vec<(u64, u64)>,
    pending_buf: Vec<u8>,
    record: Vec<u8>,
    read_buf: Vec<u8>,
    /// Bytes of the log read when it was opened (the tail after the index).
    replayed: u64,
}

/// The file next to the log with another extension.
fn sibling(path: &Path, ext: &str) -> PathBuf {
    path.with_extension(ext)
}

impl FileStore {
    /// Opens (or creates) the store of the session `sender` → `target` in `dir`. A torn tail is
    /// cut off.
    pub fn open(dir: impl AsRef<Path>, sender: &str, target: &str) -> io::Result<FileStore> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let name = format!("{}-{}.fixlog", file_safe(sender), file_safe(target));
        FileStore::open_path(dir.join(name))
    }

    /// Opens (or creates) the store whose log is `path` (the index and the sequence numbers live
    /// next to it, as `.fixidx` and `.fixseq`).
    pub fn open_path(path: impl Into<PathBuf>) -> io::Result<FileStore> {
        let path = path.into();
        let rw = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
        };
        let log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let index = rw(&sibling(&path, "fixidx"))?;
        let seq_file = rw(&sibling(&path, "fixseq"))?;
        let mut store = FileStore {
            path,
            log,
            index,
            seq_file,
            fsync: FsyncPolicy::default(),
            sender: 1,
            target: 1,
            target_on_disk: 0,
            generation: 0,
            created: 0,
            log_len: 0,
            index_len: 0,
            first: None,
            last: None,
            pending: Vec::with_capacity(PENDING_ENTRIES),
            pending_buf: Vec::with_capacity(PENDING_ENTRIES * ENTRY),
            record: Vec::with_capacity(4096),
            read_buf: Vec::with_capacity(4096),
            replayed: 0,
        };
        store.recover()?;
        Ok(store)
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

    /// How many bytes of the log opening it replayed (the records the index had not caught up
    /// with, and the last one it had).
    pub fn replayed_on_open(&self) -> u64 {
        self.replayed
    }

    /// Finds where the log's valid records end and what they say, reading only the index's last
    /// valid entry and the log after it.
    fn recover(&mut self) -> io::Result<()> {
        let file_len = self.log.metadata()?.len();
        let idx_bytes = self.index.metadata()?.len();
        self.index_len = idx_bytes / ENTRY as u64;
        // The last entry whose record is whole in the log (normally the very last one).
        let mut start = 0;
        while self.index_len > 0 {
            let (seq, off) = self.read_entry(self.index_len - 1)?;
            if self.read_record(off, file_len)? == Some((KIND_SENT, seq)) {
                self.last = Some((seq, off));
                start = off;
                break;
            }
            self.index_len -= 1;
        }
        if self.index_len * ENTRY as u64 != idx_bytes {
            self.index.set_len(self.index_len * ENTRY as u64)?;
        }
        self.first = match self.index_len {
            0 => None,
            _ => Some(self.read_entry(0)?),
        };
        // Replay from there: that record, then what the index has not caught up with.
        let mut target_in_log = None;
        let log = self.log.try_clone()?;
        let mut reader = BufReader::with_capacity(64 << 10, log);
        reader.seek(SeekFrom::Start(start))?;
        let mut at = start;
        let mut header = [0u8; RECORD_HEADER];
        let mut payload = std::mem::take(&mut self.read_buf);
        while let Some((kind, seq)) = read_next(&mut reader, &mut header, &mut payload)? {
            match kind {
                KIND_SENT => {
                    if self.last != Some((seq, at)) {
                        self.index_push(seq, at)?;
                    }
                    self.sender = seq + 1;
                }
                KIND_NEXT_TARGET => target_in_log = Some(seq),
                KIND_NEXT_SENDER => self.sender = seq,
                _ => break,
            }
            at += (RECORD_HEADER + payload.len()) as u64;
        }
        drop(reader);
        self.read_buf = payload;
        if at < file_len {
            log::warn!(
                "{}: cutting a torn or corrupt tail of {} bytes",
                self.path.display(),
                file_len - at
            );
            self.log.set_len(at)?;
        }
        self.log_len = at;
        self.replayed = at - start;
        self.write_pending()?;
        // The target number: its own file, or (a log written before it existed) the log.
        match (self.read_slots()?, target_in_log) {
            (Some((generation, target, created)), _) => {
                self.generation = generation;
                self.target = target;
                self.target_on_disk = target;
                self.created = created;
            }
            (None, t) => self.target = t.unwrap_or(1),
        }
        Ok(())
    }

    /// Reads index entry `i` from the file.
    fn read_entry(&self, i: u64) -> io::Result<(u64, u64)> {
        let mut e = [0u8; ENTRY];
        self.index.read_exact_at(&mut e, i * ENTRY as u64)?;
        Ok(entry_from(&e))
    }

    /// Reads the record at `off` into `read_buf`: `(kind, seq)` when it is whole and its checksum
    /// matches.
    fn read_record(&mut self, off: u64, log_len: u64) -> io::Result<Option<(u8, u64)>> {
        let mut h = [0u8; RECORD_HEADER];
        if off + RECORD_HEADER as u64 > log_len {
            return Ok(None);
        }
        self.log.read_exact_at(&mut h, off)?;
        let (kind, seq, len, crc) = header_from(&h);
        if len > MAX_RECORD || off + (RECORD_HEADER + len) as u64 > log_len {
            return Ok(None);
        }
        self.read_buf.resize(len, 0);
        self.log
            .read_exact_at(&mut self.read_buf, off + RECORD_HEADER as u64)?;
        let mut c = Crc32c::new();
        c.update(&h[..13]);
        c.update(&self.read_buf);
        Ok((c.finish() == crc).then_some((kind, seq)))
    }

    /// The newest slot of the sequence-number file whose checksum holds: `(generation, target,
    /// creation)`.
    fn read_slots(&self) -> io::Result<Option<(u64, u64, u64)>> {
        let mut buf = [0u8; 2 * SLOT];
        let n = read_up_to(&self.seq_file, &mut buf)?;
        let slot = |s: &[u8]| {
            let generation = u64::from_le_bytes(s[0..8].try_into().ok()?);
            let target = u64::from_le_bytes(s[8..16].try_into().ok()?);
            let created = u64::from_le_bytes(s[16..24].try_into().ok()?);
            let crc = u32::from_le_bytes(s[24..28].try_into().ok()?);
            let mut c = Crc32c::new();
            c.update(&s[..24]);
            (c.finish() == crc && generation > 0).then_some((generation, target, created))
        };
        let a = (n >= SLOT).then(|| slot(&buf[..SLOT])).flatten();
        let b = (n >= 2 * SLOT).then(|| slot(&buf[SLOT..])).flatten();
        Ok(match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        })
    }

    /// Writes the target number into the older slot (a torn write leaves the other intact).
    fn write_slot(&mut self) -> io::Result<()> {
        self.generation += 1;
        let mut s = [0u8; SLOT];
        s[0..8].copy_from_slice(&self.generation.to_le_bytes());
        s[8..16].copy_from_slice(&self.target.to_le_bytes());
        s[16..24].copy_from_slice(&self.created.to_le_bytes());
        let mut c = Crc32c::new();
        c.update(&s[..24]);
        s[24..28].copy_from_slice(&c.finish().to_le_bytes());
        let at = (self.generation % 2) * SLOT as u64;
        self.seq_file.write_all_at(&s, at)?;
        if self.fsync == FsyncPolicy::EveryRecord {
            self.seq_file.sync_data()?;
        }
        self.target_on_disk = self.target;
        Ok(())
    }

    /// Adds `(seq, offset)` to the index; a number sent again (after a SequenceReset back)
    /// forgets the entries from it on.
    fn index_push(&mut self, seq: u64, off: u64) -> io::Result<()> {
        let newest = self.pending.last().copied().or(self.last);
        if newest.is_some_and(|(s, _)| s >= seq) {
            self.truncate_from(seq)?;
        }
        if self.pending.len() == PENDING_ENTRIES {
            self.write_pending()?;
        }
        self.pending.push((seq, off));
        Ok(())
    }

    /// Drops every index entry for `seq` and above.
    fn truncate_from(&mut self, seq: u64) -> io::Result<()> {
        let keep = self.pending.partition_point(|&(s, _)| s < seq);
        self.pending.truncate(keep);
        if self.last.is_none_or(|(s, _)| s < seq) {
            return Ok(());
        }
        // Pending entries all lie beyond `last`, so none is left.
        self.pending.clear();
        let (mut lo, mut hi) = (0, self.index_len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.read_entry(mid)?.0 < seq {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        self.index_len = lo;
        self.index.set_len(lo * ENTRY as u64)?;
        self.last = match lo {
            0 => None,
            _ => Some(self.read_entry(lo - 1)?),
        };
        if lo == 0 {
            self.first = None;
        }
        Ok(())
    }

    /// Writes the pending index entries to the index file.
    fn write_pending(&mut self) -> io::Result<()> {
        let Some(&newest) = self.pending.last() else {
            return Ok(());
        };
        self.pending_buf.clear();
        for &(seq, off) in &self.pending {
            self.pending_buf.extend_from_slice(&seq.to_le_bytes());
            self.pending_buf.extend_from_slice(&off.to_le_bytes());
        }
        self.index
            .write_all_at(&self.pending_buf, self.index_len * ENTRY as u64)?;
        if self.first.is_none() {
            self.first = self.pending.first().copied();
        }
        self.index_len += self.pending.len() as u64;
        self.last = Some(newest);
        self.pending.clear();
        Ok(())
    }

    /// The log offset of the record sent as `seq`.
    fn find(&self, seq: u64) -> io::Result<Option<u64>> {
        if self.pending.first().is_some_and(|&(s, _)| s <= seq) {
            let i = self.pending.binary_search_by_key(&seq, |&(s, _)| s);
            return Ok(i.ok().map(|i| self.pending[i].1));
        }
        let (Some((first, _)), Some((last, _))) = (self.first, self.last) else {
            return Ok(None);
        };
        if seq < first || seq > last {
            return Ok(None);
        }
        // Numbers are consecutive unless the sender number jumped: try the direct position first.
        let guess = (seq - first).min(self.index_len - 1);
        let (s, off) = self.read_entry(guess)?;
        if s == seq {
            return Ok(Some(off));
        }
        let (mut lo, mut hi) = if s < seq {
            (guess + 1, self.index_len)
        } else {
            (0, guess)
        };
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (s, off) = self.read_entry(mid)?;
            match s.cmp(&seq) {
                std::cmp::Ordering::Equal => return Ok(Some(off)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    fn append(&mut self, kind: u8, seq: u64, payload: &[u8]) -> io::Result<u64> {
        self.record.clear();
        encode_record(&mut self.record, kind, seq, payload);
        self.log.write_all(&self.record)?;
        if self.fsync == FsyncPolicy::EveryRecord {
            self.log.sync_data()?;
        }
        let at = self.log_len;
        self.log_len += self.record.len() as u64;
        Ok(at)
    }

    /// Rewrites the log with only the messages the index still names and the sequence numbers,
    /// through a temporary file renamed over the log, and rebuilds the index.
    pub fn compact(&mut self) -> io::Result<()> {
        self.write_pending()?;
        let index_path = sibling(&self.path, "fixidx");
        let log_tmp = self.path.with_extension("fixlog.tmp");
        let index_tmp = self.path.with_extension("fixidx.tmp");
        let (mut at, mut kept, mut first, mut last) = (0u64, 0u64, None, None);
        {
            // Both files are streamed: memory stays flat however much the log holds.
            let mut log = io::BufWriter::new(File::create(&log_tmp)?);
            let mut index = io::BufWriter::new(File::create(&index_tmp)?);
            let mut rec = Vec::new();
            for i in 0..self.index_len {
                let (seq, off) = self.read_entry(i)?;
                if self.read_record(off, self.log_len)? != Some((KIND_SENT, seq)) {
                    continue;
                }
                rec.clear();
                encode_record(&mut rec, KIND_SENT, seq, &self.read_buf);
                log.write_all(&rec)?;
                index.write_all(&seq.to_le_bytes())?;
                index.write_all(&at.to_le_bytes())?;
                first.get_or_insert((seq, at));
                last = Some((seq, at));
                kept += 1;
                at += rec.len() as u64;
            }
            rec.clear();
            encode_record(&mut rec, KIND_NEXT_SENDER, self.sender, &[]);
            log.write_all(&rec)?;
            at += rec.len() as u64;
            for f in [log, index] {
                f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            }
        }
        // Either order of the renames is safe: an index that does not match the log is cut back
        // to its valid entries on open and completed from the log.
        std::fs::rename(&index_tmp, &index_path)?;
        std::fs::rename(&log_tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            // Persist the renames themselves.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        self.log = OpenOptions::new()
            .append(true)
            .read(true)
            .open(&self.path)?;
        self.index = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&index_path)?;
        self.log_len = at;
        self.index_len = kept;
        self.first = first;
        self.last = last;
        self.write_slot()
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

fn entry_from(e: &[u8; ENTRY]) -> (u64, u64) {
    let (a, b) = e.split_at(8);
    (
        u64::from_le_bytes(a.try_into().unwrap_or_default()),
        u64::from_le_bytes(b.try_into().unwrap_or_default()),
    )
}

/// `(kind, seq, len, crc)` of a record header.
fn header_from(h: &[u8; RECORD_HEADER]) -> (u8, u64, usize, u32) {
    (
        h[0],
        u64::from_le_bytes(h[1..9].try_into().unwrap_or_default()),
        u32::from_le_bytes(h[9..13].try_into().unwrap_or_default()) as usize,
        u32::from_le_bytes(h[13..17].try_into().unwrap_or_default()),
    )
}

/// Reads as many bytes as the file holds, up to `buf.len()`, from its start.
fn read_up_to(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The next whole record of `reader` (payload in `payload`), or `None` at the end of the valid
/// records (end of file, a torn record, a checksum mismatch).
fn read_next(
    reader: &mut impl Read,
    header: &mut [u8; RECORD_HEADER],
    payload: &mut Vec<u8>,
) -> io::Result<Option<(u8, u64)>> {
    if !read_full(reader, header)? {
        return Ok(None);
    }
    let (kind, seq, len, crc) = header_from(header);
    if len > MAX_RECORD {
        return Ok(None);
    }
    payload.resize(len, 0);
    if !read_full(reader, payload)? {
        return Ok(None);
    }
    let mut c = Crc32c::new();
    c.update(&header[..13]);
    c.update(payload);
    Ok((c.finish() == crc).then_some((kind, seq)))
}

/// Fills `buf`; `false` when the reader ends first.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => return Ok(false),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

pub(super) fn encode_record(out: &mut Vec<u8>, kind: u8, seq: u64, payload: &[u8]) {
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

impl MessageStore for FileStore {
    fn next_sender_seq(&self) -> u64 {
        self.sender
    }
    fn next_target_seq(&self) -> u64 {
        self.target
    }
    fn record_sent(&mut self, seq: u64, message: Option<&[u8]>) -> io::Result<()> {
        let at = self.append(KIND_SENT, seq, message.unwrap_or_default())?;
        self.index_push(seq, at)?;
        self.sender = seq + 1;
        Ok(())
    }
    fn set_next_sender_seq(&mut self, seq: u64) -> io::Result<()> {
        self.append(KIND_NEXT_SENDER, seq, &[])?;
        self.sender = seq;
        Ok(())
    }
    fn set_next_target_seq(&mut self, seq: u64) -> io::Result<()> {
        self.target = seq;
        Ok(())
    }
    fn sent(&mut self, seq: u64) -> io::Result<Option<&[u8]>> {
        let Some(off) = self.find(seq)? else {
            return Ok(None);
        };
        if self.read_record(off, self.log_len)? != Some((KIND_SENT, seq)) {
            log::warn!(
                "{}: the record of MsgSeqNum {seq} is corrupt; it is gap-filled",
                self.path.display()
            );
            return Ok(None);
        }
        Ok((!self.read_buf.is_empty()).then_some(&self.read_buf[..]))
    }
    fn reset(&mut self) -> io::Result<()> {
        self.pending.clear();
        self.index.set_len(0)?;
        self.index_len = 0;
        self.first = None;
        self.last = None;
        self.sender = 1;
        self.target = 1;
        self.created = 0;
        self.compact()
    }
    fn flush(&mut self) -> io::Result<()> {
        self.write_pending()?;
        if self.target != self.target_on_disk {
            self.write_slot()?;
        }
        Ok(())
    }
    fn creation_time(&self) -> Option<UtcTimestamp> {
        self.creation()
    }
    fn set_creation_time(&mut self, time: UtcTimestamp) -> io::Result<()> {
        self.created = time.0.max(1);
        self.write_slot()
    }
}

impl FileStore {
    fn creation(&self) -> Option<UtcTimestamp> {
        (self.created != 0).then_some(UtcTimestamp(self.created))
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        if let Err(e) = MessageStore::flush(self) {
            log::warn!("{}: store not flushed: {e}", self.path.display());
        }
    }
}
