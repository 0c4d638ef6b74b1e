//! The HTTP/1.1 client against nginx, plain and TLS (a test CA, verification on): connection reuse
//! proven from nginx's access log, chunked (SSI) and gzip-chunked responses, 10 MB bodies both
//! ways, pipelining in order, POST bodies, the pool.
#![cfg(all(
    feature = "app",
    feature = "http",
    feature = "tls-rustls",
    feature = "tls-openssl"
))]

mod nginx;
mod util;

use std::time::Duration;

use hotwire::http::{
    connect, Body, HttpConfig, HttpConn, HttpPool, HttpUrl, Method, Request, Response,
};
use hotwire::service::IntoIoService;
use hotwire::stream::tls::{TlsBackend, TlsConfig, TlsConnector};
use hotwire::stream::TcpOptions;
use nginx::Nginx;

const T: Duration = Duration::from_secs(30);

fn connector(n: &Nginx, backend: TlsBackend) -> TlsConnector {
    TlsConfig {
        backend,
        ..TlsConfig::with_ca_file(&n.pki.ca_pem)
    }
    .build()
    .expect("TLS connector")
}

/// Every way of reaching this nginx: plain, TLS with rustls, TLS with OpenSSL.
fn origins(n: &Nginx) -> Vec<(&'static str, HttpUrl, Option<TlsConnector>)> {
    vec![
        ("plain", HttpUrl::parse(&n.url("/")).unwrap(), None),
        (
            "rustls",
            HttpUrl::parse(&n.tls_url("/")).unwrap(),
            Some(connector(n, TlsBackend::Rustls)),
        ),
        (
            "openssl",
            HttpUrl::parse(&n.tls_url("/")).unwrap(),
            Some(connector(n, TlsBackend::Openssl)),
        ),
    ]
}

fn open(url: &HttpUrl, tls: Option<&TlsConnector>) -> HttpConn {
    connect(url, tls, &TcpOptions::default(), &HttpConfig::default(), T).expect("connect")
}

fn header<'a>(r: &Response<'a>, name: &str) -> Option<&'a str> {
    r.header(name).map(|v| std::str::from_utf8(v).unwrap())
}

#[test]
fn thousand_requests_share_one_connection() {
    if !nginx::available() {
        return;
    }
    let n = Nginx::start();
    for (name, url, tls) in origins(&n) {
        let mut c = open(&url, tls.as_ref());
        for i in 0..1000 {
            let target = format!("/data/small.txt?reuse-{name}-{i}");
            let r = c.request(&Request::get(&target), T).unwrap();
            assert_eq!(
                (r.status(), r.body()),
                (200, &b"small file\n"[..]),
                "{name} {i}"
            );
            assert!(!r.closes_connection());
        }
        assert_eq!(c.responses(), 1000);
        let log = n.log_of(&format!("reuse-{name}-"), 1000);
        assert_eq!(log.len(), 1000, "{name}");
        let conn = log[0].connection;
        for (i, line) in log.iter().enumerate() {
            assert_eq!(
                line.connection, conn,
                "{name}: request {i} on another connection"
            );
            assert_eq!(line.connection_requests, i as u64 + 1, "{name}");
        }
    }
}

#[test]
fn pool_reuses_verified_tls_connections() {
    if !nginx::available() {
        return;
    }
    let n = Nginx::start();
    let mut pool = HttpPool::new().with_tls(connector(&n, TlsBackend::Rustls));
    let url = HttpUrl::parse(&n.tls_url("/")).unwrap();
    for i in 0..1000 {
        let target = format!("/data/small.txt?pool-{i}");
        let answer = pool.request(&url, &Request::get(&target)).unwrap();
        assert_eq!(answer.response().body(), b"small file\n");
    }
    let plain = HttpUrl::parse(&n.url("/")).unwrap();
    let answer = pool
        .request(&plain, &Request::get("/empty?pool-plain"))
        .unwrap();
    assert_eq!(answer.response().status(), 204);
    drop(answer);
    let stats = pool.stats();
    assert_eq!((stats.connects, stats.reuses, stats.retries), (2, 999, 0));
    assert_eq!(pool.idle(), 2);
    let log = n.log_of("pool-", 1001);
    assert_eq!(log.len(), 1001);
    assert!(log[..1000]
        .iter()
        .all(|l| l.connection == log[0].connection));
    assert_ne!(log[1000].connection, log[0].connection);

    // Verification is on: the same pool without the test CA refuses the server.
    let mut strict = HttpPool::new().with_timeout(Duration::from_secs(5));
    let e = strict.request(&url, &Request::get("/")).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("certificate") || text.contains("Certificate"),
        "{text}"
    );
}

