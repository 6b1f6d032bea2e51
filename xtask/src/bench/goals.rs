//! The performance goals (README, Performance), checked against what was
//! measured. Where their Linux figures come from, and how they compare with
//! Linux measured the same day under the same QEMU TCG on this kind of
//! machine: docs/platform.md, "Linux, for comparison".

use serde::{Deserialize, Serialize};

use crate::bench::results::{
    BRINGUP_PARALLEL, CALL_ALL_BUSY, CALL_ALL_WAIT, CALL_SINGLE_BUSY, CALL_SINGLE_SYNC, CpuResult, HOTPLUG_CYCLE,
    STOP_MACHINE_ALL,
};
use crate::bench::table::{fmt_ns, fmt_ratio};

/// Linux's synchronous cross-call (IPI and wait), ~11 µs.
pub const LINUX_SYNC_CALL_NS: f64 = 11_000.0;
/// Linux 6.12's synchronous call to a *busy* CPU (running code, interrupts
/// on), 2 vCPUs, on the same QEMU TCG: the same workload as `call_single_busy`.
pub const LINUX_BUSY_CALL_NS: f64 = 48_000.0;
/// Linux 6.12's call to 3 busy CPUs with wait, 4 vCPUs on 2 host cores: the
/// same workload as `call_all_busy` at 4 CPUs.
pub const LINUX_CALL_ALL_BUSY_4_NS: f64 = 1.43e6;
/// Linux taking one CPU offline and back online, ~125 ms.
pub const LINUX_HOTPLUG_CYCLE_NS: f64 = 125e6;
/// Linux bringing up its one AP at boot (`-smp 2`), ~140 ms.
pub const LINUX_BRINGUP_ONE_AP_NS: f64 = 140e6;

/// Whether a goal holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    #[serde(rename = "MET")]
    Met,
    #[serde(rename = "NOT MET")]
    NotMet,
    /// The run did not include what the goal needs (e.g. no `--smp 2`, or
    /// only one CPU count for a scaling goal), or the guest could not measure it.
    #[serde(rename = "NOT MEASURED")]
    NotMeasured,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Met => "MET",
            Status::NotMet => "NOT MET",
            Status::NotMeasured => "NOT MEASURED",
        }
    }

    fn of(met: bool) -> Status {
        if met { Status::Met } else { Status::NotMet }
    }
}

/// One goal, checked on one CPU count (or on the sweep).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoalResult {
    pub goal: String,
    /// The CPU count it was checked on; `None` for a goal about the sweep.
    pub cpus: Option<u32>,
    pub measured: String,
    pub target: String,
    pub status: Status,
}

/// The least-squares slope of log(value) against log(cpus): the exponent b
/// of value ∝ cpusᵇ. Sub-linear growth is b < 1, i.e. less than doubling
/// per doubling of the CPU count. `None` without two distinct CPU counts
/// or with a value that is not positive.
pub fn growth_exponent(points: &[(u32, f64)]) -> Option<f64> {
    if points.iter().any(|&(n, v)| n == 0 || v.is_nan() || v <= 0.0) {
        return None;
    }
    let xs: Vec<f64> = points.iter().map(|&(n, _)| f64::from(n).ln()).collect();
    let ys: Vec<f64> = points.iter().map(|&(_, v)| v.ln()).collect();
    let count = points.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / count, ys.iter().sum::<f64>() / count);
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    if sxx < 1e-12 {
        return None;
    }
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    Some(sxy / sxx)
}

/// The factor a figure grows by per doubling of the CPU count, over the sweep.
pub fn growth_per_doubling(points: &[(u32, f64)]) -> Option<f64> {
    growth_exponent(points).map(|b| 2f64.powf(b))
}

/// `name`'s median at each CPU count that measured it, ascending.
pub fn series(results: &[CpuResult], name: &str) -> Vec<(u32, f64)> {
    let mut points: Vec<(u32, f64)> = results.iter().filter_map(|r| Some((r.cpus, r.median(name)?))).collect();
    points.sort_by_key(|&(n, _)| n);
    points
}

