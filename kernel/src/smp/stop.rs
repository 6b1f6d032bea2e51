//! Send-stop (docs/rules.md, Send-stop; story 5,
//! docs/stories/5-stop-retry-starting-cpus.md): stopping every other CPU on
//! panic or shutdown, including a CPU spinning with interrupts off and one that
//! was still starting when the stop began.
//!
//! The first CPU to start a stop wins; any other CPU that tries meanwhile
//! stops itself instead (no deadlock between two stoppers). Attempt 1 sends
//! the maskable STOP IPI; each later attempt (the **stop retry**) recomputes
//! who still runs (online or starting, not yet stopped) and sends NMIs. The
//! attempt number is passed to the sending method. A stopped CPU marks
//! itself stopped as its very last act; a crash stop first saves a register
//! record.

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

use smp_core::{AtomicCpuSet, CpuId, CpuSet, per_cpu};

use crate::arch::cpu::{self, Registers};
use crate::arch::ipi::IpiKind;
use crate::arch::start;
use crate::percpu::{self, Activity};
use crate::time::Deadline;

/// CPUs that have stopped for good.
pub static STOPPED: AtomicCpuSet = AtomicCpuSet::new();

/// Why the CPUs are being stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Shutdown: stop and halt.
    Stop,
    /// Panic: save a register record first, for the crash report.
    Crash,
}

/// How a CPU was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The maskable STOP IPI.
    Ipi,
    /// An NMI (it had interrupts off, or was still starting).
    Nmi,
    /// It stopped itself (a second stopper, or a second panicking CPU).
    Itself,
    /// INIT, sent by the stopper: a CPU still starting, with no IDT yet
    /// (an NMI would triple-fault it and reset the machine). Wait-for-SIPI
    /// is stopped.
    Init,
}

/// What a stopped CPU saved (crash stops only).
#[derive(Clone, Copy, Debug)]
pub struct CrashRecord {
    /// Where it was: interrupted there, or where it stopped itself.
    pub regs: Registers,
    pub was: Activity,
    /// Its frame pointer when it stopped: its backtrace starts there.
    pub frame_pointer: u64,
}

const NOBODY: u32 = u32::MAX;
static STOPPER: AtomicU32 = AtomicU32::new(NOBODY);
static REASON_CRASH: AtomicBool = AtomicBool::new(false);
/// The attempt in progress (0: none).
static ATTEMPT: AtomicU32 = AtomicU32::new(0);
per_cpu! {
    static METHOD: PerCpu<AtomicU8> = AtomicU8::new(0);
}
per_cpu! {
    static STOPPED_AT: PerCpu<AtomicU32> = AtomicU32::new(0);
}
/// One CPU's crash record, written by that CPU as it stops (`ip` last: a
/// reader that sees it nonzero sees the rest).
struct RecordSlot {
    ip: AtomicU64,
    sp: AtomicU64,
    flags: AtomicU64,
    was: AtomicU32,
    frame_pointer: AtomicU64,
}

per_cpu! {
    static RECORDS: PerCpu<RecordSlot> = RecordSlot {
        ip: AtomicU64::new(0),
        sp: AtomicU64::new(0),
        flags: AtomicU64::new(0),
        was: AtomicU32::new(0),
        frame_pointer: AtomicU64::new(0),
    };
}

/// The outcome of [`stop_other_cpus`].
#[derive(Clone, Copy, Debug)]
pub struct Report {
    /// The CPUs that stopped.
    pub stopped: CpuSet,
    /// The CPUs still running after the last attempt.
    pub not_stopped: CpuSet,
    pub attempts: u32,
}

/// A report's attempt count, as the panic line prints it. No attempt at all
/// means every other CPU had stopped itself before the stopper looked (a
/// second panicking CPU on a 2-CPU machine does).
pub struct Attempts(pub u32);

impl core::fmt::Display for Attempts {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            0 => f.write_str("each had stopped itself: no attempt needed"),
            n => write!(f, "{n} attempt(s)"),
        }
    }
}

