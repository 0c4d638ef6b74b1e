//! The device's receive path without the socket: what happens to a frame between the RX ring and
//! smoltcp. [`super::device::XskDevice`] runs it over its UMEM and RX ring; the `xdp_rx` fuzz target
//! and its corpus replay in `cargo test` run it over frames in memory ([`RxRing`] is the seam).
//!
//! Per packet, in order: injected frames first (ARP replies from the kernel's neighbour table,
//! [`Injected`]); then the next frame of the ring, joined with the frames after it when it is
//! flagged "more follow" ([`super::multibuf`]); then admission ([`admit`]): the foreign-address
//! count and the TCP checksum, whose failure drops the packet.

use std::collections::VecDeque;

use super::csum;
use super::device::DeviceCounters;
use super::multibuf::Assembler;

/// Where received frames come from: the RX ring of a socket, or frames in memory.
pub trait RxRing {
    /// Names one frame (a UMEM descriptor on the real ring).
    type Desc: Copy;
    /// The next received frame, if any.
    fn next(&mut self) -> Option<Self::Desc>;
    /// The frame's packet bytes.
    fn contents(&self, desc: &Self::Desc) -> &[u8];
    /// Whether more frames of the same packet follow (`XDP_PKT_CONTD`).
    fn more(&self, desc: &Self::Desc) -> bool;
    /// The frame is no longer read: it may go back to the fill ring.
    fn release(&mut self, desc: Self::Desc);
}

/// A packet for smoltcp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received<D> {
    /// One frame, read in place; release it after smoltcp has read it.
    Frame(D),
    /// A packet that spanned frames, in [`RxPath::assembled`] (its frames are released).
    Assembled,
}

/// The receive path's state: the multi-buffer assembler and the stack's address.
#[derive(Debug)]
pub struct RxPath {
    asm: Assembler,
    local_ip: Option<[u8; 4]>,
}

impl RxPath {
    /// A path for packets of up to `max_packet` bytes across frames (0: single-frame packets only;
    /// the assembler is allocated now, once).
    pub fn new(max_packet: usize) -> RxPath {
        RxPath {
            asm: Assembler::new(max_packet),
            local_ip: None,
        }
    }

    /// Counts received IPv4 packets not addressed to `ip` ([`DeviceCounters::rx_foreign`]).
    pub fn set_local_ip(&mut self, ip: [u8; 4]) {
        self.local_ip = Some(ip);
    }

    /// The next packet smoltcp should see, skipping (and releasing) broken and corrupt ones.
    pub fn next<R: RxRing>(
        &mut self,
        ring: &mut R,
        counters: &mut DeviceCounters,
    ) -> Option<Received<R::Desc>> {
        loop {
            let desc = ring.next()?;
            if ring.more(&desc) {
                if !self.assemble(ring, desc, counters) {
                    continue;
                }
                if admit(self.asm.packet(), self.local_ip, counters) {
                    return Some(Received::Assembled);
                }
                continue;
            }
            if admit(ring.contents(&desc), self.local_ip, counters) {
                return Some(Received::Frame(desc));
            }
            ring.release(desc);
        }
    }

    /// The packet of the last [`Received::Assembled`].
    pub fn assembled(&self) -> &[u8] {
        self.asm.packet()
    }

    /// Joins the packet whose first frame is `first` with the frames after it, releasing all of
    /// them. `false` when they do not form a whole packet that fits (counted in `rx_broken`).
    fn assemble<R: RxRing>(
        &mut self,
        ring: &mut R,
        first: R::Desc,
        counters: &mut DeviceCounters,
    ) -> bool {
        self.asm.clear();
        let mut desc = first;
        let whole = loop {
            let more = ring.more(&desc);
            let done = self.asm.push(ring.contents(&desc), more);
            ring.release(desc);
            if let Some(whole) = done {
                break whole;
            }
            // The kernel publishes a packet's frames together: a ring that runs dry in the middle
            // of one is misused. The packet is dropped.
            let Some(next) = ring.next() else {
                break false;
            };
            desc = next;
        };
        if whole {
            counters.rx_multi_frame += 1;
        } else {
            self.asm.clear();
            counters.rx_broken += 1;
        }
        whole
    }
}

/// Whether smoltcp gets `packet` (an Ethernet frame): an IPv4/TCP packet with a wrong checksum is
/// dropped (`rx_bad_checksum`); an IPv4 packet to an address other than `local_ip` is counted
/// (`rx_foreign`) and still passed on (smoltcp drops it).
pub fn admit(packet: &[u8], local_ip: Option<[u8; 4]>, counters: &mut DeviceCounters) -> bool {
    if let Some(ip) = local_ip {
        counters.rx_foreign += u64::from(is_foreign(packet, ip));
    }
    if csum::verify_tcp(packet) {
        return true;
    }
    counters.rx_bad_checksum += 1;
    false
}

