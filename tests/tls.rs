//! Both TLS backends against a real peer, `openssl s_server`: versions, key types, refusals,
//! early writes, the explicit insecure opt-out, kTLS fallback and mio registration.
#![cfg(all(feature = "tls-rustls", feature = "tls-openssl"))]

mod util;

use std::io::{self, Write};
use std::time::Duration;

use hotwire::stream::tls::{tls_error, TlsBackend, TlsConfig, TlsError, TlsStream, TlsVersion};
use hotwire::stream::{read_timeout, wait_connected, write_all_timeout, IntoTls, Stream};
use hotwire::stream::{TcpOptions, TcpStream};
use util::TestPki;

const BACKENDS: [TlsBackend; 2] = [TlsBackend::Rustls, TlsBackend::Openssl];
const T: Duration = Duration::from_secs(10);

fn have_openssl() -> bool {
    util::require_peer("openssl", &util::system_bin("openssl"))
}

/// Trusts the test CA only, through `backend`.
fn trusting(pki: &TestPki, backend: TlsBackend) -> TlsConfig {
    TlsConfig {
        backend,
        ..TlsConfig::with_ca_file(&pki.ca_pem)
    }
}

/// An `s_server -rev` with `cert`/`key` serving one connection, and a client session to it for
/// `name` through `config`, not polled yet.
fn start(
    cert: &std::path::Path,
    key: &std::path::Path,
    name: &str,
    config: &TlsConfig,
) -> (util::ChildGuard, TlsStream<TcpStream>) {
    let (server, port) = util::s_server(cert, key, util::TlsVersion::Any, 1, &[]);
    (server, connect(port, name, config).unwrap())
}

fn connect(port: u16, name: &str, config: &TlsConfig) -> io::Result<TlsStream<TcpStream>> {
    let connector = config.build()?;
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    TcpStream::connect(addr, &TcpOptions::default())?.into_tls(&connector, name)
}

/// Sends `line` and returns the answer line (s_server -rev answers it reversed).
fn exchange<S: Stream>(stream: &mut S, line: &str) -> String {
    write_all_timeout(stream, format!("{line}\n").as_bytes(), T).expect("write");
    read_line(stream)
}

