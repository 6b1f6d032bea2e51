//! Every call's identity, for the exactly-once verdict (as Linux's
//! scftorture checks each callback). A **channel** is one (kind, sender,
//! target), and on a channel at most one call is in flight at a time: a
//! waiting call waits; a non-waiting call reuses its sender's slot only
//! once the previous call on it was read; an async record is `Busy` until
//! released. So the k-th call sent on a channel is the k-th that runs
//! there, and a per-channel sequence number names every call:
//!
//! - The sender takes the channel's next number before it sends
//!   (`attempt`), and records it as sent once the send returned Ok (`sent`;
//!   a send refused as offline gives the number back).
//! - Where the call runs, it checks that it is on the channel's target and
//!   carries exactly the number after the last one run there: the same
//!   number again is a duplicate, a jump is a lost call.
//! - A sender whose CPU goes down may be abandoned between its send and
//!   its bookkeeping (`attempt == sent + 1`): that one call may or may not
//!   have been queued. Once the CPU has parked, the torture resolves it
//!   ([`Ledger::resolve_abandoned`]) before that CPU sends again: it ran,
//!   or it was never queued and its number is written off. The next call
//!   run there must then carry the number after the written-off ones, and
//!   a written-off call that runs late is an error.
//! - At the end every channel has `ran == sent`, and the number of runs is
//!   the number of calls sent.
//!
//! Async calls carry no number (the record is released before its function
//! runs, so nothing in it can be read then); their send and its count are
//! one step with interrupts off, so no CPU can go down between them, and a
//! run that finds more runs than sends is a duplicate (or a send whose
//! count it cannot see).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use super::stats::error;
use kernel::{CpuId, percpu};

/// How long resolving an abandoned call waits for its target's queue to
/// drain, and then for a batch taken off it to reach the call.
const RESOLVE_US: u64 = 5_000_000;
const RESOLVE_GRACE_US: u64 = 1_000;

/// Sequence numbers travel in 28 bits of a non-waiting call's argument.
pub(super) const SEQ_BITS: u32 = 28;
const SEQ_MASK: u32 = (1 << SEQ_BITS) - 1;

#[derive(Default)]
struct Channel {
    attempt: AtomicU32,
    sent: AtomicU32,
    /// The last number run.
    ran: AtomicU32,
    runs: AtomicU32,
    /// Numbers written off: in all, and since the last run.
    skips: AtomicU32,
    pending_skips: AtomicU32,
}

pub(super) struct Ledger {
    cpus: usize,
    /// The kinds it names calls of, in the order of their channels.
    kinds: &'static [usize],
    channels: Box<[Channel]>,
}

/// The ledger of the run in progress (null between runs).
static LEDGER: AtomicPtr<Ledger> = AtomicPtr::new(core::ptr::null_mut());

impl Ledger {
    /// A ledger of the calls of `kinds` among CPUs `0..cpus`; `None` if the
    /// heap cannot hold it.
    pub(super) fn new(kinds: &'static [usize], cpus: usize) -> Option<Ledger> {
        let n = kinds.len() * cpus * cpus;
        let mut channels = Vec::new();
        channels.try_reserve_exact(n).ok()?;
        channels.resize_with(n, Channel::default);
        Some(Ledger { cpus, kinds, channels: channels.into_boxed_slice() })
    }

    /// The channels of `kind`, by sender then target.
    fn of_kind(&self, kind: usize) -> &[Channel] {
        let slot = self.kinds.iter().position(|k| *k == kind).expect("a kind the ledger names");
        let per_kind = self.cpus * self.cpus;
        &self.channels[slot * per_kind..(slot + 1) * per_kind]
    }

    fn channel(&self, kind: usize, sender: CpuId, target: CpuId) -> &Channel {
        &self.of_kind(kind)[sender.index() * self.cpus + target.index()]
    }

    /// Makes this the ledger calls report to, until [`Ledger::retire`].
    pub(super) fn publish(&'static self) {
        LEDGER.store(self as *const Ledger as *mut Ledger, Ordering::SeqCst);
    }

