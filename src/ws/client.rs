//! The WebSocket client, [`Websocket`] (its documentation describes the whole layer).

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use super::batch::Batch;
use super::codec::{Decoder, Frame, FrameInfo};
use super::deflate::{DeflateConfig, DeflateParams, DeflateState, InflateBufs};
use super::error::{HandshakeError, WsError};
use super::frame::{CloseFrame, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD};
use super::handshake::{self, ClientRequest};
use super::mask::{KeyGen, MaskMode};
use super::send::{Core, Tx, WsSender};
use super::url::WsUrl;
use crate::buf::HotBuf;
use crate::stream::{wait_fd, would_block, Stream};

/// Client settings. Every field has a [default](WsConfig::default); set the ones you need with
/// struct-update syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsConfig {
    /// Largest payload of one received frame (default 16 MiB); beyond it: 1009 and an error.
    pub max_frame_size: usize,
    /// Largest received message, fragments included (default 64 MiB).
    pub max_message_size: usize,
    /// Initial receive buffer (default 64 KiB). It grows, once, to hold the largest frame seen.
    pub read_buffer_size: usize,
    /// Initial send buffer (default 64 KiB). It grows to the largest frame sent.
    pub write_buffer_size: usize,
    /// Largest handshake response head accepted (default 16 KiB).
    pub max_response_head: usize,
    /// Answer pings with pongs automatically (default on).
    pub auto_pong: bool,
    /// Masking keys: random per frame (default) or the predictable zero key.
    pub mask: MaskMode,
    /// Split sent text and binary messages into frames of at most this many payload bytes.
    pub fragment_size: Option<usize>,
    /// Offer permessage-deflate (RFC 7692) as this says (default: off). When the server accepts,
    /// received compressed messages are inflated (`max_message_size` applies to the inflated
    /// size) and sent data messages are compressed.
    pub deflate: Option<DeflateConfig>,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            read_buffer_size: 64 << 10,
            write_buffer_size: 64 << 10,
            max_response_head: 16 << 10,
            auto_pong: true,
            mask: MaskMode::Random,
            fragment_size: None,
            deflate: None,
        }
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsState {
    /// Connecting or in the opening handshake.
    Connecting,
    /// Open: messages flow both ways.
    Open,
    /// A close frame was sent or received; waiting for the rest of the closing handshake.
    Closing,
    /// The closing handshake completed and the TCP connection ended.
    Closed,
    /// Failed with an error (returned by every call).
    Failed,
}

/// A complete message from [`Websocket::receive_message`], borrowing the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message (validated UTF-8).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping (already answered when `auto_pong` is on).
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's close frame (already echoed).
    Close(CloseFrame<'a>),
}

/// `into_websocket` for every stream.
pub trait IntoWebsocket: Stream + Sized {
    /// Starts a WebSocket client over this (connected or connecting) stream with default settings.
    /// Returns at once; the handshake progresses with every call on the client.
    fn into_websocket(self, request: impl Into<ClientRequest>) -> Result<Websocket<Self>, WsError> {
        Websocket::client(self, request.into(), WsConfig::default())
    }

    /// Like [`into_websocket`](Self::into_websocket) with explicit settings.
    fn into_websocket_with(
        self,
        request: impl Into<ClientRequest>,
        config: WsConfig,
    ) -> Result<Websocket<Self>, WsError> {
        Websocket::client(self, request.into(), config)
    }
}
impl<S: Stream> IntoWebsocket for S {}

impl From<WsUrl> for ClientRequest {
    fn from(url: WsUrl) -> Self {
        ClientRequest::new(url)
    }
}

/// The receive buffer: bytes `start..end` of `buf` are unread.
struct Rx {
    buf: HotBuf,
    start: usize,
    end: usize,
}

/// The front of the receive buffer that small reads cycle through (see [`Websocket::fill`]): well
/// inside L1 beside the socket's own buffers, and a copy of at most half of it when it wraps.
const HOT_WINDOW: usize = 8192;

enum Fill {
    Data,
    WouldBlock,
    Eof,
}

