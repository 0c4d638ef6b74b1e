//! [`RustlsStream`] against an in-process rustls server over an in-memory pipe whose client side
//! can be made to refuse writes: the seal path when the write buffer is full, KeyUpdate and
//! HelloRequest answers that must wait for room, the TLS 1.2 record limit (lowered here) and
//! `max_fragment_size`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection};

use super::{RustlsStream, Session, Traffic, LIMIT_MARGIN};
use crate::stream::tls::records::{content, Direction, Version, HEADER_LEN, MAX_PLAINTEXT};
use crate::stream::tls::{tls_error, TlsError, TlsRecordError};
use crate::stream::Stream;

/// The client's end of the pipe. Writes fail with `WouldBlock` while `blocked` is set.
#[derive(Default, Clone)]
struct Pipe {
    to_server: Rc<RefCell<Vec<u8>>>,
    to_client: Rc<RefCell<VecDeque<u8>>>,
    blocked: Rc<Cell<bool>>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut q = self.to_client.borrow_mut();
        if q.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        q.read(buf)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.blocked.get() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.to_server.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Pipe {
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Peer {
    client: RustlsStream<Pipe>,
    pipe: Pipe,
    /// `None` once a test took its keys.
    server: Option<ServerConnection>,
    /// Plaintext the server received, and whether a close_notify ended it.
    received: Vec<u8>,
    closed: bool,
    /// Every TLS byte the client wrote.
    wire: Vec<u8>,
}

impl Peer {
    fn new(
        version: &'static rustls::SupportedProtocolVersion,
        max_fragment: Option<usize>,
    ) -> Peer {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert: CertificateDer<'static> = ck.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
        let mut server_config = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        server_config.enable_secret_extraction = true;
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let mut client_config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client_config.enable_secret_extraction = true;
        client_config.max_fragment_size = max_fragment;
        let pipe = Pipe::default();
        let client = RustlsStream::new(Arc::new(client_config), "localhost", pipe.clone()).unwrap();
        let mut peer = Peer {
            client,
            pipe,
            server: Some(ServerConnection::new(Arc::new(server_config)).unwrap()),
            received: Vec::new(),
            closed: false,
            wire: Vec::new(),
        };
        for _ in 0..100 {
            if peer.client.poll_connect().unwrap() {
                break;
            }
            peer.pump();
        }
        assert!(peer.client.is_established(), "handshake");
        peer.pump();
        peer
    }

    /// Moves the client's bytes to the server, takes the plaintext it decrypts, sends its answers.
    fn pump(&mut self) {
        let data = std::mem::take(&mut *self.pipe.to_server.borrow_mut());
        if self.client.is_established() {
            self.wire.extend_from_slice(&data);
        }
        let server = self.server.as_mut().expect("the server");
        let mut rd = &data[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd).unwrap();
            server.process_new_packets().unwrap();
            let mut buf = [0u8; 4096];
            loop {
                match server.reader().read(&mut buf) {
                    Ok(0) => {
                        self.closed = true;
                        break;
                    }
                    Ok(n) => self.received.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("server read: {e}"),
                }
            }
        }
        while server.wants_write() {
            server
                .write_tls(&mut *self.pipe.to_client.borrow_mut())
                .unwrap();
        }
    }

    fn traffic(&mut self) -> &mut Traffic {
        match &mut self.client.session {
            Session::Traffic(t) => t,
            _ => panic!("not established"),
        }
    }

    /// Writes all of `data`, unblocking and pumping whenever the client would block.
    fn write_all(&mut self, data: &[u8]) {
        let mut at = 0;
        while at < data.len() {
            match self.client.write(&data[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pipe.blocked.set(false);
                    self.pump();
                }
                Err(e) => panic!("write: {e}"),
            }
        }
        self.pump();
    }

    /// Fills the client's write buffer while the pipe is blocked; returns what was taken.
    fn fill(&mut self, data: &[u8]) -> usize {
        self.pipe.blocked.set(true);
        let mut at = 0;
        loop {
            match self.client.write(&data[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return at,
                Err(e) => panic!("write: {e}"),
            }
        }
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn a_key_rotation_due_mid_write_never_duplicates_bytes() {
    let mut p = Peer::new(&rustls::version::TLS13, None);
    // Four records fit before the key is due to change; the fifth needs the KeyUpdate first, with
    // less than a whole record of room left and the stream refusing writes.
    let seq = p.traffic().tx.seq();
    p.traffic().tx_limit = seq + 4;
    let data = pattern(5 * MAX_PLAINTEXT);
    p.pipe.blocked.set(true);
    let first = p.client.write(&data);
    assert!(
        matches!(first, Ok(n) if n >= 4 * MAX_PLAINTEXT),
        "the sealed records are reported taken: {first:?}"
    );
    let at = first.unwrap();
    p.write_all(&data[at..]);
    assert_eq!(p.received.len(), data.len(), "no byte twice, none lost");
    assert!(p.received == data, "byte-exact");
    assert_eq!(p.traffic().tx_generation, 1, "one KeyUpdate sent");
}

#[test]
fn a_requested_key_update_waits_for_room_and_precedes_our_next_record() {
    let mut p = Peer::new(&rustls::version::TLS13, None);
    let data = pattern(200_000);
    let taken = p.fill(&data);
    assert!(taken > 0);
    // The server changes its key and asks for ours while our buffer has no room for a KeyUpdate.
    p.server.as_mut().unwrap().refresh_traffic_keys().unwrap();
    p.server
        .as_mut()
        .unwrap()
        .writer()
        .write_all(b"under the new key")
        .unwrap();
    p.pump();
    let mut buf = [0u8; 64];
    let n = p
        .client
        .read(&mut buf)
        .expect("not a fatal KeyUpdate error");
    assert_eq!(&buf[..n], b"under the new key");
    assert!(p.traffic().key_update_owed);
    assert_eq!(p.traffic().tx_generation, 0);
    // Room again: the KeyUpdate goes out before the next record, which the server (now reading
    // under our next key) decrypts.
    p.write_all(&data[taken..]);
    assert!(!p.traffic().key_update_owed);
    assert_eq!(p.traffic().tx_generation, 1);
    assert!(p.received == data, "byte-exact across the KeyUpdate");
}

#[test]
fn an_owed_key_update_goes_out_on_flush_but_never_after_close_notify() {
    let mut p = Peer::new(&rustls::version::TLS13, None);
    p.server.as_mut().unwrap().refresh_traffic_keys().unwrap();
    p.pump();
    p.pipe.blocked.set(true);
    let mut buf = [0u8; 8];
    // Reading handles the KeyUpdate; the answer is sealed at once (there is room) and waits.
    assert_eq!(
        p.client.read(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert_eq!(p.traffic().tx_generation, 1, "answered without a write");
    p.pipe.blocked.set(false);
    p.client.flush().unwrap();
    p.pump();

    // Owed while the buffer is full, then our close_notify: nothing is sealed after it.
    let data = pattern(200_000);
    let taken = p.fill(&data);
    p.server.as_mut().unwrap().refresh_traffic_keys().unwrap();
    p.pump();
    assert!(p.client.read(&mut buf).is_err());
    assert!(p.traffic().key_update_owed);
    p.pipe.blocked.set(false);
    loop {
        match p.client.shutdown_write() {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => p.pump(),
            Err(e) => panic!("shutdown_write: {e}"),
        }
    }
    p.client.flush().unwrap();
    p.pump();
    assert!(p.closed, "close_notify was the last record");
    assert_eq!(p.received, &data[..taken]);
    assert_eq!(
        p.traffic().tx_generation,
        1,
        "no KeyUpdate after close_notify"
    );
}

#[test]
fn a_hello_request_is_refused_once_there_is_room() {
    let mut p = Peer::new(&rustls::version::TLS12, None);
    let data = pattern(200_000);
    let taken = p.fill(&data);
    // rustls has no way to send a HelloRequest: take the server's keys and seal one as it would.
    let server = p.server.take().unwrap();
    let secrets = server.dangerous_extract_secrets().unwrap();
    let mut server_tx = Direction::new(Version::Tls12, secrets.tx.1, secrets.tx.0).unwrap();
    let mut server_rx = Direction::new(Version::Tls12, secrets.rx.1, secrets.rx.0).unwrap();
    let mut record = [0u8; 64];
    let n = server_tx
        .seal(content::HANDSHAKE, &[0, 0, 0, 0], &mut record)
        .unwrap();
    p.pipe.to_client.borrow_mut().extend(&record[..n]);
    let mut buf = [0u8; 8];
    let err = p.client.read(&mut buf).expect_err("nothing to read");
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "not fatal: {err}");
    assert!(p.traffic().refusal_owed, "no room for the refusal yet");
    // Room again: the refusal goes out before our next record.
    p.pipe.blocked.set(false);
    let mut at = taken;
    while at < data.len() {
        match p.client.write(&data[at..]) {
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("write: {e}"),
        }
    }
    p.client.flush().unwrap();
    let mut wire = std::mem::take(&mut *p.pipe.to_server.borrow_mut());
    let mut plain = Vec::new();
    let mut alert_at = None;
    let mut off = 0;
    while off < wire.len() {
        let len = crate::stream::tls::records::record_len(&wire[off..])
            .unwrap()
            .unwrap();
        let (typ, range) = server_rx.open(&mut wire[off..off + len]).unwrap();
        let body = &wire[off + range.start..off + range.end];
        match typ {
            content::APPLICATION_DATA => plain.extend_from_slice(body),
            content::ALERT => {
                assert_eq!(body, [1, 100], "a no_renegotiation warning");
                assert!(alert_at.is_none(), "one refusal");
                alert_at = Some(plain.len());
            }
            other => panic!("record type {other}"),
        }
        off += len;
    }
    assert!(plain == data, "byte-exact");
    assert_eq!(
        alert_at,
        Some(taken),
        "the refusal right behind what was sealed before"
    );
}

#[test]
fn the_tls12_record_limit_ends_the_session_with_close_notify() {
    let mut p = Peer::new(&rustls::version::TLS12, None);
    let seq = p.traffic().tx.seq();
    p.traffic().tx_limit = seq + LIMIT_MARGIN + 3;
    for _ in 0..3 {
        p.write_all(b"abc");
    }
    let err = p.client.write(b"def").expect_err("the key is worn out");
    assert!(
        matches!(
            tls_error(&err),
            Some(TlsError::Record(TlsRecordError::SequenceExhausted))
        ),
        "{err}"
    );
    let again = p
        .client
        .write(b"def")
        .expect_err("the session stays failed");
    assert!(
        matches!(
            tls_error(&again),
            Some(TlsError::Record(TlsRecordError::SequenceExhausted))
        ),
        "{again}"
    );
    p.client
        .shutdown_write()
        .expect("close_notify was sealed in the margin");
    p.pump();
    assert_eq!(p.received, b"abcabcabc");
    assert!(p.closed, "an orderly close for the server");
}

#[test]
fn max_fragment_size_from_the_config_bounds_every_record() {
    let mut p = Peer::new(&rustls::version::TLS13, Some(512));
    let data = pattern(10_000);
    p.write_all(&data);
    assert!(p.received == data);
    let mut at = 0;
    let mut records = 0;
    while at < p.wire.len() {
        let len = usize::from(u16::from_be_bytes([p.wire[at + 3], p.wire[at + 4]]));
        // 507 bytes of plaintext, the inner content type and the tag.
        assert!(len <= 512 - HEADER_LEN + 1 + 16, "record of {len} bytes");
        at += HEADER_LEN + len;
        records += 1;
    }
    assert!(records >= data.len() / 507, "{records} records");
}
