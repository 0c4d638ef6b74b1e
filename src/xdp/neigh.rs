//! Next hops in shared-IP mode, learned from the kernel's neighbour table.
//!
//! When the stack shares the kernel's address, ARP for that address must stay with the kernel: it
//! answers requests for it (with the same MAC the stack uses) and needs the replies to resolve its
//! own neighbours. So the steering program passes ARP to the kernel in that mode, and the stack
//! learns the MAC of each next hop it sends to from `/proc/net/arp` (of its network namespace) and
//! hands smoltcp an ARP reply built from it ([`super::device::XskDevice::inject`]). A next hop the
//! kernel has not resolved yet is resolved by the kernel on request: a zero-length UDP datagram to
//! its discard port (9) from an ordinary socket makes the kernel send its ARP request.
//!
//! A next hop is remembered while a socket of the stack uses it and forgotten with its last one.
//! An unresolved hop is looked up again after 1 ms, doubling to [`PENDING_MAX`] (a connect to a
//! dead host costs a few table reads, not a thousand a second), and the kernel is asked again
//! every [`REKICK`]. A known hop is re-read every [`REREAD`], so a changed MAC (a failed-over
//! gateway) reaches the stack within that time, and injected when it changes and every
//! [`REINJECT`], well inside smoltcp's 60 s neighbour lifetime. The table is read into a buffer
//! kept between reads.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use smoltcp::iface::SocketHandle;
use smoltcp::wire::EthernetAddress;

use super::device::XskDevice;

/// How often a known next hop is looked up again.
const REREAD: Duration = Duration::from_secs(1);
/// How often an unchanged next hop is injected again.
const REINJECT: Duration = Duration::from_secs(20);
/// The first re-read of an unresolved next hop; each later one waits twice as long...
const PENDING_FIRST: Duration = Duration::from_millis(1);
/// ...up to this.
const PENDING_MAX: Duration = Duration::from_millis(500);
/// How often the kernel is asked again to resolve a next hop.
const REKICK: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Hop {
    ip: Ipv4Addr,
    /// Sockets sending through this hop.
    users: u32,
    known: Option<EthernetAddress>,
    /// When its MAC was last injected.
    injected: Option<Instant>,
    /// When to read the table for this hop next.
    due: Instant,
    /// The wait before the read after that, while unresolved.
    backoff: Duration,
    kicked: Option<Instant>,
}

/// The next hops of a shared-IP stack.
#[derive(Debug)]
pub(crate) struct Neighbors {
    ifname: String,
    our_mac: EthernetAddress,
    our_ip: Ipv4Addr,
    hops: Vec<Hop>,
    /// The next hop of each socket.
    of_socket: Vec<(SocketHandle, Ipv4Addr)>,
    /// The earliest `due` of all hops.
    next_check: Instant,
    probe: Option<UdpSocket>,
    /// The text of `/proc/net/arp`, kept between reads.
    table: String,
}

impl Neighbors {
    pub(crate) fn new(ifname: &str, our_mac: EthernetAddress, our_ip: Ipv4Addr) -> Neighbors {
        Neighbors {
            ifname: ifname.to_owned(),
            our_mac,
            our_ip,
            hops: Vec::new(),
            of_socket: Vec::new(),
            next_check: Instant::now() + REREAD,
            probe: None,
            table: String::new(),
        }
    }

    /// Socket `socket` sends through next hop `ip`: remember it and learn it at the next poll.
    pub(crate) fn attach(&mut self, socket: SocketHandle, ip: Ipv4Addr, now: Instant) {
        self.detach(socket);
        self.of_socket.push((socket, ip));
        if let Some(hop) = self.hops.iter_mut().find(|h| h.ip == ip) {
            hop.users += 1;
            return;
        }
        self.hops.push(Hop {
            ip,
            users: 1,
            known: None,
            injected: None,
            due: now,
            backoff: PENDING_FIRST,
            kicked: None,
        });
        self.next_check = now;
    }

