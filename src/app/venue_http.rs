//! The venue's small REST endpoint: a thread-per-connection HTTP/1.1 server with keep-alive, for
//! the demo and for tests of the HTTP client.
//!
//! - `GET /api/time` → `{"server_ns":N}` (nanoseconds since the Unix epoch);
//! - `GET /api/book?symbol=X` → a small JSON order book for `X` (5 levels a side);
//! - `POST /api/order` → `{"status":"accepted","order_id":N,"received_bytes":LEN}`;
//! - anything else → 404 (unknown path) or 405 (wrong method), as JSON.
//!
//! Requests are parsed with httparse (not hotwire's client code, so the two check each other).
//! Bodies must have a Content-Length; pipelined requests are answered in order; `Connection:
//! close` and HTTP/1.0 without keep-alive end the connection after the response.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::venue_chaos::{Chaos, ConnChaos, Verdict};
use super::venue_tls::{Conn, Socket};

/// The largest request head or body accepted.
const MAX_REQUEST: usize = 1024 * 1024;

/// Serves the REST API on `listener` from a background thread (one more thread per connection)
/// until `stop` is set, over TLS with `tls` when given (https). Returns once the accept thread is
/// running.
pub fn spawn_rest(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    spawn_rest_with_chaos(listener, tls, stop, None)
}

/// [`spawn_rest`] with the venue's chaos mode on every connection, when given.
pub(crate) fn spawn_rest_with_chaos(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: Arc<AtomicBool>,
    chaos: Option<Arc<Chaos>>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let orders = Arc::new(AtomicU64::new(0));
    std::thread::Builder::new()
        .name("venue-rest".into())
        .spawn(move || accept_loop(&listener, tls, &stop, &orders, chaos.as_ref()))?;
    Ok(())
}