#[test]
fn chunked_ssi_responses() {
    if !nginx::available() {
        return;
    }
    let n = Nginx::start();
    let want = nginx::ssi_expected();
    for (name, url, tls) in origins(&n) {
        let mut c = open(&url, tls.as_ref());
        for _ in 0..3 {
            let r = c.request(&Request::get("/ssi/page.html"), T).unwrap();
            assert_eq!(r.status(), 200, "{name}");
            assert_eq!(header(&r, "transfer-encoding"), Some("chunked"), "{name}");
            assert_eq!(r.header("content-length"), None, "{name}");
            assert!(r.body() == want.as_bytes(), "{name}: SSI body differs");
        }
    }
}

#[test]
fn gzip_chunked_bodies_arrive_intact() {
    if !nginx::available() || !util::require_peer("gzip", &util::system_bin("gzip")) {
        return;
    }
    let n = Nginx::start();
    for (name, url, tls) in origins(&n) {
        let mut c = open(&url, tls.as_ref());
        let req = Request::get("/gz/text.txt").with_headers(&[("Accept-Encoding", "gzip")]);
        let r = c.request(&req, T).unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-encoding"), Some("gzip"), "{name}");
        assert_eq!(header(&r, "transfer-encoding"), Some("chunked"), "{name}");
        let file = n.dir.path().join(format!("body-{name}.gz"));
        std::fs::write(&file, r.body()).unwrap();
        let out = std::process::Command::new(util::system_bin("gzip"))
            .arg("-dc")
            .arg(&file)
            .output()
            .expect("run gzip");
        assert!(out.status.success(), "{name}: gzip -dc failed: {out:?}");
        assert!(
            out.stdout == nginx::gz_text().as_bytes(),
            "{name}: decompressed body differs"
        );
    }
}

