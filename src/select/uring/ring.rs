//! The ring shared by the io_uring selector and its streams: submission, completion routing, the
//! provided-buffer ring and the per-connection state.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::{UringConfig, UringCounters};
use crate::select::Token;

/// End of a buffer chain.
const NONE: u16 = u16::MAX;
/// No connection at this descriptor.
const NO_SLOT: u32 = u32::MAX;
/// The provided-buffer group of the receives.
const BGID: u16 = 0;

const KIND_CANCEL: u64 = 0;
const KIND_RECV: u64 = 1;
const KIND_SEND: u64 = 2;
const KIND_POLL: u64 = 3;

/// `user_data` of a request: its kind, the connection slot and the slot's generation (a late
/// completion for an earlier occupant of the slot is told apart).
#[inline]
fn user_data(kind: u64, slot: u32, gen: u32) -> u64 {
    (kind << 62) | ((u64::from(gen) & 0x3fff_ffff) << 32) | u64::from(slot)
}

#[inline]
fn decode(ud: u64) -> (u64, u32, u32) {
    (ud >> 62, ud as u32, ((ud >> 32) & 0x3fff_ffff) as u32)
}

/// Anonymous, page-aligned memory that the kernel reads (the buffer ring) or writes (the buffers).
#[derive(Debug)]
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: an anonymous private mapping with no address hint; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are the mapping made in `new`; nothing refers to it any more (the
        // ring that used it is gone, see `Shared`'s drop order).
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// The provided-buffer ring: `count` buffers of `size` bytes that the kernel picks from for each
/// multishot receive completion, and that we hand back once their bytes are copied out.
#[derive(Debug)]
struct BufRing {
    entries: Mapping,
    memory: Mapping,
    count: u16,
    size: u32,
    tail: u16,
    /// Buffers in the ring (not yet filled by the kernel).
    free: u32,
}

impl BufRing {
    fn new(count: u16, size: u32) -> io::Result<BufRing> {
        let entries =
            Mapping::new(usize::from(count) * std::mem::size_of::<types::BufRingEntry>())?;
        let memory = Mapping::new(usize::from(count) * size as usize)?;
        let mut ring = BufRing {
            entries,
            memory,
            count,
            size,
            tail: 0,
            free: 0,
        };
        for bid in 0..count {
            ring.push(bid);
        }
        ring.publish();
        Ok(ring)
    }

    fn base(&self) -> *mut types::BufRingEntry {
        self.entries.ptr.cast()
    }

    /// Puts buffer `bid` back at the tail (visible to the kernel after [`BufRing::publish`]).
    fn push(&mut self, bid: u16) {
        let index = usize::from(self.tail & (self.count - 1));
        // SAFETY: `index < count`, the number of entries mapped; entries are plain data.
        let entry = unsafe { &mut *self.base().add(index) };
        // SAFETY: `bid < count`, so the offset stays inside the buffer mapping.
        let addr = unsafe { self.memory.ptr.add(usize::from(bid) * self.size as usize) };
        entry.set_addr(addr as u64);
        entry.set_len(self.size);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        self.free += 1;
    }

    fn publish(&self) {
        // SAFETY: the base is the first entry of the ring, mapped and initialised; the tail field
        // is a naturally aligned u16 that the kernel reads atomically.
        let tail = unsafe { &*(types::BufRingEntry::tail(self.base()) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }

    /// The bytes of buffer `bid`.
    fn bytes(&self, bid: u16, len: u32) -> &[u8] {
        let start = usize::from(bid) * self.size as usize;
        debug_assert!(len <= self.size && bid < self.count);
        // SAFETY: in bounds of the mapping (bid < count, len <= size); the kernel wrote these
        // bytes before posting the completion we read, and does not touch the buffer again until
        // it is pushed back.
        unsafe { std::slice::from_raw_parts(self.memory.ptr.add(start), len as usize) }
    }
}

/// One connection: a stream of this ring (multishot receive) or a foreign descriptor
/// (readiness only, through a multishot poll).
#[derive(Debug)]
struct Conn {
    fd: RawFd,
    gen: u32,
    token: Option<Token>,
    owned: bool,
    /// `false` once the stream dropped or the descriptor was deregistered; the slot is reused
    /// once no request of it is in flight.
    open: bool,
    inflight: u32,
    flagged: bool,
    connected: bool,
    recv_armed: bool,
    poll_armed: bool,
    rearm_queued: bool,
    /// Received buffers not yet read: a chain through `Shared::next`.
    head: u16,
    tail: u16,
    offset: u32,
    eof: bool,
    error: Option<i32>,
    /// Outgoing bytes `[start, end)`; `[start, sending)` is in flight.
    send: Vec<u8>,
    start: usize,
    end: usize,
    sending: usize,
}

impl Conn {
    fn vacant() -> Conn {
        Conn {
            fd: -1,
            gen: 0,
            token: None,
            owned: false,
            open: false,
            inflight: 0,
            flagged: false,
            connected: false,
            recv_armed: false,
            poll_armed: false,
            rearm_queued: false,
            head: NONE,
            tail: NONE,
            offset: 0,
            eof: false,
            error: None,
            send: Vec::new(),
            start: 0,
            end: 0,
            sending: 0,
        }
    }
}

/// Everything behind a [`super::UringRing`] handle.
///
/// Field order is drop order: the ring goes first (after every request was cancelled in `Drop`),
/// then the memory it pointed at.
pub(super) struct Shared {
    ring: IoUring,
    bufs: BufRing,
    conns: Vec<Conn>,
    sqpoll: bool,
    /// Next buffer in a connection's chain, and its length, by buffer id.
    next: Vec<u16>,
    lens: Vec<u32>,
    free_slots: Vec<u32>,
    by_fd: Vec<u32>,
    ready: Vec<u32>,
    rearm: Vec<u32>,
    send_capacity: usize,
    counters: UringCounters,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("sqpoll", &self.sqpoll)
            .field("buffers", &self.bufs.count)
            .field("buffer_size", &self.bufs.size)
            .field("connections", &(self.conns.len() - self.free_slots.len()))
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(super) fn new(config: &UringConfig) -> io::Result<Shared> {
        let count = config.buffers;
        if !count.is_power_of_two() || count > 32768 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("io_uring: buffers must be a power of two up to 32768, not {count}"),
            ));
        }
        if config.buffer_size == 0 || config.send_buffer == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "io_uring: buffer sizes must not be zero",
            ));
        }
        let mut builder = IoUring::builder();
        builder.setup_cqsize(config.entries.saturating_mul(4).max(count as u32));
        builder.setup_single_issuer();
        match config.sqpoll {
            Some(sq) => {
                builder.setup_sqpoll(sq.idle_ms);
                if let Some(cpu) = sq.cpu {
                    builder.setup_sqpoll_cpu(cpu);
                }
            }
            None => {
                // Completions wait for our next look instead of interrupting the thread; the
                // kernel raises a flag when there are some to collect.
                builder.setup_coop_taskrun();
                builder.setup_taskrun_flag();
            }
        }
        let ring = builder.build(config.entries).map_err(|e| {
            io::Error::new(e.kind(), format!("io_uring: cannot set up the ring: {e}"))
        })?;
        let bufs = BufRing::new(count as u16, config.buffer_size)?;
        // SAFETY: the entry memory is mapped, page-aligned and sized for `count` entries, and it
        // outlives the ring (field order in `Shared`); the group is unregistered in `Drop`.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                bufs.entries.ptr as u64,
                count as u16,
                BGID,
                0,
            )
        }
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("io_uring: cannot register the buffer ring (Linux 5.19+): {e}"),
            )
        })?;
        Ok(Shared {
            ring,
            bufs,
            conns: Vec::with_capacity(64),
            sqpoll: config.sqpoll.is_some(),
            next: vec![NONE; count],
            lens: vec![0; count],
            free_slots: Vec::with_capacity(64),
            by_fd: Vec::new(),
            ready: Vec::with_capacity(1024),
            rearm: Vec::with_capacity(1024),
            send_capacity: config.send_buffer,
            counters: UringCounters::default(),
        })
    }

    pub(super) fn counters(&self) -> UringCounters {
        self.counters
    }

    fn slot_of(&self, fd: RawFd) -> Option<u32> {
        let s = *self.by_fd.get(usize::try_from(fd).ok()?)?;
        (s != NO_SLOT).then_some(s)
    }

    fn set_fd(&mut self, fd: RawFd, slot: u32) {
        let Ok(i) = usize::try_from(fd) else { return };
        if self.by_fd.len() <= i {
            self.by_fd.resize(i + 1, NO_SLOT);
        }
        self.by_fd[i] = slot;
    }

    fn alloc(&mut self, fd: RawFd, owned: bool) -> (u32, u32) {
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.conns.push(Conn::vacant());
                (self.conns.len() - 1) as u32
            }
        };
        let send_capacity = self.send_capacity;
        let c = &mut self.conns[slot as usize];
        let gen = c.gen.wrapping_add(1) & 0x3fff_ffff;
        let mut send = std::mem::take(&mut c.send);
        if owned && send.len() != send_capacity {
            send = vec![0; send_capacity];
        }
        *c = Conn {
            fd,
            gen,
            owned,
            open: true,
            send,
            ..Conn::vacant()
        };
        self.set_fd(fd, slot);
        (slot, gen)
    }

    fn release_if_idle(&mut self, slot: u32) {
        let c = &self.conns[slot as usize];
        if !c.open && c.inflight == 0 {
            self.free_slots.push(slot);
        }
    }

    /// Queues one request, submitting first when the queue is full.
    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every request points at memory that outlives it: the send buffer of a
            // connection whose slot (and its buffer) is kept until its last completion, the
            // registered buffer ring, or nothing.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
            self.counters.enters += 1;
            if self.sqpoll && self.ring.submission().is_full() {
                self.ring.submitter().squeue_wait()?;
            }
        }
    }

    /// Hands queued requests to the kernel and, without SQPOLL, lets it post pending completions;
    /// enters the kernel only when there is something to do (or `wait` asks to sleep for one
    /// completion).
    pub(super) fn submit(&mut self, wait: Option<Duration>) -> io::Result<()> {
        let needed = {
            let sq = self.ring.submission();
            let pending_work = sq.taskrun() || sq.cq_overflow();
            if self.sqpoll {
                pending_work || (!sq.is_empty() && sq.need_wakeup())
            } else {
                pending_work || !sq.is_empty()
            }
        };
        let result = match wait {
            Some(t) if self.ring.completion().is_empty() => {
                let ts = types::Timespec::new()
                    .sec(t.as_secs())
                    .nsec(t.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                self.counters.enters += 1;
                self.ring.submitter().submit_with_args(1, &args)
            }
            _ if needed => {
                self.counters.enters += 1;
                self.ring.submit()
            }
            _ => return Ok(()),
        };
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Routes every posted completion to its connection.
    pub(super) fn reap(&mut self) -> io::Result<()> {
        let mut batch = [(0u64, 0i32, 0u32); 64];
        loop {
            let mut n = 0;
            {
                let mut cq = self.ring.completion();
                for cqe in &mut cq {
                    batch[n] = (cqe.user_data(), cqe.result(), cqe.flags());
                    n += 1;
                    if n == batch.len() {
                        break;
                    }
                }
            }
            self.counters.completions += n as u64;
            for &(ud, res, flags) in &batch[..n] {
                self.complete(ud, res, flags)?;
            }
            if n < batch.len() {
                return Ok(());
            }
        }
    }

    /// Re-arms the receives and polls that ended while their connection stays open.
    pub(super) fn rearm(&mut self) -> io::Result<()> {
        let mut i = 0;
        while i < self.rearm.len() {
            let slot = self.rearm[i];
            let c = &self.conns[slot as usize];
            if c.owned && self.bufs.free == 0 {
                // No buffer to receive into: the bytes wait in the socket until a read hands
                // buffers back (back-pressure), then the receive is armed again.
                i += 1;
                continue;
            }
            self.rearm.swap_remove(i);
            self.conns[slot as usize].rearm_queued = false;
            let c = &self.conns[slot as usize];
            if !c.open || c.error.is_some() {
                continue;
            }
            if c.owned {
                if !c.recv_armed && !c.eof && c.connected {
                    self.arm_recv(slot)?;
                }
            } else if !c.poll_armed {
                self.arm_poll(slot, true)?;
            }
        }
        Ok(())
    }

    fn queue_rearm(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        if !c.rearm_queued {
            c.rearm_queued = true;
            self.rearm.push(slot);
        }
    }

    fn flag(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        if !c.flagged && c.open {
            c.flagged = true;
            self.ready.push(slot);
        }
    }

    /// Moves the flagged connections' tokens into `out`.
    pub(super) fn take_ready(&mut self, out: &mut Vec<Token>) {
        for &slot in &self.ready {
            let c = &mut self.conns[slot as usize];
            c.flagged = false;
            if let (true, Some(t)) = (c.open, c.token) {
                out.push(t);
            }
        }
        self.ready.clear();
    }

    pub(super) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    fn arm_recv(&mut self, slot: u32) -> io::Result<()> {
        let c = &mut self.conns[slot as usize];
        let entry = opcode::RecvMulti::new(types::Fd(c.fd), BGID)
            .build()
            .user_data(user_data(KIND_RECV, slot, c.gen));
        c.recv_armed = true;
        c.inflight += 1;
        self.counters.recv_armed += 1;
        self.push(entry)
    }

    fn arm_poll(&mut self, slot: u32, multi: bool) -> io::Result<()> {
        let c = &mut self.conns[slot as usize];
        let mask = if multi {
            (libc::POLLIN | libc::POLLOUT | libc::POLLRDHUP | libc::POLLERR | libc::POLLHUP) as u32
        } else {
            (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) as u32
        };
        let entry = opcode::PollAdd::new(types::Fd(c.fd), mask)
            .multi(multi)
            .build()
            .user_data(user_data(KIND_POLL, slot, c.gen));
        c.poll_armed = true;
        c.inflight += 1;
        self.push(entry)
    }

    fn cancel(&mut self, kind: u64, slot: u32) -> io::Result<()> {
        let gen = self.conns[slot as usize].gen;
        let entry = opcode::AsyncCancel::new(user_data(kind, slot, gen))
            .build()
            .user_data(user_data(KIND_CANCEL, slot, gen));
        self.push(entry)
    }

    fn complete(&mut self, ud: u64, res: i32, flags: u32) -> io::Result<()> {
        let (kind, slot, gen) = decode(ud);
        if kind == KIND_CANCEL {
            return Ok(());
        }
        let Some(c) = self.conns.get_mut(slot as usize) else {
            return Ok(());
        };
        if c.gen != gen {
            return Ok(());
        }
        let more = cqueue::more(flags);
        match kind {
            KIND_RECV => {
                if let Some(bid) = cqueue::buffer_select(flags) {
                    self.bufs.free = self.bufs.free.saturating_sub(1);
                    if res > 0 && c.open && bid < self.bufs.count {
                        self.lens[usize::from(bid)] = res as u32;
                        self.next[usize::from(bid)] = NONE;
                        if c.tail == NONE {
                            c.head = bid;
                        } else {
                            self.next[usize::from(c.tail)] = bid;
                        }
                        c.tail = bid;
                        self.counters.received_bytes += res as u64;
                    } else {
                        self.bufs.push(bid);
                        self.bufs.publish();
                    }
                }
                let c = &mut self.conns[slot as usize];
                match res {
                    0 => c.eof = true,
                    r if r == -libc::ENOBUFS => self.counters.no_buffers += 1,
                    r if r == -libc::ECANCELED => {}
                    r if r < 0 => c.error = Some(-r),
                    _ => {}
                }
                let c = &mut self.conns[slot as usize];
                if !more {
                    c.recv_armed = false;
                    c.inflight -= 1;
                    if c.open && !c.eof && c.error.is_none() {
                        self.queue_rearm(slot);
                    }
                }
                if res != -libc::ENOBUFS {
                    self.flag(slot);
                }
            }
            KIND_SEND => {
                c.inflight -= 1;
                if res < 0 {
                    c.error = Some(-res);
                    c.sending = c.start;
                } else {
                    c.start += res as usize;
                    if c.start == c.end {
                        c.start = 0;
                        c.end = 0;
                        c.sending = 0;
                    } else {
                        c.sending = c.start;
                        if c.open {
                            // The rest of the in-flight range, with whatever was written since.
                            self.start_send(slot)?;
                        }
                    }
                }
                self.flag(slot);
            }
            KIND_POLL => {
                if !more {
                    c.poll_armed = false;
                    c.inflight -= 1;
                    let rearm = c.open && !c.owned && res != -libc::ECANCELED;
                    if rearm {
                        self.queue_rearm(slot);
                    }
                }
                self.flag(slot);
            }
            _ => {}
        }
        self.release_if_idle(slot);
        Ok(())
    }

    // ---- the stream side -------------------------------------------------------------------

    /// A new connection of this ring on socket `fd` (not connected yet).
    pub(super) fn open_stream(&mut self, fd: RawFd) -> (u32, u32) {
        self.alloc(fd, true)
    }

    /// The stream's socket is connected: start receiving.
    pub(super) fn connected(&mut self, slot: u32) -> io::Result<()> {
        let c = &mut self.conns[slot as usize];
        if c.connected {
            return Ok(());
        }
        c.connected = true;
        self.arm_recv(slot)?;
        self.submit(None)
    }

    /// The stream is gone: stop receiving, hand its buffers back; in-flight sends finish (the
    /// kernel holds the socket until they do).
    pub(super) fn close_stream(&mut self, slot: u32) {
        let (fd, recv, poll) = {
            let c = &mut self.conns[slot as usize];
            c.open = false;
            c.token = None;
            (c.fd, c.recv_armed, c.poll_armed)
        };
        if self.slot_of(fd) == Some(slot) {
            self.set_fd(fd, NO_SLOT);
        }
        self.drop_chain(slot);
        // A failure to queue a cancel leaves the request to end with the socket.
        if recv {
            let _ = self.cancel(KIND_RECV, slot);
        }
        if poll {
            let _ = self.cancel(KIND_POLL, slot);
        }
        let _ = self.submit(None);
        self.release_if_idle(slot);
    }

    fn drop_chain(&mut self, slot: u32) {
        let mut bid = self.conns[slot as usize].head;
        while bid != NONE {
            let next = self.next[usize::from(bid)];
            self.bufs.push(bid);
            bid = next;
        }
        self.bufs.publish();
        let c = &mut self.conns[slot as usize];
        c.head = NONE;
        c.tail = NONE;
        c.offset = 0;
    }

    /// `true` when a read would return something other than `WouldBlock`.
    pub(super) fn read_pending(&self, slot: u32) -> bool {
        let c = &self.conns[slot as usize];
        c.head != NONE || c.eof || c.error.is_some()
    }

    /// Copies received bytes into `buf`.
    pub(super) fn read(&mut self, slot: u32, buf: &mut [u8]) -> io::Result<usize> {
        if self.conns[slot as usize].head == NONE {
            // Nothing held: collect what the kernel posted (no syscall unless it flagged work).
            self.submit(None)?;
            self.reap()?;
            self.rearm()?;
        }
        let mut n = 0;
        let mut recycled = false;
        while n < buf.len() {
            let c = &mut self.conns[slot as usize];
            let bid = c.head;
            if bid == NONE {
                break;
            }
            let len = self.lens[usize::from(bid)];
            let bytes = &self.bufs.bytes(bid, len)[c.offset as usize..];
            let take = bytes.len().min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&bytes[..take]);
            n += take;
            c.offset += take as u32;
            if c.offset == len {
                c.head = self.next[usize::from(bid)];
                if c.head == NONE {
                    c.tail = NONE;
                }
                c.offset = 0;
                self.bufs.push(bid);
                recycled = true;
            }
        }
        if recycled {
            self.bufs.publish();
        }
        if n > 0 {
            return Ok(n);
        }
        let c = &self.conns[slot as usize];
        if let Some(errno) = c.error {
            return Err(io::Error::from_raw_os_error(errno));
        }
        if c.eof {
            return Ok(0);
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn start_send(&mut self, slot: u32) -> io::Result<()> {
        let c = &mut self.conns[slot as usize];
        let len = (c.end - c.start).min(u32::MAX as usize);
        let entry = opcode::Send::new(types::Fd(c.fd), c.send[c.start..].as_ptr(), len as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(user_data(KIND_SEND, slot, c.gen));
        c.sending = c.start + len;
        c.inflight += 1;
        self.counters.sends += 1;
        self.push(entry)
    }

    /// Copies `buf` into the connection's send buffer and sends it through the ring.
    pub(super) fn write(&mut self, slot: u32, buf: &[u8]) -> io::Result<usize> {
        let c = &mut self.conns[slot as usize];
        if let Some(errno) = c.error {
            return Err(io::Error::from_raw_os_error(errno));
        }
        if !c.connected {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let in_flight = c.sending > c.start;
        if !in_flight && c.start > 0 {
            c.send.copy_within(c.start..c.end, 0);
            c.end -= c.start;
            c.start = 0;
        }
        let n = buf.len().min(c.send.len() - c.end);
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        c.send[c.end..c.end + n].copy_from_slice(&buf[..n]);
        c.end += n;
        if !in_flight {
            self.start_send(slot)?;
            self.submit(None)?;
        }
        Ok(n)
    }

    /// `Ok` once every written byte is in a submitted send; `WouldBlock` while some wait for the
    /// send in flight to complete.
    pub(super) fn flush(&mut self, slot: u32) -> io::Result<()> {
        let c = &self.conns[slot as usize];
        if let Some(errno) = c.error {
            return Err(io::Error::from_raw_os_error(errno));
        }
        if c.end > c.sending {
            self.submit(None)?;
            self.reap()?;
            let c = &self.conns[slot as usize];
            if c.end > c.sending {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        Ok(())
    }

    /// `Ok(true)` once every written byte has been sent and its send completed.
    pub(super) fn sent_all(&mut self, slot: u32) -> io::Result<bool> {
        self.flush(slot)?;
        if self.conns[slot as usize].end > 0 {
            self.reap()?;
        }
        let c = &self.conns[slot as usize];
        if let Some(errno) = c.error {
            return Err(io::Error::from_raw_os_error(errno));
        }
        Ok(c.start == c.end)
    }

    // ---- the selector side -----------------------------------------------------------------

    /// Starts reporting readiness for `fd` under `token`: a stream of this ring gets its token
    /// (and a one-shot poll for its connect); any other descriptor gets a multishot poll.
    pub(super) fn register(&mut self, fd: RawFd, token: Token) -> io::Result<()> {
        if let Some(slot) = self.slot_of(fd) {
            let c = &mut self.conns[slot as usize];
            if c.owned {
                c.token = Some(token);
                if !c.connected && !c.poll_armed {
                    self.arm_poll(slot, false)?;
                }
                self.flag(slot);
                return self.submit(None);
            }
            // A descriptor registered again without a deregister: replace its registration.
            self.deregister(fd)?;
        }
        let (slot, _) = self.alloc(fd, false);
        self.conns[slot as usize].token = Some(token);
        self.arm_poll(slot, true)?;
        self.submit(None)
    }

    /// Stops reporting `fd`.
    pub(super) fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        let Some(slot) = self.slot_of(fd) else {
            return Ok(());
        };
        let c = &mut self.conns[slot as usize];
        c.token = None;
        if c.owned {
            return Ok(());
        }
        c.open = false;
        let armed = c.poll_armed;
        self.set_fd(fd, NO_SLOT);
        if armed {
            self.cancel(KIND_POLL, slot)?;
            self.submit(None)?;
        }
        self.release_if_idle(slot);
        Ok(())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Every request ends before the memory it points at goes: the send buffers (in `conns`)
        // and the provided buffers (in `bufs`), which drop after the ring.
        let _ = self.ring.submit();
        let _ = self.ring.submitter().register_sync_cancel(
            Some(types::Timespec::new().sec(1)),
            types::CancelBuilder::any(),
        );
        let _ = self.ring.submitter().unregister_buf_ring(BGID);
    }
}
