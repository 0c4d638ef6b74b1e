//! HTTP as an endpoint kind of the service layer: [`HttpEndpoint`] (documented there).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::client::{HttpClient, HttpConfig};
use super::error::HttpError;
use super::request::{Body, Method, Request};
use super::response::Response;
use super::send::HttpSender;
use super::url::HttpUrl;
use crate::service::{default_connector, wrap, Connector, Transport};
use crate::service::{
    tick_for, ConnectAddr, Dial, Disconnect, Endpoint, Error, Event, Flow, KernelDial, Policy,
    Timeout,
};
use crate::stream::{Stream, TcpOptions, TcpStream};

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

/// The send side lent to an [`HttpHandler`]: queues the next request on the same connection
/// while the response is still borrowed (its round trip is measured like the schedule's).
pub struct HttpOut<'a, S = TcpStream> {
    sender: HttpSender<'a, Transport<S>>,
    sent_at: &'a mut VecDeque<Instant>,
    sent: &'a mut u64,
}

impl<S> std::fmt::Debug for HttpOut<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOut")
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

impl<S: Stream> HttpOut<'_, S> {
    /// Sends `req` (refused without side effects when the pipeline is full or the connection is
    /// closing: see [`HttpSender::send`]).
    pub fn send(&mut self, req: &Request<'_>) -> Result<(), HttpError> {
        self.sender.send(req)?;
        // The queue was sized for the pipeline depth, which the sender just enforced: no growth.
        self.sent_at.push_back(Instant::now());
        *self.sent += 1;
        Ok(())
    }

    /// `true` when another request may be sent now.
    pub fn can_send(&self) -> bool {
        self.sender.can_send()
    }

    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.sender.in_flight()
    }
}

/// The application side of an [`HttpEndpoint`] (`S`: the dialer's stream, kernel TCP by
/// default). An `Err` from a callback fails the connection; the policy decides about reconnecting.
pub trait HttpHandler<C = (), S: Stream = TcpStream> {
    /// A response arrived `rtt` after its request was handed to the connection. It borrows the
    /// connection's buffer; `out` queues the next request meanwhile. [`Flow::Close`] closes the
    /// connection on purpose.
    fn on_response(
        &mut self,
        response: &Response<'_>,
        rtt: Duration,
        out: &mut HttpOut<'_, S>,
        ctx: &mut C,
    ) -> Result<Flow, Error> {
        let _ = (response, rtt, out, ctx);
        Ok(Flow::Continue)
    }

    /// Called every [`HttpEndpoint::with_timer`] period while connected.
    fn on_timer(
        &mut self,
        out: &mut HttpOut<'_, S>,
        now: Instant,
        ctx: &mut C,
    ) -> Result<Flow, Error> {
        let _ = (out, now, ctx);
        Ok(Flow::Continue)
    }

    /// Connection lifecycle notifications.
    fn on_event(&mut self, event: &Event<'_>, ctx: &mut C) {
        let _ = (event, ctx);
    }
}

impl<C, S: Stream> HttpHandler<C, S> for () {}

