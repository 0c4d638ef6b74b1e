//! The file's shape (serde, strict) and its validation into [`super::Config`].

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{
    parse_duration, Config, ConfigError, EndpointConfig, EndpointKind, FixSettings,
    HttpRequestSettings, HttpSettings, LatencyMode, Locator, NetworkPath, SelectorKind,
    StatsConfig, Steering, TcpSettings, ThreadConfig, ThreadXdp, TlsSettings, XdpSettings,
};
use crate::service::Policy;

mod conn;

use conn::{RawTcp, RawTls};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    network: Option<RawNetwork>,
    #[serde(default, rename = "thread")]
    threads: Vec<RawThread>,
    #[serde(default, rename = "endpoint")]
    endpoints: Vec<RawEndpoint>,
    #[serde(default)]
    stats: Option<RawStats>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    path: Spanned<String>,
    interface: Option<Spanned<String>>,
    queue: Option<Spanned<i64>>,
    local_ip: Option<Spanned<String>>,
    gateway: Option<Spanned<String>>,
    steering: Option<Spanned<String>>,
    ports: Option<Spanned<String>>,
    attach: Option<Spanned<String>>,
    bind: Option<Spanned<String>>,
    umem_frames: Option<Spanned<i64>>,
    frame_size: Option<Spanned<i64>>,
    mtu: Option<Spanned<i64>>,
    multi_buffer: Option<bool>,
    ack_delay_us: Option<Spanned<i64>>,
    huge_pages: Option<bool>,
    fallback: Option<bool>,
}

impl RawNetwork {
    fn validate(&self, loc: &Locator<'_>) -> Result<NetworkPath, ConfigError> {
        let xdp_keys = self.interface.is_some() || self.local_ip.is_some() || self.queue.is_some();
        match self.path.get_ref().as_str() {
            "kernel" if xdp_keys => Err(loc.at(
                &self.path,
                "network.path is \"kernel\" but XDP settings (interface, queue, local_ip) are given \
                 (expected path = \"xdp\")"
                    .into(),
            )),
            "kernel" => Ok(NetworkPath::Kernel),
            "xdp" => self.validate_xdp(loc).map(NetworkPath::Xdp),
            other => Err(loc.at(
                &self.path,
                format!("network.path: unknown path {other:?} (expected \"kernel\" or \"xdp\")"),
            )),
        }
    }

