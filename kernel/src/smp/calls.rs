//! Cross-calls: asking other CPUs to run a function (docs/rules.md,
//! Cross-calls).
//!
//! The queue protocol (lock-free push, FIFO batches, SYNC/ASYNC release
//! order) is `smp_core::callq`, model-checked on the host. When a sender
//! rings the target's doorbell (the doorbell rule and its polling skip) is
//! decided in `doorbell.rs`. This module adds the kernel's side: the per-CPU
//! queues, the API, the watchdog, and the offline rules of hotplug.
//!
//! **Why check-then-enqueue cannot race with offlining.** A sender checks
//! `online`, queues and rings with interrupts off. A CPU leaves `online`
//! only inside stop-machine, which first needs every other online CPU to
//! take its interrupt and ack. So a sender that saw the target online has
//! queued before the target's dying flush runs, and the flush runs the call.
//! A waiting sender therefore waits with interrupts *on*: waiting with them
//! off would keep it from acking stop-machine and deadlock an offlining.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;
use smp_core::callq::{AsyncFn, Busy, CallQueue, CallRecord};
use smp_core::{CpuId, CpuSet, per_cpu};
use spin::Once;

use super::doorbell;
use crate::arch::ipi::{self, IpiKind};
use crate::arch::{alarm, irq};
use crate::hooks::{self, Action, points};
use crate::percpu::{self, Activity};
use crate::time::{Deadline, SPINS_PER_CLOCK_READ};

// Every per-CPU array on the call path is padded to whole cache lines: two
// CPUs writing neighbouring entries would otherwise pass a line back and
// forth on every call (measured: README, Performance).
per_cpu! {
    static QUEUES: PerCpu<CachePadded<CallQueue>> = CachePadded::new(CallQueue::new());
}

pub fn queue(cpu: CpuId) -> &'static CallQueue {
    QUEUES.of(cpu)
}

/// Why a call was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The target is not online; nothing was queued or run.
    Offline(CpuId),
    /// The caller-owned record is still in flight from an earlier call.
    Busy,
}

/// Per-CPU counters.
#[derive(Default)]
pub struct Counters {
    pub doorbells_sent: AtomicU64,
    pub doorbells_received: AtomicU64,
    /// Enqueues that found the queue non-empty: the doorbell was already owed.
    pub doorbells_skipped: AtomicU64,
    /// Enqueues that owed the doorbell but left it unrung: the target was
    /// polling in idle and finds the call by itself (the polling skip).
    pub doorbells_polled: AtomicU64,
    pub calls_run: AtomicU64,
    pub watchdog_reports: AtomicU64,
    /// IPIs that reached this CPU while offline with calls queued (sender bugs).
    pub offline_warnings: AtomicU64,
    /// Calls this CPU queued to a CPU that was not online (the early
    /// sender warning: it got past the online check, a sender bug).
    pub raced_sends: AtomicU64,
    /// Times this CPU, waiting for a call, halted.
    pub waiter_halts: AtomicU64,
    /// Wake-ups this CPU sent to halted waiters.
    pub wakes_sent: AtomicU64,
}

per_cpu! {
    static COUNTERS: PerCpu<CachePadded<Counters>> = CachePadded::new(Counters {
        doorbells_sent: AtomicU64::new(0),
        doorbells_received: AtomicU64::new(0),
        doorbells_skipped: AtomicU64::new(0),
        doorbells_polled: AtomicU64::new(0),
        calls_run: AtomicU64::new(0),
        watchdog_reports: AtomicU64::new(0),
        offline_warnings: AtomicU64::new(0),
        raced_sends: AtomicU64::new(0),
        waiter_halts: AtomicU64::new(0),
        wakes_sent: AtomicU64::new(0),
    });
}

pub fn counters(cpu: CpuId) -> &'static Counters {
    COUNTERS.of(cpu)
}

fn me() -> CpuId {
    percpu::current_cpu()
}

/// Bring-up step: the CPU's queue exists and is empty. A non-empty queue
/// would mean an "IPI owed" left over from a previous life: every sender
/// would skip the doorbell and wait forever (story 2,
/// docs/stories/2-lost-ipis-during-hotplug.md).
pub fn prepare_queue(cpu: CpuId) -> Result<(), &'static str> {
    if queue(cpu).is_empty() || skip_queue_check(cpu) { Ok(()) } else { Err("call queue not empty at bring-up") }
}

