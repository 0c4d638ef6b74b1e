//! The appliance: what the `hotwire` binary runs (configuration, subcommands, reports).

pub mod check;
#[cfg(feature = "xdp")]
mod check_xdp;
#[cfg(all(feature = "ws", feature = "tls-rustls"))]
pub mod endpoints;
#[cfg(all(feature = "ws", feature = "tls-rustls"))]
pub mod feed;
mod finding;
#[cfg(feature = "fix")]
pub mod fix_probe;
#[cfg(all(feature = "http", any(feature = "tls-rustls", feature = "tls-openssl")))]
pub mod http_probe;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod net;
#[cfg(feature = "plot")]
pub mod plot;
#[cfg(any(feature = "ws", feature = "http", feature = "fix"))]
pub mod probe_net;
pub mod replay;
#[cfg(all(feature = "ws", feature = "tls-rustls"))]
pub mod run;
pub mod signals;
pub mod stats;
#[cfg(feature = "venue")]
pub mod venue;
#[cfg(feature = "venue")]
pub mod venue_chaos;
#[cfg(feature = "venue")]
pub(crate) mod venue_deflate;
#[cfg(all(feature = "venue", feature = "fix"))]
pub(crate) mod venue_fix;
#[cfg(all(feature = "venue", feature = "fix"))]
pub(crate) mod venue_fix_log;
#[cfg(feature = "venue")]
pub mod venue_http;
#[cfg(feature = "venue")]
pub mod venue_ping;
#[cfg(feature = "venue")]
pub(crate) mod venue_tls;
#[cfg(feature = "ws")]
pub mod ws_probe;

/// A command-line duration in seconds: finite, not negative, at most a year.
pub fn seconds_arg(flag: &str, secs: f64) -> Result<std::time::Duration, String> {
    if !(0.0..=365.0 * 86400.0).contains(&secs) {
        return Err(format!(
            "{flag} {secs}: expected seconds between 0 and a year"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}
