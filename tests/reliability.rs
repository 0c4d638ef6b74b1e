//! Silent peers (half-open connections): the venue, in the server namespace of a veth pair, goes
//! silent without a FIN or RST — a blackhole route in its namespace drops everything it sends to
//! the appliance — and comes back. Every endpoint kind must notice within its configured time, say
//! so in the log, and reconnect once the path is back:
//!
//! - WebSocket `heartbeat = "250ms"`, default pong deadline (three heartbeats): within 3 s;
//! - WebSocket `stale_after = "1s"` (no pings): within 1 s plus a timer tick;
//! - HTTP `request_timeout = "1s"`: within 1 s plus a timer tick;
//! - FIX `heartbeat = "1s"`: a TestRequest after 1.2 s of silence, the end 1.2 s later.
//!
//! On kernel TCP and on the AF_XDP path (smoltcp keeps a silent connection open forever on its own:
//! the deadlines above are what end it). The measured detection times are printed
//! (`cargo test --test reliability -- --nocapture`).
#![cfg(all(
    feature = "venue",
    feature = "ws",
    feature = "http",
    feature = "fix",
    feature = "tls-rustls"
))]

mod util;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use util::{in_netns, ChildGuard, Netns};

const HOTWIRE: &str = env!("CARGO_BIN_EXE_hotwire");

/// Each endpoint of the test configuration, the fragment of its detection log line and the bound
/// on its detection time (generous: the machine is shared, the design figure is in the comment).
const ENDPOINTS: [(&str, &str, Duration); 4] = [
    // 750 ms pong deadline checked every 125 ms, after the last pong: ~0.75–1.0 s.
    ("ws-ping", "no pong within 750ms", Duration::from_secs(3)),
    // 1 s without data checked every 250 ms: ~1.0–1.25 s.
    ("ws-stale", "no data message for 1s", Duration::from_secs(3)),
    // 1 s timeout checked every 250 ms; requests every 50 ms: ~1.0–1.25 s.
    (
        "rest",
        "no complete response within the timeout",
        Duration::from_secs(3),
    ),
    // TestRequest after 1.2 s, the end 1.2 s after it, 250 ms ticks: ~2.4–2.9 s.
    (
        "orders",
        "no heartbeat from the counterparty",
        Duration::from_secs(5),
    ),
];