fn read_line<S: Stream>(stream: &mut S) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"\n") {
        let n = read_timeout(stream, &mut buf, T).expect("read");
        assert!(n > 0, "peer closed before a whole line arrived: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).expect("utf-8 answer")
}

fn reversed(s: &str) -> String {
    s.chars().rev().collect::<String>() + "\n"
}

#[test]
fn both_backends_speak_tls12_and_tls13_with_rsa_and_ecdsa() {
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    let keys = [
        ("ecdsa", &pki.server_cert, &pki.server_key),
        ("rsa", &pki.rsa_cert, &pki.rsa_key),
    ];
    let versions = [
        (util::TlsVersion::Tls12, TlsVersion::Tls12),
        (util::TlsVersion::Tls13, TlsVersion::Tls13),
    ];
    for backend in BACKENDS {
        for (kind, cert, key) in keys {
            for (server_version, want) in versions {
                let (_server, port) = util::s_server(cert, key, server_version, 1, &[]);
                let config = TlsConfig {
                    backend,
                    ..TlsConfig::with_ca_file(&pki.ca_pem)
                };
                let mut s = connect(port, "localhost", &config).unwrap();
                wait_connected(&mut s, T)
                    .unwrap_or_else(|e| panic!("{backend:?} {kind} {want:?}: {e}"));
                assert_eq!(s.version(), Some(want), "{backend:?} {kind}");
                let line = format!("hello {kind} over {want:?} with {backend:?}");
                assert_eq!(exchange(&mut s, &line), reversed(&line));
            }
        }
    }
}

#[test]
fn ip_address_server_names_are_verified() {
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    for backend in BACKENDS {
        let (_server, mut s) = start(
            &pki.server_cert,
            &pki.server_key,
            "127.0.0.1",
            &trusting(&pki, backend),
        );
        wait_connected(&mut s, T).unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(exchange(&mut s, "by address"), reversed("by address"));
    }
}

#[test]
fn bad_certificates_are_refused_by_default() {
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    let cases = [
        ("wrong host", &pki.wrong_host_cert, &pki.wrong_host_key),
        ("expired", &pki.expired_cert, &pki.expired_key),
        ("unknown CA", &pki.unknown_ca_cert, &pki.unknown_ca_key),
    ];
    for backend in BACKENDS {
        for (what, cert, key) in cases {
            let (_server, port) = util::s_server(cert, key, util::TlsVersion::Any, 1, &[]);
            let config = TlsConfig {
                backend,
                ..TlsConfig::with_ca_file(&pki.ca_pem)
            };
            let err = match connect(port, "localhost", &config) {
                Err(e) => e,
                Ok(mut s) => wait_connected(&mut s, T)
                    .err()
                    .unwrap_or_else(|| panic!("{backend:?} accepted a certificate: {what}")),
            };
            assert!(
                matches!(tls_error(&err), Some(TlsError::Certificate(_))),
                "{backend:?} {what}: expected a certificate error, got {err:?}"
            );
        }
    }
}

#[test]
fn insecure_is_an_explicit_opt_out() {
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    for backend in BACKENDS {
        let (_server, port) = util::s_server(
            &pki.unknown_ca_cert,
            &pki.unknown_ca_key,
            util::TlsVersion::Any,
            1,
            &[],
        );
        let config = TlsConfig {
            backend,
            insecure: true,
            ..TlsConfig::with_ca_file(&pki.ca_pem)
        };
        let mut s = connect(port, "localhost", &config).unwrap();
        wait_connected(&mut s, T).unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(exchange(&mut s, "insecure"), reversed("insecure"));
    }
}

#[test]
fn writes_before_the_handshake_are_queued_and_sent_in_order() {
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    for backend in BACKENDS {
        let (_server, mut s) = start(
            &pki.server_cert,
            &pki.server_key,
            "localhost",
            &trusting(&pki, backend),
        );
        // Nothing has been polled yet: the TCP connect may still be in progress.
        assert!(!s.is_established());
        let mut early: &[u8] = b"first\nsecond\n";
        while !early.is_empty() {
            match s.write(early) {
                Ok(n) => early = &early[n..],
                Err(e) => panic!("{backend:?}: early write refused: {e}"),
            }
        }
        wait_connected(&mut s, T).unwrap();
        write_all_timeout(&mut s, b"", T).unwrap();
        let mut answers = read_line(&mut s);
        if !answers.contains("tsrif\n") || answers.matches('\n').count() < 2 {
            answers.push_str(&read_line(&mut s));
        }
        assert_eq!(answers, "tsrif\ndnoces\n", "{backend:?}");
    }
}

#[test]
fn a_refused_tcp_connect_surfaces_through_tls() {
    let port = util::free_port();
    for backend in BACKENDS {
        let config = TlsConfig {
            backend,
            insecure: true,
            ..TlsConfig::default()
        };
        let err = match connect(port, "localhost", &config) {
            Err(e) => e,
            Ok(mut s) => wait_connected(&mut s, T).unwrap_err(),
        };
        assert_eq!(
            err.kind(),
            io::ErrorKind::ConnectionRefused,
            "{backend:?}: {err}"
        );
    }
}

#[test]
fn a_tls_stream_registers_with_mio() {
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    let (_server, port) = util::s_server(
        &pki.server_cert,
        &pki.server_key,
        util::TlsVersion::Any,
        1,
        &[],
    );
    let mut s = connect(port, "localhost", &TlsConfig::with_ca_file(&pki.ca_pem)).unwrap();
    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(8);
    poll.registry()
        .register(
            &mut s,
            mio::Token(7),
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )
        .unwrap();
    // Drive the handshake from readiness events only, as a selector would.
    let deadline = std::time::Instant::now() + T;
    while !s.poll_connect().unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "handshake did not complete"
        );
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
    }
    write_all_timeout(&mut s, b"via mio\n", T).unwrap();
    let mut readable = false;
    while !readable {
        assert!(std::time::Instant::now() < deadline, "no readable event");
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        readable = events
            .iter()
            .any(|e| e.token() == mio::Token(7) && e.is_readable());
    }
    assert_eq!(read_line(&mut s), reversed("via mio"));
}

