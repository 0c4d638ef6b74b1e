//! `[endpoint.tls]` and `[endpoint.tcp]`: every key, its default, and a located error for each
//! way it can be wrong.

use std::path::Path;

use super::{fails_at, parse};
use crate::config::{KtlsSetting, TcpSettings, TlsProtocol, TlsRoots};

/// An endpoint with `table` on line 4 (`tls = {...}` or `tcp = {...}`).
fn endpoint(url: &str, table: &str) -> String {
    format!("[[endpoint]]\nname = \"a\"\nurl = \"{url}\"\n{table}\n")
}

/// Asserts that the endpoint with `table` fails at the first `at` in it, with `needle`.
fn fails_on(url: &str, table: &str, at: &str, needle: &str) {
    let column = table.find(at).expect("marker in the table") + 1;
    fails_at(&endpoint(url, table), 4, column, needle);
}

#[test]
fn every_tls_key_is_read() {
    let c = parse(
        r#"
[[endpoint]]
name = "orders"
url = "fixs://127.0.0.1:9877"
fix = { sender = "HW", target = "VENUE" }

[endpoint.tls]
backend = "openssl"
ca = "venue-ca.pem"
roots = "os"
cert = "client.pem"
key = "client.key"
alpn = ["fix", "http/1.1"]
min_version = "1.3"
max_version = "1.3"
ktls = "prefer"
server_name = "gw.venue.example"
"#,
    )
    .unwrap();
    let t = &c.endpoints[0].tls;
    assert_eq!(t.backend, "openssl");
    assert_eq!(t.ca.as_deref(), Some(Path::new("venue-ca.pem")));
    assert_eq!(t.roots, TlsRoots::Os, "roots overrides the ca default");
    let (cert, key) = t.client_cert.as_ref().unwrap();
    assert_eq!(
        (cert.as_path(), key.as_path()),
        (Path::new("client.pem"), Path::new("client.key"))
    );
    assert_eq!(t.alpn, ["fix", "http/1.1"]);
    assert_eq!(
        (t.min_version, t.max_version),
        (TlsProtocol::Tls13, TlsProtocol::Tls13)
    );
    assert_eq!(t.ktls, KtlsSetting::Prefer);
    assert_eq!(t.server_name.as_deref(), Some("gw.venue.example"));
    assert!(t.verify);
}

#[test]
fn tls_defaults() {
    let c = parse(&endpoint("wss://h:1/", "")).unwrap();
    let t = &c.endpoints[0].tls;
    assert_eq!(t.roots, TlsRoots::Builtin);
    assert!(t.client_cert.is_none() && t.alpn.is_empty());
    assert_eq!(
        (t.min_version, t.max_version),
        (TlsProtocol::Tls12, TlsProtocol::Tls13)
    );
    assert_eq!(t.ktls, KtlsSetting::Off);
    // A private CA alone means: trust that CA and nothing else.
    let c = parse(&endpoint("wss://h:1/", "tls = { ca = \"ca.pem\" }")).unwrap();
    assert_eq!(c.endpoints[0].tls.roots, TlsRoots::None);
    let c = parse(&endpoint(
        "wss://h:1/",
        "tls = { ca = \"ca.pem\", roots = \"builtin\" }",
    ))
    .unwrap();
    assert_eq!(c.endpoints[0].tls.roots, TlsRoots::Builtin);
}

