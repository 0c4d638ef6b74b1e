//! One AF_XDP socket per pinned IO thread (root, veth namespaces): a two-queue veth pair, the venue
//! in the server namespace, and `hotwire run` with two threads pinned to the two cores, each with
//! its own queue, address, UMEM and smoltcp stack under one steering program. Each thread runs TLS
//! WebSocket sessions to the venue at the same time; flows reach their thread's queue through
//! `scripts/netns.sh steer` (the veth analogue of an `ethtool -N` rule).
//!
//! Checked: every session gets exactly what the venue sent (TLS authenticates every byte, so a
//! session that completes with the right message and byte counts received the venue's bytes
//! exactly), each thread's packets arrived on its own queue only (the device's count of packets
//! for another address, and the veth's own per-queue redirect counters), and a thread whose socket
//! cannot open falls back to kernel TCP alone while the other stays on AF_XDP.
#![cfg(all(
    feature = "xdp",
    feature = "ws",
    feature = "tls-rustls",
    feature = "venue"
))]

mod util;

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use util::{in_netns, ChildGuard, Netns};

const HOTWIRE: &str = env!("CARGO_BIN_EXE_hotwire");
const COUNT: u64 = 3000;
const SIZE: u64 = 200;

fn client_ns(ns: &Netns) -> &str {
    ns.client_ns.as_deref().expect("pair mode")
}

/// The address of AF_XDP thread `n` (0, 1): .3 and .4 of the set's subnet.
fn stack_ip(ns: &Netns, n: u8) -> Ipv4Addr {
    let o = ns.client_ip.octets();
    Ipv4Addr::new(o[0], o[1], o[2], 3 + n)
}

/// The venue with TLS in the server namespace; its CA lands in `dir`.
fn venue(ns: &Netns, dir: &Path) -> ChildGuard {
    let mut cmd = in_netns(&ns.server_ns, HOTWIRE);
    cmd.args(["venue", "--listen", &format!("{}:9001", ns.server_ip)])
        .args(["--tls", "--tls-listen", &format!("{}:9443", ns.server_ip)])
        .arg("--cert-dir")
        .arg(dir)
        .stdout(Stdio::piped());
    let mut guard = ChildGuard::spawn(&mut cmd);
    let out = guard.child().stdout.take().expect("stdout");
    let mut reader = BufReader::new(out);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read");
    assert!(line.starts_with("venue:"), "venue did not start: {line}");
    // The rest of the banner (and the stop line) still needs a reader.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    guard
}

/// Two threads on cores 0 and 1 with queues `queues`, two TLS feeds each.
fn config(dir: &Path, ns: &Netns, queues: [u32; 2]) -> std::path::PathBuf {
    let mut text = format!(
        "[network]\npath = \"xdp\"\ninterface = \"{}\"\nlocal_ip = \"{}/24\"\n\n",
        ns.client_if,
        stack_ip(ns, 0)
    );
    for (n, queue) in queues.into_iter().enumerate() {
        text.push_str(&format!(
            "[[thread]]\nname = \"t{n}\"\ncore = {n}\nselector = \"direct\"\nqueue = {queue}\n"
        ));
        if n == 1 {
            text.push_str(&format!("local_ip = \"{}/24\"\n", stack_ip(ns, 1)));
        }
        text.push('\n');
    }
    for n in 0..2 {
        for k in 0..2 {
            text.push_str(&format!(
                "[[endpoint]]\nname = \"t{n}-feed{k}\"\nthread = \"t{n}\"\n\
                 url = \"wss://{}:9443/feed?rate=2000&size={SIZE}&count={COUNT}\"\n\
                 tls = {{ ca = \"{}\", server_name = \"localhost\" }}\n\
                 reconnect = {{ enabled = false }}\n\n",
                ns.server_ip,
                dir.join("ca.pem").display()
            ));
        }
    }
    let path = dir.join(format!("queues-{}-{}.toml", queues[0], queues[1]));
    std::fs::write(&path, text).expect("write config");
    path
}

fn run(ns: &Netns, config: &Path, json: &Path) -> Output {
    let out = in_netns(client_ns(ns), HOTWIRE)
        .arg("run")
        .arg(config)
        .args(["--duration", "4", "--json"])
        .arg(json)
        .env("RUST_LOG", "info")
        .output()
        .expect("run hotwire");
    eprintln!(
        "hotwire run: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `rx_queue_N_xdp_redirect` of the client end, per queue.
fn redirects(ns: &Netns) -> [u64; 2] {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            client_ns(ns),
            "ethtool",
            "-S",
            &ns.client_if,
        ])
        .output()
        .expect("ethtool -S");
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |q: usize| {
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("rx_queue_{q}_xdp_redirect:"))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("no redirect counter for queue {q}: {text}"))
    };
    [get(0), get(1)]
}

/// From the log line `thread "tN": AF_XDP queue Q: rx R frames, F for another address ...`:
/// (Q, R, F).
fn thread_counters(stderr: &str, thread: &str) -> Option<(u32, u64, u64)> {
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("thread \"{thread}\": AF_XDP queue")))?;
    let num = |after: &str| -> u64 {
        line.split(after)
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number after {after:?} in {line}"))
    };
    Some((num("AF_XDP queue ") as u32, num(": rx "), num("frames, ")))
}

