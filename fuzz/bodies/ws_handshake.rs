// The WebSocket handshake response and URL parsers on arbitrary input: shared by the cargo-fuzz target
// (fuzz/fuzz_targets/ws_handshake.rs) and the corpus replay in `cargo test` (tests/fuzz_corpora.rs).

use hotwire::ws::{accept_value, parse_response};
use hotwire::ws::WsUrl;

pub(crate) fn run(data: &[u8]) {
    let accept = accept_value(b"dGhlIHNhbXBsZSBub25jZQ==");
    let offered = ["chat".to_string(), "superchat".to_string()];
    if let Ok(Some(ok)) = parse_response(data, &accept, &offered) {
        assert!(ok.head_len <= data.len());
        assert!(ok.subprotocol.is_none_or(|i| i < offered.len()));
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(url) = WsUrl::parse_with_limit(s, 4096) {
            assert!(url.resource().starts_with('/'));
            let _ = url.host_header();
        }
    }
}