/// Every goal against `results` (one entry per CPU count, any order).
pub fn evaluate(results: &[CpuResult]) -> Vec<GoalResult> {
    let mut out = Vec::new();
    let mut sorted: Vec<&CpuResult> = results.iter().collect();
    sorted.sort_by_key(|r| r.cpus);

    // A call to an idle CPU costs what waking it costs: each figure says
    // which idle mode it was measured with.
    let sync_target = LINUX_SYNC_CALL_NS / 3.0;
    for r in &sorted {
        out.push(with_idle(
            at_most(
                "synchronous call >= 3x faster than Linux (~11 µs)",
                r.cpus,
                r.median(CALL_SINGLE_SYNC),
                sync_target,
            ),
            r,
        ));
    }
    for r in &sorted {
        let ratio = r.figure(CALL_SINGLE_SYNC).filter(|f| f.measured()).and_then(|f| f.x_floor);
        out.push(with_idle(
            GoalResult {
                goal: "synchronous call within 3x of the ping-pong floor".into(),
                cpus: Some(r.cpus),
                measured: ratio.map_or_else(|| "-".into(), |x| format!("{}x floor", fmt_ratio(x))),
                target: "<= 3.0x floor".into(),
                status: ratio.map_or(Status::NotMeasured, |x| Status::of(x <= 3.0)),
            },
            r,
        ));
    }
    // Busy targets: the workload Linux's figures measure (docs/platform.md).
    for r in &sorted {
        out.push(at_most(
            "synchronous call to a busy CPU no slower than Linux's (48 µs)",
            r.cpus,
            r.median(CALL_SINGLE_BUSY),
            LINUX_BUSY_CALL_NS,
        ));
    }
    if let Some(r) = sorted.iter().find(|r| r.cpus == 4) {
        out.push(at_most(
            "call to 3 busy CPUs with wait <= 0.5x Linux's (1.43 ms), 4 CPUs",
            4,
            r.median(CALL_ALL_BUSY),
            LINUX_CALL_ALL_BUSY_4_NS / 2.0,
        ));
    }
    for r in &sorted {
        out.push(with_idle(
            at_most(
                "down+up hotplug cycle >= 100x faster than Linux (~125 ms)",
                r.cpus,
                r.median(HOTPLUG_CYCLE),
                LINUX_HOTPLUG_CYCLE_NS / 100.0,
            ),
            r,
        ));
    }
    // Linux's figure is for `-smp 2`: one AP. With one AP, parallel and
    // one-by-one bring-up do the same work; parallel is the boot default.
    let bringup_goal = "bring-up of one AP >= 10x faster than Linux (~140 ms)";
    match sorted.iter().find(|r| r.cpus == 2) {
        Some(r) => out.push(at_most(bringup_goal, 2, r.median(BRINGUP_PARALLEL), LINUX_BRINGUP_ONE_AP_NS / 10.0)),
        None => out.push(GoalResult {
            goal: bringup_goal.into(),
            cpus: Some(2),
            measured: "- (needs --smp 2 in the sweep)".into(),
            target: format!("<= {}", fmt_ns(LINUX_BRINGUP_ONE_AP_NS / 10.0)),
            status: Status::NotMeasured,
        }),
    }
    for (name, what) in [
        (BRINGUP_PARALLEL, "parallel bring-up"),
        (CALL_ALL_WAIT, "call to all CPUs (wait)"),
        (STOP_MACHINE_ALL, "stop-machine"),
    ] {
        out.push(sub_linear(&format!("{what} sub-linear in CPU count"), &series(results, name)));
    }
    out
}

/// Adds to a measured figure how `r`'s idle CPUs waited, e.g. `2.1 µs, idle=poll`.
fn with_idle(mut goal: GoalResult, r: &CpuResult) -> GoalResult {
    if goal.status != Status::NotMeasured {
        goal.measured = format!("{}, idle={}", goal.measured, r.idle_mode());
    }
    goal
}

/// Goal: `value` (ns) at most `target` (ns).
fn at_most(goal: &str, cpus: u32, value: Option<f64>, target: f64) -> GoalResult {
    GoalResult {
        goal: goal.into(),
        cpus: Some(cpus),
        measured: value.map_or_else(|| "-".into(), fmt_ns),
        target: format!("<= {}", fmt_ns(target)),
        status: value.map_or(Status::NotMeasured, |v| Status::of(v <= target)),
    }
}

fn sub_linear(goal: &str, points: &[(u32, f64)]) -> GoalResult {
    let growth = growth_per_doubling(points);
    let counts: Vec<String> = points.iter().map(|(n, _)| n.to_string()).collect();
    GoalResult {
        goal: goal.into(),
        cpus: None,
        measured: match growth {
            Some(g) => format!("{}x per doubling ({} CPUs)", fmt_ratio(g), counts.join("->")),
            None => "- (needs two CPU counts)".into(),
        },
        target: "< 2.0x per doubling".into(),
        status: growth.map_or(Status::NotMeasured, |g| Status::of(g < 2.0)),
    }
}
