//! Next hops in shared-IP mode, learned from the kernel's neighbour table.
//!
//! When the stack shares the kernel's address, ARP for that address must stay with the kernel: it
//! answers requests for it (with the same MAC the stack uses) and needs the replies to resolve its
//! own neighbours. So the steering program passes ARP to the kernel in that mode, and the stack
//! learns the MAC of each next hop it sends to from `/proc/net/arp` (of its network namespace) and
//! hands smoltcp an ARP reply built from it ([`super::device::XskDevice::inject`]). A next hop the
//! kernel has not resolved yet is resolved by the kernel on request: a zero-length UDP datagram to
//! its discard port (9) from an ordinary socket makes the kernel send its ARP request. Entries are
//! re-read and re-injected every [`REFRESH`], well inside smoltcp's 60 s neighbour lifetime, so a
//! changed MAC (a failed-over gateway) reaches the stack within that time.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use smoltcp::wire::EthernetAddress;

use super::device::XskDevice;

/// How often known next hops are re-read and re-injected.
const REFRESH: Duration = Duration::from_secs(20);
/// How often the table is read while a next hop is unresolved.
const PENDING_CHECK: Duration = Duration::from_millis(1);
/// How often the kernel is asked again to resolve a next hop.
const REKICK: Duration = Duration::from_secs(1);
/// Next hops remembered (the oldest is forgotten beyond this).
const MAX_HOPS: usize = 256;

#[derive(Debug)]
struct Hop {
    ip: Ipv4Addr,
    known: Option<EthernetAddress>,
    kicked: Option<Instant>,
}

/// The next hops of a shared-IP stack.
#[derive(Debug)]
pub(crate) struct Neighbors {
    ifname: String,
    our_mac: EthernetAddress,
    our_ip: Ipv4Addr,
    hops: Vec<Hop>,
    next_check: Instant,
    probe: Option<UdpSocket>,
}

impl Neighbors {
    pub(crate) fn new(ifname: &str, our_mac: EthernetAddress, our_ip: Ipv4Addr) -> Neighbors {
        Neighbors {
            ifname: ifname.to_owned(),
            our_mac,
            our_ip,
            hops: Vec::new(),
            next_check: Instant::now() + REFRESH,
            probe: None,
        }
    }

    /// The stack is about to send to `ip` (a connection's next hop): learn it at the next poll.
    pub(crate) fn want(&mut self, ip: Ipv4Addr) {
        if !self.hops.iter().any(|h| h.ip == ip) {
            if self.hops.len() == MAX_HOPS {
                self.hops.remove(0);
            }
            self.hops.push(Hop {
                ip,
                known: None,
                kicked: None,
            });
            self.next_check = Instant::now();
        }
    }

    /// Reads the kernel's table when a check is due and injects what it knows.
    pub(crate) fn poll(&mut self, device: &mut XskDevice) {
        let now = Instant::now();
        if now < self.next_check {
            return;
        }
        let table = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
        let mut pending = false;
        for i in 0..self.hops.len() {
            let ip = self.hops[i].ip;
            match lookup(&table, &self.ifname, ip) {
                Some(mac) => {
                    if self.hops[i].known != Some(mac) {
                        log::info!(
                            "{}: next hop {ip} is at {mac} (the kernel's neighbour table)",
                            self.ifname
                        );
                    }
                    device.inject(arp_reply(self.our_mac, self.our_ip, mac, ip));
                    self.hops[i].known = Some(mac);
                    self.hops[i].kicked = None;
                }
                None => {
                    pending = true;
                    let due = self.hops[i]
                        .kicked
                        .is_none_or(|t| now.duration_since(t) >= REKICK);
                    if due {
                        self.kick(ip);
                        self.hops[i].kicked = Some(now);
                    }
                }
            }
        }
        self.next_check = now + if pending { PENDING_CHECK } else { REFRESH };
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
        let f: Vec<&str> = line.split_whitespace().collect();
        let [addr, _hw, flags, mac, _mask, dev] = f[..] else {
            return None;
        };
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
