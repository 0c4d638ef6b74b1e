//! The service layer: endpoints' connection lifecycle.
//!
//! An [`IoService`] owns a [`Selector`] and a set of [`Endpoint`]s. Each call to [`IoService::poll`]
//! does a bounded amount of work and returns; the caller drives it from its own loop (usually a
//! thread pinned to an isolated core). Per endpoint it runs this state machine:
//!
//! ```text
//!   Waiting --(due)--> Resolving --(address)--> Connecting --(handshakes done)--> Established
//!      ^                   |                        |                                  |
//!      +----(backoff)------+------(error/timeout)---+-------(error, lifetime, close)---+
//! ```
//!
//! - **Resolving** runs on resolver threads ([`dns`](self)); an IP literal skips it.
//! - **Connecting** covers the TCP connect and every handshake of the target (TLS, WebSocket), all
//!   under one [`Policy::connect_timeout`].
//! - **Backoff** doubles from [`Policy::backoff_initial`] to [`Policy::backoff_max`] with jitter and
//!   resets once a connection is established. Endpoints back off independently: bringing up many
//!   endpoints takes as long as the slowest handshake, not the sum.
//! - **Hold**: when an attempt is due, [`Endpoint::hold`] may keep the endpoint Waiting (a FIX
//!   session outside its schedule) and name when to ask again.
//! - **Isolation**: an endpoint's failure (DNS, connect, I/O, protocol, an `Err` from its poll)
//!   becomes an [`Event::Disconnected`] for that endpoint and a scheduled reconnect. It never fails
//!   [`IoService::poll`], which returns an error only if the selector itself fails.
//!
//! Only this layer reads the clock: once per [`IoService::poll`].

use std::io;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::select::{Selectable, Selector, Token};

mod dial;
mod dns;
mod endpoint;
mod error;
mod mixed;
mod transport;
#[cfg(feature = "ws")]
pub mod ws;

#[cfg(feature = "io-uring")]
pub use dial::UringDial;
pub use dial::{Dial, KernelDial};
pub use endpoint::{ConnectAddr, Endpoint, Event, Flow, Policy};
pub use error::{Disconnect, Error, Timeout};
pub use mixed::{Mixed, MixedTarget};
pub use transport::Transport;
#[cfg(any(feature = "ws", feature = "http", feature = "fix"))]
pub(crate) use transport::{default_connector, wrap, Connector};

/// `into_io_service` for every [`Selector`]: the service layer wraps the selector, so the selector
/// layer below never names the service.
pub trait IntoIoService: Selector + Sized {
    /// Wraps this selector in an [`IoService`] without a user context.
    fn into_io_service<E: Endpoint<()>>(self) -> IoService<Self, E, ()> {
        IoService::new(self)
    }

    /// Wraps this selector in an [`IoService`] whose endpoints share a `C`.
    fn into_io_service_with_context<E: Endpoint<C>, C>(self) -> IoService<Self, E, C> {
        IoService::new(self)
    }
}

impl<S: Selector> IntoIoService for S {}

/// Identifies an endpoint within its service (the order of [`IoService::register`] calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub usize);

/// Where an endpoint is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointState {
    /// Waiting to (re)connect: initial start or backoff.
    Waiting,
    /// Resolving the host name.
    Resolving,
    /// Connecting and handshaking.
    Connecting,
    /// Established.
    Established,
    /// Down for good ([`Policy::reconnect`] is false).
    Stopped,
}

impl std::fmt::Display for EndpointState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EndpointState::Waiting => "waiting",
            EndpointState::Resolving => "resolving",
            EndpointState::Connecting => "connecting",
            EndpointState::Established => "up",
            EndpointState::Stopped => "stopped",
        })
    }
}

/// Lifecycle counters kept by the service for each endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connection attempts started (after resolution).
    pub attempts: u64,
    /// Connections established.
    pub connects: u64,
    /// Connections ended (established or not).
    pub disconnects: u64,
}

enum Phase<T> {
    Waiting {
        until: Instant,
    },
    Resolving,
    Connecting {
        target: T,
        addr: SocketAddr,
        deadline: Instant,
    },
    Established {
        target: T,
        since: Instant,
        next_timer: Option<Instant>,
    },
    Stopped,
}

