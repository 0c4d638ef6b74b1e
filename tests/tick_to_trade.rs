//! The tick-to-trade harness (examples/tick_to_trade, run by scripts/bench-t2t.sh) against the
//! venue on loopback: both implementations measure every order they send, and the venue's stamps
//! give a positive figure. A working harness only; the figures are the benchmark script's.
#![cfg(all(
    feature = "ws",
    feature = "fix",
    feature = "tls-rustls",
    feature = "venue"
))]

mod util;

use std::process::{Command, Stdio};
use std::time::Duration;

use util::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_hotwire");

#[test]
fn both_implementations_measure_every_order() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, wss, fix) = (util::free_port(), util::free_port(), util::free_port());
    let mut venue = ChildGuard::spawn(
        Command::new(BIN)
            .args(["venue", "--tls"])
            .arg("--listen")
            .arg(format!("127.0.0.1:{ws}"))
            .arg("--tls-listen")
            .arg(format!("127.0.0.1:{wss}"))
            .arg("--fix-listen")
            .arg(format!("127.0.0.1:{fix}"))
            .arg("--cert-dir")
            .arg(dir.path())
            .stdout(Stdio::null()),
    );
    for port in [ws, wss, fix] {
        venue.wait_port(([127, 0, 0, 1], port).into(), Duration::from_secs(10));
    }
    for mode in ["hotwire", "baseline"] {
        let out = Command::new(util::example("tick_to_trade"))
            .args(["--mode", mode])
            .arg("--feed")
            .arg(format!("wss://127.0.0.1:{wss}/feed?rate=2000&size=100"))
            .arg("--fix")
            .arg(format!("127.0.0.1:{fix}"))
            .arg("--ca")
            .arg(dir.path().join("ca.pem"))
            .args([
                "--every",
                "5",
                "--orders",
                "60",
                "--warmup",
                "5",
                "--timeout",
                "30",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let field = |k: &str| -> u64 {
            stdout
                .split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{mode}: no {k} in {stdout}"))
        };
        assert_eq!(field("n="), 60, "{mode}: {stdout}");
        let p50 = field("p50_ns=");
        assert!(p50 > 0 && p50 < 1_000_000_000, "{mode}: {stdout}");
        assert!(field("max_ns=") >= p50);
    }
}
