//! The WebSocket frame decoder on arbitrary bytes, delivered in arbitrary chunks the way a client's
//! receive buffer sees them. It must never panic, must make progress on every complete frame, and
//! must stop at the first error.
#![no_main]

include!("../bodies/ws_frame.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
