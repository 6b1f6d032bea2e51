//! The senders: every CPU sends a random mix of every call kind to random
//! CPUs, and each call checks that it ran exactly once, on the intended
//! CPU, with the caller's writes visible in and its own visible out. A call
//! to a CPU that is offline counts as "offline", not as an error.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicU32, Ordering};

use smp_core::callq::{AsyncFn, CallRecord};
use smp_core::per_cpu;
use spin::Once;

use super::ledger::{self, Ledger, SEQ_BITS};
use super::stats::{STATS, STOP, WEIGHTS, error};
use super::{ALL, ASYNC, KIND_NAMES, MANY, MANY_NOWAIT, NOWAIT, SINGLE};
use kernel::smp::calls::{self, CallError};
use kernel::smp::{self, worker};
use kernel::{CpuId, CpuSet, percpu, time};

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

/// The ledger of the run: the senders only run while it is published.
fn ledger() -> &'static Ledger {
    Ledger::current().expect("senders run only while a ledger is published")
}

/// A non-waiting call's argument: kind, sender, target and its number on
/// that channel (see `ledger`).
const CPU_BITS: u32 = 16;
const CPU_MASK: usize = (1 << CPU_BITS) - 1;
const SEQ_SHIFT: u32 = 2 * CPU_BITS;
const KIND_SHIFT: u32 = SEQ_SHIFT + SEQ_BITS;

fn nowait_arg(kind: usize, sender: CpuId, target: CpuId, seq: u32) -> usize {
    kind << KIND_SHIFT | (seq as usize) << SEQ_SHIFT | sender.index() << CPU_BITS | target.index()
}

fn nowait_ran(arg: usize) {
    let kind = arg >> KIND_SHIFT;
    let seq = ((arg >> SEQ_SHIFT) & ((1 << SEQ_BITS) - 1)) as u32;
    let cpu = |i: usize| CpuId::new(i).expect("a CPU index the sender wrote");
    let (sender, target) = (cpu((arg >> CPU_BITS) & CPU_MASK), cpu(arg & CPU_MASK));
    ledger::ran_numbered(kind, KIND_NAMES[kind], sender, target, seq);
}

/// Async records, one per (sender, target) for every present CPU, made
/// once: a record is released *before* its function runs (that is the
/// ASYNC rule), so the sender may already have re-queued it elsewhere by
/// then; the function therefore learns sender and target from where the
/// record sits, never from the record's route.
static ASYNC_RECORDS: Once<(usize, Box<[CallRecord<'static>]>)> = Once::new();

fn async_records() -> &'static (usize, Box<[CallRecord<'static>]>) {
    ASYNC_RECORDS.call_once(|| {
        let n = super::cpu_slots();
        (n, (0..n * n).map(|_| CallRecord::new_async(AsyncFn::Record(async_ran), "stress-async")).collect())
    })
}

fn async_ran(rec: &'static CallRecord<'static>) {
    let (n, records) = async_records();
    let index = (rec as *const CallRecord<'static> as usize - records.as_ptr() as usize)
        / core::mem::size_of::<CallRecord<'static>>();
    let cpu = |i: usize| CpuId::new(i).expect("a record of a present CPU");
    ledger::ran_async(ASYNC, cpu(index / n), cpu(index % n));
}

per_cpu! {
    /// Per sender, the run counts of its set calls, made once: a sender taken
    /// down in the middle of a call must not leave an allocation behind.
    static MANY_COUNTS: PerCpu<Once<Box<[AtomicU32]>>> = Once::new();
}

fn many_counts(sender: CpuId) -> &'static [AtomicU32] {
    MANY_COUNTS.of(sender).call_once(|| (0..smp_core::percpu::possible()).map(|_| AtomicU32::new(0)).collect())
}

/// Everything a sender on `cpu` will use, made before the run measures the
/// heap, so that the heap in use at the end must equal that at the start.
pub(super) fn reserve(cpu: CpuId) {
    async_records();
    many_counts(cpu);
    calls::reserve_nowait_slots(cpu);
}

