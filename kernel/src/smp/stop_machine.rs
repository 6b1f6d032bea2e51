//! Stop-machine (docs/rules.md, Stop-machine): every online CPU leaves what it is
//! doing and walks PREPARE → DISABLE_IRQ → RUN → EXIT in lockstep. Each CPU
//! acks each state; the last to ack advances it. In PREPARE interrupts are
//! still on (a participant is an interrupt handler that acknowledged its own
//! IPI first, so it can take others, like Linux's stopper thread); from
//! DISABLE_IRQ every CPU has them off; in RUN the function runs on the chosen
//! CPU(s); at EXIT each restores its interrupt state. One at a time, and
//! never during a hotplug operation.
//!
//! **One truth on timeouts.** The run's generation, state and missing acks
//! are one word (`smp_core::lockstep`, loom-checked). The controller that
//! times out aborts only a run still before RUN, and only with the same
//! compare-and-swap an ack would make: either the late ack advanced the
//! state first (the run goes on), or the abort came first (the late ack
//! counts for nothing and its CPU leaves). An ack names its generation, and
//! each CPU acks each state of a run once, so an IPI left over from an
//! aborted run cannot make a CPU ack twice.
//!
//! **Waiting by halting.** A CPU that has acked and sees no change for
//! `stop_machine.spin_us` (default 10) halts, interrupts off, until the next
//! change: whoever changes the state wakes it with an NMI ([`wake_sleepers`]; the handshake is
//! `smp_core::sleep`, the lost-NMI fixup `arch/x86_64/nmi_halt.rs`). Under
//! an emulator with more vCPUs than host cores, CPUs that spin keep the host
//! cores from the CPUs that have yet to ack, and every state waits for host
//! time slices (README, Performance). The controller never halts: it
//! watches the deadline.

// A `StopError` carries the CPUs that did not ack: a `CpuSet`, 512 bytes at
// 4096 CPUs. It is returned only when a stop-machine failed, so its size
// costs nothing on the path that matters.
#![allow(clippy::result_large_err)]

use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
pub use smp_core::lockstep::Phase as State;
use smp_core::lockstep::{Ack, Lockstep, NoAbort};
use smp_core::sleep::{Sleeper, WakeSeq};
use smp_core::{AtomicCpuSet, CpuId, CpuSet, per_cpu};
use spin::{Mutex, Once};

use crate::arch::ipi::IpiKind;
use crate::arch::{cpu, irq};
use crate::hooks::{self, points};
use crate::percpu::{self, Activity, ThisCpu};
use crate::time::Deadline;

/// Why a stop-machine did not run its function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopError {
    /// These CPUs never acked `state` within the timeout; everyone left.
    NotAcked { state: State, cpus: CpuSet },
}

type Work<'a> = &'a (dyn Fn(CpuId) + Sync);

/// The one stop-machine in progress. Its generation, state and missing acks
/// are one word (`smp_core::lockstep`): an ack, an advance and an abort are
/// each one compare-and-swap, so a late ack and the controller's timeout
/// cannot both win.
struct Control {
    step: Lockstep,
    participants: AtomicCpuSet,
    /// `participants.len()`, which every advance resets the count to.
    count: AtomicU32,
    run_on: AtomicCpuSet,
    work: AtomicPtr<()>,
}

static CONTROL: Control = Control {
    step: Lockstep::new(),
    participants: AtomicCpuSet::new(),
    count: AtomicU32::new(0),
    run_on: AtomicCpuSet::new(),
    work: AtomicPtr::new(core::ptr::null_mut()),
};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
per_cpu! {
    /// Per CPU: the generation in whose RUN state it saw its interrupts off
    /// (for tests and reports). A CPU that was no participant keeps an older
    /// one, so it never counts for the last run.
    static IRQS_OFF_IN_RUN: PerCpu<AtomicU32> = AtomicU32::new(0);
}
static RUNS: AtomicU64 = AtomicU64::new(0);
per_cpu! {
    /// Per CPU: the generation whose DISABLE_IRQ state it has acked.
    static ACKED_DISABLE_IRQ: PerCpu<AtomicU32> = AtomicU32::new(0);
}
per_cpu! {
    /// Per CPU: the generation it takes part in. A STOP_MACHINE IPI taken while
    /// it already does (one left over from an aborted run, taken late, makes it
    /// join the next run; that run's own IPI then arrives in PREPARE, when
    /// interrupts are on) must not make it join twice.
    static JOINED: PerCpu<AtomicU32> = AtomicU32::new(0);
}
per_cpu! {
    /// Per CPU: the last (generation, state) it acked, as [`ack_key`]: an ack
    /// counts once per CPU per state per generation.
    static LAST_ACK: PerCpu<AtomicU64> = AtomicU64::new(0);
}
/// STOP_MACHINE IPIs ignored because their CPU already took part in that
/// generation, and second acks refused (a protocol error if ever non-zero).
static STALE_IPIS: AtomicU64 = AtomicU64::new(0);
static REFUSED_ACKS: AtomicU64 = AtomicU64::new(0);
/// Acks that found their state already gone: after an abort, the late
/// CPUs' acks; any other is a CPU acking a state it did not wait for.
static LATE_ACKS: AtomicU64 = AtomicU64::new(0);

