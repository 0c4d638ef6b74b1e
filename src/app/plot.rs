//! `hotwire run --plot DIR`: one latency-percentile plot per endpoint, as SVG.
//!
//! The HdrHistogram "percentile distribution" picture: the x axis is the percentile on a log scale
//! of 1/(1-p), so 50 %, 90 %, 99 %, 99.9 %, 99.99 % are evenly spaced and the tail gets the room it
//! deserves; the y axis is the latency. One line per measurement the endpoint has (one-way latency
//! from embedded timestamps, round trips), drawn from the run's HDR histograms.

use std::io;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::stats::LatencyRecorder;

/// Width and height of a plot (px).
const SIZE: (u32, u32) = (960, 560);

/// One line of a plot: its label, its sample count, its points (x = 1/(1-p), y = µs).
type Curve<'a> = (&'a str, u64, Vec<(f64, f64)>);

/// The x coordinate of quantile `q`: 1/(1-q).
fn x_of(q: f64) -> f64 {
    1.0 / (1.0 - q)
}

/// The tick label of x: the percentile it stands for (`50%`, `99.9%`).
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    let text = format!("{p:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// A file name from an endpoint name: letters, digits, `-`, `_` and `.` kept, the rest `_`.
pub fn file_name(endpoint: &str) -> String {
    let stem: String = endpoint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.svg", stem.trim_start_matches('.'))
}

fn plot_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("plot: {e}"))
}

/// Writes `DIR/<endpoint>.svg` for `endpoint` with the `series` (label, histogram) that have
/// samples; returns the path, or `None` when no series has any.
pub fn write_plot(
    dir: &Path,
    endpoint: &str,
    series: &[(&str, &LatencyRecorder)],
) -> io::Result<Option<PathBuf>> {
    let curves: Vec<Curve<'_>> = series
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(label, h)| {
            let points = h
                .percentile_curve()
                .into_iter()
                .map(|(q, ns)| (x_of(q), ns as f64 / 1e3))
                .collect();
            (*label, h.len(), points)
        })
        .collect();
    if curves.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name(endpoint));
    let x_max = curves
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|&(x, _)| x))
        .fold(10.0f64, f64::max)
        * 1.5;
    let y_max = curves
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|&(_, y)| y))
        .fold(1.0f64, f64::max)
        * 1.08;
    {
        let root = SVGBackend::new(&path, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{endpoint}: latency by percentile"),
                ("sans-serif", 24),
            )
            .margin(18)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d((1.0..x_max).log_scale(), 0.0..y_max)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (µs)")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .axis_desc_style(("sans-serif", 18))
            .draw()
            .map_err(plot_error)?;
        let colours = [BLUE, RED, GREEN];
        for (i, (label, count, points)) in curves.into_iter().enumerate() {
            let colour = colours[i % colours.len()];
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(plot_error)?
                .label(format!("{label} (n={count})"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 16))
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_labels() {
        assert_eq!(percentile_label(2.0), "50%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(10_000.0), "99.99%");
        assert_eq!(percentile_label(1.0), "0%");
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("trades"), "trades.svg");
        assert_eq!(file_name("../a b/c"), "_a_b_c.svg");
    }

    #[test]
    fn curves_reach_into_the_tail() {
        let mut r = LatencyRecorder::new();
        for v in 1..=10_000u64 {
            r.record_ns(v * 100);
        }
        let c = r.percentile_curve();
        assert!(c.len() > 20, "{}", c.len());
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert!(c.last().unwrap().0 >= 0.999, "{:?}", c.last());
        let dir = tempfile::tempdir().unwrap();
        let path = write_plot(dir.path(), "x", &[("latency", &r)])
            .unwrap()
            .unwrap();
        let svg = std::fs::read_to_string(path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("99.9%") && svg.contains("x: latency by percentile"));
        let empty = LatencyRecorder::new();
        assert!(write_plot(dir.path(), "y", &[("latency", &empty)])
            .unwrap()
            .is_none());
    }
}
