//! Counts heap allocations on the AF_XDP hot path: a WebSocket endpoint of an `IoService` driven by
//! the XDP selector, its connection an `XdpStream` of the smoltcp stack (optionally under TLS).
//! The AF_XDP tests run it inside the client namespace (a process entered into the namespace, as
//! the stack needs) against peers in the server namespace.
//!
//! ```text
//! xdp_alloc feed --xdp IFACE --local-ip A.B.C.D/NN --url ws://HOST:PORT/feed [--warmup N] [--count N]
//!     receives a feed; counts allocations over --count text messages after --warmup
//! xdp_alloc echo --xdp IFACE --local-ip A.B.C.D/NN --url ws[s]://HOST:PORT/ [--ca PEM] [...]
//!     sends a text message (an order, padded to --size bytes) and waits for its echo, --count
//!     times after --warmup; wss uses the OpenSSL backend, verifying the server against PEM
//! ```
//!
//! Prints `allocations A messages M multi-frame-rx R multi-frame-tx T` on stdout, all counted over
//! the measured messages: A on the IO thread, which runs the stack, the selector, TLS and the
//! WebSocket client; R and T the packets received and sent across several UMEM frames (with a
//! jumbo MTU). Exits non-zero with a reason on any failure.

use std::io;
use std::time::{Duration, Instant};

use hotwire::select::XdpSelector;
use hotwire::service::ws::{WsEndpoint, WsHandler};
use hotwire::service::IntoIoService;
use hotwire::service::{Dial, Flow, IoService};
use hotwire::stream::tls::{TlsBackend, TlsConfig};
use hotwire::stream::Stream;
use hotwire::ws::{Frame, OpCode};
use hotwire::xdp::{self, XdpConfig, XdpStack, XdpStream};

// The counting allocator of the allocation tests (per thread, installed as the global one).
#[path = "../tests/alloc_counter/mod.rs"]
mod alloc_counter;

fn allocs() -> u64 {
    alloc_counter::allocs() as u64
}

/// Opens every connection on the one XDP stack.
#[derive(Clone)]
struct XdpDial(XdpStack);

impl Dial for XdpDial {
    type Stream = XdpStream;
    fn dial(&mut self, addr: std::net::SocketAddr) -> io::Result<XdpStream> {
        XdpStream::connect(&self.0, addr)
    }
}

#[derive(Default)]
struct Count {
    messages: u64,
}

/// Counts text messages; in echo mode checks each echo and lets the loop send the next one.
struct Handler {
    payload: Option<String>,
    outstanding: bool,
}

impl<S: Stream> WsHandler<Count, S> for Handler {
    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        _: &mut hotwire::service::ws::WsOut<'_, S>,
        count: &mut Count,
    ) -> Result<Flow, hotwire::service::Error> {
        if frame.opcode() == OpCode::Text {
            if let Some(p) = &self.payload {
                if frame.payload() != p.as_bytes() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the echo differs from what was sent",
                    )
                    .into());
                }
                self.outstanding = false;
            }
            count.messages += 1;
        }
        Ok(Flow::Continue)
    }
}

struct Args {
    mode: String,
    url: String,
    ca: Option<String>,
    warmup: u64,
    count: u64,
    size: usize,
    xdp: XdpConfig,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .ok_or("usage: xdp_alloc feed|echo --xdp IFACE ...")?;
    if mode != "feed" && mode != "echo" {
        return Err(format!("unknown mode {mode}: feed or echo"));
    }
    let (mut iface, mut local, mut url, mut ca) = (None, None, None, None);
    let (mut warmup, mut count, mut size) = (2_000, 20_000, ORDER.len());
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--xdp" => iface = Some(val()?),
            "--local-ip" => local = Some(xdp::parse_cidr(&val()?)?),
            "--url" => url = Some(val()?),
            "--ca" => ca = Some(val()?),
            "--warmup" => warmup = val()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--count" => count = val()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--size" => size = val()?.parse().map_err(|e| format!("--size: {e}"))?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    let iface = iface.ok_or("--xdp IFACE is required")?;
    let (ip, len) = local.ok_or("--local-ip A.B.C.D/NN is required")?;
    Ok(Args {
        mode,
        url: url.ok_or("--url is required")?,
        ca,
        warmup,
        count,
        size,
        xdp: XdpConfig::new(iface, ip, len),
    })
}

const ORDER: &str = r#"{"op":"order","sym":"XBTUSD","px":101.25,"qty":3,"tif":"IOC"}"#;

/// The echo payload: the order, padded with spaces to `size` bytes (or cut to it).
fn payload(size: usize) -> String {
    let mut p = String::with_capacity(size);
    p.push_str(&ORDER[..size.min(ORDER.len())]);
    while p.len() < size {
        p.push(' ');
    }
    p
}

fn run() -> Result<String, String> {
    let a = parse()?;
    let stack = XdpStack::open(&a.xdp).map_err(|e| format!("XDP: {e}"))?;
    let echo = a.mode == "echo";
    let mut endpoint = WsEndpoint::new(
        &a.url,
        Handler {
            payload: echo.then(|| payload(a.size)),
            outstanding: false,
        },
    )
    .map_err(|e| format!("{}: {e}", a.url))?
    .with_dialer(XdpDial(stack.clone()));
    if let Some(ca) = &a.ca {
        let tls = TlsConfig {
            backend: TlsBackend::Openssl,
            ..TlsConfig::with_ca_file(ca)
        };
        endpoint = endpoint.with_tls(tls.build().map_err(|e| format!("TLS: {e}"))?);
    }
    let counters = stack.clone();
    let mut service: IoService<_, _, Count> =
        XdpSelector::new(stack).into_io_service_with_context();
    let id = service.register(endpoint);
    let mut count = Count::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut measured_from = None;
    // Measured from the first poll that starts with at least `warmup` messages, for `count` more.
    let mut target = u64::MAX;
    while count.messages < target {
        if Instant::now() >= deadline {
            return Err(format!("only {} messages in 60 s", count.messages));
        }
        if count.messages >= a.warmup && measured_from.is_none() {
            measured_from = Some((allocs(), count.messages, counters.counters()));
            target = count.messages + a.count;
        }
        service.poll(&mut count).map_err(|e| format!("poll: {e}"))?;
        if echo && count.messages < target {
            if let Some((ws, endpoint)) = service.connection_mut(id) {
                let handler = endpoint.handler_mut();
                if !handler.outstanding {
                    handler.outstanding = true;
                    let text = handler.payload.as_deref().unwrap_or(ORDER);
                    ws.send_text(text).map_err(|e| format!("send: {e}"))?;
                }
            }
        }
    }
    let (before, first, at_start) =
        measured_from.unwrap_or((allocs(), count.messages, counters.counters()));
    let now = counters.counters();
    let line = format!(
        "allocations {} messages {} multi-frame-rx {} multi-frame-tx {}",
        allocs() - before,
        count.messages - first,
        now.rx_multi_frame - at_start.rx_multi_frame,
        now.tx_multi_frame - at_start.tx_multi_frame
    );
    // A close handshake, so the peer sees a clean end.
    if let Some((ws, _)) = service.connection_mut(id) {
        let _ = ws.close(1000, "done");
    }
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until && service.connection_mut(id).is_some() {
        let _ = service.poll(&mut count);
    }
    Ok(line)
}

fn main() {
    env_logger::init();
    match run() {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("xdp_alloc: {e}");
            std::process::exit(1);
        }
    }
}
