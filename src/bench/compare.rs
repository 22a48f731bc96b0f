//! `sluice bench compare A B`: two runs side by side, with B/A ratios.

use std::fmt::Write as _;

use super::result::RunResult;

/// (metric, A, B, higher is better).
fn metrics(r: &RunResult) -> Vec<(&'static str, f64, bool)> {
    let mut m = vec![
        ("produce MB/s", r.produce.rate_mb_per_s, true),
        ("produce msg/s", r.produce.rate_msgs_per_s, true),
        ("consume MB/s", r.consume.rate_mb_per_s, true),
        ("consume msg/s", r.consume.rate_msgs_per_s, true),
    ];
    for (label, v) in r.publish_latency_us.rows() {
        m.push((pub_label(label), v as f64 / 1000.0, false));
    }
    for (label, v) in r.e2e_latency_us.rows() {
        m.push((e2e_label(label), v as f64 / 1000.0, false));
    }
    m.push((
        "errors",
        (r.totals.produce_errors + u64::from(r.error.is_some())) as f64,
        false,
    ));
    m.push(("client CPU s", r.cpu.client_s, false));
    m.push(("broker CPU s", r.cpu.broker_s.unwrap_or(f64::NAN), false));
    m
}

fn pub_label(p: &str) -> &'static str {
    match p {
        "p50" => "publish p50 ms",
        "p75" => "publish p75 ms",
        "p90" => "publish p90 ms",
        "p95" => "publish p95 ms",
        "p99" => "publish p99 ms",
        "p99.9" => "publish p99.9 ms",
        "p99.99" => "publish p99.99 ms",
        _ => "publish max ms",
    }
}

fn e2e_label(p: &str) -> &'static str {
    match p {
        "p50" => "e2e p50 ms",
        "p75" => "e2e p75 ms",
        "p90" => "e2e p90 ms",
        "p95" => "e2e p95 ms",
        "p99" => "e2e p99 ms",
        "p99.9" => "e2e p99.9 ms",
        "p99.99" => "e2e p99.99 ms",
        _ => "e2e max ms",
    }
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

pub fn compare(a: &RunResult, b: &RunResult) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "A: {} ({})", a.name, a.started_at);
    let _ = writeln!(s, "B: {} ({})", b.name, b.started_at);
    let _ = writeln!(s, "{:<20}{:>14}{:>14}{:>9}", "metric", "A", "B", "B/A");
    for ((label, va, higher_better), (_, vb, _)) in metrics(a).into_iter().zip(metrics(b)) {
        let ratio = if va != 0.0 && va.is_finite() && vb.is_finite() {
            format!("{:.2}", vb / va)
        } else {
            "-".into()
        };
        let better =
            match (higher_better, vb.partial_cmp(&va)) {
                (true, Some(std::cmp::Ordering::Greater))
                | (false, Some(std::cmp::Ordering::Less)) => " +",
                (true, Some(std::cmp::Ordering::Less))
                | (false, Some(std::cmp::Ordering::Greater)) => " -",
                _ => "",
            };
        let _ = writeln!(
            s,
            "{label:<20}{:>14}{:>14}{ratio:>9}{better}",
            num(va),
            num(vb)
        );
    }
    let _ = writeln!(s, "(+ = B better, - = B worse)");
    s
}
