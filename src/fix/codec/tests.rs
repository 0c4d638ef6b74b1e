//! Byte-vector tests for the codec.

use super::*;

/// `|` stands for SOH.
fn soh(s: &str) -> Vec<u8> {
    s.bytes().map(|b| if b == b'|' { SOH } else { b }).collect()
}

/// A complete message with correct BodyLength and CheckSum around `body` (`|` = SOH).
fn framed(begin: &str, body: &str) -> Vec<u8> {
    let body = soh(body);
    let mut m = soh(&format!("8={begin}|9={}|", body.len()));
    m.extend_from_slice(&body);
    let sum = checksum(&m);
    m.extend_from_slice(&soh(&format!("10={sum:03}|")));
    m
}

const NOS: &str = "35=D|49=DESK|56=VENUE|34=12|52=20240229-13:45:07.123|11=ORD-1|55=EUR/USD|54=1|38=100|40=2|44=1.0850|60=20240229-13:45:07.123|";

#[test]
fn parses_a_new_order_single() {
    let bytes = framed("FIX.4.4", NOS);
    let (msg, len) = Message::parse(&bytes).unwrap().unwrap();
    assert_eq!(len, bytes.len());
    assert_eq!(msg.begin_string(), b"FIX.4.4");
    assert_eq!(msg.msg_type(), MsgType::NewOrderSingle);
    assert_eq!(msg.msg_type_bytes(), b"D");
    assert_eq!(msg.seq_num(), Ok(12));
    assert_eq!(msg.str(Tag::SenderCompId), Ok("DESK"));
    assert_eq!(msg.str(Tag::ClOrdId), Ok("ORD-1"));
    assert_eq!(msg.char(Tag::Side), Ok(b'1'));
    assert_eq!(msg.decimal(Tag::Price), Ok(Decimal::new(10850, 4)));
    assert_eq!(msg.u64(Tag::OrderQty), Ok(100));
    assert_eq!(
        msg.get(9u32)
            .map(|v| std::str::from_utf8(v).unwrap().parse::<usize>().unwrap()),
        Some(soh(NOS).len())
    );
    assert_eq!(msg.get(10u32).map(<[u8]>::len), Some(3));
    assert_eq!(msg.u64(Tag::Price), Err(FixError::BadValue(44)));
    assert_eq!(msg.str(Tag::Account), Err(FixError::MissingField(1)));
    assert!(!msg.poss_dup());
    assert!(!msg.flag(Tag::PossDupFlag).unwrap());
    assert_eq!(
        msg.require(Tag::SendingTime).unwrap().as_timestamp(),
        Ok(UtcTimestamp(1_709_214_307_123_000_000))
    );
    let tags: Vec<u32> = msg.fields().map(|f| f.tag).collect();
    assert_eq!(tags, [35, 49, 56, 34, 52, 11, 55, 54, 38, 40, 44, 60]);
    // A tag that is a suffix of another is not confused with it.
    let bytes = framed("FIX.4.4", "35=0|135=X|35135=Y|");
    let (msg, _) = Message::parse(&bytes).unwrap().unwrap();
    assert_eq!(msg.get(135u32), Some(&b"X"[..]));
    assert_eq!(msg.get(5u32), None);
}

#[test]
fn needs_more_bytes_at_every_cut() {
    let bytes = framed("FIX.4.4", NOS);
    for cut in 0..bytes.len() {
        assert_eq!(Message::parse(&bytes[..cut]), Ok(None), "cut at {cut}");
    }
    // Two messages back to back: the first one is returned with its length.
    let mut two = bytes.clone();
    two.extend_from_slice(&framed(
        "FIX.4.2",
        "35=0|49=A|56=B|34=1|52=20240101-00:00:00|",
    ));
    let (first, n) = Message::parse(&two).unwrap().unwrap();
    assert_eq!((n, first.seq_num()), (bytes.len(), Ok(12)));
    let (second, _) = Message::parse(&two[n..]).unwrap().unwrap();
    assert_eq!(second.begin_string(), b"FIX.4.2");
}

