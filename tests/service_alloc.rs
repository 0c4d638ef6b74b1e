//! The whole receive path allocates nothing per message in steady state: mio selector, IoService,
//! kernel TCP, TLS and the WebSocket client, fed by the embedded venue.
//!
//! Plain and OpenSSL: zero allocations, receiving a feed and in request/response round trips.
//! rustls 0.23 moves each decrypted TLS record into a fresh `Vec` (`take_received_plaintext`, also
//! in its unbuffered API) and each written record into another, so the rustls path allocates once
//! per TLS record each way: about once per hundred 128-byte feed messages, twice per round trip.
//! Those bounds are asserted; the OpenSSL backend is the one to pick where not a single allocation
//! is acceptable.
//!
//! Allocations are counted per thread; the venue's threads allocate freely (tungstenite), only the
//! thread running the service is measured.
#![cfg(all(feature = "ws", feature = "venue"))]

use std::time::{Duration, Instant};

use hotwire::app::venue::{Venue, VenueArgs};
use hotwire::select::{MioSelector, Selector};
use hotwire::service::ws::{WsEndpoint, WsHandler, WsOut};
use hotwire::service::IntoIoService;
use hotwire::service::{Dial, Flow, KernelDial};
use hotwire::stream::tls::{TlsBackend, TlsConfig};
use hotwire::ws::{Frame, OpCode};

mod alloc_counter;

use alloc_counter::allocs;

#[derive(Default)]
struct Count {
    messages: u64,
    bytes: u64,
}

struct Counter;
impl<S: hotwire::stream::Stream> WsHandler<Count, S> for Counter {
    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        _: &mut WsOut<'_, S>,
        count: &mut Count,
    ) -> Result<Flow, hotwire::service::Error> {
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
    steady_state_on(MioSelector::new().unwrap(), KernelDial::default(), url, tls)
}

/// [`steady_state`] on any selector and dialer.
fn steady_state_on<S: Selector, D: Dial>(
    selector: S,
    dial: D,
    url: &str,
    tls: Option<TlsConfig>,
) -> (usize, u64, u64) {
    let mut endpoint = WsEndpoint::new(url, Counter).unwrap().with_dialer(dial);
    if let Some(tls) = tls {
        endpoint = endpoint.with_tls(tls.build().unwrap());
    }
    let mut service = selector.into_io_service_with_context();
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

/// Sends a text message to the venue's echo and waits for it to come back, `n` times.
struct Echoer {
    payload: Vec<u8>,
    outstanding: bool,
}

impl<S: hotwire::stream::Stream> WsHandler<Count, S> for Echoer {
    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        _: &mut WsOut<'_, S>,
        count: &mut Count,
    ) -> Result<Flow, hotwire::service::Error> {
        if frame.opcode() == OpCode::Text {
            assert_eq!(frame.payload(), &self.payload[..]);
            count.messages += 1;
            self.outstanding = false;
        }
        Ok(Flow::Continue)
    }
}

fn echo_round_trips(url: &str, tls: Option<TlsConfig>, n: u64) -> usize {
    echo_round_trips_on(
        MioSelector::new().unwrap(),
        KernelDial::default(),
        url,
        tls,
        n,
    )
}

/// [`echo_round_trips`] on any selector and dialer.
fn echo_round_trips_on<S: Selector, D: Dial>(
    selector: S,
    dial: D,
    url: &str,
    tls: Option<TlsConfig>,
    n: u64,
) -> usize {
    let payload = b"{\"op\":\"order\",\"px\":101.25,\"qty\":3}".to_vec();
    let mut endpoint = WsEndpoint::new(
        url,
        Echoer {
            payload: payload.clone(),
            outstanding: false,
        },
    )
    .unwrap()
    .with_dialer(dial);
    if let Some(tls) = tls {
        endpoint = endpoint.with_tls(tls.build().unwrap());
    }
    let mut service = selector.into_io_service_with_context();
    let id = service.register(endpoint);
    let mut count = Count::default();
    let text = std::str::from_utf8(&payload).unwrap().to_owned();
    let mut measure_from = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.messages < 1_000 + n {
        assert!(
            Instant::now() < deadline,
            "only {} round trips",
            count.messages
        );
        if count.messages == 1_000 && measure_from.is_none() {
            measure_from = Some(allocs());
        }
        service.poll(&mut count).unwrap();
        if let Some((ws, endpoint)) = service.connection_mut(id) {
            let echoer = endpoint.handler_mut();
            if !echoer.outstanding {
                echoer.outstanding = true;
                ws.send_text(&text).unwrap();
            }
        }
    }
    allocs() - measure_from.unwrap()
}

