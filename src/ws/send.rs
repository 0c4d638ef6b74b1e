//! The send half of a [`Websocket`](super::Websocket): the send buffer, masking keys, the
//! connection's state flags, and [`WsSender`], the handle a handler sends through while a received
//! frame still borrows the receive buffer (RFC 6455 §5.1 masking, §5.4 fragmentation, §5.5.2–§5.5.3
//! ping / pong, §7.1.2 starting the close).
//!
//! The split is what lets the borrow checker accept a reply from inside a frame callback without
//! copying the frame: the frame borrows the receive buffer, the sender borrows this half, and the
//! two are disjoint fields of the client.

use std::fmt;
use std::io;

use super::codec::{Decoder, Frame};
use super::deflate::DeflateState;
use super::error::{UsageError, WsError};
use super::frame::{is_valid_close_code, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD};
use super::handshake::AcceptValue;
use super::mask::{mask_copy, KeyGen, MaskMode};
use super::WsConfig;
use crate::stream::{would_block, Stream};

/// The send buffer: bytes `start..end` are queued. Until the handshake completes only the bytes
/// before `request_end` (the request) may leave; frames queued meanwhile wait behind it.
pub(super) struct Tx {
    pub(super) buf: Vec<u8>,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) request_end: usize,
    pub(super) needs_flush: bool,
}

impl Tx {
    /// Makes room for `need` more bytes at `end`.
    pub(super) fn reserve(&mut self, need: usize) {
        if self.start == self.end {
            self.request_end = self.request_end.saturating_sub(self.start);
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < need {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.request_end = self.request_end.saturating_sub(self.start);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < need {
                self.buf.resize(self.end + need, 0);
                let cap = self.buf.capacity();
                self.buf.resize(cap, 0);
            }
        }
    }

    /// Queues one frame: header from a stack array, then the payload masked while it is copied.
    #[inline]
    pub(super) fn queue(&mut self, opcode: OpCode, fin: bool, payload: &[u8], key: [u8; 4]) {
        self.queue_rsv(opcode, fin, 0, payload, key);
    }

    /// [`queue`](Self::queue) with RSV bits (RSV1, `0b100`, marks a compressed message).
    #[inline]
    pub(super) fn queue_rsv(
        &mut self,
        opcode: OpCode,
        fin: bool,
        rsv: u8,
        payload: &[u8],
        key: [u8; 4],
    ) {
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask: Some(key),
            payload_len: payload.len() as u64,
        };
        let mut h = [0u8; FrameHeader::MAX_LEN];
        let hl = header.emit(&mut h);
        let need = hl + payload.len();
        self.reserve(need);
        let end = self.end;
        self.buf[end..end + hl].copy_from_slice(&h[..hl]);
        let dst = &mut self.buf[end + hl..end + need];
        if key == [0; 4] {
            dst.copy_from_slice(payload);
        } else {
            mask_copy(dst, payload, key);
        }
        self.end += need;
    }

