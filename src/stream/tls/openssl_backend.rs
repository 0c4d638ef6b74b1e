//! The OpenSSL backend: the system libssl (through the `openssl` crate) over any [`Stream`].

use std::io::{self, Read, Write};

use openssl::ssl::{
    ErrorCode, SslConnector, SslFiletype, SslMethod, SslStream, SslVerifyMode, SslVersion,
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
    if let Some(hook) = &cfg.openssl_hook {
        hook.apply(&mut b, "OpenSSL")?;
    }
    Ok(b.build())
}

/// An OpenSSL client session over `S`.
///
/// Early writes are queued in this type's pending buffer (at most 64 KiB) and written, in order, as
/// soon as the handshake completes. As with `SSL_write`, a write that returned `WouldBlock` must be
/// retried with the same bytes.
pub struct OpensslStream<S> {
    ssl: SslStream<S>,
    established: bool,
    /// The handshake failure, returned again by every later call.
    failed: Option<(io::ErrorKind, String)>,
    pending: Vec<u8>,
    /// Our close_notify has been written (`SSL_shutdown` must not be called again: a second call
    /// waits for the peer's).
    close_sent: bool,
}

impl<S> std::fmt::Debug for OpensslStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpensslStream")
            .field("established", &self.established)
            .field("failed", &self.failed)
            .field("pending", &self.pending.len())
            .finish()
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
        // No I/O here: the handshake starts on the first poll, read or write.
        let ssl = SslStream::new(ssl, io).map_err(|e| ssl_err("TLS setup", e))?;
        Ok(OpensslStream {
            ssl,
            established: false,
            failed: None,
            pending: Vec::new(),
            close_sent: false,
        })
    }

    /// The negotiated ALPN protocol.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.ssl.ssl().selected_alpn_protocol()
    }

    /// The negotiated protocol version.
    pub fn version(&self) -> Option<TlsVersion> {
        if !self.established {
            return None;
        }
        match self.ssl.ssl().version2()? {
            SslVersion::TLS1_2 => Some(TlsVersion::Tls12),
            SslVersion::TLS1_3 => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    /// `true` once the handshake has completed.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// The stream under the session.
    pub fn get_ref(&self) -> &S {
        self.ssl.get_ref()
    }

    /// Sends a close_notify alert (best effort).
    pub fn close_notify(&mut self) -> io::Result<()> {
        if !self.established {
            return Ok(());
        }
        match self.send_close_notify() {
            Err(e) if would_block(&e) => Ok(()),
            other => other,
        }
    }

    /// Writes our close_notify once: `WouldBlock` while it is not all out.
    fn send_close_notify(&mut self) -> io::Result<()> {
        if self.close_sent {
            return Ok(());
        }
        match self.ssl.shutdown() {
            Ok(_) => {
                self.close_sent = true;
                Ok(())
            }
            Err(e) => match e.io_error() {
                Some(io) if !would_block(io) => Err(io::Error::new(io.kind(), io.to_string())),
                Some(_) => Err(io::ErrorKind::WouldBlock.into()),
                None if e.code() == ErrorCode::WANT_WRITE || e.code() == ErrorCode::WANT_READ => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                None => Err(TlsError::Protocol(e.to_string()).into_io()),
            },
        }
    }

    /// Records why the handshake failed, so every later call reports the same error.
    #[cold]
    fn fail(&mut self, e: &openssl::ssl::Error) -> io::Error {
        let verify = self.ssl.ssl().verify_result();
        let (kind, msg) = if verify != X509VerifyResult::OK {
            (
                io::ErrorKind::InvalidData,
                format!("certificate verification failed: {}", verify.error_string()),
            )
        } else {
            match e.io_error() {
                Some(io) => (io.kind(), io.to_string()),
                None => (io::ErrorKind::InvalidData, e.to_string()),
            }
        };
        let err = failure_error(kind, &msg);
        self.failed = Some((kind, msg));
        err
    }

    /// Writes queued early bytes. `Ok(true)` when none are left.
    fn drain_pending(&mut self) -> io::Result<bool> {
        let mut done = 0;
        let result = loop {
            if done == self.pending.len() {
                break Ok(true);
            }
            match self.ssl.write(&self.pending[done..]) {
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
        if self.established {
            return Ok(true);
        }
        if let Some((kind, msg)) = &self.failed {
            return Err(failure_error(*kind, msg));
        }
        match self.ssl.connect() {
            Ok(()) => {
                self.established = true;
                self.drain_pending()?;
                Ok(true)
            }
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => {
                match e.io_error() {
                    Some(io) if !would_block(io) => Err(self.fail(&e)),
                    _ => Ok(false),
                }
            }
            Err(e) => Err(self.fail(&e)),
        }
    }

    #[inline]
    fn read_pending(&self) -> bool {
        self.established && (self.ssl.ssl().pending() > 0 || self.ssl.get_ref().read_pending())
    }

    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.get_ref().raw_fd()
    }

    /// Writes early bytes still queued, then close_notify (`SSL_shutdown`, once), then shuts down
    /// the stream below.
    fn shutdown_write(&mut self) -> io::Result<()> {
        if !self.established && !self.poll_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if !self.drain_pending()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.send_close_notify()?;
        self.ssl.get_mut().flush()?;
        self.ssl.get_mut().shutdown_write()
    }
}

impl<S: Stream> Read for OpensslStream<S> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.established && !self.poll_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.ssl.read(buf)
    }
}

impl<S: Stream> Write for OpensslStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.established && !self.poll_connect()? {
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
        self.ssl.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.established && !self.poll_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if !self.drain_pending()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.ssl.flush()
    }
}
