//! `http://` and `https://` URLs (RFC 9110 §4.2.1–§4.2.2): scheme, host (names, IPv4, bracketed
//! IPv6 literals), port, and the origin-form request target (RFC 9112 §3.2.1) that goes on the
//! request line.
//!
//! A small parser of our own: only these two schemes matter, and the result keeps exactly what a
//! request needs — the `Host` field value with the port when it is not the scheme's default
//! (RFC 9112 §3.2), the bare host for TLS server names, the target with its query.

use std::fmt;

use super::error::UrlError;

/// The longest URL [`HttpUrl::parse`] accepts, in bytes.
pub const MAX_URL_LEN: usize = 64 * 1024;

/// A parsed `http` or `https` URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpUrl {
    secure: bool,
    /// Without brackets for IPv6 literals.
    host: String,
    ipv6: bool,
    port: u16,
    /// Path and query, starting with `/`.
    target: String,
}

impl HttpUrl {
    /// Parses `url`. A fragment (`#...`) is dropped: it is never sent (RFC 9110 §4.2.5).
    pub fn parse(url: &str) -> Result<HttpUrl, UrlError> {
        let parts = crate::url::split(
            url,
            MAX_URL_LEN,
            &crate::url::Schemes {
                names: ("http", "https"),
                expected: "http:// or https://",
                ports: (80, 443),
                empty_port_is_default: true,
            },
        )?;
        Ok(HttpUrl {
            secure: parts.secure,
            host: parts.host.to_ascii_lowercase(),
            ipv6: parts.ipv6,
            port: parts.port,
            target: parts.target,
        })
    }

    /// `true` for `https`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The host as used for DNS and as the TLS server name: IPv6 literals without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (80 or 443 when the URL names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target: path and query, starting with `/`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The `Host` field value (RFC 9112 §3.2): the host, bracketed if IPv6, with `:port` unless the
    /// port is the scheme's default.
    pub fn host_header(&self) -> String {
        let default = if self.secure { 443 } else { 80 };
        crate::url::host_header(&self.host, self.ipv6, self.port, default)
    }

    /// The same origin with another target (which must start with `/`; one is prepended if not).
    pub fn with_target(&self, target: &str) -> HttpUrl {
        HttpUrl {
            target: if target.starts_with('/') {
                target.to_owned()
            } else {
                format!("/{target}")
            },
            ..self.clone()
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "https" } else { "http" };
        if self.ipv6 {
            write!(f, "{scheme}://[{}]:{}{}", self.host, self.port, self.target)
        } else {
            write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.target)
        }
    }
}

impl std::str::FromStr for HttpUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        HttpUrl::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_targets() {
        let u = HttpUrl::parse("http://example.com/a/b?c=d#frag").unwrap();
        assert_eq!(
            (u.is_secure(), u.host(), u.port(), u.target()),
            (false, "example.com", 80, "/a/b?c=d")
        );
        assert_eq!(u.host_header(), "example.com");

        let u = HttpUrl::parse("HTTPS://API.Example.com:8443").unwrap();
        assert_eq!(
            (u.host(), u.port(), u.target()),
            ("api.example.com", 8443, "/")
        );
        assert_eq!(u.host_header(), "api.example.com:8443");

        let u = HttpUrl::parse("https://[::1]:9443/x").unwrap();
        assert_eq!((u.host(), u.port()), ("::1", 9443));
        assert_eq!(u.host_header(), "[::1]:9443");
        assert_eq!(u.to_string(), "https://[::1]:9443/x");

        let u = HttpUrl::parse("https://[2001:db8::7]/").unwrap();
        assert_eq!(u.host_header(), "[2001:db8::7]");

        let u = HttpUrl::parse("http://127.0.0.1:80?q=1").unwrap();
        assert_eq!(
            (u.host_header().as_str(), u.target()),
            ("127.0.0.1", "/?q=1")
        );
        assert_eq!(HttpUrl::parse("http://h:/").unwrap().port(), 80);
    }

    #[test]
    fn refuses_bad_urls() {
        let bad = [
            (
                "ftp://x/",
                UrlError::Scheme {
                    expected: "http:// or https://",
                },
            ),
            (
                "example.com/",
                UrlError::Scheme {
                    expected: "http:// or https://",
                },
            ),
            ("http:///x", UrlError::Host),
            ("http://[::1/", UrlError::Ipv6),
            ("http://[zz::1]/", UrlError::Ipv6),
            ("http://[::1]x/", UrlError::Port),
            ("http://h:0/", UrlError::Port),
            ("http://h:65536/", UrlError::Port),
            ("http://h:8a/", UrlError::Port),
            ("http://::1/", UrlError::Host),
            ("http://u@h/", UrlError::Character),
            ("http://h/a b", UrlError::Character),
            ("http://h/\r\n", UrlError::Character),
        ];
        for (url, want) in bad {
            assert_eq!(HttpUrl::parse(url), Err(want), "{url}");
        }
        let long = format!("http://h/{}", "a".repeat(MAX_URL_LEN));
        assert!(matches!(
            HttpUrl::parse(&long),
            Err(UrlError::TooLong { .. })
        ));
    }

    #[test]
    fn with_target_keeps_the_origin() {
        let u = HttpUrl::parse("https://h:444/a")
            .unwrap()
            .with_target("b?x");
        assert_eq!(u.to_string(), "https://h:444/b?x");
    }
}
