//! The endpoints' builders never silently override one another: the precedence documented on
//! `WsEndpoint`, `HttpEndpoint` and `FixEndpoint`, whatever the call order.
#![cfg(all(
    feature = "ws",
    feature = "http",
    feature = "fix",
    feature = "tls-rustls"
))]

use std::time::Duration;

use hotwire::prelude::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

struct Silent;
impl WsHandler for Silent {
    fn on_frame(&mut self, _: Frame<'_>, _: &mut WsOut<'_>, _: &mut ()) -> Result<Flow, Error> {
        Ok(Flow::Continue)
    }
}
impl FixHandler for Silent {
    fn on_message(
        &mut self,
        _: hotwire::fix::codec::Message<'_>,
        _: &mut FixOutbox<'_>,
        _: Now,
        _: &mut (),
    ) -> Result<Flow, Error> {
        Ok(Flow::Continue)
    }
}

fn slow_policy() -> Policy {
    Policy {
        timer: Some(Duration::from_secs(1)),
        connect_timeout: MS(1234),
        ..Policy::default()
    }
}

#[test]
fn ws_with_timer_wins_over_the_policy_timer_in_either_order() {
    let url = "ws://127.0.0.1:9/";
    let a = WsEndpoint::new(url, Silent)
        .unwrap()
        .with_timer(MS(100))
        .with_policy(slow_policy());
    let b = WsEndpoint::new(url, Silent)
        .unwrap()
        .with_policy(slow_policy())
        .with_timer(MS(100));
    for e in [&a, &b] {
        assert_eq!(e.timer(), Some(MS(100)));
        let policy = Endpoint::<()>::policy(e);
        assert_eq!(policy.timer, Some(MS(100)));
        assert_eq!(
            policy.connect_timeout,
            MS(1234),
            "the rest of the policy is kept"
        );
    }
    // Without with_timer the policy's timer drives the handler (it used to tick for nothing).
    let c = WsEndpoint::new(url, Silent)
        .unwrap()
        .with_policy(slow_policy());
    assert_eq!(c.timer(), Some(Duration::from_secs(1)));
}

#[test]
fn http_keeps_its_own_tick_and_the_pipeline_beside_the_policy_and_config() {
    let url = "http://127.0.0.1:9/";
    let e = HttpEndpoint::new(url, ())
        .unwrap()
        .with_pipeline(4)
        .with_timeout(Duration::from_secs(1))
        .with_policy(slow_policy());
    assert_eq!(e.timer(), Some(Duration::from_secs(1)));
    // The response-timeout check (a quarter of the timeout) still runs: the policy's timer did
    // not replace it, and the handler's 1 s timer is a whole number of ticks.
    assert_eq!(Endpoint::<()>::policy(&e).timer, Some(MS(250)));
    // with_config sets the whole configuration, with_pipeline one field of it: the later call
    // decides the depth, and nothing else is reset.
    let config = hotwire::http::HttpConfig {
        max_in_flight: 2,
        ..Default::default()
    };
    let mut e = HttpEndpoint::new(url, ())
        .unwrap()
        .with_config(config.clone())
        .with_pipeline(8);
    // Creating a connection does not wait for it (nothing listens on port 9).
    let conn = Endpoint::<()>::create_target(&mut e, "127.0.0.1:9".parse().unwrap(), &mut ())
        .expect("a connection in progress");
    assert_eq!(conn.config().max_in_flight, 8);
    assert_eq!(conn.config().read_buffer, config.read_buffer);
}

#[test]
fn fix_keeps_its_heartbeat_tick_whatever_the_policy_says() {
    let mut session = SessionConfig::new(Version::Fix44, "A", "B");
    session.heartbeat_interval = Duration::from_secs(2);
    let url = "fix://127.0.0.1:9";
    let no_timer = FixEndpoint::new(url, session.clone(), Silent)
        .unwrap()
        .with_policy(Policy {
            timer: None,
            ..Policy::default()
        });
    // A quarter of the heartbeat interval: heartbeats and TestRequests keep running.
    assert_eq!(Endpoint::<()>::policy(&no_timer).timer, Some(MS(500)));
    let fast = FixEndpoint::new(url, session, Silent)
        .unwrap()
        .with_policy(slow_policy())
        .with_timer(MS(100));
    assert_eq!(fast.timer(), Some(MS(100)));
    assert_eq!(Endpoint::<()>::policy(&fast).timer, Some(MS(100)));
    assert!(FixEndpoint::new(
        "tcp://127.0.0.1:9",
        SessionConfig::new(Version::Fix44, "A", "B"),
        Silent
    )
    .is_err());
    assert!(FixEndpoint::new(
        "fixs://[::1]:9878",
        SessionConfig::new(Version::Fix44, "A", "B"),
        Silent
    )
    .is_ok());
}
