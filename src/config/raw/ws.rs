//! An endpoint's `[endpoint.ws]` table (WebSocket settings: permessage-deflate, RFC 7692) and its
//! validation.

use serde::Deserialize;
use toml::Spanned;

use super::super::{ConfigError, Locator, WsDeflate};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWs {
    deflate: Option<Spanned<bool>>,
    client_no_context_takeover: Option<Spanned<bool>>,
    server_no_context_takeover: Option<Spanned<bool>>,
    client_max_window_bits: Option<Spanned<i64>>,
    server_max_window_bits: Option<Spanned<i64>>,
}

impl RawWs {
    /// The permessage-deflate offer (`None` when `deflate` is off): windows in 9..=15, and the
    /// window and takeover keys only with `deflate = true`.
    pub(super) fn validate(
        &self,
        loc: &Locator<'_>,
        name: &str,
    ) -> Result<Option<WsDeflate>, ConfigError> {
        let on = self.deflate.as_ref().is_some_and(|d| *d.get_ref());
        let bits = |v: &Option<Spanned<i64>>, key: &str| -> Result<Option<u8>, ConfigError> {
            let Some(v) = v else { return Ok(None) };
            if !on {
                return Err(loc.at(
                    v,
                    format!("endpoint {name:?}: ws.{key} needs ws.deflate = true"),
                ));
            }
            match u8::try_from(*v.get_ref()) {
                Ok(b @ 9..=15) => Ok(Some(b)),
                _ => Err(loc.at(
                    v,
                    format!(
                        "endpoint {name:?}: ws.{key} {} is outside 9..=15 (8 is not supported: \
                         zlib cannot compress raw deflate with an 8-bit window)",
                        v.get_ref()
                    ),
                )),
            }
        };
        let flag = |v: &Option<Spanned<bool>>, key: &str| -> Result<bool, ConfigError> {
            match v {
                Some(f) if !on => Err(loc.at(
                    f,
                    format!("endpoint {name:?}: ws.{key} needs ws.deflate = true"),
                )),
                Some(f) => Ok(*f.get_ref()),
                None => Ok(false),
            }
        };
        let deflate = WsDeflate {
            client_no_context_takeover: flag(
                &self.client_no_context_takeover,
                "client_no_context_takeover",
            )?,
            server_no_context_takeover: flag(
                &self.server_no_context_takeover,
                "server_no_context_takeover",
            )?,
            client_max_window_bits: bits(&self.client_max_window_bits, "client_max_window_bits")?,
            server_max_window_bits: bits(&self.server_max_window_bits, "server_max_window_bits")?,
        };
        Ok(on.then_some(deflate))
    }
}