/// How `cpu` stopped, and at which attempt.
pub fn how_stopped(cpu: CpuId) -> Option<(Method, u32)> {
    let m = match METHOD.of(cpu).load(Ordering::SeqCst) {
        1 => Method::Ipi,
        2 => Method::Nmi,
        3 => Method::Itself,
        4 => Method::Init,
        _ => return None,
    };
    Some((m, STOPPED_AT.of(cpu).load(Ordering::SeqCst)))
}

/// The register record `cpu` saved, if it stopped for a crash.
pub fn crash_record(cpu: CpuId) -> Option<CrashRecord> {
    let r = RECORDS.of(cpu);
    let ip = r.ip.load(Ordering::SeqCst);
    (ip != 0).then(|| CrashRecord {
        regs: Registers { ip, sp: r.sp.load(Ordering::SeqCst), flags: r.flags.load(Ordering::SeqCst) },
        was: Activity::from_u32(r.was.load(Ordering::SeqCst)),
        frame_pointer: r.frame_pointer.load(Ordering::SeqCst),
    })
}

/// The CPU that started the stop in progress, if any.
pub fn stopper() -> Option<CpuId> {
    CpuId::new(STOPPER.load(Ordering::SeqCst) as usize)
}

fn max_attempts() -> u32 {
    crate::params::get_u64("stop.max_attempts", 3).clamp(1, 10) as u32
}

fn wait_ms() -> u64 {
    crate::params::get_u64("stop.wait_ms", 1_000)
}

/// Who still runs: online or starting, not stopped, not the caller.
fn still_running(me: CpuId) -> CpuSet {
    let mut s = super::ONLINE.snapshot().union(&super::bringup::starting());
    s = s.difference(&STOPPED.snapshot());
    s.remove(me);
    s
}

/// The sending method: the maskable STOP IPI first, NMIs from attempt 2.
/// A CPU still starting that has no IDT yet (in the trampoline, or in its
/// first Rust code) cannot take an NMI: INIT stops it instead, and the
/// stopper marks it stopped, since it cannot mark itself.
fn send(cpus: &CpuSet, attempt: u32) {
    if attempt == 1 {
        super::fanout::send_ipi(IpiKind::Stop, cpus);
        return;
    }
    let starting = super::bringup::starting();
    let mut nmis = CpuSet::EMPTY;
    for cpu in cpus.iter() {
        if starting.contains(cpu) && !cpu::can_take_nmi(cpu) {
            if start::reset_to_wait_for_start(cpu).is_ok() {
                mark_stopped(cpu, Method::Init);
            }
        } else {
            nmis.insert(cpu);
        }
    }
    super::fanout::send_nmi(&nmis);
}

/// Stops every other CPU and reports who stopped. If another CPU's stop is
/// already in progress, this CPU stops itself instead (it never returns).
pub fn stop_other_cpus(reason: Reason) -> Report {
    let me = percpu::current_cpu();
    if let Err(owner) = STOPPER.compare_exchange(NOBODY, me.index() as u32, Ordering::AcqRel, Ordering::Acquire)
        && owner != me.index() as u32
    {
        // Someone else is stopping everybody: be stopped, don't compete.
        stop_this_cpu(Method::Itself, None);
    }
    REASON_CRASH.store(reason == Reason::Crash, Ordering::SeqCst);
    // Test hook: act once this CPU has won, before its first attempt.
    let _ = crate::hooks::point(crate::hooks::points::STOP_WON, me);
    let mut attempts = 0;
    for attempt in 1..=max_attempts() {
        let targets = still_running(me);
        if targets.is_empty() {
            break;
        }
        attempts = attempt;
        ATTEMPT.store(attempt, Ordering::SeqCst);
        if attempt > 1 {
            log::warn!("stop: {targets:?} still running after attempt {}; retrying with NMIs", attempt - 1);
        }
        send(&targets, attempt);
        let d = Deadline::after_ms(wait_ms());
        while !still_running(me).is_empty() && !d.expired() {
            core::hint::spin_loop();
        }
    }
    let not_stopped = still_running(me);
    if !not_stopped.is_empty() {
        log::error!("stop: {not_stopped:?} could not be stopped after {attempts} attempt(s)");
    }
    Report { stopped: STOPPED.snapshot(), not_stopped, attempts }
}

