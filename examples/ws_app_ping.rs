//! An exchange's application-level heartbeat, both ways, from a WebSocket handler that talks back:
//!
//! - every text message `{"op":"ping","id":N}` is answered with `{"op":"pong","id":N}` from inside
//!   the frame handler, while the frame is still borrowed (no copy, no allocation);
//! - every second a timer sends `{"op":"ping","ts":<unix ns>}`; when `{"op":"pong","ts":...}`
//!   comes back the round trip is printed;
//! - after SECONDS it prints a one-line summary and exits 0 (1 if the connection was lost).
//!
//! ```text
//! hotwire venue &                                   # ws://127.0.0.1:9001
//! cargo run --example ws_app_ping -- "ws://127.0.0.1:9001/ping" 5
//! ```

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotwire::prelude::*;

/// What the handler counts.
#[derive(Debug, Default)]
struct Tally {
    answered: u64,
    sent: u64,
    round_trips: u64,
    rtt_sum: Duration,
    rtt_max: Duration,
    lost: u64,
}

struct AppPing;

impl WsHandler<Tally> for AppPing {
    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        ws: &mut WsOut<'_>,
        t: &mut Tally,
    ) -> Result<Flow, Error> {
        let Some(text) = frame.text() else {
            return Ok(Flow::Continue);
        };
        if op_is(text, "ping") {
            if let Some(id) = number(text, "id") {
                // Formatted on the stack: answering allocates nothing.
                let mut buf = [0u8; 48];
                let reply = format_into(&mut buf, format_args!(r#"{{"op":"pong","id":{id}}}"#));
                ws.send_text(reply)?;
                t.answered += 1;
            }
        } else if op_is(text, "pong") {
            if let Some(ts) = number(text, "ts") {
                let rtt = Duration::from_nanos(unix_ns().saturating_sub(ts));
                t.round_trips += 1;
                t.rtt_sum += rtt;
                t.rtt_max = t.rtt_max.max(rtt);
                println!("round trip {} µs", rtt.as_micros());
            }
        }
        Ok(Flow::Continue)
    }

    fn on_timer(&mut self, ws: &mut WsOut<'_>, _: Instant, t: &mut Tally) -> Result<Flow, Error> {
        let mut buf = [0u8; 48];
        let ping = format_into(
            &mut buf,
            format_args!(r#"{{"op":"ping","ts":{}}}"#, unix_ns()),
        );
        ws.send_text(ping)?;
        t.sent += 1;
        Ok(Flow::Continue)
    }

    fn on_event(&mut self, event: &Event<'_>, t: &mut Tally) {
        match event {
            Event::Connected { addr } => println!("connected to {addr}"),
            Event::Disconnected { reason, .. } => {
                t.lost += 1;
                println!("disconnected: {reason}");
            }
            _ => {}
        }
    }
}

/// `"op":"<op>"` in a flat JSON text.
fn op_is(text: &str, op: &str) -> bool {
    text.split("\"op\":\"")
        .nth(1)
        .is_some_and(|rest| rest.strip_prefix(op).is_some_and(|r| r.starts_with('"')))
}

/// The number after `"key":` in a flat JSON text.
fn number(text: &str, key: &str) -> Option<u64> {
    let mut pattern = [0u8; 16];
    let pattern = format_into(&mut pattern, format_args!("\"{key}\":"));
    let at = text.find(pattern)? + pattern.len();
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    text[at..at + digits].parse().ok()
}

/// Formats into `buf` and returns the text (cut short if it does not fit).
fn format_into<'a>(buf: &'a mut [u8], args: std::fmt::Arguments<'_>) -> &'a str {
    let mut cursor = std::io::Cursor::new(&mut *buf);
    let _ = cursor.write_fmt(args);
    let n = cursor.position() as usize;
    std::str::from_utf8(&buf[..n]).unwrap_or("")
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(seconds)) = (args.next(), args.next()) else {
        eprintln!("usage: ws_app_ping URL SECONDS");
        std::process::exit(2);
    };
    let seconds: u64 = seconds.parse()?;
    let mut service = MioSelector::new()?
        .into_io_service_with_context()
        .with_poll_timeout(Duration::from_millis(1));
    service.register(WsEndpoint::new(&url, AppPing)?.with_timer(Duration::from_secs(1)));
    let mut tally = Tally::default();
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        service.poll(&mut tally)?;
    }
    let avg = tally
        .rtt_sum
        .checked_div(tally.round_trips as u32)
        .unwrap_or_default();
    println!(
        "answered {} pings, sent {}, {} round trips (avg {} µs, max {} µs), {} disconnects",
        tally.answered,
        tally.sent,
        tally.round_trips,
        avg.as_micros(),
        tally.rtt_max.as_micros(),
        tally.lost
    );
    std::process::exit(if tally.lost == 0 { 0 } else { 1 });
}