/// A WebSocket client over the stream `S`.
///
/// [`Websocket<S>`]: the codec on top of any [`Stream`], with one receive buffer and one send buffer
/// allocated up front (RFC 6455 §4.1 handshake, §5 framing, §5.5.2–§5.5.3 ping/pong, §7 closing).
///
/// Receiving is batch-aware: [`Websocket::read_batch`] issues one read, then hands out every complete
/// frame in the buffer; a partial frame stays for the next read. [`Websocket::receive`] returns one
/// frame at a time and reads only when no complete frame is buffered; [`Websocket::receive_message`]
/// reassembles fragmented messages in a reusable buffer. Frames and messages borrow the client, so
/// the borrow checker ensures no payload is held across the next read.
///
/// Sending builds header and masked payload contiguously in the send buffer and hands them to the
/// stream in one write. When the stream would block, the bytes stay queued (in that one place) and
/// go out on the next call that touches the stream ([`flush`](Websocket::flush), a send or a receive).
///
/// Nothing blocks: the handshake, like the TCP and TLS connects below it, progresses on every call.
///
/// A payload cannot outlive the next read; this does not compile:
///
/// ```compile_fail,E0499
/// # fn f<S: hotwire::stream::Stream>(ws: &mut hotwire::ws::Websocket<S>) -> Result<(), hotwire::ws::WsError> {
/// let first = ws.receive()?.unwrap().payload();
/// let _second = ws.receive()?; // error: `*ws` is still borrowed by `first`
/// println!("{first:?}");
/// # Ok(()) }
/// ```
pub struct Websocket<S> {
    rx: Rx,
    core: Core<S>,
    /// Reassembly buffer for fragmented messages (message mode), reused.
    msg: Vec<u8>,
    msg_text: bool,
    /// A recorded session played back: the response answered the live key, not ours.
    replay: bool,
    /// Where compressed messages are inflated (empty unless permessage-deflate is on).
    z: InflateBufs,
}

