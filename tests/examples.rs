//! The library examples, run against the embedded venue as a user would run them (the binaries
//! `cargo test` builds in target/<profile>/examples), and the venue modes they rely on.
#![cfg(all(feature = "ws", feature = "venue"))]

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use hotwire::app::venue::{Venue, VenueArgs};
use hotwire::prelude::*;

fn venue() -> Venue {
    Venue::start(&VenueArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: false,
        tls_listen: "127.0.0.1:0".parse().unwrap(),
        cert_dir: None,
        rate: 1000,
        size: 128,
        http_listen: Some("127.0.0.1:0".parse().unwrap()),
        #[cfg(feature = "fix")]
        fix_listen: Some("127.0.0.1:0".parse().unwrap()),
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

/// The number before `word` in `line` ("answered 31 pings" → 31 for "pings").
fn count_before(line: &str, word: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.trim_end_matches(',') == word)
        .unwrap_or_else(|| panic!("no {word:?} in {line:?}"));
    words[at - 1].parse().unwrap_or_else(|_| panic!("{line:?}"))
}

#[test]
fn ws_app_ping_answers_the_venue_and_times_its_own_pings() {
    let v = venue();
    let started = Instant::now();
    let out = Command::new(util::example("ws_app_ping"))
        .arg(format!("ws://{}/ping?every=100", v.ws_addr))
        .arg("3")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    let summary = stdout.lines().last().unwrap();
    // A venue ping every 100 ms for 3 s, each answered within 100 ms (or the venue would have
    // closed the connection: "0 disconnects").
    assert!(count_before(summary, "pings") >= 20, "{stdout}");
    assert!(count_before(summary, "round") >= 2, "{stdout}");
    assert!(summary.ends_with(" 0 disconnects"), "{stdout}");
    assert!(
        stdout
            .lines()
            .filter(|l| l.starts_with("round trip "))
            .count()
            >= 2,
        "{stdout}"
    );
}

#[cfg(all(feature = "http", feature = "tls-rustls"))]
#[test]
fn rest_poll_queues_follow_ups_from_its_responses() {
    let v = venue();
    let out = Command::new(util::example("rest_poll"))
        .arg(format!("http://{}", v.http_addr.unwrap()))
        .arg("2")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", out.status);
    let summary = stdout.lines().last().unwrap();
    // A time request every 200 ms for 2 s, each answered by a book follow-up.
    let times = count_before(summary, "time");
    let books = count_before(summary, "book");
    assert!(times >= 7, "{stdout}");
    assert!(books + 1 >= times && books <= times, "{stdout}");
    assert!(stdout.contains(r#""bids":"#), "{stdout}");
    assert!(summary.ends_with(" 0 disconnects"), "{stdout}");
}

#[cfg(all(feature = "fix", feature = "tls-rustls"))]
#[test]
fn fix_orders_fills_everything_and_does_not_log_on_twice() {
    let v = venue();
    let out = Command::new(util::example("fix_orders"))
        .arg(format!("fix://{}", v.fix_addr.unwrap()))
        .arg("100")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", out.status);
    assert!(
        stdout.ends_with("1 logon, 100 of 100 orders filled, ended: closed by the endpoint\n"),
        "{stdout}"
    );
}

#[test]
fn busy_poll_spins_on_a_pinned_core() {
    let v = venue();
    let out = Command::new(util::example("busy_poll"))
        .arg(format!("ws://{}/feed?rate=2000&size=64", v.ws_addr))
        .arg("2")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", out.status);
    let summary = stdout.lines().last().unwrap();
    // 2,000 messages a second for 2 s, less the handshake.
    assert!(count_before(summary, "messages") >= 3000, "{stdout}");
    // Busy polling: far more rounds than messages.
    assert!(
        count_before(summary, "rounds") > count_before(summary, "messages"),
        "{stdout}"
    );
}

#[test]
fn replay_handler_gets_the_live_digest_back_from_the_recording() {
    let v = venue();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(util::example("replay_handler"))
        .arg(format!("ws://{}/feed?rate=2000&size=64", v.ws_addr))
        .arg("2")
        .arg(dir.path().join("session.hwr"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", out.status);
    assert!(stdout.ends_with("identical\n"), "{stdout}");
    // The live run saw the feed: thousands of messages went through the handler twice.
    let live = stdout.lines().next().unwrap();
    let messages: u64 = live
        .split("messages: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(messages >= 2000, "{stdout}");
}

/// Hears the venue's pings, never answers; counts its own timer ticks.
#[derive(Default)]
struct Deaf {
    pings: u64,
    ticks: u64,
    ended: Option<(Option<u16>, String, Instant)>,
    connected: Option<Instant>,
}

impl WsHandler<()> for Deaf {
    fn on_frame(&mut self, frame: Frame<'_>, _: &mut WsOut<'_>, _: &mut ()) -> Result<Flow, Error> {
        if frame.text().is_some_and(|t| t.contains("\"ping\"")) {
            self.pings += 1;
        }
        Ok(Flow::Continue)
    }

    fn on_timer(&mut self, _: &mut WsOut<'_>, _: Instant, _: &mut ()) -> Result<Flow, Error> {
        self.ticks += 1;
        Ok(Flow::Continue)
    }

    fn on_event(&mut self, event: &Event<'_>, _: &mut ()) {
        match event {
            Event::Connected { .. } => self.connected = Some(Instant::now()),
            Event::Disconnected { reason, .. } => match reason {
                Disconnect::Closed { code, reason } => {
                    self.ended = Some((*code, reason.clone(), Instant::now()));
                }
                other => panic!("an orderly close is not an error: {other}"),
            },
            _ => {}
        }
    }
}

#[test]
fn the_venue_closes_a_client_that_does_not_answer_and_the_close_is_orderly() {
    let v = venue();
    // The policy's timer is the handler's timer (nothing else sets one): it must tick.
    let endpoint = WsEndpoint::new(
        &format!("ws://{}/ping?every=200", v.ws_addr),
        Deaf::default(),
    )
    .unwrap()
    .with_policy(Policy {
        timer: Some(Duration::from_millis(20)),
        reconnect: false,
        ..Policy::default()
    });
    let mut service = MioSelector::new()
        .unwrap()
        .into_io_service()
        .with_poll_timeout(Duration::from_millis(1));
    let id = service.register(endpoint);
    let deadline = Instant::now() + Duration::from_secs(10);
    while service.endpoint(id).handler().ended.is_none() {
        assert!(Instant::now() < deadline, "the venue never closed us");
        service.poll(&mut ()).unwrap();
    }
    let deaf = service.endpoint(id).handler();
    let (code, reason, at) = deaf.ended.clone().unwrap();
    assert_eq!(code, Some(1008));
    assert_eq!(reason, "no pong within 100 ms");
    assert_eq!(deaf.pings, 1);
    // First ping 200 ms after the handshake, closed 100 ms later (plus the venue's 2 ms reads).
    let open_for = at - deaf.connected.unwrap();
    assert!(
        open_for >= Duration::from_millis(290) && open_for < Duration::from_millis(1000),
        "{open_for:?}"
    );
    assert!(
        deaf.ticks >= 10,
        "{} timer ticks in {open_for:?}",
        deaf.ticks
    );
    assert_eq!(service.state(id), hotwire::service::EndpointState::Stopped);
}
