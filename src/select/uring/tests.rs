use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::*;
use crate::stream::would_block;

/// A loopback echo server on its own thread; it closes the connection after `limit` bytes.
fn echo_server(limit: usize) -> (SocketAddr, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 65536];
        let mut total = 0;
        while total < limit {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).unwrap();
            total += n;
        }
        total
    });
    (addr, handle)
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

fn connect(sel: &mut UringSelector, addr: SocketAddr) -> UringStream {
    let mut s = UringStream::connect(sel.ring(), addr, &TcpOptions::default()).unwrap();
    sel.register(s.raw_fd(), Token::new(1, 1)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut ready = Vec::new();
    while !s.poll_connect().unwrap() {
        assert!(Instant::now() < deadline, "connect did not complete");
        sel.poll(Duration::from_millis(1), &mut ready).unwrap();
    }
    s
}

fn config(buffers: usize, buffer_size: u32) -> UringConfig {
    UringConfig {
        buffers,
        buffer_size,
        send_buffer: 16 * 1024,
        ..UringConfig::default()
    }
}

/// Sends `total` bytes and reads them back, letting `lag` elapse before reading so the echoed
/// bytes exhaust the provided buffers; returns the ring's counters.
fn echo_roundtrip(cfg: &UringConfig, total: usize, lag: Duration) -> UringCounters {
    let (addr, server) = echo_server(total);
    let mut sel = UringSelector::new(UringRing::new(cfg).unwrap());
    let mut s = connect(&mut sel, addr);
    let mut ready = Vec::new();
    let (mut sent, mut got) = (0usize, 0usize);
    let mut chunk = [0u8; 3000];
    let mut inbuf = [0u8; 5000];
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lagged = false;
    while got < total {
        assert!(
            Instant::now() < deadline,
            "sent {sent}, got {got} of {total}"
        );
        sel.poll(Duration::from_millis(1), &mut ready).unwrap();
        if sent < total {
            let n = chunk.len().min(total - sent);
            for (i, b) in chunk[..n].iter_mut().enumerate() {
                *b = pattern(sent + i);
            }
            match s.write(&chunk[..n]) {
                Ok(w) => sent += w,
                Err(e) if would_block(&e) => {}
                Err(e) => panic!("write: {e}"),
            }
            continue;
        }
        if !lagged {
            lagged = true;
            let until = Instant::now() + lag;
            while Instant::now() < until {
                sel.poll(Duration::from_millis(1), &mut ready).unwrap();
            }
        }
        while got < total {
            match s.read(&mut inbuf) {
                Ok(0) => panic!("end of stream after {got} of {total}"),
                Ok(n) => {
                    for (i, b) in inbuf[..n].iter().enumerate() {
                        assert_eq!(*b, pattern(got + i), "byte {}", got + i);
                    }
                    got += n;
                }
                Err(e) if would_block(&e) => break,
                Err(e) => panic!("read: {e}"),
            }
        }
    }
    // The server closes after echoing everything: end of stream, after the data.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no end of stream");
        sel.poll(Duration::from_millis(1), &mut ready).unwrap();
        match s.read(&mut inbuf) {
            Ok(0) => break,
            Ok(n) => panic!("{n} bytes past the end"),
            Err(e) if would_block(&e) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    assert_eq!(server.join().unwrap(), total);
    sel.ring().counters()
}

#[test]
fn multishot_receive_echoes_every_byte_in_order_and_ends_with_eof() {
    let c = echo_roundtrip(&config(64, 4096), 300_000, Duration::ZERO);
    assert_eq!(c.received_bytes, 300_000);
    assert!(c.sends > 0 && c.completions > 0, "{c:?}");
}

#[test]
fn exhausted_buffers_hold_bytes_in_the_socket_and_rearm() {
    // 4 × 1 KiB buffers against 200 KB echoed while the reader sleeps: the receive ends with
    // ENOBUFS and is armed again as reads hand buffers back, without losing a byte.
    let c = echo_roundtrip(&config(4, 1024), 200_000, Duration::from_millis(50));
    assert!(c.no_buffers > 0, "{c:?}");
    assert!(c.recv_armed > 1, "{c:?}");
    assert_eq!(c.received_bytes, 200_000);
}

/// A count of the kernel thread's wake-ups: in a parallel test run on two cores it measures the
/// other tests (1,594 syscalls once), so `scripts/test.sh` runs it on its own after the suite.
#[test]
#[ignore = "timing of a kernel thread: scripts/test.sh runs it alone"]
fn sqpoll_mode_makes_no_syscall_per_message() {
    let mut cfg = config(64, 4096);
    cfg.sqpoll = Some(SqPoll {
        cpu: None,
        idle_ms: 2000,
    });
    let (addr, server) = echo_server(64 * 2000);
    let mut sel = UringSelector::new(UringRing::new(&cfg).unwrap());
    let mut s = connect(&mut sel, addr);
    let mut ready = Vec::new();
    let before = sel.ring().counters().enters;
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + Duration::from_secs(20);
    for round in 0..2000u32 {
        let msg = [round as u8; 64];
        let mut w = 0;
        while w < msg.len() {
            match s.write(&msg[w..]) {
                Ok(n) => w += n,
                Err(e) if would_block(&e) => sel.poll(Duration::ZERO, &mut ready).unwrap(),
                Err(e) => panic!("write: {e}"),
            }
        }
        let mut r = 0;
        while r < 64 {
            assert!(Instant::now() < deadline, "round {round}");
            sel.poll(Duration::ZERO, &mut ready).unwrap();
            match s.read(&mut buf[r..]) {
                Ok(0) => panic!("end of stream"),
                Ok(n) => r += n,
                Err(e) if would_block(&e) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        assert!(buf.iter().all(|&b| b == round as u8));
    }
    let enters = sel.ring().counters().enters - before;
    drop(s);
    server.join().unwrap();
    // The kernel thread stays awake (idle 2 s): only its rare wake-ups cost a syscall (none on an
    // idle machine; a few hundred when the test shares two cores with a parallel test run).
    eprintln!("sqpoll: {enters} syscalls for 2000 round trips");
    assert!(enters < 500, "{enters} syscalls for 2000 round trips");
}

#[test]
fn foreign_descriptors_get_readiness_from_a_multishot_poll() {
    let (addr, server) = echo_server(5);
    let mut sel = UringSelector::new(UringRing::new(&config(8, 1024)).unwrap());
    let mut tcp = TcpStream::connect(addr, &TcpOptions::default()).unwrap();
    let token = Token::new(9, 4);
    sel.register(tcp.raw_fd(), token).unwrap();
    let mut ready = Vec::new();
    crate::stream::wait_connected(&mut tcp, Duration::from_secs(5)).unwrap();
    tcp.write_all(b"hello").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 16];
    loop {
        assert!(Instant::now() < deadline, "no readiness for the echo");
        sel.poll(Duration::from_millis(10), &mut ready).unwrap();
        if ready.contains(&token) {
            match tcp.read(&mut buf) {
                Ok(n) => {
                    assert_eq!(&buf[..n], b"hello");
                    break;
                }
                Err(e) if would_block(&e) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }
    sel.deregister(tcp.raw_fd()).unwrap();
    drop(tcp);
    server.join().unwrap();
    // After the deregistration nothing is reported for the token.
    sel.poll(Duration::from_millis(5), &mut ready).unwrap();
    assert!(!ready.contains(&token));
}

#[test]
fn bad_buffer_counts_are_refused() {
    let e = UringRing::new(&config(100, 1024)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

/// A loopback server that reads to end of stream, then answers with the byte count and closes.
fn counting_server() -> (SocketAddr, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 65536];
        let mut total = 0;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        s.write_all(format!("got {total}").as_bytes()).unwrap();
        total
    });
    (addr, handle)
}

#[test]
fn shutdown_write_waits_for_sends_in_flight_then_sends_fin_and_reads_on() {
    let (addr, server) = counting_server();
    let mut sel = UringSelector::new(UringRing::new(&config(64, 4096)).unwrap());
    let mut s = connect(&mut sel, addr);
    let mut ready = Vec::new();
    let total = 200_000;
    let chunk = [7u8; 3000];
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while sent < total {
        assert!(Instant::now() < deadline, "sent {sent} of {total}");
        match s.write(&chunk[..chunk.len().min(total - sent)]) {
            Ok(n) => sent += n,
            Err(e) if would_block(&e) => sel.poll(Duration::from_millis(1), &mut ready).unwrap(),
            Err(e) => panic!("write: {e}"),
        }
    }
    // Bytes are still in the ring's send buffer: the FIN must wait for them.
    let mut waited = 0;
    loop {
        assert!(Instant::now() < deadline, "shutdown did not complete");
        match s.shutdown_write() {
            Ok(()) => break,
            Err(e) if would_block(&e) => waited += 1,
            Err(e) => panic!("shutdown_write: {e}"),
        }
        sel.poll(Duration::from_millis(1), &mut ready).unwrap();
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        assert!(Instant::now() < deadline, "no reply: {reply:?}");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if would_block(&e) => sel.poll(Duration::from_millis(1), &mut ready).unwrap(),
            Err(e) => panic!("read: {e}"),
        }
    }
    assert_eq!(server.join().unwrap(), total);
    assert_eq!(
        reply,
        format!("got {total}").into_bytes(),
        "waited {waited}"
    );
}
