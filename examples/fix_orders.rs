//! Order entry over FIX: logs on, sends COUNT limit orders from `on_logon`, counts the fills, and
//! closes on purpose (a Logout) when every order is filled. A close on purpose does not
//! reconnect, so `on_logon` — and its orders — never run twice.
//!
//! ```text
//! hotwire venue --fix-listen 127.0.0.1:9878 &
//! cargo run --example fix_orders -- fix://127.0.0.1:9878 100
//! ```
//! Prints a summary and exits 0 once all orders are filled and the session is down.

use std::time::{Duration, Instant};

use hotwire::fix::codec::{Decimal, Message, MsgType};
use hotwire::fix::orders::{ExecReport, NewOrder, Side};
use hotwire::prelude::*;
use hotwire::service::EndpointState;

#[derive(Debug, Default)]
struct Desk {
    logons: u64,
    filled: u64,
    ended: Option<String>,
}

struct Orders {
    count: u64,
    /// The ClOrdID being formatted (reused: no allocation per order).
    id: String,
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
            use std::fmt::Write;
            self.id.clear();
            let _ = write!(self.id, "ord-{i}");
            let order = NewOrder {
                cl_ord_id: &self.id,
                symbol: "HWX",
                side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
                qty: Decimal::new(10, 0),
                price: Some(Decimal::new(10125, 2)),
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
        if msg.msg_type() == MsgType::ExecutionReport
            && ExecReport::from_message(&msg).is_ok_and(|er| er.is_filled())
        {
            desk.filled += 1;
        }
        Ok(if desk.filled == self.count {
            Flow::Close
        } else {
            Flow::Continue
        })
    }

    fn on_event(&mut self, event: &Event<'_>, desk: &mut Desk) {
        match event {
            Event::Connected { addr } => println!("connected to {addr}"),
            Event::Disconnected { reason, .. } => desk.ended = Some(reason.to_string()),
            _ => {}
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(count)) = (args.next(), args.next()) else {
        eprintln!("usage: fix_orders fix://HOST:PORT COUNT");
        std::process::exit(2);
    };
    let count: u64 = count.parse()?;
    let session = SessionConfig::new(Version::Fix44, "DESK", "VENUE");
    let orders = Orders {
        count,
        id: String::with_capacity(24),
    };
    let mut service = MioSelector::new()?
        .into_io_service_with_context()
        .with_poll_timeout(Duration::from_millis(1));
    let id = service.register(FixEndpoint::new(&url, session, orders)?);
    let mut desk = Desk::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while service.state(id) != EndpointState::Stopped && Instant::now() < deadline {
        service.poll(&mut desk)?;
    }
    let ended = desk.ended.as_deref().unwrap_or("still up");
    println!(
        "{} logon, {} of {count} orders filled, ended: {ended}",
        desk.logons, desk.filled
    );
    let ok = desk.logons == 1 && desk.filled == count && ended == "closed by the endpoint";
    std::process::exit(if ok { 0 } else { 1 });
}
