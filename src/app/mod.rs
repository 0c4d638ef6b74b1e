//! The appliance: what the `hotwire` binary runs (configuration, subcommands, reports).

pub mod replay;
pub mod signals;
#[cfg(feature = "venue")]
pub mod venue;
#[cfg(feature = "ws")]
pub mod ws_probe;
