//! A rustls client session over any non-blocking [`Stream`], with no allocation per message.
//!
//! rustls' unbuffered client runs the handshake in this type's own buffers. Once it completes,
//! rustls hands over the traffic keys ([`UnbufferedClientConnection::dangerous_into_kernel_connection`],
//! the split kTLS makes) and every application record is sealed and opened in place by
//! [`records`](super::records). rustls keeps what only it can do: deriving the next traffic secret
//! on a TLS 1.3 KeyUpdate and storing the session tickets the server sends.
//!
//! After the handshake this type handles what a peer may send (RFC 8446 §4.6, RFC 5246 §7.4.1.1):
//! NewSessionTicket (stored for resumption), KeyUpdate (keys changed, answered when the peer asks),
//! a TLS 1.2 HelloRequest (refused with a `no_renegotiation` warning), close_notify (end of
//! stream), any other alert (a typed [`TlsRecordError::Alert`]), and every malformed record (a typed
//! [`TlsRecordError`], with the matching alert sent back). Every buffer is bounded. Answers to a
//! KeyUpdate or HelloRequest are owed, not urgent (RFC 8446 §4.6.3): sealed as soon as the write
//! buffer has room, always before our next application record, never after our close_notify.
//!
//! A TLS 1.3 sending key changes (with our own KeyUpdate) when it reaches the suite's record limit.
//! A TLS 1.2 key cannot: a few records short of the limit the session queues close_notify and fails
//! with [`TlsRecordError::SequenceExhausted`]. A `max_fragment_size` set by a config hook bounds
//! every application record as it would in rustls; 0-RTT data is never sent.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::kernel::KernelConnection;
use rustls::pki_types::ServerName;
use rustls::unbuffered::{ConnectionState, EncodeError};
use rustls::{ClientConfig, SupportedCipherSuite};

use super::records::{self, content, Direction, TlsRecordError, Version, HEADER_LEN, MAX_RECORD};
use super::rustls_backend::tls_failure;
use super::{TlsError, TlsVersion};
use crate::stream::{would_block, Stream};

/// Room for the largest handshake message rustls accepts (64 KiB, which it keeps in this buffer
/// until complete, spread over several records) and two whole records besides.
const READ_BUF: usize = (1 << 16) + 2 * (MAX_RECORD + 2048);
/// Room for four full records.
const WRITE_BUF: usize = 4 * MAX_RECORD;
/// The bound on plaintext written before the handshake completes (as rustls' own default).
const EARLY_LIMIT: usize = 64 * 1024;
/// Records kept in reserve below a TLS 1.2 key's limit for the alerts that end the session.
const LIMIT_MARGIN: u64 = 8;
/// The bound on one post-handshake handshake message (a NewSessionTicket with a large ticket).
const MAX_HANDSHAKE_MESSAGE: usize = 4 + (1 << 16) + 512;

const HANDSHAKE_HELLO_REQUEST: u8 = 0;
const HANDSHAKE_NEW_SESSION_TICKET: u8 = 4;
const HANDSHAKE_KEY_UPDATE: u8 = 24;
const ALERT_WARNING: u8 = 1;
const ALERT_FATAL: u8 = 2;
const ALERT_CLOSE_NOTIFY: u8 = 0;
const ALERT_USER_CANCELED: u8 = 90;
const ALERT_NO_RENEGOTIATION: u8 = 100;

enum Session {
    Handshaking(Box<UnbufferedClientConnection>),
    Traffic(Box<Traffic>),
    /// Only while rustls' connection is being consumed, or after that failed.
    Gone,
}

/// The state after the handshake: our record keys and rustls' key schedule.
struct Traffic {
    kernel: KernelConnection<ClientConnectionData>,
    version: Version,
    tx: Direction,
    rx: Direction,
    /// Records sent under one key before it must change (the suite's confidentiality limit).
    tx_limit: u64,
    /// How many times our sending key changed (KeyUpdates we sent).
    tx_generation: u64,
    /// The peer asked for our KeyUpdate (TLS 1.3), not yet sent.
    key_update_owed: bool,
    /// The peer sent a HelloRequest (TLS 1.2), not yet refused.
    refusal_owed: bool,
}