    /// Socket `socket` is gone: its next hop is forgotten when no other socket uses it.
    pub(crate) fn detach(&mut self, socket: SocketHandle) {
        let Some(at) = self.of_socket.iter().position(|(s, _)| *s == socket) else {
            return;
        };
        let (_, ip) = self.of_socket.swap_remove(at);
        if let Some(at) = self.hops.iter().position(|h| h.ip == ip) {
            self.hops[at].users -= 1;
            if self.hops[at].users == 0 {
                self.hops.swap_remove(at);
            }
        }
    }

    /// Next hops remembered (tests).
    #[cfg(test)]
    fn hop_count(&self) -> usize {
        self.hops.len()
    }

    /// Reads the kernel's table when a hop is due and injects what changed or needs refreshing.
    pub(crate) fn poll(&mut self, device: &mut XskDevice, now: Instant) {
        if now < self.next_check {
            return;
        }
        let mut table = std::mem::take(&mut self.table);
        table.clear();
        if let Ok(mut f) = std::fs::File::open("/proc/net/arp") {
            use std::io::Read;
            if f.read_to_string(&mut table).is_err() {
                table.clear();
            }
        }
        self.check(&table, now, |frame| device.inject(frame));
        self.table = table;
    }

    /// One check against `table` (the text of `/proc/net/arp`) at `now`: `inject` gets the ARP
    /// replies to hand smoltcp.
    fn check(&mut self, table: &str, now: Instant, mut inject: impl FnMut(Vec<u8>)) {
        let mut next = now + REREAD;
        for i in 0..self.hops.len() {
            if self.hops[i].due <= now {
                let ip = self.hops[i].ip;
                match lookup(table, &self.ifname, ip) {
                    Some(mac) => {
                        let hop = &mut self.hops[i];
                        let changed = hop.known != Some(mac);
                        if changed {
                            log::info!(
                                "{}: next hop {ip} is at {mac} (the kernel's neighbour table)",
                                self.ifname
                            );
                        }
                        hop.known = Some(mac);
                        hop.kicked = None;
                        hop.backoff = PENDING_FIRST;
                        hop.due = now + REREAD;
                        let stale = hop
                            .injected
                            .is_none_or(|t| now.duration_since(t) >= REINJECT);
                        if changed || stale {
                            hop.injected = Some(now);
                            inject(arp_reply(self.our_mac, self.our_ip, mac, ip));
                        }
                    }
                    None => {
                        // Unresolved, or no longer in the table (the kernel expired it): what
                        // smoltcp knows stays valid until it ages out; ask the kernel again.
                        let kick = self.hops[i]
                            .kicked
                            .is_none_or(|t| now.duration_since(t) >= REKICK);
                        if kick {
                            self.kick(ip);
                            self.hops[i].kicked = Some(now);
                        }
                        let hop = &mut self.hops[i];
                        hop.due = now + hop.backoff;
                        hop.backoff = (hop.backoff * 2).min(PENDING_MAX);
                    }
                }
            }
            next = next.min(self.hops[i].due);
        }
        self.next_check = next;
    }

    /// Makes the kernel resolve `ip`: one empty datagram to its discard port.
    fn kick(&mut self, ip: Ipv4Addr) {
        if self.probe.is_none() {
            self.probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok();
        }
        let sent = self
            .probe
            .as_ref()
            .map(|s| s.send_to(&[], SocketAddrV4::new(ip, 9)));
        if let Some(Err(e)) = sent {
            log::warn!(
                "{}: cannot ask the kernel to resolve {ip}: {e}",
                self.ifname
            );
        }
    }
}

