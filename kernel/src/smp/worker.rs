//! Work for idle CPUs: one job slot per CPU, picked up by the idle loop and
//! run in thread context with interrupts on (where a cross-call may wait).
//! Stress and torture run their senders this way. A CPU taken offline
//! abandons its job (so a job must hold nothing it cannot leave behind);
//! its next life starts idle.

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;
use smp_core::{CpuId, per_cpu};

const FREE: u8 = 0;
const QUEUED: u8 = 1;
const RUNNING: u8 = 2;

struct Slot {
    state: AtomicU8,
    func: AtomicUsize,
    arg: AtomicUsize,
}

per_cpu! {
    /// Padded: a polling CPU reads its own slot on every spin.
    static SLOTS: PerCpu<CachePadded<Slot>> = CachePadded::new(Slot { state: AtomicU8::new(FREE), func: AtomicUsize::new(0), arg: AtomicUsize::new(0) });
}

/// Why a job was not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    Offline,
    Busy,
}

/// Queues `f(arg)` to run on `cpu` when it is next idle, and wakes it.
pub fn spawn(cpu: CpuId, f: fn(usize), arg: usize) -> Result<(), SpawnError> {
    if !super::ONLINE.contains(cpu) {
        return Err(SpawnError::Offline);
    }
    let slot = SLOTS.of(cpu);
    slot.state.compare_exchange(FREE, QUEUED, Ordering::Acquire, Ordering::Relaxed).map_err(|_| SpawnError::Busy)?;
    slot.func.store(f as usize, Ordering::Relaxed);
    slot.arg.store(arg, Ordering::Relaxed);
    slot.state.store(RUNNING, Ordering::Release);
    // A ping wakes the CPU from `hlt`; the idle loop then finds the job.
    super::ping::ping(cpu, 0);
    Ok(())
}

/// Whether `cpu` has no job queued or running.
pub fn is_free(cpu: CpuId) -> bool {
    SLOTS.of(cpu).state.load(Ordering::Acquire) == FREE
}

/// A CPU about to start a new life (bring-up calls this before it sends
/// INIT) drops whatever job its last life abandoned.
pub fn reset(cpu: CpuId) {
    SLOTS.of(cpu).state.store(FREE, Ordering::Release);
}

/// Called by the idle loop: runs this CPU's job, if any.
pub fn run_pending(cpu: CpuId) {
    let slot = SLOTS.of(cpu);
    if slot.state.load(Ordering::Acquire) != RUNNING {
        return;
    }
    let func = slot.func.load(Ordering::Relaxed);
    let arg = slot.arg.load(Ordering::Relaxed);
    // SAFETY: `spawn` stored a `fn(usize)` there before publishing RUNNING.
    let f: fn(usize) = unsafe { core::mem::transmute::<usize, fn(usize)>(func) };
    crate::arch::irq::enable();
    f(arg);
    slot.state.store(FREE, Ordering::Release);
}
