//! Writing requests (RFC 9112 §3 request line, §5 field lines, §6.1–§6.2 and §7.1 message body
//! framing; RFC 9110 §7.2 `Host`).
//!
//! A [`Request`] borrows everything it says; [`write_request`] appends its wire form to a buffer
//! the caller reuses, so a warm connection writes requests without allocating.

use super::error::RequestError;

/// A request method (RFC 9110 §9). A closed set: what REST APIs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// GET.
    Get,
    /// HEAD: the response never has a body (RFC 9110 §9.3.2).
    Head,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
    /// PATCH (RFC 5789).
    Patch,
    /// OPTIONS.
    Options,
    /// TRACE.
    Trace,
}

impl Method {
    /// The method token as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
        }
    }

    /// Idempotent methods (RFC 9110 §9.2.2) may be retried automatically when a connection dies
    /// before any response byte.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Method::Post | Method::Patch)
    }

    /// Methods whose request normally has content: an empty body is sent as `Content-Length: 0`
    /// (RFC 9110 §8.6), so the server does not wait for one.
    fn expects_body(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Method {
    type Err = RequestError;
    fn from_str(s: &str) -> Result<Method, RequestError> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            "TRACE" => Method::Trace,
            _ => return Err(RequestError::Method),
        })
    }
}

/// A request body and how it is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Body<'a> {
    /// No content (`Content-Length: 0` for POST, PUT and PATCH, nothing otherwise).
    #[default]
    Empty,
    /// Content framed by `Content-Length` (RFC 9112 §6.2).
    Bytes(&'a [u8]),
    /// Content sent with `Transfer-Encoding: chunked` (RFC 9112 §7.1), one chunk per slice (empty
    /// slices are skipped: a zero-size chunk would end the body).
    Chunked(&'a [&'a [u8]]),
}

/// A request: method, target, extra header fields and body, all borrowed.
///
/// `Host`, `Content-Length` and `Transfer-Encoding` are written by [`write_request`]; a `Host` in
/// `headers` replaces the automatic one, and `Connection: close` in `headers` makes the connection
/// close after this request's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The origin-form target: path and query, starting with `/` (or `*` for OPTIONS).
    pub target: &'a str,
    /// Extra header fields, written in order.
    pub headers: &'a [(&'a str, &'a str)],
    /// The content.
    pub body: Body<'a>,
}

impl<'a> Request<'a> {
    /// A request with no extra fields and no body.
    pub const fn new(method: Method, target: &'a str) -> Request<'a> {
        Request {
            method,
            target,
            headers: &[],
            body: Body::Empty,
        }
    }

    /// `GET target`.
    pub const fn get(target: &'a str) -> Request<'a> {
        Request::new(Method::Get, target)
    }

    /// `HEAD target`.
    pub const fn head(target: &'a str) -> Request<'a> {
        Request::new(Method::Head, target)
    }

    /// `POST target` with `body` framed by `Content-Length`.
    pub const fn post(target: &'a str, body: &'a [u8]) -> Request<'a> {
        Request {
            method: Method::Post,
            target,
            headers: &[],
            body: Body::Bytes(body),
        }
    }

    /// The same request with these extra header fields.
    pub const fn with_headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Request<'a> {
        self.headers = headers;
        self
    }

    /// The same request with this body.
    pub const fn with_body(mut self, body: Body<'a>) -> Request<'a> {
        self.body = body;
        self
    }

    /// `true` when `headers` asks for the connection to close after the response.
    pub fn asks_close(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("connection")
                && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
        })
    }
}

/// What [`write_request`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Bytes appended.
    pub len: usize,
    /// The request asked the server to close the connection after answering.
    pub close: bool,
}

/// Appends the wire form of `req` to `out`: request line, `Host: host` (unless `req` has one), the
/// optional correlation field `name: id`, `req.headers`, the framing field, and the body.
///
/// On error nothing is appended. Allocates only when `out` must grow.
pub fn write_request(
    out: &mut Vec<u8>,
    host: &str,
    req: &Request<'_>,
    correlation: Option<(&str, u64)>,
) -> Result<Written, RequestError> {
    validate(host, req, correlation)?;
    let start = out.len();
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !req
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("host"))
    {
        field(out, "Host", host.as_bytes());
    }
    if let Some((name, id)) = correlation {
        let mut digits = [0u8; 20];
        field(out, name, decimal(id, &mut digits));
    }
    for (name, value) in req.headers {
        field(out, name, value.as_bytes());
    }
    match req.body {
        Body::Empty if req.method.expects_body() => field(out, "Content-Length", b"0"),
        Body::Empty => {}
        Body::Bytes(b) => {
            let mut digits = [0u8; 20];
            field(out, "Content-Length", decimal(b.len() as u64, &mut digits));
        }
        Body::Chunked(_) => field(out, "Transfer-Encoding", b"chunked"),
    }
    out.extend_from_slice(b"\r\n");
    match req.body {
        Body::Empty => {}
        Body::Bytes(b) => out.extend_from_slice(b),
        Body::Chunked(chunks) => {
            for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                let mut digits = [0u8; 16];
                out.extend_from_slice(hex(chunk.len() as u64, &mut digits));
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        }
    }
    Ok(Written {
        len: out.len() - start,
        close: req.asks_close(),
    })
}

