//! HTTP as an endpoint kind of the [`IoService`](crate::service::IoService): a schedule of
//! requests issued on one keep-alive connection, with round-trip latency measured per response.
//!
//! ```no_run
//! use std::time::Duration;
//! use hotwire::http::{HttpEndpoint, RequestSpec};
//! use hotwire::select::{MioSelector, Selector};
//! use hotwire::service::IntoIoService;
//! # fn main() -> std::io::Result<()> {
//! // Latencies go into any HttpHook; an HDR histogram is one.
//! let histogram = hdrhistogram::Histogram::<u64>::new(3).unwrap();
//! let endpoint = HttpEndpoint::new(
//!     "http://127.0.0.1:8080",
//!     vec![RequestSpec::get("/api/time"), RequestSpec::post("/api/order", r#"{"qty":1}"#)],
//!     histogram,
//! )?
//! .with_interval(Some(Duration::from_millis(100))); // None: back to back
//! let mut service = MioSelector::new()?.into_io_service();
//! let id = service.register(endpoint);
//! for _ in 0..1000 {
//!     service.poll(&mut ())?;
//! }
//! println!("p50 {} ns", service.endpoint(id).hook().value_at_quantile(0.5));
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::client::{HttpClient, HttpConfig};
use super::error::HttpError;
use super::request::{Body, Method, Request};
use super::response::Response;
use super::url::HttpUrl;
use crate::service::{ConnectAddr, Dial, Endpoint, Event, Flow, KernelDial, Policy};
use crate::stream::tls::{TlsConfig, TlsConnector};
use crate::stream::{MaybeTls, TcpOptions};

/// Extra header fields a [`RequestSpec`] may carry (they are lent to the writer from a stack
/// array, so issuing a request does not allocate).
pub const MAX_SPEC_HEADERS: usize = 16;

/// One request of an endpoint's schedule, owned (configured once, sent many times).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    /// The method.
    pub method: Method,
    /// Path and query, starting with `/`.
    pub target: String,
    /// Extra header fields (at most [`MAX_SPEC_HEADERS`]).
    pub headers: Vec<(String, String)>,
    /// The body (sent with `Content-Length`; empty for none).
    pub body: Vec<u8>,
}

