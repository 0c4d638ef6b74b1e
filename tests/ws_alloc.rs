//! The WebSocket client's steady state does not allocate: after warm-up, 100,000 frames received
//! (batch mode and message mode, fragmented messages and auto-answered pings included) and 100,000
//! frames sent make no heap allocation, counted by a global allocator. All three receive modes run:
//! batches, single frames and messages.
#![cfg(feature = "ws")]

use std::io::{self, Read, Write};

use hotwire::stream::Stream;
use hotwire::ws::{accept_value, encode_frame, IntoWebsocket, Message, OpCode, WsUrl};

mod alloc_counter;

use alloc_counter::allocs;

/// An in-memory server: answers the handshake request, then serves pre-encoded frames 1500 bytes
/// per read (so frames straddle reads); writes are counted and dropped.
struct Peer {
    input: Vec<u8>,
    pos: usize,
    request: Vec<u8>,
    opened: bool,
    written: usize,
}

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.input.len() - self.pos).min(buf.len()).min(1500);
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.opened {
            self.request.extend_from_slice(buf);
            if self.request.ends_with(b"\r\n\r\n") {
                let req = String::from_utf8(self.request.clone()).unwrap();
                let key = req
                    .lines()
                    .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                    .unwrap();
                let accept = accept_value(key.as_bytes());
                let resp = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    std::str::from_utf8(&accept).unwrap()
                );
                self.input.splice(0..0, resp.into_bytes());
                self.opened = true;
            }
        } else {
            self.written += buf.len();
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Peer {}

/// One round of the server's pattern: 8 frames.
fn pattern(out: &mut Vec<u8>) {
    let text = "κόσμε, market data ticks";
    let b = text.as_bytes();
    encode_frame(out, OpCode::Binary, true, None, &[0x5A; 64]);
    encode_frame(out, OpCode::Text, true, None, &b[..b.len().min(32)]);
    encode_frame(out, OpCode::Text, false, None, &b[..3]); // splits "ό"
    encode_frame(out, OpCode::Continuation, false, None, &b[3..9]);
    encode_frame(out, OpCode::Continuation, true, None, &b[9..]);
    encode_frame(out, OpCode::Ping, true, None, b"hb123456");
    encode_frame(out, OpCode::Binary, false, None, &[1; 1000]);
    encode_frame(out, OpCode::Continuation, true, None, &[2; 1000]);
}
const FRAMES_PER_PATTERN: usize = 8;

#[test]
fn steady_state_makes_no_allocation() {
    const WARMUP_PATTERNS: usize = 250;
    const BATCH_FRAMES: usize = 60_000;
    const MESSAGE_FRAMES: usize = 60_000;
    const SINGLE_FRAMES: usize = 16_000;
    let mut input = Vec::new();
    let patterns = WARMUP_PATTERNS * 2
        + (BATCH_FRAMES + SINGLE_FRAMES + MESSAGE_FRAMES) / FRAMES_PER_PATTERN
        + 20;
    for _ in 0..patterns {
        pattern(&mut input);
    }
    let peer = Peer {
        input,
        pos: 0,
        request: Vec::new(),
        opened: false,
        written: 0,
    };
    let url = WsUrl::parse("ws://127.0.0.1:9001/alloc").unwrap();
    let mut ws = peer.into_websocket(url).unwrap();
    let mut spins = 0;
    while !ws.poll_handshake().unwrap() {
        spins += 1;
        assert!(spins < 10);
    }

    // Both modes and both send paths once through the whole pattern, so every buffer has grown.
    let mut frames = 0;
    for _ in 0..100 {
        ws.receive().unwrap();
    }
    while frames < WARMUP_PATTERNS * FRAMES_PER_PATTERN {
        for _f in ws.read_batch().unwrap() {
            frames += 1;
        }
    }
    let mut messages = 0;
    while messages < WARMUP_PATTERNS * 5 {
        if ws.receive_message().unwrap().is_some() {
            messages += 1;
        }
    }
    let payload = [7u8; 64];
    for i in 0..1000 {
        ws.send_binary(&payload).unwrap();
        ws.send_text("warm-up text").unwrap();
        ws.send_frame(OpCode::Binary, false, &payload[..i % 64])
            .unwrap();
        ws.send_frame(OpCode::Continuation, true, &payload).unwrap();
    }

    let probe = allocs();
    drop(std::hint::black_box(vec![0u8; 16]));
    assert!(allocs() > probe, "the counting allocator counts nothing");

    let before = allocs();
    let written_before = ws.get_ref().written;

    // Receive: batch mode.
    let mut received = 0;
    let mut bytes = 0;
    while received < BATCH_FRAMES {
        for f in ws.read_batch().unwrap() {
            bytes += f.payload().len();
            received += 1;
        }
    }
    // Receive: one frame at a time.
    let mut single = 0;
    while single < SINGLE_FRAMES {
        if let Some(f) = ws.receive().unwrap() {
            bytes += f.payload().len();
            single += 1;
        }
    }
    received += single;
    // Receive: message mode, until the input is exhausted.
    let mut text_messages = 0;
    let mut reassembled = 0;
    let mut idle = false;
    loop {
        match ws.receive_message().unwrap() {
            Some(Message::Text(t)) => {
                text_messages += 1;
                bytes += t.len();
            }
            Some(Message::Binary(b)) => {
                reassembled += usize::from(b.len() == 2000);
                bytes += b.len();
            }
            Some(_) => {}
            None => idle = true,
        }
        if std::mem::take(&mut idle) && ws.get_ref().pos == ws.get_ref().input.len() {
            break;
        }
    }
    // Send: 100,000 frames, fragmented ones included.
    for i in 0..25_000 {
        ws.send_binary(&payload).unwrap();
        ws.send_text("{\"e\":\"trade\",\"p\":\"42.5\"}").unwrap();
        ws.send_frame(OpCode::Text, false, b"frag").unwrap();
        ws.send_frame(OpCode::Continuation, true, &payload[..i % 64])
            .unwrap();
    }
    assert!(ws.flush().unwrap());
    let after = allocs();

    assert!(received >= BATCH_FRAMES);
    assert!(
        text_messages >= MESSAGE_FRAMES / FRAMES_PER_PATTERN * 2,
        "{text_messages}"
    );
    assert!(
        reassembled >= MESSAGE_FRAMES / FRAMES_PER_PATTERN,
        "{reassembled}"
    );
    assert!(bytes > 10_000_000 / 2, "{bytes}");
    // 100,000 sent frames plus one pong per received ping.
    let sent = ws.get_ref().written - written_before;
    assert!(sent > 100_000 * 6, "only {sent} bytes sent");
    assert_eq!(
        after - before,
        0,
        "allocations in steady state ({} frames and {text_messages} text messages received, \
         100,000 frames sent)",
        received
    );
}
