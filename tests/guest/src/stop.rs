//! Send-stop (docs/rules.md, Send-stop; story 5,
//! docs/stories/5-stop-retry-starting-cpus.md): every other CPU stops,
//! whatever it is doing, and the report says how. Each test stops CPUs, so
//! each gets a boot of its own.

use alloc::format;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::ktest::{Failure, Outcome, Test};
use crate::{kassert, kassert_eq, ktest};
use kernel::hooks::{self, Mode, Point, points};
use kernel::smp::stop::{self, Method, Reason};
use kernel::smp::{self, bringup, calls, hotplug, stop_machine, worker};
use kernel::{CpuId, CpuSet, percpu};

pub const TESTS: &[Test] = &[
    ktest!(idle_cpus_stop_by_ipi_at_attempt_1).min_cpus(2).fresh_boot(),
    ktest!(cpu_with_interrupts_off_stops_by_nmi_at_attempt_2).min_cpus(2).fresh_boot(),
    ktest!(cpu_held_in_bring_up_is_caught_by_a_retry).min_cpus(3).params("smp.boot_aps=0"),
    // At 2 CPUs the loser has stopped itself before the winner looks (no
    // attempt needed); with more, the others take the STOP IPI: either way
    // one report, every CPU stopped, every record saved.
    ktest!(cpu_without_an_idt_yet_is_stopped_by_init).min_cpus(3).params("smp.boot_aps=0"),
    ktest!(a_second_stopper_stops_itself).min_cpus(2).fresh_boot(),
    ktest!(a_cpu_that_never_stops_is_named).min_cpus(2).params("stop.max_attempts=2;stop.wait_ms=200"),
    ktest!(two_cpus_panicking_at_once_give_one_report).min_cpus(2).expect_panic("crash records: all"),
    ktest!(panic_inside_stop_machine_still_stops_everyone).min_cpus(3).expect_panic("all other CPUs stopped"),
    ktest!(panic_inside_hotplug_still_stops_everyone).min_cpus(3).expect_panic("all other CPUs stopped"),
    ktest!(crash_stop_saves_a_record_per_cpu).min_cpus(2).expect_panic("crash records: all"),
];

fn others() -> CpuSet {
    let mut s = smp::ONLINE.snapshot();
    s.remove(percpu::current_cpu());
    s
}

fn idle_cpus_stop_by_ipi_at_attempt_1() -> Outcome {
    let targets = others();
    let report = stop::stop_other_cpus(Reason::Stop);
    kassert!(report.not_stopped.is_empty(), "not stopped: {:?}", report.not_stopped);
    kassert_eq!(report.stopped, targets);
    for cpu in targets.iter() {
        kassert_eq!(stop::how_stopped(cpu), Some((Method::Ipi, 1)));
    }
    kassert_eq!(smp::online_count(), 1);
    Ok(())
}

static SPIN: AtomicBool = AtomicBool::new(true);
static SPINNING: AtomicBool = AtomicBool::new(false);

fn spin_with_interrupts_off(_: usize) {
    // A call handler runs with interrupts off: the STOP IPI cannot get in.
    SPINNING.store(true, Ordering::SeqCst);
    while SPIN.load(Ordering::SeqCst) {
        core::hint::spin_loop();
    }
}

fn cpu_with_interrupts_off_stops_by_nmi_at_attempt_2() -> Outcome {
    let targets = others();
    let spinner = targets.iter().next().ok_or(Failure("no other CPU".into()))?;
    calls::call_single_nowait(spinner, spin_with_interrupts_off, 0).map_err(|e| Failure(format!("{e:?}")))?;
    kassert!(
        kernel::time::wait_until(5_000_000, || SPINNING.load(Ordering::SeqCst)),
        "{spinner} never started spinning"
    );
    let report = stop::stop_other_cpus(Reason::Stop);
    SPIN.store(false, Ordering::SeqCst);
    kassert!(report.not_stopped.is_empty(), "not stopped: {:?}", report.not_stopped);
    kassert_eq!(stop::how_stopped(spinner), Some((Method::Nmi, 2)));
    for cpu in targets.iter().filter(|c| *c != spinner) {
        kassert_eq!(stop::how_stopped(cpu), Some((Method::Ipi, 1)));
    }
    Ok(())
}

fn start_held_cpu(cpu: usize) {
    let cpu = CpuId::new(cpu).expect("cpu");
    let _ = bringup::start(&CpuSet::single(cpu), bringup::Options::from_params(), None);
}

/// A second AP (the starter) starts a third, which is held at `hook`
/// while still starting; the boot CPU then stops everyone. Returns the
/// held CPU, once the report says it stopped.
fn stop_with_a_cpu_held_in_bring_up(hook: Point) -> Result<CpuId, Failure> {
    let present = smp::PRESENT.snapshot();
    let mut aps = present.iter().filter(|c| *c != CpuId::BOOT);
    let (starter, held) = match (aps.next(), aps.next()) {
        (Some(s), Some(h)) => (s, h),
        _ => return Err(Failure("needs two APs".into())),
    };
    let r = bringup::start(&CpuSet::single(starter), bringup::Options::from_params(), None);
    kassert!(r.errors.is_empty(), "{:?}", r.errors);
    hooks::arm(hook, Some(held), Mode::Pause);
    worker::spawn(starter, start_held_cpu, held.index()).map_err(|e| Failure(format!("{e:?}")))?;
    kassert!(hooks::wait_reached(hook, 5_000), "{held} never reached the hold");
    kassert!(bringup::starting().contains(held));
    let report = stop::stop_other_cpus(Reason::Stop);
    hooks::release(hook);
    kernel::time::delay_us(50_000);
    kassert!(report.not_stopped.is_empty(), "not stopped: {:?}", report.not_stopped);
    kassert!(report.stopped.contains(held), "{held} was not stopped; report {report:?}");
    kassert!(!smp::ONLINE.contains(held), "{held} went online after the stop");
    Ok(held)
}

