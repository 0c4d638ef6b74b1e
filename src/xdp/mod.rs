//! Kernel bypass: a userspace TCP/IP stack (smoltcp) on AF_XDP sockets (xsk-rs).
//!
//! ```text
//!  XdpStream ──► XdpStack (Interface + SocketSet, one per IO thread) ──► XskDevice (phy::Device)
//!                                                                        │ UMEM, fill/comp/rx/tx rings
//!  NIC queue ──► steering XDP program (BPF link) ──► XSK map ──► AF_XDP socket
//!                    └─ everything not ours ──► kernel
//! ```
//!
//! - [`umem`]: UMEM sizing (memlock, huge pages); `sockets`: the TCP sockets with the huge-page
//!   arena their buffers live in, one type.
//! - [`csum`]: TCP checksums done by the device (checksum offload, as a NIC does it).
//! - [`device`]: the smoltcp `phy::Device` whose tokens are UMEM frames (AF_XDP, Linux
//!   `Documentation/networking/af_xdp.rst`: fill, completion, RX and TX rings; need-wakeup).
//! - [`rx`]: the device's receive path without the socket (injected frames, assembly, admission),
//!   also run by the `xdp_rx` fuzz target; [`multibuf`]: packets spanning frames.
//! - [`impair`]: deliberate loss and reordering, a device wrapping the device.
//! - `neigh`: next hops learned from the kernel's neighbour table (shared-IP mode).
//! - [`steer`]: the steering program, assembled in Rust and attached through a BPF link; [`steer::sim`]
//!   runs it in userspace (fuzzing).
//! - [`stack`]: `Interface` + `SocketSet` + poll, shared by every connection of a thread.
//! - [`stream`]: [`XdpStream`], a TCP connection satisfying [`crate::stream::Stream`] (RFC 9293
//!   semantics are smoltcp's).
//! - [`fallback`]: opening the stack or saying, once, why the kernel path is used instead.
//!
//! The selector that polls the stack on a busy-polling IO thread is [`crate::select::XdpSelector`].

use std::net::Ipv4Addr;
use std::time::Duration;

pub mod csum;
pub mod device;
pub mod fallback;
pub mod impair;
pub mod multibuf;
mod neigh;
pub mod rx;
mod sockets;
pub mod stack;
pub mod steer;
pub mod stream;
pub mod umem;

pub use device::BindMode;
pub use fallback::{attach_or_fallback, open_or_fallback, open_with_or_fallback, Unavailable};
pub use impair::Impairment;
pub use stack::{SharedSteering, StackInfo, XdpStack};
pub use steer::{AttachMode, SteerMode};
pub use stream::XdpStream;

/// Everything needed to bring up a stack on one (interface, queue).
#[derive(Debug, Clone, PartialEq)]
pub struct XdpConfig {
    /// The interface (`hwc0`, `eth1`).
    pub interface: String,
    /// Its RX queue to bind (the queue the NIC steers our flows to).
    pub queue: u32,
    /// The stack's IPv4 address.
    pub local_ip: Ipv4Addr,
    /// Its prefix length (on-link neighbours are resolved with ARP directly).
    pub prefix_len: u8,
    /// The next hop for everything off-link.
    pub gateway: Option<Ipv4Addr>,
    /// What the steering program diverts.
    pub steer: SteerMode,
    /// Local ports for connections in dedicated-IP mode (shared-IP mode uses the steering range).
    pub port_range: (u16, u16),
    /// Native or generic XDP.
    pub attach: AttachMode,
    /// Copy or zero-copy (with fallback to copy).
    pub bind: BindMode,
    /// UMEM frames (lowered to fit `RLIMIT_MEMLOCK` without `CAP_IPC_LOCK`).
    pub frames: u32,
    /// Bytes per UMEM frame (power of two, 2048 or more).
    pub frame_size: u32,
    /// Put the UMEM and socket buffers on huge pages when enough are free.
    pub huge_pages: bool,
    /// IP MTU. `None`: the interface's. Either way it is capped to the interface's MTU and to what
    /// a frame holds after the kernel's 256-byte headroom ([`max_mtu`]), or with
    /// [`XdpConfig::multi_buffer`] to what [`MAX_FRAGS`] frames hold ([`max_mtu_multi_buffer`]).
    pub mtu: Option<usize>,
    /// Let a packet span several UMEM frames (AF_XDP multi-buffer, `XDP_USE_SG`, Linux 6.6 and
    /// later) when the MTU is larger than one frame holds: jumbo frames with 4 KiB frames. Used
    /// only when the MTU needs it; where the kernel refuses it, the MTU is capped to one frame and
    /// the log says so.
    pub multi_buffer: bool,
    /// Receive and send buffer of each TCP connection, bytes.
    pub socket_buffer: usize,
    /// Connections the huge-page buffer arena is sized for (more use ordinary memory).
    pub max_connections: usize,
    /// Delayed ACK: an ACK waits this long for outgoing data to ride on. `None` ACKs at once.
    pub ack_delay: Option<Duration>,
    /// Deliberate loss and reordering (tests on kernels without netem). `None` in production.
    pub impair: Option<Impairment>,
    /// Leave ARP to the kernel in dedicated-IP mode too, and learn next hops from its neighbour
    /// table, as shared-IP mode always does. Needed when several stacks share the interface, each
    /// on its own queue: an ARP packet lands on whatever queue the NIC picks (n-tuple rules match
    /// IP flows, not ARP), so no one stack can own it. The kernel must then answer ARP for the
    /// stack's address: make it a local address of the interface (`ip addr add A.B.C.D/32 dev
    /// IF`); packets to it still never reach the kernel, the steering program takes them first.
    pub kernel_arp: bool,
}

