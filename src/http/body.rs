//! Decoding response bodies, sans-IO (RFC 9112 §6.2 Content-Length, §6.3 item 8 read-until-close,
//! §7.1 chunked transfer coding with §7.1.1 chunk extensions and §7.1.2 trailer fields).
//!
//! A [`BodyDecoder`] is fed whatever bytes follow the head and hands back [`Step`]s: how many input
//! bytes it consumed, the body data among them (a slice of the input: no copy), and whether the
//! body ended. It keeps no buffer, so it never allocates and never holds more than a few integers;
//! every length is checked against the limits before it is trusted.

use super::error::{ChunkError, HttpError};
use super::response::BodyKind;

/// The longest chunk-size line accepted, extensions included.
pub const MAX_CHUNK_LINE: usize = 4096;

/// The result of one [`BodyDecoder::decode`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step<'a> {
    /// Input bytes consumed (framing and data): drop them before the next call.
    pub consumed: usize,
    /// Body data: a sub-slice of the consumed input (possibly empty).
    pub data: &'a [u8],
    /// The body is complete; bytes after `consumed` belong to the next response.
    pub end: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length { remaining: u64 },
    ChunkSize,
    ChunkData { remaining: u64 },
    ChunkCrlf,
    Trailers { seen: usize },
    UntilClose,
    Done,
}

/// Incremental body decoder for one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyDecoder {
    state: State,
    received: u64,
    max_body: u64,
    max_trailers: usize,
}

impl BodyDecoder {
    /// A decoder for a body framed as `kind`, refusing more than `max_body` decoded bytes and
    /// trailer sections over `max_trailers` bytes.
    pub fn new(kind: BodyKind, max_body: u64, max_trailers: usize) -> BodyDecoder {
        let state = match kind {
            BodyKind::None | BodyKind::Length(0) => State::Done,
            BodyKind::Length(n) => State::Length { remaining: n },
            BodyKind::Chunked => State::ChunkSize,
            BodyKind::UntilClose => State::UntilClose,
        };
        BodyDecoder {
            state,
            received: 0,
            max_body,
            max_trailers,
        }
    }

    /// `true` once the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decoded body bytes so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// `true` when the body ends only with the connection.
    pub fn until_close(&self) -> bool {
        self.state == State::UntilClose
    }

    /// Decodes from `input` (the bytes not yet consumed). Returns `Ok(None)` when nothing can be
    /// consumed until more bytes arrive, else one [`Step`] with at most one piece of data; call
    /// again with the rest of the input until it returns `Ok(None)` or a step with `end`.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<Option<Step<'a>>, HttpError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.state {
                State::Done => {
                    return Ok(Some(Step {
                        consumed: pos,
                        data: &[],
                        end: true,
                    }))
                }
                State::Length { remaining } | State::ChunkData { remaining } => {
                    if rest.is_empty() {
                        return Ok(progress(pos));
                    }
                    let n = remaining.min(rest.len() as u64) as usize;
                    let left = remaining - n as u64;
                    self.add(n as u64)?;
                    self.state = match self.state {
                        State::Length { .. } if left == 0 => State::Done,
                        State::Length { .. } => State::Length { remaining: left },
                        _ if left == 0 => State::ChunkCrlf,
                        _ => State::ChunkData { remaining: left },
                    };
                    return Ok(Some(Step {
                        consumed: pos + n,
                        data: &rest[..n],
                        end: self.state == State::Done,
                    }));
                }
                State::UntilClose => {
                    if rest.is_empty() {
                        return Ok(progress(pos));
                    }
                    self.add(rest.len() as u64)?;
                    return Ok(Some(Step {
                        consumed: input.len(),
                        data: rest,
                        end: false,
                    }));
                }
                State::ChunkSize => {
                    let Some((used, size)) = chunk_size_line(rest)? else {
                        return Ok(progress(pos));
                    };
                    if self.received.saturating_add(size) > self.max_body {
                        return Err(HttpError::BodyTooLarge { max: self.max_body });
                    }
                    pos += used;
                    self.state = if size == 0 {
                        State::Trailers { seen: 0 }
                    } else {
                        State::ChunkData { remaining: size }
                    };
                }
                State::ChunkCrlf => {
                    match rest {
                        [b'\r', b'\n', ..] => pos += 2,
                        [] | [b'\r'] => return Ok(progress(pos)),
                        _ => return Err(ChunkError::MissingCrlf.into()),
                    }
                    self.state = State::ChunkSize;
                }
                State::Trailers { seen } => {
                    let Some(eol) = find_crlf(rest) else {
                        if seen + rest.len() > self.max_trailers {
                            return Err(ChunkError::TrailersTooLarge.into());
                        }
                        if rest.iter().any(|&b| b == b'\n' || b == 0) {
                            return Err(ChunkError::Byte.into());
                        }
                        return Ok(progress(pos));
                    };
                    let line = &rest[..eol];
                    if seen + eol + 2 > self.max_trailers {
                        return Err(ChunkError::TrailersTooLarge.into());
                    }
                    pos += eol + 2;
                    if line.is_empty() {
                        self.state = State::Done;
                    } else {
                        check_trailer(line)?;
                        self.state = State::Trailers {
                            seen: seen + eol + 2,
                        };
                    }
                }
            }
        }
    }

    /// Tells the decoder the connection ended. `Ok(())` when that completes the body (a body
    /// delimited by the close, or one already complete), else [`HttpError::IncompleteBody`].
    pub fn finish(&mut self) -> Result<(), HttpError> {
        match self.state {
            State::Done => Ok(()),
            State::UntilClose => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(HttpError::IncompleteBody {
                received: self.received,
            }),
        }
    }

    fn add(&mut self, n: u64) -> Result<(), HttpError> {
        self.received += n;
        if self.received > self.max_body {
            return Err(HttpError::BodyTooLarge { max: self.max_body });
        }
        Ok(())
    }
}

