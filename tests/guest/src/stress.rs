//! The cross-call stress and the hotplug torture (`diag::torture`) as
//! in-guest tests, which `cargo xtask torture` runs for as long as asked.
//! Knobs (boot parameters): `stress.ms`, `stress.weights` (six numbers:
//! single, nowait, async, many, all, many-nowait), `torture.hotplug_ms`
//! (interval between hotplug operations), `torture.faults=1` (inject
//! faults, `crate::faults`, with the short timeouts the fault test sets).

use alloc::format;

use crate::ktest::{Failure, Outcome, Test};
use crate::{kassert, ktest};
use diag::torture::{self, Config, Weights};
use kernel::println_raw;
use kernel::smp;

pub const TESTS: &[Test] = &[
    ktest!(cross_call_stress).min_cpus(2).params("stress.ms=3000").timeout_ms(120_000),
    ktest!(hotplug_torture).min_cpus(3).params("stress.ms=5000;torture.hotplug_ms=20").timeout_ms(180_000),
    ktest!(hotplug_torture_with_faults).min_cpus(3).params(crate::faults::PARAMS).timeout_ms(180_000),
];

/// Runs the stress with the boot parameters' knobs, prints the progress and
/// the books in the lines `cargo xtask torture` shows, and judges.
fn run(hotplug_ms: Option<u64>) -> Outcome {
    let config = Config {
        duration_ms: kernel::params::get_u64("stress.ms", 2_000),
        hotplug_ms,
        weights: kernel::params::get("stress.weights").map(Weights::parse).unwrap_or_default(),
    };
    let mut injector = crate::faults::Injector::new();
    let faults_on = kernel::params::get_bool("torture.faults", false);
    let faults: Option<&mut dyn torture::Faults> = if faults_on { Some(&mut injector) } else { None };
    let report = torture::run(
        &config,
        &mut |p| {
            println_raw!("stress: {} ms left, {} calls so far, {} CPUs online", p.ms_left, p.calls, p.online);
        },
        faults,
    )
    .map_err(|e| Failure(format!("the stress did not start: {e:?}")))?;
    for line in report.lines() {
        println_raw!("{line}");
    }
    let mut verdict = report.verdict().map_err(Failure);
    if faults_on {
        for kind in crate::faults::kinds() {
            let n = report.faults.iter().find(|f| f.name == kind);
            if !n.is_some_and(|n| n.injected > 0 && n.op_failed == n.injected) && verdict.is_ok() {
                verdict = Err(Failure(format!(
                    "fault \"{kind}\": {n:?} (each kind must be injected and fail its operation)"
                )));
            }
        }
    }
    kassert!(smp::ONLINE.snapshot() == smp::PRESENT.snapshot(), "not every CPU came back online");
    println_raw!("stress: verdict {}", if verdict.is_ok() { "SUCCESS" } else { "FAILURE" });
    verdict
}

fn cross_call_stress() -> Outcome {
    run(None)
}

fn hotplug_torture() -> Outcome {
    run(Some(kernel::params::get_u64("torture.hotplug_ms", 20)))
}

/// The same with faults injected into the hotplug operations: it must end
/// as cleanly (every call once, nothing leaked, every CPU back), and every
/// kind of fault must have been injected and made its operation fail.
fn hotplug_torture_with_faults() -> Outcome {
    run(Some(kernel::params::get_u64("torture.hotplug_ms", 20)))
}
