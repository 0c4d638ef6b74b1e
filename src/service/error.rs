//! Why a connection ended, typed at the endpoint boundary: [`Disconnect`] (failed, closed in an
//! orderly way, closed on purpose, lifetime) and, for failures, [`Error`] with one variant per
//! layer. Nothing is erased to `io::Error` on the way up, so a handler or an event sink matches on
//! the layer that failed instead of downcasting.

use std::fmt;
use std::io;
use std::time::Duration;

/// Which deadline passed (with the limit, where the endpoint knows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timeout {
    /// TCP, TLS and protocol handshakes not done within [`Policy::connect_timeout`](super::Policy).
    Connect,
    /// A ping went unanswered for this long.
    Pong(Duration),
    /// No data for this long.
    Stale(Duration),
    /// A response took longer than this.
    Request(Duration),
    /// The FIX counterparty went silent: its heartbeat, then our TestRequest, went unanswered.
    TestRequest,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timeout::Connect => f.write_str("connect timed out"),
            Timeout::Pong(d) => write!(f, "no pong within {d:?} of a ping"),
            Timeout::Stale(d) => write!(f, "no data message for {d:?}"),
            Timeout::Request(d) => write!(f, "no complete response within the timeout ({d:?})"),
            Timeout::TestRequest => {
                f.write_str("no heartbeat from the counterparty (TestRequest unanswered)")
            }
        }
    }
}

/// A failed connection, by layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host name did not resolve.
    #[error("DNS: {0}")]
    Dns(io::Error),
    /// Opening the connection failed (refused, unreachable, no route), before any handshake.
    #[error("connect: {0}")]
    Connect(io::Error),
    /// The transport failed (reset, broken pipe, end of stream without a protocol goodbye).
    #[error("I/O: {0}")]
    Io(io::Error),
    /// The TLS session failed: handshake refused, certificate rejected, bad record.
    #[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
    #[error("TLS: {0}")]
    Tls(crate::stream::tls::TlsError),
    /// The WebSocket layer failed (handshake, protocol violation, size limit).
    #[cfg(feature = "ws")]
    #[error("WebSocket: {0}")]
    Ws(crate::ws::WsError),
    /// The HTTP layer failed (malformed response, limit, the server closed mid-response).
    #[cfg(feature = "http")]
    #[error("HTTP: {0}")]
    Http(crate::http::HttpError),
    /// The FIX session failed (codec, sequence, logon refused, heartbeat lost).
    #[cfg(feature = "fix")]
    #[error("FIX: {0}")]
    Fix(crate::fix::session::SessionError),
    /// A deadline passed.
    #[error("{0}")]
    Timeout(Timeout),
    /// The application's handler failed with its own error.
    #[error("handler: {0}")]
    Handler(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// A transport error, with the layers' errors that the stream and session adapters carry
    /// inside `io::Error` lifted out: TLS failures into [`Error::Tls`], FIX codec and session
    /// failures (a garbled frame, a sequence number too low, a refused Logon) into [`Error::Fix`]
    /// (a lost heartbeat into [`Timeout::TestRequest`]). They are typed once, here, so nobody
    /// downcasts.
    pub fn from_io(e: io::Error) -> Error {
        let typed = e.get_ref().is_some_and(|inner| {
            let _ = inner;
            #[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
            if inner.is::<crate::stream::tls::TlsError>() {
                return true;
            }
            #[cfg(feature = "fix")]
            if inner.is::<crate::fix::session::SessionError>()
                || inner.is::<crate::fix::codec::FixError>()
            {
                return true;
            }
            false
        });
        if !typed {
            return Error::Io(e);
        }
        let kind = e.kind();
        let Some(inner) = e.into_inner() else {
            return Error::Io(io::Error::from(kind));
        };
        #[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
        let inner = match inner.downcast::<crate::stream::tls::TlsError>() {
            Ok(tls) => return Error::Tls(*tls),
            Err(other) => other,
        };
        #[cfg(feature = "fix")]
        let inner = match inner.downcast::<crate::fix::session::SessionError>() {
            Ok(session) => return Error::from(*session),
            Err(other) => other,
        };
        #[cfg(feature = "fix")]
        let inner = match inner.downcast::<crate::fix::codec::FixError>() {
            Ok(codec) => return Error::from(*codec),
            Err(other) => other,
        };
        Error::Io(io::Error::new(kind, inner))
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::from_io(e)
    }
}

