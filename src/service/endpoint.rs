//! What an endpoint is: a connection factory plus the application logic that runs on it.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::select::Selectable;

/// Where an endpoint connects: a host (a name resolved asynchronously, or an IP literal) and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectAddr {
    /// DNS name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl ConnectAddr {
    /// An address from a host and a port.
    pub fn new(host: impl Into<String>, port: u16) -> ConnectAddr {
        ConnectAddr {
            host: host.into(),
            port,
        }
    }
}

/// How the service treats an endpoint's connection over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Give up a connection that is not established (TCP, TLS and protocol handshakes) after this.
    pub connect_timeout: Duration,
    /// First reconnect delay; doubles on each failure in a row.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Random spread applied to each delay, as a fraction (0.2 = ±20 %), so endpoints that failed
    /// together do not reconnect in lockstep.
    pub backoff_jitter: f64,
    /// Close and reopen the connection after it has been up this long (venues that cut sessions
    /// after 24 h: reconnect on our schedule instead). Reconnects at once, without backoff.
    pub max_lifetime: Option<Duration>,
    /// Call [`Endpoint::on_timer`] this often while established (heartbeats, pings).
    pub timer: Option<Duration>,
    /// Reconnect after a disconnect. `false` leaves the endpoint down.
    pub reconnect: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            connect_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            backoff_jitter: 0.2,
            max_lifetime: None,
            timer: None,
            reconnect: true,
        }
    }
}

/// Why a connection ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Disconnect {
    /// The host name did not resolve.
    Dns(io::Error),
    /// Creating or establishing the connection failed (refused, TLS or protocol handshake).
    Connect(io::Error),
    /// Not established within [`Policy::connect_timeout`].
    ConnectTimeout,
    /// An I/O or protocol error while established (including a clean close by the peer, reported as
    /// `UnexpectedEof` / `ConnectionAborted` by the endpoint).
    Error(io::Error),
    /// [`Policy::max_lifetime`] elapsed.
    Lifetime,
    /// The endpoint asked to close ([`Endpoint::poll`] returned `Ok(Flow::Close)`).
    Requested,
}

impl std::fmt::Display for Disconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disconnect::Dns(e) => write!(f, "DNS: {e}"),
            Disconnect::Connect(e) => write!(f, "connect: {e}"),
            Disconnect::ConnectTimeout => f.write_str("connect timed out"),
            Disconnect::Error(e) => write!(f, "{e}"),
            Disconnect::Lifetime => f.write_str("lifetime reached (auto-disconnect)"),
            Disconnect::Requested => f.write_str("closed by the endpoint"),
        }
    }
}

/// What the service tells an endpoint about its connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The connection is established; traffic may flow.
    Connected {
        /// The address connected to.
        addr: SocketAddr,
    },
    /// The connection ended; a reconnect is scheduled after `retry_in` (if reconnecting).
    Disconnected {
        /// Why.
        reason: &'a Disconnect,
        /// When the next attempt starts, if there will be one.
        retry_in: Option<Duration>,
    },
}

/// What an endpoint's poll wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep the connection.
    Continue,
    /// Close it (reported as [`Disconnect::Requested`], then the policy decides about reconnecting).
    Close,
    /// Keep it, and poll it again on the next round whatever the selector says: the endpoint
    /// stopped before draining (a per-poll budget), so one busy connection cannot starve the
    /// others of their turn and timers.
    More,
}

/// A connection factory with the application logic that runs on the connection.
///
/// `C` is the user context shared by all endpoints of one service (`()` when there is none): it
/// is handed to every callback, so endpoints can publish into shared state without locks.
///
/// The service calls, in order: [`Endpoint::address`] (resolved off the event loop),
/// [`Endpoint::create_target`] with the resolved address, then — once the target's handshakes are
/// done — [`Endpoint::on_event`] with [`Event::Connected`], and [`Endpoint::poll`] whenever the
/// connection may have traffic.
pub trait Endpoint<C = ()> {
    /// The connection type: a stream, or a protocol client over one.
    type Target: Selectable;

    /// Where to connect.
    fn address(&self) -> ConnectAddr;

    /// Creates the connection to `addr` without blocking (the connect completes later). It may
    /// queue messages right away (subscriptions): they go out once the connection is ready.
    fn create_target(&mut self, addr: SocketAddr, ctx: &mut C) -> io::Result<Self::Target>;

    /// Handles traffic. Called after readiness events (and on every poll with a busy-poll
    /// selector). **Must drain** — read until the target returns `WouldBlock`, because readiness is
    /// edge-triggered — or return [`Flow::More`] to be polled again next round. An `Err`
    /// disconnects this endpoint only.
    fn poll(&mut self, target: &mut Self::Target, ctx: &mut C) -> io::Result<Flow>;

    /// Connection lifecycle notifications. The default does nothing.
    fn on_event(&mut self, event: &Event<'_>, ctx: &mut C) {
        let _ = (event, ctx);
    }

    /// Called every [`Policy::timer`] while established (heartbeats, pings). The default does
    /// nothing.
    fn on_timer(
        &mut self,
        target: &mut Self::Target,
        now: Instant,
        ctx: &mut C,
    ) -> io::Result<Flow> {
        let _ = (target, now, ctx);
        Ok(Flow::Continue)
    }

    /// Asked before each connection attempt (after any backoff): `Some(wait)` keeps the endpoint
    /// disconnected and asks again after `wait` (a trading session outside its schedule). The
    /// default never holds.
    fn hold(&mut self, ctx: &mut C) -> Option<Duration> {
        let _ = ctx;
        None
    }

    /// The connection policy; read once when the endpoint is added.
    fn policy(&self) -> Policy {
        Policy::default()
    }
}