    /// The published ledger. Senders and calls run only while one is: `run`
    /// retires it only after they finished and settled, and leaks it if
    /// they never did.
    pub(super) fn current() -> Option<&'static Ledger> {
        // SAFETY: see above; a published ledger outlives every reader.
        unsafe { LEDGER.load(Ordering::SeqCst).as_ref() }
    }

    pub(super) fn retire() {
        LEDGER.store(core::ptr::null_mut(), Ordering::SeqCst);
    }

    /// The sender's side, before sending: the call's number.
    pub(super) fn attempt(&self, kind: usize, sender: CpuId, target: CpuId) -> u32 {
        let c = self.channel(kind, sender, target);
        let seq = (c.sent.load(Ordering::SeqCst) + 1) & SEQ_MASK;
        c.attempt.store(seq, Ordering::SeqCst);
        seq
    }

    /// `sender` went down and parked, so whatever it was sending is either
    /// queued somewhere or was never queued: settles each of its calls
    /// numbered but not booked (a sender has at most one). Waits, bounded,
    /// for the call to run where it was queued; a call not run when its
    /// target's queue is empty was never queued, and is written off.
    pub(super) fn resolve_abandoned(&self, sender: CpuId) {
        for &kind in self.kinds {
            for t in 0..self.cpus {
                let Some(target) = CpuId::new(t) else { continue };
                let c = self.channel(kind, sender, target);
                let attempt = c.attempt.load(Ordering::SeqCst);
                if attempt != (c.sent.load(Ordering::SeqCst) + 1) & SEQ_MASK {
                    continue;
                }
                let ran = || c.ran.load(Ordering::SeqCst) == attempt;
                kernel::time::wait_until(RESOLVE_US, || ran() || kernel::smp::calls::queue(target).is_empty());
                // A batch just taken off the queue may still be running.
                kernel::time::wait_until(RESOLVE_GRACE_US, ran);
                if !ran() {
                    c.skips.fetch_add(1, Ordering::SeqCst);
                    c.pending_skips.fetch_add(1, Ordering::SeqCst);
                }
                c.sent.store(attempt, Ordering::SeqCst);
            }
        }
    }

    /// The send returned: Ok records the number as sent; a refusal gives it back.
    pub(super) fn settle_attempt(&self, kind: usize, sender: CpuId, target: CpuId, seq: u32, sent: bool) {
        let c = self.channel(kind, sender, target);
        if sent {
            c.sent.store(seq, Ordering::SeqCst);
        } else {
            c.attempt.store(seq.wrapping_sub(1) & SEQ_MASK, Ordering::SeqCst);
        }
    }

    /// An async send, with interrupts off around it and `send`: counts it
    /// first (the call may run at once elsewhere), and takes it back if
    /// `send` refused.
    pub(super) fn count_async<E>(
        &self,
        kind: usize,
        sender: CpuId,
        target: CpuId,
        send: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let c = self.channel(kind, sender, target);
        let sent = c.sent.fetch_add(1, Ordering::SeqCst) + 1;
        let r = send();
        if r.is_err() {
            c.sent.store(sent - 1, Ordering::SeqCst);
        } else {
            // Nothing to resolve: the audit finds every number booked.
            c.attempt.store(sent, Ordering::SeqCst);
        }
        r
    }

    /// Totals per kind: (calls sent, runs, calls written off). For async
    /// calls `sent` is a plain count and `ran` the runs.
    pub(super) fn totals(&self, kind: usize) -> (u64, u64, u64) {
        self.of_kind(kind).iter().fold((0, 0, 0), |(s, r, w), c| {
            let skips = u64::from(c.skips.load(Ordering::SeqCst));
            (
                s + u64::from(c.sent.load(Ordering::SeqCst)) - skips,
                r + u64::from(c.runs.load(Ordering::SeqCst)),
                w + skips,
            )
        })
    }

    /// The channels whose calls do not balance; with `names`,
    /// the first few are reported as lost calls.
    pub(super) fn unbalanced(&self, names: Option<&[&str]>) -> u64 {
        let mut lost = 0;
        for &kind in self.kinds {
            for s in 0..self.cpus {
                for t in 0..self.cpus {
                    let (Some(sender), Some(target)) = (CpuId::new(s), CpuId::new(t)) else { continue };
                    let c = self.channel(kind, sender, target);
                    let (attempt, sent, ran) =
                        (c.attempt.load(Ordering::SeqCst), c.sent.load(Ordering::SeqCst), c.ran.load(Ordering::SeqCst));
                    let runs = c.runs.load(Ordering::SeqCst);
                    let written_off = c.skips.load(Ordering::SeqCst);
                    let trailing = c.pending_skips.load(Ordering::SeqCst);
                    if attempt == sent && runs + written_off == sent && (ran + trailing) & SEQ_MASK == sent {
                        continue;
                    }
                    lost += 1;
                    if let Some(names) = names {
                        error(format_args!(
                            "{} calls from {sender} to {target}: numbers up to {sent} sent, {written_off} of them written off, {runs} runs, the last numbered {ran} (lost or unbooked)",
                            names[kind]
                        ));
                    }
                }
            }
        }
        lost
    }
}

/// Where any call of the ledger runs: checks its CPU and counts the run;
/// its channel, for the checks of its kind.
fn landed(kind: usize, name: &str, sender: CpuId, target: CpuId) -> Option<&'static Channel> {
    let ledger = Ledger::current()?;
    let here = percpu::current_cpu();
    if here != target {
        error(format_args!("{name} call from {sender} meant for {target} ran on {here}"));
    }
    let c = ledger.channel(kind, sender, target);
    c.runs.fetch_add(1, Ordering::SeqCst);
    Some(c)
}

/// Where a numbered call runs: checks its CPU and its number.
pub(super) fn ran_numbered(kind: usize, name: &str, sender: CpuId, target: CpuId, seq: u32) {
    let Some(c) = landed(kind, name, sender, target) else { return };
    let last = c.ran.swap(seq, Ordering::SeqCst);
    let skipped = c.pending_skips.swap(0, Ordering::SeqCst);
    let expected = (last + 1 + skipped) & SEQ_MASK;
    if seq != expected {
        let what = if seq == last {
            "ran twice"
        } else if seq.wrapping_sub(last) & SEQ_MASK <= skipped {
            "ran after it was written off"
        } else {
            "came after a lost call"
        };
        error(format_args!(
            "{name} call {seq} from {sender} to {target} {what} (the last one run was {last}, {skipped} written off since)"
        ));
    }
}

/// Where an async call runs: checks its CPU and that it was sent.
pub(super) fn ran_async(kind: usize, sender: CpuId, target: CpuId) {
    let Some(c) = landed(kind, "async", sender, target) else { return };
    let ran = c.ran.fetch_add(1, Ordering::SeqCst) + 1;
    let sent = c.sent.load(Ordering::SeqCst);
    if ran > sent {
        error(format_args!("async call from {sender} to {target} ran {ran} times for {sent} sends"));
    }
}
