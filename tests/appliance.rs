//! The `hotwire` binary end to end: `venue` as the peer, `run` as the client, `check` on configs.

mod util;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use util::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_hotwire");

/// Starts `hotwire venue` on the given ports (TLS too, with its CA in `dir`), plus the services
/// named in `extra` as (flag, port): `--http-listen`, `--fix-listen`.
fn venue_with(ws: u16, wss: u16, dir: &Path, extra: &[(&str, u16)]) -> ChildGuard {
    let mut cmd = Command::new(BIN);
    cmd.args(["venue", "--tls", "--listen"])
        .arg(format!("127.0.0.1:{ws}"))
        .arg("--tls-listen")
        .arg(format!("127.0.0.1:{wss}"))
        .arg("--cert-dir")
        .arg(dir)
        .stdout(Stdio::null());
    for (flag, port) in extra {
        cmd.arg(flag).arg(format!("127.0.0.1:{port}"));
    }
    let mut guard = ChildGuard::spawn(&mut cmd);
    for port in [ws, wss].into_iter().chain(extra.iter().map(|(_, p)| *p)) {
        guard.wait_port(addr(port), Duration::from_secs(10));
    }
    guard
}

/// [`venue_with`] without the REST API and the FIX acceptor.
fn venue(ws: u16, wss: u16, dir: &Path) -> ChildGuard {
    venue_with(ws, wss, dir, &[])
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn report(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("report written");
    serde_json::from_str(&text).expect("report is JSON")
}

fn endpoint<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no endpoint {name} in {report}"))
}

#[test]
fn run_reports_exactly_what_the_venue_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, wss) = (util::free_port(), util::free_port());
    let _venue = venue(ws, wss, dir.path());
    let config = dir.path().join("count.toml");
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &config,
        format!(
            r#"
[[endpoint]]
name = "plain"
url = "ws://127.0.0.1:{ws}/feed?rate=4000&size=100&count=3000"
reconnect = {{ enabled = false }}

[[endpoint]]
name = "tls"
url = "wss://localhost:{wss}/feed?rate=4000&size=300&count=2500"
tls = {{ ca = "{ca}", backend = "openssl" }}
reconnect = {{ enabled = false }}
"#,
            ca = ca.display()
        ),
    )
    .unwrap();
    let json = dir.path().join("report.json");
    let out = Command::new(BIN)
        .args(["run"])
        .arg(&config)
        .args(["--duration", "4", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("== hotwire report"), "{stdout}");
    let r = report(&json);
    let plain = endpoint(&r, "plain");
    assert_eq!(plain["messages"], 3000, "{plain}");
    assert_eq!(plain["connects"], 1);
    assert!(plain["bytes"].as_u64().unwrap() >= 3000 * 100);
    assert!(plain["latency_ns"]["count"].as_u64().unwrap() == 3000);
    let tls = endpoint(&r, "tls");
    assert_eq!(tls["messages"], 2500, "{tls}");
    assert!(tls["latency_ns"]["p50"].as_u64().unwrap() > 0);
}

