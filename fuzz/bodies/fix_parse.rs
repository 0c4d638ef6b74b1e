// The FIX framing and message parser on arbitrary input: shared by the cargo-fuzz target
// (fuzz/fuzz_targets/fix_parse.rs) and the corpus replay in `cargo test` (tests/fuzz_corpora.rs).

use hotwire::fix::codec::{checksum, frame_len, Message, Tag};

pub(crate) fn run(data: &[u8]) {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    // The first byte picks a small or a default limit, so the size checks run too.
    let max = if first & 1 != 0 { 256 } else { 64 * 1024 };
    loop {
        let n = match frame_len(rest, max) {
            Ok(Some(n)) => n,
            Ok(None) | Err(_) => return,
        };
        assert!(n <= rest.len() && n <= max);
        if let Ok(msg) = Message::parse_frame(&rest[..n]) {
            assert_eq!(msg.as_bytes(), &rest[..n]);
            let declared = &rest[n - 4..n - 1];
            let sum = checksum(&rest[..n - 7]);
            assert_eq!(declared, format!("{sum:03}").as_bytes());
            for f in msg.fields() {
                assert!(!f.value.is_empty() && !f.value.contains(&1));
                let _ = (
                    f.as_u64(),
                    f.as_i64(),
                    f.as_decimal(),
                    f.as_timestamp(),
                    f.as_str(),
                );
                let _ = msg.get(f.tag);
            }
            let _ = (
                msg.seq_num(),
                msg.msg_type(),
                msg.poss_dup(),
                msg.flag(Tag::GapFillFlag),
            );
            let count = u32::from(first >> 1);
            if let Ok(group) = msg.group(count + 400, &[448, 447, 452]) {
                for entry in group {
                    let _ = entry.count();
                }
            }
        }
        rest = &rest[n..];
    }
}
