// The configuration parser on arbitrary text: shared by the cargo-fuzz target
// (fuzz/fuzz_targets/config_parse.rs) and the corpus replay in `cargo test` (tests/fuzz_corpora.rs).

/// Parses `data` as a configuration file: it must never panic, and a rejection must point inside
/// the text (a 1-based line and column the user can find).
pub(crate) fn run(data: &[u8]) {
    // A file that is not UTF-8 is refused before parsing (`Config::load`); the parser takes text.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = hotwire::config::Config::parse(text, std::path::Path::new("fuzz.toml")) {
        let lines = text.split('\n').count();
        assert!(e.line >= 1 && e.line <= lines, "{e} (of {lines} lines)");
        assert!(e.column >= 1, "{e}");
        assert!(!e.message.is_empty());
    }
}
