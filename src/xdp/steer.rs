//! The steering XDP program: what goes to the userspace stack, and what stays with the kernel.
//!
//! The program is assembled here, instruction by instruction, and loaded with the `bpf(2)` system
//! call; `nic/steer.c` is the same program in C, kept as the readable reference (the two must
//! match; the veth tests check the behaviour). Per packet:
//!
//! - ARP whose target protocol address is our IP → the XSK of the receiving queue, in
//!   [`SteerMode::DedicatedIp`] only: a shared address's ARP belongs to the kernel, which must keep
//!   resolving its own neighbours (the stack learns its next hops from the kernel's table instead);
//! - IPv4 to our IP → the XSK ([`SteerMode::DedicatedIp`]), or, in [`SteerMode::SharedIp`], only
//!   TCP to our IP whose destination port lies in the reserved range;
//! - everything else → `XDP_PASS` (the kernel), and so does a packet for a queue without a socket
//!   (the fallback action of `bpf_redirect_map`).
//!
//! The program is attached through a BPF link (`BPF_LINK_CREATE`): the link lives as long as its
//! descriptor, so the program leaves the interface when the process exits or is killed — no
//! cleanup step can be forgotten. Nothing is pinned in bpffs.
//!
//! Written by hand rather than compiled from C at build time so the build needs no BPF toolchain
//! and no libbpf of a particular version: the program is 40-odd instructions.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub mod sim;

/// What the steering program sends to the userspace stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SteerMode {
    /// The stack has an IPv4 address of its own: every IPv4 packet to it.
    DedicatedIp,
    /// The stack shares the kernel's address: only TCP to the port range `first..=last`, which the
    /// kernel must have in `net.ipv4.ip_local_reserved_ports`.
    SharedIp {
        /// First port of the range.
        first: u16,
        /// Last port of the range (inclusive).
        last: u16,
    },
}

/// How the program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`): before an skb is built. Needs driver support.
    Native,
    /// Generic (`XDP_FLAGS_SKB_MODE`): after the skb is built; works on every interface.
    Generic,
}

impl AttachMode {
    fn flags(self) -> u32 {
        match self {
            AttachMode::Native => XDP_FLAGS_DRV_MODE,
            AttachMode::Generic => XDP_FLAGS_SKB_MODE,
        }
    }
}

const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

// bpf(2) commands, map and program types, attach types (include/uapi/linux/bpf.h).
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;
/// `prog_flags`: the XDP program handles multi-buffer packets.
const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;

// XDP actions and the helper used.
const XDP_PASS: i32 = 2;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    /// dst register in the low nibble, src register in the high nibble.
    regs: u8,
    off: i16,
    imm: i32,
}

// Opcodes (class | op | source), from include/uapi/linux/bpf_common.h and bpf.h.
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const LDX_H: u8 = 0x69; // BPF_LDX | BPF_MEM | BPF_H
const LDX_B: u8 = 0x71; // BPF_LDX | BPF_MEM | BPF_B
const MOV64_X: u8 = 0xbf;
const MOV64_K: u8 = 0xb7;
const ADD64_K: u8 = 0x07;
const ADD64_X: u8 = 0x0f;
const AND64_K: u8 = 0x57;
const LSH64_K: u8 = 0x67;
const TO_BE: u8 = 0xdc; // BPF_ALU | BPF_END | BPF_TO_BE
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const JGT_X: u8 = 0x2d;
const JGT_K: u8 = 0x25;
const JLT_K: u8 = 0xa5;
const JNE32_K: u8 = 0x56; // BPF_JMP32: compares the low 32 bits, no sign extension of imm
const JEQ32_K: u8 = 0x16;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const LD_IMM64: u8 = 0x18;
const PSEUDO_MAP_FD: u8 = 1;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// Jump targets of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Pass,
    Arp,
    Ours,
    Redirect,
}

/// A tiny assembler: instructions plus jumps to labels, resolved at the end.
#[derive(Debug, Default)]
struct Asm {
    insns: Vec<Insn>,
    fixups: Vec<(usize, Label)>,
    labels: Vec<(Label, usize)>,
}

