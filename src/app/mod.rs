//! The appliance: what the `hotwire` binary runs (configuration, subcommands, reports).
