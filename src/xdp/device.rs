//! A smoltcp [`Device`] over one AF_XDP socket: tokens point into UMEM frames.
//!
//! Frames are split in two pools that never mix: half circulate between the fill ring and the RX
//! ring (a received frame goes back to the fill ring once smoltcp has read it), half between the
//! free TX list, the TX ring and the completion ring. So the TX ring can never overflow (it is as
//! large as the TX pool) and receive never starves transmit.
//!
//! Per [`XskDevice::flush`] (once per stack poll): completions are reaped first, frames smoltcp
//! wrote are produced to the TX ring in one batch with one wake-up (`sendto`) when the kernel asks
//! for it (need-wakeup) or in copy mode, and the fill ring is topped up (with a wake-up if asked).
//!
//! What happens to a received frame before smoltcp sees it (injected frames, multi-buffer
//! assembly, admission) is [`super::rx`], which runs here over the UMEM and RX ring and in the
//! fuzz target over frames in memory. Packets spanning several frames (`XDP_USE_SG`) are
//! [`super::multibuf`]'s; a packet that fits one frame is read and written in place. Deliberate
//! loss and reordering wrap this device ([`super::impair::Impaired`]).

use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};

use smoltcp::phy::{self, Checksum, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

use super::csum;
use super::multibuf::{self, XDP_PKT_CONTD};
use super::rx::{Injected, Received, RxPath, RxRing};
use super::umem::UmemPlan;

/// How the socket is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// The kernel copies packets between the driver's buffers and the UMEM (works everywhere).
    Copy,
    /// The driver DMAs straight into the UMEM; needs driver support. Falls back to copy mode
    /// when the driver refuses (`EOPNOTSUPP`, as every veth does).
    ZeroCopy,
}

/// Frames pulled from the RX ring per batch.
const RX_BATCH: usize = 64;

/// The frames a packet may span in zero-copy multi-buffer mode. The driver sets the real bound
/// (`xdp_zc_max_segs`, published over the netdev netlink family, not read here); a longer packet is
/// invalid and its frames are never completed, so the MTU is kept to a conservative 5 frames
/// (9000-byte jumbo frames take 3 of 4 KiB). Not verifiable on veth, which has no zero-copy.
const ZC_MAX_FRAGS: usize = 5;

/// An AF_XDP socket with its UMEM and rings, as a smoltcp device.
pub struct XskDevice {
    umem: Umem,
    fill: FillQueue,
    comp: CompQueue,
    tx: TxQueue,
    rx: RxSide,
    /// TX frames free to write into.
    tx_free: Vec<FrameDesc>,
    /// Frames written by smoltcp, produced to the TX ring at the next flush.
    tx_ready: Vec<FrameDesc>,
    /// Scratch for completions.
    comp_scratch: Vec<FrameDesc>,
    mtu: usize,
    bind: BindMode,
    copy_mode_kick: bool,
    /// Slots of the TX ring.
    tx_ring_size: u32,
    counters: DeviceCounters,
    /// Admission and multi-buffer assembly of received frames.
    path: RxPath,
    /// Frames handed to smoltcp as if received, ahead of the RX ring (see [`XskDevice::inject`]).
    injected: Injected,
    /// Packets may span frames (`XDP_USE_SG` in effect).
    multi_buffer: bool,
    /// Packet bytes per frame.
    frame_cap: usize,
    /// Free TX frames needed before smoltcp may send: what its largest packet spans.
    tx_need: usize,
    /// Where smoltcp writes a packet larger than a frame (multi-buffer mode): MTU-sized.
    tx_scratch: Vec<u8>,
}

pub use super::rx::MAX_INJECTED;

/// The receive side of the socket: the RX ring and the frames taken from it.
struct RxSide {
    queue: RxQueue,
    /// Received frames not yet handed to smoltcp (`batch[next..len]`).
    batch: Vec<FrameDesc>,
    next: usize,
    len: usize,
    /// Frames smoltcp has read, waiting to go back to the fill ring.
    done: Vec<FrameDesc>,
    /// Frames taken from the ring.
    frames: u64,
}

