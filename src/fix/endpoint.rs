//! A FIX session as an [`Endpoint`] of the [`IoService`](crate::service::IoService): implement
//! [`FixHandler`], wrap it in a [`FixEndpoint`].
//!
//! The service does the rest: DNS, connect, TLS, and the Logon (the connection counts as established
//! only once the counterparty's Logon arrived), heartbeats and TestRequests on the service timer
//! ([`Policy::timer`]), reconnects with backoff. The sequence numbers survive reconnects in a
//! [`FileStore`]; with the in-memory store every Logon resets them (ResetSeqNumFlag=Y).
//!
//! With a [`Schedule`] ([`FixEndpoint::with_schedule`]) the endpoint connects only inside a session
//! period: outside it stays down without connection attempts (the service asks
//! [`Endpoint::hold`]; the log says "outside schedule" and when the next period starts), at the
//! period's end it logs out, and the first connection of a new period resets both sequence
//! numbers when the store predates the period, as QuickFIX does.
//!
//! ```no_run
//! use hotwire::fix::codec::{Decimal, Message, MsgType};
//! use hotwire::fix::endpoint::{FixEndpoint, FixHandler, FixOutbox};
//! use hotwire::fix::orders::{NewOrder, Side};
//! use hotwire::fix::{Now, SessionConfig, Version};
//! use hotwire::select::MioSelector;
//! use hotwire::service::IntoIoService;
//! use hotwire::service::{Error, Flow};
//!
//! #[derive(Default)]
//! struct Fills { count: u64 }
//!
//! struct Desk;
//! impl FixHandler<Fills> for Desk {
//!     fn on_logon(&mut self, out: &mut FixOutbox<'_>, now: Now, _: &mut Fills) -> Result<(), Error> {
//!         let order = NewOrder {
//!             cl_ord_id: "1", symbol: "HWIR", side: Side::Buy, qty: Decimal::new(100, 0),
//!             price: Some(Decimal::new(10125, 2)), time_in_force: None, account: None,
//!         };
//!         let version = out.session().config().version;
//!         out.send(now, NewOrder::MSG_TYPE, |e| order.encode(e, version, now.utc))?;
//!         Ok(())
//!     }
//!     fn on_message(&mut self, msg: Message<'_>, _: &mut FixOutbox<'_>, _: Now, fills: &mut Fills)
//!         -> Result<Flow, Error> {
//!         if msg.msg_type() == MsgType::ExecutionReport { fills.count += 1; }
//!         Ok(Flow::Continue)
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = SessionConfig::new(Version::Fix44, "DESK", "VENUE");
//! let mut service = MioSelector::new()?.into_io_service_with_context();
//! service.register(FixEndpoint::new("fix://127.0.0.1:9878", config, Desk)?.with_file_store("fix-store"));
//! let mut fills = Fills::default();
//! loop {
//!     service.poll(&mut fills)?;
//! }
//! # }
//! ```

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::client::{clock, FixEvent, FixSession, Outbox};
use super::codec::{Message, UtcTimestamp};
use super::schedule::Schedule;
use super::session::{
    AnyStore, FileStore, MemoryStore, MessageStore, Now, SessionConfig, SessionState,
};
use crate::service::{default_connector, wrap, Connector, Transport};
use crate::service::{
    tick_for, ConnectAddr, Dial, Disconnect, Endpoint, Error, Event, Flow, KernelDial, Policy,
};
use crate::stream::{Stream, TcpOptions, TcpStream};

/// The connection a [`FixEndpoint`] runs: FIX over the dialer's stream (kernel TCP by default),
/// with TLS when configured.
pub type FixConn<S = TcpStream> = FixSession<Transport<S>, AnyStore>;

/// The send side lent to a [`FixHandler`].
pub type FixOutbox<'a, S = TcpStream> = Outbox<'a, Transport<S>, AnyStore>;

