//! Unit tests of the recording format, the recorder and the replay.

use std::io::{self, Read, Write};

use super::format::*;
use super::*;
use crate::stream::would_block;

/// An owned record, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    kind: RecordKind,
    continued: bool,
    time_ns: u64,
    payload: Vec<u8>,
}

fn read_all(bytes: &[u8]) -> Result<(Header, Vec<Rec>, Tail), RecordError> {
    let mut r = RecordReader::new(bytes)?;
    let mut out = Vec::new();
    while let Some(rec) = r.next_record()? {
        out.push(Rec {
            kind: rec.kind,
            continued: rec.continued,
            time_ns: rec.time_ns,
            payload: rec.payload.to_vec(),
        });
    }
    let tail = r.tail().expect("tail known at the end");
    Ok((r.header().clone(), out, tail))
}

/// Writes `records` (kind, time, payload) with a writer and returns the file bytes.
fn write_file(label: &str, flush: FlushPolicy, records: &[(RecordKind, u64, &[u8])]) -> Vec<u8> {
    let mut w = RecordWriter::new(Vec::new(), 1_700_000_000_123_456_789, label, flush).unwrap();
    for &(k, t, p) in records {
        w.record(k, t, p).unwrap();
    }
    w.flush().unwrap();
    w.get_ref().clone()
}

fn sample() -> Vec<(RecordKind, u64, &'static [u8])> {
    vec![
        (RecordKind::Gap, 5, b""),
        (RecordKind::Outbound, 10, b"GET / HTTP/1.1\r\n\r\n"),
        (RecordKind::Gap, 11, b""),
        (RecordKind::Inbound, 1_000, b"HTTP/1.1 200 OK\r\n"),
        (RecordKind::Inbound, 1_001, b"\r\nbody"),
        (RecordKind::Outbound, 2_000, b""),
        (RecordKind::Inbound, 3_000, b"x"),
        (RecordKind::Eof, u64::MAX, b""),
    ]
}

#[test]
fn round_trip_all_kinds_and_policies() {
    let recs = sample();
    for flush in [
        FlushPolicy::EveryRecord,
        FlushPolicy::Buffered(1),
        FlushPolicy::Buffered(40),
        FlushPolicy::default(),
    ] {
        let bytes = write_file("ws feed, plaintext", flush, &recs);
        let (header, got, tail) = read_all(&bytes).unwrap();
        assert_eq!(header.version, VERSION);
        assert_eq!(header.start_unix_ns, 1_700_000_000_123_456_789);
        assert_eq!(header.label, "ws feed, plaintext");
        assert_eq!(tail, Tail::Complete);
        let want: Vec<Rec> = recs
            .iter()
            .map(|&(kind, time_ns, p)| Rec {
                kind,
                continued: false,
                time_ns,
                payload: p.to_vec(),
            })
            .collect();
        assert_eq!(got, want, "{flush:?}");
    }
}

