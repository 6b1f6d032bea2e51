//! Host tests of the cross-call queue with real threads. The loom models in
//! `callq_loom.rs` check the same rules under every interleaving.
#![cfg(not(loom))]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::*};
use std::thread;

use smp_core::CpuId;
use smp_core::callq::{AsyncFn, Busy, CallQueue, CallRecord};

fn cpu(i: usize) -> CpuId {
    CpuId::new(i).unwrap()
}

#[test]
fn batch_runs_in_fifo_order_and_can_be_inspected_first() {
    let q = CallQueue::new();
    let order = Mutex::new(Vec::new());
    let (fa, fb, fc) =
        (|| order.lock().unwrap().push('a'), || order.lock().unwrap().push('b'), || order.lock().unwrap().push('c'));
    let a = CallRecord::new_sync(&fa, "a", cpu(1), cpu(0));
    let b = CallRecord::new_sync(&fb, "b", cpu(2), cpu(0));
    let c = CallRecord::new_sync(&fc, "c", cpu(3), cpu(0));
    // SAFETY: fresh SYNC records, run below before they go out of scope.
    let owed = unsafe { [q.push(&a), q.push(&b), q.push(&c)] };
    assert_eq!(owed, [true, false, false], "only the first push owes the doorbell");

    let batch = q.take_all();
    assert!(q.is_empty());
    assert_eq!(batch.len(), 3);
    assert_eq!(batch.iter().map(CallRecord::name).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(batch.iter().map(CallRecord::sender).collect::<Vec<_>>(), [cpu(1), cpu(2), cpu(3)]);
    assert!(batch.iter().all(|r| r.is_sync() && r.target() == cpu(0)));
    batch.run();
    assert_eq!(*order.lock().unwrap(), ['a', 'b', 'c']);
    assert!(!a.is_locked() && !b.is_locked() && !c.is_locked());
}

#[test]
fn push_owes_a_doorbell_exactly_on_empty_to_non_empty() {
    static Q: CallQueue = CallQueue::new();
    static R: [CallRecord<'static>; 3] = [
        CallRecord::new_async(AsyncFn::Arg(drop, 0), "r0"),
        CallRecord::new_async(AsyncFn::Arg(drop, 1), "r1"),
        CallRecord::new_async(AsyncFn::Arg(drop, 2), "r2"),
    ];
    for round in 0..3 {
        let owed: Vec<bool> = R.iter().map(|r| Q.push_async(r, cpu(1), cpu(0)).unwrap()).collect();
        assert_eq!(owed, [true, false, false], "round {round}");
        let batch = Q.take_all();
        assert_eq!(batch.len(), 3);
        batch.run();
        assert!(Q.is_empty());
    }
    // An empty take is empty: this is what keeps a late IPI on an offline
    // CPU quiet (refined warning).
    let batch = Q.take_all();
    assert_eq!(batch.len(), 0);
    assert!(batch.is_empty() && batch.iter().next().is_none());
    batch.run();
}

#[test]
fn sync_record_is_released_only_after_its_function_ran() {
    let q = CallQueue::new();
    let me = AtomicPtr::new(std::ptr::null_mut::<CallRecord<'static>>());
    let ran = AtomicBool::new(false);
    let f = || {
        // SAFETY: `me` points at `rec` below, which outlives the batch run.
        let rec = unsafe { &*me.load(Relaxed) };
        assert!(rec.is_locked(), "a SYNC record must still be locked while f runs");
        ran.store(true, Relaxed);
    };
    let rec = CallRecord::new_sync(&f, "f", cpu(1), cpu(0));
    me.store(std::ptr::from_ref(&rec).cast::<CallRecord<'static>>().cast_mut(), Relaxed);
    // SAFETY: fresh SYNC record, released by the run below before it is dropped.
    assert!(unsafe { q.push(&rec) });
    assert!(rec.is_locked());
    q.take_all().run();
    assert!(ran.load(Relaxed) && !rec.is_locked());
}

#[test]
fn sync_waiter_on_another_thread_sees_the_functions_writes() {
    let q = CallQueue::new();
    let doorbell = AtomicBool::new(false);
    let value = AtomicUsize::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            while !doorbell.swap(false, Acquire) {
                thread::yield_now();
            }
            q.take_all().run();
        });
        let f = || {
            thread::sleep(std::time::Duration::from_millis(20));
            value.store(42, Relaxed);
        };
        let rec = CallRecord::new_sync(&f, "slow", cpu(0), cpu(1));
        // SAFETY: fresh SYNC record; we wait for its release right below.
        if unsafe { q.push(&rec) } {
            doorbell.store(true, Release);
        }
        let mut spins = 0u64;
        rec.wait_released(|| spins += 1);
        assert_eq!(value.load(Relaxed), 42);
        assert!(spins > 0, "the watchdog hook is called while waiting");
    });
}

static REQUEUE_Q: CallQueue = CallQueue::new();
static REQUEUE_RUNS: AtomicUsize = AtomicUsize::new(0);
static REQUEUE: CallRecord<'static> = CallRecord::new_async(AsyncFn::Record(requeue), "requeue");

