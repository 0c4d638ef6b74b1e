//! Parse-and-validate and encode throughput of FIX 4.4 NewOrderSingle and ExecutionReport messages:
//! hotwire's codec against fefix 0.7, in the same process, on the same bytes. Prints messages/s per
//! case and the ratio.
//!
//! ```text
//! cargo run --release --manifest-path benches/fefix-compare/Cargo.toml [-- --seconds 1.0]
//! ```
//!
//! What each side does per message:
//!
//! - **parse**: frame, validate BodyLength and CheckSum, then read ClOrdID, Symbol, Side, OrderQty,
//!   Price/LastPx (as a decimal for hotwire, as `f64` for fefix) and MsgSeqNum. fefix's decoder
//!   checks the CheckSum when the separator is SOH (its default) and indexes every field in a hash
//!   map; hotwire validates the syntax of every field, indexes nothing and scans on lookup.
//! - **encode**: the standard header (8, 9, 35, 49, 56, 34, 52) and the same body fields into a
//!   reused buffer, BodyLength and CheckSum computed. hotwire formats SendingTime and the decimals
//!   itself; fefix is handed them pre-formatted (which favours fefix).
//!
//! Recorded on the project's 2-core build machine (shared, so ±20 % from run to run), release
//! profile, `cargo run --release --manifest-path benches/fefix-compare/Cargo.toml`:
//!
//! ```text
//! case (FIX.4.4)                hotwire msg/s    fefix msg/s   ratio
//! parse NewOrderSingle                5125803        1279931   4.00x
//! parse ExecutionReport               4413276        1064152   4.15x
//! encode NewOrderSingle               5830800        1878112   3.10x
//! encode ExecutionReport              4579441        1605871   2.85x
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use fefix::prelude::*;
use fefix::tagvalue::{Config, Decoder, Encoder as FeEncoder, FieldAccess};
use fefix::TagU16;
use hotwire::fix::codec::{Decimal, Encoder, Header, Message, Tag, TimePrecision, UtcTimestamp};

const T0: u64 = 1_709_214_307_123_000_000;

fn header(sender: &'static str, target: &'static str, seq: u64) -> Header<'static> {
    Header {
        sender,
        target,
        seq,
        sending_time: UtcTimestamp(T0),
        precision: TimePrecision::Millis,
    }
}

fn hw_order(enc: &mut Encoder, seq: u64) -> &[u8] {
    enc.start(b"FIX.4.4", b"D", &header("DESK", "VENUE", seq))
        .str(Tag::ClOrdId, "ORD-000123")
        .str(Tag::Account, "ACC1")
        .str(Tag::Symbol, "EUR/USD")
        .char(Tag::Side, b'1')
        .timestamp(Tag::TransactTime, UtcTimestamp(T0), TimePrecision::Millis)
        .decimal(Tag::OrderQty, Decimal::new(1_000_000, 0))
        .char(Tag::OrdType, b'2')
        .decimal(Tag::Price, Decimal::new(10_850, 4))
        .char(Tag::TimeInForce, b'0');
    enc.finish().expect("encode")
}

fn hw_report(enc: &mut Encoder, seq: u64) -> &[u8] {
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
    enc.finish().expect("encode")
}

fn tag(n: u16) -> TagU16 {
    TagU16::new(n).expect("non-zero tag")
}

/// The same fields as `hw_order` / `hw_report`, through fefix's encoder.
fn fe_encode<'a>(
    enc: &'a mut FeEncoder<Config>,
    buf: &'a mut Vec<u8>,
    report: bool,
    seq: u64,
) -> &'a [u8] {
    buf.clear();
    let (msg_type, sender, target): (&[u8], &str, &str) = if report {
        (b"8", "VENUE", "DESK")
    } else {
        (b"D", "DESK", "VENUE")
    };
    let mut m = enc.start_message(b"FIX.4.4", buf, msg_type);
    m.set_any(tag(49), sender);
    m.set_any(tag(56), target);
    m.set_any(tag(34), seq);
    m.set_any(tag(52), &b"20240229-13:45:07.123"[..]);
    if report {
        m.set_any(tag(37), "V-99");
        m.set_any(tag(17), "E-12345");
        m.set_any(tag(11), "ORD-000123");
        m.set_any(tag(150), &b"F"[..]);
        m.set_any(tag(39), &b"2"[..]);
        m.set_any(tag(55), "EUR/USD");
        m.set_any(tag(54), &b"1"[..]);
        m.set_any(tag(38), 1_000_000u64);
        m.set_any(tag(32), 1_000_000u64);
        m.set_any(tag(31), &b"1.0850"[..]);
        m.set_any(tag(14), 1_000_000u64);
        m.set_any(tag(151), 0u64);
        m.set_any(tag(6), &b"1.0850"[..]);
    } else {
        m.set_any(tag(11), "ORD-000123");
        m.set_any(tag(1), "ACC1");
        m.set_any(tag(55), "EUR/USD");
        m.set_any(tag(54), &b"1"[..]);
        m.set_any(tag(60), &b"20240229-13:45:07.123"[..]);
        m.set_any(tag(38), 1_000_000u64);
        m.set_any(tag(40), &b"2"[..]);
        m.set_any(tag(44), &b"1.0850"[..]);
        m.set_any(tag(59), &b"0"[..]);
    }
    m.wrap()
}

