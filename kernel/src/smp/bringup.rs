//! Bringing APs to life: the order each AP follows (docs/rules.md, Bring-up;
//! story 4, docs/stories/4-ipi-vectors-before-online.md),
//! and the bounded, reporting start routine the boot CPU runs.
//!
//! The rule, in the order `ap_main` runs it: every IPI vector in the IDT,
//! the local APIC enabled, the call queue empty → only then set in `online`
//! → only then interrupts on. A CPU whose step fails is reported (CPU,
//! hardware id, step) and parked; it never appears online.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use smp_core::{CpuId, CpuSet, per_cpu};
use spin::Mutex;

use super::hotplug::StepId;
use crate::arch::start::{self, Delays, StartError, StartStep};
use crate::arch::{HwCpuId, cpu, irq};
use crate::hooks::{self, Action, points};
use crate::mem::vmem;
use crate::time::{self, Deadline};

/// The AP setup steps before online, in order (for tests that fail each in turn).
pub fn ap_steps() -> impl Iterator<Item = StepId> {
    super::hotplug::target_steps().map(|s| s.id).filter(|id| *id != StepId::CpuOnline)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum State {
    Offline = 0,
    Starting = 1,
    Failed = 2,
    Online = 3,
}

per_cpu! {
    static STATE: PerCpu<AtomicU8> = AtomicU8::new(State::Offline as u8);
}
per_cpu! {
    /// Index into the target steps of the step that failed.
    static FAILED_STEP: PerCpu<AtomicU8> = AtomicU8::new(0);
}
static STRAY_APS: AtomicU32 = AtomicU32::new(0);
/// Each CPU's stack (every CPU has its own; the set is a permutation). One
/// table under one lock rather than a `PerCpu`: moving a stack from one
/// owner to another, and checking that each has one owner, must see every
/// CPU's entry at once.
static STACKS: Mutex<Vec<Option<vmem::Stack>>> = Mutex::new(Vec::new());
/// The stacks of the batch being started, by trampoline ticket, and which
/// CPU took each ticket. All three are sized by [`init`] for every
/// possible CPU.
static TICKET_STACKS: Mutex<Vec<Option<vmem::Stack>>> = Mutex::new(Vec::new());
static TICKET_TAKER: Mutex<Vec<Option<CpuId>>> = Mutex::new(Vec::new());
/// Bring-up is one batch at a time (the trampoline's tickets are shared).
static BATCH: Mutex<()> = Mutex::new(());

const AP_STACK_PAGES: u64 = 16;

fn state(cpu: CpuId) -> State {
    match STATE.of(cpu).load(Ordering::SeqCst) {
        1 => State::Starting,
        2 => State::Failed,
        3 => State::Online,
        _ => State::Offline,
    }
}

fn set_state(cpu: CpuId, s: State) {
    STATE.of(cpu).store(s as u8, Ordering::SeqCst);
}

/// The one decision between an AP that comes online and a controller that
/// gives up on it: whoever moves `cpu` out of Starting first wins, and the
/// other side sees it.
fn leave_starting(cpu: CpuId, to: State) -> bool {
    STATE.of(cpu).compare_exchange(State::Starting as u8, to as u8, Ordering::SeqCst, Ordering::SeqCst).is_ok()
}

/// Why a CPU did not come online.
#[derive(Clone, Copy, Debug)]
pub struct BringupError {
    pub cpu: CpuId,
    /// Its hardware id, if the firmware's tables give it one.
    pub hw_id: Option<HwCpuId>,
    pub step: &'static str,
    pub detail: &'static str,
    /// How its start IPI failed, when that is why.
    pub start: Option<StartError>,
}

impl fmt::Display for BringupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.start {
            Some(e) => write!(f, "{} ({}) stays offline: {e}", self.cpu, HwName(self.hw_id)),
            None => {
                write!(f, "{} ({}) stays offline: {} failed: {}", self.cpu, HwName(self.hw_id), self.step, self.detail)
            }
        }
    }
}

/// A hardware id for a report: the firmware may have listed none.
struct HwName(Option<HwCpuId>);

impl fmt::Display for HwName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, "{id}"),
            None => f.write_str("no hardware id"),
        }
    }
}