/// A rustls client session over `S`.
///
/// Early writes are queued in one bounded buffer of this type (64 KiB) and sealed as soon as the
/// handshake completes.
pub struct RustlsStream<S> {
    io: S,
    session: Session,
    /// Received TLS bytes: `rbuf[rstart..rend]`, of which `rbuf[plain]` is decrypted plaintext not
    /// yet read.
    rbuf: Box<[u8]>,
    rstart: usize,
    rend: usize,
    plain: std::ops::Range<usize>,
    /// Sealed records not yet written: `wbuf[wstart..wend]`.
    wbuf: Box<[u8]>,
    wstart: usize,
    wend: usize,
    /// Plaintext written before the handshake completed, or received in its last flight.
    early_out: Vec<u8>,
    early_in: Vec<u8>,
    early_in_read: usize,
    /// A post-handshake handshake message being reassembled across records.
    hs: Vec<u8>,
    alpn: Option<Vec<u8>>,
    version: Option<TlsVersion>,
    suite: Option<SupportedCipherSuite>,
    peer_closed: bool,
    close_sent: bool,
    failed: Option<TlsRecordError>,
    /// The largest plaintext per application record: 2^14, or less by the config's
    /// `max_fragment_size`.
    max_plain: usize,
}

impl<S> std::fmt::Debug for RustlsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustlsStream")
            .field("established", &matches!(self.session, Session::Traffic(_)))
            .field("suite", &self.suite.map(|s| s.suite()))
            .finish_non_exhaustive()
    }
}

