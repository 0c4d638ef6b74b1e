//! permessage-deflate (RFC 7692): the offer and the validation of the server's answer (§7.1), and
//! the compressor and decompressor of the client side (§7.2).
//!
//! [`DeflateConfig`] says what the client offers; [`negotiate`] checks the server's
//! `Sec-WebSocket-Extensions` answer against it and yields the [`DeflateParams`] in force, or a
//! [`DeflateError`] that fails the handshake. [`Inflater`] turns the payload of a compressed message
//! (RSV1 on its first frame) into plain bytes in buffers the connection owns; [`Deflater`] compresses
//! the messages the client sends into one buffer it owns. Neither allocates per message once its
//! buffers have grown to the largest message seen.
//!
//! Window bits: zlib (and zlib-rs) cannot produce a raw deflate stream with an 8-bit window, so the
//! configuration refuses 8, and an answer that asks the client to compress with 8 bits fails the
//! handshake. Received messages are inflated with a 15-bit window whatever the server's window: a
//! larger window decodes every stream a smaller one produced, and the decompressor resets without
//! reallocating (a non-default window makes flate2 re-create it on every reset).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::error::{CapacityError, ProtocolError, UsageError, WsError};

/// The extension token (§7).
const NAME: &str = "permessage-deflate";

/// The four bytes a sender strips from the end of each compressed message and the receiver
/// appends again before inflating (§7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The permessage-deflate offer (RFC 7692 §7.1): what the client asks the server for.
///
/// `None` windows leave the choice to the server: `client_max_window_bits` is then offered without
/// a value (the client can compress with any window the server asks for), and
/// `server_max_window_bits` is not offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeflateConfig {
    /// The client resets its compressor after each message (`client_no_context_takeover`).
    pub client_no_context_takeover: bool,
    /// Asks the server to reset its compressor after each message (`server_no_context_takeover`).
    pub server_no_context_takeover: bool,
    /// The largest window the client compresses with, 9..=15 (`client_max_window_bits=N`).
    pub client_max_window_bits: Option<u8>,
    /// The largest window the server may compress with, 9..=15 (`server_max_window_bits=N`).
    pub server_max_window_bits: Option<u8>,
}

impl DeflateConfig {
    /// The smallest window accepted: zlib cannot compress raw deflate with 8 bits (see the module
    /// documentation).
    pub const MIN_WINDOW_BITS: u8 = 9;
    /// The largest window (32 KiB).
    pub const MAX_WINDOW_BITS: u8 = 15;

    /// Checks the window sizes: each must be in 9..=15.
    pub fn validate(&self) -> Result<(), UsageError> {
        for bits in [self.client_max_window_bits, self.server_max_window_bits]
            .into_iter()
            .flatten()
        {
            if !(Self::MIN_WINDOW_BITS..=Self::MAX_WINDOW_BITS).contains(&bits) {
                return Err(UsageError::WindowBits(bits));
            }
        }
        Ok(())
    }

