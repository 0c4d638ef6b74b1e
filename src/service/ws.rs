//! A WebSocket endpoint in a few lines: implement [`WsHandler`], wrap it in [`WsEndpoint`].
//!
//! ```no_run
//! use std::io;
//! use hotwire::select::{MioSelector, Selector};
//! use hotwire::service::IntoIoService;
//! use hotwire::service::{Flow, ws::{WsConn, WsEndpoint, WsHandler}};
//! use hotwire::ws::{Frame, WsError};
//!
//! #[derive(Default)]
//! struct Totals { messages: u64 }
//!
//! struct Trades;
//! impl WsHandler<Totals> for Trades {
//!     fn on_open(&mut self, ws: &mut WsConn, _: &mut Totals) -> Result<(), WsError> {
//!         ws.send_text(r#"{"op":"subscribe","channel":"trades"}"#) // queued until the handshake
//!     }
//!     fn on_frame(&mut self, _frame: Frame<'_>, totals: &mut Totals) -> io::Result<Flow> {
//!         totals.messages += 1;
//!         Ok(Flow::Continue)
//!     }
//! }
//!
//! # fn main() -> io::Result<()> {
//! let mut service = MioSelector::new()?.into_io_service_with_context();
//! service.register(WsEndpoint::new("wss://127.0.0.1:9443/feed", Trades)?);
//! let mut totals = Totals::default();
//! loop {
//!     service.poll(&mut totals)?;
//! }
//! # }
//! ```

use std::io;
use std::net::SocketAddr;

use super::{ConnectAddr, Dial, Endpoint, Event, Flow, KernelDial, Policy};
use crate::stream::tls::{TlsConfig, TlsConnector};
use crate::stream::{MaybeTls, Stream, TcpOptions, TcpStream};
use crate::ws::{into_io, ClientRequest, Frame, Websocket, WsConfig, WsError, WsUrl};

/// Frames handled per poll before the other endpoints get their turn ([`Flow::More`]).
pub const FRAMES_PER_POLL: usize = 1024;

/// Payload bytes handled per poll before the other endpoints get their turn ([`Flow::More`]): with
/// large messages the frame budget alone would let one poll run for seconds (1024 frames of
/// 16 MiB).
pub const BYTES_PER_POLL: usize = 1 << 20;

/// The connection a [`WsEndpoint`] runs: WebSocket over the dialer's stream (kernel TCP by
/// default), with TLS for `wss`.
pub type WsConn<S = TcpStream> = Websocket<MaybeTls<S>>;

/// The application side of a [`WsEndpoint`].
pub trait WsHandler<C = (), S: Stream = TcpStream> {
    /// A new connection was created (the handshake is still running): queue subscriptions here.
    fn on_open(&mut self, ws: &mut WsConn<S>, ctx: &mut C) -> Result<(), WsError> {
        let _ = (ws, ctx);
        Ok(())
    }

    /// One received frame (data and control; pings are already answered). The frame borrows the
    /// connection's buffer: copy what must outlive this call.
    fn on_frame(&mut self, frame: Frame<'_>, ctx: &mut C) -> io::Result<Flow>;

    /// Connection lifecycle notifications.
    fn on_event(&mut self, event: &Event<'_>, ctx: &mut C) {
        let _ = (event, ctx);
    }
}

/// An [`Endpoint`] for one WebSocket URL, driving a [`WsHandler`], over the streams its [`Dial`]
/// opens (kernel TCP unless [`WsEndpoint::with_dialer`] says otherwise).
#[derive(Debug)]
pub struct WsEndpoint<H, D = KernelDial> {
    url: WsUrl,
    tls: Option<TlsConnector>,
    dial: D,
    ws: WsConfig,
    policy: Policy,
    handler: H,
}

impl<H> WsEndpoint<H> {
    /// An endpoint for `url`; `wss` URLs use TLS with the default configuration (rustls or OpenSSL,
    /// built-in roots, verification on).
    pub fn new(url: &str, handler: H) -> io::Result<WsEndpoint<H>> {
        let url = WsUrl::parse(url)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {e}")))?;
        let tls = if url.is_secure() {
            Some(TlsConfig::default().build()?)
        } else {
            None
        };
        Ok(WsEndpoint {
            url,
            tls,
            dial: KernelDial::default(),
            ws: WsConfig::default(),
            policy: Policy::default(),
            handler,
        })
    }

    /// Kernel socket options.
    pub fn with_tcp(mut self, options: TcpOptions) -> Self {
        self.dial.options = options;
        self
    }
}

impl<H, D> WsEndpoint<H, D> {
    /// Opens connections through `dial` (another network path, such as an AF_XDP stack).
    pub fn with_dialer<D2: Dial>(self, dial: D2) -> WsEndpoint<H, D2> {
        WsEndpoint {
            url: self.url,
            tls: self.tls,
            dial,
            ws: self.ws,
            policy: self.policy,
            handler: self.handler,
        }
    }

    /// Uses `connector` for `wss` (a venue's CA, a client certificate, the other backend).
    pub fn with_tls(mut self, connector: TlsConnector) -> Self {
        self.tls = Some(connector);
        self
    }

    /// WebSocket settings.
    pub fn with_ws_config(mut self, config: WsConfig) -> Self {
        self.ws = config;
        self
    }

    /// Lifecycle policy (timeouts, backoff, lifetime, timer).
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

impl<H: WsHandler<C, D::Stream>, C, D: Dial> Endpoint<C> for WsEndpoint<H, D> {
    type Target = WsConn<D::Stream>;

    fn address(&self) -> ConnectAddr {
        ConnectAddr::new(self.url.host(), self.url.port())
    }

    fn create_target(&mut self, addr: SocketAddr, ctx: &mut C) -> io::Result<Self::Target> {
        let tcp = self.dial.dial(addr)?;
        // A plain stream when the URL is ws://, whatever connector was configured.
        let tls = if self.url.is_secure() {
            self.tls.as_ref()
        } else {
            None
        };
        let stream = MaybeTls::new(tcp, tls, self.url.host())?;
        let mut ws = Websocket::client(
            stream,
            ClientRequest::new(self.url.clone()),
            self.ws.clone(),
        )
        .map_err(into_io)?;
        self.handler.on_open(&mut ws, ctx).map_err(into_io)?;
        Ok(ws)
    }

    fn poll(&mut self, ws: &mut Self::Target, ctx: &mut C) -> io::Result<Flow> {
        let mut bytes = 0;
        for _ in 0..FRAMES_PER_POLL {
            match ws.receive() {
                Ok(Some(frame)) => {
                    bytes += frame.payload().len();
                    if self.handler.on_frame(frame, ctx)? == Flow::Close {
                        return Ok(Flow::Close);
                    }
                    if bytes >= BYTES_PER_POLL {
                        return Ok(Flow::More);
                    }
                }
                Ok(None) => return Ok(Flow::Continue),
                Err(e) => return Err(into_io(e)),
            }
        }
        Ok(Flow::More)
    }

    fn on_event(&mut self, event: &Event<'_>, ctx: &mut C) {
        self.handler.on_event(event, ctx);
    }

    fn policy(&self) -> Policy {
        self.policy.clone()
    }
}
