//! The `.../send` direction: what strategies publish, written to the session on the endpoint's IO
//! thread, in arrival order. A message that cannot go out as it is (a kind the protocol has no
//! place for, text that is not UTF-8, a malformed FIX payload) is refused with a log line and
//! counted in [`GatewayCounters::refused`](super::GatewayCounters::refused); the session stays
//! up. A session error (the stream failed) ends the drain and is returned, as any send error of
//! the endpoint is.

use std::io;

use super::{order, Gateway, Kind};
use crate::stream::Stream;

/// Sends the strategies' messages over a WebSocket: kind 1 as a text frame, kind 2 as a binary
/// frame. Returns how many were taken from the service.
#[cfg(feature = "ws")]
pub fn to_websocket<S: Stream>(
    gw: &mut Gateway,
    name: &str,
    ws: &mut crate::ws::Websocket<S>,
) -> io::Result<usize> {
    gw.drain(|kind, bytes| {
        let sent = match kind {
            Some(Kind::Text) => match std::str::from_utf8(bytes) {
                Ok(text) => ws.send_text(text),
                Err(_) => {
                    log::warn!("gateway {name}: refused a text message that is not UTF-8");
                    return Ok(false);
                }
            },
            Some(Kind::Binary) => ws.send_binary(bytes),
            other => {
                log::warn!(
                    "gateway {name}: refused a message of kind {other:?}: a WebSocket sends \
                     text (1) or binary (2)"
                );
                return Ok(false);
            }
        };
        sent.map(|()| true).map_err(io::Error::from)
    })
}

/// Sends the strategies' FIX messages (kind 3, business fields only, see [`order`]) on a logged-on
/// session; the session adds the header and trailer. Returns how many were taken.
#[cfg(feature = "fix")]
pub fn to_fix<S: Stream>(
    gw: &mut Gateway,
    name: &str,
    out: &mut crate::fix::endpoint::FixOutbox<'_, S>,
    now: crate::fix::Now,
) -> io::Result<usize> {
    gw.drain(|kind, bytes| {
        if kind != Some(Kind::Fix) {
            log::warn!("gateway {name}: refused a message of kind {kind:?}: FIX takes kind 3");
            return Ok(false);
        }
        match order::parse(bytes) {
            Ok(o) => out
                .send(now, o.msg_type, |e| {
                    e.raw_fields(o.fields);
                })
                .map(|_| true),
            Err(e) => {
                log::warn!("gateway {name}: refused a malformed FIX message: {e}");
                Ok(false)
            }
        }
    })
}