/// The MAC of `ip` on `ifname` in `/proc/net/arp` text, if the entry is complete.
fn lookup(table: &str, ifname: &str, ip: Ipv4Addr) -> Option<EthernetAddress> {
    // IP address  HW type  Flags  HW address  Mask  Device
    table.lines().skip(1).find_map(|line| {
        let mut f = line.split_whitespace();
        let (addr, _hw, flags, mac, _mask, dev) = (
            f.next()?,
            f.next()?,
            f.next()?,
            f.next()?,
            f.next()?,
            f.next()?,
        );
        if f.next().is_some() {
            return None;
        }
        let complete = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()? & 0x2 != 0;
        if dev != ifname || !complete || addr.parse::<Ipv4Addr>().ok()? != ip {
            return None;
        }
        let mac = parse_mac(mac)?;
        (mac.is_unicast() && mac != EthernetAddress([0; 6])).then_some(mac)
    })
}

fn parse_mac(s: &str) -> Option<EthernetAddress> {
    let mut bytes = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut bytes {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(EthernetAddress(bytes))
}

/// An Ethernet frame carrying the ARP reply "`their_ip` is at `their_mac`", addressed to us.
fn arp_reply(
    our_mac: EthernetAddress,
    our_ip: Ipv4Addr,
    their_mac: EthernetAddress,
    their_ip: Ipv4Addr,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(our_mac.as_bytes());
    f.extend_from_slice(their_mac.as_bytes());
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02]); // Ethernet/IPv4, reply
    f.extend_from_slice(their_mac.as_bytes());
    f.extend_from_slice(&their_ip.octets());
    f.extend_from_slice(our_mac.as_bytes());
    f.extend_from_slice(&our_ip.octets());
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol};

    const TABLE: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
10.77.1.1        0x1         0x2         aa:bb:cc:00:11:22     *        hwc0
10.77.1.9        0x1         0x0         00:00:00:00:00:00     *        hwc0
10.0.0.1         0x1         0x2         de:ad:be:ef:00:01     *        eth0
10.77.1.7        0x1         0x6         02:00:00:00:00:07     *        hwc0
";

    #[test]
    fn complete_entries_of_our_interface_only() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            lookup(TABLE, "hwc0", ip("10.77.1.1")),
            Some(EthernetAddress([0xaa, 0xbb, 0xcc, 0x00, 0x11, 0x22]))
        );
        assert_eq!(lookup(TABLE, "hwc0", ip("10.77.1.9")), None, "incomplete");
        assert_eq!(lookup(TABLE, "hwc0", ip("10.0.0.1")), None, "other device");
        assert_eq!(lookup(TABLE, "hwc0", ip("10.77.1.5")), None, "absent");
        assert!(
            lookup(TABLE, "hwc0", ip("10.77.1.7")).is_some(),
            "permanent"
        );
        assert_eq!(lookup("", "hwc0", ip("10.77.1.1")), None);
        assert_eq!(lookup("header\n1 2 3\n", "hwc0", ip("10.77.1.1")), None);
        assert_eq!(parse_mac("aa:bb:cc:00:11"), None);
        assert_eq!(parse_mac("aa:bb:cc:00:11:22:33"), None);
    }

    /// Two socket handles (a set of two sockets) for the bookkeeping tests.
    fn two_handles() -> (SocketHandle, SocketHandle) {
        use smoltcp::socket::tcp;
        let mut set = smoltcp::iface::SocketSet::new(vec![]);
        let mut add = || {
            set.add(tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 16]),
                tcp::SocketBuffer::new(vec![0; 16]),
            ))
        };
        (add(), add())
    }

    fn neighbors() -> Neighbors {
        Neighbors::new(
            "hwc0",
            EthernetAddress([2, 0, 0, 0, 0, 1]),
            Ipv4Addr::new(127, 0, 0, 1),
        )
    }

    // Next hops on loopback: the kernel is asked to resolve them with a datagram to port 9, and
    // only loopback may carry a unit test's traffic.
    const LOOPBACK_TABLE: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
