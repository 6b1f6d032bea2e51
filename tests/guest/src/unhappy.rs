//! The unhappy paths: a CPU that answers late, never answers, or does not
//! settle. Each test forces its race with test hooks (a CPU held at the
//! racy point, a function run at the exact moment the other side decides)
//! and then checks that the machine is consistent: what the call returned
//! is what happened, each CPU is online or cleanly offline, and each stack
//! has one owner.

use alloc::format;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::ktest::{Failure, Outcome, Test};
use crate::{kassert, kassert_eq, ktest};
use kernel::arch::x86_64::apic::esr;
use kernel::arch::x86_64::apic::startup::{self, StartError, StartFailure, StartStep};
use kernel::arch::x86_64::vectors;
use kernel::hooks::{self, Mode};
use kernel::smp::calls::{self};
use kernel::smp::hotplug::StepId;
use kernel::smp::hotplug::{self, CpuState, HotplugError};
use kernel::smp::stop_machine::{self, State};
use kernel::smp::{self, bringup, ping, worker};
use kernel::{ApicId, CpuId, CpuSet, percpu};

pub const TESTS: &[Test] = &[
    ktest!(stop_machine_a_late_ack_and_the_abort_have_one_winner).min_cpus(2).params("stop_machine.timeout_ms=300"),
    ktest!(stop_machine_a_stale_ipi_taken_in_the_next_run_acks_once).min_cpus(2).params("stop_machine.timeout_ms=300"),
    ktest!(stop_machine_waits_for_a_cpu_up_in_progress).min_cpus(4),
    ktest!(bringup_a_late_ap_and_the_timeout_agree).min_cpus(2),
    ktest!(bringup_a_no_show_leaves_every_stack_with_one_owner).min_cpus(3),
    ktest!(cpu_down_is_an_error_until_the_cpu_parks).min_cpus(2).params("hotplug.park_timeout_ms=300"),
    ktest!(a_failed_cpu_down_leaves_active_as_it_was).min_cpus(3).params("stop_machine.timeout_ms=300"),
    ktest!(every_call_kind_warns_early_when_it_got_past_the_online_check).min_cpus(3),
    ktest!(hotplug_from_two_cpus_at_once_is_serialised).min_cpus(4).timeout_ms(120_000),
    ktest!(two_stop_machines_at_once_run_one_after_the_other).min_cpus(2).timeout_ms(60_000),
    ktest!(a_job_spawned_right_after_cpu_up_runs).min_cpus(2),
    ktest!(a_rolled_back_cpu_up_returns_once_the_cpu_parked).min_cpus(2),
    ktest!(a_start_ipi_that_no_cpu_accepts_is_a_send_error).needs(SEND_ERRORS),
    ktest!(a_send_error_survives_an_error_interrupt_before_the_check).needs(SEND_ERRORS),
];

/// Set by the configurations whose emulator reports a send accept error for
/// an IPI that no APIC takes (Bochs; QEMU never sets ESR for it).
const SEND_ERRORS: &str = "smp.expect_send_errors";

fn err(e: impl core::fmt::Debug) -> Failure {
    Failure(format!("{e:?}"))
}

fn aps() -> impl Iterator<Item = CpuId> {
    smp::ONLINE.snapshot().iter().filter(|c| *c != CpuId::BOOT).collect::<alloc::vec::Vec<_>>().into_iter()
}

/// The first `N` online APs, in CPU order.
fn first_aps<const N: usize>() -> Result<[CpuId; N], Failure> {
    let mut aps = aps();
    let mut out = [CpuId::BOOT; N];
    for slot in &mut out {
        *slot = aps.next().ok_or(Failure(format!("needs {N} APs online")))?;
    }
    Ok(out)
}

fn last_ap() -> Result<CpuId, Failure> {
    aps().last().ok_or(Failure("no AP online".into()))
}