impl<S> fmt::Debug for Websocket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Websocket")
            .field("open", &self.core.open)
            .field("close_sent", &self.core.close_sent)
            .field("close_received", &self.core.close_received)
            .field("failed", &self.core.failed)
            .field("buffered", &(self.rx.end - self.rx.start))
            .field("queued", &(self.core.tx.end - self.core.tx.start))
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Websocket<S> {
    /// Starts a client over `stream` (connected or still connecting): queues the handshake request
    /// and returns at once. Only this call and buffer growth allocate.
    pub fn client(
        stream: S,
        request: ClientRequest,
        config: WsConfig,
    ) -> Result<Websocket<S>, WsError> {
        request.validate()?;
        if let Some(d) = &config.deflate {
            d.validate()?;
        }
        let mut rng = KeyGen::from_os();
        let key = handshake::generate_key(&mut rng);
        let mut req = Vec::with_capacity(256);
        handshake::write_request(&request, &key, config.deflate.as_ref(), &mut req);
        let mut tx_buf = vec![0u8; config.write_buffer_size.max(req.len())];
        tx_buf[..req.len()].copy_from_slice(&req);
        let read_size = config.read_buffer_size.max(1024);
        Ok(Websocket {
            rx: Rx {
                buf: HotBuf::new(read_size),
                start: 0,
                end: 0,
            },
            core: Core {
                stream,
                dec: Decoder::new(config.max_frame_size, config.max_message_size),
                tx: Tx {
                    buf: tx_buf,
                    start: 0,
                    end: req.len(),
                    request_end: req.len(),
                    needs_flush: false,
                },
                rng,
                accept: handshake::accept_value(&key),
                offered: request.subprotocols().to_vec(),
                cfg: config,
                open: false,
                close_sent: false,
                close_received: false,
                tx_fragmented: false,
                tx_compressed: false,
                pong_slot: [0; MAX_CONTROL_PAYLOAD],
                pong_len: None,
                peer_close: [0; MAX_CONTROL_PAYLOAD],
                peer_close_len: 0,
                failed: None,
                deferred: None,
                subprotocol: None,
                deflate: None,
            },
            msg: Vec::new(),
            msg_text: false,
            replay: false,
            z: InflateBufs::default(),
        })
    }

    /// A client over a recorded session played back ([`Replay`](crate::stream::record::Replay)), so the
    /// handler code that ran live runs again on the same bytes, with the same reads: the
    /// deterministic backtest. The recorded opening handshake answered the live connection's
    /// random key, so its `Sec-WebSocket-Accept` is taken as the answer to ours; everything else
    /// in the response is checked as on a live connection. What the client sends goes to the
    /// replay stream (discarded, or compared with the recording in strict mode).
    pub fn replay(
        stream: S,
        request: ClientRequest,
        config: WsConfig,
    ) -> Result<Websocket<S>, WsError> {
        let mut ws = Websocket::client(stream, request, config)?;
        ws.replay = true;
        Ok(ws)
    }

    /// Drives the connection: the stream's connect, then the opening handshake. `Ok(true)` once the
    /// connection is open. Every receive and send calls this too.
    pub fn poll_handshake(&mut self) -> Result<bool, WsError> {
        if self.core.open {
            return Ok(true);
        }
        self.handshake_step()
    }

    #[cold]
    fn handshake_step(&mut self) -> Result<bool, WsError> {
        self.core.check()?;
        let core = &mut self.core;
        if !core
            .stream
            .poll_connect()
            .map_err(|e| core.fail(e.into()))?
        {
            return Ok(false);
        }
        core.flush()?;
        loop {
            let rx = &mut self.rx;
            let core = &mut self.core;
            if self.replay {
                if let Some(accept) = handshake::response_accept(&rx.buf[..rx.end]) {
                    core.accept = accept;
                }
            }
            let offer = core.cfg.deflate.as_ref();
            match handshake::parse_response_deflate(
                &rx.buf[..rx.end],
                &core.accept,
                &core.offered,
                offer,
            ) {
                Ok(Some(acc)) => {
                    rx.start = acc.head_len;
                    core.subprotocol = acc.subprotocol;
                    if let Some(params) = acc.deflate {
                        let cfg = &core.cfg;
                        core.deflate = Some(DeflateState::new(
                            params,
                            cfg.max_message_size,
                            cfg.write_buffer_size,
                        ));
                        core.dec.enable_deflate();
                        let initial = cfg
                            .read_buffer_size
                            .min(cfg.max_message_size)
                            .max(4096.min(cfg.max_message_size).max(1));
                        self.z.out.resize(initial, 0);
                    }
                    core.open = true;
                    core.flush()?;
                    return Ok(true);
                }
                Ok(None) if rx.end >= core.cfg.max_response_head => {
                    let max = core.cfg.max_response_head;
                    return Err(core.fail(HandshakeError::TooLarge(max).into()));
                }
                Ok(None) => {}
                Err(e) => return Err(core.fail(e.into())),
            }
            if rx.end == rx.buf.len() {
                let len = rx.buf.len();
                rx.buf.resize(len * 2);
            }
            match self.fill()? {
                Fill::Data => {}
                Fill::WouldBlock => return Ok(false),
                Fill::Eof => return Err(self.core.fail(HandshakeError::Eof.into())),
            }
        }
    }

    /// One read into the receive buffer, after making room for the frame at its front.
    #[inline]
    fn fill(&mut self) -> Result<Fill, WsError> {
        let rx = &mut self.rx;
        if rx.start == rx.end {
            rx.start = 0;
            rx.end = 0;
        }
        let len = rx.buf.len();
        let want = self.core.dec.want();
        // Small reads stay within the first HOT_WINDOW bytes: once they pass it, a short remainder
        // (a partial frame) moves to the front, so reads keep landing on the same cache lines
        // instead of walking through the whole buffer. Otherwise the remainder moves only when the
        // room behind it runs short.
        let small_tail = rx.end >= HOT_WINDOW && rx.end - rx.start <= HOT_WINDOW / 2;
        if rx.start > 0 && (small_tail || len - rx.end < len / 2 || want > len - rx.start) {
            rx.buf.copy_within(rx.start..rx.end, 0);
            rx.end -= rx.start;
            rx.start = 0;
        }
        if want > rx.buf.len() {
            // Bounded: the decoder refused any frame above max_frame_size already. Doubling keeps
            // growth steps few; the cap keeps a maximal frame from doubling the buffer again.
            let cap = self
                .core
                .cfg
                .max_frame_size
                .saturating_add(FrameHeader::MAX_LEN);
            let target = want.next_power_of_two().min(cap).max(want);
            rx.buf.resize(target);
        }
        if self.rx.end == self.rx.buf.len() {
            // Only complete frames fill the buffer (a batch was dropped early): hand those out
            // before reading more. A read into an empty slice would look like end of stream.
            return Ok(Fill::WouldBlock);
        }
        loop {
            match self.core.stream.read(&mut self.rx.buf[self.rx.end..]) {
                Ok(0) => return Ok(Fill::Eof),
                Ok(n) => {
                    self.rx.end += n;
                    return Ok(Fill::Data);
                }
                Err(e) if would_block(&e) => return Ok(Fill::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.core.fail(e.into())),
            }
        }
    }

    #[cold]
    fn eof_error(&self) -> WsError {
        if self.core.close_received && self.core.close_sent {
            WsError::Closed
        } else {
            WsError::Eof
        }
    }

    /// The next complete frame's info, reading as needed; `Ok(None)` when the stream would block.
    #[inline]
    fn next_info(&mut self) -> Result<Option<FrameInfo>, WsError> {
        self.core.check()?;
        if !self.poll_handshake()? {
            return Ok(None);
        }
        self.core.flush()?;
        loop {
            if self.core.close_received {
                self.rx.start = self.rx.end;
            } else {
                match self.core.dec.poll(&self.rx.buf[self.rx.start..self.rx.end]) {
                    Ok(Some(info)) => return Ok(Some(info)),
                    Ok(None) => {}
                    Err(e) => return Err(self.core.fail(e)),
                }
            }
            match self.fill()? {
                Fill::Data => {}
                Fill::WouldBlock => return Ok(None),
                Fill::Eof => {
                    let e = self.eof_error();
                    return Err(self.core.fail(e));
                }
            }
        }
    }

    /// One read from the stream, then an iterator over every complete frame in the buffer.
    ///
    /// The frames borrow the client: drop the batch before the next read. Pings are answered and
    /// a close is echoed as the batch reaches them. While the handshake is in progress the batch is
    /// empty. An error met inside the batch (a protocol violation, the end of the stream) ends it
    /// and is returned by the next call (see [`Batch`]); after a terminal error this returns it.
    pub fn read_batch(&mut self) -> Result<Batch<'_, S>, WsError> {
        self.core.check()?;
        let open = self.poll_handshake()?;
        if open {
            self.core.flush()?;
            if let Fill::Eof = self.fill()? {
                let e = self.eof_error();
                self.core.defer(e);
            }
        }
        let Websocket { rx, core, z, .. } = self;
        z.settle();
        Ok(Batch {
            buf: &rx.buf[..rx.end],
            pos: &mut rx.start,
            core,
            done: !open,
            z_tail: &mut z.out[..],
            z_spill: Some(&mut z.spill),
        })
    }

    /// The next frame, or `Ok(None)` when none is complete and the stream would block. Reads only
    /// when no complete frame is buffered. Pings are answered and closes echoed before they are
    /// returned.
    #[inline]
    pub fn receive(&mut self) -> Result<Option<Frame<'_>>, WsError> {
        Ok(self.receive_split()?.map(|(frame, _)| frame))
    }

    /// The next complete message (fragments reassembled in a buffer reused from message to message),
    /// or a control frame; `Ok(None)` when the stream would block. An unfragmented message is not
    /// copied.
    pub fn receive_message(&mut self) -> Result<Option<Message<'_>>, WsError> {
        let single = loop {
            let Some(info) = self.next_info()? else {
                return Ok(None);
            };
            if info.opcode().is_control() || (info.fin() && info.opcode() != OpCode::Continuation) {
                break Some(info);
            }
            let Websocket {
                rx,
                core,
                msg,
                msg_text,
                z,
                ..
            } = self;
            let frame = match accept_frame(core, z, info, &rx.buf[rx.start..rx.end]) {
                Ok(f) => f,
                Err(e) => return Err(core.fail(e)),
            };
            if frame.opcode() != OpCode::Continuation {
                msg.clear();
                *msg_text = frame.opcode() == OpCode::Text;
            }
            msg.extend_from_slice(frame.payload());
            rx.start += info.total_len();
            if info.fin() {
                break None;
            }
        };
        let Some(info) = single else {
            return if self.msg_text {
                match simdutf8::basic::from_utf8(&self.msg) {
                    Ok(s) => Ok(Some(Message::Text(s))),
                    Err(_) => Err(self.core.fail(WsError::InvalidUtf8)),
                }
            } else {
                Ok(Some(Message::Binary(&self.msg)))
            };
        };
        let Websocket { rx, core, z, .. } = self;
        let frame = match accept_frame(core, z, info, &rx.buf[rx.start..rx.end]) {
            Ok(f) => f,
            Err(e) => return Err(core.fail(e)),
        };
        rx.start += info.total_len();
        core.on_frame(&frame)?;
        let p = frame.payload();
        Ok(Some(match frame.opcode() {
            OpCode::Text => Message::Text(frame.text().unwrap_or_default()),
            OpCode::Ping => Message::Ping(p),
            OpCode::Pong => Message::Pong(p),
            OpCode::Close => Message::Close(frame.close().unwrap_or(CloseFrame {
                code: None,
                reason: "",
            })),
            OpCode::Binary | OpCode::Continuation => Message::Binary(p),
        }))
    }

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
    /// refused with [`UsageError::Fragmentation`](super::UsageError::Fragmentation). Control opcodes are sent as with the methods above.
    pub fn send_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) -> Result<(), WsError> {
        self.core.send_checked(opcode, fin, payload)
    }

    /// Starts the closing handshake (§7.1.2) with `code` and a reason of at most 123 bytes. Keep
    /// receiving until the peer's close arrives and the stream ends ([`WsError::Closed`]). Calling
    /// it again after a close was sent does nothing.
    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), WsError> {
        self.core.close(code, reason)
    }

    /// Writes queued bytes; `Ok(true)` when none are left.
    pub fn flush(&mut self) -> Result<bool, WsError> {
        self.core.check()?;
        if !self.poll_handshake()? {
            return Ok(false);
        }
        self.core.flush()
    }

    /// Bytes queued for sending and not yet accepted by the stream.
    pub fn queued(&self) -> usize {
        self.core.tx.end - self.core.tx.start
    }

    /// The connection's state.
    pub fn state(&self) -> WsState {
        match self.core.failed.as_ref().or(self.core.deferred.as_ref()) {
            Some(WsError::Closed) => WsState::Closed,
            Some(_) => WsState::Failed,
            None if !self.core.open => WsState::Connecting,
            None if self.core.close_sent || self.core.close_received => WsState::Closing,
            None => WsState::Open,
        }
    }

    /// The close frame the peer sent, once one arrived: its status code and reason (empty when
    /// none was given, or when it was not valid UTF-8).
    pub fn peer_close(&self) -> Option<(Option<u16>, &str)> {
        if !self.core.close_received {
            return None;
        }
        let n = self.core.peer_close_len as usize;
        let body = &self.core.peer_close[..n];
        let code = (n >= 2).then(|| u16::from_be_bytes([body[0], body[1]]));
        let reason = body
            .get(2..)
            .and_then(|r| std::str::from_utf8(r).ok())
            .unwrap_or("");
        Some((code, reason))
    }

    /// The send half on its own (see [`WsSender`]).
    #[inline]
    pub fn sender(&mut self) -> WsSender<'_, S> {
        WsSender {
            core: &mut self.core,
        }
    }

    /// As [`receive`](Self::receive), with the send half lent beside the frame, so a handler
    /// answers a message while it still borrows the receive buffer (no copy):
    ///
    /// ```no_run
    /// # fn f<S: hotwire::stream::Stream>(ws: &mut hotwire::ws::Websocket<S>) -> Result<(), hotwire::ws::WsError> {
    /// while let Some((frame, mut tx)) = ws.receive_split()? {
    ///     if frame.text() == Some(r#"{"op":"ping"}"#) {
    ///         tx.send_text(r#"{"op":"pong"}"#)?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn receive_split(&mut self) -> Result<Option<(Frame<'_>, WsSender<'_, S>)>, WsError> {
        let Some(info) = self.next_info()? else {
            return Ok(None);
        };
        let Websocket { rx, core, z, .. } = self;
        let data = &rx.buf[rx.start..rx.end];
        let frame = match accept_frame(core, z, info, data) {
            Ok(f) => f,
            Err(e) => return Err(core.fail(e)),
        };
        rx.start += info.total_len();
        core.on_frame(&frame)?;
        Ok(Some((frame, WsSender { core })))
    }

    /// The subprotocol the server selected, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.core
            .subprotocol
            .and_then(|i| self.core.offered.get(i))
            .map(String::as_str)
    }

    /// The permessage-deflate parameters in force, once the server accepted the offer.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.core.deflate.as_ref().map(|d| &d.params)
    }

    /// The settings in use.
    pub fn config(&self) -> &WsConfig {
        &self.core.cfg
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.core.stream
    }

    /// The stream, mutably (reading or writing it directly corrupts the connection).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.core.stream
    }

    /// Unwraps the stream, e.g. to shut down its TCP side after the closing handshake.
    pub fn into_inner(self) -> S {
        self.core.stream
    }

    /// `true` when a receive may return a frame although the descriptor is not readable: a
    /// complete frame is buffered here, or the stream holds bytes above the socket (see
    /// [`Stream::read_pending`]). An event loop that drained the client to `Ok(None)` can skip it
    /// until its descriptor is readable or this returns `true`.
    pub fn read_pending(&self) -> bool {
        if self.core.stream.read_pending() {
            return true;
        }
        let buffered = &self.rx.buf[self.rx.start..self.rx.end];
        self.core.open
            && matches!(
                FrameHeader::parse(buffered),
                Ok(Some((h, n))) if (buffered.len() - n) as u64 >= h.payload_len
            )
    }

    /// The descriptor to wait on (the stream's).
    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.core.stream.raw_fd()
    }

    /// Sleeps until the stream may have bytes or `max` passes, unless a frame or bytes are already
    /// waiting above the socket. For probes, tools and tests; event loops use a selector instead.
    pub fn wait(&self, max: Duration) {
        if !self.read_pending() {
            wait_fd(self.core.stream.raw_fd(), max);
        }
    }

    /// Drives the handshake until the connection is open, or fails with `TimedOut` after `timeout`.
    /// For probes, tools and tests.
    pub fn wait_open(&mut self, timeout: Duration) -> Result<(), WsError> {
        let deadline = Instant::now() + timeout;
        while !self.poll_handshake()? {
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "handshake not complete in time",
                )
                .into());
            }
            self.wait((deadline - now).min(Duration::from_millis(5)));
        }
        Ok(())
    }
}