struct Slot<E, T> {
    endpoint: E,
    policy: Policy,
    phase: Phase<T>,
    generation: u32,
    /// Failures in a row since the last established connection (drives the backoff).
    failures: u32,
    /// Rotates through the resolved addresses on successive attempts.
    addr_cursor: usize,
    ready: bool,
    stats: Stats,
}

/// Drives the connection lifecycle of a set of endpoints over one selector.
///
/// `S` is the selector, `E` the endpoint type (use an enum to mix kinds in one service) and `C` the
/// user context handed to every endpoint callback.
pub struct IoService<S: Selector, E: Endpoint<C>, C = ()> {
    selector: S,
    slots: Vec<Slot<E, E::Target>>,
    ready: Vec<Token>,
    resolver: Option<dns::Resolver>,
    rng: u64,
    poll_timeout: Duration,
    _context: PhantomData<fn(&mut C)>,
}

impl<S: Selector + std::fmt::Debug, E: Endpoint<C>, C> std::fmt::Debug for IoService<S, E, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoService")
            .field("selector", &self.selector)
            .field("endpoints", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl<S: Selector, E: Endpoint<C>, C> IoService<S, E, C> {
    /// A service over `selector` with no endpoints.
    pub fn new(selector: S) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        IoService {
            selector,
            slots: Vec::new(),
            ready: Vec::with_capacity(1024),
            resolver: None,
            rng: seed | 1,
            poll_timeout: Duration::ZERO,
            _context: PhantomData,
        }
    }

    /// How long [`IoService::poll`] may wait in the selector when nothing is ready. Zero (the
    /// default) never waits: right for a busy-polling thread on its own core.
    pub fn with_poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }

    /// Adds an endpoint; it connects on the next poll.
    pub fn register(&mut self, endpoint: E) -> EndpointId {
        let policy = endpoint.policy();
        self.slots.push(Slot {
            endpoint,
            policy,
            phase: Phase::Waiting {
                until: Instant::now(),
            },
            generation: 0,
            failures: 0,
            addr_cursor: 0,
            ready: false,
            stats: Stats::default(),
        });
        EndpointId(self.slots.len() - 1)
    }

    /// The number of endpoints.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// `true` when no endpoint is registered.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The endpoint `id`.
    pub fn endpoint(&self, id: EndpointId) -> &E {
        &self.slots[id.0].endpoint
    }

    /// The endpoint `id`, mutably.
    pub fn endpoint_mut(&mut self, id: EndpointId) -> &mut E {
        &mut self.slots[id.0].endpoint
    }

    /// All endpoints with their ids.
    pub fn endpoints(&self) -> impl Iterator<Item = (EndpointId, &E)> {
        self.slots
            .iter()
            .enumerate()
            .map(|(i, s)| (EndpointId(i), &s.endpoint))
    }

    /// The lifecycle state of endpoint `id`.
    pub fn state(&self, id: EndpointId) -> EndpointState {
        match self.slots[id.0].phase {
            Phase::Waiting { .. } => EndpointState::Waiting,
            Phase::Resolving => EndpointState::Resolving,
            Phase::Connecting { .. } => EndpointState::Connecting,
            Phase::Established { .. } => EndpointState::Established,
            Phase::Stopped => EndpointState::Stopped,
        }
    }

    /// The lifecycle policy of endpoint `id`, to change it while running (stop reconnecting before
    /// a shutdown, say).
    pub fn policy_mut(&mut self, id: EndpointId) -> &mut Policy {
        &mut self.slots[id.0].policy
    }

    /// Lifecycle counters of endpoint `id`.
    pub fn stats(&self, id: EndpointId) -> &Stats {
        &self.slots[id.0].stats
    }

    /// The established connection of endpoint `id` with the endpoint itself (to send outside
    /// `poll`, e.g. an order from another part of the loop).
    pub fn connection_mut(&mut self, id: EndpointId) -> Option<(&mut E::Target, &mut E)> {
        let slot = &mut self.slots[id.0];
        match &mut slot.phase {
            Phase::Established { target, .. } => Some((target, &mut slot.endpoint)),
            _ => None,
        }
    }

    /// Closes endpoint `id`'s connection on purpose (reported as [`Disconnect::Requested`]): it
    /// stays down unless [`Policy::reconnect_after_close`] is set.
    pub fn disconnect(&mut self, id: EndpointId, ctx: &mut C) {
        let now = Instant::now();
        let slot = &mut self.slots[id.0];
        if matches!(
            slot.phase,
            Phase::Connecting { .. } | Phase::Established { .. }
        ) {
            end(
                &mut self.selector,
                slot,
                Disconnect::Requested,
                now,
                &mut self.rng,
                ctx,
            );
        }
    }

    /// Runs one round: resolver answers, selector readiness, then each endpoint's due work. Never
    /// blocks longer than the poll timeout, and does not wait at all while an endpoint has work
    /// left over (it returned [`Flow::More`], or its connection holds buffered frames); a timer or
    /// reconnect due sooner than the timeout shortens the wait. An endpoint's failure never makes
    /// it fail.
    pub fn poll(&mut self, ctx: &mut C) -> io::Result<()> {
        self.poll_with(ctx, |target, endpoint, ctx| endpoint.poll(target, ctx))
    }

    /// As [`IoService::poll`], but traffic is handled by `handler` instead of [`Endpoint::poll`].
    pub fn poll_with<F>(&mut self, ctx: &mut C, mut handler: F) -> io::Result<()>
    where
        F: FnMut(&mut E::Target, &mut E, &mut C) -> Result<Flow, Disconnect>,
    {
        let timeout = self.wait_budget();
        self.selector.poll(timeout, &mut self.ready)?;
        // After the (possibly waiting) selector poll, so deadlines and timers see the real time.
        let now = Instant::now();
        self.collect_answers(now, ctx);
        for token in &self.ready {
            if let Some(slot) = self.slots.get_mut(token.slot() as usize) {
                // A late event for a replaced connection is dropped here.
                if slot.generation == token.generation() {
                    slot.ready = true;
                }
            }
        }
        let polls_all = self.selector.polls_all();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let outcome = match &mut slot.phase {
                Phase::Waiting { until } if now >= *until => {
                    match slot.endpoint.hold(ctx) {
                        Some(wait) => *until = now + wait,
                        None => begin(&mut self.resolver, slot, index, now),
                    }
                    None
                }
                Phase::Connecting {
                    target,
                    addr,
                    deadline,
                } => match slot.endpoint.poll_connect(target) {
                    Ok(true) => {
                        let addr = *addr;
                        let Phase::Connecting { target, .. } =
                            std::mem::replace(&mut slot.phase, Phase::Stopped)
                        else {
                            unreachable!("matched Connecting above")
                        };
                        slot.failures = 0;
                        slot.stats.connects += 1;
                        slot.phase = Phase::Established {
                            target,
                            since: now,
                            next_timer: slot.policy.timer.map(|t| now + t),
                        };
                        slot.endpoint.on_event(&Event::Connected { addr }, ctx);
                        // Data may have arrived with the handshake: poll at once.
                        slot.ready = true;
                        None
                    }
                    Ok(false) if now >= *deadline => {
                        Some(Disconnect::Error(Error::Timeout(Timeout::Connect)))
                    }
                    Ok(false) => None,
                    Err(e) => Some(Disconnect::Error(e)),
                },
                _ => None,
            };
            if let Some(reason) = outcome {
                end(&mut self.selector, slot, reason, now, &mut self.rng, ctx);
                continue;
            }
            let Phase::Established {
                target,
                since,
                next_timer,
            } = &mut slot.phase
            else {
                continue;
            };
            let mut result = Ok(Flow::Continue);
            if polls_all || slot.ready || target.read_pending() {
                slot.ready = false;
                result = handler(target, &mut slot.endpoint, ctx);
            }
            if let Ok(Flow::More) = result {
                slot.ready = true;
                result = Ok(Flow::Continue);
            }
            if let (Ok(Flow::Continue), Some(due)) = (&result, *next_timer) {
                if now >= due {
                    *next_timer = slot.policy.timer.map(|t| now + t);
                    result = slot.endpoint.on_timer(target, now, ctx);
                }
            }
            let lifetime_over = slot
                .policy
                .max_lifetime
                .is_some_and(|life| now.duration_since(*since) >= life);
            let reason = match result {
                Ok(Flow::Continue | Flow::More) if lifetime_over => Disconnect::Lifetime,
                Ok(Flow::More) => {
                    slot.ready = true;
                    continue;
                }
                Ok(Flow::Continue) => continue,
                Ok(Flow::Close) => Disconnect::Requested,
                Err(reason) => reason,
            };
            end(&mut self.selector, slot, reason, now, &mut self.rng, ctx);
        }
        // Connect and register only after the walk, so a new connection's first readiness is
        // collected by the next selector poll.
        self.connect_resolved(now, ctx);
        Ok(())
    }

    /// How long the selector may wait: the poll timeout, cut to zero while an endpoint has work
    /// left over, and to the earliest timer or reconnect due before it.
    fn wait_budget(&self) -> Duration {
        if self.poll_timeout.is_zero() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut wait = self.poll_timeout;
        for slot in &self.slots {
            let due = match &slot.phase {
                _ if slot.ready => return Duration::ZERO,
                Phase::Established { target, .. } if target.read_pending() => {
                    return Duration::ZERO
                }
                Phase::Established { next_timer, .. } => *next_timer,
                Phase::Waiting { until } => Some(*until),
                // The resolver answers on a channel the selector does not watch: look again soon.
                Phase::Resolving => Some(now + Duration::from_millis(1)),
                // Deadlines of handshakes are checked on the next round anyway.
                _ => None,
            };
            if let Some(due) = due {
                wait = wait.min(due.saturating_duration_since(now));
            }
        }
        wait
    }

    fn collect_answers(&mut self, now: Instant, ctx: &mut C) {
        let Some(resolver) = &self.resolver else {
            return;
        };
        while let Some(answer) = resolver.try_answer() {
            let Some(slot) = self.slots.get_mut(answer.token.slot() as usize) else {
                continue;
            };
            if slot.generation != answer.token.generation()
                || !matches!(slot.phase, Phase::Resolving)
            {
                continue;
            }
            match answer.result {
                Ok(addrs) => {
                    let addr = addrs[slot.addr_cursor % addrs.len()];
                    slot.addr_cursor = slot.addr_cursor.wrapping_add(1);
                    connect(
                        &mut self.selector,
                        slot,
                        answer.token,
                        addr,
                        now,
                        &mut self.rng,
                        ctx,
                    );
                }
                Err(e) => end(
                    &mut self.selector,
                    slot,
                    Disconnect::Error(Error::Dns(e)),
                    now,
                    &mut self.rng,
                    ctx,
                ),
            }
        }
    }

    /// Starts the connections whose address needed no lookup (see [`begin`]).
    fn connect_resolved(&mut self, now: Instant, ctx: &mut C) {
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if !matches!(slot.phase, Phase::Resolving) {
                continue;
            }
            let address = slot.endpoint.address();
            if let Some(ip) = literal_ip(&address) {
                let token = Token::new(index as u32, slot.generation);
                let addr = SocketAddr::new(ip, address.port);
                connect(
                    &mut self.selector,
                    slot,
                    token,
                    addr,
                    now,
                    &mut self.rng,
                    ctx,
                );
            }
        }
    }
}

