//! # hotwire
//!
//! A framework and an appliance for low-latency TCP *clients*: market data over WebSocket, REST over
//! HTTP/1.1 and order entry over FIX, on colocated exchange servers.
//!
//! The crate is built in layers. Each layer is generic over the one below it, so a composed client is
//! one concrete type and the hot path has no dynamic dispatch. Dependencies point down only:
//!
//! ```text
//!  appliance   src/bin/hotwire, src/app     TOML config -> pinned IO threads -> IoService per thread
//!  service     src/service                  endpoint lifecycle: DNS, connect, handshakes, backoff, timers
//!  protocols   src/ws, src/http (src/fix)   sans-IO codecs + thin clients over any Stream
//!  selector    src/select                   readiness: mio (epoll), direct busy-poll, the XDP stack's poll
//!  stream      src/stream                   Tcp, Tls (rustls | openssl | kTLS), Buffered, Recorded, Replay
//!  xdp         src/xdp                      AF_XDP sockets, UMEM, smoltcp device + stack, XdpStream,
//!                                           steering program (feature `xdp`)
//!  gateway     src/gateway                  the appliance's sessions shared with strategy processes
//!                                           over iceoryx2 shared memory (feature `gateway`)
//! ```
//!
//! Streams compose by value:
//!
//! ```no_run
//! # #[cfg(feature = "tls-rustls")]
//! # fn main() -> std::io::Result<()> {
//! use hotwire::stream::{record::IntoRecorded, tls::TlsConfig, IntoTls, TcpOptions, TcpStream};
//! let addr = "127.0.0.1:9443".parse().unwrap();
//! let tls = TlsConfig::default().build()?;
//! let stream = TcpStream::connect(addr, &TcpOptions::default())?
//!     .into_tls(&tls, "localhost")?
//!     .into_recorded("session.hwr")?;
//! # let _ = stream; Ok(()) }
//! # #[cfg(not(feature = "tls-rustls"))] fn main() {}
//! ```
//!
//! The non-blocking contract every stream follows is documented once, in [`stream`].

pub mod buf;
pub mod cpu;
pub mod select;
pub mod service;
pub mod stream;
#[cfg(any(feature = "ws", feature = "http"))]
pub mod url;

#[cfg(feature = "fix")]
pub mod fix;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "ws")]
pub mod ws;

#[cfg(feature = "xdp")]
pub mod xdp;

#[cfg(feature = "app")]
pub mod app;
#[cfg(feature = "app")]
pub mod config;
#[cfg(feature = "gateway")]
pub mod gateway;

/// The README's code blocks, compiled as doc tests (its "Use as a library" section among them).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The types a program built on hotwire names most: `use hotwire::prelude::*;`.
///
/// Selectors and the service; for each protocol compiled in, its endpoint, handler trait and send
/// handle; the typed errors. Everything here also lives at its own path.
pub mod prelude {
    pub use crate::select::{DirectSelector, MioSelector, Selector};
    pub use crate::service::{
        Disconnect, Endpoint, EndpointId, Error, Event, Flow, IntoIoService, IoService, Policy,
        Timeout,
    };
    pub use crate::stream::TcpOptions;

    #[cfg(feature = "ws")]
    pub use crate::service::ws::{WsEndpoint, WsHandler, WsOut};
    #[cfg(feature = "ws")]
    pub use crate::ws::{Frame, OpCode, WsError};

    #[cfg(feature = "http")]
    pub use crate::http::{
        HttpEndpoint, HttpError, HttpHandler, HttpOut, Request, RequestSpec, Response,
    };

    #[cfg(feature = "fix")]
    pub use crate::fix::endpoint::{FixEndpoint, FixHandler, FixOutbox};
    #[cfg(feature = "fix")]
    pub use crate::fix::{Now, SessionConfig, Version};

    #[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
    pub use crate::stream::tls::{TlsConfig, TlsConnector};
}
