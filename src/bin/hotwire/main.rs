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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Tls => ExitCode::SUCCESS,
    }
}
