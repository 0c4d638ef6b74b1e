//! WebSocket client (RFC 6455).
//!
//! | file | RFC 6455 |
//! |------|----------|
//! | `frame` ([`FrameHeader`], [`OpCode`], [`CloseFrame`]) | §5.2 base framing, §5.5.1 close bodies, §7.4 status codes |
//! | `mask` ([`MaskMode`]) | §5.3 client-to-server masking, §10.3 key unpredictability |
//! | `codec` ([`Decoder`], [`Frame`]) | §5.1, §5.4 fragmentation, §5.5 control frames, §5.6 / §8.1 UTF-8 |
//! | `handshake` ([`ClientRequest`], [`parse_response`]) | §4.1 client requirements, §4.2.2 the server's answer, §1.3 accept key |
//! | `url` ([`WsUrl`]) | §3 `ws` / `wss` URIs |
//! | `client` ([`Websocket`]) | §7 closing the connection (receive side), §5.4 reassembly |
//! | `send` ([`WsSender`]) | §5.3 masking on send, §5.5.2–§5.5.3 ping / pong, §7.1.2 starting the close |
//! | `deflate` ([`DeflateConfig`], [`DeflateParams`]) | RFC 7692 permessage-deflate: §7.1 negotiation, §7.2 compression |
//!
//! The codec is sans-IO: [`Decoder`] turns bytes into [`Frame`]s that borrow the caller's buffer.
//! [`Websocket<S>`] puts it on any [`Stream`](crate::stream::Stream) — plain TCP, TLS, a recording —
//! with one receive and one send buffer allocated up front: no allocation per message in steady
//! state, fragmented messages included.
//!
//! ```no_run
//! use hotwire::stream::{TcpStream, TcpOptions};
//! use hotwire::ws::{IntoWebsocket, Message, WsUrl};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let url = WsUrl::parse("ws://127.0.0.1:9001/feed")?;
//! let tcp = TcpStream::connect("127.0.0.1:9001".parse()?, &TcpOptions::default())?;
//! let mut ws = tcp.into_websocket(url)?; // returns at once; the handshake runs as we poll
//! ws.send_text("subscribe")?;            // queued until the handshake completes
//! loop {
//!     for frame in ws.read_batch()? {     // one read, then every complete frame in it
//!         println!("{:?} {} bytes", frame.opcode(), frame.payload().len());
//!     }
//!     ws.wait(std::time::Duration::from_millis(10));
//! }
//! # }
//! ```
//!
//! Errors are one enum, [`WsError`]; protocol, UTF-8 and size violations close the connection with
//! 1002, 1007 and 1009. After a terminal error every call returns it again.

// One public path per type: the submodules are crate-private, their public items re-exported here.
mod batch;
pub(crate) mod client;
pub(crate) mod codec;
pub(crate) mod deflate;
pub(crate) mod error;
pub(crate) mod frame;
pub(crate) mod handshake;
pub(crate) mod mask;
mod selectable;
mod send;
pub(crate) mod url;

pub use batch::Batch;
pub use client::{IntoWebsocket, Message, Websocket, WsConfig, WsState};
pub use codec::{encode_frame, Decoder, Frame, FrameInfo};
pub use deflate::{DeflateConfig, DeflateError, DeflateParams};
pub use error::{CapacityError, HandshakeError, ProtocolError, UrlError, UsageError, WsError};
pub use frame::{is_valid_close_code, CloseFrame, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD};
pub use handshake::{
    accept_value, parse_response, parse_response_deflate, AcceptValue, Accepted, ClientRequest,
};
pub use mask::MaskMode;
pub use send::WsSender;
pub use url::{WsUrl, DEFAULT_MAX_URL_LEN};
