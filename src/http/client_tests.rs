//! Client tests over an in-memory stream: framing across reads, pipelining, close handling,
//! errors, sinks and buffer reuse.

use std::io::{self, Read, Write};

use super::*;
use crate::http::{Body, ChunkError, Method};

/// A scripted peer: serves `input` at most `step` bytes per read, then `WouldBlock` (or end of
/// stream once `eof` is set); records what is written, accepting at most `write_cap` bytes a call.
#[derive(Debug, Default)]
struct Mock {
    input: Vec<u8>,
    pos: usize,
    step: usize,
    eof: bool,
    written: Vec<u8>,
    write_cap: usize,
    /// `flush` calls that still return `WouldBlock` (bytes held below, as TLS does).
    flush_blocks: usize,
}

impl Mock {
    fn new(step: usize) -> Mock {
        Mock {
            step,
            write_cap: usize::MAX,
            ..Mock::default()
        }
    }
    fn push(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }
}

impl Read for Mock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.input.len() - self.pos).min(buf.len()).min(self.step);
        if n == 0 {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Mock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.write_cap);
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.flush_blocks > 0 {
            self.flush_blocks -= 1;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    }
}

impl Stream for Mock {}

fn client(step: usize) -> HttpClient<Mock> {
    HttpClient::new(Mock::new(step), "example.com", HttpConfig::default())
}

/// Polls until a response completes (the mock never blocks for real), returning (status, body).
fn next(c: &mut HttpClient<Mock>) -> Result<(u16, Vec<u8>), HttpError> {
    for _ in 0..100_000 {
        if let Some(r) = c.poll_response()? {
            return Ok((r.status(), r.body().to_vec()));
        }
        if c.get_ref().pos == c.get_ref().input.len() && !c.get_ref().eof {
            c.get_mut().eof = true;
        }
    }
    panic!("no response")
}

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
    4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n";

#[test]
fn framings_decode_at_every_read_size() {
    let mut wire = Vec::new();
    wire.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    wire.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    wire.extend_from_slice(CHUNKED);
    wire.extend_from_slice(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
    wire.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n");
    wire.extend_from_slice(b"HTTP/1.1 304 Not Modified\r\n\r\n");
    for step in [1, 2, 3, 7, 64, 4096] {
        let mut c = client(step);
        c.get_mut().push(&wire);
        for req in [
            Request::get("/a"),
            Request::get("/b"),
            Request::get("/c"),
            Request::head("/d"),
            Request::get("/e"),
        ] {
            c.send(&req).unwrap();
        }
        assert_eq!(c.in_flight(), 5);
        assert_eq!(
            next(&mut c).unwrap(),
            (200, b"hello".to_vec()),
            "step {step}"
        );
        assert_eq!(
            next(&mut c).unwrap(),
            (200, b"Wikipedia in\r\n\r\nchunks.".to_vec()),
            "step {step}"
        );
        assert_eq!(next(&mut c).unwrap(), (204, vec![]));
        assert_eq!(next(&mut c).unwrap(), (200, vec![]), "HEAD has no body");
        assert_eq!(next(&mut c).unwrap(), (304, vec![]));
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.responses(), 5);
        assert!(c.is_reusable());
    }
}

#[test]
fn requests_are_written_in_order_and_partially() {
    let mut c = client(4096);
    c.get_mut().write_cap = 0;
    c.send(&Request::get("/one")).unwrap();
    c.send(&Request::post("/two", b"body")).unwrap();
    assert!(c.wants_write());
    assert!(c.get_ref().written.is_empty());
    c.get_mut().write_cap = 5;
    c.flush().unwrap();
    assert!(!c.wants_write());
    assert_eq!(
        c.get_ref().written,
        b"GET /one HTTP/1.1\r\nHost: example.com\r\n\r\n\
          POST /two HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4\r\n\r\nbody"
    );
}