/// What one bring-up batch achieved.
#[derive(Debug, Default)]
pub struct Report {
    pub started: CpuSet,
    pub errors: Vec<BringupError>,
    pub elapsed_us: u64,
}

/// How a batch is started.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// All APs of the batch at once (each finds its identity from CPUID), or one by one.
    pub parallel: bool,
    pub delays: Delays,
    /// How long an AP may take from STARTUP to online.
    pub timeout_ms: u64,
}

impl Options {
    pub fn from_params() -> Options {
        Options {
            parallel: crate::params::get_bool("smp.parallel", true),
            delays: if crate::params::get_bool("smp.fast_start", false) { Delays::FAST } else { Delays::MP_SPEC },
            timeout_ms: crate::params::get_u64("smp.ap_timeout_ms", 5_000),
        }
    }
}

/// Prepares the trampoline (boot CPU, once, before any AP starts).
pub fn init() -> Result<(), &'static str> {
    let possible = smp_core::percpu::possible();
    STACKS.lock().resize(possible, None);
    TICKET_STACKS.lock().resize(possible, None);
    TICKET_TAKER.lock().resize(possible, None);
    start::prepare()
}

fn stack_for(cpu: CpuId) -> Result<vmem::Stack, &'static str> {
    let mut stacks = STACKS.lock();
    if let Some(s) = stacks[cpu.index()] {
        return Ok(s);
    }
    let s = vmem::alloc_stack(AP_STACK_PAGES).map_err(|_| "out of memory for the AP stack")?;
    stacks[cpu.index()] = Some(s);
    Ok(s)
}

/// Starts `cpus` and waits (bounded) for each to come online or fail. With
/// `watch`, calls it once for every CPU the instant it is seen online.
pub fn start(cpus: &CpuSet, opts: Options, mut watch: Option<&mut dyn FnMut(CpuId)>) -> Report {
    let _batch = BATCH.lock();
    let begin = time::rdtsc();
    let mut report = Report::default();
    let list: Vec<CpuId> = cpus.iter().filter(|c| *c != CpuId::BOOT && state(*c) != State::Online).collect();
    let mut launched = Vec::new();
    let mut batch: Vec<CpuId> = Vec::new();
    for (i, &cpu) in list.iter().enumerate() {
        batch.push(cpu);
        if !opts.parallel || i + 1 == list.len() {
            launch_batch(&batch, opts, &mut report, &mut launched, &mut watch);
            batch.clear();
        }
    }
    report.elapsed_us = time::ticks_to_us(time::rdtsc() - begin);
    report
}

