//! See fuzz/bodies/xdp_rx.rs (shared with the corpus replay in tests/fuzz_corpora.rs).
#![no_main]

include!("../bodies/xdp_rx.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
