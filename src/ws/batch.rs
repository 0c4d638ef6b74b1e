//! [`Batch`]: every complete frame of one read, borrowed from the receive buffer (see
//! [`Websocket::read_batch`](super::Websocket::read_batch)).

use std::fmt;

use super::codec::{Frame, FrameInfo, Short};
use super::error::{ProtocolError, WsError};
use super::send::{Core, WsSender};
use crate::stream::Stream;

/// The frames of one read: an iterator over borrowed frames (see [`Websocket::read_batch`](super::Websocket::read_batch)).
///
/// Yields each complete frame in the buffer, in order. A protocol error or the end of the stream
/// ends the batch after the frames that preceded it; the next call on the client returns the error
/// (and fails the connection then, sending the close frame). So the application acts on every valid
/// frame before the failure, as it would reading frame by frame.
pub struct Batch<'a, S: Stream> {
    pub(super) buf: &'a [u8],
    pub(super) pos: &'a mut usize,
    pub(super) core: &'a mut Core<S>,
    pub(super) done: bool,
    /// The free part of the buffer compressed messages are inflated into: each inflated message
    /// of the batch takes its front (RFC 7692, permessage-deflate).
    pub(super) z_tail: &'a mut [u8],
    /// Where a message that does not fit the rest goes; the batch ends after it.
    pub(super) z_spill: Option<&'a mut Vec<u8>>,
}

impl<S: Stream> Batch<'_, S> {
    /// The send half, to answer a frame of this batch while it is still borrowed: the frames
    /// borrow the receive buffer, the sender the send half.
    ///
    /// ```no_run
    /// # fn f<S: hotwire::stream::Stream>(ws: &mut hotwire::ws::Websocket<S>) -> Result<(), hotwire::ws::WsError> {
    /// let mut batch = ws.read_batch()?;
    /// while let Some(frame) = batch.next() {
    ///     if frame.text() == Some("ping") {
    ///         batch.sender().send_text("pong")?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn sender(&mut self) -> WsSender<'_, S> {
        WsSender { core: self.core }
    }
}

impl<'a, S: Stream> Batch<'a, S> {
    /// Inflates the compressed frame `info` at the front of `data` into the free part of the
    /// inflate buffer (or the spill buffer, which ends the batch after this frame).
    fn inflate(&mut self, info: FrameInfo, data: &'a [u8]) -> Result<Frame<'a>, WsError> {
        let payload = self.core.dec.accept_compressed(info, data);
        let Some(st) = self.core.deflate.as_mut() else {
            return Err(ProtocolError::ReservedBits.into());
        };
        let inflated =
            st.inflater
                .inflate(payload, info.fin(), &mut self.z_tail, &mut self.z_spill)?;
        self.done |= inflated.spilled;
        self.core.dec.inflated(info, inflated.data)
    }
}

impl<S: Stream> fmt::Debug for Batch<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("remaining", &(self.buf.len() - *self.pos))
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<'a, S: Stream> Iterator for Batch<'a, S> {
    type Item = Frame<'a>;

    #[inline]
    fn next(&mut self) -> Option<Frame<'a>> {
        if self.done {
            return None;
        }
        if self.core.close_received {
            // §5.5.1: nothing after a close frame is data.
            *self.pos = self.buf.len();
            self.done = true;
            return None;
        }
        let data = &self.buf[*self.pos..];
        match self.core.dec.short(data) {
            Short::Frame(frame, n) => {
                *self.pos += n;
                return Some(frame);
            }
            Short::Invalid(e) => {
                self.done = true;
                self.core.defer(e);
                return None;
            }
            Short::Incomplete => {
                self.done = true;
                return None;
            }
            Short::Other => {}
        }
        let step = match self.core.dec.poll(data) {
            Ok(Some(info)) if info.compressed() => self
                .inflate(info, data)
                .map(|f| Some((f, info.total_len()))),
            Ok(Some(info)) => self
                .core
                .dec
                .accept(info, data)
                .map(|f| Some((f, info.total_len()))),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match step {
            Ok(Some((frame, n))) => {
                *self.pos += n;
                // A failed pong or close echo has already failed the connection: end the batch
                // after this frame.
                // (A frame inflated into the spill buffer has ended the batch already.)
                let failed = self.core.on_frame(&frame).is_err();
                self.done |= failed;
                Some(frame)
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                self.core.defer(e);
                None
            }
        }
    }
}
