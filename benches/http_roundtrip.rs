//! Keep-alive HTTP/1.1 GET round trip on loopback against one nginx, in one run: hotwire's client,
//! ureq (blocking), and a raw socket writing the same request bytes and reading the known
//! response length.
//!
//! `cargo bench --bench http_roundtrip [-- ROUND_TRIPS]` starts nginx itself (as the tests do),
//! then measures each client on its own warm connection in interleaved rounds and prints p50 / p99
//! / p99.9 and the ratios to the raw socket of the same waiting style:
//!
//! - blocking: the thread sleeps in the kernel until the response arrives (raw `read`, ureq, and
//!   `HttpClient::request`, which polls the descriptor);
//! - spinning: a non-blocking socket polled in a loop (raw, and `HttpClient::poll_response`).
//!
//! Figures from `cargo bench --all-features --bench http_roundtrip` (20,000 round trips each,
//! nginx 1.22, 2-core shared VM, load average ~3, so the tails are the machine's):
//!
//! ```text
//! client                  p50 us    p99 us  p99.9 us      p50/raw      p99/raw
//! raw socket                22.0      49.7    2287.6         1.00         1.00
//! hotwire                   23.9      83.8    3682.3         1.09         1.69
//! ureq                      29.7     107.5    3944.4         1.35         2.16
//! raw socket (spin)         22.6     542.2    8290.3         1.00         1.00
//! hotwire (spin)            23.1     570.4    7528.4         1.02         1.05
//! ```
//!
//! The blocking helper pays one `poll(2)` before its read (the socket is non-blocking); spinning
//! on `poll_response` is at parity with the raw socket.

#[path = "../tests/nginx/mod.rs"]
mod nginx;
#[path = "../tests/util/mod.rs"]
mod util;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hotwire::http::{HttpClient, HttpConfig, Request};
use hotwire::stream::{wait_connected, TcpOptions, TcpStream};

const PATH: &str = "/data/small.txt";
const T: Duration = Duration::from_secs(10);

type Hist = Histogram<u64>;

fn hist() -> Hist {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).unwrap()
}

/// One measured client: a warm connection and a way to do one round trip.
trait Client {
    fn name(&self) -> &'static str;
    fn round_trip(&mut self);
}

struct Hotwire {
    client: HttpClient<TcpStream>,
    spin: bool,
}

impl Hotwire {
    fn new(addr: SocketAddr, spin: bool) -> Hotwire {
        let mut tcp = TcpStream::connect(addr, &TcpOptions::default()).unwrap();
        wait_connected(&mut tcp, T).unwrap();
        Hotwire {
            client: HttpClient::new(tcp, addr.to_string(), HttpConfig::default()),
            spin,
        }
    }
}

impl Client for Hotwire {
    fn name(&self) -> &'static str {
        if self.spin {
            "hotwire (spin)"
        } else {
            "hotwire"
        }
    }
    fn round_trip(&mut self) {
        let req = Request::get(PATH);
        if self.spin {
            self.client.send(&req).unwrap();
            loop {
                if let Some(r) = self.client.poll_response().unwrap() {
                    assert_eq!(r.body().len(), 11);
                    return;
                }
            }
        }
        let r = self.client.request(&req, T).unwrap();
        assert_eq!(r.body().len(), 11);
    }
}

struct Ureq {
    agent: ureq::Agent,
    url: String,
}

impl Client for Ureq {
    fn name(&self) -> &'static str {
        "ureq"
    }
    fn round_trip(&mut self) {
        let mut r = self.agent.get(&self.url).call().unwrap();
        let body = r.body_mut().read_to_vec().unwrap();
        assert_eq!(body.len(), 11);
    }
}

/// A std socket writing hotwire's exact request bytes and reading until the response's length
/// (learnt from the first response: nginx's answer to this request has a fixed size).
struct Raw {
    stream: std::net::TcpStream,
    request: Vec<u8>,
    response_len: usize,
    buf: Vec<u8>,
    spin: bool,
}

impl Raw {
    fn new(addr: SocketAddr, spin: bool) -> Raw {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut request = Vec::new();
        hotwire::http::write_request(&mut request, &addr.to_string(), &Request::get(PATH), None)
            .unwrap();
        let mut raw = Raw {
            stream,
            request,
            response_len: 0,
            buf: vec![0; 4096],
            spin: false,
        };
        // Learn the response size from one exchange (head + Content-Length body).
        raw.stream.write_all(&raw.request).unwrap();
        let mut got = Vec::new();
        loop {
            let n = raw.stream.read(&mut raw.buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&raw.buf[..n]);
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                if got.len() >= end + 4 + 11 {
                    raw.response_len = end + 4 + 11;
                    break;
                }
            }
        }
        raw.stream.set_nonblocking(spin).unwrap();
        raw.spin = spin;
        raw
    }
}

impl Client for Raw {
    fn name(&self) -> &'static str {
        if self.spin {
            "raw socket (spin)"
        } else {
            "raw socket"
        }
    }
    fn round_trip(&mut self) {
        self.stream.write_all(&self.request).unwrap();
        let mut got = 0;
        while got < self.response_len {
            match self.stream.read(&mut self.buf[..]) {
                Ok(0) => panic!("nginx closed the connection"),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("raw read: {e}"),
            }
        }
        assert_eq!(got, self.response_len);
    }
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    if !nginx::available() {
        return;
    }
    let server = nginx::Nginx::start();
    let addr: SocketAddr = format!("127.0.0.1:{}", server.plain).parse().unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_idle_connections_per_host(1)
        .build()
        .into();
    let mut clients: Vec<Box<dyn Client>> = vec![
        Box::new(Raw::new(addr, false)),
        Box::new(Hotwire::new(addr, false)),
        Box::new(Ureq {
            agent,
            url: server.url(PATH),
        }),
        Box::new(Raw::new(addr, true)),
        Box::new(Hotwire::new(addr, true)),
    ];
    let mut hists: Vec<Hist> = clients.iter().map(|_| hist()).collect();
    // Warm-up, then interleaved rounds so drift on a shared machine hits every client alike.
    for c in clients.iter_mut() {
        for _ in 0..1_000 {
            c.round_trip();
        }
    }
    let rounds = 10;
    for _ in 0..rounds {
        for (c, h) in clients.iter_mut().zip(hists.iter_mut()) {
            for _ in 0..n / rounds {
                let start = Instant::now();
                c.round_trip();
                h.saturating_record(start.elapsed().as_nanos() as u64);
            }
        }
    }
    let us = |h: &Hist, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "keep-alive GET {PATH} (11-byte body) against nginx on loopback, {n} round trips each"
    );
    println!(
        "{:<20} {:>9} {:>9} {:>9} {:>12} {:>12}",
        "client", "p50 us", "p99 us", "p99.9 us", "p50/raw", "p99/raw"
    );
    for (i, (c, h)) in clients.iter().zip(&hists).enumerate() {
        // Blocking clients compare with the blocking raw socket (0), spinning ones with 3.
        let raw = &hists[if i >= 3 { 3 } else { 0 }];
        println!(
            "{:<20} {:>9.1} {:>9.1} {:>9.1} {:>12.2} {:>12.2}",
            c.name(),
            us(h, 0.5),
            us(h, 0.99),
            us(h, 0.999),
            us(h, 0.5) / us(raw, 0.5),
            us(h, 0.99) / us(raw, 0.99),
        );
    }
}