#[test]
fn pipeline_depth_is_enforced_without_side_effects() {
    let config = HttpConfig {
        max_in_flight: 2,
        ..HttpConfig::default()
    };
    let mut c = HttpClient::new(Mock::new(100), "h", config);
    c.send(&Request::get("/1")).unwrap();
    c.send(&Request::get("/2")).unwrap();
    let before = c.get_ref().written.len();
    assert!(matches!(
        c.send(&Request::get("/3")),
        Err(HttpError::Usage(UsageError::PipelineFull(2)))
    ));
    assert!(matches!(
        c.send(&Request::get("bad target")),
        Err(HttpError::Usage(UsageError::PipelineFull(2)))
    ));
    assert_eq!(c.get_ref().written.len(), before);
    c.get_mut()
        .push(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    next(&mut c).unwrap();
    assert!(matches!(
        c.send(&Request::get("bad target")),
        Err(HttpError::Request(_))
    ));
    c.send(&Request::get("/3")).unwrap();
}

#[test]
fn connection_close_is_honoured_both_ways() {
    // Sent: no request after one that asked to close.
    let mut c = client(100);
    c.send(&Request::get("/").with_headers(&[("Connection", "close")]))
        .unwrap();
    assert!(matches!(
        c.send(&Request::get("/")),
        Err(HttpError::Usage(UsageError::Closing))
    ));

    // Received: the queued second request is reported as never answered (retryable).
    let mut c = client(100);
    c.send(&Request::get("/1")).unwrap();
    c.send(&Request::get("/2")).unwrap();
    c.get_mut()
        .push(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
    let r = c.poll_response().unwrap().unwrap();
    assert!(r.closes_connection());
    assert!(!c.is_reusable());
    let e = c.poll_response().unwrap_err();
    assert!(
        matches!(e, HttpError::Closed) && e.before_response(),
        "{e:?}"
    );
}

#[test]
fn close_delimited_body_ends_with_the_stream() {
    let mut c = client(3);
    c.send(&Request::get("/")).unwrap();
    c.get_mut()
        .push(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
    assert_eq!(next(&mut c).unwrap(), (200, b"until the end".to_vec()));
    assert!(!c.is_reusable());
}

#[test]
fn peer_misbehaviour_gives_typed_errors() {
    type Check = fn(&HttpError) -> bool;
    let cases: [(&[u8], Check); 7] = [
        (b"", |e| matches!(e, HttpError::Closed)),
        (b"HTTP/1.1 200 OK\r\nContent-Le", |e| {
            matches!(e, HttpError::ClosedInHead)
        }),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", |e| {
            matches!(e, HttpError::IncompleteBody { received: 3 })
        }),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
            |e| matches!(e, HttpError::Chunk(ChunkError::Size)),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            |e| matches!(e, HttpError::ContentLength),
        ),
        (b"garbage\r\n\r\n", |e| matches!(e, HttpError::Head(_))),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", |e| {
            matches!(e, HttpError::UnexpectedUpgrade)
        }),
    ];
    for (wire, check) in cases {
        for step in [1, 1000] {
            let mut c = client(step);
            c.send(&Request::get("/")).unwrap();
            c.get_mut().push(wire);
            c.get_mut().eof = true;
            let e = next(&mut c).unwrap_err();
            assert!(check(&e), "{wire:?}: {e:?}");
            assert!(matches!(
                c.poll_response(),
                Err(HttpError::Usage(UsageError::Failed))
            ));
            assert!(!c.is_reusable());
        }
    }
}

