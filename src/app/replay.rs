//! `hotwire replay FILE`: print a recording's records, and export it as pcap.
//!
//! One line per record: index, time (UTC with microseconds, or relative to the start with
//! `--relative`), direction (`in`, `out`, `eof`, `gap`), payload length, and a hex + ASCII preview
//! of the first bytes. A file cut off inside a record prints every whole record and a note about the
//! partial tail, and exits 0; a file that is not a recording, or has a corrupted record, exits 1
//! after printing the records before the damage.
//!
//! `--pcap OUT` also writes the recording as a pcap file (see [`pcap`]) that Wireshark or tcpdump
//! reads as one TCP connection.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::stream::record::{RecordKind, RecordReader, RecordRef, Tail};

pub mod pcap;

/// Arguments of `hotwire replay`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplayArgs {
    /// The recording to decode.
    pub file: PathBuf,
    /// Payload bytes shown per record, in hex and ASCII.
    #[arg(long, default_value_t = 32, value_name = "BYTES")]
    pub preview: usize,
    /// Print at most this many records (the pcap export, if any, still covers the whole file).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Show times relative to the start of the recording instead of UTC.
    #[arg(long)]
    pub relative: bool,
    /// Also write the recording to this file as pcap (IPv4/TCP with synthetic addresses).
    #[arg(long, value_name = "OUT")]
    pub pcap: Option<PathBuf>,
    /// The server's TCP port in the pcap (decides which dissector Wireshark picks).
    #[arg(long, default_value_t = 443, value_name = "PORT")]
    pub pcap_port: u16,
}

/// Runs `hotwire replay`: 0 when the recording was read (even with a truncated tail), 1 when it is
/// not a recording, is corrupted, or cannot be read or exported.
pub fn run(args: &ReplayArgs) -> ExitCode {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result =
        print(args, &mut out).and_then(|ok| out.flush().map(|()| ok).map_err(Failure::Output));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `hotwire replay big.hwr | head` is not an error.
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            drop(out);
            eprintln!("error: {}: {e}", args.file.display());
            ExitCode::FAILURE
        }
    }
}

/// Why `replay` failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Input(#[from] crate::stream::record::RecordError),
    #[error("cannot open: {0}")]
    Open(io::Error),
    #[error("writing the output: {0}")]
    Output(io::Error),
    #[error("writing the pcap: {0}")]
    Pcap(io::Error),
}

/// Decodes `args.file` and prints it to `out`.
fn print(args: &ReplayArgs, out: &mut impl Write) -> Result<(), Failure> {
    let file = File::open(&args.file).map_err(Failure::Open)?;
    let mut reader = RecordReader::new(BufReader::new(file))?;
    let header = reader.header().clone();
    writeln!(
        out,
        "recording {}: format v{}, started {}, label {:?}",
        args.file.display(),
        header.version,
        utc(header.start_unix_ns),
        header.label
    )
    .map_err(Failure::Output)?;

    let mut pcap = match &args.pcap {
        Some(path) => {
            let f = File::create(path).map_err(Failure::Pcap)?;
            let w = pcap::PcapWriter::new(BufWriter::new(f), header.start_unix_ns, args.pcap_port)
                .map_err(Failure::Pcap)?;
            Some(w)
        }
        None => None,
    };

    let mut stats = [(0u64, 0u64); 4];
    let mut index = 0usize;
    let limit = args.limit.unwrap_or(usize::MAX);
    let result = loop {
        let rec = match reader.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let s = &mut stats[rec.kind as usize - 1];
        s.0 += 1;
        s.1 += rec.payload.len() as u64;
        if let Some(p) = &mut pcap {
            p.record(&rec, header.start_unix_ns)
                .map_err(Failure::Pcap)?;
        }
        if index < limit {
            let time = if args.relative {
                relative(rec.time_ns)
            } else {
                utc(header.start_unix_ns.saturating_add(rec.time_ns))
            };
            print_record(out, index, &time, &rec, args.preview).map_err(Failure::Output)?;
        } else if pcap.is_none() {
            break Ok(());
        }
        index += 1;
    };
    if let Some(p) = pcap {
        p.finish().map_err(Failure::Pcap)?;
    }
    if index > limit {
        writeln!(out, "... (stopped after {limit} records; --limit)").map_err(Failure::Output)?;
    }
    let names = ["in", "out", "eof", "gap"];
    let summary: Vec<String> = names
        .iter()
        .zip(stats)
        .filter(|(_, (n, _))| *n > 0)
        .map(|(name, (n, bytes))| match *name {
            "in" | "out" => format!("{name}: {n} records, {bytes} bytes"),
            _ => format!("{name}: {n}"),
        })
        .collect();
    writeln!(out, "{index} records ({})", summary.join("; ")).map_err(Failure::Output)?;
    result?;
    match reader.tail() {
        Some(Tail::Truncated { offset, len }) => writeln!(
            out,
            "note: the file ends inside a record: {len} bytes at offset {offset} are a partial \
             record (the recorder stopped mid-write); every whole record before it is shown"
        )
        .map_err(Failure::Output),
        _ => Ok(()),
    }
}

