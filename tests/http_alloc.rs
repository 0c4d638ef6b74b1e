//! A warm keep-alive connection does not allocate: after warm-up, 100,000 request/response round
//! trips (Content-Length and chunked bodies, headers read, bodies borrowed), pipelined batches and
//! bodies streamed into a caller's buffer make no heap allocation, counted by a global allocator.
#![cfg(feature = "http")]

use std::io::{self, Read, Write};

use hotwire::http::{HttpClient, HttpConfig, Request};
use hotwire::stream::Stream;

mod alloc_counter;

use alloc_counter::allocs;

/// An in-memory server: one canned response (cycling through `responses`) per request written,
/// served at most 1400 bytes per read so responses straddle reads. Allocation-free once built.
struct Peer {
    responses: Vec<Vec<u8>>,
    /// Responses owed.
    owed: usize,
    /// Which response is being served, and how far.
    current: usize,
    offset: usize,
    /// The last three bytes written, to find request ends across writes.
    tail: [u8; 3],
}

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.owed == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let r = &self.responses[self.current];
        let n = (r.len() - self.offset).min(buf.len()).min(1400);
        buf[..n].copy_from_slice(&r[self.offset..self.offset + n]);
        self.offset += n;
        if self.offset == r.len() {
            self.offset = 0;
            self.current = (self.current + 1) % self.responses.len();
            self.owed -= 1;
        }
        Ok(n)
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // The requests have no body: each ends with the first CRLF CRLF.
        for &b in buf {
            if self.tail == *b"\r\n\r" && b == b'\n' {
                self.owed += 1;
            }
            self.tail = [self.tail[1], self.tail[2], b];
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Peer {}

fn peer() -> Peer {
    let chunked = b"HTTP/1.1 200 OK\r\nServer: test\r\nContent-Type: application/json\r\n\
        Transfer-Encoding: chunked\r\n\r\n10;ext=1\r\n{\"bids\":[[1,2]],\r\n\
        0f\r\n\"asks\":[[3,4]]}\r\n0\r\nX-Trailer: t\r\n\r\n"
        .to_vec();
    let mut sized = b"HTTP/1.1 200 OK\r\nServer: test\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\
        Content-Type: application/json\r\nContent-Length: 3000\r\n\r\n"
        .to_vec();
    sized.extend(std::iter::repeat_n(b'x', 3000));
    let interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n".to_vec();
    Peer {
        responses: vec![chunked, sized, interim],
        owed: 0,
        current: 0,
        offset: 0,
        tail: [0; 3],
    }
}

const HEADERS: &[(&str, &str)] = &[("Accept", "application/json"), ("X-Api-Key", "k")];

/// One request and its response; returns (status, body length, header count) so nothing is
/// optimised away.
fn round_trip(c: &mut HttpClient<Peer>, i: usize) -> (u16, usize, usize) {
    let target = if i % 2 == 0 {
        "/api/book?symbol=BTC"
    } else {
        "/api/time"
    };
    c.send(&Request::get(target).with_headers(HEADERS)).unwrap();
    let r = c.poll_response().unwrap().expect("response in one poll");
    let date = r.header("date").map_or(0, <[u8]>::len);
    (r.status(), r.body().len() + date, r.headers().len())
}

#[test]
fn warm_keep_alive_round_trips_do_not_allocate() {
    let start = allocs();
    let mut c = HttpClient::new(peer(), "127.0.0.1:8080", HttpConfig::default());
    assert!(
        allocs() > start,
        "the counter sees the client's buffers being allocated"
    );
    let mut check = 0usize;
    for i in 0..300 {
        check += round_trip(&mut c, i).1;
    }
    let before = allocs();
    for i in 0..100_000 {
        let (status, len, headers) = round_trip(&mut c, i);
        assert!(status == 200 || status == 204);
        check += len + headers;
    }
    let during = allocs() - before;
    assert_eq!(during, 0, "{during} allocations in 100,000 round trips");
    assert!(check > 0);
    assert_eq!(c.responses(), 100_300);
}

#[test]
fn warm_pipelined_batches_do_not_allocate() {
    let mut c = HttpClient::new(peer(), "h", HttpConfig::default());
    let batch = |c: &mut HttpClient<Peer>| {
        for _ in 0..16 {
            c.send(&Request::get("/api/time")).unwrap();
        }
        let mut got = 0;
        while got < 16 {
            if let Some(r) = c.poll_response().unwrap() {
                assert!(r.status() == 200 || r.status() == 204);
                got += 1;
            }
        }
    };
    for _ in 0..20 {
        batch(&mut c);
    }
    let before = allocs();
    for _ in 0..5_000 {
        batch(&mut c);
    }
    assert_eq!(
        allocs() - before,
        0,
        "allocations in 80,000 pipelined round trips"
    );
}

#[test]
fn bodies_streamed_into_a_caller_buffer_do_not_allocate() {
    let mut c = HttpClient::new(peer(), "h", HttpConfig::default());
    let mut sink: Vec<u8> = Vec::with_capacity(8192);
    let mut total = 0u64;
    let mut one = |c: &mut HttpClient<Peer>, sink: &mut Vec<u8>| {
        sink.clear();
        c.send(&Request::get("/")).unwrap();
        let r = c.poll_response_to(sink).unwrap().expect("response");
        assert_eq!(r.body_len(), sink.len() as u64);
        total += r.body_len();
    };
    for _ in 0..30 {
        one(&mut c, &mut sink);
    }
    let before = allocs();
    for _ in 0..30_000 {
        one(&mut c, &mut sink);
    }
    assert_eq!(allocs() - before, 0);
    assert!(total > 0);
}
