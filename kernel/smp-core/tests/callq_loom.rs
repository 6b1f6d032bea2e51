//! Loom models of the cross-call queue protocol. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p smp-core --release --test callq_loom`
//! (add `LOOM_MAX_PREEMPTIONS=N` to search deeper; unset, the bound is 3).
//!
//! Each model stands for two or three CPUs; the target's doorbell is a pending
//! bit (like the APIC's IRR: IPIs coalesce) that a sender sets when its push
//! owed the IPI and the target's handler clears before draining.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};
use loom::thread;
use std::sync::atomic::Ordering::*;

use smp_core::CpuId;
use smp_core::callq::{AsyncFn, Busy, CallQueue, CallRecord};
use smp_core::lockstep::{Ack, Lockstep, Phase};
use smp_core::poll::PollFlag;
use smp_core::sleep::{Sleeper, WakeSeq};

fn cpu(i: usize) -> CpuId {
    CpuId::new(i).unwrap()
}

/// `loom::model` with at most 3 preemptions unless `LOOM_MAX_PREEMPTIONS`
/// says otherwise: that finds every bug tried on this protocol in about a
/// second, where the unbounded search of `no_lost_doorbell` takes minutes.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(3);
    builder.check(f);
}

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// The target CPU: its queue and its doorbell's pending bit.
struct Target {
    queue: CallQueue,
    doorbell: AtomicBool,
}

impl Target {
    fn new() -> Self {
        Target { queue: CallQueue::new(), doorbell: AtomicBool::new(false) }
    }

    fn ring_if(&self, owed: bool) {
        if owed {
            // An RMW, like the APIC setting its IRR bit (and loom lets a
            // plain store stay invisible to the handler's swap loop forever).
            self.doorbell.fetch_or(true, Release);
        }
    }

    /// The IPI handler, looping until `senders_done` says no call can come
    /// any more and no doorbell is pending. Then the queue must be empty: an
    /// entry left now would never get an IPI (the hang of story 2,
    /// docs/stories/2-lost-ipis-during-hotplug.md).
    fn handle_until(&self, senders_done: impl Fn() -> bool) {
        loop {
            if self.doorbell.swap(false, Acquire) {
                self.queue.take_all().run();
            } else if senders_done() && !self.doorbell.load(Acquire) {
                break;
            } else {
                thread::yield_now();
            }
        }
        assert!(self.queue.is_empty(), "a call is queued and no doorbell is owed");
    }
}

/// An `AsyncFn::Arg` target: counts into the `AtomicUsize` at `counter`.
fn bump(counter: usize) {
    // SAFETY: the models only pass addresses of leaked `AtomicUsize`s.
    let counter = unsafe { &*(counter as *const AtomicUsize) };
    // Release: a sender that sees the count may rely on the run being over.
    counter.fetch_add(1, Release);
}

fn counter_arg(counter: &'static AtomicUsize) -> usize {
    std::ptr::from_ref(counter) as usize
}

/// Rule 2: two senders (one SYNC-style record, one ASYNC) race with the
/// handler; only a push onto an empty queue rings. No call is stranded and
/// every call runs exactly once.
#[test]
fn no_lost_doorbell() {
    model(|| {
        let target = leak(Target::new());
        let done = leak(AtomicUsize::new(0));
        let ran = leak([AtomicUsize::new(0), AtomicUsize::new(0)]);

        let f: &'static _ = leak(|| {
            ran[0].fetch_add(1, Relaxed);
        });
        let sync_rec = leak(CallRecord::new_sync(f, "sync", cpu(1), cpu(0)));
        let s1 = thread::spawn(move || {
            // SAFETY: fresh, locked, and 'static.
            target.ring_if(unsafe { target.queue.push(sync_rec) });
            done.fetch_add(1, Release);
        });

        let async_rec = leak(CallRecord::new_async(AsyncFn::Arg(bump, counter_arg(&ran[1])), "async"));
        let s2 = thread::spawn(move || {
            target.ring_if(target.queue.push_async(async_rec, cpu(2), cpu(0)).unwrap());
            done.fetch_add(1, Release);
        });

        target.handle_until(|| done.load(Acquire) == 2);
        s1.join().unwrap();
        s2.join().unwrap();
        assert_eq!(ran[0].load(Relaxed), 1);
        assert_eq!(ran[1].load(Relaxed), 1);
        assert!(!sync_rec.is_locked() && !async_rec.is_locked());
    });
}

