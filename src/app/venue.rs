//! `hotwire venue`: an embedded exchange simulator, so the appliance and its tests run offline.
//!
//! WebSocket side (the server half is tungstenite, so the venue shares no protocol code with the
//! client under test):
//!
//! - `GET /feed?rate=R&size=S&count=N` — market data: text messages at `R` per second (default
//!   1000), each about `S` bytes (default 128), `N` of them then a normal close (default: forever).
//!   Every message carries its sequence number and its send time in nanoseconds since the UNIX epoch:
//!   `{"seq":1,"ts":1732480000123456789,"sym":"HWX","px":101.25,"qty":3,"pad":"…"}`.
//!   With `--deflate` (or `deflate=1` in the query), a client offering permessage-deflate
//!   (RFC 7692) gets the feed compressed (`venue_deflate`).
//! - `GET /echo` — every data message is sent back as it came.
//! - `GET /ping?every=MS&deadline=MS` — an application-level heartbeat both ways
//!   ([`super::venue_ping`]): the venue's `{"op":"ping","id":N}` must be answered within the
//!   deadline (default 100 ms) or the connection is closed; the client's pings are answered.
//!
//! With `--http-listen`, a REST API ([`super::venue_http`]); with `--fix-listen`, a FIX acceptor that
//! fills every order.
//!
//! Plain on `--listen`, and with `--tls` also TLS on `--tls-listen`; the REST API and the FIX
//! acceptor speak TLS on `--https-listen` and `--fixs-listen`. Every TLS listener uses one
//! certificate generated at start-up for `localhost`, `127.0.0.1` and `::1`, signed by the CA in
//! `<cert-dir>/ca.pem` (created on first use, reused after) for clients to trust; mutual TLS with
//! `--client-ca` / `--require-client-cert`.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tungstenite::error::ProtocolError;
use tungstenite::handshake::server::{Request, Response};
use tungstenite::http::HeaderValue;
use tungstenite::protocol::frame::coding::{CloseCode, Data as OpData, OpCode};
use tungstenite::protocol::frame::{Frame, FrameHeader};
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use super::venue_chaos::{Chaos, ChaosCounts, ConnChaos, Verdict};
use super::venue_deflate::{self, Agreed, FeedDeflater};
use super::venue_tls::{ClientAuth, Socket};

/// Venue options (`hotwire venue --help`).
#[derive(Debug, Clone, clap::Args)]
pub struct VenueArgs {
    /// Plain (ws://) listening address.
    #[arg(long, default_value = "127.0.0.1:9001")]
    pub listen: SocketAddr,
    /// Also serve TLS (wss://) with a generated certificate.
    #[arg(long)]
    pub tls: bool,
    /// TLS listening address.
    #[arg(long, default_value = "127.0.0.1:9443")]
    pub tls_listen: SocketAddr,
    /// Where the generated CA certificate (`ca.pem`) is written; default: a new temporary folder.
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    /// Default feed rate, messages per second (a `rate` query parameter overrides it).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Default feed message size in bytes (a `size` query parameter overrides it).
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Also serve the REST API (HTTP/1.1: `/api/time`, `/api/book`, `/api/order`) here.
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// Also run the FIX acceptor (FIX 4.2 / 4.4 / FIXT 1.1, fills every limit order) here.
    #[cfg(feature = "fix")]
    #[arg(long)]
    pub fix_listen: Option<SocketAddr>,
    /// Also serve the REST API over TLS (https://, ALPN `http/1.1`) here, with the venue's
    /// certificate.
    #[arg(long)]
    pub https_listen: Option<SocketAddr>,
    /// Also run the FIX acceptor over TLS (fixs://) here, with the venue's certificate.
    #[cfg(feature = "fix")]
    #[arg(long)]
    pub fixs_listen: Option<SocketAddr>,
    /// Verify client certificates on every TLS listener against the CAs in this PEM file
    /// (clients without one are still served unless `--require-client-cert`).
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Refuse TLS clients without a valid certificate (mutual TLS), signed by `--client-ca` or, when
    /// that is not given, by the venue's own CA (which signs `<cert-dir>/client.pem` for tests).
    #[arg(long)]
    pub require_client_cert: bool,
    /// Chaos mode for soak tests: with this seed, every connection meets random kills, RSTs,
    /// stalls, garbage bytes and slow reads (see `venue_chaos`).
    #[arg(long, value_name = "SEED")]
    pub chaos: Option<u64>,
    /// Chaos mode: mean time between two faults on one connection, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub chaos_every: f64,
    /// Chaos mode: stop injecting faults after this many seconds (default: never), so clients
    /// end the run recovered.
    #[arg(long, value_name = "SECONDS")]
    pub chaos_for: Option<f64>,
    /// Log every FIX message the acceptor takes in order and every one it sends (per session:
    /// sequence numbers, message types, ClOrdIDs, gaps, resets) to this file, for checking a soak.
    #[cfg(feature = "fix")]
    #[arg(long, value_name = "FILE")]
    pub fix_log: Option<PathBuf>,
    /// Busy-poll each FIX session's socket (yielding the core between polls) instead of sleeping
    /// in a blocking read. A sleeping virtual CPU can take ~100 µs to wake, which would swamp a
    /// tick-to-trade measurement; real venues do not sleep on their order entry either. For
    /// benchmarks: it keeps one core busy per FIX session.
    #[cfg(feature = "fix")]
    #[arg(long)]
    pub spin: bool,
    /// Compress the feed (permessage-deflate, RFC 7692) for clients that offer it; a `deflate=1`
    /// query parameter on `/feed` turns it on for one connection.
    #[arg(long)]
    pub deflate: bool,
}