impl<S: Stream> RustlsStream<S> {
    pub(super) fn new(config: Arc<ClientConfig>, server_name: &str, io: S) -> io::Result<Self> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid TLS server name {server_name:?}"),
            )
        })?;
        // rustls counts the 5-byte header in `max_fragment_size` and checks its range in `new`.
        let max_plain = config
            .max_fragment_size
            .map_or(records::MAX_PLAINTEXT, |m| {
                m.saturating_sub(HEADER_LEN).min(records::MAX_PLAINTEXT)
            });
        let conn = UnbufferedClientConnection::new(config, name)
            .map_err(|e| TlsError::Protocol(e.to_string()).into_io())?;
        Ok(RustlsStream {
            io,
            session: Session::Handshaking(Box::new(conn)),
            rbuf: vec![0; READ_BUF].into_boxed_slice(),
            rstart: 0,
            rend: 0,
            plain: 0..0,
            wbuf: vec![0; WRITE_BUF].into_boxed_slice(),
            wstart: 0,
            wend: 0,
            early_out: Vec::new(),
            early_in: Vec::new(),
            early_in_read: 0,
            hs: Vec::new(),
            alpn: None,
            version: None,
            suite: None,
            peer_closed: false,
            close_sent: false,
            failed: None,
            max_plain,
        })
    }

    /// The negotiated ALPN protocol.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match &self.session {
            Session::Handshaking(c) => c.alpn_protocol(),
            Session::Traffic(_) | Session::Gone => self.alpn.as_deref(),
        }
    }

    /// The negotiated protocol version.
    pub fn version(&self) -> Option<TlsVersion> {
        self.version
    }

    /// The negotiated cipher suite, once the handshake is done.
    pub fn cipher_suite(&self) -> Option<SupportedCipherSuite> {
        self.suite
    }

    /// `true` once the handshake has completed.
    pub fn is_established(&self) -> bool {
        matches!(self.session, Session::Traffic(_))
    }

    /// The stream under the session.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Queues a close_notify alert (once) and writes what it can.
    pub fn close_notify(&mut self) -> io::Result<()> {
        if !self.is_established() {
            return Ok(());
        }
        self.queue_close_notify()?;
        self.push_tls().map(|_| ())
    }

    fn queue_close_notify(&mut self) -> io::Result<()> {
        if !self.close_sent {
            self.seal_control(content::ALERT, &[ALERT_WARNING, ALERT_CLOSE_NOTIFY])?;
            self.close_sent = true;
        }
        Ok(())
    }

    /// Writes queued TLS bytes until the stream would block. `Ok(true)` when nothing is left.
    fn push_tls(&mut self) -> io::Result<bool> {
        while self.wstart < self.wend {
            match self.io.write(&self.wbuf[self.wstart..self.wend]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wstart += n,
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wstart = 0;
        self.wend = 0;
        Ok(true)
    }

    /// Reads from the stream into the free end of the read buffer, moving unread bytes to its front
    /// first. `Ok(false)` when the stream would block; `UnexpectedEof` when it is closed.
    fn pull_tls(&mut self) -> io::Result<bool> {
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        } else if self.rend == self.rbuf.len() || self.rbuf.len() - self.rstart < MAX_RECORD {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        if self.rend == self.rbuf.len() {
            return Err(record_failure(TlsRecordError::RecordOverflow));
        }
        loop {
            return match self.io.read(&mut self.rbuf[self.rend..]) {
                Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.rend += n;
                    Ok(true)
                }
                Err(e) if would_block(&e) => Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    /// Drives the handshake as far as the stream allows. `Ok(true)` once established.
    fn handshake(&mut self) -> io::Result<bool> {
        loop {
            let Session::Handshaking(conn) = &mut self.session else {
                return Ok(true);
            };
            if self.wstart > 0 {
                self.wbuf.copy_within(self.wstart..self.wend, 0);
                self.wend -= self.wstart;
                self.wstart = 0;
            }
            let status = conn.process_tls_records(&mut self.rbuf[self.rstart..self.rend]);
            let mut discard = status.discard;
            let mut next = Next::Continue;
            match status.state {
                Err(e) => next = Next::Fail(e),
                Ok(ConnectionState::EncodeTlsData(mut enc)) => {
                    match enc.encode(&mut self.wbuf[self.wend..]) {
                        Ok(n) => self.wend += n,
                        Err(EncodeError::InsufficientSize(_)) => next = Next::Overflow,
                        Err(e) => next = Next::Fail(rustls::Error::General(e.to_string())),
                    }
                }
                Ok(ConnectionState::TransmitTlsData(t)) => {
                    // The bytes are in `wbuf` now; writing them is ours to do.
                    t.done();
                    next = Next::Transmit;
                }
                Ok(ConnectionState::BlockedHandshake) => next = Next::Read,
                Ok(ConnectionState::WriteTraffic(_)) => next = Next::Established,
                Ok(ConnectionState::ReadTraffic(mut r)) => {
                    // Application data the server sent right behind its last handshake flight.
                    while let Some(record) = r.next_record() {
                        match record {
                            Ok(record) => {
                                discard += record.discard;
                                if self.early_in.len() + record.payload.len() > EARLY_LIMIT {
                                    next = Next::Overflow;
                                    break;
                                }
                                self.early_in.extend_from_slice(record.payload);
                            }
                            Err(e) => {
                                next = Next::Fail(e);
                                break;
                            }
                        }
                    }
                }
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => next = Next::Eof,
                Ok(_) => {
                    next = Next::Fail(rustls::Error::General(
                        "unexpected rustls state during the handshake".into(),
                    ))
                }
            }
            self.rstart += discard;
            match next {
                Next::Continue => {}
                Next::Transmit => {
                    self.push_tls()?;
                }
                Next::Read => {
                    self.push_tls()?;
                    match self.pull_tls() {
                        Ok(true) => {}
                        Ok(false) => return Ok(false),
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "peer closed the connection during the TLS handshake",
                            ))
                        }
                        Err(e) => return Err(e),
                    }
                }
                Next::Established => {
                    self.establish()?;
                    return Ok(true);
                }
                Next::Eof => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peer closed the TLS session during the handshake",
                    ))
                }
                Next::Overflow => {
                    return Err(TlsError::Protocol(
                        "handshake data larger than the session's buffers".into(),
                    )
                    .into_io())
                }
                Next::Fail(e) => {
                    self.send_handshake_alert();
                    return Err(tls_failure(e));
                }
            }
        }
    }

    /// Sends the alert rustls queued after a handshake failure, best effort.
    fn send_handshake_alert(&mut self) {
        if let Session::Handshaking(conn) = &mut self.session {
            if let Ok(ConnectionState::EncodeTlsData(mut enc)) =
                conn.process_tls_records(&mut []).state
            {
                if let Ok(n) = enc.encode(&mut self.wbuf[self.wend..]) {
                    self.wend += n;
                }
            }
        }
        let _ = self.push_tls();
    }

    /// Takes the traffic keys from rustls and seals what was written during the handshake.
    fn establish(&mut self) -> io::Result<()> {
        let Session::Handshaking(conn) = &self.session else {
            return Ok(());
        };
        let (version, tls_version) = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => (Version::Tls12, TlsVersion::Tls12),
            Some(rustls::ProtocolVersion::TLSv1_3) => (Version::Tls13, TlsVersion::Tls13),
            _ => return Err(record_failure(TlsRecordError::UnsupportedSuite)),
        };
        let suite = conn
            .negotiated_cipher_suite()
            .ok_or_else(|| record_failure(TlsRecordError::UnsupportedSuite))?;
        self.alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        self.version = Some(tls_version);
        self.suite = Some(suite);
        let Session::Handshaking(conn) = std::mem::replace(&mut self.session, Session::Gone) else {
            return Ok(());
        };
        let (secrets, kernel) = conn
            .dangerous_into_kernel_connection()
            .map_err(tls_failure)?;
        let tx = Direction::new(version, secrets.tx.1, secrets.tx.0).map_err(record_failure)?;
        let rx = Direction::new(version, secrets.rx.1, secrets.rx.0).map_err(record_failure)?;
        let tx_limit = match suite {
            SupportedCipherSuite::Tls12(s) => s.common.confidentiality_limit,
            SupportedCipherSuite::Tls13(s) => s.common.confidentiality_limit,
        };
        self.session = Session::Traffic(Box::new(Traffic {
            kernel,
            version,
            tx,
            rx,
            tx_limit,
            tx_generation: 0,
            key_update_owed: false,
            refusal_owed: false,
        }));
        self.push_early().map(|_| ())
    }

    /// Seals and writes the plaintext queued during the handshake, in order. `Ok(false)` when the
    /// stream is full and some of it still waits (in the same queue).
    fn push_early(&mut self) -> io::Result<bool> {
        while !self.early_out.is_empty() {
            let early = std::mem::take(&mut self.early_out);
            let sealed = self.seal_some(&early);
            self.early_out = early;
            self.early_out.drain(..sealed?);
            if !self.push_tls()? {
                return Ok(false);
            }
        }
        self.push_tls()
    }

    /// Moves unsent records to the front of the write buffer when less than a record's room is left.
    fn compact_wbuf(&mut self) {
        if self.wstart > 0 && self.wbuf.len() - self.wend < MAX_RECORD {
            self.wbuf.copy_within(self.wstart..self.wend, 0);
            self.wend -= self.wstart;
            self.wstart = 0;
        }
    }

    /// Seals as much of the application data `data` as fits in the write buffer, in records of at
    /// most 2^14 bytes (or the configured `max_fragment_size`), each preceded by what we owe the
    /// peer (see [`settle`]). Returns how many bytes were taken: 0 when nothing fits, and never an
    /// error once some bytes are sealed, so that the caller never writes them twice. At the TLS 1.2
    /// record limit it queues close_notify and fails the session with
    /// [`TlsRecordError::SequenceExhausted`].
    fn seal_some(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(e) = self.failed {
            return Err(record_failure(e));
        }
        self.compact_wbuf();
        let Session::Traffic(t) = &mut self.session else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let mut taken = 0;
        let mut stop = None;
        while taken < data.len() {
            if t.version == Version::Tls12 && t.tx.seq() >= t.tx_limit.saturating_sub(LIMIT_MARGIN)
            {
                // The key is worn out and TLS 1.2 cannot change it: end the session in order while
                // the margin still allows a close_notify.
                stop = Some(Stop::WornOut);
                break;
            }
            match settle(t, &mut self.wbuf, &mut self.wend, self.close_sent) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    stop = Some(Stop::Fail(e));
                    break;
                }
            }
            let room = self.wbuf.len() - self.wend;
            let overhead = HEADER_LEN + t.tx.overhead();
            if room <= overhead {
                break;
            }
            let n = (data.len() - taken)
                .min(self.max_plain)
                .min(room - overhead);
            let sealed = t.tx.seal(
                content::APPLICATION_DATA,
                &data[taken..taken + n],
                &mut self.wbuf[self.wend..],
            );
            match sealed {
                Ok(len) => {
                    self.wend += len;
                    taken += n;
                }
                Err(e) => {
                    stop = Some(Stop::Fail(e));
                    break;
                }
            }
        }
        match stop {
            None => Ok(taken),
            Some(Stop::WornOut) => {
                let alert = [ALERT_WARNING, ALERT_CLOSE_NOTIFY];
                match self.seal_control(content::ALERT, &alert) {
                    Ok(()) => {
                        self.close_sent = true;
                        self.failed = Some(TlsRecordError::SequenceExhausted);
                    }
                    // No room for the close_notify yet: nothing more is sealed until there is.
                    Err(e) if would_block(&e) => {}
                    Err(e) => return Err(e),
                }
                match taken {
                    0 => Err(self.seal_refusal()),
                    n => Ok(n),
                }
            }
            Some(Stop::Fail(e)) => {
                let err = self.fail(e);
                // Bytes already sealed stay reported; the next call returns the failure.
                match taken {
                    0 => Err(err),
                    n => Ok(n),
                }
            }
        }
    }

    /// Why [`seal_some`](Self::seal_some) took nothing: the session's failure, or a full buffer.
    fn seal_refusal(&self) -> io::Error {
        match self.failed {
            Some(e) => record_failure(e),
            None => io::ErrorKind::WouldBlock.into(),
        }
    }

    /// Seals one whole alert record under the current key, without first sealing what the peer is
    /// owed (an alert needs no KeyUpdate before it), or fails: `WouldBlock` when the buffer has no
    /// room even after writing what it can; on TLS 1.2, past the key's hard limit.
    fn seal_control(&mut self, typ: u8, payload: &[u8]) -> io::Result<()> {
        self.compact_wbuf();
        let Session::Traffic(t) = &self.session else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if self.wbuf.len() - self.wend < HEADER_LEN + payload.len() + t.tx.overhead()
            && !self.push_tls()?
        {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.compact_wbuf();
        let Session::Traffic(t) = &mut self.session else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if t.version == Version::Tls12 && t.tx.seq() >= t.tx_limit {
            return Err(record_failure(TlsRecordError::SequenceExhausted));
        }
        let n =
            t.tx.seal(typ, payload, &mut self.wbuf[self.wend..])
                .map_err(record_failure)?;
        self.wend += n;
        Ok(())
    }

    /// Seals what the peer is owed (an answer to its KeyUpdate or HelloRequest) and writes what it
    /// can; nothing after our close_notify or once the session failed.
    fn send_owed(&mut self) -> io::Result<()> {
        if self.close_sent || self.failed.is_some() {
            return Ok(());
        }
        self.compact_wbuf();
        let Session::Traffic(t) = &mut self.session else {
            return Ok(());
        };
        if let Err(e) = settle(t, &mut self.wbuf, &mut self.wend, self.close_sent) {
            return Err(self.fail(e));
        }
        self.push_tls().map(|_| ())
    }

    /// Records `e` as the session's end, tells the peer (best effort, never after our
    /// close_notify) and returns it as an error.
    fn fail(&mut self, e: TlsRecordError) -> io::Error {
        if self.failed.is_none() {
            if let Some(desc) = e.alert_description().filter(|_| !self.close_sent) {
                let _ = self.seal_control(content::ALERT, &[ALERT_FATAL, desc]);
                let _ = self.push_tls();
            }
            self.failed = Some(e);
        }
        record_failure(e)
    }

    /// Opens records until one yields plaintext (left in `self.plain`), the peer closes, or the
    /// stream would block.
    fn next_plaintext(&mut self) -> io::Result<()> {
        loop {
            let Session::Traffic(t) = &mut self.session else {
                return Err(io::ErrorKind::NotConnected.into());
            };
            let avail = &mut self.rbuf[self.rstart..self.rend];
            let len = match records::record_len(avail) {
                Ok(Some(len)) => len,
                Ok(None) => {
                    // Answers to KeyUpdate and HelloRequest go out before we wait, if they fit
                    // (else before our next record).
                    self.send_owed()?;
                    match self.pull_tls() {
                        Ok(true) => continue,
                        Ok(false) => return Err(io::ErrorKind::WouldBlock.into()),
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "peer closed connection without sending TLS close_notify",
                            ))
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(self.fail(e)),
            };
            let opened = t.rx.open(&mut avail[..len]);
            let start = self.rstart;
            self.rstart += len;
            let (typ, range) = match opened {
                Ok(r) => r,
                Err(e) => return Err(self.fail(e)),
            };
            let body = start + range.start..start + range.end;
            match typ {
                content::APPLICATION_DATA => {
                    if !self.hs.is_empty() {
                        // RFC 8446 §5.1: handshake messages may not be interleaved with others.
                        return Err(self.fail(TlsRecordError::UnexpectedMessage(typ)));
                    }
                    if !body.is_empty() {
                        self.plain = body;
                        return Ok(());
                    }
                }
                content::ALERT => {
                    let &[level, desc] = &self.rbuf[body] else {
                        return Err(self.fail(TlsRecordError::Decode));
                    };
                    match desc {
                        ALERT_CLOSE_NOTIFY => {
                            self.peer_closed = true;
                            return Ok(());
                        }
                        ALERT_USER_CANCELED => {}
                        // TLS 1.2 warnings (no_renegotiation, ...) are informational; TLS 1.3
                        // makes every other alert fatal (RFC 8446 §6).
                        _ if level == ALERT_WARNING && t.version == Version::Tls12 => {}
                        _ => {
                            self.failed = Some(TlsRecordError::Alert(desc));
                            return Err(record_failure(TlsRecordError::Alert(desc)));
                        }
                    }
                }
                content::HANDSHAKE => {
                    if body.is_empty() {
                        return Err(self.fail(TlsRecordError::Decode));
                    }
                    if self.hs.len() + body.len() > MAX_HANDSHAKE_MESSAGE {
                        return Err(self.fail(TlsRecordError::HandshakeTooLong));
                    }
                    self.hs.extend_from_slice(&self.rbuf[body]);
                    if let Err(e) = self.handshake_messages() {
                        return Err(self.fail(e));
                    }
                }
                other => return Err(self.fail(TlsRecordError::UnexpectedMessage(other))),
            }
        }
    }

    /// Handles the complete post-handshake messages in `self.hs`, leaving a partial one there.
    fn handshake_messages(&mut self) -> Result<(), TlsRecordError> {
        let Session::Traffic(t) = &mut self.session else {
            return Ok(());
        };
        let mut at = 0;
        while let Some(&[typ, a, b, c]) = self.hs.get(at..at + 4) {
            let len = u32::from_be_bytes([0, a, b, c]) as usize;
            if 4 + len > MAX_HANDSHAKE_MESSAGE {
                return Err(TlsRecordError::HandshakeTooLong);
            }
            let Some(body) = self.hs.get(at + 4..at + 4 + len) else {
                break;
            };
            at += 4 + len;
            match (t.version, typ) {
                (Version::Tls13, HANDSHAKE_NEW_SESSION_TICKET) => {
                    t.kernel
                        .handle_new_session_ticket(body)
                        .map_err(|_| TlsRecordError::Decode)?;
                }
                (Version::Tls13, HANDSHAKE_KEY_UPDATE) => {
                    let requested = match body {
                        [0] => false,
                        [1] => true,
                        _ => return Err(TlsRecordError::Decode),
                    };
                    // RFC 8446 §5.1: a KeyUpdate must end its record.
                    if at != self.hs.len() {
                        return Err(TlsRecordError::UnexpectedMessage(typ));
                    }
                    let (seq, secrets) = t
                        .kernel
                        .update_rx_secret()
                        .map_err(|_| TlsRecordError::KeyUpdate)?;
                    t.rx = Direction::new(t.version, secrets, seq)?;
                    // RFC 8446 §4.6.3: our own KeyUpdate is owed before our next application
                    // record, not at once; `settle` sends it.
                    t.key_update_owed |= requested;
                }
                (Version::Tls12, HANDSHAKE_HELLO_REQUEST) if body.is_empty() => {
                    t.refusal_owed = true;
                }
                _ => return Err(TlsRecordError::UnexpectedMessage(typ)),
            }
        }
        self.hs.drain(..at);
        Ok(())
    }
}

