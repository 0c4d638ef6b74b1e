//! Live counters and latency histograms for the appliance's report.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
    up: AtomicBool,
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
                self.set_up(true);
                log::info!("{name}: connected to {addr}");
            }
            Event::Disconnected { .. } if orderly => self.set_up(false),
            Event::Disconnected { reason, retry_in } => {
                if self.is_up() {
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                self.set_up(false);
                match retry_in {
                    Some(d) => log::warn!("{name}: {reason}; reconnecting in {d:?}"),
                    None => log::warn!("{name}: {reason}"),
                }
            }
        }
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
    fn human_units() {
        assert_eq!(human_ns(850), "850ns");
        assert_eq!(human_ns(12_345), "12.3us");
        assert_eq!(human_ns(4_560_000), "4.56ms");
        assert_eq!(human_rate(12_300.0), "12.3k");
    }
}
