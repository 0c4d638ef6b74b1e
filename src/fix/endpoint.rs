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
//! use std::io;
//! use hotwire::fix::codec::{Decimal, Message, MsgType};
//! use hotwire::fix::endpoint::{FixEndpoint, FixHandler, FixOutbox};
//! use hotwire::fix::orders::{NewOrder, Side};
//! use hotwire::fix::{Now, SessionConfig, Version};
//! use hotwire::select::{MioSelector, Selector};
//! use hotwire::service::IntoIoService;
//! use hotwire::service::Flow;
//!
//! #[derive(Default)]
//! struct Fills { count: u64 }
//!
//! struct Desk;
//! impl FixHandler<Fills> for Desk {
//!     fn on_logon(&mut self, out: &mut FixOutbox<'_>, now: Now, _: &mut Fills) -> io::Result<()> {
//!         let order = NewOrder {
//!             cl_ord_id: "1", symbol: "HWIR", side: Side::Buy, qty: Decimal::new(100, 0),
//!             price: Some(Decimal::new(10125, 2)), time_in_force: None, account: None,
//!         };
//!         let version = out.session().config().version;
//!         out.send(now, NewOrder::MSG_TYPE, |e| order.encode(e, version, now.utc)).map(|_| ())
//!     }
//!     fn on_message(&mut self, msg: Message<'_>, _: &mut FixOutbox<'_>, _: Now, fills: &mut Fills)
//!         -> io::Result<Flow> {
//!         if msg.msg_type() == MsgType::ExecutionReport { fills.count += 1; }
//!         Ok(Flow::Continue)
//!     }
//! }
//!
//! # fn main() -> io::Result<()> {
//! let config = SessionConfig::new(Version::Fix44, "DESK", "VENUE");
//! let mut service = MioSelector::new()?.into_io_service_with_context();
//! service.register(FixEndpoint::new("127.0.0.1", 9878, config, Desk).with_file_store("fix-store"));
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
use super::session::{AnyStore, FileStore, MemoryStore, MessageStore, Now, SessionConfig, State};
use crate::service::{ConnectAddr, Dial, Endpoint, Event, Flow, KernelDial, Policy};
use crate::stream::tls::TlsConnector;
use crate::stream::{MaybeTls, Stream, TcpOptions, TcpStream};

/// The connection a [`FixEndpoint`] runs: FIX over the dialer's stream (kernel TCP by default),
/// with TLS when configured.
pub type FixConn<S = TcpStream> = FixSession<MaybeTls<S>, AnyStore>;

/// The send side lent to a [`FixHandler`].
pub type FixOutbox<'a, S = TcpStream> = Outbox<'a, MaybeTls<S>, AnyStore>;

/// The application side of a [`FixEndpoint`] (`S`: the dialer's stream, kernel TCP by default).
pub trait FixHandler<C = (), S: Stream = TcpStream> {
    /// The session is logged on: send what should go out first (orders, status requests).
    fn on_logon(&mut self, out: &mut FixOutbox<'_, S>, now: Now, ctx: &mut C) -> io::Result<()> {
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
    ) -> io::Result<Flow>;

    /// The counterparty rejected one of our messages (session-level Reject).
    fn on_reject(&mut self, ref_seq: u64, msg: Message<'_>, ctx: &mut C) {
        log::warn!("FIX session reject of our MsgSeqNum {ref_seq}: {msg:?}");
        let _ = ctx;
    }

