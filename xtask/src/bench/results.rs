//! The measurements as data: one boot's figures, their combination over
//! several boots of the same machine, and the results file (JSON).
//!
//! Under TCG every absolute time is emulated and shifts with the host's
//! load, so each figure also carries its ratio to the floor (a shared-memory
//! ping-pong) measured *in the same boot*: that ratio is what stays
//! comparable between runs and machines.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub use protocol::bench::Unit;
/// The figures by name, as the guest reports them.
pub use protocol::bench::names::{
    BRINGUP_PARALLEL, CALL_ALL_BUSY, CALL_ALL_WAIT, CALL_SINGLE_BUSY, CALL_SINGLE_SYNC, FLOOR, HOTPLUG_CYCLE,
    STOP_MACHINE_ALL,
};

/// The figures whose growth with the CPU count the sweep shows.
pub const SCALING: [&str; 3] = [CALL_ALL_WAIT, STOP_MACHINE_ALL, BRINGUP_PARALLEL];

/// Version of the results file's layout; bumped when a field changes meaning.
pub const SCHEMA: u32 = 1;

/// Nanoseconds per operation for a value in `unit` (a rate's inverse).
pub fn ns_per_op(unit: Unit, value: f64) -> Option<f64> {
    match unit {
        Unit::Ns => Some(value),
        Unit::PerS if value > 0.0 => Some(1e9 / value),
        Unit::PerS => None,
    }
}

/// One figure as one boot reported it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub unit: Unit,
    pub median: f64,
    pub p99: f64,
    /// 0 when the guest could not measure it (e.g. a hotplug step failed).
    pub samples: u64,
}

impl Figure {
    pub fn measured(&self) -> bool {
        self.samples > 0
    }
}

/// Everything one boot reported.
#[derive(Clone, Debug, PartialEq)]
pub struct BootResult {
    pub cpus: u32,
    pub tsc_mhz: u64,
    /// How idle CPUs waited (`halt`, `poll`), if the guest said.
    pub idle: Option<String>,
    pub figures: Vec<Figure>,
}

impl BootResult {
    pub fn figure(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.name == name)
    }

    /// `figure`'s time per operation over this boot's floor.
    pub fn x_floor(&self, figure: &Figure) -> Option<f64> {
        let floor = self.figure(FLOOR).filter(|f| f.measured() && f.median > 0.0)?;
        let ns = ns_per_op(figure.unit, figure.median).filter(|_| figure.measured())?;
        Some(ns / floor.median)
    }
}

/// One figure for one CPU count, combined over that count's boots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Combined {
    pub name: String,
    pub unit: Unit,
    /// The median of the boots' medians.
    pub median: f64,
    /// The median of the boots' p99s.
    pub p99: f64,
    /// Samples over all boots that measured it (0: none did).
    pub samples: u64,
    /// The median over the boots of median / that boot's floor (for a
    /// rate: time per operation / floor).
    pub x_floor: Option<f64>,
    /// Each measuring boot's median, in run order.
    pub run_medians: Vec<f64>,
}

impl Combined {
    pub fn measured(&self) -> bool {
        self.samples > 0
    }
}

/// The results for one CPU count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuResult {
    pub cpus: u32,
    /// Boots combined.
    pub runs: usize,
    /// The TSC frequency the guest calibrated (median over the boots).
    pub tsc_mhz: u64,
    /// How idle CPUs waited (`halt`, `poll`): it decides what a call to an
    /// idle CPU costs. `None` from a kernel (or results file) that predates
    /// polling idle, which always halted.
    #[serde(default)]
    pub idle: Option<String>,
    pub figures: Vec<Combined>,
}

impl CpuResult {
    pub fn figure(&self, name: &str) -> Option<&Combined> {
        self.figures.iter().find(|f| f.name == name)
    }

    /// The median of `name` if it was measured.
    pub fn median(&self, name: &str) -> Option<f64> {
        self.figure(name).filter(|f| f.measured()).map(|f| f.median)
    }

    /// How idle CPUs waited, as the boot parameter spells it; a guest that
    /// did not say predates polling idle and halted.
    pub fn idle_mode(&self) -> &str {
        self.idle.as_deref().unwrap_or("halt")
    }
}

