//! One of two stream types, chosen at run time, without a trait object.

use std::io::{self, Read, Write};
use std::os::fd::RawFd;

use super::{impl_mio_source, Stream};

/// Either stream `L` or stream `R`: one `match` per call, no allocation, no virtual call.
///
/// Used where configuration decides a layer at run time: plain or TLS ([`MaybeTls`]), recorded or
/// not.
#[derive(Debug)]
// A stream lives as long as its connection and is never moved on the hot path; boxing the larger
// variant would add a pointer chase to every call instead.
#[allow(clippy::large_enum_variant)]
pub enum Either<L, R> {
    /// The first kind.
    Left(L),
    /// The second kind.
    Right(R),
}

/// Plain or TLS, chosen at run time (by URL scheme): `Left` is the stream itself, `Right` a TLS
/// session over it.
#[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
pub type MaybeTls<S> = Either<S, super::tls::TlsStream<S>>;

#[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
impl<S: Stream> MaybeTls<S> {
    /// Wraps `stream` in TLS when `connector` is given, or leaves it plain.
    pub fn new(
        stream: S,
        connector: Option<&super::tls::TlsConnector>,
        server_name: &str,
    ) -> io::Result<Self> {
        Ok(match connector {
            Some(c) => Either::Right(c.connect(server_name, stream)?),
            None => Either::Left(stream),
        })
    }

    /// `true` for a TLS session.
    pub fn is_tls(&self) -> bool {
        matches!(self, Either::Right(_))
    }
}

macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Either::Left($s) => $e,
            Either::Right($s) => $e,
        }
    };
}

impl<L: Stream, R: Stream> Read for Either<L, R> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => s.read(buf))
    }
}

impl<L: Stream, R: Stream> Write for Either<L, R> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => s.write(buf))
    }
    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        each!(self, s => s.flush())
    }
}

impl<L: Stream, R: Stream> Stream for Either<L, R> {
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
    fn shutdown_write(&mut self) -> io::Result<()> {
        each!(self, s => s.shutdown_write())
    }
}

impl_mio_source!(Either<L, R>, L: Stream, R: Stream);
