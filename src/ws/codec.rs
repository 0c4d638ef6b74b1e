//! The sans-IO receive side: frames from bytes, with every rule a client must enforce
//! (RFC 6455 §5.1–§5.5, §5.6 and §8.1 for UTF-8, §7.4 for close codes).
//!
//! [`Decoder::poll`] looks at the bytes at the front of a buffer. It checks the header as soon as the
//! header is complete (so an oversized or illegal frame fails before its payload arrives) and returns
//! `Ok(None)` until the whole frame is there; while a text payload is still arriving it validates
//! what has arrived, so invalid UTF-8 fails fast. [`Decoder::accept`] then turns the complete frame
//! into a [`Frame`] that borrows the buffer: no copy, no allocation.
//!
//! Contract: after `poll` returned `Ok(None)`, the next call presents the same bytes (plus any that
//! arrived since) at the front of its buffer; after `Ok(Some(info))`, the caller calls `accept` with
//! the same bytes and then drops `info.total_len()` bytes from the front.

use super::error::{CapacityError, ProtocolError, UsageError, WsError};
use super::frame::{CloseFrame, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD};

/// A complete frame found by [`Decoder::poll`], not yet accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    opcode: OpCode,
    fin: bool,
    header_len: u8,
    payload_len: usize,
    /// A frame of a permessage-deflate compressed message (RFC 7692 §6): its payload must be
    /// inflated (see [`Decoder::accept_compressed`]).
    compressed: bool,
}

impl FrameInfo {
    /// Header plus payload: the bytes to drop from the buffer once the frame is accepted.
    #[inline]
    pub fn total_len(&self) -> usize {
        self.header_len as usize + self.payload_len
    }

    /// The frame's opcode.
    #[inline]
    pub fn opcode(&self) -> OpCode {
        self.opcode
    }

    /// The FIN bit.
    #[inline]
    pub fn fin(&self) -> bool {
        self.fin
    }

    /// The payload length.
    #[inline]
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }

    /// `true` for a frame of a compressed message (RSV1 on its first frame, RFC 7692 §6), which
    /// only a decoder with permessage-deflate enabled returns.
    #[inline]
    pub fn compressed(&self) -> bool {
        self.compressed
    }
}

#[derive(Debug, Clone, Copy)]
enum Data<'a> {
    Bytes(&'a [u8]),
    Text(&'a str),
}

/// A received frame: a view into the receive buffer, valid until the next read.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    opcode: OpCode,
    fin: bool,
    data: Data<'a>,
}

impl<'a> Frame<'a> {
    /// The opcode (text and binary fragments after the first carry [`OpCode::Continuation`]).
    #[inline]
    pub fn opcode(&self) -> OpCode {
        self.opcode
    }

    /// `true` when this frame ends its message (always for control frames).
    #[inline]
    pub fn is_final(&self) -> bool {
        self.fin
    }

    /// The payload bytes (unmasked: servers do not mask).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        match self.data {
            Data::Bytes(b) => b,
            Data::Text(s) => s.as_bytes(),
        }
    }

    /// The text of a complete, unfragmented text message, validated once by the decoder.
    ///
    /// `None` for other frames, including text fragments (which may split a character; use message
    /// mode, [`Websocket::receive_message`](super::Websocket::receive_message), to reassemble them).
    #[inline]
    pub fn text(&self) -> Option<&'a str> {
        match self.data {
            Data::Text(s) => Some(s),
            Data::Bytes(_) => None,
        }
    }

    /// The status code and reason of a close frame (`None` for other frames).
    pub fn close(&self) -> Option<CloseFrame<'a>> {
        if self.opcode == OpCode::Close {
            CloseFrame::parse(self.payload()).ok()
        } else {
            None
        }
    }
}

/// What [`Decoder::short`] found at the front of the buffer.
#[derive(Debug)]
pub(crate) enum Short<'a> {
    /// A complete frame and the bytes it used.
    Frame(Frame<'a>, usize),
    /// A text frame whose payload is not UTF-8.
    Invalid(WsError),
    /// A frame of the fast kind, not complete yet ([`Decoder::want`] is set): binary, or text of
    /// at most [`TEXT_WAIT_MAX`] bytes.
    Incomplete,
    /// Anything else: the general path decides.
    Other,
}

/// Incremental UTF-8 validation across chunk and fragment boundaries (RFC 6455 §8.1).
///
/// Keeps at most three bytes of a character split between chunks and fails at the first byte that
/// cannot start or continue a valid sequence, without waiting for the message to end.
#[derive(Debug, Default, Clone)]
struct Utf8Stream {
    pending: [u8; 4],
    len: u8,
}