/// Whether `frame` is an IPv4 packet to an address other than `ours`.
fn is_foreign(frame: &[u8], ours: [u8; 4]) -> bool {
    frame.len() >= 34 && frame[12..14] == [0x08, 0x00] && frame[30..34] != ours
}

/// Injected frames that may wait for smoltcp at once (see [`Injected::push`]): more next hops
/// than a stack's sockets could use.
pub const MAX_INJECTED: usize = 4096;

/// Frames handed to smoltcp as if received, ahead of the ring: the ARP replies the stack builds
/// from the kernel's neighbour table in shared-IP mode. Rare (per next hop, every few seconds), so
/// an owned buffer each.
#[derive(Debug, Default)]
pub struct Injected {
    queue: VecDeque<Vec<u8>>,
}

impl Injected {
    /// Queues `frame` (a whole Ethernet frame). An ARP reply replaces one still queued about the
    /// same address (the newer MAC wins), so the queue holds at most one per next hop; beyond
    /// [`MAX_INJECTED`] frames the oldest is dropped.
    pub fn push(&mut self, frame: Vec<u8>) {
        if let Some(ip) = arp_sender_ip(&frame) {
            if let Some(queued) = self.queue.iter_mut().find(|q| arp_sender_ip(q) == Some(ip)) {
                *queued = frame;
                return;
            }
        }
        if self.queue.len() >= MAX_INJECTED {
            self.queue.pop_front();
        }
        self.queue.push_back(frame);
    }

    /// The oldest queued frame.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        self.queue.pop_front()
    }

    /// Frames queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// `true` when none is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// The sender protocol address of an Ethernet/ARP frame for IPv4.
pub fn arp_sender_ip(frame: &[u8]) -> Option<[u8; 4]> {
    (frame.len() >= 42 && frame[12..14] == [0x08, 0x06])
        .then(|| frame[28..32].try_into().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames in memory: (bytes, more follow); released indices recorded.
    struct Mem {
        frames: Vec<(Vec<u8>, bool)>,
        next: usize,
        released: Vec<usize>,
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
            &self.frames[*d].0
        }
        fn more(&self, d: &usize) -> bool {
            self.frames[*d].1
        }
        fn release(&mut self, d: usize) {
            self.released.push(d);
        }
    }

    #[test]
    fn pieces_join_broken_packets_are_dropped_and_every_frame_is_released() {
        let arp = {
            let mut f = vec![0u8; 42];
            f[12..14].copy_from_slice(&[0x08, 0x06]);
            f
        };
        let mut ring = Mem {
            frames: vec![
                (arp[..20].to_vec(), true),
                (arp[20..].to_vec(), false),
                (vec![1; 30], true),
                (vec![2; 30], false),
                (arp.clone(), false),
                (vec![3; 5], true),
            ],
            next: 0,
            released: Vec::new(),
        };
        let mut path = RxPath::new(50);
        let mut c = DeviceCounters::default();
        assert_eq!(path.next(&mut ring, &mut c), Some(Received::Assembled));
        assert_eq!(path.assembled(), &arp[..]);
        assert_eq!(path.next(&mut ring, &mut c), Some(Received::Frame(4)));
        assert_eq!(
            path.next(&mut ring, &mut c),
            None,
            "too long, then cut short"
        );
        assert_eq!((c.rx_multi_frame, c.rx_broken), (1, 2));
        ring.release(4);
        ring.released.sort_unstable();
        assert_eq!(ring.released, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn an_arp_reply_replaces_the_queued_one_about_the_same_address() {
        let reply = |ip: u8, mac: u8| {
            let mut f = vec![0u8; 42];
            f[12..14].copy_from_slice(&[0x08, 0x06]);
            f[22] = mac;
            f[28..32].copy_from_slice(&[10, 0, 0, ip]);
            f
        };
        let mut q = Injected::default();
        q.push(reply(1, 1));
        q.push(reply(2, 1));
        q.push(reply(1, 2));
        q.push(vec![0; 10]);
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop().map(|f| f[22]), Some(2));
        for _ in 0..MAX_INJECTED + 5 {
            q.push(vec![0; 10]);
        }
        assert_eq!(q.len(), MAX_INJECTED);
    }
}