impl RequestSpec {
    /// `GET target`.
    pub fn get(target: impl Into<String>) -> RequestSpec {
        RequestSpec {
            method: Method::Get,
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `POST target` with `body`.
    pub fn post(target: impl Into<String>, body: impl Into<Vec<u8>>) -> RequestSpec {
        RequestSpec {
            method: Method::Post,
            target: target.into(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The same request with one more header field.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> RequestSpec {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What an [`HttpEndpoint`] reports to the application.
pub trait HttpHook<C = ()> {
    /// A response arrived `rtt` after its request was handed to the connection. It borrows the
    /// connection's buffer. An `Err` or [`Flow::Close`] closes the connection.
    fn on_response(
        &mut self,
        response: &Response<'_>,
        rtt: Duration,
        ctx: &mut C,
    ) -> io::Result<Flow> {
        let _ = (response, rtt, ctx);
        Ok(Flow::Continue)
    }

    /// Connection lifecycle notifications.
    fn on_event(&mut self, event: &Event<'_>, ctx: &mut C) {
        let _ = (event, ctx);
    }
}

impl<C> HttpHook<C> for () {}

/// Records each round trip, in nanoseconds (saturating at the histogram's highest value).
#[cfg(feature = "hdrhistogram")]
impl<C> HttpHook<C> for hdrhistogram::Histogram<u64> {
    fn on_response(&mut self, _: &Response<'_>, rtt: Duration, _: &mut C) -> io::Result<Flow> {
        let ns = rtt.as_nanos().min(u128::from(u64::MAX)) as u64;
        // `record` grows an auto-resizing histogram (`Histogram::new`); one with fixed bounds
        // clamps out-of-range values instead of losing them.
        if self.record(ns).is_err() {
            self.saturating_record(ns);
        }
        Ok(Flow::Continue)
    }
}

/// Responses handled per poll before the other endpoints get their turn ([`Flow::More`]), as
/// `service::ws::FRAMES_PER_POLL` does for WebSocket frames.
pub const RESPONSES_PER_POLL: usize = 256;

/// Counters of an [`HttpEndpoint`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Requests sent.
    pub sent: u64,
    /// Responses received.
    pub responses: u64,
    /// Responses by status class: index 1 = 1xx ... 5 = 5xx (0: anything else).
    pub by_class: [u64; 6],
    /// Connections closed because a response took longer than the timeout.
    pub timeouts: u64,
}

/// An [`Endpoint`] issuing a schedule of requests on one keep-alive connection: round-robin over
/// the [`RequestSpec`]s, one per interval (or back to back), up to a pipeline depth in flight.
///
/// Connections are opened by the endpoint's [`Dial`]: kernel TCP unless
/// [`HttpEndpoint::with_dialer`] says otherwise (an AF_XDP stack, say).
#[derive(Debug)]
pub struct HttpEndpoint<H, D = KernelDial> {
    url: HttpUrl,
    host: String,
    tls: Option<TlsConnector>,
    dial: D,
    config: HttpConfig,
    policy: Policy,
    requests: Vec<RequestSpec>,
    next: usize,
    interval: Option<Duration>,
    depth: usize,
    timeout: Duration,
    /// When the next request is due (with an interval).
    next_send: Option<Instant>,
    sent_at: VecDeque<Instant>,
    stats: HttpStats,
    hook: H,
}

impl<H> HttpEndpoint<H> {
    /// An endpoint for `url`'s origin issuing `requests` (their targets replace the URL's path)
    /// round-robin, back to back, one in flight, with a 10 s response timeout. `https` uses TLS
    /// with the default configuration (verification on); see [`HttpEndpoint::with_tls`].
    pub fn new(url: &str, requests: Vec<RequestSpec>, hook: H) -> io::Result<HttpEndpoint<H>> {
        let parsed = HttpUrl::parse(url)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {e}")))?;
        let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_owned());
        if requests.is_empty() {
            return Err(invalid("an HTTP endpoint needs at least one request"));
        }
        if requests.iter().any(|r| r.headers.len() > MAX_SPEC_HEADERS) {
            return Err(invalid("a request has more than 16 extra header fields"));
        }
        // Validate every request once, now, rather than failing on the connection later.
        let mut scratch = Vec::new();
        for spec in &requests {
            with_request(spec, |req| {
                super::request::write_request(&mut scratch, "h", req, None)
                    .map(|_| ())
                    .map_err(|e| invalid(&format!("{} {}: {e}", spec.method, spec.target)))
            })?;
        }
        let tls = if parsed.is_secure() {
            Some(TlsConfig::default().build()?)
        } else {
            None
        };
        let timeout = Duration::from_secs(10);
        Ok(HttpEndpoint {
            host: parsed.host_header(),
            url: parsed,
            tls,
            dial: KernelDial::default(),
            config: HttpConfig::default(),
            policy: Policy::default(),
            requests,
            next: 0,
            interval: None,
            depth: 1,
            timeout,
            next_send: None,
            sent_at: VecDeque::with_capacity(1),
            stats: HttpStats::default(),
            hook,
        })
    }

    /// Kernel socket options.
    pub fn with_tcp(mut self, options: TcpOptions) -> Self {
        self.dial.options = options;
        self
    }
}

impl<H, D> HttpEndpoint<H, D> {
    /// Opens connections through `dial` (another network path, such as an AF_XDP stack).
    pub fn with_dialer<D2: Dial>(self, dial: D2) -> HttpEndpoint<H, D2> {
        HttpEndpoint {
            url: self.url,
            host: self.host,
            tls: self.tls,
            dial,
            config: self.config,
            policy: self.policy,
            requests: self.requests,
            next: self.next,
            interval: self.interval,
            depth: self.depth,
            timeout: self.timeout,
            next_send: self.next_send,
            sent_at: self.sent_at,
            stats: self.stats,
            hook: self.hook,
        }
    }

    /// Uses `connector` for `https` (a venue's CA, a client certificate, the other backend).
    pub fn with_tls(mut self, connector: TlsConnector) -> Self {
        self.tls = Some(connector);
        self
    }

    /// For `https` URLs whose dialer already returns TLS sessions (kernel TLS set up by the
    /// dialer): no TLS layer is added on top of the dialed stream.
    pub fn with_tls_in_dialer(mut self) -> Self {
        self.tls = None;
        self
    }

    /// Connection settings (limits, buffers). The pipeline depth comes from
    /// [`HttpEndpoint::with_pipeline`].
    pub fn with_config(mut self, config: HttpConfig) -> Self {
        self.config = config;
        self
    }

    /// Lifecycle policy (connect timeout, backoff, lifetime). Its `timer` is replaced by the
    /// endpoint's own tick (the interval, or a timeout check).
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Send one request per `interval`, or back to back (a new one as each response arrives)
    /// with `None`.
    pub fn with_interval(mut self, interval: Option<Duration>) -> Self {
        self.interval = interval;
        self
    }

    /// Requests in flight at once (pipelining); at least 1.
    pub fn with_pipeline(mut self, depth: usize) -> Self {
        self.depth = depth.max(1);
        self.sent_at = VecDeque::with_capacity(self.depth);
        self
    }

    /// Close the connection (and reconnect per the policy) when a response takes longer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The hook.
    pub fn hook(&self) -> &H {
        &self.hook
    }

    /// The hook, mutably.
    pub fn hook_mut(&mut self) -> &mut H {
        &mut self.hook
    }

    /// The counters.
    pub fn stats(&self) -> &HttpStats {
        &self.stats
    }

    /// The URL.
    pub fn url(&self) -> &HttpUrl {
        &self.url
    }

    /// Sends requests while the pipeline has room (`fill`) or one request (`!fill`).
    fn send_some<S: crate::stream::Stream>(
        &mut self,
        conn: &mut HttpClient<S>,
        fill: bool,
    ) -> io::Result<()> {
        while self.sent_at.len() < self.depth && conn.can_send() {
            let spec = &self.requests[self.next];
            with_request(spec, |req| conn.send(req)).map_err(io::Error::from)?;
            self.next = (self.next + 1) % self.requests.len();
            self.sent_at.push_back(Instant::now());
            self.stats.sent += 1;
            if !fill {
                break;
            }
        }
        Ok(())
    }
}

impl<H, D> HttpEndpoint<H, D> {
    /// The timer period: a quarter of the timeout, so a late response is noticed within a quarter
    /// of it, and a whole number of ticks per interval, so requests keep their cadence.
    fn tick(&self) -> Duration {
        let check = (self.timeout / 4).max(Duration::from_millis(1));
        match self.interval {
            None => check,
            Some(i) => {
                let per_interval = i.as_nanos().div_ceil(check.as_nanos()).clamp(1, 1 << 20) as u32;
                (i / per_interval).max(Duration::from_millis(1))
            }
        }
    }
}

/// Lends `spec` as a [`Request`] to `f`, with its header fields in a stack array.
fn with_request<T>(spec: &RequestSpec, f: impl FnOnce(&Request<'_>) -> T) -> T {
    let mut fields: [(&str, &str); MAX_SPEC_HEADERS] = [("", ""); MAX_SPEC_HEADERS];
    let n = spec.headers.len().min(MAX_SPEC_HEADERS);
    for (slot, (k, v)) in fields.iter_mut().zip(&spec.headers) {
        *slot = (k.as_str(), v.as_str());
    }
    let body = if spec.body.is_empty() {
        Body::Empty
    } else {
        Body::Bytes(&spec.body)
    };
    f(&Request {
        method: spec.method,
        target: &spec.target,
        headers: &fields[..n],
        body,
    })
}

impl<H: HttpHook<C>, C, D: Dial> Endpoint<C> for HttpEndpoint<H, D> {
    type Target = HttpClient<MaybeTls<D::Stream>>;

    fn address(&self) -> ConnectAddr {
        ConnectAddr::new(self.url.host(), self.url.port())
    }

    fn create_target(&mut self, addr: SocketAddr, _ctx: &mut C) -> io::Result<Self::Target> {
        let tcp = self.dial.dial(addr)?;
        let tls = if self.url.is_secure() {
            self.tls.as_ref()
        } else {
            None
        };
        let stream = MaybeTls::new(tcp, tls, self.url.host())?;
        self.sent_at.clear();
        self.next_send = None;
        let config = HttpConfig {
            max_in_flight: self.depth,
            ..self.config.clone()
        };
        Ok(HttpClient::new(stream, self.host.clone(), config))
    }

    fn poll(&mut self, conn: &mut Self::Target, ctx: &mut C) -> io::Result<Flow> {
        let mut flow = Flow::Continue;
        for handled in 0.. {
            if handled == RESPONSES_PER_POLL {
                // A deep pipeline answered at once: let the other endpoints have their turn.
                flow = Flow::More;
                break;
            }
            let response = match conn.poll_response() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => return Err(e.into()),
            };
            let rtt = self
                .sent_at
                .pop_front()
                .map_or(Duration::ZERO, |t| t.elapsed());
            self.stats.responses += 1;
            let class = usize::from(response.status() / 100);
            self.stats.by_class[if class < 6 { class } else { 0 }] += 1;
            let closes = response.closes_connection();
            if self.hook.on_response(&response, rtt, ctx)? == Flow::Close {
                return Ok(Flow::Close);
            }
            if closes {
                // The server ends the connection after this response: reconnect.
                return Ok(Flow::Close);
            }
        }
        if self.interval.is_none() {
            self.send_some(conn, true)?;
        }
        Ok(flow)
    }

    fn on_event(&mut self, event: &Event<'_>, ctx: &mut C) {
        self.hook.on_event(event, ctx);
    }

    fn on_timer(
        &mut self,
        conn: &mut Self::Target,
        now: Instant,
        _ctx: &mut C,
    ) -> io::Result<Flow> {
        if let Some(&oldest) = self.sent_at.front() {
            if now.saturating_duration_since(oldest) >= self.timeout {
                self.stats.timeouts += 1;
                return Err(HttpError::Timeout.into());
            }
        }
        if let Some(interval) = self.interval {
            if self.next_send.is_none_or(|at| now >= at) {
                // Half a tick early, so a tick that comes a little late never skips a request.
                let slack = self.tick() / 2;
                self.next_send = Some(now + interval.saturating_sub(slack));
                self.send_some(conn, false)?;
            }
        }
        Ok(Flow::Continue)
    }

    fn policy(&self) -> Policy {
        Policy {
            timer: Some(self.tick()),
            ..self.policy.clone()
        }
    }
}
