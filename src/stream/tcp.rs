//! Kernel TCP: [`TcpStream`] (documented there) and its [`TcpOptions`].

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{impl_mio_source, Stream};

/// Socket options applied before connecting.
#[derive(Debug, Clone)]
pub struct TcpOptions {
    /// Bind the socket to this network interface (`SO_BINDTODEVICE`; needs `CAP_NET_RAW`), so traffic
    /// leaves through it whatever the routing table says.
    pub bind_device: Option<String>,
    /// Bind to this local address (and port, if non-zero) before connecting.
    pub bind_addr: Option<SocketAddr>,
    /// Disable Nagle's algorithm (`TCP_NODELAY`). On by default: latency beats packet count.
    pub nodelay: bool,
    /// Ask the kernel to deliver this socket's packets to the given CPU (`SO_INCOMING_CPU`).
    pub incoming_cpu: Option<u32>,
    /// Busy-poll the device queue for up to this many microseconds on blocking reads and in epoll
    /// (`SO_BUSY_POLL`); raising it above the sysctl needs `CAP_NET_ADMIN`.
    pub busy_poll_us: Option<u32>,
    /// `SO_RCVBUF` in bytes.
    pub recv_buffer: Option<usize>,
    /// `SO_SNDBUF` in bytes.
    pub send_buffer: Option<usize>,
    /// Give up a connect still pending after this long. `None` leaves it to the kernel (minutes).
    pub connect_timeout: Option<Duration>,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            bind_device: None,
            bind_addr: None,
            nodelay: true,
            incoming_cpu: None,
            busy_poll_us: None,
            recv_buffer: None,
            send_buffer: None,
            connect_timeout: Some(Duration::from_secs(10)),
        }
    }
}

/// A non-blocking kernel TCP client stream.
///
/// Kernel TCP: a non-blocking client socket with the options a colocated client wants.
///
/// [`TcpStream::connect`] creates the socket, applies [`TcpOptions`] (interface or address binding,
/// `TCP_NODELAY`, `SO_INCOMING_CPU`, busy-poll, buffer sizes), starts a non-blocking connect and returns
/// at once. The connect completes through [`Stream::poll_connect`] (or the first read or write): a
/// refused connect surfaces as `ConnectionRefused`, and one still pending at its deadline as `TimedOut`.
#[derive(Debug)]
pub struct TcpStream {
    socket: std::net::TcpStream,
    peer: SocketAddr,
    /// `Some(deadline)` while the connect is in progress.
    connecting: Option<Option<Instant>>,
    /// The FIN has been sent ([`Stream::shutdown_write`]); a second shutdown is a no-op (the kernel
    /// would answer `ENOTCONN` once the peer has closed too).
    write_shut: bool,
}

impl TcpStream {
    /// Creates a socket for `addr`, applies `options` and starts a non-blocking connect.
    ///
    /// Errors here are local (socket creation, an option the kernel refused, an immediate refusal);
    /// everything else is reported by [`Stream::poll_connect`].
    pub fn connect(addr: SocketAddr, options: &TcpOptions) -> io::Result<TcpStream> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        socket.set_tcp_nodelay(options.nodelay)?;
        if let Some(dev) = &options.bind_device {
            socket.bind_device(Some(dev.as_bytes())).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot bind to interface {dev:?}: {e}"))
            })?;
        }
        if let Some(local) = options.bind_addr {
            socket
                .bind(&SockAddr::from(local))
                .map_err(|e| io::Error::new(e.kind(), format!("cannot bind to {local}: {e}")))?;
        }
        if let Some(cpu) = options.incoming_cpu {
            socket.set_cpu_affinity(cpu as usize)?;
        }
        if let Some(us) = options.busy_poll_us {
            set_int_opt(&socket, libc::SOL_SOCKET, libc::SO_BUSY_POLL, us as i32)?;
        }
        if let Some(n) = options.recv_buffer {
            socket.set_recv_buffer_size(n)?;
        }
        if let Some(n) = options.send_buffer {
            socket.set_send_buffer_size(n)?;
        }
        let connecting = match socket.connect(&SockAddr::from(addr)) {
            Ok(()) => None,
            Err(e)
                if e.raw_os_error() == Some(libc::EINPROGRESS)
                    || e.kind() == io::ErrorKind::WouldBlock =>
            {
                Some(options.connect_timeout.map(|t| Instant::now() + t))
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("connect to {addr}: {e}"))),
        };
        Ok(TcpStream {
            socket: socket.into(),
            peer: addr,
            connecting,
            write_shut: false,
        })
    }

    /// Resolves `host` (a DNS name or an IP address) and connects to `port` on its addresses in
    /// turn, **blocking** until one connection is established: for scripts, tools and tests (the
    /// service layer resolves and connects without blocking).
    ///
    /// Each address gets [`TcpOptions::connect_timeout`] (10 s when `None`). The stream returned is
    /// connected and non-blocking, as from [`connect`](Self::connect). When every address fails, the
    /// error is the last one, naming all the addresses tried.
    ///
    /// ```no_run
    /// # use hotwire::stream::{TcpOptions, TcpStream};
    /// let stream = TcpStream::connect_host("example.com", 443, &TcpOptions::default())?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_host(host: &str, port: u16, options: &TcpOptions) -> io::Result<TcpStream> {
        use std::net::ToSocketAddrs;
        // A bracketed IPv6 literal, as in a URL, resolves like the bare address.
        let name = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let addrs: Vec<SocketAddr> = (name, port)
            .to_socket_addrs()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {host}: {e}")))?
            .collect();
        let timeout = options.connect_timeout.unwrap_or(Duration::from_secs(10));
        let mut last = None;
        for &addr in &addrs {
            let attempt = TcpStream::connect(addr, options).and_then(|mut s| {
                super::wait_connected(&mut s, timeout)?;
                Ok(s)
            });
            match attempt {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        let tried = addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Err(match last {
            Some(e) => io::Error::new(
                e.kind(),
                format!("connect to {host} port {port} ({tried}): {e}"),
            ),
            None => io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} resolved to no address"),
            ),
        })
    }

    /// The address this stream connects to.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The local address of the socket (useful after binding to an interface).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Shuts down one or both directions (a write shutdown sends FIN).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.shutdown(how)
    }

    /// The standard-library socket, for options this type does not wrap.
    pub fn as_std(&self) -> &std::net::TcpStream {
        &self.socket
    }

    #[cold]
    fn finish_connect(&mut self) -> io::Result<bool> {
        let Some(deadline) = self.connecting else {
            return Ok(true);
        };
        if let Some(e) = self.socket.take_error()? {
            return Err(io::Error::new(
                e.kind(),
                format!("connect to {}: {e}", self.peer),
            ));
        }
        // getpeername succeeds exactly when the handshake has completed.
        match self.socket.peer_addr() {
            Ok(_) => {
                self.connecting = None;
                Ok(true)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => match deadline {
                Some(d) if Instant::now() >= d => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {} timed out", self.peer),
                )),
                _ => Ok(false),
            },
            Err(e) => Err(e),
        }
    }
}

