//! The rustls backend's configuration: versions, trust anchors, client certificate, verifier.
//! The session itself is [`RustlsStream`](super::RustlsStream).

use std::io;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{read_file, RootSource, TlsConfig, TlsError, TlsVersion};

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
    // Not settings: after the handshake the records are sealed and opened by `records`, with the
    // keys rustls hands over, so a hook cannot turn this off; and the session never sends 0-RTT
    // data (rustls would seal it itself, outside `records`, and it can be replayed), so a hook
    // cannot turn that on. A hook's `max_fragment_size` is honoured by the sealer.
    config.enable_secret_extraction = true;
    config.enable_early_data = false;
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

pub(super) fn tls_failure(e: rustls::Error) -> io::Error {
    match e {
        rustls::Error::InvalidCertificate(c) => TlsError::Certificate(format!("{c:?}")).into_io(),
        rustls::Error::NoCertificatesPresented => {
            TlsError::Certificate("server presented no certificate".into()).into_io()
        }
        other => TlsError::Protocol(other.to_string()).into_io(),
    }
}
