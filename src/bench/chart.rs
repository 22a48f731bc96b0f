//! chart.svg: throughput over time (left) and the latency percentile curve
//! (right, on HdrHistogram's 1/(1-percentile) axis), drawn with plotters.

use hdrhistogram::Histogram;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::result::RunResult;

const SIZE: (u32, u32) = (1200, 460);

/// Points (log10(1/(1-q)), ms) of a histogram's percentile curve.
fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .filter(|v| v.quantile_iterated_to() < 1.0)
        .map(|v| {
            let q = v.quantile_iterated_to();
            (
                (1.0 / (1.0 - q)).log10(),
                v.value_iterated_to() as f64 / 1000.0,
            )
        })
        .collect()
}

fn percentile_label(x: &f64) -> String {
    let q = 100.0 * (1.0 - 10f64.powf(-x));
    match *x {
        x if x < 0.5 => "0%".into(),
        x if x < 1.5 => "90%".into(),
        _ => format!("{q:.*}%", (*x as usize).saturating_sub(2)),
    }
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draw each (label, colour, points) as a line with a legend entry, then the
/// legend.
fn draw_lines<'a, 'b: 'a>(
    c: &mut Chart<'a, 'b>,
    lines: impl IntoIterator<Item = (&'static str, RGBColor, Vec<(f64, f64)>)>,
) -> Result<(), Box<dyn std::error::Error>> {
    for (label, color, pts) in lines {
        c.draw_series(LineSeries::new(pts, color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    c.configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

pub fn render(r: &RunResult, publish: &Histogram<u64>, e2e: &Histogram<u64>) -> String {
    let mut svg = String::new();
    if let Err(e) = draw(&mut svg, r, publish, e2e) {
        tracing::warn!("chart not drawn: {e}");
    }
    svg
}

fn draw(
    svg: &mut String,
    r: &RunResult,
    publish: &Histogram<u64>,
    e2e: &Histogram<u64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);

    let t_max = r.timeline.last().map_or(1.0, |s| s.t_s).max(1.0);
    let y_max = r
        .timeline
        .iter()
        .map(|s| s.produce_mb_per_s.max(s.consume_mb_per_s))
        .fold(1.0, f64::max)
        * 1.1;
    let mut c = ChartBuilder::on(&left)
        .caption(format!("{}: throughput", r.name), ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..t_max, 0f64..y_max)?;
    c.configure_mesh()
        .x_desc("time (s)")
        .y_desc("MB/s")
        .draw()?;
    let series = [
        (
            "produce",
            BLUE,
            r.timeline
                .iter()
                .map(|s| (s.t_s, s.produce_mb_per_s))
                .collect::<Vec<_>>(),
        ),
        (
            "consume",
            RED,
            r.timeline
                .iter()
                .map(|s| (s.t_s, s.consume_mb_per_s))
                .collect(),
        ),
    ];
    draw_lines(&mut c, series)?;

    let curves = [
        ("publish", BLUE, curve(publish)),
        ("end-to-end", RED, curve(e2e)),
    ];
    let x_max = curves
        .iter()
        .flat_map(|c| c.2.iter().map(|p| p.0))
        .fold(4.0, f64::max)
        .ceil();
    let l_max = curves
        .iter()
        .flat_map(|c| c.2.iter().map(|p| p.1))
        .fold(0.01, f64::max)
        * 1.1;
    let mut c = ChartBuilder::on(&right)
        .caption("latency by percentile (ms)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, 0f64..l_max)?;
    c.configure_mesh()
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&percentile_label)
        .x_desc("percentile")
        .y_desc("ms")
        .draw()?;
    draw_lines(&mut c, curves)?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentile_axis_labels() {
        assert_eq!(super::percentile_label(&0.0), "0%");
        assert_eq!(super::percentile_label(&1.0), "90%");
        assert_eq!(super::percentile_label(&2.0), "99%");
        assert_eq!(super::percentile_label(&3.0), "99.9%");
        assert_eq!(super::percentile_label(&4.0), "99.99%");
    }
}
