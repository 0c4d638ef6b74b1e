//! Messages received beyond a sequence gap, held until the resend fills the gap (FIX 4.4 Volume 2,
//! "Message Recovery": the receiver may queue messages after a gap instead of requesting them
//! again). Bounded by a message count and a byte budget, both allocated up front.

/// One queued message: its MsgSeqNum, where its bytes are, and whether the session already acted
/// on it when it arrived (a ResendRequest is served at once, even across a gap).
#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    off: usize,
    len: usize,
    handled: bool,
}

/// The queue: an arena of message bytes and entries sorted by MsgSeqNum.
#[derive(Debug)]
pub(super) struct GapQueue {
    data: Vec<u8>,
    entries: Vec<Entry>,
    /// The first entry still queued (entries before it were taken).
    head: usize,
    max_messages: usize,
    max_bytes: usize,
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// Queueing is off (a zero bound).
    Disabled,
    /// Its number is queued already (a duplicate).
    Duplicate,
    /// The count or byte bound would be passed.
    Full,
}

impl GapQueue {
    /// A queue of at most `max_messages` messages and `max_bytes` bytes (either 0: off).
    pub(super) fn new(max_messages: usize, max_bytes: usize) -> GapQueue {
        let on = max_messages > 0 && max_bytes > 0;
        GapQueue {
            data: Vec::with_capacity(if on { max_bytes } else { 0 }),
            entries: Vec::with_capacity(if on { max_messages } else { 0 }),
            head: 0,
            max_messages,
            max_bytes,
        }
    }

    /// Messages queued.
    pub(super) fn len(&self) -> usize {
        self.entries.len() - self.head
    }

    /// Queues `frame` as `seq`.
    pub(super) fn push(&mut self, seq: u64, frame: &[u8], handled: bool) -> Result<(), Refused> {
        if self.max_messages == 0 || self.max_bytes == 0 {
            return Err(Refused::Disabled);
        }
        if self.head > 0 && self.head == self.entries.len() {
            self.clear();
        }
        let live = &self.entries[self.head..];
        let at = live.partition_point(|e| e.seq < seq);
        if live.get(at).is_some_and(|e| e.seq == seq) {
            return Err(Refused::Duplicate);
        }
        if self.entries.len() == self.max_messages || self.data.len() + frame.len() > self.max_bytes
        {
            return Err(Refused::Full);
        }
        let entry = Entry {
            seq,
            off: self.data.len(),
            len: frame.len(),
            handled,
        };
        self.data.extend_from_slice(frame);
        self.entries.insert(self.head + at, entry);
        Ok(())
    }

    /// Forgets every queued message.
    pub(super) fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
        self.head = 0;
    }

    /// Drops the messages numbered below `expected`, then copies the one numbered `expected`, if
    /// queued, into `out` (replacing its contents) and returns whether the session already acted
    /// on it.
    pub(super) fn take(&mut self, expected: u64, out: &mut Vec<u8>) -> Option<bool> {
        while self
            .entries
            .get(self.head)
            .is_some_and(|e| e.seq < expected)
        {
            self.head += 1;
        }
        let e = *self.entries.get(self.head).filter(|e| e.seq == expected)?;
        self.head += 1;
        out.clear();
        out.extend_from_slice(&self.data[e.off..e.off + e.len]);
        if self.head == self.entries.len() {
            self.clear();
        }
        Some(e.handled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_in_order_within_bounds() {
        let mut q = GapQueue::new(3, 100);
        assert_eq!(q.push(7, b"seven", false), Ok(()));
        assert_eq!(q.push(5, b"five", true), Ok(()));
        assert_eq!(q.push(5, b"five", false), Err(Refused::Duplicate));
        assert_eq!(q.push(6, &[b'x'; 92], false), Err(Refused::Full));
        assert_eq!(q.push(6, b"six", false), Ok(()));
        assert_eq!(q.push(8, b"eight", false), Err(Refused::Full));
        assert_eq!(q.len(), 3);
        let mut out = Vec::new();
        assert_eq!(q.take(4, &mut out), None);
        assert_eq!((q.take(5, &mut out), &out[..]), (Some(true), &b"five"[..]));
        // 6 was filled by a resend: it is dropped when 7 is next.
        assert_eq!(
            (q.take(7, &mut out), &out[..]),
            (Some(false), &b"seven"[..])
        );
        assert_eq!((q.len(), q.data.len()), (0, 0));
        assert_eq!(q.push(9, b"nine", false), Ok(()));
        assert_eq!(
            GapQueue::new(0, 100).push(1, b"x", false),
            Err(Refused::Disabled)
        );
    }
}
