//! The gateway's paths end to end with a Rust strategy inside the test: strategy frames to a
//! WebSocket (the venue's echo sends them back on `.../in`), what is refused and counted (scraped
//! from the appliance's `hotwire_gateway_*` metrics), exact drop counts with
//! `publish_overflow = "drop_newest"` and `"drop_oldest"`, HTTP response bodies (kind 4, and no `.../send`), and a FIX
//! session Reject from the QuickFIX executor coming back on `.../in`, and a venue that fragments
//! its messages (each published whole, as one sample).
//!
//! Each test has an iceoryx2 prefix of its own (`HOTWIRE_GATEWAY_PREFIX`); they run one at a
//! time (each starts two or three processes on a two-core machine).
#![cfg(all(feature = "gateway", feature = "venue"))]

mod fix_support;
mod util;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hotwire::gateway::{HotwireHeader, Kind};
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use util::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_hotwire");

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

type In = Subscriber<ipc::Service, [u8], HotwireHeader>;
type Out = Publisher<ipc::Service, [u8], HotwireHeader>;
type Factory = iceoryx2::service::port_factory::publish_subscribe::PortFactory<
    ipc::Service,
    [u8],
    HotwireHeader,
>;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// One test's world: its prefix, a temporary directory, the strategy's node and the metrics port.
struct World {
    prefix: String,
    config: Config,
    dir: tempfile::TempDir,
    metrics: u16,
    node: Node<ipc::Service>,
}

impl World {
    fn new(tag: &str) -> World {
        let prefix = format!("hwp{}{tag}_", std::process::id());
        let mut config = Config::default();
        config.global.prefix = FileName::new(prefix.as_bytes()).unwrap();
        let node = NodeBuilder::new()
            .config(&config)
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<ipc::Service>()
            .unwrap();
        World {
            prefix,
            config,
            dir: tempfile::tempdir().unwrap(),
            metrics: util::free_port(),
            node,
        }
    }

