//! Requests queued from inside `HttpHandler::on_response` allocate nothing in steady state: an
//! `HttpEndpoint` in an `IoService` against the embedded venue's HTTP API, whose handler answers
//! each response with the next request (a GET, then a POST with a body and header fields, in
//! turn) while the response still borrows the connection's buffer. Plain HTTP and HTTPS through
//! OpenSSL: zero allocations per request after warm-up (rustls allocates per TLS record; see
//! tests/service_alloc.rs).
//!
//! Allocations are counted per thread: only the thread running the service is measured, not the
//! venue's.
#![cfg(all(feature = "http", feature = "venue", feature = "tls-openssl"))]

use std::time::{Duration, Instant};

use hotwire::app::venue::{Venue, VenueArgs};
use hotwire::http::{HttpEndpoint, HttpHandler, HttpOut, Request, Response};
use hotwire::select::MioSelector;
use hotwire::service::IntoIoService;
use hotwire::service::{Error, Flow};
use hotwire::stream::tls::{TlsBackend, TlsConfig};
use hotwire::stream::Stream;

mod alloc_counter;

use alloc_counter::allocs;

/// What the handler saw.
#[derive(Debug, Default)]
struct Seen {
    responses: u64,
    orders: u64,
    body_bytes: u64,
}

/// Sends the first request from its timer, then each next one from `on_response`.
#[derive(Default)]
struct FollowUp {
    started: bool,
}

const ORDER: &[u8] = br#"{"symbol":"BTC-USD","side":"buy","qty":3,"px":101.25}"#;
const HEADERS: &[(&str, &str)] = &[("Content-Type", "application/json"), ("X-Api-Key", "k-123")];

/// The `i`-th request: `GET /api/time` and `POST /api/order` in turn.
fn request(i: u64) -> Request<'static> {
    if i % 2 == 0 {
        Request::get("/api/time").with_headers(&HEADERS[1..])
    } else {
        Request::post("/api/order", ORDER).with_headers(HEADERS)
    }
}

impl<S: Stream> HttpHandler<Seen, S> for FollowUp {
    fn on_response(
        &mut self,
        response: &Response<'_>,
        _: Duration,
        out: &mut HttpOut<'_, S>,
        seen: &mut Seen,
    ) -> Result<Flow, Error> {
        assert_eq!(response.status(), 200, "{response:?}");
        if response.body().starts_with(br#"{"status":"accepted""#) {
            seen.orders += 1;
        }
        seen.body_bytes += response.body().len() as u64;
        seen.responses += 1;
        assert_eq!(
            out.in_flight(),
            0,
            "the answered request is no longer in flight"
        );
        out.send(&request(seen.responses))?;
        Ok(Flow::Continue)
    }

    fn on_timer(
        &mut self,
        out: &mut HttpOut<'_, S>,
        _: Instant,
        _: &mut Seen,
    ) -> Result<Flow, Error> {
        if !self.started {
            self.started = true;
            out.send(&request(0))?;
        }
        Ok(Flow::Continue)
    }
}

/// Runs `url` to 1,000 responses, then returns the allocations over at least `n` more.
fn follow_ups(url: &str, tls: Option<TlsConfig>, n: u64) -> usize {
    let mut endpoint = HttpEndpoint::new(url, FollowUp::default())
        .unwrap()
        .with_timer(Duration::from_millis(5));
    if let Some(tls) = tls {
        endpoint = endpoint.with_tls(tls.build().unwrap());
    }
    let mut service = MioSelector::new().unwrap().into_io_service_with_context();
    service.register(endpoint);
    let mut seen = Seen::default();
    let mut run_to = |seen: &mut Seen, target: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.responses < target {
            assert!(Instant::now() < deadline, "{url}: only {seen:?}");
            service.poll(seen).unwrap();
        }
    };
    run_to(&mut seen, 1_000);
    let before = allocs();
    run_to(&mut seen, 1_000 + n);
    let during = allocs() - before;
    // One poll may handle several round trips (loopback answers fast), so it can end past the
    // target.
    assert!(seen.responses >= 1_000 + n, "{url}: {seen:?}");
    // Every other request was an order, each accepted by the venue.
    assert_eq!(seen.orders, seen.responses / 2, "{url}: {seen:?}");
    assert!(seen.body_bytes > 0);
    during
}

#[test]
fn requests_queued_from_on_response_do_not_allocate() {
    let v = Venue::start(&VenueArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: false,
        tls_listen: "127.0.0.1:0".parse().unwrap(),
        cert_dir: None,
        rate: 1,
        size: 128,
        http_listen: Some("127.0.0.1:0".parse().unwrap()),
        #[cfg(feature = "fix")]
        fix_listen: None,
        https_listen: Some("127.0.0.1:0".parse().unwrap()),
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
    let n = 5_000;
    let plain = follow_ups(&format!("http://{}", v.http_addr.unwrap()), None, n);
    assert_eq!(plain, 0, "plain: {plain} allocations for {n} requests");
    let tls = TlsConfig {
        backend: TlsBackend::Openssl,
        ..TlsConfig::with_ca_file(v.ca_pem.clone().unwrap())
    };
    let https = format!("https://localhost:{}", v.https_addr.unwrap().port());
    let openssl = follow_ups(&https, Some(tls), n);
    assert_eq!(
        openssl, 0,
        "OpenSSL: {openssl} allocations for {n} requests"
    );
}