/// The RX ring and the UMEM its frames are in, as the receive path's [`RxRing`].
struct UmemRing<'a> {
    umem: &'a Umem,
    side: &'a mut RxSide,
}

impl RxRing for UmemRing<'_> {
    type Desc = FrameDesc;

    fn next(&mut self) -> Option<FrameDesc> {
        let side = &mut *self.side;
        if side.next == side.len {
            // SAFETY: the batch descriptors are overwritten with frames of this UMEM that the
            // kernel has filled and handed over.
            let n = unsafe { side.queue.consume(&mut side.batch) };
            side.frames += n as u64;
            side.next = 0;
            side.len = n;
            if n == 0 {
                return None;
            }
        }
        side.next += 1;
        Some(side.batch[side.next - 1])
    }

    fn contents(&self, desc: &FrameDesc) -> &[u8] {
        // SAFETY: the frame came from this UMEM's RX ring and is ours until it is released to the
        // fill ring, which `release` does only after the receive path stopped reading it.
        unsafe { self.umem.data(desc) }.contents()
    }

    fn more(&self, desc: &FrameDesc) -> bool {
        desc.has_more_frames()
    }

    fn release(&mut self, desc: FrameDesc) {
        self.side.done.push(desc);
    }
}

/// Packet counters of a device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Frames received.
    pub rx_frames: u64,
    /// Frames transmitted (produced to the TX ring).
    pub tx_frames: u64,
    /// TX wake-ups (`sendto`).
    pub tx_kicks: u64,
    /// Times smoltcp wanted to send but no TX frame was free.
    pub tx_starved: u64,
    /// Packets dropped by the [`super::Impairment`] (set by the stack, which owns the wrapper).
    pub impaired_drops: u64,
    /// Packets reordered by the [`super::Impairment`].
    pub impaired_reorders: u64,
    /// IPv4/TCP frames dropped on receive for a wrong TCP checksum.
    pub rx_bad_checksum: u64,
    /// Packets received across several frames (multi-buffer mode).
    pub rx_multi_frame: u64,
    /// Packets sent across several frames (multi-buffer mode).
    pub tx_multi_frame: u64,
    /// Packets dropped on receive because their frames did not form a whole packet of at most
    /// [`super::MAX_FRAGS`] frames.
    pub rx_broken: u64,
    /// IPv4 packets received for an address that is not the stack's: steered to the wrong queue
    /// (several stacks share the interface and a flow reached another's queue). smoltcp drops
    /// them; a non-zero count means the NIC's flow rules and the threads' queues disagree.
    pub rx_foreign: u64,
}