fn launch_batch(
    batch: &[CpuId],
    opts: Options,
    report: &mut Report,
    launched: &mut Vec<CpuId>,
    watch: &mut Option<&mut dyn FnMut(CpuId)>,
) {
    if let Err(why) = start::begin_batch() {
        report.errors.extend(batch.iter().map(|&cpu| error(cpu, "trampoline", why)));
        return;
    }
    TICKET_TAKER.lock().fill(None);
    let mut go = Vec::new();
    for &cpu in batch {
        match stack_for(cpu) {
            Ok(s) => {
                start::set_ticket_stack(go.len(), s.top.as_u64());
                TICKET_STACKS.lock()[go.len()] = Some(s);
                go.push(cpu);
            }
            Err(e) => report.errors.push(error(cpu, "stack", e)),
        }
    }
    // Tickets are handed out in arrival order, so in a parallel batch a CPU
    // may run on another's stack; `ap_main` takes the stack of its ticket as
    // its own, and `settle_stacks` gives the CPUs that never came the
    // stacks nobody took, so every CPU still owns exactly one stack.
    for &cpu in &go {
        start::forget(cpu);
        // A job its last life abandoned is dropped now, before it starts:
        // one spawned right after it is online must survive.
        super::worker::reset(cpu);
        set_state(cpu, State::Starting);
        if let Err(e) = start::send_init(cpu) {
            fail_start(cpu, e, report);
        }
    }
    time::delay_us(opts.delays.after_init_us);
    for step in [StartStep::Startup1, StartStep::Startup2] {
        for &cpu in go.iter().filter(|c| state(**c) == State::Starting) {
            // Test hook: a CPU that never answers its SIPI (it stays in
            // wait-for-SIPI after the INIT).
            if hooks::point(points::BRINGUP_NO_SIPI, cpu) == Action::Fail {
                continue;
            }
            if let Err(e) = start::send_startup(cpu, step) {
                fail_start(cpu, e, report);
            }
        }
        time::delay_us(opts.delays.after_sipi_us);
    }
    launched.extend_from_slice(&go);
    let deadline = Deadline::after_ms(opts.timeout_ms);
    let mut seen = CpuSet::EMPTY;
    let mut gave_up = false;
    loop {
        let mut pending = false;
        for &cpu in &go {
            match state(cpu) {
                State::Starting => pending = true,
                // Between winning `leave_starting` and entering `online`.
                State::Online if !super::ONLINE.contains(cpu) => pending = true,
                State::Online if !seen.contains(cpu) => {
                    seen.insert(cpu);
                    report.started.insert(cpu);
                    if let Some(w) = watch.as_mut() {
                        w(cpu);
                    }
                }
                _ => {}
            }
        }
        if !pending {
            break;
        }
        if deadline.expired() && !gave_up {
            gave_up = true;
            for &cpu in &go {
                // Test hook: a late AP may come online right here.
                let _ = hooks::point(points::BRINGUP_BEFORE_TIMEOUT, cpu);
                if !leave_starting(cpu, State::Failed) {
                    // It came online (or failed) just now: the loop sees which.
                    continue;
                }
                // Put it back into wait-for-SIPI so it cannot wake later,
                // unnoticed; if it runs already, it finds it lost and parks.
                let _ = start::reset_to_wait_for_start(cpu);
                let arrived = TICKET_TAKER.lock().contains(&Some(cpu));
                report.errors.push(if arrived {
                    error(cpu, "coming online", "it ran, but was not online before the timeout")
                } else {
                    error(cpu, "answering the STARTUP IPI", "no sign of life before the timeout")
                });
            }
        }
        core::hint::spin_loop();
    }
    settle_stacks(&go);
    for &cpu in &go {
        if state(cpu) == State::Failed && !report.errors.iter().any(|e| e.cpu == cpu) {
            let failed = FAILED_STEP.of(cpu).load(Ordering::SeqCst) as usize;
            let step = super::hotplug::target_steps().nth(failed).map_or("?", |s| s.id.name());
            report.errors.push(error(cpu, step, "the step reported failure"));
        }
    }
}

/// After a batch: a CPU that never took a ticket does not own the stack it
/// was given (a CPU that did arrive may run on it); it gets one that no CPU
/// took instead. There are exactly as many of those as CPUs that never came.
fn settle_stacks(go: &[CpuId]) {
    let takers = TICKET_TAKER.lock().clone();
    let tickets = TICKET_STACKS.lock();
    let mut stacks = STACKS.lock();
    let mut untaken = (0..go.len()).filter(|t| takers[*t].is_none());
    for &cpu in go.iter().filter(|c| !takers[..go.len()].contains(&Some(**c))) {
        stacks[cpu.index()] = untaken.next().and_then(|t| tickets[t]);
    }
}

/// Whether no two CPUs own the same stack (tests check it after faults).
pub fn stacks_have_one_owner() -> bool {
    let stacks = STACKS.lock();
    let owned: Vec<u64> = stacks.iter().flatten().map(|s| s.top.as_u64()).collect();
    owned.iter().enumerate().all(|(i, top)| !owned[i + 1..].contains(top))
}

/// The stack `cpu` owns, as (lowest usable address, top).
pub fn stack_of(cpu: CpuId) -> Option<(u64, u64)> {
    STACKS.lock().get(cpu.index()).copied().flatten().map(|s| (s.bottom.as_u64(), s.top.as_u64()))
}

fn fail_start(cpu: CpuId, e: StartError, report: &mut Report) {
    leave_starting(cpu, State::Failed);
    report.errors.push(BringupError { start: Some(e), ..error(cpu, e.step.name(), "the start IPI failed") });
}

fn error(cpu: CpuId, step: &'static str, detail: &'static str) -> BringupError {
    BringupError { cpu, hw_id: start::hw_id(cpu), step, detail, start: None }
}

