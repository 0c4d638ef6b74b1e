//! Per-poll budgets: an HTTP endpoint whose deep pipeline is answered at once, and a FIX session
//! whose counterparty floods ExecutionReports, each handle a bounded number of messages per poll
//! and return `Flow::More` instead of draining everything, so no endpoint kind starves the others
//! on its IO thread (WebSocket endpoints do the same with `FRAMES_PER_POLL`).
#![cfg(all(feature = "http", feature = "fix"))]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant, SystemTime};

use hotwire::fix::codec::{Encoder, Header, Message, TimePrecision, UtcTimestamp};
use hotwire::fix::endpoint::{FixEndpoint, FixHandler, FixOutbox, MESSAGES_PER_POLL};
use hotwire::fix::{Now, SessionConfig, Version};
use hotwire::http::{
    HttpEndpoint, HttpHandler, HttpOut, RequestSpec, Response, RESPONSES_PER_POLL,
};
use hotwire::service::{Endpoint, Flow};
use hotwire::stream::TcpStream;

/// Counts what the endpoint handed to the application.
#[derive(Default)]
struct Count(usize);

impl HttpHandler<()> for Count {
    fn on_response(
        &mut self,
        _: &Response<'_>,
        _: Duration,
        _: &mut HttpOut<'_>,
        _: &mut (),
    ) -> Result<Flow, hotwire::service::Error> {
        self.0 += 1;
        Ok(Flow::Continue)
    }
}

impl FixHandler<(), TcpStream> for Count {
    fn on_message(
        &mut self,
        _: Message<'_>,
        _: &mut FixOutbox<'_, TcpStream>,
        _: Now,
        _: &mut (),
    ) -> Result<Flow, hotwire::service::Error> {
        self.0 += 1;
        Ok(Flow::Continue)
    }
}

/// Polls `endpoint` (with a pause between polls, so the peer's burst piles up in the socket) until
/// `total` messages were handled, ticking its timer while it waits; returns the largest number handled by one poll and how many polls
/// returned `Flow::More`.
fn drain<E: Endpoint<()>>(
    endpoint: &mut E,
    target: &mut E::Target,
    total: usize,
    count: impl Fn(&E) -> usize,
) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut largest, mut more) = (0, 0);
    while count(endpoint) < total {
        assert!(
            Instant::now() < deadline,
            "only {} of {total}",
            count(endpoint)
        );
        let before = count(endpoint);
        let flow = endpoint.poll(target, &mut ()).expect("poll");
        largest = largest.max(count(endpoint) - before);
        if flow == Flow::More {
            more += 1;
        } else {
            // The timer flushes what the connect left queued (the FIX Logon).
            endpoint
                .on_timer(target, Instant::now(), &mut ())
                .expect("timer");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    (largest, more)
}

/// A server that answers every request of a keep-alive connection with a small response.
fn http_server() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let mut buf = vec![0u8; 1 << 16];
        let mut pending = Vec::new();
        loop {
            let n = match conn.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            let mut out = Vec::new();
            while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                pending.drain(..end + 4);
                out.extend_from_slice(response);
            }
            if conn.write_all(&out).is_err() {
                return;
            }
        }
    });
    (addr, server)
}

#[test]
fn a_deep_http_pipeline_yields_after_its_budget() {
    let (addr, server) = http_server();
    let url = format!("http://{addr}/");
    let mut endpoint = HttpEndpoint::new(&url, Count::default())
        .and_then(|e| e.with_requests(vec![RequestSpec::get("/")]))
        .expect("endpoint")
        .with_pipeline(1024);
    let mut conn = endpoint.create_target(addr, &mut ()).expect("connect");
    while !hotwire::select::Selectable::poll_connect(&mut conn).expect("connect") {
        std::thread::sleep(Duration::from_millis(5));
    }
    let total = 4 * 1024;
    let (largest, more) = drain(&mut endpoint, &mut conn, total, |e| e.handler().0);
    eprintln!("http: at most {largest} responses per poll, {more} polls asked for more");
    assert_eq!(largest, RESPONSES_PER_POLL);
    assert!(more >= 1, "no poll yielded");
    drop(conn);
    server.join().expect("server");
}

/// A FIX acceptor that answers the Logon and then sends `n` ExecutionReports in one burst.
fn fix_flooder(n: u64) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !seen.windows(5).any(|w| w == b"\x0135=A") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(k) => seen.extend_from_slice(&buf[..k]),
            }
        }
        let mut enc = Encoder::new();
        let mut burst = Vec::new();
        for seq in 1..=n + 1 {
            let header = Header {
                sender: "VENUE",
                target: "HOTWIRE",
                seq,
                sending_time: UtcTimestamp::from_system_time(SystemTime::now()),
                precision: TimePrecision::Millis,
            };
            if seq == 1 {
                enc.start(b"FIX.4.4", b"A", &header)
                    .u64(98u32, 0)
                    .u64(108u32, 30)
                    .str(141u32, "Y");
            } else {
                enc.start(b"FIX.4.4", b"8", &header)
                    .u64(37u32, seq)
                    .u64(17u32, seq)
                    .u64(11u32, seq)
                    .str(150u32, "F")
                    .str(39u32, "2")
                    .str(55u32, "HWX")
                    .str(54u32, "1");
            }
            burst.extend_from_slice(enc.finish().expect("encode"));
        }
        if conn.write_all(&burst).is_err() {
            return;
        }
        // Hold the connection until the client is done.
        let _ = conn.read(&mut buf);
    });
    (addr, server)
}

#[test]
fn a_flooding_fix_session_yields_after_its_budget() {
    let n = 5000;
    let (addr, server) = fix_flooder(n);
    let config = SessionConfig::new(Version::Fix44, "HOTWIRE", "VENUE");
    let mut endpoint =
        FixEndpoint::new(&format!("fix://{addr}"), config, Count::default()).expect("endpoint");
    let mut fix = endpoint.create_target(addr, &mut ()).expect("connect");
    // The service's Connecting phase: TCP connect and Logon sent, until the Logon answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hotwire::select::Selectable::poll_connect(&mut fix).expect("handshake") {
        assert!(Instant::now() < deadline, "no Logon answer");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (largest, more) = drain(&mut endpoint, &mut fix, n as usize, |e| e.handler().0);
    eprintln!("fix: at most {largest} messages per poll, {more} polls asked for more");
    assert_eq!(largest, MESSAGES_PER_POLL);
    assert!(more >= 1, "no poll yielded");
    drop(fix);
    server.join().expect("server");
}
