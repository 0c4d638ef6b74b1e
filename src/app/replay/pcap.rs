//! pcap export: a recording as one synthetic IPv4/TCP connection that Wireshark reassembles.
//!
//! File format: the classic libpcap format, little-endian, with the nanosecond-resolution magic
//! `0xA1B23C4D`, version 2.4, snap length 65535, link type `LINKTYPE_RAW` (101: each packet is an
//! IPv4 header with no link layer).
//!
//! The connection runs from the client `10.0.0.1:40000` to the server `10.0.0.2:PORT`. It opens
//! with a SYN, SYN-ACK, ACK at the recording's start; outbound records become client segments and
//! inbound records server segments (PSH+ACK, split at 65,495 bytes, the most an IPv4 packet
//! carries after both headers), each with sequence numbers advancing per direction and the
//! acknowledgement of everything the other side sent so far; the end of stream becomes the
//! server's FIN. Gaps produce no packet. IPv4 and TCP checksums are filled in, so no tool flags the
//! packets as damaged.

use std::io::{self, Write};

use crate::stream::record::{RecordKind, RecordRef};

/// `LINKTYPE_RAW`: raw IPv4/IPv6 packets.
const LINKTYPE_RAW: u32 = 101;
/// The pcap magic for nanosecond timestamps.
const MAGIC_NS: u32 = 0xA1B2_3C4D;
const SNAPLEN: u32 = 65_535;
const CLIENT: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [10, 0, 0, 2];
const CLIENT_PORT: u16 = 40_000;
/// Largest TCP payload in one IPv4 packet: 65,535 minus the two 20-byte headers.
const MAX_SEGMENT: usize = 65_535 - 40;
/// Initial sequence numbers (arbitrary, fixed so exports are reproducible).
const CLIENT_ISN: u32 = 0x1000_0000;
const SERVER_ISN: u32 = 0x2000_0000;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// Writes a recording as pcap, record by record.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    port: u16,
    /// Next sequence number each side sends.
    client_seq: u32,
    server_seq: u32,
    ip_id: u16,
    /// One packet, reused.
    pkt: Vec<u8>,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the pcap header and the connection's handshake at `start_unix_ns`; the server
    /// listens on `port`.
    pub fn new(out: W, start_unix_ns: u64, port: u16) -> io::Result<Self> {
        let mut w = PcapWriter {
            out,
            port,
            client_seq: CLIENT_ISN,
            server_seq: SERVER_ISN,
            ip_id: 0,
            pkt: Vec::with_capacity(65_535),
        };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&MAGIC_NS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay zero.
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_RAW.to_le_bytes());
        w.out.write_all(&h)?;
        w.segment(start_unix_ns, true, SYN, &[])?;
        w.client_seq = w.client_seq.wrapping_add(1);
        w.segment(start_unix_ns, false, SYN | ACK, &[])?;
        w.server_seq = w.server_seq.wrapping_add(1);
        w.segment(start_unix_ns, true, ACK, &[])?;
        Ok(w)
    }

    /// Adds the packets for one record of a recording that started at `start_unix_ns`.
    pub fn record(&mut self, rec: &RecordRef<'_>, start_unix_ns: u64) -> io::Result<()> {
        let ts = start_unix_ns.saturating_add(rec.time_ns);
        match rec.kind {
            RecordKind::Outbound | RecordKind::Inbound => {
                let from_client = rec.kind == RecordKind::Outbound;
                for chunk in rec.payload.chunks(MAX_SEGMENT) {
                    self.segment(ts, from_client, PSH | ACK, chunk)?;
                    let seq = if from_client {
                        &mut self.client_seq
                    } else {
                        &mut self.server_seq
                    };
                    *seq = seq.wrapping_add(chunk.len() as u32);
                }
                Ok(())
            }
            RecordKind::Eof => {
                self.segment(ts, false, FIN | ACK, &[])?;
                self.server_seq = self.server_seq.wrapping_add(1);
                Ok(())
            }
            RecordKind::Gap => Ok(()),
        }
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    /// Writes one packet (pcap record header, IPv4, TCP, payload).
    fn segment(
        &mut self,
        ts_ns: u64,
        from_client: bool,
        flags: u8,
        payload: &[u8],
    ) -> io::Result<()> {
        let (src, dst, sport, dport, seq, ack) = if from_client {
            (
                CLIENT,
                SERVER,
                CLIENT_PORT,
                self.port,
                self.client_seq,
                self.server_seq,
            )
        } else {
            (
                SERVER,
                CLIENT,
                self.port,
                CLIENT_PORT,
                self.server_seq,
                self.client_seq,
            )
        };
        let total = 40 + payload.len();
        let p = &mut self.pkt;
        p.clear();
        // IPv4 header (RFC 791): version 4, IHL 5, total length, id, DF, TTL 64, protocol TCP.
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&(total as u16).to_be_bytes());
        p.extend_from_slice(&self.ip_id.to_be_bytes());
        p.extend_from_slice(&[0x40, 0, 64, 6, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        let ip_sum = !fold(sum16(&p[..20], 0));
        p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
        // TCP header (RFC 9293): ports, seq, ack (always valid after the SYN), data offset 5.
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(if flags & ACK != 0 { ack } else { 0 }).to_be_bytes());
        p.extend_from_slice(&[0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0]);
        p.extend_from_slice(payload);
        // The TCP checksum covers a pseudo-header of addresses, protocol and TCP length.
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&src);
        pseudo[4..8].copy_from_slice(&dst);
        pseudo[9] = 6;
        pseudo[10..12].copy_from_slice(&((total - 20) as u16).to_be_bytes());
        let tcp_sum = !fold(sum16(&p[20..], sum16(&pseudo, 0)));
        p[36..38].copy_from_slice(&tcp_sum.to_be_bytes());
        self.ip_id = self.ip_id.wrapping_add(1);

        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(total as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(total as u32).to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&self.pkt)
    }
}