/// Accepts the complete frame `info` at the front of `data`: a compressed one is inflated into
/// `z` (one frame per call, so all of `z.out` is free), any other borrows `data`.
#[inline]
fn accept_frame<'a, S: Stream>(
    core: &mut Core<S>,
    z: &'a mut InflateBufs,
    info: FrameInfo,
    data: &'a [u8],
) -> Result<Frame<'a>, WsError> {
    if !info.compressed() {
        return core.dec.accept(info, data);
    }
    z.settle();
    let payload = core.dec.accept_compressed(info, data);
    let Some(st) = core.deflate.as_mut() else {
        return Err(super::ProtocolError::ReservedBits.into());
    };
    let InflateBufs { out, spill } = z;
    let mut tail: &mut [u8] = out;
    let mut spill = Some(spill);
    let inflated = st
        .inflater
        .inflate(payload, info.fin(), &mut tail, &mut spill)?;
    core.dec.inflated(info, inflated.data)
}

/// Registration with mio through the stream's descriptor, so a client can sit in a selector.
impl<S: Stream> mio::event::Source for Websocket<S> {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        let fd = crate::stream::require_fd(self.core.stream.raw_fd())?;
        mio::unix::SourceFd(&fd).register(registry, token, interests)
    }
    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        let fd = crate::stream::require_fd(self.core.stream.raw_fd())?;
        mio::unix::SourceFd(&fd).reregister(registry, token, interests)
    }
    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        let fd = crate::stream::require_fd(self.core.stream.raw_fd())?;
        mio::unix::SourceFd(&fd).deregister(registry)
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
