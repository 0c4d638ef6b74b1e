//! Multi-buffer packets (AF_XDP `XDP_USE_SG`, Linux 6.6 and later): with an MTU larger than a UMEM
//! frame holds, a packet spans several frames, all but the last flagged `XDP_PKT_CONTD`.
//!
//! smoltcp reads and writes a packet as one contiguous slice, so a packet that spans frames is
//! joined into an [`Assembler`] on receive and written into one buffer and split with [`parts`] on
//! transmit. Both buffers are allocated once, when the device opens. A packet that fits one frame
//! never comes here.
//!
//! Why the receive copy stays: a packet's frames are wherever the fill ring put them, each behind
//! the kernel's 256-byte headroom, so even frames that are neighbours in the UMEM are not one
//! contiguous slice, and smoltcp's `RxToken::consume` takes one.

/// The descriptor option "more frames of this packet follow" (`XDP_PKT_CONTD`).
pub const XDP_PKT_CONTD: u32 = 1;

/// Joins the frames of one packet. Fed frame by frame with [`Assembler::push`]; a packet longer
/// than the capacity is consumed to its last frame and reported broken, never reallocated.
#[derive(Debug)]
pub struct Assembler {
    buf: Vec<u8>,
    whole: bool,
}

impl Assembler {
    /// An assembler for packets of up to `capacity` bytes (allocated now, once).
    pub fn new(capacity: usize) -> Assembler {
        Assembler {
            buf: Vec::with_capacity(capacity),
            whole: true,
        }
    }

    /// Adds the next frame of the packet; `more`: frames of it follow. Returns `None` while the
    /// packet goes on, then whether it was whole (every part fitted the capacity).
    pub fn push(&mut self, part: &[u8], more: bool) -> Option<bool> {
        if self.buf.len() + part.len() <= self.buf.capacity() {
            self.buf.extend_from_slice(part);
        } else {
            self.whole = false;
        }
        if more {
            return None;
        }
        Some(std::mem::replace(&mut self.whole, true))
    }

    /// Starts a new packet.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.whole = true;
    }

    /// The last packet assembled.
    pub fn packet(&self) -> &[u8] {
        &self.buf
    }
}

/// The frame-sized parts of `packet` with their "more follow" flag: how a packet is laid out over
/// TX frames.
pub fn parts(packet: &[u8], frame_cap: usize) -> impl Iterator<Item = (&[u8], bool)> {
    let n = packet.len().div_ceil(frame_cap.max(1));
    packet
        .chunks(frame_cap.max(1))
        .enumerate()
        .map(move |(i, part)| (part, i + 1 < n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_join_and_overlong_packets_break() {
        let mut a = Assembler::new(10);
        assert_eq!(a.push(b"abcd", true), None);
        assert_eq!(a.push(b"efg", false), Some(true));
        assert_eq!(a.packet(), b"abcdefg");
        a.clear();
        assert_eq!(a.push(b"0123456", true), None);
        assert_eq!(a.push(b"789ab", true), None);
        assert_eq!(a.push(b"c", false), Some(false));
        a.clear();
        assert_eq!(a.push(b"xy", false), Some(true), "the next packet is fine");
        assert_eq!(a.packet(), b"xy");
    }

    #[test]
    fn parts_cover_the_packet_and_flag_all_but_the_last() {
        let p: Vec<u8> = (0..=255).collect();
        let v: Vec<_> = parts(&p, 100).collect();
        assert_eq!(v.len(), 3);
        assert_eq!(
            v.iter().map(|(_, m)| *m).collect::<Vec<_>>(),
            [true, true, false]
        );
        assert_eq!(v.concat_parts(), p);
        assert_eq!(parts(&p[..100], 100).count(), 1);
    }

    trait Concat {
        fn concat_parts(&self) -> Vec<u8>;
    }
    impl Concat for Vec<(&[u8], bool)> {
        fn concat_parts(&self) -> Vec<u8> {
            self.iter().flat_map(|(p, _)| p.iter().copied()).collect()
        }
    }
}
