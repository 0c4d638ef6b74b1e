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

#[cfg(feature = "xdp")]
use crate::config::XdpSettings;
use crate::config::{NetworkPath, SelectorKind, ThreadConfig, ThreadXdp};
use crate::select::{AnySelector, DirectSelector, MioSelector};
use crate::service::Dial;
use crate::stream::{TcpOptions, TcpStream};
#[cfg(feature = "xdp")]
use crate::xdp::XdpConfig;

/// A kernel TCP connection: the socket, or (feature `ktls`) a TLS session run by OpenSSL on it and
/// offloaded to the kernel, which the endpoint then uses as a plain stream.
#[cfg(feature = "ktls")]
pub type KernelStream = crate::stream::Either<TcpStream, crate::stream::ktls::KtlsStream>;
/// A kernel TCP connection.
#[cfg(not(feature = "ktls"))]
pub type KernelStream = TcpStream;

/// A kernel socket: read and written with syscalls, or (feature `io-uring`, on an io_uring
/// thread) through the thread's ring.
#[cfg(feature = "io-uring")]
pub type SocketStream = crate::stream::Either<KernelStream, crate::select::UringStream>;
/// A kernel socket.
#[cfg(not(feature = "io-uring"))]
pub type SocketStream = KernelStream;

/// The stream every appliance endpoint is built on.
#[cfg(feature = "xdp")]
pub type BaseStream = crate::stream::Either<SocketStream, crate::xdp::XdpStream>;
/// The stream every appliance endpoint is built on.
#[cfg(not(feature = "xdp"))]
pub type BaseStream = SocketStream;

fn base(stream: KernelStream) -> BaseStream {
    #[cfg(feature = "io-uring")]
    let stream = crate::stream::Either::Left(stream);
    #[cfg(feature = "xdp")]
    let stream = crate::stream::Either::Left(stream);
    stream
}

