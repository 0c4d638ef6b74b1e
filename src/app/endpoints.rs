//! The appliance's endpoint kinds, one service type for all of them.
//!
//! An IO thread's service holds [`AppEndpoint`] = [`Mixed`]`<WsFeed, Mixed<HTTP, FIX>>`, so
//! WebSocket feeds, REST pollers and FIX order sessions share one event loop without `dyn`. Each
//! endpoint dials through the thread's [`Net`] (kernel TCP or the AF_XDP stack).
//!
//! Endpoints are built on their IO thread (the AF_XDP stack is not `Send`) from a [`Prepared`]
//! endpoint, which is everything that can fail early — URL, TLS files — checked on the main thread.

use std::io;
#[cfg(any(feature = "http", feature = "fix"))]
use std::sync::atomic::Ordering;
use std::sync::Arc;
#[cfg(any(feature = "http", feature = "fix"))]
use std::time::Duration;
#[cfg(feature = "fix")]
use std::time::Instant;

use super::feed::WsFeed;
use super::net::{BaseStream, EndpointNet, Net};
use super::stats::{Counters, LatencyRecorder};
use crate::config::{
    EndpointConfig, EndpointKind, KtlsSetting, TcpSettings, TlsProtocol, TlsRoots,
};
#[cfg(any(feature = "http", feature = "fix"))]
use crate::service::Event;
use crate::service::{Flow, Mixed};
use crate::stream::tls::{ClientCert, RootSource, TlsConfig, TlsConnector, TlsVersion};
use crate::stream::TcpOptions;

#[cfg(feature = "fix")]
use crate::fix::{
    codec::{Decimal, Message, MsgType, Tag},
    endpoint::{FixEndpoint, FixHandler, FixOutbox},
    orders::{NewOrder, Side},
    Now, SessionConfig, Version,
};
#[cfg(feature = "http")]
use crate::http::{HttpEndpoint, HttpHandler, HttpOut, Method, RequestSpec, Response};

/// The HTTP endpoint kind of the appliance.
#[cfg(feature = "http")]
pub type HttpKind = HttpEndpoint<HttpMeter, EndpointNet>;
/// The HTTP endpoint kind (compiled out: the `http` feature is off).
#[cfg(not(feature = "http"))]
pub type HttpKind = Unavailable;

/// The FIX endpoint kind of the appliance.
#[cfg(feature = "fix")]
pub type FixKind = FixEndpoint<FixTrader, EndpointNet>;
/// The FIX endpoint kind (compiled out: the `fix` feature is off).
#[cfg(not(feature = "fix"))]
pub type FixKind = Unavailable;

/// Every endpoint kind of the appliance.
pub type AppEndpoint = Mixed<WsFeed, Mixed<HttpKind, FixKind>>;

/// Stands in for an endpoint kind whose cargo feature is off; never constructed.
#[derive(Debug)]
pub enum Unavailable {}

#[cfg(any(not(feature = "http"), not(feature = "fix")))]
impl<C> crate::service::Endpoint<C> for Unavailable {
    type Target = BaseStream;
    fn address(&self) -> crate::service::ConnectAddr {
        match *self {}
    }
    fn create_target(
        &mut self,
        _: std::net::SocketAddr,
        _: &mut C,
    ) -> Result<BaseStream, crate::service::Error> {
        match *self {}
    }
    fn poll(&mut self, _: &mut BaseStream, _: &mut C) -> Result<Flow, crate::service::Disconnect> {
        match *self {}
    }
}

/// An endpoint checked on the main thread, ready to be built on its IO thread.
#[derive(Debug)]
pub struct Prepared {
    /// Position in the configuration (report order).
    pub index: usize,
    /// Its configuration.
    pub config: EndpointConfig,
    /// Shared with the stats printer.
    pub counters: Arc<Counters>,
    tls: Option<TlsConnector>,
    /// kTLS to set up in the dialer (the kernel has the TLS ULP; `tls.ktls` is on).
    #[cfg(feature = "ktls")]
    ktls: Option<crate::stream::ktls::KtlsMode>,
}