impl Default for VenueArgs {
    /// `hotwire venue` with no option: the command line's defaults.
    fn default() -> Self {
        use clap::{Args as _, FromArgMatches as _};
        let matches = VenueArgs::augment_args(clap::Command::new("venue"))
            .no_binary_name(true)
            .get_matches_from(std::iter::empty::<&str>());
        VenueArgs::from_arg_matches(&matches).expect("the defaults parse")
    }
}

impl VenueArgs {
    /// `true` when any listener needs the TLS identity.
    fn any_tls(&self) -> bool {
        #[cfg(feature = "fix")]
        let fixs = self.fixs_listen.is_some();
        #[cfg(not(feature = "fix"))]
        let fixs = false;
        self.tls || self.https_listen.is_some() || fixs
    }
}

/// A running venue; stops its listeners when dropped.
#[derive(Debug)]
pub struct Venue {
    /// The plain WebSocket address.
    pub ws_addr: SocketAddr,
    /// The TLS WebSocket address, when TLS is on.
    pub wss_addr: Option<SocketAddr>,
    /// The CA that signed the TLS certificate.
    pub ca_pem: Option<PathBuf>,
    /// The REST API's address, when on.
    pub http_addr: Option<SocketAddr>,
    /// The FIX acceptor's address, when on.
    pub fix_addr: Option<SocketAddr>,
    /// The REST API's TLS address, when on.
    pub https_addr: Option<SocketAddr>,
    /// The TLS FIX acceptor's address, when on.
    pub fixs_addr: Option<SocketAddr>,
    /// A client certificate and its key signed by the venue's CA (when TLS is on), for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    stop: Arc<AtomicBool>,
    stats: Arc<VenueStats>,
    chaos: Option<Arc<Chaos>>,
    _tempdir: Option<TempDir>,
}

/// What the venue has done so far.
#[derive(Debug, Default)]
pub struct VenueStats {
    /// Connections accepted (both listeners).
    pub connections: AtomicU64,
    /// Feed messages sent.
    pub feed_messages: AtomicU64,
    /// Echo messages returned.
    pub echoed: AtomicU64,
    /// Feed messages sent compressed (permessage-deflate).
    pub deflated_messages: AtomicU64,
    /// The bytes of those messages before compression.
    pub deflate_in_bytes: AtomicU64,
    /// The payload bytes of those messages on the wire, after compression.
    pub deflate_out_bytes: AtomicU64,
}