/// A value only the call's function writes, read by the waiting sender.
struct Slot(UnsafeCell<u32>);
// SAFETY: the protocol under test orders the write before the read; loom
// reports it if it does not.
unsafe impl Sync for Slot {}

impl Slot {
    /// # Safety
    /// No other access to the slot at the same time.
    unsafe fn set(&self, value: u32) {
        // SAFETY: per the contract.
        self.0.with_mut(|p| unsafe { *p = value })
    }

    /// # Safety
    /// No write to the slot at the same time.
    unsafe fn get(&self) -> u32 {
        // SAFETY: per the contract.
        self.0.with(|p| unsafe { *p })
    }
}

/// Rule 3 and 7: the waiter sees every write of a SYNC function once the
/// record is released.
#[test]
fn waiter_sees_the_functions_writes() {
    model(|| {
        let target = Arc::new(Target::new());
        let handler = {
            let target = target.clone();
            thread::spawn(move || {
                while !target.doorbell.swap(false, Acquire) {
                    thread::yield_now();
                }
                target.queue.take_all().run();
            })
        };

        let slot = Slot(UnsafeCell::new(0));
        // SAFETY: the waiter reads only after the release, which follows f.
        let f = || unsafe { slot.set(42) };
        let rec = CallRecord::new_sync(&f, "write", cpu(0), cpu(1));
        // SAFETY: fresh SYNC record; we wait for its release before it and
        // `f` go out of scope.
        target.ring_if(unsafe { target.queue.push(&rec) });
        rec.wait_released(|| ());
        // SAFETY: released, so the function's write happened before this.
        assert_eq!(unsafe { slot.get() }, 42);
        handler.join().unwrap();
    });
}

/// A call's waiter that halts (`CallRecord::mark_sleeping`) against the
/// target's release: if the waiter halts, the release wakes it, and the
/// waiter sees the function's writes either way.
#[test]
fn halted_call_waiter_is_woken_by_the_release() {
    model(|| {
        let target = Arc::new(Target::new());
        let woken = Arc::new(AtomicBool::new(false));
        let handler = {
            let (target, woken) = (target.clone(), woken.clone());
            thread::spawn(move || {
                while !target.doorbell.swap(false, Acquire) {
                    thread::yield_now();
                }
                target.queue.take_all().run_waking(|sender| {
                    assert_eq!(sender, cpu(0));
                    // The wake-up IPI: pending until the waiter takes it.
                    woken.store(true, Release);
                });
            })
        };
        let slot = Slot(UnsafeCell::new(0));
        // SAFETY: the waiter reads only after the release, which follows f.
        let f = || unsafe { slot.set(7) };
        let rec = CallRecord::new_sync(&f, "write", cpu(0), cpu(1));
        // SAFETY: fresh SYNC record; we wait for its release below.
        target.ring_if(unsafe { target.queue.push(&rec) });
        if rec.mark_sleeping() {
            // Halted: only the wake-up ends it (the kernel's alarm would end
            // it too, but late: the model leaves the alarm out).
            while !woken.load(Acquire) {
                thread::yield_now();
            }
            rec.clear_sleeping();
        }
        rec.wait_released(|| ());
        // SAFETY: released, so the function's write happened before this.
        assert_eq!(unsafe { slot.get() }, 7);
        handler.join().unwrap();
    });
}

loom::lazy_static! {
    /// Runs of `count`, fresh in every execution.
    static ref RUNS: AtomicUsize = AtomicUsize::new(0);
}