/// A CPU held between INIT-SIPI and "online" when the stop begins is not
/// in `online`: attempt 1 misses it; a retry must catch it (by NMI, since
/// it has its IDT by then).
fn cpu_held_in_bring_up_is_caught_by_a_retry() -> Outcome {
    let held = stop_with_a_cpu_held_in_bring_up(points::AP_BEFORE_ONLINE)?;
    kassert!(matches!(stop::how_stopped(held), Some((Method::Nmi, n)) if n >= 2), "{:?}", stop::how_stopped(held));
    Ok(())
}

/// The same with the CPU held in its first Rust code, before it has an
/// IDT: an NMI would triple-fault it and the emulator would reset the
/// machine. INIT stops it instead (wait-for-SIPI is stopped).
fn cpu_without_an_idt_yet_is_stopped_by_init() -> Outcome {
    let held = stop_with_a_cpu_held_in_bring_up(points::AP_ENTRY)?;
    kassert!(matches!(stop::how_stopped(held), Some((Method::Init, n)) if n >= 2), "{:?}", stop::how_stopped(held));
    Ok(())
}

static SECOND: AtomicU32 = AtomicU32::new(u32::MAX);

fn try_to_stop_everyone(_: usize) {
    SECOND.store(percpu::current_cpu().index() as u32, Ordering::SeqCst);
    // Loses: the boot CPU won first, so this stops itself here.
    let _ = stop::stop_other_cpus(Reason::Stop);
}

/// Runs on the winner before its first attempt: lets a second CPU try.
fn let_a_second_stopper_try() {
    let Some(second) = CpuId::new(SECOND.load(Ordering::SeqCst) as usize) else { return };
    let _ = calls::call_single_nowait(second, try_to_stop_everyone, 0);
    kernel::time::wait_until(2_000_000, || stop::STOPPED.contains(second));
}

/// The second of two stoppers does not compete (no deadlock between the
/// two): it stops itself, and the winner's report says so.
fn a_second_stopper_stops_itself() -> Outcome {
    let second = others().iter().next().ok_or(Failure("no other CPU".into()))?;
    SECOND.store(second.index() as u32, Ordering::SeqCst);
    hooks::arm(hooks::points::STOP_WON, Some(CpuId::BOOT), Mode::Call(let_a_second_stopper_try));
    let report = stop::stop_other_cpus(Reason::Stop);
    kassert!(report.not_stopped.is_empty(), "not stopped: {:?}", report.not_stopped);
    kassert!(matches!(stop::how_stopped(second), Some((Method::Itself, _))), "{:?}", stop::how_stopped(second));
    Ok(())
}

/// A CPU that takes the STOP IPI and the NMI but never stops: after the
/// last attempt the report names it, and only it.
fn a_cpu_that_never_stops_is_named() -> Outcome {
    let targets = others();
    let deaf = targets.iter().last().ok_or(Failure("no other CPU".into()))?;
    hooks::arm(hooks::points::STOP_DEAF, Some(deaf), Mode::Fail);
    let report = stop::stop_other_cpus(Reason::Stop);
    kassert_eq!(report.not_stopped, CpuSet::single(deaf));
    kassert_eq!(report.attempts, 2);
    kassert_eq!(report.stopped, targets.difference(&CpuSet::single(deaf)));
    Ok(())
}

static GO: AtomicBool = AtomicBool::new(false);
static READY: AtomicU32 = AtomicU32::new(0);

fn panic_together(_: usize) {
    READY.fetch_add(1, Ordering::SeqCst);
    while !GO.load(Ordering::SeqCst) {
        core::hint::spin_loop();
    }
    panic!("second CPU panics at the same moment");
}

fn two_cpus_panicking_at_once_give_one_report() -> Outcome {
    let other = others().iter().next().ok_or(Failure("no other CPU".into()))?;
    calls::call_single_nowait(other, panic_together, 0).map_err(|e| Failure(format!("{e:?}")))?;
    kassert!(kernel::time::wait_until(5_000_000, || READY.load(Ordering::SeqCst) == 1));
    GO.store(true, Ordering::SeqCst);
    panic!("first CPU panics at the same moment");
}

fn panic_inside_stop_machine_still_stops_everyone() -> Outcome {
    let target = others().iter().last().ok_or(Failure("no other CPU".into()))?;
    let _ = stop_machine::stop_machine(&CpuSet::single(target), &|_| panic!("panic in stop-machine's RUN state"));
    Err(Failure("stop-machine returned after its function panicked".into()))
}

fn panic_inside_hotplug_still_stops_everyone() -> Outcome {
    let target = others().iter().last().ok_or(Failure("no other CPU".into()))?;
    hooks::arm(hooks::points::CPU_ACTIVE_DOWN, Some(target), Mode::Call(|| panic!("panic in a hotplug step")));
    let _ = hotplug::cpu_down(target);
    Err(Failure("cpu_down returned after its step panicked".into()))
}

fn crash_stop_saves_a_record_per_cpu() -> Outcome {
    kernel::time::delay_us(10_000);
    panic!("crash with records");
}
