//! The appliance: what the `hotwire` binary runs (configuration, subcommands, reports).

pub mod replay;
