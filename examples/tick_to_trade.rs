//! Tick-to-trade: from a market-data message leaving the venue to the order it causes arriving
//! back at the venue.
//!
//! The venue (`hotwire venue --tls --fix-listen ADDR`) publishes a feed over TLS WebSocket whose
//! messages carry their send time (`"ts":<ns>`); this program sends a FIX NewOrderSingle on every
//! Nth message, from inside its frame handling, with that time in the ClOrdID; the venue stamps the
//! order when it reads it and returns the stamp in the ExecutionReport (`58=recv_ns=<ns>`). The
//! figure is `recv_ns − ts`: one clock, the venue's, at both ends.
//!
//! The same logic in two implementations, on the same cores:
//!
//! - `hotwire`: this crate's WebSocket client over TLS and its FIX session, on kernel TCP or, with
//!   `--xdp IFACE --local-ip A.B.C.D/NN`, both on one AF_XDP stack;
//! - `baseline`: what a user would otherwise write: tungstenite over rustls for the feed, and a
//!   hand-written FIX client on a plain socket (`format!` messages, a byte scan for frames).
//!
//! Both busy-poll one thread (pin it with `--core`). Output: one line
//! `t2t mode=… path=… n=… p50_ns=… p99_ns=… p999_ns=… max_ns=…` (scripts/bench-t2t.sh runs the
//! variants side by side and prints the ratios).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcp, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use hdrhistogram::Histogram;

use hotwire::app::probe_net::ProbeNet;
use hotwire::fix::clock;
use hotwire::fix::codec::{Decimal, MsgType, Tag};
use hotwire::fix::orders::{ExecReport, NewOrder, Side};
use hotwire::fix::MemoryStore;
use hotwire::fix::{FixEvent, FixSession, SessionConfig, Version};
use hotwire::select::Selectable;
use hotwire::service::Dial;
use hotwire::stream::tls::TlsConfig;
use hotwire::stream::MaybeTls;
use hotwire::ws::{ClientRequest, IntoWebsocket, OpCode, WsUrl};

