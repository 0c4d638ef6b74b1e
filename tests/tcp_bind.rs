//! Binding a client socket to an interface (`TcpOptions::bind_device`) or a local address
//! (`TcpOptions::bind_addr`), checked against what the kernel and the server saw rather than the
//! option's return value.
//!
//! The interface tests (root only) use a veth with one end in a namespace of the project's own
//! (`scripts/netns.sh up-host`): a small Python server runs in the namespace, the client in the root
//! namespace. The veth's transmit counters show the bytes really left through it, and binding the same
//! connection to `lo` fails although the routing table points at the veth: the binding decides.

mod util;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hotwire::stream::{read_timeout, wait_connected, write_all_timeout};
use hotwire::stream::{TcpOptions, TcpStream};
use util::{in_netns, require_root, ChildGuard, Netns};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Listens on `sys.argv[1]`, prints `READY <port>` once it does, and for each connection first writes
/// the client's address as `<ip> <port>\n`, then echoes everything until the client's FIN.
const ECHO_SERVER_PY: &str = r#"
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 0))
s.listen(16)
print("READY", s.getsockname()[1], flush=True)
def serve(c, a):
    with c:
        c.sendall(f"{a[0]} {a[1]}\n".encode())
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
while True:
    c, a = s.accept()
    threading.Thread(target=serve, args=(c, a), daemon=True).start()
"#;

