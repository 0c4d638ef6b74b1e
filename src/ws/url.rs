//! `ws://` and `wss://` URLs (RFC 6455 §3): scheme, host (names, IPv4, bracketed IPv6 literals),
//! port, and the resource name (path and query) that goes on the request line.
//!
//! A dedicated parser rather than the `url` crate: only these two schemes matter, the result must
//! keep exactly what the handshake needs (`Host` with the port when it is not the default, the
//! server name for TLS), and the length limit is the caller's, not a constant.

use std::fmt;

use super::error::UrlError;

/// The default limit on URL length, in bytes.
pub const DEFAULT_MAX_URL_LEN: usize = 64 * 1024;

/// A parsed WebSocket URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    secure: bool,
    /// The host without brackets (an IPv6 literal is stored bare).
    host: String,
    ipv6: bool,
    port: u16,
    /// Path and query, always starting with `/`.
    resource: String,
}

impl WsUrl {
    /// Parses `url` with the [default length limit](DEFAULT_MAX_URL_LEN).
    pub fn parse(url: &str) -> Result<WsUrl, UrlError> {
        WsUrl::parse_with_limit(url, DEFAULT_MAX_URL_LEN)
    }

    /// Parses `url`, refusing URLs longer than `max_len` bytes.
    ///
    /// A fragment (`#...`) is dropped, as §3 requires it never to be sent.
    pub fn parse_with_limit(url: &str, max_len: usize) -> Result<WsUrl, UrlError> {
        let parts = crate::url::split(
            url,
            max_len,
            &crate::url::Schemes {
                names: ("ws", "wss"),
                expected: "ws:// or wss://",
                ports: (80, 443),
                empty_port_is_default: false,
            },
        )?;
        Ok(WsUrl {
            secure: parts.secure,
            host: parts.host.to_owned(),
            ipv6: parts.ipv6,
            port: parts.port,
            resource: parts.target,
        })
    }

    /// `true` for `wss://`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The host as written, without brackets for IPv6 (what DNS resolution and TLS server-name
    /// checks take).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (80 or 443 when the URL has none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Path and query, starting with `/`.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The port the scheme implies.
    pub fn default_port(&self) -> u16 {
        if self.secure {
            443
        } else {
            80
        }
    }

    /// The `Host` header value (§4.1): IPv6 in brackets, and the port unless it is the default.
    pub fn host_header(&self) -> String {
        crate::url::host_header(&self.host, self.ipv6, self.port, self.default_port())
    }
}

impl fmt::Display for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "wss" } else { "ws" };
        write!(f, "{scheme}://{}{}", self.host_header(), self.resource)
    }
}

impl std::str::FromStr for WsUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WsUrl::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_resources() {
        let u = WsUrl::parse("ws://127.0.0.1:9001/runCase?case=3&agent=hw").unwrap();
        assert_eq!(
            (u.is_secure(), u.host(), u.port(), u.resource()),
            (false, "127.0.0.1", 9001, "/runCase?case=3&agent=hw")
        );
        assert_eq!(u.host_header(), "127.0.0.1:9001");
        let u = WsUrl::parse("wss://example.com").unwrap();
        assert_eq!(
            (u.port(), u.resource(), u.host_header()),
            (443, "/", "example.com".into())
        );
        let u = WsUrl::parse("WSS://example.com:443?x=1#frag").unwrap();
        assert_eq!(
            (u.port(), u.resource(), u.host_header()),
            (443, "/?x=1", "example.com".into())
        );
        let u = WsUrl::parse("ws://example.com:443/").unwrap();
        assert_eq!(u.host_header(), "example.com:443");
    }

    #[test]
    fn ipv6_literals() {
        let u = WsUrl::parse("ws://[::1]:9001/x").unwrap();
        assert_eq!(
            (u.host(), u.port(), u.host_header()),
            ("::1", 9001, "[::1]:9001".into())
        );
        let u = WsUrl::parse("wss://[2001:db8::7]/").unwrap();
        assert_eq!((u.port(), u.host_header()), (443, "[2001:db8::7]".into()));
        assert_eq!(u.to_string(), "wss://[2001:db8::7]/");
        assert_eq!(WsUrl::parse("ws://[::1/x"), Err(UrlError::Ipv6));
        assert_eq!(WsUrl::parse("ws://[zz::1]/"), Err(UrlError::Ipv6));
        assert_eq!(WsUrl::parse("ws://[::1]x/"), Err(UrlError::Port));
    }

    #[test]
    fn rejects_bad_urls() {
        assert_eq!(
            WsUrl::parse("http://a/"),
            Err(UrlError::Scheme {
                expected: "ws:// or wss://"
            })
        );
        assert_eq!(
            WsUrl::parse("ws:/a"),
            Err(UrlError::Scheme {
                expected: "ws:// or wss://"
            })
        );
        assert_eq!(WsUrl::parse("ws:///x"), Err(UrlError::Host));
        assert_eq!(WsUrl::parse("ws://a:0/"), Err(UrlError::Port));
        assert_eq!(WsUrl::parse("ws://a:65536/"), Err(UrlError::Port));
        assert_eq!(WsUrl::parse("ws://a:+80/"), Err(UrlError::Port));
        assert_eq!(WsUrl::parse("ws://a:/"), Err(UrlError::Port));
        assert_eq!(WsUrl::parse("ws://a b/"), Err(UrlError::Character));
        assert_eq!(WsUrl::parse("ws://u@a/"), Err(UrlError::Character));
    }

    #[test]
    fn length_limit_is_configurable_not_fixed() {
        let long = format!("ws://a/{}", "x".repeat(100_000));
        assert!(matches!(WsUrl::parse(&long), Err(UrlError::TooLong { .. })));
        let u = WsUrl::parse_with_limit(&long, 200_000).unwrap();
        assert_eq!(u.resource().len(), 100_001);
    }
}
