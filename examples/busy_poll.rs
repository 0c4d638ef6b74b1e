//! The lowest-latency loop: the direct selector (no epoll: every endpoint is polled on every
//! round) on a thread pinned to one core, spinning on a WebSocket feed. Each message's latency is
//! read from the venue's send stamp (`"ts":<unix ns>`, same host clock).
//!
//! ```text
//! hotwire venue &
//! cargo run --release --example busy_poll -- "ws://127.0.0.1:9001/feed?rate=10000" 5 3
//! ```
//! Arguments: URL, SECONDS, and the core to pin to (default: the last one this process may use).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotwire::prelude::*;

#[derive(Debug, Default)]
struct Feed {
    messages: u64,
    latency_sum: Duration,
    latency_max: Duration,
    lost: u64,
}

struct Spin;

impl WsHandler<Feed> for Spin {
    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        _: &mut WsOut<'_>,
        f: &mut Feed,
    ) -> Result<Flow, Error> {
        if let Some(sent) = frame.text().and_then(stamp) {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let latency = Duration::from_nanos(now.saturating_sub(sent));
            f.messages += 1;
            f.latency_sum += latency;
            f.latency_max = f.latency_max.max(latency);
        }
        Ok(Flow::Continue)
    }

    fn on_event(&mut self, event: &Event<'_>, f: &mut Feed) {
        if let Event::Disconnected { reason, .. } = event {
            f.lost += 1;
            println!("disconnected: {reason}");
        }
    }
}

/// The venue's `"ts":N` send stamp.
fn stamp(text: &str) -> Option<u64> {
    let at = text.find("\"ts\":")? + 5;
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    text[at..at + digits].parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(seconds)) = (args.next(), args.next()) else {
        eprintln!("usage: busy_poll URL SECONDS [CORE]");
        std::process::exit(2);
    };
    let seconds: u64 = seconds.parse()?;
    let core = match args.next() {
        Some(c) => c.parse()?,
        None => *hotwire::cpu::current_affinity()?
            .last()
            .ok_or("no CPU in this process's affinity")?,
    };
    hotwire::cpu::pin_current(core)?;
    // The direct selector never sleeps: poll timeout zero, every endpoint polled every round.
    let mut service = DirectSelector::new().into_io_service_with_context();
    service.register(WsEndpoint::new(&url, Spin)?);
    let mut feed = Feed::default();
    let mut rounds: u64 = 0;
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        service.poll(&mut feed)?;
        rounds += 1;
    }
    let avg = feed
        .latency_sum
        .checked_div(feed.messages.max(1) as u32)
        .unwrap_or_default();
    println!(
        "{} messages on core {core} in {rounds} rounds, latency avg {} µs max {} µs, {} disconnects",
        feed.messages,
        avg.as_micros(),
        feed.latency_max.as_micros(),
        feed.lost
    );
    std::process::exit(if feed.lost == 0 && feed.messages > 0 {
        0
    } else {
        1
    });
}
