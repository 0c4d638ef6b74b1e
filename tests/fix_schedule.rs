//! The FIX endpoint on a session schedule, against the venue's FIX acceptor (`hotwire venue
//! --fix-listen`), with windows computed from the current time: outside its window the endpoint
//! makes no connection attempt; at the end of a period it logs out; the first connection of the
//! next period starts both sequence numbers again.
#![cfg(all(feature = "fix", feature = "venue"))]

mod util;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotwire::fix::codec::{Decimal, Message};
use hotwire::fix::endpoint::{FixEndpoint, FixHandler, FixOutbox};
use hotwire::fix::orders::{NewOrder, Side};
use hotwire::fix::schedule::Schedule;
use hotwire::fix::MessageStore;
use hotwire::fix::{Now, SessionConfig, Version};
use hotwire::select::MioSelector;
use hotwire::service::IntoIoService;
use hotwire::service::{Disconnect, EndpointState, Event, Flow, Policy};
use util::ChildGuard;

fn venue(fix: SocketAddr) -> ChildGuard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotwire"));
    cmd.arg("venue")
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", util::free_port()))
        .arg("--fix-listen")
        .arg(fix.to_string())
        .stdout(Stdio::null());
    let mut guard = ChildGuard::spawn(&mut cmd);
    guard.wait_port(fix, Duration::from_secs(10));
    guard
}

/// Now as seconds since the epoch and the UTC second of the day `ahead` seconds from now, rounded
/// up to a whole second.
fn second_of_day(ahead: u64) -> (u64, u32) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let at = now.as_secs() + 1 + ahead;
    (at, (at % 86_400) as u32)
}

fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[derive(Debug, Default)]
struct Desk {
    /// The MsgSeqNum of each Logon we sent, and when it was answered (seconds since the epoch).
    logons: Vec<(u64, f64)>,
    /// Why each connection ended, and when.
    ends: Vec<(String, f64)>,
    requested_ends: usize,
}

struct Trader;

impl FixHandler<Desk> for Trader {
    fn on_logon(
        &mut self,
        out: &mut FixOutbox<'_>,
        now: Now,
        desk: &mut Desk,
    ) -> Result<(), hotwire::service::Error> {
        let logon_seq = out.session().store().next_sender_seq() - 1;
        desk.logons.push((logon_seq, epoch_secs()));
        let version = out.session().config().version;
        for id in ["a", "b", "c"] {
            let order = NewOrder {
                cl_ord_id: id,
                symbol: "HWIR",
                side: Side::Buy,
                qty: Decimal::new(1, 0),
                price: Some(Decimal::new(100, 0)),
                time_in_force: None,
                account: None,
            };
            out.send(now, NewOrder::MSG_TYPE, |e| {
                order.encode(e, version, now.utc)
            })?;
        }
        Ok(())
    }

    fn on_message(
        &mut self,
        _: Message<'_>,
        _: &mut FixOutbox<'_>,
        _: Now,
        _: &mut Desk,
    ) -> Result<Flow, hotwire::service::Error> {
        Ok(Flow::Continue)
    }

    fn on_event(&mut self, event: &Event<'_>, desk: &mut Desk) {
        if let Event::Disconnected { reason, .. } = event {
            desk.ends.push((reason.to_string(), epoch_secs()));
            if matches!(reason, Disconnect::PeriodEnd) {
                desk.requested_ends += 1;
            }
        }
    }
}

fn endpoint(port: u16, schedule: Schedule, store: &std::path::Path) -> FixEndpoint<Trader> {
    let mut config = SessionConfig::new(Version::Fix44, "SCHED", "VENUE");
    config.heartbeat_interval = Duration::from_secs(5);
    FixEndpoint::new(&format!("fix://127.0.0.1:{port}"), config, Trader)
        .unwrap()
        .with_file_store(store)
        .with_schedule(schedule)
        .with_policy(Policy {
            timer: Some(Duration::from_millis(50)),
            backoff_initial: Duration::from_millis(50),
            ..Policy::default()
        })
}

