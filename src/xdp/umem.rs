//! UMEM sizing and placement: how many frames, and on which pages.
//!
//! The UMEM is registered with the kernel, which pins its pages and charges them to
//! `RLIMIT_MEMLOCK` unless the process has `CAP_IPC_LOCK`. [`plan`] therefore shrinks the frame
//! count to what the limit allows when the capability is missing (and says so), and puts the
//! region on huge pages when enough are free (fewer TLB misses on the packet path).

use std::io;

/// Frames set aside in a memlock budget for the rings and the kernel's own pinned pages.
const MEMLOCK_RESERVE: u64 = 512 * 1024;

/// The smallest UMEM worth running a TCP stack on: a few frames per ring.
pub const MIN_FRAMES: u32 = 64;

/// What the UMEM will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UmemPlan {
    /// Frames (a power of two, split evenly between receive and transmit).
    pub frames: u32,
    /// Bytes per frame.
    pub frame_size: u32,
    /// Backed by huge pages.
    pub huge_pages: bool,
    /// The count was lowered to fit `RLIMIT_MEMLOCK` (no `CAP_IPC_LOCK`).
    pub limited_by_memlock: bool,
}

/// The host facts the plan depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemFacts {
    /// `CAP_IPC_LOCK` is in the effective set.
    pub cap_ipc_lock: bool,
    /// Soft `RLIMIT_MEMLOCK` in bytes (`u64::MAX`: unlimited).
    pub memlock: u64,
    /// Free huge pages.
    pub huge_free: u64,
    /// Huge page size in bytes.
    pub huge_size: u64,
}

impl MemFacts {
    /// Reads the facts of this process and host.
    pub fn read() -> MemFacts {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let field = |name: &str| {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        MemFacts {
            cap_ipc_lock: has_capability(CAP_IPC_LOCK),
            memlock: memlock_limit(),
            huge_free: field("HugePages_Free:"),
            huge_size: field("Hugepagesize:") * 1024,
        }
    }
}

/// Plans a UMEM of `frames` frames of `frame_size` bytes (`huge`: use huge pages if free).
///
/// Errors when not even [`MIN_FRAMES`] fit the memlock limit.
pub fn plan(frames: u32, frame_size: u32, huge: bool, facts: &MemFacts) -> io::Result<UmemPlan> {
    let mut count = frames.max(MIN_FRAMES).next_power_of_two();
    let mut limited = false;
    if !facts.cap_ipc_lock && facts.memlock != u64::MAX {
        let budget = facts.memlock.saturating_sub(MEMLOCK_RESERVE);
        let fit = budget / u64::from(frame_size);
        if fit < u64::from(MIN_FRAMES) {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "RLIMIT_MEMLOCK is {} KiB and the process lacks CAP_IPC_LOCK: not even {MIN_FRAMES} \
                     frames of {frame_size} bytes fit",
                    facts.memlock / 1024
                ),
            ));
        }
        if u64::from(count) > fit {
            // The largest power of two that fits (the rings want powers of two).
            count = 1 << (63 - fit.leading_zeros());
            limited = true;
        }
    }
    let bytes = u64::from(count) * u64::from(frame_size);
    let huge_pages = huge && facts.huge_size > 0 && facts.huge_free * facts.huge_size >= bytes;
    Ok(UmemPlan {
        frames: count,
        frame_size,
        huge_pages,
        limited_by_memlock: limited,
    })
}

/// `CAP_IPC_LOCK` (include/uapi/linux/capability.h).
pub const CAP_IPC_LOCK: u32 = 14;
/// `CAP_NET_ADMIN`.
pub const CAP_NET_ADMIN: u32 = 12;
/// `CAP_NET_RAW`.
pub const CAP_NET_RAW: u32 = 13;
/// `CAP_SYS_ADMIN` (what `bpf(2)` needed before `CAP_BPF`).
pub const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_BPF`.
pub const CAP_BPF: u32 = 39;

/// Whether capability `cap` is in this process's effective set (`CapEff` in /proc/self/status).
pub fn has_capability(cap: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|mask| mask & (1u64 << cap) != 0)
}

/// The soft `RLIMIT_MEMLOCK` in bytes (`u64::MAX` when unlimited).
pub fn memlock_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the live local it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        lim.rlim_cur
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(cap: bool, memlock: u64, huge_free: u64) -> MemFacts {
        MemFacts {
            cap_ipc_lock: cap,
            memlock,
            huge_free,
            huge_size: 2 << 20,
        }
    }

    #[test]
    fn with_the_capability_the_request_stands() {
        let p = plan(16384, 4096, false, &facts(true, 8 << 20, 0)).unwrap();
        assert_eq!(
            (p.frames, p.limited_by_memlock, p.huge_pages),
            (16384, false, false)
        );
    }

    #[test]
    fn without_it_the_count_fits_memlock() {
        let p = plan(16384, 4096, false, &facts(false, 8 << 20, 0)).unwrap();
        assert!(p.limited_by_memlock);
        assert!(u64::from(p.frames) * 4096 <= (8 << 20) - MEMLOCK_RESERVE);
        assert!(p.frames.is_power_of_two());
        assert_eq!(p.frames, 1024);
        assert!(plan(16384, 4096, false, &facts(false, 64 << 10, 0)).is_err());
        let unlimited = plan(16384, 4096, false, &facts(false, u64::MAX, 0)).unwrap();
        assert!(!unlimited.limited_by_memlock);
    }

    #[test]
    fn huge_pages_only_when_enough_are_free() {
        // 4096 frames of 4 KiB = 16 MiB = 8 huge pages.
        assert!(
            plan(4096, 4096, true, &facts(true, 0, 8))
                .unwrap()
                .huge_pages
        );
        assert!(
            !plan(4096, 4096, true, &facts(true, 0, 7))
                .unwrap()
                .huge_pages
        );
        assert!(
            !plan(4096, 4096, false, &facts(true, 0, 64))
                .unwrap()
                .huge_pages
        );
        let odd = plan(1000, 2048, false, &facts(true, 0, 0)).unwrap();
        assert_eq!(odd.frames, 1024);
    }
}
