//! CPU hotplug and stop-machine (docs/rules.md, Hotplug and Stop-machine;
//! stories 1 and 2, docs/stories/1-dying-flush.md and
//! docs/stories/2-lost-ipis-during-hotplug.md). Every race is forced with a
//! test hook that acts or holds a CPU at the racy point.

use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::ktest::{Failure, Outcome, Test};
use crate::{kassert, kassert_eq, ktest};
use kernel::arch::x86_64::apic;
use kernel::arch::x86_64::vectors::IpiKind;
use kernel::hooks::{self, Mode, Point};
use kernel::percpu;
use kernel::smp::calls::{self, CallError};
use kernel::smp::hotplug::StepId;
use kernel::smp::hotplug::{self, CpuState, HotplugError};
use kernel::smp::{self, doorbell, ping, stop_machine};
use kernel::{CpuId, CpuSet};
use smp_core::AtomicCpuSet;
use smp_core::callq::{AsyncFn, CallRecord};

pub const TESTS: &[Test] = &[
    ktest!(down_and_up_cycles_keep_the_cpu_working).min_cpus(2).timeout_ms(60_000),
    ktest!(boot_cpu_and_self_cannot_go_down).min_cpus(2),
    ktest!(seed1_call_sent_after_target_disabled_irqs_runs_in_dying_flush).min_cpus(3),
    ktest!(seed1_with_the_target_polling_its_doorbell_skipped_the_flush_runs_it).min_cpus(3).params("idle=poll"),
    ktest!(seed2_calls_queued_at_down_do_not_strand_the_cpu).min_cpus(3).timeout_ms(60_000),
    ktest!(seed2_without_dying_flush_the_strand_is_detected)
        .min_cpus(3)
        .timeout_ms(60_000)
        .params("csd.timeout_ms=300"),
    ktest!(refined_warning_only_for_calls_queued_after_offline).min_cpus(3),
    ktest!(refined_warning_also_for_a_cpu_taken_down_while_polling).min_cpus(3).params("idle=poll"),
    ktest!(a_failing_step_rolls_back_in_both_directions).min_cpus(2).timeout_ms(120_000),
    ktest!(stop_machine_runs_with_every_other_cpu_irqs_off).min_cpus(2),
    ktest!(stop_machine_names_a_cpu_that_never_acks).min_cpus(3).params("stop_machine.timeout_ms=500"),
];

fn err(e: impl core::fmt::Debug) -> Failure {
    Failure(format!("{e:?}"))
}

fn last_online() -> Result<CpuId, Failure> {
    smp::ONLINE.snapshot().iter().filter(|c| *c != CpuId::BOOT).last().ok_or(Failure("no AP online".into()))
}

fn works(cpu: CpuId) -> Outcome {
    kassert!(ping::ping(cpu, 2_000_000), "{cpu} does not answer a ping");
    let ran_on = AtomicU32::new(u32::MAX);
    calls::call_single(cpu, "where", &|| ran_on.store(percpu::current_cpu().index() as u32, Ordering::SeqCst))
        .map_err(err)?;
    kassert_eq!(ran_on.load(Ordering::SeqCst), cpu.index() as u32);
    Ok(())
}

fn down_and_up_cycles_keep_the_cpu_working() -> Outcome {
    let x = last_online()?;
    let ups = hotplug::STATS.ups.load(Ordering::SeqCst);
    for round in 0..5 {
        hotplug::cpu_down(x).map_err(err)?;
        kassert_eq!(hotplug::state(x), CpuState::Offline);
        kassert!(!smp::ONLINE.contains(x) && !smp::ACTIVE.contains(x));
        kassert_eq!(calls::call_single(x, "offline", &|| {}), Err(CallError::Offline(x)));
        kassert_eq!(hotplug::cpu_down(x), Err(HotplugError::AlreadyOffline(x)));
        hotplug::cpu_up(x).map_err(|e| Failure(format!("round {round}: {e:?}")))?;
        kassert_eq!(hotplug::state(x), CpuState::Online);
        kassert!(calls::queue(x).is_empty());
        works(x)?;
    }
    kassert_eq!(hotplug::STATS.ups.load(Ordering::SeqCst) - ups, 5);
    Ok(())
}

