//! The epoll selector, through mio.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll};

use super::{Selector, Token};

/// epoll readiness through mio (edge-triggered). See the [module](super) docs.
#[derive(Debug)]
pub struct MioSelector {
    poll: Poll,
    events: Events,
}

impl MioSelector {
    /// A selector reporting up to 1024 events per poll.
    pub fn new() -> io::Result<MioSelector> {
        MioSelector::with_capacity(1024)
    }

    /// A selector reporting up to `events` events per poll (allocated once, here).
    pub fn with_capacity(events: usize) -> io::Result<MioSelector> {
        Ok(MioSelector {
            poll: Poll::new()?,
            events: Events::with_capacity(events.max(1)),
        })
    }
}

impl Selector for MioSelector {
    fn register(&mut self, fd: Option<RawFd>, token: Token) -> io::Result<()> {
        let fd = crate::stream::require_fd(fd)?;
        self.poll.registry().register(
            &mut SourceFd(&fd),
            token.to_mio(),
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    fn deregister(&mut self, fd: Option<RawFd>) -> io::Result<()> {
        let fd = crate::stream::require_fd(fd)?;
        self.poll.registry().deregister(&mut SourceFd(&fd))
    }

    fn poll(&mut self, timeout: Duration, ready: &mut Vec<Token>) -> io::Result<()> {
        ready.clear();
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        ready.extend(self.events.iter().map(|e| Token::from_mio(e.token())));
        Ok(())
    }

    #[inline]
    fn polls_all(&self) -> bool {
        false
    }
}
