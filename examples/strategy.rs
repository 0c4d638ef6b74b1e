//! A strategy process behind the hotwire gateway, in Rust: the same as `examples/strategy.py`.
//!
//! It reads the feed endpoint's messages from `hotwire/<feed>/in`, sends a FIX NewOrderSingle on
//! `hotwire/<orders>/send` for every Nth message (business fields only: the appliance's FIX
//! session adds the header and trailer), matches each ExecutionReport on `hotwire/<orders>/in` to
//! its order by ClOrdID, and prints:
//!
//! - appliance → strategy latency: the sample's `recv_ns` (when the appliance read the bytes) to
//!   the moment this process holds the sample, both `CLOCK_REALTIME` on one host;
//! - tick-to-trade from the venue's clock at both ends: the feed message's send time (`"ts":<ns>`)
//!   to the order's arrival at the venue (`58=recv_ns=<ns>` in the ExecutionReport).
//!
//! `--orders-count 0` only reads the feed (the latency benchmark). It busy-polls one thread; pin
//! it with `--core`, or let it yield when idle (`--yield-when-idle`) on a shared core. The shared-memory prefix comes from `HOTWIRE_GATEWAY_PREFIX`, as in the
//! appliance. Output ends with one line `strategy feed_n=… app_to_strategy_p50_ns=… … t2t_p50_ns=…`.
//!
//! ```text
//! HOTWIRE_GATEWAY_PREFIX=hw_ hotwire run config/gateway.toml &
//! HOTWIRE_GATEWAY_PREFIX=hw_ cargo run --release --features gateway --example strategy -- --every 100
//! ```

use std::collections::HashMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;

use hotwire::fix::codec::SOH;
use hotwire::gateway::{iceoryx_config, realtime_ns, service_name, HotwireHeader, Kind};

#[derive(Parser, Debug)]
#[command(about = "A Rust strategy behind the hotwire gateway")]
struct Args {
    /// The feed endpoint's name.
    #[arg(long, default_value = "feed")]
    feed: String,
    /// The FIX endpoint's name.
    #[arg(long, default_value = "orders")]
    orders: String,
    /// One order per this many feed messages.
    #[arg(long, default_value_t = 100)]
    every: u64,
    /// Stop after this many orders (0: read the feed only, for `--seconds`).
    #[arg(long, default_value_t = 100)]
    orders_count: u64,
    /// Feed-only mode: read for this many seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Pin the polling thread to this core.
    #[arg(long)]
    core: Option<usize>,
    /// Yield the core when nothing arrived (a busy poll that shares its core with another
    /// process, e.g. the venue in the benchmark).
    #[arg(long)]
    yield_when_idle: bool,
    /// Symbol and limit price of the orders.
    #[arg(long, default_value = "HWX")]
    symbol: String,
    /// Limit price.
    #[arg(long, default_value = "101.25")]
    price: String,
}

type In = Subscriber<ipc::Service, [u8], HotwireHeader>;
type Out = Publisher<ipc::Service, [u8], HotwireHeader>;

fn open(
    node: &Node<ipc::Service>,
    name: &str,
    deadline: Instant,
) -> Result<
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<
        ipc::Service,
        [u8],
        HotwireHeader,
    >,
    Box<dyn std::error::Error>,
> {
    let service_name: ServiceName = name.try_into()?;
    loop {
        // No QoS setter: the appliance's settings hold (an early strategy must not create the
        // service with iceoryx2's small defaults).
        match node
            .service_builder(&service_name)
            .publish_subscribe::<[u8]>()
            .user_header::<HotwireHeader>()
            .open()
        {
            Ok(s) => return Ok(s),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("{name}: {e:?}").into()),
        }
    }
}

fn subscribe(
    node: &Node<ipc::Service>,
    name: &str,
    deadline: Instant,
) -> Result<In, Box<dyn std::error::Error>> {
    let s = open(node, name, deadline)?;
    let depth = s.static_config().subscriber_max_buffer_size();
    Ok(s.subscriber_builder().buffer_size(depth).create()?)
}

/// `"ts":<digits>` in a feed message.
fn feed_ts(msg: &[u8]) -> Option<u64> {
    hotwire::app::feed::embedded_timestamp(msg)
}

/// The value of `tag` (e.g. `b"11"`) in a FIX message.
fn field<'a>(msg: &'a [u8], tag: &[u8]) -> Option<&'a [u8]> {
    msg.split(|&b| b == SOH).find_map(|f| {
        let rest = f.strip_prefix(tag)?;
        rest.strip_prefix(b"=")
    })
}