/// Why an endpoint with `tls.ktls = "require"` cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KtlsRequired {
    /// The kernel (or OpenSSL) cannot offload the session.
    #[cfg(feature = "ktls")]
    #[error("endpoint {endpoint:?}: tls.ktls = \"require\": {source}")]
    Unavailable {
        /// The endpoint.
        endpoint: String,
        /// What the probe found.
        source: crate::stream::ktls::KtlsError,
    },
    /// This build has no kTLS.
    #[error(
        "endpoint {endpoint:?}: tls.ktls = \"require\" but this hotwire was built without the \
         `ktls` feature"
    )]
    NotBuilt {
        /// The endpoint.
        endpoint: String,
    },
    /// The endpoint runs over the AF_XDP stack, which has no kernel socket to offload to.
    #[error(
        "endpoint {endpoint:?}: tls.ktls = \"require\" needs kernel TCP, and this endpoint runs \
         over AF_XDP"
    )]
    NotKernelTcp {
        /// The endpoint.
        endpoint: String,
    },
}

impl KtlsRequired {
    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::Unsupported, self)
    }
}

/// `true` for URL schemes that use TLS.
fn secure(url: &str) -> bool {
    matches!(
        url.split_once("://").map(|(s, _)| s),
        Some("wss" | "https" | "fixs")
    )
}

/// The TLS library settings of an endpoint's `[endpoint.tls]`.
pub fn tls_config(config: &EndpointConfig) -> io::Result<TlsConfig> {
    let t = &config.tls;
    let backend = t
        .backend
        .parse()
        .map_err(|e: String| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let version = |v| match v {
        TlsProtocol::Tls12 => TlsVersion::Tls12,
        TlsProtocol::Tls13 => TlsVersion::Tls13,
    };
    Ok(TlsConfig {
        backend,
        roots: match t.roots {
            TlsRoots::Builtin => RootSource::Builtin,
            TlsRoots::Os => RootSource::Native,
            TlsRoots::None => RootSource::None,
        },
        ca_file: t.ca.clone(),
        client_cert: t.client_cert.as_ref().map(|(chain, key)| ClientCert {
            chain: chain.clone(),
            key: key.clone(),
        }),
        alpn: t.alpn.clone(),
        min_version: version(t.min_version),
        max_version: version(t.max_version),
        insecure: !t.verify,
        ..TlsConfig::default()
    })
}

/// The kernel socket options of an endpoint's `[endpoint.tcp]`.
pub fn tcp_options(tcp: &TcpSettings) -> TcpOptions {
    TcpOptions {
        bind_device: tcp.bind_device.clone(),
        bind_addr: tcp.bind_addr,
        nodelay: tcp.nodelay,
        incoming_cpu: tcp.incoming_cpu,
        busy_poll_us: tcp.busy_poll_us,
        recv_buffer: tcp.recv_buffer,
        send_buffer: tcp.send_buffer,
        ..TcpOptions::default()
    }
}

/// Checks what can fail before any thread starts: builds the TLS connector (reading the CA file,
/// the client certificate and key) and decides kTLS: with `ktls = "prefer"` on a kernel without
/// the TLS ULP (or a build without the `ktls` feature) TLS runs in user space, said once in the
/// log; with `"require"` the endpoint fails here with a [`KtlsRequired`] error.
pub fn prepare(index: usize, config: &EndpointConfig) -> io::Result<Prepared> {
    let name = &config.name;
    let tls = if secure(&config.url) {
        Some(
            tls_config(config)?
                .build()
                .map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}")))?,
        )
    } else {
        None
    };
    let wants_ktls = tls.is_some() && config.tls.ktls != KtlsSetting::Off;
    #[cfg(feature = "ktls")]
    let ktls = if wants_ktls {
        use crate::stream::ktls::{kernel_support, KtlsMode};
        match (kernel_support(), config.tls.ktls) {
            (Ok(()), KtlsSetting::Require) => Some(KtlsMode::Require),
            (Ok(()), _) => Some(KtlsMode::Prefer),
            (Err(source), KtlsSetting::Require) => {
                return Err(KtlsRequired::Unavailable {
                    endpoint: name.clone(),
                    source,
                }
                .into_io())
            }
            (Err(e), _) => {
                log::warn!("endpoint {name:?}: tls.ktls = \"prefer\": {e}; TLS runs in user space");
                None
            }
        }
    } else {
        None
    };
    #[cfg(not(feature = "ktls"))]
    if wants_ktls {
        if config.tls.ktls == KtlsSetting::Require {
            return Err(KtlsRequired::NotBuilt {
                endpoint: name.clone(),
            }
            .into_io());
        }
        log::warn!(
            "endpoint {name:?}: tls.ktls = \"prefer\" but this hotwire was built without the \
             `ktls` feature; TLS runs in user space"
        );
    }
    Ok(Prepared {
        index,
        config: config.clone(),
        counters: Arc::new(Counters::default()),
        tls,
        #[cfg(feature = "ktls")]
        ktls,
    })
}

