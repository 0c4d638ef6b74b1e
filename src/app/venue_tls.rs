//! The venue's TLS identity and its server-side connections, shared by the wss, https and fixs
//! listeners.
//!
//! The CA lives in the certificate folder (`ca.pem`, `ca-key.pem`) and is reused when it is already
//! there, so a restarted venue is still trusted by clients that loaded the CA earlier. Every start
//! signs a new server certificate for `localhost`, `127.0.0.1` and `::1`, and a client certificate
//! (`client.pem`, `client.key`, extended key usage clientAuth) for mutual-TLS tests.
//!
//! Client certificates are checked when a client CA is given (`--client-ca`) or required
//! (`--require-client-cert`, which trusts the venue's own CA unless `--client-ca` names another).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How the venue treats client certificates.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientAuth {
    /// A PEM file of CAs that sign acceptable client certificates (`None`: the venue's own CA).
    pub(crate) ca: Option<PathBuf>,
    /// Refuse a client that presents no valid certificate.
    pub(crate) required: bool,
}

impl ClientAuth {
    fn verifies(&self) -> bool {
        self.ca.is_some() || self.required
    }
}

/// The venue's certificates and the server configuration made from them.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// The server configuration (no ALPN: see [`Identity::with_alpn`]).
    pub(crate) server: Arc<rustls::ServerConfig>,
    /// The CA certificate clients trust.
    pub(crate) ca: PathBuf,
    /// A client certificate signed by the CA.
    pub(crate) client_cert: PathBuf,
    /// Its private key.
    pub(crate) client_key: PathBuf,
}

impl Identity {
    /// The server configuration with `protocols` offered for ALPN (a client offering none still
    /// connects; one offering only others is refused, as RFC 7301 says).
    pub(crate) fn with_alpn(&self, protocols: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let mut config = (*self.server).clone();
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// Loads or creates the CA in `dir`, signs a server and a client certificate with it, and builds
/// the server configuration with the client-certificate policy `auth`.
pub(crate) fn identity(dir: &Path, auth: &ClientAuth) -> io::Result<Identity> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let err = |e: rcgen::Error| io::Error::other(format!("venue certificate: {e}"));
    let (ca_path, ca_key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    let issuer = if ca_path.exists() && ca_key_path.exists() {
        let key = KeyPair::from_pem(&std::fs::read_to_string(&ca_key_path)?).map_err(err)?;
        Issuer::from_ca_cert_pem(&std::fs::read_to_string(&ca_path)?, key).map_err(err)?
    } else {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "hotwire venue CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().map_err(err)?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
        write_private(&ca_key_path, &ca_key.serialize_pem())?;
        std::fs::write(&ca_path, ca_cert.pem())?;
        Issuer::new(ca_params, ca_key)
    };
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mut leaf = CertificateParams::new(names).map_err(err)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf_key = KeyPair::generate().map_err(err)?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(err)?;

    let mut client = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    client
        .distinguished_name
        .push(DnType::CommonName, "hotwire venue client");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().map_err(err)?;
    let client_cert = client.signed_by(&client_key, &issuer).map_err(err)?;
    let (client_pem, client_key_pem) = (dir.join("client.pem"), dir.join("client.key"));
    write_private(&client_key_pem, &client_key.serialize_pem())?;
    std::fs::write(&client_pem, client_cert.pem())?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(e.to_string()))?;
    let builder = if auth.verifies() {
        let ca_file = auth.ca.as_deref().unwrap_or(&ca_path);
        let pem = std::fs::read(ca_file).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot read client CA {}: {e}", ca_file.display()),
            )
        })?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("client CA {}: {e}", ca_file.display()),
                )
            })?;
            roots.add(cert).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("client CA {}: {e}", ca_file.display()),
                )
            })?;
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if auth.required {
            verifier
        } else {
            verifier.allow_unauthenticated()
        };
        builder.with_client_cert_verifier(
            verifier
                .build()
                .map_err(|e| io::Error::other(format!("client verifier: {e}")))?,
        )
    } else {
        builder.with_no_client_auth()
    };
    let key = PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let server = builder
        .with_single_cert(vec![leaf_cert.der().clone()], key)
        .map_err(|e| io::Error::other(e.to_string()))?;
    Ok(Identity {
        server: Arc::new(server),
        ca: ca_path,
        client_cert: client_pem,
        client_key: client_key_pem,
    })
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, pem: &str) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(pem.as_bytes())
}

/// A venue connection: what the protocol servers need besides bytes.
pub(crate) trait Socket: Read + Write {
    /// The TCP socket under it (for timeouts).
    fn tcp(&self) -> &TcpStream;
    /// Ends the session at the transport: close_notify for TLS, then FIN.
    fn close_transport(&mut self);
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
    fn close_transport(&mut self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl Socket for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
    fn close_transport(&mut self) {
        self.conn.send_close_notify();
        let _ = self.conn.complete_io(&mut self.sock);
        let _ = self.sock.shutdown(std::net::Shutdown::Write);
    }
}

/// An accepted connection, plain or TLS (the handshake runs on the first read or write).
pub(crate) enum Conn {
    /// Plain TCP.
    Plain(TcpStream),
    /// A TLS session (boxed: rustls' state is large).
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Conn {
    /// Wraps `sock` in a server session of `tls`, if given.
    pub(crate) fn new(
        sock: TcpStream,
        tls: Option<&Arc<rustls::ServerConfig>>,
    ) -> io::Result<Conn> {
        Ok(match tls {
            None => Conn::Plain(sock),
            Some(config) => {
                let conn =
                    rustls::ServerConnection::new(config.clone()).map_err(io::Error::other)?;
                Conn::Tls(Box::new(rustls::StreamOwned::new(conn, sock)))
            }
        })
    }
}

impl Conn {
    /// `true` when TLS holds decrypted bytes (or a pending error) that a read returns without
    /// touching the socket.
    #[cfg(feature = "fix")]
    pub(crate) fn has_plaintext(&mut self) -> bool {
        match self {
            Conn::Plain(_) => false,
            Conn::Tls(s) => s
                .conn
                .process_new_packets()
                .map_or(true, |state| state.plaintext_bytes_to_read() > 0),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

impl Socket for Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }
    fn close_transport(&mut self) {
        match self {
            Conn::Plain(s) => s.close_transport(),
            Conn::Tls(s) => s.close_transport(),
        }
    }
}
