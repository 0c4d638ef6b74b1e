//! A WebSocket endpoint in a few lines: implement [`WsHandler`], wrap it in [`WsEndpoint`].
//!
//! The handler talks back: [`WsHandler::on_frame`] gets the connection's send half ([`WsOut`])
//! while the frame still borrows the receive buffer, and [`WsHandler::on_timer`] runs every
//! [`WsEndpoint::with_timer`] period with the same handle. Neither allocates.
//!
//! ```no_run
//! use hotwire::select::MioSelector;
//! use hotwire::service::IntoIoService;
//! use hotwire::service::{Error, Flow, ws::{WsEndpoint, WsHandler, WsOut}};
//! use hotwire::ws::Frame;
//!
//! #[derive(Default)]
//! struct Totals { messages: u64 }
//!
//! struct Trades;
//! impl WsHandler<Totals> for Trades {
//!     fn on_open(&mut self, ws: &mut WsOut<'_>, _: &mut Totals) -> Result<(), Error> {
//!         ws.send_text(r#"{"op":"subscribe","channel":"trades"}"#)?; // queued until the handshake
//!         Ok(())
//!     }
//!     fn on_frame(&mut self, frame: Frame<'_>, ws: &mut WsOut<'_>, totals: &mut Totals)
//!         -> Result<Flow, Error> {
//!         if frame.text() == Some(r#"{"op":"ping"}"#) {
//!             ws.send_text(r#"{"op":"pong"}"#)?; // the frame is still borrowed: no copy
//!         }
//!         totals.messages += 1;
//!         Ok(Flow::Continue)
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut service = MioSelector::new()?.into_io_service_with_context();
//! service.register(WsEndpoint::new("ws://127.0.0.1:9001/feed", Trades)?);
//! let mut totals = Totals::default();
//! loop {
//!     service.poll(&mut totals)?;
//! }
//! # }
//! ```
//!
//! **Closing.** A handler that returns [`Flow::Close`] starts the closing handshake (code 1000);
//! the connection ends once the server has answered and closed its side (RFC 6455 §7.1.1: the
//! server closes the TCP connection first). A server that has not done so after
//! [`CLOSE_TIMEOUT`] gets a FIN ([`Stream::shutdown_write`], not a reset), and the connection is
//! dropped when it closes or after another [`CLOSE_TIMEOUT`]. It is reported as
//! [`Disconnect::Requested`] (no reconnect unless [`Policy::reconnect_after_close`]). A close started by the server is reported as
//! [`Disconnect::Closed`] with its code and reason, not as an error.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{
    default_connector, ConnectAddr, Connector, Dial, Disconnect, Endpoint, Error, Event, Flow,
    KernelDial, Policy,
};
use crate::stream::{Stream, TcpOptions, TcpStream};
use crate::ws::{ClientRequest, Frame, Websocket, WsConfig, WsError, WsSender, WsUrl};

/// Frames handled per poll before the other endpoints get their turn ([`Flow::More`]).
pub const FRAMES_PER_POLL: usize = 1024;

/// Payload bytes handled per poll before the other endpoints get their turn ([`Flow::More`]): with
/// large messages the frame budget alone would let one poll run for seconds (1024 frames of
/// 16 MiB).
pub const BYTES_PER_POLL: usize = 1 << 20;

/// How long a close this side started waits for the server's close frame and end of stream
/// (RFC 6455 §7.1.1: the server closes the TCP connection first) before the connection is dropped.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The endpoint's own timer period when the handler has none: it bounds how late a
/// [`CLOSE_TIMEOUT`] is noticed.
const HOUSEKEEPING_TICK: Duration = Duration::from_millis(250);

/// The stream under the WebSocket: the dialer's stream, with TLS for `wss` when a TLS backend is
/// compiled in.
pub type WsTransport<S> = super::Transport<S>;

/// The connection a [`WsEndpoint`] runs: WebSocket over the dialer's stream (kernel TCP by
/// default), with TLS for `wss`.
pub type WsConn<S = TcpStream> = Websocket<WsTransport<S>>;

/// The send half lent to a [`WsHandler`].
pub type WsOut<'a, S = TcpStream> = WsSender<'a, WsTransport<S>>;

/// The application side of a [`WsEndpoint`] (`S`: the dialer's stream, kernel TCP by default).
///
/// Every callback returns `Result<_, Error>`: `?` works on sends ([`WsError`]), on I/O, and on
/// the other layers' errors; an `Err` fails this connection (reported in
/// [`Event::Disconnected`]) and the policy decides about reconnecting.
pub trait WsHandler<C = (), S: Stream = TcpStream> {
    /// A new connection was created (the handshake is still running): queue subscriptions here.
    fn on_open(&mut self, ws: &mut WsOut<'_, S>, ctx: &mut C) -> Result<(), Error> {
        let _ = (ws, ctx);
        Ok(())
    }

    /// One received frame (data and control; pings are already answered), with the send half to
    /// reply through. The frame borrows the connection's buffer: copy what must outlive this call.
    fn on_frame(
        &mut self,
        frame: Frame<'_>,
        ws: &mut WsOut<'_, S>,
        ctx: &mut C,
    ) -> Result<Flow, Error>;