/// The application side of a [`FixEndpoint`] (`S`: the dialer's stream, kernel TCP by default).
pub trait FixHandler<C = (), S: Stream = TcpStream> {
    /// The session is logged on: send what should go out first (orders, status requests).
    fn on_logon(&mut self, out: &mut FixOutbox<'_, S>, now: Now, ctx: &mut C) -> Result<(), Error> {
        let _ = (out, now, ctx);
        Ok(())
    }

    /// An application message in sequence (ExecutionReport, OrderCancelReject…). It borrows the
    /// connection's buffer: copy what must outlive the call. `Flow::Close` logs out cleanly.
    fn on_message(
        &mut self,
        msg: Message<'_>,
        out: &mut FixOutbox<'_, S>,
        now: Now,
        ctx: &mut C,
    ) -> Result<Flow, Error>;

    /// The counterparty rejected one of our messages (session-level Reject).
    fn on_reject(&mut self, ref_seq: u64, msg: Message<'_>, ctx: &mut C) {
        log::warn!("FIX session reject of our MsgSeqNum {ref_seq}: {msg:?}");
        let _ = ctx;
    }

    /// Called every [`FixEndpoint::with_timer`] period while logged on (after the session's own
    /// timers).
    fn on_timer(
        &mut self,
        out: &mut FixOutbox<'_, S>,
        now: Now,
        ctx: &mut C,
    ) -> Result<Flow, Error> {
        let _ = (out, now, ctx);
        Ok(Flow::Continue)
    }

    /// Connection lifecycle notifications.
    fn on_event(&mut self, event: &Event<'_>, ctx: &mut C) {
        let _ = (event, ctx);
    }
}

/// Application messages handled per poll before the other endpoints get their turn
/// ([`Flow::More`]), as `service::ws::FRAMES_PER_POLL` does for WebSocket
/// frames.
pub const MESSAGES_PER_POLL: usize = 1024;

/// Where a [`FixEndpoint`] keeps its sequence numbers.
#[derive(Debug, Clone)]
enum StoreSpec {
    Memory,
    File(PathBuf),
}

/// An [`Endpoint`] for one FIX session, driving a [`FixHandler`], over the streams its [`Dial`]
/// opens (kernel TCP unless [`FixEndpoint::with_dialer`] says otherwise).
///
/// Builders set one thing each and never reset another's setting: the session's own tick
/// (heartbeats, TestRequests, a quarter of the heartbeat interval) always runs, whatever
/// [`with_policy`](Self::with_policy) says; the handler's timer ([`with_timer`](Self::with_timer),
/// else the policy's `timer`) runs beside it on its own cadence.
#[derive(Debug)]
pub struct FixEndpoint<H, D = KernelDial> {
    host: String,
    port: u16,
    server_name: String,
    secure: bool,
    tls: Option<Connector>,
    dial: D,
    config: SessionConfig,
    store: StoreSpec,
    policy: Policy,
    timer: Option<Duration>,
    next_timer: Option<Instant>,
    handler: H,
    /// `on_logon` was called for the current connection.
    greeted: bool,
    /// A Logout of ours is under way: `Some(true)` when the handler asked for it (closed on
    /// purpose), `Some(false)` at the end of the session period.
    closing: Option<bool>,
    schedule: Option<Schedule>,
    /// A new session period reset our sequence numbers and no Logon of this period has been
    /// accepted yet: every Logon carries ResetSeqNumFlag=Y, so a counterparty that does not keep
    /// the same schedule resets too (and a refused attempt does not leave us at MsgSeqNum 2).
    period_reset: bool,
    /// The end of the current connection's session period (with a schedule).
    period_end: Option<UtcTimestamp>,
    /// Held outside the schedule (logged once per wait).
    held: bool,
}

