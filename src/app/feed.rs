//! The appliance's WebSocket endpoint: subscribe, consume, measure.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::net::{BaseStream, EndpointNet};
use super::stats::{Counters, LatencyRecorder};
use crate::config::{EndpointConfig, LatencyMode};
use crate::service::{
    ConnectAddr, Dial, Disconnect, Endpoint, Error, Event, Flow, Policy, Timeout,
};
use crate::stream::record::RecordOptions;
use crate::stream::record::Recorded;
use crate::stream::tls::TlsConnector;
use crate::stream::{Either, MaybeTls};
use crate::ws::{ClientRequest, Message, Websocket, WsConfig, WsError, WsUrl};

/// The stream under the appliance's WebSocket: TCP (kernel or XDP, see [`BaseStream`]), TLS when
/// `wss`, recorded when configured.
pub type FeedStream = Either<MaybeTls<BaseStream>, Recorded<MaybeTls<BaseStream>>>;

/// The appliance's WebSocket connection type.
pub type FeedConnection = Websocket<FeedStream>;

/// A WebSocket endpoint built from configuration.
pub struct WsFeed {
    name: String,
    url: WsUrl,
    server_name: String,
    tls: Option<TlsConnector>,
    net: EndpointNet,
    send: Vec<String>,
    /// The client settings (permessage-deflate from `[endpoint.ws]`).
    ws_config: WsConfig,
    record: Option<PathBuf>,
    latency_mode: LatencyMode,
    policy: Policy,
    connection_index: u64,
    /// Shared with the stats printer.
    pub counters: Arc<Counters>,
    /// Receive time minus the venue's send timestamp.
    pub latency: LatencyRecorder,
    /// Ping round trips.
    pub round_trip: LatencyRecorder,
    /// The oldest ping not answered yet.
    ping_sent: Option<Instant>,
    heartbeat: Option<Duration>,
    next_ping: Option<Instant>,
    pong_timeout: Option<Duration>,
    stale_after: Option<Duration>,
    /// A data message arrived since the last timer tick (the tick reads the clock, not each
    /// message).
    data_seen: bool,
    last_data: Instant,
    shutting_down: bool,
    /// `publish = true`: every data message out, the strategies' messages in.
    #[cfg(feature = "gateway")]
    gateway: Option<crate::gateway::Gateway>,
}

/// Why the appliance gave up a WebSocket connection that is still open: the venue went silent
/// (a half-open connection: its traffic is lost without a FIN or RST reaching us).
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Silence {
    /// A ping's pong was not back within `pong_timeout`.
    #[error("no pong within {0:?} of a ping: the venue went silent")]
    PongTimeout(Duration),
    /// No data message within `stale_after`.
    #[error("no data message for {0:?} (stale_after): the feed went silent")]
    Stale(Duration),
}

impl From<Silence> for Timeout {
    fn from(s: Silence) -> Timeout {
        match s {
            Silence::PongTimeout(d) => Timeout::Pong(d),
            Silence::Stale(d) => Timeout::Stale(d),
        }
    }
}

/// How often the timer of a feed with these settings ticks: often enough to notice a missed
/// deadline within a quarter of it, and a whole number of times per heartbeat so pings keep their
/// cadence.
fn timer_tick(
    heartbeat: Option<Duration>,
    pong_timeout: Option<Duration>,
    stale_after: Option<Duration>,
) -> Option<Duration> {
    let floor = Duration::from_millis(1);
    let deadlines = [pong_timeout, stale_after]
        .into_iter()
        .flatten()
        .map(|d| (d / 4).max(floor))
        .min();
    match (heartbeat, deadlines) {
        (None, d) => d,
        (Some(h), None) => Some(h.max(floor)),
        (Some(h), Some(d)) => {
            let per_heartbeat = h.as_nanos().div_ceil(d.as_nanos()).clamp(1, 1 << 20) as u32;
            Some((h / per_heartbeat).max(floor))
        }
    }
}

