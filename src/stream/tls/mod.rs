//! TLS client sessions over any [`Stream`], with rustls or the system OpenSSL.
//!
//! A [`TlsConfig`] says how to connect (backend, trust anchors, client certificate, ALPN, versions,
//! verification) and is built once into a [`TlsConnector`], which is cheap to use per connection.
//! [`TlsConnector::connect`] wraps a stream — usually still connecting — in a [`TlsStream`] whose
//! handshake is driven by [`Stream::poll_connect`] and by reads and writes, never blocking.
//!
//! # Verification
//!
//! Certificates are verified by default: chain to a trust anchor, validity dates, and the server name
//! (DNS name or IP address) given to `connect`. [`TlsConfig::insecure`] turns all of that off; it is
//! an explicit opt-out, and every connector built with it logs a warning saying so.
//!
//! # Allocation
//!
//! Neither backend allocates per message in steady state (`tests/service_alloc.rs`,
//! `tests/http_handler_alloc.rs`, `tests/fix_tls_alloc.rs`). rustls 0.23 copies every record into a
//! fresh `Vec`, in its unbuffered API too, so the rustls backend uses rustls for the handshake only
//! (its unbuffered client, in the session's own buffers) and then takes the traffic keys, as kTLS
//! does: application records are sealed and opened in place by the record layer of this module
//! (AES-128/256-GCM and ChaCha20-Poly1305, TLS 1.2 and 1.3, over ring), while rustls keeps the key
//! schedule for TLS 1.3 KeyUpdate and stores session tickets. Its failures are typed
//! ([`TlsError::Record`]).
//!
//! # Early writes
//!
//! Bytes written before the handshake completes are queued in exactly one place per backend — the
//! early-write buffer of [`RustlsStream`], or the pending buffer of [`OpensslStream`] — and sent, in order, as soon as the
//! session is established. A write the queue cannot take returns `WouldBlock`.

use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::path::PathBuf;

use super::{impl_mio_source, Stream};

#[cfg(feature = "tls-openssl")]
mod openssl_backend;
#[cfg(feature = "tls-rustls")]
mod records;
#[cfg(feature = "tls-rustls")]
mod rustls_backend;
#[cfg(feature = "tls-rustls")]
mod rustls_stream;

#[cfg(feature = "tls-openssl")]
pub use openssl_backend::OpensslStream;
#[cfg(feature = "tls-rustls")]
pub use records::TlsRecordError;
#[cfg(feature = "tls-rustls")]
pub use rustls_stream::RustlsStream;

/// Which TLS implementation a connector uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsBackend {
    /// rustls (pure Rust, ring crypto).
    #[cfg_attr(feature = "tls-rustls", default)]
    Rustls,
    /// The system libssl through the `openssl` crate.
    #[cfg_attr(not(feature = "tls-rustls"), default)]
    Openssl,
}

impl std::str::FromStr for TlsBackend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rustls" => Ok(TlsBackend::Rustls),
            "openssl" => Ok(TlsBackend::Openssl),
            other => Err(format!(
                "unknown TLS backend {other:?} (expected rustls or openssl)"
            )),
        }
    }
}

