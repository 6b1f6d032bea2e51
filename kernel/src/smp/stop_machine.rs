//! Stop-machine (docs/rules.md, Stop-machine): every online CPU leaves what it is
//! doing and walks PREPARE → DISABLE_IRQ → RUN → EXIT in lockstep. Each CPU
//! acks each state; the last to ack advances it. In PREPARE interrupts are
//! still on (a participant is an interrupt handler that acknowledged its own
//! IPI first, so it can take others, like Linux's stopper thread); from
//! DISABLE_IRQ every CPU has them off; in RUN the function runs on the chosen
//! CPU(s); at EXIT each restores its interrupt state. One at a time.
//!
//! **Waiting by halting.** A CPU that has acked and sees no change for
//! `stop_machine.spin_us` (default 10) halts, interrupts off, until the next
//! change: whoever changes the state wakes it with an NMI ([`wake_sleepers`]; the handshake is
//! `smp_core::sleep`, the lost-NMI fixup `arch/x86_64/nmi_halt.rs`). Under
//! an emulator with more vCPUs than host cores, CPUs that spin keep the host
//! cores from the CPUs that have yet to ack, and every state waits for host
//! time slices (README, Performance). The controller never halts: it
//! watches the deadline.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use smp_core::sleep::{Sleeper, WakeSeq};
use smp_core::{AtomicCpuSet, CpuId, CpuSet, MAX_CPUS};
use spin::{Mutex, Once};
use x86_64::instructions::interrupts;

use crate::arch::x86_64::vectors::IpiKind;
use crate::arch::x86_64::{apic, nmi_halt};
use crate::hooks;
use crate::percpu::{self, Activity};
use crate::time::Deadline;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum State {
    Idle = 0,
    Prepare = 1,
    DisableIrq = 2,
    Run = 3,
    Exit = 4,
}

impl State {
    fn from_u32(v: u32) -> State {
        match v {
            1 => State::Prepare,
            2 => State::DisableIrq,
            3 => State::Run,
            4 => State::Exit,
            _ => State::Idle,
        }
    }

    fn next(self) -> State {
        match self {
            State::Prepare => State::DisableIrq,
            State::DisableIrq => State::Run,
            State::Run => State::Exit,
            _ => State::Idle,
        }
    }
}

/// Why a stop-machine did not run its function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopError {
    /// These CPUs never acked `state` within the timeout; everyone left.
    NotAcked { state: State, cpus: CpuSet },
}

type Work<'a> = &'a (dyn Fn(CpuId) + Sync);

/// The one stop-machine in progress.
struct Control {
    state: AtomicU32,
    /// Bumped for every stop-machine, so a late IPI never joins the next one.
    generation: AtomicU64,
    /// CPUs yet to ack the current state.
    pending: AtomicU32,
    participants: AtomicCpuSet,
    acked: AtomicCpuSet,
    run_on: AtomicCpuSet,
    work: AtomicPtr<()>,
    /// Set when the controller gave up waiting: everyone goes to EXIT.
    aborted: AtomicBool,
}

static CONTROL: Control = Control {
    state: AtomicU32::new(State::Idle as u32),
    generation: AtomicU64::new(0),
    pending: AtomicU32::new(0),
    participants: AtomicCpuSet::new(),
    acked: AtomicCpuSet::new(),
    run_on: AtomicCpuSet::new(),
    work: AtomicPtr::new(core::ptr::null_mut()),
    aborted: AtomicBool::new(false),
};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// Per CPU: interrupts observed off while in RUN (for tests and reports).
static IRQS_OFF_IN_RUN: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static RUNS: AtomicU64 = AtomicU64::new(0);
/// Per CPU: the generation whose DISABLE_IRQ state it has acked.
static ACKED_DISABLE_IRQ: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Whether `cpu` has disabled its interrupts and acked DISABLE_IRQ in the
/// stop-machine now running (tests use it to act at that moment).
pub fn has_acked_disable_irq(cpu: CpuId) -> bool {
    let g = CONTROL.generation.load(Ordering::SeqCst);
    g != 0 && ACKED_DISABLE_IRQ[cpu.index()].load(Ordering::SeqCst) == g
}

