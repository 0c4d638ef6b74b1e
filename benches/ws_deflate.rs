//! Decode throughput of permessage-deflate (RFC 7692) compressed messages: hotwire's client
//! against tungstenite 0.30 plus flate2 by hand, in the same run, on the same server stream.
//!
//! tungstenite has no permessage-deflate in any release, and its `WebSocket` refuses RSV1 frames;
//! what a tungstenite user writes instead is its `FrameSocket` (raw frames) and a flate2
//! `Decompress` per connection, inflating each message into a fresh `Vec` (tungstenite's messages
//! are owned) and validating text. hotwire: `read_batch()` with deflate negotiated, one borrowed
//! frame per message, inflated into the connection's buffer.
//!
//! The stream: `--messages` JSON-like text messages (256 B and 4 KiB), compressed by flate2
//! (zlib-rs, level 6) as a server would, with context takeover and without
//! (`server_no_context_takeover`), read from memory 64 KiB per read. Each round decodes the whole
//! stream once on a fresh connection; the best of `--rounds` is printed, as messages/s, with the
//! ratio. Per-message latency percentiles are not printed: a message takes about a microsecond,
//! the clock read would be a large part of it.
//!
//! ```text
//! cargo bench --bench ws_deflate                 # the table
//! cargo bench --bench ws_deflate -- --rounds 9 --messages 100000
//! ```

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use hotwire::stream::Stream;
use hotwire::ws::{accept_value, DeflateConfig, IntoWebsocket, WsConfig, WsUrl};

