//! `FixEndpoint` in an `IoService` against the QuickFIX executor: the service connects and logs
//! on, the handler sends orders on logon and closes (a clean Logout) once every order is filled;
//! a second run on the same file store continues the sequence numbers.
#![cfg(all(feature = "fix", feature = "tls-rustls", feature = "tls-openssl"))]

mod fix_support;
mod util;

use std::time::{Duration, Instant};

use fix_support::{Executor, SessionSpec, EXECUTOR};
use hotwire::fix::codec::{Decimal, Message, MsgType};
use hotwire::fix::endpoint::{FixEndpoint, FixHandler, FixOutbox};
use hotwire::fix::orders::{ExecReport, NewOrder, Side};
use hotwire::fix::{Now, SessionConfig, Version};
use hotwire::select::MioSelector;
use hotwire::service::IntoIoService;
use hotwire::service::{Disconnect, EndpointState, Error, Event, Flow, Policy};

#[derive(Debug, Default)]
struct Desk {
    filled: u64,
    logons: u64,
    closed_on_request: bool,
}

struct Orders {
    count: u64,
    prefix: &'static str,
}

impl FixHandler<Desk> for Orders {
    fn on_logon(
        &mut self,
        out: &mut FixOutbox<'_>,
        now: Now,
        desk: &mut Desk,
    ) -> Result<(), Error> {
        desk.logons += 1;
        let version = out.session().config().version;
        for i in 0..self.count {
            let id = format!("{}-{i}", self.prefix);
            let order = NewOrder {
                cl_ord_id: &id,
                symbol: "HWIR",
                side: Side::Sell,
                qty: Decimal::new(5, 0),
                price: Some(Decimal::new(99, 0)),
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
        desk: &mut Desk,
    ) -> Result<Flow, Error> {
        assert_eq!(msg.msg_type(), MsgType::ExecutionReport, "{msg:?}");
        let er = ExecReport::from_message(&msg).expect("report");
        assert!(er.cl_ord_id.starts_with(self.prefix.as_bytes()));
        if er.is_filled() {
            desk.filled += 1;
        }
        Ok(if desk.filled == self.count {
            Flow::Close
        } else {
            Flow::Continue
        })
    }

    fn on_event(&mut self, event: &Event<'_>, desk: &mut Desk) {
        if let Event::Disconnected { reason, .. } = event {
            desk.closed_on_request = matches!(reason, Disconnect::Requested);
        }
    }
}

fn run_once(port: u16, store: &std::path::Path, prefix: &'static str) -> Desk {
    let mut config = SessionConfig::new(Version::Fix44, "CLIENTEP", EXECUTOR);
    config.heartbeat_interval = Duration::from_secs(5);
    // The default policy reconnects after failures, not after the handler's own close: the
    // endpoint must stop after one Logon (a second would resend every order from on_logon).
    let endpoint = FixEndpoint::new(
        &format!("fix://127.0.0.1:{port}"),
        config,
        Orders { count: 200, prefix },
    )
    .unwrap()
    .with_file_store(store)
    .with_policy(Policy::default());
    let mut service = MioSelector::new()
        .unwrap()
        .into_io_service_with_context()
        .with_poll_timeout(Duration::from_millis(5));
    let id = service.register(endpoint);
    let mut desk = Desk::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while service.state(id) != EndpointState::Stopped {
        assert!(
            Instant::now() < deadline,
            "endpoint did not finish: {desk:?}"
        );
        service.poll(&mut desk).expect("service poll");
    }
    desk
}

#[test]
fn endpoint_orders_and_clean_logout_with_a_file_store() {
    let Some(bin) = fix_support::executor() else {
        return;
    };
    let exec = Executor::start(
        &bin,
        &[SessionSpec {
            begin_string: "FIX.4.4",
            client: "CLIENTEP",
            reset_on_logon: false,
        }],
        None,
    );
    let store = tempfile::tempdir().unwrap();
    for prefix in ["first", "second"] {
        let desk = run_once(exec.port, store.path(), prefix);
        assert_eq!((desk.logons, desk.filled), (1, 200), "{prefix}");
        assert!(
            desk.closed_on_request,
            "{prefix}: the endpoint asked to close"
        );
    }
    let log = exec.messages();
    let logons: Vec<Option<&str>> = log
        .iter()
        .filter(|m| m.incoming && m.get(35) == Some("A"))
        .map(|m| m.get(34))
        .collect();
    // Logon, 200 orders and a Logout per run: the second run starts at 203.
    assert_eq!(logons, [Some("1"), Some("203")]);
    let logouts = log.iter().filter(|m| m.get(35) == Some("5")).count();
    assert_eq!(logouts, 4, "a Logout each way, twice");
}
