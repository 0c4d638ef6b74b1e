//! FIX errors on the receive path reach the application typed: a `FixEndpoint` in an `IoService`
//! against a scripted counterparty on loopback, one wrong thing per case, and the
//! `Event::Disconnected` reason must be `Error::Fix` with the session's own error inside (never
//! `Error::Io` to downcast):
//!
//! - the Logon answered with a Logout: `SessionError::LogonRejected` (connect phase);
//! - after a good Logon, a message whose MsgSeqNum is lower than expected without PossDupFlag:
//!   `SessionError::SeqTooLow`;
//! - after a good Logon, bytes that are not a FIX frame: `SessionError::Codec`.
#![cfg(all(feature = "fix", any(feature = "tls-rustls", feature = "tls-openssl")))]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use hotwire::fix::codec::{FixError, Message, TimePrecision, UtcTimestamp};
use hotwire::fix::endpoint::{FixEndpoint, FixHandler, FixOutbox};
use hotwire::fix::SessionError;
use hotwire::fix::{Now, SessionConfig, Version};
use hotwire::select::MioSelector;
use hotwire::service::IntoIoService;
use hotwire::service::{Disconnect, EndpointState, Error, Event, Flow, Policy};

/// What the counterparty does after reading the client's Logon.
#[derive(Debug, Clone, Copy)]
enum Script {
    /// Answers with a Logout.
    RefuseLogon,
    /// Answers with a Logon (MsgSeqNum 1), then sends a Heartbeat with MsgSeqNum 1 again.
    SeqTooLow,
    /// Answers with a Logon, then sends bytes that do not start with `8=`.
    Garbage,
}

/// A FIX 4.4 message from VENUE to CLIENT with the given MsgType, MsgSeqNum and extra fields,
/// sent now.
fn fix(msg_type: &str, seq: u64, extra: &str) -> Vec<u8> {
    let mut now = [0u8; 24];
    let n =
        UtcTimestamp::from_system_time(SystemTime::now()).write(TimePrecision::Millis, &mut now);
    let now = std::str::from_utf8(&now[..n]).unwrap();
    let body = format!("35={msg_type}\x0134={seq}\x0149=VENUE\x0156=CLIENT\x0152={now}\x01{extra}");
    let mut msg = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
    let sum = msg.iter().map(|b| u32::from(*b)).sum::<u32>() % 256;
    msg.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    msg
}

/// Reads until the client's first message is complete (its CheckSum field), within 5 s.
fn read_logon(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\x0110=") || got.last() != Some(&b'\x01') {
        let n = s.read(&mut buf).expect("the client's Logon");
        assert!(n > 0, "the client closed before its Logon: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Accepts one connection, plays `script`, and keeps the socket open until the client closes it
/// (so the error, not the peer's close, ends the session). Returns the client's Logon.
fn counterparty(script: Script) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let logon = read_logon(&mut s);
        let reply = match script {
            Script::RefuseLogon => fix("5", 1, "58=unknown CompID\x01"),
            Script::SeqTooLow => [fix("A", 1, "98=0\x01108=30\x01"), fix("0", 1, "")].concat(),
            Script::Garbage => [fix("A", 1, "98=0\x01108=30\x01"), b"HELLO\x01".to_vec()].concat(),
        };
        s.write_all(&reply).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 1024];
        while Instant::now() < deadline {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        logon
    });
    (port, peer)
}

/// The disconnects the handler saw: each reason's text, and whether it was the one expected.
#[derive(Debug, Default)]
struct Seen {
    reasons: Vec<String>,
    expected: Vec<bool>,
}

/// A handler that expects no application message and checks each disconnect with `expect`.
struct Quiet {
    expect: fn(&Disconnect) -> bool,
}

impl FixHandler<Seen> for Quiet {
    fn on_message(
        &mut self,
        msg: Message<'_>,
        _: &mut FixOutbox<'_>,
        _: Now,
        _: &mut Seen,
    ) -> Result<Flow, Error> {
        panic!("no application message expected: {msg:?}");
    }

    fn on_event(&mut self, event: &Event<'_>, seen: &mut Seen) {
        if let Event::Disconnected { reason, .. } = event {
            seen.reasons.push(format!("{reason:?}"));
            seen.expected.push((self.expect)(reason));
        }
    }
}

/// Runs one endpoint against `script` until it stops (no reconnect): exactly one disconnect,
/// and `expect` holds for its reason.
fn run(script: Script, expect: fn(&Disconnect) -> bool) {
    let (port, peer) = counterparty(script);
    let config = SessionConfig::new(Version::Fix44, "CLIENT", "VENUE");
    let policy = Policy {
        reconnect: false,
        ..Policy::default()
    };
    let endpoint = FixEndpoint::new(&format!("fix://127.0.0.1:{port}"), config, Quiet { expect })
        .unwrap()
        .with_policy(policy);
    let mut service = MioSelector::new()
        .unwrap()
        .into_io_service_with_context()
        .with_poll_timeout(Duration::from_millis(5));
    let id = service.register(endpoint);
    let mut seen = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(15);
    while service.state(id) != EndpointState::Stopped {
        assert!(Instant::now() < deadline, "{script:?}: still up: {seen:?}");
        service.poll(&mut seen).expect("service poll");
    }
    let logon = peer.join().expect("counterparty");
    assert!(logon.starts_with(b"8=FIX.4.4\x01"), "{logon:?}");
    assert_eq!(seen.expected, [true], "{script:?}: {seen:?}");
}

#[test]
fn refused_logon_is_a_typed_fix_error() {
    run(Script::RefuseLogon, |reason| {
        matches!(
            reason,
            Disconnect::Error(Error::Fix(SessionError::LogonRejected))
        )
    });
}

#[test]
fn sequence_too_low_is_a_typed_fix_error() {
    run(Script::SeqTooLow, |reason| {
        matches!(
            reason,
            Disconnect::Error(Error::Fix(SessionError::SeqTooLow {
                expected: 2,
                received: 1
            }))
        )
    });
}

#[test]
fn garbage_frame_is_a_typed_fix_error() {
    run(Script::Garbage, |reason| {
        matches!(
            reason,
            Disconnect::Error(Error::Fix(SessionError::Codec(FixError::BadBeginString)))
        )
    });
}
