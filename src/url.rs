//! The part of `scheme://host:port/target` URLs every client protocol shares (RFC 3986 §3): the
//! scheme picks plain or TLS, the authority gives host and port (IPv6 literals in brackets), the
//! rest is the request target. Used by the WebSocket and HTTP URL types.

use std::net::Ipv6Addr;

/// Why a URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not one of the protocol's two schemes (`ws`/`wss`, `http`/`https`).
    #[error("unsupported scheme (expected {expected})")]
    Scheme {
        /// What the protocol accepts, e.g. `ws:// or wss://`.
        expected: &'static str,
    },
    /// No host.
    #[error("missing host")]
    Host,
    /// The port is not a number in 1..=65535.
    #[error("invalid port")]
    Port,
    /// An IPv6 literal without its closing bracket or with a bad address.
    #[error("invalid IPv6 literal")]
    Ipv6,
    /// Whitespace, control characters or user info (`user@`), which are not supported.
    #[error("invalid character in URL (whitespace, control, or user info)")]
    Character,
    /// Longer than the configured limit.
    #[error("URL of {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// The URL's length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// A URL split into its parts; the host borrows the URL.
#[derive(Debug)]
pub(crate) struct Split<'a> {
    pub(crate) secure: bool,
    /// Without brackets for IPv6.
    pub(crate) host: &'a str,
    pub(crate) ipv6: bool,
    pub(crate) port: u16,
    /// Path and query, starting with `/` (the fragment dropped: it is never sent).
    pub(crate) target: String,
}

/// How one protocol spells its URLs.
pub(crate) struct Schemes {
    /// The plain and the TLS scheme (compared case-insensitively).
    pub(crate) names: (&'static str, &'static str),
    /// Both, for error messages: `ws:// or wss://`.
    pub(crate) expected: &'static str,
    /// Their default ports.
    pub(crate) ports: (u16, u16),
    /// `host:` with an empty port means the default port (RFC 3986 allows it).
    pub(crate) empty_port_is_default: bool,
}

/// Splits `url`, refusing URLs longer than `max_len` bytes.
pub(crate) fn split<'a>(
    url: &'a str,
    max_len: usize,
    schemes: &Schemes,
) -> Result<Split<'a>, UrlError> {
    if url.len() > max_len {
        return Err(UrlError::TooLong {
            len: url.len(),
            max: max_len,
        });
    }
    if url.bytes().any(|b| b <= b' ' || b == 0x7F) {
        return Err(UrlError::Character);
    }
    let (secure, rest) = match url.split_once("://") {
        Some((s, rest)) if s.eq_ignore_ascii_case(schemes.names.0) => (false, rest),
        Some((s, rest)) if s.eq_ignore_ascii_case(schemes.names.1) => (true, rest),
        _ => {
            return Err(UrlError::Scheme {
                expected: schemes.expected,
            })
        }
    };
    let rest = rest.split('#').next().unwrap_or("");
    let at = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(at);
    if authority.contains('@') {
        return Err(UrlError::Character);
    }
    let (host, ipv6, port) = if let Some(after) = authority.strip_prefix('[') {
        let (lit, tail) = after.split_once(']').ok_or(UrlError::Ipv6)?;
        lit.parse::<Ipv6Addr>().map_err(|_| UrlError::Ipv6)?;
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':').ok_or(UrlError::Port)?),
        };
        (lit, true, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, false, Some(p)),
            None => (authority, false, None),
        }
    };
    if host.is_empty() || (!ipv6 && host.contains([':', '[', ']'])) {
        return Err(UrlError::Host);
    }
    let default = if secure {
        schemes.ports.1
    } else {
        schemes.ports.0
    };
    let port = match port {
        None => default,
        Some("") if schemes.empty_port_is_default => default,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>()
        {
            Ok(p) if p != 0 => p,
            _ => return Err(UrlError::Port),
        },
        Some(_) => return Err(UrlError::Port),
    };
    let target = if target.starts_with('/') {
        target.to_owned()
    } else {
        format!("/{target}")
    };
    Ok(Split {
        secure,
        host,
        ipv6,
        port,
        target,
    })
}

/// The `Host` header value (RFC 9112 §3.2, RFC 6455 §4.1): the host, in brackets if IPv6, with
/// `:port` unless the port is the scheme's default.
pub(crate) fn host_header(host: &str, ipv6: bool, port: u16, default_port: u16) -> String {
    match (ipv6, port == default_port) {
        (true, true) => format!("[{host}]"),
        (true, false) => format!("[{host}]:{port}"),
        (false, true) => host.to_owned(),
        (false, false) => format!("{host}:{port}"),
    }
}
