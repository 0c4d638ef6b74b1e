//! Bad input end to end: `hotwire run` with one endpoint per kind of bad peer, all on one IO
//! thread next to a healthy WebSocket feed from the venue. The bad peers are small servers in this
//! file, each doing one wrong thing on every connection:
//!
//! - TLS cut without close_notify in the middle of a WebSocket frame, and of an HTTP body;
//! - an RST in the middle of a WebSocket frame;
//! - a WebSocket frame header announcing 2^63 bytes;
//! - a WebSocket handshake answered one byte at a time, never ending (slowloris);
//! - an HTTP response head that never ends;
//! - a FIX Logon reply with a wrong CheckSum, a wrong BodyLength, an embedded SOH.
//!
//! Each must give a typed error whose text the log line carries (`<endpoint>: <error>;
//! reconnecting in …`), the connection closed by hotwire where the peer left it open, and the
//! healthy feed on the same thread never disconnected, its heartbeat round trips still measured.
#![cfg(all(
    feature = "venue",
    feature = "ws",
    feature = "http",
    feature = "fix",
    feature = "tls-rustls"
))]

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use util::{read_until, ws_accept, ChildGuard, TestPki};

const HOTWIRE: &str = env!("CARGO_BIN_EXE_hotwire");

/// One wrong thing a peer can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evil {
    WsTlsTruncated,
    HttpTlsTruncated,
    WsRst,
    WsHugeLength,
    WsSlowloris,
    HttpEndlessHead,
    FixBadChecksum,
    FixBadBodyLength,
    FixEmbeddedSoh,
}

/// Each bad peer: its endpoint name, URL, what the endpoint's log line must say, and another line
/// the log must hold, when the error is reported before the endpoint's own line.
///
/// FIX ignores a garbled message (FIX 4.4 Volume 2, "Message Recovery": a wrong CheckSum or
/// BodyLength, a malformed field): the client logs it and carries on, so a garbled Logon reply
/// ends in the Logon timeout; a BodyLength that points inside the message is a framing error
/// that ends the connection at once.
const CASES: [(Evil, &str, &str, &str, Option<&str>); 9] = [
    (
        Evil::WsTlsTruncated,
        "ws-tls-cut",
        "wss://{}/feed",
        "peer closed connection without sending TLS close_notify",
        None,
    ),
    (
        Evil::HttpTlsTruncated,
        "http-tls-cut",
        "https://{}/api/time",
        "peer closed connection without sending TLS close_notify",
        None,
    ),
    (
        Evil::WsRst,
        "ws-rst",
        "ws://{}/feed",
        "Connection reset by peer",
        None,
    ),
    (
        Evil::WsHugeLength,
        "ws-huge",
        "ws://{}/feed",
        "64-bit payload length with the top bit set",
        None,
    ),
    (
        Evil::WsSlowloris,
        "ws-slowloris",
        "ws://{}/feed",
        "connect timed out",
        None,
    ),
    (
        Evil::HttpEndlessHead,
        "http-endless-head",
        "http://{}/api/time",
        "response head exceeds 65536 bytes",
        None,
    ),
    (
        Evil::FixBadChecksum,
        "fix-checksum",
        "fix://{}",
        "connect timed out",
        Some("ignoring a garbled FIX message: CheckSum"),
    ),
    (
        Evil::FixBadBodyLength,
        "fix-bodylength",
        "fix://{}",
        "BodyLength",
        None,
    ),
    (
        Evil::FixEmbeddedSoh,
        "fix-soh",
        "fix://{}",
        "connect timed out",
        Some("ignoring a garbled FIX message: malformed field"),
    ),
];

