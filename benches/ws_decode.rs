//! Decoding throughput: hotwire's WebSocket client against boomnet and tungstenite, in the same run,
//! on the same pre-encoded server stream (32 B, 256 B and 1 KiB payloads, binary and text) read from
//! memory in 64 KiB and 1500 B reads. hotwire and tungstenite validate text (UTF-8); boomnet does
//! not. Two stream sizes: about 512 KiB (stays in L2: the decoder's own cost) and `--large` MiB
//! (default 256: larger than the caches, so the copy from memory dominates, as on a busy server).
//! Prints messages/s and the ratios.
//!
//! ```text
//! cargo bench --bench ws_decode                       # the table
//! cargo bench --bench ws_decode -- --large 512        # a larger stream for the second half
//! cargo bench --bench ws_decode -- --only hotwire --size 64 --kind binary --read 65536 --messages 1000000
//! ```
//! The second form runs one configuration for a fixed number of messages, for
//! `valgrind --tool=callgrind` (instructions per message = the difference between two runs with
//! different `--messages`, divided by the difference in messages). Figures and the exact commands
//! are in `benches/ws_decode.md`.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotwire::stream::Stream;
use hotwire::ws::{accept_value, encode_frame, IntoWebsocket, OpCode, WsUrl};

/// An endless server: the same encoded frames over and over, at most `chunk` bytes per read. The
/// first bytes it serves can be a handshake response (computed from the request it is sent).
struct Cyclic {
    frames: Arc<Vec<u8>>,
    pos: usize,
    chunk: usize,
    head: Vec<u8>,
    request: Vec<u8>,
    answer_handshake: bool,
}

impl Cyclic {
    fn new(frames: Arc<Vec<u8>>, chunk: usize, answer_handshake: bool) -> Cyclic {
        Cyclic {
            frames,
            pos: 0,
            chunk,
            head: Vec::new(),
            request: Vec::new(),
            answer_handshake,
        }
    }
}

