//! The AF_XDP path on veth namespaces (root): smoltcp over AF_XDP in the client namespace, kernel
//! peers in the server namespace.
//!
//! The XDP side runs in a child process started with `ip netns exec` (the `xdp_echo` example, or
//! the `hotwire` binary): a process entered into the namespace sees that namespace's sysfs too,
//! which a thread that only called setns(2) would not.
//!
//! The stack's address is `10.77.ID.3` (dedicated-IP mode); the kernel keeps `10.77.ID.2` on the
//! same interface.
#![cfg(feature = "xdp")]

mod util;

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use util::{in_netns, ChildGuard, Netns};

/// `target/<profile>/examples/xdp_echo`, built by `cargo test` with the `xdp` feature.
fn xdp_echo() -> PathBuf {
    util::example("xdp_echo")
}

fn stack_ip(ns: &Netns) -> Ipv4Addr {
    let o = ns.client_ip.octets();
    Ipv4Addr::new(o[0], o[1], o[2], 3)
}

fn client_ns(ns: &Netns) -> &str {
    ns.client_ns.as_deref().expect("pair mode")
}

/// The kernel echo server in the server namespace; its stdout lines ("rx BYTES SHA256") are kept.
struct Server {
    _guard: ChildGuard,
    lines: std::sync::mpsc::Receiver<String>,
    port: u16,
}

fn echo_server(ns: &Netns) -> Server {
    let port = 7000;
    let mut cmd = in_netns(&ns.server_ns, xdp_echo());
    cmd.args(["serve", "--server", &format!("{}:{port}", ns.server_ip)])
        .stdout(Stdio::piped());
    let mut guard = ChildGuard::spawn(&mut cmd);
    let out = guard.child().stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("echo server did not start");
    assert!(first.starts_with("listening"), "{first}");
    Server {
        _guard: guard,
        lines: rx,
        port,
    }
}

impl Server {
    /// `xdp_echo echo` of `bytes` to this server over the XDP path (with `extra` options): the
    /// echo is byte-exact and the server received exactly what was sent.
    fn echo_through(&self, ns: &Netns, bytes: u64, extra: &[&str]) -> Output {
        let target = format!("{}:{}", ns.server_ip, self.port);
        let count = bytes.to_string();
        let mut args = vec!["echo", "--server", &target, "--bytes", &count];
        args.extend_from_slice(extra);
        let out = run_client(ns, &args);
        let sha = echo_ok(&out);
        assert_eq!(self.received(), (bytes, sha), "{extra:?}");
        out
    }

    /// The next "rx BYTES SHA256" line.
    fn received(&self) -> (u64, String) {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the server reports each connection at its end");
        let mut parts = line.split_whitespace().skip(1);
        let bytes = parts.next().and_then(|b| b.parse().ok()).expect("bytes");
        (bytes, parts.next().expect("sha256").to_owned())
    }
}

