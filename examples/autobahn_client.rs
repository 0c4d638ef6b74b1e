//! Runs every case of an Autobahn fuzzing server against hotwire's WebSocket client, then asks the
//! server to write its report.
//!
//! ```text
//! cargo run --release --example autobahn_client -- ws://127.0.0.1:9001 [--agent NAME] [--frames] [--deflate]
//! ```
//!
//! Each case connects to `/runCase?case=N&agent=NAME` and echoes every message back until the
//! connection closes; `/getCaseCount` and `/updateReports` frame the run. By default messages come
//! from message mode (`receive_message`); `--frames` uses batches of frames (`read_batch`) and echoes
//! each data frame as it is, fragments included. `--deflate` offers permessage-deflate (RFC 7692),
//! which cases 12.* and 13.* need.

use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use hotwire::stream::{TcpOptions, TcpStream};
use hotwire::ws::{
    DeflateConfig, IntoWebsocket, Message, OpCode, Websocket, WsConfig, WsError, WsUrl,
};

/// How long one case may take (the 16 MiB cases of section 9 take a few seconds).
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Connects a client to `url` (blocking name resolution: this is a tool, not the hot path).
pub(crate) fn connect(url: &str) -> Result<Websocket<TcpStream>, WsError> {
    connect_with(url, WsConfig::default())
}

/// [`connect`] with explicit settings.
pub(crate) fn connect_with(url: &str, config: WsConfig) -> Result<Websocket<TcpStream>, WsError> {
    let url = WsUrl::parse(url)?;
    let addr = (url.host(), url.port())
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "host not found"))?;
    let tcp = TcpStream::connect(addr, &TcpOptions::default())?;
    let mut ws = tcp.into_websocket_with(url, config)?;
    ws.wait_open(Duration::from_secs(10))?;
    Ok(ws)
}

/// Echoes every data message until the connection ends; returns how it ended.
pub(crate) fn echo_until_closed(ws: &mut Websocket<TcpStream>, timeout: Duration) -> WsError {
    let deadline = Instant::now() + timeout;
    let mut text = String::new();
    let mut binary = Vec::new();
    loop {
        // Copy out of the receive buffer: the message borrows the client, the send needs it mutably.
        let echo = match ws.receive_message() {
            Ok(Some(Message::Text(t))) => {
                text.clear();
                text.push_str(t);
                Some(true)
            }
            Ok(Some(Message::Binary(b))) => {
                binary.clear();
                binary.extend_from_slice(b);
                Some(false)
            }
            Ok(Some(_)) => None,
            Ok(None) => {
                if Instant::now() >= deadline {
                    return std::io::Error::new(std::io::ErrorKind::TimedOut, "case timed out")
                        .into();
                }
                ws.wait(Duration::from_millis(20));
                None
            }
            Err(e) => return e,
        };
        let sent = match echo {
            Some(true) => ws.send_text(&text),
            Some(false) => ws.send_binary(&binary),
            None => Ok(()),
        };
        if let Err(e) = sent {
            if e.is_terminal() {
                return e;
            }
        }
    }
}

/// Like [`echo_until_closed`], in frame mode: each batch's data frames are echoed frame by frame
/// (same opcode, same FIN), which echoes fragmented messages fragment by fragment.
pub(crate) fn echo_frames_until_closed(
    ws: &mut Websocket<TcpStream>,
    timeout: Duration,
) -> WsError {
    let deadline = Instant::now() + timeout;
    // (opcode, fin, range in `data`): frames borrow the client, so copy them out of the batch.
    let mut frames: Vec<(OpCode, bool, std::ops::Range<usize>)> = Vec::new();
    let mut data = Vec::new();
    loop {
        frames.clear();
        data.clear();
        match ws.read_batch() {
            Ok(batch) => {
                for f in batch.filter(|f| !f.opcode().is_control()) {
                    let start = data.len();
                    data.extend_from_slice(f.payload());
                    frames.push((f.opcode(), f.is_final(), start..data.len()));
                }
            }
            Err(e) => return e,
        }
        // A protocol error ended the batch after these frames; echoing them first keeps the
        // order a frame-by-frame client would have (the next read_batch reports the error).
        for (op, fin, range) in &frames {
            if let Err(e) = ws.send_frame(*op, *fin, &data[range.clone()]) {
                if e.is_terminal() {
                    return e;
                }
            }
        }
        if frames.is_empty() {
            if Instant::now() >= deadline {
                return std::io::Error::new(std::io::ErrorKind::TimedOut, "case timed out").into();
            }
            ws.wait(Duration::from_millis(20));
        }
    }
}

/// Reads the number of cases the server offers.
pub(crate) fn case_count(base: &str) -> Result<u32, WsError> {
    let mut ws = connect(&format!("{base}/getCaseCount"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let count = match ws.receive_message()? {
            Some(Message::Text(t)) => t.trim().parse::<u32>().ok(),
            _ => None,
        };
        if let Some(n) = count {
            return Ok(n);
        }
        if Instant::now() >= deadline {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no case count").into());
        }
        ws.wait(Duration::from_millis(20));
    }
}

/// Runs every case (in frame mode with `frames`), then `updateReports`; returns the number of
/// cases run. With `deflate` the client offers permessage-deflate: `client_max_window_bits` without
/// a value and `client_no_context_takeover`, which Autobahn's cases read as "the client accepts a
/// window and a takeover mode chosen by the server" (13.2, 13.5 and 13.6 decline an offer without
/// it).
pub(crate) fn run_with(
    base: &str,
    agent: &str,
    frames: bool,
    deflate: bool,
    verbose: bool,
) -> Result<u32, WsError> {
    let base = base.trim_end_matches('/');
    let config = WsConfig {
        deflate: deflate.then_some(DeflateConfig {
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        }),
        ..WsConfig::default()
    };
    let count = case_count(base)?;
    for case in 1..=count {
        let started = Instant::now();
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        let end = match connect_with(&url, config.clone()) {
            Ok(mut ws) if frames => echo_frames_until_closed(&mut ws, CASE_TIMEOUT),
            Ok(mut ws) => echo_until_closed(&mut ws, CASE_TIMEOUT),
            Err(e) => e,
        };
        if verbose {
            println!("case {case}/{count}: {end} ({:?})", started.elapsed());
        }
    }
    let mut ws = connect(&format!("{base}/updateReports?agent={agent}"))?;
    echo_until_closed(&mut ws, Duration::from_secs(30));
    Ok(count)
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut base = None;
    let mut agent = "hotwire".to_string();
    let mut frames = false;
    let mut deflate = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--frames" => frames = true,
            "--deflate" => deflate = true,
            "--agent" => match args.next() {
                Some(v) => agent = v,
                None => {
                    eprintln!("--agent needs a value");
                    return std::process::ExitCode::from(2);
                }
            },
            _ if base.is_none() => base = Some(a),
            _ => {
                eprintln!(
                    "usage: autobahn_client ws://HOST:PORT [--agent NAME] [--frames] [--deflate]"
                );
                return std::process::ExitCode::from(2);
            }
        }
    }
    let base = base.unwrap_or_else(|| "ws://127.0.0.1:9001".to_string());
    match run_with(&base, &agent, frames, deflate, true) {
        Ok(n) => {
            println!("ran {n} cases as agent {agent:?}; report requested");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("autobahn_client: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
