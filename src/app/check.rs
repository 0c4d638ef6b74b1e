//! `hotwire check`: validate a configuration and report what the host offers a low-latency client.
//!
//! Each finding is `ok`, `warn` (works, but costs latency) or `FAIL` (the configuration cannot run
//! as written). The exit status is non-zero when anything failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::Config;

/// `hotwire check` options.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The configuration to validate.
    #[arg(default_value = "config/hotwire.toml")]
    pub config: PathBuf,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but not at its best.
    Warn,
    /// Blocks the configuration.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Severity.
    pub level: Level,
    /// Area (`config`, `cpu`, `memlock`, …).
    pub area: &'static str,
    /// What was found.
    pub message: String,
}

fn finding(level: Level, area: &'static str, message: impl Into<String>) -> Finding {
    Finding {
        level,
        area,
        message: message.into(),
    }
}

/// Parses a kernel CPU list such as `2-3,6` (the format of `/sys/devices/system/cpu/isolated`).
pub fn parse_cpu_list(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
                    out.extend(a..=b.min(a + 4096));
                }
            }
            None => {
                if let Ok(c) = part.trim().parse() {
                    out.push(c);
                }
            }
        }
    }
    out
}

/// The cores the kernel keeps the scheduler off (`isolcpus`).
pub fn isolated_cores() -> Vec<usize> {
    std::fs::read_to_string("/sys/devices/system/cpu/isolated")
        .map(|s| parse_cpu_list(&s))
        .unwrap_or_default()
}

/// `RLIMIT_MEMLOCK` (soft, bytes); `None` when unlimited.
pub fn memlock_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid, writable rlimit for the duration of the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) };
    if rc != 0 || r.rlim_cur == libc::RLIM_INFINITY {
        None
    } else {
        Some(r.rlim_cur)
    }
}

/// Whether this process holds capability number `cap` in its effective set.
pub fn has_capability(cap: u32) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1u64 << cap) != 0)
}

/// `CAP_IPC_LOCK`: lock memory beyond `RLIMIT_MEMLOCK`.
pub const CAP_IPC_LOCK: u32 = 14;
/// `CAP_NET_ADMIN`: attach XDP programs to interfaces, configure them.
pub const CAP_NET_ADMIN: u32 = 12;
/// `CAP_NET_RAW`: open AF_XDP (and raw) sockets.
pub const CAP_NET_RAW: u32 = 13;
/// `CAP_BPF` (Linux 5.8+): load BPF programs and create maps.
pub const CAP_BPF: u32 = 39;

/// The capabilities the AF_XDP path needs, with what each is for (`CAP_SYS_ADMIN` is not one).
pub const XDP_CAPABILITIES: [(u32, &str, &str, Level); 4] = [
    (
        CAP_NET_RAW,
        "CAP_NET_RAW",
        "opening the AF_XDP socket",
        Level::Fail,
    ),
    (
        CAP_NET_ADMIN,
        "CAP_NET_ADMIN",
        "attaching the steering program to the interface with a BPF link",
        Level::Fail,
    ),
    (
        CAP_BPF,
        "CAP_BPF",
        "loading the steering program and its XSK map",
        Level::Fail,
    ),
    (
        CAP_IPC_LOCK,
        "CAP_IPC_LOCK",
        "registering a UMEM larger than RLIMIT_MEMLOCK",
        Level::Warn,
    ),
];

/// The highest capability number this kernel knows (`CAP_BPF` needs 39, Linux 5.8).
fn last_capability() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// When `config` takes the AF_XDP path: each capability it needs, held or missing, and what for.
/// A missing one that blocks AF_XDP fails the check unless `fallback` lets the kernel path run.
pub fn capability_findings(config: Option<&Config>) -> Vec<Finding> {
    let Some(crate::config::NetworkPath::Xdp(x)) = config.map(|c| &c.network) else {
        return Vec::new();
    };
    let held = |cap: u32| has_capability(cap);
    let bpf_known = last_capability().is_none_or(|last| last >= CAP_BPF);
    XDP_CAPABILITIES
        .iter()
        .map(|&(cap, name, what, blocking)| {
            if cap == CAP_BPF && !bpf_known {
                return finding(
                    if x.fallback { Level::Warn } else { Level::Fail },
                    "caps",
                    format!(
                        "{name} unknown to this kernel (before 5.8): loading the steering program \
                         needs CAP_SYS_ADMIN instead"
                    ),
                );
            }
            if held(cap) {
                finding(Level::Ok, "caps", format!("{name} held ({what})"))
            } else {
                let level = match blocking {
                    Level::Fail if x.fallback => Level::Warn,
                    l => l,
                };
                let then = if level == Level::Warn && blocking == Level::Fail {
                    "; the kernel path will be used (fallback)"
                } else if blocking == Level::Warn {
                    "; the UMEM is sized down to fit"
                } else {
                    ""
                };
                finding(
                    level,
                    "caps",
                    format!("{name} missing: needed for {what}{then}"),
                )
            }
        })
        .collect()
}

/// Huge pages: (total, free, page size in KiB) from `/proc/meminfo`.
pub fn huge_pages() -> (u64, u64, u64) {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (
        field("HugePages_Total:"),
        field("HugePages_Free:"),
        field("Hugepagesize:"),
    )
}

