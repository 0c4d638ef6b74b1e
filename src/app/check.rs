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
    /// Print the AF_XDP threads' queue plan instead (one `key=value` line per thread:
    /// interface, steering mode, thread, core, queue, ip, ports), for `nic/tune.sh`.
    #[arg(long)]
    pub nic_plan: bool,
}

/// The queue plan of `config` for `nic/tune.sh`: one line per AF_XDP thread.
pub fn nic_plan(config: &Config) -> Vec<String> {
    let crate::config::NetworkPath::Xdp(x) = &config.network else {
        return Vec::new();
    };
    let mode = match x.steering {
        crate::config::Steering::DedicatedIp => "dedicated-ip",
        crate::config::Steering::SharedIp => "shared-ip",
    };
    config
        .threads
        .iter()
        .filter_map(|t| {
            let q = t.xdp.as_ref()?;
            Some(format!(
                "interface={} mode={mode} thread={} core={} queue={} ip={} ports={}-{}",
                x.interface,
                t.name,
                t.core.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                q.queue,
                q.local_ip,
                q.ports.0,
                q.ports.1
            ))
        })
        .collect()
}

pub use super::finding::{Finding, Level};

fn finding(level: Level, area: &'static str, message: impl Into<String>) -> Finding {
    Finding {
        level,
        area,
        message: message.into(),
    }
}

