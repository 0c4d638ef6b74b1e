//! How endpoints open their base stream: kernel TCP by default, or any other network path (the
//! AF_XDP stack) through the same endpoint code.

use std::io;
use std::net::SocketAddr;

use crate::stream::{Stream, TcpOptions, TcpStream};

/// Opens base streams for an endpoint. The endpoint owns its dialer, so a per-thread network (an
/// AF_XDP stack handle) is just a dialer that is cheap to clone.
pub trait Dial {
    /// The stream this dialer opens.
    type Stream: Stream;
    /// Starts a connection to `addr` (non-blocking: it completes through `poll_connect`).
    fn dial(&mut self, addr: SocketAddr) -> io::Result<Self::Stream>;
}

/// Kernel TCP with the given socket options: the default dialer.
#[derive(Debug, Clone, Default)]
pub struct KernelDial {
    /// Socket options for every connection.
    pub options: TcpOptions,
}

impl Dial for KernelDial {
    type Stream = TcpStream;
    fn dial(&mut self, addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::connect(addr, &self.options)
    }
}

/// Kernel TCP through an io_uring (feature `io-uring`): connections are
/// [`crate::select::UringStream`]s of `ring`, receiving by multishot receive into its provided
/// buffers; drive them with a [`crate::select::UringSelector`] over the same ring.
#[cfg(feature = "io-uring")]
#[derive(Debug, Clone)]
pub struct UringDial {
    /// The ring of the thread the endpoint runs on.
    pub ring: crate::select::uring::UringRing,
    /// Socket options for every connection.
    pub options: TcpOptions,
}

#[cfg(feature = "io-uring")]
impl Dial for UringDial {
    type Stream = crate::select::UringStream;
    fn dial(&mut self, addr: SocketAddr) -> io::Result<crate::select::UringStream> {
        crate::select::UringStream::connect(&self.ring, addr, &self.options)
    }
}
