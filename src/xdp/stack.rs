//! The userspace TCP/IP stack: a smoltcp `Interface` and `SocketSet` over an [`XskDevice`].
//!
//! One stack per (interface, queue), owned by one IO thread and shared by every connection on it
//! through an `Rc<RefCell<..>>` handle ([`XdpStack`]). [`XdpStack::poll`] runs the stack once:
//! receive, TCP timers and transmit (smoltcp), then the device flush (completions, one TX kick,
//! fill ring). The XDP selector calls it once per service poll; streams used on their own (probes,
//! tools) call it from their reads and writes instead.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use smoltcp::iface::{Config, Interface, SocketHandle};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr};

use super::device::{BindMode, DeviceCounters, XskDevice};
use super::impair::Impaired;
use super::neigh::Neighbors;
use super::sockets::Sockets;
use super::steer::{AttachMode, SteerLink, SteerMode, XskMap};
use super::umem::{self, MemFacts, UmemPlan};
use super::XdpConfig;
use crate::buf::BufPool;

/// How long a closed connection may take to finish its FIN exchange before it is dropped.
const LINGER: Duration = Duration::from_secs(2);

/// Extra egress rounds per poll (each sends at most one segment per socket). Measured against 64
/// (a 64 KiB write leaving in one flush, in two copy-mode kicks): the 64 KiB echo on veth was
/// slower with the single burst (p50 1.41-1.51x kernel TCP against 1.29x), because the peer starts
/// echoing the first segments while later ones are still being built.
const EGRESS_ROUNDS: u32 = 8;

/// Size of a read-buffer slot in the huge-page pool: the WebSocket and HTTP clients' default read
/// buffers (64 KiB) and the FIX client's (two maximal messages, 128 KiB) fit.
const READ_SLOT: usize = 128 * 1024;

/// How long a busy queue is retried before giving up (see [`XskDevice::open`]).
const BUSY_FOR: Duration = Duration::from_secs(1);

/// What the stack ended up with (after fallbacks inside the XDP path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackInfo {
    /// The UMEM plan in effect.
    pub umem: UmemPlan,
    /// Copy or zero-copy.
    pub bind: BindMode,
    /// Native or generic.
    pub attach: AttachMode,
    /// Socket buffers on huge pages.
    pub buffers_on_huge_pages: bool,
    /// The protocol clients' read buffers ([`crate::buf::HotBuf`]) come from a huge-page pool.
    pub read_buffers_on_huge_pages: bool,
}

pub(crate) struct StackInner {
    sockets: Sockets,
    /// The protocol clients' read buffers ([`crate::buf::HotBuf`]), on huge pages.
    read_pool: Option<BufPool>,
    iface: Interface,
    device: Impaired<XskDevice>,
    steering: Arc<SharedSteering>,
    epoch: StdInstant,
    local: Ipv4Addr,
    ports: PortAllocator,
    /// Closed by their owner, finishing the FIN exchange.
    closing: Vec<(SocketHandle, u16, StdInstant)>,
    ack_delay: Option<Duration>,
    selector_driven: bool,
    info: StackInfo,
    /// Shared-IP mode: next hops from the kernel's neighbour table (ARP is the kernel's there).
    neighbors: Option<Neighbors>,
    /// `local/prefix_len`, and the gateway: what a connection's next hop is.
    subnet: Ipv4Cidr,
    gateway: Option<Ipv4Addr>,
}

/// A handle to a stack (cheap to clone; all clones share it). Not `Send`: a stack lives on its IO
/// thread.
#[derive(Clone)]
pub struct XdpStack {
    pub(crate) inner: Rc<RefCell<StackInner>>,
}

impl std::fmt::Debug for XdpStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.inner.try_borrow() {
            Ok(s) => f
                .debug_struct("XdpStack")
                .field("local", &s.local)
                .field("info", &s.info)
                .field("sockets", &s.sockets.count())
                .finish(),
            Err(_) => f.write_str("XdpStack(<in use>)"),
        }
    }
}

/// The interface index of `ifname` (`NotFound` when there is none).
pub fn ifindex(ifname: &str) -> io::Result<u32> {
    let name = std::ffi::CString::new(ifname)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {ifname:?}"),
        ))
    } else {
        Ok(index)
    }
}