enum Next {
    Continue,
    Transmit,
    Read,
    Established,
    Eof,
    Overflow,
    Fail(rustls::Error),
}

/// Seals what the peer is owed before our next record, oldest first: the `no_renegotiation`
/// refusal of a TLS 1.2 HelloRequest, then on TLS 1.3 a KeyUpdate (update_not_requested) under the
/// current key followed by the move to the next one (RFC 8446 §4.6.3), when the peer asked for it or
/// the key reached the suite's limit. Nothing after our close_notify. `Ok(false)` when the buffer
/// has no room for them yet: nothing may be sealed before they are.
fn settle(
    t: &mut Traffic,
    wbuf: &mut [u8],
    wend: &mut usize,
    close_sent: bool,
) -> Result<bool, TlsRecordError> {
    if close_sent {
        return Ok(true);
    }
    if t.refusal_owed {
        let alert = [ALERT_WARNING, ALERT_NO_RENEGOTIATION];
        if wbuf.len() - *wend < HEADER_LEN + alert.len() + t.tx.overhead() {
            return Ok(false);
        }
        *wend += t.tx.seal(content::ALERT, &alert, &mut wbuf[*wend..])?;
        t.refusal_owed = false;
    }
    if t.version == Version::Tls13 && (t.key_update_owed || t.tx.seq() >= t.tx_limit) {
        let msg = [HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0];
        if wbuf.len() - *wend < HEADER_LEN + msg.len() + t.tx.overhead() {
            return Ok(false);
        }
        *wend += t.tx.seal(content::HANDSHAKE, &msg, &mut wbuf[*wend..])?;
        let (seq, secrets) = t
            .kernel
            .update_tx_secret()
            .map_err(|_| TlsRecordError::KeyUpdate)?;
        t.tx = Direction::new(t.version, secrets, seq)?;
        t.tx_generation += 1;
        t.key_update_owed = false;
    }
    Ok(true)
}