#[test]
fn outside_its_window_the_endpoint_makes_no_attempt() {
    let fix = SocketAddr::from(([127, 0, 0, 1], util::free_port()));
    let _venue = venue(fix);
    let store = tempfile::tempdir().unwrap();
    // A daily window that opens two seconds from now, for an hour.
    let (opens_at, start) = second_of_day(2);
    let schedule = Schedule::new(start, (start + 3600) % 86_400, None, "UTC").unwrap();
    let mut service = MioSelector::new()
        .unwrap()
        .into_io_service_with_context()
        .with_poll_timeout(Duration::from_millis(5));
    let id = service.register(endpoint(fix.port(), schedule, store.path()));
    let mut desk = Desk::default();
    let deadline = Instant::now() + Duration::from_secs(15);
    while desk.logons.is_empty() {
        assert!(Instant::now() < deadline, "never logged on: {desk:?}");
        service.poll(&mut desk).unwrap();
        if epoch_secs() < opens_at as f64 - 0.05 {
            assert_eq!(service.state(id), EndpointState::Waiting);
            assert_eq!(
                service.stats(id).attempts,
                0,
                "an attempt outside the window"
            );
        }
    }
    let (seq, at) = desk.logons[0];
    println!(
        "window opened at {opens_at}, logged on at {at:.3} after {} attempt(s)",
        service.stats(id).attempts
    );
    assert_eq!(seq, 1);
    assert!(at >= opens_at as f64, "logged on at {at} before {opens_at}");
    assert!(
        at < opens_at as f64 + 2.0,
        "logged on late: {at} vs {opens_at}"
    );
    assert_eq!(service.stats(id).attempts, 1);
}

#[test]
fn the_period_end_logs_out_and_the_next_period_resets_the_sequence() {
    let fix = SocketAddr::from(([127, 0, 0, 1], util::free_port()));
    let _venue = venue(fix);
    let store = tempfile::tempdir().unwrap();
    // A 24-hour daily session whose boundary is three seconds from now: the endpoint logs on in the
    // period ending then, logs out at the boundary and logs on again in the next period.
    let (boundary, at) = second_of_day(3);
    let schedule = Schedule::new(at, at, None, "UTC").unwrap();
    let mut service = MioSelector::new()
        .unwrap()
        .into_io_service_with_context()
        .with_poll_timeout(Duration::from_millis(5));
    let id = service.register(endpoint(fix.port(), schedule, store.path()));
    let mut desk = Desk::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while desk.logons.len() < 2 || service.state(id) != EndpointState::Established {
        assert!(Instant::now() < deadline, "no second session: {desk:?}");
        service.poll(&mut desk).unwrap();
    }
    println!("boundary {boundary}: {desk:?}");
    let boundary = boundary as f64;
    // First period: Logon 1 (a new store), three orders; the Logout at the boundary.
    assert_eq!(desk.logons[0].0, 1);
    assert!(desk.logons[0].1 < boundary);
    assert_eq!(desk.requested_ends, 1, "one clean close: {:?}", desk.ends);
    let (reason, ended) = &desk.ends[0];
    assert_eq!(reason, "end of the session period");
    assert!(
        *ended >= boundary && *ended < boundary + 1.5,
        "logged out at {ended}, boundary {boundary}"
    );
    // Next period: the numbers start again (Logon 1, not 6).
    assert_eq!(desk.logons[1].0, 1);
    assert!(desk.logons[1].1 >= boundary);
    // The store was started again in the new period.
    drop(service);
    let reopened = hotwire::fix::FileStore::open(store.path(), "SCHED", "VENUE").unwrap();
    let created = reopened.creation_time().expect("a creation time");
    assert!(created.0 as f64 / 1e9 >= boundary);
}
