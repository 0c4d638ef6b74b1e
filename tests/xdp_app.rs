//! The appliance and the probe on the AF_XDP path (root, veth namespaces): a TLS WebSocket session
//! over XDP to the Python `websockets` server, the HTTP and FIX probes over XDP to the venue, and the
//! fallback to kernel TCP (no privilege, unknown
//! interface, queue taken) with its log line, or a startup error with `fallback = false`; and the
//! AF_XDP path run by a non-root user holding only the four capabilities of config/hotwire.service.
#![cfg(all(
    feature = "xdp",
    feature = "ws",
    feature = "tls-rustls",
    feature = "venue"
))]

mod util;

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use util::{in_netns, ChildGuard, Netns};

const HOTWIRE: &str = env!("CARGO_BIN_EXE_hotwire");

fn stack_ip(ns: &Netns) -> Ipv4Addr {
    let o = ns.client_ip.octets();
    Ipv4Addr::new(o[0], o[1], o[2], 3)
}

fn client_ns(ns: &Netns) -> &str {
    ns.client_ns.as_deref().expect("pair mode")
}

/// A CA and a server certificate for `ip`, as PEM files in `dir`: (ca, cert, key).
fn pki_for(dir: &Path, ip: Ipv4Addr) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "hotwire xdp test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).expect("CA").pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec![ip.to_string()]).expect("params");
    let cert = params.signed_by(&key, &issuer).expect("sign");
    let write = |name: &str, pem: &str| {
        let p = dir.join(name);
        std::fs::write(&p, pem).expect("write PEM");
        p
    };
    (
        write("ca.pem", &ca_pem),
        write("server.pem", &cert.pem()),
        write("server.key", &key.serialize_pem()),
    )
}

const WSS_ECHO: &str = r#"
import asyncio, ssl, sys
from websockets.asyncio.server import serve