#[test]
fn endpoints_reconnect_when_the_venue_is_killed_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, wss) = (util::free_port(), util::free_port());
    let mut venue_proc = Some(venue(ws, wss, dir.path()));
    let config = dir.path().join("restart.toml");
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &config,
        format!(
            r#"
[[endpoint]]
name = "plain"
url = "ws://127.0.0.1:{ws}/feed?rate=1000"
reconnect = {{ initial = "50ms", max = "400ms" }}

[[endpoint]]
name = "tls"
url = "wss://127.0.0.1:{wss}/feed?rate=1000"
tls = {{ ca = "{ca}" }}
reconnect = {{ initial = "50ms", max = "400ms" }}

[[endpoint]]
name = "closed-port"
url = "ws://127.0.0.1:{closed}/feed"
reconnect = {{ initial = "50ms", max = "200ms" }}
"#,
            ca = ca.display(),
            closed = util::free_port()
        ),
    )
    .unwrap();
    let json = dir.path().join("report.json");
    let mut run = Command::new(BIN);
    run.args(["run"])
        .arg(&config)
        .args(["--duration", "7", "--json"])
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut client = ChildGuard::spawn(&mut run);
    std::thread::sleep(Duration::from_secs(2));
    // SIGKILL: no close frames, no FIN from the application; then the same ports come back (with the
    // same CA, so the TLS endpoint verifies the new certificate).
    drop(venue_proc.take());
    std::thread::sleep(Duration::from_secs(1));
    let _venue = venue(ws, wss, dir.path());
    let status = client.child().wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(client.child().stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    let r = report(&json);
    for name in ["plain", "tls"] {
        let e = endpoint(&r, name);
        assert!(
            e["connects"].as_u64().unwrap() >= 2,
            "{name} did not reconnect: {e}\n{stderr}"
        );
        assert!(e["reconnects"].as_u64().unwrap() >= 1, "{e}");
        // ~2 s before the kill and ~3 s after the restart at 1000 msg/s: data resumed.
        assert!(
            e["messages"].as_u64().unwrap() > 3500,
            "{name}: data did not resume: {e}"
        );
    }
    let closed = endpoint(&r, "closed-port");
    assert_eq!(closed["connects"], 0);
    assert_eq!(closed["messages"], 0);
    assert!(stderr.contains("closed-port: connect"), "{stderr}");
}

#[test]
fn check_validates_configs_and_reports_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://127.0.0.1:1/\"\n",
    )
    .unwrap();
    let out = Command::new(BIN).arg("check").arg(&good).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for area in ["config", "cpu", "memlock", "hugepages"] {
        assert!(stdout.contains(area), "{area} missing from {stdout}");
    }
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[endpoint]]\nname = \"a\"\nurl = \"ftp://x/\"\n").unwrap();
    let out = Command::new(BIN).arg("check").arg(&bad).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("bad.toml:3:7"), "{stdout}");
    // Every shipped example configuration is valid.
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("config")).unwrap() {
        let path = entry.unwrap().path();
        // `publish = true` is a configuration error in a build without the gateway.
        if path.ends_with("gateway.toml") && !cfg!(feature = "gateway") {
            continue;
        }
        if path.extension().is_some_and(|e| e == "toml") {
            let out = Command::new(BIN).arg("check").arg(&path).output().unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

#[test]
fn run_refuses_a_malformed_config_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\nthread = \"nope\"\n",
    )
    .unwrap();
    let out = Command::new(BIN).arg("run").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml:4:10") && stderr.contains("no thread named"),
        "{stderr}"
    );
}

