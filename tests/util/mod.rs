//! Helpers shared by the integration tests (`mod util;` in a file under `tests/`).
//!
//! - [`free_port`], [`wait_port`]: loopback ports.
//! - [`ChildGuard`]: a peer process in its own process group, killed with all its children on drop.
//! - [`TestPki`]: a throw-away CA and server certificates (good, wrong host, expired, unknown CA) as
//!   PEM files in a temporary directory.
//! - [`venv_bin`], [`system_bin`], [`require_peer`], [`require_root`]: finding peers; a missing peer
//!   skips the test with a note, or fails it when `HOTWIRE_REQUIRE_PEERS=1` (as `scripts/test.sh` sets).
//! - [`Netns`], [`in_netns`]: the project's network namespaces from `scripts/netns.sh`.
//! - [`s_server`]: `openssl s_server` as a TLS peer.
//!
//! Not every test uses every helper, hence the module-wide `dead_code` allowance.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The repository root (where `Cargo.toml` and `scripts/` are).
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it for a bound socket that
/// is closed again). Another process can take it in between: launchers retry on a bind failure.
/// `target/<profile>/examples/NAME`, which `cargo test` builds (with the features the example
/// requires) before it runs the tests.
#[allow(dead_code)] // not every test binary that has `util` runs an example
pub(crate) fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is missing (cargo test builds it)",
        path.display()
    );
    path
}

pub(crate) fn free_port() -> u16 {
    // The kernel may hand the same ephemeral port to two binds in a row once the first is closed;
    // tests running in parallel threads must never share one, so remember what was handed out.
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if !handed.contains(&port) {
            handed.push(port);
            return port;
        }
    }
}

/// Polls until a TCP connect to `addr` succeeds; panics after `timeout`.
///
/// The probe is a real connection: don't use it on a server that serves a fixed number of
/// connections (`s_server -naccept`); [`s_server`] waits for its `ACCEPT` line instead.
pub(crate) fn wait_port(addr: SocketAddr, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on {addr} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process that is killed, together with everything it started, when the guard drops.
///
/// [`ChildGuard::spawn`] puts the child in a new process group, so the kill reaches its children too
/// (`ip netns exec` chains, shell pipelines). A daemon that calls `setsid` leaves the group: run peers
/// in the foreground (nginx: `daemon off;`).
#[derive(Debug)]
pub(crate) struct ChildGuard {
    child: Child,
    name: String,
}

impl ChildGuard {
    /// Spawns `cmd` in a new process group; panics (naming the program) if it cannot start.
    pub(crate) fn spawn(cmd: &mut Command) -> ChildGuard {
        let name = format!("{cmd:?}");
        let child = cmd
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        ChildGuard { child, name }
    }

    /// The process id (also the process group id).
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// The wrapped child, e.g. to take its stdout.
    pub(crate) fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// `Some(status)` once the child has exited.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Like [`wait_port`], but fails at once, naming the command, if the child exits meanwhile.
    pub(crate) fn wait_port(&mut self, addr: SocketAddr, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                panic!("{} exited ({status}) before listening on {addr}", self.name);
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} does not listen on {addr} after {timeout:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) takes plain integers and touches no memory of ours; a negative pid names
        // the process group the child leads (created by `process_group(0)` in `spawn`).
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        // Reap it so no zombie is left; the result does not matter once it is dead.
        let _ = self.child.wait();
    }
}