impl std::fmt::Debug for XskDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskDevice")
            .field("bind", &self.bind)
            .field("mtu", &self.mtu)
            .field("multi_buffer", &self.multi_buffer)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl XskDevice {
    /// Creates the UMEM per `plan` and binds a socket to `ifname` queue `queue` without loading any
    /// XDP program (the steering program is ours, see [`super::steer`]).
    ///
    /// Zero-copy falls back to copy mode when the driver refuses it; the returned mode says which.
    /// An `mtu` larger than a frame holds binds in multi-buffer mode (`XDP_USE_SG`) when
    /// `multi_buffer` allows it; where the kernel refuses that, or it is not allowed, the MTU is
    /// lowered to one frame ([`XskDevice::mtu`] says what is in effect). A queue still busy after
    /// `busy_for` fails with `EBUSY`.
    pub fn open(
        ifname: &str,
        queue: u32,
        plan: &UmemPlan,
        bind: BindMode,
        mtu: usize,
        multi_buffer: bool,
        busy_for: std::time::Duration,
    ) -> io::Result<XskDevice> {
        let half = plan.frames / 2;
        let qsize = QueueSize::new(half).map_err(|e| invalid(format!("queue size: {e}")))?;
        let umem_config = UmemConfig::builder()
            .frame_size(
                FrameSize::new(plan.frame_size).map_err(|e| invalid(format!("frame size: {e}")))?,
            )
            .fill_queue_size(qsize)
            .comp_queue_size(qsize)
            .build()
            .map_err(|e| invalid(format!("UMEM config: {e}")))?;
        let frames = NonZeroU32::new(plan.frames).ok_or_else(|| invalid("no frames".into()))?;
        let (umem, mut descs) =
            Umem::new(umem_config, frames, plan.huge_pages).map_err(|e| xsk_error("UMEM", &e))?;
        let iface: Interface = ifname
            .parse()
            .map_err(|_| invalid(format!("interface name {ifname:?}")))?;
        let try_bind = |flags: BindFlags| {
            let config = SocketConfig::builder()
                .rx_queue_size(qsize)
                .tx_queue_size(qsize)
                .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
                .bind_flags(flags | BindFlags::XDP_USE_NEED_WAKEUP)
                .build();
            // SAFETY: the UMEM is not shared with another socket on this (interface, queue), so the
            // double-free hazard of `Socket::new` does not arise; program loading is inhibited.
            unsafe { Socket::new(config, &umem, &iface, queue) }
        };
        // Rebinding a queue right after its previous socket closed fails with EBUSY for a while
        // (about 10 ms after a clean close, longer after the owner was killed): retry the bind
        // alone, keeping the UMEM, until `busy_for` has passed.
        let deadline = std::time::Instant::now() + busy_for;
        let bind_retrying = |flags: BindFlags| loop {
            match try_bind(flags) {
                Err(e)
                    if raw_os_error(&e) == Some(libc::EBUSY)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other => break other,
            }
        };
        let one_frame = super::max_mtu(plan.frame_size);
        let sg_wanted = multi_buffer && mtu > one_frame;
        // What to try, in order of preference: the mode asked for, with multi-buffer if the MTU
        // needs it; zero-copy without multi-buffer (a driver may do one and not the other: keep
        // zero-copy, cap the MTU); copy mode, with and then without multi-buffer.
        let mut tries = Vec::with_capacity(4);
        if bind == BindMode::ZeroCopy {
            if sg_wanted {
                tries.push((BindMode::ZeroCopy, true));
            }
            tries.push((BindMode::ZeroCopy, false));
        }
        if sg_wanted {
            tries.push((BindMode::Copy, true));
        }
        tries.push((BindMode::Copy, false));
        let mut outcome = None;
        for (i, &(mode, sg)) in tries.iter().enumerate() {
            let flags = match mode {
                BindMode::Copy => BindFlags::XDP_COPY,
                BindMode::ZeroCopy => BindFlags::XDP_ZEROCOPY,
            } | if sg {
                BindFlags::XDP_USE_SG
            } else {
                BindFlags::empty()
            };
            let result = bind_retrying(flags);
            let refused = match &result {
                Err(e) => match raw_os_error(e) {
                    Some(libc::EOPNOTSUPP) => true,
                    // An older kernel rejects the multi-buffer flag itself.
                    Some(libc::EINVAL) => sg,
                    _ => false,
                },
                Ok(_) => false,
            };
            let Some(&(next_mode, next_sg)) = tries.get(i + 1).filter(|_| refused) else {
                outcome = Some((mode, sg, result));
                break;
            };
            if mode == BindMode::ZeroCopy && next_mode == BindMode::ZeroCopy {
                log::warn!(
                    "{ifname} queue {queue}: the driver does zero-copy but not multi-buffer \
                     zero-copy; zero-copy kept, MTU {mtu} lowered to {one_frame}, what one frame \
                     holds"
                );
            } else if mode == BindMode::ZeroCopy {
                log::warn!(
                    "{ifname} queue {queue}: the driver refuses zero-copy AF_XDP; using copy mode"
                );
            } else if sg && !next_sg {
                log::warn!(
                    "{ifname} queue {queue}: the kernel refuses multi-buffer AF_XDP; MTU {mtu} \
                     lowered to {one_frame}, what one frame holds"
                );
            }
        }
        let Some((bind, sg, created)) = outcome else {
            unreachable!("the last try always ends the loop");
        };
        let frame_cap = super::frame_capacity(plan.frame_size);
        let mut mtu = if sg { mtu } else { mtu.min(one_frame) };
        if sg && bind == BindMode::ZeroCopy {
            // In zero-copy mode the driver bounds a packet's frames (see `ZC_MAX_FRAGS`).
            let most = ZC_MAX_FRAGS * frame_cap - 14;
            if mtu > most {
                log::warn!(
                    "{ifname} queue {queue}: zero-copy multi-buffer: MTU {mtu} lowered to {most} \
                     ({ZC_MAX_FRAGS} frames a packet)"
                );
                mtu = most;
            }
        }
        let tx_need = super::frames_per_packet(mtu, plan.frame_size);
        if sg && tx_need > super::MAX_FRAGS {
            return Err(invalid(format!(
                "MTU {mtu} spans {tx_need} frames of {} B; at most {} may carry a packet",
                plan.frame_size,
                super::MAX_FRAGS
            )));
        }
        let (tx, rx, rings) = created.map_err(|e| xsk_error("AF_XDP socket", &e))?;
        let (mut fill, comp) =
            rings.ok_or_else(|| io::Error::other("AF_XDP socket: no fill/completion rings"))?;
        let tx_free = descs.split_off(half as usize);
        if tx_free.len() < 2 * tx_need {
            return Err(invalid(format!(
                "{} TX frames cannot carry packets of {} frames",
                tx_free.len(),
                tx_need
            )));
        }
        // SAFETY: the descriptors were just created for this UMEM and none is in any ring yet.
        let filled = unsafe { fill.produce(&descs) };
        if filled != descs.len() {
            return Err(io::Error::other(
                "AF_XDP: the fill ring took fewer frames than it holds",
            ));
        }
        Ok(XskDevice {
            umem,
            fill,
            comp,
            tx,
            rx: RxSide {
                queue: rx,
                batch: vec![FrameDesc::default(); RX_BATCH],
                next: 0,
                len: 0,
                done: Vec::with_capacity(half as usize),
                frames: 0,
            },
            tx_ready: Vec::with_capacity(tx_free.len()),
            comp_scratch: vec![FrameDesc::default(); tx_free.len()],
            tx_free,
            mtu,
            bind,
            copy_mode_kick: bind == BindMode::Copy,
            tx_ring_size: half,
            counters: DeviceCounters::default(),
            path: RxPath::new(if sg { super::MAX_FRAGS * frame_cap } else { 0 }),
            injected: Injected::default(),
            multi_buffer: sg,
            frame_cap,
            tx_need,
            tx_scratch: if sg { vec![0; mtu + 14] } else { Vec::new() },
        })
    }

    /// The IP MTU in effect (lowered to one frame where multi-buffer mode was refused).
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// `true` when packets may span frames (`XDP_USE_SG` in effect).
    pub fn multi_buffer(&self) -> bool {
        self.multi_buffer
    }

    /// Queues `frame` (a whole Ethernet frame) for smoltcp as if it had been received: the stack
    /// uses it for ARP replies built from the kernel's neighbour table in shared-IP mode (see
    /// [`Injected::push`]).
    pub fn inject(&mut self, frame: Vec<u8>) {
        self.injected.push(frame);
    }

    /// The socket's descriptor (for the XSK map and `poll(2)`).
    pub fn fd(&self) -> RawFd {
        self.rx.queue.fd().as_raw_fd()
    }

    /// The bind mode in effect (after any fallback).
    pub fn bind_mode(&self) -> BindMode {
        self.bind
    }

    /// Counts received IPv4 packets not addressed to `ip` ([`DeviceCounters::rx_foreign`]).
    pub fn set_local_ip(&mut self, ip: std::net::Ipv4Addr) {
        self.path.set_local_ip(ip.octets());
    }

    /// Packet counters.
    pub fn counters(&self) -> DeviceCounters {
        DeviceCounters {
            rx_frames: self.rx.frames,
            ..self.counters
        }
    }

    /// `true` when received frames wait in the RX ring or the batch.
    pub fn rx_pending(&mut self) -> bool {
        self.rx.next < self.rx.len || self.rx.queue.nb_avail(1) > 0
    }

    /// Reaps completions, then sends what smoltcp wrote (one kick), then refills the fill ring.
    pub fn flush(&mut self) -> io::Result<()> {
        self.reap();
        let mut produced = 0;
        if !self.tx_ready.is_empty() {
            // SAFETY: every descriptor in `tx_ready` belongs to this UMEM, was written by a TX
            // token and is owned by us until the completion ring hands it back.
            produced = unsafe { self.tx.produce(&self.tx_ready) };
            self.counters.tx_frames += produced as u64;
            self.tx_ready.drain(..produced);
        }
        // A kick sends at most 32 frames in copy mode (the kernel's TX batch), so frames produced
        // earlier may still wait in the ring: kick while any do, not only when new ones came, or
        // the tail of a burst would wait for the next write (and, with every TX frame in the ring,
        // smoltcp could never write again).
        let waiting = produced > 0 || self.tx.nb_free_exact() < self.tx_ring_size;
        if waiting && (self.copy_mode_kick || self.tx.needs_wakeup()) {
            self.counters.tx_kicks += 1;
            self.tx.wakeup()?;
        }
        if !self.rx.done.is_empty() {
            // SAFETY: these frames came from this UMEM's RX ring and smoltcp is done with them.
            let n = unsafe { self.fill.produce(&self.rx.done) };
            self.rx.done.drain(..n);
        }
        if self.fill.needs_wakeup() {
            self.fill.wakeup(self.rx.queue.fd_mut(), 0)?;
        }
        Ok(())
    }

    fn reap(&mut self) {
        // SAFETY: the scratch descriptors are overwritten by the ring; they name frames of this
        // UMEM that the kernel has finished transmitting.
        let n = unsafe { self.comp.consume(&mut self.comp_scratch) };
        self.tx_free.extend_from_slice(&self.comp_scratch[..n]);
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn raw_os_error(e: &dyn std::error::Error) -> Option<i32> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return io.raw_os_error();
        }
        source = s.source();
    }
    None
}

