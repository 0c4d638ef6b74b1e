//! HTTP/1.1 client (RFC 9112 message syntax, RFC 9110 semantics).
//!
//! | file | RFC 9112 (unless noted) |
//! |------|-------------------------|
//! | `request` ([`Request`], [`write_request`]) | §3 request line, §3.2 `Host`, §5 field lines, §6.2 Content-Length, §7.1 chunked (sending) |
//! | `response` ([`Response`], [`parse_head`]) | §4 status line, §5 fields, §6.3 message body length, §9.3 persistence; RFC 9110 §15.2 1xx |
//! | `body` ([`BodyDecoder`]) | §6.2 Content-Length, §6.3 item 8 close-delimited, §7.1 chunked with §7.1.1 extensions and §7.1.2 trailers |
//! | `client` ([`HttpClient`]) | §9.3 persistence, §9.3.2 pipelining, §9.6 tear-down (`Connection: close` both ways) |
//! | `pool` ([`HttpPool`]) | §9.3.1 retrying requests (RFC 9110 §9.2.2 idempotent methods), §9.4 concurrency |
//! | `url` ([`HttpUrl`]) | RFC 9110 §4.2.1–§4.2.2 `http` / `https` URIs |
//!
//! The codec is sans-IO: [`write_request`] appends a request to a buffer, [`parse_head`] turns the
//! bytes received so far into a [`Head`] (or `Ok(None)`: need more bytes), and [`BodyDecoder`]
//! turns body bytes into data slices. [`HttpClient<S>`] puts them on any
//! [`Stream`](crate::stream::Stream) — plain TCP, TLS, a recording — with one read and one write
//! buffer allocated up front: a warm keep-alive connection sends requests and receives responses
//! without allocating, and a [`Response`] borrows its status, fields and body from the buffer.
//!
//! ```no_run
//! use std::time::Duration;
//! use hotwire::http::{HttpClient, HttpConfig, HttpUrl, Request};
//! use hotwire::stream::{wait_connected, TcpOptions, TcpStream};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let url = HttpUrl::parse("http://127.0.0.1:8080/api/time")?;
//! let mut tcp = TcpStream::connect("127.0.0.1:8080".parse()?, &TcpOptions::default())?;
//! wait_connected(&mut tcp, Duration::from_secs(5))?;
//! let mut http = HttpClient::new(tcp, url.host_header(), HttpConfig::default());
//! // Pipelined: both requests go out before the first response arrives.
//! http.send(&Request::get("/api/time"))?;
//! http.send(&Request::get("/api/book?symbol=BTC"))?;
//! for _ in 0..2 {
//!     let response = http.wait_response(Duration::from_secs(5))?;
//!     println!("{} {} bytes", response.status(), response.body().len());
//! }
//! # Ok(()) }
//! ```
//!
//! [`HttpPool`] keeps idle connections per (host, port, TLS) with certificate verification on, and
//! retries idempotent requests whose connection died before any response byte. [`HttpEndpoint`]
//! runs a request schedule as an endpoint of the [`IoService`](crate::service::IoService).
//!
//! Errors are one enum, [`HttpError`]; after a terminal one the connection is not reused.

// One public path per type: the submodules are crate-private, their public items re-exported here.
pub(crate) mod body;
pub(crate) mod client;
pub(crate) mod endpoint;
pub(crate) mod error;
pub(crate) mod pool;
pub(crate) mod request;
pub(crate) mod response;
mod send;
pub(crate) mod url;

pub use body::{BodyDecoder, Step, MAX_CHUNK_LINE};
pub use client::{HttpClient, HttpConfig, MAX_INTERIM};
pub use endpoint::{
    HttpEndpoint, HttpHandler, HttpOut, HttpStats, RequestSpec, MAX_SPEC_HEADERS,
    RESPONSES_PER_POLL,
};
pub use error::{ChunkError, HttpError, RequestError, UrlError, UsageError};
pub use pool::{connect, HttpConn, HttpPool, PoolStats, PooledResponse};
pub use request::{write_request, Body, Method, Request, Written};
pub use response::{parse_head, BodyKind, FieldSpan, Head, Limits, Response, MAX_HEADERS_CAP};
pub use send::HttpSender;
pub use url::{HttpUrl, MAX_URL_LEN};
