//! Cross-calls (docs/rules.md, Cross-calls). Races are forced, not hoped for: a
//! target is *held* spinning inside a call (interrupts off, in its IPI
//! handler) while the test queues behind it.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::ktest::{Failure, Outcome, Test};
use crate::{kassert, kassert_eq, ktest};
use kernel::arch::alarm;
use kernel::hooks::{self, Mode, points};
use kernel::percpu;
use kernel::smp::calls::{self, CallError};
use kernel::smp::{self, bringup};
use kernel::{CpuId, CpuSet};
use smp_core::callq::{AsyncFn, CallRecord};
use spin::Mutex;

pub const TESTS: &[Test] = &[
    ktest!(call_single_runs_there_and_its_writes_come_back).min_cpus(2),
    ktest!(call_to_self_runs_locally_with_interrupts_off),
    ktest!(queued_calls_run_in_fifo_order_with_one_doorbell).min_cpus(2),
    ktest!(async_record_in_flight_reports_busy).min_cpus(2),
    ktest!(async_function_can_requeue_its_own_record).min_cpus(2),
    ktest!(call_to_an_offline_cpu_fails_and_runs_nothing).params("smp.boot_aps=0").min_cpus(3),
    ktest!(set_call_skips_offline_cpus_and_runs_once_each).params("smp.boot_aps=0").min_cpus(4),
    ktest!(call_all_reaches_every_online_cpu).min_cpus(2),
    ktest!(nowait_calls_all_run).min_cpus(2),
    ktest!(watchdog_reports_a_stuck_target_and_recovers).params("csd.timeout_ms=300").min_cpus(3).timeout_ms(60_000),
    ktest!(a_release_just_before_the_waiters_halt_wakes_it).params("csd.timeout_ms=30000").min_cpus(3),
    ktest!(a_halted_waiter_still_reports_a_target_that_never_answers)
        .params("csd.timeout_ms=300")
        .min_cpus(3)
        .timeout_ms(60_000),
];

fn other_cpu() -> Result<CpuId, Failure> {
    let me = percpu::current_cpu();
    smp::ONLINE.snapshot().iter().find(|c| *c != me).ok_or(Failure("no other online CPU".into()))
}

/// Holding a CPU: it spins in a call, interrupts off, until released.
static HOLD: AtomicBool = AtomicBool::new(false);
static HELD: AtomicU32 = AtomicU32::new(u32::MAX);

fn hold_here(_: usize) {
    HELD.store(percpu::current_cpu().index() as u32, Ordering::SeqCst);
    let limit = kernel::time::Deadline::after_ms(20_000);
    while HOLD.load(Ordering::SeqCst) && !limit.expired() {
        core::hint::spin_loop();
    }
    HELD.store(u32::MAX, Ordering::SeqCst);
}

/// Makes `cpu` spin in its call handler until [`release`].
fn hold(cpu: CpuId) -> Outcome {
    HOLD.store(true, Ordering::SeqCst);
    calls::call_single_nowait(cpu, hold_here, 0).map_err(|e| Failure(alloc::format!("hold {cpu}: {e:?}")))?;
    let held = kernel::time::wait_until(5_000_000, || HELD.load(Ordering::SeqCst) == cpu.index() as u32);
    kassert!(held, "{cpu} did not start spinning in its call handler");
    Ok(())
}

fn release() {
    HOLD.store(false, Ordering::SeqCst);
}

fn call_single_runs_there_and_its_writes_come_back() -> Outcome {
    let target = other_cpu()?;
    let input = 41u64;
    let ran_on = AtomicU32::new(u32::MAX);
    let output = AtomicU64::new(0);
    let mut plain = [0u64; 4];
    let plain_ptr = plain.as_mut_ptr() as usize;
    calls::call_single(target, "write-back", &|| {
        ran_on.store(percpu::current_cpu().index() as u32, Ordering::Relaxed);
        output.store(input + 1, Ordering::Relaxed);
        // A plain (non-atomic) write: the release/acquire of the call must
        // carry it back to the waiter.
        // SAFETY: the waiter does not touch `plain` until the call returns.
        unsafe { (plain_ptr as *mut u64).add(3).write(input * 2) };
    })
    .map_err(|e| Failure(alloc::format!("{e:?}")))?;
    kassert_eq!(ran_on.load(Ordering::Relaxed), target.index() as u32);
    kassert_eq!(output.load(Ordering::Relaxed), 42);
    kassert_eq!(plain[3], 82);
    Ok(())
}

