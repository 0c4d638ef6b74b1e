//! The WebSocket client as a selector / service target: its connect phase is the stream's connect
//! plus the opening handshake.

use std::io;
use std::os::fd::RawFd;

use super::{Websocket, WsError};
use crate::select::Selectable;
use crate::stream::Stream;

impl<S: Stream> Selectable for Websocket<S> {
    fn poll_connect(&mut self) -> io::Result<bool> {
        self.poll_handshake().map_err(io::Error::from)
    }

    fn raw_fd(&self) -> Option<RawFd> {
        self.get_ref().raw_fd()
    }

    fn read_pending(&self) -> bool {
        // The client's own check: a complete frame may sit in its buffer (after the handshake, or
        // a batch dropped early) while the descriptor stays quiet.
        Websocket::read_pending(self)
    }
}

/// A [`WsError`] as an I/O error, keeping the typed error as its source (the kind of a stream
/// error is kept), so `?` works on sends inside functions returning `io::Result`.
impl From<WsError> for io::Error {
    fn from(e: WsError) -> io::Error {
        match e {
            WsError::Io(inner) => io::Error::new(inner.kind(), WsError::Io(inner)),
            other => io::Error::other(other),
        }
    }
}
