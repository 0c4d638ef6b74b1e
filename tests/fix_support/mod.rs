//! The QuickFIX C++ `executor` example as a FIX peer: built from the Debian doc package's sources
//! with g++ (cached by a hash of the sources), started with a generated settings file.
//!
//! Needs `util` declared by the including test (`mod util; mod fix_support;`).
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::util::{self, ChildGuard};

/// Where the Debian package ships the example.
const SOURCES: &str = "/usr/share/doc/libquickfix-doc/examples/executor/C++";
const FILES: [&str; 3] = ["executor.cpp", "Application.h", "Application.cpp.gz"];
/// The example uses dynamic exception specifications, gone from C++17.
const CXXFLAGS: [&str; 4] = ["-std=gnu++11", "-O1", "-w", "-I."];
const LIBS: [&str; 5] = ["-lquickfix", "-lpthread", "-lssl", "-lcrypto", "-lxml2"];

/// The executor binary, built once per source hash; `None` (after a note) when g++ or QuickFIX is
/// missing and peers are not required.
pub(crate) fn executor() -> Option<PathBuf> {
    if !util::require_peer("g++", &util::system_bin("g++"))
        || !util::require_peer(
            "QuickFIX headers",
            Path::new("/usr/include/quickfix/Session.h"),
        )
        || !util::require_peer(
            "QuickFIX executor sources",
            &Path::new(SOURCES).join("executor.cpp"),
        )
    {
        return None;
    }
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    Some(BUILT.get_or_init(build).clone())
}

fn read_source(name: &str) -> Vec<u8> {
    let path = Path::new(SOURCES).join(name);
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if name.ends_with(".gz") {
        let out = Command::new("gzip")
            .args(["-dc"])
            .arg(&path)
            .output()
            .expect("run gzip -dc");
        assert!(out.status.success(), "gzip -dc {}", path.display());
        out.stdout
    } else {
        raw
    }
}

