//! The venue's compressed feed (permessage-deflate, RFC 7692, server side): hotwire's client reads
//! it in both context-takeover modes and two window sizes, every message parsed and in sequence,
//! with the venue's counters showing the bytes really shrank; the Python `websockets` client reads
//! it too, as a peer independent of both, byte-exact; `hotwire ws --deflate` reads
//! `hotwire venue --deflate` (the two flags, end to end); a client that sends compressed data on
//! the feed gets a close 1002.
#![cfg(all(feature = "ws", feature = "venue"))]

mod util;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hotwire::app::venue::{Venue, VenueArgs};
use hotwire::stream::{TcpOptions, TcpStream};
use hotwire::ws::{DeflateConfig, IntoWebsocket, Message, Websocket, WsConfig, WsError, WsUrl};

fn venue(deflate: bool) -> Venue {
    Venue::start(&VenueArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls_listen: "127.0.0.1:0".parse().unwrap(),
        rate: 1000,
        size: 128,
        deflate,
        ..VenueArgs::default()
    })
    .unwrap()
}

/// The feed message `seq` of `size` bytes, its timestamp digits replaced by `ts`.
fn expected(seq: u64, size: usize, ts: &str) -> String {
    let px = 100.0 + (seq % 1000) as f64 * 0.25;
    let mut s = format!(
        "{{\"seq\":{seq},\"ts\":{ts},\"sym\":\"HWX\",\"px\":{px:.2},\"qty\":{},\"pad\":\"",
        1 + seq % 9
    );
    while s.len() + 2 < size {
        s.push('x');
    }
    s + "\"}"
}

/// Checks that `msg` is exactly feed message `seq` (whatever its send time).
fn check(msg: &str, seq: u64, size: usize) {
    let ts = msg
        .split_once("\"ts\":")
        .and_then(|(_, rest)| rest.split_once(','))
        .map(|(ts, _)| ts)
        .unwrap_or_else(|| panic!("no timestamp in {msg:?}"));
    assert!(
        !ts.is_empty() && ts.bytes().all(|b| b.is_ascii_digit()),
        "{msg:?}"
    );
    assert_eq!(msg, expected(seq, size, ts), "message {seq}");
}

fn connect(venue: &Venue, path: &str, config: WsConfig) -> Websocket<TcpStream> {
    let url = WsUrl::parse(&format!("ws://{}{path}", venue.ws_addr)).unwrap();
    let tcp = TcpStream::connect(venue.ws_addr, &TcpOptions::default()).unwrap();
    let mut ws = tcp.into_websocket_with(url, config).unwrap();
    ws.wait_open(Duration::from_secs(10)).unwrap();
    ws
}

fn offer(server_no_context_takeover: bool, bits: Option<u8>) -> WsConfig {
    WsConfig {
        deflate: Some(DeflateConfig {
            client_no_context_takeover: server_no_context_takeover,
            server_no_context_takeover,
            client_max_window_bits: bits,
            server_max_window_bits: bits,
        }),
        ..WsConfig::default()
    }
}

/// Reads the whole feed (`count` messages of `size` bytes, then the venue's close), checking every
/// message; returns how many arrived.
fn read_feed(ws: &mut Websocket<TcpStream>, count: u64, size: usize) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seq = 0u64;
    loop {
        match ws.receive_message() {
            Ok(Some(Message::Text(t))) => {
                seq += 1;
                check(t, seq, size);
            }
            Ok(Some(Message::Close(c))) => {
                // The venue ends the feed with an empty close frame.
                assert!(
                    matches!(c.code, None | Some(1000)),
                    "feed close {:?}",
                    c.code
                );
                break;
            }
            Ok(Some(_)) => {}
            Ok(None) => ws.wait(Duration::from_millis(20)),
            Err(WsError::Closed) => break,
            Err(e) => panic!("feed read failed after {seq} messages: {e}"),
        }
        assert!(Instant::now() < deadline, "feed stalled at {seq}/{count}");
    }
    seq
}

#[test]
fn hotwire_reads_the_compressed_feed_in_both_takeover_modes_and_two_windows() {
    const COUNT: u64 = 3000;
    const SIZE: usize = 300;
    let mut ratios = Vec::new();
    for bits in [9u8, 15] {
        for takeover in [true, false] {
            let v = venue(true);
            let path = format!("/feed?rate=200000&size={SIZE}&count={COUNT}");
            let mut ws = connect(&v, &path, offer(!takeover, Some(bits)));
            let p = *ws
                .deflate()
                .expect("the venue did not accept permessage-deflate");
            assert_eq!(
                (p.server_max_window_bits, p.server_no_context_takeover),
                (bits, !takeover)
            );
            assert_eq!(read_feed(&mut ws, COUNT, SIZE), COUNT);
            let s = v.stats();
            let (n, raw, wire) = (
                s.deflated_messages.load(Ordering::Relaxed),
                s.deflate_in_bytes.load(Ordering::Relaxed),
                s.deflate_out_bytes.load(Ordering::Relaxed),
            );
            assert_eq!(n, COUNT, "every feed message compressed");
            assert_eq!(raw, COUNT * SIZE as u64);
            assert!(wire * 2 < raw, "{wire} bytes on the wire for {raw}");
            ratios.push((bits, takeover, raw as f64 / wire as f64));
        }
    }
    eprintln!("compression ratios (bits, takeover, raw/wire): {ratios:?}");
    // With context takeover and a 32 KiB window, each message refers back to the previous one:
    // much smaller. (A 9-bit window reaches back only 250 bytes in zlib, less than a message.)
    let at15: Vec<f64> = ratios.iter().filter(|r| r.0 == 15).map(|r| r.2).collect();
    assert!(at15[0] > 2.0 * at15[1], "{ratios:?}");
}

