//! A run against a baseline (an earlier results file): the ratio new/old of
//! every figure both measured, and which of them got worse beyond the
//! threshold.

use crate::bench::results::{Report, Unit};

/// One figure in both runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub cpus: u32,
    pub name: String,
    pub unit: Unit,
    pub old: f64,
    pub new: f64,
    /// new / old, as printed.
    pub ratio: f64,
    /// How much worse it got: new/old for a time, old/new for a rate, so
    /// that 1.3 means 30% slower whatever the unit.
    pub slowdown: f64,
    /// `slowdown` beyond 1 + threshold.
    pub regression: bool,
}

/// new/old → slowdown: a time that grows or a rate that shrinks is worse.
pub fn slowdown(unit: Unit, old: f64, new: f64) -> f64 {
    match unit {
        Unit::Ns => new / old,
        Unit::PerS => old / new,
    }
}

/// Whether `slowdown` is a regression beyond `threshold_pct` percent.
pub fn is_regression(slowdown: f64, threshold_pct: f64) -> bool {
    slowdown > 1.0 + threshold_pct / 100.0
}

/// Every figure measured (with a non-zero median) in both runs at the same
/// CPU count, in the new run's order. Figures only one run has are left
/// out: there is nothing to compare.
pub fn compare(old: &Report, new: &Report, threshold_pct: f64) -> Vec<Comparison> {
    let mut out = Vec::new();
    for result in &new.results {
        let Some(base) = old.for_cpus(result.cpus) else { continue };
        for figure in result.figures.iter().filter(|f| f.measured() && f.median > 0.0) {
            let Some(was) =
                base.figure(&figure.name).filter(|f| f.measured() && f.median > 0.0 && f.unit == figure.unit)
            else {
                continue;
            };
            let slowdown = slowdown(figure.unit, was.median, figure.median);
            out.push(Comparison {
                cpus: result.cpus,
                name: figure.name.clone(),
                unit: figure.unit,
                old: was.median,
                new: figure.median,
                ratio: figure.median / was.median,
                slowdown,
                regression: is_regression(slowdown, threshold_pct),
            });
        }
    }
    out
}

/// Differences between the runs' setups that make a comparison doubtful.
pub fn setup_differences(old: &Report, new: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, a: &str, b: &str| {
        if a != b {
            out.push(format!("{what}: baseline `{a}`, now `{b}`"));
        }
    };
    differ("host", &old.host.hostname, &new.host.hostname);
    differ("host CPU", &old.host.cpu_model, &new.host.cpu_model);
    differ("QEMU", &old.qemu, &new.qemu);
    differ("firmware", &old.firmware, &new.firmware);
    differ("boot parameters", &old.params.join(" "), &new.params.join(" "));
    differ("QEMU arguments", &old.qemu_args.join(" "), &new.qemu_args.join(" "));
    out
}
