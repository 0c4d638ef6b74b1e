//! The io_uring selector (feature `io-uring`, Linux 6.0 or newer).
//!
//! # Design
//!
//! One ring per IO thread, shared (a cheap [`UringRing`] handle, like the AF_XDP stack) by the
//! [`UringSelector`] and the [`UringStream`]s it dials. It drives the same `IoService` and
//! endpoints as mio and direct, in two modes per connection:
//!
//! - **Multishot receive into provided buffers** ([`UringStream`]). Once the socket is connected
//!   one `IORING_OP_RECV` with `IORING_RECV_MULTISHOT` stays armed for the life of the connection;
//!   each arrival takes a buffer from a provided-buffer ring (`IORING_REGISTER_PBUF_RING`, shared
//!   by all connections of the thread) and posts a completion. The selector routes completions to
//!   their connection — a chain of buffer ids per connection, no allocation — and reports the
//!   connection's token ready. [`Read`](std::io::Read) then copies from those buffers into the
//!   caller's buffer (the one copy: the kernel's socket-to-user copy happened into the provided
//!   buffer) and hands each emptied buffer back to the ring at once. So the
//!   [stream contract](crate::stream) holds unchanged: reads return `WouldBlock` when nothing is
//!   held, `Ok(0)` at end of stream, the received error after the data; TLS, WebSocket, HTTP and
//!   FIX run on it as on a kernel socket. Writes are copied into the connection's send buffer
//!   (sized once, at connect) and go out as `IORING_OP_SEND` requests, one in flight per
//!   connection with what was written meanwhile coalesced into the next; `flush` is `WouldBlock`
//!   while bytes wait for that next send.
//! - **Readiness only** (any other descriptor: a plain [`crate::stream::TcpStream`], a kTLS
//!   socket): a multishot `IORING_OP_POLL_ADD`, reported edge-style like mio's.
//!
//! **Back-pressure**: when every provided buffer holds unread bytes the kernel ends the receive
//! with `ENOBUFS`; the bytes stay in the socket (TCP flow control applies) and the receive is
//! armed again as soon as reads hand buffers back.
//!
//! **Syscalls**: without SQPOLL the ring is set up with `COOP_TASKRUN` and `TASKRUN_FLAG`:
//! completions are not pushed into the thread by interrupts but flagged, and one `io_uring_enter`
//! per poll round collects every connection's arrivals and submits every queued send (an idle
//! busy-polling round makes no syscall at all). With SQPOLL ([`SqPoll`], for a pinned core) a
//! kernel thread, optionally pinned too, consumes submissions and runs completions, so the hot
//! path of a busy thread makes **no syscall**: sends, receives and readiness are all shared
//! memory. [`UringCounters::enters`] counts the syscalls the ring made.
//!
//! # Trade-offs
//!
//! - Received bytes are copied once in user space, from the provided buffer into the caller's
//!   buffer, on top of the kernel's copy into the provided buffer; epoll plus `recv` copies once,
//!   straight into the caller's buffer. For small messages the saved syscalls dominate; for bulk
//!   transfers the second copy costs memory bandwidth (see the README's figures).
//! - Sends are asynchronous: a `write` reports bytes accepted into the send buffer, and a send
//!   error is seen by the next call. A connection dropped with a send in flight lets that send
//!   finish (the kernel holds the socket until it does).
//! - SQPOLL spends a second core (the kernel thread) spinning for up to [`SqPoll::idle_ms`] after
//!   the last submission; without a spare core, the plain mode is the better trade.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Duration;

use super::{Selector, Token};
use crate::stream::{Stream, TcpOptions, TcpStream};

mod ring;

use ring::Shared;

/// SQPOLL: a kernel thread consumes the submission queue, so submitting needs no syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqPoll {
    /// The CPU the kernel thread is pinned to (`None`: the scheduler decides).
    pub cpu: Option<u32>,
    /// How long the kernel thread spins without work before it sleeps (the next submission then
    /// wakes it with a syscall).
    pub idle_ms: u32,
}

/// How a ring is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UringConfig {
    /// Submission queue entries (the completion queue gets four times as many).
    pub entries: u32,
    /// Provided receive buffers shared by the thread's connections (a power of two, at most
    /// 32768).
    pub buffers: usize,
    /// Bytes per provided buffer: the most one receive completion carries.
    pub buffer_size: u32,
    /// Bytes of each connection's send buffer (allocated once, at connect).
    pub send_buffer: usize,
    /// Run with a kernel submission thread.
    pub sqpoll: Option<SqPoll>,
}

impl Default for UringConfig {
    fn default() -> Self {
        UringConfig {
            entries: 256,
            buffers: 128,
            buffer_size: 64 * 1024,
            send_buffer: 64 * 1024,
            sqpoll: None,
        }
    }
}

/// What a ring has done since it was set up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UringCounters {
    /// `io_uring_enter` syscalls.
    pub enters: u64,
    /// Completions routed.
    pub completions: u64,
    /// Multishot receives armed (one per connection, plus one per re-arm).
    pub recv_armed: u64,
    /// Receives that ended because every provided buffer was full (back-pressure).
    pub no_buffers: u64,
    /// Send requests submitted.
    pub sends: u64,
    /// Bytes received into provided buffers.
    pub received_bytes: u64,
}

