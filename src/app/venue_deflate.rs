//! permessage-deflate (RFC 7692) on the venue's feed, server side.
//!
//! tungstenite has no deflate support, so the venue does it itself: [`accept_offer`] reads the
//! client's `Sec-WebSocket-Extensions` offers during the handshake and picks the first
//! permessage-deflate offer it can honour (§7.1); [`FeedDeflater`] compresses each feed message
//! with raw deflate (flate2), in the window agreed, resetting after every message when
//! `server_no_context_takeover` was agreed, and strips the `00 00 ff ff` tail of the sync flush
//! (§7.2.1). The feed sends the result as one frame with RSV1 set.
//!
//! This is written apart from the client's `ws::deflate`, so the venue checks the client against
//! an independent implementation.

use std::io;

use flate2::{Compress, Compression, FlushCompress};
use tungstenite::http::HeaderMap;

/// The extension token (§7).
const NAME: &str = "permessage-deflate";

/// The tail a sync flush ends with, which the sender removes (§7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What the venue agreed to for its side of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreed {
    /// The venue resets its compressor after each message (`server_no_context_takeover`).
    pub server_no_context_takeover: bool,
    /// The window the venue compresses with, 9..=15.
    pub window_bits: u8,
    /// `server_max_window_bits` was offered, so the answer carries it.
    answer_window: bool,
}

impl Agreed {
    /// The `Sec-WebSocket-Extensions` response header value accepting the offer.
    pub(crate) fn answer(&self) -> String {
        let mut s = String::from(NAME);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.answer_window {
            s.push_str("; server_max_window_bits=");
            s.push_str(&self.window_bits.to_string());
        }
        s
    }
}

/// Picks the first permessage-deflate offer in the request's `Sec-WebSocket-Extensions` headers
/// that the venue can honour, or `None` (no compression). An offer with a parameter RFC 7692 does
/// not define, a duplicate parameter, a bad value, or `server_max_window_bits=8` (zlib cannot
/// produce raw deflate with an 8-bit window) is declined, and the next one is tried.
pub(crate) fn accept_offer(headers: &HeaderMap) -> Option<Agreed> {
    headers
        .get_all("sec-websocket-extensions")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|element| {
            let mut parts = element.split(';');
            let name = parts.next()?.trim();
            if !name.eq_ignore_ascii_case(NAME) {
                return None;
            }
            offer(parts)
        })
}

/// Checks the parameters of one offer (§7.1.1, §7.1.2).
fn offer<'a>(params: impl Iterator<Item = &'a str>) -> Option<Agreed> {
    let (mut snct, mut cnct) = (false, false);
    let (mut sbits, mut cbits) = (None::<u8>, None::<Option<u8>>);
    for p in params {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p.trim(), None),
        };
        let is = |s: &str| name.eq_ignore_ascii_case(s);
        if is("server_no_context_takeover") || is("client_no_context_takeover") {
            let flag = if is("server_no_context_takeover") {
                &mut snct
            } else {
                &mut cnct
            };
            if value.is_some() || std::mem::replace(flag, true) {
                return None;
            }
        } else if is("server_max_window_bits") {
            if sbits.replace(window_bits(value?)?).is_some() {
                return None;
            }
        } else if is("client_max_window_bits") {
            // The value is optional here (§7.1.2.2); the feed never reads compressed data, so it
            // only has to be well formed.
            let v = match value {
                Some(v) => Some(window_bits(v)?),
                None => None,
            };
            if cbits.replace(v).is_some() {
                return None;
            }
        } else {
            return None;
        }
    }
    if sbits == Some(8) {
        return None;
    }
    Some(Agreed {
        server_no_context_takeover: snct,
        window_bits: sbits.unwrap_or(15),
        answer_window: sbits.is_some(),
    })
}

/// A window size, 8..=15, bare or quoted.
fn window_bits(v: &str) -> Option<u8> {
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v);
    if v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) || v.starts_with('0') {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

/// Compresses feed messages into one buffer it keeps between messages.
pub(crate) struct FeedDeflater {
    z: Compress,
    reset_each: bool,
    buf: Vec<u8>,
}

impl std::fmt::Debug for FeedDeflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedDeflater")
            .field("reset_each", &self.reset_each)
            .field("capacity", &self.buf.capacity())
            .finish()
    }
}