/// `host:port` of a `fix://` (plain) or `fixs://` (TLS) URL, and whether it is TLS.
fn parse_fix_url(url: &str) -> Result<(String, u16, bool), Error> {
    let invalid = |why: &str| {
        Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{url}: {why} (expected fix://host:port or fixs://host:port)"),
        ))
    };
    let (secure, rest) = if let Some(rest) = url.strip_prefix("fixs://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("fix://") {
        (false, rest)
    } else {
        return Err(invalid("unknown scheme"));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) {
        return Err(invalid("only host and port are allowed"));
    }
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| invalid("no port"))?;
    let port: u16 = port.parse().map_err(|_| invalid("bad port"))?;
    if host.is_empty() || port == 0 {
        return Err(invalid("empty host or port 0"));
    }
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.contains(':') && !bracketed {
        return Err(invalid("an IPv6 address needs brackets"));
    }
    Ok((host.to_string(), port, secure))
}

impl<H> FixEndpoint<H> {
    /// An endpoint for the session `config` at `url`: `fix://host:port` (plain TCP) or
    /// `fixs://host:port` (TLS with the default configuration, verification on, unless
    /// [`with_tls`](Self::with_tls) gives a connector). The session identity (version and
    /// CompIDs) has no default, so it is the one argument the other endpoints do not take.
    /// Sequence numbers live in memory (every Logon resets them) unless
    /// [`with_file_store`](Self::with_file_store).
    pub fn new(url: &str, config: SessionConfig, handler: H) -> Result<FixEndpoint<H>, Error> {
        let (host, port, secure) = parse_fix_url(url)?;
        let tls = if secure {
            Some(default_connector("fixs")?)
        } else {
            None
        };
        Ok(FixEndpoint {
            server_name: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            host,
            port,
            secure,
            tls,
            dial: KernelDial::default(),
            config,
            store: StoreSpec::Memory,
            policy: Policy::default(),
            timer: None,
            next_timer: None,
            handler,
            greeted: false,
            period_reset: false,
            closing: None,
            schedule: None,
            period_end: None,
            held: false,
        })
    }

    /// Kernel socket options (for the default dialer).
    pub fn with_tcp(mut self, options: TcpOptions) -> Self {
        self.dial.options = options;
        self
    }
}

impl<H, D> FixEndpoint<H, D> {
    /// Opens connections through `dial` (another network path, such as an AF_XDP stack).
    pub fn with_dialer<D2: Dial>(self, dial: D2) -> FixEndpoint<H, D2> {
        FixEndpoint {
            host: self.host,
            port: self.port,
            server_name: self.server_name,
            secure: self.secure,
            tls: self.tls,
            dial,
            config: self.config,
            store: self.store,
            policy: self.policy,
            timer: self.timer,
            next_timer: None,
            handler: self.handler,
            greeted: self.greeted,
            period_reset: self.period_reset,
            closing: self.closing,
            schedule: self.schedule,
            period_end: self.period_end,
            held: self.held,
        }
    }

    /// Runs the session only inside `schedule`'s periods (see the [module docs](self)).
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// Uses `connector` for a `fixs://` URL (a venue's CA, a client certificate, the other
    /// backend); a `fix://` URL stays plain.
    #[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
    pub fn with_tls(mut self, connector: crate::stream::tls::TlsConnector) -> Self {
        if self.secure {
            self.tls = Some(connector);
        }
        self
    }

    /// Verifies the server certificate for `name` instead of the URL's host (a venue reached by
    /// IP address whose certificate names its host).
    pub fn with_server_name(mut self, name: &str) -> Self {
        self.server_name = name.to_string();
        self
    }

    /// Keeps sequence numbers and sent messages in `dir`, so they continue across reconnects and
    /// restarts.
    pub fn with_file_store(mut self, dir: impl Into<PathBuf>) -> Self {
        self.store = StoreSpec::File(dir.into());
        self
    }

    /// Lifecycle policy (timeouts, backoff, lifetime, reconnects). The session's heartbeat tick
    /// runs whatever it says; its `timer`, if any, is the handler's timer period unless
    /// [`with_timer`](Self::with_timer) sets one.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Calls [`FixHandler::on_timer`] every `period` while logged on.
    pub fn with_timer(mut self, period: Duration) -> Self {
        self.timer = Some(period);
        self
    }

    /// The handler's timer period in force (see the precedence on [`FixEndpoint`]).
    pub fn timer(&self) -> Option<Duration> {
        self.timer.or(self.policy.timer)
    }

