//! One HTTP/1.1 connection, [`HttpClient`] (its documentation describes it).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::body::BodyDecoder;
use super::error::{HttpError, UsageError};
use super::request::Request;
use super::response::{parse_decimal, parse_head, FieldSpan, Head, Limits, Response};
use super::send::HttpSender;
use crate::buf::HotBuf;
use crate::select::Selectable;
use crate::stream::{would_block, Stream};

/// The most interim (1xx) responses accepted before a final response.
pub const MAX_INTERIM: u32 = 16;

/// Settings of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Limits on response heads and bodies.
    pub limits: Limits,
    /// Initial size of the read buffer (it grows up to what the limits allow).
    pub read_buffer: usize,
    /// Requests that may await their response at once (1 = no pipelining).
    pub max_in_flight: usize,
    /// A field name (e.g. `X-Request-Id`) carrying each request's sequence number; when set, every
    /// response must echo it. Off by default: only servers that echo it can use this.
    pub correlation_header: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            limits: Limits::default(),
            read_buffer: 64 * 1024,
            max_in_flight: 32,
            correlation_header: None,
        }
    }
}

/// A request awaiting its response.
#[derive(Debug, Clone, Copy)]
pub(super) struct Expect {
    pub(super) head: bool,
    pub(super) seq: u64,
}

/// Where the response at the front of the queue is. Offsets are relative to `HttpClient::start`.
#[derive(Debug)]
enum Phase {
    Head,
    Body {
        head: Head,
        decoder: BodyDecoder,
        /// End of the decoded body (in-place mode) or of the head (sink mode).
        body_end: usize,
        /// Next byte the decoder has not consumed.
        raw: usize,
    },
}

/// A response completed by the last poll, kept until the next one.
#[derive(Debug, Clone, Copy)]
struct Done {
    head: Head,
    body_end: usize,
    body_len: u64,
    /// Where the next response starts (relative to `start`).
    next: usize,
}

/// An HTTP/1.1 client connection over the stream `S`.
///
/// One HTTP/1.1 connection over any [`Stream`]: persistence (RFC 9112 §9.3), pipelining
/// (§9.3.2), connection close in both directions (§9.6), and response framing from
/// [`parse_head`] and [`BodyDecoder`].
///
/// # Buffers
///
/// A client owns one read buffer and one write buffer, sized at construction and grown only when a
/// response does not fit; a warm connection therefore sends and receives without allocating.
/// A completed response stays in the read buffer: [`Response`] borrows it, and the next call
/// that reads drops it. A chunked body is decoded in place (its data moved over the chunk
/// framing), so every body is one contiguous slice. Bodies can also be streamed to a caller's
/// writer ([`HttpClient::poll_response_to`]), for bodies larger than memory should hold.
///
/// # Pipelining
///
/// [`HttpClient::send`] may be called again before earlier responses arrive, up to
/// [`HttpConfig::max_in_flight`]. The client remembers, in a ring allocated once, which requests
/// await a response (and which were HEAD, whose response has no body); responses are matched to
/// them in order. With [`HttpConfig::correlation_header`] set, each request carries its sequence
/// number and a response must echo the right one ([`HttpError::Mismatched`]).
pub struct HttpClient<S> {
    stream: S,
    host: String,
    config: HttpConfig,
    out: Vec<u8>,
    out_pos: usize,
    /// The stream's own flush returned `WouldBlock`: bytes wait below us (TLS records).
    flush_pending: bool,
    buf: HotBuf,
    start: usize,
    filled: usize,
    fields: Vec<FieldSpan>,
    /// Interim (1xx) responses seen before the current final one.
    interim: u32,
    queue: VecDeque<Expect>,
    phase: Phase,
    done: Option<Done>,
    seq: u64,
    /// No further request may be sent (`Connection: close` sent or received).
    closing: bool,
    /// A response announced the close: requests still queued will not be answered.
    closed_by_peer: bool,
    eof: bool,
    failed: bool,
    responses: u64,
}