fn call_to_self_runs_locally_with_interrupts_off() -> Outcome {
    let me = percpu::current_cpu();
    let seen = Mutex::new(None);
    calls::call_single(me, "self", &|| {
        *seen.lock() = Some((percpu::current_cpu(), x86_64::instructions::interrupts::are_enabled()));
    })
    .map_err(|e| Failure(alloc::format!("{e:?}")))?;
    kassert_eq!(*seen.lock(), Some((me, false)));
    Ok(())
}

static ORDER: Mutex<Vec<usize>> = Mutex::new(Vec::new());

fn record_order(id: usize) {
    ORDER.lock().push(id);
}

static FIFO_RECORDS: [CallRecord<'static>; 4] = [
    CallRecord::new_async(AsyncFn::Arg(record_order, 0), "fifo-0"),
    CallRecord::new_async(AsyncFn::Arg(record_order, 1), "fifo-1"),
    CallRecord::new_async(AsyncFn::Arg(record_order, 2), "fifo-2"),
    CallRecord::new_async(AsyncFn::Arg(record_order, 3), "fifo-3"),
];

/// While the target is held, four calls queue up: only the first rings the
/// doorbell (the queue was empty), the others find it owed and skip. When
/// the target is released they run in the order they were queued.
fn queued_calls_run_in_fifo_order_with_one_doorbell() -> Outcome {
    let target = other_cpu()?;
    let me = percpu::current_cpu();
    ORDER.lock().clear();
    hold(target)?;
    let sent_before = calls::counters(me).doorbells_sent.load(Ordering::SeqCst);
    let skipped_before = calls::counters(me).doorbells_skipped.load(Ordering::SeqCst);
    for rec in &FIFO_RECORDS {
        if let Err(e) = calls::call_single_async(target, rec) {
            release();
            return Err(Failure(alloc::format!("async call: {e:?}")));
        }
    }
    let sent = calls::counters(me).doorbells_sent.load(Ordering::SeqCst) - sent_before;
    let skipped = calls::counters(me).doorbells_skipped.load(Ordering::SeqCst) - skipped_before;
    release();
    kassert!(kernel::time::wait_until(5_000_000, || ORDER.lock().len() == 4), "calls did not run: {:?}", ORDER.lock());
    kassert_eq!(*ORDER.lock(), [0, 1, 2, 3]);
    kassert_eq!((sent, skipped), (1, 3));
    Ok(())
}

static BUSY_RUNS: AtomicU32 = AtomicU32::new(0);
static BUSY_RECORD: CallRecord<'static> = CallRecord::new_async(
    AsyncFn::Arg(
        |_| {
            BUSY_RUNS.fetch_add(1, Ordering::SeqCst);
        },
        0,
    ),
    "busy-probe",
);

fn async_record_in_flight_reports_busy() -> Outcome {
    let target = other_cpu()?;
    BUSY_RUNS.store(0, Ordering::SeqCst);
    hold(target)?;
    let first = calls::call_single_async(target, &BUSY_RECORD);
    let second =
        x86_64::instructions::interrupts::without_interrupts(|| calls::call_single_async(target, &BUSY_RECORD));
    release();
    kassert_eq!(first, Ok(()));
    kassert_eq!(second, Err(CallError::Busy));
    kassert!(kernel::time::wait_until(5_000_000, || BUSY_RUNS.load(Ordering::SeqCst) == 1));
    // Released now: the record can be used again.
    kassert!(kernel::time::wait_until(5_000_000, || calls::call_single_async(target, &BUSY_RECORD).is_ok()));
    kassert!(kernel::time::wait_until(5_000_000, || BUSY_RUNS.load(Ordering::SeqCst) == 2));
    Ok(())
}