/// Whether `cpu` had interrupts off during the last RUN state.
pub fn irqs_were_off_in_run(cpu: CpuId) -> bool {
    IRQS_OFF_IN_RUN[cpu.index()].load(Ordering::SeqCst)
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

/// Per CPU: "halted (or about to be) until the state changes".
static SLEEPERS: [CachePadded<Sleeper>; MAX_CPUS] = [const { CachePadded::new(Sleeper::new()) }; MAX_CPUS];
/// Bumped on every change waiters wait for: a new state, or an abort.
static WAKES: WakeSeq = WakeSeq::new();
/// Per CPU: wake-up NMIs sent to it, and those its NMI handler claimed.
static WAKE_NMIS_SENT: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
static WAKE_NMIS_CLAIMED: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// Halts of waiters (reports and tests).
static HALTS: AtomicU64 = AtomicU64::new(0);

/// Waiters that halted rather than spun, since boot.
pub fn halts() -> u64 {
    HALTS.load(Ordering::Relaxed)
}

/// Wake-up NMIs `cpu` has taken, since boot.
pub fn wake_nmis_taken(cpu: CpuId) -> u32 {
    WAKE_NMIS_CLAIMED[cpu.index()].load(Ordering::Relaxed)
}

/// After a change the waiters wait for: wakes every participant that may be
/// halted.
fn wake_sleepers() {
    WAKES.bump();
    for cpu in CONTROL.participants.snapshot().iter() {
        if !SLEEPERS[cpu.index()].must_wake() {
            continue;
        }
        if let Some(id) = super::topology::apic_id(cpu) {
            WAKE_NMIS_SENT[cpu.index()].fetch_add(1, Ordering::SeqCst);
            apic::send_nmi(id);
        }
    }
}

/// Called by the NMI dispatcher: claims the NMI if a wake-up was sent here
/// and not yet claimed (two sent close together may arrive as one; the
/// count then lets a later NMI pass as the second, which is harmless).
pub fn claim_wake_nmi() -> bool {
    let me = percpu::current_cpu().index();
    let claimed = WAKE_NMIS_CLAIMED[me].load(Ordering::Relaxed);
    if claimed == WAKE_NMIS_SENT[me].load(Ordering::SeqCst) {
        return false;
    }
    WAKE_NMIS_CLAIMED[me].store(claimed.wrapping_add(1), Ordering::Relaxed);
    true
}

/// A participant that has acked `seen` and waited long enough: halts until
/// the state changes, the run is aborted, or a new one begins.
fn halt_until_changed(me: CpuId, generation: u64, seen: State) {
    let c = &CONTROL;
    let sleeper = &SLEEPERS[me.index()];
    let seq = sleeper.prepare(&WAKES);
    let unchanged = c.generation.load(Ordering::SeqCst) == generation
        && !c.aborted.load(Ordering::SeqCst)
        && State::from_u32(c.state.load(Ordering::SeqCst)) == seen;
    if unchanged {
        // Test hook: hold this CPU after its last look, before the halt: a
        // wake-up NMI taken here must still end the halt.
        let _ = hooks::point("stop_machine.before-halt", me);
        HALTS.fetch_add(1, Ordering::Relaxed);
        nmi_halt::halt_while_eq(WAKES.word(), seq);
    }
    sleeper.finish();
}

/// Runs `f` on every CPU of `run_on` (each gets its own id) while every
/// other online CPU waits with interrupts off. Waits are bounded: a CPU
/// that does not ack is named in the error and nothing runs.
pub fn stop_machine(run_on: &CpuSet, f: &(dyn Fn(CpuId) + Sync)) -> Result<(), StopError> {
    let _one = ONE_AT_A_TIME.lock();
    let me = percpu::current_cpu();
    let participants = super::ONLINE.snapshot();
    let c = &CONTROL;
    for cpu in participants.iter() {
        c.participants.insert(cpu);
        IRQS_OFF_IN_RUN[cpu.index()].store(false, Ordering::SeqCst);
    }
    for cpu in run_on.intersection(&participants).iter() {
        c.run_on.insert(cpu);
    }
    // SAFETY (of the later dereference in `participate`): `f` outlives every
    // use, because this function does not return before all participants
    // left EXIT or the run was aborted before RUN.
    c.work.store(&f as *const Work<'_> as *mut (), Ordering::SeqCst);
    c.aborted.store(false, Ordering::SeqCst);
    c.pending.store(participants.len() as u32, Ordering::SeqCst);
    let generation = c.generation.fetch_add(1, Ordering::SeqCst) + 1;
    c.state.store(State::Prepare as u32, Ordering::SeqCst);
    for cpu in participants.iter().filter(|c| *c != me) {
        if let Some(id) = super::topology::apic_id(cpu) {
            apic::send_ipi(IpiKind::StopMachine, id);
        }
    }
    let result = participate_as(me, generation, true);
    // Everyone has left (or was never reached): clear for the next run.
    c.work.store(core::ptr::null_mut(), Ordering::SeqCst);
    for cpu in participants.iter() {
        c.participants.remove(cpu);
        c.acked.remove(cpu);
        c.run_on.remove(cpu);
    }
    c.state.store(State::Idle as u32, Ordering::SeqCst);
    if result.is_ok() {
        RUNS.fetch_add(1, Ordering::Relaxed);
    }
    result
}

/// Runs `f` on `cpu` alone, with every other online CPU stopped.
pub fn stop_one_cpu(cpu: CpuId, f: &(dyn Fn() + Sync)) -> Result<(), StopError> {
    stop_machine(&CpuSet::single(cpu), &|_| f())
}

/// The STOP_MACHINE IPI handler (the caller has already sent EOI).
pub fn on_stop_machine_ipi() {
    let me = percpu::current_cpu();
    let c = &CONTROL;
    if !c.participants.contains(me) || State::from_u32(c.state.load(Ordering::SeqCst)) == State::Idle {
        return;
    }
    let generation = c.generation.load(Ordering::SeqCst);
    let _ = participate_as(me, generation, false);
}

/// Walks the states. The controller (`is_controller`) also watches the
/// deadline and aborts if some CPU never acks.
fn participate_as(me: CpuId, generation: u64, is_controller: bool) -> Result<(), StopError> {
    let c = &CONTROL;
    let irq_were_on = interrupts::are_enabled();
    let prev_activity = percpu::current().activity();
    percpu::current().set_activity(Activity::StopMachine);
    let mut seen = State::Idle;
    let mut deadline = Deadline::after_us(timeout_us());
    let mut spin_until = Deadline::after_us(spin_us());
    let mut result = Ok(());
    loop {
        if c.generation.load(Ordering::SeqCst) != generation {
            break;
        }
        let state = State::from_u32(c.state.load(Ordering::SeqCst));
        // Idle only ever follows the last EXIT ack (or the controller's reset).
        if !is_controller && (c.aborted.load(Ordering::SeqCst) || state == State::Idle) {
            break;
        }
        if state != seen && state != State::Idle {
            seen = state;
            deadline = Deadline::after_us(timeout_us());
            spin_until = Deadline::after_us(spin_us());
            match state {
                State::Prepare => interrupts::enable(),
                State::DisableIrq => {
                    // Test hook: hold this CPU here, interrupts still on,
                    // while others already have theirs off (story 1,
                    // docs/stories/1-dying-flush.md).
                    let _ = hooks::point("stop_machine.disable-irq", me);
                    interrupts::disable();
                }
                State::Run => {
                    IRQS_OFF_IN_RUN[me.index()].store(!interrupts::are_enabled(), Ordering::SeqCst);
                    if c.run_on.contains(me) {
                        let work = c.work.load(Ordering::SeqCst) as *const Work<'_>;
                        // SAFETY: `stop_machine` stored a pointer to its `f`
                        // and keeps it alive until every CPU left EXIT.
                        let f = unsafe { *work };
                        f(me);
                    }
                }
                State::Exit | State::Idle => {}
            }
            if state == State::DisableIrq {
                ACKED_DISABLE_IRQ[me.index()].store(generation, Ordering::SeqCst);
            }
            ack(state);
            if state == State::Exit {
                if is_controller {
                    // Everyone must have left before the control block is reused.
                    crate::time::wait_until(timeout_us(), || {
                        State::from_u32(c.state.load(Ordering::SeqCst)) != State::Exit
                    });
                }
                break;
            }
        }
        if is_controller && deadline.expired() && seen != State::Exit {
            let cpus = c.participants.snapshot().difference(&c.acked.snapshot());
            let stuck = State::from_u32(c.state.load(Ordering::SeqCst));
            log::error!("stop-machine: {cpus:?} did not ack {stuck:?} within {} ms; abandoning", timeout_us() / 1000);
            if stuck >= State::Run {
                // Past the point of no return: keep waiting, and say so.
                deadline = Deadline::after_us(timeout_us());
                continue;
            }
            c.aborted.store(true, Ordering::SeqCst);
            wake_sleepers();
            result = Err(StopError::NotAcked { state: stuck, cpus });
            break;
        }
        if !is_controller && seen != State::Idle && spin_until.expired() {
            halt_until_changed(me, generation, seen);
        } else {
            core::hint::spin_loop();
        }
    }
    percpu::current().set_activity(prev_activity);
    if irq_were_on {
        interrupts::enable()
    } else {
        interrupts::disable()
    }
    result
}

/// The last CPU to ack a state advances it.
fn ack(state: State) {
    let c = &CONTROL;
    c.acked.insert(percpu::current_cpu());
    if c.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
        c.pending.store(c.participants.len() as u32, Ordering::SeqCst);
        for cpu in c.participants.snapshot().iter() {
            c.acked.remove(cpu);
        }
        c.state.store(state.next() as u32, Ordering::SeqCst);
        wake_sleepers();
    }
}
