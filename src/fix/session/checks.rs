//! Checks of received SendingTime(52) and OrigSendingTime(122) (FIX 4.4 Volume 2, "Checking
//! SendingTime"), and the session-level Reject they answer with.

use std::time::Duration;

use super::{MessageStore, Now, Session, SessionError};
use crate::fix::codec::{Message, MsgType, Tag};

/// SessionRejectReason(373) 1: Required tag missing.
const REJECT_TAG_MISSING: u64 = 1;
/// SessionRejectReason(373) 6: Incorrect data format for value.
const REJECT_BAD_FORMAT: u64 = 6;
/// SessionRejectReason(373) 10: SendingTime accuracy problem.
const REJECT_SENDING_TIME: u64 = 10;

impl<M: MessageStore> Session<M> {
    /// SendingTime(52) within [`SessionConfig::max_latency`] of `now` (when checked).
    pub(super) fn check_latency(
        &mut self,
        now: Now,
        msg: &Message<'_>,
        seq: u64,
    ) -> Result<(), SessionError> {
        if !self.config.check_latency {
            return Ok(());
        }
        let Some(Ok(sent)) = msg.field(Tag::SendingTime).map(|f| f.as_timestamp()) else {
            return Ok(());
        };
        let skew = Duration::from_nanos(now.utc.0.abs_diff(sent.0));
        if skew <= self.config.max_latency {
            return Ok(());
        }
        self.bad_time(now, msg, seq)
    }

    /// A duplicate's OrigSendingTime(122): present, and not after its SendingTime.
    pub(super) fn check_orig_sending_time(
        &mut self,
        now: Now,
        msg: &Message<'_>,
        seq: u64,
    ) -> Result<(), SessionError> {
        let orig = match msg.field(Tag::OrigSendingTime).map(|f| f.as_timestamp()) {
            None => {
                return self.send_reject(
                    now,
                    msg,
                    seq,
                    REJECT_TAG_MISSING,
                    Some(122),
                    b"Required tag missing",
                );
            }
            Some(Err(_)) => {
                return self.send_reject(
                    now,
                    msg,
                    seq,
                    REJECT_BAD_FORMAT,
                    Some(122),
                    b"Incorrect data format for value",
                );
            }
            Some(Ok(t)) => t,
        };
        let sent = msg
            .field(Tag::SendingTime)
            .and_then(|f| f.as_timestamp().ok());
        if sent.is_some_and(|sent| orig > sent) {
            return self.bad_time(now, msg, seq);
        }
        Ok(())
    }

    /// Reject (SessionRejectReason 10), Logout, end.
    fn bad_time(&mut self, now: Now, msg: &Message<'_>, seq: u64) -> Result<(), SessionError> {
        const TEXT: &[u8] = b"SendingTime accuracy problem";
        self.send_reject(now, msg, seq, REJECT_SENDING_TIME, None, TEXT)?;
        self.send_logout(now, Some(TEXT))?;
        Err(SessionError::SendingTimeAccuracy { seq })
    }

    /// A session-level Reject (35=3) of the received `msg`.
    fn send_reject(
        &mut self,
        now: Now,
        msg: &Message<'_>,
        seq: u64,
        reason: u64,
        ref_tag: Option<u64>,
        text: &[u8],
    ) -> Result<(), SessionError> {
        let msg_type = msg.msg_type_bytes();
        self.admin(now, MsgType::Reject, |e| {
            e.u64(Tag::RefSeqNum, seq);
            if let Some(tag) = ref_tag {
                e.u64(Tag::RefTagId, tag);
            }
            e.bytes(Tag::RefMsgType, msg_type)
                .u64(Tag::SessionRejectReason, reason)
                .bytes(Tag::Text, text);
        })
    }
}
