//! Message types and tags that the session layer and an order-entry client use, as closed enums
//! with an escape hatch for everything else.
//!
//! The numbers are those of the FIX 4.4 / FIX 5.0 SP2 data dictionaries (Volume 6, "Fields by tag");
//! they did not change between the versions this crate speaks.

/// Something that names a tag: a [`Tag`] or a raw tag number.
pub trait AsTag: Copy {
    /// The tag number.
    fn number(self) -> u32;
}

impl AsTag for u32 {
    #[inline]
    fn number(self) -> u32 {
        self
    }
}

impl AsTag for Tag {
    #[inline]
    fn number(self) -> u32 {
        self.number()
    }
}

macro_rules! tags {
    ($($(#[$doc:meta])* $name:ident = $n:literal,)*) => {
        /// A FIX tag. The common ones are named; any other number is [`Tag::Other`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Tag {
            $($(#[$doc])* $name,)*
            /// Any tag without a name here.
            Other(u32),
        }

        impl Tag {
            /// The tag number.
            #[inline]
            pub const fn number(self) -> u32 {
                match self {
                    $(Tag::$name => $n,)*
                    Tag::Other(n) => n,
                }
            }

            /// The tag for `n`: a named variant when there is one, so `from_number(35) == MsgType`.
            #[inline]
            pub const fn from_number(n: u32) -> Tag {
                match n {
                    $($n => Tag::$name,)*
                    n => Tag::Other(n),
                }
            }
        }
    };
}

tags! {
    /// 1
    Account = 1,
    /// 6
    AvgPx = 6,
    /// 7
    BeginSeqNo = 7,
    /// 8
    BeginString = 8,
    /// 9
    BodyLength = 9,
    /// 10
    CheckSum = 10,
    /// 11
    ClOrdId = 11,
    /// 14
    CumQty = 14,
    /// 16
    EndSeqNo = 16,
    /// 17
    ExecId = 17,
    /// 20 (FIX 4.2)
    ExecTransType = 20,
    /// 21 (FIX 4.2)
    HandlInst = 21,
    /// 31
    LastPx = 31,
    /// 32
    LastQty = 32,
    /// 34
    MsgSeqNum = 34,
    /// 35
    MsgType = 35,
    /// 36
    NewSeqNo = 36,
    /// 37
    OrderId = 37,
    /// 38
    OrderQty = 38,
    /// 39
    OrdStatus = 39,
    /// 40
    OrdType = 40,
    /// 41
    OrigClOrdId = 41,
    /// 43
    PossDupFlag = 43,
    /// 44
    Price = 44,
    /// 45
    RefSeqNum = 45,
    /// 49
    SenderCompId = 49,
    /// 50
    SenderSubId = 50,
    /// 52
    SendingTime = 52,
    /// 54
    Side = 54,
    /// 55
    Symbol = 55,
    /// 56
    TargetCompId = 56,
    /// 57
    TargetSubId = 57,
    /// 58
    Text = 58,
    /// 59
    TimeInForce = 59,
    /// 60
    TransactTime = 60,
    /// 97
    PossResend = 97,
    /// 98
    EncryptMethod = 98,
    /// 108
    HeartBtInt = 108,
    /// 112
    TestReqId = 112,
    /// 115
    OnBehalfOfCompId = 115,
    /// 122
    OrigSendingTime = 122,
    /// 123
    GapFillFlag = 123,
    /// 128
    DeliverToCompId = 128,
    /// 141
    ResetSeqNumFlag = 141,
    /// 150
    ExecType = 150,
    /// 151
    LeavesQty = 151,
    /// 371
    RefTagId = 371,
    /// 372
    RefMsgType = 372,
    /// 373
    SessionRejectReason = 373,
    /// 379
    BusinessRejectRefId = 379,
    /// 380
    BusinessRejectReason = 380,
    /// 447
    PartyIdSource = 447,
    /// 448
    PartyId = 448,
    /// 452
    PartyRole = 452,
    /// 453
    NoPartyIds = 453,
    /// 553
    Username = 553,
    /// 554
    Password = 554,
    /// 789
    NextExpectedMsgSeqNum = 789,
    /// 1128 (FIXT.1.1)
    ApplVerId = 1128,
    /// 1137 (FIXT.1.1)
    DefaultApplVerId = 1137,
}

/// The header tags of the standard message header (FIX 4.4 Volume 2, "Standard Message Header";
/// FIXT 1.1 adds ApplVerID). A resend rewrites these and copies everything else.
pub(crate) fn is_header_tag(tag: u32) -> bool {
    matches!(
        tag,
        8 | 9
            | 35
            | 49
            | 56
            | 115
            | 128
            | 90
            | 91
            | 34
            | 50
            | 142
            | 57
            | 143
            | 116
            | 144
            | 129
            | 145
            | 43
            | 97
            | 52
            | 122
            | 212
            | 213
            | 347
            | 369
            | 370
            | 627
            | 1128
            | 1129
    )
}

macro_rules! msg_types {
    ($($(#[$doc:meta])* $name:ident = $v:literal,)*) => {
        /// MsgType(35). The session messages and the common order-entry messages are named; anything
        /// else is [`MsgType::Other`] (read the raw value with
        /// [`Message::msg_type_bytes`](super::Message::msg_type_bytes)).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum MsgType {
            $($(#[$doc])* $name,)*
            /// A message type without a name here.
            Other,
        }

        impl MsgType {
            /// The wire value (`b"D"` for NewOrderSingle); empty for [`MsgType::Other`].
            #[inline]
            pub const fn as_bytes(self) -> &'static [u8] {
                match self {
                    $(MsgType::$name => $v,)*
                    MsgType::Other => b"",
                }
            }

            /// The message type for a wire value.
            #[inline]
            pub fn from_bytes(v: &[u8]) -> MsgType {
                match v {
                    $($v => MsgType::$name,)*
                    _ => MsgType::Other,
                }
            }
        }
    };
}

msg_types! {
    /// 0
    Heartbeat = b"0",
    /// 1
    TestRequest = b"1",
    /// 2
    ResendRequest = b"2",
    /// 3 (session-level reject)
    Reject = b"3",
    /// 4 (reset or gap fill)
    SequenceReset = b"4",
    /// 5
    Logout = b"5",
    /// 8
    ExecutionReport = b"8",
    /// 9
    OrderCancelReject = b"9",
    /// A
    Logon = b"A",
    /// D
    NewOrderSingle = b"D",
    /// F
    OrderCancelRequest = b"F",
    /// G
    OrderCancelReplaceRequest = b"G",
    /// H
    OrderStatusRequest = b"H",
    /// j
    BusinessMessageReject = b"j",
}

impl MsgType {
    /// `true` for the session-level (administrative) messages: Heartbeat, TestRequest,
    /// ResendRequest, Reject, SequenceReset, Logout and Logon. They are never resent: a gap fill
    /// replaces them (FIX 4.4 Volume 2, "Message Recovery").
    pub fn is_admin(self) -> bool {
        matches!(
            self,
            MsgType::Heartbeat
                | MsgType::TestRequest
                | MsgType::ResendRequest
                | MsgType::Reject
                | MsgType::SequenceReset
                | MsgType::Logout
                | MsgType::Logon
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        for n in 0..2000 {
            assert_eq!(Tag::from_number(n).number(), n);
        }
        assert_eq!(Tag::from_number(35), Tag::MsgType);
        assert_eq!(Tag::from_number(9999), Tag::Other(9999));
    }

    #[test]
    fn msg_types_round_trip() {
        for t in [
            MsgType::Heartbeat,
            MsgType::Logon,
            MsgType::NewOrderSingle,
            MsgType::BusinessMessageReject,
        ] {
            assert_eq!(MsgType::from_bytes(t.as_bytes()), t);
        }
        assert_eq!(MsgType::from_bytes(b"AE"), MsgType::Other);
        assert!(MsgType::Logout.is_admin());
        assert!(!MsgType::ExecutionReport.is_admin());
    }
}
