//! The gateway end to end: `hotwire venue` as the venue, `hotwire run` with `publish = true` as
//! the appliance, and `examples/strategy.py` (the `iceoryx2` Python package) as the strategies.
//!
//! Each test has an iceoryx2 prefix of its own (`HOTWIRE_GATEWAY_PREFIX`), and the tests of this
//! file run one at a time: each starts three or four processes on a two-core machine.
#![cfg(all(feature = "gateway", feature = "venue"))]

mod util;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use util::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_hotwire");

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn python() -> Option<PathBuf> {
    let py = util::venv_bin("python");
    if !util::require_peer("python (venv)", &py) {
        return None;
    }
    let ok = Command::new(&py)
        .args(["-c", "import iceoryx2"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !util::peers_required(),
            "the venv's python has no iceoryx2 (scripts/peers.sh installs it)"
        );
        eprintln!("note: skipping: no iceoryx2 in the venv");
        return None;
    }
    Some(py)
}

/// One test's world: a prefix, a temporary directory, helpers to start the processes.
struct World {
    prefix: String,
    dir: tempfile::TempDir,
    python: PathBuf,
}

impl World {
    fn new(tag: &str) -> Option<World> {
        Some(World {
            prefix: format!("hwt{}{tag}_", std::process::id()),
            dir: tempfile::tempdir().unwrap(),
            python: python()?,
        })
    }

    fn venue(&self, ws: u16, fix: Option<u16>) -> ChildGuard {
        let mut cmd = Command::new(BIN);
        cmd.args(["venue", "--listen"])
            .arg(addr(ws).to_string())
            .stdout(Stdio::null());
        if let Some(f) = fix {
            cmd.arg("--fix-listen")
                .arg(addr(f).to_string())
                .arg("--fix-log")
                .arg(self.dir.path().join("fix.log"));
        }
        let mut g = ChildGuard::spawn(&mut cmd);
        g.wait_port(addr(ws), Duration::from_secs(10));
        if let Some(f) = fix {
            g.wait_port(addr(f), Duration::from_secs(10));
        }
        g
    }

    /// `hotwire run` on `toml` for `seconds`, its report in `<name>.json`.
    fn appliance(&self, name: &str, toml: &str, seconds: u32) -> (ChildGuard, PathBuf) {
        let config = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&config, toml).unwrap();
        let json = self.dir.path().join(format!("{name}.json"));
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg(&config)
            .args(["--duration", &seconds.to_string(), "--json"])
            .arg(&json)
            .env("HOTWIRE_GATEWAY_PREFIX", &self.prefix)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap());
        (ChildGuard::spawn(&mut cmd), json)
    }

    /// `examples/strategy.py ARGS`, started and waited for until it says "ready".
    fn strategy(&self, args: &[&str]) -> (ChildGuard, BufReader<ChildStdout>) {
        let mut cmd = Command::new(&self.python);
        cmd.arg(util::repo_root().join("examples/strategy.py"))
            .args(args)
            .env("HOTWIRE_GATEWAY_PREFIX", &self.prefix)
            .stdout(Stdio::piped());
        let mut g = ChildGuard::spawn(&mut cmd);
        let mut out = BufReader::new(g.child().stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "strategy.py {args:?} did not start");
        (g, out)
    }

    /// The `hotwire/...` files this world left in /dev/shm (its prefix only).
    fn shm_left(&self) -> Vec<String> {
        std::fs::read_dir("/dev/shm")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&self.prefix))
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // What a failed test left (a strategy stopping last leaves iceoryx2's node counter,
        // `..global_mgmt`); a test's prefix is never used again, so remove it.
        for n in self.shm_left() {
            let _ = std::fs::remove_file(Path::new("/dev/shm").join(n));
        }
    }
}

/// Waits for the child and returns its last stdout line as JSON, with its exit status.
fn summary(mut g: ChildGuard, mut out: BufReader<ChildStdout>) -> (serde_json::Value, bool) {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut out, &mut text).unwrap();
    let ok = g.child().wait().unwrap().success();
    let last = text.lines().last().unwrap_or_default().to_owned();
    let json = serde_json::from_str(&last).unwrap_or_else(|e| panic!("{e}: {text}"));
    (json, ok)
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "no exit within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(g: &mut ChildGuard) -> std::process::ExitStatus {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(g.id() as libc::pid_t, libc::SIGTERM);
    }
    wait_exit(g.child(), Duration::from_secs(10))
}