fn ack_key(generation: u32, state: State) -> u64 {
    (u64::from(generation) << 8) | state as u64
}

/// Whether `cpu` has disabled its interrupts and acked DISABLE_IRQ in the
/// stop-machine now running (tests use it to act at that moment).
pub fn has_acked_disable_irq(cpu: CpuId) -> bool {
    let g = CONTROL.step.load().generation;
    g != 0 && ACKED_DISABLE_IRQ.of(cpu).load(Ordering::SeqCst) == g
}

/// The state of the stop-machine now running (or the last one's end).
pub fn state() -> State {
    CONTROL.step.load().phase
}

/// STOP_MACHINE IPIs ignored as stale, and second acks refused, since boot.
pub fn stale_ipis() -> u64 {
    STALE_IPIS.load(Ordering::SeqCst)
}

pub fn refused_acks() -> u64 {
    REFUSED_ACKS.load(Ordering::SeqCst)
}

/// Acks that found the run aborted or their state gone, since boot.
pub fn late_acks() -> u64 {
    LATE_ACKS.load(Ordering::SeqCst)
}

/// Whether `cpu` had interrupts off during the last RUN state.
pub fn irqs_were_off_in_run(cpu: CpuId) -> bool {
    let g = CONTROL.step.load().generation;
    g != 0 && IRQS_OFF_IN_RUN.of(cpu).load(Ordering::SeqCst) == g
}

/// Stop-machines completed.
pub fn runs() -> u64 {
    RUNS.load(Ordering::Relaxed)
}

fn timeout_us() -> u64 {
    crate::params::get_u64("stop_machine.timeout_ms", 10_000) * 1000
}

/// How long a waiter spins on an unchanged state before it halts
/// (`stop_machine.spin_us`; 0 halts at once).
fn spin_us() -> u64 {
    static SPIN_US: Once<u64> = Once::new();
    *SPIN_US.call_once(|| crate::params::get_u64("stop_machine.spin_us", 10))
}

per_cpu! {
    /// Per CPU: "halted (or about to be) until the state changes".
    static SLEEPERS: PerCpu<CachePadded<Sleeper>> = CachePadded::new(Sleeper::new());
}
/// Bumped on every change waiters wait for: a new state, or an abort.
static WAKES: WakeSeq = WakeSeq::new();
per_cpu! {
    /// Per CPU: wake-up NMIs sent to it, and those its NMI handler claimed.
    static WAKE_NMIS_SENT: PerCpu<AtomicU32> = AtomicU32::new(0);
}
per_cpu! {
    static WAKE_NMIS_CLAIMED: PerCpu<AtomicU32> = AtomicU32::new(0);
}
/// Halts of waiters (reports and tests).
static HALTS: AtomicU64 = AtomicU64::new(0);

/// Waiters that halted rather than spun, since boot.
pub fn halts() -> u64 {
    HALTS.load(Ordering::Relaxed)
}

/// Wake-up NMIs `cpu` has taken, since boot.
pub fn wake_nmis_taken(cpu: CpuId) -> u32 {
    WAKE_NMIS_CLAIMED.of(cpu).load(Ordering::Relaxed)
}

/// After a change the waiters wait for: wakes every participant that may be
/// halted.
fn wake_sleepers() {
    WAKES.bump();
    let me = percpu::current_cpu();
    let mut asleep = CpuSet::EMPTY;
    for cpu in CONTROL.participants.snapshot().iter().filter(|c| *c != me) {
        if SLEEPERS.of(cpu).must_wake() {
            WAKE_NMIS_SENT.of(cpu).fetch_add(1, Ordering::SeqCst);
            asleep.insert(cpu);
        }
    }
    super::fanout::send_nmi(&asleep);
}

/// Called by the NMI dispatcher: claims the NMI if a wake-up was sent here
/// and not yet claimed (two sent close together may arrive as one; the
/// count then lets a later NMI pass as the second, which is harmless).
pub fn claim_wake_nmi() -> bool {
    let claimed = WAKE_NMIS_CLAIMED.this().load(Ordering::Relaxed);
    if claimed == WAKE_NMIS_SENT.this().load(Ordering::SeqCst) {
        return false;
    }
    WAKE_NMIS_CLAIMED.this().store(claimed.wrapping_add(1), Ordering::Relaxed);
    true
}

