//! The `hotwire` appliance binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// hotwire: low-latency TCP client appliance.
#[derive(Debug, Parser)]
#[command(name = "hotwire", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a recording (made with `Recorded`): print its records, optionally export pcap.
    Replay(hotwire::app::replay::ReplayArgs),
    /// Run the embedded exchange simulator (WebSocket feed and echo, plain and TLS).
    #[cfg(feature = "venue")]
    Venue(hotwire::app::venue::VenueArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay(args) => hotwire::app::replay::run(&args),
        #[cfg(feature = "venue")]
        Command::Venue(args) => hotwire::app::venue::run(&args),
    }
}
