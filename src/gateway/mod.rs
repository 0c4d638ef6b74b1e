//! The gateway: the appliance's venue sessions shared with strategy processes over iceoryx2
//! zero-copy shared memory.
//!
//! An endpoint with `publish = true` publishes every message it receives on the iceoryx2
//! publish-subscribe service `hotwire/<endpoint>/in` (WebSocket data frames, FIX application
//! messages whole as received, HTTP response bodies) and sends what strategies publish on
//! `hotwire/<endpoint>/send` (WebSocket: a text or binary frame; FIX: the business fields of an
//! application message, see [`order`]). Both services carry a dynamic `[u8]` payload and the user
//! header [`HotwireHeader`], whose iceoryx2 type name is `HotwireHeader` in every language.
//!
//! The IO thread writes each message straight into a loaned sample: one copy, from the receive
//! buffer into shared memory. Nothing is allocated per message: iceoryx2 0.10 wraps each loan in
//! a reference-counted handle (`SampleMutUninit::new`), an `Rc::new` with `ipc::Service`, and the
//! gateway's service variant ([`service::GatewayIpc`]) recycles those handles
//! (`tests/gateway_alloc.rs`: none publishing, none taking orders). The
//! publisher's shared memory is one static segment sized at startup from `publish_max_message`
//! ([`PublishOptions`]); a longer message is not published but counted
//! ([`GatewayCounters::oversized`], a gap in `seq`).
//!
//! A slow or dead subscriber never blocks the IO thread: the `.../in` services run without
//! iceoryx2's blocking back-pressure, and each subscriber queues up to
//! [`PublishOptions::buffer`] samples. When its queue is full, by default
//! (`publish_overflow = "drop_oldest"`, iceoryx2's safe overflow) the oldest queued sample makes
//! room, so a subscriber back from a stall reads fresh data and sees the drops as gaps in `seq`;
//! with `"drop_newest"` the new sample is not delivered to it. Either way each drop is counted
//! ([`GatewayCounters::subscriber_drops`]; under `"drop_oldest"` by the gateway's own iceoryx2
//! service variant, [`service`], whose connection counts what safe overflow evicts).
//!
//! Strategies' messages are taken on the endpoint's IO thread while its session is up (a FIX
//! session: logged on), unless the session has more than [`SEND_BACKLOG`] bytes it could not
//! write yet. What they publish while it is down waits in iceoryx2's queue and, if the session
//! was down for longer than [`ORDER_HOLD`], is refused, counted and logged when it comes back up
//! ([`Refusal::SessionDown`]), never sent late; the queue is bounded
//! (up to [`SEND_BUFFER`]; strategies publish with `DiscardData`, so they never block). HTTP
//! endpoints only publish: they have no `.../send` service.
//!
//! The gateway and its strategies must agree on three things: the iceoryx2 version (exactly
//! the crate's, `=0.10.0`; the Python package is pinned to the same), the service names, and the
//! shared-memory prefix: [`PREFIX_ENV`] overrides iceoryx2's default `iox2_` on both sides, so
//! parallel tests and several appliances on one host stay apart. Every node is built from an
//! explicit configuration (never iceoryx2's implicit `config/iceoryx2.toml` lookup, which depends
//! on the working directory) with signal handling off, so SIGTERM keeps stopping the appliance.

pub mod check;
pub mod order;
pub mod send;
pub mod service;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use crate::config::{PublishOptions, PublishOverflow};
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::BackpressureAction;
use iceoryx2::port::SendError;
use iceoryx2::prelude::*;
use service::GatewayIpc;

/// The environment variable that sets the iceoryx2 shared-memory prefix (default `iox2_`):
/// strategies must read the same one.
pub const PREFIX_ENV: &str = "HOTWIRE_GATEWAY_PREFIX";

/// Subscribers (strategy processes) per `.../in` service. With [`PublishOptions::buffer`]
/// samples queued per subscriber, the publisher's segment holds about `MAX_SUBSCRIBERS x buffer`
/// samples of [`PublishOptions::max_message`] bytes each (64 MiB with the defaults).
pub const MAX_SUBSCRIBERS: usize = 4;

/// Samples a subscriber of `.../in` may hold borrowed (received, not yet released).
pub const MAX_BORROWED: usize = 2;