    /// `hotwire run` on `endpoints` plus a metrics listener, waited for until it serves metrics.
    fn appliance(&self, endpoints: &str) -> ChildGuard {
        let path = self.dir.path().join("app.toml");
        let toml = format!(
            "{endpoints}\n[metrics]\nlisten = \"127.0.0.1:{}\"\n",
            self.metrics
        );
        std::fs::write(&path, toml).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg(&path)
            .args(["--duration", "40"])
            .env("HOTWIRE_GATEWAY_PREFIX", &self.prefix)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("app.log")).unwrap());
        let mut g = ChildGuard::spawn(&mut cmd);
        g.wait_port(addr(self.metrics), Duration::from_secs(10));
        g
    }

    fn open(&self, name: &str) -> Factory {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self
                .node
                .service_builder(&name.try_into().unwrap())
                .publish_subscribe::<[u8]>()
                .user_header::<HotwireHeader>()
                .open()
            {
                Ok(s) => return s,
                Err(e) => assert!(Instant::now() < deadline, "{name}: {e:?}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn subscribe(&self, name: &str) -> In {
        let s = self.open(name);
        let depth = s.static_config().subscriber_max_buffer_size();
        s.subscriber_builder().buffer_size(depth).create().unwrap()
    }

    fn publisher(&self, name: &str) -> Out {
        self.open(name)
            .publisher_builder()
            .initial_max_slice_len(32 * 1024)
            .backpressure_strategy(BackpressureStrategy::DiscardData)
            .create()
            .unwrap()
    }

    fn scrape(&self) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{}/metrics", self.metrics))
            .output()
            .expect("run curl");
        assert!(out.status.success(), "curl the metrics");
        String::from_utf8(out.stdout).unwrap()
    }

    /// Waits until `name` of `endpoint` is `want`; returns the last scrape.
    fn wait_metric(&self, name: &str, endpoint: &str, want: f64) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.scrape();
            if metric(&text, name, endpoint) == Some(want) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{name}{{endpoint={endpoint:?}}} never {want}:\n{text}\n{}",
                std::fs::read_to_string(self.dir.path().join("app.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for e in std::fs::read_dir("/dev/shm")
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(&self.prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The value of the series `name{endpoint="<endpoint>",...}` in a scrape.
fn metric(text: &str, name: &str, endpoint: &str) -> Option<f64> {
    let head = format!("{name}{{endpoint=\"{endpoint}\"");
    text.lines()
        .find(|l| l.starts_with(&head))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

fn gw(text: &str, counter: &str, endpoint: &str) -> f64 {
    let name = format!("hotwire_gateway_{counter}_total");
    metric(text, &name, endpoint).unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

fn publish(p: &Out, kind: u32, body: &[u8]) {
    let mut s = p.loan_slice_uninit(body.len()).unwrap();
    *s.user_header_mut() = HotwireHeader {
        recv_ns: hotwire::gateway::realtime_ns(),
        kind,
        ..HotwireHeader::default()
    };
    s.write_from_slice(body).send().unwrap();
}

/// Receives until `n` samples arrived (or 10 s passed): (seq, kind, payload).
fn receive(sub: &In, n: usize) -> Vec<(u64, u32, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        match sub.receive().unwrap() {
            Some(s) => {
                let h = s.user_header();
                got.push((h.seq, h.kind, s.payload().to_vec()))
            }
            None => std::thread::sleep(Duration::from_micros(200)),
        }
    }
    got
}

fn stop(g: &mut ChildGuard) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(g.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while g.child().try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the appliance did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn venue(ws: u16, http: Option<u16>) -> ChildGuard {
    let mut cmd = Command::new(BIN);
    cmd.args(["venue", "--listen"])
        .arg(addr(ws).to_string())
        .stdout(Stdio::null());
    if let Some(h) = http {
        cmd.arg("--http-listen").arg(addr(h).to_string());
    }
    let mut g = ChildGuard::spawn(&mut cmd);
    g.wait_port(addr(ws), Duration::from_secs(10));
    if let Some(h) = http {
        g.wait_port(addr(h), Duration::from_secs(10));
    }
    g
}

#[test]
fn strategy_frames_reach_the_websocket_and_refusals_are_counted() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = World::new("e");
    let ws = util::free_port();
    let _venue = venue(ws, None);
    let mut app = w.appliance(&format!(
        "[[endpoint]]\nname = \"echo\"\nurl = \"ws://127.0.0.1:{ws}/echo\"\npublish = true\n\
         publish_max_message = 1024\n"
    ));
    w.wait_metric("hotwire_endpoint_up", "echo", 1.0);
    let sub = w.subscribe("hotwire/echo/in");
    let out = w.publisher("hotwire/echo/send");
    let full = vec![b'a'; 1024];
    publish(&out, Kind::Text as u32, b"hello");
    publish(&out, Kind::Binary as u32, &[0, 1, 2, 255]);
    publish(&out, Kind::Fix as u32, b"35=D\x01"); // no place on a WebSocket
    publish(&out, Kind::Text as u32, &[0xff, 0xfe]); // not UTF-8
    publish(&out, Kind::Binary as u32, &[7; 2000]); // above publish_max_message
    publish(&out, Kind::Text as u32, &full);
    let got = receive(&sub, 3);
    assert_eq!(
        got,
        [
            (1, 1, b"hello".to_vec()),
            (2, 2, vec![0, 1, 2, 255]),
            (3, 1, full.clone())
        ]
    );
    let text = w.wait_metric("hotwire_gateway_refused_total", "echo", 3.0);
    assert_eq!(gw(&text, "sent", "echo"), 3.0);
    assert_eq!(gw(&text, "oversized", "echo"), 1.0);
    assert_eq!(gw(&text, "published", "echo"), 3.0);
    assert_eq!(gw(&text, "dropped", "echo"), 0.0);
    // The session stayed up through the refusals.
    assert_eq!(metric(&text, "hotwire_endpoint_up", "echo"), Some(1.0));
    stop(&mut app);
}

/// One unmasked server frame (payloads under 126 bytes).
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | opcode, payload.len() as u8];
    f.extend_from_slice(payload);
    f
}

#[test]
fn a_fragmented_message_is_published_whole_as_one_sample() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = World::new("f");
    // A venue that fragments: text "hello world" in three frames with a ping between two of
    // them, binary [1, 2, 3] in two, then an unfragmented text; each write on its own so the
    // appliance reads the fragments apart.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        use std::io::Write as _;
        let (mut s, _) = listener.accept().unwrap();
        util::ws_accept(&mut s);
        std::thread::sleep(Duration::from_millis(500));
        for f in [
            frame(false, 1, b"hel"),
            frame(false, 0, b"lo w"),
            frame(true, 9, b"ping"),
            frame(true, 0, b"orld"),
            frame(false, 2, &[1, 2]),
            frame(true, 0, &[3]),
            frame(true, 1, b"whole"),
        ] {
            s.write_all(&f).unwrap();
            s.flush().unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    });
    let mut app = w.appliance(&format!(
        "[[endpoint]]\nname = \"frag\"\nurl = \"ws://127.0.0.1:{port}/feed\"\npublish = true\n\
         reconnect = {{ enabled = false }}\n"
    ));
    let sub = w.subscribe("hotwire/frag/in");
    let got = receive(&sub, 3);
    assert_eq!(
        got,
        [
            (1, Kind::Text as u32, b"hello world".to_vec()),
            (2, Kind::Binary as u32, vec![1, 2, 3]),
            (3, Kind::Text as u32, b"whole".to_vec()),
        ]
    );
    let text = w.wait_metric("hotwire_gateway_published_total", "frag", 3.0);
    assert_eq!(gw(&text, "dropped", "frag"), 0.0);
    stop(&mut app);
    drop(peer.join().unwrap());
}

#[test]
fn drop_newest_counts_every_sample_a_full_subscriber_missed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = World::new("d");
    let ws = util::free_port();
    let _venue = venue(ws, None);
    // One feed connection of 3,000 messages (no reconnect); the echo endpoint keeps the
    // appliance running after it.
    let mut app = w.appliance(&format!(
        "[[endpoint]]\nname = \"feed\"\nurl = \"ws://127.0.0.1:{ws}/feed?rate=2000&size=64&count=3000\"\n\
         publish = true\npublish_overflow = \"drop_newest\"\nreconnect = {{ enabled = false }}\n\n\
         [[endpoint]]\nname = \"idle\"\nurl = \"ws://127.0.0.1:{ws}/echo\"\n"
    ));
    let sub = w.subscribe("hotwire/feed/in");
    let text = w.wait_metric("hotwire_gateway_published_total", "feed", 3000.0);
    // A subscriber that never read: its 1,024 slots hold the oldest samples it was offered,
    // and every later sample is one counted drop.
    let seqs: Vec<u64> = receive(&sub, 1024).iter().map(|s| s.0).collect();
    assert_eq!(seqs.len(), 1024, "{seqs:?}");
    let first = seqs[0];
    assert!(first < 3000 - 1024, "joined too late to fill up: {first}");
    assert_eq!(seqs, (first..first + 1024).collect::<Vec<u64>>());
    assert!(sub.receive().unwrap().is_none());
    let offered = 3000 - (first - 1);
    assert_eq!(
        gw(&text, "subscriber_drops", "feed"),
        (offered - 1024) as f64,
        "first seq {first}"
    );
    assert_eq!(gw(&text, "dropped", "feed"), 0.0);
    stop(&mut app);
}

