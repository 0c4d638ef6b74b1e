//! The FIX session layer: [`Session`] (documented there).

use std::io;
use std::time::{Duration, Instant, SystemTime};

use super::codec::{
    is_header_tag, Encoder, FixError, Header, Message, MsgType, Tag, TimePrecision, UtcTimestamp,
};

mod checks;
mod gap;
pub(crate) mod store;

pub use store::{
    AnyStore, FileStore, FsyncPolicy, MemoryStore, MessageStore, DEFAULT_MEMORY_BYTES,
};

#[cfg(test)]
mod tests;

/// The caller's clock, read once and passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for timers.
    pub mono: Instant,
    /// Wall time, for SendingTime.
    pub utc: UtcTimestamp,
}

impl Now {
    /// From a monotonic and a wall-clock reading the caller made.
    pub fn new(mono: Instant, wall: SystemTime) -> Now {
        Now {
            mono,
            utc: UtcTimestamp::from_system_time(wall),
        }
    }
}

/// The session protocol version (BeginString).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Version {
    /// `FIX.4.2`.
    Fix42,
    /// `FIX.4.4`.
    Fix44,
    /// `FIXT.1.1`, carrying the application version named by
    /// [`SessionConfig::default_appl_ver_id`] (FIX 5.0 SP2 by default).
    Fixt11,
}

impl Version {
    /// The BeginString value.
    pub fn begin_string(self) -> &'static str {
        match self {
            Version::Fix42 => "FIX.4.2",
            Version::Fix44 => "FIX.4.4",
            Version::Fixt11 => "FIXT.1.1",
        }
    }
}

impl std::str::FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Version, String> {
        match s {
            "FIX.4.2" => Ok(Version::Fix42),
            "FIX.4.4" => Ok(Version::Fix44),
            "FIXT.1.1" => Ok(Version::Fixt11),
            other => Err(format!(
                "unsupported BeginString {other:?} (expected FIX.4.2, FIX.4.4 or FIXT.1.1)"
            )),
        }
    }
}

/// How a session logs on and behaves. Build with [`SessionConfig::new`] and adjust the fields.
///
/// Its `Debug` output never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// BeginString.
    pub version: Version,
    /// DefaultApplVerID(1137) sent on a FIXT.1.1 Logon (`9` = FIX 5.0 SP2).
    pub default_appl_ver_id: String,
    /// Our SenderCompID(49).
    pub sender_comp_id: String,
    /// The counterparty's CompID: TargetCompID(56) on what we send.
    pub target_comp_id: String,
    /// HeartBtInt(108), whole seconds on the wire (default 30 s).
    pub heartbeat_interval: Duration,
    /// Send ResetSeqNumFlag(141)=Y on Logon, restarting both sequences at 1.
    pub reset_on_logon: bool,
    /// Username(553) on Logon.
    pub username: Option<String>,
    /// Password(554) on Logon.
    pub password: Option<String>,
    /// SendingTime precision (default milliseconds).
    pub precision: TimePrecision,
    /// Give up when the Logon is not answered in time (default 10 s).
    pub logon_timeout: Duration,
    /// Stop waiting for the counterparty's Logout after this (default 5 s).
    pub logout_timeout: Duration,
    /// Check SendingTime(52) of received messages against [`SessionConfig::max_latency`]
    /// (QuickFIX's CheckLatency; default on).
    pub check_latency: bool,
    /// The largest difference between a received SendingTime and our clock (QuickFIX's
    /// MaxLatency; default 120 s).
    pub max_latency: Duration,
    /// Messages received beyond a gap that are queued until the resend fills it (default 1024;
    /// 0: none, every message beyond a gap is discarded and requested again).
    pub gap_queue_messages: usize,
    /// The bytes those queued messages may take (default 1 MiB, allocated once per session).
    pub gap_queue_bytes: usize,
}