/// A CA and certificates signed by it (and one not), written as PEM files into a temporary
/// directory that is removed on drop.
///
/// Every server certificate except `wrong_host_cert` names `localhost`, `127.0.0.1` and `::1`.
/// Trust `ca_pem` through the client's CA option; never turn verification off.
#[derive(Debug)]
pub(crate) struct TestPki {
    dir: tempfile::TempDir,
    /// The trusted CA's certificate (ECDSA P-256).
    pub(crate) ca_pem: PathBuf,
    /// A valid server certificate with an ECDSA P-256 key (ECDSA suites).
    pub(crate) server_cert: PathBuf,
    /// Its PKCS#8 key.
    pub(crate) server_key: PathBuf,
    /// A valid server certificate with an RSA 2048 key (RSA suites), signed by the same CA.
    pub(crate) rsa_cert: PathBuf,
    /// Its PKCS#8 key.
    pub(crate) rsa_key: PathBuf,
    /// Signed by the CA, but only for `wrong.example`.
    pub(crate) wrong_host_cert: PathBuf,
    /// Its key.
    pub(crate) wrong_host_key: PathBuf,
    /// Signed by the CA for the right names, valid only in 2020.
    pub(crate) expired_cert: PathBuf,
    /// Its key.
    pub(crate) expired_key: PathBuf,
    /// Right names and dates, signed by a CA the client does not know.
    pub(crate) unknown_ca_cert: PathBuf,
    /// Its key.
    pub(crate) unknown_ca_key: PathBuf,
    /// A client certificate (for mutual TLS) signed by the trusted CA.
    pub(crate) client_cert: PathBuf,
    /// Its key.
    pub(crate) client_key: PathBuf,
}

/// The names every good server certificate carries.
const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl TestPki {
    /// Generates everything. ECDSA keys come from rcgen; the RSA key from `openssl genpkey`
    /// (rcgen with the ring backend cannot generate RSA keys, only sign with them).
    pub(crate) fn new() -> TestPki {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |name: &str| dir.path().join(name);
        let write = |name: &str, pem: &str| {
            std::fs::write(path(name), pem).expect("write PEM");
            path(name)
        };

        let (ca_params, ca_key) = new_ca("hotwire test CA");
        let ca_pem = write("ca.pem", &ca_params.self_signed(&ca_key).expect("CA").pem());
        let ca = Issuer::new(ca_params, ca_key);
        let (other_params, other_key) = new_ca("hotwire unknown CA");
        let other = Issuer::new(other_params, other_key);

        let leaf = |name: &str,
                    names: &[&str],
                    key: KeyPair,
                    issuer: &Issuer<'_, KeyPair>,
                    expired: bool| {
            let mut params =
                CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .expect("certificate names");
            params.distinguished_name.push(DnType::CommonName, names[0]);
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.use_authority_key_identifier_extension = true;
            if expired {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            let cert = params.signed_by(&key, issuer).expect("sign certificate");
            (
                write(&format!("{name}.pem"), &cert.pem()),
                write(&format!("{name}.key"), &key.serialize_pem()),
            )
        };
        let ecdsa = || KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ECDSA key");

        let (server_cert, server_key) = leaf("server", &SERVER_NAMES, ecdsa(), &ca, false);
        let (rsa_cert, rsa_key) =
            leaf("server-rsa", &SERVER_NAMES, rsa_key(dir.path()), &ca, false);
        let (wrong_host_cert, wrong_host_key) =
            leaf("wrong-host", &["wrong.example"], ecdsa(), &ca, false);
        let (expired_cert, expired_key) = leaf("expired", &SERVER_NAMES, ecdsa(), &ca, true);
        let (unknown_ca_cert, unknown_ca_key) =
            leaf("unknown-ca", &SERVER_NAMES, ecdsa(), &other, false);
        let (client_cert, client_key) = leaf("client", &["hotwire-client"], ecdsa(), &ca, false);
        TestPki {
            dir,
            ca_pem,
            server_cert,
            server_key,
            rsa_cert,
            rsa_key,
            wrong_host_cert,
            wrong_host_key,
            expired_cert,
            expired_key,
            unknown_ca_cert,
            unknown_ca_key,
            client_cert,
            client_key,
        }
    }

    /// The directory holding the files (for extra files a test writes next to them).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn new_ca(name: &str) -> (CertificateParams, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
    (params, key)
}

fn rsa_key(dir: &Path) -> KeyPair {
    let file = dir.join("rsa-gen.key");
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&file)
        .output()
        .expect("run openssl genpkey (scripts/peers.sh installs openssl)");
    assert!(
        out.status.success(),
        "openssl genpkey: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read_to_string(&file).expect("read RSA key");
    std::fs::remove_file(&file).expect("remove temporary RSA key");
    KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).expect("load RSA key")
}