fn line(h: &Histogram<u64>, name: &str) -> String {
    if h.is_empty() {
        return format!("{name}_n=0");
    }
    format!(
        "{name}_n={} {name}_p50_ns={} {name}_p99_ns={} {name}_p999_ns={} {name}_max_ns={}",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(core) = args.core {
        hotwire::cpu::pin_current(core)?;
    }
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    let node = NodeBuilder::new()
        .config(&iceoryx_config()?)
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()
        .map_err(|e| format!("node: {e:?}"))?;
    let feed = subscribe(&node, &service_name(&args.feed, "in"), deadline)?;
    let trading = args.orders_count > 0;
    let (replies, orders): (Option<In>, Option<Out>) = if trading {
        let replies = subscribe(&node, &service_name(&args.orders, "in"), deadline)?;
        // DiscardData: a full appliance queue drops the order here, never blocks the strategy.
        let orders = open(&node, &service_name(&args.orders, "send"), deadline)?
            .publisher_builder()
            .initial_max_slice_len(256)
            .backpressure_strategy(BackpressureStrategy::DiscardData)
            .create()?;
        (Some(replies), Some(orders))
    } else {
        (None, None)
    };
    println!("ready");
    std::io::stdout().flush()?;

    let mut app_to_here = Histogram::<u64>::new(3)?;
    let mut t2t = Histogram::<u64>::new(3)?;
    let mut pending: HashMap<u64, Option<u64>> = HashMap::new();
    let (mut seen, mut sent, mut reports) = (0u64, 0u64, 0u64);
    // Gaps in the feed's seq: messages this subscriber did not get (with the default
    // `publish_overflow = "drop_oldest"` this is the only place such drops show).
    let (mut expected, mut gaps, mut missed) = (None::<u64>, 0u64, 0u64);
    let mut order = Vec::with_capacity(256);
    let mut first: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now > deadline {
            break;
        }
        if trading && sent == args.orders_count && pending.is_empty() {
            break;
        }
        if !trading && first.is_some_and(|t| now.duration_since(t).as_secs_f64() > args.seconds) {
            break;
        }
        let mut idle = true;
        if let Some(s) = feed.receive()? {
            idle = false;
            let at = realtime_ns();
            first.get_or_insert(now);
            seen += 1;
            let seq = s.user_header().seq;
            match expected {
                // seq 1 again: a new appliance.
                Some(e) if seq != e && seq != 1 => {
                    gaps += 1;
                    missed += seq.saturating_sub(e);
                    eprintln!(
                        "{}: gap: seq {seq} after {} ({} messages dropped for this subscriber)",
                        args.feed,
                        e - 1,
                        seq.saturating_sub(e)
                    );
                }
                _ => {}
            }
            expected = Some(seq + 1);
            // The first messages include connection setup: leave them out.
            if seen > 100 {
                let _ = app_to_here.record(at.saturating_sub(s.user_header().recv_ns));
            }
            if let Some(orders) = &orders {
                if seen % args.every == 0 && sent < args.orders_count {
                    sent += 1;
                    pending.insert(sent, feed_ts(s.payload()));
                    order.clear();
                    write!(
                        order,
                        "35=D\x0111=R{sent}\x0155={}\x0154=1\x0138=1\x0140=2\x0144={}\x0121=1\x01",
                        args.symbol, args.price
                    )?;
                    let mut sample = orders.loan_slice_uninit(order.len())?;
                    *sample.user_header_mut() = HotwireHeader {
                        recv_ns: at,
                        kind: Kind::Fix as u32,
                        ..HotwireHeader::default()
                    };
                    sample.write_from_slice(&order).send()?;
                }
            }
        }
        if let Some(replies) = &replies {
            if let Some(s) = replies.receive()? {
                idle = false;
                let msg = s.payload();
                if field(msg, b"35") != Some(b"8") {
                    continue;
                }
                let id = field(msg, b"11")
                    .and_then(|v| v.strip_prefix(b"R"))
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok());
                if let Some(ts) = id.and_then(|id| pending.remove(&id)) {
                    reports += 1;
                    let venue_in = field(msg, b"58")
                        .and_then(|v| v.strip_prefix(b"recv_ns="))
                        .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok());
                    if let (Some(ts), Some(venue_in)) = (ts, venue_in) {
                        let _ = t2t.record(venue_in.saturating_sub(ts));
                    }
                }
            }
        }
        if idle && args.yield_when_idle {
            std::thread::yield_now();
        }
    }
    println!(
        "strategy feed_n={seen} feed_gaps={gaps} feed_missed={missed} orders={sent} \
         reports={reports} unanswered={} {} {}",
        pending.len(),
        line(&app_to_here, "app_to_strategy"),
        line(&t2t, "t2t")
    );
    if trading && reports != args.orders_count {
        return Err(format!("{reports} of {} orders answered", args.orders_count).into());
    }
    Ok(())
}