#[test]
fn compression_is_per_connection_and_off_by_default() {
    const COUNT: u64 = 200;
    // Off: the offer is declined, the feed comes plain.
    let v = venue(false);
    let mut ws = connect(
        &v,
        &format!("/feed?rate=100000&count={COUNT}"),
        offer(false, None),
    );
    assert!(ws.deflate().is_none(), "compressed without --deflate");
    assert_eq!(read_feed(&mut ws, COUNT, 128), COUNT);
    assert_eq!(v.stats().deflated_messages.load(Ordering::Relaxed), 0);
    // `deflate=1` turns it on for one connection.
    let path = format!("/feed?rate=100000&count={COUNT}&deflate=1");
    let mut ws = connect(&v, &path, offer(false, None));
    let p = *ws.deflate().expect("deflate=1 ignored");
    assert_eq!(
        (p.server_max_window_bits, p.server_no_context_takeover),
        (15, false)
    );
    assert_eq!(read_feed(&mut ws, COUNT, 128), COUNT);
    assert_eq!(v.stats().deflated_messages.load(Ordering::Relaxed), COUNT);
    // A client that does not offer it gets the feed plain from a venue with --deflate.
    let v = venue(true);
    let mut ws = connect(
        &v,
        &format!("/feed?rate=100000&count={COUNT}"),
        WsConfig::default(),
    );
    assert!(ws.deflate().is_none());
    assert_eq!(read_feed(&mut ws, COUNT, 128), COUNT);
    assert_eq!(v.stats().deflated_messages.load(Ordering::Relaxed), 0);
}

/// Reads the feed with `websockets` (compression on, as the arguments say) and prints the
/// negotiated parameters, every message on its own line, then the close code. `send` first sends
/// one (compressed) message to the feed.
const PY_CLIENT: &str = r#"
import asyncio, sys
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

async def main():
    url, snct, bits, mode = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4]
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=snct, client_no_context_takeover=snct,
        server_max_window_bits=bits, client_max_window_bits=bits)
    async with connect(url, compression=None, extensions=[factory], max_size=None,
                       ping_interval=None) as ws:
        ext = ws.protocol.extensions
        print("EXT", len(ext), ext[0].remote_no_context_takeover, ext[0].remote_max_window_bits,
              flush=True)
        if mode == "send":
            await ws.send("{\"op\":\"hello\"}" * 100)
        try:
            async for m in ws:
                print(m)
        except ConnectionClosed:
            pass
    print("CLOSE", ws.close_code)

asyncio.run(asyncio.wait_for(main(), 30))
"#;

fn python(v: &Venue, path: &str, snct: bool, bits: u8, mode: &str) -> Option<String> {
    let python = util::venv_bin("python3");
    if !util::require_peer("python3 (venv)", &python) {
        return None;
    }
    let out = Command::new(python)
        .args([
            "-c",
            PY_CLIENT,
            &format!("ws://{}{path}", v.ws_addr),
            if snct { "1" } else { "0" },
            &bits.to_string(),
            mode,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn python_websockets_reads_the_compressed_feed_byte_exact() {
    const COUNT: u64 = 2000;
    const SIZE: usize = 500;
    for (snct, bits) in [(true, 10u8), (false, 15), (false, 9), (true, 15)] {
        let v = venue(true);
        let path = format!("/feed?rate=100000&size={SIZE}&count={COUNT}");
        let Some(out) = python(&v, &path, snct, bits, "read") else {
            return;
        };
        let mut lines = out.lines();
        assert_eq!(
            lines.next(),
            Some(format!("EXT 1 {} {bits}", if snct { "True" } else { "False" }).as_str()),
            "negotiation"
        );
        let mut seq = 0;
        for line in lines.by_ref() {
            if line.starts_with("CLOSE") {
                // An empty close frame reads as 1005 (no status received).
                assert_eq!(line, "CLOSE 1005");
                break;
            }
            seq += 1;
            check(line, seq, SIZE);
        }
        assert_eq!(seq, COUNT, "snct={snct} bits={bits}");
        let s = v.stats();
        assert_eq!(s.deflated_messages.load(Ordering::Relaxed), COUNT);
        let (raw, wire) = (
            s.deflate_in_bytes.load(Ordering::Relaxed),
            s.deflate_out_bytes.load(Ordering::Relaxed),
        );
        assert!(wire * 2 < raw, "{wire} bytes on the wire for {raw}");
    }
}

#[test]
fn compressed_data_sent_to_the_feed_gets_close_1002() {
    let v = venue(true);
    let Some(out) = python(&v, "/feed?rate=100", false, 15, "send") else {
        return;
    };
    assert!(out.starts_with("EXT 1 False 15"), "{out}");
    assert_eq!(out.lines().last(), Some("CLOSE 1002"), "{out}");
}

#[test]
fn hotwire_ws_deflate_reads_hotwire_venue_deflate() {
    const COUNT: u64 = 500;
    let bin = env!("CARGO_BIN_EXE_hotwire");
    let port = util::free_port();
    let mut venue = util::ChildGuard::spawn(
        Command::new(bin)
            .args([
                "venue",
                "--deflate",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null()),
    );
    venue.wait_port(([127, 0, 0, 1], port).into(), Duration::from_secs(20));
    let out = Command::new(bin)
        .args([
            "ws",
            "--deflate",
            "--idle-timeout",
            "20",
            &format!("ws://127.0.0.1:{port}/feed?rate=50000&size=200&count={COUNT}"),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hotwire ws failed: {stderr}");
    assert!(
        stderr.contains("permessage-deflate: client window 15 bits, server window 15 bits"),
        "{stderr}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut seq = 0;
    for line in stdout.lines() {
        seq += 1;
        check(line, seq, 200);
    }
    assert_eq!(seq, COUNT);
}
