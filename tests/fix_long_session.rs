//! A week-long FIX session in miniature: a `FixEndpoint` with a file store sends many orders to the
//! venue's FIX acceptor (`hotwire venue --fix-listen`) and the test process's resident memory stays
//! flat, because the store keeps the resend window on disk, not in memory.
//!
//! It sends 200,000 orders (about 8 s in a debug build; `HOTWIRE_FIX_ORDERS` changes the count) and
//! prints the figures. RSS is read while the session is up (every 1,000 fills and at the last one):
//! the same session with the messages kept in memory grows by the size of the log (measured: 32,480
//! KiB), eight times the cap.
#![cfg(all(feature = "fix", feature = "venue"))]

mod util;

use std::io;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hotwire::fix::codec::{Decimal, Message, MsgType};
use hotwire::fix::endpoint::{FixEndpoint, FixHandler, FixOutbox};
use hotwire::fix::orders::{ExecReport, NewOrder, Side};
use hotwire::fix::{FileStore, MessageStore};
use hotwire::fix::{Now, SessionConfig, Version};
use hotwire::select::MioSelector;
use hotwire::service::IntoIoService;
use hotwire::service::{EndpointState, Flow, Policy};
use util::ChildGuard;

/// Resident memory may grow by at most this much between the end of the warm-up and the end of
/// the run (buffers reach their working size during the warm-up; the store must not grow after).
const RSS_GROWTH_CAP_KIB: u64 = 4 * 1024;
/// Orders in flight at once.
const WINDOW: u64 = 500;
/// Orders sent before the first RSS reading.
const WARM_UP: u64 = 5_000;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[derive(Debug, Default)]
struct Desk {
    sent: u64,
    filled: u64,
    rss_start: u64,
    rss_warm: u64,
    /// The highest reading after the warm-up, taken every 1,000 fills while the session is up.
    rss_peak: u64,
    /// The reading at the last fill, before the Logout (the store is still open).
    rss_last: u64,
}

struct Orders {
    count: u64,
    id: String,
}

impl Orders {
    fn send_one(&mut self, out: &mut FixOutbox<'_>, now: Now, desk: &mut Desk) -> io::Result<()> {
        use std::fmt::Write as _;
        self.id.clear();
        let _ = write!(self.id, "{}", desk.sent);
        let order = NewOrder {
            cl_ord_id: &self.id,
            symbol: "HWIR",
            side: Side::Buy,
            qty: Decimal::new(5, 0),
            price: Some(Decimal::new(10125, 2)),
            time_in_force: None,
            account: None,
        };
        let version = out.session().config().version;
        out.send(now, NewOrder::MSG_TYPE, |e| {
            order.encode(e, version, now.utc)
        })?;
        desk.sent += 1;
        Ok(())
    }
}

impl FixHandler<Desk> for Orders {
    fn on_logon(
        &mut self,
        out: &mut FixOutbox<'_>,
        now: Now,
        desk: &mut Desk,
    ) -> Result<(), hotwire::service::Error> {
        while desk.sent < WINDOW.min(self.count) {
            self.send_one(out, now, desk)?;
        }
        Ok(())
    }

    fn on_message(
        &mut self,
        msg: Message<'_>,
        out: &mut FixOutbox<'_>,
        now: Now,
        desk: &mut Desk,
    ) -> Result<Flow, hotwire::service::Error> {
        assert_eq!(msg.msg_type(), MsgType::ExecutionReport, "{msg:?}");
        let er = ExecReport::from_message(&msg).expect("an execution report");
        assert!(er.is_filled(), "{msg:?}");
        desk.filled += 1;
        if desk.filled == WARM_UP {
            desk.rss_warm = rss_kib();
        } else if desk.filled > WARM_UP && desk.filled % 1000 == 0 {
            desk.rss_peak = desk.rss_peak.max(rss_kib());
        }
        if desk.filled == self.count {
            desk.rss_last = rss_kib();
            desk.rss_peak = desk.rss_peak.max(desk.rss_last);
        }
        if desk.sent < self.count {
            self.send_one(out, now, desk)?;
        }
        Ok(if desk.filled == self.count {
            Flow::Close
        } else {
            Flow::Continue
        })
    }
}

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

fn long_session(count: u64) {
    let fix = SocketAddr::from(([127, 0, 0, 1], util::free_port()));
    let _venue = venue(fix);
    let store = tempfile::tempdir().unwrap();
    let mut config = SessionConfig::new(Version::Fix44, "LONG", "VENUE");
    config.heartbeat_interval = Duration::from_secs(5);
    let endpoint = FixEndpoint::new(
        &format!("fix://127.0.0.1:{}", fix.port()),
        config,
        Orders {
            count,
            id: String::with_capacity(24),
        },
    )
    .unwrap()
    .with_file_store(store.path())
    .with_policy(Policy {
        timer: Some(Duration::from_millis(100)),
        reconnect: false,
        ..Policy::default()
    });
    let mut service = MioSelector::new()
        .unwrap()
        .into_io_service_with_context()
        .with_poll_timeout(Duration::from_millis(5));
    let id = service.register(endpoint);
    let mut desk = Desk {
        rss_start: rss_kib(),
        ..Desk::default()
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(240);
    while service.state(id) != EndpointState::Stopped {
        assert!(Instant::now() < deadline, "not finished: {desk:?}");
        service.poll(&mut desk).expect("service poll");
    }
    let elapsed = started.elapsed();
    assert_eq!((desk.sent, desk.filled), (count, count));
    // Every order is on disk for resends, and reopening the store reads only its tail.
    let mut reopened = FileStore::open(store.path(), "LONG", "VENUE").unwrap();
    assert_eq!(
        reopened.next_sender_seq(),
        count + 3,
        "Logon, orders, Logout"
    );
    let first = reopened.sent(2).unwrap().map(<[u8]>::to_vec).unwrap();
    assert!(Message::parse_frame(&first).unwrap().get(11u32) == Some(&b"0"[..]));
    let log_bytes = std::fs::metadata(reopened.path()).unwrap().len();
    let growth = desk.rss_peak.saturating_sub(desk.rss_warm);
    println!(
        "{count} orders in {:.1} s: RSS {} KiB at start, {} KiB after {WARM_UP} fills, {} KiB at \
         the last fill, peak {} KiB (growth {growth} KiB, cap {RSS_GROWTH_CAP_KIB} KiB); log {} \
         KiB; reopening replayed {} bytes",
        elapsed.as_secs_f64(),
        desk.rss_start,
        desk.rss_warm,
        desk.rss_last,
        desk.rss_peak,
        log_bytes / 1024,
        reopened.replayed_on_open(),
    );
    assert!(
        desk.rss_warm > 0 && desk.rss_last > 0,
        "the readings were taken"
    );
    assert!(
        growth < RSS_GROWTH_CAP_KIB,
        "RSS grew from {} to {} KiB while the log grew to {} KiB",
        desk.rss_warm,
        desk.rss_peak,
        log_bytes / 1024
    );
    assert!(reopened.replayed_on_open() < 1024);
}

#[test]
fn a_long_session_keeps_rss_flat() {
    let count = std::env::var("HOTWIRE_FIX_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    long_session(count);
}