/// Adds `data` as big-endian 16-bit words (odd length padded with zero) to `acc`.
fn sum16(data: &[u8], mut acc: u64) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a sum into 16 bits with end-around carry (one's complement addition).
fn fold(mut acc: u64) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a pcap file into (timestamp ns, packet) pairs, checking the file header.
    fn packets(file: &[u8]) -> Vec<(u64, &[u8])> {
        assert_eq!(u32::from_le_bytes(file[0..4].try_into().unwrap()), MAGIC_NS);
        assert_eq!(
            u32::from_le_bytes(file[20..24].try_into().unwrap()),
            LINKTYPE_RAW
        );
        let mut at = 24;
        let mut out = Vec::new();
        while at < file.len() {
            let f = |i: usize| u32::from_le_bytes(file[at + i..at + i + 4].try_into().unwrap());
            let ts = u64::from(f(0)) * 1_000_000_000 + u64::from(f(4));
            let len = f(8) as usize;
            assert_eq!(f(12) as usize, len);
            out.push((ts, &file[at + 16..at + 16 + len]));
            at += 16 + len;
        }
        assert_eq!(at, file.len());
        out
    }

    fn rec(kind: RecordKind, time_ns: u64, payload: &[u8]) -> RecordRef<'_> {
        RecordRef {
            kind,
            continued: false,
            time_ns,
            payload,
        }
    }

    #[test]
    fn sequence_numbers_advance_per_direction_and_checksums_verify() {
        let start = 1_700_000_000_000_000_007;
        let mut w = PcapWriter::new(Vec::new(), start, 8443).unwrap();
        let big = vec![7u8; MAX_SEGMENT + 10];
        w.record(&rec(RecordKind::Outbound, 10, b"hello"), start)
            .unwrap();
        w.record(&rec(RecordKind::Gap, 11, b""), start).unwrap();
        w.record(&rec(RecordKind::Inbound, 2_000_000_000, &big), start)
            .unwrap();
        w.record(&rec(RecordKind::Outbound, 2_000_000_001, b"abc"), start)
            .unwrap();
        w.record(&rec(RecordKind::Eof, 3_000_000_000, b""), start)
            .unwrap();
        let file = w.finish().unwrap();
        let pkts = packets(&file);
        // SYN, SYN-ACK, ACK, hello, big (2 segments), abc, FIN.
        assert_eq!(pkts.len(), 8);
        let tcp = |p: &[u8]| {
            let be32 = |i: usize| u32::from_be_bytes(p[i..i + 4].try_into().unwrap());
            (
                u16::from_be_bytes([p[20], p[21]]),
                be32(24),
                be32(28),
                p[33],
                p.len() - 40,
            )
        };
        let c = CLIENT_ISN;
        let s = SERVER_ISN;
        let want = [
            (CLIENT_PORT, c, 0, SYN, 0),
            (8443, s, c + 1, SYN | ACK, 0),
            (CLIENT_PORT, c + 1, s + 1, ACK, 0),
            (CLIENT_PORT, c + 1, s + 1, PSH | ACK, 5),
            (8443, s + 1, c + 6, PSH | ACK, MAX_SEGMENT),
            (8443, s + 1 + MAX_SEGMENT as u32, c + 6, PSH | ACK, 10),
            (
                CLIENT_PORT,
                c + 6,
                s + 11 + MAX_SEGMENT as u32,
                PSH | ACK,
                3,
            ),
            (8443, s + 11 + MAX_SEGMENT as u32, c + 9, FIN | ACK, 0),
        ];
        for (i, (ts, p)) in pkts.iter().enumerate() {
            assert_eq!(tcp(p), want[i], "packet {i}");
            assert_eq!(u16::from_be_bytes([p[2], p[3]]) as usize, p.len());
            // A header with its checksum in place sums to 0xFFFF.
            assert_eq!(
                fold(sum16(&p[..20], 0)),
                0xFFFF,
                "IPv4 checksum of packet {i}"
            );
            let mut pseudo = [0u8; 12];
            pseudo[0..8].copy_from_slice(&p[12..20]);
            pseudo[9] = 6;
            pseudo[10..12].copy_from_slice(&((p.len() - 20) as u16).to_be_bytes());
            assert_eq!(
                fold(sum16(&p[20..], sum16(&pseudo, 0))),
                0xFFFF,
                "TCP checksum of packet {i}"
            );
            assert!(*ts >= start);
        }
        assert_eq!(&pkts[3].1[40..], b"hello");
        assert_eq!(pkts[4].0, start + 2_000_000_000);
    }

    #[test]
    fn checksum_matches_a_known_ipv4_header() {
        // The worked example of an IPv4 header checksum: 0xB861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(!fold(sum16(&h, 0)), 0xB861);
    }
}
