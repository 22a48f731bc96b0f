//! `sluice bench report DIR`: a markdown page of every run under DIR (each a
//! directory with result.json and chart.svg), written to DIR/report.md.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::error::BenchError;
use super::output::{self, CHART_FILE, RESULT_FILE};
use super::result::{fmt_us, RunResult};

/// Every results directory at or below `dir` (two levels), sorted by path.
fn find_runs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if dir.join(RESULT_FILE).is_file() {
        out.push(dir.to_path_buf());
    }
    let children = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default()
    };
    for c in children(dir) {
        if c.join(RESULT_FILE).is_file() {
            out.push(c.clone());
        }
        for g in children(&c) {
            if g.join(RESULT_FILE).is_file() {
                out.push(g);
            }
        }
    }
    out.sort();
    out
}

pub fn render(dir: &Path) -> Result<String, BenchError> {
    let runs: Vec<(PathBuf, RunResult)> = find_runs(dir)
        .into_iter()
        .map(|d| output::load(&d).map(|r| (d, r)))
        .collect::<Result<_, _>>()?;
    if runs.is_empty() {
        return Err(BenchError::file(
            dir,
            "no result.json found here or in its subdirectories",
        ));
    }
    let mut s = String::new();
    let _ = writeln!(s, "# sluice bench report\n");
    if let Ok(machine) = std::fs::read_to_string(dir.join("machine.txt")) {
        let _ = writeln!(s, "## Machine\n\n```\n{}\n```\n", machine.trim_end());
    }
    let _ = writeln!(s, "## Runs\n");
    let _ = writeln!(
        s,
        "| run | produce MB/s | produce msg/s | consume MB/s | publish p50 | p99 | p99.9 | e2e p99 | client CPU s | broker CPU s | ok |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (_, r) in &runs {
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.0} | {:.1} | {} | {} | {} | {} | {:.1} | {} | {} |",
            r.name,
            r.produce.rate_mb_per_s,
            r.produce.rate_msgs_per_s,
            r.consume.rate_mb_per_s,
            fmt_us(r.publish_latency_us.p50),
            fmt_us(r.publish_latency_us.p99),
            fmt_us(r.publish_latency_us.p99_9),
            fmt_us(r.e2e_latency_us.p99),
            r.cpu.client_s,
            r.cpu.broker_s.map_or("n/a".into(), |b| format!("{b:.1}")),
            if r.error.is_none() {
                "yes".to_string()
            } else {
                "no".to_string()
            }
        );
    }
    for (d, r) in &runs {
        let w = &r.workload;
        let _ = writeln!(s, "\n## {}\n", r.name);
        let _ = writeln!(
            s,
            "{}, batch {} B, linger {} ms, {:?} compression, rate {}; measured {:.1} s; started {}.\n",
            w.describe(),
            w.producer.batch_bytes,
            w.producer.linger_ms,
            w.producer.compression,
            w.rate_label(),
            r.measured_s,
            r.started_at
        );
        if let Some(e) = &r.error {
            let _ = writeln!(s, "**Incomplete:** {e}\n");
        }
        if let Some(b) = &r.broker_latency_us {
            let _ = writeln!(
                s,
                "Broker-side, over the measured window (`--broker-metrics`):\n\n| | count | p50 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|"
            );
            for (label, q) in b.rows() {
                if let Some(q) = q {
                    let _ = writeln!(
                        s,
                        "| {label} | {} | {} | {} | {} | {} |",
                        q.count,
                        fmt_us(q.p50),
                        fmt_us(q.p99),
                        fmt_us(q.p99_9),
                        fmt_us(q.max)
                    );
                }
            }
            if let Some(e) = &b.error {
                let _ = writeln!(s, "\n(broker metrics not read: {e})");
            }
            let _ = writeln!(s);
        }
        let rel = d.strip_prefix(dir).unwrap_or(d).join(CHART_FILE);
        if d.join(CHART_FILE).is_file() {
            let _ = writeln!(s, "![{} chart]({})", r.name, rel.display());
        }
    }
    Ok(s)
}

pub fn write(dir: &Path) -> Result<String, BenchError> {
    let md = render(dir)?;
    let path = dir.join("report.md");
    std::fs::write(&path, &md).map_err(|e| BenchError::file(&path, e))?;
    Ok(md)
}
