//! The Autobahn WebSocket conformance cases 1.* to 10.*, served by kosoku, against hotwire's client.
//!
//! Passes only if every case's behaviour is OK, NON-STRICT or INFORMATIONAL (the field's counting
//! rule) and no closing behaviour FAILED. Compression (12.*, 13.*) is out of scope and excluded.
#![cfg(feature = "ws")]

mod ws_support;

#[path = "../examples/autobahn_client.rs"]
#[allow(dead_code)]
mod autobahn_client;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn autobahn_cases_1_to_10_pass() {
    let Some(kosoku) = ws_support::peer("kosoku") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let port = ws_support::free_port();
    let mut server = ws_support::spawn(
        Command::new(kosoku)
            .args(["-m", "fuzzingserver", &format!("127.0.0.1:{port}"), "-o"])
            .arg(out.path())
            .args(["-x", "12.*", "-x", "13.*"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    ws_support::wait_listening(&mut server, port, Duration::from_secs(20));

    let agent = "hotwire";
    let started = Instant::now();
    let ran = autobahn_client::run(&format!("ws://127.0.0.1:{port}"), agent, false)
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
    let report = std::fs::read_to_string(&index).unwrap();
    let mut results = BTreeMap::<String, (String, String)>::new();
    for (case, behavior, close) in parse_index(&report, agent) {
        results.insert(case, (behavior, close));
    }
    let in_scope: Vec<_> = results
        .iter()
        .filter(|(case, _)| {
            let major: u32 = case.split('.').next().unwrap().parse().unwrap();
            (1..=10).contains(&major)
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
        "autobahn 1-10: {} cases in {:?}: {counts:?}",
        in_scope.len(),
        started.elapsed()
    );
    assert!(
        in_scope.len() >= 290,
        "report covers only {} cases",
        in_scope.len()
    );
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}

/// Extracts (case, behavior, behaviorClose) for `agent` from kosoku's index.json, which has the
/// shape `{"agent": {"1.1.1": {"behavior": "OK", "behaviorClose": "OK", ...}, ...}}`.
///
/// A small scanner instead of a JSON dependency: the file is machine-written and flat.
fn parse_index(json: &str, agent: &str) -> Vec<(String, String, String)> {
    let start = json
        .find(&format!("\"{agent}\""))
        .unwrap_or_else(|| panic!("agent {agent} not in report"));
    let mut out = Vec::new();
    let mut rest = &json[start + agent.len() + 2..];
    let field = |obj: &str, name: &str| -> String {
        let key = format!("\"{name}\"");
        let at = obj
            .find(&key)
            .unwrap_or_else(|| panic!("{name} missing in {obj}"));
        let after = &obj[at + key.len()..];
        let q1 = after.find('"').unwrap();
        let q2 = after[q1 + 1..].find('"').unwrap();
        after[q1 + 1..q1 + 1 + q2].to_string()
    };
    // Each case is `"N.N.N": { ... }` with no nested objects.
    while let Some(q) = rest.find('"') {
        let after = &rest[q + 1..];
        let Some(end) = after.find('"') else { break };
        let key = &after[..end];
        let tail = &after[end + 1..];
        if key.chars().next().is_some_and(|c| c.is_ascii_digit())
            && tail.trim_start().starts_with(':')
        {
            let open = tail.find('{').unwrap();
            let close = tail.find('}').unwrap();
            let obj = &tail[open..close];
            out.push((
                key.to_string(),
                field(obj, "behavior"),
                field(obj, "behaviorClose"),
            ));
            rest = &tail[close + 1..];
        } else if key.chars().next().is_some_and(|c| !c.is_ascii_digit()) && !out.is_empty() {
            break; // the next agent
        } else {
            rest = tail;
        }
    }
    out
}
