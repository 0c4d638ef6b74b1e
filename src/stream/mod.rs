//! Byte streams: the bottom layer every protocol runs on.
//!
//! # The non-blocking contract
//!
//! Every stream in this module is a non-blocking [`Read`] + [`Write`] and follows the same rules, so
//! that protocols and selectors can be written once:
//!
//! - **`WouldBlock` means "not now".** `read` and `write` never block. When they cannot make progress
//!   they return an error of kind [`io::ErrorKind::WouldBlock`]; nothing is lost and the call may be
//!   repeated later. Any other error is terminal for the stream.
//! - **`Ok(0)` from `read` is end of stream** (the peer closed its side cleanly). A `read` into an
//!   empty buffer is never issued by hotwire code.
//! - **Readiness is a hint.** A selector may report a stream readable when a read then returns
//!   `WouldBlock` (spurious wake-ups, edge-triggered epoll), and a stream may hold readable bytes the
//!   OS knows nothing about (TLS plaintext already decrypted, a replay file). Callers therefore **drain
//!   until `WouldBlock`** after every readiness event, and ask [`Stream::read_pending`] before deciding
//!   that a read would be pointless.
//! - **A partial frame never blocks.** A protocol that holds half a frame keeps it and returns "need
//!   more bytes"; it never loops on the stream waiting for the rest.
//! - **Connecting is part of the stream.** Constructors start a connection and return at once;
//!   [`Stream::poll_connect`] drives the TCP connect and any handshake (TLS) and reports `Ok(true)`
//!   once application data can flow. A refused or timed-out connect is an `Err` from `poll_connect`
//!   (and from `read`/`write`), never "not connected yet" forever. Writes issued before the stream is
//!   ready are either queued in exactly one place (TLS, see [`tls`]) or refused with `WouldBlock`.
//! - **`flush` pushes buffered bytes towards the peer** and returns `WouldBlock` when some are still
//!   queued; the bytes stay queued and a later `flush` continues.
//! - **[`Stream::shutdown_write`] half-closes**: each layer sends its own closing message (TLS: a
//!   close_notify alert) after the bytes queued before it, then passes the shutdown down; at the
//!   bottom the TCP stream sends FIN. The peer reads end of stream; this side keeps reading until the
//!   peer closes too. `WouldBlock` means some of it is still queued: call again.
//!
//! # Composition
//!
//! Streams wrap streams by value, through the `into_*` conversions of [`IntoTls`], [`IntoBuffered`]
//! and [`IntoRecorded`](record::IntoRecorded): `TcpStream -> Tls<TcpStream> -> Recorded<Tls<TcpStream>>`. The composed type
//! is concrete, so every call is statically dispatched. [`Either`] picks a layer at run time (plain
//! or TLS by URL scheme: `MaybeTls`) with an enum, not a trait object.
//!
//! # Readiness
//!
//! [`Stream::raw_fd`] exposes the descriptor a selector waits on; every stream type in this module also
//! implements [`mio::event::Source`] through it, so any composed stream can be registered with mio.

use std::io::{self, Read, Write};
use std::os::fd::RawFd;

// One public path per type: `buffered`, `either` and `tcp` are crate-private, their types re-exported
// here; `record`, `tls` and `ktls` are the paths of their own items.
pub(crate) mod buffered;
pub(crate) mod either;
#[cfg(feature = "ktls")]
pub mod ktls;
pub mod record;
pub(crate) mod tcp;
#[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
pub mod tls;

pub use buffered::Buffered;
pub use either::Either;
#[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
pub use either::MaybeTls;
pub use tcp::{TcpOptions, TcpStream};

/// A non-blocking byte stream (see the [module documentation](self) for the contract).
///
/// The three methods have defaults that suit a stream with no connect phase, no private buffer and no
/// descriptor; wrappers forward them to the stream they wrap.
pub trait Stream: Read + Write {
    /// Drives the connection towards the state where application data can flow: the TCP connect,
    /// then any handshake of the layers above it.
    ///
    /// Returns `Ok(true)` once ready (and from then on), `Ok(false)` while still in progress, and an
    /// error when the connection failed (refused, timed out, handshake rejected).
    fn poll_connect(&mut self) -> io::Result<bool> {
        Ok(true)
    }

