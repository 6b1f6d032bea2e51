//! Polling idle (`idle=poll`) and the polling skip of the doorbell rule
//! (`kernel/src/smp/doorbell.rs`). The racy moment, a poller that no longer
//! looks at its queue while its flag still says it does, is forced with the
//! test hook `idle.stop-polling`.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::ktest::{Failure, Outcome, Test};
use crate::{kassert, kassert_eq, ktest};
use kernel::hooks::{self, Mode, Point, points};
use kernel::smp::calls::{self, Counters};
use kernel::smp::idle::{self, IdleMode};
use kernel::smp::{self, doorbell, worker};
use kernel::time::{self, Deadline};
use kernel::{CpuId, percpu};
use smp_core::callq::{AsyncFn, CallRecord};

pub const TESTS: &[Test] = &[
    ktest!(halt_is_the_default_and_raises_no_flag).min_cpus(2),
    ktest!(polling_skip_strands_no_call).params("idle=poll").min_cpus(2),
    ktest!(a_poller_runs_calls_as_a_doorbell_would).params("idle=poll").min_cpus(2),
    ktest!(haltpoll_polls_after_work_then_halts).params("idle=haltpoll;idle.poll_us=20000").min_cpus(2),
];

const HOOK: Point = points::IDLE_STOP_POLLING;

fn other_cpu() -> Result<CpuId, Failure> {
    let me = percpu::current_cpu();
    smp::ONLINE.snapshot().iter().find(|c| *c != me).ok_or(Failure("no other online CPU".into()))
}

/// Without `idle=`, idle CPUs halt, and a flag that is never raised can
/// make no sender skip a doorbell.
fn halt_is_the_default_and_raises_no_flag() -> Outcome {
    kassert_eq!(idle::mode(), IdleMode::Halt);
    let target = other_cpu()?;
    let me = percpu::current_cpu();
    let (sent, polled) = doorbells(calls::counters(me));
    calls::call_single(target, "to-a-halted-cpu", &|| {}).map_err(|e| Failure(alloc::format!("{e:?}")))?;
    kassert!(!doorbell::is_polling(target));
    kassert_eq!(doorbells(calls::counters(me)), (sent + 1, polled));
    Ok(())
}

fn doorbells(c: &Counters) -> (u64, u64) {
    (c.doorbells_sent.load(Ordering::SeqCst), c.doorbells_polled.load(Ordering::SeqCst))
}

static RUNS: AtomicU64 = AtomicU64::new(0);

fn count(_: usize) {
    RUNS.fetch_add(1, Ordering::SeqCst);
}

static FIRST: CallRecord<'static> = CallRecord::new_async(AsyncFn::Arg(count, 0), "sent-while-flag-up");
static SECOND: CallRecord<'static> = CallRecord::new_async(AsyncFn::Arg(count, 0), "sent-during-the-job");

static JOB_RUNNING: AtomicBool = AtomicBool::new(false);
static JOB_RELEASE: AtomicBool = AtomicBool::new(false);

/// A job that keeps the target busy (interrupts on, as every job) until
/// released: from its start, only a doorbell can get a call run there.
fn long_job(_: usize) {
    JOB_RUNNING.store(true, Ordering::SeqCst);
    let limit = Deadline::after_ms(20_000);
    while !JOB_RELEASE.load(Ordering::SeqCst) && !limit.expired() {
        core::hint::spin_loop();
    }
    JOB_RUNNING.store(false, Ordering::SeqCst);
}

/// The target T polls. A job for T makes it stop polling; the hook holds T
/// after it stopped looking at its queue but before its flag is down.
/// A call sent now skips the doorbell (the flag is up), so only T's last
/// look can find it: it must run even though T then spins in a job that
/// only a doorbell could interrupt. During the job T's flag must be down,
/// so a second call rings and runs too.
fn polling_skip_strands_no_call() -> Outcome {
    kassert_eq!(idle::mode(), IdleMode::Poll);
    let t = other_cpu()?;
    let me = percpu::current_cpu();
    kassert!(time::wait_until(5_000_000, || doorbell::is_polling(t)), "{t} never started polling");
    RUNS.store(0, Ordering::SeqCst);
    JOB_RUNNING.store(false, Ordering::SeqCst);
    JOB_RELEASE.store(false, Ordering::SeqCst);
    hooks::arm(HOOK, Some(t), Mode::Pause);
    let outcome = skip_then_job(t, me);
    hooks::release(HOOK);
    JOB_RELEASE.store(true, Ordering::SeqCst);
    let idle_again = time::wait_until(25_000_000, || worker::is_free(t));
    outcome?;
    kassert!(idle_again, "{t} did not finish its job");
    Ok(())
}

