//! Cross-call stress (in the spirit of Linux's scftorture) and the hotplug
//! torture built on it: every online CPU but the caller sends a random mix
//! of every call kind (see `senders`), while the caller takes random CPUs
//! down and brings them back. Afterwards every CPU it took down is back,
//! and the books must balance.
//!
//! Run by the test kernel's stress suite (`cargo xtask torture`) and by the
//! console's `torture` command.

mod ledger;
mod report;
mod senders;
mod stats;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use ledger::Ledger;

use kernel::smp::{self, hotplug, worker};
use kernel::time::{self, Deadline};
use kernel::{CpuId, percpu};
pub use report::{Latency, Report};
use senders::Rng;
use stats::{STATS, STOP, error};

/// The call kinds, in the order weights list them.
pub const KINDS: usize = 6;
pub const KIND_NAMES: [&str; KINDS] = protocol::torture::CALL_KINDS;
const SINGLE: usize = 0;
const NOWAIT: usize = 1;
const ASYNC: usize = 2;
const MANY: usize = 3;
const ALL: usize = 4;
const MANY_NOWAIT: usize = 5;

/// How often each call kind is picked, relative to the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weights(pub [u32; KINDS]);

impl Default for Weights {
    /// Every kind equally often.
    fn default() -> Weights {
        Weights([1; KINDS])
    }
}

impl Weights {
    /// `a,b,c,d,e,f` (see [`KIND_NAMES`]); a malformed number counts as 1,
    /// a missing one keeps the default.
    pub fn parse(text: &str) -> Weights {
        let mut w = Weights::default();
        for (slot, v) in w.0.iter_mut().zip(text.split(',')) {
            *slot = v.trim().parse().unwrap_or(1);
        }
        w
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub duration_ms: u64,
    /// Interval between hotplug operations; `None`: the cross-call stress
    /// alone (the caller then sends too).
    pub hotplug_ms: Option<u64>,
    pub weights: Weights,
}

/// A fault injector, for a kernel built with test hooks: around each
/// hotplug operation it may arm one fault (a step that fails, a CPU held at
/// a hook past a timeout, a CPU that never answers its SIPI, one that
/// stalls with interrupts off through a stop-machine).
pub trait Faults {
    /// Before the operation on `cpu` (`up`: bringing it up): arms at most
    /// one fault, and names it.
    fn arm(&mut self, cpu: CpuId, up: bool) -> Option<&'static str>;
    /// After the operation returned, whatever it returned: disarms and
    /// releases whatever was armed.
    fn disarm(&mut self, cpu: CpuId);
}

/// The fault kinds a run can count (more are counted as one "other").
pub const FAULT_KINDS: usize = 12;

/// One kind of fault: how often it was injected and how often the
/// operation then failed; every one left the machine consistent, or the
/// run has an error.
#[derive(Clone, Copy, Debug, Default)]
pub struct FaultCount {
    pub name: &'static str,
    pub injected: u64,
    pub op_failed: u64,
}

/// Passed to the progress callback about once a second.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub ms_left: u64,
    pub calls: u64,
    pub online: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Another run is in progress (the books are shared).
    AlreadyRunning,
    /// Nothing to send from, or nothing to take down: only the caller (and
    /// the boot CPU) are online.
    NeedsAnotherCpu,
    /// A CPU would not take its sender (its idle-time job slot was busy).
    SenderNotStarted(CpuId),
    /// The heap cannot hold the run's ledger.
    OutOfMemory,
}

/// CPU indices the run's tables cover: every present CPU's.
fn cpu_slots() -> usize {
    smp::PRESENT.snapshot().iter().last().map_or(1, |c| c.index() + 1)
}

const PROGRESS_MS: u64 = 1_000;
/// After the end: how long the senders may take to see `STOP` and finish
/// their last call, and how long the last non-waiting calls may take to run.
const FINISH_US: u64 = 30_000_000;
const SETTLE_US: u64 = 10_000_000;

static RUNNING: AtomicBool = AtomicBool::new(false);

/// Releases `RUNNING` however the run ends.
struct RunGuard;

impl Drop for RunGuard {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::SeqCst);
    }
}