static REQUEUES: AtomicU32 = AtomicU32::new(0);
const REQUEUE_TIMES: u32 = 10;

fn requeue_self(rec: &'static CallRecord<'static>) {
    if REQUEUES.fetch_add(1, Ordering::SeqCst) + 1 < REQUEUE_TIMES {
        // The record was released before this ran, so this must succeed.
        let r = calls::call_single_async(percpu::current_cpu(), rec);
        assert_eq!(r, Ok(()), "re-queuing a released async record failed");
    }
}

static REQUEUE_RECORD: CallRecord<'static> = CallRecord::new_async(AsyncFn::Record(requeue_self), "requeue-self");

fn async_function_can_requeue_its_own_record() -> Outcome {
    let target = other_cpu()?;
    REQUEUES.store(0, Ordering::SeqCst);
    calls::call_single_async(target, &REQUEUE_RECORD).map_err(|e| Failure(alloc::format!("{e:?}")))?;
    kassert!(kernel::time::wait_until(5_000_000, || REQUEUES.load(Ordering::SeqCst) == REQUEUE_TIMES));
    Ok(())
}

/// Brings up every present CPU but the last; returns that one (offline).
fn all_but_last_online() -> Result<CpuId, Failure> {
    let present = smp::PRESENT.snapshot();
    let last = present.iter().last().ok_or(Failure("no CPUs".into()))?;
    let report = bringup::start(&present.difference(&CpuSet::single(last)), bringup::Options::from_params(), None);
    kassert!(report.errors.is_empty(), "bring-up: {:?}", report.errors);
    kassert!(!smp::ONLINE.contains(last));
    Ok(last)
}

fn call_to_an_offline_cpu_fails_and_runs_nothing() -> Outcome {
    let offline = all_but_last_online()?;
    let ran = AtomicBool::new(false);
    let r = calls::call_single(offline, "must-not-run", &|| ran.store(true, Ordering::SeqCst));
    kassert_eq!(r, Err(CallError::Offline(offline)));
    kassert_eq!(
        calls::call_single_nowait(offline, |_| panic!("ran on an offline CPU"), 0),
        Err(CallError::Offline(offline))
    );
    kassert_eq!(calls::call_single_async(offline, &BUSY_RECORD), Err(CallError::Offline(offline)));
    kassert!(!ran.load(Ordering::SeqCst));
    kassert!(calls::queue(offline).is_empty(), "something was queued to the offline CPU");
    Ok(())
}

fn set_call_skips_offline_cpus_and_runs_once_each() -> Outcome {
    let offline = all_but_last_online()?;
    let counts: Vec<AtomicU32> = (0..smp_core::percpu::possible()).map(|_| AtomicU32::new(0)).collect();
    let all = smp::PRESENT.snapshot();
    let ran = calls::call_many(&all, "count", true, &|| {
        counts[percpu::current_cpu().index()].fetch_add(1, Ordering::SeqCst);
    });
    kassert_eq!(ran, smp::ONLINE.snapshot());
    kassert!(!ran.contains(offline));
    for cpu in all.iter() {
        let want = if cpu == offline { 0 } else { 1 };
        kassert_eq!(counts[cpu.index()].load(Ordering::SeqCst), want);
    }
    Ok(())
}

fn call_all_reaches_every_online_cpu() -> Outcome {
    let hits = AtomicUsize::new(0);
    let me = percpu::current_cpu();
    let without_self = calls::call_all("hit", false, &|| {
        hits.fetch_add(1, Ordering::SeqCst);
    });
    kassert!(!without_self.contains(me));
    kassert_eq!(hits.load(Ordering::SeqCst), smp::online_count() - 1);
    let with_self = calls::call_all("hit", true, &|| {
        hits.fetch_add(1, Ordering::SeqCst);
    });
    kassert_eq!(with_self, smp::ONLINE.snapshot());
    kassert_eq!(hits.load(Ordering::SeqCst), 2 * smp::online_count() - 1);
    Ok(())
}

