use super::*;

fn cfg() -> DeflateConfig {
    DeflateConfig::default()
}

fn params(p: &str, c: &DeflateConfig) -> Result<DeflateParams, DeflateError> {
    negotiate(p.as_bytes(), c, true)
}

#[test]
fn the_offer_says_what_the_config_says() {
    let mut out = Vec::new();
    cfg().write_offer(&mut out);
    assert_eq!(
        out,
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    );
    out.clear();
    DeflateConfig {
        client_no_context_takeover: true,
        server_no_context_takeover: true,
        client_max_window_bits: Some(10),
        server_max_window_bits: Some(9),
    }
    .write_offer(&mut out);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10; \
         server_max_window_bits=9; client_no_context_takeover; server_no_context_takeover\r\n"
    );
}

#[test]
fn window_bits_8_and_16_are_refused_in_the_config() {
    for bad in [0u8, 8, 16, 255] {
        let c = DeflateConfig {
            server_max_window_bits: Some(bad),
            ..cfg()
        };
        assert_eq!(c.validate(), Err(UsageError::WindowBits(bad)));
    }
    for good in 9..=15 {
        let c = DeflateConfig {
            client_max_window_bits: Some(good),
            server_max_window_bits: Some(good),
            ..cfg()
        };
        assert_eq!(c.validate(), Ok(()));
    }
}

#[test]
fn valid_answers() {
    let p = params("", &cfg()).unwrap();
    assert_eq!(
        p,
        DeflateParams {
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            client_max_window_bits: 15,
            server_max_window_bits: 15,
        }
    );
    let p = params(
        " client_max_window_bits=9; server_max_window_bits=\"12\"; Server_No_Context_Takeover; client_no_context_takeover",
        &cfg(),
    )
    .unwrap();
    assert_eq!(
        p,
        DeflateParams {
            client_no_context_takeover: true,
            server_no_context_takeover: true,
            client_max_window_bits: 9,
            server_max_window_bits: 12,
        }
    );
    let offer = DeflateConfig {
        server_max_window_bits: Some(12),
        client_max_window_bits: Some(11),
        ..cfg()
    };
    let p = params("server_max_window_bits=10", &offer).unwrap();
    assert_eq!(
        (p.client_max_window_bits, p.server_max_window_bits),
        (11, 10)
    );
    // The offer's client_no_context_takeover holds even when the answer leaves it out.
    let offer = DeflateConfig {
        client_no_context_takeover: true,
        ..cfg()
    };
    assert!(params("", &offer).unwrap().client_no_context_takeover);
}

#[test]
fn invalid_answers() {
    let c = cfg();
    assert_eq!(params("foo", &c), Err(DeflateError::UnknownParameter));
    assert_eq!(params("x=1", &c), Err(DeflateError::UnknownParameter));
    assert_eq!(params(";", &c), Err(DeflateError::UnknownParameter));
    assert_eq!(
        params("server_no_context_takeover; server_no_context_takeover", &c),
        Err(DeflateError::DuplicateParameter)
    );
    assert_eq!(
        params("server_max_window_bits=10; server_max_window_bits=10", &c),
        Err(DeflateError::DuplicateParameter)
    );
    for bad in [
        "server_max_window_bits",
        "server_max_window_bits=7",
        "server_max_window_bits=16",
        "server_max_window_bits=010",
        "server_max_window_bits=1a",
        "client_max_window_bits",
        "client_no_context_takeover=1",
    ] {
        assert_eq!(params(bad, &c), Err(DeflateError::InvalidValue), "{bad}");
    }
    let offer = DeflateConfig {
        server_max_window_bits: Some(10),
        ..cfg()
    };
    assert_eq!(
        params("server_max_window_bits=11", &offer),
        Err(DeflateError::ServerWindowTooLarge {
            offered: 10,
            answered: 11
        })
    );
    assert_eq!(
        params("", &offer),
        Err(DeflateError::ServerParameterMissing)
    );
    let offer = DeflateConfig {
        server_no_context_takeover: true,
        ..cfg()
    };
    assert_eq!(
        params("", &offer),
        Err(DeflateError::ServerParameterMissing)
    );
    let offer = DeflateConfig {
        client_max_window_bits: Some(10),
        ..cfg()
    };
    assert_eq!(
        params("client_max_window_bits=12", &offer),
        Err(DeflateError::ClientWindowTooLarge {
            offered: 10,
            answered: 12
        })
    );
    assert_eq!(
        params("client_max_window_bits=8", &c),
        Err(DeflateError::ClientWindow8)
    );
    assert_eq!(
        negotiate(b"client_max_window_bits=10", &c, false),
        Err(DeflateError::ClientWindowNotOffered)
    );
}

fn both(cnct: bool, snct: bool, bits: u8) -> DeflateParams {
    DeflateParams {
        client_no_context_takeover: cnct,
        server_no_context_takeover: snct,
        client_max_window_bits: bits,
        server_max_window_bits: bits,
    }
}

/// Inflates one whole message with fresh buffers of `out` bytes.
fn inflate_all(inf: &mut Inflater, payload: &[u8], out: usize) -> Result<Vec<u8>, WsError> {
    let mut buf = vec![0u8; out];
    let mut spill = Vec::new();
    let mut tail: &mut [u8] = &mut buf;
    let mut sp = Some(&mut spill);
    inf.inflate(payload, true, &mut tail, &mut sp)
        .map(|r| r.data.to_vec())
}

