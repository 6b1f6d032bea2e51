//! Cross-call stress (in the spirit of Linux's scftorture) and the hotplug
//! torture built on it. Every online CPU sends a random mix of every call
//! kind to random CPUs; each call checks that it ran exactly once, on the
//! intended CPU, with the caller's writes visible in and its own visible
//! out. With hotplug on, the boot CPU takes random CPUs down and up
//! meanwhile; a call to a CPU that is offline counts as "offline", not as
//! an error. Knobs (boot parameters): `stress.ms`, `stress.weights`
//! (six numbers: single, nowait, async, many, all, many-nowait),
//! `torture.hotplug_ms` (interval between hotplug operations).

use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use kernel::ktest::{Failure, Outcome, Test};
use kernel::smp::calls::{self, CallError};
use kernel::smp::{self, hotplug, worker};
use kernel::time::{self, Deadline};
use kernel::{CpuId, CpuSet, kassert, ktest, percpu, println_raw};
use smp_core::MAX_CPUS;
use smp_core::callq::{AsyncFn, CallRecord};

pub const TESTS: &[Test] = &[
    ktest!(cross_call_stress).min_cpus(2).params("stress.ms=3000").timeout_ms(120_000),
    ktest!(hotplug_torture).min_cpus(3).params("stress.ms=5000;torture.hotplug_ms=20").timeout_ms(180_000),
];

const KINDS: usize = 6;
const KIND_NAMES: [&str; KINDS] = ["single", "nowait", "async", "many", "all", "many-nowait"];
const SINGLE: usize = 0;
const NOWAIT: usize = 1;
const ASYNC: usize = 2;
const MANY: usize = 3;
const ALL: usize = 4;
const MANY_NOWAIT: usize = 5;

struct Stats {
    /// Calls handed over (for the set kinds: one per target).
    sent: [AtomicU64; KINDS],
    /// Calls that ran (counted by the function itself).
    ran: [AtomicU64; KINDS],
    offline: [AtomicU64; KINDS],
    busy: AtomicU64,
    errors: AtomicU64,
}

static STATS: Stats = Stats {
    sent: [const { AtomicU64::new(0) }; KINDS],
    ran: [const { AtomicU64::new(0) }; KINDS],
    offline: [const { AtomicU64::new(0) }; KINDS],
    busy: AtomicU64::new(0),
    errors: AtomicU64::new(0),
};

static STOP: AtomicBool = AtomicBool::new(false);
static WEIGHTS: [AtomicU32; KINDS] = [const { AtomicU32::new(1) }; KINDS];
/// Workers abandoned by a CPU going down (each may leave one call uncounted).
static ABANDONED: AtomicU64 = AtomicU64::new(0);