    /// Called every [`WsEndpoint::with_timer`] period while the connection is open (heartbeats,
    /// application pings). The default does nothing.
    fn on_timer(
        &mut self,
        ws: &mut WsOut<'_, S>,
        now: Instant,
        ctx: &mut C,
    ) -> Result<Flow, Error> {
        let _ = (ws, now, ctx);
        Ok(Flow::Continue)
    }

    /// Connection lifecycle notifications.
    fn on_event(&mut self, event: &Event<'_>, ctx: &mut C) {
        let _ = (event, ctx);
    }
}

/// An [`Endpoint`] for one WebSocket URL, driving a [`WsHandler`], over the streams its [`Dial`]
/// opens (kernel TCP unless [`WsEndpoint::with_dialer`] says otherwise).
///
/// Builders set one thing each and never reset another's setting; where two could apply, the
/// more specific one wins whatever the call order:
/// - the handler's timer period is [`with_timer`](Self::with_timer)'s, else the `timer` of
///   [`with_policy`](Self::with_policy)'s policy;
/// - TLS is used for `wss` URLs only, with [`with_tls`](Self::with_tls)'s connector, else the
///   default one (built-in roots, verification on).
#[derive(Debug)]
pub struct WsEndpoint<H, D = KernelDial> {
    url: WsUrl,
    tls: Option<Connector>,
    dial: D,
    ws: WsConfig,
    policy: Policy,
    timer: Option<Duration>,
    handler: H,
    /// Our close is under way: the deadline of its current stage, and whether our FIN was sent.
    closing: Option<(Instant, bool)>,
    /// When the handler's timer is due next.
    next_timer: Option<Instant>,
}

impl<H> WsEndpoint<H> {
    /// An endpoint for `url` (`ws://` or `wss://`). `wss` uses TLS with the default configuration
    /// (rustls or OpenSSL, built-in roots, verification on) unless [`with_tls`](Self::with_tls)
    /// gives a connector; without a TLS feature `wss` is refused.
    pub fn new(url: &str, handler: H) -> Result<WsEndpoint<H>, Error> {
        let url = WsUrl::parse(url).map_err(WsError::from)?;
        let tls = if url.is_secure() {
            Some(default_connector("wss")?)
        } else {
            None
        };
        Ok(WsEndpoint {
            url,
            tls,
            dial: KernelDial::default(),
            ws: WsConfig::default(),
            policy: Policy::default(),
            timer: None,
            handler,
            closing: None,
            next_timer: None,
        })
    }

    /// Kernel socket options (for the default dialer).
    pub fn with_tcp(mut self, options: TcpOptions) -> Self {
        self.dial.options = options;
        self
    }
}

impl<H, D> WsEndpoint<H, D> {
    /// Opens connections through `dial` (another network path, such as an AF_XDP stack). Any
    /// [`with_tcp`](WsEndpoint::with_tcp) options belong to the replaced kernel dialer: set them on
    /// `dial` instead.
    pub fn with_dialer<D2: Dial>(self, dial: D2) -> WsEndpoint<H, D2> {
        WsEndpoint {
            url: self.url,
            tls: self.tls,
            dial,
            ws: self.ws,
            policy: self.policy,
            timer: self.timer,
            handler: self.handler,
            closing: None,
            next_timer: None,
        }
    }

    /// Uses `connector` for `wss` (a venue's CA, a client certificate, the other backend); a
    /// `ws://` URL stays plain.
    #[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
    pub fn with_tls(mut self, connector: crate::stream::tls::TlsConnector) -> Self {
        if self.url.is_secure() {
            self.tls = Some(connector);
        }
        self
    }

    /// WebSocket settings.
    pub fn with_ws_config(mut self, config: WsConfig) -> Self {
        self.ws = config;
        self
    }

    /// Lifecycle policy (timeouts, backoff, lifetime, reconnects). Its `timer`, if any, is the
    /// handler's timer period unless [`with_timer`](Self::with_timer) sets one.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Calls [`WsHandler::on_timer`] every `period` while the connection is open (whatever the
    /// policy's `timer` says).
    pub fn with_timer(mut self, period: Duration) -> Self {
        self.timer = Some(period);
        self
    }

