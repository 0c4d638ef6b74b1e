// The permessage-deflate receive path on arbitrary server bytes: shared by the cargo-fuzz target
// (fuzz/fuzz_targets/ws_inflate.rs) and the corpus replay in `cargo test` (tests/fuzz_corpora.rs).
//
// A client offers permessage-deflate to an in-memory server that accepts it and then sends the
// input as frames. Whatever the bytes, the client must not panic, must never hand out a message
// above its limit or text that is not UTF-8, and must end in an error with a close code (or run
// out of input).

use std::io::{self, Read, Write};

use hotwire::stream::Stream;
use hotwire::ws::{
    accept_value, DeflateConfig, IntoWebsocket, Message, WsConfig, WsError, WsUrl,
};

/// The server: answers the handshake accepting permessage-deflate, then serves `input` in reads
/// of `chunk` bytes; writes after the handshake are dropped.
struct Peer {
    input: Vec<u8>,
    pos: usize,
    chunk: usize,
    request: Vec<u8>,
    answer: &'static str,
    opened: bool,
}

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.input.len() - self.pos).min(buf.len()).min(self.chunk);
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
                let req = String::from_utf8_lossy(&self.request).into_owned();
                let key = req
                    .lines()
                    .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                    .unwrap_or("");
                let accept = accept_value(key.as_bytes());
                let resp = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\
                     Sec-WebSocket-Extensions: {}\r\n\r\n",
                    std::str::from_utf8(&accept).unwrap_or(""),
                    self.answer
                );
                self.input.splice(0..0, resp.into_bytes());
                self.opened = true;
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Peer {}

/// The message limit: small, so bombs hit it at once.
const MAX_MESSAGE: usize = 1 << 16;

pub(crate) fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    // The first byte picks the read size (1..=32 bytes), the takeover mode and the receive mode.
    let answer = if first & 0x20 != 0 {
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
    } else {
        "permessage-deflate"
    };
    let peer = Peer {
        input: rest.to_vec(),
        pos: 0,
        chunk: usize::from(first & 0x1F) + 1,
        request: Vec::new(),
        answer,
        opened: false,
    };
    let config = WsConfig {
        max_message_size: MAX_MESSAGE,
        max_frame_size: MAX_MESSAGE,
        read_buffer_size: 1024,
        deflate: Some(DeflateConfig {
            server_no_context_takeover: first & 0x20 != 0,
            ..DeflateConfig::default()
        }),
        ..WsConfig::default()
    };
    let Ok(url) = WsUrl::parse("ws://fuzz.example/") else {
        return;
    };
    let Ok(mut ws) = peer.into_websocket_with(url, config) else {
        return;
    };
    let batches = first & 0x40 != 0;
    let mut idle = 0;
    loop {
        let step: Result<bool, WsError> = if batches {
            ws.read_batch().map(|batch| {
                let mut any = false;
                for f in batch {
                    any = true;
                    assert!(f.payload().len() <= MAX_MESSAGE);
                    if let Some(t) = f.text() {
                        assert!(std::str::from_utf8(t.as_bytes()).is_ok());
                    }
                }
                any
            })
        } else {
            ws.receive_message().map(|m| {
                match m {
                    Some(Message::Text(t)) => assert!(t.len() <= MAX_MESSAGE),
                    Some(Message::Binary(b)) => assert!(b.len() <= MAX_MESSAGE),
                    _ => {}
                }
                m.is_some()
            })
        };
        match step {
            Ok(true) => idle = 0,
            Ok(false) => {
                idle += 1;
                // The input is exhausted once several calls in a row find nothing.
                if idle > 4 {
                    return;
                }
            }
            Err(e) => {
                let _ = e.close_code();
                return;
            }
        }
    }
}
