//! The appliance: what the `hotwire` binary runs (configuration, subcommands, reports).

pub mod check;
#[cfg(feature = "xdp")]
mod check_xdp;
#[cfg(all(feature = "ws", feature = "tls-rustls"))]
pub mod feed;
pub mod net;
pub mod replay;
#[cfg(all(feature = "ws", feature = "tls-rustls"))]
pub mod run;
pub mod signals;
pub mod stats;
#[cfg(feature = "venue")]
pub mod venue;
#[cfg(feature = "ws")]
pub mod ws_probe;
