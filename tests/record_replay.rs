//! Recording real sessions and replaying them: plain TCP against an echo thread, and TLS against
//! `openssl s_server`, recorded above TLS (plaintext) and below it (ciphertext) in the same session.

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use hotwire::stream::record::{
    FlushPolicy, RecordError, RecordKind, RecordOptions, RecordReader, Tail,
};
use hotwire::stream::record::{IntoRecorded, Replay};
use hotwire::stream::{wait_connected, wait_fd, would_block, Stream};
use hotwire::stream::{TcpOptions, TcpStream};

/// One read result: bytes, or `None` for `WouldBlock`. End of stream is `Some(vec![])`.
type ReadLog = Vec<Option<Vec<u8>>>;

/// Drops consecutive `WouldBlock`s (the recorder keeps one per run) and everything after the first
/// end of stream.
fn collapse(log: &ReadLog) -> ReadLog {
    let mut out: ReadLog = Vec::new();
    for r in log {
        if r.is_none() && out.last() == Some(&None) {
            continue;
        }
        let eof = r.as_deref() == Some(&[][..]);
        out.push(r.clone());
        if eof {
            break;
        }
    }
    out
}

/// Reads `stream` with a buffer of `size` until end of stream or `deadline`, logging every result.
fn read_log<S: Stream>(stream: &mut S, size: usize, until: impl Fn(&[u8]) -> bool) -> ReadLog {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; size];
    let mut log = ReadLog::new();
    let mut all = Vec::new();
    loop {
        match stream.read(&mut buf) {
            Ok(n) => {
                log.push(Some(buf[..n].to_vec()));
                all.extend_from_slice(&buf[..n]);
                if n == 0 || until(&all) {
                    return log;
                }
            }
            Err(e) if would_block(&e) => {
                log.push(None);
                assert!(Instant::now() < deadline, "no reply in time; got {all:?}");
                wait_fd(stream.raw_fd(), Duration::from_millis(5));
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// Replays `path` with a buffer of `size` to its end.
fn replay_log(path: &Path, size: usize) -> ReadLog {
    let mut replay = Replay::open(path).unwrap();
    let mut buf = vec![0u8; size];
    let mut log = ReadLog::new();
    loop {
        assert!(replay.read_pending());
        match replay.read(&mut buf) {
            Ok(n) => {
                log.push(Some(buf[..n].to_vec()));
                if n == 0 {
                    return log;
                }
            }
            Err(e) if would_block(&e) => log.push(None),
            Err(e) => panic!("replay failed: {e}"),
        }
    }
}

/// Kinds and payloads of the records in `path`, and how the file ended.
fn records(path: &Path) -> (Vec<(RecordKind, Vec<u8>)>, Tail) {
    let file = std::fs::File::open(path).unwrap();
    let mut r = RecordReader::new(io::BufReader::new(file)).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        out.push((rec.kind, rec.payload.to_vec()));
    }
    (out, r.tail().unwrap())
}

fn concat(recs: &[(RecordKind, Vec<u8>)], kind: RecordKind) -> Vec<u8> {
    recs.iter()
        .filter(|r| r.0 == kind)
        .flat_map(|r| r.1.iter().copied())
        .collect()
}

/// An echo peer that answers in two writes per message (so reads see several boundaries), then
/// closes after `messages` messages.
fn echo_server(messages: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut reader = io::BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        for _ in 0..messages {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let (a, b) = line.as_bytes().split_at(line.len() / 2);
            w.write_all(a).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            w.write_all(b).unwrap();
        }
    });
    (addr, handle)
}

#[test]
fn tcp_session_replays_with_the_same_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tcp.hwr");
    let (addr, server) = echo_server(3);
    let tcp = TcpStream::connect(addr, &TcpOptions::default()).unwrap();
    let options = RecordOptions {
        label: Some("echo, tcp".into()),
        flush: FlushPolicy::Buffered(256),
        ..RecordOptions::default()
    };
    let mut s = tcp.into_recorded_with(&path, options).unwrap();
    wait_connected(&mut s, Duration::from_secs(5)).unwrap();
    let mut live = ReadLog::new();
    for msg in [
        "first message\n",
        "second, longer message with more bytes\n",
        "3\n",
    ] {
        s.write_all(msg.as_bytes()).unwrap();
        live.extend(read_log(&mut s, 4096, |got| got.ends_with(b"\n")));
    }
    live.extend(read_log(&mut s, 4096, |_| false)); // the server's close
    assert_eq!(live.last(), Some(&Some(vec![])));
    server.join().unwrap();
    drop(s);

    let (recs, tail) = records(&path);
    assert_eq!(tail, Tail::Complete);
    assert_eq!(
        concat(&recs, RecordKind::Outbound),
        b"first message\nsecond, longer message with more bytes\n3\n"
    );
    assert_eq!(recs.last().unwrap().0, RecordKind::Eof);
    let live = collapse(&live);
    assert!(
        live.iter()
            .filter(|r| r.as_ref().is_some_and(|b| !b.is_empty()))
            .count()
            >= 3,
        "every echo was read: {live:?}"
    );
    assert_eq!(replay_log(&path, 4096), live);

    // A smaller buffer splits records but never merges two.
    let small = replay_log(&path, 5);
    let mut rejoined = ReadLog::new();
    let mut pending = Vec::new();
    let inbound: Vec<_> = recs
        .iter()
        .filter(|r| r.0 == RecordKind::Inbound)
        .map(|r| r.1.len())
        .collect();
    let mut sizes = inbound.iter();
    let mut want = 0;
    for r in small {
        match r {
            Some(b) if !b.is_empty() => {
                if pending.is_empty() {
                    want = *sizes.next().unwrap();
                }
                assert!(b.len() <= 5);
                pending.extend_from_slice(&b);
                assert!(pending.len() <= want, "a read crossed a record boundary");
                if pending.len() == want {
                    rejoined.push(Some(std::mem::take(&mut pending)));
                }
            }
            other => rejoined.push(other),
        }
    }
    assert_eq!(rejoined, live);
}