/// An `AsyncFn::Record` target.
fn count(_: &'static CallRecord<'static>) {
    // Release: a sender that sees the count may rely on the run being over.
    RUNS.fetch_add(1, Release);
}

/// Rule 4 and 7: re-using an async record is `Busy` while it is in flight and
/// succeeds once it is released, which is before its function runs; the
/// handler does not touch it after the release.
#[test]
fn async_reuse_is_busy_in_flight_and_free_after_release() {
    model(|| {
        let target = leak(Target::new());
        let done = leak(AtomicBool::new(false));
        let rec = leak(CallRecord::new_async(AsyncFn::Record(count), "count"));

        let sender = thread::spawn(move || {
            let q = &target.queue;
            assert_eq!(q.push_async(rec, cpu(1), cpu(0)), Ok(true));
            // The doorbell is not even rung: certainly in flight.
            assert_eq!(q.push_async(rec, cpu(1), cpu(0)), Err(Busy));
            target.ring_if(true);

            // Its function ran, so it was released before: free again, and
            // the queue was emptied when the call was taken.
            while RUNS.load(Acquire) == 0 {
                thread::yield_now();
            }
            assert_eq!(q.push_async(rec, cpu(1), cpu(0)), Ok(true));
            target.ring_if(true);

            // Re-use as soon as it is free, as call_single_async's caller
            // retrying on Busy would: this races with the handler's release
            // and run of the second call.
            let owed = loop {
                match q.push_async(rec, cpu(1), cpu(0)) {
                    Ok(owed) => break owed,
                    Err(Busy) => thread::yield_now(),
                }
            };
            assert!(owed, "the second call was taken before its release");
            target.ring_if(owed);
            done.store(true, Release);
        });

        target.handle_until(|| done.load(Acquire));
        sender.join().unwrap();
        assert_eq!(RUNS.load(Relaxed), 3);
        assert!(!rec.is_locked());
    });
}

/// A target that polls in idle (`idle=poll`) before it stops looking and
/// goes to sleep (or runs a long job, or goes offline): from then on only a
/// doorbell reaches it.
struct PollingTarget {
    target: Target,
    flag: PollFlag,
}

impl PollingTarget {
    fn new() -> Self {
        PollingTarget { target: Target::new(), flag: PollFlag::new() }
    }

    /// A sender's push and its doorbell, with the polling skip.
    fn send(&self, push: impl FnOnce(&CallQueue) -> bool) {
        let owed = push(&self.target.queue);
        self.target.ring_if(owed && self.flag.must_ring());
    }

    /// The idle CPU: raises its flag, looks at its queue `looks` times while
    /// polling, then stops as the kernel's idle loop does: flag down, one
    /// last look, and only then away.
    fn poll_then_stop(&self, looks: usize) {
        self.flag.start();
        for _ in 0..looks {
            self.target.queue.take_all().run();
            thread::yield_now();
        }
        self.flag.stop();
        self.target.queue.take_all().run();
    }
}

/// The polling skip (the exception to docs/rules.md, Cross-calls 2): two
/// senders race with a target that polls, stops polling and then only answers
/// doorbells. Whatever a skipped doorbell left, the last look after lowering
/// the flag finds: no call is stranded and each runs once.
#[test]
fn polling_skip_strands_no_call() {
    model(|| {
        let target = leak(PollingTarget::new());
        let done = leak(AtomicUsize::new(0));
        let ran = leak([AtomicUsize::new(0), AtomicUsize::new(0)]);

        let f: &'static _ = leak(|| {
            ran[0].fetch_add(1, Relaxed);
        });
        let sync_rec = leak(CallRecord::new_sync(f, "sync", cpu(1), cpu(0)));
        let s1 = thread::spawn(move || {
            // SAFETY: fresh, locked, and 'static.
            target.send(|q| unsafe { q.push(sync_rec) });
            done.fetch_add(1, Release);
        });

        let async_rec = leak(CallRecord::new_async(AsyncFn::Arg(bump, counter_arg(&ran[1])), "async"));
        let s2 = thread::spawn(move || {
            target.send(|q| q.push_async(async_rec, cpu(2), cpu(0)).unwrap());
            done.fetch_add(1, Release);
        });

        target.poll_then_stop(1);
        target.target.handle_until(|| done.load(Acquire) == 2);
        s1.join().unwrap();
        s2.join().unwrap();
        assert_eq!(ran[0].load(Relaxed), 1);
        assert_eq!(ran[1].load(Relaxed), 1);
        assert!(!sync_rec.is_locked() && !async_rec.is_locked());
    });
}

