//! Scripted session tests: a fake counterparty writes messages, the session's output is parsed.

use std::time::{Duration, Instant};

use super::*;
use crate::fix::codec::{Decimal, Message};

const T0: u64 = 1_709_214_307_000_000_000;

struct Script {
    session: Session<MemoryStore>,
    start: Instant,
    /// Counterparty's next MsgSeqNum.
    their_seq: u64,
    enc: Encoder,
    /// SendingTime of the counterparty's messages.
    sending_time: u64,
}

fn now_at(start: Instant, secs: f64) -> Now {
    let d = Duration::from_secs_f64(secs);
    Now {
        mono: start + d,
        utc: UtcTimestamp(T0 + d.as_nanos() as u64),
    }
}

impl Script {
    fn new(config: SessionConfig) -> Script {
        let start = Instant::now();
        let session = Session::new(config, MemoryStore::new(), now_at(start, 0.0));
        Script {
            session,
            start,
            their_seq: 1,
            enc: Encoder::new(),
            sending_time: T0,
        }
    }

    fn fix44() -> Script {
        Script::new(SessionConfig::new(Version::Fix44, "DESK", "VENUE"))
    }

    fn at(&self, secs: f64) -> Now {
        now_at(self.start, secs)
    }

    /// Everything the session wants to send, parsed, as (type, raw bytes).
    fn sent(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = self.session.pending();
        while let Some((m, n)) = Message::parse(buf).unwrap() {
            out.push(m.as_bytes().to_vec());
            buf = &buf[n..];
        }
        assert!(buf.is_empty(), "partial message in the output");
        let n = self.session.pending().len();
        self.session.consume(n);
        out
    }

    /// Feeds a counterparty message with MsgSeqNum `seq`.
    fn feed_seq(
        &mut self,
        secs: f64,
        seq: u64,
        msg_type: MsgType,
        body: impl FnOnce(&mut Encoder),
    ) -> Result<Action, SessionError> {
        let h = Header {
            sender: "VENUE",
            target: "DESK",
            seq,
            sending_time: UtcTimestamp(self.sending_time),
            precision: TimePrecision::Millis,
        };
        self.enc.start(b"FIX.4.4", msg_type.as_bytes(), &h);
        body(&mut self.enc);
        let bytes = self.enc.finish().unwrap().to_vec();
        let msg = Message::parse_frame(&bytes).unwrap();
        let now = self.at(secs);
        self.session.handle(now, &msg)
    }

    /// Feeds the counterparty's next message in sequence.
    fn feed(
        &mut self,
        secs: f64,
        msg_type: MsgType,
        body: impl FnOnce(&mut Encoder),
    ) -> Result<Action, SessionError> {
        let seq = self.their_seq;
        self.their_seq += 1;
        self.feed_seq(secs, seq, msg_type, body)
    }

    fn logged_on(mut self) -> Script {
        self.session.start(self.at(0.0)).unwrap();
        let logon = self.sent();
        assert_eq!(logon.len(), 1);
        let action = self.feed(0.01, MsgType::Logon, |e| {
            e.u64(98u32, 0).u64(108u32, 30);
        });
        assert_eq!(action.unwrap(), Action::LoggedOn);
        assert_eq!(self.session.state(), SessionState::Active);
        self
    }

    fn order(&mut self, secs: f64, id: &str) -> u64 {
        let now = self.at(secs);
        self.session
            .send(now, b"D", |e| {
                e.str(Tag::ClOrdId, id)
                    .str(Tag::Symbol, "ABC")
                    .char(Tag::Side, b'1')
                    .decimal(Tag::OrderQty, Decimal::new(100, 0))
                    .char(Tag::OrdType, b'2')
                    .decimal(Tag::Price, Decimal::new(1005, 1));
            })
            .unwrap()
    }
}

fn parse(bytes: &[u8]) -> Message<'_> {
    Message::parse_frame(bytes).unwrap()
}