impl Asm {
    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(Insn {
            code,
            regs: dst | (src << 4),
            off,
            imm,
        });
    }
    fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, to: Label) {
        self.fixups.push((self.insns.len(), to));
        self.op(code, dst, src, 0, imm);
    }
    fn label(&mut self, l: Label) {
        self.labels.push((l, self.insns.len()));
    }
    fn finish(mut self) -> Vec<Insn> {
        for (at, to) in &self.fixups {
            let target = self
                .labels
                .iter()
                .find(|(l, _)| l == to)
                .map(|(_, i)| *i)
                .expect("every jump target is placed");
            self.insns[*at].off = (target as isize - *at as isize - 1) as i16;
        }
        self.insns
    }
}

/// The program's instructions for the stack addresses `ips` (one per IO thread in dedicated-IP
/// mode; the one shared address in shared-IP mode) and `mode`, with `map_fd` as the XSK map.
/// `kernel_arp`: ARP stays with the kernel in dedicated-IP mode too (several stacks on one
/// interface: an ARP packet reaches whichever queue the NIC picks, not its stack's; the kernel
/// answers for the stack addresses and the stacks learn their next hops from its table). Shared-IP
/// mode always leaves ARP to the kernel.
///
/// Packet loads are little-endian on the hosts this runs on, so constants compared against raw
/// packet fields are the network-order bytes read as a native integer.
///
/// # Panics
/// When `ips` is empty (a program that steers nothing is a caller's bug).
pub(crate) fn program(
    ips: &[Ipv4Addr],
    mode: SteerMode,
    kernel_arp: bool,
    map_fd: RawFd,
) -> Vec<Insn> {
    let (last, others) = ips.split_last().expect("at least one stack address");
    let raw = |ip: &Ipv4Addr| i32::from_ne_bytes(ip.octets());
    let mut a = Asm::default();
    // r2 = data, r3 = data_end (struct xdp_md), r1 stays the context for the helper.
    a.op(LDX_W, R2, R1, 0, 0);
    a.op(LDX_W, R3, R1, 4, 0);
    // Ethernet + ARP for IPv4 is 42 bytes, Ethernet + minimal IPv4 34: require 42 up front (a
    // shorter frame is never ours) and check more where options make headers longer.
    a.op(MOV64_X, R4, R2, 0, 0);
    a.op(ADD64_K, R4, 0, 0, 42);
    a.jump(JGT_X, R4, R3, 0, Label::Pass);
    // EtherType. A shared address's ARP stays with the kernel (the IPv4 check below passes it).
    a.op(LDX_H, R5, R2, 12, 0);
    let dedicated = mode == SteerMode::DedicatedIp;
    let steer_arp = dedicated && !kernel_arp;
    if steer_arp {
        a.jump(
            JEQ_K,
            R5,
            0,
            i32::from(u16::from_ne_bytes([0x08, 0x06])),
            Label::Arp,
        );
    }
    a.jump(
        JNE_K,
        R5,
        0,
        i32::from(u16::from_ne_bytes([0x08, 0x00])),
        Label::Pass,
    );
    // IPv4 destination address: one of ours (32-bit compares, so an address above 128.0.0.0,
    // negative as i32, is not sign-extended).
    a.op(LDX_W, R5, R2, 14 + 16, 0);
    for ip in others {
        a.jump(JEQ32_K, R5, 0, raw(ip), Label::Ours);
    }
    a.jump(JNE32_K, R5, 0, raw(last), Label::Pass);
    a.label(Label::Ours);
    if let SteerMode::SharedIp { first, last } = mode {
        // TCP only.
        a.op(LDX_B, R5, R2, 14 + 9, 0);
        a.jump(JNE_K, R5, 0, 6, Label::Pass);
        // Header length in bytes: (first byte & 0x0f) * 4, at most 60.
        a.op(LDX_B, R4, R2, 14, 0);
        a.op(AND64_K, R4, 0, 0, 0x0f);
        a.op(LSH64_K, R4, 0, 0, 2);
        // A non-first fragment carries no TCP header: leave it to the kernel (fragment offset).
        a.op(LDX_H, R5, R2, 14 + 6, 0);
        a.op(
            AND64_K,
            R5,
            0,
            0,
            i32::from(u16::from_ne_bytes([0x1f, 0xff])),
        );
        a.jump(JNE_K, R5, 0, 0, Label::Pass);
        // r4 = start of TCP; the destination port must be inside the frame.
        a.op(ADD64_X, R4, R2, 0, 0);
        a.op(ADD64_K, R4, 0, 0, 14);
        a.op(MOV64_X, R5, R4, 0, 0);
        a.op(ADD64_K, R5, 0, 0, 4);
        a.jump(JGT_X, R5, R3, 0, Label::Pass);
        a.op(LDX_H, R5, R4, 2, 0);
        a.op(TO_BE, R5, 0, 0, 16);
        a.jump(JLT_K, R5, 0, i32::from(first), Label::Pass);
        a.jump(JGT_K, R5, 0, i32::from(last), Label::Pass);
    }
    if steer_arp {
        a.jump(0x05, 0, 0, 0, Label::Redirect); // ja
        a.label(Label::Arp);
        // ARP target protocol address (Ethernet 14 + ARP 24).
        a.op(LDX_W, R5, R2, 14 + 24, 0);
        for ip in others {
            a.jump(JEQ32_K, R5, 0, raw(ip), Label::Redirect);
        }
        a.jump(JNE32_K, R5, 0, raw(last), Label::Pass);
    }
    a.label(Label::Redirect);
    // bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS): no socket on the queue → kernel.
    a.op(LDX_W, R2, R1, 16, 0);
    a.op(LD_IMM64, R1, PSEUDO_MAP_FD, 0, map_fd);
    a.op(0, 0, 0, 0, 0);
    a.op(MOV64_K, R3, 0, 0, XDP_PASS);
    a.op(CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP);
    a.op(EXIT, 0, 0, 0, 0);
    a.label(Label::Pass);
    a.op(MOV64_K, R0, 0, 0, XDP_PASS);
    a.op(EXIT, 0, 0, 0, 0);
    a.finish()
}

fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> io::Result<i64> {
    // SAFETY: `attr` is a zero-initialised, 128-byte `union bpf_attr` image that outlives the call;
    // every pointer stored in it (by the callers) refers to memory that also outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(attr) as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn fd_from(rc: i64) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(rc as RawFd) }
}

fn pack(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
}

/// The XSK map: queue index → AF_XDP socket.
#[derive(Debug)]
pub struct XskMap {
    fd: OwnedFd,
}

impl XskMap {
    /// Creates a map for queues `0..queues`.
    pub fn new(queues: u32) -> io::Result<XskMap> {
        let mut attr = [0u64; 16];
        attr[0] = pack(BPF_MAP_TYPE_XSKMAP, 4); // map_type, key_size
        attr[1] = pack(4, queues.max(1)); // value_size, max_entries
        let fd = bpf(BPF_MAP_CREATE, &mut attr)
            .map_err(|e| io::Error::new(e.kind(), format!("create XSK map: {e}")))?;
        Ok(XskMap { fd: fd_from(fd) })
    }

    /// Sends queue `queue`'s redirected packets to the AF_XDP socket `xsk_fd`.
    pub fn insert(&self, queue: u32, xsk_fd: RawFd) -> io::Result<()> {
        let value = xsk_fd as u32;
        let mut attr = [0u64; 16];
        attr[0] = u64::from(self.fd.as_raw_fd() as u32);
        attr[1] = &queue as *const u32 as u64;
        attr[2] = &value as *const u32 as u64;
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr)
            .map(drop)
            .map_err(|e| io::Error::new(e.kind(), format!("XSK map update: {e}")))
    }

    /// Removes queue `queue`'s socket.
    pub fn remove(&self, queue: u32) -> io::Result<()> {
        let mut attr = [0u64; 16];
        attr[0] = u64::from(self.fd.as_raw_fd() as u32);
        attr[1] = &queue as *const u32 as u64;
        bpf(BPF_MAP_DELETE_ELEM, &mut attr).map(drop)
    }
}