impl From<Timeout> for Error {
    fn from(t: Timeout) -> Self {
        Error::Timeout(t)
    }
}

#[cfg(feature = "ws")]
impl From<crate::ws::WsError> for Error {
    fn from(e: crate::ws::WsError) -> Self {
        Error::Ws(e)
    }
}

#[cfg(feature = "http")]
impl From<crate::http::HttpError> for Error {
    fn from(e: crate::http::HttpError) -> Self {
        Error::Http(e)
    }
}

#[cfg(feature = "fix")]
impl From<crate::fix::session::SessionError> for Error {
    fn from(e: crate::fix::session::SessionError) -> Self {
        use crate::fix::session::SessionError;
        match e {
            SessionError::HeartbeatTimeout => Error::Timeout(Timeout::TestRequest),
            other => Error::Fix(other),
        }
    }
}

#[cfg(feature = "fix")]
impl From<crate::fix::codec::FixError> for Error {
    fn from(e: crate::fix::codec::FixError) -> Self {
        Error::Fix(e.into())
    }
}

/// Why a connection ended: the `reason` of [`Event::Disconnected`](super::Event).
///
/// It is also the error type of [`Endpoint::poll`](super::Endpoint::poll): an endpoint ends its
/// connection with the reason, and `?` turns any layer's error into [`Disconnect::Error`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Disconnect {
    /// The connection failed.
    Error(Error),
    /// The peer ended the connection in an orderly way: the WebSocket closing handshake (RFC 6455
    /// §7), a FIX Logout. The policy's `reconnect` decides what follows, as for failures.
    Closed {
        /// The peer's close status code (WebSocket; `None` when the frame had none, and for FIX).
        code: Option<u16>,
        /// The peer's close reason (WebSocket) or Logout Text(58) (FIX); may be empty.
        reason: String,
    },
    /// Closed on purpose by this side: the endpoint returned [`Flow::Close`](super::Flow::Close),
    /// or [`IoService::disconnect`](super::IoService::disconnect) was called. No reconnect unless
    /// [`Policy::reconnect_after_close`](super::Policy::reconnect_after_close) asks for one.
    Requested,
    /// [`Policy::max_lifetime`](super::Policy::max_lifetime) elapsed (reconnects at once).
    Lifetime,
    /// The session period of the endpoint's schedule ended (a FIX session schedule): the
    /// endpoint logged out, and connects again when the next period begins.
    PeriodEnd,
}

impl Disconnect {
    /// The failure, when the connection failed.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Disconnect::Error(e) => Some(e),
            _ => None,
        }
    }

    /// `true` when nothing failed: an orderly close by either side, or the lifetime.
    pub fn is_clean(&self) -> bool {
        !matches!(self, Disconnect::Error(_))
    }
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disconnect::Error(e) => write!(f, "{e}"),
            Disconnect::Closed { code, reason } => {
                f.write_str("closed by the peer")?;
                if let Some(code) = code {
                    write!(f, " ({code})")?;
                }
                if !reason.is_empty() {
                    write!(f, ": {reason}")?;
                }
                Ok(())
            }
            Disconnect::Requested => f.write_str("closed by the endpoint"),
            Disconnect::Lifetime => f.write_str("lifetime reached (auto-disconnect)"),
            Disconnect::PeriodEnd => f.write_str("end of the session period"),
        }
    }
}