async def handler(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    ctx = None
    if len(sys.argv) > 3:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    async with serve(handler, sys.argv[1], int(sys.argv[2]), ssl=ctx, compression=None):
        print("ready", flush=True)
        await asyncio.Future()

asyncio.run(main())
"#;

fn python_with_websockets() -> Option<PathBuf> {
    let python = util::venv_bin("python3");
    if !util::require_peer("python3 (venv)", &python) {
        return None;
    }
    let ok = Command::new(&python)
        .args(["-c", "import websockets"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok || !util::peers_required(),
        "python websockets missing in the venv and HOTWIRE_REQUIRE_PEERS=1"
    );
    ok.then_some(python)
}

/// The Python `websockets` echo server on `port` of the server namespace (TLS with `tls`: the
/// certificate and key files), started and answering.
fn python_echo(ns: &Netns, python: &Path, port: u16, tls: Option<(&Path, &Path)>) -> ChildGuard {
    let mut cmd = in_netns(&ns.server_ns, python);
    cmd.args(["-c", WSS_ECHO, &ns.server_ip.to_string(), &port.to_string()]);
    if let Some((cert, key)) = tls {
        cmd.arg(cert).arg(key);
    }
    cmd.stdout(Stdio::piped());
    let mut server = ChildGuard::spawn(&mut cmd);
    wait_ready(&mut server);
    server
}

fn wait_ready(guard: &mut ChildGuard) {
    let out = guard.child().stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "ready", "the peer did not start");
}

/// Test 2: `hotwire ws --xdp` runs a TLS WebSocket session over the XDP path to Python
/// `websockets` in the peer namespace, certificate verified against the test CA.
#[test]
fn wss_session_over_xdp_to_python_websockets() {
    if !util::require_root("the AF_XDP tests") {
        return;
    }
    let Some(python) = python_with_websockets() else {
        return;
    };
    let ns = Netns::up_pair();
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = pki_for(dir.path(), ns.server_ip);
    let _server = python_echo(&ns, &python, 9443, Some((&cert, &key)));
    let messages = ["hello over AF_XDP", "second message", &"x".repeat(20_000)];
    let mut probe = in_netns(client_ns(&ns), HOTWIRE);
    probe
        .args(["ws", "--xdp", &ns.client_if])
        .args(["--local-ip", &format!("{}/24", stack_ip(&ns))])
        .arg(format!("wss://{}:9443/", ns.server_ip))
        .arg("--ca")
        .arg(&ca)
        .args([
            "--count",
            "3",
            "--connect-timeout",
            "20",
            "--idle-timeout",
            "20",
        ]);
    for m in messages {
        probe.args(["--send", m]);
    }
    let out = probe
        .env("RUST_LOG", "info")
        .output()
        .expect("run hotwire ws");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hotwire ws failed: {stderr}");
    assert!(
        stderr.contains("AF_XDP on"),
        "the probe did not take the XDP path: {stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, messages, "echoes differ");
}

/// `target/<profile>/examples/xdp_alloc`, built by `cargo test` with its features.
#[cfg(feature = "tls-openssl")]
fn xdp_alloc() -> PathBuf {
    util::example("xdp_alloc")
}

/// `xdp_alloc MODE --url URL [extra]` in the client namespace: (allocations, messages, packets
/// received across frames, packets sent across frames), all over the measured messages.
#[cfg(feature = "tls-openssl")]
fn count_allocations(
    ns: &Netns,
    mode: &str,
    url: &str,
    extra: &[&std::ffi::OsStr],
) -> (u64, u64, u64, u64) {
    let out = in_netns(client_ns(ns), xdp_alloc())
        .args([mode, "--xdp", &ns.client_if])
        .args(["--local-ip", &format!("{}/24", stack_ip(ns))])
        .args(["--url", url])
        .args(extra)
        .output()
        .expect("run xdp_alloc");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "xdp_alloc {mode} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("xdp_alloc {mode} {url}: {}", stdout.trim());
    let words: Vec<&str> = stdout.split_whitespace().collect();
    match words[..] {
        ["allocations", a, "messages", m, "multi-frame-rx", r, "multi-frame-tx", t] => (
            a.parse().unwrap(),
            m.parse().unwrap(),
            r.parse().unwrap(),
            t.parse().unwrap(),
        ),
        _ => panic!("unexpected output: {stdout}"),
    }
}

/// The hot path over AF_XDP allocates nothing per message: the XDP selector, the smoltcp stack
/// and its `XdpStream`, the IoService and the WebSocket client (and OpenSSL, for wss), counted by a
/// global allocator in the process that runs them. A 100k msg/s feed from the venue; round trips to
/// Python `websockets`, plain and TLS; at MTU 9000 the feed and 20 KB echoes again, in packets
/// spanning UMEM frames both ways.
#[cfg(feature = "tls-openssl")]
#[test]
fn xdp_hot_path_does_not_allocate() {
    if !util::require_root("the AF_XDP tests") {
        return;
    }
    let Some(python) = python_with_websockets() else {
        return;
    };
    let ns = Netns::up_pair();
    let _venue = venue(&ns);
    let feed = format!("ws://{}:9001/feed?rate=100000&size=128", ns.server_ip);
    let (allocations, messages, _, _) = count_allocations(&ns, "feed", &feed, &[]);
    assert!(messages >= 20_000, "{messages}");
    assert_eq!(
        allocations, 0,
        "feed: {allocations} allocations for {messages} messages"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = pki_for(dir.path(), ns.server_ip);
    let _plain = python_echo(&ns, &python, 9080, None);
    let _tls = python_echo(&ns, &python, 9443, Some((&cert, &key)));
    let few = ["--warmup", "500", "--count", "5000"].map(std::ffi::OsStr::new);
    let url = format!("ws://{}:9080/", ns.server_ip);
    let (allocations, messages, _, _) = count_allocations(&ns, "echo", &url, &few);
    assert!(messages >= 5_000, "{messages}");
    assert_eq!(
        allocations, 0,
        "ws echo: {allocations} allocations for {messages} round trips"
    );
    let url = format!("wss://{}:9443/", ns.server_ip);
    let mut args = few.to_vec();
    args.extend([std::ffi::OsStr::new("--ca"), ca.as_os_str()]);
    let (allocations, messages, _, _) = count_allocations(&ns, "echo", &url, &args);
    assert!(messages >= 5_000, "{messages}");
    assert_eq!(
        allocations, 0,
        "wss echo: {allocations} allocations for {messages} round trips"
    );

    // Jumbo frames: at MTU 9000 the venue's batches arrive in packets spanning several UMEM
    // frames (multi-buffer), assembled for smoltcp in the device's buffer, still allocation-free.
    ns.set_mtu(9000);
    let feed = format!("ws://{}:9001/feed?rate=100000&size=1000", ns.server_ip);
    let (allocations, messages, multi_rx, _) = count_allocations(&ns, "feed", &feed, &[]);
    assert!(messages >= 20_000, "{messages}");
    assert!(
        multi_rx > 100,
        "only {multi_rx} packets spanned frames at MTU 9000"
    );
    assert_eq!(
        allocations, 0,
        "jumbo feed: {allocations} allocations for {messages} messages"
    );
    // And sending: 20 KB messages leave in 8960-byte segments, each split across frames.
    let url = format!("ws://{}:9080/", ns.server_ip);
    let big = ["--warmup", "100", "--count", "1000", "--size", "20000"].map(std::ffi::OsStr::new);
    let (allocations, messages, multi_rx, multi_tx) = count_allocations(&ns, "echo", &url, &big);
    assert!(messages >= 1_000, "{messages}");
    assert!(
        multi_rx >= 1_000 && multi_tx >= 1_000,
        "{multi_rx} packets received and {multi_tx} sent across frames for {messages} 20 KB echoes"
    );
    assert_eq!(
        allocations, 0,
        "jumbo echo: {allocations} allocations for {messages} round trips"
    );
}

/// A venue (plain ws) in the server namespace.
fn venue(ns: &Netns) -> ChildGuard {
    let mut cmd = in_netns(&ns.server_ns, HOTWIRE);
    cmd.args(["venue", "--listen", &format!("{}:9001", ns.server_ip)])
        .stdout(Stdio::piped());
    let mut guard = ChildGuard::spawn(&mut cmd);
    let out = guard.child().stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("read");
    assert!(line.starts_with("venue:"), "venue did not start: {line}");
    guard
}

fn config(dir: &Path, ns: &Netns, interface: &str, fallback: bool) -> PathBuf {
    let text = format!(
        "[network]\npath = \"xdp\"\ninterface = \"{interface}\"\nlocal_ip = \"{}/24\"\n\
         fallback = {fallback}\n\n[[thread]]\nname = \"md\"\nselector = \"direct\"\n\n\
         [[endpoint]]\nname = \"feed\"\nurl = \"ws://{}:9001/feed?rate=500\"\nlatency = \"none\"\n",
        stack_ip(ns),
        ns.server_ip
    );
    let path = dir.join(format!("{interface}-{fallback}.toml"));
    std::fs::write(&path, text).expect("write config");
    path
}

/// `hotwire run CONFIG --duration 2` in the client namespace, optionally under `capsh`.
fn run(ns: &Netns, config: &Path, drop_caps: bool) -> Output {
    let mut cmd = if drop_caps {
        let mut c = in_netns(client_ns(ns), "capsh");
        c.arg("--drop=cap_net_raw,cap_bpf,cap_sys_admin,cap_net_admin")
            .arg("--")
            .arg("-c")
            .arg(format!(
                "exec {HOTWIRE} run {} --duration 2",
                config.display()
            ));
        c
    } else {
        let mut c = in_netns(client_ns(ns), HOTWIRE);
        c.arg("run").arg(config).args(["--duration", "2"]);
        c
    };
    let out = cmd.env("RUST_LOG", "info").output().expect("run hotwire");
    eprintln!(
        "hotwire run: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Asserts a kernel-path run that received data and logged `reason` once.
fn assert_fell_back(out: &Output, reason: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hotwire run failed: {stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("is unavailable") && l.contains("using kernel TCP"))
        .collect();
    assert_eq!(lines.len(), 1, "expected one fallback line: {stderr}");
    assert!(lines[0].contains(reason), "{}", lines[0]);
    assert!(stderr.contains("network path kernel"), "{stderr}");
    let messages: u64 = stdout
        .split("messages ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("a report with a message count");
    assert!(
        messages > 100,
        "only {messages} messages over the kernel path"
    );
}

/// Test 6: each reason to fall back gives a working kernel path and one log line; with
/// `fallback = false` the same situation is a startup error.
#[test]
fn fallback_to_kernel_tcp_or_startup_error() {
    if !util::require_root("the AF_XDP tests") {
        return;
    }
    let ns = Netns::up_pair();
    let _venue = venue(&ns);
    let dir = tempfile::tempdir().expect("tempdir");

    // Sanity: with everything in place the appliance takes the XDP path.
    let out = run(&ns, &config(dir.path(), &ns, &ns.client_if, false), false);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("network path xdp"));

    // No privilege.
    let fallback = config(dir.path(), &ns, &ns.client_if, true);
    assert_fell_back(&run(&ns, &fallback, true), "missing privilege");
    // Unknown interface.
    let unknown = config(dir.path(), &ns, "hwnone0", true);
    assert_fell_back(&run(&ns, &unknown, false), "unknown interface");
    // Queue taken by another AF_XDP socket.
    let holder = {
        let mut cmd = in_netns(client_ns(&ns), HOTWIRE);
        cmd.args(["ws", "--xdp", &ns.client_if])
            .args(["--local-ip", &format!("{}/24", stack_ip(&ns))])
            .arg(format!("ws://{}:9001/feed?rate=10", ns.server_ip))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut guard = ChildGuard::spawn(&mut cmd);
        // The probe prints the first feed message once its session is up.
        let out = guard.child().stdout.take().expect("stdout");
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        reader.read_line(&mut line).expect("read");
        assert!(
            line.contains("seq"),
            "the queue holder did not connect: {line}"
        );
        // Keep reading: a closed pipe would end the probe (and free the queue) at its next line.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        guard
    };
    let mut holder = holder;
    assert!(holder.exited().is_none(), "the queue holder exited");
    assert_fell_back(&run(&ns, &fallback, false), "busy");
    assert!(holder.exited().is_none(), "the queue holder exited");

    // fallback = false: a clear startup error instead.
    let strict = config(dir.path(), &ns, &ns.client_if, false);
    let out = run(&ns, &strict, false);
    assert!(
        !out.status.success(),
        "a taken queue must fail with fallback = false"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fallback is off"), "{stderr}");
    drop(holder);
    let out = run(&ns, &config(dir.path(), &ns, "hwnone0", false), false);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown interface"));
}

/// The REST and FIX probes take the same `--xdp` path: a venue with its REST API and FIX acceptor
/// in the server namespace, `hotwire http` and `hotwire fix` over AF_XDP in the client namespace.
#[cfg(all(feature = "http", feature = "fix"))]
#[test]
fn http_and_fix_probes_over_xdp() {
    if !util::require_root("the AF_XDP tests") {
        return;
    }
    let ns = Netns::up_pair();
    let mut cmd = in_netns(&ns.server_ns, HOTWIRE);
    cmd.args(["venue", "--listen", &format!("{}:9001", ns.server_ip)])
        .args(["--http-listen", &format!("{}:9080", ns.server_ip)])
        .args(["--fix-listen", &format!("{}:9876", ns.server_ip)])
        .stdout(Stdio::piped());
    let mut venue = ChildGuard::spawn(&mut cmd);
    let out = venue.child().stdout.take().expect("stdout");
    let mut reader = BufReader::new(out);
    let mut seen = String::new();
    // The venue prints one line per service, the FIX acceptor's last.
    while !seen.contains("fix://") {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).expect("read") > 0,
            "venue ended: {seen}"
        );
        seen.push_str(&line);
    }
    let xdp = |probe: &str| {
        let mut cmd = in_netns(client_ns(&ns), HOTWIRE);
        cmd.arg(probe)
            .args(["--xdp", &ns.client_if])
            .args(["--local-ip", &format!("{}/24", stack_ip(&ns))])
            .env("RUST_LOG", "info");
        cmd
    };
    let out = xdp("http")
        .arg(format!("http://{}:9080/api/book?symbol=HWX", ns.server_ip))
        .args(["--repeat", "50"])
        .output()
        .expect("run hotwire http");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "hotwire http failed: {stderr}");
    assert!(stderr.contains("AF_XDP on"), "not over XDP: {stderr}");
    assert!(stdout.starts_with("HTTP/1.1 200"), "{stdout}");
    assert!(stdout.contains("\"symbol\":\"HWX\""), "{stdout}");
    assert!(stdout.contains("50 requests on 1 connection"), "{stdout}");

    let out = xdp("fix")
        .arg(format!("{}:9876", ns.server_ip))
        .args(["--sender", "HW", "--target", "VENUE", "--orders", "200"])
        .output()
        .expect("run hotwire fix");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "hotwire fix failed: {stderr}");
    assert!(stderr.contains("AF_XDP on"), "not over XDP: {stderr}");
    assert!(stdout.contains("200 execution reports"), "{stdout}");
}

/// The system user the unprivileged AF_XDP run uses (created if missing, kept afterwards).
const XDP_USER: &str = "hotwire-xdp-test";

/// Creates [`XDP_USER`] unless it exists.
fn ensure_user() {
    let exists = Command::new("id")
        .arg("-u")
        .arg(XDP_USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run id")
        .success();
    if !exists {
        let status = Command::new(util::system_bin("useradd"))
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(XDP_USER)
            .status()
            .expect("run useradd");
        // A parallel run may have created it meanwhile (exit 9: the name is taken).
        assert!(
            status.success() || status.code() == Some(9),
            "useradd {XDP_USER}: {status}"
        );
    }
}

/// `hotwire run CONFIG --duration 2` in the client namespace as [`XDP_USER`], holding exactly
/// `caps` (effective, permitted, inheritable and ambient) and nothing else. Prints `uid=N` and the
/// CapEff line first, from the same process image, so the test can check who ran.
fn run_as_user(ns: &Netns, config: &Path, caps: &str) -> Output {
    let mut cmd = in_netns(client_ns(ns), "capsh");
    cmd.arg(format!(
        "--caps={caps}+eip cap_setpcap,cap_setuid,cap_setgid+ep"
    ))
    .arg("--keep=1")
    .arg(format!("--user={XDP_USER}"))
    .arg(format!("--addamb={caps}"))
    .arg("--")
    .arg("-c")
    .arg(format!(
        "echo uid=$(id -u); grep CapEff /proc/self/status; exec {HOTWIRE} run {} --duration 2",
        config.display()
    ));
    let out = cmd.env("RUST_LOG", "info").output().expect("run capsh");
    eprintln!(
        "hotwire run as {XDP_USER} with {caps}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Messages in a `hotwire run` report.
fn reported_messages(stdout: &str) -> u64 {
    stdout
        .split("messages ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no report with a message count: {stdout}"))
}

/// The AF_XDP path as a non-root user holding only CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF and
/// CAP_IPC_LOCK (what config/hotwire.service grants): the path comes up (`fallback = false`, so a
/// fallback would fail the run) and messages flow. Without CAP_IPC_LOCK it still comes up, with the
/// UMEM lowered to fit RLIMIT_MEMLOCK.
#[test]
fn af_xdp_as_an_unprivileged_user_with_four_capabilities() {
    if !util::require_root("the AF_XDP tests (creating a user, namespaces)")
        || !util::require_peer("capsh", &util::system_bin("capsh"))
    {
        return;
    }
    ensure_user();
    let ns = Netns::up_pair();
    let _venue = venue(&ns);
    let dir = tempfile::tempdir().expect("tempdir");
    // The user must reach the config through the temporary directory (created 0700).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let strict = config(dir.path(), &ns, &ns.client_if, false);
    std::fs::set_permissions(&strict, std::fs::Permissions::from_mode(0o644)).unwrap();

    let out = run_as_user(
        &ns,
        &strict,
        "cap_net_raw,cap_net_admin,cap_bpf,cap_ipc_lock",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hotwire run failed: {stderr}");
    let uid: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("uid="))
        .and_then(|u| u.parse().ok())
        .expect("uid line");
    assert_ne!(uid, 0, "ran as root");
    // Bits 12, 13, 14 and 39: CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK, CAP_BPF; nothing else.
    let cap_eff = stdout
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).expect("hex"))
        .expect("CapEff line");
    assert_eq!(cap_eff, (1 << 12) | (1 << 13) | (1 << 14) | (1 << 39));
    assert!(stderr.contains("network path xdp"), "{stderr}");
    assert!(!stderr.contains("using kernel TCP"), "{stderr}");
    assert!(!stderr.contains("RLIMIT_MEMLOCK"), "UMEM capped: {stderr}");
    let messages = reported_messages(&stdout);
    assert!(messages > 100, "only {messages} messages over AF_XDP");

    // Without CAP_IPC_LOCK the same path comes up with a UMEM sized to RLIMIT_MEMLOCK.
    let out = run_as_user(&ns, &strict, "cap_net_raw,cap_net_admin,cap_bpf");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hotwire run failed: {stderr}");
    assert!(stderr.contains("network path xdp"), "{stderr}");
    assert!(
        stderr.contains("no CAP_IPC_LOCK; UMEM lowered to"),
        "{stderr}"
    );
    assert!(reported_messages(&stdout) > 100, "{stdout}");
}
