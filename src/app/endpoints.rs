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
use super::net::{BaseStream, Net};
use super::stats::{Counters, LatencyRecorder};
use crate::config::{EndpointConfig, EndpointKind};
#[cfg(any(feature = "http", feature = "fix"))]
use crate::service::Event;
use crate::service::{Flow, Mixed};
use crate::stream::tls::{RootSource, TlsConfig, TlsConnector};

#[cfg(feature = "fix")]
use crate::fix::{
    codec::{Decimal, Message, MsgType, Tag},
    endpoint::{FixEndpoint, FixHandler, FixOutbox},
    orders::{NewOrder, Side},
    Now, SessionConfig, Version,
};
#[cfg(feature = "http")]
use crate::http::{HttpEndpoint, HttpHook, Method, RequestSpec, Response};

/// The HTTP endpoint kind of the appliance.
#[cfg(feature = "http")]
pub type HttpKind = HttpEndpoint<HttpMeter, Net>;
/// The HTTP endpoint kind (compiled out: the `http` feature is off).
#[cfg(not(feature = "http"))]
pub type HttpKind = Unavailable;

/// The FIX endpoint kind of the appliance.
#[cfg(feature = "fix")]
pub type FixKind = FixEndpoint<FixTrader, Net>;
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
    fn create_target(&mut self, _: std::net::SocketAddr, _: &mut C) -> io::Result<BaseStream> {
        match *self {}
    }
    fn poll(&mut self, _: &mut BaseStream, _: &mut C) -> io::Result<Flow> {
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
}

/// `true` for URL schemes that use TLS.
fn secure(url: &str) -> bool {
    matches!(
        url.split_once("://").map(|(s, _)| s),
        Some("wss" | "https" | "fixs")
    )
}

/// Checks what can fail before any thread starts: builds the TLS connector (reading the CA file).
pub fn prepare(index: usize, config: &EndpointConfig) -> io::Result<Prepared> {
    let tls = if secure(&config.url) {
        let backend = config
            .tls
            .backend
            .parse()
            .map_err(|e: String| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut tls = TlsConfig {
            backend,
            insecure: !config.tls.verify,
            ..TlsConfig::default()
        };
        if let Some(ca) = &config.tls.ca {
            tls.ca_file = Some(ca.clone());
            tls.roots = RootSource::None;
        }
        Some(
            tls.build()
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", config.name)))?,
        )
    } else {
        None
    };
    Ok(Prepared {
        index,
        config: config.clone(),
        counters: Arc::new(Counters::default()),
        tls,
    })
}

fn invalid(name: &str, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: {what}"))
}

impl Prepared {
    /// Builds the endpoint over `net` (on its IO thread).
    pub fn build(self, net: &Net) -> io::Result<AppEndpoint> {
        let cfg = &self.config;
        match &cfg.kind {
            EndpointKind::WebSocket => Ok(Mixed::A(WsFeed::new(
                cfg,
                self.counters,
                self.tls,
                net.clone(),
            )?)),
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
                };
                let mut e = HttpEndpoint::new(&cfg.url, requests, meter)?
                    .with_interval(h.interval)
                    .with_pipeline(h.pipeline)
                    .with_policy(cfg.policy.clone())
                    .with_dialer(net.clone());
                if let Some(tls) = self.tls {
                    e = e.with_tls(tls);
                }
                Ok(Mixed::B(Mixed::A(e)))
            }
            #[cfg(feature = "fix")]
            EndpointKind::Fix(f) => {
                let (host, port) = fix_address(&cfg.url).ok_or_else(|| {
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
                let trader = FixTrader::new(&cfg.name, f, self.counters);
                let tick = (session.heartbeat_interval / 4)
                    .clamp(Duration::from_millis(1), Duration::from_secs(1));
                let order_tick = f.order_rate.map(|r| {
                    Duration::from_secs_f64(1.0 / r).clamp(Duration::from_micros(100), tick)
                });
                let policy = crate::service::Policy {
                    timer: Some(order_tick.unwrap_or(tick).min(tick)),
                    ..cfg.policy.clone()
                };
                let mut e = FixEndpoint::new(&host, port, session, trader)
                    .with_policy(policy)
                    .with_dialer(net.clone());
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
                if let Some(tls) = self.tls {
                    let name = cfg.tls.server_name.clone().unwrap_or_else(|| host.clone());
                    e = e.with_tls(tls, &name);
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
            counters: &http.hook().counters,
            latency: None,
            round_trip: Some(&http.hook().round_trip),
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
}

#[cfg(feature = "http")]
impl<C> HttpHook<C> for HttpMeter {
    fn on_response(
        &mut self,
        response: &Response<'_>,
        rtt: Duration,
        _: &mut C,
    ) -> io::Result<Flow> {
        self.counters.messages.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(response.body().len() as u64, Ordering::Relaxed);
        self.round_trip.record_ns(rtt.as_nanos() as u64);
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
    fn on_logon(&mut self, _: &mut FixOutbox<'_, BaseStream>, _: Now, _: &mut C) -> io::Result<()> {
        self.next_order = None;
        Ok(())
    }

    fn on_message(
        &mut self,
        msg: Message<'_>,
        _: &mut FixOutbox<'_, BaseStream>,
        _: Now,
        _: &mut C,
    ) -> io::Result<Flow> {
        if msg.msg_type() == MsgType::ExecutionReport {
            self.counters.messages.fetch_add(1, Ordering::Relaxed);
            self.counters
                .bytes
                .fetch_add(msg.as_bytes().len() as u64, Ordering::Relaxed);
            if let Ok(id) = msg.u64(Tag::ClOrdId) {
                let slot = &mut self.sent[(id as usize) % ORDER_RING];
                if slot.0 == id {
                    if let Some(t) = slot.1.take() {
                        self.round_trip.record_ns(t.elapsed().as_nanos() as u64);
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
    ) -> io::Result<Flow> {
        if self.shutting_down {
            return Ok(Flow::Close);
        }
        self.send_due(out, now)?;
        Ok(Flow::Continue)
    }

    fn on_event(&mut self, event: &Event<'_>, _: &mut C) {
        self.counters.track(event, &self.name, self.shutting_down);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