/// The MAC address of `ifname` (from sysfs).
pub fn mac_address(ifname: &str) -> io::Result<EthernetAddress> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{ifname}/address"))?;
    let mut bytes = [0u8; 6];
    let mut parts = text.trim().split(':');
    for b in &mut bytes {
        let part = parts
            .next()
            .ok_or_else(|| io::Error::other(format!("{ifname}: malformed MAC {text:?}")))?;
        *b = u8::from_str_radix(part, 16)
            .map_err(|_| io::Error::other(format!("{ifname}: malformed MAC {text:?}")))?;
    }
    Ok(EthernetAddress(bytes))
}

/// The MTU of `ifname` (sysfs).
pub fn interface_mtu(ifname: &str) -> io::Result<usize> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{ifname}/mtu"))?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::other(format!("{ifname}: malformed MTU {text:?}")))
}

/// The stack's MTU: the configured one (or the interface's), never above the interface's or what
/// a frame holds (with multi-buffer: what [`super::MAX_FRAGS`] frames hold). A configured MTU that
/// has to be lowered is logged.
fn effective_mtu(cfg: &XdpConfig, link: usize) -> usize {
    let frame = super::mtu_limit(cfg.frame_size, cfg.multi_buffer);
    let wanted = cfg.mtu.unwrap_or(link);
    let mtu = wanted.min(link).min(frame);
    if cfg.mtu.is_some() && mtu < wanted {
        log::warn!(
            "{}: MTU {wanted} lowered to {mtu} (interface MTU {link}; {} of {} B frames hold {frame})",
            cfg.interface,
            if cfg.multi_buffer {
                super::MAX_FRAGS.to_string()
            } else {
                "one".into()
            },
            cfg.frame_size
        );
    }
    mtu
}

