//! The host's CPUs as a low-latency deployment sees them, and pinning threads to them.
//!
//! A trading host keeps its IO cores away from the scheduler with kernel parameters:
//! `isolcpus=` (no ordinary task is placed there), `nohz_full=` (no scheduler tick while one task
//! runs) and `rcu_nocbs=` (RCU callbacks run elsewhere). A process started normally on such a host
//! has an affinity mask *without* the isolated cores, so neither that mask nor
//! `available_parallelism` (which reads it) says which cores exist: [`online`] does, from
//! `/sys/devices/system/cpu/online`. A thread may still pin itself to an isolated core
//! ([`pin_current`]); [`current_affinity`] reads back where it really may run.

use std::io;

/// Parses a kernel CPU list such as `0-3,6,8-9` (the format of the files under
/// `/sys/devices/system/cpu/` and of `isolcpus=` / `nohz_full=` / `rcu_nocbs=`). Flags that
/// `isolcpus=` takes before its list (`domain,managed_irq,`) are skipped; a malformed part is
/// ignored rather than guessed at. The result is sorted and has no duplicates.
pub fn parse_cpu_list(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in s.trim().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
                    // A range is bounded so a corrupt file cannot make a huge list.
                    if a <= b {
                        out.extend(a..=b.min(a + 4096));
                    }
                }
            }
            None => {
                if let Ok(c) = part.parse() {
                    out.push(c);
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Formats a CPU list the way the kernel does (`0-3,6`); `none` when empty.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out
}

fn sys_list(name: &str) -> Option<Vec<usize>> {
    std::fs::read_to_string(format!("/sys/devices/system/cpu/{name}"))
        .ok()
        .map(|s| parse_cpu_list(&s))
}

/// The value of `param=` on the kernel command line (`/proc/cmdline`), if present.
fn cmdline_param(cmdline: &str, param: &str) -> Option<String> {
    cmdline.split_whitespace().find_map(|w| {
        w.strip_prefix(param)
            .and_then(|rest| rest.strip_prefix('='))
            .map(str::to_owned)
    })
}

/// The CPUs of this host as the kernel reports them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostCpus {
    /// CPUs that are online (`/sys/devices/system/cpu/online`): the ones a thread can be pinned to.
    pub online: Vec<usize>,
    /// CPUs isolated from the scheduler (`isolcpus=`; `/sys/devices/system/cpu/isolated`).
    pub isolated: Vec<usize>,
    /// CPUs without the periodic tick (`nohz_full=`; `/sys/devices/system/cpu/nohz_full`).
    pub nohz_full: Vec<usize>,
    /// CPUs whose RCU callbacks are offloaded (`rcu_nocbs=` on the kernel command line).
    pub rcu_nocbs: Vec<usize>,
    /// This process's affinity mask when it was read (what `taskset` or `isolcpus` left it).
    pub process_affinity: Vec<usize>,
}

impl HostCpus {
    /// Reads sysfs, `/proc/cmdline` and this thread's affinity.
    pub fn read() -> HostCpus {
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        let from_cmdline = |p: &str| {
            cmdline_param(&cmdline, p)
                .map(|v| parse_cpu_list(&v))
                .unwrap_or_default()
        };
        let online = sys_list("online").unwrap_or_default();
        HostCpus {
            online: if online.is_empty() {
                // No sysfs (a restricted container): the affinity mask is the best there is.
                current_affinity().unwrap_or_default()
            } else {
                online
            },
            isolated: sys_list("isolated")
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| from_cmdline("isolcpus")),
            nohz_full: sys_list("nohz_full")
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| from_cmdline("nohz_full")),
            rcu_nocbs: from_cmdline("rcu_nocbs"),
            process_affinity: current_affinity().unwrap_or_default(),
        }
    }
}

/// The CPUs that are online; an IO thread may be pinned to any of them.
pub fn online() -> Vec<usize> {
    HostCpus::read().online
}

/// The CPUs the calling thread may run on (`sched_getaffinity`).
pub fn current_affinity() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed; pid 0 is this thread.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let max = 8 * std::mem::size_of_val(&set);
    // SAFETY: `set` is initialised and `c` is below CPU_SETSIZE.
    Ok((0..max)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Pins the calling thread to `core` and reads the affinity back: it succeeds only when the thread
/// may then run on `core` alone. Works for a core outside the process's mask (an isolated core), as
/// long as the core is online and the thread's cpuset allows it.
pub fn pin_current(core: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if core >= 8 * std::mem::size_of_val(&set) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot pin to core {core}: beyond CPU_SETSIZE"),
        ));
    }
    // SAFETY: `core` is below CPU_SETSIZE (checked above) and `set` is a valid cpu_set_t.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if rc != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "cannot pin to core {core} (sched_setaffinity failed: {}); online cores: {}",
                io::Error::last_os_error(),
                format_cpu_list(&online())
            ),
        ));
    }
    let now = current_affinity()?;
    if now != [core] {
        return Err(io::Error::other(format!(
            "pinned to core {core}, but the thread's affinity reads back as {}",
            format_cpu_list(&now)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("2-3,6\n"), vec![2, 3, 6]);
        assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
        assert_eq!(parse_cpu_list("0"), vec![0]);
        assert_eq!(parse_cpu_list("x,1-a,4"), vec![4]);
        assert_eq!(parse_cpu_list("domain,managed_irq,2-3"), vec![2, 3]);
        assert_eq!(parse_cpu_list("5-3,1,1"), vec![1]);
    }

    #[test]
    fn cpu_lists_format_like_the_kernel() {
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
        assert_eq!(format_cpu_list(&[4]), "4");
        assert_eq!(format_cpu_list(&[]), "none");
        for s in ["0-3,6,8-9", "1", "0,2,4"] {
            assert_eq!(format_cpu_list(&parse_cpu_list(s)), s);
        }
    }

    #[test]
    fn command_line_parameters() {
        let c = "BOOT_IMAGE=/vmlinuz isolcpus=domain,2-3 nohz_full=2-3 rcu_nocbs=2-3 quiet";
        assert_eq!(cmdline_param(c, "rcu_nocbs").as_deref(), Some("2-3"));
        assert_eq!(
            parse_cpu_list(&cmdline_param(c, "isolcpus").unwrap()),
            vec![2, 3]
        );
        assert_eq!(cmdline_param(c, "nohz"), None);
    }

    #[test]
    fn this_host_has_online_cpus_and_an_affinity() {
        let host = HostCpus::read();
        assert!(!host.online.is_empty());
        assert!(!host.process_affinity.is_empty());
        assert!(host
            .process_affinity
            .iter()
            .all(|c| host.online.contains(c)));
    }

    #[test]
    fn pinning_reads_back() {
        let core = *online().last().unwrap();
        std::thread::spawn(move || {
            pin_current(core).unwrap();
            assert_eq!(current_affinity().unwrap(), vec![core]);
        })
        .join()
        .unwrap();
    }
}
