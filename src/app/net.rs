//! The appliance's network path per IO thread: kernel TCP, or the AF_XDP stack with its fallback.
//!
//! [`Net`] is a [`Dial`]er: every endpoint of an IO thread holds a clone, inside an
//! [`EndpointNet`] with its own socket options, and opens its base stream through it, so one
//! endpoint type runs over either path. The base stream is [`BaseStream`] (kernel
//! `TcpStream`, or `XdpStream` with the `xdp` feature), and TLS, recording, WebSocket, HTTP and FIX
//! compose on it unchanged.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::config::{NetworkPath, SelectorKind};
use crate::select::{AnySelector, DirectSelector, MioSelector};
use crate::service::Dial;
use crate::stream::{TcpOptions, TcpStream};

/// A kernel TCP connection: the socket, or (feature `ktls`) a TLS session run by OpenSSL on it and
/// offloaded to the kernel, which the endpoint then uses as a plain stream.
#[cfg(feature = "ktls")]
pub type KernelStream = crate::stream::Either<TcpStream, crate::stream::ktls::KtlsStream>;
/// A kernel TCP connection.
#[cfg(not(feature = "ktls"))]
pub type KernelStream = TcpStream;

/// The stream every appliance endpoint is built on.
#[cfg(feature = "xdp")]
pub type BaseStream = crate::stream::Either<KernelStream, crate::xdp::XdpStream>;
/// The stream every appliance endpoint is built on.
#[cfg(not(feature = "xdp"))]
pub type BaseStream = KernelStream;

fn base(stream: KernelStream) -> BaseStream {
    #[cfg(feature = "xdp")]
    let stream = crate::stream::Either::Left(stream);
    stream
}

fn tcp(stream: TcpStream) -> KernelStream {
    #[cfg(feature = "ktls")]
    let stream = crate::stream::Either::Left(stream);
    stream
}

fn kernel(addr: SocketAddr, options: &TcpOptions) -> io::Result<BaseStream> {
    Ok(base(tcp(TcpStream::connect(addr, options)?)))
}

/// kTLS set up by the dialer: the session is made on the kernel socket before the endpoint sees it.
#[cfg(feature = "ktls")]
#[derive(Debug, Clone)]
pub struct KtlsDial {
    /// The OpenSSL connector (the endpoint's TLS settings).
    pub connector: crate::stream::tls::TlsConnector,
    /// The name verified and sent as SNI.
    pub server_name: String,
    /// Offload or fail, or offload when possible.
    pub mode: crate::stream::ktls::KtlsMode,
}

/// The dialer of one endpoint: its IO thread's network with the endpoint's own kernel socket
/// options (`[endpoint.tcp]`), and with kTLS when the endpoint asks for it. The AF_XDP stack
/// ignores the socket options (it has no kernel socket).
#[derive(Debug, Clone)]
pub struct EndpointNet {
    net: Net,
    options: TcpOptions,
    #[cfg(feature = "ktls")]
    ktls: Option<KtlsDial>,
}

impl EndpointNet {
    /// Dials through `net` with `options` for kernel sockets.
    pub fn new(net: Net, options: TcpOptions) -> EndpointNet {
        EndpointNet {
            net,
            options,
            #[cfg(feature = "ktls")]
            ktls: None,
        }
    }

    /// Makes every kernel connection a kTLS session (the endpoint must then add no TLS itself).
    #[cfg(feature = "ktls")]
    pub fn with_ktls(mut self, ktls: KtlsDial) -> EndpointNet {
        self.ktls = Some(ktls);
        self
    }

    /// The network under it.
    pub fn net(&self) -> &Net {
        &self.net
    }
}

impl Dial for EndpointNet {
    type Stream = BaseStream;
    fn dial(&mut self, addr: SocketAddr) -> io::Result<BaseStream> {
        #[cfg(feature = "ktls")]
        if let (Net::Kernel, Some(k)) = (&self.net, &self.ktls) {
            let socket = TcpStream::connect(addr, &self.options)?;
            let session =
                crate::stream::ktls::KtlsStream::new(&k.connector, &k.server_name, socket, k.mode)
                    .map_err(|refused| io::Error::new(io::ErrorKind::Unsupported, refused.error))?;
            return Ok(base(crate::stream::Either::Right(session)));
        }
        match self.net {
            Net::Kernel => kernel(addr, &self.options),
            #[cfg(feature = "xdp")]
            Net::Xdp(_) => self.net.dial(addr),
        }
    }
}