#[test]
fn truncated_recording_replays_up_to_the_last_whole_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.hwr");
    let (addr, server) = echo_server(2);
    let tcp = TcpStream::connect(addr, &TcpOptions::default()).unwrap();
    let mut s = tcp
        .into_recorded_with(
            &path,
            RecordOptions {
                flush: FlushPolicy::EveryRecord,
                record_gaps: false,
                ..RecordOptions::default()
            },
        )
        .unwrap();
    wait_connected(&mut s, Duration::from_secs(5)).unwrap();
    let mut live = ReadLog::new();
    for msg in ["alpha beta gamma\n", "delta epsilon\n"] {
        s.write_all(msg.as_bytes()).unwrap();
        live.extend(read_log(&mut s, 4096, |got| got.ends_with(b"\n")));
    }
    server.join().unwrap();
    drop(s);
    let live: ReadLog = live.into_iter().flatten().map(Some).collect();

    // Cut the file in the middle of the last record, as a crash during its write would.
    let len = std::fs::metadata(&path).unwrap().len();
    let last = live.last().unwrap().as_ref().unwrap().len() as u64;
    let cut = len - last / 2 - 1;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut)
        .unwrap();

    let (recs, tail) = records(&path);
    let Tail::Truncated {
        offset,
        len: partial,
    } = tail
    else {
        panic!("expected a truncated tail, got {tail:?}");
    };
    assert_eq!(offset + partial as u64, cut);
    assert_eq!(recs.last().unwrap().0, RecordKind::Inbound);
    let mut replay = Replay::open(&path).unwrap();
    assert_eq!(replay.tail(), tail);
    let mut replayed = ReadLog::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = replay.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        replayed.push(Some(buf[..n].to_vec()));
    }
    assert_eq!(replayed, live[..live.len() - 1]);

    // Corrupting a whole record is an error, not a truncation.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offset as usize - 1] ^= 0xFF;
    let err = Replay::from_bytes(bytes).unwrap_err();
    assert!(matches!(
        err.get_ref().and_then(|e| e.downcast_ref::<RecordError>()),
        Some(RecordError::RecordChecksum { .. })
    ));
}

#[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
mod tls {
    use super::*;
    use hotwire::stream::tls::{TlsBackend, TlsConfig};
    use hotwire::stream::IntoTls;
    use std::cell::RefCell;
    use std::os::fd::RawFd;
    use std::process::{Child, Command, Stdio};
    use std::rc::Rc;

    /// A pass-through stream that logs every read result, to compare with what was recorded.
    struct Tap<S> {
        inner: S,
        log: Rc<RefCell<ReadLog>>,
    }