/// The median: the middle value, or the mean of the two middle ones.
/// `None` for no values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Combines boots of one CPU count: per figure, the median of the medians
/// (and of the p99s). A boot that could not measure a figure does not vote
/// on it. Figures keep the first boot's order; ones that only later boots
/// reported follow.
pub fn combine(boots: &[BootResult]) -> Result<CpuResult, String> {
    let first = boots.first().ok_or("no boots to combine")?;
    if let Some(other) = boots.iter().find(|b| b.cpus != first.cpus) {
        return Err(format!("cannot combine boots with {} and {} CPUs", first.cpus, other.cpus));
    }
    if let Some(other) = boots.iter().find(|b| b.idle != first.idle) {
        return Err(format!(
            "cannot combine boots whose CPUs idled differently ({:?} and {:?})",
            first.idle, other.idle
        ));
    }
    let mut names: Vec<&str> = Vec::new();
    for figure in boots.iter().flat_map(|b| &b.figures) {
        if !names.contains(&figure.name.as_str()) {
            names.push(&figure.name);
        }
    }
    let mut figures = Vec::new();
    for name in names {
        let reports: Vec<(&BootResult, &Figure)> =
            boots.iter().filter_map(|b| b.figure(name).map(|f| (b, f))).collect();
        let unit = reports[0].1.unit;
        if reports.iter().any(|(_, f)| f.unit != unit) {
            return Err(format!("`{name}` is reported in different units by different boots"));
        }
        let measured: Vec<_> = reports.iter().filter(|(_, f)| f.measured()).collect();
        let run_medians: Vec<f64> = measured.iter().map(|(_, f)| f.median).collect();
        let p99s: Vec<f64> = measured.iter().map(|(_, f)| f.p99).collect();
        let ratios: Vec<f64> = measured.iter().filter_map(|(b, f)| b.x_floor(f)).collect();
        figures.push(Combined {
            name: name.to_owned(),
            unit,
            median: median(&run_medians).unwrap_or(0.0),
            p99: median(&p99s).unwrap_or(0.0),
            samples: measured.iter().map(|(_, f)| f.samples).sum(),
            x_floor: median(&ratios),
            run_medians,
        });
    }
    let tsc: Vec<f64> = boots.iter().map(|b| b.tsc_mhz as f64).collect();
    Ok(CpuResult {
        cpus: first.cpus,
        runs: boots.len(),
        tsc_mhz: median(&tsc).map_or(0, |m| m.round() as u64),
        idle: first.idle.clone(),
        figures,
    })
}

/// Where the numbers were taken. Informational: a fact missing from an
/// older file reads as empty rather than making the file unreadable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostInfo {
    pub hostname: String,
    pub cpu_model: String,
    /// Host CPUs available to us (QEMU's vCPU threads share them).
    pub cores: usize,
    /// `uname -sr`-like: the host kernel.
    pub os: String,
    /// The host's CPU clock (/proc/cpuinfo); under TCG the guest's TSC
    /// ticks with the host's, so the guest's calibration can be checked.
    pub cpu_mhz: f64,
    /// How busy the host's cores were (percent, all cores) in the second
    /// before the first boot: other work competes with QEMU's vCPU threads
    /// and stretches every emulated time.
    pub busy_before_pct: f64,
}

/// The results file: everything measured, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: u32,
    /// UTC, ISO 8601.
    pub date: String,
    pub host: HostInfo,
    /// `qemu-system-x86_64 --version`'s first line.
    pub qemu: String,
    pub firmware: String,
    /// Boots per CPU count.
    pub runs: u32,
    /// Boot parameters of every boot, `key=value` (plus `smp.expect_cpus`,
    /// which is each boot's CPU count).
    pub params: Vec<String>,
    pub qemu_args: Vec<String>,
    pub kernel: String,
    /// One entry per CPU count, ascending.
    pub results: Vec<CpuResult>,
    pub goals: Vec<crate::bench::goals::GoalResult>,
}

impl Report {
    pub fn for_cpus(&self, cpus: u32) -> Option<&CpuResult> {
        self.results.iter().find(|r| r.cpus == cpus)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    pub fn from_json(text: &str) -> Result<Report> {
        let report: Report = serde_json::from_str(text).context("not a `cargo xtask bench` results file")?;
        anyhow::ensure!(
            report.schema == SCHEMA,
            "results file has layout version {}, this xtask reads version {SCHEMA}",
            report.schema
        );
        Ok(report)
    }

    pub fn load(path: &Path) -> Result<Report> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Report::from_json(&text).with_context(|| format!("reading {}", path.display()))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, self.to_json() + "\n").with_context(|| format!("writing {}", path.display()))
    }
}
