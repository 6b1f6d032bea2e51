//! The senders: every CPU sends a random mix of every call kind to random
//! CPUs, and each call checks that it ran exactly once, on the intended
//! CPU, with the caller's writes visible in and its own visible out. A call
//! to a CPU that is offline counts as "offline", not as an error.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use smp_core::MAX_CPUS;
use smp_core::callq::{AsyncFn, CallRecord};

use super::stats::{STATS, STOP, WEIGHTS, error};
use super::{ALL, ASYNC, KIND_NAMES, MANY, MANY_NOWAIT, NOWAIT, SINGLE};
use crate::smp::calls::{self, CallError};
use crate::smp::{self, worker};
use crate::{CpuId, CpuSet, percpu, time};

/// xorshift64: cheap, and good enough to pick targets and kinds.
pub(super) struct Rng(u64);

impl Rng {
    /// Seeded from the TSC and `salt` (never zero: xorshift would stay there).
    pub fn new(salt: u64) -> Rng {
        Rng((salt ^ time::rdtsc()) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

fn here() -> CpuId {
    percpu::current_cpu()
}

/// A non-waiting call's argument: its kind and intended CPU.
const KIND_SHIFT: usize = 16;
const CPU_MASK: usize = (1 << KIND_SHIFT) - 1;

fn nowait_target_check(kind_and_cpu: usize) {
    let (kind, cpu) = (kind_and_cpu >> KIND_SHIFT, kind_and_cpu & CPU_MASK);
    if here().index() != cpu {
        error(format_args!("{} call meant for cpu{cpu} ran on {}", KIND_NAMES[kind], here()));
    }
    STATS.ran[kind].fetch_add(1, Ordering::SeqCst);
}

/// Async records are per (sender, target): a record is released *before*
/// its function runs (that is the ASYNC rule), so the sender may already
/// have re-queued it elsewhere by then; the function therefore learns its
/// intended CPU from where the record sits, never from the record's route.
const ASYNC_TARGETS: usize = 16;
static ASYNC_RECORDS: [[CallRecord<'static>; ASYNC_TARGETS]; MAX_CPUS] =
    [const { [const { CallRecord::new_async(AsyncFn::Record(async_ran), "stress-async") }; ASYNC_TARGETS] }; MAX_CPUS];

fn async_ran(rec: &'static CallRecord<'static>) {
    let base = ASYNC_RECORDS.as_ptr().cast::<CallRecord<'static>>() as usize;
    let index = (rec as *const CallRecord<'static> as usize - base) / core::mem::size_of::<CallRecord<'static>>();
    let target = index % ASYNC_TARGETS;
    if here().index() != target {
        error(format_args!("async call meant for cpu{target} ran on {}", here()));
    }
    STATS.ran[ASYNC].fetch_add(1, Ordering::SeqCst);
}

/// One waiting call with the in/out checks.
pub(super) fn single(target: CpuId, rng: &mut Rng) {
    let token = rng.next() | 1;
    let runs = AtomicU32::new(0);
    let seen_in = AtomicU64::new(0);
    let ran_on = AtomicU32::new(u32::MAX);
    let mut out = 0u64;
    let out_ptr = &mut out as *mut u64 as usize;
    let r = calls::call_single(target, "stress-single", &|| {
        runs.fetch_add(1, Ordering::Relaxed);
        seen_in.store(token, Ordering::Relaxed);
        ran_on.store(here().index() as u32, Ordering::Relaxed);
        // SAFETY: the waiter does not touch `out` until the call returned.
        unsafe { (out_ptr as *mut u64).write(token.rotate_left(7)) };
    });
    match r {
        Err(CallError::Offline(_)) => {
            STATS.offline[SINGLE].fetch_add(1, Ordering::Relaxed);
        }
        Err(CallError::Busy) => error(format_args!("waiting call reported Busy")),
        Ok(()) => {
            STATS.sent[SINGLE].fetch_add(1, Ordering::Relaxed);
            STATS.ran[SINGLE].fetch_add(runs.load(Ordering::Relaxed) as u64, Ordering::Relaxed);
            if runs.load(Ordering::Relaxed) != 1
                || ran_on.load(Ordering::Relaxed) != target.index() as u32
                || out != token.rotate_left(7)
            {
                error(format_args!(
                    "single call to {target}: ran {} times on cpu{}, wrote {out:#x}",
                    runs.load(Ordering::Relaxed),
                    ran_on.load(Ordering::Relaxed)
                ));
            }
        }
    }
}

/// One waiting set call: every CPU in the returned set ran it exactly once.
fn many(kind: usize, mask: &CpuSet) {
    let counts: Vec<AtomicU32> = (0..MAX_CPUS).map(|_| AtomicU32::new(0)).collect();
    let f = || {
        counts[here().index()].fetch_add(1, Ordering::Relaxed);
    };
    let ran = if kind == ALL {
        calls::call_all("stress-all", true, &f)
    } else {
        calls::call_many(mask, "stress-many", true, &f)
    };
    let asked = if kind == ALL { smp::PRESENT.snapshot() } else { *mask };
    STATS.sent[kind].fetch_add(ran.len() as u64, Ordering::Relaxed);
    STATS.offline[kind].fetch_add(asked.difference(&ran).len() as u64, Ordering::Relaxed);
    for (cpu, count) in counts.iter().enumerate() {
        let n = count.load(Ordering::Relaxed);
        STATS.ran[kind].fetch_add(n as u64, Ordering::Relaxed);
        let want = CpuId::new(cpu).is_some_and(|c| ran.contains(c)) as u32;
        if n != want {
            error(format_args!("{} call ran {n} times on cpu{cpu} (expected {want})", KIND_NAMES[kind]));
        }
    }
}

fn pick_kind(rng: &mut Rng) -> usize {
    let total: u64 = WEIGHTS.iter().map(|w| w.load(Ordering::Relaxed) as u64).sum();
    let mut r = rng.below(total);
    for (k, w) in WEIGHTS.iter().enumerate() {
        let w = w.load(Ordering::Relaxed) as u64;
        if r < w {
            return k;
        }
        r -= w;
    }
    SINGLE
}

/// How many CPUs a many/all call picks at random for its mask.
const MASK_PICKS: usize = 3;

/// The sender loop every CPU runs until `STOP`.
fn sender(seed: usize) {
    let mut rng = Rng::new(seed as u64);
    let present: Vec<CpuId> = smp::PRESENT.snapshot().iter().collect();
    while !STOP.load(Ordering::Relaxed) {
        let target = rng.pick(&present);
        match pick_kind(&mut rng) {
            SINGLE => single(target, &mut rng),
            NOWAIT => {
                match calls::call_single_nowait(target, nowait_target_check, NOWAIT << KIND_SHIFT | target.index()) {
                    Ok(()) => {
                        STATS.sent[NOWAIT].fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => {
                        STATS.offline[NOWAIT].fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            ASYNC if target.index() < ASYNC_TARGETS => {
                let rec = &ASYNC_RECORDS[here().index()][target.index()];
                // Interrupts off: the send and its count are one step, even
                // if a stop-machine wants to park this CPU.
                x86_64::instructions::interrupts::without_interrupts(|| match calls::call_single_async(target, rec) {
                    Ok(()) => {
                        STATS.sent[ASYNC].fetch_add(1, Ordering::SeqCst);
                    }
                    Err(CallError::Busy) => {
                        STATS.busy.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(CallError::Offline(_)) => {
                        STATS.offline[ASYNC].fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            kind @ (MANY | ALL) => {
                let mut mask = CpuSet::EMPTY;
                for _ in 0..MASK_PICKS {
                    mask.insert(rng.pick(&present));
                }
                many(kind, &mask);
            }
            _ => {
                let mask = CpuSet::single(target);
                let sent = calls::call_many_nowait(
                    &mask,
                    nowait_target_check,
                    MANY_NOWAIT << KIND_SHIFT | target.index(),
                    false,
                );
                STATS.sent[MANY_NOWAIT].fetch_add(sent.len() as u64, Ordering::SeqCst);
                if sent.is_empty() && target != here() {
                    STATS.offline[MANY_NOWAIT].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Starts the sender loop on `cpu` (as its idle-time job).
pub(super) fn spawn(cpu: CpuId) -> bool {
    worker::spawn(cpu, sender, cpu.index()).is_ok()
}