fn progress(pos: usize) -> Option<Step<'static>> {
    (pos > 0).then_some(Step {
        consumed: pos,
        data: &[],
        end: false,
    })
}

fn find_crlf(s: &[u8]) -> Option<usize> {
    s.windows(2).position(|w| w == b"\r\n")
}

/// Parses `chunk-size [ chunk-ext ] CRLF` at the start of `s`: `Ok(None)` while incomplete, else
/// the bytes used and the size.
fn chunk_size_line(s: &[u8]) -> Result<Option<(usize, u64)>, HttpError> {
    let mut size: u64 = 0;
    let mut digits = 0;
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let v = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => break,
        };
        if size >> 60 != 0 {
            return Err(ChunkError::SizeOverflow.into());
        }
        size = (size << 4) | u64::from(v);
        digits += 1;
        i += 1;
    }
    if i == s.len() {
        return if i > MAX_CHUNK_LINE {
            Err(ChunkError::LineTooLong.into())
        } else {
            Ok(None)
        };
    }
    if digits == 0 {
        return Err(ChunkError::Size.into());
    }
    // After the digits: optional whitespace (BWS), extensions starting with ';', then CRLF.
    // Extensions are skipped: none has a meaning this client acts on (§7.1.1).
    let mut in_ext = false;
    while let Some(&b) = s.get(i) {
        match b {
            b'\r' => {
                return match s.get(i + 1) {
                    None => Ok(None),
                    Some(b'\n') => Ok(Some((i + 2, size))),
                    Some(_) => Err(ChunkError::Byte.into()),
                }
            }
            b';' => in_ext = true,
            b' ' | b'\t' => {}
            b'\n' => return Err(ChunkError::Byte.into()),
            0..=0x1F | 0x7F => return Err(ChunkError::Byte.into()),
            _ if in_ext => {}
            _ => return Err(ChunkError::Size.into()),
        }
        i += 1;
        if i > MAX_CHUNK_LINE {
            return Err(ChunkError::LineTooLong.into());
        }
    }
    if i > MAX_CHUNK_LINE {
        return Err(ChunkError::LineTooLong.into());
    }
    Ok(None)
}