/// The trust anchors used besides [`TlsConfig::ca_file`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RootSource {
    /// Mozilla's root program as shipped by `webpki-roots` (rustls); the OpenSSL default paths
    /// (OpenSSL).
    #[default]
    Builtin,
    /// The operating system's certificate store.
    Native,
    /// None: only [`TlsConfig::ca_file`] is trusted. Right for venues with a private CA.
    None,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// A client certificate and its private key, both PEM files.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// The certificate chain, leaf first.
    pub chain: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// How TLS connections are made. Build it once with [`TlsConfig::build`].
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The implementation.
    pub backend: TlsBackend,
    /// Trust anchors besides `ca_file`.
    pub roots: RootSource,
    /// A PEM file of CA certificates to trust (a venue's private CA, a test CA).
    pub ca_file: Option<PathBuf>,
    /// A client certificate for mutual TLS.
    pub client_cert: Option<ClientCert>,
    /// ALPN protocols to offer, most preferred first (e.g. `http/1.1`).
    pub alpn: Vec<String>,
    /// Send the server name (SNI). IP addresses are never sent, as RFC 6066 requires.
    pub sni: bool,
    /// Lowest version to accept (default TLS 1.2).
    pub min_version: TlsVersion,
    /// Highest version to offer (default TLS 1.3).
    pub max_version: TlsVersion,
    /// **Disables all certificate verification.** Any server can impersonate the venue; only for
    /// tests and lab setups. Logged as a warning whenever a connector is built with it.
    pub insecure: bool,
    /// Adjusts the rustls `ClientConfig` before the connector is built (see [`TlsHook`]).
    #[cfg(feature = "tls-rustls")]
    pub rustls_hook: Option<TlsHook<rustls::ClientConfig>>,
    /// Adjusts the OpenSSL `SslConnectorBuilder` before the connector is built (see [`TlsHook`]).
    #[cfg(feature = "tls-openssl")]
    pub openssl_hook: Option<TlsHook<openssl::ssl::SslConnectorBuilder>>,
}

/// The error a [`TlsHook`] returns; [`TlsConfig::build`] reports it as `InvalidInput`.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

type HookFn<T> = dyn Fn(&mut T) -> Result<(), HookError> + Send + Sync;

/// A caller's adjustment of a backend's own configuration, for what [`TlsConfig`] has no field for
/// (cipher suites, session resumption, key logging, a custom verifier, OpenSSL options).
///
/// It runs in [`TlsConfig::build`] after every field of the `TlsConfig` has been applied, so a
/// setting it makes is the one that holds (an ALPN list it sets replaces [`TlsConfig::alpn`]).
/// Only the hook of the backend in use runs: a configuration may carry one for each, and
/// [`TlsConfig::backend`] picks. Cheap to clone (shared).
pub struct TlsHook<T: ?Sized>(std::sync::Arc<HookFn<T>>);

impl<T: ?Sized> TlsHook<T> {
    /// Wraps `f`.
    pub fn new(f: impl Fn(&mut T) -> Result<(), HookError> + Send + Sync + 'static) -> Self {
        TlsHook(std::sync::Arc::new(f))
    }

    /// Runs the hook on `target`; its error becomes an `InvalidInput` error naming `backend`.
    pub(crate) fn apply(&self, target: &mut T, backend: &str) -> io::Result<()> {
        (self.0)(target).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{backend} configuration hook: {e}"),
            )
        })
    }
}

impl<T: ?Sized> Clone for TlsHook<T> {
    fn clone(&self) -> Self {
        TlsHook(self.0.clone())
    }
}

impl<T: ?Sized> std::fmt::Debug for TlsHook<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsHook(..)")
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            backend: TlsBackend::default(),
            roots: RootSource::default(),
            ca_file: None,
            client_cert: None,
            alpn: Vec::new(),
            sni: true,
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            insecure: false,
            #[cfg(feature = "tls-rustls")]
            rustls_hook: None,
            #[cfg(feature = "tls-openssl")]
            openssl_hook: None,
        }
    }
}

impl TlsConfig {
    /// A configuration that trusts only the CA certificates in `path` (and nothing built in).
    pub fn with_ca_file(path: impl Into<PathBuf>) -> Self {
        TlsConfig {
            ca_file: Some(path.into()),
            roots: RootSource::None,
            ..TlsConfig::default()
        }
    }

    /// Sets [`rustls_hook`](Self::rustls_hook): `f` adjusts the rustls `ClientConfig` after the
    /// fields of this configuration are applied and before the connector is built.
    ///
    /// ```
    /// # use hotwire::stream::tls::TlsConfig;
    /// let tls = TlsConfig::default().with_rustls_config(|c| {
    ///     c.alpn_protocols = vec![b"h2".to_vec()];
    ///     Ok(())
    /// });
    /// # tls.build().unwrap();
    /// ```
    #[cfg(feature = "tls-rustls")]
    pub fn with_rustls_config(
        mut self,
        f: impl Fn(&mut rustls::ClientConfig) -> Result<(), HookError> + Send + Sync + 'static,
    ) -> Self {
        self.rustls_hook = Some(TlsHook::new(f));
        self
    }