fn tls_config(pki: &TestPki) -> Arc<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.server_cert)
        .expect("cert")
        .map(|c| c.expect("cert"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(&pki.server_key).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    Arc::new(config)
}

/// What a bad peer saw: connections, and how many of them hotwire closed while the peer kept
/// them open.
#[derive(Debug, Default)]
struct Seen {
    connections: AtomicU64,
    closed_by_client: AtomicU64,
}

/// A FIX message with the given body fields, BodyLength and CheckSum computed (and then spoiled
/// as `evil` says).
fn fix_logon(evil: Evil) -> Vec<u8> {
    let text = if evil == Evil::FixEmbeddedSoh {
        "58=ab\x01cd\x01"
    } else {
        ""
    };
    let body = format!(
        "35=A\x0134=1\x0149=VENUE\x0156=HOTWIRE\x0152=20260101-00:00:00.000\x0198=0\x01108=1\x01{text}"
    );
    let len = if evil == Evil::FixBadBodyLength {
        body.len() - 5
    } else {
        body.len()
    };
    let mut msg = format!("8=FIX.4.4\x019={len}\x01{body}").into_bytes();
    let mut sum = msg.iter().map(|b| u32::from(*b)).sum::<u32>() % 256;
    if evil == Evil::FixBadChecksum {
        sum = (sum + 1) % 256;
    }
    msg.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    msg
}

/// Waits up to 10 s for the client to close a connection the peer keeps open.
fn wait_client_close(s: &mut impl Read, seen: &Seen) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => {
                seen.closed_by_client.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                seen.closed_by_client.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

fn misbehave(evil: Evil, tcp: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, seen: &Seen) {
    tcp.set_read_timeout(Some(Duration::from_millis(200))).ok();
    match evil {
        Evil::WsTlsTruncated | Evil::HttpTlsTruncated => {
            let conn = rustls::ServerConnection::new(tls.expect("tls")).expect("tls session");
            let mut s = rustls::StreamOwned::new(conn, tcp);
            s.sock.set_read_timeout(Some(Duration::from_secs(5))).ok();
            if evil == Evil::WsTlsTruncated {
                ws_accept(&mut s);
                // A 100-byte text frame, 10 bytes of it.
                let _ = s.write_all(&[0x81, 100, b'{', b'"', b's', b'e', b'q', b'"', b':', b'1']);
            } else {
                read_until(&mut s, b"\r\n\r\n");
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
            }
            let _ = s.flush();
            std::thread::sleep(Duration::from_millis(50));
            // FIN without close_notify.
            let _ = s.sock.shutdown(std::net::Shutdown::Both);
        }
        Evil::WsRst => {
            let mut s = tcp;
            ws_accept(&mut s);
            let _ = s.write_all(&[0x81, 100, b'{', b'"']);
            std::thread::sleep(Duration::from_millis(50));
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        }
        Evil::WsHugeLength => {
            let mut s = tcp;
            ws_accept(&mut s);
            let _ = s.write_all(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
            wait_client_close(&mut s, seen);
        }
        Evil::WsSlowloris => {
            let mut s = tcp;
            read_until(&mut s, b"\r\n\r\n");
            s.set_nonblocking(true).ok();
            let start = Instant::now();
            let answer = b"HTTP/1.1 101 Switching Protocols\r\nX-Slow: ";
            let mut i = 0;
            let mut buf = [0u8; 64];
            while start.elapsed() < Duration::from_secs(10) {
                let b = answer.get(i).copied().unwrap_or(b'z');
                if s.write_all(&[b]).is_err() {
                    break;
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
                if matches!(s.read(&mut buf), Ok(0)) {
                    seen.closed_by_client.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        Evil::HttpEndlessHead => {
            let mut s = tcp;
            read_until(&mut s, b"\r\n\r\n");
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
            let line = format!("X-Pad: {}\r\n", "a".repeat(1000));
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if s.write_all(line.as_bytes()).is_err() {
                    seen.closed_by_client.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Evil::FixBadChecksum | Evil::FixBadBodyLength | Evil::FixEmbeddedSoh => {
            let mut s = tcp;
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let logon = read_until(&mut s, b"\x01");
            // The rest of the client's Logon: up to its CheckSum field.
            let mut rest = read_until(&mut s, b"\x0110=");
            rest.extend(read_until(&mut s, b"\x01"));
            assert!(logon.starts_with(b"8=FIX"), "not a FIX Logon: {logon:?}");
            let _ = s.write_all(&fix_logon(evil));
            s.set_read_timeout(Some(Duration::from_millis(200))).ok();
            wait_client_close(&mut s, seen);
        }
    }
}

fn spawn_evil(evil: Evil, tls: Option<Arc<rustls::ServerConfig>>) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let seen = Arc::new(Seen::default());
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            seen2.connections.fetch_add(1, Ordering::Relaxed);
            let (tls, seen) = (tls.clone(), seen2.clone());
            std::thread::spawn(move || misbehave(evil, tcp, tls, &seen));
        }
    });
    (addr, seen)
}

fn venue() -> (ChildGuard, String) {
    let mut cmd = Command::new(HOTWIRE);
    cmd.args(["venue", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut guard = ChildGuard::spawn(&mut cmd);
    let out = guard.child().stdout.take().expect("stdout");
    let mut reader = BufReader::new(out);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read");
    let addr = line
        .strip_prefix("venue: ws://")
        .and_then(|l| l.split_once('/'))
        .map(|(a, _)| a.to_owned())
        .unwrap_or_else(|| panic!("venue did not start: {line}"));
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    (guard, addr)
}

fn config(dir: &Path, venue: &str, evil: &[(Evil, String)], ca: &Path) -> std::path::PathBuf {
    let mut text = format!(
        "[[thread]]\nname = \"io\"\nselector = \"mio\"\n\n\
         [[endpoint]]\nname = \"feed\"\nurl = \"ws://{venue}/feed?rate=200\"\n\
         heartbeat = \"100ms\"\nlatency = \"round-trip\"\n\n"
    );
    for ((kind, name, url, ..), (_, addr)) in CASES.iter().zip(evil) {
        let url = url.replace("{}", addr);
        text += &format!(
            "[[endpoint]]\nname = \"{name}\"\nurl = \"{url}\"\nconnect_timeout = \"1s\"\n\
             reconnect = {{ initial = \"200ms\", max = \"1s\" }}\n"
        );
        if url.starts_with("http") {
            text += "interval = \"100ms\"\nrequest_timeout = \"2s\"\n";
        }
        if url.starts_with("fix") {
            text += "heartbeat = \"1s\"\nfix = { sender = \"HOTWIRE\", target = \"VENUE\" }\n";
        }
        if matches!(kind, Evil::WsTlsTruncated | Evil::HttpTlsTruncated) {
            text += &format!(
                "[endpoint.tls]\nca = \"{}\"\nserver_name = \"localhost\"\n",
                ca.display()
            );
        }
        text += "\n";
    }
    let path = dir.join("bad-input.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn every_parser_refuses_bad_input_and_the_thread_carries_on() {
    let pki = TestPki::new();
    let tls = tls_config(&pki);
    let (mut evil, mut seen) = (Vec::new(), Vec::new());
    for (kind, ..) in CASES {
        let needs_tls = matches!(kind, Evil::WsTlsTruncated | Evil::HttpTlsTruncated);
        let (addr, s) = spawn_evil(kind, needs_tls.then(|| tls.clone()));
        evil.push((kind, addr));
        seen.push(s);
    }
    let (_venue, venue_addr) = venue();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), &venue_addr, &evil, &pki.ca_pem);
    let json = dir.path().join("report.json");
    let seconds = 8;
    let out = Command::new(HOTWIRE)
        .arg("run")
        .arg(&config)
        .args(["--duration", &seconds.to_string(), "--json"])
        .arg(&json)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hotwire run failed:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    let mut failures = Vec::new();
    for (i, (kind, name, _, phrase, detail)) in CASES.iter().enumerate() {
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!(" {name}: ")) && l.contains("reconnecting in"))
            .collect();
        println!(
            "{name}: {} connections, {} closed by hotwire; {}",
            seen[i].connections.load(Ordering::Relaxed),
            seen[i].closed_by_client.load(Ordering::Relaxed),
            lines.first().copied().unwrap_or("NO LOG LINE")
        );
        if let Some(detail) = detail {
            if !log.contains(detail) {
                failures.push(format!("{kind:?}: the log must say {detail:?}"));
            }
        }
        if lines.len() < 2 || !lines.iter().all(|l| l.contains(phrase)) {
            failures.push(format!(
                "{kind:?}: every failure of {name} must be logged with {phrase:?}"
            ));
        }
        assert!(
            seen[i].connections.load(Ordering::Relaxed) >= 2,
            "{name}: refused, then tried again"
        );
        if matches!(
            kind,
            Evil::WsHugeLength
                | Evil::WsSlowloris
                | Evil::HttpEndlessHead
                | Evil::FixBadChecksum
                | Evil::FixBadBodyLength
                | Evil::FixEmbeddedSoh
        ) {
            assert!(
                seen[i].closed_by_client.load(Ordering::Relaxed) >= 1,
                "{name}: hotwire must close the connection the peer keeps open"
            );
        }
    }
    assert!(failures.is_empty(), "{failures:#?}\n{log}");
    // The healthy feed on the same thread: one connection all along, its data and its pings.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("json");
    let feed = report["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["name"] == "feed")
        .expect("feed in the report");
    println!("feed: {feed}");
    assert_eq!(feed["reconnects"], 0, "{log}");
    assert_eq!(feed["connects"], 1, "{log}");
    let messages = feed["messages"].as_u64().expect("messages");
    assert!(
        messages >= 200 * (seconds - 2),
        "the feed slowed down: {messages} messages in {seconds} s"
    );
    let pings = feed["round_trip_ns"]["count"].as_u64().unwrap_or(0);
    assert!(
        pings >= 10 * (seconds - 2),
        "heartbeats (100 ms) stopped: {pings}"
    );
}