/// Runs the XDP client in the client namespace and returns its output.
fn run_client(ns: &Netns, args: &[&str]) -> Output {
    let ip = format!("{}/24", stack_ip(ns));
    let mut cmd = in_netns(client_ns(ns), xdp_echo());
    cmd.args(args)
        .args(["--xdp", &ns.client_if, "--local-ip", &ip])
        .env("RUST_LOG", "info");
    let out = cmd.output().expect("run xdp_echo");
    eprintln!(
        "xdp_echo {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn echo_ok(out: &Output) -> String {
    assert!(out.status.success(), "xdp_echo failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().expect("a result line").to_owned();
    assert!(line.starts_with("ok "), "{line}");
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("sha256="))
        .expect("sha256")
        .to_owned()
}

fn xdp_attached(ns: &Netns) -> bool {
    let out = Command::new("ip")
        .args(["-n", client_ns(ns), "-d", "link", "show", &ns.client_if])
        .output()
        .expect("ip link");
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("prog/xdp") || text.contains(" xdp")
}

/// A test's namespace pair, and its share of the machine: most tests run side by side, the one
/// whose assertions depend on timing (the peer-side reordering, which needs the peer to keep
/// sending while a delayed packet waits) runs alone, as the 2-core machines here cannot give it a
/// fair share otherwise.
struct Setup {
    ns: Netns,
    _shared: Option<std::sync::RwLockReadGuard<'static, ()>>,
    _alone: Option<std::sync::RwLockWriteGuard<'static, ()>>,
}

static TURNS: std::sync::RwLock<()> = std::sync::RwLock::new(());

impl std::ops::Deref for Setup {
    type Target = Netns;
    fn deref(&self) -> &Netns {
        &self.ns
    }
}

fn setup_with(alone: bool) -> Option<Setup> {
    if !util::require_root("the AF_XDP tests") {
        return None;
    }
    // A test that failed while holding its turn poisons the lock; the turns still work.
    let (shared, exclusive) = if alone {
        (None, Some(TURNS.write().unwrap_or_else(|e| e.into_inner())))
    } else {
        (Some(TURNS.read().unwrap_or_else(|e| e.into_inner())), None)
    };
    Some(Setup {
        ns: Netns::up_pair(),
        _shared: shared,
        _alone: exclusive,
    })
}

fn setup() -> Option<Setup> {
    setup_with(false)
}

/// Test 1: 10 MB through smoltcp/AF_XDP to a kernel echo server, byte-exact both ways.
#[test]
fn echo_10mb_byte_exact() {
    let Some(ns) = setup() else { return };
    let server = echo_server(&ns);
    let target = format!("{}:{}", ns.server_ip, server.port);
    let out = run_client(&ns, &["echo", "--server", &target, "--bytes", "10000000"]);
    let sha = echo_ok(&out);
    let (bytes, server_sha) = server.received();
    assert_eq!(bytes, 10_000_000);
    assert_eq!(
        server_sha, sha,
        "the server received other bytes than were sent"
    );
    assert!(
        !xdp_attached(&ns),
        "the steering program outlived the process"
    );
}

/// `Stream::shutdown_write` on the XDP stream is a FIN: after 1 MB, the client half-closes and still
/// reads the whole echo; the kernel server only ends its side (and reports what it got) when it has
/// read EOF, and that EOF coming back to the client is what ends the client's run.
#[test]
fn half_close_is_a_fin_and_the_echo_still_arrives() {
    let Some(ns) = setup() else { return };
    let server = echo_server(&ns);
    let target = format!("{}:{}", ns.server_ip, server.port);
    let args = [
        "echo",
        "--server",
        &target,
        "--bytes",
        "1000000",
        "--half-close",
        "--timeout",
        "20",
    ];
    let out = run_client(&ns, &args);
    let sha = echo_ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(" half_closed"),
        "the client did not see the server's EOF after its own"
    );
    assert_eq!(server.received(), (1_000_000, sha));
}

