//! Live counters and latency histograms for the appliance's report.
//!
//! The IO thread that owns an endpoint is the only writer of its [`Counters`]; readers (the stats
//! line, the metrics endpoint) run on other threads. Everything the IO thread does here per
//! message is a relaxed atomic update: no lock, no allocation.

use std::fmt::Write as _;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};

use hdrhistogram::Histogram;

/// Per-endpoint counters, shared between the IO thread (writer) and the stats printer (reader).
#[derive(Debug, Default)]
pub struct Counters {
    /// Data messages received.
    pub messages: AtomicU64,
    /// Payload bytes received.
    pub bytes: AtomicU64,
    /// Established connections that were lost (and reconnected or not).
    pub reconnects: AtomicU64,
    /// Connections established.
    pub connects: AtomicU64,
    /// One-way latency (embedded timestamps), in fixed buckets for export.
    pub latency: AtomicBuckets,
    /// Round trips (pings, HTTP requests, FIX orders), in fixed buckets for export.
    pub round_trip: AtomicBuckets,
    /// Why the last connection ended or the last attempt failed (orderly shutdowns excluded).
    pub last_error: ErrorText,
    up: AtomicBool,
    /// The gateway's counters (`publish = true`).
    #[cfg(feature = "gateway")]
    pub gateway: std::sync::Arc<crate::gateway::GatewayCounters>,
}

impl Counters {
    /// Marks the endpoint up or down.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }
    /// `true` while the endpoint is established.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Follows endpoint `name`'s lifecycle: up or down, lost connections counted, each change
    /// logged. `orderly` (a shutdown under way) ends the connection without counting a loss.
    pub fn track(&self, event: &crate::service::Event<'_>, name: &str, orderly: bool) {
        use crate::service::Event;
        match event {
            Event::Connected { addr } => {
                self.connects.fetch_add(1, Ordering::Relaxed);
                self.set_up(true);
                log::info!("{name}: connected to {addr}");
            }
            Event::Disconnected { .. } if orderly => self.set_up(false),
            Event::Disconnected { reason, retry_in } => {
                if self.is_up() {
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                self.set_up(false);
                self.last_error.set(format_args!("{reason}"));
                match retry_in {
                    Some(d) => log::warn!("{name}: {reason}; reconnecting in {d:?}"),
                    None => log::warn!("{name}: {reason}"),
                }
            }
        }
    }
}

/// Upper bounds (ns, inclusive) of the [`AtomicBuckets`]: 1-2.5-5 steps from 1 µs to 10 s; a last
/// bucket takes everything above.
pub const BUCKET_BOUNDS_NS: [u64; 22] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// A latency histogram with fixed buckets ([`BUCKET_BOUNDS_NS`]) in atomics: one writer (the IO
/// thread) records with plain relaxed loads and stores, any thread reads a snapshot.
///
/// It sits beside the HDR histogram (which is exact but owned by the IO thread) so that the
/// metrics endpoint can export cumulative buckets while the run goes on.
#[derive(Debug, Default)]
pub struct AtomicBuckets {
    counts: [AtomicU64; BUCKET_BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
}

/// A copy of an [`AtomicBuckets`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSnapshot {
    /// Samples per bucket (not cumulative); the last one is above the largest bound.
    pub counts: [u64; BUCKET_BOUNDS_NS.len() + 1],
    /// Sum of all samples (ns, wrapping only after 584 years of latency).
    pub sum_ns: u64,
}

impl BucketSnapshot {
    /// Samples in all buckets.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl AtomicBuckets {
    /// Records one sample. Only the endpoint's IO thread may call this (single writer), which is
    /// why a load and a store are enough: no read-modify-write, no lock.
    #[inline]
    pub fn record_ns(&self, ns: u64) {
        let i = BUCKET_BOUNDS_NS.partition_point(|&b| b < ns);
        let c = &self.counts[i];
        c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        let s = &self.sum_ns;
        s.store(
            s.load(Ordering::Relaxed).wrapping_add(ns),
            Ordering::Relaxed,
        );
    }

    /// The counts now (each bucket read once; a sample recorded meanwhile may be in or out).
    pub fn snapshot(&self) -> BucketSnapshot {
        BucketSnapshot {
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
        }
    }
}

/// Longest error text kept (bytes); longer ones are cut at a character boundary.
pub const ERROR_TEXT_MAX: usize = 160;
const ERROR_WORDS: usize = ERROR_TEXT_MAX / 8;

/// A short text written by one thread and read by others without a lock: a sequence lock over
/// atomic words. The writer never waits; a reader retries a few times if it meets a write in
/// progress and otherwise gives up.
#[derive(Debug, Default)]
pub struct ErrorText {
    seq: AtomicU64,
    len: AtomicU64,
    words: [AtomicU64; ERROR_WORDS],
}

/// A fixed buffer that formatting fills up to its size, cutting at a character boundary.
struct Cut {
    buf: [u8; ERROR_TEXT_MAX],
    len: usize,
}

impl std::fmt::Write for Cut {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = ERROR_TEXT_MAX - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

impl ErrorText {
    /// Replaces the text (formatted into a stack buffer: no allocation). Single writer only.
    pub fn set(&self, text: std::fmt::Arguments<'_>) {
        let mut cut = Cut {
            buf: [0; ERROR_TEXT_MAX],
            len: 0,
        };
        let _ = cut.write_fmt(text);
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (word, chunk) in self.words.iter().zip(cut.buf.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            word.store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
        self.len.store(cut.len as u64, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// The text, or `None` if none was set (or a writer kept it busy through every retry).
    pub fn get(&self) -> Option<String> {
        for _ in 0..64 {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let len = (self.len.load(Ordering::Relaxed) as usize).min(ERROR_TEXT_MAX);
            let mut buf = [0u8; ERROR_TEXT_MAX];
            for (word, chunk) in self.words.iter().zip(buf.chunks_exact_mut(8)) {
                chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
            }
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                if before == 0 {
                    return None;
                }
                return Some(String::from_utf8_lossy(&buf[..len]).into_owned());
            }
        }
        None
    }
}

/// A latency histogram in nanoseconds (1 ns to 60 s, 3 significant digits), allocated once.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    hist: Histogram<u64>,
}

/// Percentiles of a [`LatencyRecorder`], in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder::new()
    }
}

impl LatencyRecorder {
    /// An empty recorder.
    pub fn new() -> LatencyRecorder {
        LatencyRecorder {
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .expect("constant histogram bounds are valid"),
        }
    }

