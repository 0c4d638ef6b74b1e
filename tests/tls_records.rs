//! The rustls backend's own record layer (`stream::tls::records`) against `openssl s_server`: every
//! cipher suite rustls negotiates here, TLS 1.2 and 1.3, byte-exact both ways with small and large
//! data; KeyUpdate from the server (with and without update_requested, ours answering each request
//! as s_server's message trace shows) while data flows;
//! close_notify both ways, and a close without it reported as truncation; a TLS 1.2 renegotiation request; corrupted and oversized records
//! (through a byte-flipping TCP proxy) surfacing as typed errors.
#![cfg(all(feature = "tls-rustls", feature = "tls-openssl"))]

mod util;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream as StdTcpStream};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotwire::stream::tls::{tls_error, TlsBackend, TlsConfig, TlsError, TlsRecordError, TlsStream};
use hotwire::stream::{read_timeout, wait_connected, write_all_timeout, IntoTls, Stream};
use hotwire::stream::{TcpOptions, TcpStream};
use util::{ChildGuard, TestPki};

const T: Duration = Duration::from_secs(10);

fn have_openssl() -> bool {
    util::require_peer("openssl", &util::system_bin("openssl"))
}

fn connect(port: u16, backend: TlsBackend, pki: &TestPki) -> TlsStream<TcpStream> {
    let config = TlsConfig {
        backend,
        ..TlsConfig::with_ca_file(&pki.ca_pem)
    };
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = TcpStream::connect(addr, &TcpOptions::default())
        .unwrap()
        .into_tls(&config.build().unwrap(), "localhost")
        .unwrap();
    wait_connected(&mut s, T).unwrap_or_else(|e| panic!("{backend:?} handshake: {e}"));
    s
}

/// Reads exactly `n` bytes.
fn read_exact<S: Stream>(s: &mut S, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    let mut at = 0;
    while at < n {
        let k = read_timeout(s, &mut got[at..], T).expect("read");
        assert!(k > 0, "peer closed after {at} of {n} bytes");
        at += k;
    }
    got
}

/// Lines of `len - 1` pseudo-random printable bytes plus `\n`, `count` of them.
fn lines(len: usize, count: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    let mut out = Vec::with_capacity(len * count);
    for _ in 0..count {
        for _ in 0..len - 1 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            out.push(b'!' + (x % 90) as u8);
        }
        out.push(b'\n');
    }
    out
}

/// What `s_server -rev` answers to `data`: every line reversed.
fn reversed_lines(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for line in data.split_inclusive(|&b| b == b'\n') {
        let body = &line[..line.len() - 1];
        out.extend(body.iter().rev());
        out.push(b'\n');
    }
    out
}

/// Sends `data` in chunks of whole lines and checks the reversed answer byte for byte.
fn echo_checked<S: Stream>(s: &mut S, data: &[u8], chunk_lines: usize, what: &str) {
    let line_len = data.iter().position(|&b| b == b'\n').unwrap() + 1;
    for chunk in data.chunks(line_len * chunk_lines) {
        write_all_timeout(s, chunk, T).unwrap_or_else(|e| panic!("{what}: write: {e}"));
        let got = read_exact(s, chunk.len());
        assert!(got == reversed_lines(chunk), "{what}: answer differs");
    }
}