/// A server stream in memory: an optional handshake answer (computed from the request), then the
/// frames once, at most 64 KiB per read.
struct Source {
    frames: Arc<Vec<u8>>,
    pos: usize,
    head: Vec<u8>,
    request: Vec<u8>,
    answer: Option<&'static str>,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.head.is_empty() {
            let n = self.head.len().min(buf.len());
            buf[..n].copy_from_slice(&self.head[..n]);
            self.head.drain(..n);
            return Ok(n);
        }
        if self.answer.is_some() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = (self.frames.len() - self.pos).min(buf.len()).min(64 << 10);
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        buf[..n].copy_from_slice(&self.frames[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Source {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(ext) = self.answer {
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
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\
                     Sec-WebSocket-Extensions: {ext}\r\n\r\n",
                    String::from_utf8_lossy(&accept)
                )
                .into_bytes();
                self.answer = None;
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Source {}

/// A JSON-like market-data message of `size` bytes, varying with `i`.
fn message(i: usize, size: usize) -> String {
    let mut s = String::with_capacity(size + 64);
    let mut k = 0;
    while s.len() < size {
        s.push_str(&format!(
            "{{\"e\":\"depth\",\"s\":\"BTCUSDT\",\"u\":{},\"p\":\"{}.{:02}\",\"q\":\"{}.{:03}\"}},",
            i * 31 + k,
            42_000 + (i * 7 + k * 13) % 500,
            (i + k) % 100,
            (i * 3 + k) % 50,
            (i * 11 + k * 5) % 1000
        ));
        k += 1;
    }
    s.truncate(size);
    s
}

/// `count` messages of `size` bytes as compressed server frames (RSV1, FIN, text).
fn encoded(size: usize, count: usize, takeover: bool) -> Arc<Vec<u8>> {
    let mut z = Compress::new(Compression::default(), false);
    let mut out = Vec::new();
    let mut buf = vec![0u8; size * 2 + 1024];
    for i in 0..count {
        let m = message(i, size);
        let (in0, out0) = (z.total_in(), z.total_out());
        z.compress(m.as_bytes(), &mut buf, FlushCompress::Sync)
            .unwrap();
        assert_eq!((z.total_in() - in0) as usize, m.len());
        let n = (z.total_out() - out0) as usize;
        assert!(n < buf.len() && buf[..n].ends_with(&[0, 0, 0xff, 0xff]));
        let payload = &buf[..n - 4];
        out.push(0xC1);
        match payload.len() {
            l @ 0..=125 => out.push(l as u8),
            l @ 126..=0xFFFF => {
                out.push(126);
                out.extend_from_slice(&(l as u16).to_be_bytes());
            }
            l => {
                out.push(127);
                out.extend_from_slice(&(l as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(payload);
        if !takeover {
            z.reset();
        }
    }
    Arc::new(out)
}

fn hotwire_run(frames: &Arc<Vec<u8>>, count: usize, takeover: bool) -> Duration {
    let source = Source {
        frames: frames.clone(),
        pos: 0,
        head: Vec::new(),
        request: Vec::new(),
        answer: Some(if takeover {
            "permessage-deflate"
        } else {
            "permessage-deflate; server_no_context_takeover"
        }),
    };
    let config = WsConfig {
        deflate: Some(DeflateConfig::default()),
        ..WsConfig::default()
    };
    let url = WsUrl::parse("ws://127.0.0.1:9001/bench").unwrap();
    let mut ws = source.into_websocket_with(url, config).unwrap();
    while !ws.poll_handshake().unwrap() {}
    assert!(ws.deflate().is_some());
    let start = Instant::now();
    let mut seen = 0;
    while seen < count {
        for frame in ws.read_batch().unwrap() {
            black_box(frame.text().expect("text"));
            seen += 1;
        }
    }
    start.elapsed()
}

fn tungstenite_run(frames: &Arc<Vec<u8>>, count: usize, takeover: bool) -> Duration {
    use tungstenite::protocol::frame::FrameSocket;
    let source = Source {
        frames: frames.clone(),
        pos: 0,
        head: Vec::new(),
        request: Vec::new(),
        answer: None,
    };
    let mut socket = FrameSocket::new(source);
    let mut z = Decompress::new(false);
    let start = Instant::now();
    let mut seen = 0;
    while seen < count {
        let frame = match socket.read(Some(64 << 20)) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("{e}"),
        };
        assert!(frame.header().rsv1);
        // The payload, then the 4-byte tail, straight from tungstenite's frame (no copy); the
        // output is the one owned buffer an owned message needs.
        let payload = frame.into_payload();
        let inputs: [&[u8]; 2] = [&payload[..], &[0, 0, 0xff, 0xff]];
        let mut out = Vec::with_capacity(payload.len() * 4 + 64);
        for input in inputs {
            let mut used = 0;
            loop {
                let in0 = z.total_in();
                z.decompress_vec(&input[used..], &mut out, FlushDecompress::Sync)
                    .unwrap();
                used += (z.total_in() - in0) as usize;
                if used == input.len() && out.len() < out.capacity() {
                    break;
                }
                out.reserve(out.capacity().max(1024));
            }
        }
        if !takeover {
            z.reset(false);
        }
        let text = String::from_utf8(out).expect("text");
        black_box(&text);
        seen += 1;
    }
    start.elapsed()
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = arg(&args, "--rounds").unwrap_or(5usize);
    let messages = arg(&args, "--messages");
    println!("mode         size  messages  hotwire msg/s  tungstenite+flate2/s   ratio");
    for takeover in [true, false] {
        for size in [256usize, 4096] {
            let count = messages.unwrap_or(if size == 256 { 200_000 } else { 50_000 });
            let frames = encoded(size, count, takeover);
            let (mut best_h, mut best_t) = (Duration::MAX, Duration::MAX);
            for _ in 0..rounds {
                best_h = best_h.min(hotwire_run(&frames, count, takeover));
                best_t = best_t.min(tungstenite_run(&frames, count, takeover));
            }
            let rate = |d: Duration| count as f64 / d.as_secs_f64();
            println!(
                "{:<11} {size:>5} {count:>9} {:>14.0} {:>21.0} {:>6.2}x",
                if takeover { "takeover" } else { "no-takeover" },
                rate(best_h),
                rate(best_t),
                best_t.as_secs_f64() / best_h.as_secs_f64()
            );
        }
    }
}
