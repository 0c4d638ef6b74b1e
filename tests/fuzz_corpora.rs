//! Replays the cargo-fuzz seed corpora of every fuzz target — the configuration parser, the
//! recording reader, the WebSocket frame decoder and handshake parser, the HTTP response parser, the
//! FIX parser and (with the `xdp` feature) the XDP device's receive path — (fuzz/corpus/TARGET)
//! through the same bodies the fuzz targets run (fuzz/bodies/TARGET.rs), so
//! every committed input — and every crash reproducer added to a corpus — is checked by
//! `cargo test` on stable, without libFuzzer.

#[cfg(feature = "app")]
mod config_parse {
    include!("../fuzz/bodies/config_parse.rs");
}

mod record_reader {
    include!("../fuzz/bodies/record_reader.rs");
}

#[cfg(feature = "xdp")]
mod xdp_rx {
    include!("../fuzz/bodies/xdp_rx.rs");
}

#[cfg(feature = "ws")]
mod ws_frame {
    include!("../fuzz/bodies/ws_frame.rs");
}

#[cfg(feature = "ws")]
mod ws_inflate {
    include!("../fuzz/bodies/ws_inflate.rs");
}

#[cfg(feature = "ws")]
mod ws_handshake {
    include!("../fuzz/bodies/ws_handshake.rs");
}

#[cfg(feature = "http")]
mod http_response {
    include!("../fuzz/bodies/http_response.rs");
}

#[cfg(feature = "fix")]
mod fix_parse {
    include!("../fuzz/bodies/fix_parse.rs");
}

/// Runs `body` on every file of `fuzz/corpus/TARGET`; returns how many there were.
fn replay(target: &str, body: fn(&[u8])) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus folder") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        eprintln!("{target}: {}", path.display());
        body(&data);
        n += 1;
    }
    n
}

#[cfg(feature = "app")]
#[test]
fn config_parse_corpus() {
    assert!(replay("config_parse", config_parse::run) >= 5);
}

#[test]
fn record_reader_corpus() {
    assert!(replay("record_reader", record_reader::run) >= 4);
}

#[cfg(feature = "xdp")]
#[test]
fn xdp_rx_corpus() {
    assert!(replay("xdp_rx", xdp_rx::run) >= 6);
    // The seeds reach every part of the path: steering both ways, injection, assembly, broken and
    // corrupt packets, foreign addresses, and smoltcp answering.
    let mut sum = xdp_rx::Seen::default();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/xdp_rx");
    for entry in std::fs::read_dir(dir).expect("corpus folder") {
        let seen = xdp_rx::run_counted(&std::fs::read(entry.expect("entry").path()).unwrap());
        sum.to_kernel += seen.to_kernel;
        sum.injected += seen.injected;
        sum.replies += seen.replies;
        sum.counters.rx_multi_frame += seen.counters.rx_multi_frame;
        sum.counters.rx_broken += seen.counters.rx_broken;
        sum.counters.rx_bad_checksum += seen.counters.rx_bad_checksum;
        sum.counters.rx_foreign += seen.counters.rx_foreign;
    }
    let c = sum.counters;
    assert!(
        sum.to_kernel > 0 && sum.injected > 0 && sum.replies > 0,
        "{sum:?}"
    );
    assert!(
        c.rx_multi_frame > 0 && c.rx_broken > 0 && c.rx_bad_checksum > 0 && c.rx_foreign > 0,
        "{sum:?}"
    );
}

/// The seeds of the XDP receive path with random bytes flipped, from a fixed seed: frames that are
/// almost right (a checksum, a length, an option, a flag off by a bit), on stable too.
#[cfg(feature = "xdp")]
#[test]
fn xdp_rx_seeds_with_random_flips() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/xdp_rx");
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("corpus folder")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("corpus file"))
        .collect();
    let mut state = 0x51_7cc1_b727_220au64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..2000 {
        let mut data = seeds[i % seeds.len()].clone();
        for _ in 0..next() % 4 + 1 {
            let at = (next() % data.len() as u64) as usize;
            data[at] ^= 1 << (next() % 8);
        }
        xdp_rx::run(&data);
    }
}

#[cfg(feature = "ws")]
#[test]
fn ws_frame_corpus() {
    assert!(replay("ws_frame", ws_frame::run) >= 8);
}

#[cfg(feature = "ws")]
#[test]
fn ws_inflate_corpus() {
    assert!(replay("ws_inflate", ws_inflate::run) >= 6);
}

#[cfg(feature = "ws")]
#[test]
fn ws_handshake_corpus() {
    assert!(replay("ws_handshake", ws_handshake::run) >= 4);
}

#[cfg(feature = "http")]
#[test]
fn http_response_corpus() {
    assert!(replay("http_response", http_response::run) >= 7);
}

#[cfg(feature = "fix")]
#[test]
fn fix_parse_corpus() {
    assert!(replay("fix_parse", fix_parse::run) >= 3);
}

/// Every fuzz target has its corpus replayed here.
#[test]
fn every_fuzz_target_is_replayed() {
    let this = include_str!("fuzz_corpora.rs");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for entry in std::fs::read_dir(dir).expect("fuzz targets") {
        let path = entry.expect("entry").path();
        let target = path.file_stem().unwrap().to_str().unwrap().to_owned();
        assert!(
            this.contains(&format!("replay(\"{target}\"")),
            "fuzz target {target} has no corpus replay in tests/fuzz_corpora.rs"
        );
    }
}

/// Random bytes flipped in a recording, a few thousand times from a fixed seed: the property of
/// the fuzz target, exercised on stable too.
#[test]
fn recordings_with_random_flips() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let flips = (next() % 4 + 1) as usize;
        let mut data = vec![1u8];
        for _ in 0..flips {
            data.extend_from_slice(&next().to_le_bytes()[..3]);
        }
        record_reader::run(&data);
    }
}

/// A configuration of random bytes, many times: a typed error with a position, never a panic.
#[cfg(feature = "app")]
#[test]
fn configurations_of_random_bytes() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for len in 0..2000usize {
        let data: Vec<u8> = (0..len % 200)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Mostly printable TOML-ish bytes, so the parser gets past the first character.
                b"[]=\"'.#\n abcdefghijklmnopqrstuvwxyz0123456789{},"[(state % 48) as usize]
            })
            .collect();
        config_parse::run(&data);
    }
}
