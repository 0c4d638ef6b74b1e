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
//! buffer into shared memory. The gateway allocates nothing per message; iceoryx2 0.10 itself
//! allocates one small reference-counted handle per loan (`SampleMutUninit::new`), which
//! `tests/gateway_alloc.rs` pins down (exactly one per message, none taking orders). A slow or dead subscriber never blocks it: the
//! `.../in` services run without iceoryx2's blocking back-pressure, and a sample that finds a
//! subscriber's queue full is dropped for that subscriber and counted
//! ([`GatewayCounters::subscriber_drops`]). Each subscriber may queue up to [`SUBSCRIBER_BUFFER`]
//! samples.
//!
//! Strategies' messages are taken on the endpoint's IO thread while its session is up (a FIX
//! session: logged on); what they publish while it is down waits in the appliance's queue (up to
//! [`SEND_BUFFER`], then their publishers feel back-pressure) and goes out, in order, once it is
//! up. A strategy that must not send late checks its own timestamps.
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::BackpressureAction;
use iceoryx2::prelude::*;

/// The environment variable that sets the iceoryx2 shared-memory prefix (default `iox2_`):
/// strategies must read the same one.
pub const PREFIX_ENV: &str = "HOTWIRE_GATEWAY_PREFIX";

/// Samples each subscriber of a `.../in` service may hold queued.
pub const SUBSCRIBER_BUFFER: usize = 4096;

/// Subscribers (strategy processes) per `.../in` service.
pub const MAX_SUBSCRIBERS: usize = 8;

/// Strategy publishers per `.../send` service.
pub const MAX_SENDERS: usize = 16;

/// Processes that may open one service.
pub const MAX_NODES: usize = 32;

/// Payload bytes each preallocated sample holds; a longer message makes iceoryx2 map a bigger
/// segment once (power-of-two growth), so the usual message never pays for it.
pub const INITIAL_MAX_MESSAGE: usize = 1024;

/// Samples per `.../send` subscriber queue in the appliance.
pub const SEND_BUFFER: usize = 1024;

/// Strategy messages handled per call of [`Gateway::drain`], so a flood of orders cannot starve
/// the endpoint's feed.
pub const SEND_PER_DRAIN: usize = 256;

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
    /// Messages the gateway could not publish (no sample to loan, a send error): each one is a
    /// gap in `seq`.
    pub dropped: AtomicU64,
    /// Samples not delivered to one subscriber because its queue was full (one per subscriber
    /// and sample).
    pub subscriber_drops: AtomicU64,
    /// Strategy messages written to the session.
    pub sent: AtomicU64,
    /// Strategy messages refused (malformed, wrong kind, or the session is not up).
    pub refused: AtomicU64,
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

/// One endpoint's gateway, built and used on the endpoint's IO thread (its ports are not `Send`).
pub struct Gateway {
    endpoint: u32,
    seq: u64,
    counters: Arc<GatewayCounters>,
    publisher: Publisher<ipc::Service, [u8], HotwireHeader>,
    subscriber: Subscriber<ipc::Service, [u8], HotwireHeader>,
    // The ports keep their services alive; the node goes last.
    _node: Node<ipc::Service>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("endpoint", &self.endpoint)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Opens (or creates) `hotwire/<name>/in` with a publisher and `hotwire/<name>/send` with a
    /// subscriber, for the endpoint at `index` in the configuration. Call it on the IO thread.
    pub fn open(
        name: &str,
        index: usize,
        counters: Arc<GatewayCounters>,
    ) -> Result<Gateway, GatewayError> {
        Gateway::open_with(&iceoryx_config()?, name, index, counters)
    }

    /// As [`Gateway::open`], with an explicit iceoryx2 configuration (its prefix keeps tests and
    /// appliances apart).
    pub fn open_with(
        config: &Config,
        name: &str,
        index: usize,
        counters: Arc<GatewayCounters>,
    ) -> Result<Gateway, GatewayError> {
        quiet_iceoryx_log();
        let in_name = service_name(name, "in");
        let send_name = service_name(name, "send");
        let node = NodeBuilder::new()
            .config(config)
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<ipc::Service>()
            .map_err(|e| iox("node for", &in_name, e))?;
        let out = node
            .service_builder(&name_of(&in_name)?)
            .publish_subscribe::<[u8]>()
            .user_header::<HotwireHeader>()
            .enable_safe_overflow(false)
            .subscriber_max_buffer_size(SUBSCRIBER_BUFFER)
            .subscriber_max_borrowed_samples(4)
            .max_subscribers(MAX_SUBSCRIBERS)
            .max_publishers(2)
            .max_nodes(MAX_NODES)
            .open_or_create()
            .map_err(|e| iox("service", &in_name, e))?;
        let drops = counters.clone();
        let publisher = out
            .publisher_builder()
            .initial_max_slice_len(INITIAL_MAX_MESSAGE)
            .allocation_strategy(AllocationStrategy::PowerOfTwo)
            .max_loaned_samples(2)
            .backpressure_strategy(BackpressureStrategy::DiscardData)
            .set_backpressure_handler(move |_| {
                GatewayCounters::add(&drops.subscriber_drops, 1);
                BackpressureAction::DiscardData
            })
            .create()
            .map_err(|e| iox("publisher on", &in_name, e))?;
        let send = node
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
            "gateway: publishing on {in_name:?}, sending what strategies publish on {send_name:?}"
        );
        Ok(Gateway {
            endpoint: index as u32,
            seq: 0,
            counters,
            publisher,
            subscriber,
            _node: node,
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
    /// never fails: a message that cannot be published is counted in
    /// [`GatewayCounters::dropped`] and leaves a gap in `seq`.
    pub fn publish(&mut self, kind: Kind, recv_ns: u64, bytes: &[u8]) {
        self.seq += 1;
        let header = HotwireHeader {
            recv_ns,
            seq: self.seq,
            endpoint: self.endpoint,
            kind: kind as u32,
        };
        let sent = match self.publisher.loan_slice_uninit(bytes.len()) {
            Ok(mut sample) => {
                *sample.user_header_mut() = header;
                sample.write_from_slice(bytes).send().is_ok()
            }
            Err(_) => false,
        };
        let c = if sent {
            &self.counters.published
        } else {
            &self.counters.dropped
        };
        GatewayCounters::add(c, 1);
    }

    /// Hands the strategies' messages waiting on `.../send` to `f`, in arrival order, at most
    /// [`SEND_PER_DRAIN`] of them; returns how many. `f` returns `Ok(true)` when it sent the
    /// message, `Ok(false)` when it refused it (counted, and the caller logs why), and an error
    /// when the session failed (the drain stops and returns it).
    pub fn drain<E>(
        &mut self,
        mut f: impl FnMut(Option<Kind>, &[u8]) -> Result<bool, E>,
    ) -> Result<usize, E> {
        let mut n = 0;
        while n < SEND_PER_DRAIN {
            let sample = match self.subscriber.receive() {
                Ok(Some(s)) => s,
                Ok(None) => break,
                Err(e) => {
                    log::warn!("gateway: receiving from a strategy: {e:?}");
                    break;
                }
            };
            n += 1;
            let kind = Kind::from_u32(sample.user_header().kind);
            let c = if f(kind, sample.payload())? {
                &self.counters.sent
            } else {
                &self.counters.refused
            };
            GatewayCounters::add(c, 1);
        }
        Ok(n)
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
