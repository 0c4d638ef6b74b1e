//! Byte-vector and round-trip tests for the decoder.

use super::*;
use crate::ws::mask::KeyGen;

fn dec() -> Decoder {
    Decoder::new(1 << 20, 4 << 20)
}

fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_frame(&mut v, opcode, fin, None, payload);
    v
}

/// Decodes every frame in `bytes` as (opcode, fin, payload), or the first error.
fn decode_all(d: &mut Decoder, bytes: &[u8]) -> Result<Vec<(OpCode, bool, Vec<u8>)>, WsError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some((f, n)) = d.decode(&bytes[pos..])? {
        out.push((f.opcode(), f.is_final(), f.payload().to_vec()));
        pos += n;
    }
    assert_eq!(pos, bytes.len(), "trailing bytes left undecoded");
    Ok(out)
}

fn protocol(e: Result<impl std::fmt::Debug, WsError>) -> ProtocolError {
    match e {
        Err(WsError::Protocol(p)) => p,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn single_frames_from_rfc_6455_examples() {
    // §5.7: an unmasked "Hello".
    let mut d = dec();
    let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let (f, n) = d.decode(&bytes).unwrap().unwrap();
    assert_eq!(
        (f.opcode(), f.is_final(), f.text(), n),
        (OpCode::Text, true, Some("Hello"), 7)
    );
    // §5.7: a fragmented "Hel" + "lo".
    let frags = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    let got = decode_all(&mut d, &frags).unwrap();
    assert_eq!(
        got,
        vec![
            (OpCode::Text, false, b"Hel".to_vec()),
            (OpCode::Continuation, true, b"lo".to_vec())
        ]
    );
    // §5.7: an unmasked ping "Hello".
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let (f, _) = d.decode(&ping).unwrap().unwrap();
    assert_eq!((f.opcode(), f.payload()), (OpCode::Ping, &b"Hello"[..]));
    // §5.7: 256 bytes binary (16-bit length) and 64 KiB (64-bit length).
    let mut b = vec![0x82, 0x7E, 0x01, 0x00];
    b.extend(std::iter::repeat_n(7u8, 256));
    let (f, n) = d.decode(&b).unwrap().unwrap();
    assert_eq!((f.payload().len(), n), (256, 260));
    let mut b = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0];
    b.extend(std::iter::repeat_n(7u8, 65536));
    let (f, n) = d.decode(&b).unwrap().unwrap();
    assert_eq!((f.payload().len(), n), (65536, 65546));
}

#[test]
fn every_prefix_needs_more_bytes_and_the_frame_decodes_once_complete() {
    let bytes = frame(OpCode::Text, true, "héllo wörld €𝄞".as_bytes());
    let mut d = dec();
    for i in 0..bytes.len() {
        assert!(d.decode(&bytes[..i]).unwrap().is_none(), "prefix {i}");
    }
    let (f, n) = d.decode(&bytes).unwrap().unwrap();
    assert_eq!((f.text(), n), (Some("héllo wörld €𝄞"), bytes.len()));
}

#[test]
fn header_rules() {
    let mut d = dec();
    assert_eq!(
        protocol(d.decode(&[0xC1, 0x00])),
        ProtocolError::ReservedBits
    );
    assert_eq!(
        protocol(d.decode(&[0x91, 0x00])),
        ProtocolError::ReservedBits
    );
    assert_eq!(
        protocol(d.decode(&[0x83, 0x00])),
        ProtocolError::UnknownOpcode(3)
    );
    assert_eq!(
        protocol(d.decode(&[0x8B, 0x00])),
        ProtocolError::UnknownOpcode(0xB)
    );
    assert_eq!(
        protocol(d.decode(&[0x81, 0x81, 1, 2, 3, 4, 5])),
        ProtocolError::MaskedFrame
    );
    assert_eq!(
        protocol(d.decode(&[0x82, 127, 0xFF, 0, 0, 0, 0, 0, 0, 1])),
        ProtocolError::LengthOverflow
    );
    assert_eq!(
        protocol(d.decode(&[0x89, 126, 0, 126])),
        ProtocolError::ControlTooLong
    );
    assert_eq!(
        protocol(d.decode(&[0x09, 0x00])),
        ProtocolError::FragmentedControl
    );
    assert_eq!(
        protocol(d.decode(&[0x80, 0x00])),
        ProtocolError::UnexpectedContinuation
    );
    assert_eq!(
        protocol(d.decode(&[0x00, 0x00])),
        ProtocolError::UnexpectedContinuation
    );
}

#[test]
fn errors_are_found_from_the_header_alone() {
    // A 125+ byte ping fails before its payload arrives.
    let mut d = dec();
    assert_eq!(
        protocol(d.poll(&[0x89, 126, 0, 200])),
        ProtocolError::ControlTooLong
    );
    // An oversized frame fails with a capacity error from its header.
    let mut d = Decoder::new(1000, 5000);
    match d.poll(&[0x82, 126, 0x03, 0xE9]) {
        Err(WsError::Capacity(CapacityError::Frame {
            len: 1001,
            max: 1000,
        })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        WsError::from(CapacityError::Frame { len: 1, max: 0 }).close_code(),
        Some(1009)
    );
}

#[test]
fn message_limit_counts_fragments() {
    let mut d = Decoder::new(100, 250);
    let mut bytes = frame(OpCode::Binary, false, &[1; 100]);
    bytes.extend(frame(OpCode::Continuation, false, &[1; 100]));
    bytes.extend(frame(OpCode::Continuation, true, &[1; 100]));
    let mut pos = 0;
    for _ in 0..2 {
        let (_, n) = d.decode(&bytes[pos..]).unwrap().unwrap();
        pos += n;
    }
    match d.decode(&bytes[pos..]) {
        Err(WsError::Capacity(CapacityError::Message { len: 300, max: 250 })) => {}
        other => panic!("{other:?}"),
    }
    // Exactly at the limit is fine, and the count restarts with each message.
    let mut d = Decoder::new(100, 200);
    let mut bytes = frame(OpCode::Binary, false, &[1; 100]);
    bytes.extend(frame(OpCode::Continuation, true, &[1; 100]));
    bytes.extend(frame(OpCode::Binary, false, &[1; 100]));
    bytes.extend(frame(OpCode::Continuation, true, &[1; 100]));
    assert_eq!(decode_all(&mut d, &bytes).unwrap().len(), 4);
}

#[test]
fn continuation_rules() {
    let mut d = dec();
    let mut bytes = frame(OpCode::Text, false, b"a");
    bytes.extend(frame(OpCode::Ping, true, b"p"));
    bytes.extend(frame(OpCode::Continuation, false, b"b"));
    bytes.extend(frame(OpCode::Pong, true, b""));
    bytes.extend(frame(OpCode::Continuation, true, b"c"));
    let got = decode_all(&mut d, &bytes).unwrap();
    let ops: Vec<_> = got.iter().map(|g| g.0).collect();
    assert_eq!(
        ops,
        [
            OpCode::Text,
            OpCode::Ping,
            OpCode::Continuation,
            OpCode::Pong,
            OpCode::Continuation
        ]
    );
    assert!(!d.in_message());
    // A new data frame in the middle of a fragmented message.
    let mut d = dec();
    let mut bytes = frame(OpCode::Binary, false, b"a");
    bytes.extend(frame(OpCode::Text, true, b"b"));
    let (_, n) = d.decode(&bytes).unwrap().unwrap();
    assert_eq!(
        protocol(d.decode(&bytes[n..])),
        ProtocolError::ExpectedContinuation
    );
}

#[test]
fn close_frames() {
    let mut d = dec();
    let (f, _) = d.decode(&[0x88, 0x00]).unwrap().unwrap();
    assert_eq!(
        f.close(),
        Some(CloseFrame {
            code: None,
            reason: ""
        })
    );
    assert_eq!(
        protocol(d.decode(&[0x88, 0x01, 0x03])),
        ProtocolError::ShortClose
    );
    assert_eq!(
        protocol(d.decode(&[0x88, 0x02, 0x03, 0xEC])),
        ProtocolError::InvalidCloseCode(1004)
    );
    let bad_reason = frame(OpCode::Close, true, b"\x03\xe8\xff");
    assert!(matches!(d.decode(&bad_reason), Err(WsError::InvalidUtf8)));
    let ok = frame(OpCode::Close, true, b"\x0f\xa0going");
    let (f, _) = d.decode(&ok).unwrap().unwrap();
    assert_eq!(
        f.close(),
        Some(CloseFrame {
            code: Some(4000),
            reason: "going"
        })
    );
    assert_eq!(f.text(), None);
}

#[test]
fn utf8_split_across_fragments_at_every_point() {
    let text = "κόσμε 𝄞 €uro ünïcödé".as_bytes();
    for a in 0..=text.len() {
        for b in a..=text.len() {
            let mut bytes = frame(OpCode::Text, false, &text[..a]);
            bytes.extend(frame(OpCode::Continuation, false, &text[a..b]));
            bytes.extend(frame(OpCode::Continuation, true, &text[b..]));
            let got = decode_all(&mut dec(), &bytes).unwrap();
            let joined: Vec<u8> = got.iter().flat_map(|g| g.2.clone()).collect();
            assert_eq!(joined, text);
        }
    }
}

#[test]
fn invalid_utf8_fails_at_the_fragment_that_breaks_it() {
    // "κόσμε" then a UTF-16 surrogate (ED A0 80) in the second fragment, then more text.
    let mut d = dec();
    let first = frame(OpCode::Text, false, "κόσμε".as_bytes());
    let (_, _) = d.decode(&first).unwrap().unwrap();
    let second = frame(OpCode::Continuation, false, b"\xed\xa0\x80");
    assert!(matches!(d.decode(&second), Err(WsError::InvalidUtf8)));
    // A code point beyond U+10FFFF split over two fragments fails on its second byte.
    let mut d = dec();
    d.decode(&frame(OpCode::Text, false, b"\xf4"))
        .unwrap()
        .unwrap();
    assert!(matches!(
        d.decode(&frame(OpCode::Continuation, false, b"\x90")),
        Err(WsError::InvalidUtf8)
    ));
    // A message that ends inside a character.
    let mut d = dec();
    d.decode(&frame(OpCode::Text, false, b"ok\xe2\x82"))
        .unwrap()
        .unwrap();
    assert!(matches!(
        d.decode(&frame(OpCode::Continuation, true, b"")),
        Err(WsError::InvalidUtf8)
    ));
    // Unfragmented.
    assert!(matches!(
        dec().decode(&frame(OpCode::Text, true, b"\xc0\xaf")),
        Err(WsError::InvalidUtf8)
    ));
}

#[test]
fn invalid_utf8_fails_before_the_frame_is_complete() {
    // A 100-byte text frame whose first arrived bytes are already invalid.
    let mut payload = vec![b'a'; 100];
    payload[10] = 0xFF;
    let bytes = frame(OpCode::Text, true, &payload);
    let mut d = dec();
    assert!(d.poll(&bytes[..8]).unwrap().is_none());
    assert!(matches!(d.poll(&bytes[..20]), Err(WsError::InvalidUtf8)));
    // Same inside a continuation of a text message.
    let mut d = dec();
    let first = frame(OpCode::Text, false, b"ok");
    d.decode(&first).unwrap().unwrap();
    let cont = frame(OpCode::Continuation, true, &payload);
    assert!(matches!(d.poll(&cont[..30]), Err(WsError::InvalidUtf8)));
    // Valid text arriving in pieces (split inside characters) is accepted whole.
    let text = "€".repeat(50);
    let bytes = frame(OpCode::Text, true, text.as_bytes());
    let mut d = dec();
    for cut in (3..bytes.len()).step_by(7) {
        assert!(d.poll(&bytes[..cut]).unwrap().is_none());
    }
    let (f, _) = d.decode(&bytes).unwrap().unwrap();
    assert_eq!(f.text(), Some(text.as_str()));
}

#[test]
fn round_trips_random_frame_sequences_in_random_chunks() {
    let mut rng = KeyGen::from_seed(42);
    for round in 0..300 {
        // Build a random but valid sequence of messages, some fragmented, with control frames.
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for _ in 0..(rng.next_u64() % 12) {
            let fragments = 1 + (rng.next_u64() % 3) as usize;
            let text = rng.next_u64() % 2 == 0;
            for i in 0..fragments {
                let len = match rng.next_u64() % 4 {
                    0 => 0,
                    1 => (rng.next_u64() % 126) as usize,
                    2 => 126 + (rng.next_u64() % 300) as usize,
                    _ => 65536 + (rng.next_u64() % 10) as usize,
                };
                let payload: Vec<u8> = if text {
                    (0..len).map(|j| b'a' + ((j + round) % 26) as u8).collect()
                } else {
                    let mut p = vec![0u8; len];
                    rng.fill(&mut p);
                    p
                };
                let op = match (i, text) {
                    (0, true) => OpCode::Text,
                    (0, false) => OpCode::Binary,
                    _ => OpCode::Continuation,
                };
                let fin = i + 1 == fragments;
                encode_frame(&mut bytes, op, fin, None, &payload);
                expected.push((op, fin, payload));
                if rng.next_u64() % 4 == 0 {
                    let mut p = vec![0u8; (rng.next_u64() % 126) as usize];
                    rng.fill(&mut p);
                    encode_frame(&mut bytes, OpCode::Ping, true, None, &p);
                    expected.push((OpCode::Ping, true, p));
                }
            }
        }
        // Feed it in random chunk sizes the way a client buffer would see it.
        let mut d = dec();
        let mut got = Vec::new();
        let (mut start, mut end) = (0, 0);
        while start < bytes.len() {
            end = (end + 1 + (rng.next_u64() % 2000) as usize).min(bytes.len());
            while let Some((f, n)) = d.decode(&bytes[start..end]).unwrap() {
                got.push((f.opcode(), f.is_final(), f.payload().to_vec()));
                start += n;
            }
            if end == bytes.len() && start < end {
                panic!("round {round}: {} bytes left undecoded", end - start);
            }
        }
        assert_eq!(got, expected, "round {round}");
    }
}

/// The stable stand-in for the fuzz target: random bytes through the decoder, in random chunks, for
/// a fixed number of iterations. It must never panic, and an error must end the stream.
#[test]
fn random_bytes_never_panic() {
    let mut rng = KeyGen::from_seed(0xF022);
    let mut buf = vec![0u8; 4096];
    for _ in 0..20_000 {
        let len = (rng.next_u64() % 300) as usize;
        rng.fill(&mut buf[..len]);
        // Bias towards plausible headers so the deeper paths run.
        if len > 2 && rng.next_u64() % 2 == 0 {
            buf[0] &= 0x8F;
            buf[1] &= 0x7F;
        }
        let mut d = Decoder::new(1024, 4096);
        let (mut start, mut end) = (0, 0);
        while end < len {
            end = (end + 1 + (rng.next_u64() % 40) as usize).min(len);
            loop {
                match d.decode(&buf[start..end]) {
                    Ok(Some((f, n))) => {
                        assert!(n > 0 && f.payload().len() < n);
                        start += n;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        assert!(e.close_code().is_some());
                        end = len;
                        break;
                    }
                }
            }
        }
    }
}

#[test]
fn short_fast_path_forgets_progress_made_on_an_incomplete_frame() {
    // A short text frame first seen incomplete (streamed), then taken by the fast path, must not
    // leave its streaming progress behind for the next frame.
    let mut d = dec();
    let first = frame(OpCode::Text, true, b"abcdefgh");
    assert!(d.poll(&first[..6]).unwrap().is_none());
    assert!(d.want() > 0);
    let (f, n) = d.short_data(&first).unwrap().unwrap();
    assert_eq!((f.text(), n, d.want()), (Some("abcdefgh"), first.len(), 0));
    // The next frame is a long invalid text frame: it must be validated from its first byte.
    let mut bad = vec![0xFFu8];
    bad.extend_from_slice(&[b'a'; 200]);
    let second = frame(OpCode::Text, true, &bad);
    assert!(matches!(d.decode(&second), Err(WsError::InvalidUtf8)));
    // Invalid short text is refused by the fast path too.
    assert!(matches!(
        d.short_data(&frame(OpCode::Text, true, b"\xc3")),
        Some(Err(WsError::InvalidUtf8))
    ));
    // Everything else is left to the general path.
    assert!(d.short_data(&frame(OpCode::Ping, true, b"")).is_none());
    assert!(d.short_data(&frame(OpCode::Binary, false, b"x")).is_none());
    assert!(d.short_data(&first[..5]).is_none());
    // 16-bit lengths take the fast path within the limits, and not beyond them.
    let mid = frame(OpCode::Binary, true, &[7; 1000]);
    let (f, n) = d.short_data(&mid).unwrap().unwrap();
    assert_eq!((f.payload().len(), n), (1000, 1004));
    assert!(d.short_data(&mid[..1003]).is_none());
    let mut small = Decoder::new(999, 10_000);
    assert!(small.short_data(&mid).is_none());
    assert!(matches!(small.decode(&mid), Err(WsError::Capacity(_))));
    let mut small = Decoder::new(10_000, 999);
    assert!(small.short_data(&mid).is_none());
    assert!(matches!(small.decode(&mid), Err(WsError::Capacity(_))));
    assert!(d
        .short_data(&frame(OpCode::Binary, true, &[0; 70_000]))
        .is_none());
}

#[test]
fn short_path_waits_for_incomplete_frames_of_its_kind() {
    let mut d = dec();
    // Binary, and text up to TEXT_WAIT_MAX: the header is taken, nothing else is done.
    for (op, len) in [
        (OpCode::Binary, 1000),
        (OpCode::Binary, 60_000),
        (OpCode::Text, 1000),
        (OpCode::Text, super::TEXT_WAIT_MAX - 4),
    ] {
        let bytes = frame(op, true, &vec![0xFFu8; len]);
        let cut = &bytes[..bytes.len() - 1];
        assert!(matches!(d.short(cut), Short::Incomplete), "{op:?} {len}");
        assert_eq!(d.want(), bytes.len());
        // Complete, the text is validated whole.
        match d.short(&bytes) {
            Short::Frame(f, n) => assert_eq!(
                (op, f.payload().len(), n),
                (OpCode::Binary, len, bytes.len())
            ),
            Short::Invalid(e) => assert!(op == OpCode::Text && matches!(e, WsError::InvalidUtf8)),
            other => panic!("{op:?} {len}: {other:?}"),
        }
        assert_eq!(d.want(), 0);
    }
    // Longer text is left to poll, which validates what has arrived and fails early.
    let mut payload = vec![b'a'; super::TEXT_WAIT_MAX];
    payload[10] = 0xFF;
    let bytes = frame(OpCode::Text, true, &payload);
    assert!(matches!(d.short(&bytes[..100]), Short::Other));
    assert!(matches!(d.poll(&bytes[..100]), Err(WsError::InvalidUtf8)));
}

/// `text` (its ASCII check, its zero-padded block below 64 bytes, simdutf8 above) against the
/// standard library's validator, at every length up to well past 64 bytes, with a non-ASCII
/// sequence (valid, truncated, overlong, surrogate, out of range) at every position.
#[test]
fn text_check_matches_the_standard_library() {
    for len in 0..=300usize {
        let ascii: Vec<u8> = (0..len).map(|i| b' ' + (i % 90) as u8).collect();
        assert_eq!(
            super::text(&ascii).ok(),
            std::str::from_utf8(&ascii).ok(),
            "{len}"
        );
        for pos in 0..len {
            for insert in [
                &[0x80u8][..],
                &[0xff],
                &"é".as_bytes()[..1],
                "é".as_bytes(),
                "€".as_bytes(),
                &"€".as_bytes()[..2],
                "𝄞".as_bytes(),
                &"𝄞".as_bytes()[..3],
                &[0xC0, 0x80],
                &[0xE0, 0x80, 0x80],
                &[0xED, 0xA0, 0x80],
                &[0xF4, 0x90, 0x80, 0x80],
            ] {
                let mut b = ascii.clone();
                b.truncate(pos);
                b.extend_from_slice(insert);
                b.extend_from_slice(&ascii[pos..len.max(pos)]);
                b.truncate(len.max(pos + insert.len()));
                assert_eq!(
                    super::text(&b).ok(),
                    std::str::from_utf8(&b).ok(),
                    "{len} {pos} {insert:?}"
                );
            }
        }
    }
}
