//! Different kinds of endpoints in one service, without `dyn`: [`Mixed<A, B>`] is an endpoint that
//! is either an `A` or a `B`; nest it for more kinds (`Mixed<Ws, Mixed<Http, Fix>>`).

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Instant;

use super::{ConnectAddr, Disconnect, Endpoint, Error, Event, Flow, Policy};
use crate::select::Selectable;

/// An endpoint of kind `A` or kind `B`.
#[derive(Debug)]
pub enum Mixed<A, B> {
    /// The first kind.
    A(A),
    /// The second kind.
    B(B),
}

/// The connection of a [`Mixed`] endpoint.
#[derive(Debug)]
// Connections live as long as they are established and are not moved on the hot path.
#[allow(clippy::large_enum_variant)]
pub enum MixedTarget<A, B> {
    /// A connection of the first kind.
    A(A),
    /// A connection of the second kind.
    B(B),
}

impl<A: Selectable, B: Selectable> Selectable for MixedTarget<A, B> {
    #[inline]
    fn poll_connect(&mut self) -> io::Result<bool> {
        match self {
            MixedTarget::A(t) => t.poll_connect(),
            MixedTarget::B(t) => t.poll_connect(),
        }
    }
    #[inline]
    fn raw_fd(&self) -> Option<RawFd> {
        match self {
            MixedTarget::A(t) => t.raw_fd(),
            MixedTarget::B(t) => t.raw_fd(),
        }
    }
    #[inline]
    fn read_pending(&self) -> bool {
        match self {
            MixedTarget::A(t) => t.read_pending(),
            MixedTarget::B(t) => t.read_pending(),
        }
    }
}

fn mismatch() -> Error {
    // Unreachable by construction: a slot's target always comes from its own endpoint.
    Error::Io(io::Error::other("endpoint and connection kinds differ"))
}

impl<C, A: Endpoint<C>, B: Endpoint<C>> Endpoint<C> for Mixed<A, B> {
    type Target = MixedTarget<A::Target, B::Target>;

    fn address(&self) -> ConnectAddr {
        match self {
            Mixed::A(e) => e.address(),
            Mixed::B(e) => e.address(),
        }
    }

    fn create_target(&mut self, addr: SocketAddr, ctx: &mut C) -> Result<Self::Target, Error> {
        Ok(match self {
            Mixed::A(e) => MixedTarget::A(e.create_target(addr, ctx)?),
            Mixed::B(e) => MixedTarget::B(e.create_target(addr, ctx)?),
        })
    }

    fn poll_connect(&mut self, target: &mut Self::Target) -> Result<bool, Error> {
        match (self, target) {
            (Mixed::A(e), MixedTarget::A(t)) => e.poll_connect(t),
            (Mixed::B(e), MixedTarget::B(t)) => e.poll_connect(t),
            _ => Err(mismatch()),
        }
    }

    #[inline]
    fn poll(&mut self, target: &mut Self::Target, ctx: &mut C) -> Result<Flow, Disconnect> {
        match (self, target) {
            (Mixed::A(e), MixedTarget::A(t)) => e.poll(t, ctx),
            (Mixed::B(e), MixedTarget::B(t)) => e.poll(t, ctx),
            _ => Err(mismatch().into()),
        }
    }

    fn on_event(&mut self, event: &Event<'_>, ctx: &mut C) {
        match self {
            Mixed::A(e) => e.on_event(event, ctx),
            Mixed::B(e) => e.on_event(event, ctx),
        }
    }

    fn on_timer(
        &mut self,
        target: &mut Self::Target,
        now: Instant,
        ctx: &mut C,
    ) -> Result<Flow, Disconnect> {
        match (self, target) {
            (Mixed::A(e), MixedTarget::A(t)) => e.on_timer(t, now, ctx),
            (Mixed::B(e), MixedTarget::B(t)) => e.on_timer(t, now, ctx),
            _ => Err(mismatch().into()),
        }
    }

    fn hold(&mut self, ctx: &mut C) -> Option<std::time::Duration> {
        match self {
            Mixed::A(e) => e.hold(ctx),
            Mixed::B(e) => e.hold(ctx),
        }
    }

    fn policy(&self) -> Policy {
        match self {
            Mixed::A(e) => e.policy(),
            Mixed::B(e) => e.policy(),
        }
    }
}