fn report(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("report written");
    serde_json::from_str(&text).expect("report is JSON")
}

fn feed_toml(ws: u16, query: &str) -> String {
    format!(
        r#"
[[endpoint]]
name = "feed"
url = "ws://127.0.0.1:{ws}/feed?{query}"
publish = true
publish_buffer = 4096
reconnect = {{ initial = "20ms", max = "50ms" }}
"#
    )
}

#[test]
fn a_python_subscriber_gets_100k_messages_in_order_and_intact() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(w) = World::new("a") else { return };
    let ws = util::free_port();
    // The appliance starts before the venue: the service exists (and the subscriber is on it)
    // before the first message.
    let (mut app, json) = w.appliance(
        "feed",
        &feed_toml(ws, "rate=10000&size=128&count=100000"),
        40,
    );
    let (py, out) = w.strategy(&[
        "--check-feed",
        "--count",
        "100000",
        "--size",
        "128",
        "--timeout",
        "40",
    ]);
    let _venue = w.venue(ws, None);
    let (s, ok) = summary(py, out);
    assert!(ok, "{s}");
    assert_eq!(s["messages"], 100_000, "{s}");
    assert_eq!(s["gaps"], 0, "{s}");
    assert_eq!(s["bad"], 0, "{s}");
    assert_eq!(
        (s["first_seq"].as_u64(), s["last_seq"].as_u64()),
        (Some(1), Some(100_000))
    );
    assert!(stop(&mut app).success());
    let r = report(&json);
    assert!(
        r["endpoints"][0]["messages"].as_u64().unwrap() >= 100_000,
        "{r}"
    );
}

#[test]
fn python_orders_reach_the_venue_and_every_report_comes_back() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(w) = World::new("b") else { return };
    let (ws, fix) = (util::free_port(), util::free_port());
    let _venue = w.venue(ws, Some(fix));
    let toml = format!(
        r#"{}
[[endpoint]]
name = "orders"
url = "fix://127.0.0.1:{fix}"
publish = true
fix = {{ sender = "HW", target = "VENUE" }}
"#,
        feed_toml(ws, "rate=2000&size=96")
    );
    let (mut app, json) = w.appliance("orders", &toml, 40);
    let (py, out) = w.strategy(&[
        "--feed",
        "feed",
        "--orders",
        "orders",
        "--every",
        "5",
        "--orders-count",
        "300",
        "--timeout",
        "30",
        "--bad-orders",
        "4",
    ]);
    let (s, ok) = summary(py, out);
    assert!(ok, "{s}");
    assert_eq!(s["orders"], 300, "{s}");
    assert_eq!(s["reports"], 300, "{s}");
    assert_eq!(s["rejects"], 0, "{s}");
    assert!(s["t2t_p50_ns"].as_u64().unwrap() > 0, "{s}");
    assert!(stop(&mut app).success());
    // The venue's acceptor logged each order it took in, by ClOrdID; the appliance sent nothing
    // of its own (no order_rate).
    let log = std::fs::read_to_string(w.dir.path().join("fix.log")).unwrap();
    let orders: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("IN ") && l.split(' ').nth(3) == Some("D"))
        .collect();
    assert_eq!(orders.len(), 300, "{log}");
    for i in 1..=300 {
        let cl = format!("cl=S{i}");
        assert!(
            orders.iter().any(|l| l.split(' ').any(|f| f == cl)),
            "no {cl}"
        );
    }
    let log = std::fs::read_to_string(w.dir.path().join("orders.log")).unwrap();
    assert_eq!(
        log.matches("refused a malformed FIX message").count(),
        4,
        "{log}"
    );
    let r = report(&json);
    let e = r["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "orders")
        .unwrap();
    assert_eq!(
        e["messages"], 300,
        "ExecutionReports counted by the appliance: {e}"
    );
}

/// The appliance's one-way feed latency (venue send time to the IO thread) of a run's report.
fn feed_latency(r: &serde_json::Value) -> (u64, u64) {
    let l = &r["endpoints"][0]["latency_ns"];
    (l["p50"].as_u64().unwrap(), l["p99"].as_u64().unwrap())
}