    fn validate_xdp(&self, loc: &Locator<'_>) -> Result<XdpSettings, ConfigError> {
        let interface = match &self.interface {
            Some(i) if !i.get_ref().is_empty() && i.get_ref().len() < 16 => i.get_ref().clone(),
            Some(i) => {
                return Err(loc.at(
                    i,
                    "network.interface: expected an interface name of 1 to 15 characters".into(),
                ))
            }
            None => {
                return Err(loc.at(
                    &self.path,
                    "network.path = \"xdp\" needs network.interface".into(),
                ))
            }
        };
        let (local_ip, prefix_len) = match &self.local_ip {
            Some(v) => {
                parse_cidr(v.get_ref()).map_err(|e| loc.at(v, format!("network.local_ip: {e}")))?
            }
            None => {
                return Err(loc.at(
                    &self.path,
                    "network.path = \"xdp\" needs network.local_ip (\"A.B.C.D/NN\")".into(),
                ))
            }
        };
        let gateway = match &self.gateway {
            None => None,
            Some(g) => Some(g.get_ref().parse().map_err(|_| {
                loc.at(
                    g,
                    format!("network.gateway: {:?} is not an IPv4 address", g.get_ref()),
                )
            })?),
        };
        let queue = match &self.queue {
            None => 0,
            Some(q) => u32::try_from(*q.get_ref())
                .ok()
                .filter(|q| *q < 4096)
                .ok_or_else(|| {
                    loc.at(q, format!("network.queue: {} is not 0..4095", q.get_ref()))
                })?,
        };
        let steering = match self.steering.as_ref().map(|s| (s, s.get_ref().as_str())) {
            None | Some((_, "dedicated-ip")) => Steering::DedicatedIp,
            Some((_, "shared-ip")) => Steering::SharedIp,
            Some((s, other)) => {
                return Err(loc.at(
                    s,
                    format!(
                    "network.steering: unknown mode {other:?} (expected dedicated-ip or shared-ip)"
                ),
                ))
            }
        };
        let ports = match &self.ports {
            None if steering == Steering::SharedIp => return Err(loc.at(
                self.steering.as_ref().unwrap_or(&self.path),
                "network.steering = \"shared-ip\" needs network.ports (\"FIRST-LAST\", a range \
                     reserved for the stack)"
                    .into(),
            )),
            None => (32768, 60999),
            Some(p) => {
                parse_ports(p.get_ref()).map_err(|e| loc.at(p, format!("network.ports: {e}")))?
            }
        };
        let native = match self.attach.as_ref().map(|a| (a, a.get_ref().as_str())) {
            None | Some((_, "native")) => true,
            Some((_, "generic")) => false,
            Some((a, other)) => {
                return Err(loc.at(
                    a,
                    format!("network.attach: unknown mode {other:?} (expected native or generic)"),
                ))
            }
        };
        let zero_copy = match self.bind.as_ref().map(|b| (b, b.get_ref().as_str())) {
            None | Some((_, "copy")) => false,
            Some((_, "zero-copy")) => true,
            Some((b, other)) => {
                return Err(loc.at(
                    b,
                    format!("network.bind: unknown mode {other:?} (expected copy or zero-copy)"),
                ))
            }
        };
        let umem_frames = match &self.umem_frames {
            None => 4096,
            Some(f) => u32::try_from(*f.get_ref())
                .ok()
                .filter(|f| (64..=1 << 20).contains(f) && f.is_power_of_two())
                .ok_or_else(|| {
                    loc.at(
                        f,
                        format!(
                            "network.umem_frames: {} is not a power of two in 64..=1048576",
                            f.get_ref()
                        ),
                    )
                })?,
        };
        let frame_size = match &self.frame_size {
            None => 4096,
            Some(f) => u32::try_from(*f.get_ref())
                .ok()
                .filter(|f| matches!(f, 2048 | 4096))
                .ok_or_else(|| {
                    loc.at(
                        f,
                        format!(
                            "network.frame_size: {} (expected 2048 or 4096)",
                            f.get_ref()
                        ),
                    )
                })?,
        };
        // A frame holds the packet after the kernel's 256-byte headroom, Ethernet header included;
        // in multi-buffer mode a packet may span up to MAX_FRAGS frames.
        let multi_buffer = self.multi_buffer.unwrap_or(true);
        let (max_mtu, holds) = if multi_buffer {
            (
                max_mtu_multi_buffer(frame_size),
                format!("{MAX_FRAGS} {frame_size}-byte frames hold with multi_buffer"),
            )
        } else {
            (
                i64::from(frame_size) - 256 - 14,
                format!(
                    "a {frame_size}-byte frame holds the packet after 270 bytes of headroom and \
                     header; multi_buffer = true spans frames"
                ),
            )
        };
        let mtu = match &self.mtu {
            None => None,
            Some(m) => Some(
                u32::try_from(*m.get_ref())
                    .ok()
                    .filter(|v| (576..=max_mtu).contains(&i64::from(*v)))
                    .ok_or_else(|| {
                        loc.at(
                            m,
                            format!(
                                "network.mtu: {} (expected 576..={max_mtu}: {holds})",
                                m.get_ref()
                            ),
                        )
                    })?,
            ),
        };
        let ack_delay_us = match &self.ack_delay_us {
            None => 1000,
            Some(d) => u32::try_from(*d.get_ref())
                .ok()
                .filter(|d| *d <= 500_000)
                .ok_or_else(|| {
                    loc.at(
                        d,
                        format!(
                            "network.ack_delay_us: {} (expected 0..=500000; 0 acknowledges at once)",
                            d.get_ref()
                        ),
                    )
                })?,
        };
        Ok(XdpSettings {
            interface,
            queue,
            local_ip,
            prefix_len,
            gateway,
            steering,
            ports,
            native,
            zero_copy,
            umem_frames,
            frame_size,
            mtu,
            multi_buffer,
            ack_delay_us,
            huge_pages: self.huge_pages.unwrap_or(true),
            fallback: self.fallback.unwrap_or(true),
        })
    }
}

/// The most frames a packet spans in multi-buffer mode (the `xdp` module's `MAX_FRAGS`; this
/// module builds without that feature).
const MAX_FRAGS: i64 = 16;

