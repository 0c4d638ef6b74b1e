//! hotwire's WebSocket client against the Python `websockets` echo server: plain, and TLS with a
//! test CA through both TLS backends; messages from 0 bytes to 16 MiB, fragmented and not, text
//! and binary; request headers as the server saw them; a wrong CA is refused.
#![cfg(all(
    feature = "app",
    feature = "ws",
    feature = "tls-rustls",
    feature = "tls-openssl"
))]

mod util;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hotwire::stream::{Stream, TcpOptions, TcpStream};
use hotwire::ws::{ClientRequest, IntoWebsocket, Message, Websocket, WsConfig, WsError, WsUrl};

const SERVER: &str = r#"
import asyncio, json, os, ssl, sys
from websockets.asyncio.server import serve

async def handler(ws):
    if ws.request.path.startswith("/headers"):
        h = ws.request.headers
        await ws.send(json.dumps({"path": ws.request.path, "host": h.get("Host"),
                                  "origin": h.get("Origin"), "x-test": h.get("X-Test"),
                                  "protocol": h.get("Sec-WebSocket-Protocol")}))
        await ws.close(1000, "done")
        return
    if ws.request.path.startswith("/binary"):
        await ws.send(b"\x00\x01\xfe\xff")
        await ws.close(1000)
        return
    async for message in ws:
        await ws.send(message)

async def main():
    port = int(sys.argv[1])
    ctx = None
    if len(sys.argv) > 3:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    host = os.environ.get("WS_HOST", "127.0.0.1")
    async with serve(handler, host, port, ssl=ctx, compression=None, max_size=None,
                     ping_interval=None):
        await asyncio.Future()

asyncio.run(main())
"#;

/// A running echo server (killed on drop).
struct Echo {
    _guard: util::ChildGuard,
    port: u16,
}

fn start(tls: Option<(&std::path::Path, &std::path::Path)>) -> Option<Echo> {
    start_on(std::net::Ipv4Addr::LOCALHOST.into(), tls)
}

fn start_on(
    host: std::net::IpAddr,
    tls: Option<(&std::path::Path, &std::path::Path)>,
) -> Option<Echo> {
    let python = util::venv_bin("python3");
    if !util::require_peer("python3 (venv)", &python) {
        return None;
    }
    let has_websockets = Command::new(&python)
        .args(["-c", "import websockets"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_websockets || !util::peers_required(),
        "python websockets missing in the venv and HOTWIRE_REQUIRE_PEERS=1"
    );
    if !has_websockets {
        eprintln!("note: skipping: python websockets not installed (scripts/peers.sh)");
        return None;
    }
    let port = util::free_port();
    let mut cmd = Command::new(python);
    cmd.args(["-c", SERVER, &port.to_string()]);
    cmd.env("WS_HOST", host.to_string());
    if let Some((cert, key)) = tls {
        cmd.arg(cert).arg(key);
    }
    let mut guard = util::ChildGuard::spawn(cmd.stdout(Stdio::null()));
    guard.wait_port((host, port).into(), Duration::from_secs(20));
    Some(Echo {
        _guard: guard,
        port,
    })
}

fn payload(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed) % 251) as u8).collect()
}

fn text(len: usize, seed: usize) -> String {
    // Multi-byte characters so fragments split them; length in bytes is exact.
    let unit = "aé€𝄞"; // 1 + 2 + 3 + 4 bytes
    let mut s = String::with_capacity(len);
    let mut i = seed;
    while s.len() < len {
        let c = unit.chars().nth(i % 4).unwrap();
        if s.len() + c.len_utf8() > len {
            s.push('x');
        } else {
            s.push(c);
        }
        i += 1;
    }
    s
}

/// Waits for the next data message and checks it equals `expected` (text or binary).
fn expect_echo<S: Stream>(ws: &mut Websocket<S>, expected: &[u8], is_text: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = match ws.receive_message() {
            Ok(Some(Message::Text(t))) => {
                assert!(is_text, "text echo for a binary message");
                assert!(
                    t.as_bytes() == expected,
                    "text echo differs ({} bytes)",
                    t.len()
                );
                true
            }
            Ok(Some(Message::Binary(b))) => {
                assert!(!is_text, "binary echo for a text message");
                assert!(b == expected, "binary echo differs ({} bytes)", b.len());
                true
            }
            Ok(Some(other)) => panic!("unexpected {other:?}"),
            Ok(None) => false,
            Err(e) => panic!("receive failed: {e}"),
        };
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no echo of {} bytes",
            expected.len()
        );
        let pause = if ws.queued() > 0 { 1 } else { 20 };
        ws.wait(Duration::from_millis(pause));
    }
}

const SIZES: &[usize] = &[
    0,
    1,
    125,
    126,
    127,
    65535,
    65536,
    100_000,
    1 << 20,
    16 << 20,
];

