//! The venue's `/ping` stream: an exchange's application-level heartbeat, both ways.
//!
//! - Every `every` milliseconds (query parameter, default 250) the venue sends
//!   `{"op":"ping","id":N}` and expects `{"op":"pong","id":N}` back within `deadline`
//!   milliseconds (default 100). A client that is late is closed with status 1008 (policy
//!   violation) and the reason `no pong within <deadline> ms`, as exchanges do.
//! - A client's `{"op":"ping","ts":T}` is answered at once with `{"op":"pong","ts":T}`, so the
//!   client can time its round trips with its own clock.
//!
//! `examples/ws_app_ping.rs` is the client side.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
use tungstenite::{Message, WebSocket};

use super::venue::VenueStats;
use super::venue_tls::Socket;

/// The digits after `"key":` in a flat JSON text, if any (at most 19 of them).
pub fn number_field(text: &str, key: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let pattern_len = key.len() + 3;
    let at = bytes.windows(pattern_len).position(|w| {
        w[0] == b'"' && &w[1..=key.len()] == key.as_bytes() && &w[key.len() + 1..] == b"\":"
    })? + pattern_len;
    let digits = bytes[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 19 {
        return None;
    }
    text[at..at + digits].parse().ok()
}

/// `true` when the flat JSON text carries `"op":"<op>"`.
pub fn has_op(text: &str, op: &str) -> bool {
    text.split("\"op\":").nth(1).is_some_and(|rest| {
        rest.trim_start()
            .strip_prefix('"')
            .is_some_and(|r| r.strip_prefix(op).is_some_and(|r| r.starts_with('"')))
    })
}

/// Serves one `/ping` connection until the client leaves, fails to answer in time, or the venue
/// stops.
pub(crate) fn ping<S: Socket>(
    ws: &mut WebSocket<S>,
    query: &str,
    stop: &AtomicBool,
    stats: &VenueStats,
) -> io::Result<()> {
    let every = Duration::from_millis(super::venue::query_param(query, "every").unwrap_or(250));
    let deadline =
        Duration::from_millis(super::venue::query_param(query, "deadline").unwrap_or(100));
    ws.get_ref()
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(2)))?;
    let mut next_ping = Instant::now() + every;
    let mut id: u64 = 0;
    let mut outstanding: Option<(u64, Instant)> = None;
    let write_err = |e: tungstenite::Error| io::Error::other(format!("ping write: {e}"));
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if let Some((_, sent)) = outstanding {
            if now.duration_since(sent) > deadline {
                let _ = ws.close(Some(CloseFrame {
                    code: CloseCode::Policy,
                    reason: format!("no pong within {} ms", deadline.as_millis()).into(),
                }));
                let _ = ws.flush();
                // Give the client's echo a moment, then end the transport.
                let until = Instant::now() + Duration::from_millis(200);
                while Instant::now() < until {
                    match ws.read() {
                        Ok(_) => {}
                        Err(tungstenite::Error::Io(e))
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => break,
                    }
                }
                ws.get_mut().close_transport();
                return Ok(());
            }
        } else if now >= next_ping {
            id += 1;
            ws.send(Message::text(format!(r#"{{"op":"ping","id":{id}}}"#)))
                .map_err(write_err)?;
            outstanding = Some((id, now));
            next_ping = now + every;
        }
        match ws.read() {
            Ok(Message::Text(text)) => {
                let text = text.as_str();
                if has_op(text, "pong") {
                    if let (Some((want, _)), Some(got)) = (outstanding, number_field(text, "id")) {
                        if want == got {
                            outstanding = None;
                        }
                    }
                } else if has_op(text, "ping") {
                    if let Some(ts) = number_field(text, "ts") {
                        ws.send(Message::text(format!(r#"{{"op":"pong","ts":{ts}}}"#)))
                            .map_err(write_err)?;
                        stats.echoed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Ok(Message::Close(_)) => {
                let _ = ws.flush();
                ws.get_mut().close_transport();
                return Ok(());
            }
            Ok(_) => {}
            Err(e) => {
                if super::venue::read_error(e, "ping")? {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_flat_json() {
        assert_eq!(number_field(r#"{"op":"ping","id":42}"#, "id"), Some(42));
        assert_eq!(
            number_field(r#"{"op":"ping","ts":1700000000123456789}"#, "ts"),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(number_field(r#"{"op":"ping","id":}"#, "id"), None);
        assert_eq!(number_field(r#"{"op":"ping","xid":4}"#, "id"), None);
        assert_eq!(number_field(r#"{"id":99999999999999999999}"#, "id"), None);
        assert!(has_op(r#"{"op":"pong","id":1}"#, "pong"));
        assert!(has_op(r#"{"op": "ping"}"#, "ping"));
        assert!(!has_op(r#"{"op":"pingx"}"#, "ping"));
        assert!(!has_op(r#"{"id":1}"#, "ping"));
    }
}
