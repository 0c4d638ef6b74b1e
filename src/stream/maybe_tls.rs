//! Plain or TLS, chosen at run time (by URL scheme) without a trait object.

use std::io::{self, Read, Write};
use std::os::fd::RawFd;

use super::{impl_mio_source, Stream};

/// Either the stream itself or a TLS session over it.
///
/// Built from a URL scheme (`ws`/`wss`, `http`/`https`) or a config flag. Each call is one `match`
/// on a closed enum: no allocation, no virtual call.
#[derive(Debug)]
// A stream lives as long as its connection and is never moved on the hot path; boxing the TLS
// variant would add a pointer chase to every call instead.
#[allow(clippy::large_enum_variant)]
pub enum MaybeTls<S> {
    /// Bytes go to the stream as they are.
    Plain(S),
    /// Bytes go through a TLS client session.
    #[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
    Tls(super::tls::TlsStream<S>),
}

impl<S: Stream> MaybeTls<S> {
    /// `true` for the TLS variant.
    pub fn is_tls(&self) -> bool {
        !matches!(self, MaybeTls::Plain(_))
    }

    /// Wraps `stream` in TLS when `connector` is given, or leaves it plain.
    #[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
    pub fn new(
        stream: S,
        connector: Option<&super::tls::TlsConnector>,
        server_name: &str,
    ) -> io::Result<Self> {
        Ok(match connector {
            Some(c) => MaybeTls::Tls(c.connect(server_name, stream)?),
            None => MaybeTls::Plain(stream),
        })
    }
}

macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            MaybeTls::Plain($s) => $e,
            #[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
            MaybeTls::Tls($s) => $e,
        }
    };
}

impl<S: Stream> Read for MaybeTls<S> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => s.read(buf))
    }
}

impl<S: Stream> Write for MaybeTls<S> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => s.write(buf))
    }
    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        each!(self, s => s.flush())
    }
}

impl<S: Stream> Stream for MaybeTls<S> {
    #[inline]
    fn poll_connect(&mut self) -> io::Result<bool> {
        each!(self, s => s.poll_connect())
    }
    #[inline]
    fn read_pending(&self) -> bool {
        each!(self, s => s.read_pending())
    }
    fn raw_fd(&self) -> Option<RawFd> {
        each!(self, s => s.raw_fd())
    }
}

impl_mio_source!(MaybeTls<S>, S: Stream);
