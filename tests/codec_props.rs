//! Property tests of the three codecs (proptest, stable, part of `cargo test`): what the encoder
//! writes, the decoder reads back unchanged, whatever the read boundaries; and no input, however
//! malformed, makes a decoder panic.

#![cfg(all(feature = "ws", feature = "http", feature = "fix"))]

use std::io::{self, Read, Write};

use proptest::prelude::*;

use hotwire::fix::codec::{checksum, frame_len, Encoder, Message};
use hotwire::http::{parse_head, write_request, Body, HttpClient, HttpConfig, Limits, Method};
use hotwire::stream::Stream;
use hotwire::ws::{encode_frame, CloseFrame, Decoder, FrameHeader, OpCode, WsUrl};

fn config() -> ProptestConfig {
    // Enough cases to find boundary mistakes, few enough for a two-core CI machine.
    // Failures are reported with their minimal input, not written to a file in the tree.
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- WebSocket (RFC 6455 §5) ----------------------------------------------------------------

fn opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

/// A data or control frame the decoder must accept: (opcode, payload).
fn ws_frame() -> impl Strategy<Value = (OpCode, Vec<u8>)> {
    prop_oneof![
        any::<String>().prop_map(|s| (OpCode::Text, s.into_bytes())),
        proptest::collection::vec(any::<u8>(), 0..3000).prop_map(|b| (OpCode::Binary, b)),
        proptest::collection::vec(any::<u8>(), 0..=125).prop_map(|b| (OpCode::Ping, b)),
        proptest::collection::vec(any::<u8>(), 0..=125).prop_map(|b| (OpCode::Pong, b)),
    ]
}

/// Feeds `wire` to a decoder `chunk` bytes at a time, as reads would deliver it; returns the frames.
fn ws_decode_all(wire: &[u8], chunk: usize) -> Result<Vec<(OpCode, bool, Vec<u8>)>, String> {
    let mut decoder = Decoder::new(1 << 20, 1 << 22);
    let mut out = Vec::new();
    let (mut start, mut end) = (0, 0);
    while end < wire.len() {
        end = (end + chunk).min(wire.len());
        while let Some((frame, used)) = decoder
            .decode(&wire[start..end])
            .map_err(|e| e.to_string())?
        {
            out.push((frame.opcode(), frame.is_final(), frame.payload().to_vec()));
            start += used;
        }
    }
    if start != wire.len() {
        return Err(format!("{} bytes left undecoded", wire.len() - start));
    }
    Ok(out)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ws_header_emit_then_parse(
        fin in any::<bool>(),
        op in opcode(),
        mask in any::<Option<[u8; 4]>>(),
        len in prop_oneof![0u64..=125, 126u64..=65535, 65536u64..=(u64::MAX >> 1)],
    ) {
        let h = FrameHeader { fin, rsv: 0, opcode: op, mask, payload_len: len };
        let mut buf = [0u8; FrameHeader::MAX_LEN];
        let n = h.emit(&mut buf);
        prop_assert_eq!(n, h.encoded_len());
        prop_assert_eq!(FrameHeader::parse(&buf[..n]).unwrap(), Some((h, n)));
        // One byte short is "need more", never an error.
        prop_assert_eq!(FrameHeader::parse(&buf[..n - 1]).unwrap(), None);
    }

    #[test]
    fn ws_frames_encode_then_decode_at_any_read_boundary(
        frames in proptest::collection::vec(ws_frame(), 1..6),
        chunk in 1usize..200,
    ) {
        let mut wire = Vec::new();
        for (op, payload) in &frames {
            encode_frame(&mut wire, *op, true, None, payload);
        }
        let got = ws_decode_all(&wire, chunk).map_err(TestCaseError::fail)?;
        let want: Vec<_> = frames.iter().map(|(op, p)| (*op, true, p.clone())).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn ws_fragmented_text_arrives_as_its_fragments(
        text in any::<String>(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        chunk in 1usize..64,
    ) {
        // Cut on character boundaries: each fragment is valid UTF-8 on its own too.
        let bytes = text.as_bytes();
        let mut at: Vec<usize> = cuts
            .iter()
            .map(|i| i.index(bytes.len() + 1))
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        at.push(0);
        at.push(bytes.len());
        at.sort_unstable();
        at.dedup();
        let mut parts: Vec<&[u8]> = at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();
        if parts.is_empty() {
            // An empty message is one empty final frame.
            parts.push(&[]);
        }
        let mut wire = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let op = if i == 0 { OpCode::Text } else { OpCode::Continuation };
            encode_frame(&mut wire, op, i + 1 == parts.len(), None, part);
        }
        let got = ws_decode_all(&wire, chunk).map_err(TestCaseError::fail)?;
        let joined: Vec<u8> = got.iter().flat_map(|(_, _, p)| p.clone()).collect();
        prop_assert_eq!(joined, bytes.to_vec());
        prop_assert_eq!(got.len(), parts.len());
        prop_assert!(got.last().unwrap().1, "the last fragment carries FIN");
    }

    #[test]
    fn ws_decoder_never_panics_on_arbitrary_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        chunk in 1usize..64,
        small in any::<bool>(),
    ) {
        let mut decoder = if small { Decoder::new(200, 500) } else { Decoder::new(1 << 20, 1 << 22) };
        let (mut start, mut end) = (0, 0);
        'outer: while end < data.len() {
            end = (end + chunk).min(data.len());
            loop {
                match decoder.decode(&data[start..end]) {
                    Ok(Some((frame, used))) => {
                        prop_assert!(used > frame.payload().len());
                        if let Some(t) = frame.text() {
                            prop_assert!(std::str::from_utf8(t.as_bytes()).is_ok());
                        }
                        start += used;
                    }
                    Ok(None) => break,
                    // Every protocol error maps to a close code the client can send.
                    Err(e) => {
                        prop_assert!(e.close_code().is_some());
                        break 'outer;
                    }
                }
            }
        }
        let _ = FrameHeader::parse(&data);
        let _ = CloseFrame::parse(&data);
        if let Ok(s) = std::str::from_utf8(&data) {
            let _ = WsUrl::parse_with_limit(s, 4096);
        }
    }
}

