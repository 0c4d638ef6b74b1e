//! The HTTP/1.1 client against a scripted raw TCP server that misbehaves: every case ends in its
//! typed error within the timeout — no panic, no hang — and the pool retries only idempotent
//! requests whose connection died before any response byte.
#![cfg(all(feature = "http", feature = "tls-rustls"))]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hotwire::http::{
    ChunkError, HttpClient, HttpConfig, HttpError, HttpPool, HttpUrl, Limits, Request,
};
use hotwire::stream::{wait_connected, TcpOptions, TcpStream};

const T: Duration = Duration::from_secs(5);

/// Serves `conns` connections one after the other, each with `script(index, stream)`.
fn server<F>(conns: usize, script: F) -> (SocketAddr, JoinHandle<()>)
where
    F: Fn(usize, &mut std::net::TcpStream) + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        for i in 0..conns {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(T)).unwrap();
            script(i, &mut s);
        }
    });
    (addr, handle)
}

/// Reads one request (head and Content-Length body); `None` at end of stream.
fn read_request(s: &mut std::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8(head).unwrap();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(head)
}

fn client(addr: SocketAddr, config: HttpConfig) -> HttpClient<TcpStream> {
    let mut tcp = TcpStream::connect(addr, &TcpOptions::default()).unwrap();
    wait_connected(&mut tcp, T).unwrap();
    HttpClient::new(tcp, addr.to_string(), config)
}