/// Leaves `Waiting`: a new generation, then a lookup (names) or an immediate connect (IP literals,
/// done by `connect_resolved` after the walk).
fn begin<E: Endpoint<C>, C>(
    resolver: &mut Option<dns::Resolver>,
    slot: &mut Slot<E, E::Target>,
    index: usize,
    now: Instant,
) {
    slot.generation = slot.generation.wrapping_add(1);
    slot.phase = Phase::Resolving;
    let address = slot.endpoint.address();
    if literal_ip(&address).is_some() {
        return;
    }
    let host = address.host.as_str();
    let token = Token::new(index as u32, slot.generation);
    let submitted = match resolver {
        Some(r) => r.submit(token, host, address.port),
        None => dns::Resolver::start().and_then(|r| {
            let submitted = r.submit(token, host, address.port);
            *resolver = Some(r);
            submitted
        }),
    };
    if let Err(e) = submitted {
        // No resolver thread could be started (resource exhaustion): try again later.
        log::error!("cannot resolve {host}: {e}");
        slot.phase = Phase::Waiting {
            until: now + slot.policy.backoff_max,
        };
    }
}

/// The address when the host is an IP literal (IPv6 with or without brackets).
fn literal_ip(address: &ConnectAddr) -> Option<IpAddr> {
    let host = address.host.trim_start_matches('[').trim_end_matches(']');
    host.parse().ok()
}

