//! The handshake response parser and the URL parser on arbitrary bytes: never panic; an accepted
//! response's head length lies within the input.
#![no_main]

include!("../bodies/ws_handshake.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
