//! The permessage-deflate receive path (RFC 7692): a client that negotiated compression, fed
//! arbitrary frames in arbitrary reads. It must never panic, never hand out a message above its
//! limit (decompression bombs included) or invalid text, and stop at the first error.
#![no_main]

include!("../bodies/ws_inflate.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
