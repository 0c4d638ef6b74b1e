//! The OpenSSL backend: the system libssl (through the `openssl` crate) over any [`Stream`].

use std::io::{self, Read, Write};

use openssl::ssl::{
    HandshakeError, MidHandshakeSslStream, SslConnector, SslFiletype, SslMethod, SslStream,
    SslVerifyMode, SslVersion,
};
use openssl::x509::{store::X509StoreBuilder, X509VerifyResult};

use super::{RootSource, TlsConfig, TlsError, TlsVersion};
use crate::stream::{would_block, Stream};

/// Early writes beyond this many bytes wait (`WouldBlock`) for the handshake to complete.
const EARLY_WRITE_LIMIT: usize = 64 * 1024;

fn ssl_err(what: &str, e: openssl::error::ErrorStack) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
}

fn ssl_version(v: TlsVersion) -> SslVersion {
    match v {
        TlsVersion::Tls12 => SslVersion::TLS1_2,
        TlsVersion::Tls13 => SslVersion::TLS1_3,
    }
}

pub(super) fn build(cfg: &TlsConfig) -> io::Result<SslConnector> {
    let mut b =
        SslConnector::builder(SslMethod::tls_client()).map_err(|e| ssl_err("OpenSSL", e))?;
    match cfg.roots {
        // The connector builder has already loaded OpenSSL's default verify paths, which on Linux
        // are the OS store: both sources mean the same thing here.
        RootSource::Builtin | RootSource::Native => {}
        RootSource::None => {
            let store = X509StoreBuilder::new().map_err(|e| ssl_err("OpenSSL", e))?;
            b.set_cert_store(store.build());
        }
    }
    if let Some(ca) = &cfg.ca_file {
        super::read_file(ca, "CA file")?;
        b.set_ca_file(ca)
            .map_err(|e| ssl_err(&format!("CA file {}", ca.display()), e))?;
    }
    b.set_min_proto_version(Some(ssl_version(cfg.min_version)))
        .map_err(|e| ssl_err("TLS min version", e))?;
    b.set_max_proto_version(Some(ssl_version(cfg.max_version)))
        .map_err(|e| ssl_err("TLS max version", e))?;
    if let Some(cc) = &cfg.client_cert {
        b.set_certificate_chain_file(&cc.chain)
            .map_err(|e| ssl_err(&format!("client certificate {}", cc.chain.display()), e))?;
        b.set_private_key_file(&cc.key, SslFiletype::PEM)
            .map_err(|e| ssl_err(&format!("client key {}", cc.key.display()), e))?;
        b.check_private_key()
            .map_err(|e| ssl_err("client key does not match the certificate", e))?;
    }
    if !cfg.alpn.is_empty() {
        let mut wire = Vec::new();
        for p in &cfg.alpn {
            let len = u8::try_from(p.len())
                .ok()
                .filter(|&l| l > 0)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad ALPN protocol"))?;
            wire.push(len);
            wire.extend_from_slice(p.as_bytes());
        }
        b.set_alpn_protos(&wire).map_err(|e| ssl_err("ALPN", e))?;
    }
    if cfg.insecure {
        b.set_verify(SslVerifyMode::NONE);
    }
    Ok(b.build())
}

enum State<S> {
    Handshaking(MidHandshakeSslStream<S>),
    Ready(SslStream<S>),
    /// The handshake failed; the stream is kept so its descriptor stays valid until dropped.
    Failed(MidHandshakeSslStream<S>, io::ErrorKind, String),
}

/// An OpenSSL client session over `S`.
///
/// Early writes are queued in this type's pending buffer (at most 64 KiB) and written, in order, as
/// soon as the handshake completes. As with `SSL_write`, a write that returned `WouldBlock` must be
/// retried with the same bytes.
pub struct OpensslStream<S> {
    state: Option<State<S>>,
    pending: Vec<u8>,
}

impl<S> std::fmt::Debug for OpensslStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            Some(State::Handshaking(_)) => "handshaking",
            Some(State::Ready(_)) => "ready",
            Some(State::Failed(..)) => "failed",
            None => "poisoned",
        };
        f.debug_struct("OpensslStream")
            .field("state", &state)
            .field("pending", &self.pending.len())
            .finish()
    }
}

fn handshake_failure<S>(mid: &MidHandshakeSslStream<S>) -> (io::ErrorKind, String) {
    let verify = mid.ssl().verify_result();
    if verify != X509VerifyResult::OK {
        return (
            io::ErrorKind::InvalidData,
            format!("certificate verification failed: {}", verify.error_string()),
        );
    }
    match mid.error().io_error() {
        Some(e) => (e.kind(), e.to_string()),
        None => (io::ErrorKind::InvalidData, mid.error().to_string()),
    }
}

fn failure_error(kind: io::ErrorKind, msg: &str) -> io::Error {
    if kind == io::ErrorKind::InvalidData {
        if let Some(rest) = msg.strip_prefix("certificate verification failed: ") {
            return TlsError::Certificate(rest.to_owned()).into_io();
        }
        return TlsError::Protocol(msg.to_owned()).into_io();
    }
    io::Error::new(kind, msg.to_owned())
}

