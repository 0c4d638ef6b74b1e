//! The `hotwire` appliance binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// hotwire: low-latency TCP client appliance.
///
/// Logging goes to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to change the level (default: info).
#[derive(Debug, Parser)]
#[command(name = "hotwire", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every endpoint the configuration describes; live stats, then a latency report.
    #[cfg(all(feature = "ws", feature = "tls-rustls"))]
    Run(hotwire::app::run::RunArgs),
    /// Validate a configuration and report what this host offers (cores, memlock, huge pages, kTLS).
    Check(hotwire::app::check::CheckArgs),
    /// Run the embedded exchange simulator (WebSocket feed and echo, plain and TLS).
    #[cfg(feature = "venue")]
    Venue(hotwire::app::venue::VenueArgs),
    /// Probe a WebSocket endpoint with the production stack: send messages, print what arrives.
    #[cfg(feature = "ws")]
    Ws(hotwire::app::ws_probe::WsArgs),
    /// Probe an HTTP/1.1 endpoint with the production stack: status line and body, or latency
    /// percentiles over one keep-alive connection with --repeat.
    #[cfg(all(feature = "http", any(feature = "tls-rustls", feature = "tls-openssl")))]
    Http(hotwire::app::http_probe::HttpArgs),
    /// Probe a FIX acceptor: log on, send limit orders, time their execution reports, log out.
    #[cfg(feature = "fix")]
    Fix(hotwire::app::fix_probe::FixArgs),
    /// Decode a recording (made with `Recorded`): print its records, optionally export pcap.
    Replay(hotwire::app::replay::ReplayArgs),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_micros()
        .init();
    let cli = Cli::parse();
    match cli.command {
        #[cfg(all(feature = "ws", feature = "tls-rustls"))]
        Command::Run(args) => hotwire::app::run::run(&args),
        Command::Check(args) => hotwire::app::check::run(&args),
        #[cfg(feature = "venue")]
        Command::Venue(args) => hotwire::app::venue::run(&args),
        #[cfg(feature = "ws")]
        Command::Ws(args) => hotwire::app::ws_probe::run(args),
        #[cfg(all(feature = "http", any(feature = "tls-rustls", feature = "tls-openssl")))]
        Command::Http(args) => hotwire::app::http_probe::run(&args),
        #[cfg(feature = "fix")]
        Command::Fix(args) => hotwire::app::fix_probe::run(&args),
        Command::Replay(args) => hotwire::app::replay::run(&args),
    }
}