impl Read for Cyclic {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.head.is_empty() {
            let n = self.head.len().min(buf.len());
            buf[..n].copy_from_slice(&self.head[..n]);
            self.head.drain(..n);
            return Ok(n);
        }
        if self.answer_handshake {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = (self.frames.len() - self.pos)
            .min(buf.len())
            .min(self.chunk);
        buf[..n].copy_from_slice(&self.frames[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.frames.len() {
            self.pos = 0;
        }
        Ok(n)
    }
}

impl Write for Cyclic {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.answer_handshake {
            self.request.extend_from_slice(buf);
            if self.request.ends_with(b"\r\n\r\n") {
                let req = String::from_utf8_lossy(&self.request).into_owned();
                let key = req
                    .lines()
                    .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                    .expect("key");
                let accept = accept_value(key.as_bytes());
                self.head = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    String::from_utf8_lossy(&accept)
                )
                .into_bytes();
                self.answer_handshake = false;
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Cyclic {}

impl boomnet::stream::ReadHint for Cyclic {
    fn read_hint(&self) -> bool {
        true
    }
}

/// About `bytes` of frames of one size and kind (ASCII-heavy text with some multi-byte
/// characters). 512 KiB keeps the source in L2, like bytes a socket read has just copied: the
/// decoding cost alone; hundreds of MiB make every read come from DRAM.
fn encoded(size: usize, text: bool, bytes: usize) -> (Arc<Vec<u8>>, usize) {
    let body: Vec<u8> = if text {
        let unit = "{\"e\":\"trade\",\"p\":\"42.50\",\"q\":\"0.01\",\"s\":\"BTC€\"}";
        unit.bytes().cycle().take(size).collect::<Vec<u8>>()
    } else {
        (0..size).map(|i| (i * 7) as u8).collect()
    };
    // Keep text valid: cut back to a character boundary.
    let body = if text {
        let mut end = body.len();
        while std::str::from_utf8(&body[..end]).is_err() {
            end -= 1;
        }
        let mut b = body[..end].to_vec();
        b.resize(size, b' ');
        b
    } else {
        body
    };
    let op = if text { OpCode::Text } else { OpCode::Binary };
    let count = (bytes / (size + 4)).max(1);
    let mut out = Vec::with_capacity(count * (size + 10));
    for _ in 0..count {
        encode_frame(&mut out, op, true, None, &body);
    }
    (Arc::new(out), count)
}

fn hotwire_run(frames: &Arc<Vec<u8>>, chunk: usize, messages: u64) -> Duration {
    let stream = Cyclic::new(frames.clone(), chunk, true);
    let url = WsUrl::parse("ws://127.0.0.1:9001/bench").unwrap();
    let mut ws = stream.into_websocket(url).unwrap();
    while !ws.poll_handshake().unwrap() {}
    let start = Instant::now();
    let mut seen = 0u64;
    while seen < messages {
        for frame in ws.read_batch().unwrap() {
            black_box(frame.text());
            black_box(frame.payload());
            seen += 1;
        }
    }
    start.elapsed()
}

fn boomnet_run(frames: &Arc<Vec<u8>>, chunk: usize, messages: u64) -> Duration {
    use boomnet::ws::WebsocketFrame;
    let stream = Cyclic::new(frames.clone(), chunk, false);
    let mut ws = boomnet::ws::Websocket::new_with_handshake_complete(stream);
    let start = Instant::now();
    let mut seen = 0u64;
    while seen < messages {
        for frame in ws.read_batch().unwrap() {
            match frame.unwrap() {
                WebsocketFrame::Text(_, data) | WebsocketFrame::Binary(_, data) => {
                    black_box(data);
                }
                _ => {}
            }
            seen += 1;
        }
    }
    start.elapsed()
}

fn tungstenite_run(frames: &Arc<Vec<u8>>, chunk: usize, messages: u64) -> Duration {
    let stream = Cyclic::new(frames.clone(), chunk, false);
    let mut ws =
        tungstenite::WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Client, None);
    let start = Instant::now();
    for _ in 0..messages {
        let m = ws.read().unwrap();
        black_box(&m);
    }
    start.elapsed()
}

fn rate(messages: u64, d: Duration) -> f64 {
    messages as f64 / d.as_secs_f64()
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

type Run = fn(&Arc<Vec<u8>>, usize, u64) -> Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(only) = arg::<String>(&args, "--only") {
        let size = arg(&args, "--size").unwrap_or(64);
        let text = arg::<String>(&args, "--kind").as_deref() == Some("text");
        let chunk = arg(&args, "--read").unwrap_or(65536);
        let messages = arg(&args, "--messages").unwrap_or(1_000_000);
        let bytes = arg::<usize>(&args, "--stream-kib").unwrap_or(512) << 10;
        let (frames, _) = encoded(size, text, bytes);
        let d = match only.as_str() {
            "hotwire" => hotwire_run(&frames, chunk, messages),
            "boomnet" => boomnet_run(&frames, chunk, messages),
            "tungstenite" => tungstenite_run(&frames, chunk, messages),
            other => panic!("--only hotwire|boomnet|tungstenite, not {other}"),
        };
        println!(
            "{only}: {messages} messages in {d:?}: {:.0} msg/s",
            rate(messages, d)
        );
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this quickly as a smoke test.
    let quick = !args.iter().any(|a| a == "--bench");
    let large_mib: usize = arg(&args, "--large").unwrap_or(if quick { 4 } else { 256 });
    println!(
        "{:<6} {:>5} {:>6} {:>9} {:>14} {:>14} {:>14} {:>8} {:>8}",
        "kind",
        "size",
        "read",
        "stream",
        "hotwire msg/s",
        "boomnet/s",
        "tungstenite/s",
        "/boomnet",
        "/tungst."
    );
    for (stream, bytes) in [("512KiB", 512usize << 10), ("large", large_mib << 20)] {
        for text in [false, true] {
            for size in [32usize, 256, 1024] {
                let (frames, count) = encoded(size, text, bytes);
                for chunk in [65536usize, 1500] {
                    let messages = if quick {
                        10_000
                    } else {
                        // At least the whole stream once (the large one: every read from DRAM).
                        (count as u64).max(2_000_000)
                    };
                    let runners: [Run; 3] = [hotwire_run, boomnet_run, tungstenite_run];
                    // Warm up each, then take the best of three runs each.
                    for run in runners {
                        run(&frames, chunk, messages / 10);
                    }
                    let runs = if quick { 1 } else { 3 };
                    let mut rates = [0f64; 3];
                    for (rate_of, run) in rates.iter_mut().zip(runners) {
                        let best = (0..runs)
                            .map(|_| run(&frames, chunk, messages))
                            .min()
                            .unwrap();
                        *rate_of = rate(messages, best);
                    }
                    let [h, b, t] = rates;
                    println!(
                        "{:<6} {:>5} {:>6} {:>9} {:>14.0} {:>14.0} {:>14.0} {:>7.2}x {:>7.2}x",
                        if text { "text" } else { "binary" },
                        size,
                        chunk,
                        if stream == "large" {
                            format!("{large_mib}MiB")
                        } else {
                            stream.to_string()
                        },
                        h,
                        b,
                        t,
                        h / b,
                        h / t
                    );
                }
            }
        }
    }
}