/// The host part of `scheme://host:port/...` (IPv6 without brackets).
#[cfg(feature = "ktls")]
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    Some(authority.rsplit_once(':').map_or(authority, |(h, _)| h))
}

fn invalid(name: &str, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: {what}"))
}

impl Prepared {
    /// The endpoint's dialer over `net`, with its socket options and kTLS. Returns the TLS
    /// connector the endpoint itself must use (`None` when the dialer makes the TLS session).
    fn dialer(&mut self, net: &Net) -> io::Result<(EndpointNet, Option<TlsConnector>)> {
        let cfg = &self.config;
        let dial = EndpointNet::new(net.clone(), tcp_options(&cfg.tcp));
        if !net.kernel_sockets() && !cfg.tcp.is_default() {
            log::warn!(
                "endpoint {:?}: [endpoint.tcp] options apply to kernel TCP only; this endpoint \
                 runs over AF_XDP without them",
                cfg.name
            );
        }
        #[cfg(feature = "ktls")]
        if let (Some(mode), Some(tls)) = (self.ktls, &self.tls) {
            use crate::stream::ktls::KtlsMode;
            if !net.kernel_sockets() {
                if mode == KtlsMode::Require {
                    return Err(KtlsRequired::NotKernelTcp {
                        endpoint: cfg.name.clone(),
                    }
                    .into_io());
                }
                log::warn!(
                    "endpoint {:?}: kTLS needs kernel TCP and this endpoint runs over AF_XDP; TLS \
                     runs in user space",
                    cfg.name
                );
                return Ok((dial, self.tls.take()));
            }
            let server_name = cfg
                .tls
                .server_name
                .clone()
                .or_else(|| url_host(&cfg.url).map(str::to_owned))
                .ok_or_else(|| invalid(&cfg.name, format!("{:?} has no host", cfg.url)))?;
            let ktls = super::net::KtlsDial {
                connector: tls.clone(),
                server_name,
                mode,
            };
            return Ok((dial.with_ktls(ktls), None));
        }
        Ok((dial, self.tls.take()))
    }

    /// The endpoint's gateway (`publish = true`), opened on the IO thread.
    #[cfg(feature = "gateway")]
    fn gateway(&self) -> io::Result<Option<crate::gateway::Gateway>> {
        if !self.config.publish {
            return Ok(None);
        }
        let counters = self.counters.gateway.clone();
        // An HTTP endpoint only publishes its response bodies: it takes no strategy messages.
        #[cfg(feature = "http")]
        let takes_orders = !matches!(self.config.kind, EndpointKind::Http(_));
        #[cfg(not(feature = "http"))]
        let takes_orders = true;
        Ok(Some(crate::gateway::Gateway::open(
            &self.config.name,
            self.index,
            &self.config.publish_options,
            takes_orders,
            counters,
        )?))
    }