    /// The service tick: a quarter of the heartbeat interval (10 ms to 1 s), divided further so
    /// the handler's timer is a whole number of ticks.
    fn tick(&self) -> Duration {
        let heartbeat = (self.config.heartbeat_interval / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.timer()
            .map_or(heartbeat, |t| tick_for(t, heartbeat).min(heartbeat))
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }
}

fn now_from(mono: Instant) -> Now {
    Now::new(mono, SystemTime::now())
}

/// How long until `to`, from `from` (zero when past).
fn until(from: UtcTimestamp, to: UtcTimestamp) -> Duration {
    Duration::from_nanos(to.0.saturating_sub(from.0))
}

/// A UTC instant for the log.
fn show(t: UtcTimestamp) -> String {
    let mut buf = [0u8; 24];
    let n = t.write(super::codec::TimePrecision::Seconds, &mut buf);
    String::from_utf8_lossy(&buf[..n]).into_owned() + " UTC"
}

impl<H: FixHandler<C, D::Stream>, C, D: Dial> Endpoint<C> for FixEndpoint<H, D> {
    type Target = FixConn<D::Stream>;

    fn address(&self) -> ConnectAddr {
        ConnectAddr::new(self.host.clone(), self.port)
    }

    fn create_target(&mut self, addr: SocketAddr, _ctx: &mut C) -> Result<Self::Target, Error> {
        let tcp = self.dial.dial(addr).map_err(Error::Connect)?;
        let tls = if self.secure { self.tls.as_ref() } else { None };
        let stream = wrap(tcp, tls, &self.server_name)?;
        let mut config = self.config.clone();
        let mut store = match &self.store {
            StoreSpec::Memory => {
                config.reset_on_logon = true;
                AnyStore::Memory(MemoryStore::new())
            }
            StoreSpec::File(dir) => AnyStore::File(FileStore::open(
                dir,
                &config.sender_comp_id,
                &config.target_comp_id,
            )?),
        };
        self.greeted = false;
        self.closing = None;
        self.next_timer = None;
        let now = clock();
        self.period_end = None;
        if let Some(schedule) = &self.schedule {
            let period = schedule.period(now.utc);
            self.period_end = Some(period.end);
            match store.creation_time() {
                Some(created) if created < period.start => {
                    log::info!(
                        "FIX {}->{}: a new session period began at {}: sequence numbers reset",
                        config.sender_comp_id,
                        config.target_comp_id,
                        show(period.start)
                    );
                    store.reset()?;
                    store.set_creation_time(now.utc)?;
                    self.period_reset = true;
                }
                Some(_) => {}
                None => store.set_creation_time(now.utc)?,
            }
            if self.period_reset {
                config.reset_on_logon = true;
            }
        }
        Ok(FixSession::new(stream, config, store, now))
    }

    fn hold(&mut self, _ctx: &mut C) -> Option<Duration> {
        let schedule = self.schedule.as_ref()?;
        let now = UtcTimestamp::from_system_time(SystemTime::now());
        if schedule.current(now).is_some() {
            if self.held {
                self.held = false;
                log::info!(
                    "FIX {}->{}: inside the session schedule: connecting",
                    self.config.sender_comp_id,
                    self.config.target_comp_id
                );
            }
            return None;
        }
        let next = schedule.next_start(now);
        if !self.held {
            self.held = true;
            log::info!(
                "FIX {}->{}: down, outside schedule; the next session starts at {}",
                self.config.sender_comp_id,
                self.config.target_comp_id,
                show(next)
            );
        }
        // Ask again at the start, or within a minute (the wall clock may be stepped).
        Some(until(now, next).clamp(Duration::from_millis(10), Duration::from_secs(60)))
    }