#[test]
fn zero_padded_body_length_is_accepted() {
    let body = soh("35=0|49=A|56=B|34=1|");
    let mut m = soh(&format!("8=FIX.4.4|9={:06}|", body.len()));
    m.extend_from_slice(&body);
    let sum = checksum(&m);
    m.extend_from_slice(&soh(&format!("10={sum:03}|")));
    let (msg, _) = Message::parse(&m).unwrap().unwrap();
    assert_eq!(msg.msg_type(), MsgType::Heartbeat);
}

#[test]
fn framing_errors() {
    let good = framed("FIX.4.4", NOS);
    assert_eq!(Message::parse(b"9=5|"), Err(FixError::BadBeginString));
    assert_eq!(
        Message::parse(&soh("8=|9=5|")),
        Err(FixError::BadBeginString)
    );
    assert_eq!(
        Message::parse(b"8=FIX.4.4.FIX.4.4.FIX.4.4"),
        Err(FixError::BadBeginString)
    );
    assert_eq!(
        Message::parse(&soh("8=FIX.4.4|35=D|")),
        Err(FixError::BadBodyLength)
    );
    assert_eq!(
        Message::parse(&soh("8=FIX.4.4|9=|")),
        Err(FixError::BadBodyLength)
    );
    assert_eq!(
        Message::parse(&soh("8=FIX.4.4|9=1x|")),
        Err(FixError::BadBodyLength)
    );
    assert_eq!(
        Message::parse(&soh("8=FIX.4.4|9=1234567890|")),
        Err(FixError::BadBodyLength)
    );
    assert_eq!(
        Message::parse(&soh("8=FIX.4.4|9=3|")),
        Err(FixError::BadBodyLength)
    );
    // Bounded memory: a huge BodyLength is refused as soon as it is read.
    assert_eq!(
        Message::parse(&soh("8=FIX.4.4|9=999999999|")),
        Err(FixError::TooLong {
            len: 999_999_999 + 22 + 7,
            max: DEFAULT_MAX_MESSAGE
        })
    );
    assert!(matches!(
        Message::parse_with_max(&good, 50),
        Err(FixError::TooLong { max: 50, .. })
    ));
    // A lying BodyLength (one short, one long).
    let text = String::from_utf8(good.clone()).unwrap();
    let n = soh(NOS).len();
    for lie in [n - 1, n + 1] {
        let bad = text.replacen(&format!("9={n}\x01"), &format!("9={lie}\x01"), 1);
        let mut bad = bad.into_bytes();
        bad.extend_from_slice(b"8=FIX.4.4\x01");
        assert_eq!(Message::parse(&bad), Err(FixError::BadTrailer), "lie {lie}");
    }
    // A wrong checksum.
    let mut bad = good.clone();
    let at = bad.len() - 2;
    bad[at] = if bad[at] == b'9' { b'8' } else { b'9' };
    assert!(matches!(
        Message::parse(&bad),
        Err(FixError::BadChecksum { .. })
    ));
    // A flipped body byte.
    let mut bad = good.clone();
    bad[30] ^= 0x20;
    assert!(matches!(
        Message::parse(&bad),
        Err(FixError::BadChecksum { .. })
    ));
    assert!(!FixError::BadChecksum {
        declared: 0,
        computed: 1
    }
    .is_framing());
    assert!(FixError::BadTrailer.is_framing());
}

#[test]
fn field_errors() {
    for (body, err) in [
        ("49=A|35=0|", FixError::MissingMsgType),
        ("35=0|49|", FixError::BadField { offset: 0 }),
        ("35=0|=A|", FixError::BadField { offset: 0 }),
        ("35=0|4a=A|", FixError::BadField { offset: 0 }),
        ("35=0|49=|", FixError::BadField { offset: 0 }),
        ("35=0|0=A|", FixError::BadField { offset: 0 }),
        ("35=0|1234567890=A|", FixError::BadField { offset: 0 }),
    ] {
        let bytes = framed("FIX.4.4", body);
        let got = Message::parse(&bytes);
        match (got, err) {
            (Err(FixError::BadField { .. }), FixError::BadField { .. }) => {}
            (got, err) => assert_eq!(got.map(|_| ()), Err(err), "{body}"),
        }
    }
}

