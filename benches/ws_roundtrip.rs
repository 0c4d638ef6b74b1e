//! End-to-end WebSocket round trip on loopback: hotwire's client vs tungstenite's, against the
//! same echo server (the embedded venue) in the same run.
//!
//! `cargo bench --bench ws_roundtrip [-- ROUND_TRIPS]` prints p50 / p99 / p99.9 per client and the
//! ratios. Both clients busy-poll a non-blocking socket, so neither sleeps in the kernel between
//! messages; the server side (tungstenite, one thread per connection) is the same for both, so the
//! difference is the clients' own cost.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hotwire::app::venue::{Venue, VenueArgs};
use hotwire::stream::{TcpOptions, TcpStream};
use hotwire::ws::{IntoWebsocket, OpCode, WsUrl};

const PAYLOAD: &[u8; 64] =
    b"{\"op\":\"order\",\"sym\":\"HWX\",\"px\":101.25,\"qty\":3,\"id\":123456789012}";

fn hotwire_client(addr: std::net::SocketAddr, n: usize) -> Histogram<u64> {
    let url = WsUrl::parse(&format!("ws://{addr}/echo")).unwrap();
    let tcp = TcpStream::connect(addr, &TcpOptions::default()).unwrap();
    let mut ws = tcp.into_websocket(url).unwrap();
    ws.wait_open(Duration::from_secs(5)).unwrap();
    let mut hist = Histogram::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    for i in 0..n {
        let start = Instant::now();
        ws.send_binary(PAYLOAD).unwrap();
        loop {
            match ws.receive().unwrap() {
                Some(f) if f.opcode() == OpCode::Binary => {
                    assert_eq!(f.payload().len(), PAYLOAD.len());
                    break;
                }
                _ => {}
            }
        }
        if i >= n / 10 {
            hist.saturating_record(start.elapsed().as_nanos() as u64);
        }
    }
    let _ = ws.close(1000, "");
    hist
}

fn tungstenite_client(addr: std::net::SocketAddr, n: usize) -> Histogram<u64> {
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/echo"), stream).unwrap();
    ws.get_mut().set_nonblocking(true).unwrap();
    let mut hist = Histogram::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    let msg = tungstenite::Message::binary(PAYLOAD.to_vec());
    for i in 0..n {
        let start = Instant::now();
        // `send` flushes; a WouldBlock leaves the frame queued in tungstenite, flushed below.
        match ws.send(msg.clone()) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("tungstenite send: {e}"),
        }
        loop {
            match ws.read() {
                Ok(tungstenite::Message::Binary(b)) => {
                    assert_eq!(b.len(), PAYLOAD.len());
                    break;
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let _ = ws.flush();
                }
                Err(e) => panic!("tungstenite read: {e}"),
            }
        }
        if i >= n / 10 {
            hist.saturating_record(start.elapsed().as_nanos() as u64);
        }
    }
    hist
}

fn line(name: &str, h: &Histogram<u64>) {
    println!(
        "{name:<12} p50 {:>7.1} us  p99 {:>7.1} us  p99.9 {:>7.1} us  (n={})",
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.value_at_quantile(0.999) as f64 / 1e3,
        h.len()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a number among the arguments sets the round trips.
    let n = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(20_000);
    let venue = Venue::start(&VenueArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: false,
        tls_listen: "127.0.0.1:0".parse().unwrap(),
        cert_dir: None,
        rate: 1,
        size: 64,
        http_listen: None,
        #[cfg(feature = "fix")]
        fix_listen: None,
        https_listen: None,
        #[cfg(feature = "fix")]
        fixs_listen: None,
        client_ca: None,
        require_client_cert: false,
        chaos: None,
        chaos_every: 5.0,
        chaos_for: None,
        #[cfg(feature = "fix")]
        fix_log: None,
        deflate: false,
    })
    .unwrap();
    println!("64-byte WebSocket round trips to the venue's echo on loopback, {n} per client");
    // Alternate the clients so drift on a noisy machine hits both.
    let mut hw = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    let mut tg = hw.clone();
    for _ in 0..2 {
        hw.add(hotwire_client(venue.ws_addr, n / 2)).unwrap();
        tg.add(tungstenite_client(venue.ws_addr, n / 2)).unwrap();
    }
    line("hotwire", &hw);
    line("tungstenite", &tg);
    println!(
        "ratio tungstenite/hotwire: p50 {:.2}x  p99 {:.2}x",
        tg.value_at_quantile(0.5) as f64 / hw.value_at_quantile(0.5) as f64,
        tg.value_at_quantile(0.99) as f64 / hw.value_at_quantile(0.99) as f64
    );
}