impl Venue {
    /// Starts the listeners and their accept threads.
    pub fn start(args: &VenueArgs) -> io::Result<Venue> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(VenueStats::default());
        let defaults = FeedDefaults {
            rate: args.rate.max(1),
            size: args.size,
            deflate: args.deflate,
        };
        let chaos = match args.chaos {
            None => None,
            Some(seed) => {
                let every = Duration::try_from_secs_f64(args.chaos_every).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("--chaos-every: {e}"))
                })?;
                let duration = args
                    .chaos_for
                    .map(Duration::try_from_secs_f64)
                    .transpose()
                    .map_err(|e| {
                        io::Error::new(io::ErrorKind::InvalidInput, format!("--chaos-for: {e}"))
                    })?;
                Some(Arc::new(Chaos::new(seed, every, duration)))
            }
        };
        let plain = TcpListener::bind(args.listen)
            .map_err(|e| io::Error::new(e.kind(), format!("venue: bind {}: {e}", args.listen)))?;
        let ws_addr = plain.local_addr()?;
        let shared = Shared {
            stop: stop.clone(),
            stats: stats.clone(),
            chaos: chaos.clone(),
        };
        spawn_acceptor(plain, None, defaults, shared.clone())?;
        let (mut wss_addr, mut tempdir) = (None, None);
        let identity = if args.any_tls() {
            let dir = match &args.cert_dir {
                Some(d) => {
                    std::fs::create_dir_all(d)?;
                    d.clone()
                }
                None => {
                    let t = TempDir::new()?;
                    let p = t.0.clone();
                    tempdir = Some(t);
                    p
                }
            };
            let auth = ClientAuth {
                ca: args.client_ca.clone(),
                required: args.require_client_cert,
            };
            Some(super::venue_tls::identity(&dir, &auth)?)
        } else {
            None
        };
        let bind = |addr: SocketAddr| {
            TcpListener::bind(addr)
                .map_err(|e| io::Error::new(e.kind(), format!("venue: bind {addr}: {e}")))
        };
        if let (true, Some(id)) = (args.tls, &identity) {
            let listener = bind(args.tls_listen)?;
            wss_addr = Some(listener.local_addr()?);
            spawn_acceptor(listener, Some(id.server.clone()), defaults, shared.clone())?;
        }
        let mut http_addr = None;
        if let Some(addr) = args.http_listen {
            let listener = bind(addr)?;
            http_addr = Some(listener.local_addr()?);
            super::venue_http::spawn_rest_with_chaos(listener, None, stop.clone(), chaos.clone())?;
        }
        let mut https_addr = None;
        if let (Some(addr), Some(id)) = (args.https_listen, &identity) {
            let listener = bind(addr)?;
            https_addr = Some(listener.local_addr()?);
            let tls = id.with_alpn(&[b"http/1.1"]);
            super::venue_http::spawn_rest_with_chaos(
                listener,
                Some(tls),
                stop.clone(),
                chaos.clone(),
            )?;
        }
        #[allow(unused_mut)]
        let (mut fix_addr, mut fixs_addr) = (None, None);
        #[cfg(feature = "fix")]
        {
            let book = Arc::new(super::venue_fix_log::Sessions::new(
                args.fix_log.as_deref(),
            )?);
            let fix = |tls| super::venue_fix::FixShared {
                tls,
                stop: stop.clone(),
                chaos: chaos.clone(),
                sessions: book.clone(),
                spin: args.spin,
            };
            if let Some(addr) = args.fix_listen {
                let listener = bind(addr)?;
                fix_addr = Some(listener.local_addr()?);
                super::venue_fix::spawn_fix(listener, fix(None))?;
            }
            if let (Some(addr), Some(id)) = (args.fixs_listen, &identity) {
                let listener = bind(addr)?;
                fixs_addr = Some(listener.local_addr()?);
                super::venue_fix::spawn_fix(listener, fix(Some(id.server.clone())))?;
            }
        }
        Ok(Venue {
            ws_addr,
            wss_addr,
            ca_pem: identity.as_ref().map(|id| id.ca.clone()),
            http_addr,
            fix_addr,
            https_addr,
            fixs_addr,
            client_cert: identity.map(|id| (id.client_cert, id.client_key)),
            stop,
            stats,
            chaos,
            _tempdir: tempdir,
        })
    }

    /// Counters.
    pub fn stats(&self) -> &VenueStats {
        &self.stats
    }

    /// The faults injected so far, in chaos mode.
    pub fn chaos(&self) -> Option<&ChaosCounts> {
        self.chaos.as_deref().map(|c| &c.counts)
    }
}

