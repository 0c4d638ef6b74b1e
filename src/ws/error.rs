//! The WebSocket layer's error type and its mapping to close status codes (RFC 6455 §7.4.1).

use std::io;
use std::sync::Arc;

/// Everything that can go wrong in the WebSocket layer.
///
/// Errors are *terminal* (the connection is failed, see [`WsError::is_terminal`]) except
/// [`WsError::Usage`], which only rejects one call. After a terminal error every call on the
/// [`Websocket`](super::Websocket) returns a clone of the same error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The stream failed (shared so the error can be returned again on every later call).
    #[error("I/O error: {0}")]
    Io(Arc<io::Error>),
    /// The peer broke a framing rule of RFC 6455 §5 (close code 1002).
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// A text message or a close reason is not valid UTF-8 (RFC 6455 §8.1, close code 1007).
    #[error("invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,
    /// A frame or message exceeds the configured limit (close code 1009).
    #[error("{0}")]
    Capacity(#[from] CapacityError),
    /// The opening handshake failed (RFC 6455 §4.1).
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The URL could not be used.
    #[error("invalid URL: {0}")]
    Url(#[from] UrlError),
    /// The call was not valid in the current state or with these arguments; nothing was sent and the
    /// connection is unaffected.
    #[error("invalid use: {0}")]
    Usage(#[from] UsageError),
    /// The peer closed the TCP connection without a closing handshake (close code 1006, never sent).
    #[error("connection closed by the peer without a close frame")]
    Eof,
    /// The closing handshake completed and the TCP connection ended: the normal end of a connection.
    #[error("connection closed")]
    Closed,
}

impl WsError {
    /// The close status code sent to the peer when this error fails the connection, if any.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            WsError::Protocol(_) => Some(1002),
            WsError::InvalidUtf8 => Some(1007),
            WsError::Capacity(_) => Some(1009),
            _ => None,
        }
    }

    /// `false` only for errors that reject one call and leave the connection usable.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, WsError::Usage(_))
    }
}

impl From<io::Error> for WsError {
    fn from(e: io::Error) -> Self {
        WsError::Io(Arc::new(e))
    }
}

/// A framing rule broken by the peer (RFC 6455 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV1–3 set while no extension was negotiated (§5.2).
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    /// An opcode RFC 6455 reserves (§5.2).
    #[error("reserved opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A server frame with the mask bit set (§5.1: servers must not mask).
    #[error("masked frame from the server")]
    MaskedFrame,
    /// A 64-bit payload length with the most significant bit set (§5.2).
    #[error("64-bit payload length with the top bit set")]
    LengthOverflow,
    /// A control frame with more than 125 payload bytes (§5.5).
    #[error("control frame longer than 125 bytes")]
    ControlTooLong,
    /// A control frame without FIN (§5.5: control frames must not be fragmented).
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A continuation frame with no fragmented message in progress (§5.4).
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished (§5.4).
    #[error("new data frame while a fragmented message is unfinished")]
    ExpectedContinuation,
    /// A close frame with a one-byte body (§5.5.1: a body starts with a two-byte code).
    #[error("close frame with a one-byte body")]
    ShortClose,
    /// A close frame with a status code that must not appear on the wire (§7.4).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A compressed message whose payload is not a valid deflate stream (RFC 7692 §7.2.2).
    #[error("invalid compressed data")]
    Deflate,
}

/// A configured size limit was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CapacityError {
    /// One frame announces more payload than `max_frame_size`.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    Frame {
        /// The announced payload length.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// A (possibly fragmented) message grows beyond `max_message_size`.
    #[error("message of at least {len} bytes exceeds the limit of {max}")]
    Message {
        /// The message length reached so far.
        len: u64,
        /// The configured limit.
        max: usize,
    },
}

/// Why the server's opening-handshake response was rejected (RFC 6455 §4.1, §4.2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The status was not 101 Switching Protocols.
    #[error("server answered {0} instead of 101")]
    Status(u16),
    /// `Upgrade: websocket` is missing.
    #[error("missing or wrong Upgrade header")]
    Upgrade,
    /// `Connection: Upgrade` is missing.
    #[error("missing or wrong Connection header")]
    Connection,
    /// `Sec-WebSocket-Accept` is missing or does not match the key sent.
    #[error("missing or wrong Sec-WebSocket-Accept")]
    Accept,
    /// The server chose a subprotocol the client did not offer.
    #[error("server selected a subprotocol that was not offered")]
    Subprotocol,
    /// The server answered with an extension the client did not offer.
    #[error("server selected an extension that was not offered")]
    Extension,
    /// The server's permessage-deflate answer does not fit the offer (RFC 7692 §7.1).
    #[error("permessage-deflate: {0}")]
    Deflate(#[from] super::deflate::DeflateError),
    /// The response is not valid HTTP/1.1.
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
    /// The response head exceeds the configured limit.
    #[error("response head longer than {0} bytes")]
    TooLarge(usize),
    /// The connection ended before the response head was complete.
    #[error("connection closed during the handshake")]
    Eof,
}

pub use crate::url::UrlError;

/// A call the client refused without touching the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// A ping, pong or close payload over 125 bytes (§5.5).
    #[error("control frame payload longer than 125 bytes")]
    ControlTooLong,
    /// A close code that an endpoint must not send (§7.4).
    #[error("close code {0} may not be sent")]
    CloseCode(u16),
    /// A data frame after this side sent its close frame (§5.5.1).
    #[error("close frame already sent")]
    CloseSent,
    /// A continuation or new message that breaks the fragmentation rules (§5.4).
    #[error("fragmentation out of order")]
    Fragmentation,
    /// A request header name or value, origin or subprotocol with CR, LF or NUL in it.
    #[error("invalid character in a request header")]
    Header,
    /// A permessage-deflate window size outside 9..=15 (8 is refused: zlib cannot compress raw
    /// deflate with an 8-bit window).
    #[error("permessage-deflate window bits {0} outside 9..=15")]
    WindowBits(u8),
    /// A frame of a compressed message given to [`Decoder::accept`](super::Decoder::accept):
    /// such frames go through `accept_compressed` and `inflated`.
    #[error("a compressed frame given to Decoder::accept (use accept_compressed and inflated)")]
    CompressedFrame,
}