/// The stack pointer `cpu` runs on, read there by a call.
fn rsp_on(cpu: CpuId) -> Result<u64, Failure> {
    let rsp = AtomicU64::new(0);
    calls::call_single(cpu, "read-rsp", &|| {
        let here: u64;
        // SAFETY: reads the stack pointer only.
        unsafe { core::arch::asm!("mov {}, rsp", out(reg) here) };
        rsp.store(here, Ordering::SeqCst);
    })
    .map_err(err)?;
    Ok(rsp.load(Ordering::SeqCst))
}

/// `cpu` answers a ping and a call, runs on the stack it owns, and no two
/// CPUs own one stack.
fn works(cpu: CpuId) -> Outcome {
    kassert!(ping::ping(cpu, 2_000_000), "{cpu} does not answer a ping");
    let rsp = rsp_on(cpu)?;
    let (bottom, top) = bringup::stack_of(cpu).ok_or(Failure(format!("{cpu} owns no stack")))?;
    kassert!((bottom..top).contains(&rsp), "{cpu} runs at {rsp:#x}, outside the stack it owns ({bottom:#x}..{top:#x})");
    kassert!(bringup::stacks_have_one_owner(), "two CPUs own the same stack");
    Ok(())
}

static LATE_ACK_ARRIVED: AtomicBool = AtomicBool::new(false);
static GOING_DOWN: AtomicU32 = AtomicU32::new(0);

/// Runs on the controller after its deadline passed, just before it
/// decides to abort: the held CPU's ack arrives now, and the CPU goes on
/// into RUN and runs its dying steps (it leaves `online`).
fn let_the_late_ack_in() {
    let x = CpuId::new(GOING_DOWN.load(Ordering::SeqCst) as usize).expect("cpu");
    hooks::release(hooks::points::STOP_MACHINE_DISABLE_IRQ);
    let ran = kernel::time::wait_until(2_000_000, || !smp::ONLINE.contains(x));
    LATE_ACK_ARRIVED.store(ran, Ordering::SeqCst);
}

/// The outgoing CPU X is held at DISABLE_IRQ past the controller's timeout;
/// its ack arrives between the controller's look and its decision. Either
/// the abort wins (nothing ran, X is online) or the ack does (X ran its
/// dying steps and is offline): `cpu_down`'s answer must be the one that
/// happened. Deciding from the stale look returned an error for a CPU that
/// had gone down.
fn stop_machine_a_late_ack_and_the_abort_have_one_winner() -> Outcome {
    let x = last_ap()?;
    GOING_DOWN.store(x.index() as u32, Ordering::SeqCst);
    LATE_ACK_ARRIVED.store(false, Ordering::SeqCst);
    hooks::arm(hooks::points::STOP_MACHINE_DISABLE_IRQ, Some(x), Mode::Pause);
    hooks::arm(hooks::points::STOP_MACHINE_BEFORE_ABORT, Some(CpuId::BOOT), Mode::Call(let_the_late_ack_in));
    let down = hotplug::cpu_down(x);
    hooks::release(hooks::points::STOP_MACHINE_DISABLE_IRQ);
    hooks::release(hooks::points::STOP_MACHINE_BEFORE_ABORT);
    kassert!(
        LATE_ACK_ARRIVED.load(Ordering::SeqCst),
        "{x} never ran its dying steps after its late ack: the race was not forced"
    );
    match down {
        Ok(()) => {
            kassert_eq!(hotplug::state(x), CpuState::Offline);
            hotplug::cpu_up(x).map_err(err)?;
        }
        Err(e) => kassert!(hotplug::state(x) == CpuState::Online, "cpu_down said {e:?}, but {x} went down"),
    }
    works(x)
}

fn release_the_stale_handler() {
    hooks::release(hooks::points::STOP_MACHINE_IPI_ENTRY);
}