/// A CPU that panicked while another CPU reports its own panic: a crash
/// stop is under way (or about to be), so it saves its record and stops.
pub fn stop_after_losing_panic_race() -> ! {
    REASON_CRASH.store(true, Ordering::SeqCst);
    stop_this_cpu(Method::Itself, None)
}

/// Handler of the maskable STOP IPI; `interrupted` is where it found the CPU.
pub fn on_stop_ipi(interrupted: Registers) -> ! {
    stop_this_cpu(Method::Ipi, Some(interrupted))
}

/// Called by the NMI dispatcher: claims the NMI if a stop is in progress
/// and this CPU is one to be stopped.
pub fn on_nmi(interrupted: Registers) -> bool {
    let me = percpu::current_cpu();
    let stopper = STOPPER.load(Ordering::SeqCst);
    if stopper == NOBODY || stopper == me.index() as u32 || ATTEMPT.load(Ordering::SeqCst) < 2 {
        return false;
    }
    stop_this_cpu(Method::Nmi, Some(interrupted))
}

/// Leaves `online`, saves the crash record if asked, marks itself stopped
/// (the very last act) and halts with interrupts off. Never returns.
pub fn stop_this_cpu(how: Method, interrupted: Option<Registers>) -> ! {
    crate::arch::irq::disable();
    let me = percpu::current();
    let cpu = me.cpu();
    if crate::hooks::point(crate::hooks::points::STOP_DEAF, cpu) == crate::hooks::Action::Fail {
        // Test hook: a wedged CPU, which takes the STOP and the NMIs but
        // never gets as far as saying it stopped.
        loop {
            core::hint::spin_loop();
        }
    }
    if REASON_CRASH.load(Ordering::SeqCst) {
        let r = RECORDS.of(cpu);
        // From an interrupt: where it was interrupted. Stopping itself:
        // here (the frame that called into the stop).
        let regs = interrupted.unwrap_or_else(Registers::here);
        r.sp.store(regs.sp, Ordering::SeqCst);
        r.flags.store(regs.flags, Ordering::SeqCst);
        r.was.store(me.activity() as u32, Ordering::SeqCst);
        r.frame_pointer.store(crate::backtrace::current_rbp(), Ordering::SeqCst);
        r.ip.store(regs.ip, Ordering::SeqCst);
    }
    me.set_activity(Activity::Stopped);
    mark_stopped(cpu, how);
    cpu::halt_forever()
}

/// Out of `online`, and the books say how and at which attempt; the last
/// mark is `STOPPED` itself (by the CPU, its very last act; or by the
/// stopper, for a CPU it put into wait-for-SIPI).
fn mark_stopped(cpu: CpuId, how: Method) {
    super::ONLINE.remove(cpu);
    super::ACTIVE.remove(cpu);
    METHOD.of(cpu).store(how as u8 + 1, Ordering::SeqCst);
    STOPPED_AT.of(cpu).store(ATTEMPT.load(Ordering::SeqCst), Ordering::SeqCst);
    STOPPED.insert(cpu);
}

/// Prints how every CPU stopped (and its crash record).
pub fn print_report(report: &Report) {
    for cpu in report.stopped.iter() {
        let (how, attempt) = how_stopped(cpu).unwrap_or((Method::Itself, 0));
        match crash_record(cpu) {
            Some(r) => {
                log::error!(
                    "stop: {cpu} stopped by {how:?} at attempt {attempt}; was {} at RIP {:#x} RSP {:#x} RFLAGS {:#x}",
                    r.was.describe(),
                    r.regs.ip,
                    r.regs.sp,
                    r.regs.flags
                );
                // Its stack stays as it was: it halted.
                crate::backtrace::print_from(cpu.index(), r.frame_pointer);
            }
            None => log::info!("stop: {cpu} stopped by {how:?} at attempt {attempt}"),
        }
    }
    if !report.not_stopped.is_empty() {
        log::error!("stop: NOT stopped: {:?}", report.not_stopped);
    }
}
