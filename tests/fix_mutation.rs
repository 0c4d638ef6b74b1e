//! Randomised robustness on stable Rust (the cargo-fuzz target `fix_parse` does the same with
//! coverage guidance): valid messages are mutated — bytes flipped, inserted, deleted, lengths and
//! checksums rewritten, messages cut and glued — and thrown at the parser and at a logged-on
//! session. Nothing may panic; whatever parses must be self-consistent; memory stays bounded.
#![cfg(feature = "fix")]

use std::time::{Duration, Instant};

use hotwire::fix::codec::{
    checksum, frame_len, Decimal, Encoder, Header, Message, Tag, TimePrecision, UtcTimestamp, SOH,
};
use hotwire::fix::{MemoryStore, Now, Session, SessionState};
use hotwire::fix::{SessionConfig, Version};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut enc = Encoder::new();
    let mut out = Vec::new();
    for (i, t) in [b"D", b"8", b"0", b"1", b"2", b"4", b"5", b"3", b"A"]
        .iter()
        .enumerate()
    {
        let h = Header {
            sender: "VENUE",
            target: "DESK",
            seq: 2 + i as u64,
            sending_time: UtcTimestamp(1_709_214_307_000_000_000),
            precision: TimePrecision::Millis,
        };
        enc.start(b"FIX.4.4", *t, &h)
            .str(Tag::ClOrdId, "ORD-1")
            .u64(Tag::NoPartyIds, 2)
            .str(Tag::PartyId, "A")
            .u64(Tag::PartyRole, 1)
            .str(Tag::PartyId, "B")
            .u64(Tag::PartyRole, 3)
            .decimal(Tag::Price, Decimal::new(10_125, 2))
            .u64(Tag::BeginSeqNo, 1)
            .u64(Tag::EndSeqNo, 0)
            .u64(Tag::NewSeqNo, 3)
            .str(Tag::TestReqId, "T")
            .u64(Tag::RefSeqNum, 1);
        out.push(enc.finish().unwrap().to_vec());
    }
    out
}

/// Rewrites BodyLength and CheckSum so a mutated body still frames (reaches the deeper checks).
fn refit(m: &[u8]) -> Vec<u8> {
    let Some(body_at) = m.windows(4).position(|w| w == b"\x0135=").map(|p| p + 1) else {
        return m.to_vec();
    };
    let body_end = m.len().saturating_sub(7).max(body_at);
    let body = &m[body_at..body_end];
    let mut out = format!("8=FIX.4.4\x019={}\x01", body.len()).into_bytes();
    out.extend_from_slice(body);
    let sum = checksum(&out);
    out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    out
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut m = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(m.len() + 1);
        match rng.below(9) {
            0 if at < m.len() => m[at] ^= 1 << rng.below(8),
            1 if at < m.len() => m[at] = [SOH, b'=', b'0', b'9', b'|', 0xff][rng.below(6)],
            2 => m.insert(at, [SOH, b'=', b'1', b'A'][rng.below(4)]),
            3 if at < m.len() => {
                m.remove(at);
            }
            4 => m.truncate(at),
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(other.len());
                m.extend_from_slice(&other[..cut]);
            }
            6 => m = refit(&m),
            7 => {
                // A random BodyLength, zero-padded or huge.
                let len = [0usize, 1, 5, 99_999_999, rng.below(400)][rng.below(5)];
                let text = String::from_utf8_lossy(&m).into_owned();
                if let Some(p) = text.find("\u{1}9=") {
                    if let Some(e) = text[p + 3..].find('\u{1}') {
                        let mut t = text.clone();
                        t.replace_range(p + 3..p + 3 + e, &format!("{len:06}"));
                        m = t.into_bytes();
                    }
                }
            }
            _ => {
                // Duplicate a random slice in place.
                let end = (at + rng.below(20)).min(m.len());
                let piece = m[at.min(end)..end].to_vec();
                m.splice(at..at, piece);
            }
        }
    }
    m
}

fn exercise(msg: &Message<'_>) -> usize {
    let mut n = msg.fields().count();
    for f in msg.fields() {
        n += f.value.len();
        let _ = (
            f.as_u64(),
            f.as_i64(),
            f.as_decimal(),
            f.as_timestamp(),
            f.as_str(),
        );
    }
    for tag in [8u32, 9, 10, 11, 34, 35, 44, 453, 999] {
        n += msg.get(tag).map_or(0, <[u8]>::len);
    }
    let _ = (
        msg.seq_num(),
        msg.poss_dup(),
        msg.msg_type(),
        msg.flag(Tag::GapFillFlag),
    );
    if let Ok(g) = msg.group(453u32, &[448, 452]) {
        n += g.map(|e| e.count()).sum::<usize>();
    }
    n
}

#[test]
fn mutated_messages_never_panic_and_parse_consistently() {
    let seeds = seeds();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start = Instant::now();
    let now = |ms: u64| Now {
        mono: start + Duration::from_millis(ms),
        utc: UtcTimestamp(1_709_214_307_000_000_000),
    };
    let new_session = || {
        let mut s = Session::new(
            SessionConfig::new(Version::Fix44, "DESK", "VENUE"),
            MemoryStore::new(),
            now(0),
        );
        s.start(now(0)).unwrap();
        let logon = {
            let mut enc = Encoder::new();
            let h = Header {
                sender: "VENUE",
                target: "DESK",
                seq: 1,
                sending_time: UtcTimestamp(1_709_214_307_000_000_000),
                precision: TimePrecision::Millis,
            };
            enc.start(b"FIX.4.4", b"A", &h).u64(Tag::HeartBtInt, 30);
            enc.finish().unwrap().to_vec()
        };
        s.handle(now(1), &Message::parse_frame(&logon).unwrap())
            .unwrap();
        s
    };
    let mut session = new_session();
    let (mut parsed, mut rejected) = (0u32, 0u32);
    for i in 0..200_000u64 {
        let m = mutate(&mut rng, &seeds);
        if let Ok(Some(n)) = frame_len(&m, 4096) {
            assert!(n <= m.len() && n <= 4096);
        }
        match Message::parse_with_max(&m, 4096) {
            Ok(Some((msg, n))) => {
                parsed += 1;
                assert_eq!(msg.as_bytes(), &m[..n]);
                let trailer = &m[n - 7..n];
                let declared: u32 = std::str::from_utf8(&trailer[3..6])
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(declared, u32::from(checksum(&m[..n - 7])));
                exercise(&msg);
                let _ = session.handle(now(2 + i), &msg);
                let _ = session.on_timer(now(2 + i));
                let pending = session.pending().len();
                session.consume(pending);
                if session.state() == SessionState::Ended {
                    session = new_session();
                }
            }
            Ok(None) => {}
            Err(_) => rejected += 1,
        }
    }
    // The mutations reach both sides of the parser.
    assert!(
        parsed > 10_000 && rejected > 10_000,
        "{parsed} parsed, {rejected} rejected"
    );
}