fn set_int_opt(socket: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the descriptor is valid for the socket's lifetime, and the option value is a live
    // `c_int` whose size is passed alongside it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Read for TcpStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.connecting.is_some() && !self.finish_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.socket.read(buf)
    }
}

impl Write for TcpStream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.connecting.is_some() && !self.finish_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.socket.write(buf)
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        if self.connecting.is_some() && !self.finish_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.socket.write_vectored(bufs)
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for TcpStream {
    #[inline]
    fn poll_connect(&mut self) -> io::Result<bool> {
        if self.connecting.is_none() {
            return Ok(true);
        }
        self.finish_connect()
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.socket.as_raw_fd())
    }

    /// Sends FIN (`shutdown(SHUT_WR)`); the kernel sends it after the bytes already written.
    fn shutdown_write(&mut self) -> io::Result<()> {
        if self.write_shut {
            return Ok(());
        }
        if self.connecting.is_some() && !self.finish_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.socket.shutdown(Shutdown::Write)?;
        self.write_shut = true;
        Ok(())
    }
}

impl_mio_source!(TcpStream);

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{read_timeout, wait_connected, write_all_timeout};

    #[test]
    fn connects_and_echoes_over_loopback() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let mut client = TcpStream::connect(addr, &TcpOptions::default()).unwrap();
        wait_connected(&mut client, Duration::from_secs(5)).unwrap();
        write_all_timeout(&mut client, b"hello", Duration::from_secs(5)).unwrap();
        let mut buf = [0u8; 5];
        let mut got = 0;
        while got < 5 {
            got += read_timeout(&mut client, &mut buf[got..], Duration::from_secs(5)).unwrap();
        }
        assert_eq!(&buf, b"hello");
        server.join().unwrap();
    }

    #[test]
    fn connects_over_ipv6() {
        let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
            // A kernel without IPv6 on loopback: nothing to connect to.
            return;
        };
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr, &TcpOptions::default()).unwrap();
        let (mut peer, from) = listener.accept().unwrap();
        wait_connected(&mut client, Duration::from_secs(5)).unwrap();
        assert!(from.is_ipv6());
        peer.write_all(b"v6").unwrap();
        let mut buf = [0u8; 2];
        assert_eq!(
            read_timeout(&mut client, &mut buf, Duration::from_secs(5)).unwrap(),
            2
        );
        assert_eq!(&buf, b"v6");
    }

    #[test]
    fn refused_connect_is_an_error_not_pending() {
        // Bind then drop a listener to get a port that is (very likely) closed.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let start = Instant::now();
        let err = match TcpStream::connect(addr, &TcpOptions::default()) {
            Err(e) => e,
            Ok(mut s) => wait_connected(&mut s, Duration::from_secs(5)).unwrap_err(),
        };
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn connect_timeout_is_reported() {
        // A listener with a full backlog that is never accepted makes the kernel drop SYNs, so the
        // connect hangs until our deadline.
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        sock.bind(&SockAddr::from(
            "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        ))
        .unwrap();
        sock.listen(0).unwrap();
        let addr = sock.local_addr().unwrap().as_socket().unwrap();
        let opts = TcpOptions {
            connect_timeout: Some(Duration::from_millis(300)),
            ..TcpOptions::default()
        };
        // Fill the backlog with connections nobody accepts.
        let mut fillers = Vec::new();
        let start = Instant::now();
        let err = loop {
            let mut s = TcpStream::connect(addr, &opts).unwrap();
            match wait_connected(&mut s, Duration::from_secs(5)) {
                Ok(()) => fillers.push(s),
                Err(e) => break e,
            }
            assert!(fillers.len() < 64, "backlog never filled");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}
