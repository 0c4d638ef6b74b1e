//! The opening handshake, client side (RFC 6455 §4.1, §4.2.2, §11.3).
//!
//! [`ClientRequest`] describes what to ask for (URL, `Origin`, extra headers, subprotocols);
//! [`write_request`] renders the GET request with a fresh 16-byte key; [`parse_response`] validates
//! the server's answer with `httparse`: status 101, `Upgrade: websocket`, `Connection: Upgrade`,
//! `Sec-WebSocket-Accept` = base64(SHA-1(key + GUID)), a subprotocol only from those offered, and no
//! extension but permessage-deflate when it was offered ([`parse_response_deflate`], RFC 7692 §7.1). Bytes after the response head belong to the first frames.

use base64::Engine as _;
use sha1::{Digest, Sha1};

use super::deflate::{self, DeflateConfig, DeflateError, DeflateParams};
use super::error::{HandshakeError, UsageError};
use super::mask::KeyGen;
use super::url::WsUrl;

/// The GUID §1.3 appends to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The most response headers parsed (a 101 answer carries a handful).
const MAX_HEADERS: usize = 64;

/// A base64 key (`Sec-WebSocket-Key`, 16 random bytes) or accept value (20 bytes of SHA-1):
/// 24 and 28 characters.
pub(crate) type Key = [u8; 24];
/// The `Sec-WebSocket-Accept` value for a key.
pub type AcceptValue = [u8; 28];

/// What the client asks for in its opening handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    url: WsUrl,
    origin: Option<String>,
    headers: Vec<(String, String)>,
    subprotocols: Vec<String>,
}

impl ClientRequest {
    /// A request for `url` with no origin, extra header or subprotocol.
    pub fn new(url: WsUrl) -> ClientRequest {
        ClientRequest {
            url,
            origin: None,
            headers: Vec::new(),
            subprotocols: Vec::new(),
        }
    }

    /// Sets the `Origin` header.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Adds a header (appended after the ones the protocol needs; earlier ones are kept).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Offers a subprotocol (`Sec-WebSocket-Protocol`), in order of preference.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.subprotocols.push(protocol.into());
        self
    }

    /// The URL.
    pub fn url(&self) -> &WsUrl {
        &self.url
    }

    /// The subprotocols offered.
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// Checks that nothing the caller supplied can break the request apart (CR, LF, NUL, or a
    /// header name that is not an HTTP token).
    pub fn validate(&self) -> Result<(), UsageError> {
        let value_ok = |v: &str| !v.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0));
        let token_ok = |v: &str| {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        let ok = self.origin.as_deref().is_none_or(value_ok)
            && self.headers.iter().all(|(k, v)| token_ok(k) && value_ok(v))
            && self.subprotocols.iter().all(|p| token_ok(p));
        if ok {
            Ok(())
        } else {
            Err(UsageError::Header)
        }
    }
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64.
pub(crate) fn generate_key(rng: &mut KeyGen) -> Key {
    let mut raw = [0u8; 16];
    rng.fill(&mut raw);
    let mut key = [0u8; 24];
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(raw, &mut key)
        .unwrap_or(0);
    debug_assert_eq!(n, 24);
    key
}

/// The `Sec-WebSocket-Accept` value a server must answer to `key` (§4.2.2 step 5.4).
pub fn accept_value(key: &[u8]) -> AcceptValue {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    let digest = sha.finalize();
    let mut out = [0u8; 28];
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(digest, &mut out)
        .unwrap_or(0);
    debug_assert_eq!(n, 28);
    out
}

/// Appends the GET request for `req` with `key` to `out` (§4.1), with the permessage-deflate
/// offer when `deflate` is given.
pub(crate) fn write_request(
    req: &ClientRequest,
    key: &Key,
    deflate: Option<&DeflateConfig>,
    out: &mut Vec<u8>,
) {
    use std::io::Write as _;
    let url = &req.url;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
        url.resource(),
        url.host_header(),
        std::str::from_utf8(key).unwrap_or(""),
    );
    if let Some(origin) = &req.origin {
        let _ = write!(out, "Origin: {origin}\r\n");
    }
    if !req.subprotocols.is_empty() {
        let _ = write!(
            out,
            "Sec-WebSocket-Protocol: {}\r\n",
            req.subprotocols.join(", ")
        );
    }
    if let Some(d) = deflate {
        d.write_offer(out);
    }
    for (k, v) in &req.headers {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A validated handshake response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Length of the response head; the bytes after it are frames.
    pub head_len: usize,
    /// Index (into the offered list) of the subprotocol the server chose.
    pub subprotocol: Option<usize>,
    /// The permessage-deflate parameters, when it was offered and accepted.
    pub deflate: Option<DeflateParams>,
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fn malformed(e: httparse::Error) -> HandshakeError {
    HandshakeError::Malformed(match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "not HTTP/1.x",
    })
}

