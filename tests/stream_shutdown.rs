//! `Stream::shutdown_write` on every kernel-socket stream type against real peers: the peer reads
//! every byte, then end of stream (and, over TLS, a close_notify before it), and answers; the client,
//! half-closed, still reads that answer to the end. Also `TcpStream::connect_host`.
//!
//! The TLS peer is OpenSSL's own server side (`SslAcceptor`), which reports whether the
//! close_notify arrived, separately from the FIN under it.

mod util;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hotwire::stream::record::{IntoRecorded, Replay};
use hotwire::stream::{
    read_timeout, wait_connected, would_block, Either, IntoBuffered, Stream, TcpOptions, TcpStream,
};

const T: Duration = Duration::from_secs(10);
/// More than a socket buffer takes at once on loopback, so some of it is still queued somewhere when
/// `shutdown_write` is called.
const PAYLOAD: usize = 3_000_000;

/// What the peer saw.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    bytes: usize,
    /// A TLS close_notify arrived before the end of stream (always `false` for plain TCP).
    close_notify: bool,
}

/// A plain TCP peer: reads to end of stream, then answers `got N` and closes.
fn tcp_peer() -> (SocketAddr, JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut buf = vec![0u8; 65536];
        let mut bytes = 0;
        loop {
            match s.read(&mut buf).expect("peer read (no FIN in time?)") {
                0 => break,
                n => bytes += n,
            }
        }
        s.write_all(format!("got {bytes}").as_bytes()).unwrap();
        Seen {
            bytes,
            close_notify: false,
        }
    });
    (addr, handle)
}

/// Writes `PAYLOAD` bytes, shuts down the write side (retrying on `WouldBlock`), then reads the
/// peer's answer to the end of stream. Returns the answer.
fn talk<S: Stream>(s: &mut S) -> String {
    talk_with(s, |_| {})
}

/// [`talk`], calling `after_shutdown` between the shutdown and the reads.
fn talk_with<S: Stream>(s: &mut S, after_shutdown: impl FnOnce(&mut S)) -> String {
    wait_connected(s, T).expect("connect");
    let chunk = vec![0x5au8; 64 * 1024];
    let mut sent = 0;
    let deadline = Instant::now() + T;
    while sent < PAYLOAD {
        match s.write(&chunk[..chunk.len().min(PAYLOAD - sent)]) {
            Ok(n) => sent += n,
            Err(e) if would_block(&e) => std::thread::sleep(Duration::from_micros(200)),
            Err(e) => panic!("write: {e}"),
        }
        assert!(Instant::now() < deadline, "write stalled at {sent}");
    }
    loop {
        match s.shutdown_write() {
            Ok(()) => break,
            Err(e) if would_block(&e) => std::thread::sleep(Duration::from_micros(200)),
            Err(e) => panic!("shutdown_write: {e}"),
        }
        assert!(Instant::now() < deadline, "shutdown_write never completed");
    }
    after_shutdown(s);
    let mut answer = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match read_timeout(s, &mut buf, T) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read after shutdown_write: {e} (answer so far {answer:?})"),
        }
    }
    String::from_utf8(answer).unwrap()
}

fn expected() -> String {
    format!("got {PAYLOAD}")
}

fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr, &TcpOptions::default()).unwrap()
}

#[test]
fn tcp_stream_sends_fin_and_still_reads_the_answer() {
    let (addr, peer) = tcp_peer();
    let mut s = connect(addr);
    let answer = talk_with(&mut s, |s| {
        let e = s.write(b"late").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
    });
    assert_eq!(answer, expected());
    assert_eq!(peer.join().unwrap().bytes, PAYLOAD);
    // Again after the peer has closed: still `Ok`.
    s.shutdown_write().unwrap();
    let e = s.write(b"late").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
}