/// The cores the kernel keeps the scheduler off (`isolcpus`).
pub fn isolated_cores() -> Vec<usize> {
    crate::cpu::HostCpus::read().isolated
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

/// The CPU part of the report: what the kernel isolates, and where the configured threads land.
pub fn cpu_findings(host: &crate::cpu::HostCpus, config: Option<&Config>) -> Vec<Finding> {
    use crate::cpu::format_cpu_list as list;
    let mut out = vec![finding(
        Level::Ok,
        "cpu",
        format!(
            "online {}; isolated (isolcpus) {}; nohz_full {}; rcu_nocbs {}; this process may run on {}",
            list(&host.online),
            list(&host.isolated),
            list(&host.nohz_full),
            list(&host.rcu_nocbs),
            list(&host.process_affinity)
        ),
    )];
    let Some(config) = config else {
        return out;
    };
    let mut taken: Vec<(usize, &str)> = Vec::new();
    for t in &config.threads {
        let Some(c) = t.core else {
            out.push(finding(
                Level::Warn,
                "cpu",
                format!("thread {:?} is not pinned (set core = N)", t.name),
            ));
            continue;
        };
        if !host.online.contains(&c) {
            out.push(finding(
                Level::Fail,
                "cpu",
                format!(
                    "thread {:?}: core {c} is not online (online: {})",
                    t.name,
                    list(&host.online)
                ),
            ));
            continue;
        }
        if let Some((_, other)) = taken.iter().find(|(core, _)| *core == c) {
            out.push(finding(
                Level::Warn,
                "cpu",
                format!(
                    "threads {other:?} and {:?} are both pinned to core {c}: they take turns on \
                     it, and each one's busy-polling delays the other",
                    t.name
                ),
            ));
        }
        taken.push((c, &t.name));
        let missing: Vec<&str> = [
            ("isolcpus", &host.isolated),
            ("nohz_full", &host.nohz_full),
            ("rcu_nocbs", &host.rcu_nocbs),
        ]
        .into_iter()
        .filter(|(_, set)| !set.contains(&c))
        .map(|(name, _)| name)
        .collect();
        if !host.isolated.contains(&c) {
            out.push(finding(
                Level::Warn,
                "cpu",
                format!(
                    "thread {:?} pinned to core {c}, which is not isolated (add isolcpus={c} \
                     nohz_full={c} rcu_nocbs={c} to the kernel command line): expect scheduler \
                     jitter",
                    t.name
                ),
            ));
        } else if !missing.is_empty() {
            out.push(finding(
                Level::Warn,
                "cpu",
                format!(
                    "thread {:?} pinned to isolated core {c}, but the core is not in {} (the \
                     tick or RCU callbacks still interrupt it)",
                    t.name,
                    missing.join(", ")
                ),
            ));
        } else {
            out.push(finding(
                Level::Ok,
                "cpu",
                format!(
                    "thread {:?} pinned to core {c} (isolated, nohz_full, rcu_nocbs)",
                    t.name
                ),
            ));
        }
    }
    out
}

/// Checks the host (and `config`, when it parsed) and returns the findings.
pub fn host_findings(config: Option<&Config>) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(cpu_findings(&crate::cpu::HostCpus::read(), config));
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
    if args.nic_plan {
        return match Config::load(&args.config) {
            Ok(c) => {
                for line in nic_plan(&c) {
                    println!("{line}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hotwire check: {e}");
                ExitCode::from(2)
            }
        };
    }
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
    #[cfg(feature = "gateway")]
    findings.extend(gateway_findings(config.as_ref()));
    print_findings(&findings, &args.config);
    if findings.iter().any(|f| f.level == Level::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The gateway's iceoryx2 services under its prefix, with their subscribers; a configured
/// `publish = true` endpoint whose service does not exist is noted (the appliance is not running).
#[cfg(feature = "gateway")]
fn gateway_findings(config: Option<&Config>) -> Vec<Finding> {
    use crate::gateway::check;
    let reports = match check::services() {
        Ok(r) => r,
        Err(e) => return vec![finding(Level::Warn, "gateway", e.to_string())],
    };
    let mut out: Vec<Finding> = check::lines(&reports)
        .into_iter()
        .map(|l| finding(Level::Ok, "gateway", l))
        .collect();
    for e in config
        .iter()
        .flat_map(|c| &c.endpoints)
        .filter(|e| e.publish)
    {
        let name = crate::gateway::service_name(&e.name, "in");
        if !reports.iter().any(|r| r.name == name) {
            out.push(finding(
                Level::Ok,
                "gateway",
                format!(
                    "endpoint {:?} publishes on {name} once the appliance runs",
                    e.name
                ),
            ));
        }
    }
    out
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

    fn host(isolated: &[usize], nohz: &[usize], nocbs: &[usize]) -> crate::cpu::HostCpus {
        crate::cpu::HostCpus {
            online: vec![0, 1, 2, 3],
            isolated: isolated.to_vec(),
            nohz_full: nohz.to_vec(),
            rcu_nocbs: nocbs.to_vec(),
            process_affinity: vec![0, 1],
        }
    }

    fn threads(cores: &[Option<usize>]) -> Config {
        let mut text = String::new();
        for (i, c) in cores.iter().enumerate() {
            text.push_str(&format!("[[thread]]\nname = \"t{i}\"\n"));
            if let Some(c) = c {
                text.push_str(&format!("core = {c}\n"));
            }
        }
        text.push_str("[[endpoint]]\nname = \"e\"\nurl = \"ws://127.0.0.1:1/\"\n");
        Config::parse(&text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn cpu_report_names_every_kernel_set() {
        let f = cpu_findings(&host(&[2, 3], &[2, 3], &[3]), None);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message.contains(
                "online 0-3; isolated (isolcpus) 2-3; nohz_full 2-3; \
                                   rcu_nocbs 3; this process may run on 0-1"
            ),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn cpu_report_judges_each_thread() {
        // Core 0 and 1 are online on every machine this runs on (the unit test config validates
        // against the real host).
        let config = threads(&[Some(1), Some(1), Some(0), None]);
        let f = cpu_findings(&host(&[1], &[1], &[1]), Some(&config));
        let text: Vec<String> = f
            .iter()
            .map(|x| format!("{:?} {}", x.level, x.message))
            .collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("Ok") && t.contains("\"t0\" pinned to core 1 (isolated")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.starts_with("Warn")
                && t.contains("\"t0\" and \"t1\" are both pinned to core 1")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.starts_with("Warn")
                && t.contains("\"t2\" pinned to core 0, which is not isolated")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("Warn") && t.contains("\"t3\" is not pinned")),
            "{text:?}"
        );
        let f = cpu_findings(&host(&[1], &[], &[]), Some(&threads(&[Some(1)])));
        assert!(
            f[1].level == Level::Warn && f[1].message.contains("not in nohz_full, rcu_nocbs"),
            "{f:?}"
        );
    }

    #[test]
    fn the_nic_plan_has_a_line_per_af_xdp_thread() {
        let text = "[network]\npath = \"xdp\"\ninterface = \"eth1\"\nlocal_ip = \"10.0.0.2/24\"\n\
                    steering = \"shared-ip\"\nports = \"40000-40999\"\n\
                    [[thread]]\nname = \"a\"\ncore = 0\nqueue = 2\n[[thread]]\nname = \"b\"\nqueue = 3\n\
                    [[thread]]\nname = \"k\"\n\
                    [[endpoint]]\nname = \"e\"\nurl = \"ws://10.0.0.1:1/\"\nthread = \"a\"\n";
        let c = Config::parse(text, Path::new("t.toml")).unwrap();
        assert_eq!(
            nic_plan(&c),
            [
                "interface=eth1 mode=shared-ip thread=a core=0 queue=2 ip=10.0.0.2 ports=40000-40499",
                "interface=eth1 mode=shared-ip thread=b core=- queue=3 ip=10.0.0.2 ports=40500-40999",
            ]
        );
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
