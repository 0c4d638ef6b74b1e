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
    /// Probe TLS support of this host: kernel TLS offload availability.
    Tls,
    /// Decode a recording (made with `Recorded`): print its records, optionally export pcap.
    Replay(hotwire::app::replay::ReplayArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Tls => ExitCode::SUCCESS,
        Command::Replay(args) => hotwire::app::replay::run(&args),
    }
}