/// Why [`RustlsStream::seal_some`] stopped early.
enum Stop {
    /// The TLS 1.2 key reached its limit less the margin kept for alerts.
    WornOut,
    Fail(TlsRecordError),
}

fn record_failure(e: TlsRecordError) -> io::Error {
    TlsError::Record(e).into_io()
}

impl<S: Stream> Stream for RustlsStream<S> {
    fn poll_connect(&mut self) -> io::Result<bool> {
        if self.is_established() {
            return Ok(true);
        }
        if !self.io.poll_connect()? {
            return Ok(false);
        }
        self.handshake()
    }

    #[inline]
    fn read_pending(&self) -> bool {
        !self.plain.is_empty()
            || self.early_in_read < self.early_in.len()
            || matches!(
                records::record_len(&self.rbuf[self.rstart..self.rend]),
                Ok(Some(_)) | Err(_)
            )
            || self.io.read_pending()
    }

    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.io.raw_fd()
    }

    /// Queues close_notify behind any plaintext already written (once, however often this is
    /// called), writes every queued record, then shuts down the stream below.
    fn shutdown_write(&mut self) -> io::Result<()> {
        if !self.poll_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if !self.early_out.is_empty() {
            self.flush()?;
        }
        self.queue_close_notify()?;
        if !self.push_tls()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.io.flush()?;
        self.io.shutdown_write()
    }
}