fn error(what: core::fmt::Arguments<'_>) {
    if STATS.errors.fetch_add(1, Ordering::SeqCst) < 10 {
        log::error!("stress: {what}");
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn here() -> CpuId {
    percpu::current_cpu()
}

fn nowait_target_check(kind_and_cpu: usize) {
    let (kind, cpu) = (kind_and_cpu >> 16, kind_and_cpu & 0xFFFF);
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
fn single(target: CpuId, rng: &mut Rng) {
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

/// The sender loop every CPU runs until `STOP`.
fn sender(seed: usize) {
    let mut rng = Rng(seed as u64 ^ time::rdtsc() | 1);
    let present: Vec<CpuId> = smp::PRESENT.snapshot().iter().collect();
    while !STOP.load(Ordering::Relaxed) {
        let target = present[rng.below(present.len() as u64) as usize];
        match pick_kind(&mut rng) {
            SINGLE => single(target, &mut rng),
            NOWAIT => match calls::call_single_nowait(target, nowait_target_check, NOWAIT << 16 | target.index()) {
                Ok(()) => {
                    STATS.sent[NOWAIT].fetch_add(1, Ordering::SeqCst);
                }
                Err(_) => {
                    STATS.offline[NOWAIT].fetch_add(1, Ordering::Relaxed);
                }
            },
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
                for _ in 0..3 {
                    mask.insert(present[rng.below(present.len() as u64) as usize]);
                }
                many(kind, &mask);
            }
            _ => {
                let mut mask = CpuSet::EMPTY;
                mask.insert(target);
                let sent =
                    calls::call_many_nowait(&mask, nowait_target_check, MANY_NOWAIT << 16 | target.index(), false);
                STATS.sent[MANY_NOWAIT].fetch_add(sent.len() as u64, Ordering::SeqCst);
                if sent.is_empty() && target != here() {
                    STATS.offline[MANY_NOWAIT].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

fn reset() {
    for k in 0..KINDS {
        STATS.sent[k].store(0, Ordering::SeqCst);
        STATS.ran[k].store(0, Ordering::SeqCst);
        STATS.offline[k].store(0, Ordering::SeqCst);
    }
    STATS.busy.store(0, Ordering::SeqCst);
    STATS.errors.store(0, Ordering::SeqCst);
    ABANDONED.store(0, Ordering::SeqCst);
    STOP.store(false, Ordering::SeqCst);
    if let Some(w) = kernel::params::get("stress.weights") {
        for (slot, v) in WEIGHTS.iter().zip(w.split(',')) {
            slot.store(v.trim().parse().unwrap_or(1), Ordering::Relaxed);
        }
    }
}

fn spawn_sender(cpu: CpuId) -> bool {
    worker::spawn(cpu, sender, cpu.index()).is_ok()
}

/// Latencies of one kind of hotplug operation, in microseconds.
#[derive(Default)]
struct Latency {
    n: u64,
    min: u64,
    max: u64,
    sum: u64,
    failed: u64,
}

impl Latency {
    fn add(&mut self, us: u64) {
        self.min = if self.n == 0 { us } else { self.min.min(us) };
        self.max = self.max.max(us);
        self.sum += us;
        self.n += 1;
    }

    fn line(&self, what: &str) -> alloc::string::String {
        let mean = self.sum.checked_div(self.n).unwrap_or(0);
        format!(
            "{what}: {} ok, {} failed, min {} us, mean {mean} us, max {} us",
            self.n, self.failed, self.min, self.max
        )
    }
}

/// Runs the stress for `stress.ms`, with random hotplug every
/// `hotplug_ms` if given, then checks the books.
fn run(hotplug_ms: Option<u64>) -> Outcome {
    reset();
    let ms = kernel::params::get_u64("stress.ms", 2_000);
    let me = here();
    let aps: Vec<CpuId> = smp::ONLINE.snapshot().iter().filter(|c| *c != me).collect();
    for &cpu in &aps {
        kassert!(spawn_sender(cpu), "could not start a sender on {cpu}");
    }
    let (mut downs, mut ups) = (Latency::default(), Latency::default());
    let mut rng = Rng(time::rdtsc() | 1);
    let end = Deadline::after_ms(ms);
    let mut next_progress = Deadline::after_ms(1_000);
    while !end.expired() {
        match hotplug_ms {
            None => {
                // The boot CPU sends too, in short bursts.
                single(aps[rng.below(aps.len() as u64) as usize], &mut rng);
            }
            Some(interval) => {
                time::delay_us(interval * 1000);
                let cpu = aps[rng.below(aps.len() as u64) as usize];
                let start = time::rdtsc();
                if smp::ONLINE.contains(cpu) {
                    match hotplug::cpu_down(cpu) {
                        Ok(()) => {
                            downs.add(time::ticks_to_us(time::rdtsc() - start));
                            if !worker::is_free(cpu) {
                                ABANDONED.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(e) => {
                            downs.failed += 1;
                            error(format_args!("cpu_down({cpu}): {e:?}"));
                        }
                    }
                } else {
                    match hotplug::cpu_up(cpu) {
                        Ok(()) => {
                            ups.add(time::ticks_to_us(time::rdtsc() - start));
                            spawn_sender(cpu);
                        }
                        Err(e) => {
                            ups.failed += 1;
                            error(format_args!("cpu_up({cpu}): {e:?}"));
                        }
                    }
                }
            }
        }
        if next_progress.expired() {
            next_progress = Deadline::after_ms(1_000);
            let sent: u64 = STATS.sent.iter().map(|s| s.load(Ordering::Relaxed)).sum();
            println_raw!(
                "stress: {} ms left, {sent} calls so far, {} CPUs online",
                ms.saturating_sub(end.elapsed_us() / 1000),
                smp::online_count()
            );
        }
    }
    STOP.store(true, Ordering::SeqCst);
    // Every CPU comes back, and every sender finishes.
    for &cpu in &aps {
        if !smp::ONLINE.contains(cpu)
            && let Err(e) = hotplug::cpu_up(cpu)
        {
            error(format_args!("final cpu_up({cpu}): {e:?}"));
        }
    }
    let finished =
        time::wait_until(30_000_000, || aps.iter().all(|c| worker::is_free(*c) || !smp::ONLINE.contains(*c)));
    kassert!(finished, "senders still running 30 s after the end: a hang");
    // Non-waiting calls may still be in flight: give them a bounded moment.
    let settled = time::wait_until(10_000_000, || {
        [NOWAIT, ASYNC, MANY_NOWAIT]
            .iter()
            .all(|&k| STATS.ran[k].load(Ordering::SeqCst) >= STATS.sent[k].load(Ordering::SeqCst))
    });
    let abandoned = ABANDONED.load(Ordering::SeqCst);
    for k in 0..KINDS {
        println_raw!(
            "stress: {:12} sent {:8} ran {:8} offline {:6}",
            KIND_NAMES[k],
            STATS.sent[k].load(Ordering::SeqCst),
            STATS.ran[k].load(Ordering::SeqCst),
            STATS.offline[k].load(Ordering::SeqCst)
        );
    }
    println_raw!(
        "stress: busy {} errors {} abandoned senders {abandoned}",
        STATS.busy.load(Ordering::SeqCst),
        STATS.errors.load(Ordering::SeqCst)
    );
    if hotplug_ms.is_some() {
        println_raw!("torture: {}", downs.line("cpu_down"));
        println_raw!("torture: {}", ups.line("cpu_up"));
    }
    let mut verdict = Ok(());
    if STATS.errors.load(Ordering::SeqCst) != 0 {
        verdict = Err(Failure(format!("{} errors (see the log)", STATS.errors.load(Ordering::SeqCst))));
    } else if !settled {
        verdict = Err(Failure("non-waiting calls never ran: lost calls".into()));
    } else {
        // A sender abandoned by its CPU going down can have sent one
        // non-waiting call without counting it.
        for k in [NOWAIT, ASYNC, MANY_NOWAIT] {
            let (s, r) = (STATS.sent[k].load(Ordering::SeqCst), STATS.ran[k].load(Ordering::SeqCst));
            if r < s || r > s + abandoned {
                verdict = Err(Failure(format!("{}: sent {s}, ran {r}: lost or duplicated calls", KIND_NAMES[k])));
            }
        }
    }
    kassert!(smp::ONLINE.snapshot() == smp::PRESENT.snapshot(), "not every CPU came back online");
    println_raw!("stress: verdict {}", if verdict.is_ok() { "SUCCESS" } else { "FAILURE" });
    verdict
}

fn cross_call_stress() -> Outcome {
    run(None)
}

fn hotplug_torture() -> Outcome {
    run(Some(kernel::params::get_u64("torture.hotplug_ms", 20)))
}
