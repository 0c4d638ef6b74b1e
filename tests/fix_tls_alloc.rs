//! FIX order entry over TLS allocates nothing per message in steady state: a `FixEndpoint` in an
//! `IoService` against the embedded venue's FIX acceptor (fix:// and fixs://), whose handler sends
//! the next NewOrderSingle from inside `on_message` for every ExecutionReport. Plain TCP, OpenSSL
//! and rustls: zero allocations per order and report after warm-up, both directions.
//!
//! The session uses a file store: the in-memory store keeps every sent message for resends, in a
//! `Vec` that grows (a handful of reallocations per thousand messages, with or without TLS).
//!
//! Allocations are counted per thread: only the thread running the service is measured, not the
//! venue's.
#![cfg(all(
    feature = "fix",
    feature = "venue",
    feature = "tls-rustls",
    feature = "tls-openssl"
))]

use std::time::{Duration, Instant};

use hotwire::app::venue::{Venue, VenueArgs};
use hotwire::fix::codec::{Decimal, Message, MsgType};
use hotwire::fix::endpoint::{FixEndpoint, FixHandler, FixOutbox};
use hotwire::fix::orders::{ExecReport, NewOrder, Side};
use hotwire::fix::{Now, SessionConfig, Version};
use hotwire::select::MioSelector;
use hotwire::service::Error;
use hotwire::service::Flow;
use hotwire::service::IntoIoService;
use hotwire::stream::tls::{TlsBackend, TlsConfig};

mod alloc_counter;

use alloc_counter::allocs;

#[derive(Debug, Default)]
struct Desk {
    filled: u64,
}

/// One order in flight: each fill is answered with the next order.
struct PingPong;

fn send_order(out: &mut FixOutbox<'_>, now: Now) -> Result<(), Error> {
    let version = out.session().config().version;
    let order = NewOrder {
        cl_ord_id: "ORD-1",
        symbol: "HWIR",
        side: Side::Buy,
        qty: Decimal::new(5, 0),
        price: Some(Decimal::new(10_125, 2)),
        time_in_force: None,
        account: None,
    };
    out.send(now, NewOrder::MSG_TYPE, |e| {
        order.encode(e, version, now.utc)
    })?;
    Ok(())
}

impl FixHandler<Desk> for PingPong {
    fn on_logon(&mut self, out: &mut FixOutbox<'_>, now: Now, _: &mut Desk) -> Result<(), Error> {
        send_order(out, now)
    }

    fn on_message(
        &mut self,
        msg: Message<'_>,
        out: &mut FixOutbox<'_>,
        now: Now,
        desk: &mut Desk,
    ) -> Result<Flow, Error> {
        if msg.msg_type() == MsgType::ExecutionReport {
            let er = ExecReport::from_message(&msg).expect("execution report");
            assert_eq!(er.cl_ord_id, b"ORD-1");
            if er.is_filled() {
                desk.filled += 1;
                send_order(out, now)?;
            }
        }
        Ok(Flow::Continue)
    }
}

/// Orders filled: allocations over `n` after 1,000 to warm up.
/// Each run is its own session (`sender`): the venue keeps sequence numbers per session.
fn round_trips(url: &str, sender: &str, tls: Option<TlsConfig>, n: u64) -> usize {
    let mut config = SessionConfig::new(Version::Fix44, sender, "VENUE");
    config.heartbeat_interval = Duration::from_secs(30);
    // The file store: the in-memory one keeps every sent message in a growing Vec (for resends),
    // which would be counted here though it has nothing to do with TLS.
    let store = std::env::temp_dir().join(format!(
        "hotwire-fix-tls-alloc-{}-{sender}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&store);
    let mut endpoint = FixEndpoint::new(url, config, PingPong)
        .unwrap()
        .with_file_store(&store);
    if let Some(tls) = tls {
        endpoint = endpoint.with_tls(tls.build().unwrap());
    }
    let mut service = MioSelector::new().unwrap().into_io_service_with_context();
    service.register(endpoint);
    let mut desk = Desk::default();
    let mut run_to = |desk: &mut Desk, target: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while desk.filled < target {
            assert!(
                Instant::now() < deadline,
                "{url}: {} of {target} orders filled",
                desk.filled
            );
            service.poll(desk).expect("service poll");
        }
    };
    run_to(&mut desk, 1_000);
    let before = allocs();
    run_to(&mut desk, 1_000 + n);
    let allocations = allocs() - before;
    drop(service);
    let _ = std::fs::remove_dir_all(&store);
    allocations
}

#[test]
fn fix_orders_over_tls_do_not_allocate_with_either_backend() {
    let v = Venue::start(&VenueArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: false,
        tls_listen: "127.0.0.1:0".parse().unwrap(),
        cert_dir: None,
        rate: 1,
        size: 128,
        http_listen: None,
        fix_listen: Some("127.0.0.1:0".parse().unwrap()),
        https_listen: None,
        fixs_listen: Some("127.0.0.1:0".parse().unwrap()),
        client_ca: None,
        require_client_cert: false,
        chaos: None,
        chaos_every: 5.0,
        chaos_for: None,
        fix_log: None,
        ..VenueArgs::default()
    })
    .unwrap();
    let n = 5_000;
    let plain = round_trips(&format!("fix://{}", v.fix_addr.unwrap()), "PLAIN", None, n);
    let fixs = format!("fixs://localhost:{}", v.fixs_addr.unwrap().port());
    let mut counts = Vec::new();
    for backend in [TlsBackend::Openssl, TlsBackend::Rustls] {
        let tls = TlsConfig {
            backend,
            ..TlsConfig::with_ca_file(v.ca_pem.clone().unwrap())
        };
        let sender = format!("{backend:?}").to_uppercase();
        counts.push((backend, round_trips(&fixs, &sender, Some(tls), n)));
    }
    eprintln!("plain: {plain}, TLS: {counts:?} allocations for {n} orders and fills");
    assert_eq!(plain, 0, "plain: {plain} allocations for {n} orders");
    for (backend, count) in counts {
        assert_eq!(count, 0, "{backend:?}: {count} allocations for {n} orders");
    }
}