fn requeue(rec: &'static CallRecord<'static>) {
    assert!(!rec.is_locked(), "an ASYNC record is released before its function runs");
    if REQUEUE_RUNS.fetch_add(1, Relaxed) == 0 {
        assert_eq!(REQUEUE_Q.push_async(rec, cpu(0), cpu(0)), Ok(true), "re-queue from f");
    }
}

#[test]
fn async_record_is_released_first_so_it_can_requeue_itself() {
    assert_eq!(REQUEUE_Q.push_async(&REQUEUE, cpu(1), cpu(0)), Ok(true));
    let first = REQUEUE_Q.take_all();
    assert_eq!(first.len(), 1);
    first.run();
    assert_eq!(REQUEUE_RUNS.load(Relaxed), 1);
    // The re-queued call waits for the next batch (and its own doorbell).
    let second = REQUEUE_Q.take_all();
    assert_eq!(second.iter().map(CallRecord::name).collect::<Vec<_>>(), ["requeue"]);
    assert_eq!(second.iter().next().unwrap().sender(), cpu(0));
    second.run();
    assert_eq!(REQUEUE_RUNS.load(Relaxed), 2);
    assert!(REQUEUE_Q.is_empty() && !REQUEUE.is_locked());
}

#[test]
fn in_flight_async_record_is_busy_until_released() {
    static Q: CallQueue = CallQueue::new();
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static REC: CallRecord<'static> = CallRecord::new_async(
        AsyncFn::Arg(
            |n| {
                RUNS.fetch_add(n, Relaxed);
            },
            1,
        ),
        "count",
    );
    assert!(!REC.is_sync());
    assert_eq!(Q.push_async(&REC, cpu(1), cpu(0)), Ok(true));
    assert_eq!(REC.try_lock(cpu(2), cpu(0)), Err(Busy));
    assert_eq!(Q.push_async(&REC, cpu(2), cpu(0)), Err(Busy));
    assert_eq!(REC.sender(), cpu(1), "a refused claim leaves the route alone");
    let batch = Q.take_all();
    assert_eq!(batch.len(), 1, "Busy queued nothing");
    assert_eq!(REC.try_lock(cpu(2), cpu(0)), Err(Busy), "taken but not released is in flight");
    batch.run();
    assert_eq!(RUNS.load(Relaxed), 1);
    assert_eq!(Q.push_async(&REC, cpu(2), cpu(0)), Ok(true));
    drop(Q.take_all()); // dropping a batch runs it
    assert_eq!(RUNS.load(Relaxed), 2);
}

#[test]
fn sync_record_is_born_locked_and_released_by_its_run() {
    let f = || ();
    let rec = CallRecord::new_sync(&f, "once", cpu(0), cpu(1));
    assert!(rec.is_locked(), "born locked, ready to push");
    let q = CallQueue::new();
    // SAFETY: fresh SYNC record, run before it is dropped.
    unsafe { q.push(&rec) };
    q.take_all().run();
    assert!(!rec.is_locked());
}

/// 4 producers x 10k calls into one consumer: every call runs exactly once,
/// and a queue is never left non-empty without an owed doorbell.
#[test]
fn stress_every_call_runs_exactly_once() {
    const PRODUCERS: usize = 4;
    const CALLS: usize = 10_000;
    const POOL: usize = 8;
    static Q: CallQueue = CallQueue::new();
    static DOORBELL: AtomicBool = AtomicBool::new(false);
    static COUNTS: [AtomicUsize; PRODUCERS] = [const { AtomicUsize::new(0) }; PRODUCERS];
    fn count(p: usize) {
        COUNTS[p].fetch_add(1, Relaxed);
    }
    fn ring(owed: bool) {
        if owed {
            DOORBELL.store(true, Release);
        }
    }

    let done = AtomicUsize::new(0);
    thread::scope(|s| {
        for p in 0..PRODUCERS {
            let done = &done;
            s.spawn(move || {
                let pool: &'static [CallRecord<'static>] =
                    Vec::leak((0..POOL).map(|_| CallRecord::new_async(AsyncFn::Arg(count, p), "count")).collect());
                for i in 0..CALLS {
                    if i % 16 == 0 {
                        let f = || count(p);
                        let rec = CallRecord::new_sync(&f, "count-sync", cpu(p + 1), cpu(0));
                        // SAFETY: fresh SYNC record; we wait for it below.
                        ring(unsafe { Q.push(&rec) });
                        rec.wait_released(thread::yield_now);
                    } else {
                        let rec = &pool[i % POOL];
                        loop {
                            match Q.push_async(rec, cpu(p + 1), cpu(0)) {
                                Ok(owed) => break ring(owed),
                                Err(Busy) => thread::yield_now(),
                            }
                        }
                    }
                }
                done.fetch_add(1, Release);
            });
        }
        // The consumer CPU: drain on every doorbell.
        let mut batches = 0usize;
        loop {
            if DOORBELL.swap(false, Acquire) {
                Q.take_all().run();
                batches += 1;
            } else if done.load(Acquire) == PRODUCERS && !DOORBELL.load(Acquire) {
                break;
            } else {
                thread::yield_now();
            }
        }
        assert!(Q.is_empty(), "entries left with no doorbell owed");
        assert!(batches > 0);
    });
    for (p, c) in COUNTS.iter().enumerate() {
        assert_eq!(c.load(Relaxed), CALLS, "producer {p}");
    }
}
