//! The polling skip: the one exception to the doorbell rule
//! (docs/rules.md#polling-skip, under Cross-calls 2), Linux's `TIF_POLLING_NRFLAG`.
//!
//! A CPU idling with `idle=poll` spins on its own [`CallQueue`] with
//! interrupts on, so it sees a call arrive without an IPI. It says so in its
//! [`PollFlag`]. A sender whose push made that queue non-empty, and who
//! therefore owes the doorbell, may leave it unrung while the flag is up: the
//! poller finds the call by itself, without paying for an interrupt.
//!
//! The danger is a CPU that has stopped looking while its flag still says it
//! looks: a call queued then would wait for a doorbell that nobody rings (the
//! hang of story 2, docs/stories/2-lost-ipis-during-hotplug.md, by another
//! road). Hence the handshake, in this order:
//!
//! - the poller lowers its flag with [`PollFlag::stop`] *before* its last
//!   look at the queue ([`CallQueue::take_all`]), and only then goes to sleep,
//!   runs a job, or goes offline;
//! - a sender asks [`PollFlag::must_ring`] only *after* its push.
//!
//! Each side writes one location and then reads the other's (the
//! store-buffering pattern), with a `SeqCst` fence in between on both sides.
//! The fences are totally ordered: if the sender's comes first, the poller's
//! last look sees the push; if the poller's comes first, the sender sees the
//! flag down and rings. A call is found by the look, by the doorbell, or by
//! both (a doorbell that finds an empty queue is harmless), never by neither.
//! `tests/callq_loom.rs` checks this under every interleaving.
//!
//! [`CallQueue`]: crate::callq::CallQueue
//! [`CallQueue::take_all`]: crate::callq::CallQueue::take_all

use core::sync::atomic::Ordering::{Relaxed, SeqCst};

use crate::sync::{AtomicBool, const_unless_loom, fence};

/// One CPU's "I am polling my call queue, no doorbell needed".
pub struct PollFlag {
    polling: AtomicBool,
}

impl PollFlag {
    const_unless_loom! {
        /// Down: senders ring as usual.
        pub fn new() -> Self {
            PollFlag { polling: AtomicBool::new(false) }
        }
    }

    /// The owning CPU starts polling its queue. Until [`stop`](Self::stop)
    /// it must keep looking at the queue, and handle what it finds, without
    /// waiting for an IPI.
    pub fn start(&self) {
        // Relaxed: a sender that sees the flag up relies only on the poller
        // looking at the queue *later*; a sender that misses it rings, which
        // is never wrong.
        self.polling.store(true, Relaxed);
    }

    /// The owning CPU stops polling. It **must** then look at its queue once
    /// more (`take_all`) before it sleeps, runs anything else, or goes
    /// offline: a sender may have skipped the doorbell just before this.
    pub fn stop(&self) {
        self.polling.store(false, Relaxed);
        // SeqCst fence: orders the store above before the caller's last look
        // at the queue, against the sender's fence in `must_ring` (see the
        // module comment).
        fence(SeqCst);
    }

    /// For a sender whose push just made the target's queue non-empty:
    /// whether it must ring the doorbell. `false` means the target is
    /// polling and will find the call itself.
    pub fn must_ring(&self) -> bool {
        // SeqCst fence: orders the push before the read of the flag, against
        // the poller's fence in `stop`.
        fence(SeqCst);
        !self.polling.load(Relaxed)
    }

    /// A snapshot, for reports and assertions.
    pub fn is_up(&self) -> bool {
        self.polling.load(Relaxed)
    }
}

impl Default for PollFlag {
    fn default() -> Self {
        Self::new()
    }
}