#[test]
fn every_suite_echoes_small_and_large_data_byte_exact() {
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    // (version flag, suite list flag, OpenSSL's name, certificate, rustls' name)
    let ecdsa = (&pki.server_cert, &pki.server_key);
    let rsa = (&pki.rsa_cert, &pki.rsa_key);
    let suites = [
        (
            "-tls1_3",
            "-ciphersuites",
            "TLS_AES_128_GCM_SHA256",
            ecdsa,
            "TLS13_AES_128_GCM_SHA256",
        ),
        (
            "-tls1_3",
            "-ciphersuites",
            "TLS_AES_256_GCM_SHA384",
            ecdsa,
            "TLS13_AES_256_GCM_SHA384",
        ),
        (
            "-tls1_3",
            "-ciphersuites",
            "TLS_CHACHA20_POLY1305_SHA256",
            ecdsa,
            "TLS13_CHACHA20_POLY1305_SHA256",
        ),
        (
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            ecdsa,
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ),
        (
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            ecdsa,
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ),
        (
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            ecdsa,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
        (
            "-tls1_2",
            "-cipher",
            "ECDHE-RSA-AES128-GCM-SHA256",
            rsa,
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ),
        (
            "-tls1_2",
            "-cipher",
            "ECDHE-RSA-AES256-GCM-SHA384",
            rsa,
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        ),
        (
            "-tls1_2",
            "-cipher",
            "ECDHE-RSA-CHACHA20-POLY1305",
            rsa,
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
    ];
    let small = lines(2, 300, 1);
    let large = lines(8_000, 128, 2);
    for (version, flag, suite, (cert, key), rustls_name) in suites {
        let (_server, port) =
            util::s_server(cert, key, util::TlsVersion::Any, 1, &[version, flag, suite]);
        let mut s = connect(port, TlsBackend::Rustls, &pki);
        let TlsStream::Rustls(r) = &s else {
            unreachable!("a rustls connector makes rustls streams")
        };
        let negotiated = format!("{:?}", r.cipher_suite().expect("suite").suite());
        assert_eq!(negotiated, rustls_name, "asked s_server for {suite}");
        echo_checked(&mut s, &small, 300, &format!("{suite} small"));
        echo_checked(&mut s, &large, 8, &format!("{suite} large"));
    }
}

/// `openssl s_server` without `-rev`: prints what the client sends on its stdout (collected here)
/// and sends what is written to its stdin, which also takes its commands (`k`, `K`, `r`, `Q`).
struct Interactive {
    _guard: ChildGuard,
    port: u16,
    stdin: ChildStdin,
    stdout: Arc<Mutex<Vec<u8>>>,
}

impl Interactive {
    fn start(pki: &TestPki, extra: &[&str]) -> Interactive {
        let port = util::free_port();
        let mut cmd = Command::new(util::system_bin("openssl"));
        cmd.args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
            .arg("-cert")
            .arg(&pki.server_cert)
            .arg("-key")
            .arg(&pki.server_key)
            .args(["-naccept", "1"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut guard = ChildGuard::spawn(&mut cmd);
        let stdin = guard.child().stdin.take().unwrap();
        let mut stdout = guard.child().stdout.take().unwrap();
        let stderr = guard.child().stderr.take().unwrap();
        let collected = Arc::new(Mutex::new(Vec::new()));
        let sink = collected.clone();
        // Its stderr (where it reports what its commands did) joins the collection, and the
        // test's own output, shown on failure.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("s_server: {line}");
                let mut sink = sink.lock().unwrap();
                sink.extend_from_slice(line.as_bytes());
                sink.push(b'\n');
            }
        });
        let sink = collected.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let server = Interactive {
            _guard: guard,
            port,
            stdin,
            stdout: collected,
        };
        server.wait_for("ACCEPT");
        server
    }

    fn command(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn printed(&self, what: &str) -> bool {
        self.count(what) > 0
    }

    /// How many times `what` appears in what it printed.
    fn count(&self, what: &str) -> usize {
        let out = self.stdout.lock().unwrap();
        out.windows(what.len())
            .filter(|w| *w == what.as_bytes())
            .count()
    }

    fn wait_for(&self, what: &str) {
        let deadline = Instant::now() + T;
        while !self.printed(what) {
            assert!(Instant::now() < deadline, "s_server never printed {what:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn key_updates_from_the_server_mid_stream_with_and_without_request() {
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    // `-msg` prints every message it receives, our KeyUpdates with their bytes among them.
    let mut server = Interactive::start(&pki, &["-tls1_3", "-msg"]);
    let mut s = connect(server.port, TlsBackend::Rustls, &pki);
    let bulk = lines(1_000, 64, 3);
    let mut requested = 0;
    // A KeyUpdate is only sent once the server has the client's Finished: one line each way first.
    write_all_timeout(&mut s, b"client ready\n", T).unwrap();
    server.wait_for("client ready\n");
    server.command("server ready\n");
    assert_eq!(read_exact(&mut s, 13), b"server ready\n");
    for round in 0..6 {
        // `k`: the server changes its sending key; `K`: it also asks us to change ours.
        server.command(if round % 2 == 0 { "k\n" } else { "K\n" });
        requested += round % 2;
        // s_server drops whatever else came in the same read of its stdin as a command, and its
        // report of the command sits in a block-buffered pipe: give it time to read the command
        // alone.
        std::thread::sleep(Duration::from_millis(300));
        // Data from the server under its new key...
        let line = format!("from server, round {round}\n");
        server.command(&line);
        let got = read_exact(&mut s, line.len());
        assert_eq!(got, line.as_bytes(), "round {round}");
        // ...and from us, after our own KeyUpdate when it was requested: s_server prints it only
        // if it decrypts it.
        write_all_timeout(&mut s, &bulk, T).unwrap();
        let marker = format!("client round {round} done\n");
        write_all_timeout(&mut s, marker.as_bytes(), T).unwrap();
        server.wait_for(&marker);
        // Our KeyUpdate (update_not_requested: 18 00 00 01 00) answered each `K`, and only those:
        // OpenSSL does not wait for it, so only its trace tells.
        assert_eq!(
            server.count("<<< TLS 1.3, Handshake [length 0005], KeyUpdate"),
            requested,
            "round {round}: our KeyUpdates as s_server received them"
        );
    }
    assert!(!server.printed("ERROR"), "s_server reported an error");
    // `Q` closes the TCP connection without a close_notify (OpenSSL 3.0): a truncation, which
    // must not pass for an orderly end of stream.
    server.command("Q\n");
    let mut buf = [0u8; 64];
    let err = read_timeout(&mut s, &mut buf, T).expect_err("a truncated stream is an error");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
}

#[test]
fn our_close_notify_is_an_orderly_close_for_the_server() {
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    for version in ["-tls1_2", "-tls1_3"] {
        let server = Interactive::start(&pki, &[version]);
        let mut s = connect(server.port, TlsBackend::Rustls, &pki);
        write_all_timeout(&mut s, b"last words\n", T).unwrap();
        let deadline = Instant::now() + T;
        loop {
            match s.shutdown_write() {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{version}: shutdown_write: {e}"),
            }
        }
        server.wait_for("last words\n");
        // s_server prints DONE on close_notify, ERROR on an unclean end.
        server.wait_for("DONE");
        assert!(!server.printed("ERROR"), "{version}: s_server saw an error");
        assert!(
            s.write(b"more").is_err(),
            "{version}: a write after shutdown_write must fail"
        );
        // s_server -rev answers our close_notify with its own: an orderly end of stream for us.
        let (_rev, port) = util::s_server(
            &pki.server_cert,
            &pki.server_key,
            util::TlsVersion::Any,
            1,
            &[version],
        );
        let mut s = connect(port, TlsBackend::Rustls, &pki);
        echo_checked(&mut s, b"bye\n", 1, "before close");
        while let Err(e) = s.shutdown_write() {
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{version}: {e}");
            assert!(
                Instant::now() < deadline + T,
                "{version}: shutdown_write never completed"
            );
        }
        let mut buf = [0u8; 16];
        assert_eq!(
            read_timeout(&mut s, &mut buf, T).expect("the server's close_notify"),
            0,
            "{version}"
        );
    }
}

#[test]
fn a_tls12_renegotiation_request_is_refused_without_a_panic() {
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    let mut server = Interactive::start(&pki, &["-tls1_2"]);
    let mut s = connect(server.port, TlsBackend::Rustls, &pki);
    server.command("before\n");
    assert_eq!(read_exact(&mut s, 7), b"before\n");
    // `r`: a HelloRequest. We answer no_renegotiation (a warning); OpenSSL ends the session with a
    // fatal handshake_failure alert, which surfaces as a typed error.
    server.command("r\n");
    let mut buf = [0u8; 64];
    let outcome = read_timeout(&mut s, &mut buf, T);
    match outcome {
        Err(e) => {
            let Some(TlsError::Record(TlsRecordError::Alert(desc))) = tls_error(&e) else {
                panic!("expected the peer's alert, got {e:?}");
            };
            assert_eq!(*desc, 40, "handshake_failure");
        }
        Ok(n) => panic!("expected an alert, read {n} bytes"),
    }
}

/// What the proxy does to the next bytes from the server, once told.
const PASS: u8 = 0;
const FLIP_LAST_BYTE: u8 = 1;
const OVERSIZED_HEADER: u8 = 2;

/// A TCP proxy for one connection to `upstream`; `mode` acts on the server-to-client direction.
fn proxy(upstream: u16, mode: Arc<AtomicU8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (client, _) = listener.accept().unwrap();
        let server = StdTcpStream::connect(("127.0.0.1", upstream)).unwrap();
        let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = io::copy(&mut c_in, &mut s_out);
        });
        let (mut s_in, mut c_out) = (server, client);
        let mut buf = [0u8; 65536];
        while let Ok(n) = s_in.read(&mut buf) {
            if n == 0 {
                break;
            }
            match mode.swap(PASS, Ordering::SeqCst) {
                FLIP_LAST_BYTE => buf[n - 1] ^= 0x01,
                OVERSIZED_HEADER => {
                    let _ = c_out.write_all(&[23, 3, 3, 0x48, 0x01]);
                    return;
                }
                _ => {}
            }
            if c_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    port
}

#[test]
fn corrupted_and_oversized_records_are_typed_errors() {
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    let cases = [
        ("-tls1_3", FLIP_LAST_BYTE, TlsRecordError::BadRecordMac),
        ("-tls1_2", FLIP_LAST_BYTE, TlsRecordError::BadRecordMac),
        ("-tls1_3", OVERSIZED_HEADER, TlsRecordError::RecordOverflow),
        ("-tls1_2", OVERSIZED_HEADER, TlsRecordError::RecordOverflow),
    ];
    for (version, fault, want) in cases {
        for backend in [TlsBackend::Rustls, TlsBackend::Openssl] {
            let (_server, port) = util::s_server(
                &pki.server_cert,
                &pki.server_key,
                util::TlsVersion::Any,
                1,
                &[version],
            );
            let mode = Arc::new(AtomicU8::new(PASS));
            let mut s = connect(proxy(port, mode.clone()), backend, &pki);
            echo_checked(&mut s, &lines(20, 4, 4), 4, "before the fault");
            mode.store(fault, Ordering::SeqCst);
            write_all_timeout(&mut s, b"abc\n", T).unwrap();
            let mut buf = [0u8; 64];
            let err = read_timeout(&mut s, &mut buf, T)
                .expect_err("a damaged record must not be accepted");
            let what = format!("{version} {fault} {backend:?}: {err}");
            // For OpenSSL, its own error, whatever its form: only that it is one.
            if backend == TlsBackend::Rustls {
                match tls_error(&err) {
                    Some(TlsError::Record(got)) => assert_eq!(*got, want, "{what}"),
                    other => panic!("{what}: not a record error: {other:?}"),
                }
                // The session stays failed.
                assert!(read_timeout(&mut s, &mut buf, T).is_err(), "{what}");
            }
        }
    }
}