impl<S: Stream> Read for RustlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.poll_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if self.early_in_read < self.early_in.len() {
            let n = buf.len().min(self.early_in.len() - self.early_in_read);
            let from = self.early_in_read;
            buf[..n].copy_from_slice(&self.early_in[from..from + n]);
            self.early_in_read += n;
            if self.early_in_read == self.early_in.len() {
                self.early_in = Vec::new();
                self.early_in_read = 0;
            }
            return Ok(n);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if self.plain.is_empty() {
            if self.peer_closed {
                return Ok(0);
            }
            if let Some(e) = self.failed {
                return Err(record_failure(e));
            }
            self.next_plaintext()?;
            if self.plain.is_empty() {
                // close_notify.
                return Ok(0);
            }
        }
        let n = buf.len().min(self.plain.len());
        buf[..n].copy_from_slice(&self.rbuf[self.plain.start..self.plain.start + n]);
        self.plain.start += n;
        Ok(n)
    }
}

impl<S: Stream> Write for RustlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.is_established() && !self.poll_connect()? {
            let n = buf.len().min(EARLY_LIMIT - self.early_out.len());
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.early_out.extend_from_slice(&buf[..n]);
            return Ok(n);
        }
        if !self.early_out.is_empty() {
            // Bytes queued during the handshake go first.
            self.flush()?;
        }
        if let Some(e) = self.failed {
            return Err(record_failure(e));
        }
        if self.close_sent {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after the TLS session was shut down",
            ));
        }
        self.push_tls()?;
        let n = self.seal_some(buf)?;
        self.push_tls()?;
        if n == 0 {
            return Err(self.seal_refusal());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.poll_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if !self.push_early()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.send_owed()?;
        if !self.push_tls()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.io.flush()
    }
}

#[cfg(test)]
#[path = "rustls_stream_tests.rs"]
mod tests;