#[cfg(feature = "ktls")]
#[test]
fn ktls_falls_back_with_a_typed_error_and_runs_in_user_space_when_preferred() {
    use hotwire::stream::ktls::{kernel_support, KtlsError, KtlsMode, KtlsStream};
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    let config = TlsConfig {
        backend: TlsBackend::Openssl,
        ..TlsConfig::with_ca_file(&pki.ca_pem)
    };
    let connector = config.build().unwrap();
    let kernel = kernel_support();

    // Require: on a kernel without the TLS ULP the stream comes back untouched, and carries a
    // user-space session instead.
    let (_server, port) = util::s_server(
        &pki.server_cert,
        &pki.server_key,
        util::TlsVersion::Any,
        2,
        &[],
    );
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let tcp = TcpStream::connect(addr, &TcpOptions::default()).unwrap();
    match KtlsStream::new(&connector, "localhost", tcp, KtlsMode::Require) {
        Err(fallback) => {
            assert!(
                matches!(fallback.error, KtlsError::KernelUnsupported),
                "{:?}",
                fallback.error
            );
            assert!(kernel.is_err());
            let mut s = fallback.stream.into_tls(&connector, "localhost").unwrap();
            wait_connected(&mut s, T).unwrap();
            assert_eq!(exchange(&mut s, "fallback"), reversed("fallback"));
        }
        Ok(mut s) => {
            assert!(kernel.is_ok());
            // The kernel has kTLS: the session must really be offloaded, or fail typed.
            match wait_connected(&mut s, T) {
                Ok(()) => {
                    assert_eq!(s.offloaded(), (true, true));
                    assert_eq!(exchange(&mut s, "offloaded"), reversed("offloaded"));
                }
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}"),
            }
        }
    }

    // Prefer: the session works either way (OpenSSL on the raw socket).
    let tcp = TcpStream::connect(addr, &TcpOptions::default()).unwrap();
    let mut s = KtlsStream::new(&connector, "localhost", tcp, KtlsMode::Prefer).unwrap();
    wait_connected(&mut s, T).unwrap();
    if kernel.is_err() {
        assert_eq!(s.offloaded(), (false, false));
    }
    assert_eq!(exchange(&mut s, "preferred"), reversed("preferred"));
    s.flush().unwrap();
}

#[test]
fn alpn_is_negotiated_by_both_backends() {
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    for backend in BACKENDS {
        let (_server, port) = util::s_server(
            &pki.server_cert,
            &pki.server_key,
            util::TlsVersion::Any,
            1,
            &["-alpn", "hotwire/1,http/1.1"],
        );
        let config = TlsConfig {
            backend,
            alpn: vec!["http/1.1".into()],
            ..TlsConfig::with_ca_file(&pki.ca_pem)
        };
        let mut s = connect(port, "localhost", &config).unwrap();
        wait_connected(&mut s, T).unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(s.alpn_protocol(), Some(&b"http/1.1"[..]), "{backend:?}");
    }
}

