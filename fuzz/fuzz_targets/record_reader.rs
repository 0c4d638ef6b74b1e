//! See fuzz/bodies/record_reader.rs (shared with the corpus replay in tests/fuzz_corpora.rs).
#![no_main]

include!("../bodies/record_reader.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
