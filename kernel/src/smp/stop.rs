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

use smp_core::{AtomicCpuSet, CpuId, CpuSet, MAX_CPUS};

use crate::arch::x86_64::apic;
use crate::arch::x86_64::vectors::IpiKind;
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
#[derive(Clone, Copy, Debug, Default)]
pub struct CrashRecord {
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
    pub was: u32,
    /// Its frame pointer when it stopped: its backtrace starts there.
    pub rbp: u64,
}

const NOBODY: u32 = u32::MAX;
static STOPPER: AtomicU32 = AtomicU32::new(NOBODY);
static REASON_CRASH: AtomicBool = AtomicBool::new(false);
/// The attempt in progress (0: none).
static ATTEMPT: AtomicU32 = AtomicU32::new(0);
static METHOD: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(0) }; MAX_CPUS];
static STOPPED_AT: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
static RECORDS: [[AtomicU64; 5]; MAX_CPUS] = [const { [const { AtomicU64::new(0) }; 5] }; MAX_CPUS];

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
    let m = match METHOD[cpu.index()].load(Ordering::SeqCst) {
        1 => Method::Ipi,
        2 => Method::Nmi,
        3 => Method::Itself,
        4 => Method::Init,
        _ => return None,
    };
    Some((m, STOPPED_AT[cpu.index()].load(Ordering::SeqCst)))
}

/// The register record `cpu` saved, if it stopped for a crash.
pub fn crash_record(cpu: CpuId) -> Option<CrashRecord> {
    let r = &RECORDS[cpu.index()];
    let rip = r[0].load(Ordering::SeqCst);
    (rip != 0).then(|| CrashRecord {
        rip,
        rsp: r[1].load(Ordering::SeqCst),
        rflags: r[2].load(Ordering::SeqCst),
        was: r[3].load(Ordering::SeqCst) as u32,
        rbp: r[4].load(Ordering::SeqCst),
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
    let starting = super::bringup::starting();
    for cpu in cpus.iter() {
        let Some(id) = super::topology::apic_id(cpu) else { continue };
        if attempt == 1 {
            apic::send_ipi(IpiKind::Stop, id);
        } else if starting.contains(cpu) && !crate::arch::x86_64::idt::is_loaded_on(cpu) {
            if apic::startup::send_init(id).is_ok() {
                mark_stopped(cpu, Method::Init);
            }
        } else {
            apic::send_nmi(id);
        }
    }
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
    let _ = crate::hooks::point("stop.won", me);
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

/// Handler of the maskable STOP IPI.
pub fn on_stop_ipi(frame: &x86_64::structures::idt::InterruptStackFrame) -> ! {
    stop_this_cpu(Method::Ipi, Some(frame))
}

/// Called by the NMI dispatcher: claims the NMI if a stop is in progress
/// and this CPU is one to be stopped.
pub fn on_nmi(frame: &x86_64::structures::idt::InterruptStackFrame) -> bool {
    let me = percpu::current_cpu();
    let stopper = STOPPER.load(Ordering::SeqCst);
    if stopper == NOBODY || stopper == me.index() as u32 || ATTEMPT.load(Ordering::SeqCst) < 2 {
        return false;
    }
    stop_this_cpu(Method::Nmi, Some(frame))
}

/// Leaves `online`, saves the crash record if asked, marks itself stopped
/// (the very last act) and halts with interrupts off. Never returns.
pub fn stop_this_cpu(how: Method, frame: Option<&x86_64::structures::idt::InterruptStackFrame>) -> ! {
    x86_64::instructions::interrupts::disable();
    let me = percpu::current();
    let cpu = me.cpu();
    if crate::hooks::point("stop.deaf", cpu) == crate::hooks::Action::Fail {
        // Test hook: a wedged CPU, which takes the STOP and the NMIs but
        // never gets as far as saying it stopped.
        loop {
            core::hint::spin_loop();
        }
    }
    if REASON_CRASH.load(Ordering::SeqCst) {
        let r = &RECORDS[cpu.index()];
        // From an interrupt: where it was interrupted. Stopping itself:
        // here (the frame that called into the stop).
        let (rip, rsp, rflags) = match frame {
            Some(f) => (f.instruction_pointer.as_u64(), f.stack_pointer.as_u64(), f.cpu_flags.bits()),
            None => here_registers(),
        };
        r[1].store(rsp, Ordering::SeqCst);
        r[2].store(rflags, Ordering::SeqCst);
        r[3].store(me.activity() as u64, Ordering::SeqCst);
        r[4].store(crate::backtrace::current_rbp(), Ordering::SeqCst);
        r[0].store(rip, Ordering::SeqCst);
    }
    me.set_activity(Activity::Stopped);
    mark_stopped(cpu, how);
    crate::power::halt_forever()
}

/// Out of `online`, and the books say how and at which attempt; the last
/// mark is `STOPPED` itself (by the CPU, its very last act; or by the
/// stopper, for a CPU it put into wait-for-SIPI).
fn mark_stopped(cpu: CpuId, how: Method) {
    super::ONLINE.remove(cpu);
    super::ACTIVE.remove(cpu);
    METHOD[cpu.index()].store(how as u8 + 1, Ordering::SeqCst);
    STOPPED_AT[cpu.index()].store(ATTEMPT.load(Ordering::SeqCst), Ordering::SeqCst);
    STOPPED.insert(cpu);
}

/// RIP, RSP and RFLAGS of the calling code.
fn here_registers() -> (u64, u64, u64) {
    let (rip, rsp, rflags): (u64, u64, u64);
    // SAFETY: reads registers only; `pushfq; pop` leaves the stack as it was.
    unsafe {
        core::arch::asm!(
            "lea {rip}, [rip]",
            "mov {rsp}, rsp",
            "pushfq",
            "pop {fl}",
            rip = out(reg) rip,
            rsp = out(reg) rsp,
            fl = out(reg) rflags,
        )
    };
    (rip, rsp, rflags)
}

/// Prints how every CPU stopped (and its crash record).
pub fn print_report(report: &Report) {
    for cpu in report.stopped.iter() {
        let (how, attempt) = how_stopped(cpu).unwrap_or((Method::Itself, 0));
        match crash_record(cpu) {
            Some(r) => {
                log::error!(
                    "stop: {cpu} stopped by {how:?} at attempt {attempt}; was {:?} at RIP {:#x} RSP {:#x} RFLAGS {:#x}",
                    activity_name(r.was),
                    r.rip,
                    r.rsp,
                    r.rflags
                );
                // Its stack stays as it was: it halted.
                crate::backtrace::print_from(cpu.index(), r.rbp);
            }
            None => log::info!("stop: {cpu} stopped by {how:?} at attempt {attempt}"),
        }
    }
    if !report.not_stopped.is_empty() {
        log::error!("stop: NOT stopped: {:?}", report.not_stopped);
    }
}

fn activity_name(v: u32) -> &'static str {
    match v {
        1 => "idle",
        2 => "running",
        3 => "in an IPI handler",
        4 => "in stop-machine",
        5 => "parked",
        _ => "booting",
    }
}