/// Validates a whole text payload (RFC 6455 §8.1) with simdutf8, which checks 64 bytes per step.
///
/// Below 64 bytes simdutf8 hands the input to `core::str::from_utf8`, which checks words only from
/// an aligned address, so a short payload at an odd offset went mostly byte by byte. Short
/// payloads therefore take an inline ASCII check first (eight bytes per step: the common case of
/// market data), and a short payload with other characters is validated zero-padded to one
/// 64-byte block. From 64 bytes on nothing runs before simdutf8: its own first pass is an ASCII
/// check, so a pre-check of ours would read a non-ASCII payload twice.
#[inline]
pub(crate) fn text(payload: &[u8]) -> Result<&str, WsError> {
    if payload.len() < BLOCK {
        if is_ascii_short(payload) {
            // SAFETY: every byte is below 0x80 (checked just above), and ASCII is valid UTF-8.
            return Ok(unsafe { std::str::from_utf8_unchecked(payload) });
        }
        return short_text(payload);
    }
    simdutf8::basic::from_utf8(payload).map_err(|_| WsError::InvalidUtf8)
}

/// The largest text frame (header included) that [`Decoder::short`] leaves unvalidated until it is
/// complete.
pub(crate) const TEXT_WAIT_MAX: usize = 4096;

/// simdutf8's block: shorter inputs bypass its vector path.
const BLOCK: usize = 64;

/// A payload shorter than [`BLOCK`] with a byte above 0x7F: validated as one zero-padded block.
#[inline(never)]
fn short_text(payload: &[u8]) -> Result<&str, WsError> {
    let mut block = [0u8; BLOCK];
    block
        .get_mut(..payload.len())
        .ok_or(WsError::InvalidUtf8)?
        .copy_from_slice(payload);
    simdutf8::basic::from_utf8(&block).map_err(|_| WsError::InvalidUtf8)?;
    // SAFETY: `block` is `payload` followed by zero bytes, and it is valid UTF-8. A zero byte is a
    // whole one-byte character and cannot continue a multi-byte one (continuation bytes are
    // 0x80..=0xBF), so every character of `block` lies either inside `payload` or inside the
    // padding: `payload` alone is a sequence of whole, valid characters.
    Ok(unsafe { std::str::from_utf8_unchecked(payload) })
}

/// `true` when no byte has its high bit set; eight bytes per step.
#[inline]
fn is_ascii_short(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut acc = 0u64;
    for w in &mut words {
        acc |= u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
    }
    let mut tail = 0u8;
    for &b in words.remainder() {
        tail |= b;
    }
    acc & HIGH == 0 && tail < 0x80
}

fn utf8_width(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

impl Utf8Stream {
    fn reset(&mut self) {
        self.len = 0;
    }

    fn feed(&mut self, mut data: &[u8]) -> Result<(), WsError> {
        if self.len > 0 {
            let have = self.len as usize;
            let need = utf8_width(self.pending[0]);
            if need <= have {
                return Err(WsError::InvalidUtf8);
            }
            let take = (need - have).min(data.len());
            self.pending[have..have + take].copy_from_slice(&data[..take]);
            let n = have + take;
            match simdutf8::compat::from_utf8(&self.pending[..n]) {
                Ok(_) => {
                    self.len = 0;
                    data = &data[take..];
                }
                Err(e) if e.error_len().is_none() && n < need => {
                    self.len = n as u8;
                    return Ok(());
                }
                Err(_) => return Err(WsError::InvalidUtf8),
            }
        }
        if simdutf8::basic::from_utf8(data).is_ok() {
            return Ok(());
        }
        // Rare path: find out whether the data is invalid or merely ends inside a character.
        match simdutf8::compat::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                if tail.len() > 3 {
                    return Err(WsError::InvalidUtf8);
                }
                self.pending[..tail.len()].copy_from_slice(tail);
                self.len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(WsError::InvalidUtf8),
        }
    }

    fn finish(&mut self) -> Result<(), WsError> {
        if self.len == 0 {
            Ok(())
        } else {
            self.len = 0;
            Err(WsError::InvalidUtf8)
        }
    }
}

