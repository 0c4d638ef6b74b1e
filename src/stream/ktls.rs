//! Kernel TLS (kTLS): OpenSSL does the handshake, the kernel does the record crypto.
//!
//! With kTLS, `read` and `write` on an established session cost one syscall each and no user-space
//! encryption: OpenSSL hands the session keys to the kernel (`setsockopt(TCP_ULP, "tls")`, then
//! `TLS_TX` / `TLS_RX`) when `SSL_OP_ENABLE_KTLS` is set and the socket is OpenSSL's own socket BIO.
//! [`KtlsStream`] therefore runs OpenSSL directly on the [`TcpStream`]'s descriptor, not over a Rust
//! stream like [`super::tls::OpensslStream`].
//!
//! Two things must be present at run time: the kernel's TLS upper-layer protocol (module `tls`), and an
//! OpenSSL built with kTLS. [`kernel_support`] probes the first without connecting anywhere.
//! [`KtlsStream::new`] in [`KtlsMode::Require`] refuses to start when the kernel lacks it, returning
//! the untouched TCP stream inside [`KtlsFallback`] so the caller can continue with user-space TLS; in
//! [`KtlsMode::Prefer`] it runs the session in user space (through the same OpenSSL) and reports
//! [`KtlsStream::offloaded`] as false.

use std::ffi::c_int;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use foreign_types_shared::ForeignTypeRef;
use openssl::ssl::Ssl;
use openssl::x509::X509VerifyResult;

use super::tcp::TcpStream;
use super::tls::{TlsConnector, TlsError};
use super::{impl_mio_source, Stream};

/// `SSL_OP_ENABLE_KTLS` (`SSL_OP_BIT(3)` in OpenSSL 3).
const SSL_OP_ENABLE_KTLS: u64 = 1 << 3;
/// `BIO_CTRL_GET_KTLS_SEND` / `BIO_CTRL_GET_KTLS_RECV` from `openssl/bio.h`.
const BIO_CTRL_GET_KTLS_SEND: c_int = 73;
const BIO_CTRL_GET_KTLS_RECV: c_int = 76;

// Two libssl entry points `openssl-sys` does not declare (both stable OpenSSL 3 API).
extern "C" {
    fn SSL_set_options(ssl: *mut openssl_sys::SSL, options: u64) -> u64;
    fn SSL_set_fd(ssl: *mut openssl_sys::SSL, fd: c_int) -> c_int;
}

/// Why kernel TLS cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KtlsError {
    /// The kernel has no TLS upper-layer protocol (`TCP_ULP "tls"` → `ENOENT`): the `tls` module is
    /// not built or cannot be loaded.
    #[error("the kernel has no TLS ULP (module `tls` missing): kTLS unavailable")]
    KernelUnsupported,
    /// kTLS needs the OpenSSL backend; the connector uses another one.
    #[error("kTLS needs a connector built with the OpenSSL backend")]
    WrongBackend,
    /// The handshake completed but OpenSSL did not move the session into the kernel (OpenSSL built
    /// without kTLS, or a cipher suite the kernel cannot offload).
    #[error("OpenSSL did not offload the session (send: {send}, receive: {recv})")]
    NotActivated {
        /// Transmit offload active.
        send: bool,
        /// Receive offload active.
        recv: bool,
    },
    /// An OS error while probing or configuring.
    #[error("kTLS setup: {0}")]
    Io(#[from] io::Error),
}

/// What to do when the session cannot be offloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KtlsMode {
    /// Offload when possible, otherwise run TLS in user space (logged once per stream).
    #[default]
    Prefer,
    /// Offload or fail: [`KtlsStream::new`] and [`Stream::poll_connect`] report [`KtlsError`].
    Require,
}

/// A refused kTLS start: the reason, and the TCP stream back, untouched, for a user-space fallback.
#[derive(Debug)]
pub struct KtlsFallback {
    /// Why kTLS was refused.
    pub error: KtlsError,
    /// The stream, ready to be wrapped in user-space TLS.
    pub stream: TcpStream,
}

/// Probes the kernel for the TLS ULP without any connection: `setsockopt(TCP_ULP, "tls")` on a fresh
/// socket fails with `ENOENT` when the ULP is missing and `ENOTCONN` when it is there (it needs an
/// established socket to attach).
pub fn kernel_support() -> Result<(), KtlsError> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let name = b"tls";
    // SAFETY: a valid descriptor, and the option value points at `name` with its exact length.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_ULP,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOENT) => Err(KtlsError::KernelUnsupported),
        Some(libc::ENOTCONN) => Ok(()),
        _ => Err(KtlsError::Io(e)),
    }
}