#[test]
fn websocket_http_and_fix_endpoints_share_one_io_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, wss, http, fix) = (
        util::free_port(),
        util::free_port(),
        util::free_port(),
        util::free_port(),
    );
    let _venue = venue_with(
        ws,
        wss,
        dir.path(),
        &[("--http-listen", http), ("--fix-listen", fix)],
    );
    let config = dir.path().join("mixed.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[endpoint]]
name = "feed"
url = "ws://127.0.0.1:{ws}/feed?rate=1000&count=1500"
reconnect = {{ enabled = false }}

[[endpoint]]
name = "rest"
url = "http://127.0.0.1:{http}/"
interval = "10ms"
requests = [{{ target = "/api/time" }}, {{ method = "POST", target = "/api/order", body = "x" }}]

[[endpoint]]
name = "orders"
url = "fix://127.0.0.1:{fix}"
fix = {{ sender = "HW", target = "VENUE", order_rate = 200.0, store = "{store}" }}
"#,
            store = dir.path().join("fix-store").display()
        ),
    )
    .unwrap();
    let json = dir.path().join("report.json");
    let out = Command::new(BIN)
        .arg("run")
        .arg(&config)
        .args(["--duration", "3", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&json);
    assert_eq!(endpoint(&r, "feed")["messages"], 1500);
    let rest = endpoint(&r, "rest");
    // One request per 10 ms for about 3 s (and the shutdown drain), every one answered, timed.
    let responses = rest["messages"].as_u64().unwrap();
    assert!((150..=400).contains(&responses), "{rest}");
    assert_eq!(rest["round_trip_ns"]["count"].as_u64(), Some(responses));
    assert_eq!(rest["connects"], 1);
    let orders = endpoint(&r, "orders");
    // 200 orders/s for about 3 s, each filled by the venue and timed to its ExecutionReport.
    let fills = orders["messages"].as_u64().unwrap();
    assert!((400..=800).contains(&fills), "{orders}");
    assert!(
        orders["round_trip_ns"]["count"].as_u64().unwrap() + 5 >= fills,
        "{orders}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The feed ends by design (count=1500); the REST and FIX sessions are never lost.
    for lost in stderr.lines().filter(|l| l.contains("WARN")) {
        assert!(lost.contains("feed: closed by the peer"), "{lost}");
    }
    // The FIX store kept the sequence numbers for the next session.
    assert!(
        std::fs::read_dir(dir.path().join("fix-store"))
            .unwrap()
            .count()
            > 0
    );
}

/// A host that isolates core 1 (`isolcpus=1`) starts the appliance with an affinity mask of the
/// other cores: `taskset -c 0` gives the same mask. A thread pinned to core 1 must be accepted
/// (`core` is checked against the online CPUs, not the mask), really run there (read back), and
/// `check` must report the online cores and the mask.
#[test]
fn a_thread_pinned_outside_the_isolcpus_mask_runs_there() {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    assert_eq!(
        online.trim(),
        "0-1",
        "this test expects the 2-core CI machines"
    );
    let taskset = util::system_bin("taskset");
    assert!(util::require_peer("taskset", &taskset));
    let dir = tempfile::tempdir().unwrap();
    let (ws, wss) = (util::free_port(), util::free_port());
    let _venue = venue(ws, wss, dir.path());
    let config = dir.path().join("pinned.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[thread]]
name = "io"
core = 1
selector = "direct"

[[endpoint]]
name = "feed"
url = "ws://127.0.0.1:{ws}/feed?rate=2000&count=800"
reconnect = {{ enabled = false }}
"#
        ),
    )
    .unwrap();
    let out = Command::new(&taskset)
        .args(["-c", "0", BIN, "check"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("online 0-1;") && stdout.contains("this process may run on 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"io\" pinned to core 1, which is not isolated"),
        "{stdout}"
    );
    let json = dir.path().join("report.json");
    let out = Command::new(&taskset)
        .args(["-c", "0", BIN, "run"])
        .arg(&config)
        .args(["--duration", "3", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("thread \"io\": runs on cpu 1 (affinity read back)"),
        "{stderr}"
    );
    assert_eq!(endpoint(&report(&json), "feed")["messages"], 800);
}

/// A cpuset that does not contain the configured core makes the pin fail: that is a startup error
/// that names the core, not a thread quietly running elsewhere.
#[test]
fn a_failed_pin_is_a_startup_error() {
    if !util::require_root("cpuset cgroups") {
        return;
    }
    // cgroup v1 (these machines) or v2.
    let (group, v1) = if Path::new("/sys/fs/cgroup/cpuset/cgroup.procs").exists() {
        (
            format!("/sys/fs/cgroup/cpuset/hotwire-pin-{}", std::process::id()),
            true,
        )
    } else {
        (
            format!("/sys/fs/cgroup/hotwire-pin-{}", std::process::id()),
            false,
        )
    };
    std::fs::create_dir(&group).expect("create a cpuset cgroup");
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _cleanup = Remove(group.clone());
    std::fs::write(format!("{group}/cpuset.cpus"), "0").unwrap();
    if v1 {
        std::fs::write(format!("{group}/cpuset.mems"), "0").unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pinned.toml");
    std::fs::write(
        &config,
        "[[thread]]\nname = \"io\"\ncore = 1\n\n[[endpoint]]\nname = \"feed\"\n\
         url = \"ws://127.0.0.1:1/feed\"\n",
    )
    .unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {group}/cgroup.procs && exec \"$0\" run \"$1\" --duration 5"
        ))
        .arg(BIN)
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("thread \"io\": cannot pin to core 1"),
        "{stderr}"
    );
}

