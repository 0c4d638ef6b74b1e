//! Several WebSocket feeds through one IoService, sharing one user Context.
//!
//! Start the venue, then run the example against it:
//!
//! ```text
//! hotwire venue --tls --cert-dir /tmp/venue &
//! cargo run --release --example multi_feed -- wss://127.0.0.1:9443 /tmp/venue/ca.pem 5
//! cargo run --release --example multi_feed -- ws://127.0.0.1:9001 - 5
//! ```
//!
//! Each endpoint subscribes on connect, counts messages into the shared [`Book`] and checks the
//! venue's sequence numbers; the service reconnects any feed that drops.

use std::time::{Duration, Instant};

use hotwire::select::MioSelector;
use hotwire::service::ws::{WsEndpoint, WsHandler, WsOut};
use hotwire::service::IntoIoService;
use hotwire::service::{Error, Event, Flow};
use hotwire::stream::tls::TlsConfig;
use hotwire::ws::{Frame, OpCode};

/// State shared by every endpoint of the service (no locks: one thread).
#[derive(Debug, Default)]
struct Book {
    messages: Vec<u64>,
    gaps: u64,
    connects: u64,
}

/// One feed: its index in the book and the last sequence number seen.
struct Feed {
    index: usize,
    last_seq: u64,
}

impl WsHandler<Book> for Feed {
    fn on_open(&mut self, ws: &mut WsOut<'_>, _: &mut Book) -> Result<(), Error> {
        self.last_seq = 0;
        ws.send_text(&format!(r#"{{"op":"subscribe","feed":{}}}"#, self.index))?;
        Ok(())
    }

    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        _: &mut WsOut<'_>,
        book: &mut Book,
    ) -> Result<Flow, Error> {
        if frame.opcode() == OpCode::Text {
            book.messages[self.index] += 1;
            if let Some(seq) = sequence(frame.payload()) {
                if self.last_seq != 0 && seq != self.last_seq + 1 {
                    book.gaps += 1;
                }
                self.last_seq = seq;
            }
        }
        Ok(Flow::Continue)
    }

    fn on_event(&mut self, event: &Event<'_>, book: &mut Book) {
        match event {
            Event::Connected { addr } => {
                book.connects += 1;
                println!("feed {} connected to {addr}", self.index);
            }
            Event::Disconnected { reason, .. } => println!("feed {} lost: {reason}", self.index),
            _ => {}
        }
    }
}

/// The venue's `"seq":N` field.
fn sequence(payload: &[u8]) -> Option<u64> {
    let rest = payload.strip_prefix(b"{\"seq\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let base = args.first().map_or("ws://127.0.0.1:9001", String::as_str);
    let ca = args.get(1).filter(|c| c.as_str() != "-");
    let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);

    let mut service = MioSelector::new()?
        .into_io_service_with_context()
        .with_poll_timeout(Duration::from_millis(1));
    let feeds = 3;
    for index in 0..feeds {
        let url = format!("{base}/feed?rate={}&size=96", 1000 * (index + 1));
        let mut endpoint = WsEndpoint::new(&url, Feed { index, last_seq: 0 })?;
        if let Some(ca) = ca {
            endpoint = endpoint.with_tls(TlsConfig::with_ca_file(ca).build()?);
        }
        service.register(endpoint);
    }
    let mut book = Book {
        messages: vec![0; feeds],
        ..Book::default()
    };
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        service.poll(&mut book)?;
    }
    println!(
        "{} connects, messages per feed {:?}, sequence gaps {}",
        book.connects, book.messages, book.gaps
    );
    Ok(())
}
