//! nginx as an HTTP/1.1 peer (`mod nginx;` next to `mod util;`), for the HTTP tests and the
//! round-trip benchmark.
//!
//! [`Nginx::start`] writes a configuration and a document root into a temporary directory and runs
//! `nginx -c CONF -p DIR -g 'daemon off;'` under a [`ChildGuard`] on two free loopback ports, plain
//! and TLS (the [`TestPki`] server certificate). Locations:
//!
//! - `/data/` static files (`big.bin`: 10 MB, `small.txt`, `fN.txt`);
//! - `/ssi/` with `ssi on; ssi_types *;`: no Content-Length, chunked;
//! - `/gz/` with `gzip on; gzip_min_length 0;`: chunked gzip when asked;
//! - `/dav/` accepts PUT (files land in the root, to be read back byte for byte);
//! - `= /post` answers `200` with the request's Content-Length;
//! - `= /empty` answers 204.
//!
//! The access log (`$connection $connection_requests $request_method $request_uri $status
//! $request_length`) shows from nginx's side which connection served each request.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::{self, ChildGuard, TestPki};

/// Size of `/data/big.bin`.
pub(crate) const BIG: usize = 10 * 1024 * 1024;

/// A running nginx with its files.
#[derive(Debug)]
pub(crate) struct Nginx {
    // Field order: the process dies before its directory is removed.
    _guard: ChildGuard,
    /// The plain HTTP port.
    pub(crate) plain: u16,
    /// The TLS port.
    pub(crate) tls: u16,
    /// The prefix directory (config, logs, document root under `www/`).
    pub(crate) dir: tempfile::TempDir,
    /// The CA and server certificate nginx uses.
    pub(crate) pki: TestPki,
}

/// One access-log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogLine {
    pub(crate) connection: u64,
    pub(crate) connection_requests: u64,
    pub(crate) method: String,
    pub(crate) uri: String,
    pub(crate) status: u16,
    pub(crate) request_length: u64,
}

/// `true` when nginx is installed (else the test returns early, or fails with
/// `HOTWIRE_REQUIRE_PEERS=1`).
pub(crate) fn available() -> bool {
    util::require_peer("nginx", &util::system_bin("nginx"))
}

/// The bytes of `/data/big.bin`: deterministic, not compressible to nothing, no period of 256.
pub(crate) fn big_body() -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..BIG)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// The content of `/data/fN.txt`.
pub(crate) fn numbered(n: usize) -> String {
    format!("file number {n}\n").repeat(n % 7 + 1)
}

impl Nginx {
    /// Starts nginx; retries on other ports if a chosen one was taken meanwhile.
    pub(crate) fn start() -> Nginx {
        let pki = TestPki::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let www = dir.path().join("www");
        for sub in ["data", "ssi", "gz", "dav"] {
            std::fs::create_dir_all(www.join(sub)).expect("mkdir");
        }
        std::fs::write(www.join("data/big.bin"), big_body()).expect("write big.bin");
        std::fs::write(www.join("data/small.txt"), "small file\n").expect("write");
        for n in 0..64 {
            std::fs::write(www.join(format!("data/f{n}.txt")), numbered(n)).expect("write");
        }
        std::fs::write(www.join("ssi/page.html"), ssi_page()).expect("write");
        std::fs::write(www.join("gz/text.txt"), gz_text()).expect("write");
        for _ in 0..5 {
            let (plain, tls) = (util::free_port(), util::free_port());
            let conf = dir.path().join("nginx.conf");
            std::fs::write(&conf, config(dir.path(), &pki, plain, tls)).expect("write conf");
            let mut cmd = Command::new(util::system_bin("nginx"));
            cmd.arg("-c")
                .arg(&conf)
                .arg("-p")
                .arg(dir.path())
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .args(["-g", "daemon off;"]);
            let mut guard = ChildGuard::spawn(&mut cmd);
            let addr: SocketAddr = format!("127.0.0.1:{plain}").parse().unwrap();
            // A taken port makes nginx exit at once; wait briefly to tell that from a start.
            std::thread::sleep(Duration::from_millis(100));
            if guard.exited().is_some() {
                continue;
            }
            guard.wait_port(addr, Duration::from_secs(10));
            util::wait_port(
                format!("127.0.0.1:{tls}").parse().unwrap(),
                Duration::from_secs(10),
            );
            return Nginx {
                _guard: guard,
                plain,
                tls,
                dir,
                pki,
            };
        }
        let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
        panic!("nginx failed to start five times; error.log:\n{log}")
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.plain)
    }

    /// `https://localhost:PORT` + `path` (the certificate names localhost).
    pub(crate) fn tls_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.tls)
    }

    /// The document root.
    pub(crate) fn www(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    /// The access log so far.
    pub(crate) fn log(&self) -> Vec<LogLine> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                assert_eq!(f.len(), 6, "access log line {l:?}");
                LogLine {
                    connection: f[0].parse().expect("connection"),
                    connection_requests: f[1].parse().expect("connection_requests"),
                    method: f[2].to_owned(),
                    uri: f[3].to_owned(),
                    status: f[4].parse().expect("status"),
                    request_length: f[5].parse().expect("request_length"),
                }
            })
            .collect()
    }

    /// Access-log lines whose URI contains `tag`, once there are at least `count` (nginx logs a
    /// request after sending its response, so the last line may lag a little), or what there is
    /// after 5 s.
    pub(crate) fn log_of(&self, tag: &str, count: usize) -> Vec<LogLine> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let lines: Vec<LogLine> = self
                .log()
                .into_iter()
                .filter(|l| l.uri.contains(tag))
                .collect();
            if lines.len() >= count || std::time::Instant::now() >= deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// An SSI page: text around an include, served chunked.
pub(crate) fn ssi_page() -> String {
    let filler = "ssi filler line for a longer chunked body\n".repeat(2000);
    format!("<html>before\n{filler}<!--# include virtual=\"/data/small.txt\" -->after\n</html>\n")
}

/// What nginx makes of [`ssi_page`].
pub(crate) fn ssi_expected() -> String {
    ssi_page().replace(
        "<!--# include virtual=\"/data/small.txt\" -->",
        "small file\n",
    )
}

/// Compressible text for the gzip location.
pub(crate) fn gz_text() -> String {
    (0..20_000)
        .map(|i| format!("line {i} of a gzip-compressed chunked body\n"))
        .collect()
}

fn config(dir: &Path, pki: &TestPki, plain: u16, tls: u16) -> String {
    // As root, nginx's workers would switch to `nobody`, which cannot read the temporary
    // directory.
    // SAFETY: geteuid has no preconditions and cannot fail.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root;"
    } else {
        ""
    };
    let d = dir.display();
    format!(
        r#"{user}
worker_processes 1;
pid {d}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    log_format conn '$connection $connection_requests $request_method $request_uri $status $request_length';
    access_log {d}/access.log conn;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 100000;
    keepalive_timeout 120s;
    types {{ text/plain txt; text/html html; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{plain};
        listen 127.0.0.1:{tls} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {d}/www;
        client_max_body_size 64m;
        location /ssi/ {{ ssi on; ssi_types *; }}
        location /gz/ {{ gzip on; gzip_min_length 0; gzip_types text/plain; }}
        location /dav/ {{ dav_methods PUT DELETE; create_full_put_path on; }}
        location = /post {{ return 200 "$content_length"; }}
        location = /empty {{ return 204; }}
    }}
}}
"#,
        cert = pki.server_cert.display(),
        key = pki.server_key.display(),
    )
}