/// Runs `f` in batches for about `secs` seconds, five times; the best rate in messages/s.
fn rate(secs: f64, mut f: impl FnMut() -> u64) -> f64 {
    let mut best: f64 = 0.0;
    for _ in 0..5 {
        let deadline = Duration::from_secs_f64(secs / 5.0);
        let start = Instant::now();
        let mut n = 0u64;
        let mut sink = 0u64;
        while start.elapsed() < deadline {
            for _ in 0..1000 {
                sink = sink.wrapping_add(f());
            }
            n += 1000;
        }
        black_box(sink);
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let mut secs = 2.0;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--seconds") {
        secs = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(secs);
    }
    let mut hw = Encoder::new();
    let order = hw_order(&mut hw, 1234).to_vec();
    let report = hw_report(&mut hw, 1234).to_vec();
    let mut fe = FeEncoder::<Config>::default();
    let mut fe_buf = Vec::with_capacity(1024);
    let mut decoder = Decoder::<Config>::new(Dictionary::fix44());
    // Both sides must accept both messages (and fefix must read what hotwire reads).
    for bytes in [&order, &report] {
        let m = Message::parse(bytes).expect("hotwire").expect("complete").0;
        let f = decoder
            .decode(bytes.as_slice())
            .expect("fefix decodes hotwire's bytes");
        assert_eq!(f.fv_raw(&11u32), m.get(Tag::ClOrdId));
    }
    for report in [false, true] {
        let bytes = fe_encode(&mut fe, &mut fe_buf, report, 1).to_vec();
        Message::parse(&bytes)
            .expect("hotwire decodes fefix's bytes")
            .expect("complete");
    }

    println!(
        "{:<28} {:>14} {:>14} {:>7}",
        "case (FIX.4.4)", "hotwire msg/s", "fefix msg/s", "ratio"
    );
    let row = |name: &str, h: f64, f: f64| {
        println!("{name:<28} {h:>14.0} {f:>14.0} {:>6.2}x", h / f);
    };
    for (name, bytes, price) in [
        ("parse NewOrderSingle", &order, 44u32),
        ("parse ExecutionReport", &report, 31u32),
    ] {
        let h = rate(secs, || {
            let (m, n) = Message::parse(black_box(bytes)).unwrap().unwrap();
            let mut acc = n as u64 + m.seq_num().unwrap();
            acc += m.str(Tag::ClOrdId).unwrap().len() as u64;
            acc += m.str(Tag::Symbol).unwrap().len() as u64;
            acc += u64::from(m.char(Tag::Side).unwrap());
            acc += m.decimal(Tag::OrderQty).unwrap().mantissa as u64;
            acc += m.decimal(price).unwrap().mantissa as u64;
            acc
        });
        let f = rate(secs, || {
            let m = decoder.decode(black_box(bytes.as_slice())).unwrap();
            let mut acc = m.fv::<u64>(&34u32).unwrap();
            acc += m.fv::<&str>(&11u32).unwrap().len() as u64;
            acc += m.fv::<&str>(&55u32).unwrap().len() as u64;
            acc += u64::from(m.fv_raw(&54u32).unwrap()[0]);
            acc += m.fv::<u64>(&38u32).unwrap();
            acc += m.fv::<f64>(&price).unwrap() as u64;
            acc
        });
        row(name, h, f);
    }
    for (name, report) in [
        ("encode NewOrderSingle", false),
        ("encode ExecutionReport", true),
    ] {
        let mut seq = 0;
        let h = rate(secs, || {
            seq += 1;
            let bytes = if report {
                hw_report(&mut hw, seq)
            } else {
                hw_order(&mut hw, seq)
            };
            bytes.len() as u64
        });
        let f = rate(secs, || {
            seq += 1;
            fe_encode(&mut fe, &mut fe_buf, report, seq).len() as u64
        });
        row(name, h, f);
    }
}