/// Receive-side protocol state: fragmentation, UTF-8 across fragments, size limits.
#[derive(Debug, Clone)]
pub struct Decoder {
    max_frame: usize,
    max_message: usize,
    /// The opcode (text or binary) of the fragmented message in progress.
    fragmented: Option<OpCode>,
    message_len: u64,
    utf8: Utf8Stream,
    /// Payload bytes of the incomplete text frame at the front already validated.
    streamed: usize,
    /// Total length of the incomplete frame at the front once its header is known, else 0.
    want: usize,
    /// The largest payload a short (7-bit length) frame may carry under both limits: frames at or
    /// below it skip the limit checks.
    short_max: u8,
    /// The same for frames with a 16-bit length.
    mid_max: u16,
    /// permessage-deflate was negotiated: RSV1 marks a compressed message (RFC 7692 §6).
    deflate: bool,
    /// The fragmented message in progress is compressed.
    compressed: bool,
    /// The compressed message in progress is text (its inflated fragments are validated).
    deflated_text: bool,
}

impl Decoder {
    /// A decoder that refuses frames above `max_frame` payload bytes and messages above
    /// `max_message` bytes (both reported as [`CapacityError`], close code 1009).
    pub fn new(max_frame: usize, max_message: usize) -> Decoder {
        Decoder {
            max_frame,
            max_message,
            fragmented: None,
            message_len: 0,
            utf8: Utf8Stream::default(),
            streamed: 0,
            want: 0,
            short_max: max_frame.min(max_message).min(125) as u8,
            mid_max: max_frame.min(max_message).min(0xFFFF) as u16,
            deflate: false,
            compressed: false,
            deflated_text: false,
        }
    }

    /// Accepts RSV1 on the first frame of a text or binary message as the permessage-deflate
    /// marker (RFC 7692 §6), once the extension was negotiated. Such frames come out of
    /// [`poll`](Self::poll) with [`FrameInfo::compressed`] set.
    pub fn enable_deflate(&mut self) {
        self.deflate = true;
    }

    /// The total size (header + payload) of the incomplete frame at the front of the buffer, once
    /// its header has been seen; 0 otherwise. Lets a caller make room for the whole frame.
    #[inline]
    pub fn want(&self) -> usize {
        self.want
    }

    /// `true` while a fragmented message is unfinished.
    #[inline]
    pub fn in_message(&self) -> bool {
        self.fragmented.is_some()
    }

    /// Checks the frame at the front of `data`: `Ok(Some(info))` when it is complete and acceptable,
    /// `Ok(None)` when more bytes are needed, an error when it breaks a rule (see the module
    /// documentation for the calling contract).
    #[inline]
    pub fn poll(&mut self, data: &[u8]) -> Result<Option<FrameInfo>, WsError> {
        // Fast path for the common frame: a complete, unfragmented text or binary message with a
        // 7-bit length, no RSV bits and no mask, outside a fragmented message. Everything it skips
        // is implied by those bits (see the general path below).
        if let [b0 @ (0x81 | 0x82), b1, ..] = *data {
            let total = 2 + b1 as usize;
            if b1 <= self.short_max && data.len() >= total && self.fragmented.is_none() {
                return Ok(Some(FrameInfo {
                    opcode: if b0 == 0x81 {
                        OpCode::Text
                    } else {
                        OpCode::Binary
                    },
                    fin: true,
                    header_len: 2,
                    payload_len: b1 as usize,
                    compressed: false,
                }));
            }
        }
        self.poll_general(data)
    }