#[test]
fn a_subscriber_that_stops_reading_for_5_s_slows_no_one() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(w) = World::new("c") else { return };
    let ws = util::free_port();
    let _venue = w.venue(ws, None);
    let toml = feed_toml(ws, "rate=5000&size=128");
    let mut figures = Vec::new();
    for (round, with_slow) in [(0, false), (1, true)] {
        let (mut app, json) = w.appliance(&format!("slow{round}"), &toml, 30);
        let (fast, fast_out) = w.strategy(&["--check-feed", "--follow", "7", "--size", "128"]);
        let slow = with_slow.then(|| {
            w.strategy(&[
                "--check-feed",
                "--follow",
                "7",
                "--size",
                "128",
                "--pause-after",
                "100",
                "--pause",
                "5",
            ])
        });
        let (f, ok) = summary(fast, fast_out);
        assert!(ok, "{f}");
        // The fast consumer lost nothing while the other one slept (seq counts from wherever it
        // joined, so gaps are what matters).
        assert_eq!(
            (f["gaps"].as_u64(), f["bad"].as_u64()),
            (Some(0), Some(0)),
            "{f}"
        );
        assert!(f["messages"].as_u64().unwrap() > 20_000, "{f}");
        if let Some((g, out)) = slow {
            let (s, ok) = summary(g, out);
            assert!(ok, "{s}");
            // Its queue (4096) overflowed while it slept: it lost messages, nobody waited.
            assert!(s["gaps"].as_u64().unwrap() > 0, "{s}");
        }
        assert!(stop(&mut app).success());
        let r = report(&json);
        let (p50, p99) = feed_latency(&r);
        figures.push((
            with_slow,
            p50,
            p99,
            f["appliance_to_here_p50_ns"].as_u64().unwrap(),
        ));
    }
    for (with_slow, p50, p99, here) in &figures {
        eprintln!(
            "feed latency {} the stopped subscriber: venue->appliance p50 {:.1} us p99 {:.1} us; \
             appliance->fast subscriber p50 {:.1} us",
            if *with_slow { "with" } else { "without" },
            *p50 as f64 / 1e3,
            *p99 as f64 / 1e3,
            *here as f64 / 1e3
        );
    }
    // The IO thread kept its pace: its median with the stopped subscriber stays within a
    // scheduling jitter of the median without (a blocked IO thread would add seconds).
    let (without, with) = (figures[0].1, figures[1].1);
    assert!(with < without * 5 + 2_000_000, "{figures:?}");
}