static NOWAIT_HITS: [AtomicU32; smp_core::MAX_CPUS] = [const { AtomicU32::new(0) }; smp_core::MAX_CPUS];

fn nowait_hit(expected_cpu: usize) {
    assert_eq!(percpu::current_cpu().index(), expected_cpu, "nowait call ran on the wrong CPU");
    NOWAIT_HITS[expected_cpu].fetch_add(1, Ordering::SeqCst);
}

fn nowait_calls_all_run() -> Outcome {
    for c in &NOWAIT_HITS {
        c.store(0, Ordering::SeqCst);
    }
    let target = other_cpu()?;
    for _ in 0..100 {
        calls::call_single_nowait(target, nowait_hit, target.index()).map_err(|e| Failure(alloc::format!("{e:?}")))?;
    }
    kassert!(kernel::time::wait_until(5_000_000, || NOWAIT_HITS[target.index()].load(Ordering::SeqCst) == 100));
    let online = smp::ONLINE.snapshot();
    for cpu in online.iter() {
        NOWAIT_HITS[cpu.index()].store(0, Ordering::SeqCst);
    }
    // Each target checks it runs where it was meant to: the argument names it.
    let mut sent = CpuSet::EMPTY;
    for cpu in online.iter() {
        sent = sent.union(&calls::call_many_nowait(&CpuSet::single(cpu), nowait_hit, cpu.index(), true));
    }
    kassert_eq!(sent, online);
    kassert!(kernel::time::wait_until(5_000_000, || online
        .iter()
        .all(|c| NOWAIT_HITS[c.index()].load(Ordering::SeqCst) == 1)));
    Ok(())
}

fn release_after(ms: usize) {
    kernel::time::delay_us(ms as u64 * 1000);
    release();
}

/// A target spins with interrupts off; a waiting call to it passes the
/// watchdog's limit (300 ms here) and must be reported, then completes when
/// a third CPU lets the target go.
fn watchdog_reports_a_stuck_target_and_recovers() -> Outcome {
    let me = percpu::current_cpu();
    let online: Vec<CpuId> = smp::ONLINE.snapshot().iter().filter(|c| *c != me).collect();
    kassert!(online.len() >= 2, "needs two other CPUs");
    let (target, helper) = (online[0], online[1]);
    hold(target)?;
    calls::call_single_nowait(helper, release_after, 1500).map_err(|e| Failure(alloc::format!("{e:?}")))?;
    let reports = calls::counters(me).watchdog_reports.load(Ordering::SeqCst);
    let done = AtomicBool::new(false);
    calls::call_single(target, "after-the-hold", &|| done.store(true, Ordering::SeqCst))
        .map_err(|e| Failure(alloc::format!("{e:?}")))?;
    let reported = calls::counters(me).watchdog_reports.load(Ordering::SeqCst) - reports;
    kassert!(done.load(Ordering::SeqCst));
    kassert!(reported >= 1, "the watchdog never reported the stuck call");
    Ok(())
}

static GO: AtomicBool = AtomicBool::new(false);
static WAITED_US: AtomicU64 = AtomicU64::new(u64::MAX);

/// A job: a call to `target` that runs until `GO`; records how long it took.
fn wait_for_a_slow_call(target: usize) {
    let target = CpuId::new(target).expect("a CPU index");
    let start = kernel::time::Deadline::after_us(0);
    let _ = calls::call_single(target, "slow", &|| {
        while !GO.load(Ordering::SeqCst) {
            core::hint::spin_loop();
        }
    });
    WAITED_US.store(start.elapsed_us(), Ordering::SeqCst);
}

