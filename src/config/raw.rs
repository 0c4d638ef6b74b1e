//! The file's shape (serde, strict) and its validation into [`super::Config`].

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{
    parse_duration, Config, ConfigError, EndpointConfig, EndpointKind, FixSettings,
    HttpRequestSettings, HttpSettings, LatencyMode, Locator, MetricsConfig, NetworkPath,
    SelectorKind, StatsConfig, TcpSettings, ThreadConfig, TlsSettings,
};
use crate::service::Policy;

mod conn;
mod fix;
mod liveness;
mod network;
mod publish;
mod threads;
mod ws;

use conn::{RawTcp, RawTls};
use fix::RawFix;
use network::RawNetwork;
use threads::RawThread;
use ws::RawWs;

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
    #[serde(default)]
    metrics: Option<RawMetrics>,
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
    pong_timeout: Option<Spanned<String>>,
    stale_after: Option<Spanned<String>>,
    request_timeout: Option<Spanned<String>>,
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
    publish: Option<Spanned<bool>>,
    publish_max_message: Option<Spanned<i64>>,
    publish_buffer: Option<Spanned<i64>>,
    publish_overflow: Option<Spanned<String>>,
    ws: Option<Spanned<RawWs>>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Spanned<String>,
}

impl RawMetrics {
    fn validate(&self, loc: &Locator<'_>) -> Result<MetricsConfig, ConfigError> {
        let text = self.listen.get_ref();
        let listen = text.parse().map_err(|_| {
            loc.at(
                &self.listen,
                format!(
                    "metrics.listen {text:?} is not an address and port \
                     (expected e.g. \"127.0.0.1:9464\" or \"[::1]:9464\")"
                ),
            )
        })?;
        Ok(MetricsConfig { listen })
    }
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
        let metrics = self.metrics.as_ref().map(|m| m.validate(loc)).transpose()?;
        Ok(Config {
            network,
            threads,
            endpoints,
            stats,
            metrics,
        })
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
        let mut kind = self.kind(loc, &name, protocol)?;
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
        let live = liveness::RawLiveness {
            heartbeat,
            pong_timeout: self.pong_timeout.as_ref(),
            stale_after: self.stale_after.as_ref(),
            request_timeout: self.request_timeout.as_ref(),
        }
        .validate(loc, &name, protocol)?;
        if let EndpointKind::Http(h) = &mut kind {
            h.request_timeout = live.request_timeout;
        }
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
        let publish = self.publish.as_ref().is_some_and(|p| *p.get_ref());
        #[cfg(not(feature = "gateway"))]
        if let (true, Some(p)) = (publish, &self.publish) {
            return Err(loc.at(
                p,
                format!(
                    "endpoint {name:?}: `publish = true` needs the gateway, and this hotwire was \
                     built without the `gateway` feature"
                ),
            ));
        }
        #[cfg(feature = "gateway")]
        if publish {
            publish::check_service_name(loc, &self.name)?;
        }
        let publish_options = publish::options(
            loc,
            &name,
            &self.publish_max_message,
            &self.publish_buffer,
            &self.publish_overflow,
        )?;
        let ws_deflate = match &self.ws {
            None => None,
            Some(w) if protocol != Protocol::WebSocket => {
                return Err(loc.at(
                    w,
                    format!(
                        "endpoint {name:?}: [endpoint.ws] on an endpoint that is not ws or wss"
                    ),
                ))
            }
            Some(w) => w.get_ref().validate(loc, &name)?,
        };
        Ok(EndpointConfig {
            ws_deflate,
            name,
            url,
            thread,
            send: self.send,
            publish,
            publish_options,
            heartbeat,
            pong_timeout: live.pong_timeout,
            stale_after: live.stale_after,
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
                    request_timeout: liveness::REQUEST_TIMEOUT,
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
                EndpointKind::Fix(Box::new(FixSettings {
                    sender: f.sender.get_ref().clone(),
                    target: f.target.get_ref().clone(),
                    begin_string,
                    default_appl_ver_id: f.default_appl_ver_id.clone(),
                    store: f.store.as_deref().map(|p| loc.path(p)),
                    reset: f.reset.unwrap_or(false),
                    username: f.username.clone(),
                    password: f.password.as_ref().map(|p| p.0.clone()),
                    order_rate: f
                        .order_rate
                        .as_ref()
                        .map(|_| within(&f.order_rate, "order_rate", 1.0, (0.001, 1e6)))
                        .transpose()?,
                    symbol: f.symbol.clone().unwrap_or_else(|| "HWX".into()),
                    quantity: within(&f.quantity, "quantity", 1.0, amount)?,
                    price: within(&f.price, "price", 100.0, amount)?,
                    schedule: f
                        .schedule
                        .as_ref()
                        .map(|s| s.get_ref().validate(loc, s, name).map(Box::new))
                        .transpose()?,
                    check_latency: f.check_latency.unwrap_or(true),
                    max_latency: match &f.max_latency {
                        None => Duration::from_secs(120),
                        Some(v) => match duration(loc, "max_latency", v)? {
                            d if d.is_zero() => {
                                return Err(loc.at(
                                    v,
                                    format!("endpoint {name:?}: max_latency must be above zero"),
                                ))
                            }
                            d => d,
                        },
                    },
                }))
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