    /// Writes queued bytes (up to the request while `!open`) until done or the stream would block.
    /// `Ok(true)` when nothing writable is left queued.
    #[inline]
    pub(super) fn flush<S: Stream>(&mut self, stream: &mut S, open: bool) -> io::Result<bool> {
        loop {
            let limit = if open {
                self.end
            } else {
                self.end.min(self.request_end)
            };
            if self.start >= limit {
                break;
            }
            match stream.write(&self.buf[self.start..limit]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.start += n;
                    self.needs_flush = true;
                }
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.needs_flush {
            match stream.flush() {
                Ok(()) => self.needs_flush = false,
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(self.start == self.end)
    }
}

/// Everything but the receive buffer, so frames can borrow the buffer while control frames are
/// answered through this.
pub(super) struct Core<S> {
    pub(super) stream: S,
    pub(super) dec: Decoder,
    pub(super) tx: Tx,
    pub(super) rng: KeyGen,
    pub(super) cfg: WsConfig,
    pub(super) open: bool,
    pub(super) close_sent: bool,
    pub(super) close_received: bool,
    /// A fragmented message this side is sending.
    pub(super) tx_fragmented: bool,
    /// Whether the data message being sent is compressed: decided by its first frame, so a
    /// message begun before the handshake (uncompressed, no RSV1) is not continued compressed
    /// once it completes.
    pub(super) tx_compressed: bool,
    /// The pong for the latest ping, held while earlier bytes are still queued.
    pub(super) pong_slot: [u8; MAX_CONTROL_PAYLOAD],
    pub(super) pong_len: Option<u8>,
    /// The body of the peer's close frame (status code and reason), kept for the endpoint's
    /// report of an orderly close.
    pub(super) peer_close: [u8; MAX_CONTROL_PAYLOAD],
    pub(super) peer_close_len: u8,
    pub(super) failed: Option<WsError>,
    /// An error a batch ran into, raised (and acted on) by the next call.
    pub(super) deferred: Option<WsError>,
    pub(super) accept: AcceptValue,
    pub(super) offered: Vec<String>,
    pub(super) subprotocol: Option<usize>,
    /// permessage-deflate, once negotiated (RFC 7692).
    pub(super) deflate: Option<DeflateState>,
}

/// A masking key as `mode` says.
#[inline]
fn mask_key(mode: MaskMode, rng: &mut KeyGen) -> [u8; 4] {
    match mode {
        MaskMode::Random => rng.key(),
        MaskMode::Zero => [0; 4],
    }
}

impl<S: Stream> Core<S> {
    #[inline]
    pub(super) fn check(&mut self) -> Result<(), WsError> {
        if self.failed.is_none() && self.deferred.is_none() {
            return Ok(());
        }
        self.check_slow()
    }

    #[cold]
    pub(super) fn check_slow(&mut self) -> Result<(), WsError> {
        if let Some(e) = self.deferred.take() {
            return Err(self.fail(e));
        }
        match &self.failed {
            None => Ok(()),
            Some(e) => Err(e.clone()),
        }
    }

    /// Records an error found inside a batch; the next call fails the connection with it.
    #[cold]
    pub(super) fn defer(&mut self, e: WsError) {
        if self.failed.is_none() && self.deferred.is_none() {
            self.deferred = Some(e);
        }
    }

    /// Fails the connection with `e`: sends the close code `e` maps to (when the connection is open
    /// and no close was sent) and makes every later call return `e`.
    #[cold]
    pub(super) fn fail(&mut self, e: WsError) -> WsError {
        if !e.is_terminal() {
            return e;
        }
        if let Some(first) = &self.failed {
            return first.clone();
        }
        if let (Some(code), true, false) = (e.close_code(), self.open, self.close_sent) {
            let key = self.key();
            self.tx.queue(OpCode::Close, true, &code.to_be_bytes(), key);
            self.close_sent = true;
            let _ = self.tx.flush(&mut self.stream, true);
        }
        self.failed = Some(e.clone());
        e
    }

    #[inline]
    pub(super) fn key(&mut self) -> [u8; 4] {
        mask_key(self.cfg.mask, &mut self.rng)
    }

    #[inline]
    pub(super) fn flush(&mut self) -> Result<bool, WsError> {
        if self.tx.start == self.tx.end && !self.tx.needs_flush && self.pong_len.is_none() {
            return Ok(true);
        }
        self.flush_queued()
    }

    /// [`flush`](Self::flush) with something queued: kept out of line so that the check above
    /// inlines into every receive.
    #[inline(never)]
    fn flush_queued(&mut self) -> Result<bool, WsError> {
        let open = self.open;
        let mut done = self
            .tx
            .flush(&mut self.stream, open)
            .map_err(|e| self.fail(e.into()))?;
        if done {
            if let Some(n) = self.pong_len.take() {
                if !self.close_sent {
                    let key = self.key();
                    let slot = self.pong_slot;
                    self.tx.queue(OpCode::Pong, true, &slot[..n as usize], key);
                    done = self
                        .tx
                        .flush(&mut self.stream, open)
                        .map_err(|e| self.fail(e.into()))?;
                }
            }
        }
        Ok(done)
    }

    /// Queues a frame and tries to write it.
    #[inline]
    pub(super) fn send_raw(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
    ) -> Result<(), WsError> {
        let key = self.key();
        self.tx.queue(opcode, fin, payload, key);
        if self.open {
            self.flush()?;
        }
        Ok(())
    }

    /// Checks the state and fragmentation order for a frame the user sends, then sends it
    /// (compressed when permessage-deflate is on and it is a data frame).
    pub(super) fn send_checked(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
    ) -> Result<(), WsError> {
        self.check_send(opcode, fin, payload)?;
        if !opcode.is_control() {
            if opcode != OpCode::Continuation {
                self.tx_compressed = self.deflate.is_some();
            }
            if self.tx_compressed {
                return self.send_deflated(opcode, fin, payload, None);
            }
        }
        self.send_raw(opcode, fin, payload)
    }

    /// The checks of [`send_checked`](Self::send_checked); updates the fragmentation state.
    fn check_send(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) -> Result<(), WsError> {
        // Not `check`: an error a batch deferred is raised by the next receive, so replies to the
        // frames before it still go out first.
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.close_sent {
            return Err(UsageError::CloseSent.into());
        }
        if opcode.is_control() {
            if payload.len() > MAX_CONTROL_PAYLOAD {
                return Err(UsageError::ControlTooLong.into());
            }
            if !fin {
                return Err(UsageError::Fragmentation.into());
            }
        } else {
            if (opcode == OpCode::Continuation) != self.tx_fragmented {
                return Err(UsageError::Fragmentation.into());
            }
            self.tx_fragmented = !fin;
        }
        Ok(())
    }

    /// Compresses one data frame's payload (the whole message when `fin` and not a continuation)
    /// into the compressor's buffer and queues it, RSV1 on the first frame of the message
    /// (RFC 7692 §6); split into frames of at most `fragment` bytes when given.
    fn send_deflated(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
        fragment: Option<usize>,
    ) -> Result<(), WsError> {
        let Core {
            tx,
            deflate,
            rng,
            cfg,
            ..
        } = self;
        let Some(st) = deflate.as_mut() else {
            return Ok(());
        };
        let z = match st.deflater.compress(payload, fin) {
            Ok(z) => z,
            Err(e) => return Err(self.fail(e)),
        };
        let rsv = if opcode == OpCode::Continuation {
            0
        } else {
            0b100
        };
        match fragment {
            Some(n) if n > 0 && z.len() > n => {
                let mut chunks = z.chunks(n).peekable();
                let (mut op, mut rsv) = (opcode, rsv);
                while let Some(chunk) = chunks.next() {
                    let key = mask_key(cfg.mask, rng);
                    tx.queue_rsv(op, fin && chunks.peek().is_none(), rsv, chunk, key);
                    (op, rsv) = (OpCode::Continuation, 0);
                }
            }
            _ => {
                let key = mask_key(cfg.mask, rng);
                tx.queue_rsv(opcode, fin, rsv, z, key);
            }
        }
        if self.open {
            self.flush()?;
        }
        Ok(())
    }

    pub(super) fn send_message(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), WsError> {
        if self.deflate.is_some() {
            self.check_send(opcode, true, payload)?;
            let fragment = self.cfg.fragment_size;
            return self.send_deflated(opcode, true, payload, fragment);
        }
        match self.cfg.fragment_size {
            Some(n) if n > 0 && payload.len() > n => {
                let mut chunks = payload.chunks(n).peekable();
                let mut op = opcode;
                while let Some(chunk) = chunks.next() {
                    self.send_checked(op, chunks.peek().is_none(), chunk)?;
                    op = OpCode::Continuation;
                }
                Ok(())
            }
            _ => self.send_checked(opcode, true, payload),
        }
    }

    /// What a received frame requires of us: a pong for a ping, an echo for a close.
    #[inline]
    pub(super) fn on_frame(&mut self, frame: &Frame<'_>) -> Result<(), WsError> {
        match frame.opcode() {
            OpCode::Ping if self.cfg.auto_pong && !self.close_sent => {
                let p = frame.payload();
                if self.tx.start == self.tx.end {
                    self.send_raw(OpCode::Pong, true, p)
                } else {
                    // §5.5.3 lets us answer only the most recent ping: while the stream pushes
                    // back, keep one pong in a fixed slot instead of queueing one per ping, so a
                    // peer that pings without reading cannot grow our memory.
                    self.pong_slot[..p.len()].copy_from_slice(p);
                    self.pong_len = Some(p.len() as u8);
                    Ok(())
                }
            }
            OpCode::Close => {
                self.close_received = true;
                let body = frame.payload();
                let n = body.len().min(MAX_CONTROL_PAYLOAD);
                self.peer_close[..n].copy_from_slice(&body[..n]);
                self.peer_close_len = n as u8;
                if !self.close_sent {
                    self.close_sent = true;
                    // §5.5.1: echo the status code received (an empty body gets an empty echo).
                    let code = frame.close().and_then(|c| c.code);
                    match code {
                        Some(c) => self.send_raw(OpCode::Close, true, &c.to_be_bytes())?,
                        None => self.send_raw(OpCode::Close, true, &[])?,
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl<S: Stream> Core<S> {
    /// Starts the closing handshake (see [`WsSender::close`]).
    pub(super) fn close(&mut self, code: u16, reason: &str) -> Result<(), WsError> {
        self.check()?;
        if !is_valid_close_code(code) {
            return Err(UsageError::CloseCode(code).into());
        }
        if reason.len() > MAX_CONTROL_PAYLOAD - 2 {
            return Err(UsageError::ControlTooLong.into());
        }
        if self.close_sent {
            return Ok(());
        }
        if !self.open {
            self.failed = Some(WsError::Closed);
            return Ok(());
        }
        let mut body = [0u8; MAX_CONTROL_PAYLOAD];
        body[..2].copy_from_slice(&code.to_be_bytes());
        body[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
        self.close_sent = true;
        self.send_raw(OpCode::Close, true, &body[..2 + reason.len()])
    }
}

/// The send half of a [`Websocket`](super::Websocket), lent while a received frame is borrowed
/// ([`Websocket::receive_split`](super::Websocket::receive_split),
/// [`Batch::sender`](super::Batch::sender)) or on its own ([`Websocket::sender`](super::Websocket::sender)).
///
/// Sends are queued in the client's one send buffer and written at once when the stream takes
/// them; nothing allocates once the buffer has grown to the largest frame sent.
pub struct WsSender<'a, S> {
    pub(super) core: &'a mut Core<S>,
}

impl<S> fmt::Debug for WsSender<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsSender")
            .field("open", &self.core.open)
            .field("close_sent", &self.core.close_sent)
            .field("queued", &(self.core.tx.end - self.core.tx.start))
            .finish_non_exhaustive()
    }
}

impl<S: Stream> WsSender<'_, S> {
    /// Sends a text message (fragmented when `fragment_size` is set).
    #[inline]
    pub fn send_text(&mut self, text: &str) -> Result<(), WsError> {
        self.core.send_message(OpCode::Text, text.as_bytes())
    }

    /// Sends a binary message (fragmented when `fragment_size` is set).
    #[inline]
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), WsError> {
        self.core.send_message(OpCode::Binary, data)
    }

    /// Sends a ping (at most 125 bytes).
    pub fn send_ping(&mut self, data: &[u8]) -> Result<(), WsError> {
        self.core.send_checked(OpCode::Ping, true, data)
    }

    /// Sends a pong (at most 125 bytes), e.g. when `auto_pong` is off.
    pub fn send_pong(&mut self, data: &[u8]) -> Result<(), WsError> {
        self.core.send_checked(OpCode::Pong, true, data)
    }

    /// Sends one frame of a message: `Text` or `Binary` with `fin = false` starts a fragmented
    /// message, `Continuation` frames follow, the last with `fin = true` (§5.4). Out-of-order use is
    /// refused with [`UsageError::Fragmentation`]. Control opcodes are sent as with the methods above.
    pub fn send_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) -> Result<(), WsError> {
        self.core.send_checked(opcode, fin, payload)
    }

    /// Starts the closing handshake (§7.1.2) with `code` and a reason of at most 123 bytes. Keep
    /// receiving until the peer's close arrives and the stream ends ([`WsError::Closed`]). Calling
    /// it again after a close was sent does nothing.
    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), WsError> {
        self.core.close(code, reason)
    }

    /// Bytes queued for sending and not yet accepted by the stream.
    pub fn queued(&self) -> usize {
        self.core.tx.end - self.core.tx.start
    }

    /// `true` once the opening handshake completed (sends before it wait behind the request).
    pub fn is_open(&self) -> bool {
        self.core.open
    }

    /// `true` once a close frame was sent: later data sends are refused.
    pub fn close_sent(&self) -> bool {
        self.core.close_sent
    }
}