/// Strategy publishers per `.../send` service.
pub const MAX_SENDERS: usize = 16;

/// Processes that may open one service.
pub const MAX_NODES: usize = 32;

/// Samples per `.../send` subscriber queue in the appliance.
pub const SEND_BUFFER: usize = 1024;

/// Strategy messages handled per call of [`Gateway::drain`], so a flood of orders cannot starve
/// the endpoint's feed.
pub const SEND_PER_DRAIN: usize = 256;

/// Bytes a session may have queued and not yet written (the venue is not reading) before the
/// gateway stops taking strategies' messages: they wait in iceoryx2's queue (bounded by
/// [`SEND_BUFFER`]) instead of in the session's memory.
pub const SEND_BACKLOG: usize = 256 * 1024;

/// A session down for longer than this refuses, when it comes back up, every strategy message
/// that waited for it ([`Gateway::session_up`]); after a shorter gap (the first logon after
/// startup, a quick reconnect) what waited goes out, at most this late.
pub const ORDER_HOLD: std::time::Duration = std::time::Duration::from_secs(1);

/// Refusals logged one by one on an endpoint; after these, one summary line at most every
/// [`REFUSAL_SUMMARY`] (the counters count every one).
pub const REFUSALS_LOGGED: u64 = 5;

/// How often a summary of the refusals not logged one by one is logged.
pub const REFUSAL_SUMMARY: std::time::Duration = std::time::Duration::from_secs(10);

/// The timer tick of a FIX endpoint with a gateway: strategies' orders are taken on the timer, so
/// on a busy-polling thread (`selector = "direct"`, AF_XDP) this makes it every round; a `mio`
/// thread wakes at least once per millisecond.
pub const FIX_TICK: std::time::Duration = std::time::Duration::from_micros(1);

/// The user header of every sample on a gateway service. `repr(C)`, 24 bytes, alignment 8, no
/// padding; its iceoryx2 type name is `HotwireHeader` (Python declares the same `ctypes`
/// structure with `type_name()` returning it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, ZeroCopySend)]
#[repr(C)]
#[type_name("HotwireHeader")]
pub struct HotwireHeader {
    /// `CLOCK_REALTIME` in ns when the bytes were read.
    pub recv_ns: u64,
    /// Per endpoint, from 1; a gap means the gateway dropped messages (and counted them).
    pub seq: u64,
    /// The endpoint's index in the configuration.
    pub endpoint: u32,
    /// What the payload is: a [`Kind`] as `u32`.
    pub kind: u32,
}

const _: () = assert!(std::mem::size_of::<HotwireHeader>() == 24);
const _: () = assert!(std::mem::align_of::<HotwireHeader>() == 8);

/// What a sample's payload is ([`HotwireHeader::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// A WebSocket text message.
    Text = 1,
    /// A WebSocket binary message.
    Binary = 2,
    /// A FIX message (in: whole, as received; send: the business fields).
    Fix = 3,
    /// An HTTP response body.
    HttpBody = 4,
}

impl Kind {
    /// The kind of a header's `kind` field, `None` for an unknown value.
    pub fn from_u32(v: u32) -> Option<Kind> {
        Some(match v {
            1 => Kind::Text,
            2 => Kind::Binary,
            3 => Kind::Fix,
            4 => Kind::HttpBody,
            _ => return None,
        })
    }
}

/// The gateway's counters of one endpoint (exported as metrics).
#[derive(Debug, Default)]
pub struct GatewayCounters {
    /// Samples published on `.../in`.
    pub published: AtomicU64,
    /// Messages the gateway could not publish (larger than the maximum, no sample to loan, a
    /// send error): each one is a gap in `seq`.
    pub dropped: AtomicU64,
    /// Samples a subscriber lost because its queue was full, one per subscriber and sample:
    /// with `publish_overflow = "drop_oldest"` each queued sample a new one pushed out (counted
    /// by the gateway's connection, [`service::take_evictions`]), with `"drop_newest"` each new
    /// sample not delivered (counted by the backpressure handler). The subscriber sees the same
    /// losses as gaps in `seq`.
    pub subscriber_drops: AtomicU64,
    /// Strategy messages written to the session.
    pub sent: AtomicU64,
    /// Strategy messages refused: malformed, of a wrong kind, larger than
    /// [`PublishOptions::max_message`], or published while the session was down (those are
    /// taken from the queue and refused when the session comes back up, never sent late).
    pub refused: AtomicU64,
    /// Messages larger than [`PublishOptions::max_message`], both directions: received from the
    /// venue (not published, also in [`GatewayCounters::dropped`]) and from strategies (also in
    /// [`GatewayCounters::refused`]).
    pub oversized: AtomicU64,
}