/// The IPv4 addresses the kernel has on `ifname` (`getifaddrs`).
pub fn local_addresses(ifname: &str) -> io::Result<Vec<Ipv4Addr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; the list is freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        // SAFETY: ifa_addr points to a sockaddr of at least its family's size.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        if name.to_bytes() != ifname.as_bytes() || family != libc::AF_INET {
            continue;
        }
        // SAFETY: an AF_INET address is a sockaddr_in.
        let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
        out.push(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The number of RX queues of `ifname` (sysfs `queues/rx-*`).
pub fn rx_queues(ifname: &str) -> io::Result<u32> {
    let dir = std::fs::read_dir(format!("/sys/class/net/{ifname}/queues"))?;
    Ok(dir
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count() as u32)
}

/// The steering program of one interface with its XSK map (indexed by RX queue), shared by the
/// stacks of several IO threads, each bound to its own queue: one program serves them all.
///
/// `Send + Sync`: attach it once (on the main thread), hand an `Arc` of it to each IO thread,
/// which opens its stack with [`XdpStack::open_with`]. The program stays attached while any stack
/// or the caller holds it, and leaves the interface with the last holder (or the process).
#[derive(Debug)]
pub struct SharedSteering {
    link: SteerLink,
    interface: String,
    queues: u32,
    ips: Vec<Ipv4Addr>,
    mode: SteerMode,
}

impl SharedSteering {
    /// Loads and attaches the steering program to `interface` for the stack addresses `ips` (one
    /// per AF_XDP thread in dedicated-IP mode; the shared address in shared-IP mode, whose whole
    /// port range `mode` names and which is reserved in the kernel here). `frags`: load it
    /// multi-buffer aware ([`super::steering_needs_frags`], or a stack MTU above one frame).
    ///
    /// `kernel_arp`: leave ARP to the kernel in dedicated-IP mode too, as several stacks on one
    /// interface need ([`XdpConfig::kernel_arp`]).
    pub fn attach(
        interface: &str,
        ips: &[Ipv4Addr],
        mode: SteerMode,
        kernel_arp: bool,
        attach: AttachMode,
        frags: bool,
    ) -> io::Result<SharedSteering> {
        let index = ifindex(interface)?;
        let queues = rx_queues(interface)?;
        let map = XskMap::new(queues)?;
        if let SteerMode::SharedIp { first, last } = mode {
            reserve_ports(first, last)?;
        }
        let link = SteerLink::attach(map, ips, mode, kernel_arp, index, attach, frags)?;
        Ok(SharedSteering {
            link,
            interface: interface.to_owned(),
            queues,
            ips: ips.to_vec(),
            mode,
        })
    }

    /// Whether the program for stacks configured as `cfgs` on a link of MTU `link_mtu` must be
    /// multi-buffer aware.
    pub fn needs_frags(cfgs: &[&XdpConfig], link_mtu: usize) -> bool {
        cfgs.iter().any(|cfg| {
            super::steering_needs_frags(link_mtu, cfg.frame_size, cfg.multi_buffer)
                || (cfg.multi_buffer
                    && effective_mtu(cfg, link_mtu) > super::max_mtu(cfg.frame_size))
        })
    }

    /// The interface.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The RX queues the interface has (the XSK map's size).
    pub fn queues(&self) -> u32 {
        self.queues
    }

    /// The addresses steered.
    pub fn ips(&self) -> &[Ipv4Addr] {
        &self.ips
    }

    /// What the program steers.
    pub fn mode(&self) -> SteerMode {
        self.mode
    }

    /// The attach mode in effect.
    pub fn attach_mode(&self) -> AttachMode {
        self.link.attach_mode()
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.link.ifindex()
    }
}

impl XdpStack {
    /// Opens the socket, attaches the steering program and builds the stack for `cfg`.
    pub fn open(cfg: &XdpConfig) -> io::Result<XdpStack> {
        Self::open_inner(cfg, None)
    }

    /// Opens the socket on `cfg.queue` and builds the stack, steered by the program `steering`
    /// already attached to the interface (one of several stacks, each on its own queue). The
    /// program must steer `cfg.local_ip` and, in shared-IP mode, `cfg`'s ports.
    pub fn open_with(cfg: &XdpConfig, steering: Arc<SharedSteering>) -> io::Result<XdpStack> {
        if steering.interface != cfg.interface {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "stack on {} given the steering program of {}",
                    cfg.interface, steering.interface
                ),
            ));
        }
        if !steering.ips.contains(&cfg.local_ip) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the steering program of {} does not steer {}",
                    cfg.interface, cfg.local_ip
                ),
            ));
        }
        Self::open_inner(cfg, Some(steering))
    }

    fn open_inner(cfg: &XdpConfig, steering: Option<Arc<SharedSteering>>) -> io::Result<XdpStack> {
        // The clearest error for a missing interface.
        ifindex(&cfg.interface)?;
        let queues = rx_queues(&cfg.interface)?;
        if cfg.queue >= queues {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} has {queues} RX queue(s); queue {} does not exist",
                    cfg.interface, cfg.queue
                ),
            ));
        }
        let mac = mac_address(&cfg.interface)?;
        let facts = MemFacts::read();
        let plan = umem::plan(cfg.frames, cfg.frame_size, cfg.huge_pages, &facts)?;
        if plan.limited_by_memlock {
            log::warn!(
                "{}: no CAP_IPC_LOCK; UMEM lowered to {} frames to fit RLIMIT_MEMLOCK",
                cfg.interface,
                plan.frames
            );
        }
        let link_mtu = interface_mtu(&cfg.interface)?;
        let mtu = effective_mtu(cfg, link_mtu);
        let device = XskDevice::open(
            &cfg.interface,
            cfg.queue,
            &plan,
            cfg.bind,
            mtu,
            cfg.multi_buffer,
            BUSY_FOR,
        )
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::EBUSY) {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{} queue {} is busy (another AF_XDP socket holds it): {e}",
                        cfg.interface, cfg.queue
                    ),
                )
            } else {
                e
            }
        })?;
        let mut device = Impaired::new(device);
        device.set(cfg.impair);
        device.get_mut().set_local_ip(cfg.local_ip);
        // Lowered to one frame where the kernel refused multi-buffer mode.
        let mtu = device.get_ref().mtu();
        let steering = match steering {
            Some(s) => s,
            None => {
                // Multi-buffer aware whenever the link needs it, even where the stack's own MTU
                // does not.
                let frags = device.get_ref().multi_buffer()
                    || super::steering_needs_frags(link_mtu, cfg.frame_size, cfg.multi_buffer);
                Arc::new(SharedSteering::attach(
                    &cfg.interface,
                    &[cfg.local_ip],
                    cfg.steer,
                    cfg.kernel_arp,
                    cfg.attach,
                    frags,
                )?)
            }
        };
        // From here on the program sends this queue's packets to this socket (before, to the
        // kernel: `bpf_redirect_map` falls back to XDP_PASS for an empty slot). The kernel removes
        // the entry when the socket closes.
        steering
            .link
            .map()
            .insert(cfg.queue, device.get_ref().fd())?;

        let epoch = StdInstant::now();
        let mut config = Config::new(HardwareAddress::Ethernet(mac));
        config.random_seed = seed();
        let mut iface = Interface::new(config, &mut device, Instant::from_micros(0));
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::Ipv4(Ipv4Cidr::new(cfg.local_ip, cfg.prefix_len)));
        });
        if let Some(gw) = cfg.gateway {
            iface
                .routes_mut()
                .add_default_ipv4_route(gw)
                .map_err(|_| io::Error::other("route table full"))?;
        }
        let sockets = Sockets::new(
            cfg.socket_buffer,
            cfg.max_connections,
            cfg.huge_pages,
            &facts,
        );
        // One read buffer per connection, twice over: a reconnect may build its client before the
        // old one is gone. Entered on this (the IO) thread, where the clients over this stack's
        // streams are built; left when the stack drops.
        let read_pool = if cfg.huge_pages {
            BufPool::on_huge_pages(cfg.max_connections.saturating_mul(2), READ_SLOT)
        } else {
            None
        };
        if let Some(pool) = &read_pool {
            pool.enter();
        }
        let info = StackInfo {
            umem: plan,
            bind: device.get_ref().bind_mode(),
            attach: steering.attach_mode(),
            buffers_on_huge_pages: sockets.on_huge_pages(),
            read_buffers_on_huge_pages: read_pool.is_some(),
        };
        let (first, last) = match cfg.steer {
            SteerMode::SharedIp { first, last } => (first, last),
            SteerMode::DedicatedIp => cfg.port_range,
        };
        log::info!(
            "AF_XDP on {} queue {}: {} mode, {:?} attach, {} frames of {} B{}, stack {}/{}, MTU {}{}; \
             socket buffers {}, read buffers {}",
            cfg.interface,
            cfg.queue,
            match info.bind {
                BindMode::Copy => "copy",
                BindMode::ZeroCopy => "zero-copy",
            },
            info.attach,
            plan.frames,
            plan.frame_size,
            if plan.huge_pages {
                " on huge pages"
            } else {
                ""
            },
            cfg.local_ip,
            cfg.prefix_len,
            mtu,
            if device.get_ref().multi_buffer() {
                " (multi-buffer)"
            } else {
                ""
            },
            on_pages(info.buffers_on_huge_pages),
            on_pages(info.read_buffers_on_huge_pages),
        );
        Ok(XdpStack {
            inner: Rc::new(RefCell::new(StackInner {
                sockets,
                read_pool,
                iface,
                device,
                steering,
                epoch,
                local: cfg.local_ip,
                ports: PortAllocator::new(first, last, seed()),
                closing: Vec::new(),
                ack_delay: cfg.ack_delay,
                selector_driven: false,
                info,
                neighbors: match cfg.steer {
                    SteerMode::SharedIp { .. } => {
                        Some(Neighbors::new(&cfg.interface, mac, cfg.local_ip))
                    }
                    SteerMode::DedicatedIp if cfg.kernel_arp => {
                        Some(Neighbors::new(&cfg.interface, mac, cfg.local_ip))
                    }
                    SteerMode::DedicatedIp => None,
                },
                subnet: Ipv4Cidr::new(cfg.local_ip, cfg.prefix_len),
                gateway: cfg.gateway,
            })),
        })
    }

    /// Runs the stack once: receive, timers, transmit, then the ring maintenance. Returns `true`
    /// when a socket's state may have changed.
    pub fn poll(&self) -> io::Result<bool> {
        self.inner.borrow_mut().poll()
    }

    /// What the stack runs with.
    pub fn info(&self) -> StackInfo {
        self.inner.borrow().info
    }

    /// The stack's IPv4 address.
    pub fn local_ip(&self) -> Ipv4Addr {
        self.inner.borrow().local
    }

    /// The huge-page pool of the protocol clients' read buffers, sized for this stack's
    /// connections (`None` without huge pages). It is entered on the stack's thread at open
    /// ([`BufPool::enter`]), so clients built there use it; hand it to [`crate::buf::HotBuf::in_pool`]
    /// to place other buffers in it.
    pub fn read_pool(&self) -> Option<BufPool> {
        self.inner.borrow().read_pool.clone()
    }

    /// Packet counters of the device.
    pub fn counters(&self) -> DeviceCounters {
        let inner = self.inner.borrow();
        let (impaired_drops, impaired_reorders) = inner.device.counts();
        DeviceCounters {
            impaired_drops,
            impaired_reorders,
            ..inner.device.get_ref().counters()
        }
    }

    /// The interface index the steering program is attached to.
    pub fn ifindex(&self) -> u32 {
        self.inner.borrow().steering.ifindex()
    }

    /// Declares that something (the [`crate::select::XdpSelector`], or a tool's own loop) polls
    /// the stack regularly: its streams then stop polling it from their reads and writes.
    pub fn set_selector_driven(&self, driven: bool) {
        self.inner.borrow_mut().selector_driven = driven;
    }

    /// Sockets in the set (open, connecting and closing).
    pub fn socket_count(&self) -> usize {
        self.inner.borrow().sockets.count()
    }
}