#[test]
fn repeating_groups() {
    let body = "35=D|11=X|453=3|448=TRADER1|447=D|452=11|448=FIRM|452=1|448=DESK9|447=D|55=ABC|";
    let bytes = framed("FIX.4.4", body);
    let (msg, _) = Message::parse(&bytes).unwrap().unwrap();
    let parties = msg.group(Tag::NoPartyIds, &[448, 447, 452]).unwrap();
    assert_eq!(parties.len(), 3);
    let ids: Vec<&[u8]> = parties.map(|e| e.get(448u32).unwrap()).collect();
    assert_eq!(ids, [&b"TRADER1"[..], b"FIRM", b"DESK9"]);
    let second = msg.group(453u32, &[448, 447, 452]).unwrap().nth(1).unwrap();
    assert_eq!(second.get(447u32), None);
    assert_eq!(second.field(452u32).unwrap().as_u64(), Ok(1));
    assert_eq!(second.count(), 2);
    // The field after the group is not part of the last entry.
    let last = msg.group(453u32, &[448, 447, 452]).unwrap().last().unwrap();
    assert_eq!(last.get(55u32), None);
    // Absent: empty. Wrong count or wrong delimiter: an error.
    assert!(msg.group(78u32, &[79]).unwrap().is_empty());
    assert_eq!(
        msg.group(453u32, &[447, 448, 452]).map(|_| ()),
        Err(FixError::BadGroup(453))
    );
    let bytes = framed("FIX.4.4", "35=D|453=2|448=A|452=1|55=X|");
    let (msg, _) = Message::parse(&bytes).unwrap().unwrap();
    assert_eq!(
        msg.group(453u32, &[448, 447, 452]).map(|_| ()),
        Err(FixError::BadGroup(453))
    );
    // Nested: sub-parties inside each party entry.
    let bytes = framed(
        "FIX.4.4",
        "35=D|453=2|448=A|452=1|802=2|523=a1|803=1|523=a2|803=2|448=B|452=3|802=1|523=b1|803=9|",
    );
    let (msg, _) = Message::parse(&bytes).unwrap().unwrap();
    let members = [448, 447, 452, 802, 523, 803];
    let subs: Vec<usize> = msg
        .group(453u32, &members)
        .unwrap()
        .map(|e| e.group(802u32, &[523, 803]).unwrap().len())
        .collect();
    assert_eq!(subs, [2, 1]);
}

fn header(seq: u64) -> Header<'static> {
    Header {
        sender: "DESK",
        target: "VENUE",
        seq,
        sending_time: UtcTimestamp(1_709_214_307_123_456_789),
        precision: TimePrecision::Micros,
    }
}

