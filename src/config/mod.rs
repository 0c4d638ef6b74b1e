//! The appliance's TOML configuration: parsed strictly, then validated into typed settings.
//!
//! Parsing uses serde with `deny_unknown_fields`, so a misspelt key is an error, not a silent
//! default. Validation then checks what types cannot (URLs, cores, thread names, durations) and
//! produces [`Config`]. Every error is a [`ConfigError`] that names the file, line and column and
//! says what was expected:
//!
//! ```text
//! config/demo.toml:12:7: endpoint "feed": unsupported URL scheme "wx" (expected ws, wss)
//! ```
//!
//! The file format is documented by the commented examples in `config/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

mod raw;

use raw::RawConfig;

/// A configuration error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `<string>` for in-memory text).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// Which way packets go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetworkPath {
    /// Kernel TCP sockets.
    Kernel,
    /// The userspace TCP stack over AF_XDP (feature `xdp`), with kernel TCP as the fallback.
    Xdp(XdpSettings),
}

/// What the steering program diverts to the userspace stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steering {
    /// The stack has its own IPv4 address: all IPv4 to it.
    DedicatedIp,
    /// The stack shares the kernel's address: TCP to `ports` only.
    SharedIp,
}

/// `[network] path = "xdp"` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpSettings {
    /// The interface.
    pub interface: String,
    /// The RX queue bound when no `[[thread]]` names its own (`queue = N` there): the first thread
    /// with endpoints takes it. Per-thread settings are in [`ThreadConfig::xdp`].
    pub queue: u32,
    /// The stack's IPv4 address (the first AF_XDP thread's, unless it sets its own).
    pub local_ip: std::net::Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Next hop for off-link destinations.
    pub gateway: Option<std::net::Ipv4Addr>,
    /// Dedicated or shared IP.
    pub steering: Steering,
    /// Local port range (shared-IP mode: the reserved range the program steers).
    pub ports: (u16, u16),
    /// `true`: native (driver) attach; `false`: generic.
    pub native: bool,
    /// `true`: ask for zero-copy (falls back to copy where the driver refuses).
    pub zero_copy: bool,
    /// UMEM frames.
    pub umem_frames: u32,
    /// UMEM frame size.
    pub frame_size: u32,
    /// The stack's IP MTU; `None`: the interface's (never above it, nor above what a frame holds).
    pub mtu: Option<u32>,
    /// Let a packet span UMEM frames (AF_XDP multi-buffer) when the MTU is larger than a frame.
    pub multi_buffer: bool,
    /// Delayed ACK of the stack's connections, µs: an ACK waits this long for outgoing data to
    /// ride on (RFC 9293 allows up to 500 ms); 0 acknowledges every segment at once.
    pub ack_delay_us: u32,
    /// Use huge pages when enough are free.
    pub huge_pages: bool,
    /// Fall back to kernel TCP when AF_XDP cannot be used (`false`: a startup error).
    pub fallback: bool,
}

/// How readiness is found on an IO thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorKind {
    /// epoll through mio.
    Mio,
    /// Busy-poll every connection (for a dedicated core).
    Direct,
    /// io_uring completions: multishot receive into provided buffers, sends through the ring
    /// (`selector = "io_uring"`; needs the `io-uring` feature).
    IoUring {
        /// A kernel submission thread (`sqpoll = true`): no syscall on the hot path; the IO
        /// thread then busy-polls.
        sqpoll: bool,
        /// The core the kernel submission thread is pinned to (`sqpoll_core`).
        sqpoll_core: Option<usize>,
    },
}

/// One IO thread: its own IoService.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadConfig {
    /// Name (endpoints refer to it).
    pub name: String,
    /// The CPU core to pin the thread to.
    pub core: Option<usize>,
    /// The readiness mechanism.
    pub selector: SelectorKind,
    /// With `network.path = "xdp"`: this thread's own AF_XDP socket, queue and address. `None`:
    /// the thread uses kernel TCP (or the path is `kernel`).
    pub xdp: Option<ThreadXdp>,
}

/// The part of the AF_XDP path one IO thread owns: its queue (its own XSK socket, UMEM and smoltcp
/// stack) and its address, or in shared-IP mode its slice of the reserved ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadXdp {
    /// The RX queue its socket binds (the NIC steers this thread's flows there).
    pub queue: u32,
    /// The stack's IPv4 address (dedicated-IP mode: its own; shared-IP: the shared one).
    pub local_ip: std::net::Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Local ports its connections use: in shared-IP mode this thread's slice of `network.ports`.
    pub ports: (u16, u16),
}

