//! The venue's FIX acceptor: fills every NewOrderSingle with one ExecutionReport, for the demo and
//! the probe.
//!
//! One thread per connection, blocking sockets with a short read timeout (to notice `stop`). It
//! speaks enough of the session layer (FIX 4.4 Volume 2 "Session Protocol") for a well-behaved
//! initiator: Logon (answered with the same HeartBtInt and ResetSeqNumFlag), Heartbeat on idle,
//! TestRequest answered, sequence numbers kept per session across connections (a gap is answered
//! with a ResendRequest, a ResendRequest with the ExecutionReports again and gap fills for the
//! rest: [`super::venue_fix_log`]), Logout handshake. Any CompIDs are accepted;
//! replies swap them. It uses hotwire's codec, which keeps the acceptor small; the QuickFIX tests
//! are what checks the codec against someone else's.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::venue_chaos::{Chaos, ConnChaos, Verdict};
use super::venue_fix_log::{Fill, SeqState, Sessions};
use super::venue_tls::{Conn, Socket};
use crate::fix::codec::{
    frame_len, Encoder, Header, Message, MsgType, Tag, TimePrecision, UtcTimestamp,
    DEFAULT_MAX_MESSAGE,
};

/// What every FIX connection thread shares.
#[derive(Debug, Clone)]
pub(crate) struct FixShared {
    /// The TLS configuration, for fixs.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// Set when the venue stops.
    pub(crate) stop: Arc<AtomicBool>,
    /// The venue's chaos mode, when on.
    pub(crate) chaos: Option<Arc<Chaos>>,
    /// Every session's sequence state, and the log.
    pub(crate) sessions: Arc<Sessions>,
    /// Busy-poll the sockets instead of blocking (`hotwire venue --spin`).
    pub(crate) spin: bool,
}

