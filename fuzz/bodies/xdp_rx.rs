// The XDP device's receive path on arbitrary Ethernet frames: shared by the cargo-fuzz target
// (fuzz/fuzz_targets/xdp_rx.rs) and the corpus replay in `cargo test` (tests/fuzz_corpora.rs).
//
// Each packet goes where it would on the machine: through the steering program (run by
// `hotwire::xdp::steer::sim`), cut into UMEM-frame pieces as a multi-buffer socket receives it,
// through the device's receive path (`hotwire::xdp::rx`: injected frames, assembly, admission),
// and then into a smoltcp interface with a connecting and a listening TCP socket, whose replies get
// the device's checksums. Nothing may panic; every frame must be released once; the steering
// verdict must follow the documented rules; the path's counts must add up.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use hotwire::xdp::device::DeviceCounters;
use hotwire::xdp::rx::{Injected, Received, RxPath, RxRing, MAX_INJECTED};
use hotwire::xdp::steer::sim::{verdict, Verdict};
use hotwire::xdp::{csum, SteerMode};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Checksum, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr};

const US: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 3);
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 4);

/// Frames in memory, each released at most once.
struct Mem {
    frames: Vec<(Vec<u8>, bool)>,
    next: usize,
    released: Vec<bool>,
}

impl RxRing for Mem {
    type Desc = usize;
    fn next(&mut self) -> Option<usize> {
        (self.next < self.frames.len()).then(|| {
            self.next += 1;
            self.next - 1
        })
    }
    fn contents(&self, d: &usize) -> &[u8] {
        assert!(!self.released[*d], "frame {d} read after its release");
        &self.frames[*d].0
    }
    fn more(&self, d: &usize) -> bool {
        self.frames[*d].1
    }
    fn release(&mut self, d: usize) {
        assert!(!self.released[d], "frame {d} released twice");
        self.released[d] = true;
    }
}

/// What the documentation of `hotwire::xdp::steer` says the program does.
fn rule(frame: &[u8], ips: &[Ipv4Addr], mode: SteerMode, kernel_arp: bool) -> Verdict {
    let ours = |at: usize| ips.iter().any(|ip| frame[at..at + 4] == ip.octets());
    if frame.len() < 42 {
        return Verdict::Kernel;
    }
    let stack = match (&frame[12..14], mode) {
        ([0x08, 0x06], SteerMode::DedicatedIp) => !kernel_arp && ours(38),
        ([0x08, 0x00], SteerMode::DedicatedIp) => ours(30),
        ([0x08, 0x00], SteerMode::SharedIp { first, last }) => {
            let ihl = usize::from(frame[14] & 0x0f) * 4;
            let first_fragment = frame[20] & 0x1f == 0 && frame[21] == 0;
            let port_at = 14 + ihl + 2;
            ours(30)
                && frame[23] == 6
                && first_fragment
                && port_at + 2 <= frame.len()
                && (first..=last)
                    .contains(&u16::from_be_bytes([frame[port_at], frame[port_at + 1]]))
        }
        _ => false,
    };
    if stack {
        Verdict::Stack
    } else {
        Verdict::Kernel
    }
}

/// The packets smoltcp receives, and a sink for what it sends.
struct Wire {
    rx: VecDeque<Vec<u8>>,
    tx_buf: Vec<u8>,
    sent: u64,
}

struct WireRx(Vec<u8>);
struct WireTx<'a>(&'a mut Vec<u8>, &'a mut u64);

impl smoltcp::phy::RxToken for WireRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl smoltcp::phy::TxToken for WireTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        self.0.clear();
        self.0.resize(len, 0);
        let r = f(self.0);
        // What the device's TX token does, then what a receiver checks.
        csum::fill_tcp(self.0);
        assert!(csum::verify_tcp(self.0), "a checksum the device filled fails");
        *self.1 += 1;
        r
    }
}

impl Device for Wire {
    type RxToken<'a> = WireRx;
    type TxToken<'a> = WireTx<'a>;
    fn receive(&mut self, _: Instant) -> Option<(WireRx, WireTx<'_>)> {
        let p = self.rx.pop_front()?;
        Some((WireRx(p), WireTx(&mut self.tx_buf, &mut self.sent)))
    }
    fn transmit(&mut self, _: Instant) -> Option<WireTx<'_>> {
        Some(WireTx(&mut self.tx_buf, &mut self.sent))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 9014;
        caps.checksum.tcp = Checksum::None;
        caps
    }
}

/// Byte 0 picks the steering mode (bit 0: shared IP, bit 1: kernel ARP, bit 2: two stack
/// addresses) and bits 3-7 the assembler's capacity. Then packets: a little-endian u16 length, a
/// control byte (bit 0: fill in the TCP checksum, bit 1: lose the last frame, bit 2: inject it as
/// the neighbour code does instead of receiving it, bits 3-7: n, frames of 128 * n bytes, or one
/// frame when 0), the bytes.
pub(crate) fn run(data: &[u8]) {
    run_counted(data);
}

/// What one run went through (the corpus replay checks the seeds reach every part).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
pub(crate) struct Seen {
    /// Packets the steering program left to the kernel.
    pub(crate) to_kernel: u64,
    /// Frames injected.
    pub(crate) injected: u64,
    /// The receive path's counters.
    pub(crate) counters: DeviceCounters,
    /// Packets smoltcp sent in reply.
    pub(crate) replies: u64,
}