impl<S> std::fmt::Debug for HttpClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("host", &self.host)
            .field("in_flight", &self.queue.len())
            .field("closing", &self.closing)
            .field("failed", &self.failed)
            .field("responses", &self.responses)
            .finish_non_exhaustive()
    }
}

impl<S: Stream> HttpClient<S> {
    /// A client over `stream` (which may still be connecting) for requests to `host` — the `Host`
    /// field value, e.g. [`HttpUrl::host_header`](super::HttpUrl::host_header).
    pub fn new(stream: S, host: impl Into<String>, config: HttpConfig) -> HttpClient<S> {
        let max_in_flight = config.max_in_flight.max(1);
        let read_buffer = config.read_buffer.max(1024);
        HttpClient {
            stream,
            host: host.into(),
            out: Vec::with_capacity(4096),
            out_pos: 0,
            flush_pending: false,
            buf: HotBuf::new(read_buffer),
            start: 0,
            filled: 0,
            fields: Vec::with_capacity(config.limits.max_headers),
            interim: 0,
            queue: VecDeque::with_capacity(max_in_flight),
            phase: Phase::Head,
            done: None,
            seq: 0,
            closing: false,
            closed_by_peer: false,
            eof: false,
            failed: false,
            responses: 0,
            config: HttpConfig {
                max_in_flight,
                read_buffer,
                ..config
            },
        }
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably. Reading or writing it directly breaks the framing.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The settings.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Requests sent whose response has not completed.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Responses completed on this connection.
    pub fn responses(&self) -> u64 {
        self.responses
    }

    /// `true` when another request may be sent now (not closing, not failed, pipeline not full).
    pub fn can_send(&self) -> bool {
        !self.closing && !self.failed && self.queue.len() < self.config.max_in_flight
    }

    /// `true` when the connection can serve a new request later: not closing, not failed, the peer
    /// has not closed its side.
    pub fn is_reusable(&self) -> bool {
        !self.closing && !self.failed && !self.eof
    }

    /// `true` once any byte of the response awaited first has arrived (after which a failure must
    /// not be retried automatically).
    pub fn response_started(&self) -> bool {
        !self.queue.is_empty()
            && (self.filled > self.start || matches!(self.phase, Phase::Body { .. }))
    }

    /// `true` while request bytes wait to be written (the socket was full), here or in the
    /// stream's own buffer.
    pub fn wants_write(&self) -> bool {
        self.out_pos < self.out.len() || self.flush_pending
    }

    /// Queues `req` and writes as much of it as the stream takes now; the rest goes out with later
    /// calls ([`HttpClient::poll_response`], [`HttpClient::flush`]).
    ///
    /// Refused without side effects ([`HttpError::Usage`], [`HttpError::Request`]) when the
    /// pipeline is full, the connection is closing, or the request is malformed.
    pub fn send(&mut self, req: &Request<'_>) -> Result<(), HttpError> {
        self.sender().send(req)
    }

    /// Writes queued request bytes until done or the stream would block.
    pub fn flush(&mut self) -> Result<(), HttpError> {
        self.sender().flush()
    }

    /// The send half on its own (see [`HttpSender`]).
    pub fn sender(&mut self) -> HttpSender<'_, S> {
        HttpSender {
            stream: &mut self.stream,
            host: &self.host,
            config: &self.config,
            out: &mut self.out,
            out_pos: &mut self.out_pos,
            flush_pending: &mut self.flush_pending,
            queue: &mut self.queue,
            seq: &mut self.seq,
            closing: &mut self.closing,
            failed: &mut self.failed,
        }
    }

    /// As [`HttpClient::poll_response`], with the send half lent beside the response, so the next
    /// request (a follow-up, a new page) is queued while the response still borrows the receive
    /// buffer: no copy of the response.
    pub fn poll_response_split(
        &mut self,
    ) -> Result<Option<(Response<'_>, HttpSender<'_, S>)>, HttpError> {
        if !self.poll_inner(None::<&mut io::Sink>)? {
            return Ok(None);
        }
        let HttpClient {
            stream,
            host,
            config,
            out,
            out_pos,
            flush_pending,
            buf,
            start,
            fields,
            queue,
            done,
            seq,
            closing,
            failed,
            ..
        } = self;
        let Some(done) = *done else {
            return Ok(None);
        };
        let bytes = &buf[*start..*start + done.body_end];
        let response = Response::new(
            done.head,
            bytes,
            fields,
            &bytes[done.head.len..],
            done.body_len,
        );
        let sender = HttpSender {
            stream,
            host,
            config,
            out,
            out_pos,
            flush_pending,
            queue,
            seq,
            closing,
            failed,
        };
        Ok(Some((response, sender)))
    }