    /// The handler's timer period in force (see the precedence on [`WsEndpoint`]).
    pub fn timer(&self) -> Option<Duration> {
        self.timer.or(self.policy.timer)
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Starts our close (once) and keeps the connection until the server answers.
    fn start_close<S: Stream>(&mut self, ws: &mut Websocket<S>) -> Result<Flow, Disconnect> {
        if self.closing.is_none() {
            self.closing = Some((Instant::now() + CLOSE_TIMEOUT, false));
            match ws.close(1000, "") {
                Ok(()) => {}
                // Already failed or closed: nothing left to wait for.
                Err(_) => return Ok(Flow::Close),
            }
        }
        Ok(Flow::Continue)
    }
}

/// How a receive error ends the connection: a completed closing handshake is a close (ours:
/// requested; the server's: an orderly [`Disconnect::Closed`]), anything else a failure.
fn ended<S: Stream>(ws: &Websocket<S>, e: WsError, ours: bool) -> Result<Flow, Disconnect> {
    match e {
        WsError::Closed | WsError::Eof if ours => Ok(Flow::Close),
        WsError::Closed => {
            let (code, reason) = ws.peer_close().unwrap_or((None, ""));
            Err(Disconnect::Closed {
                code,
                reason: reason.to_owned(),
            })
        }
        other => Err(other.into()),
    }
}

impl<H: WsHandler<C, D::Stream>, C, D: Dial> Endpoint<C> for WsEndpoint<H, D> {
    type Target = WsConn<D::Stream>;

    fn address(&self) -> ConnectAddr {
        ConnectAddr::new(self.url.host(), self.url.port())
    }

    fn create_target(&mut self, addr: SocketAddr, ctx: &mut C) -> Result<Self::Target, Error> {
        let tcp = self.dial.dial(addr).map_err(Error::Connect)?;
        let stream = wrap(tcp, &self.url, self.tls.as_ref())?;
        let mut ws = Websocket::client(
            stream,
            ClientRequest::new(self.url.clone()),
            self.ws.clone(),
        )?;
        self.closing = None;
        self.next_timer = None;
        self.handler.on_open(&mut ws.sender(), ctx)?;
        Ok(ws)
    }

    fn poll_connect(&mut self, ws: &mut Self::Target) -> Result<bool, Error> {
        ws.poll_handshake().map_err(|e| match e {
            WsError::Io(io) => {
                match Error::from_io(std::sync::Arc::try_unwrap(io).unwrap_or_else(|shared| {
                    std::io::Error::new(shared.kind(), shared.to_string())
                })) {
                    Error::Io(e) => Error::Connect(e),
                    other => other,
                }
            }
            other => Error::Ws(other),
        })
    }

    fn poll(&mut self, ws: &mut Self::Target, ctx: &mut C) -> Result<Flow, Disconnect> {
        let mut bytes = 0;
        let ours = self.closing.is_some();
        for _ in 0..FRAMES_PER_POLL {
            match ws.receive_split() {
                Ok(Some((frame, mut out))) => {
                    bytes += frame.payload().len();
                    if self.handler.on_frame(frame, &mut out, ctx)? == Flow::Close {
                        return self.start_close(ws);
                    }
                    if bytes >= BYTES_PER_POLL {
                        return Ok(Flow::More);
                    }
                }
                Ok(None) => return Ok(Flow::Continue),
                Err(e) => return ended(ws, e, ours),
            }
        }
        Ok(Flow::More)
    }

    fn on_timer(
        &mut self,
        ws: &mut Self::Target,
        now: Instant,
        ctx: &mut C,
    ) -> Result<Flow, Disconnect> {
        match self.closing {
            Some((deadline, _)) if now < deadline => return Ok(Flow::Continue),
            // The server has not closed the TCP connection in time: our FIN (RFC 6455 §7.1.1),
            // then a last wait for its end of stream, so dropping the socket does not reset it.
            Some((_, false)) => {
                self.closing = Some((now + CLOSE_TIMEOUT, true));
                return Ok(match ws.get_mut().shutdown_write() {
                    Ok(()) => Flow::Continue,
                    // Still queued below (a TLS alert): it goes out while we wait.
                    Err(e) if crate::stream::would_block(&e) => Flow::Continue,
                    Err(_) => Flow::Close,
                });
            }
            Some((_, true)) => return Ok(Flow::Close),
            None => {}
        }
        let Some(period) = self.timer() else {
            return Ok(Flow::Continue);
        };
        if self.next_timer.is_some_and(|due| now < due) {
            return Ok(Flow::Continue);
        }
        // Half a tick early, so a tick that comes a little late never skips a period.
        let tick = super::tick_for(period, HOUSEKEEPING_TICK);
        self.next_timer = Some(now + period.saturating_sub(tick / 2));
        match self.handler.on_timer(&mut ws.sender(), now, ctx)? {
            Flow::Close => self.start_close(ws),
            flow => Ok(flow),
        }
    }

    fn on_event(&mut self, event: &Event<'_>, ctx: &mut C) {
        self.handler.on_event(event, ctx);
    }

    fn policy(&self) -> Policy {
        let period = self
            .timer()
            .map_or(HOUSEKEEPING_TICK, |t| super::tick_for(t, HOUSEKEEPING_TICK));
        Policy {
            timer: Some(period),
            ..self.policy.clone()
        }
    }
}

/// The transport for `url`: TLS over `tcp` for `wss`, `tcp` itself for `ws`.
fn wrap<S: Stream>(tcp: S, url: &WsUrl, tls: Option<&Connector>) -> Result<WsTransport<S>, Error> {
    let tls = if url.is_secure() { tls } else { None };
    Ok(super::wrap(tcp, tls, url.host())?)
}