/// A participant that has acked `seen` and waited long enough: halts until
/// the state changes, the run is aborted, or a new one begins.
fn halt_until_changed(me: CpuId, generation: u32, seen: State) {
    let sleeper = SLEEPERS.of(me);
    let seq = sleeper.prepare(&WAKES);
    let now = CONTROL.step.load();
    let unchanged = now.generation == generation && now.phase == seen;
    if unchanged {
        // Test hook: hold this CPU after its last look, before the halt: a
        // wake-up NMI taken here must still end the halt.
        let _ = hooks::point(points::STOP_MACHINE_BEFORE_HALT, me);
        HALTS.fetch_add(1, Ordering::Relaxed);
        cpu::halt_while_eq(WAKES.word(), seq);
    }
    sleeper.finish();
}

/// Runs `f` on every CPU of `run_on` (each gets its own id) while every
/// other online CPU waits with interrupts off. Waits are bounded: a CPU
/// that does not ack is named in the error and nothing runs. Excludes
/// hotplug for its whole length: a CPU that came online during RUN would
/// run with interrupts on, and one going down would leave a participant
/// that never acks.
pub fn stop_machine(run_on: &CpuSet, f: &(dyn Fn(CpuId) + Sync)) -> Result<(), StopError> {
    let _no_hotplug = super::hotplug::exclude();
    stop_machine_hotplug_excluded(run_on, f)
}

