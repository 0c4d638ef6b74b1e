//! Helpers for the WebSocket integration tests: the Python peers' venv, free ports, child processes
//! that die with the test.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The venv holding the Python peers: `$HOTWIRE_VENV`, else `<repo>/.cache/venv`.
pub fn venv() -> PathBuf {
    match std::env::var_os("HOTWIRE_VENV") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/venv"),
    }
}

/// The path of `name` in the venv's `bin`, if installed. When missing, fails the test under
/// `HOTWIRE_REQUIRE_PEERS=1` and otherwise prints a note and returns `None` (the caller returns).
pub fn peer(name: &str) -> Option<PathBuf> {
    let path = venv().join("bin").join(name);
    if path.exists() {
        return Some(path);
    }
    missing(&format!(
        "{} (install with scripts/peers.sh)",
        path.display()
    ));
    None
}

/// Whether a Python module is importable from the venv, with the same missing-peer policy.
pub fn python_with(module: &str) -> Option<PathBuf> {
    let python = peer("python3")?;
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Some(python)
    } else {
        missing(&format!("python module {module} in {}", venv().display()));
        None
    }
}

fn missing(what: &str) {
    if std::env::var("HOTWIRE_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("peer missing and HOTWIRE_REQUIRE_PEERS=1: {what}");
    }
    eprintln!("note: skipping, peer missing: {what}");
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (by its PID) and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` as a guarded child.
pub fn spawn(cmd: &mut Command) -> ChildGuard {
    ChildGuard(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")),
    )
}

/// Waits until something accepts connections on `127.0.0.1:port`; panics after `timeout` or when
/// the child exits first.
pub fn wait_listening(child: &mut ChildGuard, port: u16, timeout: Duration) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("peer exited before listening on {port}: {status}");
        }
        assert!(Instant::now() < deadline, "nothing listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