/// Test hook: play the kernel of story 2, which had no such check.
pub fn skip_queue_check(cpu: CpuId) -> bool {
    hooks::point(points::CALLS_SKIP_QUEUE_CHECK, cpu) == Action::Fail
}

/// Queues `rec` on `cpu` and rings its doorbell if the doorbell rule says
/// so (`doorbell::after_push`).
///
/// # Safety
/// As for [`CallQueue::push`].
unsafe fn enqueue(cpu: CpuId, rec: &CallRecord<'_>) {
    // SAFETY: forwarded to the caller.
    let owed = unsafe { queue(cpu).push(rec) };
    doorbell::after_push(cpu, owed);
}

/// Whether a sender may queue to `cpu`. The test hook lets a test play the
/// buggy sender that skips the check (docs/rules.md, Hotplug 5).
fn may_send_to(cpu: CpuId) -> bool {
    super::ONLINE.contains(cpu) || hooks::point(points::CALLS_SKIP_ONLINE_CHECK, me()) == Action::Fail
}

/// docs/rules.md, Cross-calls 9: a sender that got past the online check
/// with a target that is no longer online raced with offlining. Warn at the
/// sender, early.
/// Every way of sending calls it, after its online check, with interrupts
/// off and before it queues.
fn warn_if_raced(cpu: CpuId, name: &str) {
    if !super::ONLINE.contains(cpu) {
        COUNTERS.of(me()).raced_sends.fetch_add(1, Ordering::Relaxed);
        log::warn!("cross-call {name} queued to {cpu}, which is not online: the sender raced with offlining");
    }
}

/// Runs `f` here with interrupts off, as if it had come by IPI.
fn run_locally(f: &dyn Fn()) {
    irq::without(f);
    COUNTERS.of(me()).calls_run.fetch_add(1, Ordering::Relaxed);
}

/// The watchdog configuration: `csd.timeout_ms` (default 5000) before a
/// report, `csd.fatal=1` to panic instead of waiting on.
fn watchdog_limit_us() -> u64 {
    static LIMIT: Once<u64> = Once::new();
    *LIMIT.call_once(|| crate::params::get_u64("csd.timeout_ms", 5_000) * 1000)
}

/// The SYNC records a CPU's thread is waiting on. A CPU taken down abandons
/// its thread where it stands; before it parks it must see these released,
/// since its next life reuses the stack they (and the closures they borrow)
/// live on.
struct Waiting {
    start: AtomicPtr<CallRecord<'static>>,
    len: AtomicUsize,
    /// The capacity of the heap vector the records live in (0: on the
    /// stack): a parked CPU frees it once they are released, since the
    /// thread that owned it never runs again.
    heap_capacity: AtomicUsize,
}

per_cpu! {
    static WAITING: PerCpu<CachePadded<Waiting>> = CachePadded::new(Waiting {
        start: AtomicPtr::new(core::ptr::null_mut()),
        len: AtomicUsize::new(0),
        heap_capacity: AtomicUsize::new(0),
    });
}