#[test]
fn buffered_stream_writes_its_queue_before_the_fin() {
    let (addr, peer) = tcp_peer();
    // Small writes stay queued in the buffer: shutdown_write must send them first.
    let mut s = connect(addr).into_buffered(64 * 1024);
    wait_connected(&mut s, T).unwrap();
    s.write_all(b"queued").unwrap();
    assert_eq!(s.queued(), 6);
    assert_eq!(talk(&mut s), format!("got {}", PAYLOAD + 6));
    assert_eq!(peer.join().unwrap().bytes, PAYLOAD + 6);
}

#[test]
fn recorded_and_either_streams_pass_the_shutdown_down() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, peer) = tcp_peer();
    let path = dir.path().join("half-close.rec");
    let mut s = connect(addr).into_recorded(&path).unwrap();
    assert_eq!(talk(&mut s), expected());
    assert_eq!(peer.join().unwrap().bytes, PAYLOAD);
    s.flush_recording().unwrap();
    // The recording holds the answer read after the FIN, then the end of stream.
    let mut replay = Replay::open(&path).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match replay.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if would_block(&e) => {}
            Err(e) => panic!("replay: {e}"),
        }
    }
    assert_eq!(got, expected().into_bytes());
    // A replay takes the shutdown too, and refuses writes after it as a socket does.
    replay.shutdown_write().unwrap();
    assert_eq!(
        replay.write(b"x").unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );

    let (addr, peer) = tcp_peer();
    let mut s: Either<TcpStream, std::net::TcpStream> = Either::Left(connect(addr));
    assert_eq!(talk(&mut s), expected());
    assert_eq!(peer.join().unwrap().bytes, PAYLOAD);

    // std's blocking socket implements it too.
    let (addr, peer) = tcp_peer();
    let mut s: Either<TcpStream, std::net::TcpStream> =
        Either::Right(std::net::TcpStream::connect(addr).unwrap());
    assert_eq!(talk(&mut s), expected());
    assert_eq!(peer.join().unwrap().bytes, PAYLOAD);
}

#[test]
fn shutdown_write_while_connecting_is_would_block_not_an_error() {
    // A listener whose backlog is full leaves the connect pending.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    let pending = loop {
        let mut s = connect(addr);
        match wait_connected(&mut s, Duration::from_millis(200)) {
            Ok(()) => fillers.push(s),
            Err(_) => break s,
        }
        assert!(fillers.len() < 64, "backlog never filled");
    };
    let mut pending = pending;
    let e = pending.shutdown_write().unwrap_err();
    assert!(would_block(&e), "{e}");
}