    fn fail<E: Into<HttpError>>(&mut self, e: E) -> HttpError {
        self.failed = true;
        e.into()
    }

    /// Reads and decodes without blocking. Returns the next complete response, or `Ok(None)`
    /// after the stream returned `WouldBlock` (so a caller that got `Ok(None)` has drained the
    /// stream, as edge-triggered readiness requires). Also writes pending request bytes.
    ///
    /// Bytes arriving while nothing is in flight fail the connection ([`HttpError::Unsolicited`]);
    /// so does the peer's close ([`HttpError::Closed`]).
    pub fn poll_response(&mut self) -> Result<Option<Response<'_>>, HttpError> {
        if self.poll_inner(None::<&mut io::Sink>)? {
            Ok(self.response())
        } else {
            Ok(None)
        }
    }

    /// As [`HttpClient::poll_response`], but body bytes are written to `sink` as they are decoded
    /// instead of being kept: the returned response has an empty [`Response::body`] and the body's
    /// length in [`Response::body_len`]. The limits still apply.
    pub fn poll_response_to<W: Write>(
        &mut self,
        sink: &mut W,
    ) -> Result<Option<Response<'_>>, HttpError> {
        if self.poll_inner(Some(sink))? {
            Ok(self.response())
        } else {
            Ok(None)
        }
    }

    /// The response completed by the last poll, until the next call that reads.
    pub fn response(&self) -> Option<Response<'_>> {
        let done = self.done?;
        let bytes = &self.buf[self.start..self.start + done.body_end];
        Some(Response::new(
            done.head,
            bytes,
            &self.fields,
            &bytes[done.head.len..],
            done.body_len,
        ))
    }

    /// Forgets the completed response, making its bytes reusable.
    fn release(&mut self) {
        if let Some(done) = self.done.take() {
            self.start += done.next;
        }
        if self.start == self.filled {
            self.start = 0;
            self.filled = 0;
        }
    }

    fn poll_inner<W: Write>(&mut self, mut sink: Option<&mut W>) -> Result<bool, HttpError> {
        self.release();
        if self.failed {
            return Err(HttpError::Usage(UsageError::Failed));
        }
        if self.wants_write() {
            self.flush()?;
        }
        loop {
            match self.advance(&mut sink) {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(e) => return Err(self.fail(e)),
            }
            if self.eof {
                let e = self.at_eof();
                return match e {
                    None => Ok(true),
                    Some(e) => Err(self.fail(e)),
                };
            }
            self.make_room();
            match self.stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.filled += n,
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// Decodes what the buffer holds. `Ok(true)` when a response completed.
    fn advance<W: Write>(&mut self, sink: &mut Option<&mut W>) -> Result<bool, HttpError> {
        loop {
            let Some(&expect) = self.queue.front() else {
                return if self.filled > self.start {
                    Err(HttpError::Unsolicited)
                } else {
                    Ok(false)
                };
            };
            if self.closed_by_peer {
                return Err(HttpError::Closed);
            }
            match &mut self.phase {
                Phase::Head => {
                    let input = &self.buf[self.start..self.filled];
                    let limits = &self.config.limits;
                    let Some(head) = parse_head(input, expect.head, limits, &mut self.fields)?
                    else {
                        return Ok(false);
                    };
                    if (100..200).contains(&head.status) {
                        // Interim responses precede the final one (RFC 9110 §15.2); a bounded
                        // number of them, so a peer cannot keep the head phase going forever.
                        self.interim += 1;
                        if self.interim > MAX_INTERIM {
                            return Err(HttpError::TooManyInterim { max: MAX_INTERIM });
                        }
                        self.start += head.len;
                        continue;
                    }
                    self.interim = 0;
                    if let Some(name) = &self.config.correlation_header {
                        let got = Response::new(head, input, &self.fields, &[], 0)
                            .header(name)
                            .and_then(parse_decimal);
                        if got != Some(expect.seq) {
                            return Err(HttpError::Mismatched {
                                expected: expect.seq,
                                got,
                            });
                        }
                    }
                    let decoder = BodyDecoder::new(
                        head.body,
                        self.config.limits.max_body,
                        self.config.limits.max_head,
                    );
                    self.phase = Phase::Body {
                        head,
                        decoder,
                        body_end: head.len,
                        raw: head.len,
                    };
                }
                Phase::Body {
                    head,
                    decoder,
                    body_end,
                    raw,
                } => {
                    let base = self.start;
                    let Some(step) = decoder.decode(&self.buf[base + *raw..self.filled])? else {
                        return Ok(false);
                    };
                    let (consumed, n, end) = (step.consumed, step.data.len(), step.end);
                    let data_at = base + *raw + consumed - n;
                    *raw += consumed;
                    if n > 0 {
                        match sink {
                            Some(w) => w.write_all(&self.buf[data_at..data_at + n])?,
                            None => {
                                let to = base + *body_end;
                                if to != data_at {
                                    self.buf.copy_within(data_at..data_at + n, to);
                                }
                                *body_end += n;
                            }
                        }
                    }
                    if end {
                        let head = *head;
                        let done = Done {
                            head,
                            body_end: *body_end,
                            body_len: decoder.received(),
                            next: *raw,
                        };
                        self.complete(done);
                        return Ok(true);
                    }
                }
            }
        }
    }

    fn complete(&mut self, done: Done) {
        self.queue.pop_front();
        self.phase = Phase::Head;
        self.done = Some(done);
        self.responses += 1;
        if done.head.close {
            self.closing = true;
            self.closed_by_peer = true;
        }
    }

    /// The stream ended and the buffer cannot complete a response: `None` when that ends a body
    /// delimited by the close, else the error.
    fn at_eof(&mut self) -> Option<HttpError> {
        if self.queue.is_empty() {
            return Some(HttpError::Closed);
        }
        match &mut self.phase {
            Phase::Head if self.filled == self.start => Some(HttpError::Closed),
            Phase::Head => Some(HttpError::ClosedInHead),
            Phase::Body {
                head,
                decoder,
                body_end,
                raw,
            } => match decoder.finish() {
                Ok(()) => {
                    let mut head = *head;
                    head.close = true;
                    let done = Done {
                        head,
                        body_end: *body_end,
                        body_len: decoder.received(),
                        next: *raw,
                    };
                    self.complete(done);
                    None
                }
                Err(e) => Some(e),
            },
        }
    }

    /// Makes space at the end of the read buffer: drops consumed chunk framing, moves the current
    /// response to the front, and grows the buffer only when the response itself needs more.
    fn make_room(&mut self) {
        if let Phase::Body { body_end, raw, .. } = &mut self.phase {
            if *raw > *body_end {
                let (from, to) = (self.start + *raw, self.start + *body_end);
                self.buf.copy_within(from..self.filled, to);
                self.filled -= from - to;
                *raw = *body_end;
            }
        }
        let free = self.buf.len() - self.filled;
        if self.start > 0 && free < self.buf.len() / 4 {
            self.buf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
        }
        if self.filled == self.buf.len() {
            // Limits are enforced by the parser and decoder; growth follows what they accepted.
            let new_len = (self.buf.len() * 2).max(self.config.read_buffer);
            self.buf.resize(new_len);
        }
    }

    /// Sends `req` and waits up to `timeout` for its response, holding the whole body in the
    /// buffer. For probes, tools and tests: blocks the thread (sleeping on the descriptor).
    ///
    /// Requests already in flight are answered first; their responses are discarded.
    pub fn request(
        &mut self,
        req: &Request<'_>,
        timeout: Duration,
    ) -> Result<Response<'_>, HttpError> {
        self.request_inner(req, None::<&mut io::Sink>, timeout)?;
        self.response().ok_or(HttpError::Usage(UsageError::Idle))
    }

    /// As [`HttpClient::request`], with the body written to `sink`.
    pub fn request_to<W: Write>(
        &mut self,
        req: &Request<'_>,
        sink: &mut W,
        timeout: Duration,
    ) -> Result<Response<'_>, HttpError> {
        self.request_inner(req, Some(sink), timeout)?;
        self.response().ok_or(HttpError::Usage(UsageError::Idle))
    }

    fn request_inner<W: Write>(
        &mut self,
        req: &Request<'_>,
        mut sink: Option<&mut W>,
        timeout: Duration,
    ) -> Result<(), HttpError> {
        let deadline = Instant::now() + timeout;
        self.send(req)?;
        let mine = self.seq;
        // Nothing can have arrived for a request just sent: sleep until the socket is readable
        // instead of issuing a read that would only say WouldBlock.
        if self.queue.len() == 1 && self.filled == self.start && !self.wants_write() {
            self.wait_until(deadline)?;
        }
        loop {
            // Earlier requests' responses are answered (and dropped) first.
            let ours = self.queue.front().is_some_and(|e| e.seq == mine);
            let sink = if ours { sink.as_deref_mut() } else { None };
            if self.poll_inner(sink)? {
                if ours {
                    return Ok(());
                }
                continue;
            }
            self.wait_until(deadline)?;
        }
    }

    /// Waits up to `timeout` for the next response to the requests already sent. For probes,
    /// tools and tests.
    pub fn wait_response(&mut self, timeout: Duration) -> Result<Response<'_>, HttpError> {
        if self.queue.is_empty() {
            return Err(HttpError::Usage(UsageError::Idle));
        }
        let deadline = Instant::now() + timeout;
        while !self.poll_inner(None::<&mut io::Sink>)? {
            self.wait_until(deadline)?;
        }
        self.response().ok_or(HttpError::Usage(UsageError::Idle))
    }

    /// Sleeps until the stream may have progress (readable, or writable while request bytes are
    /// pending) or `deadline`, which fails with [`HttpError::Timeout`].
    fn wait_until(&mut self, deadline: Instant) -> Result<(), HttpError> {
        let now = Instant::now();
        if now >= deadline {
            return Err(self.fail(HttpError::Timeout));
        }
        if !self.stream.poll_connect().map_err(|e| self.fail(e))? {
            crate::stream::wait_fd(self.stream.raw_fd(), Duration::from_millis(1));
            return Ok(());
        }
        if self.stream.read_pending() {
            return Ok(());
        }
        let max = (deadline - now).min(Duration::from_millis(100));
        match self.stream.raw_fd() {
            Some(fd) => poll_fd(fd, self.wants_write(), max),
            None => std::thread::sleep(max.min(Duration::from_micros(100))),
        }
        Ok(())
    }
}

/// Waits for `fd` to become readable (or writable when `write`), at most `max`.
fn poll_fd(fd: RawFd, write: bool, max: Duration) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN | if write { libc::POLLOUT } else { 0 },
        revents: 0,
    };
    let ms = max.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: `pfd` is a valid pollfd for the duration of the call and nfds is 1.
    unsafe {
        libc::poll(&mut pfd, 1, ms);
    }
}

/// The connect phase is the stream's; once it is ready, requests queued meanwhile are written.
impl<S: Stream> Selectable for HttpClient<S> {
    fn poll_connect(&mut self) -> io::Result<bool> {
        if !self.stream.poll_connect()? {
            return Ok(false);
        }
        if self.wants_write() {
            self.flush()?;
        }
        Ok(true)
    }

    fn raw_fd(&self) -> Option<RawFd> {
        self.stream.raw_fd()
    }

    fn read_pending(&self) -> bool {
        // Bytes left in the buffer after a poll returned `Ok(None)` are an incomplete response:
        // only the stream can add to them.
        self.stream.read_pending()
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
