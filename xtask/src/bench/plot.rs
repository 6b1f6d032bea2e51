//! SVG plots of the results: per CPU count the latency of every operation,
//! and over the sweep the figures that should grow sub-linearly.
//!
//! plotters is built without fonts (default features off): text goes into
//! the SVG as `<text>` and the viewer's fonts draw it, so only a rough
//! width estimate is used for layout; labels are kept short for that.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, SegmentValue, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::bench::goals;
use crate::bench::results::{CpuResult, SCALING, Unit};
use crate::bench::table::{fmt_ratio, fmt_us};

/// One bar of the latency plot, in µs.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub name: String,
    pub median_us: f64,
    pub p99_us: f64,
}

/// The bars of one CPU count: every measured time (rates have no place on
/// a time axis).
pub fn latency_bars(r: &CpuResult) -> Vec<Bar> {
    r.figures
        .iter()
        .filter(|f| f.unit == Unit::Ns && f.measured() && f.median > 0.0)
        .map(|f| Bar { name: f.name.clone(), median_us: f.median / 1e3, p99_us: f.p99.max(f.median) / 1e3 })
        .collect()
}

/// A log axis once the values span more than this factor; a linear one
/// would flatten the small ones to nothing.
const LOG_SPAN: f64 = 20.0;

/// One bar series: legend label, the figure it draws, its style, its side margin.
type BarSeries = (&'static str, fn(&Bar) -> f64, ShapeStyle, u32);

fn draw_err<E: std::error::Error + Send + Sync + 'static>(e: E) -> anyhow::Error {
    anyhow!("drawing the plot: {e}")
}

/// Bar chart of medians (solid) and p99s (pale, behind) for one CPU count.
pub fn latency_svg(r: &CpuResult, path: &Path) -> Result<()> {
    let bars = latency_bars(r);
    anyhow::ensure!(!bars.is_empty(), "no times measured with {} CPUs: nothing to plot", r.cpus);
    let lo = bars.iter().map(|b| b.median_us).fold(f64::INFINITY, f64::min);
    let hi = bars.iter().map(|b| b.p99_us).fold(0.0, f64::max);
    let log = hi / lo > LOG_SPAN;
    let title = format!("latency with {} CPUs (QEMU TCG), µs{}", r.cpus, if log { ", log scale" } else { "" });
    let width = 200 + 130 * bars.len() as u32;
    let root = SVGBackend::new(path, (width, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let names: Vec<String> = bars.iter().map(|b| b.name.clone()).collect();
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    // Integer ranges are inclusive in plotters: 0..n-1 makes n segments.
    let x = (0..bars.len() - 1).into_segmented();
    if log {
        latency_chart(&root, &title, x, (lo / 3.0..hi * 3.0).log_scale(), &label, &bars, lo / 3.0)?;
    } else {
        latency_chart(&root, &title, x, 0.0..hi * 1.15, &label, &bars, 0.0)?;
    }
    root.present().map_err(draw_err).with_context(|| format!("writing {}", path.display()))
}

/// The latency chart on `root`, over the log or linear axis `y`, with its
/// bars drawn from `base`.
fn latency_chart<X, Y>(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    x: X,
    y: Y,
    label: &dyn Fn(&SegmentValue<usize>) -> String,
    bars: &[Bar],
    base: f64,
) -> Result<()>
where
    X: AsRangedCoord<Value = SegmentValue<usize>>,
    X::CoordDescType: ValueFormatter<SegmentValue<usize>>,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(label)
        .y_desc("µs")
        .y_label_formatter(&|v| fmt_us(v * 1e3))
        .draw()
        .map_err(draw_err)?;
    draw_bars(&mut chart, bars, base)?;
    legend(&mut chart)
}

/// The two bars per operation, with the median's value written above it.
fn draw_bars<'r, 'a: 'r, X, Y>(
    chart: &mut ChartContext<'r, SVGBackend<'a>, Cartesian2d<X, Y>>,
    bars: &[Bar],
    base: f64,
) -> Result<()>
where
    X: Ranged<ValueType = SegmentValue<usize>>,
    Y: Ranged<ValueType = f64>,
{
    // p99 wide and pale behind, the median narrow and solid in front.
    let series: [BarSeries; 2] =
        [("p99", |b| b.p99_us, BLUE.mix(0.25).filled(), 18), ("median", |b| b.median_us, BLUE.filled(), 36)];
    for (label, value, style, margin) in series {
        let rects = bars.iter().enumerate().map(|(i, b)| {
            let mut r = Rectangle::new([(SegmentValue::Exact(i), base), (SegmentValue::Exact(i + 1), value(b))], style);
            r.set_margin(0, 0, margin, margin);
            r
        });
        chart
            .draw_series(rects)
            .map_err(draw_err)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], style));
    }
    let above = TextStyle::from(("sans-serif", 13)).pos(Pos::new(HPos::Center, VPos::Bottom));
    let values = bars
        .iter()
        .enumerate()
        .map(|(i, b)| Text::new(fmt_us(b.median_us * 1e3), (SegmentValue::CenterOf(i), b.median_us), above.clone()));
    chart.draw_series(values).map_err(draw_err)?;
    Ok(())
}