/// A TLS session run by OpenSSL on a kernel TCP socket, offloaded to the kernel when possible.
pub struct KtlsStream {
    // Dropped before `tcp`: the SSL's socket BIO does not own (close) the descriptor.
    ssl: Ssl,
    tcp: TcpStream,
    mode: KtlsMode,
    established: bool,
    send_offload: bool,
    recv_offload: bool,
    /// [`KtlsMode::Require`] and the session was not offloaded: every call fails.
    refused: bool,
    /// Our close_notify has been written (a second `SSL_shutdown` would wait for the peer's).
    close_sent: bool,
}

impl std::fmt::Debug for KtlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KtlsStream")
            .field("established", &self.established)
            .field("send_offload", &self.send_offload)
            .field("recv_offload", &self.recv_offload)
            .finish()
    }
}

impl KtlsStream {
    /// Starts a session to `server_name` over `tcp` (which may still be connecting).
    pub fn new(
        connector: &TlsConnector,
        server_name: &str,
        tcp: TcpStream,
        mode: KtlsMode,
    ) -> Result<KtlsStream, Box<KtlsFallback>> {
        let refuse = |error, stream| Err(Box::new(KtlsFallback { error, stream }));
        let Some(ssl_connector) = connector.openssl_connector() else {
            return refuse(KtlsError::WrongBackend, tcp);
        };
        if let Err(e) = kernel_support() {
            if mode == KtlsMode::Require {
                return refuse(e, tcp);
            }
            log::info!("kTLS: {e}; this session runs TLS in user space");
        }
        let ssl = match ssl_connector
            .configure()
            .and_then(|c| c.use_server_name_indication(true).into_ssl(server_name))
        {
            Ok(ssl) => ssl,
            Err(e) => return refuse(KtlsError::Io(io::Error::other(e)), tcp),
        };
        // SAFETY: `ssl` is a live SSL object; SSL_set_fd attaches a socket BIO that does not close
        // the descriptor, which `tcp` owns and outlives `ssl` (field order).
        let ok = unsafe {
            SSL_set_options(ssl.as_ptr(), SSL_OP_ENABLE_KTLS);
            SSL_set_fd(ssl.as_ptr(), tcp.as_raw_fd())
        };
        if ok != 1 {
            return refuse(KtlsError::Io(io::Error::other("SSL_set_fd failed")), tcp);
        }
        Ok(KtlsStream {
            ssl,
            tcp,
            mode,
            established: false,
            send_offload: false,
            recv_offload: false,
            refused: false,
            close_sent: false,
        })
    }

    /// `(send, receive)` offload state, known once the handshake is done.
    pub fn offloaded(&self) -> (bool, bool) {
        (self.send_offload, self.recv_offload)
    }

    /// The TCP stream under the session.
    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    /// Maps the result of an SSL I/O call to the stream contract.
    fn check(&self, rc: c_int) -> io::Result<usize> {
        if rc > 0 {
            return Ok(rc as usize);
        }
        // SAFETY: live SSL object; `rc` is the return value of the call just made on it.
        let code = unsafe { openssl_sys::SSL_get_error(self.ssl.as_ptr(), rc) };
        match code {
            openssl_sys::SSL_ERROR_WANT_READ | openssl_sys::SSL_ERROR_WANT_WRITE => {
                Err(io::ErrorKind::WouldBlock.into())
            }
            openssl_sys::SSL_ERROR_ZERO_RETURN => Ok(0),
            openssl_sys::SSL_ERROR_SYSCALL => {
                let os = io::Error::last_os_error();
                if os.raw_os_error().unwrap_or(0) == 0 {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peer closed the TLS connection without close_notify",
                    ))
                } else {
                    Err(os)
                }
            }
            _ => {
                let stack = openssl::error::ErrorStack::get();
                let verify = self.ssl.verify_result();
                if verify != X509VerifyResult::OK {
                    Err(TlsError::Certificate(verify.error_string().to_owned()).into_io())
                } else {
                    Err(TlsError::Protocol(stack.to_string()).into_io())
                }
            }
        }
    }
}