// ---- HTTP/1.1 (RFC 9112) --------------------------------------------------------------------

/// A peer that hands out `input` at most `chunk` bytes per read and swallows writes.
struct Peer {
    input: Vec<u8>,
    at: usize,
    chunk: usize,
}

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.input.len() - self.at).min(buf.len()).min(self.chunk);
        if n == 0 && self.at == self.input.len() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Peer {}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9-]{0,15}".prop_filter("framing fields are the codec's own", |n| {
        let n = n.to_ascii_lowercase();
        !["host", "content-length", "transfer-encoding", "connection"].contains(&n.as_str())
    })
}

fn field_value() -> impl Strategy<Value = String> {
    // Visible ASCII and inner spaces; no leading or trailing whitespace (it is not part of a value).
    "[!-~]([ !-~]{0,30}[!-~])?"
}

fn http_client(input: Vec<u8>, chunk: usize) -> HttpClient<Peer> {
    let config = HttpConfig {
        limits: Limits::default(),
        read_buffer: 1024,
        max_in_flight: 4,
        correlation_header: None,
    };
    HttpClient::new(
        Peer {
            input,
            at: 0,
            chunk,
        },
        "props",
        config,
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn http_request_written_then_parsed(
        method in prop_oneof![Just(Method::Get), Just(Method::Post), Just(Method::Put), Just(Method::Delete)],
        target in "/[a-z0-9/_.?=&-]{0,40}",
        headers in proptest::collection::vec((token(), field_value()), 0..6),
        body in proptest::collection::vec(any::<u8>(), 1..500),
    ) {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let has_body = matches!(method, Method::Post | Method::Put);
        let req = hotwire::http::Request {
            method,
            target: &target,
            headers: &pairs,
            body: if has_body { Body::Bytes(&body) } else { Body::Empty },
        };
        let mut out = Vec::new();
        write_request(&mut out, "venue.example", &req, None).unwrap();
        let mut storage = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Request::new(&mut storage);
        let head_len = match parsed.parse(&out).unwrap() {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return Err(TestCaseError::fail("partial request")),
        };
        prop_assert_eq!(parsed.method, Some(method.as_str()));
        prop_assert_eq!(parsed.path, Some(target.as_str()));
        let got: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), String::from_utf8(h.value.to_vec()).unwrap()))
            .collect();
        prop_assert!(got.contains(&("Host".to_owned(), "venue.example".to_owned())));
        for (n, v) in &headers {
            prop_assert!(got.contains(&(n.clone(), v.clone())), "{n}: {v} missing from {got:?}");
        }
        let rest = &out[head_len..];
        if has_body {
            prop_assert_eq!(rest, &body[..]);
        } else {
            prop_assert!(rest.is_empty());
        }
    }

    #[test]
    fn http_responses_parsed_at_any_read_boundary(
        status in 200u16..600,
        headers in proptest::collection::vec((token(), field_value()), 0..6),
        body in proptest::collection::vec(any::<u8>(), 0..3000),
        chunked in any::<bool>(),
        chunk_sizes in proptest::collection::vec(1usize..700, 1..8),
        read_size in 1usize..100,
    ) {
        prop_assume!(status != 204 && status != 304);
        let mut wire = format!("HTTP/1.1 {status} Whatever\r\n").into_bytes();
        for (n, v) in &headers {
            wire.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        if chunked {
            wire.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            let mut rest = &body[..];
            let mut sizes = chunk_sizes.iter().cycle();
            while !rest.is_empty() {
                let n = (*sizes.next().unwrap()).min(rest.len());
                wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                wire.extend_from_slice(&rest[..n]);
                wire.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            wire.extend_from_slice(b"0\r\n\r\n");
        } else {
            wire.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            wire.extend_from_slice(&body);
        }
        let mut client = http_client(wire, read_size);
        client.send(&hotwire::http::Request::get("/")).unwrap();
        let mut seen = None;
        for _ in 0..10_000 {
            match client.poll_response() {
                Ok(Some(r)) => {
                    let hs: Vec<(String, Vec<u8>)> =
                        r.headers().map(|(n, v)| (n.to_owned(), v.to_vec())).collect();
                    seen = Some((r.status(), hs, r.body().to_vec()));
                    break;
                }
                Ok(None) => {}
                Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
            }
        }
        let (got_status, got_headers, got_body) =
            seen.ok_or_else(|| TestCaseError::fail("no response"))?;
        prop_assert_eq!(got_status, status);
        prop_assert_eq!(got_body, body);
        for (n, v) in &headers {
            prop_assert!(got_headers.contains(&(n.clone(), v.clone().into_bytes())), "{n} missing");
        }
    }

    #[test]
    fn http_client_never_panics_on_arbitrary_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        read_size in 1usize..64,
        prefix in any::<bool>(),
    ) {
        // Half the cases start like a response, so the parser gets past the status line.
        let mut input = if prefix { b"HTTP/1.1 200 OK\r\n".to_vec() } else { Vec::new() };
        input.extend_from_slice(&data);
        let mut fields = Vec::new();
        let _ = parse_head(&input, false, &Limits::default(), &mut fields);
        let mut client = http_client(input, read_size);
        for _ in 0..4 {
            client.send(&hotwire::http::Request::get("/")).unwrap();
        }
        for _ in 0..data.len() + 64 {
            match client.poll_response() {
                Ok(Some(r)) => prop_assert_eq!(r.body().len() as u64, r.body_len()),
                Ok(None) => {}
                Err(_) => break,
            }
            if client.in_flight() == 0 {
                break;
            }
        }
    }
}

