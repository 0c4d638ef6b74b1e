//! Parsing response heads (RFC 9112 §4 status line, §5 field lines, §6.3 message body length,
//! §9.3 persistence; RFC 9110 §15.2 informational responses).
//!
//! [`parse_head`] runs httparse over the bytes received so far and, once the head is complete,
//! records where each field lies (as offsets, so nothing is copied) and decides how the body is
//! framed. A [`Response`] is a view over the connection's buffer with real lifetimes: it cannot
//! outlive the bytes it points into.

use std::mem::MaybeUninit;

use super::error::HttpError;

/// The most header fields any [`Limits::max_headers`] may allow (the parser's stack array).
pub const MAX_HEADERS_CAP: usize = 256;

/// Bounds on what a response may make the client hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Header fields per response (at most [`MAX_HEADERS_CAP`]).
    pub max_headers: usize,
    /// Bytes of a response head (status line and fields), and separately of a trailer section.
    pub max_head: usize,
    /// Bytes of a decoded body.
    pub max_body: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_headers: 64,
            max_head: 64 * 1024,
            max_body: 64 * 1024 * 1024,
        }
    }
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: a response to HEAD, 1xx, 204, 304, or `Content-Length: 0`.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// Where one field line lies within the head, as offsets from the head's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpan {
    name: (u32, u32),
    value: (u32, u32),
}

/// A parsed response head: everything except the field bytes themselves. Small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Bytes of the head, final CRLF included: the body starts here.
    pub len: usize,
    /// How the body is delimited.
    pub body: BodyKind,
    /// The connection cannot carry another request after this response (RFC 9112 §9.3, §9.6).
    pub close: bool,
    reason: (u32, u32),
}

/// Parses the response head at the start of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete, or the head with `fields` filled with the
/// position of each field (`fields` is cleared first; it never grows beyond
/// [`Limits::max_headers`], so reserving that much once makes parsing allocation-free).
/// `head_request` says whether the request was HEAD (whose response has no body).
pub fn parse_head(
    buf: &[u8],
    head_request: bool,
    limits: &Limits,
    fields: &mut Vec<FieldSpan>,
) -> Result<Option<Head>, HttpError> {
    let max_headers = limits.max_headers.min(MAX_HEADERS_CAP);
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let mut response = httparse::Response::new(&mut []);
    let status = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut storage[..max_headers],
    );
    let len = match status {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head => {
            return Err(HttpError::HeadTooLarge {
                max: limits.max_head,
            })
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::TooManyHeaders { max: max_headers })
        }
        Err(e) => return Err(HttpError::Head(e)),
    };
    if len > limits.max_head {
        return Err(HttpError::HeadTooLarge {
            max: limits.max_head,
        });
    }
    // httparse only returns Complete with both set.
    let status = response.code.unwrap_or(0);
    let minor_version = response.version.unwrap_or(1);
    let base = buf.as_ptr() as usize;
    // httparse hands out sub-slices of `buf`, except a reason phrase that is not UTF-8, which
    // becomes a static "" (found by fuzzing): anything outside `buf` is recorded as empty.
    let span = |s: &[u8]| {
        let start = (s.as_ptr() as usize).wrapping_sub(base);
        match start.checked_add(s.len()) {
            Some(end) if end <= buf.len() => (start as u32, end as u32),
            _ => (0, 0),
        }
    };
    let reason = span(response.reason.unwrap_or("").as_bytes());
    fields.clear();
    let mut framing = Framing::default();
    for h in response.headers.iter() {
        fields.push(FieldSpan {
            name: span(h.name.as_bytes()),
            value: span(h.value),
        });
        framing.observe(h.name, h.value, limits)?;
    }
    let (body, close) = framing.decide(status, minor_version, head_request)?;
    Ok(Some(Head {
        status,
        minor_version,
        len,
        body,
        close,
        reason,
    }))
}

/// What the framing-relevant fields said, collected over the field lines.
#[derive(Default)]
struct Framing {
    content_length: Option<u64>,
    /// Transfer-Encoding seen, and whether `chunked` is its final coding.
    transfer_encoding: bool,
    chunked_last: bool,
    chunked_count: u32,
    close: bool,
    keep_alive: bool,
}