impl SessionConfig {
    /// A configuration for `sender` → `target` with every other setting at its default.
    pub fn new(version: Version, sender: &str, target: &str) -> SessionConfig {
        SessionConfig {
            version,
            default_appl_ver_id: "9".into(),
            sender_comp_id: sender.into(),
            target_comp_id: target.into(),
            heartbeat_interval: Duration::from_secs(30),
            reset_on_logon: false,
            username: None,
            password: None,
            precision: TimePrecision::Millis,
            logon_timeout: Duration::from_secs(10),
            logout_timeout: Duration::from_secs(5),
            check_latency: true,
            max_latency: Duration::from_secs(120),
            gap_queue_messages: 1024,
            gap_queue_bytes: 1 << 20,
        }
    }
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("version", &self.version)
            .field("default_appl_ver_id", &self.default_appl_ver_id)
            .field("sender_comp_id", &self.sender_comp_id)
            .field("target_comp_id", &self.target_comp_id)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("reset_on_logon", &self.reset_on_logon)
            .field("username", &self.username)
            .field("password", &Redacted(&self.password))
            .field("precision", &self.precision)
            .field("logon_timeout", &self.logon_timeout)
            .field("logout_timeout", &self.logout_timeout)
            .field("check_latency", &self.check_latency)
            .field("max_latency", &self.max_latency)
            .field("gap_queue_messages", &self.gap_queue_messages)
            .field("gap_queue_bytes", &self.gap_queue_bytes)
            .finish()
    }
}

/// Shows whether a secret is set, never its value (for `Debug` impls of settings holding one).
#[derive(Clone, Copy)]
pub struct Redacted<'a>(pub &'a Option<String>);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(_) => f.write_str("Some(<redacted>)"),
            None => f.write_str("None"),
        }
    }
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Nothing sent yet.
    Idle,
    /// Logon sent; expecting the counterparty's Logon.
    AwaitingLogon,
    /// Logged on.
    Active,
    /// Logout sent; expecting the counterparty's Logout.
    AwaitingLogout,
    /// Over: close the connection once [`Session::pending`] is written.
    Ended,
}

/// What to do with a message after [`Session::handle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// An application message, in sequence: hand it to the application.
    Deliver,
    /// A session message the session dealt with (Heartbeat, TestRequest, ResendRequest,
    /// SequenceReset).
    Handled,
    /// A duplicate or a message beyond a gap, discarded (it will be resent).
    Ignored,
    /// A message beyond a gap, queued: it comes back through [`Session::take_queued`] once the
    /// resend fills the gap.
    Queued,
    /// The Logon was answered: the session is active.
    LoggedOn,
    /// The counterparty rejected one of our messages at session level (Reject, 35=3).
    Rejected {
        /// RefSeqNum(45).
        ref_seq: u64,
        /// SessionRejectReason(373), if given.
        reason: Option<u64>,
    },
    /// The Logout handshake completed (or the counterparty logged out): close the connection.
    LoggedOut,
}

