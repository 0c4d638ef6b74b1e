//! permessage-deflate makes no allocation per message in steady state, with and without context
//! takeover, receiving and sending: against the Python `websockets` server with compression on,
//! echo round trips (every receive mode) and a burst read in batches, counted by a global
//! allocator on the client's thread.
#![cfg(feature = "ws")]

mod alloc_counter;
mod util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alloc_counter::allocs;
use hotwire::stream::{TcpOptions, TcpStream};
use hotwire::ws::{DeflateConfig, IntoWebsocket, Message, Websocket, WsConfig, WsUrl};

const SERVER: &str = r#"
import asyncio, sys
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

async def handler(ws):
    if ws.request.path.startswith("/burst"):
        for i in range(20000):
            await ws.send('{"seq":%d,"px":"%d.%02d","qty":%d,"side":"%s"}'
                          % (i, 100 + i % 7, i % 100, i % 13, "buy" if i % 2 else "sell"))
        await ws.send("end")
        async for _ in ws:
            pass
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

fn config(no_takeover: bool) -> WsConfig {
    WsConfig {
        deflate: Some(DeflateConfig {
            client_no_context_takeover: no_takeover,
            server_no_context_takeover: no_takeover,
            ..DeflateConfig::default()
        }),
        ..WsConfig::default()
    }
}

fn connect(port: u16, path: &str, cfg: WsConfig) -> Websocket<TcpStream> {
    let url = WsUrl::parse(&format!("ws://127.0.0.1:{port}{path}")).unwrap();
    let tcp = TcpStream::connect(([127, 0, 0, 1], port).into(), &TcpOptions::default()).unwrap();
    let mut ws = tcp.into_websocket_with(url, cfg).unwrap();
    ws.wait_open(Duration::from_secs(10)).unwrap();
    assert!(ws.deflate().is_some(), "compression not negotiated");
    ws
}

/// A JSON-like message of `len` bytes (digits varying with `i`), written into `out`.
fn message(out: &mut String, i: usize, len: usize) {
    use std::fmt::Write as _;
    out.clear();
    while out.len() < len {
        let _ = write!(
            out,
            "{{\"px\":{},\"q\":{}}},",
            (i * 7 + out.len()) % 997,
            i % 13
        );
    }
    out.truncate(len);
}

/// One round trip in receive mode `mode` (0: message, 1: frame, 2: batch); checks the echo.
fn round_trip(ws: &mut Websocket<TcpStream>, text: &str, mode: usize) {
    ws.send_text(text).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = match mode {
            0 => match ws.receive_message().unwrap() {
                Some(Message::Text(t)) => Some(t == text),
                _ => None,
            },
            1 => ws.receive().unwrap().map(|f| f.text() == Some(text)),
            _ => {
                let mut ok = None;
                for f in ws.read_batch().unwrap() {
                    ok = Some(f.text() == Some(text));
                }
                ok
            }
        };
        if let Some(ok) = got {
            assert!(ok, "echo differs");
            return;
        }
        assert!(Instant::now() < deadline, "no echo");
        ws.wait(Duration::from_millis(5));
    }
}

#[test]
fn compressed_messages_make_no_allocation_in_steady_state() {
    let python = util::venv_bin("python3");
    if !util::require_peer("python3 (venv)", &python) {
        return;
    }
    let port = util::free_port();
    let mut guard = util::ChildGuard::spawn(
        Command::new(python)
            .args(["-c", SERVER, &port.to_string()])
            .stdout(Stdio::null()),
    );
    guard.wait_port(([127, 0, 0, 1], port).into(), Duration::from_secs(20));
    let probe = allocs();
    drop(std::hint::black_box(vec![0u8; 16]));
    assert!(allocs() > probe, "the counting allocator counts nothing");

    let sizes = [16usize, 256, 1000, 4096, 20_000];
    for no_takeover in [false, true] {
        // Echo: sending and every receive mode.
        let mut ws = connect(port, "/echo", config(no_takeover));
        let mut text = String::with_capacity(32 << 10);
        for i in 0..300 {
            message(&mut text, i, sizes[i % sizes.len()]);
            round_trip(&mut ws, &text, i % 3);
        }
        let before = allocs();
        for i in 300..1800 {
            message(&mut text, i, sizes[i % sizes.len()]);
            round_trip(&mut ws, &text, i % 3);
        }
        let made = allocs() - before;
        assert_eq!(
            made, 0,
            "{made} allocations in 1500 round trips (no_takeover {no_takeover})"
        );

        // A burst read in batches: many compressed messages per read.
        let mut ws = connect(port, "/burst", config(no_takeover));
        let mut n = 0usize;
        let mut before = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        'outer: loop {
            for f in ws.read_batch().unwrap() {
                if f.text() == Some("end") {
                    break 'outer;
                }
                assert!(f.text().is_some_and(|t| t.starts_with("{\"seq\":")));
                n += 1;
            }
            if n >= 2000 && before.is_none() {
                before = Some(allocs());
            }
            assert!(Instant::now() < deadline, "burst stalled at {n}");
            ws.wait(Duration::from_millis(5));
        }
        assert_eq!(n, 20_000);
        let made = allocs() - before.unwrap();
        assert_eq!(
            made, 0,
            "{made} allocations reading the burst (no_takeover {no_takeover})"
        );
    }
}