// ---- FIX (tag=value, FIX 4.4 / FIXT.1.1 framing) ----------------------------------------------

fn fix_fields() -> impl Strategy<Value = Vec<(u32, Vec<u8>)>> {
    // Body tags only (the standard header's and trailer's are the encoder's), values without SOH.
    let tag = (11u32..100_000).prop_filter("not a header or trailer tag", |t| {
        ![
            34, 35, 43, 49, 50, 52, 56, 57, 89, 93, 97, 115, 116, 122, 128, 129, 142, 143, 144, 145,
        ]
        .contains(t)
    });
    let value = proptest::collection::vec(prop_oneof![2u8..=255, Just(b'=')], 1..40);
    proptest::collection::vec((tag, value), 0..20)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fix_message_encoded_then_parsed(
        fields in fix_fields(),
        msg_type in prop_oneof![Just(&b"D"[..]), Just(&b"8"[..]), Just(&b"AE"[..])],
        begin in prop_oneof![Just(&b"FIX.4.2"[..]), Just(&b"FIX.4.4"[..]), Just(&b"FIXT.1.1"[..])],
    ) {
        let mut enc = Encoder::new();
        enc.start_bare(begin, msg_type);
        for (tag, value) in &fields {
            enc.bytes(*tag, value);
        }
        let wire = enc.finish().unwrap().to_vec();
        prop_assert_eq!(frame_len(&wire, 1 << 20).unwrap(), Some(wire.len()));
        // Any prefix is "need more bytes", never an error.
        prop_assert_eq!(frame_len(&wire[..wire.len() - 1], 1 << 20).unwrap(), None);
        let msg = Message::parse_frame(&wire).unwrap();
        prop_assert_eq!(msg.as_bytes(), &wire[..]);
        prop_assert_eq!(msg.msg_type_bytes(), msg_type);
        let got: Vec<(u32, Vec<u8>)> = msg
            .fields()
            .filter(|f| f.tag != 35)
            .map(|f| (f.tag, f.value.to_vec()))
            .collect();
        prop_assert_eq!(got, fields);
        let n = wire.len();
        let sum = format!("{:03}", checksum(&wire[..n - 7]));
        prop_assert_eq!(&wire[n - 4..n - 1], sum.as_bytes());
    }

    #[test]
    fn fix_parser_never_panics_on_arbitrary_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..1024),
        prefix in any::<bool>(),
        small in any::<bool>(),
    ) {
        let mut input = if prefix { b"8=FIX.4.4\x019=".to_vec() } else { Vec::new() };
        input.extend_from_slice(&data);
        let max = if small { 256 } else { 64 * 1024 };
        let mut rest = &input[..];
        while let Ok(Some(n)) = frame_len(rest, max) {
            prop_assert!(n <= rest.len() && n <= max);
            if let Ok(msg) = Message::parse_frame(&rest[..n]) {
                for f in msg.fields() {
                    prop_assert!(!f.value.is_empty() && !f.value.contains(&1));
                    let _ = (f.as_u64(), f.as_i64(), f.as_decimal(), f.as_timestamp(), f.as_str());
                }
                let _ = (msg.seq_num(), msg.poss_dup());
            }
            rest = &rest[n..];
        }
        let _ = Message::parse_frame(&input);
    }
}