impl GatewayCounters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Why an endpoint's gateway could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The endpoint's name does not make a valid iceoryx2 service name.
    #[error("gateway: {service:?} is not a valid iceoryx2 service name: {reason}")]
    ServiceName {
        /// The name.
        service: String,
        /// iceoryx2's reason.
        reason: String,
    },
    /// [`PREFIX_ENV`] is not a valid file name prefix.
    #[error("gateway: {PREFIX_ENV}={prefix:?} is not a valid shared-memory prefix")]
    Prefix {
        /// The value.
        prefix: String,
    },
    /// The iceoryx2 node, service or port could not be created.
    #[error("gateway: {what} {service:?}: {reason}")]
    Iceoryx {
        /// What failed (node, service, publisher, subscriber).
        what: &'static str,
        /// The service.
        service: String,
        /// iceoryx2's error.
        reason: String,
    },
}

impl From<GatewayError> for std::io::Error {
    fn from(e: GatewayError) -> std::io::Error {
        std::io::Error::other(e)
    }
}

/// The iceoryx2 configuration of every gateway node: iceoryx2's defaults with the prefix of
/// [`PREFIX_ENV`], never a file found through the working directory.
pub fn iceoryx_config() -> Result<Config, GatewayError> {
    let mut config = Config::default();
    if let Ok(prefix) = std::env::var(PREFIX_ENV) {
        config.global.prefix =
            FileName::new(prefix.as_bytes()).map_err(|_| GatewayError::Prefix { prefix })?;
    }
    Ok(config)
}

/// `hotwire/<endpoint>/<direction>`.
pub fn service_name(endpoint: &str, direction: &str) -> String {
    format!("hotwire/{endpoint}/{direction}")
}

fn iox(what: &'static str, service: &str, e: impl std::fmt::Debug) -> GatewayError {
    GatewayError::Iceoryx {
        what,
        service: service.to_owned(),
        reason: format!("{e:?}"),
    }
}

/// Checks that an endpoint's name makes valid service names (`hotwire/<name>/in` and `/send`).
pub fn check_name(endpoint: &str) -> Result<(), GatewayError> {
    name_of(&service_name(endpoint, "send")).map(|_| ())
}

fn name_of(service: &str) -> Result<ServiceName, GatewayError> {
    service
        .try_into()
        .map_err(
            |e: iceoryx2::service::service_name::ServiceNameError| GatewayError::ServiceName {
                service: service.to_owned(),
                reason: format!("{e:?}"),
            },
        )
}

/// Why a strategy's message was not sent (counted in [`GatewayCounters::refused`], logged by
/// [`Gateway::drain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A kind the session has no place for (`None`: not a known kind at all).
    WrongKind {
        /// The sample's kind.
        kind: Option<Kind>,
        /// What the session takes.
        takes: &'static str,
    },
    /// A text message that is not UTF-8.
    NotUtf8,
    /// A malformed FIX payload.
    Malformed(order::OrderError),
    /// Larger than [`PublishOptions::max_message`] (the length).
    TooLarge(usize),
    /// Waited through a session outage longer than [`ORDER_HOLD`]: refused when the session came
    /// back up, never sent late.
    SessionDown,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::WrongKind { kind, takes } => {
                write!(f, "a message of kind {kind:?}: the session takes {takes}")
            }
            Refusal::NotUtf8 => f.write_str("a text message that is not UTF-8"),
            Refusal::Malformed(e) => write!(f, "a malformed FIX message: {e}"),
            Refusal::TooLarge(n) => write!(f, "a message of {n} bytes, above publish_max_message"),
            Refusal::SessionDown => f.write_str("a message published while the session was down"),
        }
    }
}