    /// Appends the `Sec-WebSocket-Extensions` request header with this offer to `out`.
    pub(crate) fn write_offer(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        // Writing into a Vec cannot fail.
        let _ = write!(out, "Sec-WebSocket-Extensions: {NAME}");
        match self.client_max_window_bits {
            Some(n) => {
                let _ = write!(out, "; client_max_window_bits={n}");
            }
            None => out.extend_from_slice(b"; client_max_window_bits"),
        }
        if let Some(n) = self.server_max_window_bits {
            let _ = write!(out, "; server_max_window_bits={n}");
        }
        if self.client_no_context_takeover {
            out.extend_from_slice(b"; client_no_context_takeover");
        }
        if self.server_no_context_takeover {
            out.extend_from_slice(b"; server_no_context_takeover");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// The parameters in force once the server accepted the offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The server resets its compressor after each message (the client then resets its
    /// decompressor too).
    pub server_no_context_takeover: bool,
    /// The window the client compresses with (9..=15).
    pub client_max_window_bits: u8,
    /// The largest window the server compresses with (8..=15).
    pub server_max_window_bits: u8,
}

/// Why the server's permessage-deflate answer was refused (RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeflateError {
    /// The answer names permessage-deflate more than once.
    #[error("permessage-deflate answered more than once")]
    Duplicate,
    /// A parameter RFC 7692 does not define.
    #[error("unknown permessage-deflate parameter")]
    UnknownParameter,
    /// A parameter given twice.
    #[error("permessage-deflate parameter given twice")]
    DuplicateParameter,
    /// A value that is not a window size (8..=15), or a value on a parameter that takes none.
    #[error("invalid permessage-deflate parameter value")]
    InvalidValue,
    /// `server_max_window_bits` above what was offered.
    #[error("server_max_window_bits {answered} exceeds the {offered} offered")]
    ServerWindowTooLarge {
        /// The offered value.
        offered: u8,
        /// The answered value.
        answered: u8,
    },
    /// `server_max_window_bits` or `server_no_context_takeover` was offered and the answer
    /// accepting the offer left it out (§7.1.1.1, §7.1.2.1).
    #[error("the answer leaves out a server parameter that was offered")]
    ServerParameterMissing,
    /// `client_max_window_bits` in the answer although the offer did not include it (§7.1.2.2).
    #[error("client_max_window_bits answered but not offered")]
    ClientWindowNotOffered,
    /// `client_max_window_bits` above what was offered.
    #[error("client_max_window_bits {answered} exceeds the {offered} offered")]
    ClientWindowTooLarge {
        /// The offered value.
        offered: u8,
        /// The answered value.
        answered: u8,
    },
    /// `client_max_window_bits=8`: zlib cannot compress raw deflate with an 8-bit window.
    #[error("client_max_window_bits=8 is not supported (zlib's smallest raw window is 9)")]
    ClientWindow8,
}

/// Checks one permessage-deflate extension element of the answer (its parameters, after the
/// name) against the offer `cfg` (§7.1). `offered_client_bits` is whether the offer carried
/// `client_max_window_bits` (the client always offers it; kept as an argument so the rule is
/// checked whatever the offer).
pub(crate) fn negotiate(
    params: &[u8],
    cfg: &DeflateConfig,
    offered_client_bits: bool,
) -> Result<DeflateParams, DeflateError> {
    let (mut cnct, mut snct) = (false, false);
    let (mut cbits, mut sbits) = (None::<u8>, None::<u8>);
    let params = if params.trim_ascii().is_empty() {
        &[][..]
    } else {
        params
    };
    for p in params.split(|&b| b == b';').filter(|_| !params.is_empty()) {
        let p = p.trim_ascii();
        if p.is_empty() {
            return Err(DeflateError::UnknownParameter);
        }
        let (name, value) = match p.iter().position(|&b| b == b'=') {
            Some(i) => (p[..i].trim_ascii(), Some(p[i + 1..].trim_ascii())),
            None => (p, None),
        };
        let lower = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
        if lower("client_no_context_takeover") || lower("server_no_context_takeover") {
            if value.is_some() {
                return Err(DeflateError::InvalidValue);
            }
            let flag = if lower("client_no_context_takeover") {
                &mut cnct
            } else {
                &mut snct
            };
            if std::mem::replace(flag, true) {
                return Err(DeflateError::DuplicateParameter);
            }
        } else if lower("client_max_window_bits") || lower("server_max_window_bits") {
            let bits = value
                .and_then(window_bits)
                .ok_or(DeflateError::InvalidValue)?;
            let slot = if lower("client_max_window_bits") {
                &mut cbits
            } else {
                &mut sbits
            };
            if slot.replace(bits).is_some() {
                return Err(DeflateError::DuplicateParameter);
            }
        } else {
            return Err(DeflateError::UnknownParameter);
        }
    }
    if (cfg.server_max_window_bits.is_some() && sbits.is_none())
        || (cfg.server_no_context_takeover && !snct)
    {
        return Err(DeflateError::ServerParameterMissing);
    }
    if let (Some(offered), Some(answered)) = (cfg.server_max_window_bits, sbits) {
        if answered > offered {
            return Err(DeflateError::ServerWindowTooLarge { offered, answered });
        }
    }
    let client_bits = match cbits {
        None => cfg.client_max_window_bits.unwrap_or(15),
        Some(_) if !offered_client_bits => return Err(DeflateError::ClientWindowNotOffered),
        Some(8) => return Err(DeflateError::ClientWindow8),
        Some(answered) => match cfg.client_max_window_bits {
            Some(offered) if answered > offered => {
                return Err(DeflateError::ClientWindowTooLarge { offered, answered })
            }
            _ => answered,
        },
    };
    Ok(DeflateParams {
        client_no_context_takeover: cnct || cfg.client_no_context_takeover,
        server_no_context_takeover: snct,
        client_max_window_bits: client_bits,
        server_max_window_bits: sbits.unwrap_or(15),
    })
}

/// A window size value: 8..=15, bare or quoted (§7.1.2.1: `1*DIGIT`, possibly a quoted-string).
fn window_bits(v: &[u8]) -> Option<u8> {
    let v = match v {
        [b'"', inner @ .., b'"'] => inner,
        v => v,
    };
    match v {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// Splits one extension element (`name; params`) into its name and its parameters.
pub(crate) fn split_element(element: &[u8]) -> (&[u8], &[u8]) {
    match element.iter().position(|&b| b == b';') {
        Some(i) => (element[..i].trim_ascii(), &element[i + 1..]),
        None => (element.trim_ascii(), &[]),
    }
}

/// `true` when `name` is `permessage-deflate` (case-insensitive, as tokens are).
pub(crate) fn is_deflate(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(NAME.as_bytes())
}

/// The buffers inflated messages are written to, owned by the connection.
///
/// A message goes into `out` (several messages of one batch one after the other); one that does
/// not fit spills into `spill`, which then ends the batch. Before the next receive the larger of
/// the two becomes `out`, so `out` grows to the largest message seen and stays.
#[derive(Debug, Default)]
pub(crate) struct InflateBufs {
    pub(crate) out: Vec<u8>,
    pub(crate) spill: Vec<u8>,
}

impl InflateBufs {
    /// Makes the larger buffer `out` (nothing borrows either between receives).
    #[inline]
    pub(crate) fn settle(&mut self) {
        if self.spill.len() > self.out.len() {
            std::mem::swap(&mut self.out, &mut self.spill);
        }
    }
}

/// Where an inflated frame went.
#[derive(Debug)]
pub(crate) struct Inflated<'a> {
    /// The inflated bytes.
    pub(crate) data: &'a [u8],
    /// They went to the spill buffer: a batch must end after this frame.
    pub(crate) spilled: bool,
}

/// The receive side: one raw-deflate decompressor for the connection (§7.2.2).
pub(crate) struct Inflater {
    z: Decompress,
    /// Reset after every message (`server_no_context_takeover`).
    reset_each: bool,
    /// The limit on a message's inflated size (`max_message_size`).
    max_message: usize,
    /// Inflated bytes of the message in progress, earlier fragments.
    msg_len: usize,
    /// A fragment of the current message has been inflated (the next frame continues it).
    mid_message: bool,
    /// The stream ended (a block with BFINAL): start a new one with the next message.
    ended: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("reset_each", &self.reset_each)
            .field("max_message", &self.max_message)
            .finish_non_exhaustive()
    }
}

/// The invalid-data error.
fn corrupt() -> WsError {
    ProtocolError::Deflate.into()
}

impl Inflater {
    /// A decompressor for a connection with `params`, refusing messages that inflate past
    /// `max_message` bytes.
    pub(crate) fn new(params: &DeflateParams, max_message: usize) -> Inflater {
        Inflater {
            z: Decompress::new(false),
            reset_each: params.server_no_context_takeover,
            max_message,
            msg_len: 0,
            mid_message: false,
            ended: false,
        }
    }