/// Runs one GET against a server answering with `reply` (then closing if `close`), returning
/// the error, checking it came well within the timeout.
fn error_for(reply: &'static [u8], close: bool, config: HttpConfig) -> HttpError {
    let (addr, handle) = server(1, move |_, s| {
        if read_request(s).is_some() {
            let _ = s.write_all(reply);
            if !close {
                // Hold the connection open: the client must decide from the bytes alone.
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    });
    let mut c = client(addr, config);
    let started = Instant::now();
    let e = c.request(&Request::get("/"), T).unwrap_err();
    assert!(started.elapsed() < T, "{e:?} took the whole timeout");
    handle.join().unwrap();
    assert!(!c.is_reusable());
    e
}

#[test]
fn bad_chunk_sizes() {
    let cases: [(&[u8], ChunkError); 3] = [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            ChunkError::Size,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n",
            ChunkError::SizeOverflow,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloNOCRLF",
            ChunkError::MissingCrlf,
        ),
    ];
    for (reply, want) in cases {
        match error_for(reply, false, HttpConfig::default()) {
            HttpError::Chunk(got) => assert_eq!(got, want),
            other => panic!("{want:?}: got {other:?}"),
        }
    }
}

#[test]
fn header_section_beyond_the_limit() {
    // An endless head: the client stops at the limit instead of buffering it all.
    let (addr, handle) = server(1, |_, s| {
        read_request(s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
        let line = format!("X-Filler: {}\r\n", "f".repeat(1000));
        for _ in 0..10_000 {
            if s.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
    });
    let config = HttpConfig {
        limits: Limits {
            max_head: 16 * 1024,
            ..Limits::default()
        },
        ..HttpConfig::default()
    };
    let mut c = client(addr, config);
    let e = c.request(&Request::get("/"), T).unwrap_err();
    assert!(matches!(e, HttpError::HeadTooLarge { max: 16384 }), "{e:?}");
    drop(c);
    handle.join().unwrap();

    let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    let reply = format!("HTTP/1.1 200 OK\r\n{many}Content-Length: 0\r\n\r\n").leak();
    let e = error_for(reply.as_bytes(), false, HttpConfig::default());
    assert!(matches!(e, HttpError::TooManyHeaders { max: 64 }), "{e:?}");
}

#[test]
fn truncated_body() {
    let e = error_for(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
        true,
        HttpConfig::default(),
    );
    assert!(
        matches!(e, HttpError::IncompleteBody { received: 10 }),
        "{e:?}"
    );
    let e = error_for(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01234",
        true,
        HttpConfig::default(),
    );
    assert!(
        matches!(e, HttpError::IncompleteBody { received: 5 }),
        "{e:?}"
    );
}

#[test]
fn peer_closes_mid_head_or_before_answering() {
    let e = error_for(
        b"HTTP/1.1 200 OK\r\nContent-Type: te",
        true,
        HttpConfig::default(),
    );
    assert!(matches!(e, HttpError::ClosedInHead), "{e:?}");
    let e = error_for(b"", true, HttpConfig::default());
    assert!(
        matches!(e, HttpError::Closed) && e.before_response(),
        "{e:?}"
    );
}

#[test]
fn response_to_the_wrong_request() {
    // The server answers each request with the id of the one before it.
    let (addr, handle) = server(1, |_, s| {
        let mut previous = 0u64;
        while let Some(head) = read_request(s) {
            let id: u64 = head
                .lines()
                .find_map(|l| l.strip_prefix("X-Request-Id: "))
                .unwrap()
                .parse()
                .unwrap();
            let reply = format!(
                "HTTP/1.1 200 OK\r\nX-Request-Id: {}\r\nContent-Length: 2\r\n\r\nok",
                previous.max(1)
            );
            previous = id;
            if s.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    });
    let config = HttpConfig {
        correlation_header: Some("X-Request-Id".into()),
        ..HttpConfig::default()
    };
    let mut c = client(addr, config);
    assert_eq!(c.request(&Request::get("/1"), T).unwrap().status(), 200);
    let e = c.request(&Request::get("/2"), T).unwrap_err();
    assert!(
        matches!(
            e,
            HttpError::Mismatched {
                expected: 2,
                got: Some(1)
            }
        ),
        "{e:?}"
    );
    drop(c);
    handle.join().unwrap();

    // Two answers to one request: the second is unsolicited.
    let (addr, handle) = server(1, |_, s| {
        read_request(s);
        let one = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na";
        let _ = s.write_all(&[&one[..], &one[..]].concat());
        std::thread::sleep(Duration::from_millis(300));
    });
    let mut c = client(addr, HttpConfig::default());
    assert_eq!(c.request(&Request::get("/"), T).unwrap().body(), b"a");
    let deadline = Instant::now() + T;
    let e = loop {
        match c.poll_response() {
            Err(e) => break e,
            Ok(_) => assert!(Instant::now() < deadline, "no error for the stray response"),
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(matches!(e, HttpError::Unsolicited), "{e:?}");
    handle.join().unwrap();
}

#[test]
fn silent_server_times_out() {
    let (addr, handle) = server(1, |_, s| {
        read_request(s);
        std::thread::sleep(Duration::from_millis(800));
    });
    let mut c = client(addr, HttpConfig::default());
    let started = Instant::now();
    let e = c
        .request(&Request::get("/"), Duration::from_millis(200))
        .unwrap_err();
    assert!(matches!(e, HttpError::Timeout), "{e:?}");
    assert!(started.elapsed() < Duration::from_millis(700));
    handle.join().unwrap();
}

/// First connection: answers one request, then reads the next and closes without answering.
/// Later connections answer everything.
fn flaky_server(conns: usize) -> (SocketAddr, JoinHandle<()>) {
    server(conns, |i, s| {
        let mut served = 0;
        while read_request(s).is_some() {
            if i == 0 && served == 1 {
                return;
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            served += 1;
        }
    })
}

#[test]
fn pool_retries_idempotent_requests_only() {
    let (addr, handle) = flaky_server(2);
    let url = HttpUrl::parse(&format!("http://{addr}/")).unwrap();
    let mut pool = HttpPool::new().with_timeout(T);
    assert_eq!(
        pool.request(&url, &Request::get("/a"))
            .unwrap()
            .response()
            .body(),
        b"ok"
    );
    // The reused connection dies before answering: the GET goes out again on a new one.
    assert_eq!(
        pool.request(&url, &Request::get("/b"))
            .unwrap()
            .response()
            .status(),
        200
    );
    let stats = pool.stats();
    assert_eq!((stats.connects, stats.retries), (2, 1));
    drop(pool);
    handle.join().unwrap();

    let (addr, handle) = flaky_server(1);
    let url = HttpUrl::parse(&format!("http://{addr}/")).unwrap();
    let mut pool = HttpPool::new().with_timeout(T);
    pool.request(&url, &Request::post("/order", b"1")).unwrap();
    let e = pool
        .request(&url, &Request::post("/order", b"2"))
        .unwrap_err();
    assert!(matches!(e, HttpError::Closed), "{e:?}");
    assert_eq!(pool.stats().retries, 0, "a POST is never sent twice");
    handle.join().unwrap();
}

#[test]
fn endless_interim_responses_are_refused() {
    // Sixteen interim responses are tolerated before a final one; the seventeenth is an error, so
    // a peer cannot keep a request in its head phase forever.
    let mut ok = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(16);
    ok.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let (addr, server) = server(1, move |_, s| {
        if read_request(s).is_some() {
            let _ = s.write_all(&ok);
        }
    });
    let mut c = client(addr, HttpConfig::default());
    let r = c
        .request(&Request::get("/"), T)
        .expect("16 interim responses then 200");
    assert_eq!((r.status(), r.body()), (200, &b"ok"[..]));
    drop(c);
    server.join().unwrap();
    let seventeen: &'static [u8] = b"HTTP/1.1 102 Processing\r\n\r\n".repeat(17).leak();
    match error_for(seventeen, false, HttpConfig::default()) {
        HttpError::TooManyInterim { max: 16 } => {}
        other => panic!("expected TooManyInterim, got {other:?}"),
    }
}