    /// `true` when a `read` may return bytes even though the descriptor is not readable: bytes are
    /// already held above the socket (decrypted TLS records, a buffer, a replay file).
    ///
    /// A caller that has drained a stream to `WouldBlock` can skip the next read when this returns
    /// `false` and the selector has not reported the descriptor readable.
    fn read_pending(&self) -> bool {
        false
    }

    /// The OS descriptor a selector should wait on, if the stream has one.
    fn raw_fd(&self) -> Option<RawFd> {
        None
    }

    /// Shuts down the write side: queued bytes go out first, then each layer's closing message
    /// (a TLS close_notify), then a FIN at the TCP level. Reading continues until the peer's end of
    /// stream, so a reply sent after the FIN is still received.
    ///
    /// Non-blocking like every call here: `WouldBlock` when bytes are still queued in some layer
    /// (nothing is lost; call again, after a writable event, until it returns `Ok`). On hotwire's
    /// stream types, calling it again after success returns `Ok` (the standard library's and mio's
    /// sockets pass the kernel's answer through, `NotConnected` once the peer has closed too).
    /// While the stream is still connecting it returns `WouldBlock`.
    /// Writes after a shutdown fail.
    ///
    /// Every stream type of hotwire implements it; the default, for streams that cannot half-close
    /// (test doubles), returns [`io::ErrorKind::Unsupported`].
    fn shutdown_write(&mut self) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this stream cannot shut down its write side",
        ))
    }
}

impl<S: Stream + ?Sized> Stream for &mut S {
    fn poll_connect(&mut self) -> io::Result<bool> {
        (**self).poll_connect()
    }
    fn read_pending(&self) -> bool {
        (**self).read_pending()
    }
    fn raw_fd(&self) -> Option<RawFd> {
        (**self).raw_fd()
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        (**self).shutdown_write()
    }
}

impl Stream for std::net::TcpStream {
    fn raw_fd(&self) -> Option<RawFd> {
        Some(std::os::fd::AsRawFd::as_raw_fd(self))
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl Stream for mio::net::TcpStream {
    fn raw_fd(&self) -> Option<RawFd> {
        Some(std::os::fd::AsRawFd::as_raw_fd(self))
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl<S: Stream + ?Sized> Stream for Box<S> {
    fn poll_connect(&mut self) -> io::Result<bool> {
        (**self).poll_connect()
    }
    fn read_pending(&self) -> bool {
        (**self).read_pending()
    }
    fn raw_fd(&self) -> Option<RawFd> {
        (**self).raw_fd()
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        (**self).shutdown_write()
    }
}

/// Implements [`mio::event::Source`] for a stream type through [`Stream::raw_fd`], so each wrapper
/// gets registration without forwarding mio's trait by hand.
///
/// Streams without a descriptor (a replay, say) return [`io::ErrorKind::Unsupported`] on registration.
macro_rules! impl_mio_source {
    ($ty:ty $(, $gen:ident : $bound:path)*) => {
        impl<$($gen: $bound),*> ::mio::event::Source for $ty {
            fn register(
                &mut self,
                registry: &::mio::Registry,
                token: ::mio::Token,
                interests: ::mio::Interest,
            ) -> ::std::io::Result<()> {
                let fd = $crate::stream::require_fd($crate::stream::Stream::raw_fd(self))?;
                ::mio::unix::SourceFd(&fd).register(registry, token, interests)
            }
            fn reregister(
                &mut self,
                registry: &::mio::Registry,
                token: ::mio::Token,
                interests: ::mio::Interest,
            ) -> ::std::io::Result<()> {
                let fd = $crate::stream::require_fd($crate::stream::Stream::raw_fd(self))?;
                ::mio::unix::SourceFd(&fd).reregister(registry, token, interests)
            }
            fn deregister(&mut self, registry: &::mio::Registry) -> ::std::io::Result<()> {
                let fd = $crate::stream::require_fd($crate::stream::Stream::raw_fd(self))?;
                ::mio::unix::SourceFd(&fd).deregister(registry)
            }
        }
    };
}
pub(crate) use impl_mio_source;

#[doc(hidden)]
pub fn require_fd(fd: Option<RawFd>) -> io::Result<RawFd> {
    fd.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "this stream has no OS descriptor to register with a selector",
        )
    })
}

/// `into_buffered` for every stream.
pub trait IntoBuffered: Stream + Sized {
    /// Wraps the stream in a write-coalescing [`Buffered`] stream with a buffer of `capacity` bytes.
    fn into_buffered(self, capacity: usize) -> Buffered<Self> {
        Buffered::with_capacity(self, capacity)
    }
}
impl<S: Stream> IntoBuffered for S {}

/// `into_tls` for every stream.
#[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
pub trait IntoTls: Stream + Sized {
    /// Starts a TLS client session over this stream for `server_name` (used for SNI and certificate
    /// verification). The handshake is driven by [`Stream::poll_connect`] and by reads and writes.
    fn into_tls(
        self,
        connector: &tls::TlsConnector,
        server_name: &str,
    ) -> io::Result<tls::TlsStream<Self>> {
        connector.connect(server_name, self)
    }
}
#[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
impl<S: Stream> IntoTls for S {}

/// Returns `true` when `e` is the non-blocking "not now" error.
#[inline]
pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Drives `stream` until [`Stream::poll_connect`] reports ready, sleeping on the descriptor between
/// attempts, or fails with `TimedOut` after `timeout`.
///
/// For probes, tests and tools; the service layer never blocks like this.
pub fn wait_connected<S: Stream>(stream: &mut S, timeout: std::time::Duration) -> io::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if stream.poll_connect()? {
            return Ok(());
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection not established in time",
            ));
        }
        wait_fd(
            stream.raw_fd(),
            (deadline - now).min(std::time::Duration::from_millis(5)),
        );
    }
}