#[cfg(feature = "io-uring")]
fn uring(
    ring: &crate::select::uring::UringRing,
    addr: SocketAddr,
    options: &TcpOptions,
) -> io::Result<BaseStream> {
    let stream =
        crate::stream::Either::Right(crate::select::UringStream::connect(ring, addr, options)?);
    #[cfg(feature = "xdp")]
    let stream = crate::stream::Either::Left(stream);
    Ok(stream)
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
        if let (true, Some(k)) = (self.net.kernel_sockets(), &self.ktls) {
            let socket = TcpStream::connect(addr, &self.options)?;
            let session =
                crate::stream::ktls::KtlsStream::new(&k.connector, &k.server_name, socket, k.mode)
                    .map_err(|refused| io::Error::new(io::ErrorKind::Unsupported, refused.error))?;
            return Ok(base(crate::stream::Either::Right(session)));
        }
        match &self.net {
            Net::Kernel => kernel(addr, &self.options),
            #[cfg(feature = "io-uring")]
            Net::Uring(ring) => uring(ring, addr, &self.options),
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
    /// Kernel TCP sockets read and written through this thread's io_uring.
    #[cfg(feature = "io-uring")]
    Uring(crate::select::uring::UringRing),
    /// The AF_XDP stack of this thread.
    #[cfg(feature = "xdp")]
    Xdp(crate::xdp::XdpStack),
}

impl Dial for Net {
    type Stream = BaseStream;
    fn dial(&mut self, addr: SocketAddr) -> io::Result<BaseStream> {
        match self {
            Net::Kernel => kernel(addr, &TcpOptions::default()),
            #[cfg(feature = "io-uring")]
            Net::Uring(ring) => uring(ring, addr, &TcpOptions::default()),
            #[cfg(feature = "xdp")]
            Net::Xdp(stack) => {
                crate::xdp::XdpStream::connect(stack, addr).map(crate::stream::Either::Right)
            }
        }
    }
}

/// The network of a whole run, decided on the main thread before the IO threads start. On the
/// AF_XDP path it holds the steering program every AF_XDP thread shares (one program, one XSK map
/// indexed by queue); each thread then opens its own socket, UMEM and stack with [`NetPlan::open`].
#[derive(Debug, Clone)]
pub struct NetPlan {
    path: NetworkPath,
    /// `None` on the kernel path, or when the whole AF_XDP path fell back.
    #[cfg(feature = "xdp")]
    steering: Option<std::sync::Arc<crate::xdp::SharedSteering>>,
    /// Several AF_XDP threads: ARP stays with the kernel ([`XdpConfig::kernel_arp`]).
    #[cfg(feature = "xdp")]
    kernel_arp: bool,
}

impl NetPlan {
    /// Prepares `path` for `threads` (those that will run: with endpoints). On the AF_XDP path this
    /// attaches the steering program for the addresses of every AF_XDP thread; when that is not
    /// possible every thread uses kernel TCP and the log says why (once), or, with
    /// `fallback = false`, it is the error.
    pub fn prepare(path: &NetworkPath, threads: &[&ThreadConfig]) -> io::Result<NetPlan> {
        let NetworkPath::Xdp(x) = path else {
            return Ok(NetPlan {
                path: path.clone(),
                #[cfg(feature = "xdp")]
                steering: None,
                #[cfg(feature = "xdp")]
                kernel_arp: false,
            });
        };
        let xdp: Vec<&ThreadXdp> = threads.iter().filter_map(|t| t.xdp.as_ref()).collect();
        #[cfg(feature = "xdp")]
        {
            use crate::config::Steering;
            use crate::xdp::{stack::interface_mtu, SharedSteering, SteerMode};
            if xdp.is_empty() {
                return Ok(NetPlan {
                    path: path.clone(),
                    steering: None,
                    kernel_arp: false,
                });
            }
            let cfgs: Vec<XdpConfig> = xdp
                .iter()
                .map(|t| {
                    let mut cfg = xdp_config(x, t);
                    // Several stacks on one interface: ARP belongs to no single queue.
                    cfg.kernel_arp = xdp.len() > 1;
                    cfg
                })
                .collect();
            let mut ips: Vec<_> = xdp.iter().map(|t| t.local_ip).collect();
            ips.dedup();
            let mode = match x.steering {
                Steering::DedicatedIp => SteerMode::DedicatedIp,
                Steering::SharedIp => SteerMode::SharedIp {
                    first: x.ports.0,
                    last: x.ports.1,
                },
            };
            let frags = interface_mtu(&x.interface)
                .map(|mtu| SharedSteering::needs_frags(&cfgs.iter().collect::<Vec<_>>(), mtu))
                .unwrap_or(false);
            let kernel_arp = cfgs[0].kernel_arp;
            if kernel_arp {
                warn_unless_local(&x.interface, &ips);
            }
            let steering = crate::xdp::attach_or_fallback(
                &x.interface,
                &ips,
                mode,
                kernel_arp,
                cfgs[0].attach,
                frags,
                x.fallback,
            )?;
            if let Some(s) = &steering {
                log::info!(
                    "steering program on {} ({:?} attach) for {} AF_XDP thread(s): {}",
                    x.interface,
                    s.attach_mode(),
                    xdp.len(),
                    xdp.iter()
                        .map(|t| format!("queue {} -> {}", t.queue, t.local_ip))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(NetPlan {
                path: path.clone(),
                steering,
                kernel_arp,
            })
        }
        #[cfg(not(feature = "xdp"))]
        {
            let why = "this hotwire was built without the `xdp` feature";
            if !x.fallback && !xdp.is_empty() {
                return Err(io::Error::other(format!(
                    "network.path = \"xdp\" is unavailable ({why}) and fallback is off"
                )));
            }
            log::warn!(
                "AF_XDP on {} is unavailable ({why}); using kernel TCP",
                x.interface
            );
            Ok(NetPlan { path: path.clone() })
        }
    }

    /// Brings up the network of `thread` (on the thread itself: a stack is not `Send`): its own
    /// AF_XDP socket and stack when it has a queue and the steering program is up, kernel TCP
    /// otherwise. A failure of this thread's socket falls back for this thread only (logged), or
    /// is the error with `fallback = false`.
    pub fn open(&self, thread: &ThreadConfig) -> io::Result<Net> {
        let NetworkPath::Xdp(x) = &self.path else {
            return kernel_net(thread);
        };
        let Some(t) = &thread.xdp else {
            log::info!(
                "thread {:?}: no AF_XDP queue of its own (set `queue` in its [[thread]]); kernel TCP",
                thread.name
            );
            return kernel_net(thread);
        };
        #[cfg(feature = "xdp")]
        {
            let Some(steering) = &self.steering else {
                return Ok(Net::Kernel);
            };
            let mut cfg = xdp_config(x, t);
            cfg.kernel_arp = self.kernel_arp;
            Ok(
                match crate::xdp::open_with_or_fallback(&cfg, steering.clone(), x.fallback)? {
                    Some(stack) => Net::Xdp(stack),
                    None => Net::Kernel,
                },
            )
        }
        #[cfg(not(feature = "xdp"))]
        {
            let _ = (x, t);
            Ok(Net::Kernel)
        }
    }
}

/// Kernel TCP for `thread`: through its own io_uring when its selector is `io_uring`.
fn kernel_net(thread: &ThreadConfig) -> io::Result<Net> {
    match thread.selector {
        #[cfg(feature = "io-uring")]
        SelectorKind::IoUring {
            sqpoll,
            sqpoll_core,
        } => {
            use crate::select::uring::{SqPoll, UringConfig, UringRing};
            let config = UringConfig {
                sqpoll: sqpoll.then_some(SqPoll {
                    cpu: sqpoll_core.map(|c| c as u32),
                    idle_ms: 1000,
                }),
                ..UringConfig::default()
            };
            let ring = UringRing::new(&config)
                .map_err(|e| io::Error::new(e.kind(), format!("thread {:?}: {e}", thread.name)))?;
            Ok(Net::Uring(ring))
        }
        #[cfg(not(feature = "io-uring"))]
        SelectorKind::IoUring { .. } => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "thread {:?}: selector \"io_uring\" needs a hotwire built with the `io-uring` \
                 feature",
                thread.name
            ),
        )),
        SelectorKind::Mio | SelectorKind::Direct => Ok(Net::Kernel),
    }
}