/// X takes run 1's IPI but is held in the handler until run 1 gave up on
/// it. Released in run 2's PREPARE, the late handler joins run 2; when X
/// then turns interrupts on, run 2's own IPI arrives. X must take part in
/// run 2 once: a second entry would ack run 2's states again.
fn stop_machine_a_stale_ipi_taken_in_the_next_run_acks_once() -> Outcome {
    let x = last_ap()?;
    hooks::arm(hooks::points::STOP_MACHINE_IPI_ENTRY, Some(x), Mode::Pause);
    let first = stop_machine::stop_machine(&CpuSet::single(CpuId::BOOT), &|_| ());
    match first {
        Err(stop_machine::StopError::NotAcked { state: State::Prepare, cpus }) => kassert_eq!(cpus, CpuSet::single(x)),
        other => return Err(Failure(format!("run 1: expected NotAcked in Prepare naming {x}, got {other:?}"))),
    }
    let stale = stop_machine::stale_ipis();
    let late = stop_machine::late_acks();
    let refused = stop_machine::refused_acks();
    hooks::arm(hooks::points::STOP_MACHINE_PREPARE, Some(CpuId::BOOT), Mode::Call(release_the_stale_handler));
    let second = stop_machine::stop_machine(&CpuSet::single(CpuId::BOOT), &|_| ());
    hooks::release(hooks::points::STOP_MACHINE_PREPARE);
    hooks::release(hooks::points::STOP_MACHINE_IPI_ENTRY);
    second.map_err(|e| Failure(format!("run 2: {e:?}")))?;
    kassert!(stop_machine::stale_ipis() - stale == 1, "run 2's own IPI did not reach {x} inside the run");
    kassert!(stop_machine::late_acks() == late, "some CPU acked a state of run 2 it was not in");
    kassert!(stop_machine::refused_acks() == refused, "some CPU acked a state of run 2 twice");
    for cpu in smp::ONLINE.snapshot().iter() {
        kassert!(stop_machine::irqs_were_off_in_run(cpu), "{cpu} had interrupts on in RUN");
    }
    works(x)
}

static UP_CPU: AtomicU32 = AtomicU32::new(0);
static UP_DONE: AtomicBool = AtomicBool::new(false);
static UP_OK: AtomicBool = AtomicBool::new(false);
static STOP_DONE: AtomicBool = AtomicBool::new(false);
static STOP_OK: AtomicBool = AtomicBool::new(false);
static IN_RUN: AtomicBool = AtomicBool::new(false);
static ONLINE_IN_RUN: spin::Mutex<CpuSet> = spin::Mutex::new(CpuSet::EMPTY);

fn bring_up_cpu(cpu: usize) {
    let cpu = CpuId::new(cpu).expect("cpu");
    UP_OK.store(hotplug::cpu_up(cpu).is_ok(), Ordering::SeqCst);
    UP_DONE.store(true, Ordering::SeqCst);
}

fn run_stop_machine(_: usize) {
    let me = percpu::current_cpu();
    let x = CpuId::new(UP_CPU.load(Ordering::SeqCst) as usize).expect("cpu");
    let r = stop_machine::stop_machine(&CpuSet::single(me), &|_| {
        IN_RUN.store(true, Ordering::SeqCst);
        // Give a CPU coming up meanwhile the time to arrive in `online`.
        kernel::time::wait_until(500_000, || smp::ONLINE.contains(x));
        *ONLINE_IN_RUN.lock() = smp::ONLINE.snapshot();
    });
    STOP_OK.store(r.is_ok(), Ordering::SeqCst);
    STOP_DONE.store(true, Ordering::SeqCst);
}