/// The first [`REFUSALS_LOGGED`] refusals one by one, then a summary at most every
/// [`REFUSAL_SUMMARY`]: a strategy that floods bad messages cannot flood the log from the IO
/// thread.
#[derive(Debug, Default)]
struct RefusalLog {
    logged: u64,
    unlogged: u64,
    since: Option<std::time::Instant>,
}

impl RefusalLog {
    fn note(&mut self, name: &str, why: Refusal) {
        if self.logged < REFUSALS_LOGGED {
            self.logged += 1;
            log::warn!("gateway {name}: refused {why}");
            if self.logged == REFUSALS_LOGGED {
                log::warn!(
                    "gateway {name}: further refusals are summarised every {}s \
                     (hotwire_gateway_refused_total counts each)",
                    REFUSAL_SUMMARY.as_secs()
                );
            }
            return;
        }
        self.unlogged += 1;
        let now = std::time::Instant::now();
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) >= REFUSAL_SUMMARY {
            log::warn!(
                "gateway {name}: refused {} more strategy messages in {:.0?} (the last: {why})",
                self.unlogged,
                now.duration_since(since)
            );
            self.unlogged = 0;
            self.since = Some(now);
        }
    }
}

/// One endpoint's gateway, built and used on the endpoint's IO thread (its ports are not `Send`).
pub struct Gateway {
    name: String,
    endpoint: u32,
    seq: u64,
    max_message: usize,
    counters: Arc<GatewayCounters>,
    refusals: RefusalLog,
    down_since: Option<std::time::Instant>,
    publisher: Publisher<GatewayIpc, [u8], HotwireHeader>,
    subscriber: Option<Subscriber<GatewayIpc, [u8], HotwireHeader>>,
    /// When dead subscribers were last looked for ([`Gateway::reap_dead_subscribers`]).
    last_reap: std::time::Instant,
    // The ports keep their services alive; the node goes last.
    node: service::GatewayNode,
}

