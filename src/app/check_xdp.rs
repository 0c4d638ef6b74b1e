//! `hotwire check`, AF_XDP part: per interface, what the kernel-bypass path would get.
//!
//! For the configured XDP interface (or, with the kernel path, every non-loopback interface):
//! AF_XDP socket support, the driver and its native-XDP support, a trial generic attach of the
//! steering program (harmless: generic mode does not reset the NIC), RX queues, receive offloads
//! that hide frames from the stack, and whether the UMEM fits memlock and huge pages.

use super::finding::{Finding, Level};
use crate::config::{Config, NetworkPath};

fn finding(level: Level, message: String) -> Finding {
    Finding {
        level,
        area: "xdp",
        message,
    }
}

/// Drivers with native (driver-mode) XDP in mainline Linux.
const NATIVE_XDP_DRIVERS: &[&str] = &[
    "veth",
    "virtio_net",
    "ice",
    "i40e",
    "ixgbe",
    "ixgbevf",
    "igb",
    "igc",
    "mlx4_en",
    "mlx5_core",
    "bnxt_en",
    "ena",
    "nfp",
    "qede",
    "tun",
    "stmmac",
    "sfc",
    "mvneta",
    "mvpp2",
    "thunder_nicvf",
    "hv_netvsc",
    "tsnep",
    "fec",
    "lan966x_switch",
    "netdevsim",
];

/// Drivers with AF_XDP zero-copy.
const ZERO_COPY_DRIVERS: &[&str] = &[
    "ice",
    "i40e",
    "ixgbe",
    "igc",
    "mlx5_core",
    "stmmac",
    "tsnep",
    "fec",
    "netdevsim",
];

fn driver(ifname: &str) -> String {
    if let Ok(link) = std::fs::read_link(format!("/sys/class/net/{ifname}/device/driver")) {
        if let Some(name) = link.file_name() {
            return name.to_string_lossy().into_owned();
        }
    }
    // Virtual devices have no `device`: ask ethtool.
    std::process::Command::new("ethtool")
        .args(["-i", ifname])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("driver: ").map(str::to_owned))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Receive offloads that are on and get in the way (`ethtool -k`).
fn offloads_in_the_way(ifname: &str) -> Vec<String> {
    let Ok(out) = std::process::Command::new("ethtool")
        .args(["-k", ifname])
        .output()
    else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    ["large-receive-offload", "rx-gro-hw", "rx-vlan-offload"]
        .iter()
        .filter(|name| {
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{name}: on")))
        })
        .map(|s| (*s).to_owned())
        .collect()
}

fn af_xdp_socket() -> Result<(), std::io::Error> {
    // SAFETY: socket(2) takes plain integers; the descriptor is closed right away.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned to us and is closed once.
    unsafe { libc::close(fd) };
    Ok(())
}

