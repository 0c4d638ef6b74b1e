//! TCP checksums done by the device, the way a NIC's checksum offload does them.
//!
//! smoltcp's own checksum walks a segment 16 bits at a time; on a bulk transfer that was the largest
//! user-space cost of the stack (8.6 % of the client's cycles at 1500-byte MTU). The device tells
//! smoltcp it handles TCP checksums ([`smoltcp::phy::Checksum::None`]) and does them here instead:
//! 32-bit words summed into a 64-bit accumulator, which the compiler vectorises, folded at the end
//! (RFC 1071: the one's-complement sum is independent of byte order, so native-endian words are
//! summed and the result is stored in native order).
//!
//! - transmit: [`fill_tcp`] writes the checksum of every IPv4/TCP frame smoltcp built;
//! - receive: [`verify_tcp`] checks every IPv4/TCP frame before smoltcp sees it; a frame that fails
//!   is dropped and counted, exactly as smoltcp would have dropped it.
//!
//! IPv4 header checksums stay with smoltcp (20 bytes), as do the other protocols.

const ETH_HEADER: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const PROTO_TCP: u8 = 6;
/// Offset of the checksum in the TCP header.
const TCP_CHECKSUM_AT: usize = 16;

/// Where the TCP segment of an Ethernet frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    /// Offset of the IPv4 header in the frame.
    ip: usize,
    /// Offset of the TCP header.
    start: usize,
    /// End of the segment (from the IPv4 total length, so Ethernet padding is excluded).
    end: usize,
}

/// Finds the TCP segment of an unfragmented IPv4 frame. `None` for anything else (other
/// ethertypes and protocols, fragments, malformed lengths: smoltcp drops those on its own).
fn tcp_segment(frame: &[u8]) -> Option<Segment> {
    if frame.len() < ETH_HEADER + 20 || frame[12..14] != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = &frame[ETH_HEADER..];
    if ip[0] >> 4 != 4 || ip[9] != PROTO_TCP {
        return None;
    }
    let header = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    // More-fragments flag or a fragment offset: not a whole segment.
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    if header < 20 || total < header + 20 || total > ip.len() || fragment {
        return None;
    }
    Some(Segment {
        ip: ETH_HEADER,
        start: ETH_HEADER + header,
        end: ETH_HEADER + total,
    })
}

/// Sum of `data` as native-endian 16-bit words, not yet folded. Exact (no carry is lost) for any
/// slice shorter than 2^34 bytes. Uses AVX2 where the CPU has it (checked once per process).
#[inline]
fn accumulate(data: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::atomic::{AtomicU8, Ordering};
        // 0: not checked yet, 1: no AVX2, 2: AVX2.
        static AVX2: AtomicU8 = AtomicU8::new(0);
        let mut have = AVX2.load(Ordering::Relaxed);
        if have == 0 {
            have = if std::arch::is_x86_feature_detected!("avx2") {
                2
            } else {
                1
            };
            AVX2.store(have, Ordering::Relaxed);
        }
        if have == 2 {
            // SAFETY: the CPU supports AVX2 (checked above).
            return unsafe { accumulate_avx2(data) };
        }
    }
    accumulate_portable(data)
}

/// [`accumulate_portable`] compiled for AVX2 (the loop vectorises to 256-bit adds).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn accumulate_avx2(data: &[u8]) -> u64 {
    accumulate_portable(data)
}

