//! permessage-deflate (RFC 7692) against the Python `websockets` server with compression on: both
//! context-takeover modes and every window size 9..=15, byte-exact text and binary up to 16 MiB,
//! batches of compressed messages, fragmented compressed messages, a decompression bomb (a
//! ~10 KiB message inflating to 10 MiB against a 1 MiB limit: typed error and close 1009, seen by
//! the server), and wrong answers to the offer (typed handshake errors).
#![cfg(feature = "ws")]

mod util;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hotwire::stream::{Stream, TcpOptions, TcpStream};
use hotwire::ws::{
    CapacityError, DeflateConfig, DeflateError, HandshakeError, IntoWebsocket, Message, OpCode,
    Websocket, WsConfig, WsError, WsUrl,
};

/// An echo server whose permessage-deflate factory mirrors the client's offer (windows and
/// takeover as asked), plus `/burst` (many compressed messages at once), `/frag` (a fragmented
/// compressed text message), `/bomb` and `/last_close` (the close code the bomb's client sent).
const SERVER: &str = r#"
import asyncio, sys
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

last_close = {"code": None}

def msg(i):
    return ('{"seq":%d,"px":"%d.%02d","book":[%s]}' % (i, 100 + i % 7, i % 100,
            ",".join(str((i * 7 + k) % 1000) for k in range(i % 300))))

async def handler(ws):
    path = ws.request.path
    if path.startswith("/burst"):
        for i in range(2000):
            await ws.send(msg(i) if i % 2 else msg(i).encode())
        await ws.send("end")
        async for _ in ws:
            pass
        return
    if path.startswith("/frag"):
        await ws.send(iter(["aé€𝄞" * 1000, "x€" * 5000, "𝄞end"]))
        async for _ in ws:
            pass
        return
    if path.startswith("/bomb"):
        await ws.send(bytes(10 << 20))
        await ws.wait_closed()
        last_close["code"] = ws.close_code
        return
    if path.startswith("/last_close"):
        await ws.send(str(last_close["code"]))
        await ws.close()
        return
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), compression=None,
                     extensions=[ServerPerMessageDeflateFactory()], max_size=None,
                     ping_interval=None):
        await asyncio.Future()

asyncio.run(main())
"#;

struct Server {
    _guard: util::ChildGuard,
    port: u16,
}

fn start() -> Option<Server> {
    let python = util::venv_bin("python3");
    if !util::require_peer("python3 (venv)", &python) {
        return None;
    }
    let port = util::free_port();
    let mut guard = util::ChildGuard::spawn(
        Command::new(python)
            .args(["-c", SERVER, &port.to_string()])
            .stdout(Stdio::null()),
    );
    guard.wait_port(([127, 0, 0, 1], port).into(), Duration::from_secs(20));
    Some(Server {
        _guard: guard,
        port,
    })
}

fn connect(port: u16, path: &str, config: WsConfig) -> Websocket<TcpStream> {
    let url = WsUrl::parse(&format!("ws://127.0.0.1:{port}{path}")).unwrap();
    let tcp = TcpStream::connect(([127, 0, 0, 1], port).into(), &TcpOptions::default()).unwrap();
    let mut ws = tcp.into_websocket_with(url, config).unwrap();
    ws.wait_open(Duration::from_secs(10)).unwrap();
    ws
}

fn deflate(cnct: bool, snct: bool, bits: Option<u8>) -> WsConfig {
    WsConfig {
        deflate: Some(DeflateConfig {
            client_no_context_takeover: cnct,
            server_no_context_takeover: snct,
            client_max_window_bits: bits,
            server_max_window_bits: bits,
        }),
        ..WsConfig::default()
    }
}

fn payload(len: usize, seed: usize) -> Vec<u8> {
    // Compressible but not trivially: a period of 251 with a slow drift.
    (0..len)
        .map(|i| ((i * 31 + seed + i / 4096) % 251) as u8)
        .collect()
}

fn text(len: usize, seed: usize) -> String {
    let unit = ["a", "é", "€", "𝄞", "{\"px\":", "1", "}"];
    let mut s = String::with_capacity(len);
    let mut i = seed;
    while s.len() < len {
        let c = unit[i % unit.len()];
        if s.len() + c.len() > len {
            s.push('x');
        } else {
            s.push_str(c);
        }
        i = i.wrapping_mul(7).wrapping_add(3) % 1_000_003;
    }
    s
}