#[test]
fn encodes_what_the_parser_reads_back() {
    let mut enc = Encoder::new();
    enc.start(b"FIX.4.4", MsgType::NewOrderSingle.as_bytes(), &header(12))
        .str(Tag::ClOrdId, "ORD-1")
        .str(Tag::Symbol, "EUR/USD")
        .char(Tag::Side, b'1')
        .decimal(Tag::OrderQty, Decimal::new(100, 0))
        .char(Tag::OrdType, b'2')
        .decimal(Tag::Price, Decimal::new(10850, 4))
        .i64(9999u32, -5)
        .bool(Tag::PossDupFlag, false);
    let bytes = enc.finish().unwrap().to_vec();
    let (msg, n) = Message::parse(&bytes).unwrap().unwrap();
    assert_eq!(n, bytes.len());
    assert_eq!(msg.str(Tag::SendingTime), Ok("20240229-13:45:07.123456"));
    assert_eq!(msg.decimal(Tag::Price), Ok(Decimal::new(10850, 4)));
    assert_eq!(msg.i64(9999u32), Ok(-5));
    assert_eq!(msg.seq_num(), Ok(12));
    assert_eq!(enc.as_bytes(), &bytes[..]);
    // Same body through the reference framing of the tests.
    let body_start = bytes.windows(4).position(|w| w == b"\x0135=").unwrap() + 1;
    let body = &bytes[body_start..bytes.len() - 7];
    let reference = framed(
        "FIX.4.4",
        &String::from_utf8(body.to_vec())
            .unwrap()
            .replace('\x01', "|"),
    );
    assert_eq!(bytes, reference);
    // The buffer is reused: a shorter message after a longer one is framed on its own.
    enc.start(b"FIXT.1.1", b"0", &header(13));
    let hb = enc.finish().unwrap();
    let (msg, n) = Message::parse(hb).unwrap().unwrap();
    assert_eq!(
        (n, msg.begin_string(), msg.seq_num()),
        (hb.len(), &b"FIXT.1.1"[..], Ok(13))
    );
}

#[test]
fn encoder_refuses_values_that_break_framing() {
    let mut enc = Encoder::new();
    enc.start(b"FIX.4.4", b"D", &header(1)).str(58u32, "a\x01b");
    assert_eq!(enc.finish().map(|_| ()), Err(FixError::SohInValue(58)));
    enc.start(b"FIX.4.4", b"D", &header(1)).str(58u32, "");
    assert_eq!(enc.finish().map(|_| ()), Err(FixError::SohInValue(58)));
    // The next message is unaffected.
    enc.start(b"FIX.4.4", b"D", &header(1)).str(58u32, "ok");
    assert!(enc.finish().is_ok());
}

#[test]
fn body_lengths_across_digit_boundaries() {
    let mut enc = Encoder::new();
    for pad in [0usize, 1, 50, 60, 900, 950, 9_000, 10_000] {
        let text = "x".repeat(pad + 1);
        enc.start(b"FIX.4.2", b"0", &header(1)).str(58u32, &text);
        let bytes = enc.finish().unwrap();
        let (msg, n) = Message::parse(bytes).unwrap().unwrap();
        assert_eq!(n, bytes.len());
        assert_eq!(msg.str(58u32).map(str::len), Ok(pad + 1));
    }
}

#[test]
fn lookups_beyond_the_index_and_large_tags() {
    let mut body = String::from("35=8|100000=big|");
    for i in 0..60 {
        body += &format!("{}=v{i}|", 5000 + i);
    }
    body += "70000=late|";
    let bytes = framed("FIX.4.4", &body);
    let (msg, _) = Message::parse(&bytes).unwrap().unwrap();
    assert_eq!(msg.msg_type(), MsgType::ExecutionReport);
    assert_eq!(msg.get(100000u32), Some(&b"big"[..]));
    for i in 0..60 {
        assert_eq!(msg.get(5000 + i), Some(format!("v{i}").as_bytes()), "{i}");
    }
    assert_eq!(msg.get(70000u32), Some(&b"late"[..]));
    assert_eq!((msg.get(4999u32), msg.get(6000u32)), (None, None));
    assert_eq!(msg.fields().count(), 63);
    // A message too large for 16-bit offsets is scanned instead of indexed.
    let long = "x".repeat(70_000);
    let bytes = framed("FIX.4.4", &format!("35=0|58={long}|112=T|"));
    let (msg, _) = Message::parse_with_max(&bytes, 1 << 20).unwrap().unwrap();
    assert_eq!(
        (msg.msg_type(), msg.get(112u32)),
        (MsgType::Heartbeat, Some(&b"T"[..]))
    );
    assert_eq!(msg.get(58u32).map(<[u8]>::len), Some(70_000));
}
