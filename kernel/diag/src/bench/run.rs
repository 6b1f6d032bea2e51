//! Measurements for `cargo xtask bench`: the demonstration kernel (the one
//! that ships, no test hooks) runs them with `bench.run=1`. Absolute times
//! under TCG are emulated, so every figure comes with the floor measured in
//! the same boot (a shared-memory ping-pong between two CPUs). Each result
//! is one `protocol::bench` line.
//!
//! A call's cost depends on what its target is doing, so calls are measured
//! against each target state a peer's figure may have, in one boot: *busy*
//! (running code with interrupts on, `*_busy`), *polling* (waiting for calls
//! the way `idle=poll` does, `*_poll`) and *idle*, in the boot's idle mode
//! (`halt` by default, named in the `@@BENCH-INFO` line). `ipi_roundtrip` to
//! an idle target is the host's own floor for waking it; `ipi_self` is the
//! interrupt controller's cost with no second vCPU involved.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{ns, sample};
use crate::bench;
use kernel::smp::{self, bringup, calls, hotplug, ping, stop_machine, worker};
use kernel::time::{self, Deadline};
use kernel::{CpuId, CpuSet, percpu, power, println_raw};
use protocol::bench::{Line, Unit, names};
use smp_core::callq::{AsyncFn, CallRecord};

fn report(name: &str, samples: Vec<u64>) {
    let (median, p99, samples) = bench::summarize(samples).map_or((0, 0, 0), |s| (s.median, s.p99, s.samples));
    println_raw!("{}", Line::Figure { name, unit: Unit::Ns, median, p99, samples: samples as u64 });
}

fn report_rate(name: &str, per_s: u64) {
    println_raw!("{}", Line::Figure { name, unit: Unit::PerS, median: per_s, p99: per_s, samples: 1 });
}

static BUSY_STOP: AtomicBool = AtomicBool::new(false);

/// A busy target: runs code (a job runs with interrupts on) until told to stop.
fn busy(_: usize) {
    while !BUSY_STOP.load(Ordering::Relaxed) {
        core::hint::spin_loop();
    }
}

/// A polling target: waits for calls as an idle CPU in `idle=poll` does.
fn polling(_: usize) {
    smp::idle::poll_until(&|| BUSY_STOP.load(Ordering::Relaxed));
}

/// Runs `measure` while every CPU of `cpus` is busy.
fn while_busy(cpus: &[CpuId], measure: impl FnOnce()) {
    while_running(busy, cpus, measure);
}

/// Runs `measure` while every CPU of `cpus` runs `job` (until `BUSY_STOP`).
fn while_running(job: fn(usize), cpus: &[CpuId], measure: impl FnOnce()) {
    BUSY_STOP.store(false, Ordering::SeqCst);
    let started: Vec<CpuId> = cpus.iter().copied().filter(|&c| worker::spawn(c, job, 0).is_ok()).collect();
    measure();
    BUSY_STOP.store(true, Ordering::SeqCst);
    time::wait_until(2_000_000, || started.iter().all(|c| worker::is_free(*c)));
}

fn floor(partner: CpuId) {
    report(names::FLOOR, bench::pingpong(partner, 2000));
}

static ASYNC_DONE: AtomicU64 = AtomicU64::new(0);
static ASYNC_RECORDS: [CallRecord<'static>; 8] = [const {
    CallRecord::new_async(
        AsyncFn::Arg(
            |_| {
                ASYNC_DONE.fetch_add(1, Ordering::Relaxed);
            },
            0,
        ),
        "bench-async",
    )
}; 8];
static FLOOD_STOP: AtomicBool = AtomicBool::new(false);
static FLOOD_SENT: AtomicU64 = AtomicU64::new(0);

