//! A flood and a slow handler: the venue sends its feed as fast as TCP lets it while the handler
//! spends 20 µs on each message. Memory stays bounded (the WebSocket client's buffers are fixed;
//! back-pressure reaches the venue through TCP), and another endpoint on the same IO thread keeps
//! its 10 ms timer: each tick comes at most one batch of frames (`FRAMES_PER_POLL` × 20 µs ≈ 20 ms)
//! late, asserted with a generous margin for a shared machine.
#![cfg(all(
    feature = "venue",
    feature = "ws",
    any(feature = "tls-rustls", feature = "tls-openssl")
))]

mod util;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hotwire::select::MioSelector;
use hotwire::service::ws::{WsEndpoint, WsHandler, WsOut, FRAMES_PER_POLL};
use hotwire::service::IntoIoService;
use hotwire::service::{Error, Flow, Mixed};
use hotwire::ws::Frame;
use util::ChildGuard;

const HOTWIRE: &str = env!("CARGO_BIN_EXE_hotwire");

/// What the handlers measure.
#[derive(Default)]
struct Figures {
    messages: u64,
    ticks: u64,
    /// The longest time between two timer ticks.
    longest_gap: Duration,
}

/// Spends `work` on every data message (a busy wait: sleeps are far coarser than 20 µs).
struct Slow {
    work: Duration,
}

impl WsHandler<Figures> for Slow {
    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        _: &mut WsOut<'_>,
        figures: &mut Figures,
    ) -> Result<Flow, Error> {
        if !frame.opcode().is_control() {
            figures.messages += 1;
            let until = Instant::now() + self.work;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        Ok(Flow::Continue)
    }
}

impl util::Ticks for Figures {
    fn tick(&mut self, gap: Duration) {
        self.longest_gap = self.longest_gap.max(gap);
        self.ticks += 1;
    }
}

#[test]
fn a_slow_handler_under_a_flood_keeps_memory_bounded_and_timers_running() {
    let port = util::free_port();
    let mut cmd = Command::new(HOTWIRE);
    cmd.args(["venue", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut venue = ChildGuard::spawn(&mut cmd);
    let mut out = BufReader::new(venue.child().stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert!(line.starts_with("venue:"), "venue did not start: {line}");
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));

    let work = Duration::from_micros(20);
    let url = format!("ws://127.0.0.1:{port}/feed?rate=1000000&size=256");
    let mut service = MioSelector::new()
        .expect("selector")
        .into_io_service_with_context();
    service.register(Mixed::A(
        WsEndpoint::new(&url, Slow { work }).expect("endpoint"),
    ));
    service.register(Mixed::B(util::Ticker { port, last: None }));
    let mut figures = Figures::default();
    let run = |service: &mut hotwire::service::IoService<_, _, Figures>,
               figures: &mut Figures,
               time: Duration| {
        let until = Instant::now() + time;
        while Instant::now() < until {
            service.poll(figures).expect("the service never fails");
        }
    };
    // Warm up: connected, the flood under way, the buffers at their working size.
    run(&mut service, &mut figures, Duration::from_secs(1));
    assert!(figures.messages > 1000, "{} messages", figures.messages);
    let rss_before = util::rss_kib();
    let (messages_before, ticks_before) = (figures.messages, figures.ticks);
    figures.longest_gap = Duration::ZERO;
    let flood = Duration::from_secs(5);
    run(&mut service, &mut figures, flood);
    let rss_after = util::rss_kib();
    let messages = figures.messages - messages_before;
    let ticks = figures.ticks - ticks_before;
    let batch = work * FRAMES_PER_POLL as u32;
    eprintln!(
        "flood with a {work:?}/message handler: {messages} messages in {flood:?} ({:.0}/s), \
         RSS {rss_before} KiB -> {rss_after} KiB, {ticks} timer ticks of 10 ms, longest gap {:?} \
         (one batch of frames: {batch:?})",
        messages as f64 / flood.as_secs_f64(),
        figures.longest_gap
    );
    // The handler is the bottleneck: close to one message per 20 µs.
    assert!(messages > 50_000, "{messages} messages");
    assert!(
        rss_after <= rss_before + 8 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    // The timer: every 10 ms, at worst one batch late (plus a margin for a shared machine).
    assert!(ticks >= 100, "{ticks} ticks in {flood:?}");
    assert!(
        figures.longest_gap <= Duration::from_millis(10) + batch + Duration::from_millis(100),
        "the timer stalled for {:?}",
        figures.longest_gap
    );
}
