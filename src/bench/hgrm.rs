//! HdrHistogram's "percentile distribution" text format (`.hgrm`), as Java's
//! `outputPercentileDistribution(out, 5, 1000.0)` writes it: values in
//! milliseconds (recorded in µs), 5 ticks per half distance. The standard
//! HdrHistogram plotter (hdrhistogram.github.io/HdrHistogram/plotFiles.html)
//! loads these files. `parse` reads them back.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Recorded unit (µs) per reported unit (ms).
const SCALE: f64 = 1000.0;
const TICKS_PER_HALF_DISTANCE: u32 = 5;

pub fn write(h: &Histogram<u64>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total: u64 = 0;
    if !h.is_empty() {
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / SCALE;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    s,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / SCALE, h.stdev() / SCALE, h.max() as f64 / SCALE)
    };
    let _ = writeln!(s, "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]");
    let _ = writeln!(
        s,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        h.distinct_values()
    );
    s
}

/// A parsed `.hgrm` file: (value in ms, quantile, total count) rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Distribution {
    pub rows: Vec<(f64, f64, u64)>,
    pub max_ms: f64,
    pub total_count: u64,
}

impl Distribution {
    /// Value (ms) at quantile `q` (0..=1): the first row at or beyond it.
    pub fn value_at_quantile(&self, q: f64) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.1 >= q)
            .or(self.rows.last())
            .map(|r| r.0)
    }
}

pub fn parse(text: &str) -> Result<Distribution, String> {
    let mut d = Distribution::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#[Max") {
            // "#[Max     =       12.345, Total count    =      10000]"
            let nums: Vec<&str> = rest
                .split(['=', ',', ']'])
                .map(str::trim)
                .filter(|x| !x.is_empty() && x.chars().next().is_some_and(|c| c.is_ascii_digit()))
                .collect();
            d.max_ms = nums
                .first()
                .and_then(|x| x.parse().ok())
                .ok_or(format!("line {}: bad #[Max line", i + 1))?;
            d.total_count = nums
                .get(1)
                .and_then(|x| x.parse().ok())
                .ok_or(format!("line {}: bad #[Max line", i + 1))?;
            continue;
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with("Value") {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("line {}: not a percentile row: {line:?}", i + 1);
        if f.len() < 3 {
            return Err(bad());
        }
        let value: f64 = f[0].parse().map_err(|_| bad())?;
        let q: f64 = f[1].parse().map_err(|_| bad())?;
        let count: u64 = f[2].parse().map_err(|_| bad())?;
        d.rows.push((value, q, count));
    }
    if d.rows.is_empty() && d.total_count > 0 {
        return Err("no percentile rows".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::new_histogram;

    #[test]
    fn round_trip() {
        let mut h = new_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 10).unwrap();
        }
        let d = parse(&write(&h)).unwrap();
        assert_eq!(d.total_count, 10_000);
        assert_eq!(d.rows.last().unwrap().2, 10_000);
        let p99_ms = d.value_at_quantile(0.99).unwrap();
        let want = h.value_at_quantile(0.99) as f64 / 1000.0;
        assert!((p99_ms - want).abs() / want < 0.01, "{p99_ms} vs {want}");
        assert!((d.max_ms - 100.0).abs() < 0.1);
    }

    #[test]
    fn empty_histogram_is_valid() {
        let d = parse(&write(&new_histogram())).unwrap();
        assert_eq!(d.total_count, 0);
    }
}