/// `?` from any layer's error into [`Disconnect::Error`].
macro_rules! disconnect_from {
    ($($(#[$cfg:meta])* $t:ty),* $(,)?) => {$(
        $(#[$cfg])*
        impl From<$t> for Disconnect {
            fn from(e: $t) -> Self {
                Disconnect::Error(e.into())
            }
        }
    )*};
}

disconnect_from!(
    Error,
    io::Error,
    Timeout,
    #[cfg(feature = "ws")]
    crate::ws::WsError,
    #[cfg(feature = "http")]
    crate::http::HttpError,
    #[cfg(feature = "fix")]
    crate::fix::session::SessionError,
    #[cfg(feature = "fix")]
    crate::fix::codec::FixError,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layer_keeps_its_type() {
        let refused = Disconnect::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(matches!(refused, Disconnect::Error(Error::Io(_))));
        // Another error inside an io::Error stays there, with its kind.
        let other = Error::from_io(io::Error::new(io::ErrorKind::InvalidData, "odd"));
        assert!(matches!(&other, Error::Io(e) if e.kind() == io::ErrorKind::InvalidData));
        assert!(!refused.is_clean());
        #[cfg(feature = "ws")]
        assert!(matches!(
            Disconnect::from(crate::ws::WsError::InvalidUtf8),
            Disconnect::Error(Error::Ws(crate::ws::WsError::InvalidUtf8))
        ));
        #[cfg(feature = "http")]
        assert!(matches!(
            Disconnect::from(crate::http::HttpError::ContentLength),
            Disconnect::Error(Error::Http(crate::http::HttpError::ContentLength))
        ));
        #[cfg(feature = "fix")]
        {
            use crate::fix::session::SessionError;
            let lost = Disconnect::from(SessionError::HeartbeatTimeout);
            assert!(matches!(
                lost,
                Disconnect::Error(Error::Timeout(Timeout::TestRequest))
            ));
            assert!(lost
                .to_string()
                .contains("no heartbeat from the counterparty"));
            assert!(matches!(
                Disconnect::from(SessionError::LogonRejected),
                Disconnect::Error(Error::Fix(SessionError::LogonRejected))
            ));
            // Carried inside io::Error by the session adapter: lifted out, never left to downcast.
            let refused = io::Error::new(
                io::ErrorKind::ConnectionRefused,
                SessionError::LogonRejected,
            );
            assert!(matches!(
                Error::from_io(refused),
                Error::Fix(SessionError::LogonRejected)
            ));
            assert!(matches!(
                Error::from_io(io::Error::from(SessionError::SeqTooLow {
                    expected: 2,
                    received: 1
                })),
                Error::Fix(SessionError::SeqTooLow { .. })
            ));
            let garbled = io::Error::from(crate::fix::codec::FixError::BadBeginString);
            assert!(matches!(
                Error::from_io(garbled),
                Error::Fix(SessionError::Codec(
                    crate::fix::codec::FixError::BadBeginString
                ))
            ));
            assert!(matches!(
                Error::from_io(io::Error::from(SessionError::HeartbeatTimeout)),
                Error::Timeout(Timeout::TestRequest)
            ));
        }
        #[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
        {
            let e = io::Error::new(
                io::ErrorKind::InvalidData,
                crate::stream::tls::TlsError::Certificate("expired".into()),
            );
            assert!(matches!(
                Error::from_io(e),
                Error::Tls(crate::stream::tls::TlsError::Certificate(_))
            ));
        }
        let closed = Disconnect::Closed {
            code: Some(1000),
            reason: "bye".into(),
        };
        assert!(closed.is_clean() && closed.error().is_none());
        assert_eq!(closed.to_string(), "closed by the peer (1000): bye");
        assert_eq!(
            Disconnect::from(Timeout::Pong(Duration::from_millis(750))).to_string(),
            "no pong within 750ms of a ping"
        );
    }
}