#[test]
fn logon_carries_the_configured_fields() {
    let mut config = SessionConfig::new(Version::Fixt11, "DESK", "VENUE");
    config.reset_on_logon = true;
    config.username = Some("trader".into());
    config.password = Some("secret".into());
    config.heartbeat_interval = Duration::from_secs(5);
    config.precision = TimePrecision::Micros;
    let mut s = Script::new(config);
    assert_eq!(s.session.state(), SessionState::Idle);
    s.session.start(s.at(0.0)).unwrap();
    assert_eq!(s.session.state(), SessionState::AwaitingLogon);
    let sent = s.sent();
    let logon = parse(&sent[0]);
    assert_eq!(logon.begin_string(), b"FIXT.1.1");
    assert_eq!(logon.msg_type(), MsgType::Logon);
    assert_eq!(logon.seq_num(), Ok(1));
    assert_eq!(logon.u64(Tag::HeartBtInt), Ok(5));
    assert_eq!(logon.str(Tag::ResetSeqNumFlag), Ok("Y"));
    assert_eq!(logon.str(Tag::Username), Ok("trader"));
    assert_eq!(logon.str(Tag::Password), Ok("secret"));
    assert_eq!(logon.str(Tag::DefaultApplVerId), Ok("9"));
    assert_eq!(logon.str(Tag::SendingTime), Ok("20240229-13:45:07.000000"));
    // Nothing application-level can go out before the Logon is answered.
    assert!(matches!(
        s.session.send(s.at(0.0), b"D", |_| {}),
        Err(SessionError::NotActive)
    ));
}

#[test]
fn heartbeats_and_test_requests_both_ways() {
    let mut s = Script::fix44().logged_on();
    // Quiet for a heartbeat interval: a Heartbeat goes out.
    s.session.on_timer(s.at(29.0)).unwrap();
    assert!(s.sent().is_empty());
    s.feed(29.5, MsgType::Heartbeat, |_| {}).unwrap();
    s.session.on_timer(s.at(30.0)).unwrap();
    let hb = s.sent();
    assert_eq!(parse(&hb[0]).msg_type(), MsgType::Heartbeat);
    // The counterparty's TestRequest is answered with its TestReqID.
    assert_eq!(
        s.feed(31.0, MsgType::TestRequest, |e| {
            e.str(Tag::TestReqId, "ping-7");
        }),
        Ok(Action::Handled)
    );
    let reply = s.sent();
    let reply = parse(&reply[0]);
    assert_eq!(
        (reply.msg_type(), reply.str(Tag::TestReqId)),
        (MsgType::Heartbeat, Ok("ping-7"))
    );
    // Silence from the counterparty for HeartBtInt + 20 %: a TestRequest.
    s.session.on_timer(s.at(31.0 + 36.0)).unwrap();
    let out = s.sent();
    let tr = out
        .iter()
        .map(|b| parse(b))
        .find(|m| m.msg_type() == MsgType::TestRequest)
        .unwrap();
    assert_eq!(tr.str(Tag::TestReqId), Ok("TEST-1"));
    assert!(s.session.test_request_pending());
    // The matching Heartbeat clears it.
    s.feed(68.0, MsgType::Heartbeat, |e| {
        e.str(Tag::TestReqId, "TEST-1");
    })
    .unwrap();
    assert!(!s.session.test_request_pending());
    // Another silence, another TestRequest, this time unanswered: the session ends.
    s.session.on_timer(s.at(68.0 + 37.0)).unwrap();
    assert!(s.session.test_request_pending());
    assert!(matches!(
        s.session.on_timer(s.at(68.0 + 37.0 + 37.0)),
        Err(SessionError::HeartbeatTimeout)
    ));
    assert_eq!(s.session.state(), SessionState::Ended);
}