fn xsk_error(what: &str, e: &dyn std::error::Error) -> io::Error {
    match raw_os_error(e) {
        // Kept as the bare OS error so callers can retry on it (the stack adds the context).
        Some(libc::EBUSY) => io::Error::from_raw_os_error(libc::EBUSY),
        Some(code) => {
            let os = io::Error::from_raw_os_error(code);
            io::Error::new(os.kind(), format!("{what}: {e}: {os}"))
        }
        None => io::Error::other(format!("{what}: {e}")),
    }
}

/// Where a received frame is.
#[derive(Debug)]
enum RxSource<'a> {
    /// A UMEM frame from the RX ring.
    Frame(FrameDesc),
    /// A packet that spanned frames, assembled in the device's scratch buffer.
    Assembled(&'a [u8]),
    /// A frame queued by [`XskDevice::inject`].
    Injected(Vec<u8>),
}

/// Hands one received frame to smoltcp.
#[derive(Debug)]
pub struct XskRxToken<'a> {
    umem: &'a Umem,
    source: RxSource<'a>,
    done: &'a mut Vec<FrameDesc>,
}

impl phy::RxToken for XskRxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        match self.source {
            RxSource::Frame(desc) => {
                // SAFETY: the frame came from this UMEM's RX ring and is ours until it is put back
                // on the fill ring, which happens only after this read (it goes to `done` below).
                let data = unsafe { self.umem.data(&desc) };
                let r = f(data.contents());
                self.done.push(desc);
                r
            }
            RxSource::Assembled(packet) => f(packet),
            RxSource::Injected(frame) => f(&frame),
        }
    }
}

