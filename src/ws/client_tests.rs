//! Client tests over an in-memory stream: handshake, batches, control frames, closing, failures,
//! back-pressure.

use std::io::{self, Read, Write};

use super::*;
use crate::ws::codec::encode_frame;
use crate::ws::mask::{mask_in_place, KeyGen};
use crate::ws::{CapacityError, ProtocolError, UsageError, WsState as State};

/// A scripted peer: `input` is what the server sent (handed out at most `read_chunk` bytes per read,
/// `WouldBlock` when empty, EOF once `eof` is set); writes land in `output`, at most `write_chunk`
/// bytes per call, with a `WouldBlock` every other call when `flaky`.
#[derive(Debug, Default)]
struct Mem {
    input: Vec<u8>,
    pos: usize,
    read_chunk: usize,
    eof: bool,
    output: Vec<u8>,
    write_chunk: usize,
    flaky: bool,
    toggle: bool,
    writes: usize,
    blocked: bool,
}

impl Read for Mem {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.input.len() - self.pos;
        if avail == 0 {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = avail.min(buf.len()).min(if self.read_chunk == 0 {
            usize::MAX
        } else {
            self.read_chunk
        });
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Mem {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.blocked {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if self.flaky {
            self.toggle = !self.toggle;
            if self.toggle {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        let n = buf.len().min(if self.write_chunk == 0 {
            usize::MAX
        } else {
            self.write_chunk
        });
        self.output.extend_from_slice(&buf[..n]);
        self.writes += 1;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Mem {}

/// Frames the client sent (after the request head): (opcode, fin, unmasked payload).
fn sent_frames(out: &[u8]) -> Vec<(OpCode, bool, Vec<u8>)> {
    let head = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut frames = Vec::new();
    let mut pos = head;
    while pos < out.len() {
        let (h, n) = FrameHeader::parse(&out[pos..]).unwrap().unwrap();
        let key = h.mask.expect("client frames are masked");
        let mut p = out[pos + n..pos + n + h.payload_len as usize].to_vec();
        mask_in_place(&mut p, key);
        frames.push((h.opcode, h.fin, p));
        pos += n + h.payload_len as usize;
    }
    frames
}

fn response_for(request: &[u8]) -> Vec<u8> {
    let req = std::str::from_utf8(request).unwrap();
    let key = req
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let accept = handshake::accept_value(key.as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        std::str::from_utf8(&accept).unwrap()
    )
    .into_bytes()
}

/// A client over `mem`, opened: the response (plus `after`) is answered to the real request.
fn open_with(mem: Mem, config: WsConfig, after: &[u8]) -> Websocket<Mem> {
    let url = WsUrl::parse("ws://127.0.0.1:9001/path?q=1").unwrap();
    let mut ws = mem.into_websocket_with(url, config).unwrap();
    while !ws.get_ref().output.ends_with(b"\r\n\r\n") {
        assert!(!ws.poll_handshake().unwrap());
    }
    assert_eq!(ws.state(), State::Connecting);
    let mut resp = response_for(&ws.get_ref().output);
    resp.extend_from_slice(after);
    ws.get_mut().input.extend_from_slice(&resp);
    assert!(ws.poll_handshake().unwrap());
    assert_eq!(ws.state(), State::Open);
    ws
}

fn open(after: &[u8]) -> Websocket<Mem> {
    open_with(Mem::default(), WsConfig::default(), after)
}

fn server_frame(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_frame(&mut v, op, fin, None, payload);
    v
}

#[test]
fn request_has_host_with_port_and_resource() {
    let ws = open(b"");
    let out = String::from_utf8_lossy(&ws.get_ref().output).into_owned();
    assert!(
        out.starts_with("GET /path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"),
        "{out}"
    );
}

#[test]
fn bytes_after_the_response_head_are_frames() {
    let mut ws = open(&server_frame(OpCode::Text, true, b"early"));
    let f = ws.receive().unwrap().unwrap();
    assert_eq!(f.text(), Some("early"));
    assert!(ws.receive().unwrap().is_none());
}

#[test]
fn sends_before_open_wait_behind_the_request() {
    let url = WsUrl::parse("ws://h/").unwrap();
    let mut ws = Mem::default().into_websocket(url).unwrap();
    ws.send_text("queued").unwrap();
    assert!(!ws.poll_handshake().unwrap());
    let out = ws.get_ref().output.clone();
    assert!(
        out.ends_with(b"\r\n\r\n"),
        "a frame left before the handshake completed"
    );
    let resp = response_for(&out);
    ws.get_mut().input.extend_from_slice(&resp);
    assert!(ws.poll_handshake().unwrap());
    assert_eq!(
        sent_frames(&ws.get_ref().output),
        vec![(OpCode::Text, true, b"queued".to_vec())]
    );
}

#[test]
fn batch_hands_out_every_complete_frame_of_one_read() {
    let mut ws = open(b"");
    let mut input = Vec::new();
    for i in 0..10u8 {
        input.extend(server_frame(OpCode::Binary, true, &[i; 100]));
    }
    let partial = server_frame(OpCode::Binary, true, &[99; 300]);
    input.extend_from_slice(&partial[..50]);
    ws.get_mut().input.extend_from_slice(&input);
    let reads_before = ws.get_ref().pos;
    let got: Vec<u8> = ws.read_batch().unwrap().map(|f| f.payload()[0]).collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    assert!(ws.get_ref().pos > reads_before);
    // The partial frame completes with the next read.
    ws.get_mut().input.extend_from_slice(&partial[50..]);
    let got: Vec<usize> = ws
        .read_batch()
        .unwrap()
        .map(|f| f.payload().len())
        .collect();
    assert_eq!(got, [300]);
    assert_eq!(ws.read_batch().unwrap().count(), 0);
}

#[test]
fn frames_split_across_many_small_reads() {
    let mem = Mem {
        read_chunk: 7,
        ..Mem::default()
    };
    let config = WsConfig {
        read_buffer_size: 1024,
        ..WsConfig::default()
    };
    let mut ws = open_with(mem, config, b"");
    let mut input = Vec::new();
    let sizes = [0usize, 1, 125, 126, 1000, 5000, 70_000, 3];
    for &n in &sizes {
        input.extend(server_frame(OpCode::Binary, true, &vec![n as u8; n]));
    }
    ws.get_mut().input.extend_from_slice(&input);
    let mut got = Vec::new();
    for _ in 0..100_000 {
        match ws.receive().unwrap() {
            Some(f) => got.push(f.payload().len()),
            None if got.len() == sizes.len() => break,
            None => {}
        }
    }
    assert_eq!(got, sizes);
}

/// Batches over small reads: frames that straddle reads wait whole in the buffer (the 8 KiB
/// window wraps many times), text included, and every payload arrives intact.
#[test]
fn batches_over_small_reads_keep_every_frame_intact() {
    for chunk in [1500, 7] {
        let mem = Mem {
            read_chunk: chunk,
            ..Mem::default()
        };
        let mut ws = open_with(mem, WsConfig::default(), b"");
        let mut want = Vec::new();
        let mut input = Vec::new();
        for i in 0..300usize {
            let len = [32, 256, 1024, 3000, 4090, 5000, 70_000][i % 7];
            let text = i % 2 == 0;
            let payload: Vec<u8> = if text {
                "ab€de".bytes().cycle().take(len - len % 7).collect()
            } else {
                (0..len).map(|k| (k + i) as u8).collect()
            };
            let op = if text { OpCode::Text } else { OpCode::Binary };
            input.extend(server_frame(op, true, &payload));
            want.push((text, payload));
        }
        ws.get_mut().input.extend_from_slice(&input);
        let mut got = Vec::new();
        for _ in 0..1_000_000 {
            for f in ws.read_batch().unwrap() {
                assert_eq!(f.text().map(str::as_bytes), f.text().and(Some(f.payload())));
                got.push((f.text().is_some(), f.payload().to_vec()));
            }
            if got.len() == want.len() {
                break;
            }
        }
        assert!(got == want, "read chunk {chunk}");
    }
}

/// Invalid UTF-8 in a short text frame that straddles reads is found once the frame is whole; in
/// a long one, as soon as the bad bytes arrive. Both fail the connection with 1007.
#[test]
fn invalid_text_over_small_reads_fails_with_1007() {
    let mut bad = vec![b'a'; 1000];
    bad[100] = 0xFF;
    let mut long_bad = vec![b'a'; 20_000];
    long_bad[100] = 0xFF;
    for (payload, arrived) in [(bad, 1004), (long_bad, 3000)] {
        let mem = Mem {
            read_chunk: 1500,
            ..Mem::default()
        };
        let mut ws = open_with(mem, WsConfig::default(), b"");
        let mut input = server_frame(OpCode::Binary, true, &[1; 600]);
        input.extend(server_frame(OpCode::Text, true, &payload));
        let first = input.len() - payload.len() - 4;
        ws.get_mut()
            .input
            .extend_from_slice(&input[..first + arrived]);
        // Everything that will arrive has arrived: the error must come without more bytes.
        let mut frames = 0;
        let mut err = None;
        for _ in 0..100 {
            match ws.read_batch() {
                Ok(batch) => frames += batch.count(),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let err = err.expect("no error before the frame is complete");
        assert!(matches!(err, WsError::InvalidUtf8), "{err:?}");
        assert_eq!(frames, 1);
        assert_eq!(
            sent_frames(&ws.get_ref().output),
            vec![(OpCode::Close, true, b"\x03\xef".to_vec())]
        );
    }
}

#[test]
fn pings_are_answered_and_messages_reassembled() {
    let mut ws = open(b"");
    let mut input = server_frame(OpCode::Text, false, "κό".as_bytes());
    input.extend(server_frame(OpCode::Ping, true, b"p1"));
    input.extend(server_frame(
        OpCode::Continuation,
        false,
        &"σμε".as_bytes()[..3],
    ));
    input.extend(server_frame(
        OpCode::Continuation,
        true,
        &"σμε".as_bytes()[3..],
    ));
    input.extend(server_frame(OpCode::Binary, true, b"\x00\x01"));
    ws.get_mut().input.extend_from_slice(&input);
    assert_eq!(ws.receive_message().unwrap(), Some(Message::Ping(b"p1")));
    assert_eq!(ws.receive_message().unwrap(), Some(Message::Text("κόσμε")));
    assert_eq!(
        ws.receive_message().unwrap(),
        Some(Message::Binary(b"\x00\x01"))
    );
    assert_eq!(ws.receive_message().unwrap(), None);
    assert_eq!(
        sent_frames(&ws.get_ref().output),
        vec![(OpCode::Pong, true, b"p1".to_vec())]
    );
}

#[test]
fn server_close_is_echoed_then_eof_is_a_clean_close() {
    let mut ws = open(b"");
    let mut input = server_frame(OpCode::Close, true, b"\x03\xe9bye");
    input.extend(server_frame(OpCode::Text, true, b"ignored after close"));
    ws.get_mut().input.extend_from_slice(&input);
    let m = ws.receive_message().unwrap().unwrap();
    assert_eq!(
        m,
        Message::Close(CloseFrame {
            code: Some(1001),
            reason: "bye"
        })
    );
    assert_eq!(ws.state(), State::Closing);
    assert_eq!(
        sent_frames(&ws.get_ref().output),
        vec![(OpCode::Close, true, b"\x03\xe9".to_vec())]
    );
    assert!(ws.receive().unwrap().is_none());
    assert!(matches!(
        ws.send_text("x"),
        Err(WsError::Usage(UsageError::CloseSent))
    ));
    ws.get_mut().eof = true;
    assert!(matches!(ws.receive(), Err(WsError::Closed)));
    assert_eq!(ws.state(), State::Closed);
    assert!(matches!(ws.receive(), Err(WsError::Closed)));
    assert!(matches!(ws.read_batch(), Err(WsError::Closed)));
}

#[test]
fn empty_close_gets_an_empty_echo() {
    let mut ws = open(&server_frame(OpCode::Close, true, b""));
    let f = ws.receive().unwrap().unwrap();
    assert_eq!(
        f.close(),
        Some(CloseFrame {
            code: None,
            reason: ""
        })
    );
    assert_eq!(
        sent_frames(&ws.get_ref().output),
        vec![(OpCode::Close, true, vec![])]
    );
}

#[test]
fn client_initiated_close() {
    let mut ws = open(b"");
    ws.close(1000, "done").unwrap();
    ws.close(1000, "again is a no-op").unwrap();
    assert!(matches!(
        ws.close(1005, ""),
        Err(WsError::Usage(UsageError::CloseCode(1005)))
    ));
    assert_eq!(
        sent_frames(&ws.get_ref().output),
        vec![(OpCode::Close, true, b"\x03\xe8done".to_vec())]
    );
    // Data still arrives until the server's close.
    let mut input = server_frame(OpCode::Text, true, b"late");
    input.extend(server_frame(OpCode::Close, true, b"\x03\xe8"));
    ws.get_mut().input.extend_from_slice(&input);
    ws.get_mut().eof = true;
    let mut batch = ws.read_batch().unwrap();
    assert_eq!(batch.next().unwrap().text(), Some("late"));
    assert_eq!(batch.next().unwrap().opcode(), OpCode::Close);
    assert!(batch.next().is_none());

    // The end of the stream ends the next batch; the call after it reports the clean close.
    assert_eq!(ws.read_batch().unwrap().count(), 0);
    assert_eq!(ws.state(), State::Closed);
    assert!(matches!(ws.read_batch(), Err(WsError::Closed)));
    assert!(matches!(ws.read_batch(), Err(WsError::Closed)));
    // Only one close frame was sent.
    assert_eq!(sent_frames(&ws.get_ref().output).len(), 1);
}

#[test]
fn protocol_error_sends_1002_and_is_terminal() {
    let mut input = server_frame(OpCode::Text, true, b"ok");
    input.extend_from_slice(&[0x83, 0x00]); // reserved opcode
    input.extend(server_frame(OpCode::Text, true, b"never"));
    let mut ws = open(&input);
    let mut batch = ws.read_batch().unwrap();
    assert_eq!(batch.next().unwrap().text(), Some("ok"));
    // The bad frame ends the batch; nothing is sent until the application had the frames before it.
    assert!(batch.next().is_none());
    assert!(batch.next().is_none());

    // Replies to the frames before the error still go out, before the close that the next
    // receive sends.
    ws.send_text("reply to ok").unwrap();
    assert!(matches!(
        ws.receive(),
        Err(WsError::Protocol(ProtocolError::UnknownOpcode(3)))
    ));
    assert_eq!(
        sent_frames(&ws.get_ref().output),
        vec![
            (OpCode::Text, true, b"reply to ok".to_vec()),
            (OpCode::Close, true, b"\x03\xea".to_vec())
        ]
    );
    for _ in 0..3 {
        assert!(matches!(
            ws.receive(),
            Err(WsError::Protocol(ProtocolError::UnknownOpcode(3)))
        ));
        assert!(matches!(ws.send_text("x"), Err(WsError::Protocol(_))));
    }
    assert_eq!(ws.state(), State::Failed);
}

#[test]
fn utf8_and_size_errors_map_to_1007_and_1009() {
    let mut ws = open(&server_frame(OpCode::Text, true, b"\xff"));
    assert!(matches!(ws.receive(), Err(WsError::InvalidUtf8)));
    assert_eq!(
        sent_frames(&ws.get_ref().output),
        vec![(OpCode::Close, true, b"\x03\xef".to_vec())]
    );

    let config = WsConfig {
        max_frame_size: 100,
        ..WsConfig::default()
    };
    let mut ws = open_with(
        Mem::default(),
        config,
        &server_frame(OpCode::Binary, true, &[0; 101]),
    );
    assert!(matches!(
        ws.receive(),
        Err(WsError::Capacity(CapacityError::Frame { .. }))
    ));
    assert_eq!(
        sent_frames(&ws.get_ref().output),
        vec![(OpCode::Close, true, b"\x03\xf1".to_vec())]
    );
}

#[test]
fn eof_without_close_is_an_error_once_per_iterator() {
    let mut ws = open(&server_frame(OpCode::Binary, true, b"last"));
    ws.get_mut().eof = true;
    let mut batch = ws.read_batch().unwrap();
    assert_eq!(batch.next().unwrap().payload(), b"last");
    assert!(batch.next().is_none());
    assert!(batch.next().is_none());

    assert!(matches!(ws.read_batch(), Err(WsError::Eof)));
    assert!(matches!(ws.receive(), Err(WsError::Eof)));
}

#[test]
fn handshake_failures() {
    let url = WsUrl::parse("ws://h:81/").unwrap();
    let mut ws = Mem::default().into_websocket(url.clone()).unwrap();
    ws.poll_handshake().unwrap();
    ws.get_mut()
        .input
        .extend_from_slice(b"HTTP/1.1 403 Forbidden\r\n\r\n");
    assert!(matches!(
        ws.poll_handshake(),
        Err(WsError::Handshake(HandshakeError::Status(403)))
    ));
    assert!(matches!(
        ws.receive(),
        Err(WsError::Handshake(HandshakeError::Status(403)))
    ));

    let mut ws = Mem {
        eof: true,
        ..Mem::default()
    }
    .into_websocket(url.clone())
    .unwrap();
    assert!(matches!(
        ws.poll_handshake(),
        Err(WsError::Handshake(HandshakeError::Eof))
    ));

    let config = WsConfig {
        max_response_head: 2000,
        ..WsConfig::default()
    };
    let mut ws = Mem::default().into_websocket_with(url, config).unwrap();
    ws.get_mut().input.extend_from_slice(b"HTTP/1.1 101 OK\r\n");
    ws.get_mut()
        .input
        .extend_from_slice(format!("X-A: {}\r\n", "b".repeat(3000)).as_bytes());
    assert!(matches!(
        ws.poll_handshake(),
        Err(WsError::Handshake(HandshakeError::TooLarge(2000)))
    ));
}

#[test]
fn back_pressure_loses_no_bytes() {
    let mem = Mem {
        write_chunk: 5,
        flaky: true,
        ..Mem::default()
    };
    let mut ws = open_with(mem, WsConfig::default(), b"");
    let mut expected = Vec::new();
    for i in 0..200usize {
        let payload = vec![i as u8; i * 13 % 700];
        ws.send_binary(&payload).unwrap();
        expected.push((OpCode::Binary, true, payload));
    }
    let mut rounds = 0;
    while !ws.flush().unwrap() {
        rounds += 1;
        assert!(rounds < 1_000_000);
    }
    assert_eq!(ws.queued(), 0);
    assert_eq!(sent_frames(&ws.get_ref().output), expected);
}

#[test]
fn fragmentation_and_zero_key_mode() {
    let config = WsConfig {
        fragment_size: Some(4),
        mask: MaskMode::Zero,
        ..WsConfig::default()
    };
    let mut ws = open_with(Mem::default(), config, b"");
    ws.send_text("hello world").unwrap();
    let out = ws.get_ref().output.clone();
    let frames = sent_frames(&out);
    assert_eq!(
        frames,
        vec![
            (OpCode::Text, false, b"hell".to_vec()),
            (OpCode::Continuation, false, b"o wo".to_vec()),
            (OpCode::Continuation, true, b"rld".to_vec()),
        ]
    );
    // Zero key: mask bit set, key 00000000, payload on the wire as is.
    let head = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&out[head..head + 10], b"\x01\x84\0\0\0\0hell");
}

#[test]
fn random_keys_differ_per_frame_and_each_send_is_one_write() {
    let mut ws = open(b"");
    let head = ws.get_ref().output.len();
    let writes = ws.get_ref().writes;
    for _ in 0..8 {
        ws.send_binary(&[0u8; 64]).unwrap();
    }
    assert_eq!(ws.get_ref().writes - writes, 8);
    let out = &ws.get_ref().output[head..];
    let keys: std::collections::HashSet<&[u8]> = out.chunks(70).map(|f| &f[2..6]).collect();
    assert_eq!(keys.len(), 8);
}

#[test]
fn manual_fragmentation_order_is_enforced() {
    let mut ws = open(b"");
    assert!(matches!(
        ws.send_frame(OpCode::Continuation, true, b"x"),
        Err(WsError::Usage(UsageError::Fragmentation))
    ));
    ws.send_frame(OpCode::Binary, false, b"a").unwrap();
    ws.send_ping(b"between fragments is fine").unwrap();
    assert!(matches!(
        ws.send_text("x"),
        Err(WsError::Usage(UsageError::Fragmentation))
    ));
    ws.send_frame(OpCode::Continuation, true, b"b").unwrap();
    assert!(matches!(
        ws.send_ping(&[0; 126]),
        Err(WsError::Usage(UsageError::ControlTooLong))
    ));
    ws.send_text("next").unwrap();
    assert_eq!(sent_frames(&ws.get_ref().output).len(), 4);
}

#[test]
fn pings_under_back_pressure_keep_one_pong_for_the_latest() {
    let mut ws = open(b"");
    // The stream refuses all writes for now; a message is stuck in the queue.
    ws.get_mut().blocked = true;
    ws.send_binary(&[1; 50]).unwrap();
    let mut input = Vec::new();
    for i in 0..1000u32 {
        input.extend(server_frame(OpCode::Ping, true, &i.to_be_bytes()));
    }
    ws.get_mut().input.extend_from_slice(&input);
    let queued_before = ws.queued();
    let mut pings = 0;
    for f in ws.read_batch().unwrap() {
        assert_eq!(f.opcode(), OpCode::Ping);
        pings += 1;
    }
    assert_eq!(pings, 1000);
    assert_eq!(ws.queued(), queued_before, "pongs were queued one per ping");
    ws.get_mut().blocked = false;
    assert!(ws.flush().unwrap());
    let frames = sent_frames(&ws.get_ref().output);
    let pongs: Vec<_> = frames.iter().filter(|f| f.0 == OpCode::Pong).collect();
    assert_eq!(pongs.len(), 1);
    assert_eq!(pongs[0].2, 999u32.to_be_bytes());
    assert_eq!(frames[0], (OpCode::Binary, true, vec![1; 50]));
}

#[test]
fn a_batch_dropped_early_keeps_its_frames_even_with_a_full_buffer() {
    let config = WsConfig {
        read_buffer_size: 1024,
        ..WsConfig::default()
    };
    let mut ws = open_with(Mem::default(), config, b"");
    let mut input = Vec::new();
    for i in 0..100u8 {
        input.extend(server_frame(OpCode::Binary, true, &[i; 30]));
    }
    ws.get_mut().input.extend_from_slice(&input);
    let mut got = Vec::new();
    for _ in 0..1000 {
        // Batches dropped unread leave a buffer full of complete frames; the next batch must hand
        // them out, not mistake the full buffer for the end of the stream.
        let _ = ws.read_batch().unwrap();
        let _ = ws.read_batch().unwrap();
        for f in ws.read_batch().unwrap() {
            got.push(f.payload()[0]);
        }
        if got.len() == 100 {
            break;
        }
    }
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

/// Random server bytes (biased towards plausible frames) through the whole client, in random read
/// sizes, in all three receive modes: no panic, and once an error is returned it is returned again.
#[test]
fn random_server_bytes_never_panic_and_errors_stick() {
    let mut rng = KeyGen::from_seed(0x5EED);
    for round in 0..400 {
        let mut input = Vec::new();
        for _ in 0..(rng.next_u64() % 20) {
            let mut b = [0u8; 2];
            rng.fill(&mut b);
            if rng.next_u64() % 3 != 0 {
                b[0] &= 0x8F; // no RSV bits
                b[1] &= 0x7F; // no mask
            }
            let len = match b[1] & 0x7F {
                n @ 0..=125 => n as usize,
                _ => (rng.next_u64() % 300) as usize,
            };
            input.extend_from_slice(&b);
            if b[1] & 0x7F == 126 {
                input.extend_from_slice(&(len as u16).to_be_bytes());
            } else if b[1] & 0x7F == 127 {
                input.extend_from_slice(&(len as u64).to_be_bytes());
            }
            let mut p = vec![0u8; len];
            if rng.next_u64() % 2 == 0 {
                rng.fill(&mut p);
            } else {
                p.iter_mut().for_each(|c| *c = b'a');
            }
            input.extend_from_slice(&p);
        }
        let mem = Mem {
            read_chunk: 1 + (rng.next_u64() % 64) as usize,
            ..Mem::default()
        };
        let config = WsConfig {
            read_buffer_size: 1024,
            max_frame_size: 200,
            ..WsConfig::default()
        };
        let mut ws = open_with(mem, config, &input);
        ws.get_mut().eof = rng.next_u64() % 2 == 0;
        let mut first_error = None;
        for step in 0..10_000 {
            let r = match (round + step) % 3 {
                0 => ws.receive().map(|f| f.is_some()),
                1 => ws.receive_message().map(|m| m.is_some()),
                _ => ws.read_batch().map(|b| b.count() > 0),
            };
            match r {
                Ok(true) => {}
                Ok(false) if ws.get_ref().pos == ws.get_ref().input.len() => break,
                Ok(false) => {}
                Err(e) => {
                    first_error = Some(e.to_string());
                    break;
                }
            }
        }
        if let Some(e) = first_error {
            assert_eq!(ws.receive().unwrap_err().to_string(), e);
            assert!(ws.read_batch().is_err());
            assert!(ws.send_text("x").is_err());
        }
    }
}

#[test]
fn read_pending_reports_a_buffered_complete_frame() {
    let mut input = server_frame(OpCode::Binary, true, b"one");
    input.extend(server_frame(OpCode::Binary, true, b"two"));
    let partial = server_frame(OpCode::Binary, true, b"three");
    input.extend_from_slice(&partial[..3]);
    let mut ws = open(&input);
    // The handshake read everything: both frames are buffered.
    assert!(ws.read_pending());
    assert_eq!(ws.receive().unwrap().unwrap().payload(), b"one");
    assert!(ws.read_pending());
    assert_eq!(ws.receive().unwrap().unwrap().payload(), b"two");
    // Only part of a frame is left.
    assert!(!ws.read_pending());
    assert!(ws.receive().unwrap().is_none());
}

#[test]
fn a_message_begun_before_deflate_was_agreed_stays_uncompressed() {
    // The first fragment is queued while the handshake runs (no deflate yet, no RSV1); its
    // continuation, sent once the server agreed to deflate, must not be compressed.
    let url = WsUrl::parse("ws://127.0.0.1:9001/").unwrap();
    let config = WsConfig {
        deflate: Some(crate::ws::DeflateConfig::default()),
        ..WsConfig::default()
    };
    let mut ws = Mem::default().into_websocket_with(url, config).unwrap();
    while !ws.get_ref().output.ends_with(b"\r\n\r\n") {
        assert!(!ws.poll_handshake().unwrap());
    }
    ws.send_frame(OpCode::Text, false, b"abc").unwrap();
    let mut resp = response_for(&ws.get_ref().output);
    let at = resp.len() - 2;
    resp.splice(
        at..at,
        b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
            .iter()
            .copied(),
    );
    ws.get_mut().input.extend_from_slice(&resp);
    assert!(ws.poll_handshake().unwrap());
    assert!(ws.deflate().is_some(), "deflate agreed");
    ws.send_frame(OpCode::Continuation, true, b"def").unwrap();
    ws.send_frame(OpCode::Text, true, b"ghi").unwrap();
    let frames = sent_frames(&ws.get_ref().output);
    assert_eq!(frames[0], (OpCode::Text, false, b"abc".to_vec()));
    assert_eq!(frames[1], (OpCode::Continuation, true, b"def".to_vec()));
    // The next message is compressed.
    assert_eq!(frames[2].0, OpCode::Text);
    assert_ne!(frames[2].2, b"ghi");
}

#[test]
fn deflate_with_a_message_limit_under_4_kib_opens() {
    let url = WsUrl::parse("ws://127.0.0.1:9001/").unwrap();
    let config = WsConfig {
        deflate: Some(crate::ws::DeflateConfig::default()),
        max_message_size: 1000,
        ..WsConfig::default()
    };
    let mut ws = Mem::default().into_websocket_with(url, config).unwrap();
    while !ws.get_ref().output.ends_with(b"\r\n\r\n") {
        assert!(!ws.poll_handshake().unwrap());
    }
    let mut resp = response_for(&ws.get_ref().output);
    let at = resp.len() - 2;
    resp.splice(
        at..at,
        b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
            .iter()
            .copied(),
    );
    ws.get_mut().input.extend_from_slice(&resp);
    assert!(ws.poll_handshake().unwrap());
    assert!(ws.deflate().is_some());
}