/// Echoes every size, text and binary, once per fragmentation setting, each on a new connection
/// made by `connect`; then closes cleanly.
fn echo_all<S: Stream>(connect: impl Fn() -> S, url: &WsUrl, fragments: &[Option<usize>]) {
    for &fragment_size in fragments {
        let config = WsConfig {
            fragment_size,
            ..WsConfig::default()
        };
        let mut ws = connect().into_websocket_with(url.clone(), config).unwrap();
        ws.wait_open(Duration::from_secs(10)).unwrap();
        for (i, &len) in SIZES.iter().enumerate() {
            let data = payload(len, i);
            ws.send_binary(&data).unwrap();
            expect_echo(&mut ws, &data, false);
            let t = text(len, i);
            ws.send_text(&t).unwrap();
            expect_echo(&mut ws, t.as_bytes(), true);
        }
        close(&mut ws);
    }
}

fn close<S: Stream>(ws: &mut Websocket<S>) {
    ws.close(1000, "bye").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match ws.receive() {
            Ok(_) => {}
            Err(WsError::Closed) => return,
            Err(e) => panic!("close failed: {e}"),
        }
        assert!(Instant::now() < deadline, "close handshake not completed");
        ws.wait(Duration::from_millis(10));
    }
}

fn tcp(port: u16) -> TcpStream {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    TcpStream::connect(addr, &TcpOptions::default()).unwrap()
}

#[test]
fn plain_echo_0_bytes_to_16_mib() {
    let Some(server) = start(None) else { return };
    let url = WsUrl::parse(&format!("ws://127.0.0.1:{}/echo", server.port)).unwrap();
    echo_all(|| tcp(server.port), &url, &[None, Some(4096)]);
}

