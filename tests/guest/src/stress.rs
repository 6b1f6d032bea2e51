//! The cross-call stress and the hotplug torture (`kernel::torture`) as
//! in-guest tests, which `cargo xtask torture` runs for as long as asked.
//! Knobs (boot parameters): `stress.ms`, `stress.weights` (six numbers:
//! single, nowait, async, many, all, many-nowait), `torture.hotplug_ms`
//! (interval between hotplug operations).

use alloc::format;

use kernel::ktest::{Failure, Outcome, Test};
use kernel::smp;
use kernel::torture::{self, Config, Weights};
use kernel::{kassert, ktest, println_raw};

pub const TESTS: &[Test] = &[
    ktest!(cross_call_stress).min_cpus(2).params("stress.ms=3000").timeout_ms(120_000),
    ktest!(hotplug_torture).min_cpus(3).params("stress.ms=5000;torture.hotplug_ms=20").timeout_ms(180_000),
];

/// Runs the stress with the boot parameters' knobs, prints the progress and
/// the books in the lines `cargo xtask torture` shows, and judges.
fn run(hotplug_ms: Option<u64>) -> Outcome {
    let config = Config {
        duration_ms: kernel::params::get_u64("stress.ms", 2_000),
        hotplug_ms,
        weights: kernel::params::get("stress.weights").map(Weights::parse).unwrap_or_default(),
    };
    let report = torture::run(&config, &mut |p| {
        println_raw!("stress: {} ms left, {} calls so far, {} CPUs online", p.ms_left, p.calls, p.online);
    })
    .map_err(|e| Failure(format!("the stress did not start: {e:?}")))?;
    for line in report.lines() {
        println_raw!("{line}");
    }
    let verdict = report.verdict().map_err(Failure);
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