impl Stream for KtlsStream {
    fn poll_connect(&mut self) -> io::Result<bool> {
        if self.refused {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                KtlsError::NotActivated {
                    send: self.send_offload,
                    recv: self.recv_offload,
                },
            ));
        }
        if self.established {
            return Ok(true);
        }
        if !self.tcp.poll_connect()? {
            return Ok(false);
        }
        // SAFETY: live SSL object with a socket BIO on a live descriptor; the error queue is cleared
        // first so SSL_get_error reads this call's outcome.
        let rc = unsafe {
            openssl_sys::ERR_clear_error();
            openssl_sys::SSL_connect(self.ssl.as_ptr())
        };
        match self.check(rc) {
            Ok(_) => {}
            Err(e) if crate::stream::would_block(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
        self.established = true;
        // SAFETY: live SSL object; the BIOs it returns are owned by it and only queried here.
        unsafe {
            let wbio = openssl_sys::SSL_get_wbio(self.ssl.as_ptr());
            let rbio = openssl_sys::SSL_get_rbio(self.ssl.as_ptr());
            self.send_offload =
                openssl_sys::BIO_ctrl(wbio, BIO_CTRL_GET_KTLS_SEND, 0, std::ptr::null_mut()) > 0;
            self.recv_offload =
                openssl_sys::BIO_ctrl(rbio, BIO_CTRL_GET_KTLS_RECV, 0, std::ptr::null_mut()) > 0;
        }
        if !(self.send_offload && self.recv_offload) {
            let e = KtlsError::NotActivated {
                send: self.send_offload,
                recv: self.recv_offload,
            };
            if self.mode == KtlsMode::Require {
                self.refused = true;
                return Err(io::Error::new(io::ErrorKind::Unsupported, e));
            }
            log::info!("kTLS: {e}; continuing in user space");
        }
        Ok(true)
    }

    fn read_pending(&self) -> bool {
        // SAFETY: live SSL object; SSL_pending only inspects buffered plaintext.
        unsafe { openssl_sys::SSL_pending(self.ssl.as_ptr()) > 0 }
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.tcp.as_raw_fd())
    }

    /// close_notify through `SSL_shutdown` (OpenSSL hands the alert to the kernel when the send side
    /// is offloaded), once, then FIN.
    fn shutdown_write(&mut self) -> io::Result<()> {
        if !self.poll_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if !self.close_sent {
            // SAFETY: live SSL object with a socket BIO on a live descriptor; the error queue is
            // cleared first so SSL_get_error reads this call's outcome.
            let rc = unsafe {
                openssl_sys::ERR_clear_error();
                openssl_sys::SSL_shutdown(self.ssl.as_ptr())
            };
            // 0: our alert is sent and the peer's not yet seen; 1: both done.
            if rc < 0 {
                self.check(rc)?;
            }
            self.close_sent = true;
        }
        self.tcp.shutdown_write()
    }
}

impl Read for KtlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.poll_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let len = buf.len().min(c_int::MAX as usize) as c_int;
        // SAFETY: `buf` is valid for `len` bytes of writes for the duration of the call.
        let rc = unsafe {
            openssl_sys::ERR_clear_error();
            openssl_sys::SSL_read(self.ssl.as_ptr(), buf.as_mut_ptr().cast(), len)
        };
        self.check(rc)
    }
}

impl Write for KtlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.poll_connect()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let len = buf.len().min(c_int::MAX as usize) as c_int;
        // SAFETY: `buf` is valid for `len` bytes of reads for the duration of the call.
        let rc = unsafe {
            openssl_sys::ERR_clear_error();
            openssl_sys::SSL_write(self.ssl.as_ptr(), buf.as_ptr().cast(), len)
        };
        self.check(rc)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl_mio_source!(KtlsStream);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_probe_gives_a_typed_answer() {
        // Either answer is legitimate; what matters is that the probe never fails with a generic
        // error on a kernel with TCP (and never panics). CI's kernel has no TLS ULP.
        match kernel_support() {
            Ok(()) | Err(KtlsError::KernelUnsupported) => {}
            Err(e) => panic!("unexpected probe error: {e}"),
        }
        let has_ulp = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp")
            .map(|s| s.split_whitespace().any(|u| u == "tls"))
            .unwrap_or(false);
        if has_ulp {
            assert!(kernel_support().is_ok());
        }
    }
}