fn accept_loop(
    listener: &TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: &Arc<AtomicBool>,
    orders: &Arc<AtomicU64>,
    chaos: Option<&Arc<Chaos>>,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let (stop, orders, tls) = (stop.clone(), orders.clone(), tls.clone());
                let mut chaos = ConnChaos::new(chaos);
                let spawned = std::thread::Builder::new()
                    .name("venue-rest-conn".into())
                    .spawn(move || {
                        let served = stream
                            .set_nonblocking(false)
                            .and_then(|()| Conn::new(stream, tls.as_ref()))
                            .and_then(|conn| serve(conn, &stop, &orders, &mut chaos));
                        if let Err(e) = served {
                            log::debug!("venue REST connection from {peer}: {e}");
                        }
                    });
                if let Err(e) = spawned {
                    log::warn!("venue REST: cannot start a connection thread: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                log::warn!("venue REST: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// One parsed request, owned just long enough to answer it.
struct Parsed {
    method: String,
    target: String,
    body_len: usize,
    close: bool,
    head_len: usize,
}

fn serve(
    mut stream: Conn,
    stop: &AtomicBool,
    orders: &AtomicU64,
    chaos: &mut ConnChaos,
) -> io::Result<()> {
    stream.tcp().set_nodelay(true)?;
    // Wake up now and then to notice `stop`.
    stream
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    let mut out = Vec::with_capacity(4096);
    loop {
        // Answer every complete request held (pipelining), then write the answers at once.
        loop {
            let parsed = match parse(&buf) {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(status) => {
                    respond(&mut out, status, r#"{"error":"bad request"}"#, true);
                    stream.write_all(&out)?;
                    return Ok(());
                }
            };
            if buf.len() < parsed.head_len + parsed.body_len {
                break;
            }
            let (status, body) = route(&parsed, orders);
            respond(&mut out, status, &body, parsed.close);
            buf.drain(..parsed.head_len + parsed.body_len);
            if parsed.close {
                stream.write_all(&out)?;
                return Ok(());
            }
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if stop.load(Ordering::Relaxed) || chaos.strike(stream.tcp()) == Verdict::Close {
            return Ok(());
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > 2 * MAX_REQUEST {
                    return Ok(());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `Ok(None)` until a whole head is buffered; `Err(status)` for a request to refuse.
fn parse(buf: &[u8]) -> Result<Option<Parsed>, u16> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_REQUEST => return Err(431),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(400),
    };
    let mut body_len = 0usize;
    let mut close = req.version == Some(0);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body_len = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .filter(|&n| n <= MAX_REQUEST)
                .ok_or(400u16)?;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only Content-Length bodies: refuse rather than misframe.
            return Err(501);
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            if v.split(',').any(|t| t.trim() == "close") {
                close = true;
            }
            if v.split(',').any(|t| t.trim() == "keep-alive") {
                close = false;
            }
        }
    }
    Ok(Some(Parsed {
        method: req.method.unwrap_or("").to_owned(),
        target: req.path.unwrap_or("").to_owned(),
        body_len,
        close,
        head_len,
    }))
}

fn route(req: &Parsed, orders: &AtomicU64) -> (u16, String) {
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    match (req.method.as_str(), path) {
        ("GET", "/api/time") => {
            let ns = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            (200, format!(r#"{{"server_ns":{ns}}}"#))
        }
        ("GET", "/api/book") => {
            let symbol = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("symbol="))
                .unwrap_or("BTC-USD");
            let valid = !symbol.is_empty()
                && symbol.len() <= 32
                && symbol
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if valid {
                (200, book(symbol))
            } else {
                (400, r#"{"error":"bad symbol"}"#.to_owned())
            }
        }
        ("POST", "/api/order") => {
            let id = orders.fetch_add(1, Ordering::Relaxed) + 1;
            (
                200,
                format!(
                    r#"{{"status":"accepted","order_id":{id},"received_bytes":{}}}"#,
                    req.body_len
                ),
            )
        }
        (_, "/api/time" | "/api/book" | "/api/order") => {
            (405, r#"{"error":"method not allowed"}"#.to_owned())
        }
        _ => (404, r#"{"error":"not found"}"#.to_owned()),
    }
}

/// A deterministic book around a price derived from the symbol's name.
fn book(symbol: &str) -> String {
    let mid = 100 + symbol.bytes().map(u64::from).sum::<u64>() % 900;
    let side = |sign: i64| {
        (1..=5)
            .map(|i| {
                let price = mid as i64 * 100 + sign * i * 5;
                format!("[{}.{:02},{}]", price / 100, price % 100, i * 3)
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        r#"{{"symbol":"{symbol}","bids":[{}],"asks":[{}]}}"#,
        side(-1),
        side(1)
    )
}

fn respond(out: &mut Vec<u8>, status: u16, body: &str, close: bool) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Not Implemented",
    };
    let connection = if close { "close" } else { "keep-alive" };
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
        body.len()
    );
}

#[cfg(all(test, feature = "http"))]
mod tests {
    use super::*;
    use crate::http::{HttpClient, HttpConfig, Request};
    use crate::stream::{wait_connected, TcpOptions};

    #[test]
    fn rest_api_answers_with_keep_alive_and_pipelining() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        spawn_rest(listener, None, stop.clone()).unwrap();
        let t = Duration::from_secs(5);
        let mut tcp = crate::stream::TcpStream::connect(addr, &TcpOptions::default()).unwrap();
        wait_connected(&mut tcp, t).unwrap();
        let mut c = HttpClient::new(tcp, addr.to_string(), HttpConfig::default());

        let r = c.request(&Request::get("/api/time"), t).unwrap();
        let body = std::str::from_utf8(r.body()).unwrap();
        assert_eq!(r.status(), 200);
        assert!(body.starts_with(r#"{"server_ns":"#), "{body}");
        let r = c.request(&Request::get("/api/book?symbol=ETH"), t).unwrap();
        let book: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(book["symbol"], "ETH");
        assert_eq!(book["bids"].as_array().unwrap().len(), 5);
        let r = c
            .request(&Request::post("/api/order", b"{\"qty\":5}"), t)
            .unwrap();
        let ack: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(
            (ack["order_id"].as_u64(), ack["received_bytes"].as_u64()),
            (Some(1), Some(9))
        );

        c.send(&Request::get("/nope")).unwrap();
        c.send(&Request::new(crate::http::Method::Delete, "/api/order"))
            .unwrap();
        c.send(&Request::post("/api/order", b"x")).unwrap();
        assert_eq!(c.wait_response(t).unwrap().status(), 404);
        assert_eq!(c.wait_response(t).unwrap().status(), 405);
        assert_eq!(c.wait_response(t).unwrap().status(), 200);
        let r = c
            .request(
                &Request::get("/api/time").with_headers(&[("Connection", "close")]),
                t,
            )
            .unwrap();
        assert!(r.closes_connection());
        assert_eq!(c.responses(), 7);
        stop.store(true, Ordering::Relaxed);
    }
}
