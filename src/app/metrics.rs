//! The Prometheus endpoint of `hotwire run` (`[metrics] listen = "127.0.0.1:9464"`).
//!
//! A thread of its own accepts plain HTTP/1.1 `GET /metrics` and answers with the Prometheus
//! text format (version 0.0.4), encoded by `prometheus-client` from a [`Collector`] that reads the
//! endpoints' [`Counters`] at scrape time. The IO threads never see a scrape: they only update
//! those atomics (relaxed, no lock, no allocation), so a slow or stuck scraper cannot delay them.
//!
//! Metrics (labels `endpoint`, `kind`, `thread` on every `hotwire_endpoint_*` series):
//!
//! | name | type | what |
//! |---|---|---|
//! | `hotwire_build_info{version,profile}` | gauge | always 1 |
//! | `hotwire_uptime_seconds` | gauge | since `hotwire run` started |
//! | `hotwire_endpoint_up` | gauge | 1 while the connection is established |
//! | `hotwire_endpoint_connects_total` | counter | connections established |
//! | `hotwire_endpoint_reconnects_total` | counter | established connections lost |
//! | `hotwire_endpoint_messages_total` | counter | data messages (WebSocket), responses (HTTP), execution reports (FIX) |
//! | `hotwire_endpoint_received_bytes_total` | counter | their payload bytes |
//! | `hotwire_endpoint_last_error_info{error}` | gauge | 1, with the last disconnect or connect failure (at most 160 bytes) |
//! | `hotwire_endpoint_latency_seconds` | histogram | WebSocket: receive time minus the embedded send time |
//! | `hotwire_endpoint_round_trip_seconds` | histogram | pings, HTTP requests, FIX order → execution report |

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::stats::{AtomicBuckets, Counters, BUCKET_BOUNDS_NS};
use crate::config::{EndpointConfig, EndpointKind};

/// How long a scraper may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest request head accepted.
const MAX_REQUEST: usize = 8192;
/// How often the idle server looks at its stop flag.
const ACCEPT_PERIOD: Duration = Duration::from_millis(50);

/// One endpoint as the metrics see it.
#[derive(Debug, Clone)]
pub struct Source {
    name: String,
    kind: &'static str,
    thread: String,
    counters: Arc<Counters>,
}

impl Source {
    /// The endpoint `config`, whose IO thread updates `counters`.
    pub fn new(config: &EndpointConfig, counters: Arc<Counters>) -> Source {
        let kind = match config.kind {
            EndpointKind::WebSocket => "websocket",
            EndpointKind::Http(_) => "http",
            EndpointKind::Fix(_) => "fix",
        };
        Source {
            name: config.name.clone(),
            kind,
            thread: config.thread.clone(),
            counters,
        }
    }

    fn labels(&self) -> [(&'static str, &str); 3] {
        [
            ("endpoint", self.name.as_str()),
            ("kind", self.kind),
            ("thread", self.thread.as_str()),
        ]
    }
}

/// Reads every endpoint's counters at scrape time.
#[derive(Debug)]
struct AppCollector {
    sources: Vec<Source>,
    start: Instant,
}

/// A histogram read from [`AtomicBuckets`], in seconds.
#[derive(Debug)]
struct BucketsMetric<'a>(&'a AtomicBuckets);

impl EncodeMetric for BucketsMetric<'_> {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let snap = self.0.snapshot();
        let mut buckets = [(0.0, 0); BUCKET_BOUNDS_NS.len() + 1];
        for (i, b) in buckets.iter_mut().enumerate() {
            let bound = BUCKET_BOUNDS_NS
                .get(i)
                .map_or(f64::INFINITY, |&ns| ns as f64 / 1e9);
            *b = (bound, snap.counts[i]);
        }
        encoder.encode_histogram::<NoLabelSet>(
            snap.sum_ns as f64 / 1e9,
            snap.count(),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl AppCollector {
    /// One metric family with a series per endpoint (`value` `None`: that endpoint has none).
    fn family<'s, M: EncodeMetric>(
        &'s self,
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        metric_type: MetricType,
        value: impl Fn(&'s Source) -> Option<M>,
    ) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
        for s in &self.sources {
            if let Some(m) = value(s) {
                m.encode(family.encode_family(&s.labels())?)?;
            }
        }
        Ok(())
    }
}