/// TLS settings of an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    /// `rustls` or `openssl`.
    pub backend: String,
    /// A CA file to trust.
    pub ca: Option<PathBuf>,
    /// Verify the certificate (default). `false` is the loud, explicit opt-out.
    pub verify: bool,
    /// The name to send as SNI and verify against, when it differs from the URL's host.
    pub server_name: Option<String>,
    /// The trust anchors besides `ca` (default: none when `ca` is given, builtin otherwise).
    pub roots: TlsRoots,
    /// A client certificate chain (PEM, leaf first) for mutual TLS, with its private key.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// ALPN protocols to offer, most preferred first (empty: no ALPN extension).
    pub alpn: Vec<String>,
    /// The lowest TLS version accepted.
    pub min_version: TlsProtocol,
    /// The highest TLS version offered.
    pub max_version: TlsProtocol,
    /// Kernel TLS offload (OpenSSL backend, kernel TCP path).
    pub ktls: KtlsSetting,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            backend: "rustls".into(),
            ca: None,
            verify: true,
            server_name: None,
            roots: TlsRoots::Builtin,
            client_cert: None,
            alpn: Vec::new(),
            min_version: TlsProtocol::Tls12,
            max_version: TlsProtocol::Tls13,
            ktls: KtlsSetting::Off,
        }
    }
}

/// `roots`: where trust anchors come from besides the `ca` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRoots {
    /// The library's built-in set (Mozilla's roots with rustls, OpenSSL's default paths).
    Builtin,
    /// The operating system's certificate store.
    Os,
    /// None: only `ca` is trusted.
    None,
}

/// A TLS protocol version in the configuration (`"1.2"`, `"1.3"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsProtocol {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// `ktls`: whether the kernel does the record crypto after the OpenSSL handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KtlsSetting {
    /// User-space TLS.
    Off,
    /// Offload when the kernel and OpenSSL can, otherwise user-space TLS (logged once).
    Prefer,
    /// Offload or fail the endpoint with a typed error.
    Require,
}

/// `[endpoint.tcp]`: kernel socket options of an endpoint's connections (the AF_XDP path has
/// its own stack and ignores them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSettings {
    /// Bind to this interface (`SO_BINDTODEVICE`; needs `CAP_NET_RAW`).
    pub bind_device: Option<String>,
    /// Bind to this local address (port 0: any) before connecting.
    pub bind_addr: Option<std::net::SocketAddr>,
    /// `SO_BUSY_POLL`, µs.
    pub busy_poll_us: Option<u32>,
    /// `SO_INCOMING_CPU`.
    pub incoming_cpu: Option<u32>,
    /// `SO_RCVBUF`, bytes.
    pub recv_buffer: Option<usize>,
    /// `SO_SNDBUF`, bytes.
    pub send_buffer: Option<usize>,
    /// `TCP_NODELAY` (default on).
    pub nodelay: bool,
}

impl Default for TcpSettings {
    fn default() -> Self {
        TcpSettings {
            bind_device: None,
            bind_addr: None,
            busy_poll_us: None,
            incoming_cpu: None,
            recv_buffer: None,
            send_buffer: None,
            nodelay: true,
        }
    }
}

impl TcpSettings {
    /// `true` when nothing differs from the defaults.
    pub fn is_default(&self) -> bool {
        *self == TcpSettings::default()
    }
}

/// How an endpoint measures latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyMode {
    /// Receive time minus the send timestamp the venue embeds in each message (`"ts":<ns>`).
    EmbeddedTimestamp,
    /// Round trip of the endpoint's own pings.
    RoundTrip,
    /// Not measured.
    None,
}

/// What the gateway does with a sample that finds a subscriber's queue full
/// (`publish_overflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishOverflow {
    /// `"drop_oldest"` (the default): the oldest queued sample makes room, so a subscriber back
    /// from a stall reads fresh data; the drops show to it as gaps in `seq` and each is counted
    /// (`hotwire_gateway_subscriber_drops_total`).
    #[default]
    DropOldest,
    /// `"drop_newest"`: the new sample is not delivered to that subscriber, and each such drop
    /// is counted exactly (`hotwire_gateway_subscriber_drops_total`).
    DropNewest,
}