impl XdpConfig {
    /// Defaults for `interface` and the stack address `local_ip/prefix_len`: queue 0, dedicated IP,
    /// native attach, copy mode, 4096 frames of 4 KiB, huge pages when free, 256 KiB buffers, the
    /// interface's MTU.
    pub fn new(interface: impl Into<String>, local_ip: Ipv4Addr, prefix_len: u8) -> XdpConfig {
        XdpConfig {
            interface: interface.into(),
            queue: 0,
            local_ip,
            prefix_len,
            gateway: None,
            steer: SteerMode::DedicatedIp,
            port_range: (32768, 60999),
            attach: AttachMode::Native,
            bind: BindMode::Copy,
            frames: 4096,
            frame_size: 4096,
            huge_pages: true,
            mtu: None,
            multi_buffer: true,
            socket_buffer: 256 * 1024,
            max_connections: 64,
            ack_delay: Some(Duration::from_millis(1)),
            impair: None,
            kernel_arp: false,
        }
    }
}

/// Packet bytes a UMEM frame of `frame_size` bytes holds: the kernel puts packets 256 bytes
/// (`XDP_PACKET_HEADROOM`) into the frame.
pub const fn frame_capacity(frame_size: u32) -> usize {
    frame_size as usize - 256
}

/// The largest IP MTU a UMEM frame of `frame_size` bytes holds (the Ethernet header takes 14 bytes
/// of [`frame_capacity`]).
pub const fn max_mtu(frame_size: u32) -> usize {
    frame_capacity(frame_size) - 14
}

/// The most UMEM frames one packet may span in multi-buffer mode (the kernel builds a sent
/// packet from at most 17 descriptors, `MAX_SKB_FRAGS` + 1).
pub const MAX_FRAGS: usize = 16;

/// The largest IP MTU [`MAX_FRAGS`] frames of `frame_size` bytes hold in multi-buffer mode.
pub const fn max_mtu_multi_buffer(frame_size: u32) -> usize {
    let mtu = MAX_FRAGS * frame_capacity(frame_size) - 14;
    if mtu > 65535 {
        65535
    } else {
        mtu
    }
}

/// The largest IP MTU the stack takes: what one frame holds, or with `multi_buffer` what
/// [`MAX_FRAGS`] frames hold.
pub const fn mtu_limit(frame_size: u32, multi_buffer: bool) -> usize {
    if multi_buffer {
        max_mtu_multi_buffer(frame_size)
    } else {
        max_mtu(frame_size)
    }
}

/// The UMEM frames a packet of IP MTU `mtu` spans.
pub const fn frames_per_packet(mtu: usize, frame_size: u32) -> usize {
    (mtu + 14).div_ceil(frame_capacity(frame_size))
}

/// Whether the steering program must be loaded multi-buffer aware on a link of MTU `link_mtu`:
/// native XDP refuses a link whose MTU is more than a frame a program without the flag (the
/// program only reads headers, so it is correct either way).
pub const fn steering_needs_frags(link_mtu: usize, frame_size: u32, multi_buffer: bool) -> bool {
    multi_buffer && link_mtu > max_mtu(frame_size)
}

/// Parses `A.B.C.D/NN`.
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not A.B.C.D/NN"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| (1..=32).contains(l))
        .ok_or_else(|| format!("prefix length {len:?} is not 1..32"))?;
    Ok((ip, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_rejects() {
        assert_eq!(
            parse_cidr("10.77.0.3/24"),
            Ok((Ipv4Addr::new(10, 77, 0, 3), 24))
        );
        assert!(parse_cidr("10.77.0.3").is_err());
        assert!(parse_cidr("10.77.0/24").is_err());
        assert!(parse_cidr("10.77.0.3/33").is_err());
        assert!(parse_cidr("10.77.0.3/0").is_err());
    }
}