/// A trailer field line must be `token ":" value` with no control bytes but HTAB.
fn check_trailer(line: &[u8]) -> Result<(), HttpError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(ChunkError::Trailer)?;
    let name_ok = colon > 0 && line[..colon].iter().all(|&b| super::request::is_tchar(b));
    let value_ok = line[colon + 1..]
        .iter()
        .all(|&b| b == b'\t' || (b >= b' ' && b != 0x7F));
    if name_ok && value_ok {
        Ok(())
    } else {
        Err(ChunkError::Trailer.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in pieces of `step` bytes, collecting data, as a connection would.
    fn decode_all(kind: BodyKind, wire: &[u8], step: usize) -> Result<(Vec<u8>, usize), HttpError> {
        let mut d = BodyDecoder::new(kind, 1 << 20, 1024);
        let mut pending = Vec::new();
        let mut fed = 0;
        let mut out = Vec::new();
        loop {
            while let Some(s) = d.decode(&pending)? {
                out.extend_from_slice(s.data);
                let (consumed, end) = (s.consumed, s.end);
                pending.drain(..consumed);
                if end {
                    return Ok((out, pending.len() + (wire.len() - fed)));
                }
            }
            if fed == wire.len() {
                d.finish()?;
                return Ok((out, pending.len()));
            }
            let n = step.min(wire.len() - fed);
            pending.extend_from_slice(&wire[fed..fed + n]);
            fed += n;
        }
    }

    #[test]
    fn content_length_bodies_at_every_split() {
        let wire = b"hello worldNEXT";
        for step in 1..=wire.len() {
            let (body, left) = decode_all(BodyKind::Length(11), wire, step).unwrap();
            assert_eq!(
                (body.as_slice(), left),
                (&b"hello world"[..], 4),
                "step {step}"
            );
        }
    }

    #[test]
    fn chunked_with_extensions_and_trailers_at_every_split() {
        let wire = b"5;name=value;flag\r\nhello\r\n1A \t; x=\"q\"\r\n\
                     abcdefghijklmnopqrstuvwxyz\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\nNEXT";
        for step in 1..=wire.len() {
            let (body, left) = decode_all(BodyKind::Chunked, wire, step).unwrap();
            assert_eq!(body, b"helloabcdefghijklmnopqrstuvwxyz", "step {step}");
            assert_eq!(left, 4, "step {step}");
        }
    }

    #[test]
    fn until_close_ends_with_the_connection() {
        let (body, _) = decode_all(BodyKind::UntilClose, b"all of it", 3).unwrap();
        assert_eq!(body, b"all of it");
    }

    #[test]
    fn truncation_is_reported() {
        assert!(matches!(
            decode_all(BodyKind::Length(10), b"short", 2),
            Err(HttpError::IncompleteBody { received: 5 })
        ));
        assert!(matches!(
            decode_all(BodyKind::Chunked, b"5\r\nhel", 2),
            Err(HttpError::IncompleteBody { received: 3 })
        ));
        assert!(matches!(
            decode_all(BodyKind::Chunked, b"5\r\nhello\r\n0\r\n", 2),
            Err(HttpError::IncompleteBody { received: 5 })
        ));
    }

    #[test]
    fn bad_chunk_framing_is_typed() {
        let cases: [(&[u8], ChunkError); 9] = [
            (b"zz\r\n", ChunkError::Size),
            (b";ext\r\n", ChunkError::Size),
            (b"5 6\r\nhello", ChunkError::Size),
            (b"-1\r\n", ChunkError::Size),
            (b"10000000000000000\r\n", ChunkError::SizeOverflow),
            (b"5\r\nhelloXX", ChunkError::MissingCrlf),
            (b"5\nhello\r\n", ChunkError::Byte),
            (
                b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n",
                ChunkError::Trailer,
            ),
            (b"5;\x01\r\n", ChunkError::Byte),
        ];
        for (wire, want) in cases {
            for step in [1, wire.len()] {
                match decode_all(BodyKind::Chunked, wire, step) {
                    Err(HttpError::Chunk(got)) => assert_eq!(got, want, "{wire:?}"),
                    other => panic!("{wire:?}: {other:?}"),
                }
            }
        }
        let long = format!("5;{}\r\n", "e".repeat(MAX_CHUNK_LINE));
        assert!(matches!(
            decode_all(BodyKind::Chunked, long.as_bytes(), 100),
            Err(HttpError::Chunk(ChunkError::LineTooLong))
        ));
        let zeros = "0".repeat(MAX_CHUNK_LINE + 10);
        assert!(matches!(
            decode_all(BodyKind::Chunked, zeros.as_bytes(), 100),
            Err(HttpError::Chunk(ChunkError::LineTooLong))
        ));
        let trailers = format!("0\r\nX: {}\r\n\r\n", "t".repeat(2000));
        assert!(matches!(
            decode_all(BodyKind::Chunked, trailers.as_bytes(), 7),
            Err(HttpError::Chunk(ChunkError::TrailersTooLarge))
        ));
    }

    #[test]
    fn body_limit_applies_to_every_framing() {
        let mut d = BodyDecoder::new(BodyKind::Chunked, 10, 100);
        assert!(matches!(
            d.decode(b"b\r\n"),
            Err(HttpError::BodyTooLarge { max: 10 })
        ));
        let mut d = BodyDecoder::new(BodyKind::UntilClose, 10, 100);
        assert!(d.decode(b"0123456789").unwrap().is_some());
        assert!(matches!(
            d.decode(b"x"),
            Err(HttpError::BodyTooLarge { max: 10 })
        ));
        let mut d = BodyDecoder::new(BodyKind::Chunked, 10, 100);
        let s = d.decode(b"6\r\nabcdef\r\n").unwrap().unwrap();
        assert_eq!(s.data, b"abcdef");
        let s = d
            .decode(&b"6\r\nabcdef\r\n"[s.consumed..])
            .unwrap()
            .unwrap();
        assert_eq!((s.consumed, s.data), (2, &b""[..]));
        assert!(matches!(
            d.decode(b"5\r\n"),
            Err(HttpError::BodyTooLarge { max: 10 })
        ));
    }

    #[test]
    fn empty_bodies_end_at_once() {
        for kind in [BodyKind::None, BodyKind::Length(0)] {
            let mut d = BodyDecoder::new(kind, 10, 10);
            assert!(d.is_done());
            let s = d.decode(b"NEXT").unwrap().unwrap();
            assert_eq!((s.consumed, s.end), (0, true));
        }
        let mut d = BodyDecoder::new(BodyKind::Length(4), 10, 10);
        assert_eq!(d.decode(b"").unwrap(), None);
    }
}