/// Whether `HOTWIRE_REQUIRE_PEERS=1`: then a missing peer or privilege fails the test.
pub(crate) fn peers_required() -> bool {
    std::env::var("HOTWIRE_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// The venv with the Python peers: `HOTWIRE_VENV`, else `${HOTWIRE_CACHE:-<repo>/.cache}/venv`
/// (the same rule as `scripts/peers.sh`).
pub(crate) fn venv_dir() -> PathBuf {
    if let Some(v) = std::env::var_os("HOTWIRE_VENV") {
        return PathBuf::from(v);
    }
    let cache =
        std::env::var_os("HOTWIRE_CACHE").map_or_else(|| repo_root().join(".cache"), PathBuf::from);
    cache.join("venv")
}

/// A program in the peers' venv, e.g. `venv_bin("kosoku")` or `venv_bin("python")`.
pub(crate) fn venv_bin(name: &str) -> PathBuf {
    venv_dir().join("bin").join(name)
}

/// A system program found on `PATH` or in the sbin directories (nginx, ethtool live there); the
/// bare name if it is nowhere, so [`require_peer`] reports it missing.
pub(crate) fn system_bin(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// True if the peer `name` exists at `path`. If not: panics when peers are required
/// ([`peers_required`]), else prints a note and returns false so the test can return early.
pub(crate) fn require_peer(name: &str, path: &Path) -> bool {
    if path.is_file() {
        return true;
    }
    let note = format!(
        "peer {name} not found at {} (scripts/peers.sh installs it)",
        path.display()
    );
    assert!(
        !peers_required(),
        "{note}; HOTWIRE_REQUIRE_PEERS=1 makes this a failure"
    );
    eprintln!("note: skipping: {note}");
    false
}

/// True when running as root (network namespaces, `SO_BINDTODEVICE`). Same skip/fail rule as
/// [`require_peer`].
pub(crate) fn require_root(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let note = format!("{what} needs root");
    assert!(
        !peers_required(),
        "{note}; HOTWIRE_REQUIRE_PEERS=1 makes this a failure"
    );
    eprintln!("note: skipping: {note}");
    false
}

/// A set of the project's network namespaces joined by a veth (`scripts/netns.sh`); removed on drop.
///
/// The fields mirror the script's `HW_*` output; [`Netns::var`] reads any of them.
#[derive(Debug)]
pub(crate) struct Netns {
    vars: HashMap<String, String>,
    /// The set's id (third octet of its subnet).
    pub(crate) id: u8,
    /// The server namespace (`hws-ID`).
    pub(crate) server_ns: String,
    /// The server end of the veth, inside `server_ns`.
    pub(crate) server_if: String,
    /// The server end's address (`10.77.ID.1`).
    pub(crate) server_ip: Ipv4Addr,
    /// The client namespace (`hwc-ID`), or `None` in host mode (the root namespace).
    pub(crate) client_ns: Option<String>,
    /// The client end of the veth (`hwc0` in pair mode, `hwhID` in host mode).
    pub(crate) client_if: String,
    /// The client end's address (`10.77.ID.2`).
    pub(crate) client_ip: Ipv4Addr,
}

impl Netns {
    /// Two namespaces: client `hwc-ID`, server `hws-ID`. Needs root ([`require_root`]).
    pub(crate) fn up_pair() -> Netns {
        Netns::up("up", 1)
    }

    /// [`Netns::up_pair`] with `queues` TX and RX queues on both ends (one AF_XDP socket each);
    /// [`Netns::steer`] puts flows on them.
    pub(crate) fn up_pair_with_queues(queues: u32) -> Netns {
        Netns::up("up", queues)
    }

    /// Packets from the server end to each address leave on the paired queue, so they arrive on
    /// the client end's RX queue of that number (`scripts/netns.sh steer`).
    pub(crate) fn steer(&self, rules: &[(u32, Ipv4Addr)]) {
        let out = Command::new(repo_root().join("scripts/netns.sh"))
            .arg("steer")
            .arg(self.id.to_string())
            .args(rules.iter().map(|(q, ip)| format!("{q}={ip}")))
            .output()
            .expect("run scripts/netns.sh steer");
        assert!(
            out.status.success(),
            "scripts/netns.sh steer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// One namespace (server `hws-ID`); the client end stays in the root namespace, so a process of
    /// this test can bind to it. Needs root.
    pub(crate) fn up_host() -> Netns {
        Netns::up("up-host", 1)
    }

    fn up(mode: &str, queues: u32) -> Netns {
        let out = Command::new(repo_root().join("scripts/netns.sh"))
            .arg(mode)
            .env("HOTWIRE_NETNS_QUEUES", queues.to_string())
            .output()
            .expect("run scripts/netns.sh");
        assert!(
            out.status.success(),
            "scripts/netns.sh {mode} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let vars: HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = |k: &str| {
            vars.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("netns.sh printed no {k}"))
        };
        let ip = |k: &str| {
            get(k)
                .parse::<Ipv4Addr>()
                .unwrap_or_else(|e| panic!("{k}: {e}"))
        };
        let client_ns = Some(get("HW_CLIENT_NS")).filter(|s| !s.is_empty());
        Netns {
            id: get("HW_ID").parse().expect("HW_ID"),
            server_ns: get("HW_SERVER_NS"),
            server_if: get("HW_SERVER_IF"),
            server_ip: ip("HW_SERVER_IP"),
            client_ns,
            client_if: get("HW_CLIENT_IF"),
            client_ip: ip("HW_CLIENT_IP"),
            vars,
        }
    }

    /// Any `HW_*` value the script printed (e.g. `HW_SERVER_MAC`).
    /// Sets the MTU of both veth ends (jumbo-frame tests; the set is removed afterwards anyway).
    #[allow(dead_code)] // not every test binary that has `util` sets MTUs
    pub(crate) fn set_mtu(&self, mtu: u32) {
        let mtu = mtu.to_string();
        let ends = [
            (Some(self.server_ns.as_str()), self.server_if.as_str()),
            (self.client_ns.as_deref(), self.client_if.as_str()),
        ];
        for (netns, dev) in ends {
            let mut cmd = Command::new("ip");
            if let Some(ns) = netns {
                cmd.args(["-n", ns]);
            }
            let ok = cmd
                .args(["link", "set", dev, "mtu", &mtu])
                .status()
                .expect("ip link set mtu");
            assert!(ok.success(), "cannot set MTU {mtu} on {dev}");
        }
    }

    pub(crate) fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let status = Command::new(repo_root().join("scripts/netns.sh"))
            .args(["down", &self.id.to_string()])
            .stderr(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "warning: scripts/netns.sh down {} failed: {status:?}",
                self.id
            );
        }
    }
}

/// A command that runs `program` inside the namespace `ns` (`ip netns exec NS PROGRAM`).
pub(crate) fn in_netns(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(program);
    cmd
}

/// The protocol version `s_server` is limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsVersion {
    /// Whatever OpenSSL negotiates (TLS 1.2 or 1.3).
    Any,
    /// `-tls1_2`.
    Tls12,
    /// `-tls1_3`.
    Tls13,
}

/// Starts `openssl s_server -rev` (echoes each line reversed) on 127.0.0.1 with `cert`/`key`,
/// serving `naccept` connections, plus any `extra` arguments. Returns once it listens.
///
/// Waits for s_server's `ACCEPT` line rather than probing, so no connection is used up; retries on
/// another port if the chosen one was taken meanwhile. Needs `openssl` ([`require_peer`] it first).
pub(crate) fn s_server(
    cert: &Path,
    key: &Path,
    version: TlsVersion,
    naccept: u32,
    extra: &[&str],
) -> (ChildGuard, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut cmd = Command::new("openssl");
        cmd.args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-rev"])
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .args(["-naccept", &naccept.to_string()])
            .args(match version {
                TlsVersion::Any => &[][..],
                TlsVersion::Tls12 => &["-tls1_2"][..],
                TlsVersion::Tls13 => &["-tls1_3"][..],
            })
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut guard = ChildGuard::spawn(&mut cmd);
        let stdout = guard.child().stdout.take().expect("piped stdout");
        let stderr = guard.child().stderr.take().expect("piped stderr");
        // Its chatter goes through eprintln!, which the test harness captures and shows on failure.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("s_server: {line}");
            }
        });
        let (tx, rx) = mpsc::channel();
        // Keep draining stdout for the server's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim() == "ACCEPT" {
                    let _ = tx.send(());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(()) => return (guard, port),
            // The pipe closed without ACCEPT: s_server exited (most likely the port was taken).
            Err(mpsc::RecvTimeoutError::Disconnected) => continue,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("openssl s_server did not start listening in 10 s")
            }
        }
    }
    panic!("openssl s_server failed to start five times (its stderr is above)")
}

