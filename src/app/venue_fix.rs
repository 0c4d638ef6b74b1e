//! The venue's FIX acceptor: fills every NewOrderSingle with one ExecutionReport, for the demo and
//! the probe.
//!
//! One thread per connection, blocking sockets with a short read timeout (to notice `stop`). It
//! speaks enough of the session layer (FIX 4.4 Volume 2 "Session Protocol") for a well-behaved
//! initiator: Logon (answered with the same HeartBtInt and ResetSeqNumFlag), Heartbeat on idle,
//! TestRequest answered, ResendRequest answered with a SequenceReset-GapFill (it keeps no store:
//! its own sequence restarts with every connection), Logout handshake. Any CompIDs are accepted;
//! replies swap them. It uses hotwire's codec, which keeps the acceptor small; the QuickFIX tests
//! are what checks the codec against someone else's.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::venue_tls::{Conn, Socket};
use crate::fix::codec::{
    frame_len, Encoder, Header, Message, MsgType, Tag, TimePrecision, UtcTimestamp,
    DEFAULT_MAX_MESSAGE,
};

/// Accepts FIX connections on `listener` until `stop` is set, each served on its own thread, over
/// TLS with `tls` when given (fixs).
pub(crate) fn spawn_fix(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("venue-fix".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((sock, peer)) => {
                        let (stop, tls) = (stop.clone(), tls.clone());
                        let _ = std::thread::Builder::new()
                            .name("venue-fix-conn".into())
                            .spawn(move || {
                                let served = sock
                                    .set_nonblocking(false)
                                    .and_then(|()| Conn::new(sock, tls.as_ref()))
                                    .and_then(|conn| serve(conn, &stop));
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
    next_out: u64,
    heartbeat: Duration,
    last_sent: Instant,
    orders: u64,
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

impl Acceptor {
    fn start(&mut self, msg_type: MsgType) -> &mut Encoder {
        let header = Header {
            sender: &self.ours,
            target: &self.theirs,
            seq: self.next_out,
            sending_time: utc(),
            precision: TimePrecision::Millis,
        };
        self.next_out += 1;
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

    fn handle(&mut self, msg: &Message<'_>) -> io::Result<()> {
        let field = |t: Tag| msg.get(t).unwrap_or_default();
        if !self.logged_on {
            if msg.msg_type() != MsgType::Logon {
                return Err(io::Error::other("first message is not a Logon"));
            }
            self.begin_string = msg.begin_string().to_vec();
            self.theirs = String::from_utf8_lossy(field(Tag::SenderCompId)).into_owned();
            self.ours = String::from_utf8_lossy(field(Tag::TargetCompId)).into_owned();
            let hb = msg.u64(Tag::HeartBtInt).unwrap_or(30).max(1);
            self.heartbeat = Duration::from_secs(hb);
            let reset = msg.flag(Tag::ResetSeqNumFlag).unwrap_or(false);
            let appl_ver = msg.get(Tag::DefaultApplVerId).map(<[u8]>::to_vec);
            let enc = self.start(MsgType::Logon);
            enc.u64(Tag::EncryptMethod, 0).u64(Tag::HeartBtInt, hb);
            if reset {
                enc.bool(Tag::ResetSeqNumFlag, true);
            }
            if let Some(v) = &appl_ver {
                enc.bytes(Tag::DefaultApplVerId, v);
            }
            self.logged_on = true;
            return self.finish();
        }
        match msg.msg_type() {
            MsgType::TestRequest => {
                let id = field(Tag::TestReqId).to_vec();
                self.start(MsgType::Heartbeat).bytes(Tag::TestReqId, &id);
                self.finish()
            }
            MsgType::ResendRequest => {
                // Nothing is stored: skip the counterparty to our next number.
                let (seq, next) = (msg.u64(Tag::BeginSeqNo).unwrap_or(1), self.next_out);
                let header = Header {
                    sender: &self.ours,
                    target: &self.theirs,
                    seq,
                    sending_time: utc(),
                    precision: TimePrecision::Millis,
                };
                self.enc
                    .start(
                        &self.begin_string,
                        MsgType::SequenceReset.as_bytes(),
                        &header,
                    )
                    .bool(Tag::PossDupFlag, true)
                    .timestamp(Tag::OrigSendingTime, utc(), TimePrecision::Millis)
                    .bool(Tag::GapFillFlag, true)
                    .u64(Tag::NewSeqNo, next);
                self.finish()
            }
            MsgType::Logout => {
                self.start(MsgType::Logout);
                self.done = true;
                self.finish()
            }
            MsgType::NewOrderSingle => self.fill(msg),
            _ => Ok(()),
        }
    }

    /// One ExecutionReport: the whole quantity filled at the limit price.
    fn fill(&mut self, msg: &Message<'_>) -> io::Result<()> {
        let get = |t: Tag| msg.get(t).map(<[u8]>::to_vec);
        let (cl_ord_id, symbol, side, qty) = (
            get(Tag::ClOrdId).unwrap_or_else(|| b"?".to_vec()),
            get(Tag::Symbol).unwrap_or_else(|| b"?".to_vec()),
            get(Tag::Side).unwrap_or_else(|| b"1".to_vec()),
            get(Tag::OrderQty).unwrap_or_else(|| b"0".to_vec()),
        );
        let price = get(Tag::Price).unwrap_or_else(|| b"0".to_vec());
        self.orders += 1;
        let (order_id, fix42) = (self.orders, self.begin_string == b"FIX.4.2");
        let enc = self.start(MsgType::ExecutionReport);
        enc.u64(Tag::OrderId, order_id)
            .u64(Tag::ExecId, order_id)
            .bytes(Tag::ClOrdId, &cl_ord_id);
        if fix42 {
            enc.char(Tag::ExecTransType, b'0').char(Tag::ExecType, b'2');
        } else {
            enc.char(Tag::ExecType, b'F');
        }
        enc.char(Tag::OrdStatus, b'2')
            .bytes(Tag::Symbol, &symbol)
            .bytes(Tag::Side, &side)
            .bytes(Tag::OrderQty, &qty)
            .bytes(Tag::LastQty, &qty)
            .bytes(Tag::LastPx, &price)
            .bytes(Tag::CumQty, &qty)
            .char(Tag::LeavesQty, b'0')
            .bytes(Tag::AvgPx, &price);
        let mut text = [0u8; 32];
        let n = recv_text(&mut text, self.read_ns);
        self.enc.bytes(Tag::Text, &text[..n]);
        self.finish()
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

fn serve(mut sock: Conn, stop: &AtomicBool) -> io::Result<()> {
    sock.tcp().set_nodelay(true)?;
    sock.tcp()
        .set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut a = Acceptor {
        begin_string: Vec::new(),
        ours: String::new(),
        theirs: String::new(),
        next_out: 1,
        heartbeat: Duration::from_secs(30),
        last_sent: Instant::now(),
        orders: 0,
        enc: Encoder::new(),
        out: Vec::with_capacity(64 << 10),
        logged_on: false,
        done: false,
        read_ns: 0,
    };
    let mut buf = vec![0u8; 2 * DEFAULT_MAX_MESSAGE];
    let (mut start, mut end) = (0, 0);
    while !stop.load(Ordering::Relaxed) && !a.done {
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
    Ok(())
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
    use crate::fix::session::{MemoryStore, State};
    use crate::fix::{FixEvent, FixSession, SessionConfig, Version};
    use crate::select::Selectable;
    use crate::stream::wait_fd;

    #[test]
    fn fills_orders_from_the_fix_client() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        spawn_fix(listener, None, stop.clone()).unwrap();
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
            while fix.session().state() != State::Ended {
                assert!(Instant::now() < deadline);
                while fix.receive(clock()).unwrap().is_some() {}
                wait_fd(Selectable::raw_fd(&fix), Duration::from_millis(5));
            }
        }
        stop.store(true, Ordering::Relaxed);
    }
}