    /// Records one sample (clamped into range; never allocates).
    #[inline]
    pub fn record_ns(&mut self, ns: u64) {
        self.hist.saturating_record(ns.max(1));
    }

    /// Adds another recorder's samples.
    pub fn merge(&mut self, other: &LatencyRecorder) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.hist.add(&other.hist);
    }

    /// The percentile distribution (HdrHistogram's "percentile distribution" output): points
    /// (quantile, ns) at quantiles that step ever closer to 1 (five per halving of the distance),
    /// below 1 itself; empty without samples.
    pub fn percentile_curve(&self) -> Vec<(f64, u64)> {
        self.hist
            .iter_quantiles(5)
            .map(|v| (v.quantile_iterated_to(), v.value_iterated_to()))
            .filter(|&(q, _)| q < 1.0)
            .collect()
    }

    /// The largest sample, or `None` without samples.
    pub fn max(&self) -> Option<u64> {
        (!self.hist.is_empty()).then(|| self.hist.max())
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// `true` without samples.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The percentiles, or `None` without samples.
    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.hist.is_empty() {
            return None;
        }
        Some(Percentiles {
            count: self.hist.len(),
            p50: self.hist.value_at_quantile(0.50),
            p90: self.hist.value_at_quantile(0.90),
            p99: self.hist.value_at_quantile(0.99),
            p999: self.hist.value_at_quantile(0.999),
            max: self.hist.max(),
        })
    }
}

/// Formats nanoseconds for people: `850ns`, `12.3us`, `4.56ms`, `1.20s`.
pub fn human_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{:.1}us", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

/// Formats a rate for people: `950`, `12.3k`, `4.56M`.
pub fn human_rate(per_sec: f64) -> String {
    if per_sec < 1e3 {
        format!("{per_sec:.0}")
    } else if per_sec < 1e6 {
        format!("{:.1}k", per_sec / 1e3)
    } else {
        format!("{:.2}M", per_sec / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut r = LatencyRecorder::new();
        assert!(r.percentiles().is_none());
        for v in 1..=1000u64 {
            r.record_ns(v * 1000);
        }
        let p = r.percentiles().unwrap();
        assert_eq!(p.count, 1000);
        assert!((499_000..=501_000).contains(&p.p50), "{p:?}");
        assert!((989_000..=991_000).contains(&p.p99), "{p:?}");
        assert!(p.max >= 999_000);
        r.record_ns(u64::MAX);
        assert_eq!(r.percentiles().unwrap().count, 1001);
    }

    #[test]
    fn buckets_take_each_sample_once_at_its_bound() {
        let b = AtomicBuckets::default();
        for ns in [
            1,
            1_000,
            1_001,
            2_500,
            10_000_000_000,
            10_000_000_001,
            u64::MAX / 2,
        ] {
            b.record_ns(ns);
        }
        let s = b.snapshot();
        assert_eq!(s.count(), 7);
        assert_eq!(s.counts[0], 2, "1 ns and 1 µs are in the first bucket");
        assert_eq!(s.counts[1], 2, "1001 ns and 2.5 µs in the second");
        assert_eq!(s.counts[BUCKET_BOUNDS_NS.len() - 1], 1);
        assert_eq!(s.counts[BUCKET_BOUNDS_NS.len()], 2, "above 10 s");
    }

    #[test]
    fn error_text_is_cut_at_a_character_boundary() {
        let t = ErrorText::default();
        assert_eq!(t.get(), None);
        t.set(format_args!("connect: {}", "refused"));
        assert_eq!(t.get().as_deref(), Some("connect: refused"));
        let long = "é".repeat(200);
        t.set(format_args!("{long}"));
        let got = t.get().unwrap();
        assert_eq!(got, "é".repeat(ERROR_TEXT_MAX / 2));
        t.set(format_args!(""));
        assert_eq!(t.get().as_deref(), Some(""));
    }

    #[test]
    fn error_text_reads_whole_texts_while_written() {
        let t = std::sync::Arc::new(ErrorText::default());
        let writer = {
            let t = t.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    let c = if i % 2 == 0 { "a" } else { "b" };
                    t.set(format_args!("{}", c.repeat(100 + (i % 50) as usize)));
                }
            })
        };
        let mut seen = 0;
        while !writer.is_finished() {
            if let Some(s) = t.get() {
                let first = s.as_bytes()[0];
                assert!(s.bytes().all(|b| b == first), "torn read: {s}");
                seen += 1;
            }
        }
        writer.join().unwrap();
        assert!(seen > 0);
    }

    #[test]
    fn human_units() {
        assert_eq!(human_ns(850), "850ns");
        assert_eq!(human_ns(12_345), "12.3us");
        assert_eq!(human_ns(4_560_000), "4.56ms");
        assert_eq!(human_rate(12_300.0), "12.3k");
    }
}