    /// Sets [`openssl_hook`](Self::openssl_hook): `f` adjusts the OpenSSL `SslConnectorBuilder`
    /// after the fields of this configuration are applied and before the connector is built.
    ///
    /// ```
    /// # use hotwire::stream::tls::{TlsBackend, TlsConfig};
    /// let tls = TlsConfig { backend: TlsBackend::Openssl, ..TlsConfig::default() }
    ///     .with_openssl_builder(|b| {
    ///         b.set_alpn_protos(b"\x02h2")?;
    ///         Ok(())
    ///     });
    /// # tls.build().unwrap();
    /// ```
    #[cfg(feature = "tls-openssl")]
    pub fn with_openssl_builder(
        mut self,
        f: impl Fn(&mut openssl::ssl::SslConnectorBuilder) -> Result<(), HookError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        self.openssl_hook = Some(TlsHook::new(f));
        self
    }

    /// Loads certificates and keys and builds the connector. Errors name the file and the problem.
    pub fn build(&self) -> io::Result<TlsConnector> {
        if self.min_version > self.max_version {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS min_version is above max_version",
            ));
        }
        if self.insecure {
            log::warn!(
                "TLS certificate verification is DISABLED (insecure = true): any server can \
                 impersonate the peer"
            );
        }
        match self.backend {
            #[cfg(feature = "tls-rustls")]
            TlsBackend::Rustls => Ok(TlsConnector {
                inner: ConnectorInner::Rustls(rustls_backend::build(self)?),
                sni: self.sni,
            }),
            #[cfg(feature = "tls-openssl")]
            TlsBackend::Openssl => Ok(TlsConnector {
                inner: ConnectorInner::Openssl(openssl_backend::build(self)?),
                sni: self.sni,
            }),
            #[allow(unreachable_patterns)]
            other => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("TLS backend {other:?} is not compiled in (enable its cargo feature)"),
            )),
        }
    }
}

/// A built TLS configuration: makes [`TlsStream`]s. Cheap to clone and share between connections.
#[derive(Clone)]
pub struct TlsConnector {
    inner: ConnectorInner,
    /// rustls keeps the SNI choice in its config; OpenSSL takes it per connection.
    #[cfg_attr(not(feature = "tls-openssl"), allow(dead_code))]
    sni: bool,
}

#[derive(Clone)]
enum ConnectorInner {
    #[cfg(feature = "tls-rustls")]
    Rustls(std::sync::Arc<rustls::ClientConfig>),
    #[cfg(feature = "tls-openssl")]
    Openssl(openssl::ssl::SslConnector),
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.inner {
            #[cfg(feature = "tls-rustls")]
            ConnectorInner::Rustls(_) => TlsBackend::Rustls,
            #[cfg(feature = "tls-openssl")]
            ConnectorInner::Openssl(_) => TlsBackend::Openssl,
        };
        f.debug_struct("TlsConnector")
            .field("backend", &backend)
            .finish()
    }
}

impl TlsConnector {
    /// Starts a TLS session to `server_name` (a DNS name or an IP address) over `stream`.
    ///
    /// Returns at once; the handshake runs as the stream is polled, read or written.
    pub fn connect<S: Stream>(&self, server_name: &str, stream: S) -> io::Result<TlsStream<S>> {
        match &self.inner {
            #[cfg(feature = "tls-rustls")]
            ConnectorInner::Rustls(cfg) => Ok(TlsStream::Rustls(RustlsStream::new(
                cfg.clone(),
                server_name,
                stream,
            )?)),
            #[cfg(feature = "tls-openssl")]
            ConnectorInner::Openssl(c) => Ok(TlsStream::Openssl(OpensslStream::new(
                c,
                server_name,
                self.sni,
                stream,
            )?)),
        }
    }

