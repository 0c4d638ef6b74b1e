//! The connection pool, [`HttpPool`] (its documentation describes it).

use std::net::ToSocketAddrs;
use std::time::Duration;

use super::client::{HttpClient, HttpConfig};
use super::error::HttpError;
use super::request::Request;
use super::response::Response;
use super::url::HttpUrl;
use crate::service::{wrap, Connector, Transport};
use crate::stream::{wait_connected, TcpOptions, TcpStream};

/// A client connection as the pool makes them: TCP, with TLS for `https` (when a TLS backend is
/// compiled in; without one, `https` URLs are refused).
pub type HttpConn = HttpClient<Transport<TcpStream>>;

/// The pool's connector for `https` when it was given none: the default configuration.
#[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
fn default_tls() -> Result<Connector, HttpError> {
    Ok(crate::stream::tls::TlsConfig::default().build()?)
}

/// No TLS backend compiled in: `https` cannot be served.
#[cfg(not(any(feature = "tls-rustls", feature = "tls-openssl")))]
fn default_tls() -> Result<Connector, HttpError> {
    Err(HttpError::Url(super::error::UrlError::Scheme {
        expected: "http:// (https:// needs the tls-rustls or tls-openssl feature)",
    }))
}

/// Opens a connection to `url`'s origin and waits (at most `timeout`) for the TCP and TLS
/// handshakes. `tls` is required for `https`. Tries each resolved address in turn.
pub fn connect(
    url: &HttpUrl,
    tls: Option<&Connector>,
    tcp: &TcpOptions,
    config: &HttpConfig,
    timeout: Duration,
) -> Result<HttpConn, HttpError> {
    let tls = match (url.is_secure(), tls) {
        (true, Some(c)) => Some(c),
        (true, None) => {
            return Err(HttpError::Url(super::error::UrlError::Scheme {
                expected: "http:// (https:// needs a TLS connector)",
            }))
        }
        (false, _) => None,
    };
    let mut last = None;
    for addr in (url.host(), url.port()).to_socket_addrs()? {
        let attempt = TcpStream::connect(addr, tcp)
            .and_then(|s| wrap(s, tls, url.host()))
            .and_then(|mut s| wait_connected(&mut s, timeout).map(|()| s));
        match attempt {
            Ok(stream) => return Ok(HttpClient::new(stream, url.host_header(), config.clone())),
            Err(e) => last = Some(e),
        }
    }
    Err(HttpError::Io(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "host name resolved to no address",
        )
    })))
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    host: String,
    port: u16,
    tls: bool,
}

impl Key {
    fn matches(&self, url: &HttpUrl) -> bool {
        self.port == url.port() && self.tls == url.is_secure() && self.host == url.host()
    }
}

/// Counters of a pool's work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections opened.
    pub connects: u64,
    /// Requests sent on a connection that had served one before.
    pub reuses: u64,
    /// Requests sent again after their connection died before any response byte.
    pub retries: u64,
    /// Idle connections found closed (or misbehaving) when taken from the pool.
    pub stale: u64,
}

/// Keep-alive connections per origin.
///
/// Idle keep-alive connections per (host, port, TLS), with retries of idempotent requests whose
/// connection died before any response byte (RFC 9112 §9.3.1, RFC 9110 §9.2.2).
///
/// For REST calls made from ordinary threads (order entry, snapshots, tools): connecting resolves
/// the host and waits for the TCP and TLS handshakes, so it blocks. TLS verifies certificates
/// unless the connector given to [`HttpPool::with_tls`] was built to do otherwise.
///
/// ```no_run
/// use hotwire::http::{HttpPool, HttpUrl, Request};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut pool = HttpPool::new();
/// let url = HttpUrl::parse("https://api.example.com/v1/time")?;
/// for _ in 0..3 {
///     let answer = pool.get(&url)?; // one connection, reused
///     println!("{}", answer.response().status());
/// }
/// // Another target on the same origin: the URL names the origin, the request its target.
/// let order = pool.request(&url, &Request::post("/v1/order", b"{\"qty\":1}"))?;
/// println!("{}", order.response().status());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct HttpPool {
    tls: Option<Connector>,
    tcp: TcpOptions,
    config: HttpConfig,
    timeout: Duration,
    retries: u32,
    max_idle: usize,
    idle: Vec<(Key, HttpConn)>,
    stats: PoolStats,
}

impl Default for HttpPool {
    fn default() -> Self {
        HttpPool::new()
    }
}

impl HttpPool {
    /// A pool with default settings: verified TLS with the built-in roots (built on first use),
    /// 10 s request timeout, one retry, up to 8 idle connections per origin.
    pub fn new() -> HttpPool {
        HttpPool {
            tls: None,
            tcp: TcpOptions::default(),
            config: HttpConfig::default(),
            timeout: Duration::from_secs(10),
            retries: 1,
            max_idle: 8,
            idle: Vec::new(),
            stats: PoolStats::default(),
        }
    }

