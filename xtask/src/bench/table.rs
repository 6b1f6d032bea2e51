//! What the terminal shows: the figures per CPU count, the scaling over the
//! sweep, the goals and the comparison with a baseline. Everything returns
//! a `String`, so the tests can read it.

use crate::bench::compare::Comparison;
use crate::bench::goals::{self, GoalResult, Status};
use crate::bench::results::{Combined, CpuResult, FLOOR, SCALING, Unit};

/// A time for reading: `405 ns`, `74.5 µs`, `46.7 ms`, `1.23 s`.
pub fn fmt_ns(ns: f64) -> String {
    let (value, unit) = match ns {
        _ if ns < 1e3 => (ns, "ns"),
        _ if ns < 1e6 => (ns / 1e3, "µs"),
        _ if ns < 1e9 => (ns / 1e6, "ms"),
        _ => (ns / 1e9, "s"),
    };
    format!("{} {unit}", fmt_3(value))
}

/// Microseconds, the tables' one unit: `0.41`, `74.5`, `46742`.
pub fn fmt_us(ns: f64) -> String {
    fmt_3(ns / 1e3)
}

/// A ratio: `1.23`, `12.3`, `123`.
pub fn fmt_ratio(x: f64) -> String {
    fmt_3(x)
}

/// About three significant digits, never fewer integer digits.
fn fmt_3(v: f64) -> String {
    match v.abs() {
        a if a < 10.0 => format!("{v:.2}"),
        a if a < 100.0 => format!("{v:.1}"),
        _ => format!("{v:.0}"),
    }
}

/// Columns two spaces apart: the first `left` left-aligned (text), the
/// others right-aligned (numbers).
fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    render_aligned(header, rows, 1)
}

fn render_aligned(header: &[&str], rows: &[Vec<String>], left: usize) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let sep = if i == 0 { "" } else { "  " };
            if i < left {
                out += &format!("{sep}{cell:<w$}");
            } else {
                out += &format!("{sep}{cell:>w$}");
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out += &line(row.clone());
    }
    out
}

/// One row of the figures table.
fn figure_row(f: &Combined) -> Vec<String> {
    if !f.measured() {
        return vec![f.name.clone(), "not measured".into(), "-".into(), "-".into(), "0".into()];
    }
    let x_floor = f.x_floor.map_or_else(|| "-".into(), |x| format!("{}x", fmt_ratio(x)));
    let (median, p99) = match f.unit {
        Unit::Ns => (fmt_us(f.median), fmt_us(f.p99)),
        // The guest measures a rate once per boot: it has no spread.
        Unit::PerS => (format!("{:.0} calls/s", f.median), "-".into()),
    };
    vec![f.name.clone(), median, p99, x_floor, f.samples.to_string()]
}

/// The figures of one CPU count.
pub fn figures_table(r: &CpuResult, firmware: &str) -> String {
    let boots = if r.runs == 1 { "1 boot".to_owned() } else { format!("{} boots, median of medians", r.runs) };
    let mut out =
        format!("== {} CPUs ({firmware}, {boots}, guest TSC {} MHz, idle={}) ==\n", r.cpus, r.tsc_mhz, r.idle_mode());
    let rows: Vec<Vec<String>> = r.figures.iter().map(figure_row).collect();
    out += &render(&["operation", "median µs", "p99 µs", "x floor", "samples"], &rows);
    out
}

/// The legend under the figures tables.
pub fn figures_legend() -> String {
    format!(
        "x floor: median over the {FLOOR} median of the same boot (for a rate: time per call over it); \
         times are emulated (QEMU TCG)\n"
    )
}

/// The scaling figures against the CPU count, with the growth per doubling
/// (least-squares over the sweep; under 2.0x is sub-linear).
pub fn scaling_table(results: &[CpuResult]) -> String {
    let mut sorted: Vec<&CpuResult> = results.iter().collect();
    sorted.sort_by_key(|r| r.cpus);
    let counts: Vec<String> = sorted.iter().map(|r| format!("{} CPUs", r.cpus)).collect();
    let mut header = vec!["operation (median µs)"];
    header.extend(counts.iter().map(String::as_str));
    header.push("per doubling");
    let mut rows = Vec::new();
    for name in SCALING {
        let mut row = vec![name.to_owned()];
        row.extend(sorted.iter().map(|r| r.median(name).map_or_else(|| "-".into(), fmt_us)));
        let growth = goals::growth_per_doubling(&goals::series(results, name));
        row.push(growth.map_or_else(|| "-".into(), |g| format!("{}x", fmt_ratio(g))));
        rows.push(row);
    }
    format!("== scaling with the CPU count ==\n{}", render(&header, &rows))
}

/// Each goal with what was measured and whether it is met.
pub fn goals_table(results: &[GoalResult]) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|g| {
            vec![
                g.goal.clone(),
                g.cpus.map_or_else(|| "sweep".into(), |n| n.to_string()),
                g.measured.clone(),
                g.target.clone(),
                g.status.label().into(),
            ]
        })
        .collect();
    let met = results.iter().filter(|g| g.status == Status::Met).count();
    format!(
        "== goals (Linux 6.1 under the same QEMU TCG, see docs/platform.md) ==\n{}{met} of {} met\n",
        render_aligned(&["goal", "CPUs", "measured", "target", "status"], &rows, 5),
        results.len()
    )
}

/// The comparison with a baseline.
pub fn comparison_table(comparisons: &[Comparison], threshold_pct: f64) -> String {
    let value = |unit: Unit, v: f64| match unit {
        Unit::Ns => fmt_ns(v),
        Unit::PerS => format!("{v:.0}/s"),
    };
    let rows: Vec<Vec<String>> = comparisons
        .iter()
        .map(|c| {
            let mark =
                if c.regression { format!("REGRESSION ({:+.0}%)", (c.slowdown - 1.0) * 100.0) } else { String::new() };
            vec![
                c.name.clone(),
                c.cpus.to_string(),
                value(c.unit, c.old),
                value(c.unit, c.new),
                format!("{:.2}", c.ratio),
                mark,
            ]
        })
        .collect();
    let regressions = comparisons.iter().filter(|c| c.regression).count();
    format!(
        "== against the baseline (regression: more than {threshold_pct}% worse) ==\n{}{regressions} regression(s) \
         in {} figure(s)\n",
        render(&["operation", "CPUs", "baseline", "now", "new/old", ""], &rows),
        comparisons.len()
    )
}