#[inline(always)]
fn accumulate_portable(data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(4);
    let mut acc: u64 = chunks
        .by_ref()
        .map(|c| u64::from(u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
        .sum();
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut tail = [0u8; 4];
        tail[..rest.len()].copy_from_slice(rest);
        acc += u64::from(u32::from_ne_bytes(tail));
    }
    acc
}

/// Folds an accumulator to 16 bits with end-around carries.
#[inline]
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The pseudo-header sum of a segment (source, destination, protocol, TCP length).
fn pseudo_header(frame: &[u8], seg: Segment) -> u64 {
    let addrs = &frame[seg.ip + 12..seg.ip + 20];
    let len = (seg.end - seg.start) as u16;
    let [hi, lo] = len.to_be_bytes();
    accumulate(addrs) + accumulate(&[0, PROTO_TCP, hi, lo])
}

/// Writes the TCP checksum of `frame` if it is an IPv4/TCP frame; returns whether it was one.
pub fn fill_tcp(frame: &mut [u8]) -> bool {
    let Some(seg) = tcp_segment(frame) else {
        return false;
    };
    let at = seg.start + TCP_CHECKSUM_AT;
    frame[at..at + 2].fill(0);
    let sum = !fold(pseudo_header(frame, seg) + accumulate(&frame[seg.start..seg.end]));
    frame[at..at + 2].copy_from_slice(&sum.to_ne_bytes());
    true
}

/// `false` only for an IPv4/TCP frame whose checksum is wrong; anything else passes.
pub fn verify_tcp(frame: &[u8]) -> bool {
    match tcp_segment(frame) {
        Some(seg) => {
            fold(pseudo_header(frame, seg) + accumulate(&frame[seg.start..seg.end])) == 0xffff
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
        Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
    };

    /// An Ethernet/IPv4/TCP frame carrying `payload`, checksummed by smoltcp, plus `pad` bytes of
    /// Ethernet padding.
    fn frame(payload: &[u8], pad: usize) -> Vec<u8> {
        let src = Ipv4Address::new(10, 77, 0, 3);
        let dst = Ipv4Address::new(10, 77, 0, 1);
        let tcp = TcpRepr {
            src_port: 40001,
            dst_port: 7000,
            control: TcpControl::Psh,
            seq_number: TcpSeqNumber(0x1234_5678),
            ack_number: Some(TcpSeqNumber(0x0bad_cafe)),
            window_len: 4096,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let len = eth.buffer_len() + ip.buffer_len() + tcp.buffer_len();
        let mut buf = vec![0u8; len + pad];
        let caps = ChecksumCapabilities::default();
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut f);
        let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
        ip.emit(&mut p, &caps);
        let mut t = TcpPacket::new_unchecked(p.payload_mut());
        tcp.emit(&mut t, &IpAddress::Ipv4(src), &IpAddress::Ipv4(dst), &caps);
        buf
    }

    fn checksum_field(buf: &[u8]) -> [u8; 2] {
        let at = ETH_HEADER + 20 + TCP_CHECKSUM_AT;
        [buf[at], buf[at + 1]]
    }

    #[test]
    fn matches_smoltcp_for_every_length_and_padding() {
        let payload: Vec<u8> = (0..4000u32).map(|i| (i * 131 + 7) as u8).collect();
        for len in (0..64).chain([255, 1023, 1460, 1461, 3459, 3460, 4000]) {
            for pad in [0, 1, 6] {
                let reference = frame(&payload[..len], pad);
                assert!(verify_tcp(&reference), "len {len} pad {pad}");
                let mut ours = reference.clone();
                let at = ETH_HEADER + 20 + TCP_CHECKSUM_AT;
                ours[at] ^= 0x5a;
                assert!(fill_tcp(&mut ours));
                assert_eq!(
                    checksum_field(&ours),
                    checksum_field(&reference),
                    "len {len}"
                );
            }
        }
    }

    #[test]
    fn any_flipped_bit_is_caught() {
        let good = frame(b"the quick brown fox jumps over the lazy dog", 0);
        // Every bit of the pseudo-header addresses and of the segment.
        for byte in (ETH_HEADER + 12..ETH_HEADER + 20).chain(ETH_HEADER + 20..good.len()) {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                assert!(!verify_tcp(&bad), "flip at byte {byte} bit {bit} passed");
            }
        }
    }

    #[test]
    fn leaves_other_frames_alone() {
        let good = frame(b"x", 0);
        // ARP.
        let mut arp = good.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(verify_tcp(&arp) && !fill_tcp(&mut arp.clone()));
        // UDP.
        let mut udp = good.clone();
        udp[ETH_HEADER + 9] = 17;
        assert!(!fill_tcp(&mut udp));
        // A fragment (more-fragments flag).
        let mut frag = good.clone();
        frag[ETH_HEADER + 6] |= 0x20;
        assert!(!fill_tcp(&mut frag));
        // A total length past the frame, and one shorter than the headers.
        for total in [good.len() as u16, 39] {
            let mut bad = good.clone();
            bad[ETH_HEADER + 2..ETH_HEADER + 4].copy_from_slice(&total.to_be_bytes());
            assert!(!fill_tcp(&mut bad));
            assert!(verify_tcp(&bad), "smoltcp drops it on its own");
        }
        // Truncated frames.
        for len in 0..ETH_HEADER + 20 {
            assert!(verify_tcp(&good[..len]));
        }
    }
}