/// The findings for `config`'s network.
pub(super) fn findings(config: Option<&Config>) -> Vec<Finding> {
    let mut out = Vec::new();
    let configured = match config.map(|c| &c.network) {
        Some(NetworkPath::Xdp(x)) => Some(x),
        _ => None,
    };
    match af_xdp_socket() {
        Ok(()) => out.push(finding(Level::Ok, "AF_XDP sockets available".into())),
        Err(e) => {
            let level = if configured.is_some_and(|x| !x.fallback) {
                Level::Fail
            } else {
                Level::Warn
            };
            out.push(finding(
                level,
                format!("AF_XDP socket: {e} (the kernel path will be used)"),
            ));
            return out;
        }
    }
    let interfaces: Vec<String> = match configured {
        Some(x) => vec![x.interface.clone()],
        None => std::fs::read_dir("/sys/class/net")
            .map(|d| {
                let mut v: Vec<String> = d
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "lo")
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default(),
    };
    for ifname in interfaces {
        interface(&mut out, &ifname, configured);
    }
    if let (Some(config), Some(x)) = (config, configured) {
        threads(&mut out, config, x);
    }
    out
}

/// One line per IO thread: its queue and steering on the AF_XDP path, or why it uses kernel TCP,
/// and what the host still lacks for it.
fn threads(out: &mut Vec<Finding>, config: &Config, x: &crate::config::XdpSettings) {
    use crate::config::Steering;
    use crate::xdp::stack;
    let blocking = if x.fallback { Level::Warn } else { Level::Fail };
    let queues = stack::rx_queues(&x.interface).unwrap_or(0);
    let local = stack::local_addresses(&x.interface).unwrap_or_default();
    let several = config.threads.iter().filter(|t| t.xdp.is_some()).count() > 1;
    for t in &config.threads {
        let busy = config.endpoints.iter().any(|e| e.thread == t.name);
        let Some(q) = &t.xdp else {
            if busy {
                out.push(finding(
                    Level::Warn,
                    format!(
                        "thread {:?}: kernel TCP (no AF_XDP queue of its own: set `queue` in its \
                         [[thread]])",
                        t.name
                    ),
                ));
            }
            continue;
        };
        let mut missing = Vec::new();
        if q.queue >= queues {
            missing.push(format!(
                "queue {} does not exist ({} has {queues}; ethtool -L {} combined {})",
                q.queue,
                x.interface,
                x.interface,
                q.queue + 1
            ));
        }
        if several && !local.contains(&q.local_ip) {
            missing.push(format!(
                "the kernel answers ARP for the stacks here, but {} is not an address of {} \
                 (ip addr add {}/32 dev {})",
                q.local_ip, x.interface, q.local_ip, x.interface
            ));
        }
        if t.core.is_none() {
            missing.push("the thread is not pinned (core = N)".into());
        }
        let steering = match x.steering {
            Steering::DedicatedIp => format!(
                "IPv4 to {} (ethtool -N {} flow-type tcp4 dst-ip {} action {})",
                q.local_ip, x.interface, q.local_ip, q.queue
            ),
            Steering::SharedIp => {
                format!("TCP to {} ports {}-{}", q.local_ip, q.ports.0, q.ports.1)
            }
        };
        out.push(finding(
            if missing.is_empty() {
                Level::Ok
            } else if q.queue >= queues {
                blocking
            } else {
                Level::Warn
            },
            format!(
                "thread {:?}: AF_XDP queue {} on {}, steering {steering}{}",
                t.name,
                q.queue,
                x.interface,
                if missing.is_empty() {
                    String::new()
                } else {
                    format!("; missing: {}", missing.join("; "))
                }
            ),
        ));
    }
}

fn interface(
    out: &mut Vec<Finding>,
    ifname: &str,
    configured: Option<&crate::config::XdpSettings>,
) {
    let blocking = if configured.is_some_and(|x| !x.fallback) {
        Level::Fail
    } else {
        Level::Warn
    };
    {
        use crate::xdp::{stack, steer, umem};
        let index = match stack::ifindex(ifname) {
            Ok(i) => i,
            Err(e) => return out.push(finding(blocking, format!("{ifname}: {e}"))),
        };
        let drv = driver(ifname);
        let native = NATIVE_XDP_DRIVERS.contains(&drv.as_str());
        let zc = ZERO_COPY_DRIVERS.contains(&drv.as_str());
        let queues = stack::rx_queues(ifname).unwrap_or(0);
        out.push(finding(
            if native { Level::Ok } else { Level::Warn },
            format!(
                "{ifname}: driver {drv}; native XDP {}; zero-copy {}; {queues} RX queue(s)",
                if native { "yes" } else { "no (generic only)" },
                if zc { "yes" } else { "no (copy mode)" }
            ),
        ));
        if let Some(x) = configured {
            if x.queue >= queues {
                out.push(finding(
                    blocking,
                    format!("{ifname}: network.queue {} does not exist", x.queue),
                ));
            }
            if x.native && !native {
                out.push(finding(
                    blocking,
                    format!("{ifname}: attach = \"native\" but {drv} has no native XDP"),
                ));
            }
            if x.zero_copy && !zc {
                out.push(finding(
                    Level::Warn,
                    format!("{ifname}: bind = \"zero-copy\" falls back to copy mode on {drv}"),
                ));
            }
        }
        let (frames, size, huge) = configured.map_or((4096, 4096, true), |x| {
            (x.umem_frames, x.frame_size, x.huge_pages)
        });
        let multi_buffer = configured.is_none_or(|x| x.multi_buffer);
        let link_mtu = crate::xdp::stack::interface_mtu(ifname).ok();
        let wanted = link_mtu.map(|link| {
            configured
                .and_then(|x| x.mtu)
                .map_or(link, |m| (m as usize).min(link))
        });
        let frags =
            link_mtu.is_some_and(|l| crate::xdp::steering_needs_frags(l, size, multi_buffer));
        // A trial generic attach: proves the program loads (multi-buffer aware when the MTU needs
        // it) and the interface is free.
        let trial = steer::XskMap::new(1).and_then(|map| {
            steer::SteerLink::attach(
                map,
                &[std::net::Ipv4Addr::UNSPECIFIED],
                steer::SteerMode::DedicatedIp,
                false,
                index,
                steer::AttachMode::Generic,
                frags,
            )
        });
        match trial {
            Ok(link) => {
                drop(link);
                out.push(finding(
                    Level::Ok,
                    format!(
                        "{ifname}: steering program loads and attaches (generic trial{})",
                        if frags { ", multi-buffer" } else { "" }
                    ),
                ));
            }
            Err(e) => out.push(finding(
                blocking,
                format!("{ifname}: steering program: {e}"),
            )),
        }
        let offloads = offloads_in_the_way(ifname);
        if !offloads.is_empty() {
            out.push(finding(
                Level::Warn,
                format!(
                    "{ifname}: {} on (ethtool -K {ifname} lro off gro off rxvlan off)",
                    offloads.join(", ")
                ),
            ));
        }
        if let (Some(link), Some(wanted)) = (link_mtu, wanted) {
            let frame = crate::xdp::max_mtu(size);
            let mtu = wanted.min(crate::xdp::mtu_limit(size, multi_buffer));
            // The stack advertises its MSS from `mtu`, so TCP peers never send it more.
            out.push(finding(
                if mtu < wanted { Level::Warn } else { Level::Ok },
                format!(
                    "{ifname}: MTU {link}; the stack uses {mtu}{} (a {size} B frame holds {frame}{})",
                    if mtu < wanted {
                        format!(", lowered from {wanted}")
                    } else {
                        String::new()
                    },
                    if mtu > frame {
                        format!(
                            "; a packet spans up to {} frames: multi-buffer AF_XDP, Linux 6.6+",
                            crate::xdp::frames_per_packet(mtu, size)
                        )
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        let facts = umem::MemFacts::read();
        match umem::plan(frames, size, huge, &facts) {
            Ok(p) => out.push(finding(
                if p.limited_by_memlock {
                    Level::Warn
                } else {
                    Level::Ok
                },
                format!(
                    "{ifname}: UMEM {} frames of {} B ({} KiB){}{}",
                    p.frames,
                    p.frame_size,
                    u64::from(p.frames) * u64::from(p.frame_size) / 1024,
                    if p.limited_by_memlock {
                        format!(", lowered from {frames} to fit RLIMIT_MEMLOCK (no CAP_IPC_LOCK)")
                    } else {
                        String::new()
                    },
                    if p.huge_pages {
                        ", on huge pages"
                    } else {
                        ", on ordinary pages (too few huge pages free)"
                    }
                ),
            )),
            Err(e) => out.push(finding(blocking, format!("{ifname}: {e}"))),
        }
    }
}