#[test]
fn client_certificates_authenticate_the_client() {
    use hotwire::stream::tls::ClientCert;
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    let ca = pki.ca_pem.to_str().unwrap().to_owned();
    for backend in BACKENDS {
        // With the certificate: the server (which requires one) accepts the session.
        let (_server, port) = util::s_server(
            &pki.server_cert,
            &pki.server_key,
            util::TlsVersion::Tls13,
            1,
            &["-Verify", "1", "-CAfile", &ca],
        );
        let config = TlsConfig {
            backend,
            client_cert: Some(ClientCert {
                chain: pki.client_cert.clone(),
                key: pki.client_key.clone(),
            }),
            ..TlsConfig::with_ca_file(&pki.ca_pem)
        };
        let mut s = connect(port, "localhost", &config).unwrap();
        wait_connected(&mut s, T).unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(
            exchange(&mut s, "mutual"),
            reversed("mutual"),
            "{backend:?}"
        );

        // Without it: the server refuses (in TLS 1.3 the alert arrives after the client's Finished,
        // so the refusal surfaces on the first read).
        let (_server, port) = util::s_server(
            &pki.server_cert,
            &pki.server_key,
            util::TlsVersion::Tls13,
            1,
            &["-Verify", "1", "-CAfile", &ca],
        );
        let config = TlsConfig {
            backend,
            ..TlsConfig::with_ca_file(&pki.ca_pem)
        };
        let mut s = connect(port, "localhost", &config).unwrap();
        let refused = wait_connected(&mut s, T).err().or_else(|| {
            write_all_timeout(&mut s, b"anyone?\n", T)
                .err()
                .or_else(|| {
                    let mut buf = [0u8; 64];
                    match read_timeout(&mut s, &mut buf, T) {
                        Ok(0) => Some(io::ErrorKind::UnexpectedEof.into()),
                        Ok(_) => None,
                        Err(e) => Some(e),
                    }
                })
        });
        assert!(
            refused.is_some(),
            "{backend:?}: a server requiring a client certificate accepted none"
        );
    }
}

#[test]
fn configuration_hooks_reach_the_server_with_both_backends() {
    if !have_openssl() {
        return;
    }
    let pki = TestPki::new();
    for backend in BACKENDS {
        // The server accepts only the protocol the hook offers: a negotiated "hook/1" was seen by it.
        let (_server, port) = util::s_server(
            &pki.server_cert,
            &pki.server_key,
            util::TlsVersion::Any,
            1,
            &["-alpn", "hook/1"],
        );
        let mut config = TlsConfig {
            // Replaced by the hooks, which run last.
            alpn: vec!["http/1.1".into()],
            ..trusting(&pki, backend)
        };
        config = config
            .with_rustls_config(|c| {
                c.alpn_protocols = vec![b"hook/1".to_vec()];
                Ok(())
            })
            .with_openssl_builder(|b| {
                b.set_alpn_protos(b"\x06hook/1")?;
                Ok(())
            });
        let mut s = connect(port, "localhost", &config).unwrap();
        wait_connected(&mut s, T).unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(s.alpn_protocol(), Some(&b"hook/1"[..]), "{backend:?}");
        assert_eq!(
            exchange(&mut s, "hooked"),
            reversed("hooked"),
            "{backend:?}"
        );
    }
}

#[test]
fn a_failing_hook_fails_the_build_with_its_message() {
    let pki = TestPki::new();
    let rustls = trusting(&pki, TlsBackend::Rustls)
        .with_rustls_config(|_| Err("no cipher suite for this venue".into()));
    let e = rustls.build().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains("no cipher suite for this venue"),
        "{e}"
    );
    // An OpenSSL error from the builder comes through `?`.
    let openssl = trusting(&pki, TlsBackend::Openssl).with_openssl_builder(|b| {
        b.set_cipher_list("NO-SUCH-CIPHER")?;
        Ok(())
    });
    let e = openssl.build().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("OpenSSL configuration hook"), "{e}");
    // Only the backend in use runs its hook.
    let other = trusting(&pki, TlsBackend::Rustls).with_openssl_builder(|_| Err("ran".into()));
    other.build().unwrap();
}