#[test]
fn unsolicited_bytes_fail_the_connection() {
    let mut c = client(100);
    c.get_mut()
        .push(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(matches!(c.poll_response(), Err(HttpError::Unsolicited)));
    // A HEAD answered with a body: the body is unsolicited.
    let mut c = client(100);
    c.send(&Request::head("/")).unwrap();
    c.get_mut()
        .push(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody");
    assert_eq!(next(&mut c).unwrap().0, 200);
    assert!(matches!(c.poll_response(), Err(HttpError::Unsolicited)));
}

#[test]
fn correlation_ids_catch_answers_to_the_wrong_request() {
    let config = HttpConfig {
        correlation_header: Some("X-Req".into()),
        ..HttpConfig::default()
    };
    let mut c = HttpClient::new(Mock::new(100), "h", config.clone());
    c.send(&Request::get("/a")).unwrap();
    c.send(&Request::get("/b")).unwrap();
    let sent = String::from_utf8(c.get_ref().written.clone()).unwrap();
    assert!(sent.contains("X-Req: 1\r\n") && sent.contains("X-Req: 2\r\n"));
    c.get_mut()
        .push(b"HTTP/1.1 200 OK\r\nX-Req: 1\r\nContent-Length: 0\r\n\r\n");
    c.get_mut()
        .push(b"HTTP/1.1 200 OK\r\nX-Req: 1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(next(&mut c).unwrap().0, 200);
    assert!(matches!(
        next(&mut c),
        Err(HttpError::Mismatched {
            expected: 2,
            got: Some(1)
        })
    ));
}

#[test]
fn limits_are_enforced_by_the_client() {
    let config = HttpConfig {
        limits: Limits {
            max_headers: 4,
            max_head: 256,
            max_body: 100,
        },
        read_buffer: 1024,
        ..HttpConfig::default()
    };
    let huge_head = format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(1000));
    let long_chunked = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{}",
        "40\r\n".to_string() + &"b".repeat(64) + "\r\n40\r\n"
    );
    type Check = fn(&HttpError) -> bool;
    let cases: [(String, Check); 3] = [
        (huge_head, |e| {
            matches!(e, HttpError::HeadTooLarge { max: 256 })
        }),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n".into(),
            |e| matches!(e, HttpError::BodyTooLarge { max: 100 }),
        ),
        (long_chunked, |e| {
            matches!(e, HttpError::BodyTooLarge { max: 100 })
        }),
    ];
    for (wire, check) in cases {
        let mut c = HttpClient::new(Mock::new(50), "h", config.clone());
        c.send(&Request::get("/")).unwrap();
        c.get_mut().push(wire.as_bytes());
        let e = next(&mut c).unwrap_err();
        assert!(check(&e), "{e:?}");
    }
}

#[test]
fn bodies_can_stream_into_a_sink() {
    let mut c = client(5);
    c.send(&Request::get("/")).unwrap();
    c.send(&Request::get("/")).unwrap();
    c.get_mut().push(CHUNKED);
    c.get_mut()
        .push(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond");
    let mut sink = Vec::new();
    loop {
        if let Some(r) = c.poll_response_to(&mut sink).unwrap() {
            assert_eq!((r.body(), r.body_len()), (&b""[..], 23));
            break;
        }
    }
    assert_eq!(sink, b"Wikipedia in\r\n\r\nchunks.");
    assert_eq!(next(&mut c).unwrap(), (200, b"second".to_vec()));
}

#[test]
fn large_bodies_grow_the_buffer_once_and_reuse_it() {
    let config = HttpConfig {
        read_buffer: 1024,
        ..HttpConfig::default()
    };
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut c = HttpClient::new(Mock::new(8192), "h", config);
    for _ in 0..3 {
        c.send(&Request::get("/big")).unwrap();
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        c.get_mut().push(head.as_bytes());
        c.get_mut().push(&body);
        let (status, got) = next(&mut c).unwrap();
        assert_eq!(status, 200);
        assert!(got == body, "body differs");
    }
    let cap = c.buf.len();
    assert!((200_000..=600_000).contains(&cap), "{cap}");
    c.send(&Request::new(Method::Put, "/x").with_body(Body::Bytes(b"1")))
        .unwrap();
    c.get_mut()
        .push(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(next(&mut c).unwrap().0, 201);
    assert_eq!(c.buf.len(), cap);
}

#[test]
fn idle_close_by_the_server_is_closed() {
    let mut c = client(100);
    c.get_mut().eof = true;
    assert!(matches!(c.poll_response(), Err(HttpError::Closed)));
}

#[test]
fn a_blocked_stream_flush_is_retried() {
    let mut c = client(100);
    c.get_mut().flush_blocks = 2;
    c.send(&Request::get("/")).unwrap();
    assert!(
        c.wants_write(),
        "bytes held by the stream count as unwritten"
    );
    assert!(c.poll_response().unwrap().is_none());
    assert!(c.wants_write());
    assert!(c.poll_response().unwrap().is_none());
    assert!(!c.wants_write());
    assert_eq!(c.get_ref().flush_blocks, 0);
}