    /// Inflates as much of `inputs` (the payload, then the tail) as fits into `dst`.
    /// Returns the bytes written and whether the input is done (all consumed and all output
    /// flushed); when not done, `dst` is full.
    fn fill(&mut self, inputs: &mut [&[u8]; 2], dst: &mut [u8]) -> Result<(usize, bool), WsError> {
        let mut written = 0;
        loop {
            if self.ended {
                // Nothing may follow the final block but the tail we append.
                if !inputs[0].is_empty() {
                    return Err(corrupt());
                }
                *inputs = [&[], &[]];
                return Ok((written, true));
            }
            let cur = usize::from(inputs[0].is_empty());
            let input = inputs[cur];
            let (in0, out0) = (self.z.total_in(), self.z.total_out());
            let status = self
                .z
                .decompress(input, &mut dst[written..], FlushDecompress::Sync)
                .map_err(|_| corrupt())?;
            let used = (self.z.total_in() - in0) as usize;
            let made = (self.z.total_out() - out0) as usize;
            inputs[cur] = &input[used..];
            written += made;
            if status == Status::StreamEnd {
                self.ended = true;
                continue;
            }
            let input_done = inputs[0].is_empty() && inputs[1].is_empty();
            if input_done && written < dst.len() {
                return Ok((written, true));
            }
            if written == dst.len() {
                return Ok((written, false));
            }
            if used == 0 && made == 0 {
                // Input left, room left, and no progress: the stream cannot go on.
                return Err(corrupt());
            }
        }
    }