#[derive(Debug, Parser)]
#[command(about = "Tick-to-trade against hotwire venue: feed message sent -> order received")]
struct Args {
    /// `hotwire` or `baseline`.
    #[arg(long, default_value = "hotwire")]
    mode: String,
    /// The feed (wss://HOST:PORT/feed?rate=R&size=S).
    #[arg(long)]
    feed: String,
    /// The venue's FIX acceptor, HOST:PORT.
    #[arg(long)]
    fix: String,
    /// The CA that signed the venue's certificate.
    #[arg(long)]
    ca: PathBuf,
    /// The name the venue's certificate carries.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// One order per this many feed messages.
    #[arg(long, default_value_t = 10)]
    every: u64,
    /// Orders to measure (after `--warmup` more).
    #[arg(long, default_value_t = 2000)]
    orders: u64,
    /// Orders sent before measuring.
    #[arg(long, default_value_t = 100)]
    warmup: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Pin the thread to this core.
    #[arg(long)]
    core: Option<usize>,
    /// The AF_XDP path (hotwire mode only).
    #[command(flatten)]
    net: ProbeNet,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The value of `"ts":` in a feed message.
fn feed_ts(msg: &[u8]) -> Option<u64> {
    let at = msg.windows(5).position(|w| w == b"\"ts\":")? + 5;
    let digits = msg[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&msg[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// ClOrdID `T<ts>-<k>` into `buf` (no allocation on the hotwire path).
fn order_id(buf: &mut [u8; 48], ts: u64, k: u64) -> &str {
    let mut w = io::Cursor::new(&mut buf[..]);
    let _ = write!(w, "T{ts}-{k}");
    let n = w.position() as usize;
    std::str::from_utf8(&buf[..n]).unwrap_or("T")
}

/// The tick-to-trade of one execution report: `recv_ns` (Text) − the ts in the ClOrdID.
fn measured(cl_ord_id: &[u8], text: &[u8]) -> Option<u64> {
    let ts: u64 = std::str::from_utf8(cl_ord_id.strip_prefix(b"T")?)
        .ok()?
        .split('-')
        .next()?
        .parse()
        .ok()?;
    let recv: u64 = std::str::from_utf8(text.strip_prefix(b"recv_ns=")?)
        .ok()?
        .parse()
        .ok()?;
    recv.checked_sub(ts)
}

struct Tally {
    hist: Histogram<u64>,
    /// The client's own part: feed frame in hand to the order written to the stream (ns).
    client: Histogram<u64>,
    sent: u64,
    answered: u64,
    warmup: u64,
    target: u64,
}

impl Tally {
    fn record(&mut self, t2t: Option<u64>) {
        self.answered += 1;
        if self.answered > self.warmup {
            if let Some(v) = t2t {
                let _ = self.hist.record(v.max(1));
            }
        }
    }
    fn done(&self) -> bool {
        self.answered >= self.warmup + self.target
    }
    fn in_time(&self, deadline: Instant) -> Result<(), String> {
        if Instant::now() > deadline {
            return Err(format!(
                "{} of {} answered in time",
                self.answered, self.sent
            ));
        }
        Ok(())
    }
    fn want_more(&self) -> bool {
        self.sent < self.warmup + self.target
    }
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))
}

fn feed_addr(url: &WsUrl) -> Result<SocketAddr, String> {
    resolve(&format!("{}:{}", url.host(), url.port()))
}

fn hotwire(args: &Args, tally: &mut Tally, deadline: Instant) -> Result<&'static str, String> {
    let url = WsUrl::parse(&args.feed).map_err(|e| format!("--feed: {e}"))?;
    let mut net = args.net.open()?;
    let path = net.name();
    let tls = TlsConfig::with_ca_file(&args.ca)
        .build()
        .map_err(|e| format!("TLS: {e}"))?;
    // Both sessions on the same network (one AF_XDP stack with --xdp).
    let tcp = net.dial(feed_addr(&url)?).map_err(|e| e.to_string())?;
    let stream = MaybeTls::new(tcp, Some(&tls), &args.server_name).map_err(|e| e.to_string())?;
    let mut ws = stream
        .into_websocket(ClientRequest::new(url))
        .map_err(|e| e.to_string())?;
    let fix_tcp = net.dial(resolve(&args.fix)?).map_err(|e| e.to_string())?;
    let mut config = SessionConfig::new(Version::Fix44, "T2T", "VENUE");
    config.reset_on_logon = true;
    let mut fix = FixSession::new(fix_tcp, config, MemoryStore::new(), clock());
    ws.wait_open(Duration::from_secs(10))
        .map_err(|e| format!("feed: {e}"))?;
    while !fix.poll_connect().map_err(|e| format!("logon: {e}"))? {
        if Instant::now() > deadline {
            return Err("logon: no answer".into());
        }
    }
    let (price, mut id_buf) = (Decimal::new(10125, 2), [0u8; 48]);
    let mut seen = 0u64;
    while !tally.done() {
        tally.in_time(deadline)?;
        // Market data: on every Nth message, the order leaves while the frame is still borrowed.
        while let Some(frame) = ws.receive().map_err(|e| format!("feed: {e}"))? {
            if frame.opcode() != OpCode::Text {
                continue;
            }
            seen += 1;
            if seen % args.every != 0 || !tally.want_more() {
                continue;
            }
            let in_hand = Instant::now();
            let ts = feed_ts(frame.payload()).ok_or("a feed message without ts")?;
            let order = NewOrder {
                cl_ord_id: order_id(&mut id_buf, ts, tally.sent),
                symbol: "HWX",
                side: Side::Buy,
                qty: Decimal::new(1, 0),
                price: Some(price),
                time_in_force: Some(b'0'),
                account: None,
            };
            let now = clock();
            fix.send(now, NewOrder::MSG_TYPE, |e| {
                order.encode(e, Version::Fix44, now.utc)
            })
            .map_err(|e| format!("order: {e}"))?;
            let _ = tally
                .client
                .record((in_hand.elapsed().as_nanos() as u64).max(1));
            tally.sent += 1;
        }
        let now = clock();
        fix.receive_with(now, |ev, _| {
            if let FixEvent::App(msg) = ev {
                if msg.msg_type() == MsgType::ExecutionReport {
                    if let Ok(er) = ExecReport::from_message(&msg) {
                        tally.record(measured(
                            er.cl_ord_id,
                            msg.get(Tag::Text).unwrap_or_default(),
                        ));
                    }
                }
            }
            Ok(true)
        })
        .map_err(|e| format!("fix: {e}"))?;
        fix.on_timer(now).map_err(|e| format!("fix: {e}"))?;
    }
    Ok(path)
}

/// The baseline's FIX: messages built with `format!`, frames found by scanning for `10=`.
struct PlainFix {
    sock: StdTcp,
    seq: u64,
    buf: Vec<u8>,
}

impl PlainFix {
    fn message(&mut self, msg_type: &str, fields: &str) -> Vec<u8> {
        let time = chrono_like_utc();
        let body = format!(
            "35={msg_type}\x0134={}\x0149=T2T\x0156=VENUE\x0152={time}\x01{fields}",
            self.seq
        );
        self.seq += 1;
        let mut msg = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
        let sum = msg.iter().fold(0u32, |a, b| a + u32::from(*b)) % 256;
        msg.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        msg
    }

