//! How an endpoint notices a venue that went silent without closing the connection: the
//! WebSocket pong deadline and stale-data timeout, the HTTP request timeout.

use std::time::Duration;

use toml::Spanned;

use super::super::{ConfigError, Locator};
use super::Protocol;

/// The default pong deadline, in heartbeats.
pub(super) const PONG_TIMEOUT_HEARTBEATS: u32 = 3;

/// The default HTTP request timeout.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The liveness keys of one `[[endpoint]]`, as written.
pub(super) struct RawLiveness<'a> {
    pub heartbeat: Option<Duration>,
    pub pong_timeout: Option<&'a Spanned<String>>,
    pub stale_after: Option<&'a Spanned<String>>,
    pub request_timeout: Option<&'a Spanned<String>>,
}

/// The liveness settings, validated.
pub(super) struct Liveness {
    pub pong_timeout: Option<Duration>,
    pub stale_after: Option<Duration>,
    pub request_timeout: Duration,
}

impl RawLiveness<'_> {
    pub(super) fn validate(
        &self,
        loc: &Locator<'_>,
        name: &str,
        protocol: Protocol,
    ) -> Result<Liveness, ConfigError> {
        let positive = |key: &str, v: &Spanned<String>| {
            let d = super::duration(loc, &format!("endpoint {name:?}: {key}"), v)?;
            if d.is_zero() {
                return Err(loc.at(v, format!("endpoint {name:?}: {key} must be longer than 0")));
            }
            Ok(d)
        };
        let only = |key: &str, v: &Spanned<String>, owner: Protocol, what: &str| {
            if protocol == owner {
                Ok(())
            } else {
                Err(loc.at(
                    v,
                    format!("endpoint {name:?}: `{key}` applies to {what} endpoints only"),
                ))
            }
        };
        let pong_timeout = match self.pong_timeout {
            Some(v) => {
                only("pong_timeout", v, Protocol::WebSocket, "WebSocket")?;
                if self.heartbeat.is_none() {
                    return Err(loc.at(
                        v,
                        format!(
                            "endpoint {name:?}: pong_timeout needs a heartbeat (the pings whose \
                             pongs it waits for)"
                        ),
                    ));
                }
                Some(positive("pong_timeout", v)?)
            }
            None if protocol == Protocol::WebSocket => self
                .heartbeat
                .map(|h| h.saturating_mul(PONG_TIMEOUT_HEARTBEATS)),
            None => None,
        };
        let stale_after = match self.stale_after {
            Some(v) => {
                only("stale_after", v, Protocol::WebSocket, "WebSocket")?;
                Some(positive("stale_after", v)?)
            }
            None => None,
        };
        let request_timeout = match self.request_timeout {
            Some(v) => {
                only("request_timeout", v, Protocol::Http, "http")?;
                positive("request_timeout", v)?
            }
            None => REQUEST_TIMEOUT,
        };
        Ok(Liveness {
            pong_timeout,
            stale_after,
            request_timeout,
        })
    }
}
