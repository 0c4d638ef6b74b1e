//! The stream an endpoint speaks its protocol over: the dialer's stream, with TLS when the URL
//! asks for it (`wss`, `https`, `fixs`) and a TLS backend is compiled in.
//!
//! Without a TLS feature every endpoint still exists for plain URLs; a secure URL is refused when
//! the endpoint is made, with [`Error::Io`] of kind `Unsupported`.

#[cfg(any(feature = "ws", feature = "http", feature = "fix"))]
use {super::Error, crate::stream::Stream, std::io};

/// The stream under an endpoint's protocol: the dialer's stream `S`, or a TLS session over it.
#[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
pub type Transport<S> = crate::stream::MaybeTls<S>;
/// The stream under an endpoint's protocol: the dialer's stream `S` (no TLS backend compiled in).
#[cfg(not(any(feature = "tls-rustls", feature = "tls-openssl")))]
pub type Transport<S> = S;

/// What an endpoint keeps to open TLS sessions.
#[cfg(all(
    any(feature = "ws", feature = "http", feature = "fix"),
    any(feature = "tls-rustls", feature = "tls-openssl")
))]
pub(crate) type Connector = crate::stream::tls::TlsConnector;
/// No TLS backend: there is nothing to configure, and no value of this type exists.
#[cfg(all(
    any(feature = "ws", feature = "http", feature = "fix"),
    not(any(feature = "tls-rustls", feature = "tls-openssl"))
))]
pub(crate) type Connector = std::convert::Infallible;

/// The connector for a secure URL when the user gave none: the default configuration (built-in
/// roots, verification on).
#[cfg(all(
    any(feature = "ws", feature = "http", feature = "fix"),
    any(feature = "tls-rustls", feature = "tls-openssl")
))]
pub(crate) fn default_connector(_scheme: &str) -> Result<Connector, Error> {
    Ok(crate::stream::tls::TlsConfig::default().build()?)
}

/// No TLS backend: a secure URL (`scheme`) cannot be served.
#[cfg(all(
    any(feature = "ws", feature = "http", feature = "fix"),
    not(any(feature = "tls-rustls", feature = "tls-openssl"))
))]
pub(crate) fn default_connector(scheme: &str) -> Result<Connector, Error> {
    Err(Error::Io(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{scheme}:// needs the tls-rustls or tls-openssl feature"),
    )))
}

/// `stream` wrapped in a TLS session for `server_name` when `tls` is given, else plain.
#[cfg(all(
    any(feature = "ws", feature = "http", feature = "fix"),
    any(feature = "tls-rustls", feature = "tls-openssl")
))]
pub(crate) fn wrap<S: Stream>(
    stream: S,
    tls: Option<&Connector>,
    server_name: &str,
) -> io::Result<Transport<S>> {
    crate::stream::MaybeTls::new(stream, tls, server_name)
}

/// `stream` itself (no TLS backend, so no connector exists).
#[cfg(all(
    any(feature = "ws", feature = "http", feature = "fix"),
    not(any(feature = "tls-rustls", feature = "tls-openssl"))
))]
pub(crate) fn wrap<S: Stream>(
    stream: S,
    tls: Option<&Connector>,
    _server_name: &str,
) -> io::Result<Transport<S>> {
    match tls {
        Some(never) => match *never {},
        None => Ok(stream),
    }
}
