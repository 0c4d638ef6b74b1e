//! [`XdpStream`]: a TCP connection of the userspace stack, as a non-blocking [`Stream`].
//!
//! It follows the contract of [`crate::stream`] exactly, so TLS, recording, WebSocket and HTTP run
//! on it unchanged: `WouldBlock` when there is nothing to read or no room to write, `Ok(0)` at the
//! peer's FIN, `poll_connect` reports the three-way handshake and a refused connect (RST) as
//! `ConnectionRefused`. Writes before the handshake completes are refused with `WouldBlock`.
//!
//! When no selector drives the stack (a probe or a tool using the stream on its own), the stream
//! polls the stack itself from `poll_connect`, `read`, `write` and `flush`. Under the XDP selector
//! it never does: the selector polls once per service round, and `flush` sends at once.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, RecvError, SendError, State};

use super::stack::XdpStack;
use crate::stream::Stream;

/// A TCP client connection over the AF_XDP stack.
pub struct XdpStream {
    stack: XdpStack,
    handle: SocketHandle,
    port: u16,
    peer: SocketAddrV4,
    established: bool,
}

impl std::fmt::Debug for XdpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpStream")
            .field("local_port", &self.port)
            .field("peer", &self.peer)
            .field("established", &self.established)
            .finish()
    }
}

impl XdpStream {
    /// Starts a connection to `addr` (IPv4) on `stack` and sends the SYN. Returns at once; the
    /// handshake completes through [`Stream::poll_connect`].
    pub fn connect(stack: &XdpStack, addr: SocketAddr) -> io::Result<XdpStream> {
        let SocketAddr::V4(peer) = addr else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the XDP stack is IPv4 only; cannot connect to {addr}"),
            ));
        };
        let (handle, port) = {
            let mut s = stack.inner.borrow_mut();
            let opened = s.open_socket(peer)?;
            // Out with the SYN now rather than at the next selector round.
            s.poll()?;
            opened
        };
        Ok(XdpStream {
            stack: stack.clone(),
            handle,
            port,
            peer,
            established: false,
        })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> SocketAddr {
        SocketAddr::V4(self.peer)
    }

    /// The local address (the stack's IP and this connection's port).
    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::new(self.stack.local_ip().into(), self.port)
    }

    /// The stack this connection lives in.
    pub fn stack(&self) -> &XdpStack {
        &self.stack
    }

    /// The TCP state (for diagnostics).
    pub fn state(&self) -> State {
        self.stack.inner.borrow_mut().socket(self.handle).state()
    }

    /// Shuts down the write side (sends FIN). Reading continues until the peer's FIN.
    pub fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        let mut s = self.stack.inner.borrow_mut();
        match how {
            Shutdown::Read => Ok(()),
            Shutdown::Write | Shutdown::Both => {
                s.socket(self.handle).close();
                s.poll().map(drop)
            }
        }
    }

    fn self_drive(&self) -> io::Result<()> {
        let mut s = self.stack.inner.borrow_mut();
        if !s.selector_driven() {
            s.poll()?;
        }
        Ok(())
    }

    #[cold]
    fn finish_connect(&mut self) -> io::Result<bool> {
        self.self_drive()?;
        let state = self.stack.inner.borrow_mut().socket(self.handle).state();
        match state {
            State::SynSent | State::SynReceived => Ok(false),
            State::Closed | State::TimeWait | State::Closing | State::LastAck => {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("connect to {}: refused", self.peer),
                ))
            }
            _ => {
                self.established = true;
                Ok(true)
            }
        }
    }
}

impl Stream for XdpStream {
    fn poll_connect(&mut self) -> io::Result<bool> {
        if self.established {
            return Ok(true);
        }
        self.finish_connect()
    }

    fn read_pending(&self) -> bool {
        self.stack.inner.borrow_mut().socket(self.handle).can_recv()
    }

    /// smoltcp's `close()`: FIN after the bytes already in the send buffer; reads go on.
    fn shutdown_write(&mut self) -> io::Result<()> {
        if !self.established && !self.finish_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.shutdown(Shutdown::Write)
    }
}

fn closed_error(state: State) -> io::Error {
    match state {
        State::Closed => io::Error::new(io::ErrorKind::ConnectionReset, "connection reset"),
        _ => io::Error::new(io::ErrorKind::BrokenPipe, "connection closed for writing"),
    }
}

impl Read for XdpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.established && !self.finish_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut s = self.stack.inner.borrow_mut();
        let mut result = read_socket(s.socket(self.handle), buf);
        if !s.selector_driven() && result.as_ref().is_err_and(crate::stream::would_block) {
            s.poll()?;
            result = read_socket(s.socket(self.handle), buf);
        }
        result
    }
}

fn read_socket(socket: &mut tcp::Socket<'static>, buf: &mut [u8]) -> io::Result<usize> {
    match socket.recv_slice(buf) {
        Ok(0) if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
        Ok(n) => Ok(n),
        Err(RecvError::Finished) => Ok(0),
        Err(RecvError::InvalidState) => Err(closed_error(socket.state())),
    }
}

impl Write for XdpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.established && !self.finish_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut s = self.stack.inner.borrow_mut();
        let socket = s.socket(self.handle);
        let n = match socket.send_slice(buf) {
            Ok(0) if !buf.is_empty() => {
                if s.selector_driven() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                // Room may come with the ACKs the next poll reads.
                s.poll()?;
                match s.socket(self.handle).send_slice(buf) {
                    Ok(0) => return Err(io::ErrorKind::WouldBlock.into()),
                    Ok(n) => n,
                    Err(SendError::InvalidState) => {
                        return Err(closed_error(s.socket(self.handle).state()))
                    }
                }
            }
            Ok(n) => n,
            Err(SendError::InvalidState) => return Err(closed_error(socket.state())),
        };
        Ok(n)
    }

    /// Sends what was written now (one stack poll); bytes not yet acknowledged stay in the
    /// socket's send buffer, as they would in the kernel's, so this never returns `WouldBlock`.
    fn flush(&mut self) -> io::Result<()> {
        self.stack.inner.borrow_mut().poll().map(drop)
    }
}

impl Drop for XdpStream {
    fn drop(&mut self) {
        if let Ok(mut s) = self.stack.inner.try_borrow_mut() {
            s.release(self.handle, self.port);
            let _ = s.poll();
        }
    }
}