/// Starts the echo server in namespace `ns` on `ip`; returns it and its address once it listens.
fn echo_server(ns: &str, ip: Ipv4Addr) -> (ChildGuard, SocketAddr) {
    let mut cmd = in_netns(ns, "python3");
    cmd.args(["-c", ECHO_SERVER_PY, &ip.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut server = ChildGuard::spawn(&mut cmd);
    let mut line = String::new();
    BufReader::new(server.child().stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the server's READY line");
    let port = line
        .strip_prefix("READY ")
        .and_then(|p| p.trim().parse::<u16>().ok())
        .unwrap_or_else(|| panic!("echo server did not start: {line:?}"));
    (server, SocketAddr::new(ip.into(), port))
}

/// Connects to an echo server with `options`, sends `payload` in chunks, checks it comes back
/// unchanged, and returns the client address the server reported.
fn exchange(addr: SocketAddr, options: &TcpOptions, payload: &[u8]) -> std::io::Result<SocketAddr> {
    let mut stream = TcpStream::connect(addr, options)?;
    wait_connected(&mut stream, TIMEOUT)?;

    // The server's first line: the client address it sees.
    let mut header = Vec::new();
    let mut byte = [0u8; 1];
    while !header.ends_with(b"\n") {
        let n = read_timeout(&mut stream, &mut byte, TIMEOUT)?;
        assert_eq!(n, 1, "server closed before sending the client address");
        header.push(byte[0]);
    }
    let header = String::from_utf8(header).expect("ASCII header");
    let (ip, port) = header.trim().split_once(' ').expect("'<ip> <port>' header");
    let seen = SocketAddr::new(
        ip.parse().expect("client ip"),
        port.parse().expect("client port"),
    );

    // Echo in chunks that fit the socket buffers, so neither side blocks on a full window.
    let mut echoed = vec![0u8; 16 * 1024];
    for chunk in payload.chunks(echoed.len()) {
        write_all_timeout(&mut stream, chunk, TIMEOUT)?;
        let mut got = 0;
        while got < chunk.len() {
            let n = read_timeout(&mut stream, &mut echoed[got..chunk.len()], TIMEOUT)?;
            assert!(n > 0, "server closed mid-echo");
            got += n;
        }
        assert_eq!(&echoed[..chunk.len()], chunk, "echo differs");
    }
    stream.shutdown(Shutdown::Write)?;
    assert_eq!(
        read_timeout(&mut stream, &mut byte, TIMEOUT)?,
        0,
        "expected EOF after FIN"
    );
    Ok(seen)
}

/// A counter of a root-namespace interface, from `/sys/class/net/IF/statistics/NAME`.
fn counter(interface: &str, name: &str) -> u64 {
    let path = format!("/sys/class/net/{interface}/statistics/{name}");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .trim()
        .parse()
        .expect("counter value")
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn bind_device_sends_through_the_veth() {
    if !require_root("binding to an interface in a namespace") {
        return;
    }
    let net = Netns::up_host();
    let (_server, addr) = echo_server(&net.server_ns, net.server_ip);
    let options = TcpOptions {
        bind_device: Some(net.client_if.clone()),
        ..TcpOptions::default()
    };
    let data = payload(256 * 1024);

    let (bytes, packets) = (
        counter(&net.client_if, "tx_bytes"),
        counter(&net.client_if, "tx_packets"),
    );
    let seen = exchange(addr, &options, &data).expect("exchange through the veth");
    let sent_bytes = counter(&net.client_if, "tx_bytes") - bytes;
    let sent_packets = counter(&net.client_if, "tx_packets") - packets;

    assert_eq!(
        seen.ip(),
        IpAddr::V4(net.client_ip),
        "server saw another source address"
    );
    // Payload plus headers: at least every payload byte went out through this veth end.
    assert!(
        sent_bytes >= data.len() as u64,
        "{} sent {sent_bytes} bytes for a {} byte payload",
        net.client_if,
        data.len()
    );
    // 16 chunks, each sent and echoed before the next: at least one data segment per chunk.
    assert!(
        sent_packets >= 16,
        "{} sent only {sent_packets} packets",
        net.client_if
    );
}

#[test]
fn bind_device_decides_over_routing() {
    if !require_root("binding to an interface in a namespace") {
        return;
    }
    let net = Netns::up_host();
    let (_server, addr) = echo_server(&net.server_ns, net.server_ip);
    // The routing table sends this destination through the veth ...
    let route = Command::new("ip")
        .args(["-4", "route", "get", &net.server_ip.to_string()])
        .output()
        .expect("ip route get");
    let route = String::from_utf8_lossy(&route.stdout);
    assert!(
        route.contains(&format!("dev {}", net.client_if)),
        "unexpected route: {route}"
    );

    // ... but a socket bound to lo never reaches it, and nothing leaves through the veth.
    let packets = counter(&net.client_if, "tx_packets");
    let on_lo = TcpOptions {
        bind_device: Some("lo".into()),
        connect_timeout: Some(Duration::from_secs(1)),
        ..TcpOptions::default()
    };
    let start = Instant::now();
    let err = exchange(addr, &on_lo, b"x").expect_err("a socket bound to lo reached the namespace");
    eprintln!("bound to lo: {err} after {:?}", start.elapsed());
    assert_eq!(
        counter(&net.client_if, "tx_packets"),
        packets,
        "packets left through the veth"
    );

    // Control: the same destination bound to the veth works.
    let on_veth = TcpOptions {
        bind_device: Some(net.client_if.clone()),
        ..TcpOptions::default()
    };
    let seen = exchange(addr, &on_veth, b"hello").expect("exchange through the veth");
    assert_eq!(seen.ip(), IpAddr::V4(net.client_ip));
}

#[test]
fn bind_device_to_a_missing_interface_fails_at_connect() {
    if !require_root("SO_BINDTODEVICE") {
        return;
    }
    let options = TcpOptions {
        bind_device: Some("hwnone0".into()),
        ..TcpOptions::default()
    };
    let err = TcpStream::connect("127.0.0.1:9".parse().unwrap(), &options)
        .expect_err("bound to a missing interface");
    assert!(
        err.to_string().contains("hwnone0"),
        "error does not name the interface: {err}"
    );
}

#[test]
fn bind_addr_sets_the_source_address_on_the_veth() {
    if !require_root("binding to an address in a namespace") {
        return;
    }
    let net = Netns::up_host();
    // A second address on the client end; without the binding the kernel would pick the first.
    let second = Ipv4Addr::from(u32::from(net.client_ip) + 1);
    let status = Command::new("ip")
        .args([
            "addr",
            "add",
            &format!("{second}/24"),
            "dev",
            &net.client_if,
        ])
        .status()
        .expect("ip addr add");
    assert!(status.success(), "ip addr add {second} failed");
    let (_server, addr) = echo_server(&net.server_ns, net.server_ip);

    let options = TcpOptions {
        bind_addr: Some(SocketAddr::new(second.into(), 0)),
        ..TcpOptions::default()
    };
    let seen = exchange(addr, &options, b"from the second address").expect("exchange");
    assert_eq!(seen.ip(), IpAddr::V4(second));

    let default_source = exchange(addr, &TcpOptions::default(), b"unbound").expect("exchange");
    assert_eq!(
        default_source.ip(),
        IpAddr::V4(net.client_ip),
        "control: the kernel's own choice"
    );
}

#[test]
fn bind_addr_sets_the_source_address_and_port_on_loopback() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().unwrap();
    // A port free on 127.0.0.1 is almost surely free on 127.0.0.2; retry if a wildcard bind took it.
    let (mut client, local) = (0..5)
        .find_map(|_| {
            let local: SocketAddr = format!("127.0.0.2:{}", util::free_port()).parse().unwrap();
            let options = TcpOptions {
                bind_addr: Some(local),
                ..TcpOptions::default()
            };
            match TcpStream::connect(addr, &options) {
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => None,
                other => Some((other.expect("connect"), local)),
            }
        })
        .expect("five ports in use");
    wait_connected(&mut client, TIMEOUT).expect("connected");
    let (_conn, peer) = listener.accept().expect("accept");
    assert_eq!(peer, local, "the server saw another source");
    assert_eq!(client.local_addr().unwrap(), local);
}

#[test]
fn bind_addr_that_is_not_local_fails_at_connect() {
    let options = TcpOptions {
        // TEST-NET-2 (RFC 5737): not assigned to this machine, so the bind must fail (and the
        // connect, to loopback anyway, is never attempted).
        bind_addr: Some("198.51.100.77:0".parse().unwrap()),
        ..TcpOptions::default()
    };
    let err = TcpStream::connect("127.0.0.1:9".parse().unwrap(), &options)
        .expect_err("bound to a foreign address");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrNotAvailable, "{err}");
}