fn expect_echo<S: Stream>(ws: &mut Websocket<S>, expected: &[u8], is_text: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match ws.receive_message() {
            Ok(Some(Message::Text(t))) => {
                assert!(is_text, "text echo for a binary message");
                assert!(
                    t.as_bytes() == expected,
                    "text echo differs ({} bytes)",
                    t.len()
                );
                return;
            }
            Ok(Some(Message::Binary(b))) => {
                assert!(!is_text, "binary echo for a text message");
                assert!(b == expected, "binary echo differs ({} bytes)", b.len());
                return;
            }
            Ok(Some(other)) => panic!("unexpected {other:?}"),
            Ok(None) => {}
            Err(e) => panic!("receive failed: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "no echo of {} bytes",
            expected.len()
        );
        ws.wait(Duration::from_millis(if ws.queued() > 0 { 1 } else { 20 }));
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
        ws.wait(Duration::from_millis(20));
    }
}

#[test]
fn echoes_byte_exact_in_both_takeover_modes_and_every_window() {
    let Some(server) = start() else { return };
    let started = Instant::now();
    for bits in 9..=15u8 {
        for takeover in [true, false] {
            let mut config = deflate(!takeover, !takeover, Some(bits));
            if bits == 12 {
                config.fragment_size = Some(1000);
            }
            let mut ws = connect(server.port, "/echo", config);
            let p = *ws.deflate().expect("compression not negotiated");
            assert_eq!(
                (
                    p.client_max_window_bits,
                    p.server_max_window_bits,
                    p.client_no_context_takeover,
                    p.server_no_context_takeover
                ),
                (bits, bits, !takeover, !takeover)
            );
            let mut sizes = vec![0usize, 1, 125, 126, 4096, 65536, 300_000];
            if bits == 15 || bits == 9 {
                sizes.push(16 << 20);
            }
            for (i, &len) in sizes.iter().enumerate() {
                let data = payload(len, i + bits as usize);
                ws.send_binary(&data).unwrap();
                expect_echo(&mut ws, &data, false);
                let t = text(len, i);
                ws.send_text(&t).unwrap();
                expect_echo(&mut ws, t.as_bytes(), true);
            }
            close(&mut ws);
        }
    }
    println!("deflate matrix: {:?}", started.elapsed());
}

#[test]
fn without_an_offer_nothing_is_compressed() {
    let Some(server) = start() else { return };
    let mut ws = connect(server.port, "/echo", WsConfig::default());
    assert!(ws.deflate().is_none());
    ws.send_text("plain").unwrap();
    expect_echo(&mut ws, b"plain", true);
    close(&mut ws);
}

/// The messages the server's `/burst` sends.
fn burst_msg(i: usize) -> String {
    let book: Vec<String> = (0..i % 300)
        .map(|k| ((i * 7 + k) % 1000).to_string())
        .collect();
    format!(
        "{{\"seq\":{i},\"px\":\"{}.{:02}\",\"book\":[{}]}}",
        100 + i % 7,
        i % 100,
        book.join(",")
    )
}

#[test]
fn batches_of_compressed_messages_are_byte_exact() {
    let Some(server) = start() else { return };
    for cfg in [deflate(false, false, None), deflate(true, true, Some(10))] {
        // A small receive buffer and a small inflate buffer: batches end in the spill buffer.
        let config = WsConfig {
            read_buffer_size: 4096,
            ..cfg
        };
        let mut ws = connect(server.port, "/burst", config);
        let mut next = 0usize;
        let deadline = Instant::now() + Duration::from_secs(30);
        'outer: loop {
            for frame in ws.read_batch().unwrap() {
                assert!(frame.is_final());
                if frame.text() == Some("end") {
                    break 'outer;
                }
                let want = burst_msg(next);
                match frame.opcode() {
                    OpCode::Text => assert_eq!(frame.text(), Some(want.as_str()), "message {next}"),
                    OpCode::Binary => {
                        assert_eq!(frame.payload(), want.as_bytes(), "message {next}")
                    }
                    op => panic!("unexpected {op:?}"),
                }
                next += 1;
            }
            assert!(Instant::now() < deadline, "burst stalled at {next}");
            ws.wait(Duration::from_millis(20));
        }
        assert_eq!(next, 2000);
        close(&mut ws);
    }
}