impl FeedDeflater {
    /// A compressor for what was agreed.
    pub(crate) fn new(agreed: &Agreed) -> FeedDeflater {
        FeedDeflater {
            z: Compress::new_with_window_bits(Compression::default(), false, agreed.window_bits),
            reset_each: agreed.server_no_context_takeover,
            buf: Vec::with_capacity(1024),
        }
    }

    /// Compresses one message: the payload of its RSV1 frame (§7.2.1).
    pub(crate) fn compress(&mut self, msg: &[u8]) -> io::Result<&[u8]> {
        self.buf.clear();
        let start = self.z.total_in();
        loop {
            if self.buf.capacity() - self.buf.len() < 64 {
                self.buf.reserve(msg.len() / 2 + 256);
            }
            let consumed = usize::try_from(self.z.total_in() - start).map_err(io::Error::other)?;
            self.z
                .compress_vec(&msg[consumed..], &mut self.buf, FlushCompress::Sync)
                .map_err(|e| io::Error::other(format!("deflate: {e}")))?;
            // Done once all input is in and the flush did not fill the space it was given.
            let all_in = self.z.total_in() - start == msg.len() as u64;
            if all_in && self.buf.len() < self.buf.capacity() {
                break;
            }
        }
        if !self.buf.ends_with(&TAIL) {
            return Err(io::Error::other("deflate: sync flush without its tail"));
        }
        self.buf.truncate(self.buf.len() - TAIL.len());
        if self.reset_each {
            self.z.reset();
        }
        Ok(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};
    use tungstenite::http::HeaderValue;

    fn offers(values: &[&str]) -> Option<Agreed> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                "Sec-WebSocket-Extensions",
                HeaderValue::from_str(v).unwrap(),
            );
        }
        accept_offer(&h)
    }

    #[test]
    fn accepts_and_answers_what_was_offered() {
        let a = offers(&["permessage-deflate; client_max_window_bits"]).unwrap();
        assert_eq!((a.window_bits, a.server_no_context_takeover), (15, false));
        assert_eq!(a.answer(), "permessage-deflate");
        let a = offers(&[
            "permessage-deflate; server_max_window_bits=10; server_no_context_takeover; \
             client_no_context_takeover; client_max_window_bits=9",
        ])
        .unwrap();
        assert_eq!((a.window_bits, a.server_no_context_takeover), (10, true));
        assert_eq!(
            a.answer(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
        );
        let a = offers(&["PerMessage-Deflate; Server_Max_Window_Bits=\"12\""]).unwrap();
        assert_eq!(a.window_bits, 12);
        assert_eq!(offers(&[]), None);
        assert_eq!(offers(&["x-webkit-deflate-frame"]), None);
    }

    #[test]
    fn declines_bad_offers_and_takes_the_next() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; mystery",
            "permessage-deflate;",
        ] {
            assert_eq!(offers(&[bad]), None, "{bad}");
        }
        let a = offers(&[
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9",
        ])
        .unwrap();
        assert_eq!(a.window_bits, 9);
        let a = offers(&["foo", "permessage-deflate; bar", "permessage-deflate"]).unwrap();
        assert_eq!(a.window_bits, 15);
    }

    fn inflate(z: &mut Decompress, data: &[u8]) -> Vec<u8> {
        let mut input = data.to_vec();
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(1 << 20);
        z.decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .unwrap();
        out
    }

    #[test]
    fn compresses_messages_a_raw_inflater_reads_back() {
        for (reset, bits) in [(true, 9), (false, 9), (true, 15), (false, 15)] {
            let agreed = Agreed {
                server_no_context_takeover: reset,
                window_bits: bits,
                answer_window: true,
            };
            let mut d = FeedDeflater::new(&agreed);
            let mut z = Decompress::new_with_window_bits(false, bits);
            for i in 0..50u32 {
                let msg = format!(
                    "{{\"seq\":{i},\"pad\":\"{}\"}}",
                    "x".repeat(100 + i as usize * 997)
                );
                let c = d.compress(msg.as_bytes()).unwrap().to_vec();
                assert!(c.len() < msg.len(), "not compressed");
                if reset {
                    z = Decompress::new_with_window_bits(false, bits);
                }
                assert_eq!(inflate(&mut z, &c), msg.as_bytes());
            }
        }
    }
}
