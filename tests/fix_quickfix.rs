//! The FIX client against the QuickFIX C++ executor (a real acceptor nobody on this project wrote):
//! logon, 1,000 orders each answered by an ExecutionReport, TestRequests both ways, a sequence gap
//! recovered through the executor's ResendRequest (PossDup resend plus GapFill), an inbound gap
//! whose later messages are queued while only the missing ones are requested, a clean logout,
//! sequence numbers that continue across restarts and crashes, over TCP and TLS (both backends),
//! with FIX.4.2, FIX.4.4 and FIXT.1.1.
#![cfg(all(feature = "fix", feature = "tls-rustls", feature = "tls-openssl"))]

mod fix_support;
mod util;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use fix_support::{Executor, SessionSpec, EXECUTOR};
use hotwire::fix::clock;
use hotwire::fix::codec::{frame_len, Decimal, Message, MsgType};
use hotwire::fix::orders::{ExecReport, NewOrder, Side};
use hotwire::fix::{FileStore, MemoryStore, MessageStore, SessionState};
use hotwire::fix::{FixEvent, FixSession, SessionConfig, Version};
use hotwire::select::Selectable;
use hotwire::stream::tls::{TlsBackend, TlsConfig};
use hotwire::stream::{wait_fd, MaybeTls, Stream, TcpOptions, TcpStream};

const TIMEOUT: Duration = Duration::from_secs(30);

fn tcp(port: u16) -> TcpStream {
    TcpStream::connect(([127, 0, 0, 1], port).into(), &TcpOptions::default()).expect("connect")
}

fn config(version: Version, client: &str, reset: bool) -> SessionConfig {
    let mut c = SessionConfig::new(version, client, EXECUTOR);
    c.reset_on_logon = reset;
    c
}

/// Drives the connect and the Logon to completion.
fn logon<S: Stream, M: MessageStore>(fix: &mut FixSession<S, M>) {
    let deadline = Instant::now() + TIMEOUT;
    while !fix.poll_connect().expect("logon") {
        assert!(Instant::now() < deadline, "logon timed out");
        wait_fd(Selectable::raw_fd(fix), Duration::from_millis(5));
    }
    assert_eq!(fix.session().state(), SessionState::Active);
}