#[test]
fn sending_does_not_allocate_either() {
    let v = venue();
    let n = 5_000;
    let plain = echo_round_trips(&format!("ws://{}/echo", v.ws_addr), None, n);
    assert_eq!(plain, 0, "plain: {plain} allocations for {n} round trips");
    let wss = format!("wss://localhost:{}/echo", v.wss_addr.unwrap().port());
    let tls = TlsConfig {
        backend: TlsBackend::Openssl,
        ..TlsConfig::with_ca_file(v.ca_pem.clone().unwrap())
    };
    let openssl = echo_round_trips(&wss, Some(tls), n);
    assert_eq!(
        openssl, 0,
        "OpenSSL: {openssl} allocations for {n} round trips"
    );
    let tls = TlsConfig {
        backend: TlsBackend::Rustls,
        ..TlsConfig::with_ca_file(v.ca_pem.clone().unwrap())
    };
    // rustls 0.23 copies each written record into a new Vec (buffered API) and each received
    // record into another: two per round trip, asserted so that nothing else creeps in.
    let rustls = echo_round_trips(&wss, Some(tls), n);
    assert!(
        rustls as u64 <= 2 * n,
        "rustls: {rustls} allocations for {n} round trips"
    );
}

/// Answers every echo from inside `on_frame`, while the echoed frame is still borrowed: the
/// request/reply pattern of order entry over WebSocket, and of an application-level ping answered
/// by the handler.
struct Replier {
    payload: &'static str,
}

impl<S: hotwire::stream::Stream> WsHandler<Count, S> for Replier {
    fn on_open(
        &mut self,
        ws: &mut WsOut<'_, S>,
        _: &mut Count,
    ) -> Result<(), hotwire::service::Error> {
        ws.send_text(self.payload)?;
        Ok(())
    }

    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        ws: &mut WsOut<'_, S>,
        count: &mut Count,
    ) -> Result<Flow, hotwire::service::Error> {
        if frame.opcode() == OpCode::Text {
            assert_eq!(frame.payload(), self.payload.as_bytes());
            count.messages += 1;
            ws.send_text(self.payload)?;
        }
        Ok(Flow::Continue)
    }
}

/// Round trips answered from inside the handler: allocations over `n` after 1,000 to warm up.
fn replies_from_the_handler(url: &str, tls: Option<TlsConfig>, n: u64) -> usize {
    let mut endpoint = WsEndpoint::new(
        url,
        Replier {
            payload: "{\"op\":\"order\",\"px\":101.25,\"qty\":3}",
        },
    )
    .unwrap();
    if let Some(tls) = tls {
        endpoint = endpoint.with_tls(tls.build().unwrap());
    }
    let mut service = MioSelector::new().unwrap().into_io_service_with_context();
    service.register(endpoint);
    let mut count = Count::default();
    run_to(&mut service, &mut count, 1_000);
    let before = allocs();
    run_to(&mut service, &mut count, 1_000 + n);
    allocs() - before
}

#[test]
fn replies_sent_from_inside_the_handler_do_not_allocate() {
    let v = venue();
    let n = 5_000;
    let plain = replies_from_the_handler(&format!("ws://{}/echo", v.ws_addr), None, n);
    assert_eq!(plain, 0, "plain: {plain} allocations for {n} replies");
    let tls = TlsConfig {
        backend: TlsBackend::Openssl,
        ..TlsConfig::with_ca_file(v.ca_pem.clone().unwrap())
    };
    let wss = format!("wss://localhost:{}/echo", v.wss_addr.unwrap().port());
    let openssl = replies_from_the_handler(&wss, Some(tls), n);
    assert_eq!(openssl, 0, "OpenSSL: {openssl} allocations for {n} replies");
}

/// The io_uring selector's own streams (multishot receive into provided buffers, sends through
/// the ring) keep the rule: nothing per message, plain and OpenSSL, receiving and round trips.
#[cfg(feature = "io-uring")]
#[test]
fn the_io_uring_path_does_not_allocate() {
    use hotwire::select::uring::{UringConfig, UringRing};
    use hotwire::select::UringSelector;
    use hotwire::service::UringDial;
    let ring = || {
        let ring = UringRing::new(&UringConfig::default()).unwrap();
        let dial = UringDial {
            ring: ring.clone(),
            options: Default::default(),
        };
        (UringSelector::new(ring), dial)
    };
    let v = venue();
    let openssl = || TlsConfig {
        backend: TlsBackend::Openssl,
        ..TlsConfig::with_ca_file(v.ca_pem.clone().unwrap())
    };
    let wss = v.wss_addr.unwrap().port();
    let (selector, dial) = ring();
    let (allocations, messages, _) =
        steady_state_on(selector, dial, &format!("ws://{}/feed", v.ws_addr), None);
    assert_eq!(
        allocations, 0,
        "plain: {allocations} for {messages} messages"
    );
    let (selector, dial) = ring();
    let (allocations, messages, _) = steady_state_on(
        selector,
        dial,
        &format!("wss://localhost:{wss}/feed"),
        Some(openssl()),
    );
    assert_eq!(
        allocations, 0,
        "OpenSSL: {allocations} for {messages} messages"
    );
    let n = 5_000;
    let (selector, dial) = ring();
    let plain = echo_round_trips_on(selector, dial, &format!("ws://{}/echo", v.ws_addr), None, n);
    assert_eq!(plain, 0, "plain: {plain} allocations for {n} round trips");
    let (selector, dial) = ring();
    let tls = echo_round_trips_on(
        selector,
        dial,
        &format!("wss://localhost:{wss}/echo"),
        Some(openssl()),
        n,
    );
    assert_eq!(tls, 0, "OpenSSL: {tls} allocations for {n} round trips");
}
