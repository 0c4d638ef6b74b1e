//! The FIX codec's steady state does not allocate: after warm-up, 100,000 NewOrderSingle and
//! ExecutionReport messages encoded into a reused buffer, parsed, validated and read field by field
//! (typed accessors, iteration, a repeating group), and 100,000 ExecutionReports handled by a
//! session, make no heap allocation, counted by a global allocator.
#![cfg(feature = "fix")]

use std::time::{Duration, Instant};

use hotwire::fix::codec::{
    Decimal, Encoder, Header, Message, MsgType, Tag, TimePrecision, UtcTimestamp,
};
use hotwire::fix::{Action, MemoryStore, Now, Session, SessionState};
use hotwire::fix::{SessionConfig, Version};

mod alloc_counter;

use alloc_counter::allocs;

const T0: u64 = 1_709_214_307_000_000_000;

fn header(sender: &'static str, target: &'static str, seq: u64) -> Header<'static> {
    Header {
        sender,
        target,
        seq,
        sending_time: UtcTimestamp(T0 + seq * 1000),
        precision: TimePrecision::Micros,
    }
}

fn encode_order(enc: &mut Encoder, seq: u64) {
    enc.start(b"FIX.4.4", b"D", &header("DESK", "VENUE", seq))
        .str(Tag::ClOrdId, "ORD-000123")
        .str(Tag::Account, "ACC1")
        .str(Tag::Symbol, "EUR/USD")
        .char(Tag::Side, b'1')
        .timestamp(Tag::TransactTime, UtcTimestamp(T0), TimePrecision::Millis)
        .decimal(Tag::OrderQty, Decimal::new(1_000_000, 0))
        .char(Tag::OrdType, b'2')
        .decimal(Tag::Price, Decimal::new(10_850, 4))
        .u64(Tag::NoPartyIds, 2)
        .str(Tag::PartyId, "TRADER1")
        .u64(Tag::PartyRole, 11)
        .str(Tag::PartyId, "FIRM")
        .u64(Tag::PartyRole, 1);
}

fn encode_report(enc: &mut Encoder, seq: u64) {
    enc.start(b"FIX.4.4", b"8", &header("VENUE", "DESK", seq))
        .str(Tag::OrderId, "V-99")
        .str(Tag::ExecId, "E-12345")
        .str(Tag::ClOrdId, "ORD-000123")
        .char(Tag::ExecType, b'F')
        .char(Tag::OrdStatus, b'2')
        .str(Tag::Symbol, "EUR/USD")
        .char(Tag::Side, b'1')
        .decimal(Tag::OrderQty, Decimal::new(1_000_000, 0))
        .decimal(Tag::LastQty, Decimal::new(1_000_000, 0))
        .decimal(Tag::LastPx, Decimal::new(10_850, 4))
        .decimal(Tag::CumQty, Decimal::new(1_000_000, 0))
        .decimal(Tag::LeavesQty, Decimal::new(0, 0))
        .decimal(Tag::AvgPx, Decimal::new(10_850, 4));
}

/// Reads the fields an order-entry client reads; returns something derived so nothing is
/// optimised away.
fn read(msg: &Message<'_>) -> u64 {
    let mut acc = msg.seq_num().unwrap();
    acc += msg.fields().count() as u64;
    acc += msg.decimal(Tag::Price).map_or(0, |d| d.mantissa as u64);
    acc += msg.decimal(Tag::LastPx).map_or(0, |d| d.mantissa as u64);
    acc += msg.str(Tag::ClOrdId).unwrap().len() as u64;
    acc += u64::from(msg.char(Tag::Side).unwrap());
    if msg.msg_type() == MsgType::NewOrderSingle {
        let parties = msg.group(Tag::NoPartyIds, &[448, 447, 452]).unwrap();
        acc += parties
            .map(|p| p.get(448u32).unwrap().len() as u64)
            .sum::<u64>();
    }
    acc
}

#[test]
fn parse_and_encode_do_not_allocate_in_steady_state() {
    let mut enc = Encoder::new();
    let mut scratch = Vec::with_capacity(4096);
    // Warm-up: the encoder's buffer reaches its working size.
    encode_order(&mut enc, 1);
    enc.finish().unwrap();
    encode_report(&mut enc, 1);
    enc.finish().unwrap();

    let before = allocs();
    let mut acc = 0u64;
    for seq in 1..=100_000u64 {
        encode_order(&mut enc, seq);
        let bytes = enc.finish().unwrap();
        let (msg, n) = Message::parse(bytes).unwrap().unwrap();
        assert_eq!(n, bytes.len());
        acc += read(&msg);
        encode_report(&mut enc, seq);
        scratch.clear();
        scratch.extend_from_slice(enc.finish().unwrap());
        let (msg, _) = Message::parse(&scratch).unwrap().unwrap();
        acc += read(&msg);
    }
    let during = allocs() - before;
    assert!(acc > 0);
    assert_eq!(
        during, 0,
        "{during} allocations in 200,000 encodes and parses"
    );
}

#[test]
fn session_handles_execution_reports_without_allocating() {
    let start = Instant::now();
    let now = |ms: u64| Now {
        mono: start + Duration::from_millis(ms),
        utc: UtcTimestamp(T0 + ms * 1_000_000),
    };
    let config = SessionConfig::new(Version::Fix44, "DESK", "VENUE");
    let mut session = Session::new(config, MemoryStore::new(), now(0));
    session.start(now(0)).unwrap();
    let n = session.pending().len();
    session.consume(n);
    let mut enc = Encoder::new();
    enc.start(b"FIX.4.4", b"A", &header("VENUE", "DESK", 1))
        .u64(Tag::HeartBtInt, 30);
    let logon = enc.finish().unwrap().to_vec();
    let msg = Message::parse_frame(&logon).unwrap();
    assert_eq!(session.handle(now(1), &msg).unwrap(), Action::LoggedOn);
    assert_eq!(session.state(), SessionState::Active);
    let mut buf = Vec::with_capacity(4096);
    encode_report(&mut enc, 2);
    buf.extend_from_slice(enc.finish().unwrap());

    let before = allocs();
    for seq in 2..100_002u64 {
        encode_report(&mut enc, seq);
        buf.clear();
        buf.extend_from_slice(enc.finish().unwrap());
        let msg = Message::parse_frame(&buf).unwrap();
        assert_eq!(session.handle(now(2), &msg).unwrap(), Action::Deliver);
    }
    let during = allocs() - before;
    assert_eq!(during, 0, "{during} allocations handling 100,000 reports");
}
