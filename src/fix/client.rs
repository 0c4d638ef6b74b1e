//! The FIX session over a stream: [`FixSession`] (documented there).

use std::io;
use std::os::fd::RawFd;
use std::time::{Instant, SystemTime};

use super::codec::{frame_len, Encoder, Message, DEFAULT_MAX_MESSAGE};
use super::session::{
    Action, MessageStore, Now, Session, SessionConfig, SessionError, SessionState,
};
use crate::buf::HotBuf;
use crate::select::Selectable;
use crate::stream::{would_block, Stream};

/// What [`FixSession::receive`] hands to the application.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum FixEvent<'a> {
    /// The Logon was answered (the counterparty's Logon).
    LoggedOn(Message<'a>),
    /// An application message, in sequence (possibly a resend: check PossDupFlag).
    App(Message<'a>),
    /// The counterparty rejected one of our messages at session level.
    Rejected {
        /// RefSeqNum(45): which of ours.
        ref_seq: u64,
        /// SessionRejectReason(373).
        reason: Option<u64>,
        /// The Reject itself (Text(58) may explain).
        message: Message<'a>,
    },
    /// The Logout handshake is complete; the connection can be closed.
    LoggedOut(Message<'a>),
}

/// The current clock as a [`Now`] (for the adapter and the service layer, never the session).
pub fn clock() -> Now {
    Now::new(Instant::now(), SystemTime::now())
}

/// A session error as an I/O error, keeping it as the source.
pub fn into_io(e: SessionError) -> io::Error {
    e.into()
}

/// A session error as an I/O error (a store's own I/O error as itself), so `?` works on sends in
/// functions returning `io::Result`.
impl From<SessionError> for io::Error {
    fn from(e: SessionError) -> io::Error {
        match e {
            SessionError::Store(inner) => inner,
            other => io::Error::other(other),
        }
    }
}

/// A codec error as an I/O error of kind `InvalidData`, keeping it as the source.
impl From<super::codec::FixError> for io::Error {
    fn from(e: super::codec::FixError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// The send side of a [`FixSession`], lent to callbacks while a received message is borrowed.
#[derive(Debug)]
pub struct Outbox<'a, S, M> {
    stream: &'a mut S,
    session: &'a mut Session<M>,
}

impl<S: Stream, M: MessageStore> Outbox<'_, S, M> {
    /// Sends an application message (see [`Session::send`]) and writes as much as the stream
    /// takes. Returns its MsgSeqNum.
    pub fn send(
        &mut self,
        now: Now,
        msg_type: &[u8],
        body: impl FnOnce(&mut Encoder),
    ) -> io::Result<u64> {
        let seq = self.session.send(now, msg_type, body).map_err(into_io)?;
        write_out(self.stream, self.session)?;
        Ok(seq)
    }

    /// The session.
    pub fn session(&self) -> &Session<M> {
        self.session
    }
}

/// Writes what the session has queued until the stream would block. `Ok(true)` when all is out.
fn write_out<S: Stream, M: MessageStore>(
    stream: &mut S,
    session: &mut Session<M>,
) -> io::Result<bool> {
    while !session.pending().is_empty() {
        match stream.write(session.pending()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => session.consume(n),
            Err(e) if would_block(&e) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    match stream.flush() {
        Ok(()) => Ok(true),
        Err(e) if would_block(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A FIX session over a stream `S`, keeping its state in the store `M`.
///
/// [`FixSession`]: the sans-IO [`Session`] over any [`Stream`] (TCP, TLS, XDP, a recording).
///
/// The adapter owns one receive buffer (allocated once, twice the largest message) and writes what
/// the session queues, in one place: [`Session::pending`]. Nothing blocks; every call makes what
/// progress it can and returns. It is also a [`Selectable`]: its connect phase is the stream's
/// connect plus the Logon exchange, so an [`IoService`](crate::service::IoService) reports the
/// endpoint up only once the session is logged on.
///
/// Like the service layer, the adapter reads the clock where a caller cannot pass it in (during
/// [`Selectable::poll_connect`]); everything else takes `now`.
#[derive(Debug)]
pub struct FixSession<S, M> {
    stream: S,
    session: Session<M>,
    rbuf: HotBuf,
    rstart: usize,
    rend: usize,
    max_message: usize,
    /// A message the session queued beyond a gap, taken back once the gap is filled.
    replay: Vec<u8>,
}

/// Where a message to hand out lies: the receive buffer or the replay buffer.
#[derive(Debug, Clone, Copy)]
enum Src {
    Read(usize, usize),
    Replay,
}

impl<S: Stream, M: MessageStore> FixSession<S, M> {
    /// A session over `stream` (connected or still connecting). The Logon goes out with the first
    /// [`poll_connect`](Selectable::poll_connect), or with [`FixSession::start`].
    pub fn new(stream: S, config: SessionConfig, store: M, now: Now) -> FixSession<S, M> {
        FixSession::with_max_message(stream, config, store, now, DEFAULT_MAX_MESSAGE)
    }

    /// Like [`FixSession::new`], accepting messages of up to `max_message` bytes.
    pub fn with_max_message(
        stream: S,
        config: SessionConfig,
        store: M,
        now: Now,
        max_message: usize,
    ) -> FixSession<S, M> {
        FixSession {
            stream,
            session: Session::new(config, store, now),
            rbuf: HotBuf::new(max_message.max(256) * 2),
            rstart: 0,
            rend: 0,
            max_message,
            replay: Vec::with_capacity(max_message.max(256)),
        }
    }

    /// Queues the Logon (once) and writes what the stream takes.
    pub fn start(&mut self, now: Now) -> io::Result<()> {
        self.session.start(now).map_err(into_io)?;
        self.flush().map(|_| ())
    }

    /// The session state machine.
    pub fn session(&self) -> &Session<M> {
        &self.session
    }

    /// The session state machine, mutably.
    pub fn session_mut(&mut self) -> &mut Session<M> {
        &mut self.session
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The send side (for code that also holds a received message).
    pub fn outbox(&mut self) -> Outbox<'_, S, M> {
        Outbox {
            stream: &mut self.stream,
            session: &mut self.session,
        }
    }

    /// Sends an application message; see [`Outbox::send`].
    pub fn send(
        &mut self,
        now: Now,
        msg_type: &[u8],
        body: impl FnOnce(&mut Encoder),
    ) -> io::Result<u64> {
        self.outbox().send(now, msg_type, body)
    }

    /// Writes queued bytes. `Ok(true)` when nothing is left queued.
    pub fn flush(&mut self) -> io::Result<bool> {
        if !self.stream.poll_connect()? {
            return Ok(false);
        }
        write_out(&mut self.stream, &mut self.session)
    }

    /// Persists what the store holds back (the inbound sequence number, index entries): once per
    /// poll, after draining the stream. [`FixSession::receive`] and [`FixSession::receive_with`]
    /// call it when the stream would block; call it after other batches of work.
    pub fn commit(&mut self) -> io::Result<()> {
        self.session.store_mut().flush()
    }

    /// Drives the session's timers (heartbeats, TestRequests, timeouts) and writes the result.
    pub fn on_timer(&mut self, now: Now) -> io::Result<()> {
        let timers = self.session.on_timer(now);
        let flushed = self.flush();
        timers.map_err(into_io)?;
        flushed.map(|_| ())
    }

    /// Sends a TestRequest; the matching Heartbeat clears
    /// [`Session::test_request_pending`].
    pub fn test_request(&mut self, now: Now) -> io::Result<u64> {
        let n = self.session.send_test_request(now).map_err(into_io)?;
        self.flush()?;
        Ok(n)
    }

    /// Starts the Logout handshake; [`FixEvent::LoggedOut`] follows when it completes.
    pub fn logout(&mut self, now: Now, text: Option<&str>) -> io::Result<()> {
        self.session.logout(now, text).map_err(into_io)?;
        self.flush().map(|_| ())
    }

    /// Reads and processes messages until one is for the application (returned), or the stream
    /// would block (`Ok(None)`). Session messages are answered on the way.
    ///
    /// Drain it: call until `Ok(None)` after every readiness event. A clean end of the stream after
    /// the Logout handshake is `Ok(None)` too; any other end is an error.
    pub fn receive(&mut self, now: Now) -> io::Result<Option<FixEvent<'_>>> {
        match self.next_message(now)? {
            Some((src, action)) => Ok(event(self.bytes(src), action)),
            None => Ok(None),
        }
    }

    fn bytes(&self, src: Src) -> &[u8] {
        match src {
            Src::Read(start, end) => &self.rbuf[start..end],
            Src::Replay => &self.replay,
        }
    }

    /// Like [`FixSession::receive`], handing each event to `f` together with the send side, until
    /// the stream would block or `f` returns `Ok(false)`.
    pub fn receive_with(
        &mut self,
        now: Now,
        mut f: impl FnMut(FixEvent<'_>, &mut Outbox<'_, S, M>) -> io::Result<bool>,
    ) -> io::Result<()> {
        while let Some((src, action)) = self.next_message(now)? {
            let bytes = match src {
                Src::Read(start, end) => &self.rbuf[start..end],
                Src::Replay => &self.replay[..],
            };
            let Some(ev) = event(bytes, action) else {
                continue;
            };
            let mut outbox = Outbox {
                stream: &mut self.stream,
                session: &mut self.session,
            };
            if !f(ev, &mut outbox)? {
                break;
            }
        }
        Ok(())
    }

    /// The next message the application may want to see: its position in the buffer and what the
    /// session made of it. Admin-only outcomes are skipped here.
    fn next_message(&mut self, now: Now) -> io::Result<Option<(Src, Action)>> {
        loop {
            // A message queued beyond a gap that is next in sequence now goes first.
            let src = if self.session.take_queued(&mut self.replay) {
                Src::Replay
            } else {
                match self.read_frame()? {
                    Some((start, end)) => Src::Read(start, end),
                    None => {
                        // Drained: the inbound numbers of this batch are persisted once.
                        self.commit()?;
                        return Ok(None);
                    }
                }
            };
            let bytes = match src {
                Src::Read(start, end) => &self.rbuf[start..end],
                Src::Replay => &self.replay[..],
            };
            let action = match Message::parse_frame(bytes) {
                Ok(msg) => self.session.handle(now, &msg),
                Err(e) => {
                    // A garbled message is ignored without consuming its sequence number (FIX 4.4
                    // Volume 2, "Message Recovery"); a gap, if any, is recovered later.
                    log::warn!("ignoring a garbled FIX message: {e}");
                    continue;
                }
            };
            let flushed = self.flush();
            let action = action.map_err(into_io)?;
            flushed?;
            match action {
                Action::Handled | Action::Ignored | Action::Queued => continue,
                other => return Ok(Some((src, other))),
            }
        }
    }

    /// The next complete frame in the buffer, reading from the stream as needed.
    fn read_frame(&mut self) -> io::Result<Option<(usize, usize)>> {
        // After the Logout nothing more is read: the counterparty may close without ceremony
        // (TLS without close_notify), which is no error then.
        if self.session.state() == SessionState::Ended {
            return Ok(None);
        }
        loop {
            let buffered = &self.rbuf[self.rstart..self.rend];
            match frame_len(buffered, self.max_message) {
                Ok(Some(n)) => {
                    let start = self.rstart;
                    self.rstart += n;
                    return Ok(Some((start, start + n)));
                }
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            if self.rstart == self.rend {
                self.rstart = 0;
                self.rend = 0;
            } else if self.rend == self.rbuf.len() {
                self.rbuf.copy_within(self.rstart..self.rend, 0);
                self.rend -= self.rstart;
                self.rstart = 0;
            }
            if !self.stream.poll_connect()? {
                return Ok(None);
            }
            match self.stream.read(&mut self.rbuf[self.rend..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "FIX counterparty closed the connection without a Logout",
                    ))
                }
                Ok(n) => self.rend += n,
                Err(e) if would_block(&e) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn event(bytes: &[u8], action: Action) -> Option<FixEvent<'_>> {
    // The frame was parsed once already; parsing again is cheaper than carrying offsets around.
    let msg = Message::parse_frame(bytes).ok()?;
    Some(match action {
        Action::Deliver => FixEvent::App(msg),
        Action::LoggedOn => FixEvent::LoggedOn(msg),
        Action::LoggedOut => FixEvent::LoggedOut(msg),
        Action::Rejected { ref_seq, reason } => FixEvent::Rejected {
            ref_seq,
            reason,
            message: msg,
        },
        _ => return None,
    })
}

impl<S: Stream, M: MessageStore> Selectable for FixSession<S, M> {
    /// The stream's connect, then the Logon exchange: `Ok(true)` once the session is active.
    fn poll_connect(&mut self) -> io::Result<bool> {
        if self.session.state() == SessionState::Active {
            return Ok(true);
        }
        if !self.stream.poll_connect()? {
            return Ok(false);
        }
        let now = clock();
        if self.session.state() == SessionState::Idle {
            self.start(now)?;
        }
        self.flush()?;
        // Process only up to the counterparty's Logon; what follows it stays buffered (and
        // `read_pending` says so).
        while self.session.state() == SessionState::AwaitingLogon {
            match self.next_message(now)? {
                Some(_) => {}
                None => break,
            }
        }
        match self.session.state() {
            SessionState::Active => Ok(true),
            SessionState::Ended => Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                SessionError::LogonRejected,
            )),
            _ => self.session.on_timer(now).map(|()| false).map_err(into_io),
        }
    }

    fn raw_fd(&self) -> Option<RawFd> {
        self.stream.raw_fd()
    }

    fn read_pending(&self) -> bool {
        // A whole message (or a framing error to report) is buffered; a partial one waits for the
        // descriptor, or a caller that sleeps only when nothing is pending would spin.
        let buffered = &self.rbuf[self.rstart..self.rend];
        !matches!(frame_len(buffered, self.max_message), Ok(None)) || self.stream.read_pending()
    }
}
