//! The Autobahn WebSocket conformance cases 1.* to 10.*, served by kosoku, against hotwire's client.
//!
//! Passes only if every case's behaviour is OK, NON-STRICT or INFORMATIONAL (the field's counting
//! rule) and no closing behaviour FAILED. Compression (12.*, 13.*, permessage-deflate) runs with
//! cases 1.* to 10.* when the client offers it.
#![cfg(feature = "ws")]

mod util;

#[path = "../examples/autobahn_client.rs"]
#[allow(dead_code)]
mod autobahn_client;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn autobahn_cases_1_to_10_pass_in_message_mode() {
    autobahn("hotwire", false, false);
}

#[test]
fn autobahn_cases_1_to_10_pass_in_frame_mode() {
    autobahn("hotwire-frames", true, false);
}

#[test]
fn autobahn_cases_1_to_10_12_13_pass_with_deflate() {
    autobahn("hotwire-deflate", false, true);
}

/// Runs the suite against a fresh kosoku server as `agent` and checks the report: cases 1.* to
/// 10.*, plus 12.* and 13.* (permessage-deflate) with `deflate`.
fn autobahn(agent: &str, frames: bool, deflate: bool) {
    let kosoku = util::venv_bin("kosoku");
    if !util::require_peer("kosoku", &kosoku) {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let port = util::free_port();
    let mut server = util::ChildGuard::spawn(
        Command::new(kosoku)
            .args(["-m", "fuzzingserver", &format!("127.0.0.1:{port}"), "-o"])
            .arg(out.path())
            .args(if deflate {
                &[][..]
            } else {
                &["-x", "12.*", "-x", "13.*"][..]
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    server.wait_port(([127, 0, 0, 1], port).into(), Duration::from_secs(20));

    let started = Instant::now();
    let base = format!("ws://127.0.0.1:{port}");
    let ran = autobahn_client::run_with(&base, agent, frames, deflate, false)
        .unwrap_or_else(|e| panic!("autobahn client failed: {e}"));
    assert!(ran >= 290, "only {ran} cases offered");

    // The server writes index.json on updateReports; give it a moment.
    let index = out.path().join("index.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !index.exists() {
        assert!(Instant::now() < deadline, "no report written");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
    let mut results = BTreeMap::<String, (String, String)>::new();
    for (case, r) in report[agent].as_object().expect("agent missing in report") {
        let field = |k: &str| r[k].as_str().unwrap_or("missing").to_string();
        results.insert(case.clone(), (field("behavior"), field("behaviorClose")));
    }
    let in_scope: Vec<_> = results
        .iter()
        .filter(|(case, _)| {
            let major: u32 = case.split('.').next().unwrap().parse().unwrap();
            (1..=10).contains(&major) || (deflate && (12..=13).contains(&major))
        })
        .collect();
    let mut counts = BTreeMap::<&str, usize>::new();
    let mut failures = Vec::new();
    for (case, (behavior, close)) in &in_scope {
        *counts.entry(behavior.as_str()).or_default() += 1;
        let ok = matches!(behavior.as_str(), "OK" | "NON-STRICT" | "INFORMATIONAL")
            && !matches!(close.as_str(), "FAILED" | "UNIMPLEMENTED");
        if !ok {
            failures.push(format!("{case}: {behavior} / close {close}"));
        }
    }
    println!(
        "autobahn 1-10 ({agent}): {} cases in {:?}: {counts:?}",
        in_scope.len(),
        started.elapsed()
    );
    let want = if deflate { 290 + 216 } else { 290 };
    assert!(
        in_scope.len() >= want,
        "report covers only {} cases",
        in_scope.len()
    );
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}