#[test]
fn bad_tls_keys_are_located() {
    let url = "wss://h:1/";
    fails_on(
        url,
        "tls = { roots = \"web\" }",
        "\"web\"",
        "unknown tls.roots",
    );
    fails_on(
        url,
        "tls = { roots = \"none\" }",
        "\"none\"",
        "trusts no certificate",
    );
    fails_on(
        url,
        "tls = { cert = \"c.pem\" }",
        "\"c.pem\"",
        "tls.cert needs tls.key",
    );
    fails_on(
        url,
        "tls = { key = \"c.key\" }",
        "\"c.key\"",
        "tls.key needs tls.cert",
    );
    fails_on(
        url,
        "tls = { alpn = [\"\"] }",
        "[",
        "must be 1 to 255 bytes",
    );
    fails_on(
        url,
        "tls = { min_version = \"1.1\" }",
        "\"1.1\"",
        "expected \"1.2\" or \"1.3\"",
    );
    fails_on(url, "tls = { max_version = 1.3 }", "1.3", "invalid type");
    fails_on(
        url,
        "tls = { min_version = \"1.3\", max_version = \"1.2\" }",
        "\"1.3\"",
        "min_version is above tls.max_version",
    );
    fails_on(url, "tls = { ktls = \"on\" }", "\"on\"", "unknown tls.ktls");
    fails_on(
        url,
        "tls = { ktls = \"prefer\" }",
        "\"prefer\"",
        "needs backend = \"openssl\"",
    );
    fails_on(url, "tls = { alpm = [] }", "alpm", "unknown field");
}

#[test]
fn ktls_require_needs_the_feature() {
    let text = endpoint(
        "https://h:1/",
        "tls = { backend = \"openssl\", ktls = \"require\" }",
    );
    if cfg!(feature = "ktls") {
        assert_eq!(
            parse(&text).unwrap().endpoints[0].tls.ktls,
            KtlsSetting::Require
        );
    } else {
        fails_on(
            "https://h:1/",
            "tls = { backend = \"openssl\", ktls = \"require\" }",
            "\"require\"",
            "without the `ktls` feature",
        );
    }
}

#[test]
fn every_tcp_key_is_read() {
    let c = parse(
        r#"
[[endpoint]]
name = "rest"
url = "http://127.0.0.1:8080/"

[endpoint.tcp]
bind_device = "lo"
bind_addr = "127.0.0.2"
busy_poll = 50
incoming_cpu = 0
recv_buffer = 4194304
send_buffer = 65536
nodelay = false
"#,
    )
    .unwrap();
    let t = &c.endpoints[0].tcp;
    assert_eq!(
        *t,
        TcpSettings {
            bind_device: Some("lo".into()),
            bind_addr: Some("127.0.0.2:0".parse().unwrap()),
            busy_poll_us: Some(50),
            incoming_cpu: Some(0),
            recv_buffer: Some(4 << 20),
            send_buffer: Some(64 << 10),
            nodelay: false,
        }
    );
    let c = parse(&endpoint(
        "ws://h:1/",
        "tcp = { bind_addr = \"[::1]:40000\" }",
    ))
    .unwrap();
    assert_eq!(
        c.endpoints[0].tcp.bind_addr,
        Some("[::1]:40000".parse().unwrap())
    );
    let c = parse(&endpoint("ws://h:1/", "")).unwrap();
    assert!(c.endpoints[0].tcp.is_default() && c.endpoints[0].tcp.nodelay);
}

#[test]
fn bad_tcp_keys_are_located() {
    let url = "ws://h:1/";
    fails_on(
        url,
        "tcp = { bind_addr = \"10.0.0.300\" }",
        "\"10.0.0.300\"",
        "is not an address",
    );
    fails_on(
        url,
        "tcp = { bind_device = \"a-very-long-ifname\" }",
        "\"a-very",
        "is not an interface name",
    );
    fails_on(
        url,
        "tcp = { bind_device = \"\" }",
        "\"\"",
        "is not an interface name",
    );
    fails_on(
        url,
        "tcp = { recv_buffer = 100 }",
        "100",
        "tcp.recv_buffer 100 is outside 4096..=268435456",
    );
    fails_on(
        url,
        "tcp = { send_buffer = 1073741824 }",
        "1073741824",
        "tcp.send_buffer",
    );
    fails_on(url, "tcp = { busy_poll = -1 }", "-1", "tcp.busy_poll -1");
    fails_on(
        url,
        "tcp = { incoming_cpu = 100000 }",
        "100000",
        "tcp.incoming_cpu 100000 is outside",
    );
    fails_on(
        url,
        "tcp = { nodelay = \"yes\" }",
        "\"yes\"",
        "invalid type",
    );
    fails_on(url, "tcp = { bind_port = 1 }", "bind_port", "unknown field");
}
