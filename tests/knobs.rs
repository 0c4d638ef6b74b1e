//! `[endpoint.tls]` and `[endpoint.tcp]` end to end: `hotwire run` against the TLS venue (https,
//! fixs, mutual TLS), against `openssl s_server` (ALPN, protocol versions) and against a plain
//! listener that checks where connections come from (bind address, bind device).

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use util::{ChildGuard, TestPki};

const BIN: &str = env!("CARGO_BIN_EXE_hotwire");

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `hotwire venue` with its certificates in `dir`, plus `flags` (each `--x-listen` given a port in
/// `ports`, waited for).
fn venue(dir: &Path, listens: &[(&str, u16)], flags: &[&str]) -> ChildGuard {
    let mut cmd = Command::new(BIN);
    cmd.args(["venue", "--listen"])
        .arg(format!("127.0.0.1:{}", util::free_port()))
        .arg("--cert-dir")
        .arg(dir)
        .args(flags)
        .stdout(Stdio::null());
    for (flag, port) in listens {
        cmd.arg(flag).arg(format!("127.0.0.1:{port}"));
    }
    let mut guard = ChildGuard::spawn(&mut cmd);
    for (_, port) in listens {
        guard.wait_port(addr(*port), Duration::from_secs(10));
    }
    guard
}

/// Runs `config` for `secs` seconds; returns the process output and the JSON report.
fn run(dir: &Path, name: &str, config: &str, secs: u32) -> (Output, serde_json::Value) {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let json = dir.join(format!("{name}.json"));
    let out = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .args(["--duration", &secs.to_string(), "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let report = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (out, report)
}

fn endpoint<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["endpoints"]
        .as_array()
        .unwrap_or_else(|| panic!("no report: {report}"))
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no endpoint {name} in {report}"))
}

fn messages(report: &serde_json::Value, name: &str) -> u64 {
    endpoint(report, name)["messages"].as_u64().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The WARN lines the run logged about endpoint `name`.
fn warnings(out: &Output, name: &str) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(&format!("{name}:")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn https_and_fixs_endpoints_run_against_the_tls_venue() {
    let dir = tempfile::tempdir().unwrap();
    let (https, fixs) = (util::free_port(), util::free_port());
    let _venue = venue(
        dir.path(),
        &[("--https-listen", https), ("--fixs-listen", fixs)],
        &[],
    );
    let ca = dir.path().join("ca.pem");
    let config = format!(
        r#"
[[endpoint]]
name = "rest"
url = "https://localhost:{https}/api/time"
interval = "10ms"
tls = {{ ca = "{ca}", alpn = ["http/1.1"] }}

[[endpoint]]
name = "rest-openssl"
url = "https://127.0.0.1:{https}/api/book?symbol=HWX"
interval = "10ms"
tls = {{ ca = "{ca}", backend = "openssl", min_version = "1.3" }}

[[endpoint]]
name = "orders"
url = "fixs://localhost:{fixs}"
fix = {{ sender = "HW", target = "VENUE", order_rate = 200.0 }}
tls = {{ ca = "{ca}", backend = "openssl" }}

[[endpoint]]
name = "orders-rustls"
url = "fixs://127.0.0.1:{fixs}"
fix = {{ sender = "HW2", target = "VENUE", order_rate = 200.0 }}
tls = {{ ca = "{ca}" }}
"#,
        ca = ca.display()
    );
    let (out, r) = run(dir.path(), "tls", &config, 3);
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["rest", "rest-openssl"] {
        let e = endpoint(&r, name);
        // One request per 10 ms for about 3 s, each answered over one verified TLS connection.
        assert!((150..=400).contains(&messages(&r, name)), "{e}");
        assert_eq!(e["connects"], 1, "{e}");
    }
    for name in ["orders", "orders-rustls"] {
        let e = endpoint(&r, name);
        assert!((400..=800).contains(&messages(&r, name)), "{e}");
        assert_eq!(e["connects"], 1, "{e}");
    }
    assert!(warnings(&out, "").is_empty(), "{}", stderr(&out));
}

#[test]
fn mutual_tls_with_the_venue_needs_the_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (https, fixs) = (util::free_port(), util::free_port());
    let _venue = venue(
        dir.path(),
        &[("--https-listen", https), ("--fixs-listen", fixs)],
        &["--require-client-cert"],
    );
    let p = |f: &str| dir.path().join(f).display().to_string();
    let (ca, cert, key) = (p("ca.pem"), p("client.pem"), p("client.key"));
    let config = format!(
        r#"
[[endpoint]]
name = "with-cert"
url = "https://localhost:{https}/api/time"
interval = "20ms"
tls = {{ ca = "{ca}", cert = "{cert}", key = "{key}" }}

[[endpoint]]
name = "orders-with-cert"
url = "fixs://localhost:{fixs}"
fix = {{ sender = "HW", target = "VENUE", order_rate = 100.0 }}
tls = {{ ca = "{ca}", cert = "{cert}", key = "{key}", backend = "openssl" }}

[[endpoint]]
name = "no-cert"
url = "https://localhost:{https}/api/time"
interval = "20ms"
tls = {{ ca = "{ca}", backend = "openssl" }}
reconnect = {{ enabled = false }}

[[endpoint]]
name = "orders-no-cert"
url = "fixs://localhost:{fixs}"
fix = {{ sender = "HW2", target = "VENUE", order_rate = 100.0 }}
tls = {{ ca = "{ca}" }}
reconnect = {{ enabled = false }}
"#
    );
    let (out, r) = run(dir.path(), "mtls", &config, 2);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(messages(&r, "with-cert") >= 50, "{r}");
    assert!(messages(&r, "orders-with-cert") >= 100, "{r}");
    assert_eq!(endpoint(&r, "with-cert")["reconnects"], 0, "{r}");
    // Without a certificate the venue ends the handshake with a certificate_required alert
    // (RFC 8446 §4.4.2.4): nothing is served, and the log says why.
    assert_eq!(messages(&r, "no-cert"), 0, "{r}");
    assert_eq!(messages(&r, "orders-no-cert"), 0, "{r}");
    for (name, says) in [
        ("no-cert", "certificate required"),
        ("orders-no-cert", "CertificateRequired"),
    ] {
        let w = warnings(&out, name);
        assert!(w.iter().any(|l| l.contains(says)), "{name}: {w:?}");
    }
}

/// `openssl s_server -rev` limited to `version`, offering ALPN `http/1.1`; its stdout goes to a
/// file (for each session: the version, the client's ALPN offer and the protocol selected).
/// Returns once it listens.
/// It exits after `naccept` connections, which is when its buffered stdout is complete.
fn s_server(pki: &TestPki, version: &str, naccept: u32, log: &Path) -> (ChildGuard, u16) {
    for _ in 0..5 {
        let port = util::free_port();
        let mut cmd = Command::new("openssl");
        cmd.args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-rev"])
            .arg("-cert")
            .arg(&pki.server_cert)
            .arg("-key")
            .arg(&pki.server_key)
            .args([
                version,
                "-alpn",
                "http/1.1",
                "-naccept",
                &naccept.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(Stdio::null());
        let mut guard = ChildGuard::spawn(&mut cmd);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && guard.exited().is_none() {
            if std::fs::read_to_string(log).is_ok_and(|t| t.contains("ACCEPT")) {
                return (guard, port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("openssl s_server did not start");
}

#[test]
fn alpn_is_offered_and_tls_versions_are_honoured() {
    if !util::require_peer("openssl", &util::system_bin("openssl")) {
        return;
    }
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let (log12, log13) = (dir.path().join("s12.txt"), dir.path().join("s13.txt"));
    // Three connections to the TLS 1.2 server, two to the TLS 1.3 one (no reconnects).
    let (mut s12, tls12) = s_server(&pki, "-tls1_2", 3, &log12);
    let (mut s13, tls13) = s_server(&pki, "-tls1_3", 2, &log13);
    let ca = pki.ca_pem.display();
    let mut config = String::new();
    // (name, port, backend, extra TLS keys)
    let cases = [
        (
            "max12-on-12",
            tls12,
            "rustls",
            r#"max_version = "1.2", alpn = ["http/1.1"]"#,
        ),
        ("min13-on-12", tls12, "openssl", r#"min_version = "1.3""#),
        (
            "min13-on-12-rustls",
            tls12,
            "rustls",
            r#"min_version = "1.3""#,
        ),
        ("max12-on-13", tls13, "openssl", r#"max_version = "1.2""#),
        ("min13-on-13", tls13, "openssl", r#"min_version = "1.3""#),
    ];
    for (name, port, backend, extra) in cases {
        config.push_str(&format!(
            "[[endpoint]]\nname = \"{name}\"\nurl = \"https://localhost:{port}/\"\n\
             reconnect = {{ enabled = false }}\n\
             tls = {{ ca = \"{ca}\", backend = \"{backend}\", {extra} }}\n\n"
        ));
    }
    let (out, r) = run(dir.path(), "versions", &config, 1);
    assert!(out.status.success(), "{}", stderr(&out));
    // The versions both sides allow: connected (the handshake completed).
    for name in ["max12-on-12", "min13-on-13"] {
        assert_eq!(endpoint(&r, name)["connects"], 1, "{name}: {r}");
    }
    // No version in common: the handshake fails with a protocol_version alert, logged.
    for name in ["min13-on-12", "min13-on-12-rustls", "max12-on-13"] {
        assert_eq!(endpoint(&r, name)["connects"], 0, "{name}: {r}");
        let w = warnings(&out, name);
        assert!(
            w.iter()
                .any(|l| l.to_lowercase().contains("protocol version")
                    || l.contains("ProtocolVersion")),
            "{name}: {w:?}"
        );
    }
    for server in [&mut s12, &mut s13] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.exited().is_none() {
            assert!(
                Instant::now() < deadline,
                "s_server still waits for connections"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // s_server saw the ALPN offer of the one endpoint that made it, and selected it.
    let seen = std::fs::read_to_string(&log12).unwrap();
    // Its statistics agree: of three handshakes, one finished (and one of two on TLS 1.3).
    for line in [
        "ALPN protocols advertised by the client: http/1.1",
        "ALPN protocols selected: http/1.1",
        "3 server accepts (SSL_accept())",
        "1 server accepts that finished",
    ] {
        assert!(seen.contains(line), "{line:?} in {seen}");
    }
    let seen13 = std::fs::read_to_string(&log13).unwrap();
    for line in [
        "2 server accepts (SSL_accept())",
        "1 server accepts that finished",
    ] {
        assert!(seen13.contains(line), "{line:?} in {seen13}");
    }
    assert_eq!(
        seen.matches("ALPN protocols advertised").count(),
        1,
        "only the endpoint with alpn set offers it: {seen}"
    );
}

/// The local address `ss` shows for connections to `port` (e.g. `127.0.0.2%lo:40000`).
fn ss_local(port: u16) -> Vec<String> {
    let out = Command::new(util::system_bin("ss"))
        .args(["-tnH", "state", "established"])
        .arg(format!("dport = :{port}"))
        .output()
        .expect("ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect()
}

#[test]
fn bind_addr_and_bind_device_are_used_for_the_connection() {
    if !util::require_root("SO_BINDTODEVICE") || !util::require_peer("ss", &util::system_bin("ss"))
    {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A minimal HTTP server: answers every request of the one connection, and looks at it.
    let server = std::thread::spawn(move || {
        let (mut sock, peer) = listener.accept().unwrap();
        let local = ss_local(port);
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        let mut answered = 0;
        while let Ok(n) = sock.read(&mut buf) {
            if n == 0 {
                break;
            }
            let requests = buf[..n].windows(4).filter(|w| w == b"\r\n\r\n").count();
            for _ in 0..requests {
                let _ = sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                answered += 1;
            }
        }
        (peer, local, answered)
    });
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[[endpoint]]
name = "bound"
url = "http://127.0.0.1:{port}/"
interval = "50ms"
reconnect = {{ enabled = false }}
tcp = {{ bind_addr = "127.0.0.2", bind_device = "lo", recv_buffer = 1048576, send_buffer = 262144, busy_poll = 50, incoming_cpu = 0, nodelay = true }}
"#
    );
    let (out, r) = run(dir.path(), "bound", &config, 1);
    assert!(out.status.success(), "{}", stderr(&out));
    let (peer, local, answered) = server.join().unwrap();
    assert_eq!(
        peer.ip().to_string(),
        "127.0.0.2",
        "the venue's view of the peer"
    );
    assert!(
        local.iter().any(|l| l.starts_with("127.0.0.2%lo:")),
        "ss shows the socket bound to lo: {local:?}"
    );
    assert!(messages(&r, "bound") >= 5, "{r}");
    assert!(answered >= messages(&r, "bound"));
}

#[test]
fn a_bind_addr_the_host_does_not_have_fails_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[[endpoint]]\nname = \"nowhere\"\nurl = \"http://127.0.0.1:{port}/\"\n\
         reconnect = {{ enabled = false }}\ntcp = {{ bind_addr = \"192.0.2.77\" }}\n"
    );
    let (out, r) = run(dir.path(), "nowhere", &config, 1);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(endpoint(&r, "nowhere")["connects"], 0, "{r}");
    let w = warnings(&out, "nowhere");
    assert!(
        w.iter().any(|l| l.contains("cannot bind to 192.0.2.77")),
        "{w:?}"
    );
}

/// The kernel here may lack the TLS ULP; what `prefer` and `require` do then is the point.
fn kernel_has_tls_ulp() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp")
        .is_ok_and(|s| s.split_whitespace().any(|u| u == "tls"))
}

#[test]
fn ktls_prefer_falls_back_to_user_space_and_require_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let https = util::free_port();
    let _venue = venue(dir.path(), &[("--https-listen", https)], &[]);
    let ca = dir.path().join("ca.pem");
    let endpoint_with = |mode: &str| {
        format!(
            "[[endpoint]]\nname = \"k\"\nurl = \"https://localhost:{https}/api/time\"\n\
             interval = \"20ms\"\ntls = {{ ca = \"{}\", backend = \"openssl\", ktls = \"{mode}\" }}\n",
            ca.display()
        )
    };
    let (out, r) = run(dir.path(), "prefer", &endpoint_with("prefer"), 1);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(messages(&r, "k") >= 20, "{r}");
    let err = stderr(&out);
    let why = if cfg!(feature = "ktls") {
        "the kernel has no TLS ULP"
    } else {
        "built without the `ktls` feature"
    };
    if !(cfg!(feature = "ktls") && kernel_has_tls_ulp()) {
        // One line for the endpoint, however many connections it makes.
        assert_eq!(err.matches("TLS runs in user space").count(), 1, "{err}");
        assert!(err.contains(why), "{err}");
    }

    let (out, _) = run(dir.path(), "require", &endpoint_with("require"), 1);
    let err = stderr(&out);
    if cfg!(feature = "ktls") && kernel_has_tls_ulp() {
        // Offloaded, or refused with NotActivated when OpenSSL lacks kTLS: either way, said.
        assert!(
            out.status.success() || err.contains("did not offload"),
            "{err}"
        );
    } else if cfg!(feature = "ktls") {
        assert!(!out.status.success());
        assert!(
            err.contains(r#"endpoint "k": tls.ktls = "require": the kernel has no TLS ULP"#),
            "{err}"
        );
    } else {
        // A configuration error, located at the value.
        assert!(!out.status.success());
        assert!(
            err.contains("require.toml:5:") && err.contains("without the `ktls` feature"),
            "{err}"
        );
    }
}
