//! The appliance's network path per IO thread: kernel TCP, or the AF_XDP stack with its fallback.
//!
//! [`Net`] is a [`Dial`]er: every endpoint of an IO thread holds a clone and opens its base stream
//! through it, so one endpoint type runs over either path. The base stream is [`BaseStream`] (kernel
//! `TcpStream`, or `XdpStream` with the `xdp` feature), and TLS, recording, WebSocket, HTTP and FIX
//! compose on it unchanged.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::config::{NetworkPath, SelectorKind};
use crate::select::{AnySelector, DirectSelector, MioSelector};
use crate::service::Dial;
use crate::stream::{TcpOptions, TcpStream};

/// The stream every appliance endpoint is built on.
#[cfg(feature = "xdp")]
pub type BaseStream = crate::stream::Either<TcpStream, crate::xdp::XdpStream>;
/// The stream every appliance endpoint is built on.
#[cfg(not(feature = "xdp"))]
pub type BaseStream = TcpStream;

fn kernel(addr: SocketAddr) -> io::Result<BaseStream> {
    let tcp = TcpStream::connect(addr, &TcpOptions::default())?;
    #[cfg(feature = "xdp")]
    let tcp = crate::stream::Either::Left(tcp);
    Ok(tcp)
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
            Net::Kernel => kernel(addr),
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