impl Drop for StackInner {
    fn drop(&mut self) {
        if let Some(pool) = &self.read_pool {
            // Buffers still in it keep it mapped; new ones no longer come from it.
            pool.leave();
        }
    }
}

impl StackInner {
    pub(crate) fn poll(&mut self) -> io::Result<bool> {
        let wall = StdInstant::now();
        if let Some(n) = self.neighbors.as_mut() {
            n.poll(self.device.get_mut(), wall);
        }
        let now = Instant::from_micros(wall.duration_since(self.epoch).as_micros() as i64);
        let mut changed = self
            .iface
            .poll(now, &mut self.device, self.sockets.set_mut())
            == smoltcp::iface::PollResult::SocketStateChanged;
        // smoltcp sends at most one segment per socket per egress round: keep going while rounds
        // emit, so a window's worth of segments leaves with one TX kick instead of one each.
        let mut rounds = 0;
        while rounds < EGRESS_ROUNDS
            && self
                .iface
                .poll_egress(now, &mut self.device, self.sockets.set_mut())
                == smoltcp::iface::PollResult::SocketStateChanged
        {
            changed = true;
            rounds += 1;
        }
        self.device.settle(now);
        self.device.get_mut().flush()?;
        if !self.closing.is_empty() {
            self.reap_closed();
        }
        Ok(changed)
    }