/// Test 3: 50 MB byte-exact (sha256 on both sides) with 1 % loss and reordering on the peer.
///
/// This kernel has no netem (`CONFIG_NET_SCH_NETEM` is off), so `scripts/impair.sh` builds the same
/// from HTB and a BPF classifier on the peer's end of the veth: 1 % of the packets the peer sends
/// are dropped silently and 1 % start a run that is held back ~0.6 ms (and marked TOS 0x20), and
/// 1 % of the packets it receives from us are dropped. A capture of what the peer actually put on
/// the wire proves both impairments happened: data segments that appeared after higher ones while
/// marked were reordered; unmarked ones that did so and never appeared marked were resent after a
/// loss.
#[test]
fn echo_50mb_with_loss_and_reordering() {
    let Some(ns) = setup_with(true) else { return };
    let server = echo_server(&ns);
    let impair = |args: &[&str]| {
        let out = Command::new(util::repo_root().join("scripts/impair.sh"))
            .args(args)
            .output()
            .expect("run scripts/impair.sh");
        assert!(
            out.status.success(),
            "scripts/impair.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    impair(&["on", &ns.server_ns, &ns.server_if, "1", "1"]);

    let pcap = std::env::temp_dir().join(format!("hotwire-impair-{}.pcap", std::process::id()));
    let filter = format!(
        "tcp and src host {} and src port {}",
        ns.server_ip, server.port
    );
    let mut cmd = in_netns(&ns.server_ns, "tcpdump");
    cmd.args(["-i", &ns.server_if, "-nn", "-s", "96", "-U", "-w"])
        .arg(&pcap)
        .arg(&filter)
        .stderr(Stdio::piped());
    let mut tcpdump = ChildGuard::spawn(&mut cmd);
    let mut err = BufReader::new(tcpdump.child().stderr.take().expect("stderr"));
    let mut line = String::new();
    err.read_line(&mut line).expect("tcpdump's first line");
    assert!(line.contains("listening on"), "tcpdump: {line}");

    let target = format!("{}:{}", ns.server_ip, server.port);
    let out = run_client(&ns, &["echo", "--server", &target, "--bytes", "50000000"]);
    let sha = echo_ok(&out);
    let (bytes, server_sha) = server.received();
    assert_eq!(bytes, 50_000_000);
    assert_eq!(server_sha, sha);

    // SAFETY: kill(2) with plain integers; tcpdump flushes and closes the file on SIGTERM.
    unsafe {
        libc::kill(tcpdump.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while tcpdump.exited().is_none() {
        assert!(Instant::now() < deadline, "tcpdump did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let captured = std::fs::read(&pcap).expect("the capture");
    let _ = std::fs::remove_file(&pcap);
    let wire = wire_order(&peer_segments(&captured));
    eprintln!("peer's wire: {wire:?}");
    assert!(wire.segments > 30_000, "{wire:?}");
    assert!(wire.reordered > 50, "too little reordering: {wire:?}");
    assert!(wire.resent_after_loss > 50, "too little loss: {wire:?}");

    let stats = impair(&["stats", &ns.server_ns, &ns.server_if]);
    let dropped_in: u64 = stats
        .split_whitespace()
        .skip_while(|w| *w != "dropped_in")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("impair.sh stats: {stats}"));
    assert!(
        dropped_in > 100,
        "only {dropped_in} of our packets were dropped"
    );
}

/// One TCP data segment the peer sent, as captured: its IPv4 TOS, sequence number and length.
#[derive(Debug, Clone, Copy)]
struct Segment {
    tos: u8,
    seq: u32,
    len: u32,
}

/// The TCP data segments of a pcap file (microsecond or nanosecond, little-endian, Ethernet).
fn peer_segments(pcap: &[u8]) -> Vec<Segment> {
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let be16 = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]) as usize;
    assert!(pcap.len() >= 24, "a capture without a header");
    assert!(
        matches!(u32_at(pcap, 0), 0xa1b2_c3d4 | 0xa1b2_3c4d),
        "not a little-endian pcap file"
    );
    assert_eq!(u32_at(pcap, 20), 1, "not an Ethernet capture");
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let caplen = u32_at(pcap, at + 8) as usize;
        let frame = &pcap[at + 16..(at + 16 + caplen).min(pcap.len())];
        at += 16 + caplen;
        if frame.len() < 34 || be16(frame, 12) != 0x0800 || frame[23] != 6 {
            continue;
        }
        let ihl = usize::from(frame[14] & 0x0f) * 4;
        let tcp = 14 + ihl;
        if frame.len() < tcp + 13 {
            continue;
        }
        let doff = usize::from(frame[tcp + 12] >> 4) * 4;
        let payload = be16(frame, 16).saturating_sub(ihl + doff);
        if payload > 0 {
            out.push(Segment {
                tos: frame[15],
                seq: u32::from_be_bytes(frame[tcp + 4..tcp + 8].try_into().unwrap()),
                len: payload as u32,
            });
        }
    }
    out
}

/// What the order of segments on the wire shows.
#[derive(Debug, Default)]
struct WireOrder {
    segments: usize,
    /// Held back (marked) segments that first appeared after a segment with higher data.
    reordered: usize,
    /// Unmarked segments that first appeared after higher data and never appeared marked: the
    /// original was dropped and this is its retransmission.
    resent_after_loss: usize,
}

fn wire_order(segments: &[Segment]) -> WireOrder {
    let Some(first) = segments.first() else {
        return WireOrder::default();
    };
    // Signed offsets from the first captured sequence number (a 50 MB stream stays far below
    // 2^31): a segment sent before it (the first one was lost or held back) is negative, not 2^32.
    let rel = |s: &Segment| i64::from(s.seq.wrapping_sub(first.seq) as i32);
    let marked: std::collections::HashSet<i64> =
        segments.iter().filter(|s| s.tos != 0).map(rel).collect();
    let mut seen = std::collections::HashSet::new();
    let mut high = i64::MIN;
    let mut order = WireOrder {
        segments: segments.len(),
        ..WireOrder::default()
    };
    for s in segments {
        let start = rel(s);
        let end = start + i64::from(s.len);
        if !seen.insert(start) {
            continue;
        }
        if end <= high {
            if s.tos != 0 {
                order.reordered += 1;
            } else if !marked.contains(&start) {
                order.resent_after_loss += 1;
            }
        }
        high = high.max(end);
    }
    order
}

/// The stack's own impairment (`--impair LOSS,REORDER`, in the device): 50 MB byte-exact with 1 %
/// loss and reordering of the frames in both directions, including reordering of what we send,
/// which the peer-side impairment above cannot do.
#[test]
fn echo_50mb_impaired_inside_the_device() {
    let Some(ns) = setup() else { return };
    let server = echo_server(&ns);
    let target = format!("{}:{}", ns.server_ip, server.port);
    let args = [
        "echo",
        "--server",
        &target,
        "--bytes",
        "50000000",
        "--impair",
        "0.01,0.01",
    ];
    let out = run_client(&ns, &args);
    let sha = echo_ok(&out);
    let (bytes, server_sha) = server.received();
    assert_eq!(bytes, 50_000_000);
    assert_eq!(server_sha, sha);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let counter = |name: &str| -> u64 {
        stderr
            .split(name)
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name:?} counter"))
    };
    let drops = counter("impaired drops ");
    let reorders = counter(" reorders ");
    assert!(drops > 100, "the impairment dropped only {drops} frames");
    assert!(
        reorders > 100,
        "the impairment reordered only {reorders} frames"
    );
}

/// Test 7: 64 concurrent connections on one stack, each echoing, all byte-exact.
#[test]
fn sixty_four_connections_on_one_stack() {
    let Some(ns) = setup() else { return };
    let server = echo_server(&ns);
    let target = format!("{}:{}", ns.server_ip, server.port);
    let out = run_client(
        &ns,
        &[
            "echo",
            "--server",
            &target,
            "--bytes",
            "200000",
            "--connections",
            "64",
        ],
    );
    echo_ok(&out);
    let mut seen = 0;
    for _ in 0..64 {
        let (bytes, _) = server.received();
        assert_eq!(bytes, 200_000);
        seen += 1;
    }
    assert_eq!(seen, 64);
}

/// Starts `xdp_echo hold` and waits for "ready".
fn hold(ns: &Netns, seconds: u32) -> ChildGuard {
    hold_with(ns, seconds, stack_ip(ns), &[])
}

/// `hold` on address `ip`, with more options.
fn hold_with(ns: &Netns, seconds: u32, ip: Ipv4Addr, extra: &[&str]) -> ChildGuard {
    let ip = format!("{ip}/24");
    let mut cmd = in_netns(client_ns(ns), xdp_echo());
    cmd.args(["hold", "--seconds", &seconds.to_string()])
        .args(["--xdp", &ns.client_if, "--local-ip", &ip])
        .args(extra)
        .stdout(Stdio::piped());
    let mut guard = ChildGuard::spawn(&mut cmd);
    let out = guard.child().stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "ready", "xdp_echo hold did not come up");
    guard
}