/// CPUs between STARTUP and online (send-stop must catch them too).
pub fn starting() -> CpuSet {
    let mut s = CpuSet::EMPTY;
    for (cpu, state) in STATE.iter() {
        if state.load(Ordering::SeqCst) == State::Starting as u8 {
            s.insert(cpu);
        }
    }
    s
}

/// An AP that found no entry for its APIC id.
pub fn note_stray_ap(_hw_id: HwCpuId) {
    STRAY_APS.fetch_add(1, Ordering::SeqCst);
}

pub fn stray_aps() -> u32 {
    STRAY_APS.load(Ordering::SeqCst)
}

/// The AP's side, from its first Rust instruction: the setup steps in
/// order, then online, then interrupts, then idle.
pub fn ap_main(cpu: CpuId, ticket: u32) -> ! {
    if let Some(s) = TICKET_STACKS.lock()[ticket as usize] {
        debug_assert_eq!(s.top.as_u64(), start::ticket_stack_top(ticket));
        TICKET_TAKER.lock()[ticket as usize] = Some(cpu);
        STACKS.lock()[cpu.index()] = Some(s);
    }
    // Test hook: hold a CPU in its first Rust code, before it has an IDT.
    let _ = hooks::point(points::AP_ENTRY, cpu);
    // No allocation here: this frame is abandoned, not returned from, when
    // the CPU goes down.
    for (i, step) in super::hotplug::target_steps().enumerate() {
        if step.id == StepId::CpuOnline {
            // Test hook: hold a CPU after INIT-SIPI-SIPI, before it is online.
            let _ = hooks::point(points::AP_BEFORE_ONLINE, cpu);
        }
        let result = match hooks::point(step.id.up_hook(), cpu) {
            Action::Fail => Err("injected by a test hook"),
            Action::Continue => step.startup.map_or(Ok(()), |f| f(cpu)),
        };
        if let Err(why) = result {
            log::error!("{cpu}: bring-up step {} failed: {why}; staying offline", step.id.name());
            // Undo the steps done, newest first, then park.
            let all = super::hotplug::target_steps().count();
            for done in super::hotplug::target_steps().rev().skip(all - i) {
                if let Some(t) = done.teardown {
                    let _ = t(cpu);
                }
            }
            FAILED_STEP.of(cpu).store(i as u8, Ordering::SeqCst);
            // Already Failed if the controller gave up on it first.
            leave_starting(cpu, State::Failed);
            cpu::halt_forever();
        }
    }
    irq::enable();
    super::idle::idle()
}

/// Whether `cpu` can take an IPI: the kernel IDT (every IPI vector) loaded,
/// its local APIC enabled, its call queue empty. Checked by `mark_online`
/// and, from other CPUs, by the tests.
pub fn ipi_ready(cpu: CpuId) -> Result<(), &'static str> {
    start::ipi_hardware_ready(cpu)?;
    if !super::calls::queue(cpu).is_empty() && !super::calls::skip_queue_check(cpu) {
        return Err("its call queue is not empty");
    }
    Ok(())
}

/// The `cpu.online` step: sets `cpu` (the running CPU) online, checking
/// first that it can take an IPI and has not enabled interrupts yet.
/// A CPU whose controller already gave up on it (timed out) backs off
/// instead: it is reported failed, and must not appear online.
pub fn mark_online(cpu: CpuId) -> Result<(), &'static str> {
    debug_assert_eq!(ipi_ready(cpu), Ok(()), "{cpu} about to go online but not ready for IPIs");
    debug_assert!(!irq::are_enabled(), "{cpu} enabled interrupts before going online");
    if !leave_starting(cpu, State::Online) {
        return Err("too late: the boot CPU gave up waiting for it");
    }
    super::ONLINE.insert(cpu);
    // Test hook: hold a CPU at the instant it is online (interrupts still
    // off, whatever steps come later), so a test sees it exactly as a sender
    // that finds it online does.
    let _ = hooks::point(points::CPU_ONLINE_ENTERED, cpu);
    Ok(())
}

/// The CPU went offline (hotplug): it may be started again.
pub fn note_offline(cpu: CpuId) {
    set_state(cpu, State::Offline);
}