    pub(crate) fn selector_driven(&self) -> bool {
        self.selector_driven
    }

    /// Creates a TCP socket connecting to `remote` from a free local port.
    pub(crate) fn open_socket(
        &mut self,
        remote: std::net::SocketAddrV4,
    ) -> io::Result<(SocketHandle, u16)> {
        let port = self.ports.take().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                "every local port of the stack's range is in use",
            )
        })?;
        let ack_delay = self.ack_delay.map(to_smol);
        let cx = self.iface.context();
        let local = self.local;
        let added = self.sockets.add(|socket| {
            socket.set_nagle_enabled(false);
            socket.set_ack_delay(ack_delay);
            socket.connect(cx, (*remote.ip(), remote.port()), (local, port))
        });
        let handle = match added {
            Ok(handle) => handle,
            Err(e) => {
                self.ports.give_back(port);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("connect to {remote}: {e}"),
                ));
            }
        };
        if let Some(n) = self.neighbors.as_mut() {
            let to = *remote.ip();
            let hop = match self.gateway {
                Some(gw) if !self.subnet.contains_addr(&to) => gw,
                _ => to,
            };
            n.attach(handle, hop, StdInstant::now());
        }
        Ok((handle, port))
    }

    pub(crate) fn socket(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut(handle)
    }

    /// Closes a socket whose stream was dropped: a FIN if it is open, removal once done.
    pub(crate) fn release(&mut self, handle: SocketHandle, port: u16) {
        let socket = self.socket(handle);
        if socket.is_open() && socket.state() != tcp::State::Closed {
            socket.close();
            let until = StdInstant::now() + LINGER;
            self.closing.push((handle, port, until));
        } else {
            self.remove(handle, port);
        }
    }

    fn remove(&mut self, handle: SocketHandle, port: u16) {
        self.sockets.remove(handle);
        if let Some(n) = self.neighbors.as_mut() {
            n.detach(handle);
        }
        self.ports.give_back(port);
    }

    fn reap_closed(&mut self) {
        let now = StdInstant::now();
        let mut i = 0;
        while i < self.closing.len() {
            let (handle, port, until) = self.closing[i];
            let state = self.socket(handle).state();
            let done = matches!(state, tcp::State::Closed | tcp::State::TimeWait);
            if done || now >= until {
                self.closing.swap_remove(i);
                self.remove(handle, port);
            } else {
                i += 1;
            }
        }
    }
}