impl<S: Stream> OpensslStream<S> {
    pub(super) fn new(
        connector: &SslConnector,
        server_name: &str,
        sni: bool,
        io: S,
    ) -> io::Result<Self> {
        let ssl = connector
            .configure()
            .map_err(|e| ssl_err("OpenSSL", e))?
            .use_server_name_indication(sni)
            .into_ssl(server_name)
            .map_err(|e| ssl_err("TLS server name", e))?;
        let state = match ssl.connect(io) {
            Ok(s) => State::Ready(s),
            Err(HandshakeError::WouldBlock(mid)) => State::Handshaking(mid),
            Err(HandshakeError::Failure(mid)) => {
                let (kind, msg) = handshake_failure(&mid);
                return Err(failure_error(kind, &msg));
            }
            Err(HandshakeError::SetupFailure(e)) => return Err(ssl_err("TLS setup", e)),
        };
        Ok(OpensslStream {
            state: Some(state),
            pending: Vec::new(),
        })
    }

    /// The negotiated ALPN protocol.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match &self.state {
            Some(State::Ready(s)) => s.ssl().selected_alpn_protocol(),
            _ => None,
        }
    }

    /// The negotiated protocol version.
    pub fn version(&self) -> Option<TlsVersion> {
        match &self.state {
            Some(State::Ready(s)) => match s.ssl().version2()? {
                SslVersion::TLS1_2 => Some(TlsVersion::Tls12),
                SslVersion::TLS1_3 => Some(TlsVersion::Tls13),
                _ => None,
            },
            _ => None,
        }
    }

    /// `true` once the handshake has completed.
    pub fn is_established(&self) -> bool {
        matches!(self.state, Some(State::Ready(_)))
    }

    /// The stream under the session.
    pub fn get_ref(&self) -> &S {
        match self
            .state
            .as_ref()
            .expect("OpensslStream state is always restored")
        {
            State::Handshaking(m) | State::Failed(m, ..) => m.get_ref(),
            State::Ready(s) => s.get_ref(),
        }
    }

    /// Sends a close_notify alert (best effort).
    pub fn close_notify(&mut self) -> io::Result<()> {
        if let Some(State::Ready(s)) = &mut self.state {
            match s.shutdown() {
                Ok(_) => {}
                Err(e) => {
                    if let Some(io) = e.io_error() {
                        if !would_block(io) {
                            return Err(io::Error::new(io.kind(), io.to_string()));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes queued early bytes. `Ok(true)` when none are left.
    fn drain_pending(&mut self) -> io::Result<bool> {
        let Some(State::Ready(s)) = &mut self.state else {
            return Ok(self.pending.is_empty());
        };
        let mut done = 0;
        let result = loop {
            if done == self.pending.len() {
                break Ok(true);
            }
            match s.write(&self.pending[done..]) {
                Ok(n) => done += n,
                Err(e) if would_block(&e) => break Ok(false),
                Err(e) => break Err(e),
            }
        };
        self.pending.drain(..done);
        result
    }
}

impl<S: Stream> Stream for OpensslStream<S> {
    fn poll_connect(&mut self) -> io::Result<bool> {
        match self
            .state
            .take()
            .expect("OpensslStream state is always restored")
        {
            State::Ready(s) => {
                self.state = Some(State::Ready(s));
                Ok(true)
            }
            State::Failed(m, kind, msg) => {
                let err = failure_error(kind, &msg);
                self.state = Some(State::Failed(m, kind, msg));
                Err(err)
            }
            State::Handshaking(mid) => match mid.handshake() {
                Ok(s) => {
                    self.state = Some(State::Ready(s));
                    self.drain_pending()?;
                    Ok(true)
                }
                Err(HandshakeError::WouldBlock(mid)) => {
                    self.state = Some(State::Handshaking(mid));
                    Ok(false)
                }
                Err(HandshakeError::Failure(mid)) => {
                    let (kind, msg) = handshake_failure(&mid);
                    let err = failure_error(kind, &msg);
                    self.state = Some(State::Failed(mid, kind, msg));
                    Err(err)
                }
                Err(HandshakeError::SetupFailure(e)) => {
                    // Only `connect` can fail in setup; a mid-handshake stream never does. Report it
                    // rather than trust that.
                    Err(ssl_err("TLS setup", e))
                }
            },
        }
    }

    #[inline]
    fn read_pending(&self) -> bool {
        match &self.state {
            Some(State::Ready(s)) => s.ssl().pending() > 0 || s.get_ref().read_pending(),
            _ => false,
        }
    }

    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.get_ref().raw_fd()
    }
}

impl<S: Stream> Read for OpensslStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.is_established() && !self.poll_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match &mut self.state {
            Some(State::Ready(s)) => s.read(buf),
            _ => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl<S: Stream> Write for OpensslStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.is_established() && !self.poll_connect()? {
            let room = EARLY_WRITE_LIMIT.saturating_sub(self.pending.len());
            if room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = room.min(buf.len());
            self.pending.extend_from_slice(&buf[..n]);
            return Ok(n);
        }
        if !self.pending.is_empty() && !self.drain_pending()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match &mut self.state {
            Some(State::Ready(s)) => s.write(buf),
            _ => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.is_established() && !self.poll_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if !self.drain_pending()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match &mut self.state {
            Some(State::Ready(s)) => s.flush(),
            _ => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}
