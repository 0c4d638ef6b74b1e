//! The HTTP layer's error type.
//!
//! One enum, [`HttpError`]. Every variant caused by the peer's bytes is a fixed-size value (no
//! `String`), so reporting a bad response never allocates. "Need more bytes" is never an error: the
//! codec returns `Ok(None)` for it.

use std::io;

/// Everything that can go wrong in the HTTP layer.
///
/// After an error other than [`HttpError::Usage`] and [`HttpError::Request`] the connection is
/// unusable: framing is lost, so the next byte cannot be trusted to start a response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The stream failed (reset, broken pipe, TLS failure, timeout of a blocking helper).
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The response head is not valid HTTP/1.x (RFC 9112 §2–§5).
    #[error("malformed response head: {0}")]
    Head(#[from] httparse::Error),
    /// More interim (1xx) responses before a final one than [`MAX_INTERIM`](super::client::MAX_INTERIM):
    /// a peer that could otherwise hold the connection in its head phase forever.
    #[error("more than {max} interim (1xx) responses to one request")]
    TooManyInterim {
        /// The limit.
        max: u32,
    },
    /// The response head is larger than [`Limits::max_head`](super::Limits::max_head) bytes.
    #[error("response head exceeds {max} bytes")]
    HeadTooLarge {
        /// The limit.
        max: usize,
    },
    /// The response carries more than [`Limits::max_headers`](super::Limits::max_headers) fields.
    #[error("response has more than {max} header fields")]
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// The body is larger than [`Limits::max_body`](super::Limits::max_body) bytes.
    #[error("response body exceeds {max} bytes")]
    BodyTooLarge {
        /// The limit.
        max: u64,
    },
    /// `Content-Length` is not a decimal number, or several values disagree (RFC 9112 §6.3 item 5).
    #[error("invalid Content-Length")]
    ContentLength,
    /// A transfer coding other than `chunked` is applied last with no way to delimit the body, or
    /// `chunked` is applied more than once (RFC 9112 §6.1).
    #[error("unsupported Transfer-Encoding")]
    TransferEncoding,
    /// The chunked framing is broken (RFC 9112 §7.1).
    #[error("bad chunked encoding: {0}")]
    Chunk(#[from] ChunkError),
    /// A `101 Switching Protocols` answer: this client never asks for an upgrade.
    #[error("unexpected 101 Switching Protocols")]
    UnexpectedUpgrade,
    /// The peer closed the connection before any byte of the expected response. Nothing of the
    /// request was processed visibly: an idempotent request may be retried on a new connection.
    #[error("connection closed before the response")]
    Closed,
    /// The peer closed the connection in the middle of a response head.
    #[error("connection closed in the middle of the response head")]
    ClosedInHead,
    /// The peer closed the connection before the whole body arrived.
    #[error("connection closed after {received} body bytes (response truncated)")]
    IncompleteBody {
        /// Body bytes received before the close.
        received: u64,
    },
    /// Bytes arrived while no request was waiting for a response.
    #[error("unsolicited bytes from the server (no request in flight)")]
    Unsolicited,
    /// With a correlation header configured, the response echoes another request's id (or none):
    /// the server answered out of order or answered the wrong request.
    #[error("response for request {got:?}, expected request {expected}")]
    Mismatched {
        /// The id the request carried.
        expected: u64,
        /// The id the response carried, if it carried a parsable one.
        got: Option<u64>,
    },
    /// No complete response within the timeout of a blocking helper.
    #[error("no complete response within the timeout")]
    Timeout,
    /// The request cannot be written: a header name or value with forbidden bytes, a bad method or
    /// target. Nothing was sent; the connection is unaffected.
    #[error("invalid request: {0}")]
    Request(RequestError),
    /// The call is not valid now (pipeline full, connection closing); nothing was sent and the
    /// connection is unaffected.
    #[error("invalid use: {0}")]
    Usage(UsageError),
    /// The URL cannot be used.
    #[error("invalid URL: {0}")]
    Url(#[from] UrlError),
}

impl HttpError {
    /// `true` when the error rejected one call and left the connection usable.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, HttpError::Request(_) | HttpError::Usage(_))
    }

    /// `true` when the connection died before any byte of the response arrived, so an idempotent
    /// request may safely be sent again on another connection (RFC 9110 §9.2.2, RFC 9112 §9.3.1).
    pub fn before_response(&self) -> bool {
        match self {
            HttpError::Closed => true,
            HttpError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

impl From<HttpError> for io::Error {
    fn from(e: HttpError) -> io::Error {
        match e {
            HttpError::Io(inner) => inner,
            HttpError::Timeout => io::Error::new(io::ErrorKind::TimedOut, e),
            HttpError::Closed | HttpError::ClosedInHead | HttpError::IncompleteBody { .. } => {
                io::Error::new(io::ErrorKind::UnexpectedEof, e)
            }
            HttpError::Request(_) | HttpError::Usage(_) | HttpError::Url(_) => {
                io::Error::new(io::ErrorKind::InvalidInput, e)
            }
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// A broken rule of the chunked transfer coding (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The chunk size is missing or not hexadecimal.
    #[error("chunk size is not hexadecimal")]
    Size,
    /// The chunk size does not fit in 64 bits.
    #[error("chunk size overflows")]
    SizeOverflow,
    /// A chunk-size line (with its extensions) is longer than the limit.
    #[error("chunk-size line too long")]
    LineTooLong,
    /// A chunk's data is not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    MissingCrlf,
    /// A bare CR or LF, or a control byte, where a line was expected.
    #[error("invalid byte in a chunk-size line or trailer")]
    Byte,
    /// The trailer section is larger than the head limit.
    #[error("trailer section too large")]
    TrailersTooLarge,
    /// A trailer line is not `name: value`.
    #[error("malformed trailer field")]
    Trailer,
}

/// Why a request could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A header name that is not a token (RFC 9110 §5.1).
    #[error("header name is not a token")]
    HeaderName,
    /// A header value containing CR, LF or NUL (RFC 9110 §5.5).
    #[error("header value contains CR, LF or NUL")]
    HeaderValue,
    /// A request target that is empty, does not start with `/` or `*`, or contains whitespace or
    /// control bytes (RFC 9112 §3.2).
    #[error("request target must start with '/' and contain no whitespace or control bytes")]
    Target,
    /// A method that is not a token.
    #[error("method is not a token")]
    Method,
    /// `Content-Length` or `Transfer-Encoding` given as a header: the writer frames the body itself.
    #[error("framing headers (Content-Length, Transfer-Encoding) are set by the writer")]
    FramingHeader,
}

/// A call that is not valid in the connection's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// As many requests are in flight as the pipeline holds.
    #[error("pipeline full ({0} requests in flight)")]
    PipelineFull(usize),
    /// The connection will close (a `Connection: close` was sent or received): no more requests.
    #[error("connection is closing: no more requests on it")]
    Closing,
    /// A response was asked for while no request is in flight.
    #[error("no request in flight")]
    Idle,
    /// The connection failed earlier (the error was returned then); open a new one.
    #[error("the connection failed earlier")]
    Failed,
}

pub use crate::url::UrlError;