#[test]
fn resend_request_is_served_with_poss_dup_and_gap_fills() {
    let mut s = Script::fix44().logged_on();
    // Logon was 1; orders 2 and 3; a TestRequest 4 (it also stands in for the heartbeat); order 5.
    assert_eq!(s.order(1.0, "A"), 2);
    assert_eq!(s.order(1.1, "B"), 3);
    s.session.on_timer(s.at(40.0)).unwrap();
    assert_eq!(s.sent().len(), 3); // the two orders and the TestRequest
    assert_eq!(s.order(41.0, "C"), 5);
    s.sent();
    s.feed(42.0, MsgType::ResendRequest, |e| {
        e.u64(Tag::BeginSeqNo, 1).u64(Tag::EndSeqNo, 0);
    })
    .unwrap();
    let out: Vec<Vec<u8>> = s.sent();
    let msgs: Vec<Message<'_>> = out.iter().map(|b| parse(b)).collect();
    let summary: Vec<(MsgType, u64, Option<u64>)> = msgs
        .iter()
        .map(|m| {
            (
                m.msg_type(),
                m.seq_num().unwrap(),
                m.u64(Tag::NewSeqNo).ok(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (MsgType::SequenceReset, 1, Some(2)),
            (MsgType::NewOrderSingle, 2, None),
            (MsgType::NewOrderSingle, 3, None),
            (MsgType::SequenceReset, 4, Some(5)),
            (MsgType::NewOrderSingle, 5, None),
        ]
    );
    for m in &msgs {
        assert!(m.poss_dup(), "{m:?}");
        assert!(m.get(Tag::OrigSendingTime).is_some());
    }
    assert_eq!(msgs[0].str(Tag::GapFillFlag), Ok("Y"));
    assert_eq!(msgs[1].str(Tag::ClOrdId), Ok("A"));
    assert_eq!(
        msgs[1].str(Tag::OrigSendingTime),
        Ok("20240229-13:45:08.000")
    );
    assert_eq!(msgs[4].str(Tag::ClOrdId), Ok("C"));
    assert_eq!(msgs[4].decimal(Tag::Price), Ok(Decimal::new(1005, 1)));
    // Resends do not consume sequence numbers.
    assert_eq!(s.session.store().next_sender_seq(), 6);
    // A bounded range ends with a gap fill to the number after it.
    s.feed(43.0, MsgType::ResendRequest, |e| {
        e.u64(Tag::BeginSeqNo, 4).u64(Tag::EndSeqNo, 4);
    })
    .unwrap();
    let out = s.sent();
    assert_eq!(out.len(), 1);
    assert_eq!(parse(&out[0]).u64(Tag::NewSeqNo), Ok(5));
}

#[test]
fn inbound_gap_without_a_queue_is_recovered_through_one_resend_request() {
    let mut config = SessionConfig::new(Version::Fix44, "DESK", "VENUE");
    config.gap_queue_messages = 0;
    let mut s = Script::new(config).logged_on();
    assert_eq!(
        s.feed(1.0, MsgType::ExecutionReport, |_| {}),
        Ok(Action::Deliver)
    );
    // 3 and 4 are lost; 5 and 6 arrive.
    assert_eq!(
        s.feed_seq(2.0, 5, MsgType::ExecutionReport, |_| {}),
        Ok(Action::Ignored)
    );
    let out = s.sent();
    assert_eq!(out.len(), 1);
    let rr = parse(&out[0]);
    assert_eq!(rr.msg_type(), MsgType::ResendRequest);
    assert_eq!(
        (rr.u64(Tag::BeginSeqNo), rr.u64(Tag::EndSeqNo)),
        (Ok(3), Ok(0))
    );
    assert_eq!(
        s.feed_seq(2.1, 6, MsgType::ExecutionReport, |_| {}),
        Ok(Action::Ignored)
    );
    assert!(s.sent().is_empty(), "one ResendRequest per gap");
    // The resend: 3 as a gap fill, 4..6 as possible duplicates.
    let gf = s.feed_seq(3.0, 3, MsgType::SequenceReset, |e| {
        e.bool(Tag::PossDupFlag, true)
            .bool(Tag::GapFillFlag, true)
            .u64(Tag::NewSeqNo, 4);
    });
    assert_eq!(gf, Ok(Action::Handled));
    for seq in 4..=6 {
        let a = s.feed_seq(3.0, seq, MsgType::ExecutionReport, poss_dup);
        assert_eq!(a, Ok(Action::Deliver), "{seq}");
    }
    assert_eq!(s.session.store().next_target_seq(), 7);
    // A duplicate below the expected number is ignored.
    let dup = s.feed_seq(4.0, 5, MsgType::ExecutionReport, poss_dup);
    assert_eq!(dup, Ok(Action::Ignored));
    assert!(s.sent().is_empty());
    // A new gap later gets a new ResendRequest.
    assert_eq!(
        s.feed_seq(5.0, 9, MsgType::Heartbeat, |_| {}),
        Ok(Action::Ignored)
    );
    assert_eq!(parse(&s.sent()[0]).u64(Tag::BeginSeqNo), Ok(7));
}

#[test]
fn seq_too_low_ends_the_session_with_a_reason() {
    let mut s = Script::fix44().logged_on();
    s.feed(1.0, MsgType::Heartbeat, |_| {}).unwrap();
    let err = s.feed_seq(2.0, 2, MsgType::ExecutionReport, |_| {});
    assert!(matches!(
        err,
        Err(SessionError::SeqTooLow {
            expected: 3,
            received: 2
        })
    ));
    assert_eq!(s.session.state(), SessionState::Ended);
    let out = s.sent();
    let logout = parse(&out[0]);
    assert_eq!(logout.msg_type(), MsgType::Logout);
    assert_eq!(
        logout.str(Tag::Text),
        Ok("MsgSeqNum too low, expecting 3 but received 2")
    );
}

#[test]
fn sequence_reset_both_modes() {
    let mut s = Script::fix44().logged_on();
    // Reset mode ignores MsgSeqNum.
    let a = s.feed_seq(1.0, 99, MsgType::SequenceReset, |e| {
        e.u64(Tag::NewSeqNo, 50);
    });
    assert_eq!(a, Ok(Action::Handled));
    assert_eq!(s.session.store().next_target_seq(), 50);
    assert!(s.sent().is_empty());
    // Gap fill mode in sequence.
    let a = s.feed_seq(1.0, 50, MsgType::SequenceReset, |e| {
        e.bool(Tag::GapFillFlag, true).u64(Tag::NewSeqNo, 60);
    });
    assert_eq!(a, Ok(Action::Handled));
    assert_eq!(s.session.store().next_target_seq(), 60);
}

#[test]
fn session_reject_is_reported() {
    let mut s = Script::fix44().logged_on();
    let seq = s.order(1.0, "X");
    let a = s.feed(2.0, MsgType::Reject, |e| {
        e.u64(Tag::RefSeqNum, seq)
            .u64(Tag::SessionRejectReason, 1)
            .str(Tag::Text, "bad");
    });
    assert_eq!(
        a,
        Ok(Action::Rejected {
            ref_seq: seq,
            reason: Some(1)
        })
    );
    assert_eq!(s.session.state(), SessionState::Active);
}

#[test]
fn logout_handshake_both_ways() {
    let mut s = Script::fix44().logged_on();
    s.session.logout(s.at(1.0), Some("done")).unwrap();
    assert_eq!(s.session.state(), SessionState::AwaitingLogout);
    let out = s.sent();
    assert_eq!(parse(&out[0]).str(Tag::Text), Ok("done"));
    assert_eq!(s.feed(1.1, MsgType::Logout, |_| {}), Ok(Action::LoggedOut));
    assert_eq!(s.session.state(), SessionState::Ended);
    assert!(s.sent().is_empty(), "a Logout reply is not answered");

    let mut s = Script::fix44().logged_on();
    assert_eq!(s.feed(1.0, MsgType::Logout, |_| {}), Ok(Action::LoggedOut));
    let out = s.sent();
    assert_eq!(parse(&out[0]).msg_type(), MsgType::Logout);
    assert_eq!(s.session.state(), SessionState::Ended);

    // Unanswered: the logout times out.
    let mut s = Script::fix44().logged_on();
    s.session.logout(s.at(1.0), None).unwrap();
    s.session.on_timer(s.at(2.0)).unwrap();
    assert!(matches!(
        s.session.on_timer(s.at(6.5)),
        Err(SessionError::LogoutTimeout)
    ));
}

#[test]
fn logon_failures() {
    let mut s = Script::fix44();
    s.session.start(s.at(0.0)).unwrap();
    assert!(matches!(
        s.session.on_timer(s.at(10.5)),
        Err(SessionError::LogonTimeout)
    ));

    let mut s = Script::fix44();
    s.session.start(s.at(0.0)).unwrap();
    let r = s.feed(0.1, MsgType::Logout, |e| {
        e.str(Tag::Text, "no such user");
    });
    assert!(matches!(r, Err(SessionError::LogonRejected)));

    // A message from another CompID.
    let mut s = Script::fix44().logged_on();
    let h = Header {
        sender: "SOMEONE",
        target: "DESK",
        seq: 2,
        sending_time: UtcTimestamp(T0),
        precision: TimePrecision::Millis,
    };
    let mut enc = Encoder::new();
    enc.start(b"FIX.4.4", b"0", &h);
    let bytes = enc.finish().unwrap().to_vec();
    let r = s.session.handle(s.at(1.0), &parse(&bytes));
    assert!(matches!(r, Err(SessionError::WrongSession)));
    assert_eq!(parse(&s.sent()[0]).msg_type(), MsgType::Logout);
}

#[test]
fn logon_answer_beyond_expected_requests_a_resend() {
    let mut s = Script::fix44();
    s.session.start(s.at(0.0)).unwrap();
    s.sent();
    let a = s.feed_seq(0.1, 4, MsgType::Logon, |e| {
        e.u64(108u32, 30);
    });
    assert_eq!(a, Ok(Action::LoggedOn));
    let rr = s.sent();
    let rr = parse(&rr[0]);
    assert_eq!(
        (
            rr.msg_type(),
            rr.u64(Tag::BeginSeqNo),
            rr.u64(Tag::EndSeqNo)
        ),
        (MsgType::ResendRequest, Ok(1), Ok(3))
    );
    // The resend fills 1..3; the Logon's own number (queued as handled) follows without a word.
    for seq in 1..=3 {
        let a = s.feed_seq(0.2, seq, MsgType::ExecutionReport, poss_dup);
        assert_eq!(a, Ok(Action::Deliver));
    }
    let mut buf = Vec::new();
    assert!(s.session.take_queued(&mut buf));
    assert_eq!(
        s.session.handle(s.at(0.3), &parse(&buf)),
        Ok(Action::Ignored)
    );
    assert_eq!(s.session.store().next_target_seq(), 5);
    assert!(s.sent().is_empty());
}

/// PossDupFlag=Y with OrigSendingTime, as a resend carries them.
fn poss_dup(e: &mut Encoder) {
    e.bool(Tag::PossDupFlag, true).timestamp(
        Tag::OrigSendingTime,
        UtcTimestamp(T0 - 1_000_000_000),
        TimePrecision::Millis,
    );
}

/// Hands every queued message that is next in sequence back to the session: their actions.
fn drain_queue(s: &mut Script, secs: f64) -> Vec<(u64, Action)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while s.session.take_queued(&mut buf) {
        let msg = parse(&buf);
        out.push((
            msg.seq_num().unwrap(),
            s.session.handle(s.at(secs), &msg).unwrap(),
        ));
    }
    out
}

fn resend_range(bytes: &[u8]) -> (MsgType, u64, u64) {
    let m = parse(bytes);
    (
        m.msg_type(),
        m.u64(Tag::BeginSeqNo).unwrap(),
        m.u64(Tag::EndSeqNo).unwrap(),
    )
}

#[test]
fn messages_beyond_a_gap_are_queued_and_delivered_in_order() {
    let mut s = Script::fix44().logged_on();
    let er = MsgType::ExecutionReport;
    assert_eq!(s.feed(1.0, er, |_| {}), Ok(Action::Deliver));
    // 3 and 4 are lost; 5 and 6 arrive, then 8 (7 lost too).
    assert_eq!(s.feed_seq(2.0, 5, er, |_| {}), Ok(Action::Queued));
    let out = s.sent();
    assert_eq!(out.len(), 1);
    assert_eq!(resend_range(&out[0]), (MsgType::ResendRequest, 3, 4));
    assert_eq!(s.feed_seq(2.1, 6, er, |_| {}), Ok(Action::Queued));
    assert!(s.sent().is_empty(), "5 and 6 are queued, 3..4 requested");
    assert_eq!(s.feed_seq(2.2, 8, er, |_| {}), Ok(Action::Queued));
    let out = s.sent();
    assert_eq!(out.len(), 1);
    assert_eq!(resend_range(&out[0]), (MsgType::ResendRequest, 7, 7));
    assert_eq!(s.session.queued(), 3);
    // Nothing is next in sequence yet.
    assert!(drain_queue(&mut s, 2.5).is_empty());
    // The resend of 3..4: a gap fill over 3, then 4; the queued 5 and 6 follow; 7 is still due.
    let gf = s.feed_seq(3.0, 3, MsgType::SequenceReset, |e| {
        e.bool(Tag::PossDupFlag, true)
            .bool(Tag::GapFillFlag, true)
            .u64(Tag::NewSeqNo, 4);
    });
    assert_eq!(gf, Ok(Action::Handled));
    assert!(drain_queue(&mut s, 3.0).is_empty());
    assert_eq!(s.feed_seq(3.0, 4, er, poss_dup), Ok(Action::Deliver));
    assert_eq!(
        drain_queue(&mut s, 3.0),
        [(5, Action::Deliver), (6, Action::Deliver)]
    );
    assert_eq!(s.feed_seq(3.1, 7, er, poss_dup), Ok(Action::Deliver));
    assert_eq!(drain_queue(&mut s, 3.1), [(8, Action::Deliver)]);
    assert_eq!(
        (s.session.store().next_target_seq(), s.session.queued()),
        (9, 0)
    );
    assert!(s.sent().is_empty(), "nothing requested twice");
    // A later gap starts afresh.
    assert_eq!(s.feed_seq(4.0, 11, er, |_| {}), Ok(Action::Queued));
    assert_eq!(resend_range(&s.sent()[0]), (MsgType::ResendRequest, 9, 10));
}

#[test]
fn a_resend_request_beyond_a_gap_is_served_once() {
    let mut s = Script::fix44().logged_on();
    s.order(0.5, "a");
    s.sent();
    // Their 2 is lost; 3 asks for our order again.
    let a = s.feed_seq(1.0, 3, MsgType::ResendRequest, |e| {
        e.u64(Tag::BeginSeqNo, 2).u64(Tag::EndSeqNo, 0);
    });
    assert_eq!(a, Ok(Action::Queued));
    let out = s.sent();
    let types: Vec<MsgType> = out.iter().map(|m| parse(m).msg_type()).collect();
    assert_eq!(types, [MsgType::NewOrderSingle, MsgType::ResendRequest]);
    assert_eq!(
        s.feed_seq(1.1, 2, MsgType::Heartbeat, poss_dup),
        Ok(Action::Handled)
    );
    assert_eq!(drain_queue(&mut s, 1.2), [(3, Action::Handled)]);
    assert!(s.sent().is_empty(), "served when it arrived, not again");
    assert_eq!(s.session.store().next_target_seq(), 4);
}

#[test]
fn a_full_gap_queue_falls_back_to_requesting_everything() {
    let mut config = SessionConfig::new(Version::Fix44, "DESK", "VENUE");
    config.gap_queue_messages = 2;
    let mut s = Script::new(config).logged_on();
    let er = MsgType::ExecutionReport;
    // 2 is lost; 3 and 4 fill the queue; 5 overflows it.
    assert_eq!(s.feed_seq(1.0, 3, er, |_| {}), Ok(Action::Queued));
    assert_eq!(s.feed_seq(1.0, 4, er, |_| {}), Ok(Action::Queued));
    assert_eq!(s.feed_seq(1.0, 5, er, |_| {}), Ok(Action::Ignored));
    assert_eq!(s.feed_seq(1.0, 6, er, |_| {}), Ok(Action::Ignored));
    let ranges: Vec<_> = s.sent().iter().map(|m| resend_range(m)).collect();
    assert_eq!(
        ranges,
        [
            (MsgType::ResendRequest, 2, 2),
            (MsgType::ResendRequest, 3, 0)
        ]
    );
    assert_eq!(s.session.queued(), 0);
    // Everything comes again, in order.
    for seq in 2..=6 {
        assert_eq!(s.feed_seq(2.0, seq, er, poss_dup), Ok(Action::Deliver));
        assert!(drain_queue(&mut s, 2.0).is_empty());
    }
    // The gap is closed: queueing works again.
    assert_eq!(s.feed_seq(3.0, 8, er, |_| {}), Ok(Action::Queued));
}

#[test]
fn sending_time_accuracy_is_checked() {
    // 121 s after the counterparty's SendingTime: Reject 10 and Logout.
    let mut s = Script::fix44().logged_on();
    let err = s.feed(121.0, MsgType::ExecutionReport, |_| {});
    assert!(
        matches!(err, Err(SessionError::SendingTimeAccuracy { seq: 2 })),
        "{err:?}"
    );
    assert_eq!(s.session.state(), SessionState::Ended);
    let out = s.sent();
    let reject = parse(&out[0]);
    assert_eq!(
        (
            reject.msg_type(),
            reject.u64(Tag::RefSeqNum),
            reject.get(Tag::RefMsgType),
            reject.u64(Tag::SessionRejectReason)
        ),
        (MsgType::Reject, Ok(2), Some(&b"8"[..]), Ok(10))
    );
    assert_eq!(parse(&out[1]).msg_type(), MsgType::Logout);
    // A clock ahead of ours counts the same; within the limit nothing happens.
    let mut s = Script::fix44().logged_on();
    s.sending_time = T0 + 119_000_000_000;
    assert_eq!(s.feed(0.0, MsgType::Heartbeat, |_| {}), Ok(Action::Handled));
    s.sending_time = T0 + 121_000_000_000;
    assert!(s.feed(0.0, MsgType::Heartbeat, |_| {}).is_err());
    // A configured limit, and the check turned off.
    let mut config = SessionConfig::new(Version::Fix44, "DESK", "VENUE");
    config.max_latency = Duration::from_secs(2);
    let mut s = Script::new(config.clone()).logged_on();
    assert!(s.feed(2.5, MsgType::Heartbeat, |_| {}).is_err());
    config.check_latency = false;
    let mut s = Script::new(config).logged_on();
    assert_eq!(
        s.feed(500.0, MsgType::Heartbeat, |_| {}),
        Ok(Action::Handled)
    );
    // The Logon is checked too.
    let mut s = Script::fix44();
    s.session.start(s.at(200.0)).unwrap();
    s.sent();
    let a = s.feed(200.0, MsgType::Logon, |e| {
        e.u64(108u32, 30);
    });
    assert!(matches!(
        a,
        Err(SessionError::SendingTimeAccuracy { seq: 1 })
    ));
}

#[test]
fn duplicates_need_a_consistent_orig_sending_time() {
    let mut s = Script::fix44().logged_on();
    let er = MsgType::ExecutionReport;
    s.feed(1.0, er, |_| {}).unwrap();
    // Without OrigSendingTime: Reject (1, RefTagID 122), the message ignored, the session on.
    let a = s.feed_seq(1.1, 2, er, |e| {
        e.bool(Tag::PossDupFlag, true);
    });
    assert_eq!(a, Ok(Action::Ignored));
    let out = s.sent();
    let reject = parse(&out[0]);
    assert_eq!(
        (
            out.len(),
            reject.msg_type(),
            reject.u64(Tag::SessionRejectReason),
            reject.u64(Tag::RefTagId)
        ),
        (1, MsgType::Reject, Ok(1), Ok(122))
    );
    assert_eq!(s.session.state(), SessionState::Active);
    // With a proper one: ignored quietly.
    assert_eq!(s.feed_seq(1.2, 2, er, poss_dup), Ok(Action::Ignored));
    assert!(s.sent().is_empty());
    // OrigSendingTime after SendingTime: Reject 10 and Logout.
    let err = s.feed_seq(1.3, 2, er, |e| {
        e.bool(Tag::PossDupFlag, true).timestamp(
            Tag::OrigSendingTime,
            UtcTimestamp(T0 + 1_000_000_000),
            TimePrecision::Millis,
        );
    });
    assert!(matches!(
        err,
        Err(SessionError::SendingTimeAccuracy { seq: 2 })
    ));
    let types: Vec<MsgType> = s.sent().iter().map(|m| parse(m).msg_type()).collect();
    assert_eq!(types, [MsgType::Reject, MsgType::Logout]);
}

#[test]
fn file_store_continues_the_sequence_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let config = SessionConfig::new(Version::Fix44, "DESK", "VENUE");
    let store = FileStore::open(dir.path(), "DESK", "VENUE").unwrap();
    let mut session = Session::new(config.clone(), store, now_at(start, 0.0));
    session.start(now_at(start, 0.0)).unwrap();
    // The counterparty's Logon (1) and an execution report (2).
    let mut enc = Encoder::new();
    for (seq, t) in [(1, b"A"), (2, b"8")] {
        let h = Header {
            sender: "VENUE",
            target: "DESK",
            seq,
            sending_time: UtcTimestamp(T0),
            precision: TimePrecision::Millis,
        };
        enc.start(b"FIX.4.4", t, &h);
        let bytes = enc.finish().unwrap().to_vec();
        session.handle(now_at(start, 0.1), &parse(&bytes)).unwrap();
    }
    session
        .send(now_at(start, 1.0), b"D", |e| {
            e.str(Tag::ClOrdId, "keep");
        })
        .unwrap();
    // A crash: no logout, the session is simply dropped.
    drop(session);
    let store = FileStore::open(dir.path(), "DESK", "VENUE").unwrap();
    assert_eq!((store.next_sender_seq(), store.next_target_seq()), (3, 3));
    let mut session = Session::new(config, store, now_at(start, 2.0));
    session.start(now_at(start, 2.0)).unwrap();
    let logon = session.pending().to_vec();
    assert_eq!(parse(&logon).seq_num(), Ok(3));
    assert_eq!(
        session
            .store_mut()
            .sent(2)
            .unwrap()
            .map(|m| parse(m).str(Tag::ClOrdId).unwrap()),
        Some("keep")
    );
}

