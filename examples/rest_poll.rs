//! REST polling with an HTTP handler that talks back: a timer asks for the server's time every
//! 200 ms, and each time response queues a follow-up (the order book) from inside `on_response`,
//! on the same keep-alive connection, while the response is still borrowed.
//!
//! ```text
//! hotwire venue --http-listen 127.0.0.1:8080 &
//! cargo run --example rest_poll -- http://127.0.0.1:8080 3
//! ```
//! Prints one line per response and a summary; exits 0 unless the connection was lost.

use std::time::{Duration, Instant};

use hotwire::prelude::*;

#[derive(Debug, Default)]
struct Tally {
    times: u64,
    books: u64,
    rtt_sum: Duration,
    lost: u64,
}

struct Poller;

impl HttpHandler<Tally> for Poller {
    fn on_response(
        &mut self,
        response: &Response<'_>,
        rtt: Duration,
        out: &mut HttpOut<'_>,
        t: &mut Tally,
    ) -> Result<Flow, Error> {
        t.rtt_sum += rtt;
        let body = std::str::from_utf8(response.body()).unwrap_or("<binary>");
        println!("{} in {} µs: {body}", response.status(), rtt.as_micros());
        if body.contains("\"bids\"") {
            t.books += 1;
        } else {
            t.times += 1;
            // The follow-up goes out on this connection before the response is released.
            out.send(&Request::get("/api/book?symbol=HWX"))?;
        }
        Ok(Flow::Continue)
    }

    fn on_timer(
        &mut self,
        out: &mut HttpOut<'_>,
        _: Instant,
        _: &mut Tally,
    ) -> Result<Flow, Error> {
        if out.can_send() {
            out.send(&Request::get("/api/time"))?;
        }
        Ok(Flow::Continue)
    }

    fn on_event(&mut self, event: &Event<'_>, t: &mut Tally) {
        if let Event::Disconnected { reason, .. } = event {
            t.lost += 1;
            println!("disconnected: {reason}");
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(seconds)) = (args.next(), args.next()) else {
        eprintln!("usage: rest_poll URL SECONDS");
        std::process::exit(2);
    };
    let seconds: u64 = seconds.parse()?;
    let endpoint = HttpEndpoint::new(&url, Poller)?
        .with_pipeline(2)
        .with_timer(Duration::from_millis(200));
    let mut service = MioSelector::new()?
        .into_io_service_with_context()
        .with_poll_timeout(Duration::from_millis(1));
    service.register(endpoint);
    let mut tally = Tally::default();
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        service.poll(&mut tally)?;
    }
    let responses = tally.times + tally.books;
    println!(
        "{} time responses, {} book follow-ups, avg {} µs, {} disconnects",
        tally.times,
        tally.books,
        tally
            .rtt_sum
            .checked_div(responses.max(1) as u32)
            .unwrap_or_default()
            .as_micros(),
        tally.lost
    );
    std::process::exit(if tally.lost == 0 { 0 } else { 1 });
}
