//! `[[thread]]` tables and the AF_XDP queue, address and port slice of each IO thread.

use toml::Spanned;

use super::super::{
    ConfigError, EndpointConfig, Locator, NetworkPath, Steering, ThreadConfig, ThreadXdp,
};
use super::network::parse_cidr;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawThread {
    pub(super) name: Spanned<String>,
    pub(super) core: Option<Spanned<i64>>,
    pub(super) selector: Option<Spanned<String>>,
    pub(super) sqpoll: Option<Spanned<bool>>,
    pub(super) sqpoll_core: Option<Spanned<i64>>,
    queue: Option<Spanned<i64>>,
    local_ip: Option<Spanned<String>>,
}

impl super::RawConfig {
    /// Gives each AF_XDP thread its queue and address (or port slice). Threads that name a
    /// `queue` are the AF_XDP threads; when none does, the first thread with endpoints takes
    /// `network.queue` and `network.local_ip`, and the others use kernel TCP.
    pub(super) fn assign_xdp(
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
            let Some(q) = &raw.queue else {
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
            };
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
                    // The default "main" thread has no table of its own to point at.
                    let at = self
                        .threads
                        .get(*i)
                        .and_then(|t| t.queue.as_ref())
                        .map_or(0, |q| q.span().start);
                    if let Some(other) = defaulted {
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