/// Records each round trip, in nanoseconds (saturating at the histogram's highest value).
#[cfg(feature = "hdrhistogram")]
impl<C, S: Stream> HttpHandler<C, S> for hdrhistogram::Histogram<u64> {
    fn on_response(
        &mut self,
        _: &Response<'_>,
        rtt: Duration,
        _: &mut HttpOut<'_, S>,
        _: &mut C,
    ) -> Result<Flow, Error> {
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

/// An [`Endpoint`] for one HTTP origin on one keep-alive connection, driving an [`HttpHandler`]:
/// a schedule of requests ([`with_requests`](Self::with_requests): round-robin, one per interval
/// or back to back, up to a pipeline depth in flight), requests the handler queues itself from a
/// response or its timer, or both.
///
/// Connections are opened by the endpoint's [`Dial`]: kernel TCP unless
/// [`HttpEndpoint::with_dialer`] says otherwise (an AF_XDP stack, say).
///
/// Builders set one thing each and never reset another's setting:
/// - the pipeline depth is [`HttpConfig::max_in_flight`]; [`with_pipeline`](Self::with_pipeline)
///   sets just that field, [`with_config`](Self::with_config) the whole configuration;
/// - the handler's timer period is [`with_timer`](Self::with_timer)'s, else the `timer` of
///   [`with_policy`](Self::with_policy)'s policy; the endpoint's own tick (the schedule, the
///   response timeout) runs beside it, never instead of it.
///
/// # Example
///
/// HTTP as an endpoint kind of the [`IoService`](crate::service::IoService): a schedule of
/// requests issued on one keep-alive connection, with round-trip latency measured per response.
///
/// ```no_run
/// use std::time::Duration;
/// use hotwire::http::{HttpEndpoint, RequestSpec};
/// use hotwire::select::MioSelector;
/// use hotwire::service::IntoIoService;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Latencies go into any HttpHandler; an HDR histogram is one.
/// let histogram = hdrhistogram::Histogram::<u64>::new(3).unwrap();
/// let endpoint = HttpEndpoint::new("http://127.0.0.1:8080", histogram)?
///     .with_requests(vec![
///         RequestSpec::get("/api/time"),
///         RequestSpec::post("/api/order", r#"{"qty":1}"#),
///     ])?
///     .with_interval(Some(Duration::from_millis(100))); // None: back to back
/// let mut service = MioSelector::new()?.into_io_service();
/// let id = service.register(endpoint);
/// for _ in 0..1000 {
///     service.poll(&mut ())?;
/// }
/// println!("p50 {} ns", service.endpoint(id).handler().value_at_quantile(0.5));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct HttpEndpoint<H, D = KernelDial> {
    url: HttpUrl,
    host: String,
    tls: Option<Connector>,
    dial: D,
    config: HttpConfig,
    policy: Policy,
    timer: Option<Duration>,
    requests: Vec<RequestSpec>,
    next: usize,
    interval: Option<Duration>,
    timeout: Duration,
    /// When the next request is due (with an interval).
    next_send: Option<Instant>,
    /// When the handler's timer is due next.
    next_timer: Option<Instant>,
    sent_at: VecDeque<Instant>,
    stats: HttpStats,
    handler: H,
}

impl<H> HttpEndpoint<H> {
    /// An endpoint for `url`'s origin with no schedule (the handler sends, or
    /// [`with_requests`](Self::with_requests) adds one), one request in flight, a 10 s response
    /// timeout. `https` uses TLS with the default configuration (verification on); see
    /// [`HttpEndpoint::with_tls`].
    pub fn new(url: &str, handler: H) -> Result<HttpEndpoint<H>, Error> {
        let parsed = HttpUrl::parse(url).map_err(|e| {
            Error::Http(HttpError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{url}: {e}"),
            )))
        })?;
        let tls = if parsed.is_secure() {
            Some(default_connector("https")?)
        } else {
            None
        };
        Ok(HttpEndpoint {
            host: parsed.host_header(),
            url: parsed,
            tls,
            dial: KernelDial::default(),
            config: HttpConfig {
                max_in_flight: 1,
                ..HttpConfig::default()
            },
            policy: Policy::default(),
            timer: None,
            requests: Vec::new(),
            next: 0,
            interval: None,
            timeout: Duration::from_secs(10),
            next_send: None,
            next_timer: None,
            sent_at: VecDeque::with_capacity(1),
            stats: HttpStats::default(),
            handler,
        })
    }

    /// Kernel socket options (for the default dialer).
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
            timer: self.timer,
            requests: self.requests,
            next: self.next,
            interval: self.interval,
            timeout: self.timeout,
            next_send: self.next_send,
            next_timer: self.next_timer,
            sent_at: self.sent_at,
            stats: self.stats,
            handler: self.handler,
        }
    }

    /// The request schedule: `requests` round-robin (their targets replace the URL's path), back
    /// to back unless [`with_interval`](Self::with_interval) paces them. Each is checked now
    /// rather than failing on the connection later.
    pub fn with_requests(mut self, requests: Vec<RequestSpec>) -> Result<Self, Error> {
        let invalid = |m: String| {
            Error::Http(HttpError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                m,
            )))
        };
        if requests.iter().any(|r| r.headers.len() > MAX_SPEC_HEADERS) {
            return Err(invalid(format!(
                "a request has more than {MAX_SPEC_HEADERS} extra header fields"
            )));
        }
        let mut scratch = Vec::new();
        for spec in &requests {
            with_request(spec, |req| {
                super::request::write_request(&mut scratch, "h", req, None)
                    .map(|_| ())
                    .map_err(|e| invalid(format!("{} {}: {e}", spec.method, spec.target)))
            })?;
        }
        self.requests = requests;
        self.next = 0;
        Ok(self)
    }

    /// Uses `connector` for `https` (a venue's CA, a client certificate, the other backend); an
    /// `http` URL stays plain.
    #[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
    pub fn with_tls(mut self, connector: crate::stream::tls::TlsConnector) -> Self {
        if self.url.is_secure() {
            self.tls = Some(connector);
        }
        self
    }

    /// For `https` URLs whose dialer already returns TLS sessions (kernel TLS set up by the
    /// dialer): no TLS layer is added on top of the dialed stream.
    pub fn with_tls_in_dialer(mut self) -> Self {
        self.tls = None;
        self
    }

    /// Connection settings (limits, buffers, pipeline depth in `max_in_flight`).
    pub fn with_config(mut self, config: HttpConfig) -> Self {
        self.config = config;
        self
    }

    /// Lifecycle policy (connect timeout, backoff, lifetime, reconnects). Its `timer`, if any, is
    /// the handler's timer period unless [`with_timer`](Self::with_timer) sets one.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Calls [`HttpHandler::on_timer`] every `period` while connected.
    pub fn with_timer(mut self, period: Duration) -> Self {
        self.timer = Some(period);
        self
    }

    /// The handler's timer period in force (see the precedence on [`HttpEndpoint`]).
    pub fn timer(&self) -> Option<Duration> {
        self.timer.or(self.policy.timer)
    }

    /// Send one scheduled request per `interval`, or back to back (a new one as each response
    /// arrives) with `None`.
    pub fn with_interval(mut self, interval: Option<Duration>) -> Self {
        self.interval = interval;
        self
    }

    /// Requests in flight at once (pipelining), at least 1: sets [`HttpConfig::max_in_flight`]
    /// and nothing else.
    pub fn with_pipeline(mut self, depth: usize) -> Self {
        self.config.max_in_flight = depth.max(1);
        self
    }

    /// Close the connection (and reconnect per the policy) when a response takes longer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// The counters.
    pub fn stats(&self) -> &HttpStats {
        &self.stats
    }

    /// The URL.
    pub fn url(&self) -> &HttpUrl {
        &self.url
    }

    fn depth(&self) -> usize {
        self.config.max_in_flight.max(1)
    }

    /// Sends scheduled requests while the pipeline has room (`fill`) or one request (`!fill`).
    fn send_some<S: Stream>(&mut self, conn: &mut HttpClient<S>, fill: bool) -> Result<(), Error> {
        if self.requests.is_empty() {
            return Ok(());
        }
        while self.sent_at.len() < self.depth() && conn.can_send() {
            let spec = &self.requests[self.next];
            with_request(spec, |req| conn.send(req))?;
            self.next = (self.next + 1) % self.requests.len();
            self.sent_at.push_back(Instant::now());
            self.stats.sent += 1;
            if !fill {
                break;
            }
        }
        Ok(())
    }

    /// The timer period: a quarter of the timeout, so a late response is noticed within a quarter
    /// of it, divided further so the schedule's interval and the handler's timer are whole numbers
    /// of ticks and keep their cadence.
    fn tick(&self) -> Duration {
        let check = (self.timeout / 4).max(Duration::from_millis(1));
        [self.interval, self.timer()]
            .into_iter()
            .flatten()
            .map(|period| tick_for(period, check))
            .fold(check, Duration::min)
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

impl<H: HttpHandler<C, D::Stream>, C, D: Dial> Endpoint<C> for HttpEndpoint<H, D> {
    type Target = HttpClient<Transport<D::Stream>>;

    fn address(&self) -> ConnectAddr {
        ConnectAddr::new(self.url.host(), self.url.port())
    }

    fn create_target(&mut self, addr: SocketAddr, _ctx: &mut C) -> Result<Self::Target, Error> {
        let tcp = self.dial.dial(addr).map_err(Error::Connect)?;
        let tls = if self.url.is_secure() {
            self.tls.as_ref()
        } else {
            None
        };
        let stream = wrap(tcp, tls, self.url.host())?;
        self.sent_at.clear();
        self.sent_at.reserve(self.depth());
        self.next_send = None;
        self.next_timer = None;
        Ok(HttpClient::new(
            stream,
            self.host.clone(),
            self.config.clone(),
        ))
    }

    fn poll(&mut self, conn: &mut Self::Target, ctx: &mut C) -> Result<Flow, Disconnect> {
        let mut flow = Flow::Continue;
        for handled in 0.. {
            if handled == RESPONSES_PER_POLL {
                // A deep pipeline answered at once: let the other endpoints have their turn.
                flow = Flow::More;
                break;
            }
            let (response, sender) = match conn.poll_response_split() {
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
            let mut out = HttpOut {
                sender,
                sent_at: &mut self.sent_at,
                sent: &mut self.stats.sent,
            };
            if self.handler.on_response(&response, rtt, &mut out, ctx)? == Flow::Close {
                return Ok(Flow::Close);
            }
            if closes {
                // The server ends the connection after this response, in an orderly way.
                return Err(Disconnect::Closed {
                    code: None,
                    reason: "Connection: close".to_owned(),
                });
            }
        }
        if self.interval.is_none() {
            self.send_some(conn, true)?;
        }
        Ok(flow)
    }

    fn on_event(&mut self, event: &Event<'_>, ctx: &mut C) {
        self.handler.on_event(event, ctx);
    }

    fn on_timer(
        &mut self,
        conn: &mut Self::Target,
        now: Instant,
        ctx: &mut C,
    ) -> Result<Flow, Disconnect> {
        if let Some(&oldest) = self.sent_at.front() {
            if now.saturating_duration_since(oldest) >= self.timeout {
                self.stats.timeouts += 1;
                return Err(Timeout::Request(self.timeout).into());
            }
        }
        // Half a tick early, so a tick that comes a little late never skips a period.
        let slack = self.tick() / 2;
        if let Some(interval) = self.interval {
            if self.next_send.is_none_or(|at| now >= at) {
                self.next_send = Some(now + interval.saturating_sub(slack));
                self.send_some(conn, false)?;
            }
        }
        if let Some(period) = self.timer() {
            if self.next_timer.is_none_or(|at| now >= at) {
                self.next_timer = Some(now + period.saturating_sub(slack));
                let mut out = HttpOut {
                    sender: conn.sender(),
                    sent_at: &mut self.sent_at,
                    sent: &mut self.stats.sent,
                };
                return Ok(self.handler.on_timer(&mut out, now, ctx)?);
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