/// Several stacks leave ARP to the kernel, which answers only for its own addresses: say so when
/// a stack address is not one (the stack's peers could not resolve it).
#[cfg(feature = "xdp")]
fn warn_unless_local(interface: &str, ips: &[std::net::Ipv4Addr]) {
    let local = crate::xdp::stack::local_addresses(interface).unwrap_or_default();
    for ip in ips.iter().filter(|ip| !local.contains(ip)) {
        log::warn!(
            "{interface}: several AF_XDP threads leave ARP to the kernel, but {ip} is not an \
             address of {interface}, so nobody answers ARP for it (ip addr add {ip}/32 dev \
             {interface}; the steering program still takes its packets)"
        );
    }
}

/// The stack settings of one AF_XDP thread: the network's, with the thread's queue, address and
/// ports.
#[cfg(feature = "xdp")]
pub fn xdp_config(x: &XdpSettings, t: &ThreadXdp) -> XdpConfig {
    use crate::config::Steering;
    use crate::xdp::{AttachMode, BindMode, SteerMode};
    let mut cfg = XdpConfig::new(x.interface.clone(), t.local_ip, t.prefix_len);
    cfg.queue = t.queue;
    cfg.gateway = x.gateway;
    // Shared-IP: the program steers the whole reserved range; the stack allocates from its slice.
    cfg.steer = match x.steering {
        Steering::DedicatedIp => SteerMode::DedicatedIp,
        Steering::SharedIp => SteerMode::SharedIp {
            first: t.ports.0,
            last: t.ports.1,
        },
    };
    cfg.port_range = t.ports;
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
    cfg.ack_delay =
        (x.ack_delay_us > 0).then(|| std::time::Duration::from_micros(u64::from(x.ack_delay_us)));
    cfg.huge_pages = x.huge_pages;
    cfg
}

impl Net {
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
        #[cfg(feature = "io-uring")]
        if let Net::Uring(ring) = self {
            let busy = matches!(kind, SelectorKind::IoUring { sqpoll: true, .. });
            return Ok((
                AnySelector::Uring(crate::select::UringSelector::new(ring.clone())),
                if busy {
                    Duration::ZERO
                } else {
                    Duration::from_millis(1)
                },
            ));
        }
        Ok(match kind {
            SelectorKind::IoUring { .. } => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "selector \"io_uring\" needs the thread's io_uring network (Net::Uring)",
                ))
            }
            SelectorKind::Mio => (
                AnySelector::Mio(MioSelector::new()?),
                Duration::from_millis(1),
            ),
            SelectorKind::Direct => (AnySelector::Direct(DirectSelector::new()), Duration::ZERO),
        })
    }

    /// On the AF_XDP path, the device's packet counters in a line for the log.
    pub fn xdp_summary(&self) -> Option<String> {
        match self {
            Net::Kernel => None,
            #[cfg(feature = "io-uring")]
            Net::Uring(_) => None,
            #[cfg(feature = "xdp")]
            Net::Xdp(stack) => {
                let c = stack.counters();
                Some(format!(
                    "rx {} frames, {} for another address (wrong queue), {} bad checksum; tx {} \
                     frames, {} kicks",
                    c.rx_frames, c.rx_foreign, c.rx_bad_checksum, c.tx_frames, c.tx_kicks
                ))
            }
        }
    }

    /// `true` when connections are kernel TCP sockets (socket options and kTLS apply).
    pub fn kernel_sockets(&self) -> bool {
        match self {
            Net::Kernel => true,
            #[cfg(feature = "io-uring")]
            Net::Uring(_) => true,
            #[cfg(feature = "xdp")]
            Net::Xdp(_) => false,
        }
    }

    /// `"xdp"`, `"io_uring"` or `"kernel"`, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Net::Kernel => "kernel",
            #[cfg(feature = "io-uring")]
            Net::Uring(_) => "io_uring",
            #[cfg(feature = "xdp")]
            Net::Xdp(_) => "xdp",
        }
    }
}
