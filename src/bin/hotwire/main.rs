//! The `hotwire` appliance binary.

use clap::Parser;

/// hotwire: low-latency TCP client appliance.
#[derive(Debug, Parser)]
#[command(name = "hotwire", version, about)]
enum Cli {}

fn main() {
    let _ = Cli::parse();
}