fn ping(from_ns: &str, to: Ipv4Addr) -> bool {
    Command::new("ip")
        .args([
            "netns", "exec", from_ns, "ping", "-c", "2", "-i", "0.2", "-W", "2",
        ])
        .arg(to.to_string())
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Test 4: with the steering program attached, the kernel still answers ping and TCP on its own
/// address in the same namespace, and the stack answers ping on its address.
#[test]
fn kernel_keeps_its_own_address() {
    let Some(ns) = setup() else { return };
    // A kernel TCP listener on the client namespace's own address.
    let mut cmd = in_netns(client_ns(&ns), xdp_echo());
    cmd.args(["serve", "--server", &format!("{}:7100", ns.client_ip)])
        .stdout(Stdio::piped());
    let mut kernel_server = ChildGuard::spawn(&mut cmd);
    let out = kernel_server.child().stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("read");
    assert!(line.starts_with("listening"), "{line}");

    let _held = hold(&ns, 30);
    assert!(xdp_attached(&ns), "the steering program is not attached");
    assert!(
        ping(&ns.server_ns, ns.client_ip),
        "the kernel no longer answers ping"
    );
    assert!(
        ping(&ns.server_ns, stack_ip(&ns)),
        "the XDP stack does not answer ping"
    );
    // TCP to the kernel's address, from the server namespace, through the veth.
    let mut probe = in_netns(&ns.server_ns, xdp_echo());
    let out = probe
        .args(["echo", "--server", &format!("{}:7100", ns.client_ip)])
        .args(["--bytes", "100000", "--timeout", "20"])
        .output()
        .expect("run xdp_echo");
    assert!(
        out.status.success(),
        "kernel TCP through the steered interface failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Test 5: SIGKILL leaves no XDP program on the interface, and a new run binds again.
#[test]
fn sigkill_detaches_and_rebinds() {
    let Some(ns) = setup() else { return };
    let held = hold(&ns, 60);
    assert!(xdp_attached(&ns));
    drop(held); // SIGKILL to the process group
    let deadline = Instant::now() + Duration::from_secs(5);
    while xdp_attached(&ns) {
        assert!(
            Instant::now() < deadline,
            "an XDP program is still attached 5 s after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let server = echo_server(&ns);
    let target = format!("{}:{}", ns.server_ip, server.port);
    let out = run_client(&ns, &["echo", "--server", &target, "--bytes", "100000"]);
    echo_ok(&out);
}

/// Reserves huge pages for the life of the value and puts the previous count back on drop.
struct HugePages {
    previous: String,
}

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

impl HugePages {
    fn reserve(pages: u64) -> HugePages {
        let previous = std::fs::read_to_string(NR_HUGEPAGES).expect("read nr_hugepages");
        let now: u64 = previous.trim().parse().expect("a number");
        std::fs::write(NR_HUGEPAGES, (now + pages).to_string()).expect("reserve huge pages");
        HugePages { previous }
    }
}

impl Drop for HugePages {
    fn drop(&mut self) {
        let _ = std::fs::write(NR_HUGEPAGES, self.previous.trim());
    }
}

/// With huge pages reserved, the UMEM is mapped on them (every other test here runs on ordinary
/// pages, none being reserved), and data still moves byte-exact.
#[test]
fn umem_on_huge_pages_when_reserved() {
    let Some(ns) = setup() else { return };
    let _pages = HugePages::reserve(64);
    let server = echo_server(&ns);
    let target = format!("{}:{}", ns.server_ip, server.port);
    let out = run_client(&ns, &["echo", "--server", &target, "--bytes", "2000000"]);
    let sha = echo_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("B on huge pages"),
        "UMEM not on huge pages: {stderr}"
    );
    assert!(
        stderr.contains("socket buffers on huge pages")
            && stderr.contains("read buffers on huge pages"),
        "buffers not on huge pages: {stderr}"
    );
    let (bytes, server_sha) = server.received();
    assert_eq!(bytes, 2_000_000);
    assert_eq!(server_sha, sha);

    // The pool the protocol clients' read buffers come from, in this process: it really takes
    // huge pages, and a WebSocket-sized buffer lands in it, zeroed.
    let huge_free = || -> u64 {
        let info = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
        info.lines()
            .find_map(|l| l.strip_prefix("HugePages_Free:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("HugePages_Free")
    };
    let before = huge_free();
    let pool = hotwire::buf::BufPool::on_huge_pages(4, 128 << 10).expect("a pool on huge pages");
    let mut buf = hotwire::buf::HotBuf::in_pool(Some(&pool), 64 << 10);
    buf[100] = 1;
    assert!(buf.on_huge_pages(), "a read buffer is not on huge pages");
    assert!(
        huge_free() < before,
        "the pool took no huge page ({before} free before, {} after)",
        huge_free()
    );
    assert_eq!((pool.slot_size(), pool.free_slots()), (128 << 10, 3));
}

/// Jumbo frames: with MTU 3500 on both veth ends the stack takes the interface's MTU (no option
/// needed), its segments carry up to 3460 bytes, and the checksums the device fills and checks
/// (TCP checksum offload) hold on both sides: 20 MB echoed byte-exact in far fewer frames than
/// 1500-byte segments would need.
#[test]
fn jumbo_mtu_from_the_interface() {
    let Some(ns) = setup() else { return };
    ns.set_mtu(3500);
    let server = echo_server(&ns);
    let bytes = 20_000_000u64;
    let out = server.echo_through(&ns, bytes, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MTU 3500"), "stack MTU not 3500: {stderr}");
    let c = Counters::of(&out);
    // 1460-byte segments would take 13,700 frames each way; 3460-byte ones about 5,800.
    let (rx, tx) = (c.get("rx"), c.get("tx"));
    assert!(
        rx < bytes / 2500 && tx < bytes / 2500,
        "rx {rx} / tx {tx} frames for {bytes} bytes: segments are not jumbo"
    );
    assert_eq!(c.get("checksums"), 0, "frames failed the TCP checksum");
}

/// The device counters `xdp_echo` prints at exit ("xdp_echo: rx N tx N ... multi-frame rx N tx N
/// broken N").
struct Counters(String);

impl Counters {
    fn of(out: &Output) -> Counters {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .find(|l| l.starts_with("xdp_echo: rx "))
            .unwrap_or_else(|| panic!("no counters in {stderr}"));
        Counters(line.to_owned())
    }

    /// The first counter called `name`.
    fn get(&self, name: &str) -> u64 {
        Self::after(&self.0, name).unwrap_or_else(|| panic!("no {name} counter in {}", self.0))
    }

    /// A counter of the multi-frame group (`rx`, `tx`, `broken`).
    fn multi(&self, name: &str) -> u64 {
        self.0
            .split_once(" multi-frame")
            .and_then(|(_, rest)| Self::after(rest, name))
            .unwrap_or_else(|| panic!("no multi-frame {name} counter in {}", self.0))
    }

    fn after(text: &str, name: &str) -> Option<u64> {
        text.split(&format!(" {name} "))
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    fn line(&self) -> &str {
        &self.0
    }
}

/// AF_XDP multi-buffer: with MTU 9000 on both veth ends a packet spans three 4 KiB UMEM frames.
/// The steering program is loaded multi-buffer aware (native XDP on veth refuses an MTU above a
/// page otherwise), the socket binds with `XDP_USE_SG`, received packets are assembled from their
/// frames and sent ones split across frames, and 20 MB echo byte-exact with the checksums holding.
/// Both attach modes; and a stack MTU of one frame on the same link. Without multi-buffer at all
/// the link cannot take native XDP: a clear error.
#[test]
fn mtu_9000_spans_frames() {
    let Some(ns) = setup() else { return };
    ns.set_mtu(9000);
    let server = echo_server(&ns);
    let target = format!("{}:{}", ns.server_ip, server.port);
    let bytes = 20_000_000u64;
    for attach in ["native", "generic"] {
        let out = server.echo_through(&ns, bytes, &["--attach", attach]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("MTU 9000 (multi-buffer)"),
            "{attach}: not multi-buffer at MTU 9000: {stderr}"
        );
        let c = Counters::of(&out);
        let counters = c.line();
        // 8960-byte segments: about 2,200 packets each way for 20 MB, three frames each.
        let (rx_multi, tx_multi) = (c.multi("rx"), c.multi("tx"));
        assert!(
            rx_multi > bytes / 10_000 && tx_multi > bytes / 10_000,
            "{attach}: {rx_multi} packets received and {tx_multi} sent across frames: {counters}"
        );
        assert!(
            c.get("rx") >= 2 * rx_multi,
            "{attach}: a packet across frames takes two or more: {counters}"
        );
        assert_eq!(c.multi("broken"), 0, "{attach}: {counters}");
        assert_eq!(c.get("checksums"), 0, "{attach}: {counters}");
    }
    // A stack MTU of one frame on the same link: single-frame sockets, but the program is still
    // loaded multi-buffer aware, which native XDP needs on a link of MTU 9000.
    let out = server.echo_through(&ns, 2_000_000, &["--mtu", "1500"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Native attach") && stderr.contains("MTU 1500;"),
        "{stderr}"
    );
    let out = run_client(
        &ns,
        &[
            "echo",
            "--server",
            &target,
            "--bytes",
            "1000",
            "--no-multi-buffer",
        ],
    );
    assert!(
        !out.status.success(),
        "native XDP without multi-buffer at MTU 9000"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("multi-buffer mode, or a smaller MTU"),
        "{stderr}"
    );
}

/// Empties the kernel's neighbour table for `dev` in `netns`.
fn flush_neighbors(netns: &str, dev: &str) {
    let ok = Command::new("ip")
        .args(["-n", netns, "neigh", "flush", "dev", dev])
        .status()
        .expect("ip neigh flush");
    assert!(ok.success(), "ip neigh flush dev {dev} failed");
}

/// Shared-IP mode on veth: the stack takes the kernel's own address and a reserved port range. ARP
/// on that address stays with the kernel, so after the kernel forgets its neighbours the stack has
/// it resolve the server again and learns the MAC from its table; and while the steering program
/// is attached the kernel still resolves, answers ARP and ping, and runs its own TCP on the address.
#[test]
fn shared_ip_mode_leaves_the_kernel_its_address() {
    let Some(ns) = setup() else { return };
    let cns = client_ns(&ns).to_owned();
    let server = echo_server(&ns);
    let target = format!("{}:{}", ns.server_ip, server.port);
    let shared = ["--shared-ports", "40000-40999"];

    flush_neighbors(&cns, &ns.client_if);
    let ip = format!("{}/24", ns.client_ip);
    let mut cmd = in_netns(&cns, xdp_echo());
    cmd.args(["echo", "--server", &target, "--bytes", "5000000"])
        .args(["--xdp", &ns.client_if, "--local-ip", &ip])
        .args(shared)
        .env("RUST_LOG", "info");
    let out = cmd.output().expect("run xdp_echo");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("{stderr}");
    let sha = echo_ok(&out);
    let (bytes, server_sha) = server.received();
    assert_eq!(bytes, 5_000_000);
    assert_eq!(server_sha, sha);
    assert!(
        stderr.contains(&format!("next hop {} is at", ns.server_ip)),
        "the stack did not learn the server from the kernel's table: {stderr}"
    );
    let reserved = Command::new("ip")
        .args(["netns", "exec", &cns, "cat"])
        .arg("/proc/sys/net/ipv4/ip_local_reserved_ports")
        .output()
        .expect("read reserved ports");
    assert!(
        String::from_utf8_lossy(&reserved.stdout).contains("40000-40999"),
        "the port range is not reserved in the kernel"
    );

    let _held = hold_with(&ns, 30, ns.client_ip, &shared);
    assert!(xdp_attached(&ns), "the steering program is not attached");
    // Both kernels forget each other: each must ARP, and the replies must reach the kernel.
    flush_neighbors(&cns, &ns.client_if);
    flush_neighbors(&ns.server_ns, &ns.server_if);
    assert!(
        ping(&cns, ns.server_ip),
        "the kernel cannot reach the server from the shared address"
    );
    flush_neighbors(&cns, &ns.client_if);
    flush_neighbors(&ns.server_ns, &ns.server_if);
    assert!(
        ping(&ns.server_ns, ns.client_ip),
        "the kernel no longer answers on the shared address"
    );
    // Kernel TCP from the shared address (its ports lie outside the reserved range).
    let mut kernel = in_netns(&cns, xdp_echo());
    let out = kernel
        .args([
            "echo",
            "--server",
            &target,
            "--bytes",
            "100000",
            "--timeout",
            "20",
        ])
        .output()
        .expect("run xdp_echo");
    assert!(
        out.status.success(),
        "kernel TCP on the shared address failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