/// Sleeps until `fd` is readable, or `max` has passed (a plain sleep without an fd).
///
/// Only readability is waited for: a connected socket is nearly always writable, and waiting on that
/// would spin. Callers bound `max` so a pending connect (which signals writability) is polled again soon.
pub fn wait_fd(fd: Option<RawFd>, max: std::time::Duration) {
    match fd {
        Some(fd) => {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = max.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: `pfd` is a valid pollfd for the duration of the call and nfds is 1.
            unsafe {
                libc::poll(&mut pfd, 1, ms);
            }
        }
        None => std::thread::sleep(max.min(std::time::Duration::from_millis(1))),
    }
}

/// Reads into `buf` until at least one byte arrives, end of stream (`Ok(0)`), an error, or `timeout`
/// (`TimedOut`). Drives the connection first. For probes, tests and tools only.
pub fn read_timeout<S: Stream>(
    stream: &mut S,
    buf: &mut [u8],
    timeout: std::time::Duration,
) -> io::Result<usize> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if stream.poll_connect()? {
            match stream.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if would_block(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no data in time"));
        }
        wait_fd(
            stream.raw_fd(),
            (deadline - now).min(std::time::Duration::from_millis(5)),
        );
    }
}

/// Writes all of `buf` and flushes, waiting on the descriptor whenever the stream would block, or
/// fails with `TimedOut` after `timeout`. For probes, tests and tools only.
pub fn write_all_timeout<S: Stream>(
    stream: &mut S,
    mut buf: &[u8],
    timeout: std::time::Duration,
) -> io::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    let mut flushed = false;
    while !buf.is_empty() || !flushed {
        let progress = if !stream.poll_connect()? {
            Err(io::ErrorKind::WouldBlock.into())
        } else if !buf.is_empty() {
            stream.write(buf).map(|n| {
                buf = &buf[n..];
            })
        } else {
            stream.flush().map(|()| flushed = true)
        };
        match progress {
            Ok(()) => continue,
            Err(e) if would_block(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "write not completed in time",
            ));
        }
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
    Ok(())
}
