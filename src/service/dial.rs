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