/// Two polling sessions (idle, a job, idle again) while one sender queues:
/// a flag raised again must not let a call slip between the sessions.
#[test]
fn polling_skip_across_two_idle_periods() {
    model(|| {
        let target = leak(PollingTarget::new());
        let done = leak(AtomicBool::new(false));
        let ran = leak(AtomicUsize::new(0));
        let rec = leak(CallRecord::new_async(AsyncFn::Arg(bump, counter_arg(ran)), "async"));

        let sender = thread::spawn(move || {
            target.send(|q| q.push_async(rec, cpu(1), cpu(0)).unwrap());
            done.store(true, Release);
        });

        target.poll_then_stop(0);
        target.poll_then_stop(0);
        target.target.handle_until(|| done.load(Acquire));
        sender.join().unwrap();
        assert_eq!(ran.load(Relaxed), 1);
    });
}

/// A stop-machine waiter that halts (`smp_core::sleep`): it has seen state
/// 0 and halts until the state changes; the waker changes it and wakes the
/// waiter if its flag is up. The halt compares the wake sequence once and
/// then waits for a wake-up, which is sticky: the arch stub makes an NMI
/// taken anywhere between the last look and the `hlt` end the halt. No
/// waiter may halt for good (loom reports the endless wait).
#[test]
fn halting_waiter_misses_no_wake_up() {
    model(|| {
        let state = leak(AtomicU32::new(0));
        let seq = leak(WakeSeq::new());
        let sleeper = leak(Sleeper::new());
        let nmi = leak(AtomicBool::new(false));
        let waker = thread::spawn(move || {
            state.store(1, Relaxed);
            seq.bump();
            if sleeper.must_wake() {
                nmi.store(true, Release);
            }
        });
        let value = sleeper.prepare(seq);
        if state.load(Relaxed) == 0 && seq.word().load(Relaxed) == value {
            // Halted: only a wake-up ends it.
            while !nmi.load(Acquire) {
                thread::yield_now();
            }
        }
        sleeper.finish();
        waker.join().unwrap();
    });
}

/// Stop-machine's timeout against the last ack (`smp_core::lockstep`): the
/// controller gives up on DISABLE_IRQ while the last CPU's ack is on its way,
/// and then reuses the word for the next run. Exactly one side wins, both
/// agree on which, and the losing ack never counts toward the next run.
#[test]
fn abort_and_the_last_ack_have_one_winner() {
    model(|| {
        let l = leak(Lockstep::new());
        l.begin(1, 2);
        l.ack(1, Phase::Prepare, 2);
        l.ack(1, Phase::Prepare, 2);
        // The controller's own DISABLE_IRQ ack; one CPU is late.
        assert_eq!(l.ack(1, Phase::DisableIrq, 2), Ack::Counted);
        let late = thread::spawn(move || l.ack(1, Phase::DisableIrq, 2));
        let aborted = l.abort(1, Phase::DisableIrq).is_ok();
        if aborted {
            l.begin(2, 2);
        }
        let acked = late.join().unwrap();
        if aborted {
            assert_eq!(acked, Ack::Stale, "an ack counted after the abort");
            let now = l.load();
            assert_eq!(
                (now.generation, now.phase, now.pending),
                (2, Phase::Prepare, 2),
                "the late ack leaked into run 2"
            );
        } else {
            assert_eq!(acked, Ack::Advanced(Phase::Run));
            assert_eq!(l.load().phase, Phase::Run);
        }
    });
}