#[test]
fn a_killed_subscriber_restarted_picks_up_again() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(w) = World::new("d") else { return };
    let ws = util::free_port();
    let _venue = w.venue(ws, None);
    let (mut app, json) = w.appliance("kill", &feed_toml(ws, "rate=2000&size=128"), 30);
    let (mut first, _out) = w.strategy(&["--check-feed", "--follow", "20", "--size", "128"]);
    // `hotwire check` sees the services and the strategy's subscriber (once the appliance has
    // made both services and its ports: the strategy may have opened `.../in` in between).
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let out = Command::new(BIN)
            .arg("check")
            .arg(w.dir.path().join("kill.toml"))
            .env("HOTWIRE_GATEWAY_PREFIX", &w.prefix)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("hotwire/feed/send") && text.contains("feed/in: 1 publisher") {
            break text;
        }
        assert!(Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        text.contains("service hotwire/feed/in: 1 publisher(s), 1 subscriber(s) of at most 4 (queue limit 4096)"),
        "{text}"
    );
    assert!(
        text.contains("service hotwire/feed/send: 0 publisher(s), 1 subscriber(s)"),
        "{text}"
    );
    assert!(text.contains("subscriber 1: queue 4096 samples"), "{text}");
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(first.id() as libc::pid_t, libc::SIGKILL);
    }
    wait_exit(first.child(), Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    let (again, out) = w.strategy(&["--check-feed", "--follow", "2", "--size", "128"]);
    let (s, ok) = summary(again, out);
    assert!(ok, "{s}");
    assert!(s["messages"].as_u64().unwrap() > 1000, "{s}");
    assert_eq!(
        (s["gaps"].as_u64(), s["bad"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    // It joined a feed that had been running for two seconds.
    assert!(s["first_seq"].as_u64().unwrap() > 2000, "{s}");
    assert!(stop(&mut app).success());
    let r = report(&json);
    assert_eq!(r["endpoints"][0]["reconnects"], 0, "{r}");
}

/// The series `name{endpoint="feed",...}` of a scrape of the appliance's metrics on `port`.
fn scrape_metric(port: u16, name: &str) -> Option<f64> {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let head = format!("{name}{{endpoint=\"feed\"");
    text.lines()
        .find(|l| l.starts_with(&head))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

/// A strategy killed while its queue is full: iceoryx2 keeps a dead subscriber's queue connected
/// until some node cleans up dead nodes, so each later sample would count as a drop, like a
/// slow live strategy. The gateway cleans up (at most once a second, while queues overflow), and
/// the count stops while the feed goes on.
#[test]
fn a_dead_subscriber_stops_counting_as_drops() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(w) = World::new("z") else { return };
    let (ws, metrics) = (util::free_port(), util::free_port());
    let _venue = w.venue(ws, None);
    let toml = format!(
        "{}\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n",
        feed_toml(ws, "rate=5000&size=128")
    );
    let (mut app, _json) = w.appliance("dead", &toml, 30);
    // Reads 10 messages, then sleeps: its 4,096-sample queue is full within a second.
    let (mut stalled, _out) = w.strategy(&[
        "--check-feed",
        "--follow",
        "30",
        "--size",
        "128",
        "--pause-after",
        "10",
        "--pause",
        "30",
    ]);
    let drops = || scrape_metric(metrics, "hotwire_gateway_subscriber_drops_total");
    let deadline = Instant::now() + Duration::from_secs(10);
    while drops().unwrap_or(0.0) < 100.0 {
        assert!(
            Instant::now() < deadline,
            "the stalled queue never overflowed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(stalled.id() as libc::pid_t, libc::SIGKILL);
    }
    wait_exit(stalled.child(), Duration::from_secs(5));
    // One check period, and margin for a loaded machine.
    std::thread::sleep(Duration::from_millis(2500));
    let published = || scrape_metric(metrics, "hotwire_gateway_published_total").unwrap();
    let (d1, p1) = (drops().unwrap(), published());
    std::thread::sleep(Duration::from_millis(1500));
    let (d2, p2) = (drops().unwrap(), published());
    assert!(p2 > p1 + 1000.0, "the feed went on: {p1} then {p2}");
    assert_eq!(d1, d2, "drops still counted for a dead subscriber");
    assert!(stop(&mut app).success());
}

#[test]
fn strategies_survive_an_appliance_restart_and_a_clean_stop_leaves_no_shared_memory() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(w) = World::new("e") else { return };
    let ws = util::free_port();
    let _venue = w.venue(ws, None);
    let toml = feed_toml(ws, "rate=2000&size=128");
    let (mut app, _) = w.appliance("first", &toml, 30);
    let (py, out) = w.strategy(&["--check-feed", "--follow", "6", "--size", "128"]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(stop(&mut app).success());
    // The strategy holds the services: they outlive the appliance, and so does iceoryx2's
    // per-prefix node counter while the strategy's node is alive.
    let held = w.shm_left();
    assert!(
        held.iter().any(|n| !n.ends_with(".global_mgmt")),
        "the services are gone while the strategy holds them: {held:?}"
    );
    assert!(
        held.iter().any(|n| n.ends_with(".global_mgmt")),
        "the node counter went while a strategy was alive: {held:?}"
    );
    let (mut again, json) = w.appliance("second", &toml, 30);
    let (s, ok) = summary(py, out);
    assert!(ok, "{s}");
    assert_eq!(
        s["resets"], 1,
        "the strategy saw the new appliance's seq 1: {s}"
    );
    assert_eq!(
        (s["gaps"].as_u64(), s["bad"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    assert!(s["messages"].as_u64().unwrap() > 4000, "{s}");
    assert!(stop(&mut again).success());
    assert!(report(&json)["endpoints"][0]["messages"].as_u64().unwrap() > 1000);
    // Everyone stopped cleanly, the appliance last: nothing of the prefix is left, not even
    // iceoryx2's per-prefix node counter (the last gateway node removes it).
    let left = w.shm_left();
    assert!(left.is_empty(), "left in /dev/shm: {left:?}");
}

#[test]
fn the_python_iceoryx2_is_the_version_of_cargo_lock() {
    let Some(py) = python() else { return };
    let out = Command::new(py)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('iceoryx2'))",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let python = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let lock = std::fs::read_to_string(util::repo_root().join("Cargo.lock")).unwrap();
    let rust = lock
        .split("[[package]]")
        .find_map(|p| {
            let mut lines = p.trim().lines();
            (lines.next()? == "name = \"iceoryx2\"").then(|| {
                lines
                    .next()?
                    .strip_prefix("version = \"")?
                    .strip_suffix('"')
            })?
        })
        .expect("iceoryx2 in Cargo.lock");
    assert_eq!(python, rust, "the venv's iceoryx2 is not the crate's");
}