#[test]
fn drop_oldest_counts_every_sample_pushed_out_of_a_full_subscriber() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = World::new("o");
    // A venue that sends 3,000 binary messages once told to (the subscriber is there first).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let peer = std::thread::spawn(move || {
        use std::io::Write as _;
        let (mut s, _) = listener.accept().unwrap();
        util::ws_accept(&mut s);
        wait.recv().unwrap();
        let mut out = Vec::new();
        for i in 0..3000u32 {
            out.extend(frame(true, 2, &i.to_be_bytes()));
        }
        s.write_all(&out).unwrap();
        s.flush().unwrap();
        s
    });
    // The default `publish_overflow` is "drop_oldest".
    let mut app = w.appliance(&format!(
        "[[endpoint]]\nname = \"feed\"\nurl = \"ws://127.0.0.1:{port}/feed\"\npublish = true\n\
         reconnect = {{ enabled = false }}\n"
    ));
    let sub = w.subscribe("hotwire/feed/in");
    w.wait_metric("hotwire_endpoint_up", "feed", 1.0);
    go.send(()).unwrap();
    let text = w.wait_metric("hotwire_gateway_published_total", "feed", 3000.0);
    // A subscriber that never read holds the newest 1,024 samples; each of the 1,976 older
    // ones was pushed out of its queue and counted.
    let got = receive(&sub, 1024);
    let seqs: Vec<u64> = got.iter().map(|s| s.0).collect();
    assert_eq!(seqs, (3000 - 1023..=3000).collect::<Vec<u64>>());
    assert_eq!(got[0].2, (3000u32 - 1024).to_be_bytes());
    assert!(sub.receive().unwrap().is_none());
    assert_eq!(gw(&text, "subscriber_drops", "feed"), 1976.0);
    assert_eq!(gw(&text, "dropped", "feed"), 0.0);
    stop(&mut app);
    drop(peer.join().unwrap());
}

#[test]
fn http_bodies_are_published_as_kind_4_and_http_takes_no_orders() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = World::new("h");
    let (ws, http) = (util::free_port(), util::free_port());
    let _venue = venue(ws, Some(http));
    let mut app = w.appliance(&format!(
        "[[endpoint]]\nname = \"rest\"\nurl = \"http://127.0.0.1:{http}/\"\npublish = true\n\
         interval = \"20ms\"\nrequests = [{{ target = \"/api/time\" }}]\n"
    ));
    let sub = w.subscribe("hotwire/rest/in");
    let got = receive(&sub, 5);
    assert_eq!(got.len(), 5);
    for (i, (seq, kind, body)) in got.iter().enumerate() {
        assert_eq!(*kind, Kind::HttpBody as u32);
        assert!(body.starts_with(b"{\"server_ns\":"), "{body:?}");
        if i > 0 {
            assert_eq!(*seq, got[i - 1].0 + 1);
        }
    }
    let send: ServiceName = "hotwire/rest/send".try_into().unwrap();
    let exists =
        ipc::Service::does_exist(&send, &w.config, MessagingPattern::PublishSubscribe).unwrap();
    assert!(!exists, "an HTTP endpoint has no .../send");
    stop(&mut app);
}

