//! Operations: the Prometheus endpoint of `hotwire run`, scraped with curl and checked by
//! `promtool check metrics` and Python's `prometheus_client` parser, with `hotwire venue` as the
//! peer.

mod util;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_hotwire");

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `curl` GET of `url`: the body, or panics with curl's error.
fn curl(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "5", url])
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("exposition is UTF-8")
}

/// The value of the sample `name{labels}` (labels exactly as the exposition writes them).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .expect("a number")
}

/// `promtool check metrics` on `text`: must exit 0 and report nothing.
fn promtool_check(promtool: &Path, text: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics: {:?}\n{report}\n--- exposition:\n{text}",
        out.status
    );
}

/// Python `prometheus_client` parses `text`; returns `name type` of each family it found.
fn python_families(python: &Path, text: &str) -> String {
    let mut child = Command::new(python)
        .args([
            "-c",
            "import sys\n\
             from prometheus_client.parser import text_string_to_metric_families as p\n\
             for f in p(sys.stdin.read()):\n    print(f.name, f.type, len(f.samples))\n",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client cannot parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn metrics_endpoint_passes_promtool_and_moves() {
    let promtool = util::system_bin("promtool");
    let python = util::venv_bin("python3");
    let curl_bin = util::system_bin("curl");
    if !util::require_peer("promtool", &promtool)
        || !util::require_peer("python3 (venv)", &python)
        || !util::require_peer("curl", &curl_bin)
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ws, metrics, dead) = (util::free_port(), util::free_port(), util::free_port());
    let mut venue = ChildGuard::spawn(
        Command::new(BIN)
            .args(["venue", "--listen"])
            .arg(format!("127.0.0.1:{ws}"))
            .stdout(Stdio::null()),
    );
    venue.wait_port(addr(ws), Duration::from_secs(10));
    let config = dir.path().join("ops.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[thread]]
name = "md"

[[endpoint]]
name = "feed"
url = "ws://127.0.0.1:{ws}/feed?rate=2000&size=100"
heartbeat = "200ms"

[[endpoint]]
name = "dead"
url = "ws://127.0.0.1:{dead}/feed"
reconnect = {{ initial = "100ms", max = "200ms" }}

[metrics]
listen = "127.0.0.1:{metrics}"
"#
        ),
    )
    .unwrap();
    let mut run = ChildGuard::spawn(
        Command::new(BIN)
            .arg("run")
            .arg(&config)
            .args(["--duration", "20"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    run.wait_port(addr(metrics), Duration::from_secs(10));
    let url = format!("http://127.0.0.1:{metrics}/metrics");
    let feed = r#"endpoint="feed",kind="websocket",thread="md""#;
    let dead_labels = r#"endpoint="dead",kind="websocket",thread="md""#;

    // Wait for the feed to come up and carry messages, and for a ping round trip.
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        let text = curl(&url);
        if sample(&text, &format!("hotwire_endpoint_up{{{feed}}}")) == 1.0
            && sample(&text, &format!("hotwire_endpoint_messages_total{{{feed}}}")) > 0.0
            && sample(
                &text,
                &format!("hotwire_endpoint_round_trip_seconds_count{{{feed}}}"),
            ) > 0.0
        {
            break text;
        }
        assert!(Instant::now() < deadline, "feed never up:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    promtool_check(&promtool, &first);
    std::thread::sleep(Duration::from_millis(500));
    let second = curl(&url);
    promtool_check(&promtool, &second);

    let messages = |t: &str| sample(t, &format!("hotwire_endpoint_messages_total{{{feed}}}"));
    assert!(
        messages(&second) > messages(&first),
        "messages did not move: {} then {}",
        messages(&first),
        messages(&second)
    );
    let bytes = sample(
        &second,
        &format!("hotwire_endpoint_received_bytes_total{{{feed}}}"),
    );
    assert!(bytes >= 100.0 * messages(&second), "{bytes} bytes");
    assert_eq!(
        sample(
            &second,
            &format!("hotwire_endpoint_connects_total{{{feed}}}")
        ),
        1.0
    );
    // Every message carries the venue's timestamp: the latency histogram counts them all (at
    // least those before the first scrape; the scrape reads the counter before the histogram).
    let latency = sample(
        &second,
        &format!("hotwire_endpoint_latency_seconds_count{{{feed}}}"),
    );
    assert!(latency >= messages(&first), "{latency}");
    let inf = sample(
        &second,
        &format!(r#"hotwire_endpoint_latency_seconds_bucket{{{feed},le="+Inf"}}"#),
    );
    assert_eq!(inf, latency);
    assert!(sample(&second, "hotwire_uptime_seconds") > sample(&first, "hotwire_uptime_seconds"));

    // The endpoint nobody listens for: down, never connected, its last error says why.
    assert_eq!(
        sample(&second, &format!("hotwire_endpoint_up{{{dead_labels}}}")),
        0.0
    );
    assert_eq!(
        sample(
            &second,
            &format!("hotwire_endpoint_connects_total{{{dead_labels}}}")
        ),
        0.0
    );
    let error = second
        .lines()
        .find(|l| l.starts_with(&format!("hotwire_endpoint_last_error_info{{{dead_labels},")))
        .unwrap_or_else(|| panic!("no last error for dead:\n{second}"));
    assert!(
        error.contains("error=\"connect: ") && error.contains("Connection refused"),
        "{error}"
    );
    assert!(!second.contains(&format!("hotwire_endpoint_last_error_info{{{feed}")));

    // Python's parser reads the same text: the families and their types.
    let families = python_families(&python, &second);
    for family in [
        "hotwire_build_info gauge",
        "hotwire_uptime_seconds gauge",
        "hotwire_endpoint_up gauge",
        "hotwire_endpoint_messages counter",
        "hotwire_endpoint_received_bytes counter",
        "hotwire_endpoint_last_error_info gauge",
        "hotwire_endpoint_latency_seconds histogram",
        "hotwire_endpoint_round_trip_seconds histogram",
    ] {
        assert!(
            families.lines().any(|l| l.starts_with(family)),
            "{family} missing from\n{families}"
        );
    }

    // Anything but GET /metrics is refused politely.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{metrics}/"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "405");
    drop(run);
}

/// `hotwire check` on an AF_XDP configuration names each capability the path needs; run under
/// capsh without two of them, it says which are missing and what for.
#[test]
fn check_names_missing_capabilities() {
    let capsh = util::system_bin("capsh");
    if !util::require_peer("capsh", &capsh) || !util::require_root("dropping capabilities") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("xdp.toml");
    std::fs::write(
        &config,
        "[network]\npath = \"xdp\"\ninterface = \"lo\"\nlocal_ip = \"10.0.0.2/24\"\n\
         fallback = false\n[[endpoint]]\nname = \"a\"\nurl = \"ws://10.0.0.1:1/\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check")
        .arg(&config)
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&out.stdout);
    for cap in ["CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_BPF", "CAP_IPC_LOCK"] {
        assert!(
            all.contains(&format!("ok   caps       {cap} held")),
            "{all}"
        );
    }
    let out = Command::new(&capsh)
        .args(["--drop=cap_bpf,cap_ipc_lock", "--", "-c"])
        .arg(format!("{BIN} check {}", config.display()))
        .output()
        .unwrap();
    let dropped = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "no fallback: a missing CAP_BPF fails\n{dropped}"
    );
    assert!(
        dropped
            .contains("FAIL caps       CAP_BPF missing: needed for loading the steering program"),
        "{dropped}"
    );
    assert!(
        dropped.contains("warn caps       CAP_IPC_LOCK missing: needed for registering a UMEM"),
        "{dropped}"
    );
    assert!(
        dropped.contains("ok   caps       CAP_NET_RAW held"),
        "{dropped}"
    );
}

/// `config/hotwire.service` passes `systemd-analyze verify` without a word (systemd reports bad
/// keys and values as warnings with exit 0, so any output fails), pointed at the built binary.
#[test]
fn systemd_unit_verifies() {
    let analyze = util::system_bin("systemd-analyze");
    if !util::require_peer("systemd-analyze", &analyze) {
        return;
    }
    let unit = std::fs::read_to_string(util::repo_root().join("config/hotwire.service")).unwrap();
    let caps = "CAP_NET_RAW CAP_NET_ADMIN CAP_BPF CAP_IPC_LOCK";
    for key in ["AmbientCapabilities", "CapabilityBoundingSet"] {
        assert!(unit.contains(&format!("\n{key}={caps}\n")), "{key}");
    }
    assert!(!unit
        .lines()
        .any(|l| !l.starts_with('#') && l.contains("CAP_SYS_ADMIN")));
    for line in [
        "User=hotwire",
        "NoNewPrivileges=yes",
        "LimitMEMLOCK=infinity",
        "Restart=on-failure",
        "ExecStart=/usr/local/bin/hotwire run /etc/hotwire/hotwire.toml",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hotwire.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/hotwire", BIN)).unwrap();
    let out = Command::new(&analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {:?}\n{said}",
        out.status
    );
}

/// The element names, the text of every `<text>` and the root tag of an SVG file, parsed by
/// Python's XML parser (any malformed file fails).
fn svg_outline(path: &Path) -> (String, String) {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E\n\
             root = E.parse(sys.argv[1]).getroot()\n\
             print(root.tag)\n\
             print('|'.join(''.join(t.itertext()) for t in root.iter() if t.tag.endswith('text')))\n",
        ])
        .arg(path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{} is not XML: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (root, texts) = text.split_once('\n').unwrap();
    (root.to_owned(), texts.trim_end().to_owned())
}

/// `hotwire run --plot DIR`: one SVG per endpoint with data, named after it, with percentile
/// ticks on the x axis and both measurements of a WebSocket feed; none for an endpoint that never
/// connected.
#[test]
fn run_plots_latency_percentiles_per_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, dead) = (util::free_port(), util::free_port());
    let mut venue = ChildGuard::spawn(
        Command::new(BIN)
            .args(["venue", "--listen"])
            .arg(format!("127.0.0.1:{ws}"))
            .stdout(Stdio::null()),
    );
    venue.wait_port(addr(ws), Duration::from_secs(10));
    let config = dir.path().join("plot.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[endpoint]]
name = "feed"
url = "ws://127.0.0.1:{ws}/feed?rate=3000&size=100"
heartbeat = "50ms"

[[endpoint]]
name = "dead"
url = "ws://127.0.0.1:{dead}/feed"
"#
        ),
    )
    .unwrap();
    let plots = dir.path().join("plots");
    let out = Command::new(BIN)
        .arg("run")
        .arg(&config)
        .args(["--duration", "3", "--plot"])
        .arg(&plots)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut files: Vec<String> = std::fs::read_dir(&plots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["feed.svg"], "one plot, for the endpoint with data");
    let (root, texts) = svg_outline(&plots.join("feed.svg"));
    assert_eq!(root, "{http://www.w3.org/2000/svg}svg");
    for needle in [
        "feed: latency by percentile",
        "percentile",
        "latency (µs)",
        "90%",
        "99%",
        "99.9%",
        "one-way latency (n=",
        "round trip (n=",
    ] {
        assert!(
            texts.contains(needle),
            "{needle:?} not in the SVG's text: {texts}"
        );
    }
}