/// CPU W brings X up, and X is held just before it goes online; CPU V then
/// starts a stop-machine. Stop-machine must wait for the hotplug to end and
/// include X, never run while X arrives in `online` with interrupts on.
fn stop_machine_waits_for_a_cpu_up_in_progress() -> Outcome {
    let [w, v, x] = first_aps()?;
    hotplug::cpu_down(x).map_err(err)?;
    UP_CPU.store(x.index() as u32, Ordering::SeqCst);
    for flag in [&UP_DONE, &UP_OK, &STOP_DONE, &STOP_OK, &IN_RUN] {
        flag.store(false, Ordering::SeqCst);
    }
    hooks::arm(hooks::points::AP_BEFORE_ONLINE, Some(x), Mode::Pause);
    worker::spawn(w, bring_up_cpu, x.index()).map_err(err)?;
    kassert!(hooks::wait_reached(hooks::points::AP_BEFORE_ONLINE, 5_000), "{x} never reached the hold");
    worker::spawn(v, run_stop_machine, 0).map_err(err)?;
    // Release X once the stop-machine is in RUN, or after a while if it
    // (rightly) waits for the hotplug.
    kernel::time::wait_until(300_000, || IN_RUN.load(Ordering::SeqCst));
    hooks::release(hooks::points::AP_BEFORE_ONLINE);
    kassert!(kernel::time::wait_until(10_000_000, || UP_DONE.load(Ordering::SeqCst)), "cpu_up never returned");
    kassert!(kernel::time::wait_until(10_000_000, || STOP_DONE.load(Ordering::SeqCst)), "stop-machine never returned");
    kassert!(UP_OK.load(Ordering::SeqCst) && STOP_OK.load(Ordering::SeqCst), "cpu_up or stop-machine failed");
    let online_in_run = *ONLINE_IN_RUN.lock();
    kassert!(online_in_run.contains(x), "the stop-machine ran before {x} came up (it must wait for the hotplug)");
    for cpu in online_in_run.iter() {
        kassert!(stop_machine::irqs_were_off_in_run(cpu), "{cpu} was online in RUN with interrupts on");
    }
    works(x)
}

static LATE_AP: AtomicU32 = AtomicU32::new(0);
static LATE_AP_RELEASED: AtomicBool = AtomicBool::new(false);

/// Runs on the boot CPU when its bring-up deadline passed, just before it
/// gives up on the late AP: the AP goes on now.
fn let_the_late_ap_in() {
    let ap = CpuId::new(LATE_AP.load(Ordering::SeqCst) as usize).expect("cpu");
    hooks::release(hooks::points::AP_BEFORE_ONLINE);
    let moved = kernel::time::wait_until(2_000_000, || !bringup::starting().contains(ap));
    LATE_AP_RELEASED.store(moved, Ordering::SeqCst);
}

/// X is held before it goes online until the boot CPU's bring-up deadline
/// has passed, and comes online between the boot CPU's look and its
/// decision. Either X is reported started and works, or it is reported
/// failed and is not online: never reported failed (and sent INIT) while
/// it sits in `online`.
fn bringup_a_late_ap_and_the_timeout_agree() -> Outcome {
    let x = last_ap()?;
    hotplug::cpu_down(x).map_err(err)?;
    LATE_AP.store(x.index() as u32, Ordering::SeqCst);
    LATE_AP_RELEASED.store(false, Ordering::SeqCst);
    hooks::arm(hooks::points::AP_BEFORE_ONLINE, Some(x), Mode::Pause);
    hooks::arm(hooks::points::BRINGUP_BEFORE_TIMEOUT, Some(x), Mode::Call(let_the_late_ap_in));
    let opts = bringup::Options { timeout_ms: 300, ..bringup::Options::from_params() };
    let report = bringup::start(&CpuSet::single(x), opts, None);
    hooks::release(hooks::points::AP_BEFORE_ONLINE);
    hooks::release(hooks::points::BRINGUP_BEFORE_TIMEOUT);
    kassert!(LATE_AP_RELEASED.load(Ordering::SeqCst), "{x} did not arrive after the deadline: the race was not forced");
    if report.started.contains(x) {
        kassert!(report.errors.is_empty(), "started and failed at once: {:?}", report.errors);
        kassert!(smp::ONLINE.contains(x));
        hotplug::finish_boot_bringup(&report.started);
    } else {
        kassert!(!smp::ONLINE.contains(x), "{x} was reported failed ({:?}) but is online", report.errors);
        hotplug::cpu_up(x).map_err(err)?;
    }
    works(x)
}