/// The loaded steering program attached to an interface through a BPF link; dropping it (or the
/// process ending) detaches the program.
#[derive(Debug)]
pub struct SteerLink {
    link: OwnedFd,
    _prog: OwnedFd,
    map: XskMap,
    ifindex: u32,
    mode: AttachMode,
}

impl SteerLink {
    /// Loads the program for the stack addresses `ips` and `mode` with `map` and
    /// attaches it to `ifindex` in `attach` mode;
    /// `frags`: declared multi-buffer aware (`BPF_F_XDP_HAS_FRAGS`: it reads only the headers, which
    /// are in the first buffer), so the interface may carry packets larger than a page and pass
    /// them whole to a multi-buffer socket.
    ///
    /// Fails with `EBUSY` when another program is attached to the interface (for example libxdp's),
    /// and with `EPERM` without `CAP_BPF`/`CAP_NET_ADMIN`.
    pub fn attach(
        map: XskMap,
        ips: &[Ipv4Addr],
        mode: SteerMode,
        kernel_arp: bool,
        ifindex: u32,
        attach: AttachMode,
        frags: bool,
    ) -> io::Result<SteerLink> {
        if ips.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "steering program: no stack address",
            ));
        }
        let insns = program(ips, mode, kernel_arp, map.fd.as_raw_fd());
        let license = c"GPL";
        let name = *b"hotwire_steer\0\0\0";
        let mut log = vec![0u8; 16 * 1024];
        let mut attr = [0u64; 16];
        attr[0] = pack(BPF_PROG_TYPE_XDP, insns.len() as u32);
        attr[1] = insns.as_ptr() as u64;
        attr[2] = license.as_ptr() as u64;
        attr[3] = pack(1, log.len() as u32); // log_level, log_size
        attr[4] = log.as_mut_ptr() as u64;
        attr[5] = pack(0, if frags { BPF_F_XDP_HAS_FRAGS } else { 0 }); // kern_version, prog_flags
        attr[6] = u64::from_ne_bytes(name[..8].try_into().expect("8 bytes"));
        attr[7] = u64::from_ne_bytes(name[8..].try_into().expect("8 bytes"));
        attr[8] = pack(0, BPF_XDP); // prog_ifindex, expected_attach_type
        let prog = match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => fd_from(fd),
            Err(e) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                let last = text.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
                return Err(io::Error::new(
                    e.kind(),
                    format!("load steering program: {e} (verifier: {last})"),
                ));
            }
        };
        let mut attr = [0u64; 16];
        attr[0] = pack(prog.as_raw_fd() as u32, ifindex);
        attr[1] = pack(BPF_XDP, attach.flags());
        let link = bpf(BPF_LINK_CREATE, &mut attr).map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::ERANGE) && !frags {
                " (the interface's MTU is more than one page takes: native XDP there needs the \
                 multi-buffer mode, or a smaller MTU)"
            } else {
                ""
            };
            io::Error::new(
                e.kind(),
                format!("attach steering program ({attach:?} mode): {e}{hint}"),
            )
        })?;
        Ok(SteerLink {
            link: fd_from(link),
            _prog: prog,
            map,
            ifindex,
            mode: attach,
        })
    }

    /// The XSK map the program redirects through.
    pub fn map(&self) -> &XskMap {
        &self.map
    }

    /// The interface index the program is attached to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The attach mode in effect.
    pub fn attach_mode(&self) -> AttachMode {
        self.mode
    }

    /// The link's descriptor (closing it detaches the program).
    pub fn link_fd(&self) -> RawFd {
        self.link.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_resolve_inside_the_program() {
        for mode in [
            SteerMode::DedicatedIp,
            SteerMode::SharedIp {
                first: 40000,
                last: 40999,
            },
        ] {
            let p = program(&[Ipv4Addr::new(10, 77, 1, 200)], mode, false, 7);
            for (i, insn) in p.iter().enumerate() {
                let class = insn.code & 0x07;
                let is_jump =
                    (class == 0x05 || class == 0x06) && insn.code != CALL && insn.code != EXIT;
                if is_jump {
                    let to = i as isize + 1 + insn.off as isize;
                    assert!(to > i as isize && (to as usize) < p.len(), "{i}: {insn:?}");
                }
            }
            // Both exits return: the last instruction is an exit.
            assert_eq!(p.last().map(|i| i.code), Some(EXIT));
        }
    }

    #[test]
    fn address_constant_is_the_raw_network_order_word() {
        let p = program(
            &[Ipv4Addr::new(10, 77, 1, 200)],
            SteerMode::DedicatedIp,
            false,
            7,
        );
        let want = i32::from_ne_bytes([10, 77, 1, 200]);
        // Two comparisons against our address (IPv4 destination and ARP target), 32-bit compares so
        // an address above 128.0.0.0 (negative as i32) is not sign-extended.
        let hits: Vec<_> = p.iter().filter(|i| i.code == JNE32_K).collect();
        assert_eq!(hits.len(), 2);
        assert!(hits.iter().all(|i| i.imm == want));
    }

    #[test]
    fn every_stack_address_is_steered() {
        let ips = [
            Ipv4Addr::new(10, 77, 1, 2),
            Ipv4Addr::new(10, 77, 1, 3),
            Ipv4Addr::new(200, 1, 1, 4),
        ];
        let p = program(&ips, SteerMode::DedicatedIp, false, 7);
        let raw: Vec<i32> = ips
            .iter()
            .map(|ip| i32::from_ne_bytes(ip.octets()))
            .collect();
        // IPv4 destination and ARP target: the first addresses jump on equality, the last falls
        // through or passes.
        let eq: Vec<i32> = p
            .iter()
            .filter(|i| i.code == JEQ32_K)
            .map(|i| i.imm)
            .collect();
        let ne: Vec<i32> = p
            .iter()
            .filter(|i| i.code == JNE32_K)
            .map(|i| i.imm)
            .collect();
        assert_eq!(eq, [raw[0], raw[1], raw[0], raw[1]]);
        assert_eq!(ne, [raw[2], raw[2]]);
        for (i, insn) in p.iter().enumerate() {
            if insn.code == JEQ32_K || insn.code == JNE32_K {
                let to = i as isize + 1 + insn.off as isize;
                assert!(to > i as isize && (to as usize) < p.len(), "{i}: {insn:?}");
            }
        }
    }

    #[test]
    fn several_stacks_can_leave_arp_to_the_kernel() {
        let ips = [Ipv4Addr::new(10, 77, 1, 2), Ipv4Addr::new(10, 77, 1, 3)];
        let p = program(&ips, SteerMode::DedicatedIp, true, 7);
        let arp = i32::from(u16::from_ne_bytes([0x08, 0x06]));
        assert!(!p.iter().any(|i| i.code == JEQ_K && i.imm == arp));
        // Only the IPv4 destination is compared with the addresses.
        assert_eq!(
            p.iter()
                .filter(|i| i.code == JEQ32_K || i.code == JNE32_K)
                .count(),
            2
        );
    }

    #[test]
    fn shared_ip_mode_leaves_arp_to_the_kernel() {
        let mode = SteerMode::SharedIp {
            first: 40000,
            last: 40999,
        };
        let p = program(&[Ipv4Addr::new(10, 77, 1, 2)], mode, false, 7);
        let arp = i32::from(u16::from_ne_bytes([0x08, 0x06]));
        assert!(
            !p.iter().any(|i| i.code == JEQ_K && i.imm == arp),
            "no branch on the ARP EtherType"
        );
        // Only the IPv4 destination is compared with our address.
        assert_eq!(p.iter().filter(|i| i.code == JNE32_K).count(), 1);
    }

    #[test]
    fn map_fd_is_a_pseudo_map_load() {
        let p = program(&[Ipv4Addr::LOCALHOST], SteerMode::DedicatedIp, false, 42);
        let at = p.iter().position(|i| i.code == LD_IMM64).expect("ld_imm64");
        assert_eq!(p[at].imm, 42);
        assert_eq!(p[at].regs >> 4, PSEUDO_MAP_FD);
        assert_eq!(
            p[at + 1],
            Insn {
                code: 0,
                regs: 0,
                off: 0,
                imm: 0
            }
        );
    }
}
