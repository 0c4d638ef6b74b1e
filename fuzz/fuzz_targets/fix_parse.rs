//! The FIX tag=value parser on arbitrary bytes, split into messages the way a client's receive
//! buffer is: `frame_len` then `Message::parse_frame`, and every accessor on what parses. It must
//! never panic, never frame beyond the limit, and whatever it accepts must carry a correct CheckSum.
#![no_main]

include!("../bodies/fix_parse.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