#[test]
fn ten_megabyte_bodies_are_byte_exact() {
    if !nginx::available() {
        return;
    }
    let n = Nginx::start();
    let big = nginx::big_body();
    for (name, url, tls) in origins(&n) {
        let mut c = open(&url, tls.as_ref());
        // Held in the connection buffer.
        let r = c.request(&Request::get("/data/big.bin"), T).unwrap();
        assert_eq!(header(&r, "content-length"), Some("10485760"));
        assert!(r.body() == big.as_slice(), "{name}: GET body differs");

        // Streamed into a file.
        let path = n.dir.path().join(format!("down-{name}.bin"));
        let mut file = std::fs::File::create(&path).unwrap();
        let r = c
            .request_to(&Request::get("/data/big.bin"), &mut file, T)
            .unwrap();
        assert_eq!((r.body().len(), r.body_len()), (0, big.len() as u64));
        drop(file);
        assert!(std::fs::read(&path).unwrap() == big, "{name}: file differs");

        // Uploaded with Content-Length and chunked, then read back.
        let target = format!("/dav/{name}.bin");
        let put = Request::new(Method::Put, &target).with_body(Body::Bytes(&big));
        let status = c.request(&put, T).unwrap().status();
        assert!(status == 201 || status == 204, "{name}: PUT {status}");
        assert!(std::fs::read(n.www().join(&target[1..])).unwrap() == big);
        let chunks: Vec<&[u8]> = big.chunks(1 << 20).collect();
        let put = Request::new(Method::Put, &target).with_body(Body::Chunked(&chunks));
        let status = c.request(&put, T).unwrap().status();
        assert_eq!(status, 204, "{name}: chunked PUT over an existing file");
        let r = c.request(&Request::get(&target), T).unwrap();
        assert!(r.body() == big.as_slice(), "{name}: uploaded body differs");
        assert_eq!(c.responses(), 5, "{name}: all on one connection");
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    if !nginx::available() {
        return;
    }
    let n = Nginx::start();
    for (name, url, tls) in origins(&n) {
        let mut c = open(&url, tls.as_ref());
        let targets: Vec<String> = (0..32)
            .map(|i| format!("/data/f{i}.txt?pipe-{name}-{i}"))
            .collect();
        for t in &targets {
            c.send(&Request::get(t)).unwrap();
        }
        assert_eq!(c.in_flight(), 32);
        for i in 0..32 {
            let r = c.wait_response(T).unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(
                r.body(),
                nginx::numbered(i).as_bytes(),
                "{name}: response {i}"
            );
        }
        // Mixed: HEAD (no body despite Content-Length), 204, 404, GET.
        c.send(&Request::head("/data/f5.txt")).unwrap();
        c.send(&Request::get("/empty")).unwrap();
        c.send(&Request::get("/missing")).unwrap();
        c.send(&Request::get("/data/f6.txt")).unwrap();
        let r = c.wait_response(T).unwrap();
        let len = nginx::numbered(5).len().to_string();
        assert_eq!((r.status(), r.body()), (200, &b""[..]));
        assert_eq!(header(&r, "content-length"), Some(len.as_str()));
        assert_eq!(c.wait_response(T).unwrap().status(), 204);
        assert_eq!(c.wait_response(T).unwrap().status(), 404);
        let r = c.wait_response(T).unwrap();
        assert_eq!(r.body(), nginx::numbered(6).as_bytes());
        let log = n.log_of(&format!("pipe-{name}-"), 32);
        assert_eq!(log.len(), 32);
        assert!(log.iter().all(|l| l.connection == log[0].connection));
    }
}

#[test]
fn post_bodies_reach_the_server() {
    if !nginx::available() {
        return;
    }
    let n = Nginx::start();
    for (name, url, tls) in origins(&n) {
        let mut c = open(&url, tls.as_ref());
        for size in [0usize, 1, 1000, 65_536, 1_000_000] {
            let body = vec![b'p'; size];
            let target = format!("/post?post-{name}-{size}");
            let req = Request::post(&target, &body);
            let r = c.request(&req, T).unwrap();
            assert_eq!(r.status(), 200, "{name} {size}");
            assert_eq!(r.body(), size.to_string().as_bytes(), "{name} {size}");
        }
        let chunks: [&[u8]; 3] = [b"part one, ", b"part two, ", b"end"];
        let target = format!("/post?post-{name}-chunked");
        let req = Request::new(Method::Post, &target).with_body(Body::Chunked(&chunks));
        assert_eq!(c.request(&req, T).unwrap().status(), 200);
        // Each body was read whole by nginx: otherwise the next request on the connection would
        // have started inside it and been refused.
        let log = n.log_of(&format!("post-{name}-"), 6);
        assert_eq!(log.len(), 6, "{name}");
        for line in &log {
            assert_eq!((line.method.as_str(), line.status), ("POST", 200), "{name}");
            assert_eq!(line.connection, log[0].connection, "{name}");
        }
        assert_eq!(c.responses(), 6);
    }
}

/// Runs `hotwire http ARGS...`.
fn probe(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hotwire"))
        .arg("http")
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run hotwire http")
}

#[test]
fn probe_prints_status_body_and_percentiles() {
    if !nginx::available() {
        return;
    }
    let n = Nginx::start();
    let out = probe(&[&n.url("/data/small.txt")]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "HTTP/1.1 200 OK\nsmall file\n"
    );

    let ca = n.pki.ca_pem.to_str().unwrap();
    let url = n.tls_url("/data/small.txt?probe-repeat");
    let out = probe(&[&url, "--ca", ca, "--repeat", "200"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200 OK\nsmall file\n"), "{text}");
    assert!(
        text.contains("200 requests on 1 connection: p50 "),
        "{text}"
    );
    let log = n.log_of("probe-repeat", 200);
    assert_eq!(log.len(), 200);
    assert!(log.iter().all(|l| l.connection == log[0].connection));

    let file = n.dir.path().join("probe-out.bin");
    let out = probe(&[
        &n.url("/post"),
        "--data",
        "twelve bytes",
        "-H",
        "X-Test: 1",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HTTP/1.1 200 OK\n");
    assert_eq!(std::fs::read(&file).unwrap(), b"12");

    // Failures: one line on stderr, non-zero exit.
    for args in [
        vec!["ftp://x/"],
        vec![&url],                            // test CA not trusted
        vec!["http://127.0.0.1:1/"],           // refused
        vec![&n.url("/"), "--method", "BREW"], // unknown method
    ] {
        let out = probe(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("hotwire http: "), "{err}");
    }
}

#[test]
fn endpoint_runs_a_request_schedule_in_the_io_service() {
    use hotwire::http::{HttpEndpoint, RequestSpec};
    use hotwire::select::MioSelector;
    use hotwire::service::EndpointState;

    if !nginx::available() {
        return;
    }
    let n = Nginx::start();
    let schedule = |tag: &str| {
        vec![
            RequestSpec::get(format!("/data/small.txt?{tag}")),
            RequestSpec::post(format!("/post?{tag}"), "{\"qty\":1}")
                .header("Content-Type", "application/json"),
            RequestSpec::get(format!("/ssi/page.html?{tag}")),
        ]
    };
    let histogram = || hdrhistogram::Histogram::<u64>::new(3).unwrap();
    let plain = HttpEndpoint::new(&n.url("/"), histogram())
        .and_then(|e| e.with_requests(schedule("ep-plain")))
        .unwrap()
        .with_pipeline(4);
    let tls = HttpEndpoint::new(&n.tls_url("/"), histogram())
        .and_then(|e| e.with_requests(schedule("ep-tls")))
        .unwrap()
        .with_tls(connector(&n, TlsBackend::Openssl));
    let paced = HttpEndpoint::new(&n.url("/"), histogram())
        .and_then(|e| e.with_requests(schedule("ep-paced")))
        .unwrap()
        .with_interval(Some(Duration::from_millis(20)));
    let mut service = MioSelector::new()
        .unwrap()
        .into_io_service()
        .with_poll_timeout(Duration::from_millis(1));
    let ids = [
        service.register(plain),
        service.register(tls),
        service.register(paced),
    ];
    let deadline = std::time::Instant::now() + T;
    while service.endpoint(ids[0]).stats().responses < 600
        || service.endpoint(ids[1]).stats().responses < 600
        || service.endpoint(ids[2]).stats().responses < 10
    {
        assert!(std::time::Instant::now() < deadline, "schedule too slow");
        service.poll(&mut ()).unwrap();
    }
    for (id, tag) in ids.iter().zip(["ep-plain", "ep-tls", "ep-paced"]) {
        assert_eq!(service.state(*id), EndpointState::Established, "{tag}");
        assert_eq!(service.stats(*id).connects, 1, "{tag}");
        let ep = service.endpoint(*id);
        let stats = ep.stats();
        assert_eq!(stats.by_class[2], stats.responses, "{tag}: all 2xx");
        assert_eq!(
            ep.handler().len(),
            stats.responses,
            "{tag}: one latency per response"
        );
        assert!(ep.handler().value_at_quantile(0.5) > 0);
        let log = n.log_of(tag, stats.responses as usize);
        assert!(log.len() as u64 >= stats.responses, "{tag}");
        assert!(
            log.iter().all(|l| l.connection == log[0].connection),
            "{tag}"
        );
    }
    // Paced: one request per 20 ms tick, never more than one in flight.
    let paced = service.endpoint(ids[2]).stats();
    assert!(paced.sent <= paced.responses + 1);
}