    /// Builds the endpoint over `net` (on its IO thread).
    pub fn build(mut self, net: &Net) -> io::Result<AppEndpoint> {
        #[cfg(feature = "gateway")]
        let gateway = self.gateway()?;
        let (dial, tls) = self.dialer(net)?;
        let tls_in_dialer = self.tls.is_some() && tls.is_none();
        let cfg = &self.config;
        match &cfg.kind {
            EndpointKind::WebSocket => {
                let feed = WsFeed::new(cfg, self.counters, tls, dial)?;
                #[cfg(feature = "gateway")]
                let feed = feed.with_gateway(gateway);
                Ok(Mixed::A(feed))
            }
            #[cfg(feature = "http")]
            EndpointKind::Http(h) => {
                let requests = if h.requests.is_empty() {
                    let path = cfg
                        .url
                        .split_once("://")
                        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
                        .unwrap_or_else(|| "/".to_owned());
                    vec![RequestSpec::get(path)]
                } else {
                    h.requests
                        .iter()
                        .map(|r| {
                            let method: Method =
                                r.method.parse().map_err(|e| invalid(&cfg.name, e))?;
                            let mut spec = RequestSpec::get(r.target.clone());
                            spec.method = method;
                            spec.body = r.body.clone().into_bytes();
                            for (k, v) in &r.headers {
                                spec = spec.header(k.clone(), v.clone());
                            }
                            Ok(spec)
                        })
                        .collect::<io::Result<Vec<_>>>()?
                };
                let meter = HttpMeter {
                    name: cfg.name.clone(),
                    counters: self.counters,
                    round_trip: LatencyRecorder::new(),
                    #[cfg(feature = "gateway")]
                    gateway,
                };
                let mut e = HttpEndpoint::new(&cfg.url, meter)
                    .and_then(|e| e.with_requests(requests))
                    .map_err(|e| invalid(&cfg.name, e.to_string()))?
                    .with_interval(h.interval)
                    .with_pipeline(h.pipeline)
                    .with_timeout(h.request_timeout)
                    .with_policy(cfg.policy.clone())
                    .with_dialer(dial);
                match tls {
                    Some(tls) => e = e.with_tls(tls),
                    None if tls_in_dialer => e = e.with_tls_in_dialer(),
                    None => {}
                }
                Ok(Mixed::B(Mixed::A(e)))
            }
            #[cfg(feature = "fix")]
            EndpointKind::Fix(f) => {
                let (host, _) = fix_address(&cfg.url).ok_or_else(|| {
                    invalid(&cfg.name, format!("{:?} is not fix://host:port", cfg.url))
                })?;
                let version = match f.begin_string.as_str() {
                    "FIX.4.2" => Version::Fix42,
                    "FIX.4.4" => Version::Fix44,
                    _ => Version::Fixt11,
                };
                let mut session = SessionConfig::new(version, &f.sender, &f.target);
                if let Some(v) = &f.default_appl_ver_id {
                    session.default_appl_ver_id = v.clone();
                }
                session.reset_on_logon = f.reset;
                session.username = f.username.clone();
                session.password = f.password.clone();
                session.check_latency = f.check_latency;
                session.max_latency = f.max_latency;
                if let Some(hb) = cfg.heartbeat {
                    session.heartbeat_interval = hb;
                }
                #[allow(unused_mut)]
                let mut trader = FixTrader::new(&cfg.name, f, self.counters);
                #[allow(unused_mut)]
                let mut tick = (session.heartbeat_interval / 4)
                    .clamp(Duration::from_millis(1), Duration::from_secs(1));
                #[cfg(feature = "gateway")]
                if gateway.is_some() {
                    trader.gateway = gateway;
                    // Strategies' orders wait on the service until the next tick.
                    tick = crate::gateway::FIX_TICK;
                }
                let order_tick = f.order_rate.map(|r| order_period(r, tick));
                let mut e = FixEndpoint::new(&cfg.url, session, trader)
                    .map_err(|e| invalid(&cfg.name, e.to_string()))?
                    .with_policy(cfg.policy.clone())
                    .with_timer(order_tick.unwrap_or(tick).min(tick))
                    .with_dialer(dial);
                if let Some(dir) = &f.store {
                    e = e.with_file_store(dir.clone());
                }
                if let Some(s) = &f.schedule {
                    let schedule = crate::fix::schedule::Schedule::new(
                        s.start_time,
                        s.end_time,
                        s.days,
                        &s.time_zone,
                    )
                    .map_err(|e| invalid(&cfg.name, e.to_string()))?;
                    e = e.with_schedule(schedule);
                }
                if let Some(tls) = tls {
                    let name = cfg.tls.server_name.clone().unwrap_or_else(|| host.clone());
                    e = e.with_tls(tls).with_server_name(&name);
                }
                Ok(Mixed::B(Mixed::B(e)))
            }
            #[allow(unreachable_patterns)]
            _ => Err(invalid(
                &cfg.name,
                "this endpoint's protocol is not compiled in (enable its cargo feature)",
            )),
        }
    }
}