/// Reads byte by byte until the bytes read end with `end` (or 64 KiB, EOF, an error or a read
/// timeout): a request head with `b"\r\n\r\n"`.
pub(crate) fn read_until(s: &mut impl std::io::Read, end: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(end) && got.len() < 64 * 1024 {
        match s.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => break,
        }
    }
    got
}

/// The server half of a WebSocket handshake, for test servers that then misbehave: reads the
/// request and answers 101 with the right `Sec-WebSocket-Accept`.
pub(crate) fn ws_accept(s: &mut (impl std::io::Read + std::io::Write)) {
    let head = read_until(s, b"\r\n\r\n");
    let text = String::from_utf8_lossy(&head);
    let key = text
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-key"))
        })
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let _ = write!(
        s,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    let _ = s.flush();
}

/// This process's resident set, in KiB (`VmRSS` of `/proc/self/status`).
pub(crate) fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS")
}

/// A service context that keeps the timer figures of a [`Ticker`].
pub(crate) trait Ticks {
    /// One tick, `gap` after the one before.
    fn tick(&mut self, gap: std::time::Duration);
}

/// An endpoint with nothing to read and a 10 ms timer, standing for a heartbeat next to an endpoint
/// under load: how late its ticks come is how much the other endpoint starves it.
pub(crate) struct Ticker {
    /// A loopback port that accepts connections.
    pub(crate) port: u16,
    /// When the last tick came.
    pub(crate) last: Option<Instant>,
}