/// Receives until `done` says so, answering session traffic on the way; panics after TIMEOUT.
fn pump<S: Stream, M: MessageStore>(
    fix: &mut FixSession<S, M>,
    mut on_event: impl FnMut(FixEvent<'_>),
    mut done: impl FnMut(&FixSession<S, M>) -> bool,
) {
    let deadline = Instant::now() + TIMEOUT;
    while !done(fix) {
        assert!(Instant::now() < deadline, "timed out waiting");
        let now = clock();
        while let Some(ev) = fix.receive(now).expect("receive") {
            on_event(ev);
        }
        fix.flush().expect("flush");
        if !done(fix) && !fix.read_pending() {
            wait_fd(Selectable::raw_fd(fix), Duration::from_millis(5));
        }
    }
}

fn order_id(i: usize) -> String {
    format!("ORD-{i}")
}

/// Sends orders `range` and waits for a filled ExecutionReport for each.
fn orders_round_trip<S: Stream, M: MessageStore>(
    fix: &mut FixSession<S, M>,
    range: std::ops::Range<usize>,
) {
    let version = fix.session().config().version;
    for i in range.clone() {
        let now = clock();
        let id = order_id(i);
        let order = NewOrder {
            cl_ord_id: &id,
            symbol: "HWIR",
            side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
            qty: Decimal::new(100 + i as i64, 0),
            price: Some(Decimal::new(10_125, 2)),
            time_in_force: Some(b'0'),
            account: Some("ACC1"),
        };
        fix.send(now, NewOrder::MSG_TYPE, |e| {
            order.encode(e, version, now.utc)
        })
        .expect("send order");
    }
    let pending: RefCell<HashSet<String>> = RefCell::new(range.clone().map(order_id).collect());
    let filled = Cell::new(0);
    pump(
        fix,
        |ev| {
            if let FixEvent::App(msg) = ev {
                assert_eq!(msg.msg_type(), MsgType::ExecutionReport, "{msg:?}");
                let er = ExecReport::from_message(&msg).expect("execution report");
                assert!(er.is_filled(), "{msg:?}");
                assert_eq!(er.last_px, Some(Decimal::new(10_125, 2)));
                let id = std::str::from_utf8(er.cl_ord_id).unwrap();
                assert!(
                    pending.borrow_mut().remove(id),
                    "unexpected or duplicate report for {id}"
                );
                filled.set(filled.get() + 1);
            }
        },
        |_| pending.borrow().is_empty(),
    );
    assert_eq!(filled.get(), range.len());
}

fn logout<S: Stream, M: MessageStore>(fix: &mut FixSession<S, M>) {
    fix.logout(clock(), Some("bye")).expect("logout");
    let logged_out = Cell::new(false);
    pump(
        fix,
        |ev| {
            if let FixEvent::LoggedOut(_) = ev {
                logged_out.set(true);
            }
        },
        |f| f.session().state() == SessionState::Ended,
    );
    assert!(logged_out.get());
}

fn test_request<S: Stream, M: MessageStore>(fix: &mut FixSession<S, M>) {
    fix.test_request(clock()).expect("test request");
    assert!(fix.session().test_request_pending());
    pump(fix, |_| {}, |f| !f.session().test_request_pending());
}

#[test]
fn fix44_orders_test_requests_and_logout_over_tcp() {
    let Some(bin) = fix_support::executor() else {
        return;
    };
    let exec = Executor::start(
        &bin,
        &[SessionSpec {
            begin_string: "FIX.4.4",
            client: "CLIENT44",
            reset_on_logon: true,
        }],
        None,
    );
    let mut cfg = config(Version::Fix44, "CLIENT44", true);
    cfg.heartbeat_interval = Duration::from_secs(1);
    let mut fix = FixSession::new(tcp(exec.port), cfg, MemoryStore::new(), clock());
    logon(&mut fix);
    orders_round_trip(&mut fix, 0..1000);
    // Ours, answered by the executor.
    test_request(&mut fix);
    // Theirs: stay silent (no timer calls) for more than HeartBtInt + 20 %; the executor sends a
    // TestRequest, which `receive` answers.
    let quiet_until = Instant::now() + Duration::from_millis(4000);
    pump(&mut fix, |_| {}, |_| Instant::now() >= quiet_until);
    orders_round_trip(&mut fix, 1000..1010);
    logout(&mut fix);
    let log = exec.messages();
    let is = |m: &fix_support::Logged, t: &str| m.get(35) == Some(t);
    // The executor's TestRequest, answered by a Heartbeat carrying its TestReqID.
    let theirs = log
        .iter()
        .find(|m| !m.incoming && is(m, "1"))
        .expect("the executor sent no TestRequest");
    let id = theirs.get(112).expect("TestReqID");
    assert!(log
        .iter()
        .any(|m| m.incoming && is(m, "0") && m.get(112) == Some(id)));
    // Ours, answered the same way.
    assert!(log
        .iter()
        .any(|m| !m.incoming && is(m, "0") && m.get(112) == Some("TEST-1")));
    // One Logout each way, ours first.
    let logouts: Vec<bool> = log
        .iter()
        .filter(|m| is(m, "5"))
        .map(|m| m.incoming)
        .collect();
    assert_eq!(logouts, [true, false]);
}

#[test]
fn fix42_and_fixt11_sessions() {
    let Some(bin) = fix_support::executor() else {
        return;
    };
    let exec = Executor::start(
        &bin,
        &[
            SessionSpec {
                begin_string: "FIX.4.2",
                client: "CLIENT42",
                reset_on_logon: true,
            },
            SessionSpec {
                begin_string: "FIXT.1.1",
                client: "CLIENT50",
                reset_on_logon: true,
            },
        ],
        None,
    );
    for (version, client) in [(Version::Fix42, "CLIENT42"), (Version::Fixt11, "CLIENT50")] {
        let mut cfg = config(version, client, true);
        if version == Version::Fixt11 {
            // The example executor cracks FIX 5.0 application messages (ApplVerID 7).
            cfg.default_appl_ver_id = "7".into();
        }
        let mut fix = FixSession::new(tcp(exec.port), cfg, MemoryStore::new(), clock());
        logon(&mut fix);
        orders_round_trip(&mut fix, 0..100);
        test_request(&mut fix);
        logout(&mut fix);
    }
}

#[test]
fn fix44_over_tls_with_both_backends() {
    let Some(bin) = fix_support::executor() else {
        return;
    };
    let pki = util::TestPki::new();
    let exec = Executor::start(
        &bin,
        &[SessionSpec {
            begin_string: "FIX.4.4",
            client: "CLIENTTLS",
            reset_on_logon: true,
        }],
        Some((&pki.rsa_cert, &pki.rsa_key)),
    );
    for backend in [TlsBackend::Rustls, TlsBackend::Openssl] {
        let tls = TlsConfig {
            backend,
            ..TlsConfig::with_ca_file(&pki.ca_pem)
        }
        .build()
        .expect("TLS connector");
        let stream = MaybeTls::new(tcp(exec.port), Some(&tls), "localhost").expect("TLS");
        let cfg = config(Version::Fix44, "CLIENTTLS", true);
        let mut fix = FixSession::new(stream, cfg, MemoryStore::new(), clock());
        logon(&mut fix);
        assert!(fix.get_ref().is_tls());
        orders_round_trip(&mut fix, 0..1000);
        test_request(&mut fix);
        logout(&mut fix);
    }
}

/// Fault injection: drops the outgoing messages whose MsgSeqNum is in `drop`, as if the network
/// lost them, so the counterparty sees a gap.
struct DropSeq<S> {
    inner: S,
    framing: Vec<u8>,
    out: Vec<u8>,
    drop: Vec<u64>,
    dropped: Vec<(u64, MsgType)>,
}

impl<S: Stream> DropSeq<S> {
    fn push_out(&mut self) -> io::Result<()> {
        while !self.out.is_empty() {
            match self.inner.write(&self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<S: Stream> Read for DropSeq<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<S: Stream> Write for DropSeq<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.framing.extend_from_slice(buf);
        while let Some(n) = frame_len(&self.framing, 1 << 16).expect("own framing") {
            let msg = Message::parse_frame(&self.framing[..n]).expect("own message");
            let seq = msg.seq_num().unwrap();
            if self.drop.contains(&seq) && !msg.poss_dup() {
                self.drop.retain(|&s| s != seq);
                self.dropped.push((seq, msg.msg_type()));
            } else {
                self.out.extend_from_slice(&self.framing[..n]);
            }
            self.framing.drain(..n);
        }
        match self.push_out() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.push_out()?;
        self.inner.flush()
    }
}

impl<S: Stream> Stream for DropSeq<S> {
    fn poll_connect(&mut self) -> io::Result<bool> {
        self.inner.poll_connect()
    }
    fn read_pending(&self) -> bool {
        self.inner.read_pending()
    }
    fn raw_fd(&self) -> Option<RawFd> {
        self.inner.raw_fd()
    }
}

#[test]
fn sequence_gap_is_recovered_through_the_executors_resend_request() {
    let Some(bin) = fix_support::executor() else {
        return;
    };
    let exec = Executor::start(
        &bin,
        &[SessionSpec {
            begin_string: "FIX.4.4",
            client: "CLIENTGAP",
            reset_on_logon: true,
        }],
        None,
    );
    // Logon is 1, orders 2..=11, a TestRequest 12, orders 13..: lose order 5 and the TestRequest.
    let stream = DropSeq {
        inner: tcp(exec.port),
        framing: Vec::new(),
        out: Vec::new(),
        drop: vec![5, 12],
        dropped: Vec::new(),
    };
    let cfg = config(Version::Fix44, "CLIENTGAP", true);
    let mut fix = FixSession::new(stream, cfg, MemoryStore::new(), clock());
    logon(&mut fix);
    orders_round_trip(&mut fix, 0..10);
    assert_eq!(
        fix.get_ref().dropped,
        [(5, MsgType::NewOrderSingle)],
        "order 5 was lost and recovered: its report arrived"
    );
    fix.test_request(clock()).expect("test request");
    // The executor never saw the TestRequest; the next orders reveal the gap.
    orders_round_trip(&mut fix, 10..20);
    assert_eq!(fix.get_ref().dropped.len(), 2);
    test_request(&mut fix);
    logout(&mut fix);
    let log = exec.messages();
    let is = |m: &fix_support::Logged, t: &str| m.get(35) == Some(t);
    let requests: Vec<(Option<&str>, Option<&str>)> = log
        .iter()
        .filter(|m| !m.incoming && is(m, "2"))
        .map(|m| (m.get(7), m.get(16)))
        .collect();
    assert_eq!(requests, [(Some("5"), Some("0")), (Some("12"), Some("0"))]);
    // Order 5 resent as a possible duplicate with its original time; the TestRequest gap-filled.
    assert!(log.iter().any(|m| m.incoming
        && is(m, "D")
        && m.get(34) == Some("5")
        && m.get(43) == Some("Y")
        && m.get(122).is_some()));
    assert!(log.iter().any(|m| m.incoming
        && is(m, "4")
        && m.get(34) == Some("12")
        && m.get(123) == Some("Y")
        && m.get(36) == Some("13")));
}

#[test]
fn sequence_numbers_continue_across_restarts_and_crashes() {
    let Some(bin) = fix_support::executor() else {
        return;
    };
    let exec = Executor::start(
        &bin,
        &[SessionSpec {
            begin_string: "FIX.4.4",
            client: "CLIENTR",
            reset_on_logon: false,
        }],
        None,
    );
    let store_dir = tempfile::tempdir().unwrap();
    let open = || FileStore::open(store_dir.path(), "CLIENTR", EXECUTOR).expect("store");
    // First session: both sides start from 1.
    let mut fix = FixSession::new(
        tcp(exec.port),
        config(Version::Fix44, "CLIENTR", true),
        open(),
        clock(),
    );
    logon(&mut fix);
    orders_round_trip(&mut fix, 0..10);
    logout(&mut fix);
    let (out, inb) = {
        let s = fix.session().store();
        (s.next_sender_seq(), s.next_target_seq())
    };
    assert_eq!(out, 13, "logon, ten orders, logout");
    drop(fix);

    // A restart: the next session continues both sequences; the executor agrees without a reset.
    for round in 0..2 {
        let store = open();
        // Round 0 sends a Logon and five orders, then crashes.
        assert_eq!(store.next_sender_seq(), out + round * 6);
        let mut fix = FixSession::new(
            tcp(exec.port),
            config(Version::Fix44, "CLIENTR", false),
            store,
            clock(),
        );
        let expected_in = fix.session().store().next_target_seq();
        assert!(expected_in >= inb);
        logon(&mut fix);
        orders_round_trip(
            &mut fix,
            100 * (round as usize + 1)..100 * (round as usize + 1) + 5,
        );
        if round == 0 {
            // A crash: the connection just drops, no Logout.
            drop(fix);
            std::thread::sleep(Duration::from_millis(300));
        } else {
            logout(&mut fix);
        }
    }
    let log = exec.messages();
    let logons: Vec<Option<&str>> = log
        .iter()
        .filter(|m| m.incoming && m.get(35) == Some("A"))
        .map(|m| m.get(34))
        .collect();
    assert_eq!(logons, [Some("1"), Some("13"), Some("19")]);
    assert!(
        !log.iter()
            .any(|m| matches!(m.get(35), Some("2" | "3" | "4"))),
        "no resend, reject or reset was needed: {log:?}"
    );
}

/// Fault injection on the receive side: drops the incoming messages whose MsgSeqNum is in `drop`
/// (first copies only, not resends), as if the network lost them.
struct DropIn<S> {
    inner: S,
    framing: Vec<u8>,
    ready: Vec<u8>,
    drop: Vec<u64>,
    dropped: Vec<u64>,
}

impl<S: Stream> Read for DropIn<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.ready.is_empty() {
            let mut chunk = [0u8; 16 << 10];
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                return Ok(0);
            }
            self.framing.extend_from_slice(&chunk[..n]);
            while let Some(len) = frame_len(&self.framing, 1 << 16).expect("executor framing") {
                let msg = Message::parse_frame(&self.framing[..len]).expect("executor message");
                let seq = msg.seq_num().unwrap();
                if self.drop.contains(&seq) && !msg.poss_dup() {
                    self.drop.retain(|&s| s != seq);
                    self.dropped.push(seq);
                } else {
                    self.ready.extend_from_slice(&self.framing[..len]);
                }
                self.framing.drain(..len);
            }
        }
        let n = buf.len().min(self.ready.len());
        buf[..n].copy_from_slice(&self.ready[..n]);
        self.ready.drain(..n);
        Ok(n)
    }
}