/// Why a session ended. Everything except [`SessionError::NotActive`] ends the session (a Logout is
/// queued where the protocol asks for one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A received message is malformed, or an outgoing value would break framing.
    #[error("FIX codec: {0}")]
    Codec(#[from] FixError),
    /// The store could not be written.
    #[error("message store: {0}")]
    Store(#[from] io::Error),
    /// MsgSeqNum lower than expected without PossDupFlag.
    #[error("MsgSeqNum too low, expecting {expected} but received {received}")]
    SeqTooLow {
        /// What the session expected.
        expected: u64,
        /// What arrived.
        received: u64,
    },
    /// BeginString, SenderCompID or TargetCompID is not this session's.
    #[error("message for another session (BeginString or CompID mismatch)")]
    WrongSession,
    /// The first message was not a Logon, or the counterparty answered the Logon with a Logout.
    #[error("logon rejected by the counterparty")]
    LogonRejected,
    /// The Logon was not answered in time.
    #[error("logon timed out")]
    LogonTimeout,
    /// Nothing received for a heartbeat interval after a TestRequest.
    #[error("no heartbeat from the counterparty")]
    HeartbeatTimeout,
    /// The Logout was not answered in time.
    #[error("logout timed out")]
    LogoutTimeout,
    /// SendingTime(52) too far from our clock, or OrigSendingTime(122) later than SendingTime on
    /// a duplicate: a Reject (SessionRejectReason 10) and a Logout were queued.
    #[error("SendingTime accuracy problem on received MsgSeqNum {seq}")]
    SendingTimeAccuracy {
        /// The MsgSeqNum of the message.
        seq: u64,
    },
    /// Application messages can only be sent while [`SessionState::Active`]; nothing was sent.
    #[error("session not active")]
    NotActive,
    /// Output not yet taken by the stream passed [`MAX_QUEUED_OUTPUT`]: the counterparty asks for
    /// resends faster than it reads them. The session logs out.
    #[error("more than {MAX_QUEUED_OUTPUT} bytes of output queued (resend requests not read)")]
    OutputOverflow,
}

/// The most output a session queues before the stream takes it. Only resends can come near it; a
/// counterparty that requests them without reading is logged out rather than let grow memory.
pub const MAX_QUEUED_OUTPUT: usize = 64 << 20;

/// The session state machine, over a [`MessageStore`].
///
/// The FIX session layer as a sans-IO state machine (FIX 4.4 Volume 2 "Session Protocol", FIXT 1.1
/// "FIX Session Protocol"; FIX 4.2 has the same rules).
///
/// A [`Session`] never touches a socket or a clock. The caller
///
/// - passes in every received message ([`Session::handle`]), which says what to do with it
///   ([`Action`]): deliver it to the application, or nothing (the session answered it itself);
/// - calls [`Session::on_timer`] regularly (heartbeats, TestRequests, logon and logout timeouts);
/// - sends application messages with [`Session::send`];
/// - writes out what [`Session::pending`] holds and reports it with [`Session::consume`].
///
/// Time comes in as [`Now`]: a monotonic instant for timers and the UTC wall time for SendingTime.
///
/// # States
///
/// Named after what the session expects next:
///
/// ```text
///   Idle --start--> AwaitingLogon --Logon--> Active --logout()--> AwaitingLogout --Logout--> Ended
///                        |                      |  <--Logout-- (answered)  ------------------^
///                        +---- error / Logout --+---------------- error ---------------------^
/// ```
///
/// # Sequence numbers (FIX 4.4 Volume 2, "Message Recovery")
///
/// - An inbound MsgSeqNum equal to the expected one is processed and the expectation advances.
/// - Higher: a gap. The session queues the message (bounded by
///   [`SessionConfig::gap_queue_messages`] and [`SessionConfig::gap_queue_bytes`]) and sends a
///   ResendRequest for the missing numbers only (BeginSeqNo = expected, EndSeqNo = the one before
///   the first queued); once the resend fills the gap the queued messages are processed in order
///   ([`Session::take_queued`]). When the queue is full (or off) it falls back to discarding: the
///   queue is dropped and one ResendRequest asks for everything from the first number not
///   requested yet to infinity. ResendRequest, Logout and SequenceReset-Reset are acted on even
///   across a gap.
/// - Lower with PossDupFlag=Y: a duplicate, ignored. Lower without it: a serious error; the session
///   sends a Logout naming the expected and received numbers and ends ([`SessionError::SeqTooLow`]).
/// - A ResendRequest from the counterparty is served from the [`MessageStore`]: application messages
///   are sent again with PossDupFlag=Y and OrigSendingTime, runs of administrative (or unknown)
///   sequence numbers become one SequenceReset-GapFill each.
///
/// # SendingTime accuracy (FIX 4.4 Volume 2, "Checking SendingTime")
///
/// With [`SessionConfig::check_latency`] (the default), a received SendingTime(52) further than
/// [`SessionConfig::max_latency`] (120 s) from our clock gets a Reject with SessionRejectReason
/// 10 (SendingTime accuracy problem) and a Logout, and ends the session. A duplicate (PossDupFlag=Y
/// with a number already seen) must carry OrigSendingTime(122) (else a Reject with reason 1,
/// RefTagID 122, and the message is ignored) no later than its SendingTime (else Reject 10 and
/// Logout), as QuickFIX checks it.
///
/// Its `Debug` output shows the configuration (password redacted), the state and the store, not
/// the bytes queued (the Logon among them carries the password).
pub struct Session<M> {
    config: SessionConfig,
    store: M,
    state: SessionState,
    enc: Encoder,
    out: Vec<u8>,
    out_pos: usize,
    /// When the state last changed (logon and logout timeouts).
    since: Instant,
    last_sent: Instant,
    last_received: Instant,
    /// An outstanding TestRequest: its id number and when it was sent.
    test_request: Option<(u64, Instant)>,
    test_request_counter: u64,
    /// While a ResendRequest of ours is outstanding: the highest MsgSeqNum seen beyond the gap.
    resend_until: Option<u64>,
    /// The highest number our outstanding ResendRequests asked for (`u64::MAX`: to infinity).
    requested_to: u64,
    /// Messages beyond the gap.
    queue: gap::GapQueue,
    /// The queue overflowed during the current gap: queue nothing more until it is filled.
    queue_overflowed: bool,
    /// The message being handled comes from the queue: `Some(true)` when it was acted on already.
    replay: Option<bool>,
}

impl<M: std::fmt::Debug> std::fmt::Debug for Session<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("config", &self.config)
            .field("state", &self.state)
            .field("store", &self.store)
            .field("queued_bytes", &(self.out.len() - self.out_pos))
            .field("resend_until", &self.resend_until)
            .finish_non_exhaustive()
    }
}