/// Two CPUs start in one parallel batch; the first never answers its SIPI.
/// The other takes the first ticket, whose stack was set aside for the
/// no-show. The no-show must then own another stack, so that starting it
/// later does not run it on a live one.
fn bringup_a_no_show_leaves_every_stack_with_one_owner() -> Outcome {
    let [x, y] = first_aps()?;
    hotplug::cpu_down(x).map_err(err)?;
    hotplug::cpu_down(y).map_err(err)?;
    hooks::arm(hooks::points::BRINGUP_NO_SIPI, Some(x), Mode::Fail);
    let opts = bringup::Options { parallel: true, timeout_ms: 500, ..bringup::Options::from_params() };
    let mut both = CpuSet::single(x);
    both.insert(y);
    let report = bringup::start(&both, opts, None);
    hooks::release(hooks::points::BRINGUP_NO_SIPI);
    kassert_eq!(report.started, CpuSet::single(y));
    kassert!(report.errors.iter().any(|e| e.cpu == x), "the no-show was not reported: {:?}", report.errors);
    kassert!(bringup::stacks_have_one_owner(), "the no-show and the CPU on its ticket's stack own the same stack");
    hotplug::finish_boot_bringup(&report.started);
    works(y)?;
    hotplug::cpu_up(x).map_err(err)?;
    works(x)?;
    works(y)
}

/// X is held in its offline window past the park timeout: `cpu_down` must
/// say so (not Ok), X must be Dying, and `cpu_up` must refuse it until it
/// parks, since its stack may still be in use.
fn cpu_down_is_an_error_until_the_cpu_parks() -> Outcome {
    let x = last_ap()?;
    hooks::arm(hooks::points::HOTPLUG_OFFLINE_WINDOW, Some(x), Mode::Pause);
    let down = hotplug::cpu_down(x);
    let state = hotplug::state(x);
    let up = hotplug::cpu_up(x);
    hooks::release(hooks::points::HOTPLUG_OFFLINE_WINDOW);
    kassert_eq!(down, Err(HotplugError::NotParked(x)));
    kassert_eq!(state, CpuState::Dying);
    kassert_eq!(up, Err(HotplugError::NotParked(x)));
    kassert!(hotplug::wait_parked(x, 5_000), "{x} never parked after its release");
    kassert_eq!(hotplug::state(x), CpuState::Offline);
    hotplug::cpu_up(x).map_err(err)?;
    works(x)
}

static HOLD: AtomicBool = AtomicBool::new(false);
static HOLDING: AtomicBool = AtomicBool::new(false);

fn hold_with_interrupts_off(_: usize) {
    HOLDING.store(true, Ordering::SeqCst);
    let d = kernel::time::Deadline::after_ms(10_000);
    while HOLD.load(Ordering::SeqCst) && !d.expired() {
        core::hint::spin_loop();
    }
}

/// A third CPU spins with interrupts off through the down's stop-machine:
/// the down fails, and X is online and active as before.
fn a_failed_cpu_down_leaves_active_as_it_was() -> Outcome {
    let [x, stuck] = first_aps()?;
    HOLD.store(true, Ordering::SeqCst);
    HOLDING.store(false, Ordering::SeqCst);
    calls::call_single_nowait(stuck, hold_with_interrupts_off, 0).map_err(err)?;
    kassert!(kernel::time::wait_until(5_000_000, || HOLDING.load(Ordering::SeqCst)), "{stuck} never started spinning");
    let down = hotplug::cpu_down(x);
    HOLD.store(false, Ordering::SeqCst);
    kassert!(matches!(down, Err(HotplugError::StepFailed { step: StepId::CpuKick, going_up: false, .. })), "{down:?}");
    kassert_eq!(hotplug::state(x), CpuState::Online);
    kassert!(smp::ACTIVE.contains(x), "{x} stayed online but lost `active`");
    kernel::time::delay_us(50_000);
    works(x)?;
    works(stuck)
}

static RACE_STARTED: AtomicBool = AtomicBool::new(false);
static RACE_DONE: AtomicBool = AtomicBool::new(false);
static RACED_RUNS: AtomicU32 = AtomicU32::new(0);
static RACED_RECORD: smp_core::callq::CallRecord<'static> =
    smp_core::callq::CallRecord::new_async(smp_core::callq::AsyncFn::Arg(raced_ran, 0), "raced-async");