#[test]
fn request_headers_reach_the_server() {
    let Some(server) = start(None) else { return };
    let url = WsUrl::parse(&format!("ws://127.0.0.1:{}/headers?x=1&y=2", server.port)).unwrap();
    let req = ClientRequest::new(url)
        .origin("https://hotwire.test")
        .header("X-Test", "value 1")
        .subprotocol("chat");
    let mut ws = tcp(server.port).into_websocket(req).unwrap();
    ws.wait_open(Duration::from_secs(10)).unwrap();
    // The server supports no subprotocol, so none is selected.
    assert_eq!(ws.subprotocol(), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen: serde_json::Value = loop {
        let got = match ws.receive_message().unwrap() {
            Some(Message::Text(t)) => Some(serde_json::from_str(t).unwrap()),
            _ => None,
        };
        if let Some(v) = got {
            break v;
        }
        assert!(Instant::now() < deadline);
        ws.wait(Duration::from_millis(10));
    };
    assert_eq!(seen["path"], "/headers?x=1&y=2");
    assert_eq!(seen["host"], format!("127.0.0.1:{}", server.port));
    assert_eq!(seen["origin"], "https://hotwire.test");
    assert_eq!(seen["x-test"], "value 1");
    assert_eq!(seen["protocol"], "chat");
    // The server closes with 1000 "done": echoed, then a clean end.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut close_seen = false;
    loop {
        match ws.receive_message() {
            Ok(Some(Message::Close(c))) => {
                assert_eq!((c.code, c.reason), (Some(1000), "done"));
                close_seen = true;
            }
            Ok(_) => ws.wait(Duration::from_millis(10)),
            Err(WsError::Closed) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(Instant::now() < deadline);
    }
    assert!(close_seen);
}

#[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
mod tls {
    use super::*;
    use hotwire::stream::tls::{TlsBackend, TlsConfig};

    fn wss_echo(backend: TlsBackend) {
        let pki = util::TestPki::new();
        let Some(server) = start(Some((&pki.server_cert, &pki.server_key))) else {
            return;
        };
        let connector = TlsConfig {
            backend,
            ..TlsConfig::with_ca_file(&pki.ca_pem)
        }
        .build()
        .unwrap();
        let url = WsUrl::parse(&format!("wss://localhost:{}/echo", server.port)).unwrap();
        let connect = || connector.connect(url.host(), tcp(server.port)).unwrap();
        echo_all(connect, &url, &[None, Some(65536)]);
    }

    #[cfg(feature = "tls-rustls")]
    #[test]
    fn wss_echo_rustls() {
        wss_echo(TlsBackend::Rustls);
    }

    #[cfg(feature = "tls-openssl")]
    #[test]
    fn wss_echo_openssl() {
        wss_echo(TlsBackend::Openssl);
    }

    #[test]
    fn wss_with_an_unknown_ca_fails_the_handshake() {
        let pki = util::TestPki::new();
        let Some(server) = start(Some((&pki.unknown_ca_cert, &pki.unknown_ca_key))) else {
            return;
        };
        let connector = TlsConfig::with_ca_file(&pki.ca_pem).build().unwrap();
        let url = WsUrl::parse(&format!("wss://localhost:{}/echo", server.port)).unwrap();
        let stream = connector.connect(url.host(), tcp(server.port)).unwrap();
        let mut ws = stream.into_websocket(url).unwrap();
        match ws.wait_open(Duration::from_secs(10)) {
            Err(WsError::Io(e)) => assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
            other => panic!("expected a TLS failure, got {other:?}"),
        }
        assert!(matches!(ws.send_text("x"), Err(WsError::Io(_))));
    }
}

/// `hotwire ws` as the binary runs it (its arguments parsed by clap), printing into a buffer.
fn probe(args: &[&str]) -> (Result<(), String>, String) {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        ws: hotwire::app::ws_probe::WsArgs,
    }
    let cli = Cli::try_parse_from(std::iter::once("ws").chain(args.iter().copied())).unwrap();
    let mut out = Vec::new();
    let r = hotwire::app::ws_probe::probe(&cli.ws, &mut out);
    (r, String::from_utf8(out).unwrap())
}

#[test]
fn probe_sends_and_prints_until_count_or_close() {
    let Some(server) = start(None) else { return };
    let base = format!("ws://127.0.0.1:{}", server.port);
    let echo = format!("{base}/echo");
    let (r, out) = probe(&[&echo, "--send", "hello", "--send", "wörld", "--count", "2"]);
    assert_eq!(r, Ok(()));
    assert_eq!(out, "hello\nwörld\n");
    // Binary as hex; the server's clean close ends the probe successfully.
    let (r, out) = probe(&[&format!("{base}/binary")]);
    assert_eq!(r, Ok(()));
    assert_eq!(out, "0001feff\n");
    // Headers and subprotocols reach the server.
    let (r, out) = probe(&[
        &format!("{base}/headers"),
        "--header",
        "X-Test: from probe",
        "--subprotocol",
        "chat",
        "--count",
        "1",
    ]);
    assert_eq!(r, Ok(()));
    let seen: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(seen["x-test"], "from probe");
    assert_eq!(seen["protocol"], "chat");
}

#[test]
fn probe_failures_are_one_line_errors() {
    let port = util::free_port();
    let (r, out) = probe(&[&format!("ws://127.0.0.1:{port}/"), "--connect-timeout", "2"]);
    let e = r.unwrap_err();
    assert!(e.contains("refused") && !e.contains('\n'), "{e}");
    assert!(out.is_empty());
    let (r, _) = probe(&["http://127.0.0.1/"]);
    assert!(r.unwrap_err().contains("ws://"));
    let (r, _) = probe(&["ws://127.0.0.1:1/", "--header", "no colon"]);
    assert!(r.unwrap_err().contains("header"));
}

#[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
#[test]
fn probe_over_wss_with_a_test_ca_through_both_backends() {
    let pki = util::TestPki::new();
    let Some(server) = start(Some((&pki.server_cert, &pki.server_key))) else {
        return;
    };
    let url = format!("wss://localhost:{}/echo", server.port);
    let ca = pki.ca_pem.to_str().unwrap();
    let mut backends = Vec::new();
    if cfg!(feature = "tls-rustls") {
        backends.push("rustls");
    }
    if cfg!(feature = "tls-openssl") {
        backends.push("openssl");
    }
    for backend in backends {
        let (r, out) = probe(&[
            &url,
            "--ca",
            ca,
            "--tls-backend",
            backend,
            "--send",
            backend,
            "--count",
            "1",
        ]);
        assert_eq!(r, Ok(()), "{backend}");
        assert_eq!(out, format!("{backend}\n"));
    }
    // Without the CA the certificate is refused.
    let (r, _) = probe(&[&url, "--send", "x", "--count", "1"]);
    assert!(r.unwrap_err().to_lowercase().contains("certificate"));
}

#[test]
fn ipv6_literal_url_over_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("note: skipping: no IPv6 loopback on this machine");
        return;
    }
    let Some(server) = start_on(std::net::Ipv6Addr::LOCALHOST.into(), None) else {
        return;
    };
    let url = WsUrl::parse(&format!("ws://[::1]:{}/headers", server.port)).unwrap();
    let addr: SocketAddr = (std::net::Ipv6Addr::LOCALHOST, server.port).into();
    let tcp = TcpStream::connect(addr, &TcpOptions::default()).unwrap();
    let mut ws = tcp.into_websocket(url).unwrap();
    ws.wait_open(Duration::from_secs(10)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let host = loop {
        let got = match ws.receive_message().unwrap() {
            Some(Message::Text(t)) => {
                let v: serde_json::Value = serde_json::from_str(t).unwrap();
                Some(v["host"].as_str().unwrap().to_string())
            }
            _ => None,
        };
        if let Some(h) = got {
            break h;
        }
        assert!(Instant::now() < deadline);
        ws.wait(Duration::from_millis(10));
    };
    assert_eq!(host, format!("[::1]:{}", server.port));
}