impl<M: MessageStore> Session<M> {
    /// A session in [`SessionState::Idle`]; `now` starts its timers.
    pub fn new(config: SessionConfig, store: M, now: Now) -> Session<M> {
        Session {
            store,
            state: SessionState::Idle,
            enc: Encoder::with_capacity(4096),
            out: Vec::with_capacity(64 << 10),
            out_pos: 0,
            since: now.mono,
            last_sent: now.mono,
            last_received: now.mono,
            test_request: None,
            test_request_counter: 0,
            resend_until: None,
            requested_to: 0,
            queue: gap::GapQueue::new(config.gap_queue_messages, config.gap_queue_bytes),
            queue_overflowed: false,
            replay: None,
            config,
        }
    }

    /// The state.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &M {
        &self.store
    }

    /// The store, mutably (e.g. to compact it between sessions).
    pub fn store_mut(&mut self) -> &mut M {
        &mut self.store
    }

    /// Bytes to write to the connection, in order.
    pub fn pending(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// Reports that the first `n` bytes of [`Session::pending`] were written.
    pub fn consume(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
    }

    /// Queues the Logon (resetting the store first when [`SessionConfig::reset_on_logon`]).
    pub fn start(&mut self, now: Now) -> Result<(), SessionError> {
        if self.state != SessionState::Idle {
            return Ok(());
        }
        if self.config.reset_on_logon {
            self.store.reset()?;
            self.store.set_creation_time(now.utc)?;
        }
        let hb = self.config.heartbeat_interval.as_secs().max(1);
        let seq = self.store.next_sender_seq();
        let (config, enc) = (&self.config, &mut self.enc);
        enc.start(
            config.version.begin_string().as_bytes(),
            b"A",
            &header(config, seq, now),
        )
        .u64(Tag::EncryptMethod, 0)
        .u64(Tag::HeartBtInt, hb);
        if config.reset_on_logon {
            enc.bool(Tag::ResetSeqNumFlag, true);
        }
        if let Some(u) = &config.username {
            enc.str(Tag::Username, u);
        }
        if let Some(p) = &config.password {
            enc.str(Tag::Password, p);
        }
        if config.version == Version::Fixt11 {
            enc.str(Tag::DefaultApplVerId, &config.default_appl_ver_id);
        }
        self.commit(now, false)?;
        self.enter(SessionState::AwaitingLogon, now);
        Ok(())
    }

    /// Sends an application message: the header is written, then `body` adds the fields after it.
    /// Returns its MsgSeqNum. The message is kept in the store for resends.
    pub fn send(
        &mut self,
        now: Now,
        msg_type: &[u8],
        body: impl FnOnce(&mut Encoder),
    ) -> Result<u64, SessionError> {
        if self.state != SessionState::Active {
            return Err(SessionError::NotActive);
        }
        let seq = self.store.next_sender_seq();
        let h = header(&self.config, seq, now);
        self.enc
            .start(self.config.version.begin_string().as_bytes(), msg_type, &h);
        body(&mut self.enc);
        self.commit(now, true)?;
        Ok(seq)
    }

    /// Sends a TestRequest with TestReqID `TEST-<n>`, `n` counting from 1; the matching Heartbeat
    /// clears it. Returns `n`.
    pub fn send_test_request(&mut self, now: Now) -> Result<u64, SessionError> {
        self.test_request_counter += 1;
        let n = self.test_request_counter;
        let mut id = [0u8; 32];
        let len = test_req_id(n, &mut id);
        self.admin(now, MsgType::TestRequest, |e| {
            e.bytes(Tag::TestReqId, &id[..len]);
        })?;
        self.test_request = Some((n, now.mono));
        Ok(n)
    }

    /// `true` while a TestRequest of ours is unanswered.
    pub fn test_request_pending(&self) -> bool {
        self.test_request.is_some()
    }

    /// Starts the Logout handshake (Text(58) = `text` when given).
    pub fn logout(&mut self, now: Now, text: Option<&str>) -> Result<(), SessionError> {
        match self.state {
            SessionState::Active | SessionState::AwaitingLogon => {
                self.send_logout(now, text.map(str::as_bytes))?;
                self.enter(SessionState::AwaitingLogout, now);
            }
            SessionState::Idle => self.enter(SessionState::Ended, now),
            SessionState::AwaitingLogout | SessionState::Ended => {}
        }
        Ok(())
    }

    /// Drives timers: logon and logout timeouts, Heartbeats after HeartBtInt of silence, a
    /// TestRequest after HeartBtInt (+20 %) without hearing from the counterparty and the end of the
    /// session when that is not answered either.
    pub fn on_timer(&mut self, now: Now) -> Result<(), SessionError> {
        let elapsed = |t: Instant| now.mono.saturating_duration_since(t);
        let hb = self.config.heartbeat_interval;
        let grace = hb + hb / 5;
        match self.state {
            SessionState::AwaitingLogon if elapsed(self.since) >= self.config.logon_timeout => {
                self.enter(SessionState::Ended, now);
                Err(SessionError::LogonTimeout)
            }
            SessionState::AwaitingLogout if elapsed(self.since) >= self.config.logout_timeout => {
                self.enter(SessionState::Ended, now);
                Err(SessionError::LogoutTimeout)
            }
            SessionState::Active => {
                if let Some((_, sent)) = self.test_request {
                    if elapsed(sent) >= grace && elapsed(self.last_received) >= grace {
                        self.enter(SessionState::Ended, now);
                        return Err(SessionError::HeartbeatTimeout);
                    }
                } else if elapsed(self.last_received) >= grace {
                    self.send_test_request(now)?;
                }
                if elapsed(self.last_sent) >= hb {
                    self.admin(now, MsgType::Heartbeat, |_| {})?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Processes one received message.
    ///
    /// On `Err` the session has ended; write out [`Session::pending`] (a Logout, where the protocol
    /// asks for one) and close the connection.
    pub fn handle(&mut self, now: Now, msg: &Message<'_>) -> Result<Action, SessionError> {
        let replay = self.replay.take();
        let result = self.handle_inner(now, msg, replay);
        if result.is_err() {
            self.enter(SessionState::Ended, now);
        }
        result
    }

    /// Messages queued beyond a gap.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// When the next expected message is queued (the resend filled the gap before it): copies it
    /// into `out` and returns `true`. Pass it to [`Session::handle`] next, before anything else.
    pub fn take_queued(&mut self, out: &mut Vec<u8>) -> bool {
        if self.queue.len() == 0 {
            return false;
        }
        match self.queue.take(self.store.next_target_seq(), out) {
            Some(handled) => {
                self.replay = Some(handled);
                true
            }
            None => false,
        }
    }

    fn handle_inner(
        &mut self,
        now: Now,
        msg: &Message<'_>,
        replay: Option<bool>,
    ) -> Result<Action, SessionError> {
        if self.state == SessionState::Ended || self.state == SessionState::Idle {
            return Ok(Action::Ignored);
        }
        self.last_received = now.mono;
        if msg.begin_string() != self.config.version.begin_string().as_bytes()
            || msg.get(Tag::SenderCompId) != Some(self.config.target_comp_id.as_bytes())
            || msg.get(Tag::TargetCompId) != Some(self.config.sender_comp_id.as_bytes())
        {
            self.send_logout(now, Some(b"BeginString or CompID mismatch"))?;
            return Err(SessionError::WrongSession);
        }
        let seq = msg.seq_num()?;
        let msg_type = msg.msg_type();
        // A queued message was checked when it arrived.
        if replay.is_none() {
            self.check_latency(now, msg, seq)?;
        }
        if self.state == SessionState::AwaitingLogon {
            return match msg_type {
                MsgType::Logon => self.on_logon(now, msg, seq),
                _ => Err(SessionError::LogonRejected),
            };
        }
        let expected = self.store.next_target_seq();
        // SequenceReset-Reset ignores MsgSeqNum (FIX 4.4 Volume 2, "Sequence Reset").
        if msg_type == MsgType::SequenceReset && !msg.flag(Tag::GapFillFlag)? {
            let new = msg.u64(Tag::NewSeqNo)?;
            if new > expected {
                self.store.set_next_target_seq(new)?;
                self.resend_until = self.resend_until.filter(|&u| u >= new);
                if self.resend_until.is_none() {
                    // The gap is gone with the reset: queueing may resume.
                    self.queue_overflowed = false;
                }
            }
            return Ok(Action::Handled);
        }
        if seq < expected {
            if msg.poss_dup() {
                if msg_type != MsgType::SequenceReset {
                    self.check_orig_sending_time(now, msg, seq)?;
                }
                return Ok(Action::Ignored);
            }
            let mut text = [0u8; 96];
            let n = too_low_text(expected, seq, &mut text);
            self.send_logout(now, Some(&text[..n]))?;
            return Err(SessionError::SeqTooLow {
                expected,
                received: seq,
            });
        }
        if seq > expected {
            // Acted on across a gap; everything else waits for the resend.
            let handled = match msg_type {
                MsgType::ResendRequest => {
                    self.serve_resend(now, msg)?;
                    true
                }
                MsgType::Logout => return self.on_logout(now),
                _ => false,
            };
            let queued = self.enqueue(seq, msg, handled);
            self.request_resend(now, expected, seq, queued)?;
            return Ok(if queued {
                Action::Queued
            } else {
                Action::Ignored
            });
        }
        // In sequence.
        let mut next = expected + 1;
        let action = match msg_type {
            MsgType::Heartbeat => {
                if let (Some((n, _)), Some(id)) = (self.test_request, msg.get(Tag::TestReqId)) {
                    let mut want = [0u8; 32];
                    let len = test_req_id(n, &mut want);
                    if id == &want[..len] {
                        self.test_request = None;
                    }
                }
                Action::Handled
            }
            MsgType::TestRequest => {
                let id = msg.get(Tag::TestReqId).ok_or(FixError::MissingField(112))?;
                self.admin(now, MsgType::Heartbeat, |e| {
                    e.bytes(Tag::TestReqId, id);
                })?;
                Action::Handled
            }
            MsgType::ResendRequest => {
                // Served when it arrived, if it was queued beyond a gap.
                if replay != Some(true) {
                    self.serve_resend(now, msg)?;
                }
                Action::Handled
            }
            MsgType::SequenceReset => {
                // Gap fill: the counterparty skips administrative messages.
                let new = msg.u64(Tag::NewSeqNo)?;
                next = next.max(new);
                Action::Handled
            }
            MsgType::Reject => Action::Rejected {
                ref_seq: msg.u64(Tag::RefSeqNum)?,
                reason: msg
                    .field(Tag::SessionRejectReason)
                    .and_then(|f| f.as_u64().ok()),
            },
            MsgType::Logout => {
                self.store.set_next_target_seq(next)?;
                return self.on_logout(now);
            }
            MsgType::Logon => Action::Ignored,
            _ => Action::Deliver,
        };
        self.store.set_next_target_seq(next)?;
        if self.resend_until.is_some_and(|until| next > until) {
            self.resend_until = None;
            self.queue_overflowed = false;
        }
        // A valid message also answers a TestRequest in spirit; only the matching Heartbeat clears
        // it, but hearing anything resets the silence timer (done above).
        Ok(action)
    }

    fn on_logon(&mut self, now: Now, msg: &Message<'_>, seq: u64) -> Result<Action, SessionError> {
        if msg.flag(Tag::ResetSeqNumFlag)? {
            // The counterparty starts its sequence again (its Logon is number 1).
            self.store.set_next_target_seq(1)?;
        }
        let expected = self.store.next_target_seq();
        if seq < expected {
            let mut text = [0u8; 96];
            let n = too_low_text(expected, seq, &mut text);
            self.send_logout(now, Some(&text[..n]))?;
            return Err(SessionError::SeqTooLow {
                expected,
                received: seq,
            });
        }
        self.enter(SessionState::Active, now);
        if seq > expected {
            // The Logon is queued as acted on: it fills its number when the gap before it is.
            let queued = self.enqueue(seq, msg, true);
            self.request_resend(now, expected, seq, queued)?;
        } else {
            self.store.set_next_target_seq(seq + 1)?;
        }
        Ok(Action::LoggedOn)
    }

    fn on_logout(&mut self, now: Now) -> Result<Action, SessionError> {
        match self.state {
            SessionState::AwaitingLogout => {}
            _ => self.send_logout(now, None)?,
        }
        self.enter(SessionState::Ended, now);
        Ok(Action::LoggedOut)
    }

    /// Queues `msg` (number `seq`, beyond the gap); `false` when it is discarded instead (queueing
    /// off, or the queue full: then it is emptied and stays off until the gap is filled).
    fn enqueue(&mut self, seq: u64, msg: &Message<'_>, handled: bool) -> bool {
        if self.queue_overflowed {
            return false;
        }
        match self.queue.push(seq, msg.as_bytes(), handled) {
            Ok(()) | Err(gap::Refused::Duplicate) => true,
            Err(gap::Refused::Disabled) => false,
            Err(gap::Refused::Full) => {
                self.queue.clear();
                self.queue_overflowed = true;
                false
            }
        }
    }

    /// Asks for what is missing after `seen` arrived beyond the gap starting at `expected`: the
    /// numbers before it not yet requested (it was queued), or everything not yet requested (it
    /// was discarded). One ResendRequest per hole.
    fn request_resend(
        &mut self,
        now: Now,
        expected: u64,
        seen: u64,
        queued: bool,
    ) -> Result<(), SessionError> {
        let want_to = if queued { seen - 1 } else { u64::MAX };
        let begin = match self.resend_until {
            Some(until) if until >= expected => {
                self.resend_until = Some(until.max(seen));
                if queued {
                    // Numbers up to `until` are requested or queued.
                    until.max(self.requested_to) + 1
                } else {
                    // The queue was dropped: everything not requested is missing.
                    self.requested_to.saturating_add(1)
                }
            }
            _ => {
                self.resend_until = Some(seen);
                self.requested_to = 0;
                expected
            }
        };
        if begin > want_to || self.requested_to == u64::MAX {
            return Ok(());
        }
        self.requested_to = want_to;
        let end = if queued { want_to } else { 0 };
        self.admin(now, MsgType::ResendRequest, |e| {
            e.u64(Tag::BeginSeqNo, begin).u64(Tag::EndSeqNo, end);
        })
    }

    /// Serves a ResendRequest from the store, as long as the queued output stays under
    /// [`MAX_QUEUED_OUTPUT`] (beyond it: Logout and [`SessionError::OutputOverflow`]).
    fn serve_resend(&mut self, now: Now, msg: &Message<'_>) -> Result<(), SessionError> {
        self.serve_resend_bounded(now, msg).or_else(|e| match e {
            SessionError::OutputOverflow => {
                // The Logout queues behind what is already there: a partly written message must
                // not be cut.
                self.send_logout(now, Some(b"resend requests not read: output limit reached"))?;
                Err(SessionError::OutputOverflow)
            }
            other => Err(other),
        })
    }

    fn serve_resend_bounded(&mut self, now: Now, msg: &Message<'_>) -> Result<(), SessionError> {
        let next = self.store.next_sender_seq();
        let begin = msg.u64(Tag::BeginSeqNo)?.max(1);
        let end = match msg.u64(Tag::EndSeqNo)? {
            0 => next - 1,
            e => e.min(next - 1),
        };
        let mut gap_start = None;
        let begin_string = self.config.version.begin_string().as_bytes();
        for seq in begin..=end {
            let Some(stored) = self.store.sent(seq)? else {
                gap_start.get_or_insert(seq);
                continue;
            };
            let Ok(original) = Message::parse_frame(stored) else {
                gap_start.get_or_insert(seq);
                continue;
            };
            if let Some(start) = gap_start.take() {
                gap_fill(&mut self.enc, &self.config, start, seq, now)?;
                self.out.extend_from_slice(self.enc.as_bytes());
            }
            let h = header(&self.config, seq, now);
            let enc = &mut self.enc;
            enc.start(begin_string, original.msg_type_bytes(), &h)
                .bool(Tag::PossDupFlag, true);
            if let Some(orig) = original.get(Tag::SendingTime) {
                enc.bytes(Tag::OrigSendingTime, orig);
            }
            for f in original.fields().filter(|f| !is_header_tag(f.tag)) {
                enc.bytes(f.tag, f.value);
            }
            self.out.extend_from_slice(enc.finish()?);
            if self.out.len() - self.out_pos > MAX_QUEUED_OUTPUT {
                return Err(SessionError::OutputOverflow);
            }
        }
        if let Some(start) = gap_start {
            gap_fill(&mut self.enc, &self.config, start, end + 1, now)?;
            self.out.extend_from_slice(self.enc.as_bytes());
        }
        self.last_sent = now.mono;
        Ok(())
    }

    fn send_logout(&mut self, now: Now, text: Option<&[u8]>) -> Result<(), SessionError> {
        self.admin(now, MsgType::Logout, |e| {
            if let Some(t) = text {
                e.bytes(Tag::Text, t);
            }
        })
    }

    /// Sends an administrative message with the next MsgSeqNum (not kept for resends).
    fn admin(
        &mut self,
        now: Now,
        msg_type: MsgType,
        body: impl FnOnce(&mut Encoder),
    ) -> Result<(), SessionError> {
        let seq = self.store.next_sender_seq();
        let h = header(&self.config, seq, now);
        self.enc.start(
            self.config.version.begin_string().as_bytes(),
            msg_type.as_bytes(),
            &h,
        );
        body(&mut self.enc);
        self.commit(now, false)
    }

    /// Finishes the message in the encoder, records it in the store and queues it.
    fn commit(&mut self, now: Now, keep: bool) -> Result<(), SessionError> {
        let bytes = self.enc.finish()?;
        let seq = self.store.next_sender_seq();
        self.store.record_sent(seq, keep.then_some(bytes))?;
        self.out.extend_from_slice(bytes);
        self.last_sent = now.mono;
        Ok(())
    }

    fn enter(&mut self, state: SessionState, now: Now) {
        self.state = state;
        self.since = now.mono;
    }
}

fn header(config: &SessionConfig, seq: u64, now: Now) -> Header<'_> {
    Header {
        sender: &config.sender_comp_id,
        target: &config.target_comp_id,
        seq,
        sending_time: now.utc,
        precision: config.precision,
    }
}

/// Encodes SequenceReset-GapFill as `seq`, moving the counterparty to `new_seq`.
fn gap_fill(
    enc: &mut Encoder,
    config: &SessionConfig,
    seq: u64,
    new_seq: u64,
    now: Now,
) -> Result<(), SessionError> {
    let h = header(config, seq, now);
    enc.start(
        config.version.begin_string().as_bytes(),
        MsgType::SequenceReset.as_bytes(),
        &h,
    )
    .bool(Tag::PossDupFlag, true)
    .timestamp(Tag::OrigSendingTime, now.utc, config.precision)
    .bool(Tag::GapFillFlag, true)
    .u64(Tag::NewSeqNo, new_seq);
    enc.finish()?;
    Ok(())
}

/// `TEST-<n>` into `out`.
fn test_req_id(n: u64, out: &mut [u8; 32]) -> usize {
    use std::io::Write as _;
    let mut cur = io::Cursor::new(&mut out[..]);
    let _ = write!(cur, "TEST-{n}");
    cur.position() as usize
}

/// The Logout text for a MsgSeqNum that is too low (no allocation).
fn too_low_text(expected: u64, received: u64, out: &mut [u8; 96]) -> usize {
    use std::io::Write as _;
    let mut cur = io::Cursor::new(&mut out[..]);
    let _ = write!(
        cur,
        "MsgSeqNum too low, expecting {expected} but received {received}"
    );
    cur.position() as usize
}
