//! The rustls backend: a `ClientConnection` driven over any non-blocking [`Stream`].

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::{read_file, RootSource, TlsConfig, TlsError, TlsVersion};
use crate::stream::{would_block, Stream};

pub(super) fn build(cfg: &TlsConfig) -> io::Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (cfg.min_version..=cfg.max_version).contains(v))
    .map(|(_, p)| p)
    .collect();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| invalid(format!("TLS versions: {e}")))?;
    let builder = if cfg.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        builder.with_root_certificates(root_store(cfg)?)
    };
    let mut config = match &cfg.client_cert {
        Some(cc) => {
            let chain = pem_certs(&cc.chain, "client certificate chain")?;
            let key_pem = read_file(&cc.key, "client key")?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| invalid(format!("client key {}: {e}", cc.key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| invalid(format!("client certificate: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = cfg.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    config.enable_sni = cfg.sni;
    if let Some(hook) = &cfg.rustls_hook {
        hook.apply(&mut config, "rustls")?;
    }
    Ok(Arc::new(config))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn pem_certs(path: &std::path::Path, what: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let pem = read_file(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "{what} {}: no PEM certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn root_store(cfg: &TlsConfig) -> io::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match cfg.roots {
        RootSource::Builtin => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        RootSource::Native => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                log::warn!("native certificate store: {e}");
            }
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(invalid("no usable certificate in the OS store".into()));
            }
        }
        RootSource::None => {}
    }
    if let Some(path) = &cfg.ca_file {
        for cert in pem_certs(path, "CA file")? {
            roots
                .add(cert)
                .map_err(|e| invalid(format!("CA file {}: {e}", path.display())))?;
        }
    }
    if roots.is_empty() {
        return Err(invalid(
            "no trust anchors: set ca_file or a root source (or insecure = true)".into(),
        ));
    }
    Ok(roots)
}

/// The explicit `insecure` opt-out: accepts any certificate but still checks that the handshake
/// signatures are well formed, so the session is at least internally consistent.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_failure(e: rustls::Error) -> io::Error {
    match e {
        rustls::Error::InvalidCertificate(c) => TlsError::Certificate(format!("{c:?}")).into_io(),
        rustls::Error::NoCertificatesPresented => {
            TlsError::Certificate("server presented no certificate".into()).into_io()
        }
        other => TlsError::Protocol(other.to_string()).into_io(),
    }
}

/// A rustls client session over `S`.
///
/// Early writes are queued in rustls' own plaintext buffer (bounded at 64 KiB by rustls' default
/// buffer limit); nothing else in this type holds application bytes.
pub struct RustlsStream<S> {
    conn: ClientConnection,
    io: S,
    /// Plaintext may be waiting in rustls' buffer (see [`Stream::read_pending`]).
    plaintext_pending: bool,
    established: bool,
}

impl<S> std::fmt::Debug for RustlsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustlsStream")
            .field("established", &self.established)
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
        let conn = ClientConnection::new(config, name)
            .map_err(|e| TlsError::Protocol(e.to_string()).into_io())?;
        Ok(RustlsStream {
            conn,
            io,
            plaintext_pending: false,
            established: false,
        })
    }

    /// The negotiated ALPN protocol.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The negotiated protocol version.
    pub fn version(&self) -> Option<TlsVersion> {
        match self.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_2 => Some(TlsVersion::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    /// `true` once the handshake has completed.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// The stream under the session.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The rustls connection, for what this type does not wrap.
    pub fn connection(&self) -> &ClientConnection {
        &self.conn
    }

    /// Queues a close_notify alert.
    pub fn close_notify(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.push_tls().map(|_| ())
    }

    /// Writes queued TLS records to the stream until it would block. Returns `true` when nothing is
    /// left queued.
    fn push_tls(&mut self) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.io) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads TLS records from the stream and processes them. `Ok(false)` when the stream had nothing.
    fn pull_tls(&mut self) -> io::Result<bool> {
        match self.conn.read_tls(&mut self.io) {
            Ok(0) => {
                if !self.established {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peer closed the connection during the TLS handshake",
                    ));
                }
            }
            Ok(_) => {}
            Err(e) if would_block(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
        match self.conn.process_new_packets() {
            Ok(state) => {
                self.plaintext_pending = state.plaintext_bytes_to_read() > 0;
            }
            Err(e) => {
                // Let the peer know why (the alert is queued by rustls), then fail.
                let _ = self.push_tls();
                return Err(tls_failure(e));
            }
        }
        Ok(true)
    }
}

impl<S: Stream> Stream for RustlsStream<S> {
    fn poll_connect(&mut self) -> io::Result<bool> {
        if self.established {
            return Ok(true);
        }
        if !self.io.poll_connect()? {
            return Ok(false);
        }
        loop {
            self.push_tls()?;
            if !self.conn.is_handshaking() {
                self.established = true;
                // Early writes queued in rustls go out with (or right after) the Finished message.
                self.push_tls()?;
                return Ok(true);
            }
            if !self.pull_tls()? {
                return Ok(false);
            }
        }
    }

    #[inline]
    fn read_pending(&self) -> bool {
        self.plaintext_pending || self.io.read_pending()
    }

    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.io.raw_fd()
    }

    /// Queues close_notify behind any plaintext already written (rustls sends it once however often
    /// this is called), writes every queued record, then shuts down the stream below.
    fn shutdown_write(&mut self) -> io::Result<()> {
        if !self.established && !self.poll_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.conn.send_close_notify();
        if !self.push_tls()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.io.flush()?;
        self.io.shutdown_write()
    }
}

impl<S: Stream> Read for RustlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.established && !self.poll_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => {
                    // A full buffer may have left more plaintext behind.
                    self.plaintext_pending = n == buf.len() && n > 0;
                    return Ok(n);
                }
                Err(e) if would_block(&e) => self.plaintext_pending = false,
                Err(e) => return Err(e),
            }
            if !self.pull_tls()? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            // Records may need answers (TLS 1.3 key update, alerts).
            if self.conn.wants_write() {
                self.push_tls()?;
            }
        }
    }
}

impl<S: Stream> Write for RustlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.conn.writer().write(buf)?;
        if self.established {
            self.push_tls()?;
        } else {
            // Keep the handshake moving; the bytes stay queued in rustls until it completes.
            self.poll_connect()?;
        }
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.established && !self.poll_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if !self.push_tls()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.io.flush()
    }
}