/// The `Sec-WebSocket-Accept` value of a complete response head in `buf`, if it has one of the
/// right length: what a replayed session's recorded response answered (see
/// [`Websocket::replay`](super::Websocket::replay)).
pub(crate) fn response_accept(buf: &[u8]) -> Option<AcceptValue> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    if !matches!(resp.parse(buf), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let value = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))?
        .value
        .trim_ascii();
    value.try_into().ok()
}

/// Parses and validates the response head at the front of `buf`, for a request that offered no
/// extension.
///
/// `Ok(None)` means the head is incomplete; the caller enforces its own size limit on that.
pub fn parse_response(
    buf: &[u8],
    accept: &AcceptValue,
    offered: &[String],
) -> Result<Option<Accepted>, HandshakeError> {
    parse_response_deflate(buf, accept, offered, None)
}

/// As [`parse_response`], for a request that offered permessage-deflate as `deflate` says (none
/// when `None`): an answer accepting it yields [`Accepted::deflate`]; an answer it does not fit
/// fails with [`HandshakeError::Deflate`] (RFC 7692 §7.1), any other extension with
/// [`HandshakeError::Extension`].
pub fn parse_response_deflate(
    buf: &[u8],
    accept: &AcceptValue,
    offered: &[String],
    deflate: Option<&DeflateConfig>,
) -> Result<Option<Accepted>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf).map_err(malformed)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        return Err(HandshakeError::Status(code));
    }
    let (mut upgrade, mut connection, mut accepted) = (false, false, false);
    let mut subprotocol = None;
    let mut params = None;
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= has_token(h.value, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= has_token(h.value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            if h.value.trim_ascii() != accept {
                return Err(HandshakeError::Accept);
            }
            accepted = true;
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            for element in h.value.split(|&b| b == b',') {
                if element.trim_ascii().is_empty() {
                    continue;
                }
                let (ext, ext_params) = deflate::split_element(element);
                let Some(cfg) = deflate.filter(|_| deflate::is_deflate(ext)) else {
                    return Err(HandshakeError::Extension);
                };
                if params.is_some() {
                    return Err(DeflateError::Duplicate.into());
                }
                params = Some(deflate::negotiate(ext_params, cfg, true)?);
            }
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            let v = h.value.trim_ascii();
            let i = offered
                .iter()
                .position(|p| p.as_bytes() == v)
                .ok_or(HandshakeError::Subprotocol)?;
            if subprotocol.replace(i).is_some() {
                return Err(HandshakeError::Subprotocol);
            }
        }
    }
    if !upgrade {
        return Err(HandshakeError::Upgrade);
    }
    if !connection {
        return Err(HandshakeError::Connection);
    }
    if !accepted {
        return Err(HandshakeError::Accept);
    }
    Ok(Some(Accepted {
        head_len,
        subprotocol,
        deflate: params,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_KEY: &[u8; 24] = b"dGhlIHNhbXBsZSBub25jZQ==";

    fn response(extra: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn the_accept_value_of_a_recorded_response() {
        assert_eq!(
            response_accept(&response("")),
            Some(*b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(response_accept(b"HTTP/1.1 101 Switching"), None);
        assert_eq!(
            response_accept(b"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: short\r\n\r\n"),
            None
        );
    }

    #[test]
    fn accept_value_matches_rfc_6455_example() {
        // §1.3.
        assert_eq!(&accept_value(RFC_KEY), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn request_carries_host_port_resource_and_options() {
        let url = WsUrl::parse("ws://[::1]:9001/chat?room=1").unwrap();
        let req = ClientRequest::new(url)
            .origin("http://example.com")
            .subprotocol("chat")
            .subprotocol("superchat")
            .header("X-Api-Key", "k1");
        req.validate().unwrap();
        let mut out = Vec::new();
        write_request(&req, RFC_KEY, None, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with("GET /chat?room=1 HTTP/1.1\r\nHost: [::1]:9001\r\n"),
            "{s}"
        );
        for line in [
            "Upgrade: websocket\r\n",
            "Connection: Upgrade\r\n",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "Sec-WebSocket-Version: 13\r\n",
            "Origin: http://example.com\r\n",
            "Sec-WebSocket-Protocol: chat, superchat\r\n",
            "X-Api-Key: k1\r\n",
        ] {
            assert!(s.contains(line), "missing {line:?} in {s}");
        }
        assert!(s.ends_with("\r\n\r\n"));
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Request::new(&mut headers);
        assert!(parsed.parse(s.as_bytes()).unwrap().is_complete());
    }

    #[test]
    fn header_injection_is_refused() {
        let url = WsUrl::parse("ws://a/").unwrap();
        let bad = ClientRequest::new(url.clone()).header("X", "a\r\nEvil: 1");
        assert_eq!(bad.validate(), Err(UsageError::Header));
        let bad = ClientRequest::new(url.clone()).header("X Y", "a");
        assert_eq!(bad.validate(), Err(UsageError::Header));
        let bad = ClientRequest::new(url).subprotocol("a, b");
        assert_eq!(bad.validate(), Err(UsageError::Header));
    }

    #[test]
    fn keys_are_fresh_base64_of_16_bytes() {
        let mut rng = KeyGen::from_seed(1);
        let a = generate_key(&mut rng);
        let b = generate_key(&mut rng);
        assert_ne!(a, b);
        let raw = base64::engine::general_purpose::STANDARD.decode(a).unwrap();
        assert_eq!(raw.len(), 16);
    }

    #[test]
    fn valid_response_and_trailing_frame_bytes() {
        let accept = accept_value(RFC_KEY);
        let mut buf = response("Sec-WebSocket-Protocol: chat\r\n");
        let head = buf.len();
        buf.extend_from_slice(&[0x81, 0x00]);
        let offered = vec!["superchat".to_string(), "chat".to_string()];
        let ok = parse_response(&buf, &accept, &offered).unwrap().unwrap();
        assert_eq!(
            ok,
            Accepted {
                head_len: head,
                subprotocol: Some(1),
                deflate: None,
            }
        );
        for i in 0..head {
            assert_eq!(
                parse_response(&buf[..i], &accept, &offered),
                Ok(None),
                "prefix {i}"
            );
        }
        // Token lists and case are accepted.
        let lenient =
            b"HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n\
                        sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert!(parse_response(lenient, &accept, &[]).unwrap().is_some());
    }

    #[test]
    fn invalid_responses() {
        let accept = accept_value(RFC_KEY);
        let check = |buf: &[u8], offered: &[String]| parse_response(buf, &accept, offered);
        assert_eq!(
            check(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", &[]),
            Err(HandshakeError::Status(404))
        );
        let no_upgrade = b"HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n\
                           Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(check(no_upgrade, &[]), Err(HandshakeError::Upgrade));
        let no_conn = b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n\
                        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(check(no_conn, &[]), Err(HandshakeError::Connection));
        let wrong = b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                      Sec-WebSocket-Accept: AAAALMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(check(wrong, &[]), Err(HandshakeError::Accept));
        let missing = b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        assert_eq!(check(missing, &[]), Err(HandshakeError::Accept));
        assert_eq!(
            check(
                &response("Sec-WebSocket-Protocol: other\r\n"),
                &["chat".into()]
            ),
            Err(HandshakeError::Subprotocol)
        );
        assert_eq!(
            check(&response("Sec-WebSocket-Protocol: chat\r\n"), &[]),
            Err(HandshakeError::Subprotocol)
        );
        assert_eq!(
            check(
                &response("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                &[]
            ),
            Err(HandshakeError::Extension)
        );
        assert!(matches!(
            check(b"HTTX/1.1 101\r\n\r\n", &[]),
            Err(HandshakeError::Malformed(_))
        ));
    }
}