/// The largest MTU [`MAX_FRAGS`] frames hold (the `xdp` module's `max_mtu_multi_buffer`).
fn max_mtu_multi_buffer(frame_size: u32) -> i64 {
    (MAX_FRAGS * (i64::from(frame_size) - 256) - 14).min(65535)
}

#[cfg(all(test, feature = "xdp"))]
#[test]
fn multi_buffer_limits_agree_with_the_xdp_module() {
    assert_eq!(MAX_FRAGS as usize, crate::xdp::MAX_FRAGS);
    for size in [2048, 4096] {
        assert_eq!(
            max_mtu_multi_buffer(size) as usize,
            crate::xdp::max_mtu_multi_buffer(size)
        );
    }
}

/// Parses `A.B.C.D/NN`.
fn parse_cidr(s: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not A.B.C.D/NN"))?;
    let ip = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
    let len = len
        .parse::<u8>()
        .ok()
        .filter(|l| (1..=32).contains(l))
        .ok_or_else(|| format!("prefix length {len:?} is not 1..32"))?;
    Ok((ip, len))
}

/// Parses `FIRST-LAST` (1024 <= FIRST <= LAST).
fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not FIRST-LAST"))?;
    let first: u16 = a
        .trim()
        .parse()
        .map_err(|_| format!("{a:?} is not a port"))?;
    let last: u16 = b
        .trim()
        .parse()
        .map_err(|_| format!("{b:?} is not a port"))?;
    if first < 1024 || first > last {
        return Err(format!("{s:?}: expected 1024 <= FIRST <= LAST"));
    }
    Ok((first, last))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThread {
    name: Spanned<String>,
    core: Option<Spanned<i64>>,
    selector: Option<Spanned<String>>,
    sqpoll: Option<Spanned<bool>>,
    sqpoll_core: Option<Spanned<i64>>,
    queue: Option<Spanned<i64>>,
    local_ip: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    name: Spanned<String>,
    url: Spanned<String>,
    thread: Option<Spanned<String>>,
    #[serde(default)]
    send: Vec<String>,
    heartbeat: Option<Spanned<String>>,
    record: Option<String>,
    tls: Option<RawTls>,
    tcp: Option<RawTcp>,
    reconnect: Option<RawReconnect>,
    connect_timeout: Option<Spanned<String>>,
    lifetime: Option<Spanned<String>>,
    latency: Option<Spanned<String>>,
    requests: Option<Spanned<Vec<RawRequest>>>,
    interval: Option<Spanned<String>>,
    pipeline: Option<Spanned<i64>>,
    fix: Option<Spanned<RawFix>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    method: Option<Spanned<String>>,
    target: Spanned<String>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFix {
    sender: Spanned<String>,
    target: Spanned<String>,
    begin_string: Option<Spanned<String>>,
    default_appl_ver_id: Option<String>,
    store: Option<String>,
    reset: Option<bool>,
    username: Option<String>,
    password: Option<String>,
    order_rate: Option<Spanned<f64>>,
    symbol: Option<String>,
    quantity: Option<Spanned<f64>>,
    price: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReconnect {
    enabled: Option<bool>,
    initial: Option<Spanned<String>>,
    max: Option<Spanned<String>>,
    jitter: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStats {
    interval: Option<Spanned<String>>,
    json: Option<String>,
}

fn duration(loc: &Locator<'_>, what: &str, v: &Spanned<String>) -> Result<Duration, ConfigError> {
    parse_duration(v.get_ref()).map_err(|e| loc.at(v, format!("{what}: {e}")))
}

/// The io_uring keys of a thread: only with `selector = "io_uring"`; `sqpoll_core` needs
/// `sqpoll = true` and an online core.
fn validate_sqpoll(
    t: &RawThread,
    name: &str,
    core: Option<usize>,
    selector: SelectorKind,
    online: &[usize],
    loc: &Locator<'_>,
) -> Result<SelectorKind, ConfigError> {
    let SelectorKind::IoUring { sqpoll, .. } = selector else {
        if let Some(s) = &t.sqpoll {
            return Err(loc.at(
                s,
                format!("thread {name:?}: sqpoll needs selector = \"io_uring\""),
            ));
        }
        if let Some(c) = &t.sqpoll_core {
            return Err(loc.at(
                c,
                format!("thread {name:?}: sqpoll_core needs selector = \"io_uring\""),
            ));
        }
        return Ok(selector);
    };
    let sqpoll_core = match &t.sqpoll_core {
        None => None,
        Some(c) if !sqpoll => {
            return Err(loc.at(
                c,
                format!("thread {name:?}: sqpoll_core needs sqpoll = true"),
            ))
        }
        Some(c) => {
            let v = *c.get_ref();
            if v < 0 || !online.contains(&(v as usize)) {
                return Err(loc.at(
                    c,
                    format!(
                        "thread {name:?}: sqpoll_core {v} does not exist or is offline (online \
                         cores: {})",
                        crate::cpu::format_cpu_list(online)
                    ),
                ));
            }
            Some(v as usize)
        }
    };
    // The kernel thread inherits the affinity of the thread that makes the ring: on a pinned
    // thread it would share (and fight over) that core.
    if let (true, Some(core), Some(s)) = (sqpoll, core, &t.sqpoll) {
        if sqpoll_core.is_none_or(|c| c == core) {
            let message = format!(
                "thread {name:?} is pinned to core {core}: set sqpoll_core to another core for \
                 the SQPOLL kernel thread (on core {core} it would take turns with the IO thread)"
            );
            return Err(match &t.sqpoll_core {
                Some(c) => loc.at(c, message),
                None => loc.at(s, message),
            });
        }
    }
    Ok(SelectorKind::IoUring {
        sqpoll,
        sqpoll_core,
    })
}

impl RawConfig {
    pub(super) fn validate(mut self, loc: &Locator<'_>) -> Result<Config, ConfigError> {
        let network = match &self.network {
            None => NetworkPath::Kernel,
            Some(n) => n.validate(loc)?,
        };

        let mut threads = Vec::new();
        let mut thread_names = HashSet::new();
        // Against the online CPUs, never the process's affinity mask: `isolcpus` (or `taskset`)
        // leaves the isolated cores out of that mask, and those are the ones IO threads want.
        let online = crate::cpu::online();
        for t in &self.threads {
            let name = t.name.get_ref().clone();
            if name.is_empty() {
                return Err(loc.at(&t.name, "thread name is empty".into()));
            }
            if !thread_names.insert(name.clone()) {
                return Err(loc.at(&t.name, format!("thread {name:?} is defined twice")));
            }
            let core = match &t.core {
                None => None,
                Some(c) => {
                    let v = *c.get_ref();
                    if v < 0 || !online.contains(&(v as usize)) {
                        return Err(loc.at(
                            c,
                            format!(
                                "thread {name:?}: core {v} does not exist or is offline (online \
                                 cores: {})",
                                crate::cpu::format_cpu_list(&online)
                            ),
                        ));
                    }
                    Some(v as usize)
                }
            };
            let selector = match t.selector.as_ref().map(|s| (s, s.get_ref().as_str())) {
                None | Some((_, "mio")) => SelectorKind::Mio,
                Some((_, "direct")) => SelectorKind::Direct,
                Some((s, "io_uring")) if cfg!(not(feature = "io-uring")) => {
                    return Err(loc.at(
                        s,
                        format!(
                            "thread {name:?}: selector \"io_uring\" needs a hotwire built with \
                             the `io-uring` feature"
                        ),
                    ))
                }
                Some((_, "io_uring")) => SelectorKind::IoUring {
                    sqpoll: t.sqpoll.as_ref().is_some_and(|s| *s.get_ref()),
                    sqpoll_core: None,
                },
                Some((s, other)) => {
                    return Err(loc.at(
                        s,
                        format!(
                            "thread {name:?}: unknown selector {other:?} (expected mio, direct \
                             or io_uring)"
                        ),
                    ))
                }
            };
            let selector = validate_sqpoll(t, &name, core, selector, &online, loc)?;
            threads.push(ThreadConfig {
                name,
                core,
                selector,
                xdp: None,
            });
        }
        if threads.is_empty() {
            threads.push(ThreadConfig {
                name: "main".into(),
                core: None,
                selector: SelectorKind::Mio,
                xdp: None,
            });
            thread_names.insert("main".into());
        }

        let mut endpoints = Vec::new();
        let mut endpoint_names = HashSet::new();
        for e in std::mem::take(&mut self.endpoints) {
            endpoints.push(e.validate(loc, &threads, &thread_names, &mut endpoint_names)?);
        }
        if endpoints.is_empty() {
            return Err(loc.error(
                0,
                "no [[endpoint]] is configured (expected at least one)".into(),
            ));
        }
        self.assign_xdp(loc, &network, &mut threads, &endpoints)?;

        let stats = match self.stats {
            None => StatsConfig {
                interval: Duration::from_secs(1),
                json: None,
            },
            Some(s) => {
                let interval = match &s.interval {
                    None => Duration::from_secs(1),
                    Some(v) => {
                        let d = duration(loc, "stats.interval", v)?;
                        if d < Duration::from_secs(1) {
                            return Err(loc.at(
                                v,
                                "stats.interval: the stats line is printed at most once a second \
                                 (expected 1s or more)"
                                    .into(),
                            ));
                        }
                        d
                    }
                };
                StatsConfig {
                    interval,
                    json: s.json.as_deref().map(|p| loc.path(p)),
                }
            }
        };
        Ok(Config {
            network,
            threads,
            endpoints,
            stats,
        })
    }
}

impl RawConfig {
    /// Gives each AF_XDP thread its queue and address (or port slice). Threads that name a
    /// `queue` are the AF_XDP threads; when none does, the first thread with endpoints takes
    /// `network.queue` and `network.local_ip`, and the others use kernel TCP.
    fn assign_xdp(
        &self,
        loc: &Locator<'_>,
        network: &NetworkPath,
        threads: &mut [ThreadConfig],
        endpoints: &[EndpointConfig],
    ) -> Result<(), ConfigError> {
        let NetworkPath::Xdp(x) = network else {
            for t in &self.threads {
                if let Some(v) = &t.queue {
                    return Err(loc.at(v, "`queue` applies to network.path = \"xdp\" only".into()));
                }
                if let Some(v) = &t.local_ip {
                    return Err(loc.at(
                        v,
                        "`local_ip` applies to network.path = \"xdp\" only".into(),
                    ));
                }
            }
            return Ok(());
        };
        let per_thread = self.threads.iter().any(|t| t.queue.is_some());
        if per_thread {
            if let Some(q) = self.network.as_ref().and_then(|n| n.queue.as_ref()) {
                return Err(loc.at(
                    q,
                    "network.queue: threads name their own queues here (`queue` in \
                     [[thread]]); leave network.queue out"
                        .into(),
                ));
            }
        }
        let busy = |name: &str| endpoints.iter().any(|e| e.thread == name);
        // An explicit `local_ip`: address, prefix length, offset in the file.
        type Address = (std::net::Ipv4Addr, u8, usize);
        // (index into threads, queue, explicit address)
        let mut chosen: Vec<(usize, u32, Option<Address>)> = Vec::new();
        for (i, raw) in self.threads.iter().enumerate() {
            if raw.queue.is_none() {
                if let Some(v) = &raw.local_ip {
                    return Err(loc.at(
                        v,
                        format!(
                            "thread {:?}: `local_ip` needs `queue` (the AF_XDP queue the address \
                             is served on)",
                            raw.name.get_ref()
                        ),
                    ));
                }
                continue;
            }
            let q = raw.queue.as_ref().expect("checked");
            let queue = u32::try_from(*q.get_ref())
                .ok()
                .filter(|q| *q < 4096)
                .ok_or_else(|| {
                    loc.at(
                        q,
                        format!(
                            "thread {:?}: queue {} is not 0..4095",
                            raw.name.get_ref(),
                            q.get_ref()
                        ),
                    )
                })?;
            if let Some((other, _, _)) = chosen.iter().find(|(_, qq, _)| *qq == queue) {
                return Err(loc.at(
                    q,
                    format!(
                        "thread {:?}: queue {queue} is already thread {:?}'s (one AF_XDP socket \
                         per queue)",
                        raw.name.get_ref(),
                        threads[*other].name
                    ),
                ));
            }
            let addr = match &raw.local_ip {
                None => None,
                Some(v) if x.steering == Steering::SharedIp => {
                    return Err(loc.at(
                        v,
                        format!(
                            "thread {:?}: `local_ip` does not apply in shared-IP mode (every \
                             thread uses network.local_ip, each with its own slice of \
                             network.ports)",
                            raw.name.get_ref()
                        ),
                    ))
                }
                Some(v) => {
                    let (ip, len) = parse_cidr(v.get_ref()).map_err(|e| {
                        loc.at(v, format!("thread {:?}: local_ip: {e}", raw.name.get_ref()))
                    })?;
                    Some((ip, len, v.span().start))
                }
            };
            chosen.push((i, queue, addr));
        }
        if !per_thread {
            // The compatible default: the first thread with endpoints.
            if let Some(i) = threads.iter().position(|t| busy(&t.name)) {
                chosen.push((i, x.queue, None));
            }
        }
        // Dedicated-IP: each thread its own address; the network's goes to the one without.
        let mut defaulted: Option<usize> = None;
        let mut seen: Vec<(std::net::Ipv4Addr, usize)> = Vec::new();
        let slices = chosen.len().max(1) as u32;
        let (first, last) = x.ports;
        let span = u32::from(last) - u32::from(first) + 1;
        if x.steering == Steering::SharedIp && span < slices {
            return Err(loc.error(
                0,
                format!(
                    "network.ports: {span} port(s) cannot be split among {slices} AF_XDP threads"
                ),
            ));
        }
        for (n, (i, queue, addr)) in chosen.iter().enumerate() {
            let (local_ip, prefix_len) = match addr {
                Some((ip, len, at)) => {
                    if let Some((_, other)) = seen.iter().find(|(s, _)| s == ip) {
                        return Err(loc.error(
                            *at,
                            format!(
                                "thread {:?}: local_ip {ip} is already thread {:?}'s (each AF_XDP \
                                 thread needs its own address in dedicated-IP mode)",
                                threads[*i].name, threads[*other].name
                            ),
                        ));
                    }
                    (*ip, *len)
                }
                None if x.steering == Steering::DedicatedIp => {
                    if let Some(other) = defaulted {
                        let at = self.threads[*i]
                            .queue
                            .as_ref()
                            .map_or(0, |q| q.span().start);
                        return Err(loc.error(
                            at,
                            format!(
                                "thread {:?}: needs its own `local_ip` (thread {:?} already uses \
                                 network.local_ip {})",
                                threads[*i].name, threads[other].name, x.local_ip
                            ),
                        ));
                    }
                    if let Some((_, other)) = seen.iter().find(|(s, _)| *s == x.local_ip) {
                        let at = self.threads[*i]
                            .queue
                            .as_ref()
                            .map_or(0, |q| q.span().start);
                        return Err(loc.error(
                            at,
                            format!(
                                "thread {:?}: network.local_ip {} is already thread {:?}'s; give \
                                 this thread its own `local_ip`",
                                threads[*i].name, x.local_ip, threads[*other].name
                            ),
                        ));
                    }
                    defaulted = Some(*i);
                    (x.local_ip, x.prefix_len)
                }
                None => (x.local_ip, x.prefix_len),
            };
            seen.push((local_ip, *i));
            let ports = if x.steering == Steering::SharedIp {
                let n = n as u32;
                let lo = u32::from(first) + span * n / slices;
                let hi = u32::from(first) + span * (n + 1) / slices - 1;
                (lo as u16, hi as u16)
            } else {
                x.ports
            };
            threads[*i].xdp = Some(ThreadXdp {
                queue: *queue,
                local_ip,
                prefix_len,
                ports,
            });
        }
        Ok(())
    }
}

impl RawEndpoint {
    fn validate(
        self,
        loc: &Locator<'_>,
        threads: &[ThreadConfig],
        thread_names: &HashSet<String>,
        endpoint_names: &mut HashSet<String>,
    ) -> Result<EndpointConfig, ConfigError> {
        let name = self.name.get_ref().clone();
        if name.is_empty() {
            return Err(loc.at(&self.name, "endpoint name is empty".into()));
        }
        if !endpoint_names.insert(name.clone()) {
            return Err(loc.at(&self.name, format!("endpoint {name:?} is defined twice")));
        }
        let url = self.url.get_ref().clone();
        let scheme = url.split_once("://").map(|(s, _)| s);
        let protocol = match scheme {
            Some("ws" | "wss") => Protocol::WebSocket,
            Some("http" | "https") => Protocol::Http,
            Some("fix" | "fixs") => Protocol::Fix,
            Some(other) => {
                return Err(loc.at(
                    &self.url,
                    format!(
                        "endpoint {name:?}: unsupported URL scheme {other:?} (expected ws, wss, \
                         http, https, fix or fixs)"
                    ),
                ))
            }
            None => {
                return Err(loc.at(
                    &self.url,
                    format!(
                    "endpoint {name:?}: {url:?} is not a URL (expected e.g. ws://host:port/path)"
                ),
                ))
            }
        };
        let kind = self.kind(loc, &name, protocol)?;
        let thread = match &self.thread {
            None => threads[0].name.clone(),
            Some(t) if thread_names.contains(t.get_ref()) => t.get_ref().clone(),
            Some(t) => {
                return Err(loc.at(
                    t,
                    format!(
                        "endpoint {name:?}: no thread named {:?} (define it with [[thread]])",
                        t.get_ref()
                    ),
                ))
            }
        };
        let heartbeat = self
            .heartbeat
            .as_ref()
            .map(|h| duration(loc, &format!("endpoint {name:?}: heartbeat"), h))
            .transpose()?;
        let tls = match &self.tls {
            None => TlsSettings::default(),
            Some(t) => t.validate(loc, &name)?,
        };
        let tcp = match &self.tcp {
            None => TcpSettings::default(),
            Some(t) => t.validate(loc, &name)?,
        };
        let mut policy = Policy::default();
        if let Some(t) = &self.connect_timeout {
            policy.connect_timeout =
                duration(loc, &format!("endpoint {name:?}: connect_timeout"), t)?;
        }
        if let Some(l) = &self.lifetime {
            policy.max_lifetime = Some(duration(loc, &format!("endpoint {name:?}: lifetime"), l)?);
        }
        if let Some(r) = &self.reconnect {
            policy.reconnect = r.enabled.unwrap_or(true);
            if let Some(v) = &r.initial {
                policy.backoff_initial =
                    duration(loc, &format!("endpoint {name:?}: reconnect.initial"), v)?;
            }
            if let Some(v) = &r.max {
                policy.backoff_max =
                    duration(loc, &format!("endpoint {name:?}: reconnect.max"), v)?;
            }
            if let Some(j) = &r.jitter {
                let v = *j.get_ref();
                if !(0.0..=1.0).contains(&v) {
                    return Err(loc.at(
                        j,
                        format!("endpoint {name:?}: reconnect.jitter {v} is outside 0.0..=1.0"),
                    ));
                }
                policy.backoff_jitter = v;
            }
            if policy.backoff_initial > policy.backoff_max {
                let at = r
                    .initial
                    .as_ref()
                    .map_or(self.name.span().start, |v| v.span().start);
                return Err(loc.error(
                    at,
                    format!("endpoint {name:?}: reconnect.initial is longer than reconnect.max"),
                ));
            }
        }
        policy.timer = heartbeat;
        let latency = match self.latency.as_ref().map(|l| (l, l.get_ref().as_str())) {
            None | Some((_, "embedded")) => LatencyMode::EmbeddedTimestamp,
            Some((_, "round-trip")) => LatencyMode::RoundTrip,
            Some((_, "none")) => LatencyMode::None,
            Some((l, other)) => {
                return Err(loc.at(
                    l,
                    format!(
                        "endpoint {name:?}: unknown latency mode {other:?} (expected embedded, round-trip or none)"
                    ),
                ))
            }
        };
        Ok(EndpointConfig {
            name,
            url,
            thread,
            send: self.send,
            heartbeat,
            record: self.record.as_deref().map(|p| loc.path(p)),
            tls,
            tcp,
            policy,
            latency,
            kind,
        })
    }

    /// The protocol-specific settings, refusing keys that belong to another protocol.
    fn kind(
        &self,
        loc: &Locator<'_>,
        name: &str,
        protocol: Protocol,
    ) -> Result<EndpointKind, ConfigError> {
        let misplaced = |key: &str, at: usize, owner: &str| {
            Err(loc.error(
                at,
                format!("endpoint {name:?}: `{key}` applies to {owner} endpoints only"),
            ))
        };
        if protocol != Protocol::Http {
            if let Some(r) = &self.requests {
                return misplaced("requests", r.span().start, "http");
            }
            if let Some(p) = &self.pipeline {
                return misplaced("pipeline", p.span().start, "http");
            }
        }
        if protocol == Protocol::WebSocket {
            if let Some(i) = &self.interval {
                return misplaced("interval", i.span().start, "http and fix");
            }
        }
        if protocol != Protocol::Fix {
            if let Some(f) = &self.fix {
                return misplaced("fix", f.span().start, "fix");
            }
        }
        if protocol != Protocol::WebSocket && !self.send.is_empty() {
            return misplaced("send", self.url.span().start, "WebSocket");
        }
        let interval = self
            .interval
            .as_ref()
            .map(|i| duration(loc, &format!("endpoint {name:?}: interval"), i))
            .transpose()?;
        Ok(match protocol {
            Protocol::WebSocket => EndpointKind::WebSocket,
            Protocol::Http => {
                let mut requests = Vec::new();
                for r in self.requests.iter().flat_map(|r| r.get_ref()) {
                    let method = match r.method.as_ref().map(|m| (m, m.get_ref().as_str())) {
                        None => "GET".to_owned(),
                        Some((
                            _,
                            m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS"),
                        )) => m.to_owned(),
                        Some((m, other)) => {
                            return Err(loc.at(
                                m,
                                format!(
                                    "endpoint {name:?}: unknown HTTP method {other:?} (expected \
                                     GET, HEAD, POST, PUT, DELETE, PATCH or OPTIONS)"
                                ),
                            ))
                        }
                    };
                    if !r.target.get_ref().starts_with('/') {
                        return Err(loc.at(
                            &r.target,
                            format!("endpoint {name:?}: a request target starts with `/`"),
                        ));
                    }
                    requests.push(HttpRequestSettings {
                        method,
                        target: r.target.get_ref().clone(),
                        body: r.body.clone(),
                        headers: r.headers.clone(),
                    });
                }
                let pipeline = match &self.pipeline {
                    None => 1,
                    Some(p) if (1..=1024).contains(p.get_ref()) => *p.get_ref() as usize,
                    Some(p) => {
                        return Err(
                            loc.at(p, format!("endpoint {name:?}: pipeline must be 1..=1024"))
                        )
                    }
                };
                EndpointKind::Http(HttpSettings {
                    requests,
                    interval,
                    pipeline,
                })
            }
            Protocol::Fix => {
                let Some(f) = &self.fix else {
                    return Err(loc.at(
                        &self.url,
                        format!(
                            "endpoint {name:?}: a fix endpoint needs a `fix` table (sender, target)"
                        ),
                    ));
                };
                let f = f.get_ref();
                let begin_string = match f.begin_string.as_ref().map(|b| (b, b.get_ref().as_str()))
                {
                    None => "FIX.4.4".to_owned(),
                    Some((_, b @ ("FIX.4.2" | "FIX.4.4" | "FIXT.1.1"))) => b.to_owned(),
                    Some((b, other)) => {
                        return Err(loc.at(
                            b,
                            format!(
                                "endpoint {name:?}: unsupported begin_string {other:?} (expected \
                                 FIX.4.2, FIX.4.4 or FIXT.1.1)"
                            ),
                        ))
                    }
                };
                // Orders carry six decimals and an i64 mantissa; rates are orders per second.
                let within = |v: &Option<Spanned<f64>>,
                              key: &str,
                              default: f64,
                              (lo, hi): (f64, f64)| match v {
                    None => Ok(default),
                    Some(x) if (lo..=hi).contains(x.get_ref()) => Ok(*x.get_ref()),
                    Some(x) => Err(loc.at(
                        x,
                        format!("endpoint {name:?}: {key} must be within {lo}..={hi}"),
                    )),
                };
                let amount = (1e-6, 9e12);
                EndpointKind::Fix(FixSettings {
                    sender: f.sender.get_ref().clone(),
                    target: f.target.get_ref().clone(),
                    begin_string,
                    default_appl_ver_id: f.default_appl_ver_id.clone(),
                    store: f.store.as_deref().map(|p| loc.path(p)),
                    reset: f.reset.unwrap_or(false),
                    username: f.username.clone(),
                    password: f.password.clone(),
                    order_rate: f
                        .order_rate
                        .as_ref()
                        .map(|_| within(&f.order_rate, "order_rate", 1.0, (0.001, 1e6)))
                        .transpose()?,
                    symbol: f.symbol.clone().unwrap_or_else(|| "HWX".into()),
                    quantity: within(&f.quantity, "quantity", 1.0, amount)?,
                    price: within(&f.price, "price", 100.0, amount)?,
                })
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    WebSocket,
    Http,
    Fix,
}