/// Runs the stress for `config.duration_ms`, with random hotplug if asked,
/// calling `progress` about once a second; then brings back every CPU it
/// took down, waits (bounded) for the senders and the last calls, and
/// returns the books. Call it from thread context on one CPU.
pub fn run(
    config: &Config,
    progress: &mut dyn FnMut(&Progress),
    mut faults: Option<&mut dyn Faults>,
) -> Result<Report, Error> {
    if RUNNING.swap(true, Ordering::SeqCst) {
        return Err(Error::AlreadyRunning);
    }
    let _guard = RunGuard;
    stats::reset(&config.weights);
    let me = percpu::current_cpu();
    let senders: Vec<CpuId> = smp::ONLINE.snapshot().iter().filter(|c| *c != me).collect();
    // The boot CPU stays: it is the one CPU that cannot go.
    let victims: Vec<CpuId> = senders.iter().copied().filter(|c| *c != CpuId::BOOT).collect();
    if senders.is_empty() || (config.hotplug_ms.is_some() && victims.is_empty()) {
        return Err(Error::NeedsAnotherCpu);
    }
    let ledger: &'static Ledger = Box::leak(Box::new(Ledger::new(&NUMBERED, cpu_slots()).ok_or(Error::OutOfMemory)?));
    ledger.publish();
    for cpu in smp::PRESENT.snapshot().iter() {
        senders::reserve(cpu);
    }
    // Everything the run keeps is made: whatever is in use at the end
    // beyond this was leaked, by a sender abandoned as its CPU went down
    // or by the kernel's own hotplug path.
    let heap_before = kernel::mem::heap::usage().0;
    for &cpu in &senders {
        if !senders::spawn(cpu) {
            let (finished, settled) = finish(&senders, ledger);
            retire(ledger, finished && settled);
            return Err(Error::SenderNotStarted(cpu));
        }
    }
    let (mut downs, mut ups) = (Latency::default(), Latency::default());
    let mut rng = Rng::new(me.index() as u64);
    let mut fault_counts = [FaultCount::default(); FAULT_KINDS];
    let end = Deadline::after_ms(config.duration_ms);
    let mut next_progress = Deadline::after_ms(PROGRESS_MS);
    while !end.expired() {
        match config.hotplug_ms {
            // The caller sends too, one call at a time.
            None => senders::single(rng.pick(&senders), &mut rng),
            Some(interval) => {
                time::delay_us(interval * 1000);
                let cpu = rng.pick(&victims);
                let up = !smp::ONLINE.contains(cpu);
                let fault = faults.as_deref_mut().and_then(|f| f.arm(cpu, up));
                let r = hotplug_one(cpu, up, fault.is_some(), &mut downs, &mut ups);
                if let Some(f) = faults.as_deref_mut() {
                    f.disarm(cpu);
                }
                if let Some(name) = fault {
                    count_fault(&mut fault_counts, name, r.is_err());
                }
                after_hotplug(cpu, up, &r, ledger);
            }
        }
        if next_progress.expired() {
            next_progress = Deadline::after_ms(PROGRESS_MS);
            progress(&Progress {
                ms_left: config.duration_ms.saturating_sub(end.elapsed_us() / 1000),
                calls: stats::calls_sent(),
                online: smp::online_count(),
            });
        }
    }
    let (senders_finished, settled) = finish(&senders, ledger);
    let heap_after = kernel::mem::heap::usage().0;
    let lost = ledger.unbalanced(Some(&KIND_NAMES));
    let mut sent = stats::load(&STATS.sent);
    let mut ran = stats::load(&STATS.ran);
    let mut written_off = 0;
    for k in NUMBERED {
        let w;
        (sent[k], ran[k], w) = ledger.totals(k);
        written_off += w;
    }
    let report = Report {
        ms: config.duration_ms,
        sent,
        ran,
        offline: stats::load(&STATS.offline),
        busy: STATS.busy.load(Ordering::SeqCst),
        errors: STATS.errors.load(Ordering::SeqCst),
        lost,
        written_off,
        abandoned: STATS.abandoned.load(Ordering::SeqCst),
        heap: (heap_before, heap_after),
        hotplug: config.hotplug_ms.map(|_| (downs, ups)),
        faults: fault_counts.into_iter().filter(|f| f.injected != 0).collect(),
        senders_finished,
        settled,
    };
    retire(ledger, senders_finished && settled);
    Ok(report)
}

/// The kinds whose every call the ledger names (the set kinds are checked
/// per target inside each call).
const NUMBERED: [usize; 4] = [SINGLE, NOWAIT, ASYNC, MANY_NOWAIT];