/// The race of a halting waiter (docs/rules.md#cross-calls-10): the waiter
/// has marked its record sleeping and is held just before its halt, with
/// interrupts off, while the target runs the call and releases it. The
/// release must send the wake-up, which then ends the halt at once; lost,
/// the waiter would sleep until its alarm, 30 s away.
fn a_release_just_before_the_waiters_halt_wakes_it() -> Outcome {
    let me = percpu::current_cpu();
    let others: Vec<CpuId> = smp::ONLINE.snapshot().iter().filter(|c| *c != me).collect();
    kassert!(others.len() >= 2, "needs two other CPUs");
    let (waiter, target) = (others[0], others[1]);
    GO.store(false, Ordering::SeqCst);
    WAITED_US.store(u64::MAX, Ordering::SeqCst);
    let wakes = calls::counters(target).wakes_sent.load(Ordering::SeqCst);
    let halts = calls::counters(waiter).waiter_halts.load(Ordering::SeqCst);
    let alarms = alarm::fired(waiter);
    hooks::arm(points::CALLS_WAITER_BEFORE_HALT, Some(waiter), Mode::Pause);
    kernel::smp::worker::spawn(waiter, wait_for_a_slow_call, target.index())
        .map_err(|e| Failure(alloc::format!("{e:?}")))?;
    let held = hooks::wait_reached(points::CALLS_WAITER_BEFORE_HALT, 5_000);
    GO.store(true, Ordering::SeqCst);
    let woken =
        kernel::time::wait_until(5_000_000, || calls::counters(target).wakes_sent.load(Ordering::SeqCst) > wakes);
    hooks::release(points::CALLS_WAITER_BEFORE_HALT);
    kassert!(held, "{waiter} never got to halt for its call");
    kassert!(woken, "{target} released a record marked sleeping without waking {waiter}");
    kassert!(
        kernel::time::wait_until(5_000_000, || WAITED_US.load(Ordering::SeqCst) != u64::MAX),
        "{waiter} stayed halted: the wake-up sent before its halt was lost"
    );
    kassert!(calls::counters(waiter).waiter_halts.load(Ordering::SeqCst) > halts, "{waiter} never halted");
    kassert!(alarm::fired(waiter) == alarms, "the alarm, not the wake-up, ended the halt");
    Ok(())
}

static SAW_REPORT: AtomicBool = AtomicBool::new(false);

/// A job: releases the held target only once `waiter` reported it.
fn release_after_a_report(waiter: usize) {
    let waiter = CpuId::new(waiter).expect("a CPU index");
    let before = calls::counters(waiter).watchdog_reports.load(Ordering::SeqCst);
    let saw = kernel::time::wait_until(10_000_000, || {
        calls::counters(waiter).watchdog_reports.load(Ordering::SeqCst) > before
    });
    SAW_REPORT.store(saw, Ordering::SeqCst);
    release();
}

/// A waiter that halted for a target that never answers is still woken by
/// its alarm to report it (every wait bounded and reported): the target is
/// released only after the report, so without the alarm nothing would
/// wake the waiter before it.
fn a_halted_waiter_still_reports_a_target_that_never_answers() -> Outcome {
    let me = percpu::current_cpu();
    let others: Vec<CpuId> = smp::ONLINE.snapshot().iter().filter(|c| *c != me).collect();
    kassert!(others.len() >= 2, "needs two other CPUs");
    let (target, helper) = (others[0], others[1]);
    SAW_REPORT.store(false, Ordering::SeqCst);
    let halts = calls::counters(me).waiter_halts.load(Ordering::SeqCst);
    let alarms = alarm::fired(me);
    hold(target)?;
    calls::call_single_nowait(helper, release_after_a_report, me.index())
        .map_err(|e| Failure(alloc::format!("{e:?}")))?;
    calls::call_single(target, "after-the-hold", &|| {}).map_err(|e| Failure(alloc::format!("{e:?}")))?;
    kassert!(SAW_REPORT.load(Ordering::SeqCst), "the halted waiter did not report its stuck target");
    kassert!(calls::counters(me).waiter_halts.load(Ordering::SeqCst) > halts, "the waiter never halted");
    kassert!(alarm::fired(me) > alarms, "no alarm ended the waiter's halt");
    Ok(())
}
