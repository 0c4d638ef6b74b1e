//! The HTTP and FIX endpoints exist in every build with their protocol feature, TLS backend or not
//! (the WebSocket endpoint already did): plain `http://` against nginx and plain `fix://` against
//! the QuickFIX executor, and the secure schemes refused up front when no TLS backend is compiled
//! in. CI also runs this file with `--no-default-features --features http,fix`
//! (`scripts/features.sh`), which is the build it is about.
#![cfg(all(feature = "http", feature = "fix"))]

mod fix_support;
mod nginx;
mod util;

use std::time::{Duration, Instant};

use fix_support::{Executor, SessionSpec, EXECUTOR};
use hotwire::fix::codec::{Decimal, Message, MsgType};
use hotwire::fix::endpoint::{FixEndpoint, FixHandler, FixOutbox};
use hotwire::fix::orders::{ExecReport, NewOrder, Side};
use hotwire::fix::{Now, SessionConfig, Version};
use hotwire::http::{HttpEndpoint, HttpHandler, HttpOut, HttpPool, HttpUrl, RequestSpec, Response};
use hotwire::select::MioSelector;
use hotwire::service::{EndpointState, Error, Flow, IntoIoService, Policy};
use nginx::Nginx;

const T: Duration = Duration::from_secs(30);

/// Counts responses whose body is exactly `/data/f{N}.txt`'s.
#[derive(Debug, Default)]
struct Bodies {
    ok: u64,
    wrong: u64,
}

impl HttpHandler for Bodies {
    fn on_response(
        &mut self,
        response: &Response<'_>,
        _: Duration,
        _: &mut HttpOut<'_>,
        _: &mut (),
    ) -> Result<Flow, Error> {
        if response.status() == 200 && response.body() == nginx::numbered(5).as_bytes() {
            self.ok += 1;
        } else {
            self.wrong += 1;
        }
        Ok(Flow::Continue)
    }
}

#[test]
fn http_endpoint_and_pool_over_plain_http() {
    if !nginx::available() {
        return;
    }
    let n = Nginx::start();
    let endpoint = HttpEndpoint::new(&n.url("/"), Bodies::default())
        .and_then(|e| e.with_requests(vec![RequestSpec::get("/data/f5.txt?plain-ep")]))
        .unwrap()
        .with_pipeline(4);
    let mut service = MioSelector::new()
        .unwrap()
        .into_io_service()
        .with_poll_timeout(Duration::from_millis(1));
    let id = service.register(endpoint);
    let deadline = Instant::now() + T;
    while service.endpoint(id).handler().ok + service.endpoint(id).handler().wrong < 300 {
        assert!(Instant::now() < deadline, "schedule too slow");
        service.poll(&mut ()).unwrap();
    }
    let handler = service.endpoint(id).handler();
    assert_eq!(handler.wrong, 0, "every body byte-exact");
    assert_eq!(service.stats(id).connects, 1);
    assert!(n.log_of("plain-ep", 300).len() >= 300, "nginx saw them");

    let mut pool = HttpPool::new();
    let url = HttpUrl::parse(&n.url("/data/f3.txt?plain-pool")).unwrap();
    for _ in 0..20 {
        let r = pool.get(&url).unwrap();
        assert_eq!(r.response().status(), 200);
        assert_eq!(r.response().body(), nginx::numbered(3).as_bytes());
    }
    assert_eq!(pool.stats().connects, 1, "one kept-alive connection");
}

/// Sends `count` orders on logon and closes once all are filled.
#[derive(Debug)]
struct Orders {
    count: u64,
    filled: u64,
}

impl FixHandler for Orders {
    fn on_logon(&mut self, out: &mut FixOutbox<'_>, now: Now, _: &mut ()) -> Result<(), Error> {
        let version = out.session().config().version;
        for i in 0..self.count {
            let id = format!("plain-{i}");
            let order = NewOrder {
                cl_ord_id: &id,
                symbol: "HWIR",
                side: Side::Buy,
                qty: Decimal::new(3, 0),
                price: Some(Decimal::new(101, 0)),
                time_in_force: None,
                account: None,
            };
            out.send(now, NewOrder::MSG_TYPE, |e| {
                order.encode(e, version, now.utc)
            })?;
        }
        Ok(())
    }

    fn on_message(
        &mut self,
        msg: Message<'_>,
        _: &mut FixOutbox<'_>,
        _: Now,
        _: &mut (),
    ) -> Result<Flow, Error> {
        if msg.msg_type() == MsgType::ExecutionReport
            && ExecReport::from_message(&msg).is_ok_and(|er| er.is_filled())
        {
            self.filled += 1;
        }
        Ok(if self.filled == self.count {
            Flow::Close
        } else {
            Flow::Continue
        })
    }
}

#[test]
fn fix_endpoint_over_plain_fix() {
    let Some(bin) = fix_support::executor() else {
        return;
    };
    let exec = Executor::start(
        &bin,
        &[SessionSpec {
            begin_string: "FIX.4.4",
            client: "PLAINEP",
            reset_on_logon: true,
        }],
        None,
    );
    let mut config = SessionConfig::new(Version::Fix44, "PLAINEP", EXECUTOR);
    config.reset_on_logon = true;
    let endpoint = FixEndpoint::new(
        &format!("fix://127.0.0.1:{}", exec.port),
        config,
        Orders {
            count: 100,
            filled: 0,
        },
    )
    .unwrap()
    .with_policy(Policy::default());
    let mut service = MioSelector::new()
        .unwrap()
        .into_io_service()
        .with_poll_timeout(Duration::from_millis(5));
    let id = service.register(endpoint);
    let deadline = Instant::now() + T;
    while service.state(id) != EndpointState::Stopped {
        assert!(Instant::now() < deadline, "orders not filled in time");
        service.poll(&mut ()).unwrap();
    }
    assert_eq!(service.endpoint(id).handler().filled, 100);
}

/// Without a TLS backend the secure schemes are refused when the endpoint is made, with a
/// message naming the features; with one they are accepted (nothing is dialled here).
#[test]
fn secure_schemes_need_a_tls_backend() {
    let https = HttpEndpoint::new("https://127.0.0.1:1/", Bodies::default());
    let config = SessionConfig::new(Version::Fix44, "PLAINEP", EXECUTOR);
    let fixs = FixEndpoint::new(
        "fixs://127.0.0.1:1",
        config,
        Orders {
            count: 0,
            filled: 0,
        },
    );
    let mut pool = HttpPool::new();
    let pool = pool
        .get(&HttpUrl::parse("https://127.0.0.1:1/").unwrap())
        .map(|_| ());
    if cfg!(any(feature = "tls-rustls", feature = "tls-openssl")) {
        assert!(https.is_ok() && fixs.is_ok());
        assert!(pool.is_err(), "port 1 refuses the connection");
    } else {
        for (what, err) in [("https", https.err()), ("fixs", fixs.err())] {
            match err {
                Some(Error::Io(e)) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{what}");
                    assert!(e.to_string().contains("tls-rustls"), "{what}: {e}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        let e = pool.expect_err("https refused by the pool").to_string();
        assert!(e.contains("tls-rustls"), "{e}");
    }
}