impl Drop for Venue {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A folder removed on drop (the generated certificates when no `--cert-dir` is given).
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> io::Result<TempDir> {
        let base = std::env::temp_dir();
        for i in 0..100u32 {
            let p = base.join(format!("hotwire-venue-{}-{i}", std::process::id()));
            match std::fs::create_dir(&p) {
                Ok(()) => return Ok(TempDir(p)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("cannot create a temporary folder"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the venue until SIGINT/SIGTERM (`hotwire venue`).
pub fn run(args: &VenueArgs) -> std::process::ExitCode {
    let venue = match Venue::start(args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("hotwire venue: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // The banner goes to whoever started the venue; a reader that has gone away (a test that
    // read the first line) must not take the venue down with it.
    let say = |line: std::fmt::Arguments<'_>| {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    };
    say(format_args!(
        "venue: ws://{}/feed  ws://{}/echo",
        venue.ws_addr, venue.ws_addr
    ));
    if let (Some(addr), Some(ca)) = (venue.wss_addr, &venue.ca_pem) {
        say(format_args!(
            "venue: wss://{addr}/feed  wss://{addr}/echo  ca={}",
            ca.display()
        ));
    }
    if let Some(addr) = venue.http_addr {
        say(format_args!(
            "venue: http://{addr}/api/time  http://{addr}/api/book?symbol=HWX  POST http://{addr}/api/order"
        ));
    }
    if let Some(addr) = venue.fix_addr {
        say(format_args!(
            "venue: fix://{addr} (any SenderCompID/TargetCompID; fills every NewOrderSingle)"
        ));
    }
    if let Some(addr) = venue.https_addr {
        say(format_args!(
            "venue: https://{addr}/api/time  https://{addr}/api/book?symbol=HWX"
        ));
    }
    if let Some(addr) = venue.fixs_addr {
        say(format_args!("venue: fixs://{addr}"));
    }
    if let Some((cert, key)) = &venue.client_cert {
        let required = if args.require_client_cert {
            "required"
        } else {
            "optional"
        };
        say(format_args!(
            "venue: client certificate {} key {} (client certificates {required})",
            cert.display(),
            key.display()
        ));
    }

    crate::app::signals::wait_for_termination();
    say(format_args!(
        "venue: stopping after {} connections, {} feed messages, {} echoed",
        venue.stats.connections.load(Ordering::Relaxed),
        venue.stats.feed_messages.load(Ordering::Relaxed),
        venue.stats.echoed.load(Ordering::Relaxed)
    ));
    if let Some(counts) = venue.chaos() {
        say(format_args!("venue: chaos {counts}"));
    }
    std::process::ExitCode::SUCCESS
}

/// The highest feed rate a client may ask for, messages per second.
const MAX_RATE: u64 = 1_000_000;
/// The largest feed message a client may ask for, bytes.
const MAX_MESSAGE_SIZE: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
struct FeedDefaults {
    rate: u64,
    size: usize,
    /// `--deflate`: compress the feed for clients that offer permessage-deflate.
    deflate: bool,
}

/// What every WebSocket connection thread shares.
#[derive(Debug, Clone)]
struct Shared {
    stop: Arc<AtomicBool>,
    stats: Arc<VenueStats>,
    chaos: Option<Arc<Chaos>>,
}

fn spawn_acceptor(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    defaults: FeedDefaults,
    shared: Shared,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("venue-accept".into())
        .spawn(move || {
            while !shared.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((sock, _)) => {
                        shared.stats.connections.fetch_add(1, Ordering::Relaxed);
                        let (tls, shared) = (tls.clone(), shared.clone());
                        let _ = std::thread::Builder::new().name("venue-conn".into()).spawn(
                            move || {
                                if let Err(e) = serve(sock, tls, defaults, &shared) {
                                    log::debug!("venue connection: {e}");
                                }
                            },
                        );
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => {
                        log::warn!("venue accept: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })?;
    Ok(())
}

/// The request's path and query, captured during the WebSocket handshake, and the
/// permessage-deflate parameters agreed (the feed only).
#[derive(Default)]
struct Target {
    path: String,
    query: String,
    deflate: Option<Agreed>,
}

fn serve(
    sock: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    defaults: FeedDefaults,
    shared: &Shared,
) -> io::Result<()> {
    sock.set_nodelay(true)?;
    sock.set_nonblocking(false)?;
    match tls {
        None => session(sock, defaults, shared),
        Some(config) => {
            let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
            session(rustls::StreamOwned::new(conn, sock), defaults, shared)
        }
    }
}

// tungstenite's handshake callback has its (large) error type fixed by the library.
#[allow(clippy::result_large_err)]
fn session<S: Socket>(sock: S, defaults: FeedDefaults, shared: &Shared) -> io::Result<()> {
    let (stop, stats) = (&*shared.stop, &*shared.stats);
    let mut chaos = ConnChaos::new(shared.chaos.as_ref());
    let mut target = Target::default();
    let mut ws = tungstenite::accept_hdr(sock, |req: &Request, mut resp: Response| {
        target.path = req.uri().path().to_owned();
        target.query = req.uri().query().unwrap_or("").to_owned();
        let wanted = defaults.deflate || query_param::<u8>(&target.query, "deflate") == Some(1);
        if wanted && target.path == "/feed" {
            target.deflate = venue_deflate::accept_offer(req.headers());
            if let Some(agreed) = &target.deflate {
                // The answer is plain ASCII built by the venue, so it is always a valid value.
                if let Ok(v) = HeaderValue::from_str(&agreed.answer()) {
                    resp.headers_mut().insert("Sec-WebSocket-Extensions", v);
                }
            }
        }
        Ok(resp)
    })
    .map_err(|e| io::Error::other(format!("handshake: {e}")))?;
    match target.path.as_str() {
        "/feed" => {
            let deflater = target.deflate.as_ref().map(FeedDeflater::new);
            feed(
                &mut ws,
                &target.query,
                defaults,
                deflater,
                shared,
                &mut chaos,
            )
        }
        "/echo" => echo(&mut ws, stop, stats, &mut chaos),
        "/ping" => super::venue_ping::ping(&mut ws, &target.query, stop, stats),
        other => {
            let _ = ws.close(Some(CloseFrame {
                code: CloseCode::Policy,
                reason: format!("no such stream: {other}").into(),
            }));
            let _ = ws.flush();
            Ok(())
        }
    }
}

pub(crate) fn query_param<T: std::str::FromStr>(query: &str, key: &str) -> Option<T> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Formats feed message `seq` into `out`, padded to about `size` bytes.
fn feed_message(out: &mut String, seq: u64, size: usize) {
    use std::fmt::Write as _;
    out.clear();
    let px = 100.0 + (seq % 1000) as f64 * 0.25;
    let _ = write!(
        out,
        "{{\"seq\":{seq},\"ts\":{},\"sym\":\"HWX\",\"px\":{px:.2},\"qty\":{},\"pad\":\"",
        now_ns(),
        1 + seq % 9
    );
    while out.len() + 2 < size {
        out.push('x');
    }
    out.push_str("\"}");
}

fn feed<S: Socket>(
    ws: &mut WebSocket<S>,
    query: &str,
    defaults: FeedDefaults,
    mut deflater: Option<FeedDeflater>,
    shared: &Shared,
    chaos: &mut ConnChaos,
) -> io::Result<()> {
    let (stop, stats) = (&*shared.stop, &*shared.stats);
    // Bounded, so no client can make the venue allocate or loop without limit.
    let rate: u64 = query_param(query, "rate")
        .unwrap_or(defaults.rate)
        .clamp(1, MAX_RATE);
    let size: usize = query_param(query, "size")
        .unwrap_or(defaults.size)
        .min(MAX_MESSAGE_SIZE);
    let count: Option<u64> = query_param(query, "count");
    // Reads wait at most 1 ms: they double as the pacing sleep.
    ws.get_ref()
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(1)))?;
    let start = Instant::now();
    let mut seq = 0u64;
    let mut text = String::with_capacity(size + 64);
    while !stop.load(Ordering::Relaxed) {
        if count.is_some_and(|c| seq >= c) {
            let _ = ws.close(None);
            // Wait for the client's close reply, then let the socket go.
            loop {
                match ws.read() {
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e))
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        if stop.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                    }
                    // The client answered the close: end TLS with close_notify, as a server should.
                    Err(
                        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                    ) => return finish_close(ws),
                    Err(_) => return Ok(()),
                }
            }
        }
        if chaos.strike(ws.get_ref().tcp()) == Verdict::Close {
            return Ok(());
        }
        // Send everything that is due by now.
        let due = (start.elapsed().as_nanos() * u128::from(rate) / 1_000_000_000) as u64 + 1;
        let due = count.map_or(due, |c| due.min(c));
        let mut sent = false;
        while seq < due {
            seq += 1;
            feed_message(&mut text, seq, size);
            let msg = match deflater.as_mut() {
                None => Message::text(text.as_str()),
                Some(d) => {
                    let payload = d.compress(text.as_bytes())?;
                    stats.deflated_messages.fetch_add(1, Ordering::Relaxed);
                    stats
                        .deflate_in_bytes
                        .fetch_add(text.len() as u64, Ordering::Relaxed);
                    stats
                        .deflate_out_bytes
                        .fetch_add(payload.len() as u64, Ordering::Relaxed);
                    // One final frame with RSV1: a compressed text message (RFC 7692 §6).
                    let header = FrameHeader {
                        is_final: true,
                        rsv1: true,
                        opcode: OpCode::Data(OpData::Text),
                        ..FrameHeader::default()
                    };
                    Message::Frame(Frame::from_payload(
                        header,
                        tungstenite::Bytes::copy_from_slice(payload),
                    ))
                }
            };
            ws.write(msg)
                .map_err(|e| io::Error::other(format!("feed write: {e}")))?;
            stats.feed_messages.fetch_add(1, Ordering::Relaxed);
            sent = true;
        }
        if sent {
            ws.flush()
                .map_err(|e| io::Error::other(format!("feed flush: {e}")))?;
        }
        match ws.read() {
            Ok(Message::Close(_)) => return finish_close(ws),
            Ok(_) => {}
            // tungstenite refuses RSV1 (it knows no extension): a client that negotiated
            // permessage-deflate may send compressed data, which the feed does not read. Close
            // with 1002 rather than drop the connection.
            Err(tungstenite::Error::Protocol(ProtocolError::NonZeroReservedBits)) => {
                let _ = ws.close(Some(CloseFrame {
                    code: CloseCode::Protocol,
                    reason: "the feed reads no compressed data".into(),
                }));
                return finish_close(ws);
            }
            Err(e) => {
                if read_error(e, "feed")? {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// The client started the closing handshake: send tungstenite's queued reply, then end TLS cleanly.
/// What a failed read on a venue connection means: `Ok(false)` nothing yet (the read timeout),
/// `Ok(true)` the client is gone, `Err` anything else (`what` names the loop in the message).
pub(super) fn read_error(e: tungstenite::Error, what: &str) -> io::Result<bool> {
    match e {
        tungstenite::Error::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(false)
        }
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => Ok(true),
        e => Err(io::Error::other(format!("{what} read: {e}"))),
    }
}

fn finish_close<S: Socket>(ws: &mut WebSocket<S>) -> io::Result<()> {
    let _ = ws.flush();
    ws.get_mut().close_transport();
    Ok(())
}

fn echo<S: Socket>(
    ws: &mut WebSocket<S>,
    stop: &AtomicBool,
    stats: &VenueStats,
    chaos: &mut ConnChaos,
) -> io::Result<()> {
    ws.get_ref()
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(50)))?;
    while !stop.load(Ordering::Relaxed) {
        if chaos.strike(ws.get_ref().tcp()) == Verdict::Close {
            return Ok(());
        }
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                ws.send(m)
                    .map_err(|e| io::Error::other(format!("echo write: {e}")))?;
                stats.echoed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Message::Close(_)) => return finish_close(ws),
            Ok(_) => {}
            Err(e) => {
                if read_error(e, "echo")? {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_messages_carry_seq_and_timestamp_and_size() {
        let mut s = String::new();
        feed_message(&mut s, 42, 128);
        assert!(s.starts_with("{\"seq\":42,\"ts\":"), "{s}");
        assert_eq!(s.len(), 128);
        assert!(s.ends_with("\"}"));
        feed_message(&mut s, 7, 10);
        assert!(
            s.len() > 10 && s.contains("\"pad\":\"\""),
            "small sizes never truncate: {s}"
        );
    }

    #[test]
    fn query_parameters() {
        assert_eq!(query_param::<u64>("rate=5&size=9", "size"), Some(9));
        assert_eq!(query_param::<u64>("rate=x", "rate"), None);
        assert_eq!(query_param::<u64>("", "rate"), None);
    }
}