/// How often, at most, a full subscriber queue makes the gateway look for dead subscribers.
pub const DEAD_SUBSCRIBER_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("seq", &self.seq)
            .field("max_message", &self.max_message)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Opens (or creates) `hotwire/<name>/in` with a publisher and, when `takes_orders`,
    /// `hotwire/<name>/send` with a subscriber, for the endpoint at `index` in the
    /// configuration. Call it on the IO thread.
    pub fn open(
        name: &str,
        index: usize,
        options: &PublishOptions,
        takes_orders: bool,
        counters: Arc<GatewayCounters>,
    ) -> Result<Gateway, GatewayError> {
        Gateway::open_with(
            &iceoryx_config()?,
            name,
            index,
            options,
            takes_orders,
            counters,
        )
    }

    /// As [`Gateway::open`], with an explicit iceoryx2 configuration (its prefix keeps tests and
    /// appliances apart).
    ///
    /// The publisher's shared-memory segment is static, sized here once for
    /// [`MAX_SUBSCRIBERS`] x ([`PublishOptions::buffer`] + [`MAX_BORROWED`]) samples of
    /// [`PublishOptions::max_message`] bytes (iceoryx2 zero-fills it, so this is where the cost
    /// is paid, never on the IO thread's hot path); a longer message is refused and counted.
    pub fn open_with(
        config: &Config,
        name: &str,
        index: usize,
        options: &PublishOptions,
        takes_orders: bool,
        counters: Arc<GatewayCounters>,
    ) -> Result<Gateway, GatewayError> {
        quiet_iceoryx_log();
        let in_name = service_name(name, "in");
        let send_name = service_name(name, "send");
        let node = NodeBuilder::new()
            .config(config)
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<GatewayIpc>()
            .map_err(|e| iox("node for", &in_name, e))?;
        // From here on, a failure still takes the node counter out of /dev/shm if alone.
        let node = service::GatewayNode::new(node, config);
        let drop_oldest = options.overflow == PublishOverflow::DropOldest;
        let out = node
            .get()
            .service_builder(&name_of(&in_name)?)
            .publish_subscribe::<[u8]>()
            .user_header::<HotwireHeader>()
            .enable_safe_overflow(drop_oldest)
            .subscriber_max_buffer_size(options.buffer)
            .subscriber_max_borrowed_samples(MAX_BORROWED)
            .max_subscribers(MAX_SUBSCRIBERS)
            .max_publishers(2)
            .max_nodes(MAX_NODES)
            .open_or_create()
            .map_err(|e| iox("service", &in_name, e))?;
        let builder = out
            .publisher_builder()
            .initial_max_slice_len(options.max_message)
            .allocation_strategy(AllocationStrategy::Static)
            .max_loaned_samples(1)
            .backpressure_strategy(BackpressureStrategy::DiscardData);
        let publisher = if drop_oldest {
            builder.create()
        } else {
            // iceoryx2 calls the handler when a subscriber's queue is full; with
            // `DiscardDataAndFail` it then skips that subscriber without trying again, so each
            // call is exactly one sample that subscriber did not get. (`DiscardData` would try
            // once more, and count a sample the subscriber made room for in between.)
            let drops = counters.clone();
            builder
                .set_backpressure_handler(move |_| {
                    GatewayCounters::add(&drops.subscriber_drops, 1);
                    BackpressureAction::DiscardDataAndFail
                })
                .create()
        }
        .map_err(|e| iox("publisher on", &in_name, e))?;
        let subscriber = if takes_orders {
            let send = node
                .get()
                .service_builder(&name_of(&send_name)?)
                .publish_subscribe::<[u8]>()
                .user_header::<HotwireHeader>()
                .enable_safe_overflow(false)
                .subscriber_max_buffer_size(SEND_BUFFER)
                .max_subscribers(2)
                .max_publishers(MAX_SENDERS)
                .max_nodes(MAX_NODES)
                .open_or_create()
                .map_err(|e| iox("service", &send_name, e))?;
            let subscriber = send
                .subscriber_builder()
                .buffer_size(SEND_BUFFER)
                .create()
                .map_err(|e| iox("subscriber on", &send_name, e))?;
            log::info!(
                "gateway: publishing on {in_name:?}, sending what strategies publish on \
                 {send_name:?}"
            );
            Some(subscriber)
        } else {
            log::info!("gateway: publishing on {in_name:?}");
            None
        };
        Ok(Gateway {
            name: name.to_owned(),
            endpoint: index as u32,
            seq: 0,
            max_message: options.max_message,
            counters,
            refusals: RefusalLog::default(),
            down_since: Some(std::time::Instant::now()),
            publisher,
            subscriber,
            last_reap: std::time::Instant::now(),
            node,
        })
    }

    /// The counters (shared with the metrics).
    pub fn counters(&self) -> &Arc<GatewayCounters> {
        &self.counters
    }

    /// The last `seq` used (0 before the first message).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Publishes `bytes`, read at `recv_ns`, as the next message of the endpoint. Never blocks and
    /// never fails: a message that cannot be published (longer than
    /// [`PublishOptions::max_message`]: also counted in [`GatewayCounters::oversized`]) is
    /// counted in [`GatewayCounters::dropped`] and leaves a gap in `seq`.
    pub fn publish(&mut self, kind: Kind, recv_ns: u64, bytes: &[u8]) {
        self.seq += 1;
        if bytes.len() > self.max_message {
            GatewayCounters::add(&self.counters.oversized, 1);
            GatewayCounters::add(&self.counters.dropped, 1);
            return;
        }
        let header = HotwireHeader {
            recv_ns,
            seq: self.seq,
            endpoint: self.endpoint,
            kind: kind as u32,
        };
        let sent = match self.publisher.loan_slice_uninit(bytes.len()) {
            Ok(mut sample) => {
                *sample.user_header_mut() = header;
                match sample.write_from_slice(bytes).send() {
                    // `drop_newest`: some subscriber's queue was full (counted by the handler);
                    // the others have the sample.
                    Ok(_) | Err(SendError::UnableToDeliver) => true,
                    Err(_) => false,
                }
            }
            Err(_) => false,
        };
        // `drop_oldest`: the samples this send pushed out of full subscriber queues. Counted
        // before `published`, so a reader that sees this message published sees its drops too.
        let evicted = service::take_evictions();
        if evicted > 0 {
            GatewayCounters::add(&self.counters.subscriber_drops, evicted);
            self.reap_dead_subscribers();
        }
        let c = if sent {
            &self.counters.published
        } else {
            &self.counters.dropped
        };
        GatewayCounters::add(c, 1);
    }

    /// A subscriber's queue is full. If its process died, iceoryx2 keeps the queue connected
    /// until some node cleans up dead nodes, and every later sample would count as a drop, as
    /// if a live strategy were slow. So the gateway asks iceoryx2 to clean up, at most once per
    /// [`DEAD_SUBSCRIBER_CHECK`] and only while queues overflow: it lists the prefix's nodes, a
    /// slow path kept off every other message.
    fn reap_dead_subscribers(&mut self) {
        let now = std::time::Instant::now();
        if now.duration_since(self.last_reap) >= DEAD_SUBSCRIBER_CHECK {
            self.last_reap = now;
            let state = self.node.get().try_cleanup_dead_nodes();
            log::debug!("gateway {}: dead nodes cleaned up: {state:?}", self.name);
        }
    }

    /// Hands the strategies' messages waiting on `.../send` to `f`, in arrival order, at most
    /// [`SEND_PER_DRAIN`] of them; returns how many were taken. `f` returns `Ok(Ok(()))` when it
    /// sent the message, `Ok(Err(why))` when it refused it, and an error when the session failed
    /// (the drain stops and returns it). A message longer than [`PublishOptions::max_message`]
    /// is refused before `f` sees it. Refusals are counted and logged (the first few, then a
    /// periodic summary).
    pub fn drain<E>(
        &mut self,
        mut f: impl FnMut(Option<Kind>, &[u8]) -> Result<Result<(), Refusal>, E>,
    ) -> Result<usize, E> {
        let Some(subscriber) = &self.subscriber else {
            return Ok(0);
        };
        let mut n = 0;
        while n < SEND_PER_DRAIN {
            let sample = match subscriber.receive() {
                Ok(Some(s)) => s,
                Ok(None) => break,
                Err(e) => {
                    log::warn!("gateway {}: receiving from a strategy: {e:?}", self.name);
                    break;
                }
            };
            n += 1;
            let bytes = sample.payload();
            let result = if bytes.len() > self.max_message {
                GatewayCounters::add(&self.counters.oversized, 1);
                Err(Refusal::TooLarge(bytes.len()))
            } else {
                f(Kind::from_u32(sample.user_header().kind), bytes)?
            };
            match result {
                Ok(()) => GatewayCounters::add(&self.counters.sent, 1),
                Err(why) => {
                    GatewayCounters::add(&self.counters.refused, 1);
                    self.refusals.note(&self.name, why);
                }
            }
        }
        Ok(n)
    }

    /// The session went down (a disconnect): what strategies publish from now on waits for
    /// [`Gateway::session_up`].
    pub fn session_down(&mut self) {
        self.down_since.get_or_insert_with(std::time::Instant::now);
    }

    /// The session is up (a FIX logon, a WebSocket connection). When it was down for longer than
    /// [`ORDER_HOLD`], every strategy message that waited is refused ([`Refusal::SessionDown`]),
    /// counted and logged, never sent minutes late; after a shorter gap they go out as usual.
    /// Returns how many were refused.
    pub fn session_up(&mut self) -> usize {
        match self.down_since.take() {
            Some(t) if t.elapsed() > ORDER_HOLD => self.refuse_waiting(),
            _ => 0,
        }
    }

    /// Takes every strategy message waiting on `.../send` and refuses it as
    /// [`Refusal::SessionDown`]. Returns how many.
    pub fn refuse_waiting(&mut self) -> usize {
        let mut total = 0;
        loop {
            let n = self
                .drain(|_, _| -> Result<_, std::convert::Infallible> {
                    Ok(Err(Refusal::SessionDown))
                })
                .unwrap_or_else(|e| match e {});
            total += n;
            if n < SEND_PER_DRAIN {
                return total;
            }
        }
    }
}

/// iceoryx2 logs through `log` at its own level (Info by default, chatty about every service it
/// opens): warnings and errors only, unless `IOX2_LOG_LEVEL` says otherwise.
fn quiet_iceoryx_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| set_log_level_from_env_or(LogLevel::Warn));
}

/// `CLOCK_REALTIME` in ns since the UNIX epoch (a vDSO call).
pub fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests;
