//! A strategy's FIX message, as published on `hotwire/<endpoint>/send`: the application message's
//! business fields in tag=value form, each ending in SOH, MsgType first, e.g.
//! `35=D|11=7|55=HWX|54=1|38=1|40=2|44=101.25|` (SOH for `|`). The session adds BeginString,
//! BodyLength, MsgSeqNum, the CompIDs, SendingTime and CheckSum (FIX 4.4 / FIXT.1.1 standard
//! header and trailer), so a payload that carries any of them is refused, as is every other
//! malformed payload: the session stays up.

use crate::fix::codec::SOH;

/// Why a strategy's FIX payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// Nothing to send.
    #[error("empty payload")]
    Empty,
    /// The first field is not MsgType (35).
    #[error("the first field is not MsgType (35=...)")]
    NoMsgType,
    /// MsgType is a session-level message (Logon, Heartbeat, ...), which only the session sends.
    #[error("MsgType {0:?} is a session message; strategies send application messages only")]
    SessionMsgType(u8),
    /// A field without `=`, a tag that is not a positive number, or an empty value.
    #[error("field {index} is not tag=value")]
    BadField {
        /// The field's position (0 is MsgType).
        index: usize,
    },
    /// The payload does not end in SOH.
    #[error("the last field does not end in SOH")]
    Unterminated,
    /// A header or trailer field the session writes itself.
    #[error("tag {0} belongs to the header or trailer, which the session writes")]
    SessionTag(u32),
}

/// Standard header and trailer tags, which the session writes or a strategy has no business
/// setting: BeginString, BodyLength, CheckSum, MsgSeqNum, MsgType (after the first field),
/// SenderCompID, SendingTime, TargetCompID, PossDupFlag, PossResend, OrigSendingTime,
/// SenderSubID, TargetSubID, OnBehalfOfCompID, DeliverToCompID, ApplVerID.
const SESSION_TAGS: [u32; 16] = [
    8, 9, 10, 34, 35, 49, 52, 56, 43, 97, 122, 50, 57, 115, 128, 1128,
];

/// Session-level MsgTypes: Heartbeat, TestRequest, ResendRequest, Reject, SequenceReset, Logout,
/// Logon.
const SESSION_MSG_TYPES: [&[u8]; 7] = [b"0", b"1", b"2", b"3", b"4", b"5", b"A"];

/// A checked strategy message: its MsgType and the fields after it (each ending in SOH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order<'a> {
    /// MsgType(35), e.g. `b"D"`.
    pub msg_type: &'a [u8],
    /// The business fields after MsgType, each ending in SOH (possibly none).
    pub fields: &'a [u8],
}

/// Checks `payload` (see the module docs) without allocating.
pub fn parse(payload: &[u8]) -> Result<Order<'_>, OrderError> {
    if payload.is_empty() {
        return Err(OrderError::Empty);
    }
    if *payload.last().unwrap_or(&0) != SOH {
        return Err(OrderError::Unterminated);
    }
    let mut msg_type: &[u8] = &[];
    let mut fields_at = 0;
    let mut at = 0;
    for (index, field) in payload[..payload.len() - 1]
        .split(|&b| b == SOH)
        .enumerate()
    {
        let eq = field
            .iter()
            .position(|&b| b == b'=')
            .ok_or(OrderError::BadField { index })?;
        let (tag, value) = (&field[..eq], &field[eq + 1..]);
        if tag.is_empty() || tag.len() > 9 || !tag.iter().all(u8::is_ascii_digit) || tag[0] == b'0'
        {
            return Err(OrderError::BadField { index });
        }
        if value.is_empty() {
            return Err(OrderError::BadField { index });
        }
        let number = tag.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        at += field.len() + 1;
        if index == 0 {
            if number != 35 {
                return Err(OrderError::NoMsgType);
            }
            if let Some(t) = SESSION_MSG_TYPES.iter().find(|t| **t == value) {
                return Err(OrderError::SessionMsgType(t[0]));
            }
            msg_type = value;
            fields_at = at;
        } else if SESSION_TAGS.contains(&number) {
            return Err(OrderError::SessionTag(number));
        }
    }
    Ok(Order {
        msg_type,
        fields: &payload[fields_at..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soh(s: &str) -> Vec<u8> {
        s.replace('|', "\x01").into_bytes()
    }

    #[test]
    fn a_new_order_single() {
        let p = soh("35=D|11=7|55=HWX|54=1|38=1|40=2|44=101.25|");
        let o = parse(&p).unwrap();
        assert_eq!(o.msg_type, b"D");
        assert_eq!(
            o.fields,
            soh("11=7|55=HWX|54=1|38=1|40=2|44=101.25|").as_slice()
        );
        let only = soh("35=AB|");
        assert_eq!(parse(&only).unwrap().fields, b"");
    }

    #[test]
    fn malformed_payloads_are_refused() {
        use OrderError::*;
        for tag in [43, 97, 122, 50, 57, 115, 128, 1128] {
            let p = format!("35=D|{tag}=Y|");
            assert_eq!(parse(&soh(&p)), Err(SessionTag(tag)), "{p}");
        }
        let cases: [(&str, OrderError); 11] = [
            ("", Empty),
            ("35=D|11=1", Unterminated),
            ("11=1|35=D|", NoMsgType),
            ("35=A|98=0|", SessionMsgType(b'A')),
            ("35=D|11|", BadField { index: 1 }),
            ("35=D|=1|", BadField { index: 1 }),
            ("35=D|x1=1|", BadField { index: 1 }),
            ("35=D|011=1|", BadField { index: 1 }),
            ("35=D|11=|", BadField { index: 1 }),
            ("35=D|49=ME|", SessionTag(49)),
            ("35=D||", BadField { index: 1 }),
        ];
        for (payload, want) in cases {
            assert_eq!(parse(&soh(payload)), Err(want), "{payload:?}");
        }
        assert_eq!(parse(b"35=D|"), Err(Unterminated));
        assert_eq!(
            parse(&soh("35=D|1234567890=1|")),
            Err(BadField { index: 1 })
        );
    }
}