/// Checks the host (and `config`, when it parsed) and returns the findings.
pub fn host_findings(config: Option<&Config>) -> Vec<Finding> {
    let mut out = Vec::new();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let isolated = isolated_cores();
    out.push(finding(
        Level::Ok,
        "cpu",
        format!(
            "{cores} cores; isolated: {}",
            if isolated.is_empty() {
                "none".to_owned()
            } else {
                format!("{isolated:?}")
            }
        ),
    ));
    if let Some(config) = config {
        for t in &config.threads {
            match t.core {
                Some(c) if isolated.contains(&c) => out.push(finding(
                    Level::Ok,
                    "cpu",
                    format!("thread {:?} pinned to isolated core {c}", t.name),
                )),
                Some(c) => out.push(finding(
                    Level::Warn,
                    "cpu",
                    format!(
                        "thread {:?} pinned to core {c}, which is not isolated (add isolcpus={c} \
                         nohz_full={c} to the kernel command line): expect scheduler jitter",
                        t.name
                    ),
                )),
                None => out.push(finding(
                    Level::Warn,
                    "cpu",
                    format!("thread {:?} is not pinned (set core = N)", t.name),
                )),
            }
        }
    }
    let ipc_lock = has_capability(CAP_IPC_LOCK);
    match memlock_limit() {
        None => out.push(finding(Level::Ok, "memlock", "RLIMIT_MEMLOCK unlimited")),
        Some(l) => out.push(finding(
            if ipc_lock { Level::Ok } else { Level::Warn },
            "memlock",
            format!(
                "RLIMIT_MEMLOCK {} KiB; CAP_IPC_LOCK {}",
                l / 1024,
                if ipc_lock {
                    "held (locked memory is not limited)"
                } else {
                    "missing: buffers that must be locked (AF_XDP UMEM) are capped at the limit"
                }
            ),
        )),
    }
    let (total, free, size_kib) = huge_pages();
    out.push(finding(
        if total > 0 { Level::Ok } else { Level::Warn },
        "hugepages",
        if total > 0 {
            format!("{free} of {total} huge pages of {size_kib} KiB free")
        } else {
            format!(
                "no huge pages reserved (echo N > /proc/sys/vm/nr_hugepages); ordinary {size_kib} KiB \
                 pages will do, with more TLB misses"
            )
        },
    ));
    #[cfg(feature = "ktls")]
    match crate::stream::ktls::kernel_support() {
        Ok(()) => out.push(finding(Level::Ok, "ktls", "the kernel has the TLS ULP")),
        Err(e) => out.push(finding(
            Level::Warn,
            "ktls",
            format!("{e}; TLS stays in user space"),
        )),
    }
    out
}

/// Runs `hotwire check`.
pub fn run(args: &CheckArgs) -> ExitCode {
    let mut findings = Vec::new();
    let config = match Config::load(&args.config) {
        Ok(c) => {
            findings.push(finding(
                Level::Ok,
                "config",
                format!(
                    "{}: valid ({} endpoints on {} threads)",
                    args.config.display(),
                    c.endpoints.len(),
                    c.threads.len()
                ),
            ));
            Some(c)
        }
        Err(e) => {
            findings.push(finding(Level::Fail, "config", e.to_string()));
            None
        }
    };
    findings.extend(host_findings(config.as_ref()));
    findings.extend(capability_findings(config.as_ref()));
    #[cfg(feature = "xdp")]
    findings.extend(super::check_xdp::findings(config.as_ref()));
    #[cfg(not(feature = "xdp"))]
    if let Some(crate::config::NetworkPath::Xdp(x)) = config.as_ref().map(|c| &c.network) {
        findings.push(finding(
            if x.fallback { Level::Warn } else { Level::Fail },
            "xdp",
            "network.path = \"xdp\" but this hotwire was built without the `xdp` feature",
        ));
    }
    print_findings(&findings, &args.config);
    if findings.iter().any(|f| f.level == Level::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_findings(findings: &[Finding], config: &Path) {
    println!("hotwire check {}", config.display());
    for f in findings {
        let tag = match f.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        println!("  {tag} {:<10} {}", f.area, f.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("2-3,6\n"), vec![2, 3, 6]);
        assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
        assert_eq!(parse_cpu_list("0"), vec![0]);
        assert_eq!(parse_cpu_list("x,1-a,4"), vec![4]);
    }

    #[test]
    fn xdp_configs_name_each_capability() {
        let kernel = Config::parse(
            "[[endpoint]]\nname = \"a\"\nurl = \"ws://127.0.0.1:1/\"\n",
            Path::new("k.toml"),
        )
        .unwrap();
        assert!(capability_findings(Some(&kernel)).is_empty());
        assert!(capability_findings(None).is_empty());
        let xdp = Config::parse(
            "[network]\npath = \"xdp\"\ninterface = \"lo\"\nlocal_ip = \"10.0.0.2/24\"\n\
             fallback = false\n[[endpoint]]\nname = \"a\"\nurl = \"ws://10.0.0.1:1/\"\n",
            Path::new("x.toml"),
        )
        .unwrap();
        let f = capability_findings(Some(&xdp));
        for name in ["CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_BPF", "CAP_IPC_LOCK"] {
            let line = f
                .iter()
                .find(|x| x.message.starts_with(name))
                .unwrap_or_else(|| panic!("{name} missing: {f:?}"));
            let cap = XDP_CAPABILITIES.iter().find(|c| c.1 == name).unwrap().0;
            if has_capability(cap) {
                assert_eq!(line.level, Level::Ok, "{line:?}");
                assert!(line.message.contains("held"), "{line:?}");
            } else {
                assert_ne!(line.level, Level::Ok, "{line:?}");
                assert!(line.message.contains("missing: needed for"), "{line:?}");
            }
        }
    }

    #[test]
    fn host_report_names_the_basics() {
        let f = host_findings(None);
        for area in ["cpu", "memlock", "hugepages"] {
            assert!(f.iter().any(|x| x.area == area), "{area} missing: {f:?}");
        }
        assert!(f.iter().all(|x| x.level != Level::Fail));
    }
}