    fn send(&mut self, msg_type: &str, fields: &str) -> io::Result<()> {
        let msg = self.message(msg_type, fields);
        let mut at = 0;
        while at < msg.len() {
            match self.sock.write(&msg[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what is there and hands each whole message to `f` as `tag=value` fields.
    fn poll(&mut self, mut f: impl FnMut(&[(&str, &str)])) -> io::Result<()> {
        let mut chunk = [0u8; 16384];
        match self.sock.read(&mut chunk) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "venue closed FIX",
                ))
            }
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
        while let Some(end) = self
            .buf
            .windows(4)
            .position(|w| w == b"\x0110=")
            .and_then(|p| {
                self.buf[p + 4..]
                    .iter()
                    .position(|&b| b == 1)
                    .map(|q| p + 4 + q + 1)
            })
        {
            let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
            let fields: Vec<(&str, &str)> = text
                .split('\x01')
                .filter_map(|kv| kv.split_once('='))
                .collect();
            f(&fields);
            self.buf.drain(..end);
        }
        Ok(())
    }
}

/// SendingTime as `YYYYMMDD-HH:MM:SS.sss`, computed by hand as a user without a FIX library would.
fn chrono_like_utc() -> String {
    let ms = now_ns() / 1_000_000;
    let (secs, ms) = (ms / 1000, ms % 1000);
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}:{:02}:{:02}.{ms:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn baseline(args: &Args, tally: &mut Tally, deadline: Instant) -> Result<&'static str, String> {
    use tungstenite::{client::IntoClientRequest, Message};
    if args.net.xdp.is_some() {
        return Err("the baseline runs on kernel TCP only".into());
    }
    let url = WsUrl::parse(&args.feed).map_err(|e| format!("--feed: {e}"))?;
    let tcp = StdTcp::connect(feed_addr(&url)?).map_err(|e| format!("feed: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&args.ca).map_err(|e| format!("{}: {e}", args.ca.display()))?;
    for cert in rustls_pemfile_certs(&pem)? {
        roots.add(cert).map_err(|e| format!("CA: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(args.server_name.clone())
        .map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tls = rustls::StreamOwned::new(conn, tcp);
    let request = args
        .feed
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let (mut ws, _) = tungstenite::client(request, tls).map_err(|e| format!("feed: {e}"))?;
    ws.get_ref()
        .sock
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    let sock = StdTcp::connect(resolve(&args.fix)?).map_err(|e| format!("fix: {e}"))?;
    sock.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut fix = PlainFix {
        sock,
        seq: 1,
        buf: Vec::new(),
    };
    fix.send("A", "98=0\x01108=30\x01141=Y\x01")
        .map_err(|e| format!("logon: {e}"))?;
    fix.sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut logged_on = false;
    while !logged_on {
        if Instant::now() > deadline {
            return Err("logon: no answer".into());
        }
        fix.poll(|f| logged_on |= f.iter().any(|&(k, v)| k == "35" && v == "A"))
            .map_err(|e| format!("logon: {e}"))?;
    }
    let mut seen = 0u64;
    while !tally.done() {
        tally.in_time(deadline)?;
        match ws.read() {
            Ok(Message::Text(text)) => {
                seen += 1;
                if seen % args.every == 0 && tally.want_more() {
                    let in_hand = Instant::now();
                    let ts = feed_ts(text.as_bytes()).ok_or("a feed message without ts")?;
                    let fields = format!(
                        "11=T{ts}-{}\x0155=HWX\x0154=1\x0160={}\x0138=1\x0140=2\x0144=101.25\x0159=0\x01",
                        tally.sent,
                        chrono_like_utc()
                    );
                    fix.send("D", &fields).map_err(|e| format!("order: {e}"))?;
                    let _ = tally
                        .client
                        .record((in_hand.elapsed().as_nanos() as u64).max(1));
                    tally.sent += 1;
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("feed: {e}")),
        }
        fix.poll(|f| {
            let get = |tag: &str| f.iter().find(|(k, _)| *k == tag).map(|(_, v)| *v);
            if get("35") == Some("8") {
                tally.record(measured(
                    get("11").unwrap_or_default().as_bytes(),
                    get("58").unwrap_or_default().as_bytes(),
                ));
            }
        })
        .map_err(|e| format!("fix: {e}"))?;
    }
    Ok("kernel")
}

/// The certificates of a PEM file (the baseline reads its CA as a user would, through rustls).
fn rustls_pemfile_certs(
    pem: &[u8],
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("CA: {e:?}"))
}

fn main() {
    let args = Args::parse();
    if let Some(core) = args.core {
        if let Err(e) = hotwire::cpu::pin_current(core) {
            eprintln!("tick_to_trade: {e}");
            std::process::exit(1);
        }
    }
    let mut tally = Tally {
        hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds"),
        client: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds"),
        sent: 0,
        answered: 0,
        warmup: args.warmup,
        target: args.orders.max(1),
    };
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout.clamp(1.0, 3600.0));
    let every_ok = args.every >= 1;
    let result = if !every_ok {
        Err("--every must be at least 1".to_owned())
    } else {
        match args.mode.as_str() {
            "hotwire" => hotwire(&args, &mut tally, deadline),
            "baseline" => baseline(&args, &mut tally, deadline),
            other => Err(format!("--mode {other:?}: expected hotwire or baseline")),
        }
    };
    match result {
        Ok(path) => {
            let h = &tally.hist;
            println!(
                "t2t mode={} path={path} n={} p50_ns={} p99_ns={} p999_ns={} max_ns={} \
                 client_p50_ns={} client_p99_ns={}",
                args.mode,
                h.len(),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max(),
                tally.client.value_at_quantile(0.5),
                tally.client.value_at_quantile(0.99)
            );
        }
        Err(e) => {
            eprintln!("tick_to_trade ({}): {e}", args.mode);
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_stamps() {
        assert_eq!(
            feed_ts(br#"{"seq":3,"ts":1732480000123456789,"px":1}"#),
            Some(1732480000123456789)
        );
        assert_eq!(measured(b"T100-7", b"recv_ns=350"), Some(250));
        assert_eq!(measured(b"X100-7", b"recv_ns=350"), None);
        let mut buf = [0u8; 48];
        assert_eq!(order_id(&mut buf, 42, 3), "T42-3");
    }
}