fn raced_ran(_: usize) {
    RACED_RUNS.fetch_add(1, Ordering::SeqCst);
}

/// On a prober CPU, once X sits in its offline window (out of `online`,
/// interrupts on): one call of every kind from a sender that skips the
/// online check (test hook), as a sender that raced with offlining would.
fn send_every_kind_past_the_check(x: usize) {
    let x = CpuId::new(x).expect("cpu");
    // A call handler runs with interrupts off; this one waits through a
    // stop-machine and for calls, so it lets interrupts in.
    x86_64::instructions::interrupts::enable();
    RACE_STARTED.store(true, Ordering::SeqCst);
    if kernel::time::wait_until(5_000_000, || hooks::reached(hooks::points::HOTPLUG_OFFLINE_WINDOW) > 0) {
        let only_x = CpuSet::single(x);
        hooks::arm(hooks::points::CALLS_SKIP_ONLINE_CHECK, None, Mode::Fail);
        let _ = calls::call_single(x, "raced-single", &|| raced_ran(0));
        let _ = calls::call_single_nowait(x, raced_ran, 0);
        let _ = calls::call_single_async(x, &RACED_RECORD);
        calls::call_many(&only_x, "raced-many", false, &|| raced_ran(0));
        calls::call_many_nowait(&only_x, raced_ran, 0, false);
        hooks::release(hooks::points::CALLS_SKIP_ONLINE_CHECK);
        kernel::time::wait_until(2_000_000, || RACED_RUNS.load(Ordering::SeqCst) == 5);
    }
    hooks::release(hooks::points::HOTPLUG_OFFLINE_WINDOW);
    RACE_DONE.store(true, Ordering::SeqCst);
    x86_64::instructions::interrupts::disable();
}

/// Docs rule Cross-calls 9: a sender that got past the online check with a
/// target no longer online warns at once, whatever kind of call it makes
/// (the five kinds), and the warning is counted at the sender.
fn every_call_kind_warns_early_when_it_got_past_the_online_check() -> Outcome {
    let x = last_ap()?;
    let prober = aps().find(|c| *c != x).ok_or(Failure("no prober".into()))?;
    let raced = calls::counters(prober).raced_sends.load(Ordering::SeqCst);
    RACED_RUNS.store(0, Ordering::SeqCst);
    RACE_STARTED.store(false, Ordering::SeqCst);
    RACE_DONE.store(false, Ordering::SeqCst);
    hooks::arm(hooks::points::HOTPLUG_OFFLINE_WINDOW, Some(x), Mode::Pause);
    calls::call_single_nowait(prober, send_every_kind_past_the_check, x.index()).map_err(err)?;
    kassert!(kernel::time::wait_until(5_000_000, || RACE_STARTED.load(Ordering::SeqCst)), "the prober never started");
    // Returns once X parks, which the prober lets it do when done.
    let down = hotplug::cpu_down(x);
    hooks::release(hooks::points::HOTPLUG_OFFLINE_WINDOW);
    down.map_err(err)?;
    kassert!(RACE_DONE.load(Ordering::SeqCst), "the prober never finished");
    let warned = calls::counters(prober).raced_sends.load(Ordering::SeqCst) - raced;
    kassert!(warned == 5, "{warned} of the 5 kinds warned at the sender");
    kassert_eq!(RACED_RUNS.load(Ordering::SeqCst), 5);
    hotplug::cpu_up(x).map_err(err)?;
    works(x)
}

static CYCLES_DONE: AtomicBool = AtomicBool::new(false);
static CYCLE_ERRORS: AtomicU32 = AtomicU32::new(0);
const CYCLES: usize = 20;

fn cycle(cpu: CpuId) -> u32 {
    let mut errors = 0;
    for _ in 0..CYCLES {
        if hotplug::cpu_down(cpu).is_err() {
            errors += 1;
        }
        if hotplug::cpu_up(cpu).is_err() {
            errors += 1;
        }
    }
    errors
}