#[test]
fn round_trips_in_every_mode_and_window() {
    let text: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("{{\"px\":{},\"qty\":{}}}", i % 97, i % 13).into_bytes())
        .collect();
    for bits in 9..=15 {
        for (cnct, snct) in [(false, false), (true, true)] {
            let p = both(cnct, snct, bits);
            let mut def = Deflater::new(&p, 256);
            let mut inf = Inflater::new(&p, 1 << 30);
            for len in [0usize, 1, 100, 4096, 70_000, text.len()] {
                let z = def.compress(&text[..len], true).unwrap().to_vec();
                assert!(!z.ends_with(&TAIL), "tail not stripped");
                // Small output buffers force the spill path.
                for out in [16, 1 << 20] {
                    let mut i2 = Inflater::new(&p, 1 << 30);
                    if cnct {
                        assert_eq!(inflate_all(&mut i2, &z, out).unwrap(), &text[..len]);
                    }
                    let _ = &mut i2;
                }
                assert_eq!(inflate_all(&mut inf, &z, 64).unwrap(), &text[..len]);
            }
        }
    }
}

#[test]
fn fragments_inflate_in_pieces() {
    let p = both(false, false, 15);
    let mut def = Deflater::new(&p, 256);
    let msg = b"hello hello hello hello, fragmented world".repeat(50);
    let a = def.compress(&msg[..1000], false).unwrap().to_vec();
    let b = def.compress(&msg[1000..], true).unwrap().to_vec();
    let mut inf = Inflater::new(&p, 1 << 20);
    let mut buf = vec![0u8; 1 << 16];
    let mut spill = Vec::new();
    let mut tail: &mut [u8] = &mut buf;
    let mut sp = Some(&mut spill);
    let x = inf
        .inflate(&a, false, &mut tail, &mut sp)
        .unwrap()
        .data
        .to_vec();
    let y = inf
        .inflate(&b, true, &mut tail, &mut sp)
        .unwrap()
        .data
        .to_vec();
    assert_eq!([x, y].concat(), msg);
}

#[test]
fn a_bomb_stops_at_the_limit() {
    let p = both(false, false, 15);
    let mut def = Deflater::new(&p, 256);
    let zeros = vec![0u8; 64 << 20];
    let z = def.compress(&zeros, true).unwrap().to_vec();
    assert!(z.len() < 100 << 10, "{}", z.len());
    let limit = 1 << 20;
    let mut inf = Inflater::new(&p, limit);
    let mut buf = vec![0u8; 4096];
    let mut spill = Vec::new();
    let mut tail: &mut [u8] = &mut buf;
    let mut sp = Some(&mut spill);
    let e = inf.inflate(&z, true, &mut tail, &mut sp).unwrap_err();
    assert!(
        matches!(e, WsError::Capacity(CapacityError::Message { max, .. }) if max == limit),
        "{e:?}"
    );
    assert!(
        spill.capacity() <= limit + 1,
        "spill grew to {}",
        spill.capacity()
    );
}

#[test]
fn corrupt_data_is_a_protocol_error() {
    let mut inf = Inflater::new(&both(false, false, 15), 1 << 20);
    let e = inflate_all(&mut inf, &[0xff, 0xff, 0xff, 0xff, 0x00], 1024).unwrap_err();
    assert!(
        matches!(e, WsError::Protocol(ProtocolError::Deflate)),
        "{e:?}"
    );
}

#[test]
fn an_empty_message_is_never_an_empty_payload() {
    // zlib emits nothing for a sync flush right after another one; the message must still be a
    // valid deflate block once the receiver appends the tail (§7.2.3.6: a single 0x00).
    for bits in [9, 15] {
        let p = both(false, false, bits);
        let mut d = Deflater::new(&p, 256);
        let mut inf = Inflater::new(&p, 1 << 20);
        for m in [&b""[..], b"", b"\x05", b"", b"a"] {
            let z = d.compress(m, true).unwrap().to_vec();
            assert!(!z.is_empty());
            assert_eq!(inflate_all(&mut inf, &z, 64).unwrap(), m);
        }
    }
}

#[test]
fn an_empty_payload_from_the_server_leaves_the_stream_intact() {
    // Some servers send an empty message as an empty RSV1 payload. The tail alone is an
    // unfinished stored block: inflating it would leave the next message, under context
    // takeover, decoded against a half-read block header.
    let p = both(false, false, 15);
    let mut d = Deflater::new(&p, 256);
    let mut inf = Inflater::new(&p, 1 << 20);
    let first = d.compress(b"first first first", true).unwrap().to_vec();
    assert_eq!(
        inflate_all(&mut inf, &first, 64).unwrap(),
        b"first first first"
    );
    assert_eq!(inflate_all(&mut inf, b"", 64).unwrap(), b"");
    let second = d.compress(b"second, first first", true).unwrap().to_vec();
    assert_eq!(
        inflate_all(&mut inf, &second, 64).unwrap(),
        b"second, first first"
    );
}
