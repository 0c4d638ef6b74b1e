//! The steering program run in userspace: the instructions the stack loads (assembled by
//! `steer::program`), executed by a small eBPF interpreter for exactly the instructions it uses,
//! over one frame. The `xdp_rx` fuzz target sends arbitrary frames through it before the receive
//! path, so what reaches the stack is what the kernel would steer there, and checks it against the
//! rules in the module documentation of [`super`]. A load outside the frame is reported, as the kernel's verifier
//! would refuse a program that could make one.

use std::net::Ipv4Addr;

use super::{
    program, SteerMode, ADD64_K, ADD64_X, AND64_K, BPF_FUNC_REDIRECT_MAP, CALL, EXIT, JEQ32_K,
    JEQ_K, JGT_K, JGT_X, JLT_K, JNE32_K, JNE_K, LDX_B, LDX_H, LDX_W, LD_IMM64, LSH64_K, MOV64_K,
    MOV64_X, TO_BE, XDP_PASS,
};

/// What the program does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `XDP_PASS`: the kernel's.
    Kernel,
    /// `bpf_redirect_map` to the receiving queue's socket: the stack's (a socket is assumed bound).
    Stack,
}

/// Where the interpreter puts things in its address space.
const CTX: u64 = 0x100;
const DATA: u64 = 0x1_0000;
const XDP_REDIRECT: u64 = 4;

/// Runs the steering program for `ips`, `mode` and `kernel_arp` on `frame` (the first buffer of a
/// packet: all a multi-buffer-aware program sees directly). `Err` says which instruction loaded
/// outside the frame or was not understood.
pub fn verdict(
    frame: &[u8],
    ips: &[Ipv4Addr],
    mode: SteerMode,
    kernel_arp: bool,
) -> Result<Verdict, String> {
    if ips.is_empty() {
        return Err("no stack address".into());
    }
    let prog = program(ips, mode, kernel_arp, 3);
    let mut r = [0u64; 11];
    r[1] = CTX;
    r[10] = 0x8000;
    let end = DATA + frame.len() as u64;
    let load = |addr: u64, size: u64, pc: usize| -> Result<u64, String> {
        if (CTX..CTX + 24).contains(&addr) {
            return match (addr - CTX, size) {
                (0, 4) => Ok(DATA),
                (4, 4) => Ok(end),
                (16, 4) => Ok(0),
                other => Err(format!("{pc}: context load {other:?}")),
            };
        }
        if addr < DATA || addr + size > end {
            return Err(format!(
                "{pc}: load of {size} at {:#x} outside the frame of {} bytes",
                addr.wrapping_sub(DATA),
                frame.len()
            ));
        }
        let at = (addr - DATA) as usize;
        let mut v = [0u8; 8];
        v[..size as usize].copy_from_slice(&frame[at..at + size as usize]);
        Ok(u64::from_le_bytes(v))
    };
    let mut pc = 0;
    for _ in 0..10_000 {
        let insn = *prog.get(pc).ok_or_else(|| format!("{pc}: past the end"))?;
        let (dst, src) = ((insn.regs & 0x0f) as usize, (insn.regs >> 4) as usize);
        let k = i64::from(insn.imm) as u64;
        let mut jump = |taken: bool| {
            if taken {
                pc = (pc as isize + insn.off as isize) as usize;
            }
        };
        match insn.code {
            LDX_W | LDX_H | LDX_B => {
                let size = match insn.code {
                    LDX_W => 4,
                    LDX_H => 2,
                    _ => 1,
                };
                r[dst] = load(r[src].wrapping_add(insn.off as i64 as u64), size, pc)?;
            }
            MOV64_X => r[dst] = r[src],
            MOV64_K => r[dst] = k,
            ADD64_K => r[dst] = r[dst].wrapping_add(k),
            ADD64_X => r[dst] = r[dst].wrapping_add(r[src]),
            AND64_K => r[dst] &= k,
            LSH64_K => r[dst] <<= insn.imm & 63,
            TO_BE if insn.imm == 16 => r[dst] = u64::from((r[dst] as u16).swap_bytes()),
            JEQ_K => jump(r[dst] == k),
            JNE_K => jump(r[dst] != k),
            JGT_X => jump(r[dst] > r[src]),
            JGT_K => jump(r[dst] > k),
            JLT_K => jump(r[dst] < k),
            JEQ32_K => jump(r[dst] as u32 == insn.imm as u32),
            JNE32_K => jump(r[dst] as u32 != insn.imm as u32),
            0x05 => jump(true),
            LD_IMM64 => {
                r[dst] = u64::from(insn.imm as u32);
                pc += 1;
            }
            CALL if insn.imm == BPF_FUNC_REDIRECT_MAP => r[0] = XDP_REDIRECT,
            EXIT => {
                return match r[0] {
                    XDP_REDIRECT => Ok(Verdict::Stack),
                    v if v == XDP_PASS as u64 => Ok(Verdict::Kernel),
                    v => Err(format!("{pc}: returned {v}")),
                };
            }
            code => return Err(format!("{pc}: instruction {code:#04x} not understood")),
        }
        pc += 1;
    }
    Err("no exit after 10000 instructions".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(dst: [u8; 4], proto: u8, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 9] = proto;
        f[30..34].copy_from_slice(&dst);
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn the_rules_of_the_module_documentation_hold() {
        let us = Ipv4Addr::new(10, 77, 1, 3);
        let ded = SteerMode::DedicatedIp;
        let v = |f: &[u8], mode, karp| verdict(f, &[us], mode, karp).unwrap();
        assert_eq!(v(&ipv4(us.octets(), 17, 9), ded, false), Verdict::Stack);
        assert_eq!(v(&ipv4([10, 77, 1, 2], 6, 9), ded, false), Verdict::Kernel);
        assert_eq!(
            v(&ipv4(us.octets(), 6, 9)[..41], ded, false),
            Verdict::Kernel
        );
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        arp[38..42].copy_from_slice(&us.octets());
        assert_eq!(v(&arp, ded, false), Verdict::Stack);
        assert_eq!(v(&arp, ded, true), Verdict::Kernel);
        let shared = SteerMode::SharedIp {
            first: 40000,
            last: 40999,
        };
        assert_eq!(
            v(&ipv4(us.octets(), 6, 40500), shared, false),
            Verdict::Stack
        );
        assert_eq!(
            v(&ipv4(us.octets(), 6, 41000), shared, false),
            Verdict::Kernel
        );
        assert_eq!(
            v(&ipv4(us.octets(), 17, 40500), shared, false),
            Verdict::Kernel
        );
        assert_eq!(v(&arp, shared, false), Verdict::Kernel);
        // IHL 15: the port lies past a 42-byte frame; the program checks before it loads.
        let mut long = ipv4(us.octets(), 6, 40500);
        long[14] = 0x4f;
        assert_eq!(v(&long[..42], shared, false), Verdict::Kernel);
    }
}