/// `fix://host:port` / `fixs://[v6]:port` → host (without brackets) and port.
pub fn fix_address(url: &str) -> Option<(String, u16)> {
    let rest = url
        .strip_prefix("fix://")
        .or_else(|| url.strip_prefix("fixs://"))?;
    let (host, port) = rest.trim_end_matches('/').rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), port.parse().ok()?))
}

/// What the report needs from an endpoint of any kind.
#[derive(Debug)]
pub struct Figures<'a> {
    /// The endpoint's counters.
    pub counters: &'a Counters,
    /// One-way latency (WebSocket feeds with embedded timestamps).
    pub latency: Option<&'a LatencyRecorder>,
    /// Round trips: pings, HTTP requests, FIX order → execution report.
    pub round_trip: Option<&'a LatencyRecorder>,
}

/// The figures of `endpoint`.
pub fn figures(endpoint: &AppEndpoint) -> Figures<'_> {
    match endpoint {
        Mixed::A(ws) => Figures {
            counters: &ws.counters,
            latency: Some(&ws.latency),
            round_trip: Some(&ws.round_trip),
        },
        #[cfg(feature = "http")]
        Mixed::B(Mixed::A(http)) => Figures {
            counters: &http.handler().counters,
            latency: None,
            round_trip: Some(&http.handler().round_trip),
        },
        #[cfg(feature = "fix")]
        Mixed::B(Mixed::B(fix)) => Figures {
            counters: &fix.handler().counters,
            latency: None,
            round_trip: Some(&fix.handler().round_trip),
        },
        #[allow(unreachable_patterns)]
        Mixed::B(_) => unreachable!("an endpoint kind that is compiled out is never built"),
    }
}

/// The appliance's HTTP hook: counts responses and body bytes, records round trips.
#[cfg(feature = "http")]
#[derive(Debug)]
pub struct HttpMeter {
    name: String,
    /// Shared with the stats printer (`messages` counts responses).
    pub counters: Arc<Counters>,
    /// Request → response round trips.
    pub round_trip: LatencyRecorder,
    /// `publish = true`: every response body out.
    #[cfg(feature = "gateway")]
    gateway: Option<crate::gateway::Gateway>,
}

#[cfg(feature = "http")]
impl<C> HttpHandler<C, BaseStream> for HttpMeter {
    fn on_response(
        &mut self,
        response: &Response<'_>,
        rtt: Duration,
        _: &mut HttpOut<'_, BaseStream>,
        _: &mut C,
    ) -> Result<Flow, crate::service::Error> {
        self.counters.messages.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(response.body().len() as u64, Ordering::Relaxed);
        let ns = rtt.as_nanos() as u64;
        self.round_trip.record_ns(ns);
        self.counters.round_trip.record_ns(ns);
        #[cfg(feature = "gateway")]
        if let Some(gw) = &mut self.gateway {
            let body = response.body();
            gw.publish(
                crate::gateway::Kind::HttpBody,
                crate::gateway::realtime_ns(),
                body,
            );
        }
        Ok(Flow::Continue)
    }

    fn on_event(&mut self, event: &Event<'_>, _: &mut C) {
        self.counters.track(event, &self.name, false);
    }
}

/// How many orders in flight are remembered for round-trip timing (a ring indexed by ClOrdID).
#[cfg(feature = "fix")]
const ORDER_RING: usize = 4096;