fn connect<S: Selector, E: Endpoint<C>, C>(
    selector: &mut S,
    slot: &mut Slot<E, E::Target>,
    token: Token,
    addr: SocketAddr,
    now: Instant,
    rng: &mut u64,
    ctx: &mut C,
) {
    slot.stats.attempts += 1;
    let target = match slot.endpoint.create_target(addr, ctx) {
        Ok(t) => t,
        Err(e) => return end(selector, slot, Disconnect::Error(e), now, rng, ctx),
    };
    if let Err(e) = selector.register(target.raw_fd(), token) {
        drop(target);
        let reason = Disconnect::Error(Error::Connect(e));
        return end(selector, slot, reason, now, rng, ctx);
    }
    slot.phase = Phase::Connecting {
        target,
        addr,
        deadline: now + slot.policy.connect_timeout,
    };
}

/// Ends the current attempt or connection of `slot` and schedules what comes next.
fn end<S: Selector, E: Endpoint<C>, C>(
    selector: &mut S,
    slot: &mut Slot<E, E::Target>,
    reason: Disconnect,
    now: Instant,
    rng: &mut u64,
    ctx: &mut C,
) {
    let old = std::mem::replace(&mut slot.phase, Phase::Stopped);
    if let Phase::Connecting { target, .. } | Phase::Established { target, .. } = old {
        // Deregister before the descriptor closes (when `target` drops).
        let _ = selector.deregister(target.raw_fd());
    }
    slot.stats.disconnects += 1;
    slot.ready = false;
    let on_purpose = matches!(reason, Disconnect::Requested);
    let retry_in = if !slot.policy.reconnect || (on_purpose && !slot.policy.reconnect_after_close) {
        None
    } else if matches!(reason, Disconnect::Lifetime | Disconnect::PeriodEnd) {
        Some(Duration::ZERO)
    } else {
        let delay = backoff(&slot.policy, slot.failures, rng);
        slot.failures = slot.failures.saturating_add(1);
        Some(delay)
    };
    slot.phase = match retry_in {
        Some(d) => Phase::Waiting { until: now + d },
        None => Phase::Stopped,
    };
    slot.endpoint.on_event(
        &Event::Disconnected {
            reason: &reason,
            retry_in,
        },
        ctx,
    );
}