    /// Inflates one frame's `payload` (`fin`: the last frame of its message). The output goes to
    /// the front of `tail` (which then keeps what is after it) or, when it does not fit, to
    /// `spill` (taken: a batch ends after the frame that used it). A message that inflates past
    /// the limit fails with [`CapacityError::Message`] before more than the limit (plus one byte)
    /// is written anywhere.
    pub(crate) fn inflate<'a>(
        &mut self,
        payload: &[u8],
        fin: bool,
        tail: &mut &'a mut [u8],
        spill: &mut Option<&'a mut Vec<u8>>,
    ) -> Result<Inflated<'a>, WsError> {
        if fin && payload.is_empty() && !self.mid_message {
            // An empty message sent as an empty payload (some servers do): the tail alone is an
            // unfinished stored block, which would leave the inflater mid-block for the next
            // message under context takeover. Nothing to inflate.
            let (data, rest) = std::mem::take(tail).split_at_mut(0);
            *tail = rest;
            self.end_frame(0, true);
            return Ok(Inflated {
                data,
                spilled: false,
            });
        }
        let mut inputs: [&[u8]; 2] = [payload, if fin { &TAIL } else { &[] }];
        // One byte past the limit is room enough to see that a message exceeds it.
        let room = self.max_message.saturating_sub(self.msg_len);
        let bound = room.saturating_add(1);
        let t = std::mem::take(tail);
        let cap = t.len().min(bound);
        let (n, done) = self.fill(&mut inputs, &mut t[..cap])?;
        if n > room {
            return Err(self.too_large(n));
        }
        if done {
            let (data, rest) = t.split_at_mut(n);
            *tail = rest;
            self.end_frame(n, fin);
            return Ok(Inflated {
                data,
                spilled: false,
            });
        }
        // `tail` is too small: continue in the spill buffer, growing it up to the bound. A batch
        // ends after the frame that used it, so it is always there when needed.
        let Some(spill) = spill.take() else {
            return Err(corrupt());
        };
        let mut len = n;
        grow(spill, bound.min(n.max(2048) * 2));
        spill[..n].copy_from_slice(&t[..n]);
        *tail = t;
        loop {
            let cap = spill.len().min(bound);
            let (m, done) = self.fill(&mut inputs, &mut spill[len..cap])?;
            len += m;
            if len > room {
                return Err(self.too_large(len));
            }
            if done {
                break;
            }
            grow(spill, spill.len().saturating_mul(2).min(bound));
        }
        self.end_frame(len, fin);
        Ok(Inflated {
            data: &spill[..len],
            spilled: true,
        })
    }

    fn end_frame(&mut self, n: usize, fin: bool) {
        self.mid_message = !fin;
        if fin {
            self.msg_len = 0;
            if self.reset_each || self.ended {
                self.z.reset(false);
                self.ended = false;
            }
        } else {
            self.msg_len += n;
        }
    }

    #[cold]
    fn too_large(&mut self, n: usize) -> WsError {
        CapacityError::Message {
            len: (self.msg_len + n) as u64,
            max: self.max_message,
        }
        .into()
    }
}

