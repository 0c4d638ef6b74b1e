//! The FIX acceptor's memory across connections and its optional log (`hotwire venue --fix-log`).
//!
//! A FIX session outlives its connections (FIX 4.4 Volume 2, "Session Protocol": sequence numbers
//! continue across logons unless ResetSeqNumFlag resets them), so the acceptor keeps, per pair of
//! CompIDs, the next number it expects, the next number it sends and the ExecutionReports it sent
//! (to answer a ResendRequest with them again). The log names every message taken in order, every
//! message sent, every gap, duplicate and reset, one line each, so a soak can check from it alone
//! that sequence numbers stayed continuous on both sides and every order was acknowledged:
//!
//! ```text
//! LOGON <session> seq=<n> reset=<0|1>
//! IN <session> <seq> <MsgType> [cl=<ClOrdID>] [new=<NewSeqNo>] [dup]
//! GAP <session> expected=<n> got=<n>
//! DUP <session> <seq>
//! OUT <session> <seq> <MsgType> [cl=<ClOrdID>] [new=<NewSeqNo>] [dup]
//! BUSY <session>            (a Logon while another connection holds the session: refused)
//! ERR <session> <what>
//! END <session> expected=<n> next_out=<n>
//! ```
//!
//! `<session>` is `SenderCompID>TargetCompID` as the initiator sends them.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

/// How many sent ExecutionReports a session keeps for resending (older ones are gap-filled).
const KEPT_FILLS: usize = 200_000;

/// An ExecutionReport as sent, to send it again on a ResendRequest.
#[derive(Debug, Clone)]
pub(crate) struct Fill {
    pub(crate) cl_ord_id: Vec<u8>,
    pub(crate) symbol: Vec<u8>,
    pub(crate) side: Vec<u8>,
    pub(crate) qty: Vec<u8>,
    pub(crate) price: Vec<u8>,
    pub(crate) order_id: u64,
    pub(crate) read_ns: u64,
}

/// One session's sequence state.
#[derive(Debug)]
pub(crate) struct SeqState {
    /// The MsgSeqNum expected next from the initiator.
    pub(crate) expected_in: u64,
    /// Our next MsgSeqNum.
    pub(crate) next_out: u64,
    /// Orders filled so far (the OrderID of the next is one more).
    pub(crate) orders: u64,
    /// ExecutionReports sent, by MsgSeqNum.
    pub(crate) fills: BTreeMap<u64, Fill>,
}

impl Default for SeqState {
    fn default() -> SeqState {
        SeqState {
            expected_in: 1,
            next_out: 1,
            orders: 0,
            fills: BTreeMap::new(),
        }
    }
}

impl SeqState {
    /// Remembers the ExecutionReport sent as `seq`, forgetting the oldest beyond the bound.
    pub(crate) fn keep(&mut self, seq: u64, fill: Fill) {
        self.fills.insert(seq, fill);
        while self.fills.len() > KEPT_FILLS {
            self.fills.pop_first();
        }
    }
}

/// Every session's state, shared by the acceptor's connection threads, and the log.
#[derive(Debug)]
pub(crate) struct Sessions {
    /// `None` while a connection holds the session.
    states: Mutex<HashMap<String, Option<SeqState>>>,
    log: Option<Mutex<File>>,
}

impl Sessions {
    /// No sessions yet; logging to `log` (created or truncated) when given.
    pub(crate) fn new(log: Option<&Path>) -> io::Result<Sessions> {
        let log = match log {
            Some(p) => Some(Mutex::new(File::create(p).map_err(|e| {
                io::Error::new(e.kind(), format!("--fix-log {}: {e}", p.display()))
            })?)),
            None => None,
        };
        Ok(Sessions {
            states: Mutex::new(HashMap::new()),
            log,
        })
    }

    /// Takes `session`'s state for a connection (a fresh one for a new session); `None` while
    /// another connection holds it (a second Logon of a session that is logged on is refused).
    pub(crate) fn take(&self, session: &str) -> Option<SeqState> {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(session.to_owned())
            .or_insert_with(|| Some(SeqState::default()))
            .take()
    }

    /// Gives `session`'s state back when its connection ends.
    pub(crate) fn put(&self, session: String, state: SeqState) {
        self.line(format_args!(
            "END {session} expected={} next_out={}",
            state.expected_in, state.next_out
        ));
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session, Some(state));
    }

    /// `true` when there is a log to write to.
    pub(crate) fn logging(&self) -> bool {
        self.log.is_some()
    }

    /// Appends one line to the log, if any (a failed write is reported once per line at debug
    /// level: the acceptor keeps serving).
    pub(crate) fn line(&self, args: std::fmt::Arguments<'_>) {
        if let Some(log) = &self.log {
            let mut f = log.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = writeln!(f, "{args}") {
                log::debug!("venue fix: log: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_a_connection_and_the_log_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fix.log");
        let sessions = Sessions::new(Some(&path)).unwrap();
        let mut s = sessions.take("A>B").unwrap();
        assert_eq!((s.expected_in, s.next_out), (1, 1));
        assert!(sessions.take("A>B").is_none(), "held by a connection");
        s.expected_in = 5;
        s.next_out = 9;
        sessions.put("A>B".into(), s);
        let s = sessions.take("A>B").unwrap();
        assert_eq!((s.expected_in, s.next_out), (5, 9));
        assert_eq!(
            sessions.take("C>B").unwrap().expected_in,
            1,
            "a new session"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "END A>B expected=5 next_out=9\n");
    }

    #[test]
    fn fills_kept_are_bounded() {
        let mut s = SeqState::default();
        let fill = Fill {
            cl_ord_id: b"1".to_vec(),
            symbol: b"X".to_vec(),
            side: b"1".to_vec(),
            qty: b"1".to_vec(),
            price: b"1".to_vec(),
            order_id: 1,
            read_ns: 0,
        };
        for seq in 0..(KEPT_FILLS as u64 + 10) {
            s.keep(seq, fill.clone());
        }
        assert_eq!(s.fills.len(), KEPT_FILLS);
        assert_eq!(s.fills.first_key_value().map(|(k, _)| *k), Some(10));
    }
}