#[cfg(feature = "gateway")]
impl AppCollector {
    /// The gateway's counters (zero for endpoints without `publish = true`).
    fn gateway_families(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        use crate::gateway::GatewayCounters;
        type Field = fn(&GatewayCounters) -> &std::sync::atomic::AtomicU64;
        let families: [(&str, &str, Field); 6] = [
            (
                "gateway_published",
                "Messages published on hotwire/<endpoint>/in.",
                |g| &g.published,
            ),
            (
                "gateway_dropped",
                "Messages the gateway could not publish (each a gap in seq).",
                |g| &g.dropped,
            ),
            (
                "gateway_subscriber_drops",
                "Samples a subscriber lost because its queue was full (per subscriber and \
                 sample: the oldest pushed out, or the newest not delivered).",
                |g| &g.subscriber_drops,
            ),
            (
                "gateway_sent",
                "Strategy messages from hotwire/<endpoint>/send written to the session.",
                |g| &g.sent,
            ),
            (
                "gateway_refused",
                "Strategy messages refused (malformed, of a wrong kind, too large, or published \
                 while the session was down).",
                |g| &g.refused,
            ),
            (
                "gateway_oversized",
                "Messages above publish_max_message, either direction (not published or refused).",
                |g| &g.oversized,
            ),
        ];
        for (name, help, field) in families {
            self.family(encoder, name, help, MetricType::Counter, |s| {
                Some(ConstCounter::new(
                    field(&s.counters.gateway).load(Ordering::Relaxed),
                ))
            })?;
        }
        Ok(())
    }
}

impl Collector for AppCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let uptime = ConstGauge::new(self.start.elapsed().as_secs_f64());
        uptime.encode(encoder.encode_descriptor(
            "uptime_seconds",
            "Seconds since hotwire run started.",
            None,
            MetricType::Gauge,
        )?)?;
        let c = |f: fn(&Counters) -> u64| move |s: &Source| Some(ConstCounter::new(f(&s.counters)));
        self.family(
            &mut encoder,
            "endpoint_up",
            "1 while the endpoint's connection is established, else 0.",
            MetricType::Gauge,
            |s| Some(ConstGauge::new(i64::from(s.counters.is_up()))),
        )?;
        self.family(
            &mut encoder,
            "endpoint_connects",
            "Connections established.",
            MetricType::Counter,
            c(|c| c.connects.load(Ordering::Relaxed)),
        )?;
        self.family(
            &mut encoder,
            "endpoint_reconnects",
            "Established connections that were lost.",
            MetricType::Counter,
            c(|c| c.reconnects.load(Ordering::Relaxed)),
        )?;
        self.family(
            &mut encoder,
            "endpoint_messages",
            "Messages received: WebSocket data messages, HTTP responses, FIX execution reports.",
            MetricType::Counter,
            c(|c| c.messages.load(Ordering::Relaxed)),
        )?;
        self.family(
            &mut encoder,
            "endpoint_received_bytes",
            "Payload bytes of the messages received.",
            MetricType::Counter,
            c(|c| c.bytes.load(Ordering::Relaxed)),
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "endpoint_last_error",
                "Why the endpoint's last connection ended or its last attempt failed.",
                None,
                MetricType::Info,
            )?;
            for s in &self.sources {
                if let Some(text) = s.counters.last_error.get() {
                    family
                        .encode_family(&s.labels())?
                        .encode_info(&[("error", text.as_str())])?;
                }
            }
        }
        #[cfg(feature = "gateway")]
        self.gateway_families(&mut encoder)?;
        self.family(
            &mut encoder,
            "endpoint_latency_seconds",
            "WebSocket feeds: receive time minus the send time embedded in the message.",
            MetricType::Histogram,
            |s| (s.kind == "websocket").then(|| BucketsMetric(&s.counters.latency)),
        )?;
        self.family(
            &mut encoder,
            "endpoint_round_trip_seconds",
            "Round trips: WebSocket pings, HTTP requests, FIX orders to their first execution report.",
            MetricType::Histogram,
            |s| Some(BucketsMetric(&s.counters.round_trip)),
        )
    }
}

/// The registry of a run: build info, uptime and every endpoint, under the prefix `hotwire`.
pub fn registry(sources: Vec<Source>, start: Instant) -> Registry {
    let mut registry = Registry::with_prefix("hotwire");
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    registry.register(
        "build",
        // The registry ends the help with a full stop.
        "The hotwire build that runs (always 1)",
        Info::new([("version", env!("CARGO_PKG_VERSION")), ("profile", profile)]),
    );
    registry.register_collector(Box::new(AppCollector { sources, start }));
    registry
}

/// The text exposition of `registry` (Prometheus text format 0.0.4).
pub fn exposition(registry: &Registry) -> String {
    let mut text = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail; an encoder error would mean a malformed metric name.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, registry) {
        log::error!("metrics: cannot encode: {e}");
    }
    text
}

/// The running metrics endpoint; dropping it stops its thread.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Binds the metrics address (before any IO thread starts, so a taken port fails the run early).
pub fn bind(listen: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(listen)
        .map_err(|e| io::Error::new(e.kind(), format!("metrics: cannot listen on {listen}: {e}")))
}