fn boot_cpu_and_self_cannot_go_down() -> Outcome {
    kassert_eq!(hotplug::cpu_down(CpuId::BOOT), Err(HotplugError::BootCpu));
    kassert_eq!(hotplug::last_error(), Some(HotplugError::BootCpu));
    kassert!(smp::ONLINE.contains(CpuId::BOOT));
    // From another CPU, that CPU cannot take itself down either.
    let x = last_online()?;
    let result = spin::Mutex::new(None);
    calls::call_single(x, "self-down", &|| *result.lock() = Some(hotplug::cpu_down(percpu::current_cpu())))
        .map_err(err)?;
    kassert_eq!(*result.lock(), Some(Err(HotplugError::SelfDown(x))));
    works(x)
}

/// Story 1, forced: CPU W is held at the entry of DISABLE_IRQ with interrupts
/// still on, like a CPU handling a device interrupt late, while the outgoing
/// CPU X has already disabled its interrupts; W's "interrupt handler" then
/// sends X an async call. X must run it in its dying flush (already out of
/// `online`), and the doorbell that reaches X late must stay silent.
static SEED_X: AtomicU32 = AtomicU32::new(0);
static SEED_RAN_ON: AtomicU32 = AtomicU32::new(u32::MAX);
static SEED_RAN_ONLINE: AtomicBool = AtomicBool::new(true);
static SEED_SENT: AtomicU32 = AtomicU32::new(0);
static SEED_RUNS: AtomicU32 = AtomicU32::new(0);

fn seed_call(_: usize) {
    let me = percpu::current_cpu();
    SEED_RAN_ON.store(me.index() as u32, Ordering::SeqCst);
    SEED_RAN_ONLINE.store(smp::ONLINE.contains(me), Ordering::SeqCst);
    SEED_RUNS.fetch_add(1, Ordering::SeqCst);
}

static SEED_RECORDS: [CallRecord<'static>; 3] = [
    CallRecord::new_async(AsyncFn::Arg(seed_call, 0), "seed-call-0"),
    CallRecord::new_async(AsyncFn::Arg(seed_call, 1), "seed-call-1"),
    CallRecord::new_async(AsyncFn::Arg(seed_call, 2), "seed-call-2"),
];