fn cycle_on_worker(cpu: usize) {
    CYCLE_ERRORS.store(cycle(CpuId::new(cpu).expect("cpu")), Ordering::SeqCst);
    CYCLES_DONE.store(true, Ordering::SeqCst);
}

/// The boot CPU and a worker CPU each take a CPU of their own down and up,
/// at the same time: the requests are serialised, and every one succeeds.
fn hotplug_from_two_cpus_at_once_is_serialised() -> Outcome {
    let [worker_cpu, x, y] = first_aps()?;
    CYCLES_DONE.store(false, Ordering::SeqCst);
    let ops = hotplug::STATS.ups.load(Ordering::SeqCst) + hotplug::STATS.downs.load(Ordering::SeqCst);
    worker::spawn(worker_cpu, cycle_on_worker, x.index()).map_err(err)?;
    let here = cycle(y);
    kassert!(
        kernel::time::wait_until(60_000_000, || CYCLES_DONE.load(Ordering::SeqCst)),
        "the worker's cycles never ended"
    );
    kassert_eq!((here, CYCLE_ERRORS.load(Ordering::SeqCst)), (0, 0));
    let done = hotplug::STATS.ups.load(Ordering::SeqCst) + hotplug::STATS.downs.load(Ordering::SeqCst) - ops;
    kassert_eq!(done, 4 * CYCLES as u64);
    works(x)?;
    works(y)
}

static STOPS_DONE: AtomicBool = AtomicBool::new(false);
static STOP_FAILURES: AtomicU32 = AtomicU32::new(0);
static IN_RUN_NOW: AtomicU32 = AtomicU32::new(0);
static OVERLAPS: AtomicU32 = AtomicU32::new(0);
const STOPS: usize = 50;

fn stops() -> u32 {
    let me = percpu::current_cpu();
    let mut failures = 0;
    for _ in 0..STOPS {
        let r = stop_machine::stop_machine(&CpuSet::single(me), &|_| {
            if IN_RUN_NOW.fetch_add(1, Ordering::SeqCst) != 0 {
                OVERLAPS.fetch_add(1, Ordering::SeqCst);
            }
            kernel::time::delay_us(100);
            IN_RUN_NOW.fetch_sub(1, Ordering::SeqCst);
        });
        failures += r.is_err() as u32;
    }
    failures
}

fn stops_on_worker(_: usize) {
    STOP_FAILURES.store(stops(), Ordering::SeqCst);
    STOPS_DONE.store(true, Ordering::SeqCst);
}

/// Two CPUs start stop-machines at the same time, over and over: one runs
/// at a time (their functions never overlap), and the one that waits still
/// takes part in the other's.
fn two_stop_machines_at_once_run_one_after_the_other() -> Outcome {
    let other = last_ap()?;
    STOPS_DONE.store(false, Ordering::SeqCst);
    OVERLAPS.store(0, Ordering::SeqCst);
    let runs = stop_machine::runs();
    worker::spawn(other, stops_on_worker, 0).map_err(err)?;
    let here = stops();
    kassert!(
        kernel::time::wait_until(30_000_000, || STOPS_DONE.load(Ordering::SeqCst)),
        "the worker's stop-machines never ended"
    );
    kassert_eq!((here, STOP_FAILURES.load(Ordering::SeqCst)), (0, 0));
    kassert_eq!(OVERLAPS.load(Ordering::SeqCst), 0);
    kassert_eq!(stop_machine::runs() - runs, 2 * STOPS as u64);
    works(other)
}

static JOB_RAN: AtomicBool = AtomicBool::new(false);

fn job(_: usize) {
    JOB_RAN.store(true, Ordering::SeqCst);
}