fn on_pages(huge: bool) -> &'static str {
    if huge {
        "on huge pages"
    } else {
        "on ordinary pages"
    }
}

fn to_smol(d: Duration) -> smoltcp::time::Duration {
    smoltcp::time::Duration::from_micros(d.as_micros() as u64)
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ (u64::from(std::process::id()) << 32)) | 1
}

/// Adds `first-last` to `net.ipv4.ip_local_reserved_ports` (of this network namespace) unless it
/// is already covered, so the kernel never picks those ports for its own connections, whose replies
/// the steering program would take away from it.
fn reserve_ports(first: u16, last: u16) -> io::Result<()> {
    const PATH: &str = "/proc/sys/net/ipv4/ip_local_reserved_ports";
    let current = std::fs::read_to_string(PATH)?;
    let covered = current.trim().split(',').any(|r| {
        let (a, b) = r.split_once('-').unwrap_or((r, r));
        matches!((a.trim().parse::<u16>(), b.trim().parse::<u16>()), (Ok(a), Ok(b)) if a <= first && last <= b)
    });
    if covered {
        return Ok(());
    }
    let mut value = current.trim().to_owned();
    if !value.is_empty() {
        value.push(',');
    }
    value.push_str(&format!("{first}-{last}"));
    std::fs::write(PATH, value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot reserve ports {first}-{last} in {PATH}: {e}"),
        )
    })?;
    log::info!("reserved ports {first}-{last} in {PATH} for the XDP stack");
    Ok(())
}

/// Local ports of the stack's range: random start, then sequential, skipping those in use.
#[derive(Debug)]
struct PortAllocator {
    first: u16,
    last: u16,
    next: u16,
    used: HashSet<u16>,
}

impl PortAllocator {
    fn new(first: u16, last: u16, seed: u64) -> PortAllocator {
        let span = u64::from(last - first) + 1;
        PortAllocator {
            first,
            last,
            next: first + (seed % span) as u16,
            used: HashSet::new(),
        }
    }

    fn take(&mut self) -> Option<u16> {
        let span = u32::from(self.last - self.first) + 1;
        for _ in 0..span {
            let p = self.next;
            self.next = if p == self.last { self.first } else { p + 1 };
            if self.used.insert(p) {
                return Some(p);
            }
        }
        None
    }

    fn give_back(&mut self, port: u16) {
        self.used.remove(&port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtu_follows_the_link_and_the_frame() {
        let mut cfg = XdpConfig::new("hw0", Ipv4Addr::new(10, 0, 0, 3), 24);
        assert_eq!(
            effective_mtu(&cfg, 1500),
            1500,
            "the interface's by default"
        );
        assert_eq!(effective_mtu(&cfg, 9000), 9000, "multi-buffer: 3 frames");
        assert_eq!(effective_mtu(&cfg, 65535), 61426, "16 frames at most");
        cfg.multi_buffer = false;
        assert_eq!(effective_mtu(&cfg, 9000), 3826, "a 4 KiB frame holds 3826");
        cfg.mtu = Some(1400);
        assert_eq!(effective_mtu(&cfg, 1500), 1400);
        cfg.mtu = Some(3500);
        assert_eq!(effective_mtu(&cfg, 1500), 1500, "never above the link");
        cfg.frame_size = 2048;
        assert_eq!(effective_mtu(&cfg, 3500), 1778);
    }

    #[test]
    fn ports_cycle_through_the_range_without_reuse() {
        let mut p = PortAllocator::new(40000, 40003, 7);
        let mut got: Vec<u16> = (0..4).map(|_| p.take().unwrap()).collect();
        assert_eq!(p.take(), None);
        got.sort_unstable();
        assert_eq!(got, [40000, 40001, 40002, 40003]);
        p.give_back(40002);
        assert_eq!(p.take(), Some(40002));
    }
}