#[test]
fn a_fix_session_reject_comes_back_on_in() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(bin) = fix_support::executor() else {
        return;
    };
    let exec = fix_support::Executor::start(
        &bin,
        &[fix_support::SessionSpec {
            begin_string: "FIX.4.4",
            client: "HW",
            reset_on_logon: true,
        }],
        None,
    );
    let w = World::new("f");
    let mut app = w.appliance(&format!(
        "[[endpoint]]\nname = \"orders\"\nurl = \"fix://127.0.0.1:{}\"\npublish = true\n\
         fix = {{ sender = \"HW\", target = \"{}\", begin_string = \"FIX.4.4\", reset = true }}\n",
        exec.port,
        fix_support::EXECUTOR
    ));
    let replies = w.subscribe("hotwire/orders/in");
    let out = w.publisher("hotwire/orders/send");
    w.wait_metric("hotwire_endpoint_up", "orders", 1.0);
    let now = time_field();
    // A limit order the executor fills, then a market order its example application refuses:
    // QuickFIX answers IncorrectTagValue with a session-level Reject (35=3).
    for (id, ord_type) in [("G1", "2"), ("G2", "1")] {
        let order = format!(
            "35=D\x0111={id}\x0121=1\x0155=HWX\x0154=1\x0160={now}\x0138=1\x0140={ord_type}\x0144=10\x01"
        );
        publish(&out, Kind::Fix as u32, order.as_bytes());
    }
    let got = receive(&replies, 2);
    let types: Vec<String> = got
        .iter()
        .map(|(_, kind, m)| {
            assert_eq!(*kind, Kind::Fix as u32);
            let m = String::from_utf8_lossy(m).replace('\x01', "|");
            let t = m
                .split('|')
                .find_map(|f| f.strip_prefix("35="))
                .unwrap_or("");
            format!("{t} {}", m.contains("|11=G1|") || m.contains("|45="))
        })
        .collect();
    assert_eq!(types, ["8 true", "3 true"], "{got:?}");
    let text = w.scrape();
    assert_eq!(gw(&text, "sent", "orders"), 2.0);
    assert_eq!(gw(&text, "refused", "orders"), 0.0);
    stop(&mut app);
    drop(exec);
}

/// `YYYYMMDD-HH:MM:SS` (UTC) for TransactTime.
fn time_field() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y%m%d-%H:%M:%S"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_venue_that_stops_reading_leaves_the_backlog_in_iceoryx2() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = World::new("b");
    // A WebSocket venue that completes the handshake and then never reads again, with a small
    // receive buffer so the kernel holds little.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(&addr(0).into()).unwrap();
    socket.listen(1).unwrap();
    let listener: std::net::TcpListener = socket.into();
    let port = listener.local_addr().unwrap().port();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let venue = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let ws = tungstenite::accept(stream).unwrap();
        let _ = done_rx.recv_timeout(Duration::from_secs(30));
        drop(ws);
    });
    let mut app = w.appliance(&format!(
        "[[endpoint]]\nname = \"stuck\"\nurl = \"ws://127.0.0.1:{port}/\"\npublish = true\n\
         reconnect = {{ enabled = false }}\n"
    ));
    w.wait_metric("hotwire_endpoint_up", "stuck", 1.0);
    let out = w.publisher("hotwire/stuck/send");
    let frame = vec![0x5a; 16 * 1024];
    for _ in 0..1500 {
        publish(&out, Kind::Binary as u32, &frame);
    }
    let sent = |w: &World| gw(&w.scrape(), "sent", "stuck");
    std::thread::sleep(Duration::from_secs(2));
    let first = sent(&w);
    std::thread::sleep(Duration::from_secs(1));
    let second = sent(&w);
    // The session stopped taking: its memory holds at most the threshold plus one drain's worth
    // (and the kernel its socket buffer); the rest waits in iceoryx2's bounded queue.
    assert_eq!(first, second, "still taking while the venue reads nothing");
    let bound = hotwire::gateway::SEND_BACKLOG
        + hotwire::gateway::SEND_PER_DRAIN * frame.len()
        + 8 * 1024 * 1024;
    assert!(
        second > 0.0 && second * (frame.len() as f64) < bound as f64,
        "{second} frames taken"
    );
    let text = w.scrape();
    assert_eq!(gw(&text, "refused", "stuck"), 0.0);
    assert_eq!(metric(&text, "hotwire_endpoint_up", "stuck"), Some(1.0));
    stop(&mut app);
    let _ = done_tx.send(());
    venue.join().unwrap();
}
