//! The console's long-running commands: the hotplug torture and the
//! benchmarks, for a while each, on whatever CPUs are online.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::bench::{self, Summary};
use crate::torture::{self, Config, Weights};
use kernel::smp::{self, calls, ping};
use kernel::{percpu, println_raw, time};

/// `torture SECS` takes 1 to this many seconds: long enough to matter, and a
/// typo cannot take the machine away for a day.
const TORTURE_MAX_S: u64 = 600;
/// Interval between hotplug operations: the torture suite's default.
const TORTURE_HOTPLUG_MS: u64 = 20;

/// `torture SECS`: every online CPU but this one sends a random mix of
/// cross-calls while this one takes random CPUs down and brings them back,
/// for SECS seconds, with progress every second; then the books.
pub fn torture(arg: Option<&str>) -> Result<String, String> {
    let usage = || format!("torture SECS, with SECS from 1 to {TORTURE_MAX_S}");
    let secs: u64 = arg.ok_or_else(usage)?.parse().map_err(|_| usage())?;
    if !(1..=TORTURE_MAX_S).contains(&secs) {
        return Err(usage());
    }
    let config = Config { duration_ms: secs * 1000, hotplug_ms: Some(TORTURE_HOTPLUG_MS), weights: Weights::default() };
    println_raw!(
        "torture: {secs} s; {} CPUs send cross-calls, {} takes random CPUs down and up every {TORTURE_HOTPLUG_MS} ms",
        smp::online_count().saturating_sub(1),
        percpu::current_cpu()
    );
    let report = torture::run(
        &config,
        &mut |p| {
            println_raw!("torture: {} s left, {} calls, {} CPUs online", p.ms_left.div_ceil(1000), p.calls, p.online);
        },
        None,
    )
    .map_err(|e| format!("torture did not start: {e:?}"))?;
    let mut out = report.lines().join("\n");
    let _ = write!(
        out,
        "\ntorture: {} calls, {} hotplug operations, {} errors in {secs} s",
        report.calls(),
        report.hotplug_ops(),
        report.errors
    );
    match report.verdict() {
        Ok(()) => Ok(out + ": PASS"),
        Err(why) => Err(format!("{out}: FAIL, {why}")),
    }
}

/// Samples per figure: enough for a stable median and p99 within a second
/// or so under emulation.
const FLOOR_SAMPLES: usize = 2000;
const CALL_SAMPLES: usize = 1000;
/// How long one ping may wait for its answer.
const PING_TIMEOUT_US: u64 = 1_000_000;

/// `bench`: the floor (shared-memory ping-pong), a bare IPI round trip and
/// a synchronous cross-call between this CPU and another, median and p99.
pub fn bench() -> Result<String, String> {
    let me = percpu::current_cpu();
    let partner = smp::ONLINE.snapshot().iter().find(|c| *c != me).ok_or("bench needs a second online CPU")?;
    let floor = bench::summarize(bench::pingpong(partner, FLOOR_SAMPLES));
    let ipi = bench::summarize(bench::sample(CALL_SAMPLES, || {
        ping::ping(partner, PING_TIMEOUT_US);
    }));
    let call = bench::summarize(bench::sample(CALL_SAMPLES, || {
        let _ = calls::call_single(partner, "console-bench", &|| {});
    }));
    let floor_ns = floor.map(|f| f.median);
    let lines: Vec<String> =
        [("floor_pingpong", floor, None), ("ipi_roundtrip", ipi, floor_ns), ("call_single_sync", call, floor_ns)]
            .iter()
            .map(|(name, s, floor_ns)| figure(name, s, *floor_ns))
            .collect();
    Ok(format!(
        "bench: {me} <-> {partner}, TSC {} MHz (under an emulator, the emulator's time)\n{}",
        time::tsc_per_us(),
        lines.join("\n")
    ))
}

fn figure(name: &str, s: &Option<Summary>, floor: Option<u64>) -> String {
    let Some(s) = s else { return format!("bench: {name:16} not measured (the partner was busy or went away)") };
    let mut line = format!("bench: {name:16} median {} ns, p99 {} ns, {} samples", s.median, s.p99, s.samples);
    if let Some(f) = floor.filter(|f| *f > 0) {
        let _ = write!(line, ", {}x the floor", s.median / f);
    }
    line
}
