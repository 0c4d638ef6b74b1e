// The HTTP response parser, through the pipelining client on arbitrary input: shared by the cargo-fuzz target
// (fuzz/fuzz_targets/http_response.rs) and the corpus replay in `cargo test` (tests/fuzz_corpora.rs).

use std::io::{self, Read, Write};

use hotwire::http::{HttpClient, HttpConfig, Limits, Request};
use hotwire::stream::Stream;

/// Serves the fuzz input `chunk` bytes per read, then end of stream.
struct Peer<'a> {
    input: &'a [u8],
    chunk: usize,
}

impl Read for Peer<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.input.len().min(buf.len()).min(self.chunk);
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Peer<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Peer<'_> {}

pub(crate) fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    // The first byte picks the read size (1..=32), small limits, and which requests are HEAD.
    let chunk = usize::from(first & 0x1F) + 1;
    let limits = if first & 0x40 != 0 {
        Limits {
            max_headers: 4,
            max_head: 256,
            max_body: 512,
        }
    } else {
        Limits::default()
    };
    let config = HttpConfig {
        limits,
        read_buffer: 1024,
        max_in_flight: 4,
        correlation_header: None,
    };
    let mut client = HttpClient::new(Peer { input: rest, chunk }, "fuzz", config);
    for i in 0..4 {
        let head = first & 0x80 != 0 && i % 2 == 0;
        let req = if head { Request::head("/") } else { Request::get("/") };
        client.send(&req).expect("an empty pipeline takes four requests");
    }
    for _ in 0..rest.len() + 8 {
        match client.poll_response() {
            Ok(Some(r)) => {
                assert!(r.body().len() as u64 <= limits.max_body);
                assert_eq!(r.body().len() as u64, r.body_len());
                assert!(r.headers().len() <= limits.max_headers);
                assert!(!(100..200).contains(&r.status()));
            }
            Ok(None) => {}
            Err(_) => return,
        }
        if client.in_flight() == 0 {
            return;
        }
    }
    panic!("no progress: input consumed but the client neither answered nor failed");
}