/// The gateway's settings of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOptions {
    /// `publish_max_message` (bytes, default 16384, 64..=16 MiB): the largest message
    /// published on `.../in` or taken from `.../send`; larger ones are refused and counted. The
    /// shared-memory segment is sized once from it at startup.
    pub max_message: usize,
    /// `publish_buffer` (1024..=4096, default 1024): samples each `.../in` subscriber may queue.
    pub buffer: usize,
    /// `publish_overflow`: what a full subscriber queue drops.
    pub overflow: PublishOverflow,
}

impl Default for PublishOptions {
    fn default() -> PublishOptions {
        PublishOptions {
            max_message: 16 * 1024,
            buffer: 1024,
            overflow: PublishOverflow::DropOldest,
        }
    }
}

/// One endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    /// Unique name.
    pub name: String,
    /// `ws://`, `wss://`, `http://`, `https://`, `fix://` or `fixs://` URL.
    pub url: String,
    /// The IO thread that runs it.
    pub thread: String,
    /// Messages sent as soon as the connection is up (subscriptions).
    pub send: Vec<String>,
    /// Gateway (`publish = true`): every received message goes out on the iceoryx2 service
    /// `hotwire/<name>/in`, and what strategies publish on `hotwire/<name>/send` is sent.
    pub publish: bool,
    /// The gateway's sizes and overflow policy (`publish_*` keys; used with `publish = true`).
    pub publish_options: PublishOptions,
    /// WebSocket ping interval.
    pub heartbeat: Option<Duration>,
    /// WebSocket: the connection is dead when a ping's pong is not back within this (default
    /// three heartbeats; `None` without a heartbeat).
    pub pong_timeout: Option<Duration>,
    /// WebSocket: reconnect when no data message arrived for this long.
    pub stale_after: Option<Duration>,
    /// Record the session's bytes into this file (above TLS).
    pub record: Option<PathBuf>,
    /// TLS settings (used for `wss`, `https` and `fixs`).
    pub tls: TlsSettings,
    /// Kernel TCP socket options.
    pub tcp: TcpSettings,
    /// The service policy (timeouts, backoff, lifetime).
    pub policy: crate::service::Policy,
    /// How latency is measured.
    pub latency: LatencyMode,
    /// The protocol, from the URL scheme, with its own settings.
    pub kind: EndpointKind,
    /// WebSocket: the permessage-deflate offer (`[endpoint.ws] deflate = true`; off by default).
    pub ws_deflate: Option<WsDeflate>,
}

/// `[endpoint.ws]` with `deflate = true`: the permessage-deflate offer (RFC 7692 §7.1; see
/// `ws::DeflateConfig`, which it becomes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WsDeflate {
    /// `client_no_context_takeover`: reset the client's compressor after each message.
    pub client_no_context_takeover: bool,
    /// `server_no_context_takeover`: ask the server to reset its compressor after each message.
    pub server_no_context_takeover: bool,
    /// `client_max_window_bits` (9..=15; unset: the server may choose).
    pub client_max_window_bits: Option<u8>,
    /// `server_max_window_bits` (9..=15; unset: not offered).
    pub server_max_window_bits: Option<u8>,
}

/// An endpoint's protocol and its settings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EndpointKind {
    /// `ws://`, `wss://`.
    WebSocket,
    /// `http://`, `https://`.
    Http(HttpSettings),
    /// `fix://`, `fixs://` (TLS).
    Fix(Box<FixSettings>),
}

/// One request of an HTTP endpoint's schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequestSettings {
    /// The method (upper case).
    pub method: String,
    /// Path and query, starting with `/`.
    pub target: String,
    /// The body (empty for none).
    pub body: String,
    /// Extra header fields.
    pub headers: Vec<(String, String)>,
}

/// An HTTP endpoint: a schedule of requests on one keep-alive connection.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// The requests, sent round-robin (empty: `GET` of the URL's path).
    pub requests: Vec<HttpRequestSettings>,
    /// One request per interval; `None`: back to back.
    pub interval: Option<Duration>,
    /// Requests in flight at once (pipelining).
    pub pipeline: usize,
    /// Close the connection (and reconnect) when a response takes longer than this (10 s).
    pub request_timeout: Duration,
}