/// One waiting call with the in/out checks.
pub(super) fn single(target: CpuId, rng: &mut Rng) {
    let me = here();
    let token = rng.next() | 1;
    let runs = AtomicU32::new(0);
    let ran_on = AtomicU32::new(u32::MAX);
    let mut out = 0u64;
    let out_ptr = &mut out as *mut u64 as usize;
    let seq = ledger().attempt(SINGLE, me, target);
    let r = calls::call_single(target, "stress-single", &|| {
        runs.fetch_add(1, Ordering::Relaxed);
        ran_on.store(here().index() as u32, Ordering::Relaxed);
        ledger::ran_numbered(SINGLE, "single", me, target, seq);
        // SAFETY: the waiter does not touch `out` until the call returned.
        unsafe { (out_ptr as *mut u64).write(token.rotate_left(7)) };
    });
    ledger().settle_attempt(SINGLE, me, target, seq, r.is_ok());
    match r {
        Err(CallError::Offline(_)) => {
            STATS.offline[SINGLE].fetch_add(1, Ordering::Relaxed);
        }
        Err(CallError::Busy) => error(format_args!("waiting call reported Busy")),
        Ok(()) => {
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
    let counts = many_counts(here());
    for c in counts {
        c.store(0, Ordering::Relaxed);
    }
    let f = || {
        counts[here().index()].fetch_add(1, Ordering::Relaxed);
    };
    let ran = if kind == ALL {
        calls::call_all("stress-all", true, &f)
    } else {
        calls::call_many(mask, "stress-many", true, &f)
    };
    let asked = if kind == ALL { smp::PRESENT.snapshot() } else { *mask };
    // The books in one step with interrupts off: a CPU taken down between
    // the call's return and here leaves both counts out, not one.
    kernel::arch::irq::without(|| {
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
    });
}

/// A numbered non-waiting call to `target` through `send`.
fn numbered_nowait(kind: usize, target: CpuId, send: impl FnOnce(usize) -> bool) {
    let me = here();
    let seq = ledger().attempt(kind, me, target);
    let sent = send(nowait_arg(kind, me, target, seq));
    ledger().settle_attempt(kind, me, target, seq, sent);
    if !sent {
        STATS.offline[kind].fetch_add(1, Ordering::Relaxed);
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

/// The sender loop every CPU runs until `STOP`. It allocates nothing: a
/// CPU taken down abandons it where it stands.
fn sender(seed: usize) {
    let mut rng = Rng::new(seed as u64);
    let present = smp::PRESENT.snapshot();
    let pick = |rng: &mut Rng| present.iter().nth(rng.below(present.len() as u64) as usize).unwrap_or(CpuId::BOOT);
    while !STOP.load(Ordering::Relaxed) {
        let target = pick(&mut rng);
        match pick_kind(&mut rng) {
            SINGLE => single(target, &mut rng),
            NOWAIT => numbered_nowait(NOWAIT, target, |arg| calls::call_single_nowait(target, nowait_ran, arg).is_ok()),
            ASYNC => {
                let (n, records) = async_records();
                let rec = &records[here().index() * n + target.index()];
                // Interrupts off: the send and its count are one step, even
                // if a stop-machine wants to park this CPU.
                kernel::arch::irq::without(|| {
                    match ledger().count_async(ASYNC, here(), target, || calls::call_single_async(target, rec)) {
                        Ok(()) => {}
                        Err(CallError::Busy) => {
                            STATS.busy.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(CallError::Offline(_)) => {
                            STATS.offline[ASYNC].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
            kind @ (MANY | ALL) => {
                let mut mask = CpuSet::EMPTY;
                for _ in 0..MASK_PICKS {
                    mask.insert(pick(&mut rng));
                }
                many(kind, &mask);
            }
            _ => numbered_nowait(MANY_NOWAIT, target, |arg| {
                // To itself the call runs here at once.
                !calls::call_many_nowait(&CpuSet::single(target), nowait_ran, arg, true).is_empty()
            }),
        }
    }
}

/// Starts the sender loop on `cpu` (as its idle-time job).
pub(super) fn spawn(cpu: CpuId) -> bool {
    worker::spawn(cpu, sender, cpu.index()).is_ok()
}