/// Runs on W at the DISABLE_IRQ hook: wait until X has its interrupts off
/// and acked, then send it the calls (X is still online).
fn late_sender() {
    let x = CpuId::new(SEED_X.load(Ordering::SeqCst) as usize).expect("cpu");
    let x_ready = kernel::time::wait_until(5_000_000, || stop_machine::has_acked_disable_irq(x));
    if !x_ready {
        return;
    }
    for rec in &SEED_RECORDS {
        if calls::call_single_async(x, rec).is_ok() {
            SEED_SENT.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn force_seed1_down(x: CpuId, w: CpuId) -> Outcome {
    SEED_X.store(x.index() as u32, Ordering::SeqCst);
    SEED_RAN_ON.store(u32::MAX, Ordering::SeqCst);
    SEED_RAN_ONLINE.store(true, Ordering::SeqCst);
    SEED_SENT.store(0, Ordering::SeqCst);
    SEED_RUNS.store(0, Ordering::SeqCst);
    hooks::arm(hooks::points::STOP_MACHINE_DISABLE_IRQ, Some(w), Mode::Call(late_sender));
    let r = hotplug::cpu_down(x);
    hooks::release(hooks::points::STOP_MACHINE_DISABLE_IRQ);
    r.map_err(err)?;
    kassert_eq!(SEED_SENT.load(Ordering::SeqCst), 3);
    Ok(())
}

fn seed1_call_sent_after_target_disabled_irqs_runs_in_dying_flush() -> Outcome {
    let x = last_online()?;
    let w = smp::ONLINE.snapshot().iter().find(|c| *c != CpuId::BOOT && *c != x).ok_or(Failure("no W".into()))?;
    let warnings = calls::counters(x).offline_warnings.load(Ordering::SeqCst);
    force_seed1_down(x, w)?;
    kassert!(hotplug::wait_parked(x, 5_000));
    kassert_eq!(SEED_RUNS.load(Ordering::SeqCst), 3);
    kassert_eq!(SEED_RAN_ON.load(Ordering::SeqCst), x.index() as u32);
    kassert!(!SEED_RAN_ONLINE.load(Ordering::SeqCst), "the calls ran before {x} left online, not in its dying flush");
    kassert_eq!(calls::counters(x).offline_warnings.load(Ordering::SeqCst), warnings);
    kassert!(calls::queue(x).is_empty());
    hotplug::cpu_up(x).map_err(err)?;
    works(x)
}

/// Story 1 with `idle=poll`: X was polling when the stop-machine took it,
/// so its flag is still up when W sends, and W skips the doorbell (the
/// polling skip). The dying flush, X's last look, must run the calls.
fn seed1_with_the_target_polling_its_doorbell_skipped_the_flush_runs_it() -> Outcome {
    let x = last_online()?;
    let w = smp::ONLINE.snapshot().iter().find(|c| *c != CpuId::BOOT && *c != x).ok_or(Failure("no W".into()))?;
    kassert!(kernel::time::wait_until(5_000_000, || doorbell::is_polling(x)), "{x} never started polling");
    let polled = calls::counters(w).doorbells_polled.load(Ordering::SeqCst);
    seed1_call_sent_after_target_disabled_irqs_runs_in_dying_flush()?;
    kassert!(
        calls::counters(w).doorbells_polled.load(Ordering::SeqCst) > polled,
        "W rang X's doorbell: the test did not exercise the polling skip"
    );
    Ok(())
}

/// Story 2: calls queued as X goes down; after X is back, waiting calls to it
/// must complete (no stranded "IPI owed" state).
fn seed2_calls_queued_at_down_do_not_strand_the_cpu() -> Outcome {
    let x = last_online()?;
    let w = smp::ONLINE.snapshot().iter().find(|c| *c != CpuId::BOOT && *c != x).ok_or(Failure("no W".into()))?;
    let reports = calls::counters(percpu::current_cpu()).watchdog_reports.load(Ordering::SeqCst);
    force_seed1_down(x, w)?;
    hotplug::cpu_up(x).map_err(err)?;
    for _ in 0..20 {
        works(x)?;
    }
    kassert_eq!(calls::counters(percpu::current_cpu()).watchdog_reports.load(Ordering::SeqCst), reports);
    Ok(())
}

/// The same with the dying flush switched off. If the late doorbell reaches
/// X in its offline window, the refined warning names the stranded calls.
/// If it does not (window skipped, as for the CPU of story 2), the calls stay
/// queued: bring-up refuses to set X online with a non-empty queue (the step
/// is named), and with that check skipped too (the kernel of story 2), a
/// waiting call finds the doorbell "owed" and would hang: the watchdog
/// reports it and rings again, and everything completes.
fn seed2_without_dying_flush_the_strand_is_detected() -> Outcome {
    let x = last_online()?;
    let w = smp::ONLINE.snapshot().iter().find(|c| *c != CpuId::BOOT && *c != x).ok_or(Failure("no W".into()))?;
    let warnings = calls::counters(x).offline_warnings.load(Ordering::SeqCst);
    hooks::arm(hooks::points::CALLS_SKIP_DYING_FLUSH, Some(x), Mode::Fail);
    force_seed1_down(x, w)?;
    hooks::release(hooks::points::CALLS_SKIP_DYING_FLUSH);
    kassert!(hotplug::wait_parked(x, 5_000));
    kassert_eq!(calls::counters(x).offline_warnings.load(Ordering::SeqCst), warnings + 1);
    kassert_eq!(SEED_RUNS.load(Ordering::SeqCst), 3);
    hotplug::cpu_up(x).map_err(err)?;

    hooks::arm(hooks::points::CALLS_SKIP_DYING_FLUSH, Some(x), Mode::Fail);
    hooks::arm(hooks::points::HOTPLUG_SKIP_OFFLINE_WINDOW, Some(x), Mode::Fail);
    force_seed1_down(x, w)?;
    hooks::release(hooks::points::CALLS_SKIP_DYING_FLUSH);
    hooks::release(hooks::points::HOTPLUG_SKIP_OFFLINE_WINDOW);
    kassert!(hotplug::wait_parked(x, 5_000));
    kassert_eq!(SEED_RUNS.load(Ordering::SeqCst), 0);
    kassert!(!calls::queue(x).is_empty(), "nothing stranded: the flush ran anyway");
    let up = hotplug::cpu_up(x);
    kassert!(
        matches!(up, Err(HotplugError::StepFailed { step: StepId::CpuKick, why: "ap.call-queue", .. })),
        "bring-up accepted a stranded queue: {up:?}"
    );
    hooks::arm(hooks::points::CALLS_SKIP_QUEUE_CHECK, Some(x), Mode::Fail);
    let up = hotplug::cpu_up(x);
    hooks::release(hooks::points::CALLS_SKIP_QUEUE_CHECK);
    up.map_err(err)?;
    let me = percpu::current_cpu();
    let reports = calls::counters(me).watchdog_reports.load(Ordering::SeqCst);
    let skipped = calls::counters(me).doorbells_skipped.load(Ordering::SeqCst);
    calls::call_single(x, "after-strand", &|| {}).map_err(err)?;
    kassert!(
        calls::counters(me).doorbells_skipped.load(Ordering::SeqCst) > skipped,
        "the stranded queue did not swallow the doorbell"
    );
    kassert!(calls::counters(me).watchdog_reports.load(Ordering::SeqCst) > reports, "the strand was not reported");
    kassert_eq!(SEED_RUNS.load(Ordering::SeqCst), 3);
    works(x)
}

static LATE_RUNS: AtomicU64 = AtomicU64::new(0);
static LATE_RECORD: CallRecord<'static> = CallRecord::new_async(
    AsyncFn::Arg(
        |_| {
            LATE_RUNS.fetch_add(1, Ordering::SeqCst);
        },
        0,
    ),
    "queued-after-offline",
);
static BARE_DOORBELL_WARNINGS: AtomicU64 = AtomicU64::new(u64::MAX);
static PROBE_STARTED: AtomicBool = AtomicBool::new(false);
static PROBE_DONE: AtomicBool = AtomicBool::new(false);

/// Runs on a third CPU while X is taken down: once X sits in its offline
/// window (out of `online`, interrupts on), it sends X a bare doorbell with
/// nothing queued, then plays a buggy sender that skips the online check.
fn offline_window_probe(x: usize) {
    let x = CpuId::new(x).expect("cpu");
    // A call handler runs with interrupts off; this one waits through a
    // stop-machine, so it must let that machine's IPI in.
    x86_64::instructions::interrupts::enable();
    PROBE_STARTED.store(true, Ordering::SeqCst);
    let reached = kernel::time::wait_until(5_000_000, || hooks::reached(hooks::points::HOTPLUG_OFFLINE_WINDOW) > 0);
    if let (true, Some(x_apic)) = (reached, kernel::arch::x86_64::topology::apic_id(x)) {
        apic::send_ipi(IpiKind::CallFunction, x_apic);
        kernel::time::delay_us(50_000);
        BARE_DOORBELL_WARNINGS.store(calls::counters(x).offline_warnings.load(Ordering::SeqCst), Ordering::SeqCst);
        hooks::arm(hooks::points::CALLS_SKIP_ONLINE_CHECK, None, Mode::FailOnce);
        let _ = calls::call_single_async(x, &LATE_RECORD);
        kernel::time::delay_us(50_000);
    }
    hooks::release(hooks::points::HOTPLUG_OFFLINE_WINDOW);
    PROBE_DONE.store(true, Ordering::SeqCst);
    x86_64::instructions::interrupts::disable();
}

/// X is held after going offline, interrupts on. A late doorbell with an
/// empty queue must not warn; a call queued by a sender that skipped the
/// online check must give exactly one warning (and still run).
fn refined_warning_only_for_calls_queued_after_offline() -> Outcome {
    let x = last_online()?;
    let prober =
        smp::ONLINE.snapshot().iter().find(|c| *c != CpuId::BOOT && *c != x).ok_or(Failure("no third CPU".into()))?;
    let before = calls::counters(x).offline_warnings.load(Ordering::SeqCst);
    LATE_RUNS.store(0, Ordering::SeqCst);
    BARE_DOORBELL_WARNINGS.store(u64::MAX, Ordering::SeqCst);
    PROBE_STARTED.store(false, Ordering::SeqCst);
    PROBE_DONE.store(false, Ordering::SeqCst);
    hooks::arm(hooks::points::HOTPLUG_OFFLINE_WINDOW, Some(x), Mode::Pause);
    calls::call_single_nowait(prober, offline_window_probe, x.index()).map_err(err)?;
    // The probe must be waiting before stop-machine starts: the prober
    // takes the stop-machine IPI first (a higher priority class), and a
    // probe run inside it would hold stop-machine up until it gave up.
    let started = kernel::time::wait_until(5_000_000, || PROBE_STARTED.load(Ordering::SeqCst));
    kassert!(started, "the probe never started on {prober}");
    let down = hotplug::cpu_down(x);
    // X parks after stop-machine has let everyone go, so `cpu_down` may
    // return before X reaches the window: releasing it now would let X pass
    // unheld. The probe releases it when done; this release only covers a
    // probe that gave up.
    let probed = kernel::time::wait_until(10_000_000, || PROBE_DONE.load(Ordering::SeqCst));
    hooks::release(hooks::points::HOTPLUG_OFFLINE_WINDOW);
    down.map_err(err)?;
    kassert!(probed, "the probe on {prober} never finished");
    kassert!(hotplug::wait_parked(x, 5_000));
    kassert_eq!(BARE_DOORBELL_WARNINGS.load(Ordering::SeqCst), before);
    kassert_eq!(calls::counters(x).offline_warnings.load(Ordering::SeqCst), before + 1);
    kassert_eq!(LATE_RUNS.load(Ordering::SeqCst), 1);
    hotplug::cpu_up(x).map_err(err)?;
    works(x)
}

/// The same with `idle=poll`: X is taken down while polling, from inside
/// its poll loop, and never returns there. Its polling flag must not
/// outlive it, or the buggy sender in X's offline window would skip the
/// doorbell and the refined warning would never see its call.
fn refined_warning_also_for_a_cpu_taken_down_while_polling() -> Outcome {
    let x = last_online()?;
    kassert!(kernel::time::wait_until(5_000_000, || doorbell::is_polling(x)), "{x} never started polling");
    refined_warning_only_for_calls_queued_after_offline()?;
    kassert!(kernel::time::wait_until(5_000_000, || doorbell::is_polling(x)), "{x} does not poll after coming back");
    Ok(())
}

/// A failure injected at every step, going up and going down: the CPU ends
/// where it was, and a later hotplug of it works.
fn a_failing_step_rolls_back_in_both_directions() -> Outcome {
    let x = last_online()?;
    let names: Vec<(Point, Point, bool)> = hotplug::STEPS
        .iter()
        .map(|s| (s.id.up_hook(), s.id.down_hook(), s.runs == hotplug::Runs::Controller))
        .collect();
    for &(name, down_hook, controller) in &names {
        // Going down: only controller teardowns may fail.
        if controller {
            hooks::arm(down_hook, Some(x), Mode::FailOnce);
            let r = hotplug::cpu_down(x);
            hooks::release(down_hook);
            kassert!(
                matches!(r, Err(HotplugError::StepFailed { going_up: false, .. })),
                "down with {down_hook} failing: {r:?}"
            );
            kassert_eq!(hotplug::state(x), CpuState::Online);
            works(x)?;
        }
        // Going up: every step.
        hotplug::cpu_down(x).map_err(|e| Failure(format!("down before injecting {name}: {e:?}")))?;
        hooks::arm(name, Some(x), Mode::FailOnce);
        let r = hotplug::cpu_up(x);
        hooks::release(name);
        kassert!(matches!(r, Err(HotplugError::StepFailed { going_up: true, .. })), "up with {name} failing: {r:?}");
        kassert_eq!(hotplug::state(x), CpuState::Offline);
        kassert!(!smp::ACTIVE.contains(x));
        hotplug::cpu_up(x).map_err(|e| Failure(format!("up after {name} failed: {e:?}")))?;
        works(x)?;
    }
    Ok(())
}

fn stop_machine_runs_with_every_other_cpu_irqs_off() -> Outcome {
    let x = last_online()?;
    let ran_on = AtomicCpuSet::new();
    let irq_on_in_f = AtomicBool::new(true);
    stop_machine::stop_machine(&CpuSet::single(x), &|cpu| {
        ran_on.insert(cpu);
        irq_on_in_f.store(x86_64::instructions::interrupts::are_enabled(), Ordering::SeqCst);
    })
    .map_err(err)?;
    kassert_eq!(ran_on.snapshot(), CpuSet::single(x));
    kassert!(!irq_on_in_f.load(Ordering::SeqCst));
    for cpu in smp::ONLINE.snapshot().iter() {
        kassert!(stop_machine::irqs_were_off_in_run(cpu), "{cpu} had interrupts on in RUN");
    }
    kassert!(x86_64::instructions::interrupts::are_enabled(), "interrupts not restored at EXIT");
    Ok(())
}

static HOLD: AtomicBool = AtomicBool::new(false);
static HOLDING: AtomicBool = AtomicBool::new(false);

fn hold_here(_: usize) {
    HOLDING.store(true, Ordering::SeqCst);
    let d = kernel::time::Deadline::after_ms(10_000);
    while HOLD.load(Ordering::SeqCst) && !d.expired() {
        core::hint::spin_loop();
    }
}

fn stop_machine_names_a_cpu_that_never_acks() -> Outcome {
    let x = last_online()?;
    HOLD.store(true, Ordering::SeqCst);
    calls::call_single_nowait(x, hold_here, 0).map_err(err)?;
    kassert!(kernel::time::wait_until(5_000_000, || HOLDING.load(Ordering::SeqCst)), "{x} never started spinning");
    let ran = AtomicBool::new(false);
    let r = stop_machine::stop_machine(&CpuSet::single(CpuId::BOOT), &|_| ran.store(true, Ordering::SeqCst));
    HOLD.store(false, Ordering::SeqCst);
    match r {
        Err(stop_machine::StopError::NotAcked { cpus, .. }) => kassert_eq!(cpus, CpuSet::single(x)),
        other => return Err(Failure(format!("expected NotAcked naming {x}, got {other:?}"))),
    }
    kassert!(!ran.load(Ordering::SeqCst), "the function ran although a CPU never stopped");
    kernel::time::delay_us(50_000);
    works(x)?;
    stop_machine::stop_machine(&CpuSet::single(CpuId::BOOT), &|_| ()).map_err(err)
}