    /// The OpenSSL connector, when this connector uses that backend (for kTLS).
    #[cfg(feature = "tls-openssl")]
    pub fn openssl_connector(&self) -> Option<&openssl::ssl::SslConnector> {
        match &self.inner {
            ConnectorInner::Openssl(c) => Some(c),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The backend this connector uses.
    pub fn backend(&self) -> TlsBackend {
        match self.inner {
            #[cfg(feature = "tls-rustls")]
            ConnectorInner::Rustls(_) => TlsBackend::Rustls,
            #[cfg(feature = "tls-openssl")]
            ConnectorInner::Openssl(_) => TlsBackend::Openssl,
        }
    }
}

/// A TLS client session over `S`, with the backend chosen by the [`TlsConnector`].
///
/// A closed enum: one predictable branch per call, no trait object.
#[derive(Debug)]
#[non_exhaustive]
// rustls' connection state is large; a stream is created once per connection and not moved on the
// hot path, so keeping it inline saves a pointer chase per call.
#[allow(clippy::large_enum_variant)]
pub enum TlsStream<S> {
    /// A rustls session.
    #[cfg(feature = "tls-rustls")]
    Rustls(RustlsStream<S>),
    /// An OpenSSL session.
    #[cfg(feature = "tls-openssl")]
    Openssl(OpensslStream<S>),
}

macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            #[cfg(feature = "tls-rustls")]
            TlsStream::Rustls($s) => $e,
            #[cfg(feature = "tls-openssl")]
            TlsStream::Openssl($s) => $e,
        }
    };
}

impl<S: Stream> TlsStream<S> {
    /// The negotiated ALPN protocol, once the handshake is done.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        each!(self, s => s.alpn_protocol())
    }

    /// The negotiated protocol version, once the handshake is done.
    pub fn version(&self) -> Option<TlsVersion> {
        each!(self, s => s.version())
    }

    /// `true` once the handshake has completed.
    pub fn is_established(&self) -> bool {
        each!(self, s => s.is_established())
    }

    /// The stream under the TLS session.
    pub fn get_ref(&self) -> &S {
        each!(self, s => s.get_ref())
    }

    /// Sends a close_notify alert (best effort; call `flush` to push it out).
    pub fn close_notify(&mut self) -> io::Result<()> {
        each!(self, s => s.close_notify())
    }
}

impl<S: Stream> Read for TlsStream<S> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => s.read(buf))
    }
}

impl<S: Stream> Write for TlsStream<S> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => s.write(buf))
    }
    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        each!(self, s => s.flush())
    }
}

impl<S: Stream> Stream for TlsStream<S> {
    #[inline]
    fn poll_connect(&mut self) -> io::Result<bool> {
        each!(self, s => s.poll_connect())
    }
    #[inline]
    fn read_pending(&self) -> bool {
        each!(self, s => s.read_pending())
    }
    fn raw_fd(&self) -> Option<RawFd> {
        each!(self, s => s.get_ref().raw_fd())
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        each!(self, s => s.shutdown_write())
    }
}

impl_mio_source!(TlsStream<S>, S: Stream);

/// The error carried (as the source of an [`io::Error`] of kind `InvalidData`) when a TLS session
/// fails: handshake refused, certificate rejected, bad record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The peer's certificate was not accepted.
    #[error("certificate verification failed: {0}")]
    Certificate(String),
    /// Any other TLS protocol failure.
    #[error("TLS failure: {0}")]
    Protocol(String),
    /// A record or post-handshake message refused by the rustls backend's record layer, or an
    /// alert from the peer.
    #[cfg(feature = "tls-rustls")]
    #[error("TLS record layer: {0}")]
    Record(#[from] TlsRecordError),
}

impl TlsError {
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// Finds the [`TlsError`] behind an I/O error returned by a TLS stream, if there is one.
pub fn tls_error(e: &io::Error) -> Option<&TlsError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<TlsError>())
}

pub(crate) fn read_file(path: &std::path::Path, what: &str) -> io::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read {what} {}: {e}", path.display()),
        )
    })
}
