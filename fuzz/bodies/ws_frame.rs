// The WebSocket frame decoder on arbitrary input: shared by the cargo-fuzz target
// (fuzz/fuzz_targets/ws_frame.rs) and the corpus replay in `cargo test` (tests/fuzz_corpora.rs).

use hotwire::ws::Decoder;

pub(crate) fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    // The first byte picks the chunk size (1..=64) and small limits, so the size checks run too.
    let chunk = usize::from(first & 0x3F) + 1;
    let mut decoder = if first & 0x40 != 0 {
        Decoder::new(200, 500)
    } else {
        Decoder::new(1 << 20, 1 << 22)
    };
    let (mut start, mut end) = (0, 0);
    while end < rest.len() {
        end = (end + chunk).min(rest.len());
        loop {
            match decoder.decode(&rest[start..end]) {
                Ok(Some((frame, used))) => {
                    assert!(used > frame.payload().len());
                    if let Some(t) = frame.text() {
                        assert!(std::str::from_utf8(t.as_bytes()).is_ok());
                    }
                    start += used;
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(e.close_code().is_some());
                    return;
                }
            }
        }
    }
}
