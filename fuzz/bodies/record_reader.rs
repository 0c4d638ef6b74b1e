// The recording reader on damaged files: shared by the cargo-fuzz target
// (fuzz/fuzz_targets/record_reader.rs) and the corpus replay in `cargo test` (tests/fuzz_corpora.rs).

use hotwire::stream::record::{FlushPolicy, RecordKind, RecordReader, RecordWriter};

/// One record as written: (kind, time, payload).
type Written = (RecordKind, u64, Vec<u8>);

/// Records of a known recording.
fn known() -> Vec<Written> {
    (0..24u64)
        .map(|i| {
            let kind = if i % 2 == 0 {
                RecordKind::Inbound
            } else {
                RecordKind::Outbound
            };
            (
                kind,
                i * 1000,
                vec![b'a' + (i % 26) as u8; (i as usize * 37) % 300 + 1],
            )
        })
        .collect()
}

/// The first byte picks the mode. Even: the rest is a whole file of arbitrary bytes. Odd: the
/// rest is a list of (offset: u16, xor: u8) byte flips applied to a valid recording. Reading must
/// never panic, must end (an error or the end of the file), and in flip mode every record that
/// lies wholly before the first flipped byte must come back as written.
pub(crate) fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        read_all(rest, None);
        return;
    }
    let records = known();
    let mut file = Vec::new();
    let mut w = RecordWriter::new(&mut file, 1, "fuzz", FlushPolicy::EveryRecord).unwrap();
    for (kind, t, p) in &records {
        w.record(*kind, *t, p).unwrap();
    }
    drop(w);
    let mut first_flip = file.len();
    for flip in rest.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([flip[0], flip[1]])) % file.len();
        if flip[2] != 0 {
            file[at] ^= flip[2];
            first_flip = first_flip.min(at);
        }
    }
    read_all(&file, Some((&records, first_flip)));
}

fn read_all(file: &[u8], known: Option<(&[Written], usize)>) {
    let Ok(mut reader) = RecordReader::new(file) else {
        return;
    };
    let mut index = 0;
    loop {
        let start = reader.offset();
        let Ok(Some(record)) = reader.next_record() else {
            break;
        };
        let end = start + record.encoded_len() as u64;
        assert!(
            end <= file.len() as u64,
            "a record past the end of the file"
        );
        if let Some((records, first_flip)) = known {
            if end <= first_flip as u64 {
                let (kind, t, p) = &records[index];
                assert_eq!(
                    (record.kind, record.time_ns, record.payload),
                    (*kind, *t, &p[..])
                );
            }
        }
        index += 1;
        assert!(reader.offset() == end, "offsets do not follow the records");
    }
    // Once stopped, it stays stopped.
    assert!(matches!(reader.next_record(), Ok(None)));
}
