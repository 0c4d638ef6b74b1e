//! Readiness: which connections may have work.
//!
//! A [`Selector`] watches the descriptors of registered connections and reports which ones became
//! ready. Two implementations ship here:
//!
//! - [`MioSelector`]: epoll through mio. Edge-triggered: after an event the owner must drain the
//!   connection until `WouldBlock` (see [`crate::stream`]). A poll with a zero timeout never sleeps.
//! - [`DirectSelector`]: busy-poll. No syscall at all; every registered connection is reported ready
//!   on every poll and its reads return `WouldBlock` when idle. Lowest latency on a dedicated core.
//!
//! - `UringSelector` (feature `io-uring`): completions of an io_uring; its own streams
//!   (`UringStream`) receive through a multishot receive into provided buffers and send through
//!   the ring (no syscall on the hot path with SQPOLL), other descriptors get a multishot poll.
//!
//! - `XdpSelector` (feature `xdp`): busy-poll over the userspace stack; each poll runs the stack
//!   once (its rings and TCP timers), then every connection is treated as ready.
//!
//! # Tokens
//!
//! A [`Token`] carries a slot index and a generation. The owner bumps the generation whenever a slot
//! gets a new connection, so a late event for a dropped connection can be told apart from one for
//! its replacement ([`Token::generation`]).

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

mod direct;
mod mio_selector;
#[cfg(feature = "io-uring")]
pub mod uring;
#[cfg(feature = "xdp")]
mod xdp;

pub use direct::DirectSelector;
pub use mio_selector::MioSelector;
#[cfg(feature = "io-uring")]
pub use uring::{UringSelector, UringStream};
#[cfg(feature = "xdp")]
pub use xdp::XdpSelector;

/// A registration handle: slot index plus generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(u64);

impl Token {
    /// A token for `slot` at `generation`.
    pub fn new(slot: u32, generation: u32) -> Token {
        Token((u64::from(generation) << 32) | u64::from(slot))
    }
    /// The slot index.
    pub fn slot(self) -> u32 {
        self.0 as u32
    }
    /// The generation of the connection in that slot when it was registered.
    pub fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub(crate) fn to_mio(self) -> mio::Token {
        mio::Token(self.0 as usize)
    }
    pub(crate) fn from_mio(t: mio::Token) -> Token {
        Token(t.0 as u64)
    }
}

/// What a selector needs to know about a connection.
///
/// Implemented for every [`crate::stream::Stream`] and for the protocol clients built on streams
/// (their connect phase includes the protocol handshake).
pub trait Selectable {
    /// Drives the connection (TCP connect, TLS and protocol handshakes). `Ok(true)` once established.
    fn poll_connect(&mut self) -> io::Result<bool>;
    /// The descriptor to watch, if any.
    fn raw_fd(&self) -> Option<RawFd>;
    /// `true` when data is already held above the descriptor and a read would find it.
    fn read_pending(&self) -> bool {
        false
    }
}

impl<S: crate::stream::Stream> Selectable for S {
    #[inline]
    fn poll_connect(&mut self) -> io::Result<bool> {
        crate::stream::Stream::poll_connect(self)
    }
    #[inline]
    fn raw_fd(&self) -> Option<RawFd> {
        crate::stream::Stream::raw_fd(self)
    }
    #[inline]
    fn read_pending(&self) -> bool {
        crate::stream::Stream::read_pending(self)
    }
}

/// Readiness notification for a set of registered connections.
pub trait Selector {
    /// Starts watching `fd` (if any) under `token`.
    fn register(&mut self, fd: Option<RawFd>, token: Token) -> io::Result<()>;
    /// Stops watching `fd`. Must be called before the descriptor is closed.
    fn deregister(&mut self, fd: Option<RawFd>) -> io::Result<()>;
    /// Collects the tokens that became ready into `ready` (cleared first), waiting at most
    /// `timeout` (`Duration::ZERO`: do not wait).
    fn poll(&mut self, timeout: Duration, ready: &mut Vec<Token>) -> io::Result<()>;
    /// `true` when every registered connection should be treated as ready on every poll (busy-poll
    /// selectors); `ready` is then left empty.
    fn polls_all(&self) -> bool;
}

/// A selector chosen at run time (from configuration), without a trait object.
#[derive(Debug)]
pub enum AnySelector {
    /// epoll through mio.
    Mio(MioSelector),
    /// Busy-poll.
    Direct(DirectSelector),
    /// io_uring completions.
    #[cfg(feature = "io-uring")]
    Uring(UringSelector),
    /// Busy-poll over the AF_XDP stack.
    #[cfg(feature = "xdp")]
    Xdp(XdpSelector),
}

impl Selector for AnySelector {
    fn register(&mut self, fd: Option<RawFd>, token: Token) -> io::Result<()> {
        match self {
            AnySelector::Mio(s) => s.register(fd, token),
            AnySelector::Direct(s) => s.register(fd, token),
            #[cfg(feature = "io-uring")]
            AnySelector::Uring(s) => s.register(fd, token),
            #[cfg(feature = "xdp")]
            AnySelector::Xdp(s) => s.register(fd, token),
        }
    }
    fn deregister(&mut self, fd: Option<RawFd>) -> io::Result<()> {
        match self {
            AnySelector::Mio(s) => s.deregister(fd),
            AnySelector::Direct(s) => s.deregister(fd),
            #[cfg(feature = "io-uring")]
            AnySelector::Uring(s) => s.deregister(fd),
            #[cfg(feature = "xdp")]
            AnySelector::Xdp(s) => s.deregister(fd),
        }
    }
    #[inline]
    fn poll(&mut self, timeout: Duration, ready: &mut Vec<Token>) -> io::Result<()> {
        match self {
            AnySelector::Mio(s) => s.poll(timeout, ready),
            AnySelector::Direct(s) => s.poll(timeout, ready),
            #[cfg(feature = "io-uring")]
            AnySelector::Uring(s) => s.poll(timeout, ready),
            #[cfg(feature = "xdp")]
            AnySelector::Xdp(s) => s.poll(timeout, ready),
        }
    }
    #[inline]
    fn polls_all(&self) -> bool {
        match self {
            AnySelector::Mio(_) => false,
            AnySelector::Direct(_) => true,
            #[cfg(feature = "io-uring")]
            AnySelector::Uring(_) => false,
            #[cfg(feature = "xdp")]
            AnySelector::Xdp(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_slot_and_generation() {
        let t = Token::new(7, 3);
        assert_eq!((t.slot(), t.generation()), (7, 3));
        assert_eq!(Token::from_mio(t.to_mio()), t);
        assert_ne!(Token::new(7, 4), t);
        let max = Token::new(u32::MAX, u32::MAX);
        assert_eq!((max.slot(), max.generation()), (u32::MAX, u32::MAX));
    }
}