/// The appliance's FIX handler: sends limit orders at the configured rate, times each order until
/// its first ExecutionReport.
#[cfg(feature = "fix")]
pub struct FixTrader {
    name: String,
    /// Shared with the stats printer (`messages` counts ExecutionReports).
    pub counters: Arc<Counters>,
    /// Order → first ExecutionReport round trips.
    pub round_trip: LatencyRecorder,
    symbol: String,
    qty: Decimal,
    price: Decimal,
    period: Option<Duration>,
    next_order: Option<Instant>,
    next_id: u64,
    /// Send time of order `id` at `id % ORDER_RING` (with the id, so a stale slot is ignored).
    sent: Box<[(u64, Option<Instant>)]>,
    id_text: String,
    shutting_down: bool,
    /// `publish = true`: every application message out, the strategies' orders in.
    #[cfg(feature = "gateway")]
    gateway: Option<crate::gateway::Gateway>,
}

#[cfg(feature = "fix")]
impl std::fmt::Debug for FixTrader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixTrader")
            .field("symbol", &self.symbol)
            .field("next_id", &self.next_id)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "fix")]
fn decimal(v: f64) -> Decimal {
    // Six decimals cover every tick size in use; the config checked the value is positive.
    Decimal::new((v * 1e6).round() as i64, 6)
}

#[cfg(feature = "fix")]
impl FixTrader {
    fn new(name: &str, f: &crate::config::FixSettings, counters: Arc<Counters>) -> FixTrader {
        FixTrader {
            name: name.to_owned(),
            counters,
            round_trip: LatencyRecorder::new(),
            symbol: f.symbol.clone(),
            qty: decimal(f.quantity),
            price: decimal(f.price),
            period: f.order_rate.map(|r| Duration::from_secs_f64(1.0 / r)),
            next_order: None,
            next_id: 1,
            sent: vec![(0, None); ORDER_RING].into_boxed_slice(),
            id_text: String::with_capacity(24),
            shutting_down: false,
            #[cfg(feature = "gateway")]
            gateway: None,
        }
    }

    /// Stops sending orders and logs out at the next timer tick; the end of the session is not
    /// counted as a loss.
    pub fn shut_down(&mut self) {
        self.shutting_down = true;
    }

    /// Sends the orders that are due by `now`.
    fn send_due(&mut self, out: &mut FixOutbox<'_, BaseStream>, now: Now) -> io::Result<()> {
        let Some(period) = self.period else {
            return Ok(());
        };
        let due = self.next_order.get_or_insert(now.mono);
        // At most a burst of 64 per tick after a stall, so a late timer never floods the venue.
        let mut burst = 0;
        while *due <= now.mono && burst < 64 {
            use std::fmt::Write as _;
            let id = self.next_id;
            self.next_id += 1;
            self.id_text.clear();
            let _ = write!(self.id_text, "{id}");
            let order = NewOrder {
                cl_ord_id: &self.id_text,
                symbol: &self.symbol,
                side: if id % 2 == 0 { Side::Sell } else { Side::Buy },
                qty: self.qty,
                price: Some(self.price),
                time_in_force: None,
                account: None,
            };
            let version = out.session().config().version;
            out.send(now, NewOrder::MSG_TYPE, |e| {
                order.encode(e, version, now.utc)
            })?;
            self.sent[(id as usize) % ORDER_RING] = (id, Some(Instant::now()));
            *due += period;
            burst += 1;
        }
        if burst == 64 {
            // Too far behind: skip what was missed instead of catching up in bursts.
            *due = now.mono + period;
        }
        Ok(())
    }
}

#[cfg(feature = "fix")]
impl<C> FixHandler<C, BaseStream> for FixTrader {
    fn on_logon(
        &mut self,
        _: &mut FixOutbox<'_, BaseStream>,
        _: Now,
        _: &mut C,
    ) -> Result<(), crate::service::Error> {
        self.next_order = None;
        // What strategies published during an outage never goes out late.
        #[cfg(feature = "gateway")]
        if let Some(gw) = &mut self.gateway {
            gw.session_up();
        }
        Ok(())
    }

