//! The send half of an [`HttpClient`](super::HttpClient): [`HttpSender`], lent beside a borrowed
//! response ([`HttpClient::poll_response_split`](super::HttpClient::poll_response_split)) so the
//! next request is queued without copying the response (RFC 9112 §9.3.2 pipelining).

use std::collections::VecDeque;
use std::fmt;
use std::io;

use super::client::{Expect, HttpConfig};
use super::error::{HttpError, UsageError};
use super::request::{write_request, Method, Request};
use crate::stream::{would_block, Stream};

/// The send half of an [`HttpClient`](super::HttpClient): request bytes are written into the
/// client's one send buffer (reused, so sending does not allocate once it has grown) and handed
/// to the stream at once.
pub struct HttpSender<'a, S> {
    pub(super) stream: &'a mut S,
    pub(super) host: &'a str,
    pub(super) config: &'a HttpConfig,
    pub(super) out: &'a mut Vec<u8>,
    pub(super) out_pos: &'a mut usize,
    pub(super) flush_pending: &'a mut bool,
    pub(super) queue: &'a mut VecDeque<Expect>,
    pub(super) seq: &'a mut u64,
    pub(super) closing: &'a mut bool,
    pub(super) failed: &'a mut bool,
}

impl<S> fmt::Debug for HttpSender<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSender")
            .field("in_flight", &self.queue.len())
            .field("queued", &(self.out.len() - *self.out_pos))
            .field("closing", &*self.closing)
            .finish_non_exhaustive()
    }
}

impl<S: Stream> HttpSender<'_, S> {
    /// `true` when another request may be sent now (not closing, not failed, pipeline not full).
    pub fn can_send(&self) -> bool {
        !*self.closing && !*self.failed && self.queue.len() < self.config.max_in_flight
    }

    /// Requests sent and not yet answered (the one whose response is borrowed included).
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Queues `req` and writes as much of it as the stream takes now; the rest goes out with later
    /// calls.
    ///
    /// Refused without side effects ([`HttpError::Usage`], [`HttpError::Request`]) when the
    /// pipeline is full, the connection is closing, or the request is malformed.
    pub fn send(&mut self, req: &Request<'_>) -> Result<(), HttpError> {
        if *self.failed {
            return Err(HttpError::Usage(UsageError::Failed));
        }
        if *self.closing {
            return Err(HttpError::Usage(UsageError::Closing));
        }
        if self.queue.len() >= self.config.max_in_flight {
            return Err(HttpError::Usage(UsageError::PipelineFull(self.queue.len())));
        }
        let seq = *self.seq + 1;
        let correlation = self.config.correlation_header.as_deref().map(|n| (n, seq));
        let written =
            write_request(self.out, self.host, req, correlation).map_err(HttpError::Request)?;
        *self.seq = seq;
        self.queue.push_back(Expect {
            head: req.method == Method::Head,
            seq,
        });
        *self.closing |= written.close;
        self.flush()
    }

    /// Writes queued request bytes until done or the stream would block.
    pub fn flush(&mut self) -> Result<(), HttpError> {
        if *self.failed {
            return Err(HttpError::Usage(UsageError::Failed));
        }
        while *self.out_pos < self.out.len() {
            match self.stream.write(&self.out[*self.out_pos..]) {
                Ok(0) => return Err(self.fail(io::Error::from(io::ErrorKind::WriteZero))),
                Ok(n) => *self.out_pos += n,
                Err(e) if would_block(&e) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
        self.out.clear();
        *self.out_pos = 0;
        match self.stream.flush() {
            Ok(()) => {
                *self.flush_pending = false;
                Ok(())
            }
            Err(e) if would_block(&e) => {
                *self.flush_pending = true;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, e: io::Error) -> HttpError {
        *self.failed = true;
        e.into()
    }
}