/// [`stop_machine`] for a caller that already excludes hotplug (hotplug itself).
pub(super) fn stop_machine_hotplug_excluded(run_on: &CpuSet, f: &(dyn Fn(CpuId) + Sync)) -> Result<(), StopError> {
    let _one = ONE_AT_A_TIME.lock();
    let me = percpu::current_cpu();
    let participants = super::ONLINE.snapshot();
    let c = &CONTROL;
    for cpu in participants.iter() {
        c.participants.insert(cpu);
    }
    for cpu in run_on.intersection(&participants).iter() {
        c.run_on.insert(cpu);
    }
    // SAFETY (of the later dereference in `participate`): `f` outlives every
    // use, because this function does not return before all participants
    // left EXIT or the run was aborted before RUN.
    c.work.store(&f as *const Work<'_> as *mut (), Ordering::SeqCst);
    let count = participants.len() as u32;
    c.count.store(count, Ordering::SeqCst);
    // Generation 0 means "none" in the per-CPU records.
    let generation = match c.step.load().generation.wrapping_add(1) {
        0 => 1,
        g => g,
    };
    JOINED.of(me).store(generation, Ordering::SeqCst);
    c.step.begin(generation, count as u16);
    let mut others = participants;
    others.remove(me);
    super::fanout::send_ipi(IpiKind::StopMachine, &others);
    let result = participate_as(me, generation, true);
    // Everyone has left (or was never reached): clear for the next run.
    c.work.store(core::ptr::null_mut(), Ordering::SeqCst);
    c.step.end(generation);
    wake_sleepers();
    for cpu in participants.iter() {
        c.participants.remove(cpu);
        c.run_on.remove(cpu);
    }
    if result.is_ok() {
        RUNS.fetch_add(1, Ordering::Relaxed);
    }
    result
}

/// The STOP_MACHINE IPI handler (the caller has already sent EOI).
pub fn on_stop_machine_ipi() {
    let me = percpu::current_cpu();
    // Test hook: hold this CPU in the handler, so that its IPI is taken late.
    let _ = hooks::point(points::STOP_MACHINE_IPI_ENTRY, me);
    let c = &CONTROL;
    let now = c.step.load();
    if !c.participants.contains(me) || matches!(now.phase, State::Idle | State::Aborted) {
        return;
    }
    if JOINED.of(me).swap(now.generation, Ordering::SeqCst) == now.generation {
        STALE_IPIS.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let _ = participate_as(me, now.generation, false);
}

/// Walks the states. The controller (`is_controller`) also watches the
/// deadline and aborts if some CPU never acks.
fn participate_as(me: CpuId, generation: u32, is_controller: bool) -> Result<(), StopError> {
    let c = &CONTROL;
    let irq_were_on = irq::are_enabled();
    let prev_activity = percpu::current().activity();
    percpu::current().set_activity(Activity::StopMachine);
    let mut seen = State::Idle;
    let mut deadline = Deadline::after_us(timeout_us());
    let mut spin_until = Deadline::after_us(spin_us());
    let mut result = Ok(());
    loop {
        let now = c.step.load();
        if now.generation != generation {
            break;
        }
        let state = now.phase;
        // Idle only ever follows the last EXIT ack (or the controller's reset).
        if !is_controller && matches!(state, State::Aborted | State::Idle) {
            break;
        }
        if state != seen && !matches!(state, State::Idle | State::Aborted) {
            seen = state;
            deadline = Deadline::after_us(timeout_us());
            spin_until = Deadline::after_us(spin_us());
            match state {
                State::Prepare => {
                    irq::enable();
                    // Test hook: act on this CPU while it has interrupts on
                    // inside the run (a stale IPI arrives here).
                    let _ = hooks::point(points::STOP_MACHINE_PREPARE, me);
                }
                State::DisableIrq => {
                    // Test hook: hold this CPU here, interrupts still on,
                    // while others already have theirs off (story 1,
                    // docs/stories/1-dying-flush.md).
                    let _ = hooks::point(points::STOP_MACHINE_DISABLE_IRQ, me);
                    irq::disable();
                }
                State::Run => {
                    if !irq::are_enabled() {
                        IRQS_OFF_IN_RUN.of(me).store(generation, Ordering::SeqCst);
                    }
                    if c.run_on.contains(me) {
                        let work = c.work.load(Ordering::SeqCst) as *const Work<'_>;
                        // SAFETY: `stop_machine` stored a pointer to its `f`
                        // and keeps it alive until every CPU left EXIT.
                        let f = unsafe { *work };
                        f(me);
                    }
                }
                State::Exit | State::Idle | State::Aborted => {}
            }
            if state == State::DisableIrq {
                ACKED_DISABLE_IRQ.of(me).store(generation, Ordering::SeqCst);
            }
            ack(me, generation, state);
            if state == State::Exit {
                if is_controller {
                    // Everyone must have left before the control block is reused.
                    crate::time::wait_until(timeout_us(), || c.step.load().phase != State::Exit);
                }
                break;
            }
        }
        if is_controller && deadline.expired() && seen != State::Exit {
            // Test hook: a late ack may land between the controller's look
            // and its decision; the decision is one compare-and-swap.
            let _ = hooks::point(points::STOP_MACHINE_BEFORE_ABORT, me);
            match c.step.abort(generation, state) {
                Ok(()) => {
                    wake_sleepers();
                    let cpus = not_acked(generation, state);
                    log::error!(
                        "stop-machine: {cpus:?} did not ack {state:?} within {} ms; abandoned",
                        timeout_us() / 1000
                    );
                    result = Err(StopError::NotAcked { state, cpus });
                    break;
                }
                Err(NoAbort::PastNoReturn) => {
                    let cpus = not_acked(generation, state);
                    log::error!(
                        "stop-machine: {cpus:?} did not ack {state:?} within {} ms; the function may have run, so waiting on",
                        timeout_us() / 1000
                    );
                    deadline = Deadline::after_us(timeout_us());
                }
                // The late ack won: the run goes on, with a new deadline.
                Err(NoAbort::Moved(_)) => deadline = Deadline::after_us(timeout_us()),
            }
            continue;
        }
        if !is_controller && seen != State::Idle && spin_until.expired() {
            halt_until_changed(me, generation, seen);
        } else {
            core::hint::spin_loop();
        }
    }
    percpu::current().set_activity(prev_activity);
    if irq_were_on {
        irq::enable()
    } else {
        irq::disable()
    }
    result
}

/// The participants whose last ack is not `state` of `generation`.
fn not_acked(generation: u32, state: State) -> CpuSet {
    let key = ack_key(generation, state);
    let mut cpus = CpuSet::EMPTY;
    for cpu in CONTROL.participants.snapshot().iter() {
        if LAST_ACK.of(cpu).load(Ordering::SeqCst) != key {
            cpus.insert(cpu);
        }
    }
    cpus
}

/// Acks `state` once for this CPU; the last ack advances the state and
/// wakes the waiters.
fn ack(me: CpuId, generation: u32, state: State) {
    let key = ack_key(generation, state);
    if LAST_ACK.of(me).swap(key, Ordering::SeqCst) == key {
        REFUSED_ACKS.fetch_add(1, Ordering::SeqCst);
        log::error!("stop-machine: {me} acked {state:?} of run {generation} twice; the second ack is refused");
        return;
    }
    let c = &CONTROL;
    match c.step.ack(generation, state, c.count.load(Ordering::SeqCst) as u16) {
        Ack::Advanced(_) => wake_sleepers(),
        Ack::Counted => {}
        Ack::Stale => {
            LATE_ACKS.fetch_add(1, Ordering::SeqCst);
        }
    }
}