pub(crate) fn run_counted(data: &[u8]) -> Seen {
    let mut seen = Seen::default();
    let Some((&cfg, mut rest)) = data.split_first() else {
        return seen;
    };
    let mode = if cfg & 1 == 0 {
        SteerMode::DedicatedIp
    } else {
        SteerMode::SharedIp {
            first: 40000,
            last: 40999,
        }
    };
    let kernel_arp = cfg & 2 != 0;
    let ips: &[Ipv4Addr] = if cfg & 4 == 0 { &[US] } else { &[OTHER, US] };
    let capacity = usize::from(cfg >> 3) * 600;

    let mut ring = Mem {
        frames: Vec::new(),
        next: 0,
        released: Vec::new(),
    };
    let mut injected = Injected::default();
    let mut pushed = 0;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let ctl = rest[2];
        let take = len.min(rest.len() - 3);
        let mut packet = rest[3..3 + take].to_vec();
        rest = &rest[3 + take..];
        if ctl & 1 != 0 {
            csum::fill_tcp(&mut packet);
        }
        if ctl & 4 != 0 {
            injected.push(packet);
            pushed += 1;
            seen.injected += 1;
            assert!(injected.len() <= MAX_INJECTED.min(pushed));
            continue;
        }
        let piece = match usize::from(ctl >> 3) {
            0 => packet.len().max(1),
            n => 128 * n,
        };
        let first = &packet[..packet.len().min(piece)];
        let v = verdict(first, ips, mode, kernel_arp).unwrap_or_else(|e| panic!("steering: {e}"));
        assert_eq!(v, rule(first, ips, mode, kernel_arp), "steering of {first:02x?}");
        if v == Verdict::Kernel || packet.is_empty() {
            seen.to_kernel += u64::from(v == Verdict::Kernel);
            continue;
        }
        let mut parts: Vec<&[u8]> = packet.chunks(piece).collect();
        if ctl & 2 != 0 && parts.len() > 1 {
            parts.pop();
        }
        let n = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            ring.frames.push((part.to_vec(), i + 1 < n || ctl & 2 != 0));
            ring.released.push(false);
        }
    }
    // The packets the ring holds, as the receive path must see them: frames up to one without
    // "more follow" (or the end of the ring).
    let mut expected: Vec<Vec<u8>> = Vec::new();
    let mut open = false;
    for (bytes, more) in &ring.frames {
        if !open {
            expected.push(Vec::new());
        }
        expected.last_mut().unwrap().extend_from_slice(bytes);
        open = *more;
    }

    let mut path = RxPath::new(capacity);
    path.set_local_ip(US.octets());
    let mut counters = DeviceCounters::default();
    let mut wire = Wire {
        rx: VecDeque::new(),
        tx_buf: Vec::new(),
        sent: 0,
    };
    while let Some(frame) = injected.pop() {
        wire.rx.push_back(frame);
    }
    let mut delivered = 0;
    while let Some(got) = path.next(&mut ring, &mut counters) {
        delivered += 1;
        let packet = match got {
            Received::Frame(d) => {
                let p = ring.contents(&d).to_vec();
                ring.release(d);
                p
            }
            Received::Assembled => path.assembled().to_vec(),
        };
        assert!(
            expected.contains(&packet),
            "a packet the ring did not hold: {packet:02x?}"
        );
        assert!(csum::verify_tcp(&packet));
        wire.rx.push_back(packet);
    }
    assert!(ring.released.iter().all(|&r| r), "a frame was never released");
    assert_eq!(
        delivered + counters.rx_bad_checksum + counters.rx_broken,
        expected.len() as u64,
        "every packet is delivered, or dropped and counted: {counters:?}"
    );

    // smoltcp takes them: ARP, IPv4, TCP with whatever options, against a listening socket and a
    // connecting one.
    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress([2, 0, 0, 0, 0, 3])));
    config.random_seed = 7;
    let mut iface = Interface::new(config, &mut wire, Instant::from_millis(0));
    iface.update_ip_addrs(|a| {
        let _ = a.push(IpCidr::Ipv4(Ipv4Cidr::new(US, 24)));
    });
    let mut sockets = SocketSet::new(Vec::new());
    let mut listener = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 4096]),
        tcp::SocketBuffer::new(vec![0; 4096]),
    );
    listener.listen(40000).unwrap();
    let mut client = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 4096]),
        tcp::SocketBuffer::new(vec![0; 4096]),
    );
    client
        .connect(iface.context(), (Ipv4Addr::new(10, 77, 1, 2), 7000), (US, 40001))
        .unwrap();
    let listening = sockets.add(listener);
    let connecting = sockets.add(client);
    let mut ms = 0;
    while !wire.rx.is_empty() || ms < 4 {
        iface.poll(Instant::from_millis(ms), &mut wire, &mut sockets);
        ms += 1;
        assert!(ms < 100_000, "smoltcp stopped reading");
    }
    let mut buf = [0u8; 4096];
    for h in [listening, connecting] {
        let s = sockets.get_mut::<tcp::Socket>(h);
        while s.can_recv() {
            match s.recv_slice(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    seen.counters = counters;
    seen.replies = wire.sent;
    seen
}
