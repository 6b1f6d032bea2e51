//! The doorbell: when a cross-call sender sends the CALL_FUNCTION IPI. Every
//! sender decides it here, in [`after_push`], by two rules:
//!
//! - **The doorbell rule** (docs/rules.md, Cross-calls 2): ring only when this
//!   push made the target's queue go from empty to non-empty. A non-empty
//!   queue means a doorbell is already owed. This is what turns any stranded
//!   entry into a hang (story 2, docs/stories/2-lost-ipis-during-hotplug.md).
//! - **The polling skip**, its one exception (Linux's `TIF_POLLING_NRFLAG`):
//!   a doorbell that is owed may stay unrung while the target polls its
//!   queue in idle (`idle=poll`, `smp/idle.rs`), because it will find the
//!   call by itself. That saves a whole interrupt (delivery, entry, EOI),
//!   which under TCG costs many times the call itself.
//!
//! The skip is safe because of the handshake in `smp_core::poll`
//! (loom-checked): a poller lowers its flag *before* its last look at the
//! queue ([`stop_polling`]), and a sender reads the flag only *after* its
//! push, with a fence on both sides. A CPU taken down while polling never
//! returns to its idle loop, so the dying flush lowers its flag
//! ([`lower_flag_of_dying_cpu`]): no flag outlives a CPU's life to make a
//! sender skip the doorbell of an offline or newly started CPU.

use core::sync::atomic::Ordering;

use crossbeam_utils::CachePadded;
use smp_core::poll::PollFlag;
use smp_core::{CpuId, CpuSet, per_cpu};

use super::{calls, fanout};
use crate::arch::ipi::{self, IpiKind};
use crate::hooks::{self, points};
use crate::percpu;
use crate::percpu::ThisCpu;

per_cpu! {
    /// Per CPU: "polling my queue in idle, no doorbell needed". Each on its own
    /// cache line: every sender to a CPU reads its flag.
    static POLL_FLAGS: PerCpu<CachePadded<PollFlag>> = CachePadded::new(PollFlag::new());
}

/// Sends `cpu` the CALL_FUNCTION IPI, unconditionally. Senders go through
/// [`after_push`]; the watchdog rings again this way.
pub fn ring(cpu: CpuId) {
    ipi::send(IpiKind::CallFunction, cpu);
    calls::counters(percpu::current_cpu()).doorbells_sent.fetch_add(1, Ordering::Relaxed);
}

/// The doorbell rule and the polling skip, for a sender that has just
/// pushed a call onto `cpu`'s queue; `owed` is what the push returned (the
/// queue was empty before it). Whether the sender must ring `cpu`.
pub fn must_ring(cpu: CpuId, owed: bool) -> bool {
    let mine = calls::counters(percpu::current_cpu());
    if !owed {
        // The doorbell rule: an IPI is already owed for this queue.
        mine.doorbells_skipped.fetch_add(1, Ordering::Relaxed);
        false
    } else if !POLL_FLAGS.of(cpu).must_ring() {
        // The polling skip: the target will find the call by itself.
        mine.doorbells_polled.fetch_add(1, Ordering::Relaxed);
        false
    } else {
        true
    }
}

/// [`must_ring`], then the ring itself.
pub fn after_push(cpu: CpuId, owed: bool) {
    if must_ring(cpu, owed) {
        ring(cpu);
    }
}

/// Rings every CPU of `cpus` at once, with the fewest interrupt commands
/// (`fanout`): a set call collects the targets [`must_ring`] named, then
/// rings them here, interrupts still off.
pub fn ring_many(cpus: &CpuSet) {
    fanout::send_ipi(IpiKind::CallFunction, cpus);
    calls::counters(percpu::current_cpu()).doorbells_sent.fetch_add(cpus.len() as u64, Ordering::Relaxed);
}

/// The running CPU, idle with interrupts off, starts polling its queue:
/// senders may skip its doorbell from now on. It must keep looking at its
/// queue until [`stop_polling`].
pub fn start_polling() {
    POLL_FLAGS.this().start();
}

/// The running CPU, interrupts off, stops polling: lowers its flag, then
/// runs whatever is queued (the last look, which finds any call whose
/// sender saw the flag still up). Returns how many calls ran.
pub fn stop_polling() -> usize {
    let me = percpu::current_cpu();
    // Test hook: hold the CPU after it stopped looking but before its flag
    // is down: the window in which a sender skips the doorbell and only the
    // last look below can find the call.
    let _ = hooks::point(points::IDLE_STOP_POLLING, me);
    POLL_FLAGS.of(me).stop();
    calls::run_queue(me)
}

/// For the dying flush of `cpu` (the running CPU, leaving `online`): a CPU
/// taken down while polling parks from inside an interrupt and never gets
/// back to its idle loop. The caller then flushes the queue, which is the
/// last look.
pub fn lower_flag_of_dying_cpu(cpu: CpuId) {
    POLL_FLAGS.of(cpu).stop();
}

/// Whether `cpu` says it polls (reports and tests).
pub fn is_polling(cpu: CpuId) -> bool {
    POLL_FLAGS.of(cpu).is_up()
}