/// The venue with its WebSocket, REST and FIX listeners in the server namespace.
fn venue(ns: &Netns) -> ChildGuard {
    let ip = ns.server_ip;
    let mut cmd = in_netns(&ns.server_ns, HOTWIRE);
    cmd.args(["venue", "--listen", &format!("{ip}:9001")])
        .args(["--http-listen", &format!("{ip}:9080")])
        .args(["--fix-listen", &format!("{ip}:9876")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut guard = ChildGuard::spawn(&mut cmd);
    let out = guard.child().stdout.take().expect("stdout");
    let mut reader = BufReader::new(out);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read");
    assert!(line.starts_with("venue:"), "venue did not start: {line}");
    // Keep reading: the venue prints a line per listener, and a closed pipe would end it.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    guard
}

/// The address the venue sends to: the kernel end of the veth, or the AF_XDP stack's own.
fn client_addr(ns: &Netns, xdp: bool) -> Ipv4Addr {
    let o = ns.client_ip.octets();
    if xdp {
        Ipv4Addr::new(o[0], o[1], o[2], 3)
    } else {
        ns.client_ip
    }
}

fn config(dir: &Path, ns: &Netns, xdp: bool) -> PathBuf {
    let ip = ns.server_ip;
    let network = if xdp {
        format!(
            "[network]\npath = \"xdp\"\ninterface = \"{}\"\nlocal_ip = \"{}/24\"\nfallback = false\n\n\
             [[thread]]\nname = \"io\"\nselector = \"direct\"\n",
            ns.client_if,
            client_addr(ns, true)
        )
    } else {
        "[[thread]]\nname = \"io\"\nselector = \"mio\"\n".to_owned()
    };
    // Short connect timeouts and backoff, so reconnecting after the path is back is quick.
    let common = "connect_timeout = \"1s\"\nreconnect = { initial = \"100ms\", max = \"500ms\" }\n";
    let text = format!(
        "{network}\n\
         [[endpoint]]\nname = \"ws-ping\"\nurl = \"ws://{ip}:9001/feed?rate=200\"\n\
         heartbeat = \"250ms\"\nlatency = \"none\"\n{common}\n\
         [[endpoint]]\nname = \"ws-stale\"\nurl = \"ws://{ip}:9001/feed?rate=200\"\n\
         stale_after = \"1s\"\nlatency = \"none\"\n{common}\n\
         [[endpoint]]\nname = \"rest\"\nurl = \"http://{ip}:9080/api/time\"\ninterval = \"50ms\"\n\
         request_timeout = \"1s\"\n{common}\n\
         [[endpoint]]\nname = \"orders\"\nurl = \"fix://{ip}:9876\"\nheartbeat = \"1s\"\n\
         fix = {{ sender = \"HOTWIRE\", target = \"VENUE\", order_rate = 20.0 }}\n{common}"
    );
    let path = dir.join(if xdp { "xdp.toml" } else { "kernel.toml" });
    std::fs::write(&path, text).expect("write config");
    path
}

/// `ip -n NS route add|del blackhole ADDR/32`: the venue's packets to the appliance vanish
/// without an error reaching anyone (no ICMP, no RST).
fn blackhole(ns: &Netns, addr: Ipv4Addr, on: bool) {
    let status = Command::new("ip")
        .args(["-n", &ns.server_ns, "route"])
        .arg(if on { "add" } else { "del" })
        .args(["blackhole", &format!("{addr}/32")])
        .status()
        .expect("run ip route");
    assert!(status.success(), "ip route blackhole {on}");
}

/// The appliance's log lines as they arrive, each with its arrival time.
struct Log {
    lines: mpsc::Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
}

impl Log {
    /// The first line after `since` for which `pred` holds, waiting up to `timeout`.
    fn wait(
        &mut self,
        since: Instant,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<(Instant, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(hit) = self.seen.iter().find(|(t, l)| *t >= since && pred(l)) {
                return Some(hit.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => return None,
            }
        }
    }

    fn dump(&self) -> String {
        self.seen
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs the scenario on one network path; returns each endpoint's detection time.
fn silent_venue(xdp: bool) -> HashMap<&'static str, Duration> {
    let ns = Netns::up_pair();
    let _venue = venue(&ns);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), &ns, xdp);
    let json = dir.path().join("report.json");
    let mut cmd = in_netns(ns.client_ns.as_deref().expect("pair mode"), HOTWIRE);
    cmd.arg("run")
        .arg(&config)
        .args(["--duration", "40", "--json"])
        .arg(&json)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut app = ChildGuard::spawn(&mut cmd);
    let stderr = app.child().stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let mut log = Log {
        lines: rx,
        seen: Vec::new(),
    };
    let start = Instant::now();
    for (name, _, _) in ENDPOINTS {
        let up = log.wait(start, Duration::from_secs(20), |l| {
            l.contains(&format!("{name}: connected to"))
        });
        assert!(up.is_some(), "{name} never connected:\n{}", log.dump());
    }
    if xdp {
        assert!(log.dump().contains("network path xdp"), "{}", log.dump());
    }
    // Traffic flows for a while (the FIX session logs on, orders are filled) before the silence.
    std::thread::sleep(Duration::from_millis(1500));

    let silent_from = Instant::now();
    blackhole(&ns, client_addr(&ns, xdp), true);
    let mut detected = HashMap::new();
    for (name, needle, bound) in ENDPOINTS {
        let hit = log.wait(silent_from, Duration::from_secs(15), |l| {
            l.contains(&format!("{name}: ")) && l.contains(needle)
        });
        let (at, line) = hit.unwrap_or_else(|| {
            blackhole(&ns, client_addr(&ns, xdp), false);
            panic!("{name}: no {needle:?} line:\n{}", log.dump())
        });
        let took = at - silent_from;
        eprintln!(
            "{} {name}: silent venue detected after {:.0} ms: {line}",
            if xdp { "AF_XDP" } else { "kernel" },
            took.as_secs_f64() * 1e3
        );
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("reconnecting in"), "{line}");
        assert!(
            took <= bound,
            "{name}: detection took {took:?} (bound {bound:?})"
        );
        detected.insert(name, took);
    }
    // Still silent: reconnect attempts time out and nothing comes up.
    std::thread::sleep(Duration::from_millis(1500));
    let restored = Instant::now();
    assert!(
        log.wait(silent_from, Duration::ZERO, |l| l.contains("connected to"))
            .is_none(),
        "an endpoint connected through the blackhole:\n{}",
        log.dump()
    );
    blackhole(&ns, client_addr(&ns, xdp), false);
    for (name, _, _) in ENDPOINTS {
        let back = log.wait(restored, Duration::from_secs(15), |l| {
            l.contains(&format!("{name}: connected to"))
        });
        assert!(
            back.is_some(),
            "{name} did not reconnect once the path was back:\n{}",
            log.dump()
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(app.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = app.child().wait().expect("wait for hotwire run");
    assert!(status.success(), "hotwire run: {status}\n{}", log.dump());
    assert!(
        !log.dump().contains("panicked"),
        "a panic in the log:\n{}",
        log.dump()
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
            .expect("JSON");
    for e in report["endpoints"].as_array().expect("endpoints") {
        let name = e["name"].as_str().unwrap_or("?");
        assert!(e["reconnects"].as_u64() >= Some(1), "{name}: {e}");
        assert!(e["connects"].as_u64() >= Some(2), "{name}: {e}");
        assert!(e["messages"].as_u64() >= Some(1), "{name}: {e}");
    }
    detected
}

#[test]
fn silent_venue_over_kernel_tcp() {
    if !util::require_root("the veth tests") {
        return;
    }
    silent_venue(false);
}

#[cfg(feature = "xdp")]
#[test]
fn silent_venue_over_af_xdp() {
    if !util::require_root("the AF_XDP tests") {
        return;
    }
    silent_venue(true);
}
