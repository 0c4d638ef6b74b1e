//! The XDP selector: busy-polls the userspace stack on its IO thread.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::{Selector, Token};
use crate::xdp::XdpStack;

/// Polls an [`XdpStack`] once per [`Selector::poll`] (receive, TCP timers, transmit, rings) and
/// reports every registered connection ready, as the busy-poll selector does: the connections'
/// reads return `WouldBlock` when their sockets hold nothing.
///
/// While it exists, the streams of its stack stop polling the stack themselves.
#[derive(Debug)]
pub struct XdpSelector {
    stack: XdpStack,
    registered: usize,
}

impl XdpSelector {
    /// A selector driving `stack`.
    pub fn new(stack: XdpStack) -> XdpSelector {
        stack.set_selector_driven(true);
        XdpSelector {
            stack,
            registered: 0,
        }
    }

    /// The stack it drives.
    pub fn stack(&self) -> &XdpStack {
        &self.stack
    }
}

impl Drop for XdpSelector {
    fn drop(&mut self) {
        self.stack.set_selector_driven(false);
    }
}

impl Selector for XdpSelector {
    fn register(&mut self, _fd: Option<RawFd>, _token: Token) -> io::Result<()> {
        self.registered += 1;
        Ok(())
    }
    fn deregister(&mut self, _fd: Option<RawFd>) -> io::Result<()> {
        self.registered = self.registered.saturating_sub(1);
        Ok(())
    }
    #[inline]
    fn poll(&mut self, timeout: Duration, ready: &mut Vec<Token>) -> io::Result<()> {
        ready.clear();
        self.stack.poll()?;
        // The stack needs polling even when idle (ARP, retransmits), but an idle service given a
        // timeout should not spin a core it was not given.
        if self.registered == 0 && !timeout.is_zero() {
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
        }
        Ok(())
    }
    #[inline]
    fn polls_all(&self) -> bool {
        true
    }
}
