//! Floods of the kinds a venue can send at the client's configured limits, each against a WebSocket
//! endpoint sharing its IO thread with a 10 ms timer (standing for other endpoints' heartbeats):
//!
//! - pings as fast as TCP takes them (each answered with a pong);
//! - messages of 1,000 one-byte fragments each, without end;
//! - 16 MiB binary messages (the default `max_frame_size`), one after another.
//!
//! Each runs 1 s to warm up (buffers at their working size), then 4 s measured: the resident set
//! may not grow by more than 8 MiB, the flood keeps arriving (the connection is never dropped), and
//! the timer never waits more than 100 ms beyond its period. The figures are printed
//! (`cargo test --test flood_kinds -- --nocapture`).
#![cfg(all(feature = "ws", any(feature = "tls-rustls", feature = "tls-openssl")))]

mod util;

use std::io::{self, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use hotwire::select::MioSelector;
use hotwire::service::ws::{WsEndpoint, WsHandler};
use hotwire::service::IntoIoService;
use hotwire::service::{Flow, Mixed};
use hotwire::ws::{Frame, OpCode};
use util::ws_accept;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flood {
    Pings,
    Fragments,
    Huge,
}

/// A frame header from the server (unmasked) for `len` payload bytes.
fn header(out: &mut Vec<u8>, first: u8, len: usize) {
    out.push(first);
    match len {
        0..=125 => out.push(len as u8),
        126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// Serves one flood to every connection until the client goes away; the client's frames (pongs)
/// are read and dropped on a second thread, so TCP back-pressure is the only brake.
fn spawn_flood(kind: Flood) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { continue };
            std::thread::spawn(move || {
                ws_accept(&mut tcp);
                if let Ok(mut reader) = tcp.try_clone() {
                    std::thread::spawn(move || io::copy(&mut reader, &mut io::sink()));
                }
                let mut chunk = Vec::new();
                match kind {
                    Flood::Pings => {
                        for _ in 0..1000 {
                            header(&mut chunk, 0x89, 8);
                            chunk.extend_from_slice(b"ping!!!!");
                        }
                    }
                    Flood::Fragments => {
                        header(&mut chunk, 0x01, 1);
                        chunk.push(b'a');
                        for _ in 1..999 {
                            header(&mut chunk, 0x00, 1);
                            chunk.push(b'a');
                        }
                        header(&mut chunk, 0x80, 1);
                        chunk.push(b'z');
                    }
                    Flood::Huge => {
                        header(&mut chunk, 0x82, 16 << 20);
                        chunk.resize(chunk.len() + (16 << 20), 0x5a);
                    }
                }
                while tcp.write_all(&chunk).is_ok() {}
            });
        }
    });
    port
}

#[derive(Default)]
struct Figures {
    pings: u64,
    fragments: u64,
    messages: u64,
    bytes: u64,
    ticks: u64,
    longest_gap: Duration,
}

struct Count;

impl WsHandler<Figures> for Count {
    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        _: &mut hotwire::service::ws::WsOut<'_>,
        f: &mut Figures,
    ) -> Result<Flow, hotwire::service::Error> {
        match frame.opcode() {
            OpCode::Ping => f.pings += 1,
            OpCode::Continuation | OpCode::Text | OpCode::Binary => {
                f.fragments += 1;
                f.bytes += frame.payload().len() as u64;
                if frame.is_final() {
                    f.messages += 1;
                }
            }
            _ => {}
        }
        Ok(Flow::Continue)
    }
}

impl util::Ticks for Figures {
    fn tick(&mut self, gap: Duration) {
        self.longest_gap = self.longest_gap.max(gap);
        self.ticks += 1;
    }
}

/// A listener the ticker connects to and that never sends.
fn quiet_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

fn flood(kind: Flood) -> Figures {
    let port = spawn_flood(kind);
    let url = format!("ws://127.0.0.1:{port}/");
    let mut service = MioSelector::new()
        .expect("selector")
        .into_io_service_with_context();
    service.register(Mixed::A(WsEndpoint::new(&url, Count).expect("endpoint")));
    service.register(Mixed::B(util::Ticker {
        port: quiet_port(),
        last: None,
    }));
    let mut f = Figures::default();
    let run = |service: &mut hotwire::service::IoService<_, _, Figures>,
               f: &mut Figures,
               time: Duration| {
        let until = Instant::now() + time;
        while Instant::now() < until {
            service.poll(f).expect("the service never fails");
        }
    };
    run(&mut service, &mut f, Duration::from_secs(1));
    let before = util::rss_kib();
    let (pings, fragments, messages, bytes) = (f.pings, f.fragments, f.messages, f.bytes);
    f.longest_gap = Duration::ZERO;
    let ticks = f.ticks;
    let time = Duration::from_secs(4);
    run(&mut service, &mut f, time);
    let after = util::rss_kib();
    let figures = Figures {
        pings: f.pings - pings,
        fragments: f.fragments - fragments,
        messages: f.messages - messages,
        bytes: f.bytes - bytes,
        ticks: f.ticks - ticks,
        longest_gap: f.longest_gap,
    };
    eprintln!(
        "{kind:?}: in {time:?}: {} pings, {} fragments, {} messages, {} MiB; RSS {before} KiB -> \
         {after} KiB; {} ticks of 10 ms, longest gap {:?}",
        figures.pings,
        figures.fragments,
        figures.messages,
        figures.bytes >> 20,
        figures.ticks,
        figures.longest_gap
    );
    assert!(
        after <= before + 8 * 1024,
        "{kind:?}: RSS grew from {before} KiB to {after} KiB"
    );
    assert!(figures.ticks >= 100, "{kind:?}: {} ticks", figures.ticks);
    assert!(
        figures.longest_gap <= Duration::from_millis(110),
        "{kind:?}: the timer stalled for {:?}",
        figures.longest_gap
    );
    figures
}

#[test]
fn floods_keep_memory_bounded_and_timers_running() {
    let pings = flood(Flood::Pings);
    assert!(pings.pings > 100_000, "{} pings", pings.pings);
    let fragments = flood(Flood::Fragments);
    assert!(
        fragments.fragments > 100_000 && fragments.messages > 100,
        "{} fragments, {} messages",
        fragments.fragments,
        fragments.messages
    );
    let huge = flood(Flood::Huge);
    assert!(huge.messages >= 4, "{} messages of 16 MiB", huge.messages);
}