impl Framing {
    fn observe(&mut self, name: &str, value: &[u8], limits: &Limits) -> Result<(), HttpError> {
        if name.eq_ignore_ascii_case("content-length") {
            // A list of identical values is one value (RFC 9112 §6.3 item 5); anything else is an
            // unrecoverable framing error.
            for item in value.split(|&b| b == b',') {
                let n = parse_decimal(trim(item)).ok_or(HttpError::ContentLength)?;
                match self.content_length {
                    Some(m) if m != n => return Err(HttpError::ContentLength),
                    _ => self.content_length = Some(n),
                }
            }
            if self.content_length.is_some_and(|n| n > limits.max_body) {
                return Err(HttpError::BodyTooLarge {
                    max: limits.max_body,
                });
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in value.split(|&b| b == b',').map(trim) {
                if coding.is_empty() {
                    continue;
                }
                self.transfer_encoding = true;
                let chunked = coding.eq_ignore_ascii_case(b"chunked");
                self.chunked_count += u32::from(chunked);
                self.chunked_last = chunked;
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        Ok(())
    }

    fn decide(
        &self,
        status: u16,
        minor_version: u8,
        head_request: bool,
    ) -> Result<(BodyKind, bool), HttpError> {
        // §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
        let close = self.close || (minor_version == 0 && !self.keep_alive);
        if status == 101 {
            return Err(HttpError::UnexpectedUpgrade);
        }
        // §6.3 item 1.
        if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok((BodyKind::None, close));
        }
        if self.transfer_encoding {
            // §6.1: chunked at most once; an HTTP/1.0 message with Transfer-Encoding has faulty
            // framing.
            if self.chunked_count > 1 || minor_version == 0 {
                return Err(HttpError::TransferEncoding);
            }
            // §6.3 item 3: Transfer-Encoding overrides Content-Length, and a message with both
            // must not be followed by another on the same connection (smuggling defence).
            let close = close || self.content_length.is_some();
            return Ok(if self.chunked_last {
                (BodyKind::Chunked, close)
            } else {
                (BodyKind::UntilClose, true)
            });
        }
        Ok(match self.content_length {
            Some(0) => (BodyKind::None, close),
            Some(n) => (BodyKind::Length(n), close),
            // §6.3 item 8.
            None => (BodyKind::UntilClose, true),
        })
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = s.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(a), Some(b)) => &s[a..=b],
        _ => &[],
    }
}

/// A non-empty run of ASCII digits that fits in a `u64`.
pub(crate) fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// A complete response: status, reason, fields and body, borrowing the connection's buffer.
///
/// Valid until the next call that reads or writes on the connection (the borrow checker enforces
/// it). Copy out what must live longer.
#[derive(Clone, Copy)]
pub struct Response<'a> {
    head: Head,
    bytes: &'a [u8],
    fields: &'a [FieldSpan],
    body: &'a [u8],
    body_len: u64,
}

impl<'a> Response<'a> {
    /// A view over `bytes` (which start with the head `head` described by `fields`), with `body`
    /// and the decoded body length (`body_len` may exceed `body.len()` when the body was written
    /// to a sink instead).
    pub fn new(
        head: Head,
        bytes: &'a [u8],
        fields: &'a [FieldSpan],
        body: &'a [u8],
        body_len: u64,
    ) -> Response<'a> {
        Response {
            head,
            bytes,
            fields,
            body,
            body_len,
        }
    }

    fn slice(&self, (a, b): (u32, u32)) -> &'a [u8] {
        self.bytes.get(a as usize..b as usize).unwrap_or(&[])
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The reason phrase (may be empty; not meaningful to software, RFC 9112 §4).
    pub fn reason(&self) -> &'a str {
        std::str::from_utf8(self.slice(self.head.reason)).unwrap_or("")
    }

    /// The HTTP version as `(1, minor)`.
    pub fn version(&self) -> (u8, u8) {
        (1, self.head.minor_version)
    }

    /// The parsed head.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The field lines in order, as (name, value) with the value's surrounding whitespace removed.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a [u8])> + 'a {
        let bytes = self.bytes;
        self.fields.iter().map(move |f| {
            let get = |(a, b): (u32, u32)| bytes.get(a as usize..b as usize).unwrap_or(&[]);
            // httparse validated names as tokens, which are ASCII.
            (std::str::from_utf8(get(f.name)).unwrap_or(""), get(f.value))
        })
    }

    /// The first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The body held in the connection's buffer (empty when it went to a sink).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// Decoded body bytes in total (also when they went to a sink).
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// `true` when the connection carries no further request after this response.
    pub fn closes_connection(&self) -> bool {
        self.head.close
    }
}