/// Accepts FIX connections on `listener` until `stop` is set, each served on its own thread, over
/// TLS when `shared.tls` is given (fixs).
pub(crate) fn spawn_fix(listener: TcpListener, shared: FixShared) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("venue-fix".into())
        .spawn(move || {
            while !shared.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((sock, peer)) => {
                        let shared = shared.clone();
                        let _ = std::thread::Builder::new()
                            .name("venue-fix-conn".into())
                            .spawn(move || {
                                let served = sock
                                    .set_nonblocking(false)
                                    .and_then(|()| Conn::new(sock, shared.tls.as_ref()))
                                    .and_then(|conn| serve(conn, &shared));
                                if let Err(e) = served {
                                    log::debug!("venue fix: {peer}: {e}");
                                }
                            });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => {
                        log::warn!("venue fix: accept: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })?;
    Ok(())
}

/// One connection's acceptor state.
struct Acceptor {
    begin_string: Vec<u8>,
    /// Our CompID (the initiator's TargetCompID) and theirs.
    ours: String,
    theirs: String,
    /// `SenderCompID>TargetCompID` as the initiator sends them, once logged on.
    session: String,
    /// The session's sequence numbers and sent ExecutionReports (taken from `sessions` at Logon,
    /// given back when the connection ends).
    state: SeqState,
    sessions: Arc<Sessions>,
    /// While a ResendRequest of ours is outstanding: the highest MsgSeqNum seen beyond the gap.
    gap_until: Option<u64>,
    heartbeat: Duration,
    last_sent: Instant,
    enc: Encoder,
    out: Vec<u8>,
    logged_on: bool,
    done: bool,
    /// CLOCK_REALTIME (ns) when the bytes being handled were read: an order's ExecutionReport
    /// carries it (`58=recv_ns=N`), so a client can measure tick-to-trade from the venue's clock
    /// alone (the feed's `"ts"` is the same clock at the other end).
    read_ns: u64,
}

fn utc() -> UtcTimestamp {
    UtcTimestamp::from_system_time(SystemTime::now())
}

/// A message type for the log.
fn type_text(t: &[u8]) -> &str {
    std::str::from_utf8(t).unwrap_or("?")
}

impl Acceptor {
    /// Starts our next message (the next sequence number).
    fn start(&mut self, msg_type: MsgType) -> &mut Encoder {
        let seq = self.state.next_out;
        self.state.next_out += 1;
        self.sessions.line(format_args!(
            "OUT {} {seq} {}",
            self.session,
            type_text(msg_type.as_bytes())
        ));
        self.start_at(seq, msg_type)
    }

    /// Starts a message with sequence number `seq` (a resend or a gap fill).
    fn start_at(&mut self, seq: u64, msg_type: MsgType) -> &mut Encoder {
        let header = Header {
            sender: &self.ours,
            target: &self.theirs,
            seq,
            sending_time: utc(),
            precision: TimePrecision::Millis,
        };
        self.enc
            .start(&self.begin_string, msg_type.as_bytes(), &header)
    }

    fn finish(&mut self) -> io::Result<()> {
        let bytes = self
            .enc
            .finish()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.out.extend_from_slice(bytes);
        self.last_sent = Instant::now();
        Ok(())
    }

    fn logon(&mut self, msg: &Message<'_>) -> io::Result<()> {
        let field = |t: Tag| msg.get(t).unwrap_or_default();
        if msg.msg_type() != MsgType::Logon {
            return Err(io::Error::other("first message is not a Logon"));
        }
        self.begin_string = msg.begin_string().to_vec();
        self.theirs = String::from_utf8_lossy(field(Tag::SenderCompId)).into_owned();
        self.ours = String::from_utf8_lossy(field(Tag::TargetCompId)).into_owned();
        self.session = format!("{}>{}", self.theirs, self.ours);
        self.state = match self.sessions.take(&self.session) {
            Some(state) => state,
            None => {
                // The connection that holds the session has not noticed it is gone yet: refuse
                // this one (the initiator retries) rather than run the session twice.
                self.sessions.line(format_args!("BUSY {}", self.session));
                return Err(io::Error::other(format!(
                    "{} is logged on on another connection",
                    self.session
                )));
            }
        };
        let hb = msg.u64(Tag::HeartBtInt).unwrap_or(30).max(1);
        self.heartbeat = Duration::from_secs(hb);
        let reset = msg.flag(Tag::ResetSeqNumFlag).unwrap_or(false);
        let seq = msg.seq_num().unwrap_or(0);
        if reset {
            self.state = SeqState::default();
        }
        self.sessions.line(format_args!(
            "LOGON {} seq={seq} reset={}",
            self.session,
            u8::from(reset)
        ));
        self.logged_on = true;
        let expected = self.state.expected_in;
        if seq < expected {
            // MsgSeqNum too low on a Logon without a reset: nothing can repair the session.
            self.sessions.line(format_args!(
                "ERR {} logon seq {seq} below expected {expected}",
                self.session
            ));
            self.start(MsgType::Logout)
                .bytes(Tag::Text, b"MsgSeqNum too low");
            self.done = true;
            return self.finish();
        }
        if seq == expected {
            self.state.expected_in += 1;
            self.sessions
                .line(format_args!("IN {} {seq} A", self.session));
        }
        let appl_ver = msg.get(Tag::DefaultApplVerId).map(<[u8]>::to_vec);
        let enc = self.start(MsgType::Logon);
        enc.u64(Tag::EncryptMethod, 0).u64(Tag::HeartBtInt, hb);
        if reset {
            enc.bool(Tag::ResetSeqNumFlag, true);
        }
        if let Some(v) = &appl_ver {
            enc.bytes(Tag::DefaultApplVerId, v);
        }
        self.finish()?;
        if seq > expected {
            self.gap(seq)?;
        }
        Ok(())
    }

    /// A message numbered beyond the one expected: ask for the rest once.
    fn gap(&mut self, seq: u64) -> io::Result<()> {
        let expected = self.state.expected_in;
        self.sessions.line(format_args!(
            "GAP {} expected={expected} got={seq}",
            self.session
        ));
        let outstanding = self.gap_until.is_some();
        self.gap_until = Some(self.gap_until.map_or(seq, |g| g.max(seq)));
        if outstanding {
            return Ok(());
        }
        self.start(MsgType::ResendRequest)
            .u64(Tag::BeginSeqNo, expected)
            .u64(Tag::EndSeqNo, 0);
        self.finish()
    }

    fn handle(&mut self, msg: &Message<'_>) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        if !self.logged_on {
            return self.logon(msg);
        }
        let field = |t: Tag| msg.get(t).unwrap_or_default();
        let msg_type = msg.msg_type();
        let seq = msg.seq_num().unwrap_or(0);
        let dup = msg.flag(Tag::PossDupFlag).unwrap_or(false);
        let gap_fill = msg.flag(Tag::GapFillFlag).unwrap_or(false);
        let expected = self.state.expected_in;
        if msg_type == MsgType::SequenceReset && !gap_fill {
            // Reset mode: the number is ignored, NewSeqNo is the next expected.
            let new = msg.u64(Tag::NewSeqNo).unwrap_or(expected).max(expected);
            self.state.expected_in = new;
            self.gap_until = None;
            self.sessions
                .line(format_args!("IN {} {seq} 4 new={new}", self.session));
            return Ok(());
        }
        if seq > expected {
            // ResendRequest and Logout are acted on across a gap; the rest waits for the resend.
            match msg_type {
                MsgType::ResendRequest => self.serve_resend(msg)?,
                MsgType::Logout => return self.logout(),
                _ => {}
            }
            return self.gap(seq);
        }
        if seq < expected {
            if dup {
                self.sessions
                    .line(format_args!("DUP {} {seq}", self.session));
                return Ok(());
            }
            self.sessions.line(format_args!(
                "ERR {} seq {seq} below expected {expected} without PossDupFlag",
                self.session
            ));
            self.start(MsgType::Logout)
                .bytes(Tag::Text, b"MsgSeqNum too low");
            self.done = true;
            return self.finish();
        }
        let next = if msg_type == MsgType::SequenceReset {
            msg.u64(Tag::NewSeqNo).unwrap_or(seq + 1).max(seq + 1)
        } else {
            seq + 1
        };
        self.state.expected_in = next;
        if self.gap_until.is_some_and(|g| next > g) {
            self.gap_until = None;
        }
        if self.sessions.logging() {
            let cl = msg.get(Tag::ClOrdId).map(String::from_utf8_lossy);
            self.sessions.line(format_args!(
                "IN {} {seq} {}{}{}{}",
                self.session,
                type_text(msg_type.as_bytes()),
                cl.map(|c| format!(" cl={c}")).unwrap_or_default(),
                if msg_type == MsgType::SequenceReset {
                    format!(" new={next}")
                } else {
                    String::new()
                },
                if dup { " dup" } else { "" }
            ));
        }
        match msg_type {
            MsgType::TestRequest => {
                let id = field(Tag::TestReqId).to_vec();
                self.start(MsgType::Heartbeat).bytes(Tag::TestReqId, &id);
                self.finish()
            }
            MsgType::ResendRequest => self.serve_resend(msg),
            MsgType::Logout => self.logout(),
            MsgType::NewOrderSingle => self.fill(msg),
            _ => Ok(()),
        }
    }

    fn logout(&mut self) -> io::Result<()> {
        self.start(MsgType::Logout);
        self.done = true;
        self.finish()?;
        // Given back before the reply is written, so the initiator's next Logon finds it free.
        self.release();
        Ok(())
    }

    /// Gives the session's state back (once): the session outlives the connection.
    fn release(&mut self) {
        if std::mem::take(&mut self.logged_on) {
            let state = std::mem::take(&mut self.state);
            self.sessions.put(std::mem::take(&mut self.session), state);
        }
    }

    /// Sends the ExecutionReports asked for again (PossDupFlag=Y, OrigSendingTime) and gap-fills
    /// everything else in the range.
    fn serve_resend(&mut self, msg: &Message<'_>) -> io::Result<()> {
        let last = self.state.next_out.saturating_sub(1);
        let begin = msg.u64(Tag::BeginSeqNo).unwrap_or(1).max(1);
        let end = match msg.u64(Tag::EndSeqNo).unwrap_or(0) {
            0 => last,
            e => e.min(last),
        };
        if begin > end {
            return Ok(());
        }
        let fills: Vec<(u64, Fill)> = self
            .state
            .fills
            .range(begin..=end)
            .map(|(s, f)| (*s, f.clone()))
            .collect();
        let mut from = begin;
        for (seq, fill) in fills {
            if seq > from {
                self.gap_fill(from, seq)?;
            }
            self.sessions.line(format_args!(
                "OUT {} {seq} 8 cl={} dup",
                self.session,
                String::from_utf8_lossy(&fill.cl_ord_id)
            ));
            self.start_at(seq, MsgType::ExecutionReport)
                .bool(Tag::PossDupFlag, true)
                .timestamp(Tag::OrigSendingTime, utc(), TimePrecision::Millis);
            self.encode_fill(&fill);
            self.finish()?;
            from = seq + 1;
        }
        if from <= end {
            self.gap_fill(from, end + 1)?;
        }
        Ok(())
    }

    /// SequenceReset-GapFill numbered `seq`, the next number being `new`.
    fn gap_fill(&mut self, seq: u64, new: u64) -> io::Result<()> {
        self.sessions
            .line(format_args!("OUT {} {seq} 4 new={new} dup", self.session));
        self.start_at(seq, MsgType::SequenceReset)
            .bool(Tag::PossDupFlag, true)
            .timestamp(Tag::OrigSendingTime, utc(), TimePrecision::Millis)
            .bool(Tag::GapFillFlag, true)
            .u64(Tag::NewSeqNo, new);
        self.finish()
    }

    /// One ExecutionReport: the whole quantity filled at the limit price.
    fn fill(&mut self, msg: &Message<'_>) -> io::Result<()> {
        let get = |t: Tag, default: &[u8]| msg.get(t).unwrap_or(default).to_vec();
        self.state.orders += 1;
        let fill = Fill {
            cl_ord_id: get(Tag::ClOrdId, b"?"),
            symbol: get(Tag::Symbol, b"?"),
            side: get(Tag::Side, b"1"),
            qty: get(Tag::OrderQty, b"0"),
            price: get(Tag::Price, b"0"),
            order_id: self.state.orders,
            read_ns: self.read_ns,
        };
        let seq = self.state.next_out;
        self.state.next_out += 1;
        self.sessions.line(format_args!(
            "OUT {} {seq} 8 cl={}",
            self.session,
            String::from_utf8_lossy(&fill.cl_ord_id)
        ));
        self.start_at(seq, MsgType::ExecutionReport);
        self.encode_fill(&fill);
        self.finish()?;
        self.state.keep(seq, fill);
        Ok(())
    }

    /// The body of an ExecutionReport for `fill`, after its header.
    fn encode_fill(&mut self, fill: &Fill) {
        let fix42 = self.begin_string == b"FIX.4.2";
        let enc = &mut self.enc;
        enc.u64(Tag::OrderId, fill.order_id)
            .u64(Tag::ExecId, fill.order_id)
            .bytes(Tag::ClOrdId, &fill.cl_ord_id);
        if fix42 {
            enc.char(Tag::ExecTransType, b'0').char(Tag::ExecType, b'2');
        } else {
            enc.char(Tag::ExecType, b'F');
        }
        enc.char(Tag::OrdStatus, b'2')
            .bytes(Tag::Symbol, &fill.symbol)
            .bytes(Tag::Side, &fill.side)
            .bytes(Tag::OrderQty, &fill.qty)
            .bytes(Tag::LastQty, &fill.qty)
            .bytes(Tag::LastPx, &fill.price)
            .bytes(Tag::CumQty, &fill.qty)
            .char(Tag::LeavesQty, b'0')
            .bytes(Tag::AvgPx, &fill.price);
        let mut text = [0u8; 32];
        let n = recv_text(&mut text, fill.read_ns);
        enc.bytes(Tag::Text, &text[..n]);
    }
}

/// Writes `recv_ns=N` into `out`, returning its length.
fn recv_text(out: &mut [u8; 32], ns: u64) -> usize {
    let prefix = b"recv_ns=";
    out[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 20];
    let n = crate::fix::codec::write_u64(ns, &mut digits);
    out[prefix.len()..prefix.len() + n].copy_from_slice(&digits[..n]);
    prefix.len() + n
}

fn serve(mut sock: Conn, shared: &FixShared) -> io::Result<()> {
    let mut a = Acceptor {
        begin_string: Vec::new(),
        ours: String::new(),
        theirs: String::new(),
        session: String::new(),
        state: SeqState::default(),
        sessions: shared.sessions.clone(),
        gap_until: None,
        heartbeat: Duration::from_secs(30),
        last_sent: Instant::now(),
        enc: Encoder::new(),
        out: Vec::with_capacity(64 << 10),
        logged_on: false,
        done: false,
        read_ns: 0,
    };
    let mut chaos = ConnChaos::new(shared.chaos.as_ref());
    let served = run(&mut sock, &mut a, shared, &mut chaos);
    a.release();
    served
}

/// How long one read waits before the loop checks heartbeats, chaos and `stop`.
const READ_WAIT: Duration = Duration::from_millis(100);

fn run(
    sock: &mut Conn,
    a: &mut Acceptor,
    shared: &FixShared,
    chaos: &mut ConnChaos,
) -> io::Result<()> {
    let stop = &*shared.stop;
    sock.tcp().set_nodelay(true)?;
    sock.tcp().set_read_timeout(Some(READ_WAIT))?;
    let mut buf = vec![0u8; 2 * DEFAULT_MAX_MESSAGE];
    let (mut start, mut end) = (0, 0);
    while !stop.load(Ordering::Relaxed) && !a.done {
        if chaos.strike(sock.tcp()) == Verdict::Close {
            return Ok(());
        }
        if shared.spin {
            spin_until_readable(sock, stop);
        }
        match sock.read(&mut buf[end..]) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                end += n;
                a.read_ns = SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        while let Some(n) = frame_len(&buf[start..end], DEFAULT_MAX_MESSAGE)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        {
            if let Ok(msg) = Message::parse_frame(&buf[start..start + n]) {
                a.handle(&msg)?;
            }
            start += n;
        }
        if start == end {
            (start, end) = (0, 0);
        } else if end == buf.len() {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        if a.logged_on && !a.done && a.last_sent.elapsed() >= a.heartbeat {
            a.start(MsgType::Heartbeat);
            a.finish()?;
        }
        if !a.out.is_empty() {
            sock.write_all(&a.out)?;
            a.out.clear();
        }
    }
    if !a.out.is_empty() {
        sock.write_all(&a.out)?;
    }
    Ok(())
}

/// Spins, yielding the core between polls, until `sock` has bytes to read (buffered plaintext
/// included), `stop` is set, or the blocking read's own timeout has passed (so the heartbeat
/// and chaos checks of the loop still run).
fn spin_until_readable(sock: &mut Conn, stop: &AtomicBool) {
    use std::os::fd::AsRawFd as _;
    let started = Instant::now();
    let fd = sock.tcp().as_raw_fd();
    while !sock.has_plaintext() && !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, a zero timeout: poll only reports readiness.
        if unsafe { libc::poll(&mut pfd, 1, 0) } != 0 || started.elapsed() >= READ_WAIT {
            return;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receive_stamp_is_plain_decimal() {
        let mut out = [0u8; 32];
        for ns in [0, 7, 1_732_480_000_123_456_789, u64::MAX] {
            let n = recv_text(&mut out, ns);
            assert_eq!(&out[..n], format!("recv_ns={ns}").as_bytes());
        }
    }
    use crate::fix::client::clock;
    use crate::fix::codec::Decimal;
    use crate::fix::orders::{ExecReport, NewOrder, Side};
    use crate::fix::session::{MemoryStore, SessionState};
    use crate::fix::{FixEvent, FixSession, SessionConfig, Version};
    use crate::select::Selectable;
    use crate::stream::wait_fd;

    #[test]
    fn fills_orders_from_the_fix_client() {
        fills_orders(false);
    }

    #[test]
    fn fills_orders_when_spinning() {
        fills_orders(true);
    }

    fn fills_orders(spin: bool) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let shared = FixShared {
            tls: None,
            stop: stop.clone(),
            chaos: None,
            sessions: Arc::new(Sessions::new(None).unwrap()),
            spin,
        };
        spawn_fix(listener, shared).unwrap();
        for version in [Version::Fix42, Version::Fix44, Version::Fixt11] {
            let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            tcp.set_nonblocking(true).unwrap();
            let mut config = SessionConfig::new(version, "DESK", "VENUE");
            config.reset_on_logon = true;
            let mut fix = FixSession::new(tcp, config, MemoryStore::new(), clock());
            let deadline = Instant::now() + Duration::from_secs(10);
            while !fix.poll_connect().unwrap() {
                assert!(Instant::now() < deadline);
                wait_fd(Selectable::raw_fd(&fix), Duration::from_millis(5));
            }
            for i in 0..50 {
                let now = clock();
                let id = format!("o{i}");
                let order = NewOrder {
                    cl_ord_id: &id,
                    symbol: "HWIR",
                    side: Side::Buy,
                    qty: Decimal::new(7, 0),
                    price: Some(Decimal::new(1015, 1)),
                    time_in_force: None,
                    account: None,
                };
                fix.send(now, b"D", |e| order.encode(e, version, now.utc))
                    .unwrap();
            }
            let mut filled = 0;
            while filled < 50 {
                assert!(Instant::now() < deadline, "{filled} of 50");
                while let Some(ev) = fix.receive(clock()).unwrap() {
                    if let FixEvent::App(msg) = ev {
                        let er = ExecReport::from_message(&msg).unwrap();
                        assert!(er.is_filled());
                        assert_eq!(er.last_px, Some(Decimal::new(1015, 1)));
                        filled += 1;
                    }
                }
                wait_fd(Selectable::raw_fd(&fix), Duration::from_millis(5));
            }
            fix.test_request(clock()).unwrap();
            fix.logout(clock(), None).unwrap();
            while fix.session().state() != SessionState::Ended {
                assert!(Instant::now() < deadline);
                while fix.receive(clock()).unwrap().is_some() {}
                wait_fd(Selectable::raw_fd(&fix), Duration::from_millis(5));
            }
        }
        stop.store(true, Ordering::Relaxed);
    }
}