    impl<S: Stream> Read for Tap<S> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let r = self.inner.read(buf);
            match &r {
                Ok(n) => self.log.borrow_mut().push(Some(buf[..*n].to_vec())),
                Err(e) if would_block(e) => self.log.borrow_mut().push(None),
                Err(_) => {}
            }
            r
        }
    }

    impl<S: Stream> Write for Tap<S> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.inner.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }

    impl<S: Stream> Stream for Tap<S> {
        fn poll_connect(&mut self) -> io::Result<bool> {
            self.inner.poll_connect()
        }
        fn read_pending(&self) -> bool {
            self.inner.read_pending()
        }
        fn raw_fd(&self) -> Option<RawFd> {
            self.inner.raw_fd()
        }
    }

    /// Kills and reaps the child on drop.
    struct ChildGuard(Child);
    impl Drop for ChildGuard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A test CA and a `localhost` / `127.0.0.1` server certificate it signed, as PEM files.
    fn certificates(dir: &Path) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "hotwire test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &*ca).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    }

    /// Starts `openssl s_server -rev` on a free loopback port; `None` when openssl is not installed
    /// (a failure when `HOTWIRE_REQUIRE_PEERS=1`).
    fn s_server(dir: &Path) -> Option<(SocketAddr, ChildGuard)> {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-rev"])
            .arg("-cert")
            .arg(dir.join("cert.pem"))
            .arg("-key")
            .arg(dir.join("key.pem"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => ChildGuard(c),
            Err(e) => {
                assert!(
                    std::env::var_os("HOTWIRE_REQUIRE_PEERS").is_none(),
                    "openssl s_server is required: {e}"
                );
                eprintln!("note: openssl not available ({e}); TLS recording test skipped");
                return None;
            }
        };
        // s_server prints ACCEPT once it listens.
        let out = child.0.stdout.take().unwrap();
        let mut lines = io::BufReader::new(out).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("ACCEPT") => break,
                Some(Ok(_)) => {}
                _ => panic!("openssl s_server did not start"),
            }
        }
        // Keep the pipe drained so s_server never blocks on its logging.
        std::thread::spawn(move || for _ in lines {});
        Some((format!("127.0.0.1:{port}").parse().unwrap(), child))
    }

    fn session(backend: TlsBackend, dir: &Path, addr: SocketAddr) {
        let tag = format!("{backend:?}").to_lowercase();
        let below = dir.join(format!("{tag}-ciphertext.hwr"));
        let above = dir.join(format!("{tag}-plaintext.hwr"));
        let connector = TlsConfig {
            backend,
            ..TlsConfig::with_ca_file(dir.join("ca.pem"))
        }
        .build()
        .unwrap();
        let tap = Rc::new(RefCell::new(ReadLog::new()));
        let tcp = Tap {
            inner: TcpStream::connect(addr, &TcpOptions::default()).unwrap(),
            log: tap.clone(),
        };
        let label = |s: &str| RecordOptions {
            label: Some(s.into()),
            ..RecordOptions::default()
        };
        let mut s = tcp
            .into_recorded_with(&below, label("below TLS"))
            .unwrap()
            .into_tls(&connector, "localhost")
            .unwrap()
            .into_recorded_with(&above, label("above TLS"))
            .unwrap();
        wait_connected(&mut s, Duration::from_secs(10)).unwrap();

        let mut live = ReadLog::new();
        let lines = ["hello, recorded world\n", "a second line, reversed too\n"];
        for line in lines {
            s.write_all(line.as_bytes()).unwrap();
            s.flush().unwrap();
            live.extend(read_log(&mut s, 4096, |got| got.ends_with(b"\n")));
        }
        drop(s);

        // Above TLS: the plaintext, with the boundaries the application saw.
        let (recs, tail) = records(&above);
        assert_eq!(tail, Tail::Complete);
        assert_eq!(
            concat(&recs, RecordKind::Outbound),
            lines.concat().as_bytes()
        );
        let want: Vec<u8> = lines
            .iter()
            .flat_map(|l| {
                let mut r: Vec<u8> = l.trim_end().bytes().rev().collect();
                r.push(b'\n');
                r
            })
            .collect();
        assert_eq!(concat(&recs, RecordKind::Inbound), want);
        // The session was dropped without an end of stream: the replay ends with the file.
        let mut live = collapse(&live);
        live.push(Some(vec![]));
        assert_eq!(replay_log(&above, 4096), live);
        // A strict replay accepts exactly the bytes the client sent.
        let mut strict = Replay::open(&above).unwrap().strict(true);
        for line in lines {
            strict.write_all(line.as_bytes()).unwrap();
        }
        assert!(strict.outbound_complete());

        // Below TLS: exactly the ciphertext the TLS layer read, with the same boundaries.
        let mut tapped = collapse(&tap.borrow());
        tapped.push(Some(vec![]));
        assert_eq!(replay_log(&below, 1 << 16), tapped);
        let (recs, tail) = records(&below);
        assert_eq!(tail, Tail::Complete);
        let inbound = concat(&recs, RecordKind::Inbound);
        let outbound = concat(&recs, RecordKind::Outbound);
        assert_eq!(
            outbound[0], 0x16,
            "the client speaks first, with a handshake record"
        );
        for (name, bytes) in [("inbound", &inbound), ("outbound", &outbound)] {
            // Whole TLS records back to back: nothing lost, nothing added, nothing in clear.
            let mut at = 0;
            while at < bytes.len() {
                assert!(at + 5 <= bytes.len(), "{name}: partial TLS record header");
                assert!(
                    (20..=23).contains(&bytes[at]),
                    "{name}: content type {}",
                    bytes[at]
                );
                assert_eq!(bytes[at + 1], 3, "{name}: record version");
                at += 5 + u16::from_be_bytes([bytes[at + 3], bytes[at + 4]]) as usize;
            }
            assert_eq!(at, bytes.len(), "{name}: ends inside a TLS record");
            assert!(!bytes.windows(5).any(|w| w == b"hello" || w == b"dlrow"));
        }
    }

    #[test]
    fn tls_session_recorded_above_and_below() {
        let dir = tempfile::tempdir().unwrap();
        certificates(dir.path());
        let Some((addr, _server)) = s_server(dir.path()) else {
            return;
        };
        #[cfg(feature = "tls-rustls")]
        session(TlsBackend::Rustls, dir.path(), addr);
        #[cfg(feature = "tls-openssl")]
        session(TlsBackend::Openssl, dir.path(), addr);
    }
}
