//! The busy-poll selector.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::{Selector, Token};

/// Reports every connection ready on every poll, with no syscall. See the [module](super) docs.
#[derive(Debug, Default)]
pub struct DirectSelector {
    registered: usize,
}

impl DirectSelector {
    /// A new busy-poll selector.
    pub fn new() -> DirectSelector {
        DirectSelector::default()
    }
}

impl Selector for DirectSelector {
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
        // Nothing to wait on: honour a requested wait only when nothing is registered, so an idle
        // service does not spin a core it was not given.
        if self.registered == 0 && !timeout.is_zero() {
            std::thread::sleep(timeout);
        }
        Ok(())
    }
    #[inline]
    fn polls_all(&self) -> bool {
        true
    }
}