/// A handle to one thread's ring (cheap to clone; not `Send`: the ring belongs to its thread).
#[derive(Clone)]
pub struct UringRing(Rc<RefCell<Shared>>);

impl std::fmt::Debug for UringRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.try_borrow() {
            Ok(s) => s.fmt(f),
            Err(_) => f.write_str("UringRing(in use)"),
        }
    }
}

impl UringRing {
    /// Sets up a ring and registers its provided buffers.
    pub fn new(config: &UringConfig) -> io::Result<UringRing> {
        Ok(UringRing(Rc::new(RefCell::new(Shared::new(config)?))))
    }

    /// What the ring has done so far.
    pub fn counters(&self) -> UringCounters {
        self.0.borrow().counters()
    }
}

/// Readiness from io_uring completions. See the [module](self) docs.
#[derive(Debug)]
pub struct UringSelector {
    ring: UringRing,
}

impl UringSelector {
    /// A selector over `ring` (whose streams it reports through their multishot receives).
    pub fn new(ring: UringRing) -> UringSelector {
        UringSelector { ring }
    }

    /// The ring it polls.
    pub fn ring(&self) -> &UringRing {
        &self.ring
    }
}

impl Selector for UringSelector {
    fn register(&mut self, fd: Option<RawFd>, token: Token) -> io::Result<()> {
        let fd = crate::stream::require_fd(fd)?;
        self.ring.0.borrow_mut().register(fd, token)
    }

    fn deregister(&mut self, fd: Option<RawFd>) -> io::Result<()> {
        let fd = crate::stream::require_fd(fd)?;
        self.ring.0.borrow_mut().deregister(fd)
    }

    fn poll(&mut self, timeout: Duration, ready: &mut Vec<Token>) -> io::Result<()> {
        ready.clear();
        let mut s = self.ring.0.borrow_mut();
        s.rearm()?;
        s.submit(None)?;
        s.reap()?;
        if !s.has_ready() && !timeout.is_zero() {
            // Sleep in the kernel until a completion or the timeout.
            s.submit(Some(timeout))?;
            s.reap()?;
        }
        s.rearm()?;
        s.take_ready(ready);
        Ok(())
    }

    #[inline]
    fn polls_all(&self) -> bool {
        false
    }
}

/// A kernel TCP connection whose receives and sends go through a [`UringRing`] (see the
/// [module](self) docs). Follows the [stream contract](crate::stream).
///
/// Its readiness comes from the ring's completions, not from the socket (the ring takes the
/// bytes out of it): register it with a [`UringSelector`] over the same ring, not with epoll.
pub struct UringStream {
    ring: UringRing,
    slot: u32,
    connected: bool,
    // Dropped after `Drop::drop` has told the ring: the socket closes last.
    tcp: TcpStream,
}

impl std::fmt::Debug for UringStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringStream")
            .field("peer", &self.tcp.peer_addr())
            .field("slot", &self.slot)
            .field("connected", &self.connected)
            .finish()
    }
}

impl UringStream {
    /// Starts a non-blocking connect to `addr` with `options`, on `ring`.
    pub fn connect(
        ring: &UringRing,
        addr: SocketAddr,
        options: &TcpOptions,
    ) -> io::Result<UringStream> {
        let tcp = TcpStream::connect(addr, options)?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&tcp);
        let (slot, _) = ring.0.borrow_mut().open_stream(fd);
        Ok(UringStream {
            ring: ring.clone(),
            slot,
            connected: false,
            tcp,
        })
    }

    /// The address this stream connects to.
    pub fn peer_addr(&self) -> SocketAddr {
        self.tcp.peer_addr()
    }

    /// The underlying kernel socket (for socket options).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    fn ready(&mut self) -> io::Result<bool> {
        if !self.connected && self.tcp.poll_connect()? {
            self.ring.0.borrow_mut().connected(self.slot)?;
            self.connected = true;
        }
        Ok(self.connected)
    }
}

impl Drop for UringStream {
    fn drop(&mut self) {
        self.ring.0.borrow_mut().close_stream(self.slot);
    }
}

impl io::Read for UringStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.ready()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.ring.0.borrow_mut().read(self.slot, buf)
    }
}

impl io::Write for UringStream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.ready()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.ring.0.borrow_mut().write(self.slot, buf)
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        if !self.connected {
            return Ok(());
        }
        self.ring.0.borrow_mut().flush(self.slot)
    }
}

impl Stream for UringStream {
    fn poll_connect(&mut self) -> io::Result<bool> {
        self.ready()
    }

    fn read_pending(&self) -> bool {
        self.connected && self.ring.0.borrow().read_pending(self.slot)
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(std::os::fd::AsRawFd::as_raw_fd(&self.tcp))
    }

    /// FIN once every written byte has been sent by the ring (a shutdown under a send still in
    /// flight would fail it); `WouldBlock` until then.
    fn shutdown_write(&mut self) -> io::Result<()> {
        if !self.ready()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if !self.ring.0.borrow_mut().sent_all(self.slot)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.tcp.shutdown_write()
    }
}

crate::stream::impl_mio_source!(UringStream);

#[cfg(test)]
mod tests;