fn skip_then_job(t: CpuId, me: CpuId) -> Outcome {
    worker::spawn(t, long_job, 0).map_err(|e| Failure(alloc::format!("spawn on {t}: {e:?}")))?;
    kassert!(hooks::wait_reached(HOOK, 5_000), "{t} did not stop polling for its job");
    kassert!(doorbell::is_polling(t), "{t}'s flag is already down at the hook");

    let (sent, polled) = doorbells(calls::counters(me));
    calls::call_single_async(t, &FIRST).map_err(|e| Failure(alloc::format!("{e:?}")))?;
    let now = doorbells(calls::counters(me));
    kassert!(
        now == (sent, polled + 1),
        "the doorbell was not skipped: (sent, polled) {now:?}, before {:?}",
        (sent, polled)
    );
    hooks::release(HOOK);
    kassert!(time::wait_until(5_000_000, || JOB_RUNNING.load(Ordering::SeqCst)), "{t} did not start its job");
    kassert!(
        time::wait_until(2_000_000, || RUNS.load(Ordering::SeqCst) == 1),
        "the call whose doorbell was skipped is stranded on {t} (its last look after lowering the flag missed it)"
    );

    kassert!(!doorbell::is_polling(t), "{t} runs a job with its polling flag up");
    let (sent, polled) = doorbells(calls::counters(me));
    calls::call_single_async(t, &SECOND).map_err(|e| Failure(alloc::format!("{e:?}")))?;
    kassert!(
        time::wait_until(2_000_000, || RUNS.load(Ordering::SeqCst) == 2),
        "a call to {t} during its job is stranded (its doorbell was skipped?)"
    );
    let now = doorbells(calls::counters(me));
    kassert!(
        now == (sent + 1, polled),
        "the doorbell to a busy CPU was not rung: (sent, polled) {now:?}, before {:?}",
        (sent, polled)
    );
    kassert!(JOB_RUNNING.load(Ordering::SeqCst), "the job ended early: the test proved nothing");
    Ok(())
}

/// A polling CPU runs the calls it finds in its idle loop, without their
/// doorbell. They must still run as a doorbell's handler runs them, with
/// interrupts off, and the CPU must go on polling: a second call skips its
/// doorbell too.
fn a_poller_runs_calls_as_a_doorbell_would() -> Outcome {
    kassert_eq!(idle::mode(), IdleMode::Poll);
    let t = other_cpu()?;
    let me = percpu::current_cpu();
    kassert!(time::wait_until(5_000_000, || doorbell::is_polling(t)), "{t} never started polling");
    for round in 0..2 {
        let (sent, polled) = doorbells(calls::counters(me));
        let irqs_on = AtomicBool::new(true);
        let ran_on = AtomicU64::new(u64::MAX);
        calls::call_single(t, "found-by-polling", &|| {
            irqs_on.store(x86_64::instructions::interrupts::are_enabled(), Ordering::SeqCst);
            ran_on.store(percpu::current_cpu().index() as u64, Ordering::SeqCst);
        })
        .map_err(|e| Failure(alloc::format!("{e:?}")))?;
        kassert_eq!(ran_on.load(Ordering::SeqCst), t.index() as u64);
        kassert!(!irqs_on.load(Ordering::SeqCst), "call {round} ran on the poller {t} with interrupts on");
        let now = doorbells(calls::counters(me));
        kassert!(
            now == (sent, polled + 1),
            "call {round}: the doorbell to the poller {t} was not skipped: (sent, polled) {now:?}, before {:?}",
            (sent, polled)
        );
    }
    Ok(())
}

fn call(t: CpuId, name: &'static str) -> Outcome {
    calls::call_single(t, name, &|| {}).map_err(|e| Failure(alloc::format!("{name}: {e:?}")))
}

/// `haltpoll`: after work a CPU polls (a call then skips its doorbell);
/// left alone for the window (20 ms here) it lowers its flag and halts (a
/// call then rings); woken, it polls again.
fn haltpoll_polls_after_work_then_halts() -> Outcome {
    kassert_eq!(idle::mode(), IdleMode::HaltPoll);
    let t = other_cpu()?;
    let me = percpu::current_cpu();
    call(t, "some-work")?;
    kassert!(time::wait_until(2_000_000, || doorbell::is_polling(t)), "{t} did not poll after its work");
    let (sent, polled) = doorbells(calls::counters(me));
    call(t, "while-polling")?;
    let now = doorbells(calls::counters(me));
    kassert!(
        now == (sent, polled + 1),
        "a call to the polling {t} rang its doorbell: (sent, polled) {now:?}, before {:?}",
        (sent, polled)
    );

    kassert!(time::wait_until(2_000_000, || !doorbell::is_polling(t)), "{t} still polls 2 s after its last work");
    let (sent, polled) = doorbells(calls::counters(me));
    call(t, "after-the-window")?;
    let now = doorbells(calls::counters(me));
    kassert!(
        now == (sent + 1, polled),
        "a call to the halted {t} did not ring: (sent, polled) {now:?}, before {:?}",
        (sent, polled)
    );
    kassert!(time::wait_until(2_000_000, || doorbell::is_polling(t)), "{t} did not poll again after its doorbell");
    Ok(())
}
