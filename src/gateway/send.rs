//! The `.../send` direction: what strategies publish, written to the session on the endpoint's IO
//! thread, in arrival order. A message that cannot go out as it is (a kind the protocol has no
//! place for, text that is not UTF-8, a malformed FIX payload, longer than
//! `publish_max_message`) is refused, logged and counted in
//! [`GatewayCounters::refused`](super::GatewayCounters::refused); the session stays up. While the
//! session has more than [`SEND_BACKLOG`] bytes it could not write yet (the venue is not
//! reading), nothing is taken: the messages wait in iceoryx2's bounded queue, so the session's
//! memory stays bounded (by the threshold plus one drain, [`SEND_PER_DRAIN`](super::SEND_PER_DRAIN)
//! messages of at most `publish_max_message` bytes). A session error (the stream failed) ends the drain and is returned, as
//! any send error of the endpoint is.

use std::io;

use super::{order, Gateway, Kind, Refusal, SEND_BACKLOG};
use crate::stream::Stream;

/// Sends the strategies' messages over a WebSocket: kind 1 as a text frame, kind 2 as a binary
/// frame. Returns how many were taken from the service (none while the WebSocket has more than
/// [`SEND_BACKLOG`] bytes queued).
#[cfg(feature = "ws")]
pub fn to_websocket<S: Stream>(
    gw: &mut Gateway,
    ws: &mut crate::ws::Websocket<S>,
) -> io::Result<usize> {
    if ws.queued() > SEND_BACKLOG {
        return Ok(0);
    }
    gw.drain(|kind, bytes| {
        let sent = match kind {
            Some(Kind::Text) => match std::str::from_utf8(bytes) {
                Ok(text) => ws.send_text(text),
                Err(_) => return Ok(Err(Refusal::NotUtf8)),
            },
            Some(Kind::Binary) => ws.send_binary(bytes),
            kind => {
                return Ok(Err(Refusal::WrongKind {
                    kind,
                    takes: "text (1) or binary (2)",
                }))
            }
        };
        sent.map(Ok).map_err(io::Error::from)
    })
}

/// Sends the strategies' FIX messages (kind 3, business fields only, see [`order`]) on a logged-on
/// session; the session adds the header and trailer. Returns how many were taken (none while the
/// session has more than [`SEND_BACKLOG`] bytes not written).
#[cfg(feature = "fix")]
pub fn to_fix<S: Stream>(
    gw: &mut Gateway,
    out: &mut crate::fix::endpoint::FixOutbox<'_, S>,
    now: crate::fix::Now,
) -> io::Result<usize> {
    if out.session().pending().len() > SEND_BACKLOG {
        return Ok(0);
    }
    gw.drain(|kind, bytes| {
        if kind != Some(Kind::Fix) {
            return Ok(Err(Refusal::WrongKind {
                kind,
                takes: "FIX (3)",
            }));
        }
        match order::parse(bytes) {
            Ok(o) => out
                .send(now, o.msg_type, |e| {
                    e.raw_fields(o.fields);
                })
                .map(|_| Ok(())),
            Err(e) => Ok(Err(Refusal::Malformed(e))),
        }
    })
}