    /// The fastest path: a complete, unfragmented text or binary message with a 7- or 16-bit
    /// length at the front of `data`, within both size limits (nothing in it needs checking beyond
    /// the header bytes and, for text, UTF-8). Returns the frame and its length, an error for
    /// invalid UTF-8, or `None` for every other case, which then goes through
    /// [`poll`](Self::poll) and [`accept`](Self::accept).
    #[inline(always)]
    pub fn short_data<'a>(
        &mut self,
        data: &'a [u8],
    ) -> Option<Result<(Frame<'a>, usize), WsError>> {
        match self.short(data) {
            Short::Frame(frame, n) => Some(Ok((frame, n))),
            Short::Invalid(e) => Some(Err(e)),
            Short::Incomplete | Short::Other => None,
        }
    }

    /// [`short_data`](Self::short_data), telling apart a frame of the same kind that has not fully
    /// arrived: its header is checked and [`want`](Self::want) is set, so the caller can wait for
    /// the next read without [`poll`](Self::poll). That includes text frames of up to
    /// [`TEXT_WAIT_MAX`] bytes: they are validated whole once complete, a read or two later, where
    /// validating each arrived piece first would check most of their bytes twice. A longer
    /// incomplete text frame is `Other`: `poll` validates what has arrived, so invalid UTF-8 fails
    /// before the frame is complete.
    #[inline(always)]
    pub(crate) fn short<'a>(&mut self, data: &'a [u8]) -> Short<'a> {
        let (b0, header_len, len) = match *data {
            [b0 @ (0x81 | 0x82), b1, ..] if b1 <= self.short_max => (b0, 2, b1 as usize),
            [b0 @ (0x81 | 0x82), 126, hi, lo, ..] => {
                let n = u16::from_be_bytes([hi, lo]);
                if n > self.mid_max {
                    return Short::Other;
                }
                (b0, 4, n as usize)
            }
            _ => return Short::Other,
        };
        if self.fragmented.is_some() {
            return Short::Other;
        }
        let total = header_len + len;
        let Some(payload) = data.get(header_len..total) else {
            if b0 == 0x82 || total <= TEXT_WAIT_MAX {
                self.want = total;
                return Short::Incomplete;
            }
            return Short::Other;
        };
        // The frame may have been polled while incomplete: forget that progress.
        self.want = 0;
        self.streamed = 0;
        let (opcode, data) = if b0 == 0x82 {
            (OpCode::Binary, Data::Bytes(payload))
        } else {
            match text(payload) {
                Ok(s) => (OpCode::Text, Data::Text(s)),
                Err(e) => return Short::Invalid(e),
            }
        };
        let frame = Frame {
            opcode,
            fin: true,
            data,
        };
        Short::Frame(frame, total)
    }

    fn poll_general(&mut self, data: &[u8]) -> Result<Option<FrameInfo>, WsError> {
        let Some((h, header_len)) = FrameHeader::parse(data)? else {
            return Ok(None);
        };
        // RFC 7692 §6: RSV1 marks the first frame of a compressed data message; on a control or
        // continuation frame, or without the extension, any RSV bit is an error.
        let rsv1 =
            h.rsv == 0b100 && self.deflate && matches!(h.opcode, OpCode::Text | OpCode::Binary);
        if h.rsv != 0 && !rsv1 {
            return Err(ProtocolError::ReservedBits.into());
        }
        if h.mask.is_some() {
            return Err(ProtocolError::MaskedFrame.into());
        }
        let text;
        if h.opcode.is_control() {
            if h.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlTooLong.into());
            }
            if !h.fin {
                return Err(ProtocolError::FragmentedControl.into());
            }
            text = false;
        } else {
            let is_text = match (h.opcode, self.fragmented) {
                (OpCode::Continuation, None) => {
                    return Err(ProtocolError::UnexpectedContinuation.into())
                }
                (OpCode::Continuation, Some(op)) => op == OpCode::Text,
                (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation.into()),
                (op, None) => op == OpCode::Text,
            };
            // A compressed payload is validated once inflated.
            text = is_text && !rsv1 && !(h.opcode == OpCode::Continuation && self.compressed);
            if h.payload_len > self.max_frame as u64 {
                return Err(CapacityError::Frame {
                    len: h.payload_len,
                    max: self.max_frame,
                }
                .into());
            }
            let len = self.message_len + h.payload_len;
            if len > self.max_message as u64 {
                return Err(CapacityError::Message {
                    len,
                    max: self.max_message,
                }
                .into());
            }
        }
        // Both limits are at most usize::MAX, so this cannot truncate.
        let payload_len = h.payload_len as usize;
        let total = header_len + payload_len;
        if data.len() < total {
            self.want = total;
            if text {
                let arrived = &data[header_len..];
                if arrived.len() > self.streamed {
                    if self.streamed == 0 && h.opcode == OpCode::Text {
                        self.utf8.reset();
                    }
                    self.utf8.feed(&arrived[self.streamed..])?;
                    self.streamed = arrived.len();
                }
            }
            return Ok(None);
        }
        Ok(Some(FrameInfo {
            opcode: h.opcode,
            fin: h.fin,
            header_len: header_len as u8,
            payload_len,
            compressed: rsv1 || (h.opcode == OpCode::Continuation && self.compressed),
        }))
    }

    /// Accepts the complete frame `info` found by [`poll`](Self::poll) at the front of `data`:
    /// validates its payload (UTF-8, close body), updates the fragmentation state and returns a view
    /// of it.
    ///
    /// # Panics
    /// If `data` is shorter than `info.total_len()` (a caller bug: it is not what `poll` saw).
    #[inline]
    pub fn accept<'a>(&mut self, info: FrameInfo, data: &'a [u8]) -> Result<Frame<'a>, WsError> {
        if info.compressed() || (self.compressed && info.opcode == OpCode::Continuation) {
            return Err(UsageError::CompressedFrame.into());
        }
        let payload = &data[info.header_len as usize..info.total_len()];
        let streamed = std::mem::take(&mut self.streamed).min(payload.len());
        self.want = 0;
        let fin = info.fin;
        let data = match info.opcode {
            OpCode::Text if fin => Data::Text(text(payload)?),
            OpCode::Text => {
                if streamed == 0 {
                    self.utf8.reset();
                }
                self.utf8.feed(&payload[streamed..])?;
                self.fragmented = Some(OpCode::Text);
                self.message_len = payload.len() as u64;
                Data::Bytes(payload)
            }
            OpCode::Binary => {
                if !fin {
                    self.fragmented = Some(OpCode::Binary);
                    self.message_len = payload.len() as u64;
                }
                Data::Bytes(payload)
            }
            OpCode::Continuation => {
                let text = self.fragmented == Some(OpCode::Text);
                if text {
                    self.utf8.feed(&payload[streamed..])?;
                }
                if fin {
                    if text {
                        self.utf8.finish()?;
                    }
                    self.fragmented = None;
                    self.message_len = 0;
                } else {
                    self.message_len += payload.len() as u64;
                }
                Data::Bytes(payload)
            }
            OpCode::Close => {
                CloseFrame::parse(payload)?;
                Data::Bytes(payload)
            }
            OpCode::Ping | OpCode::Pong => Data::Bytes(payload),
        };
        Ok(Frame {
            opcode: info.opcode,
            fin,
            data,
        })
    }

    /// Accepts a compressed frame (`info.compressed()`) found by [`poll`](Self::poll) at the front
    /// of `data`: updates the fragmentation state and returns its (still compressed) payload. Once
    /// the caller has inflated it, [`inflated`](Self::inflated) validates the result and makes the
    /// frame.
    ///
    /// # Panics
    /// If `data` is shorter than `info.total_len()` (a caller bug: it is not what `poll` saw).
    pub fn accept_compressed<'a>(&mut self, info: FrameInfo, data: &'a [u8]) -> &'a [u8] {
        let payload = &data[info.header_len as usize..info.total_len()];
        self.streamed = 0;
        self.want = 0;
        if info.opcode != OpCode::Continuation {
            self.deflated_text = info.opcode == OpCode::Text;
            if !info.fin {
                self.fragmented = Some(info.opcode);
                self.compressed = true;
                self.message_len = payload.len() as u64;
            }
        } else if info.fin {
            self.fragmented = None;
            self.compressed = false;
            self.message_len = 0;
        } else {
            self.message_len += payload.len() as u64;
        }
        payload
    }

    /// The frame for `info` (accepted with [`accept_compressed`](Self::accept_compressed)) with
    /// its inflated payload `data`: a whole text message is validated as UTF-8 at once, the
    /// fragments of one across fragment boundaries (RFC 6455 §8.1).
    pub fn inflated<'a>(&mut self, info: FrameInfo, data: &'a [u8]) -> Result<Frame<'a>, WsError> {
        let first = info.opcode != OpCode::Continuation;
        let data = if !self.deflated_text {
            Data::Bytes(data)
        } else if first && info.fin {
            Data::Text(text(data)?)
        } else {
            if first {
                self.utf8.reset();
            }
            self.utf8.feed(data)?;
            if info.fin {
                self.utf8.finish()?;
            }
            Data::Bytes(data)
        };
        Ok(Frame {
            opcode: info.opcode,
            fin: info.fin,
            data,
        })
    }

    /// [`poll`](Self::poll) then [`accept`](Self::accept): the next frame and the number of bytes it
    /// used, or `Ok(None)` when more bytes are needed.
    #[inline]
    pub fn decode<'a>(&mut self, data: &'a [u8]) -> Result<Option<(Frame<'a>, usize)>, WsError> {
        match self.poll(data)? {
            Some(info) => Ok(Some((self.accept(info, data)?, info.total_len()))),
            None => Ok(None),
        }
    }
}

/// Appends one frame to `out`: header (minimal length form), then the payload, masked when `mask` is
/// given. Does not allocate when `out` has room. Used by the client, tests and benchmarks; it does
/// not check the payload against control-frame limits.
pub fn encode_frame(
    out: &mut Vec<u8>,
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    let mut h = [0u8; FrameHeader::MAX_LEN];
    let n = header.emit(&mut h);
    out.extend_from_slice(&h[..n]);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        super::mask::mask_in_place(&mut out[start..], key);
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
