//! See fuzz/bodies/config_parse.rs (shared with the corpus replay in tests/fuzz_corpora.rs).
#![no_main]

include!("../bodies/config_parse.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