fn validate(
    host: &str,
    req: &Request<'_>,
    correlation: Option<(&str, u64)>,
) -> Result<(), RequestError> {
    let target_ok = (req.target.starts_with('/') || req.target == "*")
        && req.target.bytes().all(|b| b > b' ' && b != 0x7F);
    if !target_ok {
        return Err(RequestError::Target);
    }
    if !valid_value(host) {
        return Err(RequestError::HeaderValue);
    }
    if let Some((name, _)) = correlation {
        if !is_token(name) {
            return Err(RequestError::HeaderName);
        }
    }
    for (name, value) in req.headers {
        if !is_token(name) {
            return Err(RequestError::HeaderName);
        }
        if !valid_value(value) {
            return Err(RequestError::HeaderValue);
        }
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            return Err(RequestError::FramingHeader);
        }
    }
    Ok(())
}

fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `tchar` of RFC 9110 §5.6.2.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Field values may not carry CR, LF or NUL (RFC 9110 §5.5): they would split the field.
fn valid_value(s: &str) -> bool {
    !s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// Formats `n` in decimal into `buf`, returning the digits.
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn hex(mut n: u64, buf: &mut [u8; 16]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(host: &str, req: &Request<'_>) -> String {
        let mut out = Vec::new();
        let w = write_request(&mut out, host, req, None).unwrap();
        assert_eq!(w.len, out.len());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn get_with_host_and_fields() {
        let req = Request::get("/api/book?symbol=BTC").with_headers(&[("Accept", "*/*")]);
        assert_eq!(
            written("example.com:8080", &req),
            "GET /api/book?symbol=BTC HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n\r\n"
        );
    }

    #[test]
    fn bodies_are_framed() {
        assert_eq!(
            written("h", &Request::post("/o", b"{\"q\":1}")),
            "POST /o HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\n{\"q\":1}"
        );
        assert_eq!(
            written("h", &Request::new(Method::Put, "/e")),
            "PUT /e HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(
            written("h", &Request::new(Method::Delete, "/e")),
            "DELETE /e HTTP/1.1\r\nHost: h\r\n\r\n"
        );
        let chunks: [&[u8]; 3] = [b"hello ", b"", &[b'x'; 26]];
        let req = Request::new(Method::Post, "/c").with_body(Body::Chunked(&chunks));
        assert_eq!(
            written("h", &req),
            format!(
                "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
                 6\r\nhello \r\n1a\r\n{}\r\n0\r\n\r\n",
                "x".repeat(26)
            )
        );
    }

    #[test]
    fn own_host_correlation_and_close() {
        let req = Request::get("/").with_headers(&[("host", "other"), ("Connection", "close")]);
        let mut out = b"previous".to_vec();
        let w = write_request(&mut out, "h", &req, Some(("X-Req", 42))).unwrap();
        assert!(w.close);
        assert_eq!(
            &out[8..],
            b"GET / HTTP/1.1\r\nX-Req: 42\r\nhost: other\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn invalid_requests_write_nothing() {
        let cases: [(Request<'_>, RequestError); 6] = [
            (Request::get("x"), RequestError::Target),
            (Request::get("/a b"), RequestError::Target),
            (
                Request::get("/").with_headers(&[("Bad Name", "v")]),
                RequestError::HeaderName,
            ),
            (
                Request::get("/").with_headers(&[("X", "a\r\nInjected: 1")]),
                RequestError::HeaderValue,
            ),
            (
                Request::get("/").with_headers(&[("Content-Length", "5")]),
                RequestError::FramingHeader,
            ),
            (
                Request::get("/").with_headers(&[("", "v")]),
                RequestError::HeaderName,
            ),
        ];
        for (req, want) in cases {
            let mut out = b"keep".to_vec();
            assert_eq!(write_request(&mut out, "h", &req, None), Err(want));
            assert_eq!(out, b"keep");
        }
    }

    #[test]
    fn methods_parse_and_know_idempotence() {
        assert_eq!("get".parse::<Method>(), Ok(Method::Get));
        assert_eq!("PATCH".parse::<Method>(), Ok(Method::Patch));
        assert_eq!("BREW".parse::<Method>(), Err(RequestError::Method));
        assert!(Method::Get.is_idempotent() && Method::Put.is_idempotent());
        assert!(!Method::Post.is_idempotent() && !Method::Patch.is_idempotent());
    }

    #[test]
    fn number_formatting() {
        let mut d = [0u8; 20];
        assert_eq!(decimal(0, &mut d), b"0");
        assert_eq!(decimal(u64::MAX, &mut d), b"18446744073709551615");
        let mut h = [0u8; 16];
        assert_eq!(hex(0, &mut h), b"0");
        assert_eq!(hex(0xabc, &mut h), b"abc");
        assert_eq!(hex(u64::MAX, &mut h), b"ffffffffffffffff");
    }
}