/// `selector = "io_uring"`: WebSocket (plain, TLS with both backends), HTTP and FIX endpoints run
/// unchanged over the ring's multishot receives and sends, and a second thread does the same with
/// SQPOLL.
#[cfg(feature = "io-uring")]
#[test]
fn every_protocol_runs_on_the_io_uring_selector() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, wss, http, fix) = (
        util::free_port(),
        util::free_port(),
        util::free_port(),
        util::free_port(),
    );
    let _venue = venue_with(
        ws,
        wss,
        dir.path(),
        &[("--http-listen", http), ("--fix-listen", fix)],
    );
    let config = dir.path().join("uring.toml");
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &config,
        format!(
            r#"
[[thread]]
name = "ring"
selector = "io_uring"

[[thread]]
name = "sq"
selector = "io_uring"
sqpoll = true

[[endpoint]]
name = "feed"
thread = "ring"
url = "ws://127.0.0.1:{ws}/feed?rate=1000&count=1500"
reconnect = {{ enabled = false }}

[[endpoint]]
name = "tls-openssl"
thread = "ring"
url = "wss://localhost:{wss}/feed?rate=2000&size=3000&count=2000"
tls = {{ ca = "{ca}", backend = "openssl" }}
reconnect = {{ enabled = false }}

[[endpoint]]
name = "tls-rustls"
thread = "sq"
url = "wss://localhost:{wss}/feed?rate=2000&size=300&count=2000"
tls = {{ ca = "{ca}", backend = "rustls" }}
reconnect = {{ enabled = false }}

[[endpoint]]
name = "rest"
thread = "ring"
url = "http://127.0.0.1:{http}/"
interval = "10ms"
requests = [{{ target = "/api/time" }}, {{ method = "POST", target = "/api/order", body = "x" }}]

[[endpoint]]
name = "orders"
thread = "ring"
url = "fix://127.0.0.1:{fix}"
fix = {{ sender = "HW", target = "VENUE", order_rate = 200.0, store = "{store}" }}
"#,
            ca = ca.display(),
            store = dir.path().join("fix-store").display()
        ),
    )
    .unwrap();
    let json = dir.path().join("report.json");
    let out = Command::new(BIN)
        .arg("run")
        .arg(&config)
        .args(["--duration", "3", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("thread \"ring\": network path io_uring"),
        "{stderr}"
    );
    let r = report(&json);
    assert_eq!(endpoint(&r, "feed")["messages"], 1500);
    assert_eq!(endpoint(&r, "tls-openssl")["messages"], 2000);
    assert_eq!(endpoint(&r, "tls-rustls")["messages"], 2000);
    let rest = endpoint(&r, "rest");
    let responses = rest["messages"].as_u64().unwrap();
    assert!((150..=400).contains(&responses), "{rest}");
    assert_eq!(rest["round_trip_ns"]["count"].as_u64(), Some(responses));
    let orders = endpoint(&r, "orders");
    let fills = orders["messages"].as_u64().unwrap();
    assert!((400..=800).contains(&fills), "{orders}");
    // The feeds end by design (count); the venue's TLS side closes without close_notify, which
    // rustls reports (on mio too). REST and FIX sessions are never lost.
    for lost in stderr.lines().filter(|l| l.contains("WARN")) {
        assert!(
            lost.contains("closed by the peer") || lost.contains("close_notify"),
            "{lost}"
        );
    }
}
