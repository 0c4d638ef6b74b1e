//! An endpoint's connection tables, `[endpoint.tls]` and `[endpoint.tcp]`, and their validation.

use serde::Deserialize;
use toml::Spanned;

use super::super::{
    ConfigError, KtlsSetting, Locator, TcpSettings, TlsProtocol, TlsRoots, TlsSettings,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    backend: Option<Spanned<String>>,
    ca: Option<String>,
    verify: Option<bool>,
    server_name: Option<String>,
    roots: Option<Spanned<String>>,
    cert: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    alpn: Option<Spanned<Vec<String>>>,
    min_version: Option<Spanned<String>>,
    max_version: Option<Spanned<String>>,
    ktls: Option<Spanned<String>>,
}

impl RawTls {
    pub(super) fn validate(
        &self,
        loc: &Locator<'_>,
        name: &str,
    ) -> Result<TlsSettings, ConfigError> {
        let mut tls = TlsSettings::default();
        if let Some(b) = &self.backend {
            tls.backend = match b.get_ref().as_str() {
                v @ ("rustls" | "openssl") => v.to_owned(),
                other => {
                    return Err(loc.at(
                        b,
                        format!(
                            "endpoint {name:?}: unknown TLS backend {other:?} (expected rustls or \
                             openssl)"
                        ),
                    ))
                }
            };
        }
        tls.ca = self.ca.as_deref().map(|p| loc.path(p));
        tls.verify = self.verify.unwrap_or(true);
        tls.server_name = self.server_name.clone();
        // A private CA replaces the public roots unless `roots` says otherwise.
        tls.roots = match self.roots.as_ref().map(|r| (r, r.get_ref().as_str())) {
            None if tls.ca.is_some() => TlsRoots::None,
            None | Some((_, "builtin")) => TlsRoots::Builtin,
            Some((_, "os")) => TlsRoots::Os,
            Some((r, "none")) if tls.ca.is_none() && tls.verify => {
                return Err(loc.at(
                    r,
                    format!(
                        "endpoint {name:?}: tls.roots = \"none\" without tls.ca trusts no \
                         certificate (expected a ca file, or roots = \"builtin\" or \"os\")"
                    ),
                ))
            }
            Some((_, "none")) => TlsRoots::None,
            Some((r, other)) => {
                return Err(loc.at(
                    r,
                    format!(
                        "endpoint {name:?}: unknown tls.roots {other:?} (expected builtin, os or \
                         none)"
                    ),
                ))
            }
        };
        tls.client_cert = match (&self.cert, &self.key) {
            (None, None) => None,
            (Some(c), Some(k)) => Some((loc.path(c.get_ref()), loc.path(k.get_ref()))),
            (Some(c), None) => {
                return Err(loc.at(
                    c,
                    format!("endpoint {name:?}: tls.cert needs tls.key (the client certificate's private key)"),
                ))
            }
            (None, Some(k)) => {
                return Err(loc.at(
                    k,
                    format!("endpoint {name:?}: tls.key needs tls.cert (the client certificate chain)"),
                ))
            }
        };
        if let Some(a) = &self.alpn {
            // RFC 7301: each protocol name is 1 to 255 bytes, the whole list under 2^16.
            if let Some(bad) = a.get_ref().iter().find(|p| p.is_empty() || p.len() > 255) {
                return Err(loc.at(
                    a,
                    format!(
                        "endpoint {name:?}: ALPN protocol {bad:?} must be 1 to 255 bytes (e.g. \
                         \"http/1.1\")"
                    ),
                ));
            }
            if a.get_ref().len() > 64 {
                return Err(loc.at(a, format!("endpoint {name:?}: at most 64 ALPN protocols")));
            }
            tls.alpn = a.get_ref().clone();
        }
        let version = |v: &Option<Spanned<String>>, key: &str, default| match v {
            None => Ok(default),
            Some(s) => match s.get_ref().as_str() {
                "1.2" => Ok(TlsProtocol::Tls12),
                "1.3" => Ok(TlsProtocol::Tls13),
                other => Err(loc.at(
                    s,
                    format!("endpoint {name:?}: tls.{key} {other:?} (expected \"1.2\" or \"1.3\")"),
                )),
            },
        };
        tls.min_version = version(&self.min_version, "min_version", TlsProtocol::Tls12)?;
        tls.max_version = version(&self.max_version, "max_version", TlsProtocol::Tls13)?;
        if tls.min_version > tls.max_version {
            let at = self.min_version.as_ref().or(self.max_version.as_ref());
            return Err(loc.error(
                at.map_or(0, |s| s.span().start),
                format!("endpoint {name:?}: tls.min_version is above tls.max_version"),
            ));
        }
        if let Some(k) = &self.ktls {
            tls.ktls = match k.get_ref().as_str() {
                "off" => KtlsSetting::Off,
                "prefer" => KtlsSetting::Prefer,
                "require" => KtlsSetting::Require,
                other => {
                    return Err(loc.at(
                        k,
                        format!(
                            "endpoint {name:?}: unknown tls.ktls {other:?} (expected off, prefer \
                             or require)"
                        ),
                    ))
                }
            };
            if tls.ktls != KtlsSetting::Off && tls.backend != "openssl" {
                return Err(loc.at(
                    k,
                    format!(
                        "endpoint {name:?}: tls.ktls needs backend = \"openssl\" (OpenSSL hands \
                         the session keys to the kernel)"
                    ),
                ));
            }
            if tls.ktls == KtlsSetting::Require && !cfg!(feature = "ktls") {
                return Err(loc.at(
                    k,
                    format!(
                        "endpoint {name:?}: tls.ktls = \"require\" but this hotwire was built \
                         without the `ktls` feature"
                    ),
                ));
            }
        }
        Ok(tls)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTcp {
    bind_device: Option<Spanned<String>>,
    bind_addr: Option<Spanned<String>>,
    busy_poll: Option<Spanned<i64>>,
    incoming_cpu: Option<Spanned<i64>>,
    recv_buffer: Option<Spanned<i64>>,
    send_buffer: Option<Spanned<i64>>,
    nodelay: Option<bool>,
}

/// Socket buffer sizes accepted: 4 KiB to 256 MiB (the kernel doubles the value and caps it at
/// `net.core.rmem_max` / `wmem_max` unless the process has `CAP_NET_ADMIN`).
const SOCKET_BUFFER: (i64, i64) = (4096, 256 << 20);
/// The longest busy-poll accepted, µs.
const MAX_BUSY_POLL_US: i64 = 1_000_000;

impl RawTcp {
    pub(super) fn validate(
        &self,
        loc: &Locator<'_>,
        name: &str,
    ) -> Result<TcpSettings, ConfigError> {
        let mut tcp = TcpSettings::default();
        if let Some(d) = &self.bind_device {
            let dev = d.get_ref();
            // IFNAMSIZ is 16 with the terminating NUL.
            if dev.is_empty() || dev.len() > 15 || dev.contains(['/', ' ', '\0']) {
                return Err(loc.at(
                    d,
                    format!(
                        "endpoint {name:?}: tcp.bind_device {dev:?} is not an interface name (1 to \
                         15 characters, no '/' or space)"
                    ),
                ));
            }
            tcp.bind_device = Some(dev.clone());
        }
        if let Some(a) = &self.bind_addr {
            let text = a.get_ref().trim();
            let addr = text
                .parse::<std::net::SocketAddr>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(|ip| (ip, 0).into()))
                .map_err(|_| {
                    loc.at(
                        a,
                        format!(
                            "endpoint {name:?}: tcp.bind_addr {text:?} is not an address (expected \
                             e.g. \"10.0.0.5\", \"10.0.0.5:40000\" or \"[::1]:0\")"
                        ),
                    )
                })?;
            tcp.bind_addr = Some(addr);
        }
        let within = |v: &Spanned<i64>, key: &str, (lo, hi): (i64, i64)| {
            let n = *v.get_ref();
            if (lo..=hi).contains(&n) {
                Ok(n)
            } else {
                Err(loc.at(
                    v,
                    format!("endpoint {name:?}: tcp.{key} {n} is outside {lo}..={hi}"),
                ))
            }
        };
        if let Some(v) = &self.busy_poll {
            tcp.busy_poll_us = Some(within(v, "busy_poll", (0, MAX_BUSY_POLL_US))? as u32);
        }
        if let Some(v) = &self.incoming_cpu {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
            tcp.incoming_cpu = Some(within(v, "incoming_cpu", (0, cores - 1))? as u32);
        }
        if let Some(v) = &self.recv_buffer {
            tcp.recv_buffer = Some(within(v, "recv_buffer", SOCKET_BUFFER)? as usize);
        }
        if let Some(v) = &self.send_buffer {
            tcp.send_buffer = Some(within(v, "send_buffer", SOCKET_BUFFER)? as usize);
        }
        tcp.nodelay = self.nodelay.unwrap_or(true);
        Ok(tcp)
    }
}