/// The network of one IO thread (cheap to clone: an XDP stack is a shared handle).
#[derive(Debug, Clone)]
pub enum Net {
    /// Kernel TCP sockets.
    Kernel,
    /// The AF_XDP stack of this thread.
    #[cfg(feature = "xdp")]
    Xdp(crate::xdp::XdpStack),
}

impl Dial for Net {
    type Stream = BaseStream;
    fn dial(&mut self, addr: SocketAddr) -> io::Result<BaseStream> {
        match self {
            Net::Kernel => kernel(addr, &TcpOptions::default()),
            #[cfg(feature = "xdp")]
            Net::Xdp(stack) => {
                crate::xdp::XdpStream::connect(stack, addr).map(crate::stream::Either::Right)
            }
        }
    }
}

impl Net {
    /// Brings up the network `path` for an IO thread. `owns_xdp` is true for the one thread that
    /// takes the AF_XDP socket (one socket per interface and queue); the others use kernel TCP.
    ///
    /// When AF_XDP cannot be used, returns [`Net::Kernel`] and logs why (once), or fails when the
    /// configuration says `fallback = false`.
    pub fn open(path: &NetworkPath, owns_xdp: bool) -> io::Result<Net> {
        let NetworkPath::Xdp(x) = path else {
            return Ok(Net::Kernel);
        };
        if !owns_xdp {
            return Ok(Net::Kernel);
        }
        #[cfg(feature = "xdp")]
        {
            use crate::config::Steering;
            use crate::xdp::{AttachMode, BindMode, SteerMode, XdpConfig};
            let mut cfg = XdpConfig::new(x.interface.clone(), x.local_ip, x.prefix_len);
            cfg.queue = x.queue;
            cfg.gateway = x.gateway;
            cfg.steer = match x.steering {
                Steering::DedicatedIp => SteerMode::DedicatedIp,
                Steering::SharedIp => SteerMode::SharedIp {
                    first: x.ports.0,
                    last: x.ports.1,
                },
            };
            cfg.port_range = x.ports;
            cfg.attach = if x.native {
                AttachMode::Native
            } else {
                AttachMode::Generic
            };
            cfg.bind = if x.zero_copy {
                BindMode::ZeroCopy
            } else {
                BindMode::Copy
            };
            cfg.frames = x.umem_frames;
            cfg.frame_size = x.frame_size;
            cfg.mtu = x.mtu.map(|m| m as usize);
            cfg.multi_buffer = x.multi_buffer;
            cfg.ack_delay = (x.ack_delay_us > 0)
                .then(|| std::time::Duration::from_micros(u64::from(x.ack_delay_us)));
            cfg.huge_pages = x.huge_pages;
            Ok(match crate::xdp::open_or_fallback(&cfg, x.fallback)? {
                Some(stack) => Net::Xdp(stack),
                None => Net::Kernel,
            })
        }
        #[cfg(not(feature = "xdp"))]
        {
            let why = "this hotwire was built without the `xdp` feature";
            if !x.fallback {
                return Err(io::Error::other(format!(
                    "network.path = \"xdp\" is unavailable ({why}) and fallback is off"
                )));
            }
            log::warn!(
                "AF_XDP on {} is unavailable ({why}); using kernel TCP",
                x.interface
            );
            Ok(Net::Kernel)
        }
    }

    /// The selector for this network and the thread's configured kind, with its poll timeout. The
    /// XDP stack is always busy-polled by its own selector.
    pub fn selector(&self, kind: SelectorKind) -> io::Result<(AnySelector, Duration)> {
        #[cfg(feature = "xdp")]
        if let Net::Xdp(stack) = self {
            return Ok((
                AnySelector::Xdp(crate::select::XdpSelector::new(stack.clone())),
                Duration::ZERO,
            ));
        }
        Ok(match kind {
            SelectorKind::Mio => (
                AnySelector::Mio(MioSelector::new()?),
                Duration::from_millis(1),
            ),
            SelectorKind::Direct => (AnySelector::Direct(DirectSelector::new()), Duration::ZERO),
        })
    }

    /// `"xdp"` or `"kernel"`, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Net::Kernel => "kernel",
            #[cfg(feature = "xdp")]
            Net::Xdp(_) => "xdp",
        }
    }
}