impl std::fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status())
            .field("reason", &self.reason())
            .field("headers", &self.fields.len())
            .field("body_len", &self.body_len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str, head: bool) -> Result<Option<Head>, HttpError> {
        parse_head(raw.as_bytes(), head, &Limits::default(), &mut Vec::new())
    }

    fn kind(raw: &str) -> (BodyKind, bool) {
        let h = parse(raw, false).unwrap().unwrap();
        (h.body, h.close)
    }

    #[test]
    fn view_borrows_fields_and_reason() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A:  spaced \r\n\
                    Content-Length: 5\r\n\r\nhello";
        let mut fields = Vec::new();
        let head = parse_head(raw, false, &Limits::default(), &mut fields)
            .unwrap()
            .unwrap();
        assert_eq!(head.len, raw.len() - 5);
        let r = Response::new(head, raw, &fields, &raw[head.len..], 5);
        assert_eq!((r.status(), r.reason(), r.version()), (200, "OK", (1, 1)));
        assert_eq!(r.header("content-type"), Some(&b"text/plain"[..]));
        assert_eq!(r.header("x-a"), Some(&b"spaced"[..]));
        assert_eq!(r.headers().len(), 3);
        assert_eq!(r.body(), b"hello");
        assert!(!r.closes_connection());
    }

    #[test]
    fn incomplete_heads_need_more() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(parse(&raw[..cut], false).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn framing_follows_rfc9112_6_3() {
        use BodyKind::*;
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
            (Length(10), false)
        );
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (None, false)
        );
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n"),
            (Length(7), false)
        );
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            (Chunked, false)
        );
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
            (Chunked, true)
        );
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            (UntilClose, true)
        );
        assert_eq!(kind("HTTP/1.1 200 OK\r\n\r\n"), (UntilClose, true));
        assert_eq!(kind("HTTP/1.1 204 No Content\r\n\r\n"), (None, false));
        assert_eq!(
            kind("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"),
            (None, false)
        );
        assert_eq!(kind("HTTP/1.1 100 Continue\r\n\r\n"), (None, false));
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 1\r\n\r\n"),
            (Length(1), true)
        );
        assert_eq!(
            kind("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"),
            (Length(1), true)
        );
        assert_eq!(
            kind("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n"),
            (Length(1), false)
        );
        let head = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(head.body, None);
    }

    #[test]
    fn framing_errors_are_typed() {
        let cases = [
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
        ];
        for raw in cases {
            assert!(
                matches!(parse(raw, false), Err(HttpError::ContentLength)),
                "{raw:?}"
            );
        }
        assert!(matches!(
            parse(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                false
            ),
            Err(HttpError::TransferEncoding)
        ));
        assert!(matches!(
            parse(
                "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false
            ),
            Err(HttpError::TransferEncoding)
        ));
        assert!(matches!(
            parse("HTTP/1.1 101 Switching Protocols\r\n\r\n", false),
            Err(HttpError::UnexpectedUpgrade)
        ));
        assert!(matches!(
            parse("HTTP/1.1 2000 OK\r\n\r\n", false),
            Err(HttpError::Head(_))
        ));
        assert!(matches!(
            parse("SMTP 220 hello\r\n\r\n", false),
            Err(HttpError::Head(_))
        ));
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_headers: 2,
            max_head: 100,
            max_body: 1000,
        };
        let mut f = Vec::new();
        let three = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert!(matches!(
            parse_head(three, false, &limits, &mut f),
            Err(HttpError::TooManyHeaders { max: 2 })
        ));
        let long = format!("HTTP/1.1 200 OK\r\nA: {}\r\n", "x".repeat(100));
        assert!(matches!(
            parse_head(long.as_bytes(), false, &limits, &mut f),
            Err(HttpError::HeadTooLarge { max: 100 })
        ));
        let big = b"HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n";
        assert!(matches!(
            parse_head(big, false, &limits, &mut f),
            Err(HttpError::BodyTooLarge { max: 1000 })
        ));
    }

    #[test]
    fn a_reason_phrase_that_is_not_utf8_is_empty() {
        let raw = b"HTTP/1.0 200 OK\xc7\xc7\r\nContent-Length: 0\r\n\r\n";
        let mut fields = Vec::new();
        let head = parse_head(raw, false, &Limits::default(), &mut fields)
            .unwrap()
            .unwrap();
        let r = Response::new(head, raw, &fields, &[], 0);
        assert_eq!((r.status(), r.reason()), (200, ""));
        assert_eq!(r.header("content-length"), Some(&b"0"[..]));
    }

    #[test]
    fn decimal_parsing() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"1 2"), None);
    }
}