#[test]
fn connect_host_resolves_and_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // "localhost" may resolve to ::1 first, where nothing listens: the next address is tried.
    let mut s = TcpStream::connect_host("localhost", port, &TcpOptions::default()).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    assert_eq!(s.peer_addr(), format!("127.0.0.1:{port}").parse().unwrap());
    // Connected on return: a write goes out at once.
    s.write_all(b"hi").unwrap();
    let mut buf = [0u8; 2];
    peer.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");

    let s = TcpStream::connect_host("127.0.0.1", port, &TcpOptions::default()).unwrap();
    assert!(s.peer_addr().ip().is_loopback());

    let e =
        TcpStream::connect_host("no-such-host.invalid", port, &TcpOptions::default()).unwrap_err();
    assert!(e.to_string().contains("no-such-host.invalid"), "{e}");

    // Nothing listens: the error names the addresses tried.
    drop(listener);
    let e = TcpStream::connect_host("127.0.0.1", port, &TcpOptions::default()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[cfg(all(feature = "tls-rustls", feature = "tls-openssl"))]
mod tls {
    use super::*;
    use hotwire::stream::tls::{TlsBackend, TlsConfig};
    use hotwire::stream::IntoTls;
    use openssl::ssl::{ShutdownState, SslAcceptor, SslFiletype, SslMethod};
    use util::TestPki;

    /// An OpenSSL server: reads to the end (noting whether a close_notify ended it, and checking
    /// that a FIN follows), then answers `got N`, sends its own close_notify and closes.
    fn tls_peer(pki: &TestPki) -> (SocketAddr, JoinHandle<Seen>) {
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
        b.set_certificate_chain_file(&pki.server_cert).unwrap();
        b.set_private_key_file(&pki.server_key, SslFiletype::PEM)
            .unwrap();
        let acceptor = b.build();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(T)).unwrap();
            let mut ssl = acceptor.accept(tcp).expect("TLS accept");
            let mut buf = vec![0u8; 65536];
            let mut bytes = 0;
            loop {
                match ssl.read(&mut buf).expect("peer read") {
                    0 => break,
                    n => bytes += n,
                }
            }
            let close_notify = ssl.get_shutdown().contains(ShutdownState::RECEIVED);
            // Under the alert, the TCP stream ends too.
            let mut one = [0u8; 1];
            assert_eq!(
                ssl.get_mut().read(&mut one).expect("raw read"),
                0,
                "no FIN after close_notify"
            );
            ssl.write_all(format!("got {bytes}").as_bytes()).unwrap();
            let _ = ssl.shutdown();
            Seen {
                bytes,
                close_notify,
            }
        });
        (addr, handle)
    }

    fn config(pki: &TestPki, backend: TlsBackend) -> TlsConfig {
        TlsConfig {
            backend,
            ..TlsConfig::with_ca_file(&pki.ca_pem)
        }
    }

    fn full_close() -> Seen {
        Seen {
            bytes: PAYLOAD,
            close_notify: true,
        }
    }

    #[test]
    fn both_tls_backends_send_close_notify_then_fin_and_read_on() {
        let pki = TestPki::new();
        for backend in [TlsBackend::Rustls, TlsBackend::Openssl] {
            let connector = config(&pki, backend).build().unwrap();
            let (addr, peer) = tls_peer(&pki);
            let mut s = connect(addr).into_tls(&connector, "localhost").unwrap();
            assert_eq!(talk(&mut s), expected(), "{backend:?}");
            assert_eq!(peer.join().unwrap(), full_close(), "{backend:?}");
            s.shutdown_write()
                .unwrap_or_else(|e| panic!("{backend:?}: a second shutdown_write: {e}"));

            // The same over a write buffer and a recording.
            let dir = tempfile::tempdir().unwrap();
            let (addr, peer) = tls_peer(&pki);
            let mut s = connect(addr)
                .into_tls(&connector, "localhost")
                .unwrap()
                .into_recorded(dir.path().join("tls.rec"))
                .unwrap()
                .into_buffered(16 * 1024);
            assert_eq!(talk(&mut s), expected(), "{backend:?} buffered, recorded");
            assert_eq!(peer.join().unwrap(), full_close(), "{backend:?}");
        }
    }

    #[cfg(feature = "ktls")]
    #[test]
    fn ktls_stream_sends_close_notify_then_fin() {
        use hotwire::stream::ktls::{KtlsMode, KtlsStream};
        let pki = TestPki::new();
        let connector = config(&pki, TlsBackend::Openssl).build().unwrap();
        let (addr, peer) = tls_peer(&pki);
        let mut s = KtlsStream::new(&connector, "localhost", connect(addr), KtlsMode::Prefer)
            .expect("kTLS stream (Prefer falls back to user space)");
        assert_eq!(talk(&mut s), expected());
        assert_eq!(peer.join().unwrap(), full_close());
    }

    #[test]
    fn maybe_tls_passes_the_shutdown_to_its_variant() {
        let pki = TestPki::new();
        let connector = config(&pki, TlsBackend::Rustls).build().unwrap();
        let (addr, peer) = tls_peer(&pki);
        let mut s =
            hotwire::stream::MaybeTls::new(connect(addr), Some(&connector), "localhost").unwrap();
        assert_eq!(talk(&mut s), expected());
        assert_eq!(peer.join().unwrap(), full_close());
    }
}