    /// Uses `connector` for `https` (a venue's CA, a client certificate, the other backend).
    #[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
    pub fn with_tls(mut self, connector: crate::stream::tls::TlsConnector) -> Self {
        self.tls = Some(connector);
        self
    }

    /// Socket options for new connections.
    pub fn with_tcp(mut self, options: TcpOptions) -> Self {
        self.tcp = options;
        self
    }

    /// Connection settings (limits, buffers) for new connections.
    pub fn with_config(mut self, config: HttpConfig) -> Self {
        self.config = config;
        self
    }

    /// The limit for connecting and for each request's response.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often an idempotent request is sent again after its connection died before any
    /// response byte (0: never).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Idle connections kept per origin.
    pub fn with_max_idle(mut self, max_idle: usize) -> Self {
        self.max_idle = max_idle;
        self
    }

    /// The counters.
    pub fn stats(&self) -> PoolStats {
        self.stats
    }

    /// Idle connections held (all origins).
    pub fn idle(&self) -> usize {
        self.idle.len()
    }

    /// `GET` of `url` (its path and query): [`HttpPool::request`] with the target said once.
    pub fn get<'p>(&'p mut self, url: &HttpUrl) -> Result<PooledResponse<'p>, HttpError> {
        self.request(url, &Request::get(url.target()))
    }

    /// Sends `req` to `url`'s origin (the target is `req.target`; the URL's path is not used) on an idle
    /// connection if there is one, else on a new one, and waits for the response. The connection
    /// returns to the pool when the answer is dropped, if it can serve another request.
    pub fn request<'p>(
        &'p mut self,
        url: &HttpUrl,
        req: &Request<'_>,
    ) -> Result<PooledResponse<'p>, HttpError> {
        let mut attempts = 0;
        loop {
            let (key, mut conn) = self.checkout(url)?;
            if conn.responses() > 0 {
                self.stats.reuses += 1;
            }
            let result = conn.request(req, self.timeout).map(|_| ());
            match result {
                Ok(()) => {
                    return Ok(PooledResponse {
                        pool: self,
                        entry: Some((key, conn)),
                    })
                }
                Err(e) => {
                    let retry = req.method.is_idempotent()
                        && e.before_response()
                        && !conn.response_started()
                        && attempts < self.retries;
                    if !retry {
                        return Err(e);
                    }
                    attempts += 1;
                    self.stats.retries += 1;
                }
            }
        }
    }

    /// An idle connection to `url`'s origin that is still open, or a new one.
    fn checkout(&mut self, url: &HttpUrl) -> Result<(Key, HttpConn), HttpError> {
        while let Some(i) = self.idle.iter().rposition(|(k, _)| k.matches(url)) {
            let (key, mut conn) = self.idle.swap_remove(i);
            // An idle connection must have nothing to read: a close or stray bytes retire it.
            match conn.poll_response() {
                Ok(None) => return Ok((key, conn)),
                _ => self.stats.stale += 1,
            }
        }
        let tls = if url.is_secure() && self.tls.is_none() {
            self.tls = Some(default_tls()?);
            self.tls.as_ref()
        } else {
            self.tls.as_ref()
        };
        let conn = connect(url, tls, &self.tcp, &self.config, self.timeout)?;
        self.stats.connects += 1;
        let key = Key {
            host: url.host().to_owned(),
            port: url.port(),
            tls: url.is_secure(),
        };
        Ok((key, conn))
    }

    fn checkin(&mut self, key: Key, conn: HttpConn) {
        if !conn.is_reusable() || conn.in_flight() > 0 {
            return;
        }
        let held = self.idle.iter().filter(|(k, _)| *k == key).count();
        if held < self.max_idle {
            self.idle.push((key, conn));
        }
    }
}

/// A completed exchange: the response, borrowed from its connection, which goes back to the pool
/// when this is dropped.
#[derive(Debug)]
pub struct PooledResponse<'p> {
    pool: &'p mut HttpPool,
    entry: Option<(Key, HttpConn)>,
}

impl PooledResponse<'_> {
    /// The response.
    pub fn response(&self) -> Response<'_> {
        // `entry` is only taken by `drop`, and the connection's completed response stays until
        // its next read, which only the pool does, after this handle is gone: `request` returns a
        // `PooledResponse` only after `HttpClient::request` completed a response on it.
        match self.entry.as_ref().and_then(|(_, c)| c.response()) {
            Some(r) => r,
            None => unreachable!("a PooledResponse always holds its completed response"),
        }
    }

    /// The connection that carried the exchange.
    pub fn connection(&self) -> &HttpConn {
        match &self.entry {
            Some((_, c)) => c,
            None => unreachable!("taken only by drop"),
        }
    }
}

impl Drop for PooledResponse<'_> {
    fn drop(&mut self) {
        if let Some((key, conn)) = self.entry.take() {
            self.pool.checkin(key, conn);
        }
    }
}