/// Lets smoltcp write one frame.
#[derive(Debug)]
pub struct XskTxToken<'a> {
    umem: &'a Umem,
    free: &'a mut Vec<FrameDesc>,
    ready: &'a mut Vec<FrameDesc>,
    /// Packet bytes per frame.
    frame_cap: usize,
    /// Where a packet larger than a frame is written first (multi-buffer mode; MTU-sized).
    scratch: &'a mut [u8],
    /// Counts packets sent across frames.
    multi_frame: &'a mut u64,
}

impl phy::TxToken for XskTxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        if len > self.frame_cap {
            return self.consume_multi_frame(len, f);
        }
        let mut desc = self
            .free
            .pop()
            .expect("a TX token is only handed out while a frame is free");
        // A frame reused from an earlier multi-frame packet may still carry "more follow".
        desc.set_options(0);
        let r = {
            // SAFETY: `desc` is a free TX frame of this UMEM: neither in a ring nor referenced
            // elsewhere, so this is the only access until it is produced to the TX ring.
            let mut data = unsafe { self.umem.data_mut(&mut desc) };
            let mut cursor = data.cursor();
            cursor.set_pos(len);
            let r = f(data.contents_mut());
            // smoltcp leaves TCP checksums to the device (see `capabilities`).
            csum::fill_tcp(data.contents_mut());
            r
        };
        self.ready.push(desc);
        r
    }
}