127.0.0.77       0x1         0x2         02:00:00:00:00:77     *        hwc0
";

    #[test]
    fn an_unresolved_hop_is_read_with_backoff_and_a_known_one_injected_once() {
        let (a, b) = two_handles();
        let mut n = neighbors();
        let t0 = Instant::now();
        let pending = Ipv4Addr::new(127, 0, 0, 99);
        let known = Ipv4Addr::new(127, 0, 0, 77);
        n.attach(a, pending, t0);
        n.attach(b, known, t0);
        // Poll every 100 µs for 3 s: the pending hop is read with a doubling wait (1, 2, 4 ms...,
        // then every 500 ms), not 30 000 times; the known one is read every second but injected
        // on the first check only.
        let (mut checks, mut injected) = (0, Vec::new());
        let mut t = t0;
        while t < t0 + Duration::from_secs(3) {
            if t >= n.next_check {
                checks += 1;
                n.check(LOOPBACK_TABLE, t, |f| injected.push(f));
            }
            t += Duration::from_micros(100);
        }
        assert!((9..=20).contains(&checks), "{checks} table reads in 3 s");
        assert_eq!(injected.len(), 1, "the known hop is injected once");
        let eth = smoltcp::wire::EthernetFrame::new_checked(&injected[0][..]).unwrap();
        assert_eq!(eth.src_addr(), EthernetAddress([2, 0, 0, 0, 0, 0x77]));
        // It is read again every second but injected again only when due.
        n.check(LOOPBACK_TABLE, t0 + REINJECT - REREAD, |f| injected.push(f));
        assert_eq!(injected.len(), 1);
        n.check(LOOPBACK_TABLE, t0 + REINJECT, |f| injected.push(f));
        assert_eq!(injected.len(), 2);
        // A changed MAC is injected at the hop's next read, a second later.
        let moved = LOOPBACK_TABLE.replace("02:00:00:00:00:77", "02:00:00:00:00:78");
        let t = t0 + REINJECT + REREAD;
        assert!(n.next_check <= t);
        n.check(&moved, t, |f| injected.push(f));
        assert_eq!(injected.len(), 3);
        let eth = smoltcp::wire::EthernetFrame::new_checked(&injected[2][..]).unwrap();
        assert_eq!(eth.src_addr(), EthernetAddress([2, 0, 0, 0, 0, 0x78]));
    }

    #[test]
    fn a_hop_lives_as_long_as_a_socket_uses_it() {
        let (a, b) = two_handles();
        let mut n = neighbors();
        let now = Instant::now();
        let gw = Ipv4Addr::new(127, 0, 0, 77);
        n.attach(a, gw, now);
        n.attach(b, gw, now);
        assert_eq!(n.hop_count(), 1);
        n.detach(a);
        n.detach(a);
        assert_eq!(n.hop_count(), 1, "b still sends through it");
        n.attach(b, Ipv4Addr::new(127, 0, 0, 78), now);
        assert_eq!(n.hop_count(), 1, "b moved: the old hop has no user left");
        n.detach(b);
        assert_eq!(n.hop_count(), 0);
        assert!(n.of_socket.is_empty());
    }

    #[test]
    fn the_reply_is_one_smoltcp_reads_as_ours() {
        let us = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let them = EthernetAddress([2, 0, 0, 0, 0, 2]);
        let frame = arp_reply(
            us,
            Ipv4Addr::new(10, 77, 1, 2),
            them,
            Ipv4Addr::new(10, 77, 1, 1),
        );
        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(
            (eth.dst_addr(), eth.src_addr(), eth.ethertype()),
            (us, them, EthernetProtocol::Arp)
        );
        let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
        let ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_hardware_addr,
            target_protocol_addr,
        } = arp
        else {
            panic!("not Ethernet/IPv4: {arp:?}")
        };
        assert_eq!(operation, ArpOperation::Reply);
        assert_eq!(
            (source_hardware_addr, source_protocol_addr),
            (them, Ipv4Addr::new(10, 77, 1, 1))
        );
        assert_eq!(
            (target_hardware_addr, target_protocol_addr),
            (us, Ipv4Addr::new(10, 77, 1, 2))
        );
    }
}