#[test]
fn fragmented_compressed_messages_in_message_and_frame_mode() {
    let Some(server) = start() else { return };
    let want = format!("{}{}𝄞end", "aé€𝄞".repeat(1000), "x€".repeat(5000));
    let mut ws = connect(server.port, "/frag", deflate(false, false, None));
    expect_echo(&mut ws, want.as_bytes(), true);
    close(&mut ws);
    let mut ws = connect(server.port, "/frag", deflate(false, false, None));
    let mut got = Vec::new();
    let mut frames = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(f) = ws.receive().unwrap() {
            frames += 1;
            assert_eq!(f.opcode() == OpCode::Text, frames == 1);
            got.extend_from_slice(f.payload());
            if f.is_final() {
                break;
            }
        } else {
            assert!(Instant::now() < deadline, "fragments stalled");
            ws.wait(Duration::from_millis(20));
        }
    }
    assert_eq!(got, want.as_bytes());
    // websockets ends a fragmented message with an empty final frame.
    assert!(frames >= 3, "{frames} frames");
    close(&mut ws);
}

#[test]
fn a_bomb_is_a_typed_error_and_a_close_1009() {
    let Some(server) = start() else { return };
    let config = WsConfig {
        max_message_size: 1 << 20,
        ..deflate(false, false, None)
    };
    let mut ws = connect(server.port, "/bomb", config);
    let deadline = Instant::now() + Duration::from_secs(20);
    let err = loop {
        match ws.receive_message() {
            Ok(Some(m)) => panic!("unexpected {m:?}"),
            Ok(None) => {}
            Err(e) => break e,
        }
        assert!(Instant::now() < deadline, "no error");
        ws.wait(Duration::from_millis(20));
    };
    assert!(
        matches!(err, WsError::Capacity(CapacityError::Message { max, .. }) if max == 1 << 20),
        "{err:?}"
    );
    drop(ws);
    // The server saw our close code.
    let mut ws = connect(server.port, "/last_close", WsConfig::default());
    expect_echo(&mut ws, b"1009", true);
}

/// A server that answers the offer with `extensions` (raw header value) and then stays silent.
fn answer_with(extensions: &'static str) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let head = util::read_until(&mut s, b"\r\n\r\n");
        let text = String::from_utf8_lossy(&head).to_string();
        assert!(
            text.contains("Sec-WebSocket-Extensions: permessage-deflate"),
            "{text}"
        );
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .trim()
            .to_owned();
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let _ = write!(
            s,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: {extensions}\r\n\r\n"
        );
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    (port, t)
}

#[test]
fn wrong_answers_fail_the_handshake_with_typed_errors() {
    let offer = DeflateConfig {
        server_max_window_bits: Some(10),
        client_max_window_bits: Some(12),
        ..DeflateConfig::default()
    };
    let cases: [(&str, HandshakeError); 6] = [
        ("x-webkit-deflate-frame", HandshakeError::Extension),
        (
            "permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=10",
            DeflateError::Duplicate.into(),
        ),
        (
            "permessage-deflate; server_max_window_bits=10; mystery",
            DeflateError::UnknownParameter.into(),
        ),
        (
            "permessage-deflate; server_max_window_bits=12",
            DeflateError::ServerWindowTooLarge {
                offered: 10,
                answered: 12,
            }
            .into(),
        ),
        (
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=13",
            DeflateError::ClientWindowTooLarge {
                offered: 12,
                answered: 13,
            }
            .into(),
        ),
        (
            "permessage-deflate; server_max_window_bits=ten",
            DeflateError::InvalidValue.into(),
        ),
    ];
    for (answer, want) in cases {
        let (port, server) = answer_with(answer);
        let url = WsUrl::parse(&format!("ws://127.0.0.1:{port}/")).unwrap();
        let tcp =
            TcpStream::connect(([127, 0, 0, 1], port).into(), &TcpOptions::default()).unwrap();
        let config = WsConfig {
            deflate: Some(offer),
            ..WsConfig::default()
        };
        let mut ws = tcp.into_websocket_with(url, config).unwrap();
        match ws.wait_open(Duration::from_secs(10)) {
            Err(WsError::Handshake(e)) => assert_eq!(e, want, "{answer}"),
            other => panic!("{answer}: {other:?}"),
        }
        drop(ws);
        server.join().unwrap();
    }
}

#[test]
fn window_bits_8_is_refused_in_the_config() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let url = WsUrl::parse(&format!("ws://{addr}/")).unwrap();
    let tcp = TcpStream::connect(addr, &TcpOptions::default()).unwrap();
    let config = WsConfig {
        deflate: Some(DeflateConfig {
            client_max_window_bits: Some(8),
            ..DeflateConfig::default()
        }),
        ..WsConfig::default()
    };
    let err = tcp.into_websocket_with(url, config).unwrap_err();
    assert!(
        matches!(err, WsError::Usage(hotwire::ws::UsageError::WindowBits(8))),
        "{err:?}"
    );
}