impl MetricsServer {
    /// Serves `registry` on `listener` from a new thread.
    pub fn spawn(listener: TcpListener, registry: Registry) -> io::Result<MetricsServer> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hw-metrics".into())
            .spawn(move || serve(&listener, &registry, &flag))?;
        log::info!("metrics: serving http://{addr}/metrics");
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: &TcpListener, registry: &Registry, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(e) = answer(stream, registry) {
                    log::debug!("metrics: {peer}: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_PERIOD),
            Err(e) => {
                log::warn!("metrics: accept: {e}");
                std::thread::sleep(ACCEPT_PERIOD);
            }
        }
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics { head: bool },
    NotFound,
    MethodNotAllowed,
}

/// Parses a request head; `Ok(None)`: incomplete.
fn route(head: &[u8]) -> Result<Option<Route>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    if req.parse(head)?.is_partial() {
        return Ok(None);
    }
    let path = req.path.unwrap_or("/");
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    Ok(Some(match (req.method.unwrap_or(""), path) {
        ("GET", "/metrics") => Route::Metrics { head: false },
        ("HEAD", "/metrics") => Route::Metrics { head: true },
        ("GET" | "HEAD", _) => Route::NotFound,
        _ => Route::MethodNotAllowed,
    }))
}

/// Answers one request and closes the connection.
fn answer(mut stream: TcpStream, registry: &Registry) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    let route = loop {
        if len == buf.len() {
            return respond(&mut stream, "431 Request Header Fields Too Large", "", b"");
        }
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        match route(&buf[..len]) {
            Ok(Some(r)) => break r,
            Ok(None) => {}
            Err(_) => return respond(&mut stream, "400 Bad Request", "", b"bad request\n"),
        }
    };
    match route {
        Route::Metrics { head } => {
            let body = exposition(registry);
            let body = if head { "" } else { body.as_str() };
            respond(
                &mut stream,
                "200 OK",
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                body.as_bytes(),
            )
        }
        Route::NotFound => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"hotwire serves GET /metrics\n",
        ),
        Route::MethodNotAllowed => respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"only GET /metrics\n",
        ),
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if status.starts_with("405") {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |s: &str| route(s.as_bytes()).unwrap();
        assert_eq!(r("GET /metrics HTTP/1.1\r\n"), None);
        assert_eq!(
            r("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(Route::Metrics { head: false })
        );
        assert_eq!(
            r("GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Some(Route::Metrics { head: false })
        );
        assert_eq!(
            r("HEAD /metrics HTTP/1.1\r\n\r\n"),
            Some(Route::Metrics { head: true })
        );
        assert_eq!(r("GET / HTTP/1.1\r\n\r\n"), Some(Route::NotFound));
        assert_eq!(
            r("POST /metrics HTTP/1.1\r\n\r\n"),
            Some(Route::MethodNotAllowed)
        );
        assert!(route(b"\x00\x01 nonsense\r\n\r\n").is_err());
    }

    #[test]
    fn exposition_names_every_family_and_series() {
        let config = crate::config::Config::parse(
            "[[thread]]\nname = \"md\"\n[[endpoint]]\nname = \"feed\"\nurl = \"ws://127.0.0.1:1/\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let counters = Arc::new(Counters::default());
        counters.messages.store(42, Ordering::Relaxed);
        counters.latency.record_ns(3_000);
        counters.latency.record_ns(20_000_000_000);
        counters
            .last_error
            .set(format_args!("connect: \"refused\"\nagain"));
        let source = Source::new(&config.endpoints[0], counters);
        let text = exposition(&registry(vec![source], Instant::now()));
        let labels = r#"endpoint="feed",kind="websocket",thread="md""#;
        for line in [
            "# HELP hotwire_build_info The hotwire build that runs (always 1).".to_owned(),
            format!(
                r#"hotwire_build_info{{version="{}",profile="{}"}} 1"#,
                env!("CARGO_PKG_VERSION"),
                if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                }
            ),
            "# TYPE hotwire_uptime_seconds gauge".to_owned(),
            format!("hotwire_endpoint_up{{{labels}}} 0"),
            format!("hotwire_endpoint_messages_total{{{labels}}} 42"),
            format!(
                r#"hotwire_endpoint_last_error_info{{{labels},error="connect: \"refused\"\nagain"}} 1"#
            ),
            format!(r#"hotwire_endpoint_latency_seconds_bucket{{{labels},le="1e-06"}} 0"#),
            format!(r#"hotwire_endpoint_latency_seconds_bucket{{{labels},le="5e-06"}} 1"#),
            format!(r#"hotwire_endpoint_latency_seconds_bucket{{{labels},le="10"}} 1"#),
            format!(r#"hotwire_endpoint_latency_seconds_bucket{{{labels},le="+Inf"}} 2"#),
            format!("hotwire_endpoint_latency_seconds_count{{{labels}}} 2"),
            format!("hotwire_endpoint_round_trip_seconds_count{{{labels}}} 0"),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
    }
}
