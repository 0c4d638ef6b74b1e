//! What an endpoint is: a connection factory plus the application logic that runs on it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Disconnect, Error};
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
    /// Reconnect after a failure, an orderly close by the peer or the lifetime. `false` leaves
    /// the endpoint down.
    pub reconnect: bool,
    /// Reconnect also after a close on purpose ([`Flow::Close`], [`IoService::disconnect`]):
    /// off by default, so a handler that closes is not greeted by a new connection (and a FIX
    /// `on_logon` that would resend its orders).
    ///
    /// [`IoService::disconnect`]: super::IoService::disconnect
    pub reconnect_after_close: bool,
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
            reconnect_after_close: false,
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
    /// Close it on purpose (reported as [`Disconnect::Requested`]); it stays down unless
    /// [`Policy::reconnect_after_close`] is set.
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
    fn create_target(&mut self, addr: SocketAddr, ctx: &mut C) -> Result<Self::Target, Error>;

    /// Drives the connection's handshakes; `Ok(true)` once established. The default asks the
    /// target ([`Selectable::poll_connect`]) and types its error as a connect (or TLS) failure;
    /// endpoints whose target knows its protocol's error override it.
    fn poll_connect(&mut self, target: &mut Self::Target) -> Result<bool, Error> {
        target.poll_connect().map_err(|e| match Error::from_io(e) {
            Error::Io(e) => Error::Connect(e),
            other => other,
        })
    }

    /// Handles traffic. Called after readiness events (and on every poll with a busy-poll
    /// selector). **Must drain** — read until the target returns `WouldBlock`, because readiness is
    /// edge-triggered — or return [`Flow::More`] to be polled again next round. An `Err` ends this
    /// endpoint's connection with that reason (`?` turns any layer's error into
    /// [`Disconnect::Error`]); the other endpoints are not affected.
    fn poll(&mut self, target: &mut Self::Target, ctx: &mut C) -> Result<Flow, Disconnect>;

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
    ) -> Result<Flow, Disconnect> {
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