/// FNV-1a over the sources and flags: the cache key.
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn build() -> PathBuf {
    let sources: Vec<(String, Vec<u8>)> = FILES
        .iter()
        .map(|f| (f.trim_end_matches(".gz").to_string(), read_source(f)))
        .collect();
    let config_h = b"#define HAVE_SSL 1\n".to_vec();
    let mut parts: Vec<&[u8]> = sources.iter().map(|(_, s)| s.as_slice()).collect();
    parts.push(&config_h);
    let flags = format!("{CXXFLAGS:?}{LIBS:?}");
    parts.push(flags.as_bytes());
    let key = format!("{:016x}", fnv(&parts));
    let cache = std::env::var_os("HOTWIRE_CACHE")
        .map_or_else(|| util::repo_root().join(".cache"), PathBuf::from)
        .join("quickfix-executor");
    let bin = cache.join(format!("executor-{key}"));
    if bin.is_file() {
        return bin;
    }
    std::fs::create_dir_all(&cache).expect("create the executor cache");
    let work = tempfile::tempdir_in(&cache).expect("build dir");
    for (name, bytes) in &sources {
        std::fs::write(work.path().join(name), bytes).expect("write source");
    }
    std::fs::write(work.path().join("config.h"), &config_h).expect("write config.h");
    let out = Command::new(util::system_bin("g++"))
        .current_dir(work.path())
        .args(CXXFLAGS)
        .args(["executor.cpp", "Application.cpp", "-o", "executor"])
        .args(LIBS)
        .output()
        .expect("run g++");
    assert!(
        out.status.success(),
        "building the QuickFIX executor failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Rename into place: a concurrent build of the same key produces the same file.
    std::fs::rename(work.path().join("executor"), &bin).expect("install the executor");
    bin
}

/// One acceptor session of the executor.
#[derive(Debug, Clone)]
pub(crate) struct SessionSpec {
    /// BeginString.
    pub(crate) begin_string: &'static str,
    /// Our CompID (the executor's TargetCompID).
    pub(crate) client: &'static str,
    /// `ResetOnLogon=Y`.
    pub(crate) reset_on_logon: bool,
}

/// The executor's CompID.
pub(crate) const EXECUTOR: &str = "EXECUTOR";

/// A running executor; killed on drop.
#[derive(Debug)]
pub(crate) struct Executor {
    guard: ChildGuard,
    /// The acceptor port (on every address: connect over loopback only).
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

impl Executor {
    /// Starts the executor with `sessions`, plain or (with a certificate and key) TLS.
    pub(crate) fn start(
        bin: &Path,
        sessions: &[SessionSpec],
        tls: Option<(&Path, &Path)>,
    ) -> Executor {
        let dir = tempfile::tempdir().expect("executor dir");
        Executor::start_in(bin, sessions, tls, dir)
    }

    /// Like [`Executor::start`], keeping its store in `dir` (to restart it on the same store).
    pub(crate) fn start_in(
        bin: &Path,
        sessions: &[SessionSpec],
        tls: Option<(&Path, &Path)>,
        dir: tempfile::TempDir,
    ) -> Executor {
        for _ in 0..5 {
            let port = util::free_port();
            let mut cfg = format!(
                "[DEFAULT]\nConnectionType=acceptor\nSocketAcceptPort={port}\nSocketReuseAddress=Y\n\
                 StartTime=00:00:00\nEndTime=00:00:00\nFileStorePath={store}\nFileLogPath={log}\n\
                 UseDataDictionary=N\nSenderCompID={EXECUTOR}\n",
                store = dir.path().join("store").display(),
                log = dir.path().join("log").display(),
            );
            if let Some((cert, key)) = tls {
                cfg += &format!(
                    "ServerCertificateFile={}\nServerCertificateKeyFile={}\nCertificateVerifyLevel=0\n",
                    cert.display(),
                    key.display()
                );
            }
            for s in sessions {
                cfg += &format!(
                    "\n[SESSION]\nBeginString={}\nTargetCompID={}\nResetOnLogon={}\n",
                    s.begin_string,
                    s.client,
                    if s.reset_on_logon { "Y" } else { "N" }
                );
                if s.begin_string == "FIXT.1.1" {
                    cfg += "DefaultApplVerID=FIX.5.0\n";
                }
            }
            let cfg_path = dir.path().join("executor.cfg");
            std::fs::write(&cfg_path, cfg).expect("write executor settings");
            let log = std::fs::File::create(dir.path().join("executor.out")).expect("log file");
            let mut cmd = Command::new(bin);
            cmd.arg(&cfg_path)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log);
            if tls.is_some() {
                cmd.arg("SSL-ST");
            }
            let mut guard = ChildGuard::spawn(&mut cmd);
            // Wait for the port without connecting (a TLS acceptor would log a failed handshake).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let mut up = false;
            while std::time::Instant::now() < deadline {
                if guard.exited().is_some() {
                    break;
                }
                if listening(port) {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if up {
                return Executor { guard, port, dir };
            }
        }
        panic!("the QuickFIX executor did not start (port taken five times?)")
    }

    /// What the executor printed (its screen log: every message in and out).
    pub(crate) fn output(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("executor.out")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Stops the executor and hands back its directory (store included) for a restart.
    pub(crate) fn stop(self) -> tempfile::TempDir {
        drop(self.guard);
        self.dir
    }
}

/// `true` when something listens on TCP `port` (from /proc/net/tcp{,6}, without connecting).
fn listening(port: u16) -> bool {
    let needle = format!(":{port:04X} ");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|p| {
        std::fs::read_to_string(p).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() > 3 && format!("{} ", cols[1]).ends_with(&needle) && cols[3] == "0A"
            })
        })
    })
}

/// One message in the executor's screen log, SOH shown as `|`.
#[derive(Debug, Clone)]
pub(crate) struct Logged {
    /// Received by the executor (sent by us).
    pub(crate) incoming: bool,
    /// The message, `|`-separated.
    pub(crate) text: String,
}

impl Logged {
    /// The value of `tag`, if present.
    pub(crate) fn get(&self, tag: u32) -> Option<&str> {
        let key = format!("{tag}=");
        self.text
            .split('|')
            .find_map(|f| f.strip_prefix(key.as_str()))
    }
}

impl Executor {
    /// Every message the executor logged, in order (its log: `<time, session, incoming|outgoing>`
    /// then the message in parentheses on the next line).
    pub(crate) fn messages(&self) -> Vec<Logged> {
        let log = self.output();
        let mut out = Vec::new();
        let mut direction = None;
        for line in log.lines() {
            if line.starts_with('<') {
                direction = if line.ends_with(", incoming>") {
                    Some(true)
                } else if line.ends_with(", outgoing>") {
                    Some(false)
                } else {
                    None
                };
            } else if let (Some(incoming), Some(m)) = (direction, line.trim().strip_prefix("(8=")) {
                let text = format!("8={}", m.trim_end_matches(')')).replace('\u{1}', "|");
                out.push(Logged { incoming, text });
                direction = None;
            }
        }
        out
    }
}