impl<C: Ticks> hotwire::service::Endpoint<C> for Ticker {
    type Target = hotwire::stream::TcpStream;
    fn address(&self) -> hotwire::service::ConnectAddr {
        hotwire::service::ConnectAddr::new("127.0.0.1", self.port)
    }
    fn create_target(
        &mut self,
        addr: SocketAddr,
        _: &mut C,
    ) -> Result<Self::Target, hotwire::service::Error> {
        Ok(hotwire::stream::TcpStream::connect(
            addr,
            &hotwire::stream::TcpOptions::default(),
        )?)
    }
    fn poll(
        &mut self,
        _: &mut Self::Target,
        _: &mut C,
    ) -> Result<hotwire::service::Flow, hotwire::service::Disconnect> {
        Ok(hotwire::service::Flow::Continue)
    }
    fn on_timer(
        &mut self,
        _: &mut Self::Target,
        now: Instant,
        ctx: &mut C,
    ) -> Result<hotwire::service::Flow, hotwire::service::Disconnect> {
        if let Some(last) = self.last.replace(now) {
            ctx.tick(now - last);
        }
        Ok(hotwire::service::Flow::Continue)
    }
    fn policy(&self) -> hotwire::service::Policy {
        hotwire::service::Policy {
            timer: Some(Duration::from_millis(10)),
            ..hotwire::service::Policy::default()
        }
    }
}