    fn on_message(
        &mut self,
        msg: Message<'_>,
        _: &mut FixOutbox<'_, BaseStream>,
        _: Now,
        _: &mut C,
    ) -> Result<Flow, crate::service::Error> {
        #[cfg(feature = "gateway")]
        if let Some(gw) = &mut self.gateway {
            let at = crate::gateway::realtime_ns();
            gw.publish(crate::gateway::Kind::Fix, at, msg.as_bytes());
        }
        if msg.msg_type() == MsgType::ExecutionReport {
            self.counters.messages.fetch_add(1, Ordering::Relaxed);
            self.counters
                .bytes
                .fetch_add(msg.as_bytes().len() as u64, Ordering::Relaxed);
            if let Ok(id) = msg.u64(Tag::ClOrdId) {
                let slot = &mut self.sent[(id as usize) % ORDER_RING];
                if slot.0 == id {
                    if let Some(t) = slot.1.take() {
                        let ns = t.elapsed().as_nanos() as u64;
                        self.round_trip.record_ns(ns);
                        self.counters.round_trip.record_ns(ns);
                    }
                }
            }
        }
        Ok(Flow::Continue)
    }

    fn on_timer(
        &mut self,
        out: &mut FixOutbox<'_, BaseStream>,
        now: Now,
        _: &mut C,
    ) -> Result<Flow, crate::service::Error> {
        if self.shutting_down {
            return Ok(Flow::Close);
        }
        self.send_due(out, now)?;
        #[cfg(feature = "gateway")]
        if let Some(gw) = &mut self.gateway {
            crate::gateway::send::to_fix(gw, out, now)?;
        }
        Ok(Flow::Continue)
    }

    fn on_reject(&mut self, ref_seq: u64, msg: Message<'_>, _: &mut C) {
        log::warn!("FIX session reject of our MsgSeqNum {ref_seq}: {msg:?}");
        #[cfg(feature = "gateway")]
        if let Some(gw) = &mut self.gateway {
            let at = crate::gateway::realtime_ns();
            gw.publish(crate::gateway::Kind::Fix, at, msg.as_bytes());
        }
    }

    fn on_event(&mut self, event: &Event<'_>, _: &mut C) {
        #[cfg(feature = "gateway")]
        if let (Event::Disconnected { .. }, Some(gw)) = (event, &mut self.gateway) {
            gw.session_down();
        }
        self.counters.track(event, &self.name, self.shutting_down);
    }
}

/// The timer period that paces `order_rate` orders per second: the order period, at least
/// 100 us and at most the endpoint's `tick` (a gateway makes `tick` 1 us, below that floor: the
/// floor wins then, and the timer still runs every `tick`).
#[cfg(feature = "fix")]
fn order_period(rate: f64, tick: Duration) -> Duration {
    let floor = Duration::from_micros(100);
    Duration::from_secs_f64(1.0 / rate).clamp(floor, tick.max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "fix")]
    #[test]
    fn order_periods_never_panic_with_a_gateway_tick() {
        let ms = Duration::from_millis(1);
        assert_eq!(order_period(50.0, ms), ms);
        assert_eq!(order_period(1e6, ms), Duration::from_micros(100));
        assert_eq!(order_period(5000.0, ms), Duration::from_micros(200));
        // publish = true with order_rate: the 1 us gateway tick is below the 100 us floor.
        #[cfg(feature = "gateway")]
        for rate in [0.001, 1.0, 50.0, 1e6] {
            let p = order_period(rate, crate::gateway::FIX_TICK);
            assert_eq!(p, Duration::from_micros(100), "{rate}");
        }
    }

    #[test]
    fn fix_addresses() {
        assert_eq!(
            fix_address("fix://127.0.0.1:9876"),
            Some(("127.0.0.1".into(), 9876))
        );
        assert_eq!(
            fix_address("fixs://[::1]:9877/"),
            Some(("::1".into(), 9877))
        );
        assert_eq!(fix_address("fix://host"), None);
        assert_eq!(fix_address("fix://:1"), None);
        assert_eq!(fix_address("http://h:1"), None);
        assert_eq!(fix_address("fix://h:99999"), None);
    }

    #[cfg(feature = "ktls")]
    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://venue.example:8443/api"),
            Some("venue.example")
        );
        assert_eq!(url_host("wss://[::1]:9443/feed"), Some("::1"));
        assert_eq!(url_host("fixs://127.0.0.1:9877"), Some("127.0.0.1"));
        assert_eq!(url_host("https://h?x=1"), Some("h"));
        assert_eq!(url_host("nothing"), None);
    }
}