fn legend<'r, 'a: 'r, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'r, SVGBackend<'a>, Cartesian2d<X, Y>>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw_err)
}

/// Line colours that stay apart on white (plotters' palette starts with a pale yellow).
const COLORS: [RGBColor; 3] = [RGBColor(200, 40, 40), RGBColor(30, 90, 200), RGBColor(20, 140, 60)];

/// Scaling of [`SCALING`] against the CPU count, both axes logarithmic, so
/// a straight line's slope is the growth exponent (1 = linear).
pub fn scaling_svg(results: &[CpuResult], path: &Path) -> Result<()> {
    let all: Vec<(&str, Vec<(u32, f64)>)> =
        SCALING.iter().map(|&name| (name, goals::series(results, name))).filter(|(_, s)| s.len() >= 2).collect();
    anyhow::ensure!(!all.is_empty(), "the scaling plot needs at least two CPU counts");
    let points = all.iter().flat_map(|(_, s)| s.iter());
    let (mut nlo, mut nhi, mut vlo, mut vhi) = (u32::MAX, 0, f64::INFINITY, 0f64);
    for &(n, v) in points {
        (nlo, nhi, vlo, vhi) = (nlo.min(n), nhi.max(n), vlo.min(v / 1e3), vhi.max(v / 1e3));
    }
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("scaling with the CPU count (QEMU TCG), median µs, log-log", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        // x is log2(CPUs) on a linear axis: plotters' own log axis labels
        // ticks between the powers of two with rounded, repeated numbers.
        .build_cartesian_2d(
            f64::from(nlo).log2() - 0.25..f64::from(nhi).log2() + 0.25,
            (vlo / 3.0..vhi * 3.0).log_scale(),
        )
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("CPUs")
        .y_desc("µs")
        .x_label_formatter(&|x| {
            // Only whole powers of two get a label.
            if (x - x.round()).abs() < 1e-6 { format!("{:.0}", x.round().exp2()) } else { String::new() }
        })
        .y_label_formatter(&|v| fmt_us(v * 1e3))
        .draw()
        .map_err(draw_err)?;
    for (i, (name, series)) in all.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let data: Vec<(f64, f64)> = series.iter().map(|&(n, v)| (f64::from(n).log2(), v / 1e3)).collect();
        let growth =
            goals::growth_per_doubling(series).map_or_else(String::new, |g| format!(" ({}x/doubling)", fmt_ratio(g)));
        chart
            .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))
            .map_err(draw_err)?
            .label(format!("{name}{growth}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(data.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(draw_err)?;
    }
    legend(&mut chart)?;
    root.present().map_err(draw_err).with_context(|| format!("writing {}", path.display()))
}