/// Grows `v` to `len` bytes, allocating exactly that much (an amortised doubling could pass the
/// message limit the length respects).
fn grow(v: &mut Vec<u8>, len: usize) {
    if v.len() < len {
        v.reserve_exact(len - v.len());
        v.resize(len, 0);
    }
}

/// The send side: one raw-deflate compressor and the buffer it writes into (§7.2.1).
pub(crate) struct Deflater {
    z: Compress,
    reset_each: bool,
    buf: Vec<u8>,
    len: usize,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("reset_each", &self.reset_each)
            .field("buffer", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl Deflater {
    /// A compressor for a connection with `params`, its buffer starting at `initial` bytes.
    pub(crate) fn new(params: &DeflateParams, initial: usize) -> Deflater {
        Deflater {
            z: Compress::new_with_window_bits(
                Compression::default(),
                false,
                params.client_max_window_bits.clamp(9, 15),
            ),
            reset_each: params.client_no_context_takeover,
            buf: vec![0; initial.max(256)],
            len: 0,
        }
    }

    /// Compresses one frame's payload (`fin`: the last frame of its message) and returns the
    /// bytes to send: ending in a sync flush, whose four-byte tail is stripped on the last frame.
    pub(crate) fn compress(&mut self, payload: &[u8], fin: bool) -> Result<&[u8], WsError> {
        self.len = 0;
        let mut input = payload;
        loop {
            let (in0, out0) = (self.z.total_in(), self.z.total_out());
            self.z
                .compress(input, &mut self.buf[self.len..], FlushCompress::Sync)
                .map_err(|e| WsError::from(std::io::Error::other(e)))?;
            input = &input[(self.z.total_in() - in0) as usize..];
            self.len += (self.z.total_out() - out0) as usize;
            if input.is_empty() && self.len < self.buf.len() {
                break;
            }
            if self.len == self.buf.len() {
                let grown = self.buf.len() * 2;
                self.buf.resize(grown, 0);
            }
        }
        let mut n = self.len;
        if fin {
            if self.buf[..n].ends_with(&TAIL) {
                n -= TAIL.len();
            }
            if self.reset_each {
                self.z.reset();
            }
            if n == 0 {
                // zlib writes nothing for a sync flush right after another one; an empty payload
                // would not inflate, a single 0x00 (an empty stored block once the tail is
                // appended) does (§7.2.3.6).
                self.buf[0] = 0;
                n = 1;
            }
        }
        Ok(&self.buf[..n])
    }
}

/// The negotiated extension's state on one connection.
#[derive(Debug)]
pub(crate) struct DeflateState {
    pub(crate) params: DeflateParams,
    pub(crate) inflater: Inflater,
    pub(crate) deflater: Deflater,
}

impl DeflateState {
    pub(crate) fn new(params: DeflateParams, max_message: usize, write_buffer: usize) -> Self {
        DeflateState {
            inflater: Inflater::new(&params, max_message),
            deflater: Deflater::new(&params, write_buffer.min(64 << 10)),
            params,
        }
    }
}

#[cfg(test)]
#[path = "deflate_tests.rs"]
mod tests;