#[test]
fn header_layout_is_as_documented() {
    let bytes = write_file(
        "ab",
        FlushPolicy::EveryRecord,
        &[(RecordKind::Inbound, 7, b"hi")],
    );
    assert_eq!(&bytes[..8], b"\x89HWR\r\n\x1a\n");
    assert_eq!(&bytes[8..12], &[1, 0, 0, 0]);
    assert_eq!(
        u64::from_le_bytes(bytes[12..20].try_into().unwrap()),
        1_700_000_000_123_456_789
    );
    assert_eq!(&bytes[20..24], &[2, 0, b'a', b'b']);
    assert_eq!(
        u32::from_le_bytes(bytes[24..28].try_into().unwrap()),
        super::crc::crc32c(&bytes[..24])
    );
    let r = &bytes[28..];
    assert_eq!(r.len(), 22);
    assert_eq!(&r[..8], &[1, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(u64::from_le_bytes(r[8..16].try_into().unwrap()), 7);
    let mut crc = super::crc::Crc32c::new();
    crc.update(&r[..16]);
    crc.update(b"hi");
    assert_eq!(
        u32::from_le_bytes(r[16..20].try_into().unwrap()),
        crc.finish()
    );
    assert_eq!(&r[20..], b"hi");
}

#[test]
fn large_payloads_split_into_continued_records() {
    let big: Vec<u8> = (0..MAX_PAYLOAD * 2 + 5).map(|i| (i % 251) as u8).collect();
    for flush in [FlushPolicy::EveryRecord, FlushPolicy::default()] {
        let bytes = write_file(
            "",
            flush,
            &[
                (RecordKind::Inbound, 1, &big),
                (RecordKind::Inbound, 2, b"after"),
            ],
        );
        let (_, got, tail) = read_all(&bytes).unwrap();
        assert_eq!(tail, Tail::Complete);
        assert_eq!(got.len(), 4);
        assert!(got[0].continued && got[1].continued && !got[2].continued && !got[3].continued);
        assert_eq!(got[0].payload.len(), MAX_PAYLOAD);
        let joined: Vec<u8> = got[..3]
            .iter()
            .flat_map(|r| r.payload.iter().copied())
            .collect();
        assert_eq!(joined, big);

        // The replay joins them back into one read.
        let mut replay = Replay::from_bytes(bytes).unwrap();
        let mut buf = vec![0u8; big.len() + 100];
        assert_eq!(replay.read(&mut buf).unwrap(), big.len());
        assert!(buf[..big.len()] == big[..]);
        assert_eq!(replay.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"after");
    }
}

#[test]
fn header_errors_are_typed() {
    let good = write_file("label", FlushPolicy::EveryRecord, &[]);
    assert!(matches!(
        read_all(b"GET / HTTP/1.1\r\n"),
        Err(RecordError::BadMagic)
    ));
    assert!(matches!(
        read_all(b""),
        Err(RecordError::TruncatedHeader { len: 0 })
    ));
    assert!(matches!(
        read_all(&good[..10]),
        Err(RecordError::TruncatedHeader { len: 10 })
    ));

    let mut v2 = good.clone();
    v2[8] = 2;
    assert!(matches!(
        read_all(&v2),
        Err(RecordError::UnsupportedVersion(2))
    ));

    let mut bad_label = good.clone();
    bad_label[22] ^= 0x20;
    assert!(matches!(
        read_all(&bad_label),
        Err(RecordError::HeaderChecksum { .. })
    ));

    let mut long = good.clone();
    long[20..22].copy_from_slice(&5000u16.to_le_bytes());
    assert!(matches!(
        read_all(&long),
        Err(RecordError::LabelTooLong(5000))
    ));

    let mut out = Vec::new();
    assert!(matches!(
        encode_header(0, &"x".repeat(MAX_LABEL + 1), &mut out),
        Err(RecordError::LabelTooLong(_))
    ));
}

/// Checks that an error is the one a corruption case expects.
type IsExpected = fn(&RecordError) -> bool;

#[test]
fn record_corruption_is_typed() {
    let bytes = write_file("", FlushPolicy::EveryRecord, &sample());
    let first = 26;
    let second = first + RECORD_HEADER_LEN; // the gap record has no payload
    let cases: [(usize, u8, IsExpected); 6] = [
        (second + RECORD_HEADER_LEN + 3, 0x01, |e| {
            matches!(e, RecordError::RecordChecksum { offset: 46, .. })
        }),
        (second + 9, 0x80, |e| {
            matches!(e, RecordError::RecordChecksum { .. })
        }),
        (second, 0x07, |e| {
            matches!(
                e,
                RecordError::UnknownKind {
                    offset: 46,
                    kind: 5
                }
            )
        }),
        (second + 1, 0x02, |e| {
            matches!(e, RecordError::RecordFlags { bits: 2, .. })
        }),
        (first + 1, 0x01, |e| {
            matches!(e, RecordError::RecordFlags { offset: 26, .. })
        }),
        (second + 7, 0x10, |e| {
            matches!(e, RecordError::RecordLength { .. })
        }),
    ];
    for (at, flip, check) in cases {
        let mut b = bytes.clone();
        b[at] ^= flip;
        let err = read_all(&b).unwrap_err();
        assert!(check(&err), "flip at {at}: {err:?}");
        let err = Replay::from_bytes(b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<RecordError>())
            .expect("typed");
        assert!(check(inner), "replay, flip at {at}: {inner:?}");
    }
    // An event record that claims a payload is corrupt even if its checksum were right.
    let mut ev = Vec::new();
    encode_header(0, "", &mut ev).unwrap();
    let mut rec = encode_record_header(RecordKind::Inbound, false, 0, b"abc").to_vec();
    rec[0] = RecordKind::Gap as u8;
    ev.extend_from_slice(&rec);
    ev.extend_from_slice(b"abc");
    assert!(matches!(
        read_all(&ev),
        Err(RecordError::RecordLength { len: 3, .. })
    ));
}

#[test]
fn truncation_at_every_offset_recovers_whole_records() {
    let recs = sample();
    let bytes = write_file("cut", FlushPolicy::EveryRecord, &recs);
    let header_len = 26 + 3;
    // File offsets where each record ends.
    let mut ends = Vec::new();
    let mut at = header_len;
    for &(_, _, p) in &recs {
        at += RECORD_HEADER_LEN + p.len();
        ends.push(at);
    }
    assert_eq!(at, bytes.len());
    for cut in 0..=bytes.len() {
        let part = &bytes[..cut];
        if cut < header_len {
            assert!(
                matches!(read_all(part), Err(RecordError::TruncatedHeader { len }) if len == cut)
            );
            assert!(Replay::from_bytes(part.to_vec()).is_err());
            continue;
        }
        let (_, got, tail) = read_all(part).unwrap();
        let whole = ends.iter().filter(|&&e| e <= cut).count();
        assert_eq!(got.len(), whole, "cut at {cut}");
        let last_end = if whole == 0 {
            header_len
        } else {
            ends[whole - 1]
        };
        if last_end == cut {
            assert_eq!(tail, Tail::Complete, "cut at {cut}");
        } else {
            assert_eq!(
                tail,
                Tail::Truncated {
                    offset: last_end as u64,
                    len: cut - last_end
                },
                "cut at {cut}"
            );
        }
        assert_eq!(
            Replay::from_bytes(part.to_vec()).unwrap().tail(),
            tail,
            "cut at {cut}"
        );
    }
}

#[test]
fn reader_handles_one_byte_reads() {
    /// Hands out one byte per read, with an `Interrupted` before each.
    struct Trickle<'a>(&'a [u8], bool);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = self.0.len().min(buf.len()).min(1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let bytes = write_file("t", FlushPolicy::default(), &sample());
    let mut r = RecordReader::new(Trickle(&bytes, false)).unwrap();
    let mut n = 0;
    while let Some(rec) = r.next_record().unwrap() {
        assert_eq!(rec.payload, sample()[n].2);
        n += 1;
    }
    assert_eq!(n, sample().len());
    assert_eq!(r.tail(), Some(Tail::Complete));
    assert_eq!(r.offset(), bytes.len() as u64);
}

#[test]
fn writer_refuses_records_after_a_failed_write() {
    /// Accepts `budget` bytes, then fails.
    struct Failing(usize);
    impl Write for Failing {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = b.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut w = RecordWriter::new(Failing(40), 0, "", FlushPolicy::EveryRecord).unwrap();
    assert!(w.record(RecordKind::Inbound, 0, b"0123456789").is_err());
    assert!(w.record(RecordKind::Inbound, 0, b"x").is_err());
    assert!(w.flush().is_err());
}

/// A file with gaps, partial-size records and an end of stream, for replay tests.
fn replay_file() -> Vec<u8> {
    write_file(
        "r",
        FlushPolicy::default(),
        &[
            (RecordKind::Gap, 1, b""),
            (RecordKind::Inbound, 2, b"hello"),
            (RecordKind::Outbound, 3, b"ping"),
            (RecordKind::Inbound, 4, b"world!"),
            (RecordKind::Gap, 5, b""),
            (RecordKind::Outbound, 6, b"pong"),
            (RecordKind::Inbound, 7, b"z"),
            (RecordKind::Eof, 8, b""),
            (RecordKind::Outbound, 9, b"bye"),
        ],
    )
}

/// Reads `replay` with a buffer of `size` until end of stream; `None` stands for `WouldBlock`.
fn drain(replay: &mut Replay, size: usize) -> Vec<Option<Vec<u8>>> {
    let mut buf = vec![0u8; size];
    let mut out = Vec::new();
    loop {
        assert!(replay.read_pending());
        match replay.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.push(Some(buf[..n].to_vec())),
            Err(e) if would_block(&e) => out.push(None),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(!replay.read_pending());
    assert_eq!(replay.read(&mut buf).unwrap(), 0, "end of stream is sticky");
    out
}

#[test]
fn replay_keeps_boundaries_and_gaps() {
    let mut r = Replay::from_bytes(replay_file()).unwrap();
    assert!(r.poll_connect().unwrap());
    assert_eq!(r.raw_fd(), None);
    let s = |b: &[u8]| Some(b.to_vec());
    assert_eq!(
        drain(&mut r, 64),
        vec![None, s(b"hello"), s(b"world!"), None, s(b"z")]
    );
    assert_eq!(r.now_unix_ns(), 1_700_000_000_123_456_789 + 8);

    let mut r = Replay::from_bytes(replay_file()).unwrap();
    assert_eq!(
        drain(&mut r, 3),
        vec![
            None,
            s(b"hel"),
            s(b"lo"),
            s(b"wor"),
            s(b"ld!"),
            None,
            s(b"z")
        ]
    );
}

#[test]
fn replay_without_eof_record_ends_at_end_of_file() {
    let bytes = write_file(
        "",
        FlushPolicy::default(),
        &[(RecordKind::Inbound, 0, b"abc")],
    );
    let mut r = Replay::from_bytes(bytes).unwrap();
    assert_eq!(drain(&mut r, 8), vec![Some(b"abc".to_vec())]);
}

#[test]
fn strict_replay_checks_outbound_bytes() {
    let mut r = Replay::from_bytes(replay_file()).unwrap().strict(true);
    // Boundaries of writes need not match the recording; the byte stream must.
    r.write_all(b"pi").unwrap();
    r.write_all(b"ngpo").unwrap();
    assert!(!r.outbound_complete());
    r.write_all(b"ngbye").unwrap();
    assert!(r.outbound_complete());
    let err = r.write(b"!").unwrap_err();
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<RecordError>())
        .unwrap();
    assert!(matches!(
        inner,
        RecordError::OutboundMismatch {
            offset: 11,
            expected: None,
            found: b'!'
        }
    ));

    let mut r = Replay::from_bytes(replay_file()).unwrap().strict(true);
    r.write_all(b"pingpo").unwrap();
    let err = r.write(b"nk").unwrap_err();
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<RecordError>())
        .unwrap();
    assert!(matches!(
        inner,
        RecordError::OutboundMismatch {
            offset: 7,
            expected: Some(b'g'),
            found: b'k'
        }
    ));

    // Not strict: anything goes.
    let mut r = Replay::from_bytes(replay_file()).unwrap();
    r.write_all(b"whatever").unwrap();
    assert_eq!(r.written(), 8);
}

/// One scripted result of a read on [`Script`].
#[derive(Debug, Clone)]
enum Step {
    Data(&'static [u8]),
    Block,
    Eof,
}

/// An in-memory stream that plays `reads` and accepts at most `budget` bytes per write.
struct Script {
    reads: std::collections::VecDeque<Step>,
    budget: usize,
    written: Vec<u8>,
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.reads.pop_front() {
            Some(Step::Data(d)) => {
                assert!(buf.len() >= d.len());
                buf[..d.len()].copy_from_slice(d);
                Ok(d.len())
            }
            Some(Step::Block) => Err(io::ErrorKind::WouldBlock.into()),
            Some(Step::Eof) | None => Ok(0),
        }
    }
}

impl Write for Script {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.budget == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = b.len().min(self.budget);
        self.written.extend_from_slice(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Script {
    fn read_pending(&self) -> bool {
        !self.reads.is_empty()
    }
}

#[test]
fn recorder_records_what_the_stream_did_and_replay_reproduces_it() {
    use Step::*;
    let dir = tempfile::tempdir().unwrap();
    for flush in [
        FlushPolicy::EveryRecord,
        FlushPolicy::Buffered(16),
        FlushPolicy::default(),
    ] {
        let path = dir.path().join("s.hwr");
        let steps = vec![
            Block,
            Block,
            Data(b"ab"),
            Data(b"cde"),
            Block,
            Block,
            Block,
            Data(b"f"),
            Eof,
            Eof,
        ];
        let script = Script {
            reads: steps.clone().into(),
            budget: 4,
            written: Vec::new(),
        };
        let options = RecordOptions {
            flush,
            label: Some("script".into()),
            ..RecordOptions::default()
        };
        let mut rec = script.into_recorded_with(&path, options).unwrap();
        assert!(rec.read_pending());
        assert_eq!(
            rec.write(b"0123456").unwrap(),
            4,
            "the inner stream takes 4"
        );
        let mut live = Vec::new();
        let mut buf = [0u8; 16];
        for _ in 0..steps.len() {
            live.push(match rec.read(&mut buf) {
                Ok(n) => Some(buf[..n].to_vec()),
                Err(e) if would_block(&e) => None,
                Err(e) => panic!("{e}"),
            });
        }
        rec.get_mut().budget = 0;
        assert!(would_block(&rec.write(b"x").unwrap_err()));
        if flush == FlushPolicy::EveryRecord {
            // Everything is in the file already, before any flush.
            let (_, got, _) = read_all(&std::fs::read(&path).unwrap()).unwrap();
            assert_eq!(got.len(), 7);
        }
        let script = rec.into_inner();
        assert_eq!(script.written, b"0123");

        let bytes = std::fs::read(&path).unwrap();
        let (header, got, tail) = read_all(&bytes).unwrap();
        assert_eq!(header.label, "script");
        assert_eq!(tail, Tail::Complete);
        let kinds: Vec<_> = got.iter().map(|r| (r.kind, r.payload.clone())).collect();
        use RecordKind as K;
        assert_eq!(
            kinds,
            vec![
                (K::Outbound, b"0123".to_vec()),
                (K::Gap, vec![]),
                (K::Inbound, b"ab".to_vec()),
                (K::Inbound, b"cde".to_vec()),
                (K::Gap, vec![]),
                (K::Inbound, b"f".to_vec()),
                (K::Eof, vec![]),
            ],
            "{flush:?}"
        );
        assert!(got.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));

        // The replay gives the same sequence of read results, with repeated WouldBlocks collapsed.
        let mut replay = Replay::open(&path).unwrap();
        let mut replayed = Vec::new();
        loop {
            match replay.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => replayed.push(Some(buf[..n].to_vec())),
                Err(e) if would_block(&e) => replayed.push(None),
                Err(e) => panic!("{e}"),
            }
        }
        let mut collapsed: Vec<Option<Vec<u8>>> = Vec::new();
        for r in live
            .into_iter()
            .take_while(|r| r.as_deref() != Some(&[][..]))
        {
            if !(r.is_none() && collapsed.last() == Some(&None)) {
                collapsed.push(r);
            }
        }
        assert_eq!(replayed, collapsed);
    }
}

#[test]
fn gaps_can_be_left_out() {
    use Step::*;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nogaps.hwr");
    let script = Script {
        reads: vec![Block, Data(b"a"), Block, Data(b"b")].into(),
        budget: 0,
        written: Vec::new(),
    };
    let options = RecordOptions {
        record_gaps: false,
        ..RecordOptions::default()
    };
    let mut rec = Recorded::create(script, &path, options).unwrap();
    let mut buf = [0u8; 4];
    for _ in 0..4 {
        let _ = rec.read(&mut buf);
    }
    rec.flush_recording().unwrap();
    let (_, got, _) = read_all(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        got.iter().map(|r| r.kind).collect::<Vec<_>>(),
        vec![RecordKind::Inbound; 2]
    );
    drop(rec);
}