/// A timer period that divides `interval` into whole ticks of at most `check` (at least 1 ms),
/// so an endpoint with its own periodic work (a timeout check, heartbeats) still calls the
/// handler's timer on its cadence.
#[cfg(any(feature = "ws", feature = "http", feature = "fix"))]
pub(crate) fn tick_for(interval: Duration, check: Duration) -> Duration {
    let check = check.max(Duration::from_millis(1));
    let per_interval = interval
        .as_nanos()
        .div_ceil(check.as_nanos())
        .clamp(1, 1 << 20) as u32;
    (interval / per_interval).max(Duration::from_millis(1))
}

/// The delay before attempt `failures + 1`: exponential from the initial delay, capped, with
/// uniform jitter of ±`backoff_jitter`.
fn backoff(policy: &Policy, failures: u32, rng: &mut u64) -> Duration {
    let base = policy
        .backoff_initial
        .saturating_mul(1u32 << failures.min(20))
        .min(policy.backoff_max);
    // xorshift64: good enough to spread reconnects, and no allocation or lock.
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let unit = (*rng >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
    let jitter = policy.backoff_jitter.clamp(0.0, 1.0);
    base.mul_f64(1.0 - jitter + 2.0 * jitter * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(feature = "ws", feature = "http", feature = "fix"))]
    #[test]
    fn ticks_divide_the_interval() {
        let ms = Duration::from_millis;
        assert_eq!(tick_for(ms(1000), ms(250)), ms(250));
        assert_eq!(tick_for(ms(100), ms(250)), ms(100));
        assert_eq!(tick_for(ms(1000), ms(300)), ms(250));
        assert_eq!(tick_for(Duration::ZERO, ms(250)), ms(1));
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let policy = Policy {
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            backoff_jitter: 0.2,
            ..Policy::default()
        };
        let mut rng = 0x1234_5678_9abc_def1;
        for failures in 0..10 {
            let nominal = Duration::from_millis(100 * (1 << failures)).min(Duration::from_secs(2));
            for _ in 0..100 {
                let d = backoff(&policy, failures, &mut rng);
                assert!(
                    d >= nominal.mul_f64(0.8) && d <= nominal.mul_f64(1.2),
                    "{failures}: {d:?}"
                );
            }
        }
        let no_jitter = Policy {
            backoff_jitter: 0.0,
            ..policy
        };
        assert_eq!(backoff(&no_jitter, 3, &mut rng), Duration::from_millis(800));
        assert_eq!(backoff(&no_jitter, 40, &mut rng), Duration::from_secs(2));
    }
}
