//! `hotwire http URL`: an HTTP/1.1 probe on the production stack (hotwire's TCP, TLS and HTTP
//! client; no other HTTP code).
//!
//! Prints the status line and the body (or writes the body to `-o FILE`). With `--repeat N` it
//! sends the request N times on one keep-alive connection and prints round-trip percentiles. Any
//! failure — connect, TLS, a malformed response, a closed connection — prints one line on stderr
//! and exits non-zero; a complete response of any status exits 0.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::http::{Body, HttpClient, HttpConfig, HttpUrl, Method, Request, Response};
use crate::stream::tls::TlsConfig;
use crate::stream::{wait_connected, MaybeTls};

/// Arguments of `hotwire http`.
#[derive(clap::Args, Debug, Clone)]
pub struct HttpArgs {
    /// `http://HOST[:PORT]/PATH?QUERY` or `https://...` (IPv6 literals in brackets).
    pub url: String,
    /// The method (default GET, or POST with --data).
    #[arg(long, short = 'X', value_name = "M")]
    pub method: Option<String>,
    /// An extra request header, `'Name: value'` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "'K: V'")]
    pub headers: Vec<String>,
    /// The request body (sent with Content-Length).
    #[arg(long, short = 'd', value_name = "STR")]
    pub data: Option<String>,
    /// Send the request N times on one connection and print latency percentiles.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: u64,
    /// A PEM file of CA certificates to trust for https:// (instead of the built-in roots).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Do not verify the server's certificate (tests and labs only).
    #[arg(long)]
    pub insecure: bool,
    /// The TLS implementation for https://: `rustls` or `openssl`.
    #[arg(long, value_name = "BACKEND")]
    pub tls_backend: Option<String>,
    /// Write the body to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Give up connecting, or waiting for one response, after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,
    /// The network path (kernel TCP, or `--xdp IFACE --local-ip A.B.C.D/NN`).
    #[command(flatten)]
    pub net: super::probe_net::ProbeNet,
}

/// Runs the probe; the exit code is 0 on success (see the [module documentation](self)).
pub fn run(args: &HttpArgs) -> ExitCode {
    match probe(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotwire http: {e}");
            ExitCode::FAILURE
        }
    }
}

fn probe(args: &HttpArgs) -> Result<(), String> {
    let url = HttpUrl::parse(&args.url).map_err(|e| format!("{}: {e}", args.url))?;
    let method = match &args.method {
        Some(m) => m
            .parse::<Method>()
            .map_err(|_| format!("unknown method {m:?}"))?,
        None if args.data.is_some() => Method::Post,
        None => Method::Get,
    };
    let mut headers = Vec::with_capacity(args.headers.len());
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("header {h:?} is not 'Name: value'"))?;
        headers.push((k.trim(), v.trim()));
    }
    let body = args
        .data
        .as_deref()
        .map_or(Body::Empty, |d| Body::Bytes(d.as_bytes()));
    let req = Request {
        method,
        target: url.target(),
        headers: &headers,
        body,
    };
    let timeout = super::seconds_arg("--timeout", args.timeout)?.max(Duration::from_millis(1));
    let tls = if url.is_secure() {
        let mut cfg = match &args.ca {
            Some(ca) => TlsConfig::with_ca_file(ca),
            None => TlsConfig::default(),
        };
        if let Some(b) = &args.tls_backend {
            cfg.backend = b.parse()?;
        }
        cfg.insecure = args.insecure;
        Some(cfg.build().map_err(|e| format!("TLS setup: {e}"))?)
    } else {
        None
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(url.host(), url.port()))
        .map_err(|e| format!("cannot resolve {}: {e}", url.host()))?
        .next()
        .ok_or_else(|| format!("{} has no address", url.host()))?;
    let base = args.net.connect(addr)?;
    let mut stream =
        MaybeTls::new(base, tls.as_ref(), url.host()).map_err(|e| format!("TLS: {e}"))?;
    wait_connected(&mut stream, timeout)
        .map_err(|e| format!("connect to {}:{}: {e}", url.host(), url.port()))?;
    let mut conn = HttpClient::new(stream, url.host_header(), HttpConfig::default());
    let repeat = args.repeat.max(1);
    let mut histogram = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|e| format!("histogram: {e}"))?;
    let mut stdout = std::io::stdout().lock();
    for i in 0..repeat {
        let last = i + 1 == repeat;
        let started = Instant::now();
        let failed = |e| format!("request {} of {repeat}: {e}", i + 1);
        match (&args.output, last) {
            (Some(path), true) => {
                let mut file = std::fs::File::create(path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                let r = conn.request_to(&req, &mut file, timeout).map_err(failed)?;
                histogram.saturating_record(started.elapsed().as_nanos() as u64);
                print_status(&mut stdout, &r)?;
            }
            (None, true) => {
                let r = conn.request(&req, timeout).map_err(failed)?;
                histogram.saturating_record(started.elapsed().as_nanos() as u64);
                print_status(&mut stdout, &r)?;
                stdout
                    .write_all(r.body())
                    .map_err(|e| format!("stdout: {e}"))?;
                if repeat > 1 && !r.body().ends_with(b"\n") {
                    writeln!(stdout).map_err(|e| format!("stdout: {e}"))?;
                }
            }
            (_, false) => {
                conn.request_to(&req, &mut std::io::sink(), timeout)
                    .map_err(failed)?;
                histogram.saturating_record(started.elapsed().as_nanos() as u64);
            }
        }
    }
    if repeat > 1 {
        let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        writeln!(
            stdout,
            "{repeat} requests on 1 connection: p50 {:.1} us  p90 {:.1} us  p99 {:.1} us  \
             p99.9 {:.1} us  max {:.1} us",
            us(0.5),
            us(0.9),
            us(0.99),
            us(0.999),
            histogram.max() as f64 / 1000.0
        )
        .map_err(|e| format!("stdout: {e}"))?;
    }
    stdout.flush().map_err(|e| format!("stdout: {e}"))
}

fn print_status(out: &mut impl std::io::Write, r: &Response<'_>) -> Result<(), String> {
    let (major, minor) = r.version();
    writeln!(out, "HTTP/{major}.{minor} {} {}", r.status(), r.reason())
        .map_err(|e| format!("stdout: {e}"))
}