impl std::fmt::Debug for WsFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsFeed")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl WsFeed {
    /// Builds the endpoint: `tls` is the connector for `wss` (see [`super::endpoints`]; `None`
    /// when the dialer makes the TLS session, with kTLS), `net` the endpoint's dialer on its IO
    /// thread's network path.
    pub fn new(
        cfg: &EndpointConfig,
        counters: Arc<Counters>,
        tls: Option<TlsConnector>,
        net: EndpointNet,
    ) -> io::Result<WsFeed> {
        let url = WsUrl::parse(&cfg.url).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {e}", cfg.name))
        })?;
        let tls = if url.is_secure() { tls } else { None };
        Ok(WsFeed {
            name: cfg.name.clone(),
            server_name: cfg
                .tls
                .server_name
                .clone()
                .unwrap_or_else(|| url.host().to_owned()),
            url,
            tls,
            net,
            send: cfg.send.clone(),
            ws_config: WsConfig {
                deflate: cfg.ws_deflate.map(|d| crate::ws::DeflateConfig {
                    client_no_context_takeover: d.client_no_context_takeover,
                    server_no_context_takeover: d.server_no_context_takeover,
                    client_max_window_bits: d.client_max_window_bits,
                    server_max_window_bits: d.server_max_window_bits,
                }),
                ..WsConfig::default()
            },
            record: cfg.record.clone(),
            latency_mode: cfg.latency,
            policy: crate::service::Policy {
                timer: timer_tick(cfg.heartbeat, cfg.pong_timeout, cfg.stale_after),
                ..cfg.policy.clone()
            },
            connection_index: 0,
            counters,
            latency: LatencyRecorder::new(),
            round_trip: LatencyRecorder::new(),
            ping_sent: None,
            heartbeat: cfg.heartbeat,
            next_ping: None,
            pong_timeout: cfg.pong_timeout,
            stale_after: cfg.stale_after,
            data_seen: false,
            last_data: Instant::now(),
            shutting_down: false,
            #[cfg(feature = "gateway")]
            gateway: None,
        })
    }

    /// Shares the feed through `gateway` (built on this IO thread).
    #[cfg(feature = "gateway")]
    pub fn with_gateway(mut self, gateway: Option<crate::gateway::Gateway>) -> Self {
        self.gateway = gateway;
        self
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts an orderly shutdown: a close frame now, and the end of the connection is not counted
    /// as a loss.
    pub fn shut_down(&mut self, ws: &mut FeedConnection) {
        self.shutting_down = true;
        let _ = ws.close(1000, "shutdown");
    }

    fn record_path(&self) -> Option<PathBuf> {
        let base = self.record.as_ref()?;
        if self.connection_index <= 1 {
            return Some(base.clone());
        }
        // Each reconnect gets its own file: feed.hwr, feed.2.hwr, feed.3.hwr, ...
        let stem = base
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = base.extension().map(|e| e.to_string_lossy().into_owned());
        let name = match ext {
            Some(e) => format!("{stem}.{}.{e}", self.connection_index),
            None => format!("{stem}.{}", self.connection_index),
        };
        Some(base.with_file_name(name))
    }

    fn on_data(&mut self, payload: &[u8]) {
        self.counters.messages.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        if self.latency_mode == LatencyMode::EmbeddedTimestamp {
            if let Some(sent) = embedded_timestamp(payload) {
                let ns = unix_now_ns().saturating_sub(sent);
                self.latency.record_ns(ns);
                self.counters.latency.record_ns(ns);
            }
        }
    }
}