impl<S: Stream> Write for DropIn<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<S: Stream> Stream for DropIn<S> {
    fn poll_connect(&mut self) -> io::Result<bool> {
        self.inner.poll_connect()
    }
    fn read_pending(&self) -> bool {
        !self.ready.is_empty() || self.inner.read_pending()
    }
    fn raw_fd(&self) -> Option<RawFd> {
        self.inner.raw_fd()
    }
}

#[test]
fn inbound_gap_queues_what_follows_and_requests_only_the_missing() {
    let Some(bin) = fix_support::executor() else {
        return;
    };
    let exec = Executor::start(
        &bin,
        &[SessionSpec {
            begin_string: "FIX.4.4",
            client: "CLIENTQ",
            reset_on_logon: true,
        }],
        None,
    );
    // The executor's Logon is 1, its reports 2..=21: lose 4, and 9 and 10.
    let stream = DropIn {
        inner: tcp(exec.port),
        framing: Vec::new(),
        ready: Vec::new(),
        drop: vec![4, 9, 10],
        dropped: Vec::new(),
    };
    let cfg = config(Version::Fix44, "CLIENTQ", true);
    let mut fix = FixSession::new(stream, cfg, MemoryStore::new(), clock());
    logon(&mut fix);
    let version = fix.session().config().version;
    for i in 0..20 {
        let now = clock();
        let id = order_id(i);
        let order = NewOrder {
            cl_ord_id: &id,
            symbol: "HWIR",
            side: Side::Buy,
            qty: Decimal::new(10, 0),
            price: Some(Decimal::new(10_125, 2)),
            time_in_force: Some(b'0'),
            account: None,
        };
        fix.send(now, NewOrder::MSG_TYPE, |e| {
            order.encode(e, version, now.utc)
        })
        .expect("send order");
    }
    // Every report arrives once, in MsgSeqNum order, the resent ones with PossDupFlag.
    let delivered: RefCell<Vec<(u64, bool)>> = RefCell::new(Vec::new());
    pump(
        &mut fix,
        |ev| {
            if let FixEvent::App(msg) = ev {
                assert_eq!(msg.msg_type(), MsgType::ExecutionReport, "{msg:?}");
                delivered
                    .borrow_mut()
                    .push((msg.seq_num().unwrap(), msg.poss_dup()));
            }
        },
        |_| delivered.borrow().len() == 20,
    );
    let delivered = delivered.into_inner();
    let seqs: Vec<u64> = delivered.iter().map(|&(s, _)| s).collect();
    assert_eq!(seqs, (2..=21).collect::<Vec<_>>());
    let resent: Vec<u64> = delivered.iter().filter(|d| d.1).map(|d| d.0).collect();
    assert_eq!(resent, [4, 9, 10], "only the lost ones came twice");
    assert_eq!(fix.get_ref().dropped, [4, 9, 10]);
    assert_eq!(fix.session().queued(), 0);
    logout(&mut fix);
    let log = exec.messages();
    let requests: Vec<(Option<&str>, Option<&str>)> = log
        .iter()
        .filter(|m| m.incoming && m.get(35) == Some("2"))
        .map(|m| (m.get(7), m.get(16)))
        .collect();
    assert_eq!(requests, [(Some("4"), Some("4")), (Some("9"), Some("10"))]);
    let possdup_sent = log
        .iter()
        .filter(|m| !m.incoming && m.get(43) == Some("Y"))
        .count();
    assert_eq!(
        possdup_sent, 3,
        "the executor resent three messages, no more"
    );
}