/// Registers `records` as this CPU's wait. Called with interrupts off,
/// *before* they are queued, so no stop-machine can park this CPU with a
/// queued record it has not registered. Only this CPU reads its entry (when
/// parking, from an interrupt), so Relaxed is enough.
fn register_wait(me: CpuId, records: &[CallRecord<'_>]) {
    let w = WAITING.of(me);
    w.len.store(records.len(), Ordering::Relaxed);
    w.heap_capacity.store(0, Ordering::Relaxed);
    w.start.store(records.as_ptr().cast::<CallRecord<'static>>().cast_mut(), Ordering::Relaxed);
}

/// [`register_wait`] for records in a heap vector, which parking frees.
fn register_wait_in_vec(me: CpuId, records: &Vec<CallRecord<'_>>) {
    register_wait(me, records);
    WAITING.of(me).heap_capacity.store(records.capacity(), Ordering::Relaxed);
}

fn unregister_wait(me: CpuId) {
    WAITING.of(me).start.store(core::ptr::null_mut(), Ordering::Relaxed);
}

/// Waits for every record in `records` (registered), then unregisters.
fn wait_for_all(me: CpuId, records: &[CallRecord<'_>]) {
    for rec in records {
        wait_for(rec);
    }
    unregister_wait(me);
}

/// How long a parking CPU waits, in all, for the calls its abandoned thread
/// was waiting on (`hotplug` waits longer than this for the park).
pub const SETTLE_LIMIT_US: u64 = 10_000_000;

/// On a CPU that is parking: waits (bounded) until every call its
/// abandoned thread was waiting for has been run and released by its
/// (online) target.
pub fn settle_abandoned_wait() {
    let waiting = WAITING.of(me());
    let start = waiting.start.swap(core::ptr::null_mut(), Ordering::Relaxed);
    if start.is_null() {
        return;
    }
    let len = waiting.len.load(Ordering::Relaxed);
    let heap_capacity = waiting.heap_capacity.load(Ordering::Relaxed);
    // SAFETY: the thread that registered these records was interrupted
    // inside `wait_for_all`, so the slice (on its stack or heap) is intact
    // and nothing else frees it while this CPU still runs.
    let records = unsafe { core::slice::from_raw_parts(start, len) };
    // Taken down while halted: nobody need wake this CPU for them any more.
    for rec in records {
        rec.clear_sleeping();
    }
    if !crate::time::wait_until(SETTLE_LIMIT_US, || records.iter().all(|r| !r.is_locked())) {
        for rec in records.iter().filter(|r| r.is_locked()) {
            log::error!("{}: a call to {} ({}) was never run; parking anyway", me(), rec.target(), rec.name());
        }
        // A target may still write to them: better leaked than reused.
        return;
    }
    if heap_capacity != 0 {
        // SAFETY: `register_wait_in_vec` registered a `Vec`'s buffer, length
        // and capacity; every record is released, so no CPU refers to them,
        // and the thread that owned the vector never runs again (this CPU
        // parks and starts its next life afresh).
        drop(unsafe { Vec::from_raw_parts(start, len, heap_capacity) });
    }
}

/// How long a waiter spins before it halts (`csd.halt_after_us`, default
/// 50; 0: spin only, as Linux's waiters do). Calls to a polling or busy CPU
/// answer within a few µs and never halt; a waiter that is left waiting
/// gives its host core to the vCPUs it waits for.
fn halt_after_us() -> u64 {
    static AFTER: Once<u64> = Once::new();
    *AFTER.call_once(|| crate::params::get_u64("csd.halt_after_us", 50))
}

/// Waits for `rec` to be released, reporting (and ringing again) each time
/// the watchdog limit passes. After a short spin a waiter with interrupts
/// on halts until the release wakes it (docs/rules.md#cross-calls-10), or
/// until its next report is due.
fn wait_for(rec: &CallRecord<'_>) {
    let start = Deadline::after_us(0);
    let limit = watchdog_limit_us();
    let mut next_report = limit;
    let halt_after = halt_after_us();
    let may_halt = halt_after != 0 && irq::are_enabled();
    let mut spins = 0u32;
    rec.wait_released(|| {
        spins = spins.wrapping_add(1);
        if !spins.is_multiple_of(SPINS_PER_CLOCK_READ) {
            return;
        }
        let waited = start.elapsed_us();
        if waited >= next_report {
            next_report += limit;
            watchdog_report(rec.target(), rec.name(), waited);
        }
        if may_halt && waited >= halt_after {
            halt_until_released(rec, start.from_start_us(next_report));
        }
    });
}

/// Halts until `rec`'s release wakes this CPU (the target sends
/// `IpiKind::Wake` when it finds the record marked) or `until`, the alarm,
/// passes. Interrupts are off from before the mark to the `sti; hlt`, so a
/// wake-up sent at any moment after the mark is pending when the halt
/// begins and ends it at once.
fn halt_until_released(rec: &CallRecord<'_>, until: Deadline) {
    irq::disable();
    if rec.mark_sleeping() {
        let _ = hooks::point(points::CALLS_WAITER_BEFORE_HALT, me());
        alarm::set(until.timestamp());
        COUNTERS.of(me()).waiter_halts.fetch_add(1, Ordering::Relaxed);
        irq::enable_and_halt();
        irq::disable();
        alarm::clear();
        rec.clear_sleeping();
    }
    irq::enable();
}

/// Wakes `sender`, halted for a call this CPU just ran.
fn wake_sender(sender: CpuId) {
    COUNTERS.of(me()).wakes_sent.fetch_add(1, Ordering::Relaxed);
    ipi::send(IpiKind::Wake, sender);
}

fn watchdog_report(target: CpuId, name: &str, waited_us: u64) {
    COUNTERS.of(me()).watchdog_reports.fetch_add(1, Ordering::Relaxed);
    let state = percpu::of(target).activity();
    log::error!(
        "cross-call watchdog: {} has waited {}.{:03} s for {target} to run {name}; {target} is {state:?}, {}online, {}polling, queue {}; ringing its doorbell again",
        me(),
        waited_us / 1_000_000,
        waited_us / 1000 % 1000,
        if super::ONLINE.contains(target) { "" } else { "NOT " },
        if doorbell::is_polling(target) { "" } else { "not " },
        if queue(target).is_empty() { "empty" } else { "non-empty" },
    );
    crate::backtrace::print_here();
    if crate::params::get_bool("csd.fatal", false) {
        panic!("cross-call watchdog: {target} did not run {name} (csd.fatal=1)");
    }
    doorbell::ring(target);
}

fn warn_if_irqs_off(what: &str) {
    if !irq::are_enabled() {
        log::warn!("{what} called with interrupts disabled: it waits, and could deadlock stop-machine");
    }
}

/// Runs `f` on `cpu` and waits until it has run there; afterwards every write
/// `f` made is visible here. `f` may borrow from the caller's stack. On the
/// calling CPU `f` runs at once with interrupts off. `Offline` means `cpu` is
/// not online and nothing ran: this is also the conditional form
/// (docs/rules.md, Cross-calls 6; story 3, docs/stories/3-call-to-offline-cpu.md).
pub fn call_single<F: Fn() + Sync>(cpu: CpuId, name: &'static str, f: &F) -> Result<(), CallError> {
    let me = me();
    if cpu == me {
        run_locally(f);
        return Ok(());
    }
    warn_if_irqs_off("call_single");
    let rec = CallRecord::new_sync(f, name, me, cpu);
    let queued = irq::without(|| {
        if !may_send_to(cpu) {
            return false;
        }
        warn_if_raced(cpu, name);
        register_wait(me, core::slice::from_ref(&rec));
        // SAFETY: `rec` is a fresh locked record; it lives on this frame and
        // this function waits for its release below on every path.
        unsafe { enqueue(cpu, &rec) };
        true
    });
    if !queued {
        return Err(CallError::Offline(cpu));
    }
    wait_for_all(me, core::slice::from_ref(&rec));
    Ok(())
}

/// Queues a caller-owned record to `cpu` without waiting. Never blocks, and
/// may be called with interrupts off: `Busy` if the record's previous call
/// is still in flight, `Offline` if `cpu` is not online.
pub fn call_single_async(cpu: CpuId, rec: &'static CallRecord<'static>) -> Result<(), CallError> {
    irq::without(|| {
        if cpu != me() {
            if !may_send_to(cpu) {
                return Err(CallError::Offline(cpu));
            }
            warn_if_raced(cpu, rec.name());
        }
        let owed = queue(cpu).push_async(rec, me(), cpu).map_err(|Busy| CallError::Busy)?;
        if cpu == me() {
            // Our own queue: drain it now, interrupts are already off.
            run_queue(cpu);
        } else {
            doorbell::after_push(cpu, owed);
        }
        Ok(())
    })
}

/// A reusable record for calls nobody waits for: `f(arg)` is set per call.
/// `busy` covers the span from claiming the slot until the handler has read
/// `f` and `arg` (the record itself is released before its function runs).
#[repr(C)]
struct NowaitSlot {
    /// First field: the handler finds the slot from the record's address.
    rec: CallRecord<'static>,
    busy: AtomicBool,
    func: AtomicPtr<()>,
    arg: AtomicUsize,
}

impl NowaitSlot {
    const fn new() -> NowaitSlot {
        NowaitSlot {
            rec: CallRecord::new_async(AsyncFn::Record(run_nowait_slot), "call_nowait"),
            busy: AtomicBool::new(false),
            func: AtomicPtr::new(core::ptr::null_mut()),
            arg: AtomicUsize::new(0),
        }
    }
}

fn run_nowait_slot(rec: &'static CallRecord<'static>) {
    // SAFETY: every record with this function is the first field of a
    // `#[repr(C)]` `NowaitSlot` that lives forever.
    let slot = unsafe { &*(rec as *const CallRecord<'static>).cast::<NowaitSlot>() };
    let func = slot.func.load(Ordering::Acquire);
    let arg = slot.arg.load(Ordering::Relaxed);
    slot.busy.store(false, Ordering::Release);
    // SAFETY: `func` was stored from a `fn(usize)` by `send_nowait`.
    let f: fn(usize) = unsafe { core::mem::transmute::<*mut (), fn(usize)>(func) };
    f(arg);
}

per_cpu! {
    /// One slot per sender for single non-waiting calls.
    static SINGLE_SLOTS: PerCpu<NowaitSlot> = NowaitSlot::new();
}
per_cpu! {
    /// Per sender, one slot per target, made on the sender's first `call_many_nowait`.
    static MANY_SLOTS: PerCpu<Once<Box<[NowaitSlot]>>> = Once::new();
}

/// Claims `slot` (waiting, with the watchdog, while its last call is still
/// unread), then queues `f(arg)` on `cpu`. Claim and queue are one step
/// with interrupts off, so a CPU parked by a stop-machine never leaves the
/// slot claimed but unqueued.
fn send_nowait(slot: &'static NowaitSlot, cpu: CpuId, f: fn(usize), arg: usize) -> Result<(), CallError> {
    let start = Deadline::after_us(0);
    let mut next_report = watchdog_limit_us();
    loop {
        let sent = irq::without(|| {
            if slot.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
                return None;
            }
            if !may_send_to(cpu) {
                slot.busy.store(false, Ordering::Release);
                return Some(Err(CallError::Offline(cpu)));
            }
            warn_if_raced(cpu, "call_nowait");
            slot.func.store(f as *mut (), Ordering::Relaxed);
            slot.arg.store(arg, Ordering::Relaxed);
            match queue(cpu).push_async(&slot.rec, me(), cpu) {
                Ok(owed) => doorbell::after_push(cpu, owed),
                // `busy` was free, so the handler had released the record before.
                Err(Busy) => unreachable!("a free nowait slot with its record in flight"),
            }
            Some(Ok(()))
        });
        if let Some(result) = sent {
            return result;
        }
        core::hint::spin_loop();
        if start.elapsed_us() >= next_report {
            next_report += watchdog_limit_us();
            watchdog_report(slot.rec.target(), "call_nowait (previous call on this slot)", start.elapsed_us());
        }
    }
}

/// Runs `f(arg)` on `cpu` without waiting for it. Taking a plain `fn` and a
/// number means the call cannot borrow anything from the caller's stack.
pub fn call_single_nowait(cpu: CpuId, f: fn(usize), arg: usize) -> Result<(), CallError> {
    if cpu == me() {
        run_locally(&|| f(arg));
        return Ok(());
    }
    warn_if_irqs_off("call_single_nowait");
    send_nowait(SINGLE_SLOTS.of(me()), cpu, f, arg)
}

/// Which CPUs a set call goes to: the CPUs of `mask` that pass the online
/// check (`mask ∩ online`), minus the caller.
fn targets(mask: &CpuSet) -> CpuSet {
    let mut t = mask.intersection(&super::ONLINE.snapshot());
    // Only the CPUs that are not online need the full check (a test hook
    // may let a buggy sender through): a call to all stays a mask operation.
    for cpu in mask.difference(&t).iter() {
        if may_send_to(cpu) {
            t.insert(cpu);
        }
    }
    t.remove(me());
    t
}

/// Runs `f` on every online CPU of `mask` (and here, with `include_self`)
/// and waits for all of them. Returns the CPUs it ran on. A doorbell for
/// every target whose queue was empty, all rung at once (`fanout`), in the
/// same interrupts-off step as the pushes that owed them.
pub fn call_many<F: Fn() + Sync>(mask: &CpuSet, name: &'static str, include_self: bool, f: &F) -> CpuSet {
    warn_if_irqs_off("call_many");
    let me = me();
    let mut ran = CpuSet::EMPTY;
    let mut records: Vec<CallRecord<'_>> = Vec::new();
    irq::without(|| {
        let t = targets(mask);
        // Allocated in full before any is queued: queued records must not move.
        records = t.iter().map(|cpu| CallRecord::new_sync(f, name, me, cpu)).collect();
        register_wait_in_vec(me, &records);
        let mut bells = CpuSet::EMPTY;
        for rec in &records {
            warn_if_raced(rec.target(), name);
            // SAFETY: fresh locked records in a vector that is neither moved
            // nor dropped before the waits below.
            let owed = unsafe { queue(rec.target()).push(rec) };
            if doorbell::must_ring(rec.target(), owed) {
                bells.insert(rec.target());
            }
            ran.insert(rec.target());
        }
        doorbell::ring_many(&bells);
    });
    if include_self && mask.contains(me) {
        run_locally(f);
        ran.insert(me);
    }
    for rec in &records {
        wait_for(rec);
    }
    // Unregistered and freed in one step: a CPU parked in between would
    // leave the vector to nobody.
    irq::without(|| {
        unregister_wait(me);
        drop(records);
    });
    ran
}

fn many_slots(sender: CpuId) -> &'static [NowaitSlot] {
    MANY_SLOTS.of(sender).call_once(|| (0..smp_core::percpu::possible()).map(|_| NowaitSlot::new()).collect())
}

/// Makes `sender`'s slots for [`call_many_nowait`] now, not at its first
/// such call (for a caller that measures the heap).
pub fn reserve_nowait_slots(sender: CpuId) {
    many_slots(sender);
}

/// Runs `f(arg)` on every online CPU of `mask` (and here, with
/// `include_self`) without waiting. Returns the CPUs it was sent to.
pub fn call_many_nowait(mask: &CpuSet, f: fn(usize), arg: usize, include_self: bool) -> CpuSet {
    warn_if_irqs_off("call_many_nowait");
    let slots = many_slots(me());
    let mut sent = CpuSet::EMPTY;
    // One target at a time, each push rung in the same interrupts-off step
    // (each slot is claimed in its own): a doorbell owed but left for
    // later would be lost with this sender if its CPU went down in between,
    // and the target's queue would wait for it forever (docs/rules.md#fan-out-1).
    for cpu in targets(mask).iter() {
        if send_nowait(&slots[cpu.index()], cpu, f, arg).is_ok() {
            sent.insert(cpu);
        }
    }
    if include_self && mask.contains(me()) {
        run_locally(&|| f(arg));
        sent.insert(me());
    }
    sent
}

/// [`call_many`] to every online CPU.
pub fn call_all<F: Fn() + Sync>(name: &'static str, include_self: bool, f: &F) -> CpuSet {
    call_many(&super::ONLINE.snapshot(), name, include_self, f)
}

/// Drains `cpu`'s queue (the running CPU's own), interrupts off: for a CPU
/// that finds calls without taking their doorbell (a call to itself, the
/// last look of polling idle, the dying flush).
pub(super) fn run_queue(cpu: CpuId) -> usize {
    let batch = queue(cpu).take_all();
    let n = batch.len();
    batch.run_waking(wake_sender);
    COUNTERS.of(cpu).calls_run.fetch_add(n as u64, Ordering::Relaxed);
    n
}

/// The CALL_FUNCTION handler: run everything queued, in FIFO order.
///
/// **Refined warning** (docs/rules.md, Hotplug 5; story 1 part 2,
/// docs/stories/1-dying-flush.md): on an offline CPU, a late doorbell is
/// harmless once the dying flush ran; warn only if the list *taken* now is
/// non-empty, which means a sender queued after the CPU went offline.
/// Checking the queue after taking it would miss that.
pub fn on_doorbell() {
    let cpu = me();
    COUNTERS.of(cpu).doorbells_received.fetch_add(1, Ordering::Relaxed);
    let prev = percpu::current().activity();
    percpu::current().set_activity(Activity::InIpiHandler);
    let batch = queue(cpu).take_all();
    if !super::ONLINE.contains(cpu) && !batch.is_empty() {
        COUNTERS.of(cpu).offline_warnings.fetch_add(1, Ordering::Relaxed);
        let mut names = alloc::string::String::new();
        for rec in batch.iter() {
            let _ = core::fmt::Write::write_fmt(&mut names, format_args!(" {} (from {})", rec.name(), rec.sender()));
        }
        log::warn!("IPI on offline {cpu} with {} callback(s) queued after it went offline:{names}", batch.len());
    }
    let n = batch.len();
    batch.run_waking(wake_sender);
    COUNTERS.of(cpu).calls_run.fetch_add(n as u64, Ordering::Relaxed);
    percpu::current().set_activity(prev);
}

/// **Dying flush** (docs/rules.md, Hotplug 4; story 1 part 1,
/// docs/stories/1-dying-flush.md): the outgoing CPU, already out of `online`,
/// with interrupts off inside stop-machine, runs every callback still queued
/// to it, including those whose doorbell it has not taken yet. After this a
/// late doorbell finds nothing, and the queue is empty for the CPU's next
/// life (story 2). First it lowers its polling flag if it was taken down
/// while polling, so that nothing after this skips its doorbell (the flush is
/// then the last look of the polling handshake).
pub fn dying_flush() -> usize {
    let cpu = me();
    doorbell::lower_flag_of_dying_cpu(cpu);
    if hooks::point(points::CALLS_SKIP_DYING_FLUSH, cpu) == Action::Fail {
        return 0;
    }
    run_queue(cpu)
}
