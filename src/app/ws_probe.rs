//! `hotwire ws URL`: a WebSocket probe on the production stack (hotwire's TCP, TLS and WebSocket
//! client; no other WebSocket code).
//!
//! Connects, sends each `--send` as a text message, prints every data message received on its own
//! line (text as is, binary as lowercase hex), and exits 0 after `--count` messages or when the
//! server closes cleanly. Any failure prints one line on stderr and exits non-zero.

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::stream::Stream;
use crate::ws::{ClientRequest, IntoWebsocket, Message, Websocket, WsError, WsUrl};

/// Arguments of `hotwire ws`.
#[derive(Debug, Clone, clap::Args)]
pub struct WsArgs {
    /// The server: `ws://HOST[:PORT]/PATH?QUERY` or `wss://...` (IPv6 literals in brackets).
    pub url: String,
    /// A text message to send once connected (repeatable, sent in order).
    #[arg(long = "send", value_name = "TEXT")]
    pub send: Vec<String>,
    /// Exit after this many data messages (default: run until the server closes).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// A PEM file of CA certificates to trust for wss:// (instead of the built-in roots).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Do not verify the server's certificate (tests and labs only).
    #[arg(long)]
    pub insecure: bool,
    /// The TLS implementation for wss://: `rustls` or `openssl`.
    #[arg(long, value_name = "BACKEND")]
    pub tls_backend: Option<String>,
    /// An extra request header, `'Name: value'` (repeatable).
    #[arg(long = "header", value_name = "'K: V'")]
    pub headers: Vec<String>,
    /// A subprotocol to offer (repeatable, most preferred first).
    #[arg(long = "subprotocol", value_name = "P")]
    pub subprotocols: Vec<String>,
    /// Give up when connecting (TCP, TLS and handshake) takes longer than this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Give up when no message arrives for this many seconds (default: wait forever).
    #[arg(long, value_name = "SECS")]
    pub idle_timeout: Option<f64>,
    /// Offer permessage-deflate (RFC 7692) with the default offer; the negotiated parameters are
    /// printed once connected.
    #[arg(long)]
    pub deflate: bool,
    /// The network path (kernel TCP, or `--xdp IFACE --local-ip A.B.C.D/NN`).
    #[command(flatten)]
    pub net: super::probe_net::ProbeNet,
}

/// Runs the probe; the exit code is 0 on success (see the [module documentation](self)).
pub fn run(args: WsArgs) -> ExitCode {
    let stdout = std::io::stdout();
    match probe(&args, &mut stdout.lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotwire ws: {e}");
            ExitCode::FAILURE
        }
    }
}

fn request(args: &WsArgs, url: WsUrl) -> Result<ClientRequest, String> {
    let mut req = ClientRequest::new(url);
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("header {h:?} is not 'Name: value'"))?;
        req = req.header(k.trim(), v.trim());
    }
    for p in &args.subprotocols {
        req = req.subprotocol(p.as_str());
    }
    Ok(req)
}

/// The probe, printing received messages to `out`; the error is the one line [`run`] prints.
pub fn probe<W: std::io::Write>(args: &WsArgs, out: &mut W) -> Result<(), String> {
    let url = WsUrl::parse(&args.url).map_err(|e| format!("{}: {e}", args.url))?;
    let addr = (url.host(), url.port())
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host()))?
        .next()
        .ok_or_else(|| format!("{} has no address", url.host()))?;
    let connect_timeout = super::seconds_arg("--connect-timeout", args.connect_timeout)?;
    let tcp = args.net.connect(addr)?;
    let req = request(args, url.clone())?;
    #[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
    {
        let connector = if url.is_secure() {
            Some(tls_connector(args)?)
        } else {
            None
        };
        let stream = crate::stream::MaybeTls::new(tcp, connector.as_ref(), url.host())
            .map_err(|e| format!("TLS: {e}"))?;
        session(stream, req, args, connect_timeout, out)
    }
    #[cfg(not(any(feature = "tls-rustls", feature = "tls-openssl")))]
    {
        if url.is_secure() {
            return Err("wss:// needs a build with a TLS feature".into());
        }
        session(tcp, req, args, connect_timeout, out)
    }
}

#[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
fn tls_connector(args: &WsArgs) -> Result<crate::stream::tls::TlsConnector, String> {
    use crate::stream::tls::TlsConfig;
    let mut cfg = match &args.ca {
        Some(ca) => TlsConfig::with_ca_file(ca),
        None => TlsConfig::default(),
    };
    if let Some(b) = &args.tls_backend {
        cfg.backend = b.parse()?;
    }
    cfg.insecure = args.insecure;
    cfg.build().map_err(|e| format!("TLS setup: {e}"))
}

fn session<S: Stream, W: std::io::Write>(
    stream: S,
    req: ClientRequest,
    args: &WsArgs,
    connect_timeout: Duration,
    out: &mut W,
) -> Result<(), String> {
    let config = crate::ws::WsConfig {
        deflate: args.deflate.then(crate::ws::DeflateConfig::default),
        ..crate::ws::WsConfig::default()
    };
    let mut ws = stream
        .into_websocket_with(req, config)
        .map_err(|e| e.to_string())?;
    ws.wait_open(connect_timeout).map_err(|e| e.to_string())?;
    if args.deflate {
        match ws.deflate() {
            Some(p) => eprintln!(
                "permessage-deflate: client window {} bits{}, server window {} bits{}",
                p.client_max_window_bits,
                if p.client_no_context_takeover {
                    ", no context takeover"
                } else {
                    ""
                },
                p.server_max_window_bits,
                if p.server_no_context_takeover {
                    ", no context takeover"
                } else {
                    ""
                },
            ),
            None => eprintln!("permessage-deflate: declined by the server"),
        }
    }
    for text in &args.send {
        ws.send_text(text).map_err(|e| e.to_string())?;
    }
    let mut received = 0u64;
    let idle = args
        .idle_timeout
        .map(|s| super::seconds_arg("--idle-timeout", s))
        .transpose()?;
    let mut last = Instant::now();
    loop {
        if args.count.is_some_and(|n| received >= n) {
            return finish(&mut ws);
        }
        let got = match ws.receive_message() {
            Ok(Some(Message::Text(t))) => writeln!(out, "{t}").map(|()| true),
            Ok(Some(Message::Binary(b))) => {
                let mut line = String::with_capacity(b.len() * 2);
                for byte in b {
                    line.push_str(&format!("{byte:02x}"));
                }
                writeln!(out, "{line}").map(|()| true)
            }
            Ok(Some(_)) => Ok(false),
            Ok(None) => {
                if idle.is_some_and(|d| last.elapsed() >= d) {
                    return Err(format!("no message for {:?}", idle.unwrap_or_default()));
                }
                ws.wait(Duration::from_millis(50));
                Ok(false)
            }
            Err(WsError::Closed) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        if got.map_err(|e| format!("stdout: {e}"))? {
            let _ = out.flush();
            received += 1;
            last = Instant::now();
        }
    }
}

/// Closes with 1000 and waits (briefly) for the server's close and end of stream.
fn finish<S: Stream>(ws: &mut Websocket<S>) -> Result<(), String> {
    ws.close(1000, "").map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match ws.receive() {
            Ok(Some(_)) => {}
            Ok(None) => ws.wait(Duration::from_millis(20)),
            // The count was reached: how the server ends the connection no longer matters.
            Err(_) => break,
        }
    }
    Ok(())
}