/// Sends non-waiting calls to the next online CPU until told to stop.
fn flood(_: usize) {
    let me = percpu::current_cpu();
    let online: Vec<CpuId> = smp::ONLINE.snapshot().iter().collect();
    let pos = online.iter().position(|c| *c == me).unwrap_or(0);
    let target = online[(pos + 1) % online.len()];
    while !FLOOD_STOP.load(Ordering::Relaxed) {
        if calls::call_single_nowait(target, |_| {}, 0).is_ok() {
            FLOOD_SENT.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn throughput(partner: CpuId) {
    // One sender, async records round-robin.
    ASYNC_DONE.store(0, Ordering::SeqCst);
    let window = Deadline::after_ms(500);
    let mut sent = 0u64;
    let mut i = 0;
    while !window.expired() {
        if calls::call_single_async(partner, &ASYNC_RECORDS[i % 8]).is_ok() {
            sent += 1;
        }
        i += 1;
    }
    let us = window.elapsed_us().max(1);
    time::wait_until(1_000_000, || ASYNC_DONE.load(Ordering::SeqCst) >= sent);
    report_rate(names::ASYNC_ONE_SENDER, sent * 1_000_000 / us);
    // Every CPU sending to its neighbour.
    FLOOD_STOP.store(false, Ordering::SeqCst);
    FLOOD_SENT.store(0, Ordering::SeqCst);
    let others: Vec<CpuId> = smp::ONLINE.snapshot().iter().filter(|c| *c != CpuId::BOOT).collect();
    for &c in &others {
        let _ = worker::spawn(c, flood, 0);
    }
    let window = Deadline::after_ms(500);
    while !window.expired() {
        core::hint::spin_loop();
    }
    FLOOD_STOP.store(true, Ordering::SeqCst);
    let us = window.elapsed_us().max(1);
    let total = FLOOD_SENT.load(Ordering::SeqCst);
    time::wait_until(2_000_000, || others.iter().all(|c| worker::is_free(*c)));
    report_rate(names::ASYNC_ALL_SENDERS, total * 1_000_000 / us);
}

fn hotplug_cycles(victim: CpuId, cycles: usize) {
    let (mut down, mut up, mut cycle) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..cycles {
        let t0 = time::rdtsc();
        if hotplug::cpu_down(victim).is_err() {
            break;
        }
        let t1 = time::rdtsc();
        if hotplug::cpu_up(victim).is_err() {
            break;
        }
        let t2 = time::rdtsc();
        down.push(ns(t1 - t0));
        up.push(ns(t2 - t1));
        cycle.push(ns(t2 - t0));
    }
    report(names::HOTPLUG_DOWN, down);
    report(names::HOTPLUG_UP, up);
    report(names::HOTPLUG_CYCLE, cycle);
}

fn bring_up(aps: &CpuSet, kinds: &[(&str, bool)]) {
    for &(name, parallel) in kinds {
        for cpu in aps.iter() {
            let _ = hotplug::cpu_down(cpu);
        }
        let opts = bringup::Options { parallel, ..bringup::Options::from_params() };
        let t = time::rdtsc();
        let r = bringup::start(aps, opts, None);
        let elapsed = ns(time::rdtsc() - t);
        hotplug::finish_boot_bringup(&r.started);
        report(name, if r.errors.is_empty() { alloc::vec![elapsed] } else { Vec::new() });
    }
}

fn call_all_wait(samples: usize) {
    report(
        names::CALL_ALL_WAIT,
        sample(samples, || {
            calls::call_all("bench-all", false, &|| {});
        }),
    );
}

fn stop_machine_all(me: CpuId, samples: usize) {
    report(
        names::STOP_MACHINE_ALL,
        sample(samples, || {
            let _ = stop_machine::stop_machine(&CpuSet::single(me), &|_| {});
        }),
    );
}

/// With `bench.scale=1`: only what must grow sub-linearly with the CPU
/// count, with few samples, so that a boot of 1024 CPUs finishes in
/// minutes: a call to every CPU, a stop-machine of every CPU, a hotplug
/// cycle and a parallel bring-up of every AP.
fn scale(me: CpuId, online: &CpuSet) -> ! {
    call_all_wait(20);
    stop_machine_all(me, 10);
    let aps = online.difference(&CpuSet::single(me));
    if let Some(victim) = aps.iter().last() {
        hotplug_cycles(victim, 3);
    }
    bring_up(&aps, &[(names::BRINGUP_PARALLEL, true)]);
    println_raw!("{}", Line::<&str>::Done);
    power::exit(power::ExitCode::Success)
}

/// Runs every measurement and ends the run.
pub fn run() -> ! {
    let me = percpu::current_cpu();
    let online = smp::ONLINE.snapshot();
    let info =
        Line::Info { cpus: online.len() as u32, tsc_mhz: time::tsc_per_us(), idle: Some(smp::idle::mode().name()) };
    println_raw!("{info}");
    let Some(partner) = online.iter().find(|c| *c != me) else {
        println_raw!("{}", Line::GuestError("needs at least two CPUs"));
        power::exit(power::ExitCode::Failure);
    };
    floor(partner);
    if kernel::params::get_bool("bench.scale", false) {
        scale(me, &online);
    }
    report(
        names::IPI_ROUNDTRIP,
        sample(1000, || {
            ping::ping(partner, 1_000_000);
        }),
    );
    report(
        names::IPI_SELF,
        sample(1000, || {
            ping::ping(me, 1_000_000);
        }),
    );
    report(
        names::CALL_SINGLE_SYNC,
        sample(1000, || {
            let _ = calls::call_single(partner, "bench-sync", &|| {});
        }),
    );
    while_busy(&[partner], || {
        report(
            names::CALL_SINGLE_BUSY,
            sample(1000, || {
                let _ = calls::call_single(partner, "bench-sync-busy", &|| {});
            }),
        );
    });
    while_running(polling, &[partner], || {
        report(
            names::CALL_SINGLE_POLL,
            sample(1000, || {
                let _ = calls::call_single(partner, "bench-sync-poll", &|| {});
            }),
        );
    });
    throughput(partner);
    call_all_wait(200);
    let others: Vec<CpuId> = online.iter().filter(|c| *c != me).collect();
    while_busy(&others, || {
        report(
            names::CALL_ALL_BUSY,
            sample(200, || {
                calls::call_all("bench-all-busy", false, &|| {});
            }),
        );
    });
    stop_machine_all(me, 50);
    let victim = online.iter().filter(|c| *c != me).last().unwrap_or(partner);
    hotplug_cycles(victim, 20);
    let aps = online.difference(&CpuSet::single(me));
    bring_up(&aps, &[(names::BRINGUP_ONE_BY_ONE, false), (names::BRINGUP_PARALLEL, true)]);
    println_raw!("{}", Line::<&str>::Done);
    power::exit(power::ExitCode::Success)
}
