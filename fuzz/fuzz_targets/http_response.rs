//! The HTTP/1.1 client's response path on arbitrary server bytes: head parsing, body framing
//! (Content-Length, chunked with extensions and trailers, close-delimited), 1xx skipping and
//! pipelined matching, delivered in arbitrary chunks. It must never panic, never hold more than
//! the limits allow, and stop at the first error.
#![no_main]

include!("../bodies/http_response.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