impl XskTxToken<'_> {
    /// Multi-buffer mode: smoltcp writes the packet into the scratch buffer, which is then copied
    /// into as many frames as it spans, all but the last flagged "more follow".
    fn consume_multi_frame<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // The scratch buffer was sized for the MTU at open and smoltcp never sends more, so this
        // neither allocates nor (the device hands out tokens only with enough frames free) runs
        // out of frames.
        let packet = &mut self.scratch[..len];
        let r = f(packet);
        csum::fill_tcp(packet);
        for (part, more) in multibuf::parts(packet, self.frame_cap) {
            let mut desc = self
                .free
                .pop()
                .expect("a TX token is only handed out while the largest packet's frames are free");
            // SAFETY: `desc` is a free TX frame of this UMEM, referenced nowhere else until it is
            // produced to the TX ring.
            let mut data = unsafe { self.umem.data_mut(&mut desc) };
            let mut cursor = data.cursor();
            cursor.set_pos(part.len());
            data.contents_mut().copy_from_slice(part);
            desc.set_options(if more { XDP_PKT_CONTD } else { 0 });
            self.ready.push(desc);
        }
        *self.multi_frame += 1;
        r
    }
}

impl Device for XskDevice {
    type RxToken<'a> = XskRxToken<'a>;
    type TxToken<'a> = XskTxToken<'a>;

    fn receive(&mut self, _: Instant) -> Option<(XskRxToken<'_>, XskTxToken<'_>)> {
        if self.tx_free.len() < self.tx_need {
            self.reap();
        }
        if self.tx_free.len() < self.tx_need {
            // No frame to answer with (smoltcp may reply to any packet): leave RX in the ring.
            self.counters.tx_starved += 1;
            return None;
        }
        if let Some(frame) = self.injected.pop() {
            return Some((
                XskRxToken {
                    umem: &self.umem,
                    source: RxSource::Injected(frame),
                    done: &mut self.rx.done,
                },
                XskTxToken {
                    umem: &self.umem,
                    free: &mut self.tx_free,
                    ready: &mut self.tx_ready,
                    frame_cap: self.frame_cap,
                    scratch: &mut self.tx_scratch,
                    multi_frame: &mut self.counters.tx_multi_frame,
                },
            ));
        }
        let mut ring = UmemRing {
            umem: &self.umem,
            side: &mut self.rx,
        };
        let source = match self.path.next(&mut ring, &mut self.counters)? {
            Received::Frame(desc) => RxSource::Frame(desc),
            Received::Assembled => RxSource::Assembled(self.path.assembled()),
        };
        Some((
            XskRxToken {
                umem: &self.umem,
                source,
                done: &mut self.rx.done,
            },
            XskTxToken {
                umem: &self.umem,
                free: &mut self.tx_free,
                ready: &mut self.tx_ready,
                frame_cap: self.frame_cap,
                scratch: &mut self.tx_scratch,
                multi_frame: &mut self.counters.tx_multi_frame,
            },
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<XskTxToken<'_>> {
        if self.tx_free.len() < self.tx_need {
            self.reap();
            if self.tx_free.len() < self.tx_need {
                self.counters.tx_starved += 1;
                return None;
            }
        }
        Some(XskTxToken {
            umem: &self.umem,
            free: &mut self.tx_free,
            ready: &mut self.tx_ready,
            frame_cap: self.frame_cap,
            scratch: &mut self.tx_scratch,
            multi_frame: &mut self.counters.tx_multi_frame,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + 14;
        // The device checks and fills TCP checksums itself, faster than smoltcp (see `csum`).
        caps.checksum.tcp = Checksum::None;
        caps
    }
}
