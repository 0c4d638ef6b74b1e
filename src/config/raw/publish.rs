//! The gateway's endpoint keys: `publish_max_message`, `publish_buffer`, `publish_overflow`.

use toml::Spanned;

use crate::config::{ConfigError, Locator, PublishOptions, PublishOverflow};

/// Checks the keys (each error located at its value) and fills in the defaults.
pub(super) fn options(
    loc: &Locator<'_>,
    name: &str,
    max_message: &Option<Spanned<i64>>,
    buffer: &Option<Spanned<i64>>,
    overflow: &Option<Spanned<String>>,
) -> Result<PublishOptions, ConfigError> {
    let mut options = PublishOptions::default();
    if let Some(m) = max_message {
        if !(64..=1 << 24).contains(m.get_ref()) {
            return Err(loc.at(
                m,
                format!("endpoint {name:?}: publish_max_message must be 64..=16777216 bytes"),
            ));
        }
        options.max_message = *m.get_ref() as usize;
    }
    if let Some(b) = buffer {
        if !(1024..=4096).contains(b.get_ref()) {
            return Err(loc.at(
                b,
                format!("endpoint {name:?}: publish_buffer must be 1024..=4096"),
            ));
        }
        options.buffer = *b.get_ref() as usize;
    }
    if let Some(o) = overflow {
        options.overflow = match o.get_ref().as_str() {
            "drop_oldest" => PublishOverflow::DropOldest,
            "drop_newest" => PublishOverflow::DropNewest,
            other => {
                return Err(loc.at(
                    o,
                    format!(
                        "endpoint {name:?}: unknown publish_overflow {other:?} (expected \
                         drop_oldest or drop_newest)"
                    ),
                ))
            }
        };
    }
    Ok(options)
}

/// With `publish = true` the endpoint's name is part of the iceoryx2 service names
/// (`hotwire/<name>/in`, `.../send`): they must be valid, or the error is at the name.
#[cfg(feature = "gateway")]
pub(super) fn check_service_name(
    loc: &Locator<'_>,
    name: &Spanned<String>,
) -> Result<(), ConfigError> {
    crate::gateway::check_name(name.get_ref()).map_err(|e| {
        loc.at(
            name,
            format!("endpoint {:?}: `publish = true`: {e}", name.get_ref()),
        )
    })
}