/// A FIX endpoint: an order-entry session. Its `Debug` output never shows the password.
#[derive(Clone, PartialEq)]
pub struct FixSettings {
    /// SenderCompID(49).
    pub sender: String,
    /// TargetCompID(56).
    pub target: String,
    /// BeginString(8): `FIX.4.2`, `FIX.4.4` or `FIXT.1.1`.
    pub begin_string: String,
    /// DefaultApplVerID(1137) for FIXT.1.1 sessions.
    pub default_appl_ver_id: Option<String>,
    /// The sequence-number and message store folder (none: in memory).
    pub store: Option<PathBuf>,
    /// ResetSeqNumFlag(141) on logon.
    pub reset: bool,
    /// Username(553).
    pub username: Option<String>,
    /// Password(554).
    pub password: Option<String>,
    /// Limit orders per second to send (none: logon and heartbeats only).
    pub order_rate: Option<f64>,
    /// The orders' symbol.
    pub symbol: String,
    /// The orders' quantity.
    pub quantity: f64,
    /// The orders' limit price.
    pub price: f64,
    /// When the session runs (none: always).
    pub schedule: Option<Box<FixSchedule>>,
    /// Check the SendingTime of received messages (QuickFIX's CheckLatency).
    pub check_latency: bool,
    /// The largest SendingTime difference accepted (QuickFIX's MaxLatency; default 120 s).
    pub max_latency: Duration,
}

/// A FIX session schedule as configured: QuickFIX's StartTime/EndTime, StartDay/EndDay and
/// TimeZone (validated; see `hotwire::fix::schedule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixSchedule {
    /// StartTime, seconds after local midnight.
    pub start_time: u32,
    /// EndTime, seconds after local midnight.
    pub end_time: u32,
    /// StartDay and EndDay, 0 = Monday ..= 6 = Sunday (weekly sessions; none: daily).
    pub days: Option<(u8, u8)>,
    /// The IANA time zone name (default `UTC`).
    pub time_zone: String,
}

impl std::fmt::Debug for FixSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixSettings")
            .field("sender", &self.sender)
            .field("target", &self.target)
            .field("begin_string", &self.begin_string)
            .field("default_appl_ver_id", &self.default_appl_ver_id)
            .field("store", &self.store)
            .field("reset", &self.reset)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| Redacted))
            .field("order_rate", &self.order_rate)
            .field("symbol", &self.symbol)
            .field("quantity", &self.quantity)
            .field("price", &self.price)
            .field("schedule", &self.schedule)
            .field("check_latency", &self.check_latency)
            .field("max_latency", &self.max_latency)
            .finish()
    }
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Statistics output.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsConfig {
    /// The live stats line period (at most once a second).
    pub interval: Duration,
    /// Write the final report as JSON here.
    pub json: Option<PathBuf>,
}

/// The Prometheus endpoint (`[metrics]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served (port 0: any free port, logged at start).
    pub listen: std::net::SocketAddr,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The network path.
    pub network: NetworkPath,
    /// IO threads.
    pub threads: Vec<ThreadConfig>,
    /// Endpoints.
    pub endpoints: Vec<EndpointConfig>,
    /// Stats output.
    pub stats: StatsConfig,
    /// The Prometheus endpoint, if configured.
    pub metrics: Option<MetricsConfig>,
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates `text`; `file` is used in error messages and to resolve relative paths.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let locate = Locator { text, file };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            locate.error(at, e.message().trim_end().to_owned())
        })?;
        raw.validate(&locate)
    }
}

/// Turns byte offsets into line and column.
pub(crate) struct Locator<'a> {
    text: &'a str,
    file: &'a Path,
}

impl Locator<'_> {
    pub(crate) fn error(&self, offset: usize, message: String) -> ConfigError {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            message,
        }
    }

    pub(crate) fn at<T>(&self, value: &Spanned<T>, message: String) -> ConfigError {
        self.error(value.span().start, message)
    }

    /// Resolves a path relative to the configuration file's folder.
    pub(crate) fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.file.parent().unwrap_or(Path::new(".")).join(p)
        }
    }
}

/// Parses a duration such as `250ms`, `5s`, `2m`, `24h`, or a sum of them: `23h30m`, `1m30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty duration (expected e.g. 250ms, 5s, 2m, 24h)".into());
    }
    let mut rest = text;
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(|| {
                format!("duration {text:?} has no unit (expected e.g. 250ms, 5s, 2m, 24h)")
            })?;
        let (num, tail) = rest.split_at(split);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("duration {text:?}: {num:?} is not a number"))?;
        total += n * match unit {
            "us" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => {
                return Err(format!(
                    "duration {text:?}: unknown unit {other:?} (expected us, ms, s, m, h)"
                ))
            }
        };
        rest = next;
    }
    if !total.is_finite() || total > 1e9 {
        return Err(format!("duration {text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests;