/// Lets the tests compare whole results; errors compare by their debug form.
impl PartialEq for SessionError {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

#[test]
fn resend_requests_never_read_end_in_a_logout_not_in_unbounded_memory() {
    let mut s = Script::fix44().logged_on();
    for i in 0..2_000 {
        s.order(1.0, &format!("order-{i}"));
    }
    s.sent();
    // The counterparty keeps asking for everything and never reads: the queued output would grow
    // by the whole history per request.
    let mut result = Ok(Action::Handled);
    for i in 0..2_000 {
        result = s.feed(2.0 + f64::from(i) * 0.001, MsgType::ResendRequest, |e| {
            e.u64(Tag::BeginSeqNo, 1).u64(Tag::EndSeqNo, 0);
        });
        if result.is_err() {
            break;
        }
    }
    assert!(
        matches!(result, Err(SessionError::OutputOverflow)),
        "{result:?}"
    );
    let queued = s.session.pending().len();
    assert!(
        queued <= MAX_QUEUED_OUTPUT + (1 << 20),
        "{queued} bytes queued"
    );
    // The last message queued is the Logout saying why.
    let out = s.sent();
    let last = parse(out.last().unwrap());
    assert_eq!(last.msg_type(), MsgType::Logout);
    assert!(last.str(Tag::Text).unwrap().contains("output limit"));
}

#[test]
fn the_password_is_never_printed() {
    let mut config = SessionConfig::new(Version::Fix44, "DESK", "VENUE");
    config.username = Some("trader".into());
    config.password = Some("hunter2-secret".into());
    let start = Instant::now();
    let mut session = Session::new(config.clone(), MemoryStore::new(), now_at(start, 0.0));
    // The queued Logon carries the password; the session's Debug does not show it.
    session.start(now_at(start, 0.0)).unwrap();
    assert!(session
        .pending()
        .windows(14)
        .any(|w| w == b"hunter2-secret"));
    for shown in [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{session:?}"),
    ] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("trader"),
            "{shown}"
        );
    }
    config.password = None;
    assert!(format!("{config:?}").contains("password: None"));
}
