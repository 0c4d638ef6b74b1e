//! The whole receive path allocates nothing per message in steady state: mio selector, IoService,
//! kernel TCP, TLS and the WebSocket client, fed by the embedded venue.
//!
//! Plain and OpenSSL: zero allocations. rustls' buffered API moves each decrypted TLS record into a
//! fresh `Vec` (`take_received_plaintext`), so the rustls path allocates once per TLS record — about
//! once per hundred 128-byte messages here, never per message; that bound is asserted, and the
//! OpenSSL backend is the one to pick where not a single allocation is acceptable.
//!
//! Allocations are counted per thread; the venue's threads allocate freely (tungstenite), only the
//! thread running the service is measured.
#![cfg(all(feature = "ws", feature = "venue"))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;
use std::time::{Duration, Instant};

use hotwire::app::venue::{Venue, VenueArgs};
use hotwire::select::{MioSelector, Selector};
use hotwire::service::ws::{WsEndpoint, WsHandler};
use hotwire::service::Flow;
use hotwire::stream::tls::{TlsBackend, TlsConfig};
use hotwire::ws::{Frame, OpCode};

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; the counter is a const-initialised
// thread-local `Cell`, which needs no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

#[derive(Default)]
struct Count {
    messages: u64,
    bytes: u64,
}

struct Counter;
impl WsHandler<Count> for Counter {
    fn on_frame(&mut self, frame: Frame<'_>, count: &mut Count) -> io::Result<Flow> {
        if frame.opcode() == OpCode::Text {
            count.messages += 1;
            count.bytes += frame.payload().len() as u64;
        }
        Ok(Flow::Continue)
    }
}

/// Runs the service until `count.messages` reaches `target` (or fails after 60 s).
fn run_to<S: Selector, E: hotwire::service::Endpoint<Count>>(
    service: &mut hotwire::service::IoService<S, E, Count>,
    count: &mut Count,
    target: u64,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.messages < target {
        assert!(
            Instant::now() < deadline,
            "only {} of {target} messages",
            count.messages
        );
        service.poll(count).unwrap();
    }
}

/// Runs `url` to steady state and returns (allocations, messages, bytes) over 30,000 messages.
fn steady_state(url: &str, tls: Option<TlsConfig>) -> (usize, u64, u64) {
    let mut endpoint = WsEndpoint::new(url, Counter).unwrap();
    if let Some(tls) = tls {
        endpoint = endpoint.with_tls(tls.build().unwrap());
    }
    let mut service = MioSelector::new().unwrap().into_io_service_with_context();
    service.register(endpoint);
    let mut count = Count::default();
    // Warm-up: connection, handshakes, buffers at their working size.
    run_to(&mut service, &mut count, 2_000);
    let before = allocs();
    let start_messages = count.messages;
    run_to(&mut service, &mut count, start_messages + 30_000);
    (
        allocs() - before,
        count.messages - start_messages,
        count.bytes,
    )
}

fn venue() -> Venue {
    Venue::start(&VenueArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: true,
        tls_listen: "127.0.0.1:0".parse().unwrap(),
        cert_dir: None,
        rate: 100_000,
        size: 128,
    })
    .unwrap()
}

#[test]
fn plain_websocket_receive_path_does_not_allocate() {
    let v = venue();
    let (allocations, messages, _) = steady_state(&format!("ws://{}/feed", v.ws_addr), None);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {messages} messages"
    );
}

#[test]
fn tls_websocket_receive_path_does_not_allocate() {
    let v = venue();
    let wss = v.wss_addr.unwrap();
    for backend in [TlsBackend::Openssl, TlsBackend::Rustls] {
        let tls = TlsConfig {
            backend,
            ..TlsConfig::with_ca_file(v.ca_pem.clone().unwrap())
        };
        let (allocations, messages, bytes) =
            steady_state(&format!("wss://localhost:{}/feed", wss.port()), Some(tls));
        let limit = match backend {
            TlsBackend::Openssl => 0,
            // One per TLS record at most (records carry up to 16 KiB; the venue flushes about every
            // millisecond, so most are smaller): far below one per message.
            _ => (messages / 10) as usize,
        };
        assert!(
            allocations <= limit,
            "{backend:?}: {allocations} allocations for {messages} messages ({bytes} bytes), limit {limit}"
        );
    }
}