    fn poll(&mut self, fix: &mut Self::Target, ctx: &mut C) -> Result<Flow, Disconnect> {
        let now = clock();
        if !self.greeted {
            self.greeted = true;
            self.period_reset = false;
            self.handler.on_logon(&mut fix.outbox(), now, ctx)?;
        }
        let mut close = false;
        let mut handled = 0;
        let mut failed = None;
        let (handler, closing) = (&mut self.handler, self.closing.is_some());
        fix.receive_with(now, |ev, out| {
            match ev {
                FixEvent::App(msg) if !closing => {
                    match handler.on_message(msg, out, now, ctx) {
                        Ok(flow) => close = flow == Flow::Close,
                        Err(e) => {
                            failed = Some(e);
                            return Ok(false);
                        }
                    }
                    handled += 1;
                    return Ok(!close && handled < MESSAGES_PER_POLL);
                }
                FixEvent::Rejected {
                    ref_seq, message, ..
                } => handler.on_reject(ref_seq, message, ctx),
                _ => {}
            }
            Ok(true)
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        if close {
            self.log_out(fix, now, true, None)?;
        }
        // Once per poll: the inbound sequence number and index entries reach the store's files.
        fix.commit()?;
        self.flow(fix, handled == MESSAGES_PER_POLL)
    }

    fn on_timer(
        &mut self,
        fix: &mut Self::Target,
        mono: Instant,
        ctx: &mut C,
    ) -> Result<Flow, Disconnect> {
        let now = now_from(mono);
        if self.period_end.is_some_and(|end| now.utc >= end) && self.closing.is_none() {
            log::info!(
                "FIX {}->{}: end of the session period: logging out",
                self.config.sender_comp_id,
                self.config.target_comp_id
            );
            self.log_out(fix, now, false, Some("end of the session period"))?;
        }
        // The session's timers directly, so their errors stay typed (a lost heartbeat is
        // `Timeout::TestRequest`, a refused Logon `Error::Fix`), then what they queued goes out.
        let timers = fix.session_mut().on_timer(now);
        let flushed = fix.flush();
        timers?;
        flushed?;
        let due = self.timer().is_some() && self.next_timer.is_none_or(|at| mono >= at);
        if due && fix.session().state() == SessionState::Active && self.closing.is_none() {
            let period = self.timer().unwrap_or_default();
            // Half a tick early, so a tick that comes a little late never skips a period.
            self.next_timer = Some(mono + period.saturating_sub(self.tick() / 2));
            if self.handler.on_timer(&mut fix.outbox(), now, ctx)? == Flow::Close {
                self.log_out(fix, now, true, None)?;
            }
        }
        self.flow(fix, false)
    }

    fn on_event(&mut self, event: &Event<'_>, ctx: &mut C) {
        self.handler.on_event(event, ctx);
    }

    fn policy(&self) -> Policy {
        Policy {
            timer: Some(self.tick()),
            ..self.policy.clone()
        }
    }
}

impl<H, D> FixEndpoint<H, D> {
    /// Starts our Logout once; `requested` when the handler asked for it.
    fn log_out<S: Stream>(
        &mut self,
        fix: &mut FixConn<S>,
        now: Now,
        requested: bool,
        text: Option<&str>,
    ) -> Result<(), Error> {
        if self.closing.is_none() {
            self.closing = Some(requested);
            fix.session_mut().logout(now, text)?;
            fix.flush()?;
        }
        Ok(())
    }

    /// What the session's state means for the connection: once it ended, a close on purpose
    /// (the handler's Logout), or an orderly close (the counterparty's Logout, the end of the
    /// session period) after which the policy may reconnect.
    fn flow<S: Stream>(&self, fix: &FixConn<S>, more: bool) -> Result<Flow, Disconnect> {
        match (fix.session().state(), self.closing) {
            (SessionState::Ended, Some(true)) => Ok(Flow::Close),
            (SessionState::Ended, Some(false)) => Err(Disconnect::PeriodEnd),
            (SessionState::Ended, None) => Err(Disconnect::Closed {
                code: None,
                reason: "logout by the counterparty".to_owned(),
            }),
            // The budget ran out with messages perhaps still buffered: poll again next round.
            _ if more => Ok(Flow::More),
            _ => Ok(Flow::Continue),
        }
    }
}