/// `cpu_up` returns as soon as X is online, which can be before X's new
/// life reaches its idle loop (here X is held at that instant). A job
/// spawned then must run: dropping what the last life abandoned happens
/// before X starts, never after.
fn a_job_spawned_right_after_cpu_up_runs() -> Outcome {
    let x = last_ap()?;
    hotplug::cpu_down(x).map_err(err)?;
    JOB_RAN.store(false, Ordering::SeqCst);
    hooks::arm(hooks::points::CPU_ONLINE_ENTERED, Some(x), Mode::Pause);
    let up = hotplug::cpu_up(x);
    let spawned = worker::spawn(x, job, 0);
    hooks::release(hooks::points::CPU_ONLINE_ENTERED);
    up.map_err(err)?;
    spawned.map_err(err)?;
    kassert!(
        kernel::time::wait_until(2_000_000, || JOB_RAN.load(Ordering::SeqCst)),
        "the job spawned on {x} never ran"
    );
    works(x)
}

/// An APIC id that no CPU of the machine has, addressable in either mode.
fn missing_apic_id() -> Result<ApicId, Failure> {
    (0..0xFF)
        .map(ApicId)
        .find(|id| kernel::arch::x86_64::topology::cpu_of(*id).is_none())
        .ok_or(Failure("every xAPIC id is taken".into()))
}

/// INIT to `nobody` must fail as a send accept error at the INIT step.
fn init_is_a_send_error(nobody: ApicId) -> Outcome {
    match startup::send_init(nobody) {
        Err(StartError { step: StartStep::Init, cause: StartFailure::Esr(e) }) if e.contains(esr::SEND_ACCEPT) => {
            Ok(())
        }
        other => {
            Err(Failure(format!("INIT to {nobody}, which no CPU has: expected a send accept error, got {other:?}")))
        }
    }
}

fn a_start_ipi_that_no_cpu_accepts_is_a_send_error() -> Outcome {
    init_is_a_send_error(missing_apic_id()?)
}

static ERROR_INTERRUPT_TAKEN: AtomicBool = AtomicBool::new(false);

/// Runs the LVT Error handler here, as if the APIC had raised it: the
/// handler reads, and so clears, the ESR.
fn take_an_error_interrupt() {
    // SAFETY: the handler of this vector only latches the ESR, logs and
    // signals EOI; at this hook point no interrupt is in service, so that
    // EOI retires nothing.
    unsafe { x86_64::instructions::interrupts::software_interrupt::<{ vectors::LAPIC_ERROR }>() };
    ERROR_INTERRUPT_TAKEN.store(true, Ordering::SeqCst);
}

/// Race 8: the error handler runs between the send and bring-up's check,
/// and bring-up must still see the error.
fn a_send_error_survives_an_error_interrupt_before_the_check() -> Outcome {
    let nobody = missing_apic_id()?;
    ERROR_INTERRUPT_TAKEN.store(false, Ordering::SeqCst);
    hooks::arm(hooks::points::APIC_START_SENT, Some(percpu::current_cpu()), Mode::Call(take_an_error_interrupt));
    let verdict = init_is_a_send_error(nobody);
    kassert!(ERROR_INTERRUPT_TAKEN.load(Ordering::SeqCst), "the hook between the send and the check never ran");
    verdict
}

/// Keeps the CPU that runs it from parking for a while.
fn linger_before_parking() {
    kernel::time::delay_us(200_000);
}

/// A `cpu_up` that fails after the CPU came up takes it down again; like a
/// `cpu_down`, it returns only once the CPU parked, so the CPU is cleanly
/// offline (not dying) when the caller sees the error.
fn a_rolled_back_cpu_up_returns_once_the_cpu_parked() -> Outcome {
    let x = last_ap()?;
    hotplug::cpu_down(x).map_err(err)?;
    hooks::arm(hooks::points::CPU_ACTIVE, Some(x), Mode::FailOnce);
    hooks::arm(hooks::points::HOTPLUG_OFFLINE_WINDOW, Some(x), Mode::Call(linger_before_parking));
    let r = hotplug::cpu_up(x);
    kassert!(matches!(r, Err(HotplugError::StepFailed { going_up: true, .. })), "up with cpu.active failing: {r:?}");
    kassert_eq!(hotplug::state(x), CpuState::Offline);
    hotplug::cpu_up(x).map_err(err)?;
    works(x)
}
