//! The deterministic backtest recording exists for: a live session is recorded under the
//! WebSocket (the plaintext bytes and their read boundaries), then the recording runs through the
//! same handler code that ran live, offline, and both runs must agree.
//!
//! ```text
//! hotwire venue &
//! cargo run --example replay_handler -- "ws://127.0.0.1:9001/feed?rate=2000" 2 /tmp/session.hwr
//! ```
//! Prints the live and the replayed digest; exits 0 when they are equal.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hotwire::prelude::*;
use hotwire::service::Dial;
use hotwire::stream::record::{IntoRecorded, Recorded, Replay};
use hotwire::stream::{MaybeTls, Stream, TcpStream};
use hotwire::ws::{ClientRequest, Websocket, WsConfig, WsUrl};

/// What the strategy derives from the feed: the same bytes must give the same digest.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Digest {
    messages: u64,
    last_seq: u64,
    gaps: u64,
    /// FNV-1a over every payload, in order.
    hash: u64,
}

/// The handler: generic over the stream, so it runs on a live connection and on a replay.
struct Strategy;

impl<S: Stream> WsHandler<Digest, S> for Strategy {
    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        _: &mut WsOut<'_, S>,
        d: &mut Digest,
    ) -> Result<Flow, Error> {
        let Some(text) = frame.text() else {
            return Ok(Flow::Continue);
        };
        if let Some(seq) = number(text, "\"seq\":") {
            if d.last_seq != 0 && seq != d.last_seq + 1 {
                d.gaps += 1;
            }
            d.last_seq = seq;
        }
        d.messages += 1;
        d.hash = text.bytes().fold(d.hash ^ 0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Ok(Flow::Continue)
    }
}

fn number(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    text[at..at + digits].parse().ok()
}

/// Kernel TCP, recorded to `path` under everything above it.
struct RecordingDial {
    path: PathBuf,
}

impl Dial for RecordingDial {
    type Stream = Recorded<TcpStream>;
    fn dial(&mut self, addr: std::net::SocketAddr) -> std::io::Result<Recorded<TcpStream>> {
        TcpStream::connect(addr, &TcpOptions::default())?.into_recorded(&self.path)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(seconds), Some(file)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: replay_handler URL SECONDS FILE");
        std::process::exit(2);
    };
    let seconds: u64 = seconds.parse()?;
    let file = PathBuf::from(file);

    // Live: one connection, recorded, for SECONDS.
    let endpoint = WsEndpoint::new(&url, Strategy)?
        .with_dialer(RecordingDial { path: file.clone() })
        .with_policy(Policy {
            reconnect: false,
            ..Policy::default()
        });
    let mut service = MioSelector::new()?
        .into_io_service_with_context()
        .with_poll_timeout(Duration::from_millis(1));
    service.register(endpoint);
    let mut live = Digest::default();
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        service.poll(&mut live)?;
    }
    drop(service); // closes the connection and the recording
    println!("live:   {live:?}");

    // Replay: the same handler over the recorded bytes, with the same read boundaries.
    let stream = MaybeTls::new(Replay::open(&file)?, None, "")?;
    let mut ws = Websocket::replay(
        stream,
        ClientRequest::new(WsUrl::parse(&url)?),
        WsConfig::default(),
    )?;
    let mut strategy = Strategy;
    let mut replayed = Digest::default();
    loop {
        match ws.receive_split() {
            Ok(Some((frame, mut out))) => {
                strategy.on_frame(frame, &mut out, &mut replayed)?;
            }
            // A recorded WouldBlock: the live client stopped reading here too.
            Ok(None) => {}
            // The end of the recording.
            Err(_) => break,
        }
    }
    println!("replay: {replayed:?}");
    let same = live == replayed && live.messages > 0;
    println!("{}", if same { "identical" } else { "DIFFERENT" });
    std::process::exit(if same { 0 } else { 1 });
}
