//! Checks of the shared test helpers themselves: the test PKI is judged by `openssl verify` (a
//! verifier nobody on this project wrote), and the `s_server` launcher serves a real TLS client.

mod util;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use util::{require_peer, s_server, system_bin, ChildGuard, TestPki, TlsVersion};

/// `openssl verify` of `cert` against `ca` for `host` (a DNS name, or an IP address); returns its
/// verdict and output.
fn verify(ca: &Path, cert: &Path, host: &str) -> (bool, String) {
    let check = if host.parse::<std::net::IpAddr>().is_ok() {
        "-verify_ip"
    } else {
        "-verify_hostname"
    };
    let out = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(ca)
        .args([check, host])
        .arg(cert)
        .output()
        .expect("run openssl verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn pki_certificates_are_judged_as_intended() {
    if !require_peer("openssl", &system_bin("openssl")) {
        return;
    }
    let pki = TestPki::new();
    for host in ["localhost", "127.0.0.1", "::1"] {
        for cert in [&pki.server_cert, &pki.rsa_cert] {
            let (ok, text) = verify(&pki.ca_pem, cert, host);
            assert!(ok, "{} for {host}: {text}", cert.display());
        }
    }
    let (ok, text) = verify(&pki.ca_pem, &pki.wrong_host_cert, "localhost");
    assert!(
        !ok && text.contains("hostname mismatch"),
        "wrong host: {text}"
    );
    let (ok, text) = verify(&pki.ca_pem, &pki.expired_cert, "localhost");
    assert!(!ok && text.contains("expired"), "expired: {text}");
    let (ok, text) = verify(&pki.ca_pem, &pki.unknown_ca_cert, "localhost");
    assert!(
        !ok && text.contains("unable to get local issuer"),
        "unknown CA: {text}"
    );

    let key = std::fs::read_to_string(&pki.rsa_key).unwrap();
    let out = Command::new("openssl")
        .args(["pkey", "-noout", "-text", "-in"])
        .arg(&pki.rsa_key)
        .output()
        .unwrap();
    assert!(
        key.starts_with("-----BEGIN PRIVATE KEY-----"),
        "RSA key is not PKCS#8 PEM"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2048 bit"),
        "RSA key size"
    );
}

#[test]
fn s_server_serves_a_tls_client_and_is_stopped_by_its_guard() {
    if !require_peer("openssl", &system_bin("openssl")) {
        return;
    }
    let pki = TestPki::new();
    let (mut server, port) = s_server(&pki.rsa_cert, &pki.rsa_key, TlsVersion::Tls13, 1, &[]);
    let mut client = ChildGuard::spawn(
        Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-servername", "localhost", "-verify_return_error", "-quiet"])
            .arg("-CAfile")
            .arg(&pki.ca_pem)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let mut stdin = client.child().stdin.take().unwrap();
    stdin.write_all(b"hotwire\n").unwrap();
    // s_server -rev answers the line reversed; then closing stdin ends the client.
    let stdout = client.child().stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    assert_eq!(line.trim_end(), "eriwtoh");
    drop(stdin);

    let pid = server.id();
    assert!(server.exited().is_none(), "server already gone");
    drop(server);
    // The guard killed and reaped it: the pid no longer names a process of ours.
    assert!(!is_child_alive(pid), "s_server {pid} survived its guard");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err(),
        "something still listens on {addr}"
    );
}

/// Whether `pid` is a live (not zombie) process.
fn is_child_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}