fn assert_exact(json: &Path) {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("report")).expect("JSON");
    for e in report["endpoints"].as_array().expect("endpoints") {
        assert_eq!(e["messages"], COUNT, "{e}");
        assert_eq!(e["bytes"], COUNT * SIZE, "{e}");
        assert_eq!(e["connects"], 1, "{e}");
    }
}

#[test]
fn each_pinned_thread_has_its_own_queue() {
    if !util::require_root("the AF_XDP tests") {
        return;
    }
    let ns = Netns::up_pair_with_queues(2);
    // Several stacks on one interface leave ARP to the kernel, which answers for their addresses.
    for n in 0..2 {
        let ok = Command::new("ip")
            .args(["-n", client_ns(&ns), "addr", "add"])
            .arg(format!("{}/32", stack_ip(&ns, n)))
            .args(["dev", &ns.client_if])
            .status()
            .expect("ip addr add");
        assert!(ok.success());
    }
    ns.steer(&[(0, stack_ip(&ns, 0)), (1, stack_ip(&ns, 1))]);
    let dir = tempfile::tempdir().expect("tempdir");
    let _venue = venue(&ns, dir.path());

    // `check` shows each thread's queue and steering, with nothing missing.
    let cfg = config(dir.path(), &ns, [0, 1]);
    let out = in_netns(client_ns(&ns), HOTWIRE)
        .arg("check")
        .arg(&cfg)
        .output()
        .expect("check");
    let text = String::from_utf8_lossy(&out.stdout);
    for n in 0..2u8 {
        let want = format!(
            "thread \"t{n}\": AF_XDP queue {n} on {}, steering IPv4 to {}",
            ns.client_if,
            stack_ip(&ns, n)
        );
        let line = text
            .lines()
            .find(|l| l.contains(&want))
            .unwrap_or_else(|| panic!("{want:?} missing from {text}"));
        assert!(!line.contains("missing"), "{line}");
    }

    // nic/tune.sh plans one flow rule per thread from the same configuration (it then refuses to
    // apply on a 2-core machine whose cores are both the threads', which is right).
    let out = in_netns(client_ns(&ns), util::repo_root().join("nic/tune.sh"))
        .arg("plan")
        .arg(&cfg)
        .env("HOTWIRE", HOTWIRE)
        .output()
        .expect("nic/tune.sh plan");
    let plan = String::from_utf8_lossy(&out.stdout);
    for n in 0..2u8 {
        let rule = format!(
            "would run: ethtool -N {} flow-type tcp4 dst-ip {} action {n}",
            ns.client_if,
            stack_ip(&ns, n)
        );
        assert!(plan.contains(&rule), "{rule:?} missing from {plan}");
    }

    // Both threads on AF_XDP at once, each on its own queue.
    let before = redirects(&ns);
    let json = dir.path().join("both.json");
    let out = run(&ns, &cfg, &json);
    assert!(out.status.success());
    let after = redirects(&ns);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("steering program on") && stderr.contains("for 2 AF_XDP thread(s)"),
        "{stderr}"
    );
    for n in 0..2 {
        assert!(
            stderr.contains(&format!(
                "thread \"t{n}\": runs on cpu {n} (affinity read back)"
            )),
            "{stderr}"
        );
        let (queue, rx, foreign) = thread_counters(&stderr, &format!("t{n}"))
            .unwrap_or_else(|| panic!("thread t{n} did not take the AF_XDP path: {stderr}"));
        assert_eq!(queue, n as u32);
        assert_eq!(
            foreign, 0,
            "thread t{n} received packets for another address"
        );
        // Everything the veth redirected on queue n went to thread n's socket, and it was a
        // real share of the traffic (two TLS feeds).
        let redirected = after[n] - before[n];
        assert_eq!(
            rx, redirected,
            "queue {n}: the socket saw {rx}, the veth redirected {redirected}"
        );
        assert!(rx > 1000, "thread t{n}: only {rx} frames");
    }
    assert_exact(&json);

    // A thread whose socket cannot open (its queue does not exist) falls back alone.
    let cfg = config(dir.path(), &ns, [0, 5]);
    let json = dir.path().join("fallback.json");
    let out = run(&ns, &cfg, &json);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fell: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("is unavailable") && l.contains("using kernel TCP"))
        .collect();
    assert_eq!(fell.len(), 1, "{stderr}");
    assert!(fell[0].contains("queue 5"), "{}", fell[0]);
    assert!(
        stderr.contains("thread \"t0\": network path xdp"),
        "{stderr}"
    );
    assert!(
        stderr.contains("thread \"t1\": network path kernel"),
        "{stderr}"
    );
    let (_, rx, foreign) = thread_counters(&stderr, "t0").expect("t0 on AF_XDP");
    assert!(rx > 1000 && foreign == 0, "t0: rx {rx}, foreign {foreign}");
    assert_exact(&json);
}