/// Finds `"ts":<digits>` near the start of a message: the venue's send time in ns since the epoch.
pub fn embedded_timestamp(payload: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"ts\":";
    let head = &payload[..payload.len().min(96)];
    let at = head.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = &payload[at..];
    let mut v: u64 = 0;
    let mut n = 0;
    for &b in digits.iter().take(20) {
        if !b.is_ascii_digit() {
            break;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        n += 1;
    }
    (n > 0).then_some(v)
}

/// Wall-clock nanoseconds since the UNIX epoch (`CLOCK_REALTIME`, a vDSO call).
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// How a receive error ends the feed: the venue's closing handshake is an orderly close.
fn ended(ws: &FeedConnection, e: WsError) -> Disconnect {
    match e {
        WsError::Closed => {
            let (code, reason) = ws.peer_close().unwrap_or((None, ""));
            Disconnect::Closed {
                code,
                reason: reason.to_owned(),
            }
        }
        other => other.into(),
    }
}

impl<C> Endpoint<C> for WsFeed {
    type Target = FeedConnection;

    fn address(&self) -> ConnectAddr {
        ConnectAddr::new(self.url.host(), self.url.port())
    }

    fn create_target(&mut self, addr: SocketAddr, _: &mut C) -> Result<FeedConnection, Error> {
        self.connection_index += 1;
        let tcp = self.net.dial(addr).map_err(Error::Connect)?;
        let stream = MaybeTls::new(tcp, self.tls.as_ref(), &self.server_name)?;
        let stream = match self.record_path() {
            None => Either::Left(stream),
            Some(path) => Either::Right(Recorded::create(
                stream,
                path,
                RecordOptions {
                    label: Some(format!("{} {}", self.name, self.url.resource())),
                    ..RecordOptions::default()
                },
            )?),
        };
        let mut ws = Websocket::client(
            stream,
            ClientRequest::new(self.url.clone()),
            self.ws_config.clone(),
        )?;
        // Subscriptions are queued now and leave right after the handshake.
        for msg in &self.send {
            ws.send_text(msg)?;
        }
        Ok(ws)
    }

    fn poll(&mut self, ws: &mut FeedConnection, _: &mut C) -> Result<Flow, Disconnect> {
        #[cfg(feature = "gateway")]
        if let Some(gw) = &mut self.gateway {
            crate::gateway::send::to_websocket(gw, ws)?;
        }
        // Whole messages: a fragmented one is reassembled by the client (in a buffer it reuses),
        // so the gateway publishes it as one sample and the statistics count it once.
        for _ in 0..crate::service::ws::FRAMES_PER_POLL {
            let message = match ws.receive_message() {
                Ok(Some(message)) => message,
                // With a gateway, every round polls: strategies' messages wait on the service.
                #[cfg(feature = "gateway")]
                Ok(None) if self.gateway.is_some() => return Ok(Flow::More),
                Ok(None) => return Ok(Flow::Continue),
                Err(e) => return Err(ended(ws, e)),
            };
            let payload = match message {
                Message::Text(text) => text.as_bytes(),
                Message::Binary(bytes) => bytes,
                Message::Pong(_) => {
                    if let Some(sent) = self.ping_sent.take() {
                        let ns = sent.elapsed().as_nanos() as u64;
                        self.round_trip.record_ns(ns);
                        self.counters.round_trip.record_ns(ns);
                    }
                    continue;
                }
                Message::Ping(_) | Message::Close(_) => continue,
            };
            #[cfg(feature = "gateway")]
            if let Some(gw) = &mut self.gateway {
                use crate::gateway::Kind;
                let kind = match message {
                    Message::Text(_) => Kind::Text,
                    _ => Kind::Binary,
                };
                gw.publish(kind, crate::gateway::realtime_ns(), payload);
            }
            self.on_data(payload);
            self.data_seen = true;
        }
        Ok(Flow::More)
    }

    fn on_event(&mut self, event: &Event<'_>, _: &mut C) {
        match event {
            Event::Disconnected { .. } => {
                self.ping_sent = None;
                #[cfg(feature = "gateway")]
                if let Some(gw) = &mut self.gateway {
                    gw.session_down();
                }
            }
            Event::Connected { .. } => {
                self.ping_sent = None;
                self.next_ping = None;
                self.data_seen = false;
                self.last_data = Instant::now();
                // What strategies published during an outage never goes out late.
                #[cfg(feature = "gateway")]
                if let Some(gw) = &mut self.gateway {
                    gw.session_up();
                }
            }
        }
        self.counters.track(event, &self.name, self.shutting_down);
    }

    fn on_timer(
        &mut self,
        ws: &mut FeedConnection,
        now: Instant,
        _: &mut C,
    ) -> Result<Flow, Disconnect> {
        if let (Some(limit), Some(sent)) = (self.pong_timeout, self.ping_sent) {
            if now.saturating_duration_since(sent) >= limit {
                return Err(Timeout::from(Silence::PongTimeout(limit)).into());
            }
        }
        if std::mem::take(&mut self.data_seen) {
            self.last_data = now;
        }
        if let Some(limit) = self.stale_after {
            if now.saturating_duration_since(self.last_data) >= limit {
                return Err(Timeout::from(Silence::Stale(limit)).into());
            }
        }
        let Some(heartbeat) = self.heartbeat else {
            return Ok(Flow::Continue);
        };
        if self.next_ping.is_some_and(|at| now < at) {
            return Ok(Flow::Continue);
        }
        // Half a tick early, so a tick that comes a little late never skips a ping.
        let slack = self.policy.timer.map_or(Duration::ZERO, |t| t / 2);
        self.next_ping = Some(now + heartbeat.saturating_sub(slack));
        let stamp = unix_now_ns().to_be_bytes();
        ws.send_ping(&stamp)?;
        if self.ping_sent.is_none() {
            self.ping_sent = Some(now);
        }
        Ok(Flow::Continue)
    }

    fn policy(&self) -> Policy {
        self.policy.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_ticks_often_enough_for_every_deadline() {
        let ms = Duration::from_millis;
        assert_eq!(timer_tick(None, None, None), None);
        assert_eq!(timer_tick(Some(ms(250)), None, None), Some(ms(250)));
        // The default pong deadline (three heartbeats): two ticks per heartbeat.
        assert_eq!(
            timer_tick(Some(ms(250)), Some(ms(750)), None),
            Some(ms(125))
        );
        assert_eq!(
            timer_tick(Some(ms(100)), Some(ms(750)), None),
            Some(ms(100))
        );
        assert_eq!(
            timer_tick(Some(ms(1000)), None, Some(ms(1000))),
            Some(ms(250))
        );
        assert_eq!(timer_tick(None, None, Some(ms(2000))), Some(ms(500)));
        assert_eq!(
            timer_tick(None, None, Some(Duration::from_micros(1))),
            Some(ms(1))
        );
        let e = Disconnect::from(Timeout::from(Silence::PongTimeout(ms(750))));
        assert!(matches!(
            e,
            Disconnect::Error(Error::Timeout(Timeout::Pong(d))) if d == ms(750)
        ));
        assert!(e.to_string().contains("no pong within 750ms"), "{e}");
    }

    #[test]
    fn finds_the_embedded_timestamp() {
        assert_eq!(
            embedded_timestamp(br#"{"seq":1,"ts":1732480000123456789,"sym":"X"}"#),
            Some(1_732_480_000_123_456_789)
        );
        assert_eq!(embedded_timestamp(br#"{"seq":1,"sym":"X"}"#), None);
        assert_eq!(embedded_timestamp(br#"{"ts":}"#), None);
        assert_eq!(
            embedded_timestamp(br#"{"ts":99999999999999999999999}"#),
            None
        );
        assert_eq!(embedded_timestamp(b""), None);
    }
}