fn print_record(
    out: &mut impl Write,
    index: usize,
    time: &str,
    rec: &RecordRef<'_>,
    preview: usize,
) -> io::Result<()> {
    write!(
        out,
        "{index:>6}  {time}  {:<3} {:>8}",
        rec.kind.as_str(),
        rec.payload.len()
    )?;
    if matches!(rec.kind, RecordKind::Inbound | RecordKind::Outbound) && preview > 0 {
        let shown = &rec.payload[..rec.payload.len().min(preview)];
        let mut hex = String::with_capacity(shown.len() * 3);
        for b in shown {
            hex.push_str(&format!("{b:02x} "));
        }
        let ascii: String = shown
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        let more = if shown.len() < rec.payload.len() {
            ".."
        } else {
            ""
        };
        write!(out, "  {hex:<width$} |{ascii}|{more}", width = preview * 3)?;
    }
    if rec.continued {
        write!(out, "  (continues)")?;
    }
    writeln!(out)
}

/// `+S.UUUUUUs` from nanoseconds.
fn relative(ns: u64) -> String {
    format!(
        "+{}.{:06}s",
        ns / 1_000_000_000,
        (ns % 1_000_000_000) / 1_000
    )
}

/// `YYYY-MM-DDTHH:MM:SS.UUUUUUZ` from nanoseconds since the UNIX epoch.
fn utc(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let micros = (ns % 1_000_000_000) / 1_000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// The proleptic Gregorian date of a day number (days since 1970-01-01), by counting 400-year eras
/// of 146,097 days from 0000-03-01 so that leap days fall at the end of each counted year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..146096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year, March-based
    let mp = (5 * doy + 2) / 153; // month, March = 0
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::record::{FlushPolicy, RecordWriter};

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_723 + 59), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(
            utc(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(relative(1_500_000_999), "+1.500000s");
    }

    fn args(file: PathBuf) -> ReplayArgs {
        ReplayArgs {
            file,
            preview: 4,
            limit: None,
            relative: true,
            pcap: None,
            pcap_port: 443,
        }
    }

    fn recording(dir: &std::path::Path) -> (PathBuf, Vec<u8>) {
        let mut w = RecordWriter::new(Vec::new(), 0, "demo", FlushPolicy::EveryRecord).unwrap();
        w.record(RecordKind::Outbound, 1_000, b"GET /\r\n").unwrap();
        w.record(RecordKind::Gap, 2_000, b"").unwrap();
        w.record(RecordKind::Inbound, 3_000_000, b"\x00OK").unwrap();
        w.record(RecordKind::Eof, 4_000_000, b"").unwrap();
        let bytes = w.get_ref().clone();
        let path = dir.join("r.hwr");
        std::fs::write(&path, &bytes).unwrap();
        (path, bytes)
    }

    #[test]
    fn prints_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = recording(dir.path());
        let mut out = Vec::new();
        print(&args(path), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("format v1, started 1970-01-01T00:00:00.000000Z, label \"demo\""));
        assert_eq!(
            lines[1],
            "     0  +0.000001s  out        7  47 45 54 20  |GET |.."
        );
        assert_eq!(lines[2], "     1  +0.000002s  gap        0");
        assert_eq!(
            lines[3],
            "     2  +0.003000s  in         3  00 4f 4b     |.OK|"
        );
        assert_eq!(lines[4], "     3  +0.004000s  eof        0");
        assert_eq!(
            lines[5],
            "4 records (in: 1 records, 3 bytes; out: 1 records, 7 bytes; eof: 1; gap: 1)"
        );
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn truncated_file_prints_a_note_and_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes) = recording(dir.path());
        std::fs::write(&path, &bytes[..bytes.len() - 25]).unwrap();
        let mut out = Vec::new();
        print(&args(path.clone()), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("2 records"), "{text}");
        assert!(
            text.contains("note: the file ends inside a record: 18 bytes"),
            "{text}"
        );
        assert_eq!(run(&args(path)), ExitCode::SUCCESS);
    }

    #[test]
    fn corrupted_or_foreign_files_fail() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut bytes) = recording(dir.path());
        let n = bytes.len();
        bytes[n - 21] ^= 1; // the inbound record's last payload byte
        std::fs::write(&path, &bytes).unwrap();
        let mut out = Vec::new();
        let err = print(&args(path.clone()), &mut out).unwrap_err();
        assert!(matches!(
            err,
            Failure::Input(crate::stream::record::RecordError::RecordChecksum { .. })
        ));
        assert!(String::from_utf8(out).unwrap().contains("2 records"));
        assert_eq!(run(&args(path.clone())), ExitCode::FAILURE);

        std::fs::write(&path, b"just some text\n").unwrap();
        assert!(matches!(
            print(&args(path.clone()), &mut Vec::new()),
            Err(Failure::Input(crate::stream::record::RecordError::BadMagic))
        ));
        assert_eq!(
            run(&args(dir.path().join("missing.hwr"))),
            ExitCode::FAILURE
        );
    }
}