/// Unpublishes the ledger, and frees it if no call can still reach it.
fn retire(ledger: &'static Ledger, quiet: bool) {
    Ledger::retire();
    if quiet {
        // SAFETY: made by `Box::leak` in `run`; unpublished, and every
        // sender and call of the run is over, so nothing refers to it.
        drop(unsafe { Box::from_raw(ledger as *const Ledger as *mut Ledger) });
    }
}

fn count_fault(counts: &mut [FaultCount; FAULT_KINDS], name: &'static str, op_failed: bool) {
    let i = counts.iter().position(|c| c.name == name || c.injected == 0).unwrap_or(FAULT_KINDS - 1);
    if counts[i].injected == 0 {
        counts[i].name = if i == FAULT_KINDS - 1 { "other" } else { name };
    }
    counts[i].injected += 1;
    counts[i].op_failed += op_failed as u64;
}

/// Takes `cpu` down (or brings it up, with `up`). A failure is an error
/// unless a fault was injected into it.
fn hotplug_one(
    cpu: CpuId,
    up: bool,
    faulty: bool,
    downs: &mut Latency,
    ups: &mut Latency,
) -> Result<(), hotplug::HotplugError> {
    let start = time::rdtsc();
    let (r, latency) = if up { (hotplug::cpu_up(cpu), ups) } else { (hotplug::cpu_down(cpu), downs) };
    match r {
        Ok(()) => latency.add(time::ticks_to_us(time::rdtsc() - start)),
        Err(e) => {
            latency.failed += 1;
            if !faulty {
                error(format_args!("{}({cpu}): {e:?}", if up { "cpu_up" } else { "cpu_down" }));
            }
        }
    }
    r
}

/// How long a CPU whose down did not wait for its park (an injected hold)
/// may take to park once released.
const LATE_PARK_MS: u64 = 5_000;

/// After a hotplug operation (and its fault, released): the CPU must be
/// where the answer says, every stack must have one owner, and a CPU that
/// went down has its abandoned sender settled; one that came up gets a new
/// sender.
fn after_hotplug(cpu: CpuId, up: bool, r: &Result<(), hotplug::HotplugError>, ledger: &Ledger) {
    use hotplug::{CpuState, HotplugError};
    let went_down = match (up, r) {
        (false, Ok(())) => true,
        (false, Err(HotplugError::NotParked(_))) => hotplug::wait_parked(cpu, LATE_PARK_MS),
        _ => false,
    };
    let state = hotplug::state(cpu);
    let active = smp::ACTIVE.contains(cpu);
    let consistent = match (up, r.is_ok(), went_down) {
        (false, _, true) | (true, false, _) => state == CpuState::Offline && !active,
        (false, _, false) | (true, true, _) => state == CpuState::Online && active,
    };
    if !consistent {
        error(format_args!(
            "{} of {cpu} returned {r:?}, and then {cpu} is {state:?}, {}active",
            if up { "cpu_up" } else { "cpu_down" },
            if active { "" } else { "not " }
        ));
    }
    if !smp::bringup::stacks_have_one_owner() {
        error(format_args!("after a hotplug of {cpu}, two CPUs own one stack"));
    }
    if went_down {
        if !worker::is_free(cpu) {
            STATS.abandoned.fetch_add(1, Ordering::SeqCst);
        }
        ledger.resolve_abandoned(cpu);
    }
    if up && r.is_ok() && !senders::spawn(cpu) {
        error(format_args!("{cpu} is back but would not take its sender"));
    }
}

/// Stops the senders, brings back every one of them that is offline, and
/// waits for them to finish and for the non-waiting calls to run. Returns
/// (senders finished, calls settled).
fn finish(senders: &[CpuId], ledger: &Ledger) -> (bool, bool) {
    STOP.store(true, Ordering::SeqCst);
    for &cpu in senders {
        if !smp::ONLINE.contains(cpu)
            && let Err(e) = hotplug::cpu_up(cpu)
        {
            error(format_args!("final cpu_up({cpu}): {e:?}"));
        }
    }
    let finished =
        time::wait_until(FINISH_US, || senders.iter().all(|c| worker::is_free(*c) || !smp::ONLINE.contains(*c)));
    let settled = time::wait_until(SETTLE_US, || ledger.unbalanced(None) == 0);
    (finished, settled)
}