    /// Called on every service timer tick while logged on (after the session's own timers).
    fn on_timer(&mut self, out: &mut FixOutbox<'_, S>, now: Now, ctx: &mut C) -> io::Result<Flow> {
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
#[derive(Debug)]
pub struct FixEndpoint<H, D = KernelDial> {
    host: String,
    port: u16,
    server_name: String,
    tls: Option<TlsConnector>,
    dial: D,
    config: SessionConfig,
    store: StoreSpec,
    policy: Policy,
    handler: H,
    /// `on_logon` was called for the current connection.
    greeted: bool,
    /// The handler asked to close: a Logout is under way.
    closing: bool,
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

impl<H> FixEndpoint<H> {
    /// An endpoint for `host:port` with an in-memory store (every Logon resets the sequences).
    /// The service timer ticks every quarter heartbeat interval (at most once a second).
    pub fn new(host: &str, port: u16, config: SessionConfig, handler: H) -> FixEndpoint<H> {
        let tick = (config.heartbeat_interval / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        FixEndpoint {
            host: host.to_string(),
            port,
            server_name: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            tls: None,
            dial: KernelDial::default(),
            config,
            store: StoreSpec::Memory,
            policy: Policy {
                timer: Some(tick),
                ..Policy::default()
            },
            handler,
            greeted: false,
            period_reset: false,
            closing: false,
            schedule: None,
            period_end: None,
            held: false,
        }
    }

    /// Kernel socket options.
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
            tls: self.tls,
            dial,
            config: self.config,
            store: self.store,
            policy: self.policy,
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

    /// Uses TLS with `connector`, verifying the certificate for `server_name`.
    pub fn with_tls(mut self, connector: TlsConnector, server_name: &str) -> Self {
        self.tls = Some(connector);
        self.server_name = server_name.to_string();
        self
    }

    /// Keeps sequence numbers and sent messages in `dir`, so they continue across reconnects and
    /// restarts.
    pub fn with_file_store(mut self, dir: impl Into<PathBuf>) -> Self {
        self.store = StoreSpec::File(dir.into());
        self
    }

    /// Lifecycle policy. Keep a `timer`: heartbeats depend on it.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
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

    fn create_target(&mut self, addr: SocketAddr, _ctx: &mut C) -> io::Result<Self::Target> {
        let tcp = self.dial.dial(addr)?;
        let stream = MaybeTls::new(tcp, self.tls.as_ref(), &self.server_name)?;
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
        self.closing = false;
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

    fn poll(&mut self, fix: &mut Self::Target, ctx: &mut C) -> io::Result<Flow> {
        let now = clock();
        if !self.greeted {
            self.greeted = true;
            self.period_reset = false;
            self.handler.on_logon(&mut fix.outbox(), now, ctx)?;
        }
        let mut close = false;
        let mut handled = 0;
        let (handler, closing) = (&mut self.handler, self.closing);
        fix.receive_with(now, |ev, out| {
            match ev {
                FixEvent::App(msg) if !closing => {
                    close = handler.on_message(msg, out, now, ctx)? == Flow::Close;
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
        if close && !self.closing {
            self.closing = true;
            fix.logout(now, None)?;
        }
        // Once per poll: the inbound sequence number and index entries reach the store's files.
        fix.commit()?;
        Ok(match fix.session().state() {
            State::Ended => Flow::Close,
            // The budget ran out with messages perhaps still buffered: poll again next round.
            _ if handled == MESSAGES_PER_POLL => Flow::More,
            _ => Flow::Continue,
        })
    }

    fn on_timer(&mut self, fix: &mut Self::Target, now: Instant, ctx: &mut C) -> io::Result<Flow> {
        let now = now_from(now);
        if self.period_end.is_some_and(|end| now.utc >= end) && !self.closing {
            log::info!(
                "FIX {}->{}: end of the session period: logging out",
                self.config.sender_comp_id,
                self.config.target_comp_id
            );
            self.closing = true;
            fix.logout(now, Some("end of the session period"))?;
        }
        fix.on_timer(now)?;
        if fix.session().state() == State::Active
            && self.handler.on_timer(&mut fix.outbox(), now, ctx)? == Flow::Close
            && !self.closing
        {
            self.closing = true;
            fix.logout(now, None)?;
        }
        Ok(match fix.session().state() {
            State::Ended => Flow::Close,
            _ => Flow::Continue,
        })
    }

    fn on_event(&mut self, event: &Event<'_>, ctx: &mut C) {
        self.handler.on_event(event, ctx);
    }

    fn policy(&self) -> Policy {
        self.policy.clone()
    }
}
