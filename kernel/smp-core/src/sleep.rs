//! Sleeping until woken, with no lost wake-up: a waiter that halts its CPU
//! until whatever it waits for changes, and the CPU that changes it. Used by
//! stop-machine's waiters, which halt with interrupts off until an NMI.
//!
//! Each waiter owns a [`Sleeper`] flag; the thing waited for comes with a
//! [`WakeSeq`]. The handshake, in this order:
//!
//! - the waiter raises its flag and reads the sequence
//!   ([`Sleeper::prepare`]), then looks at its condition once more, and
//!   halts only while the sequence still holds that value (the compare and
//!   the halt are one step: `arch/x86_64/nmi_halt.rs`);
//! - the waker changes the condition, bumps the sequence ([`WakeSeq::bump`]),
//!   and wakes every waiter whose flag is up ([`Sleeper::must_wake`]).
//!
//! Flag and sequence form the store-buffering pattern with a `SeqCst` fence
//! on each side. If the waiter's fence comes first, the waker sees the flag
//! and wakes it; if the waker's comes first, the waiter's last look sees the
//! change and it does not halt. `tests/callq_loom.rs` checks every
//! interleaving.

use core::sync::atomic::Ordering::{Relaxed, SeqCst};

use crate::sync::{AtomicBool, AtomicU32, const_unless_loom, fence};

/// One waiter's "I may be halted: wake me".
pub struct Sleeper {
    asleep: AtomicBool,
}

impl Sleeper {
    const_unless_loom! {
        pub fn new() -> Self {
            Sleeper { asleep: AtomicBool::new(false) }
        }
    }

    /// Raises the flag and returns the sequence value to halt on. The
    /// caller must look at its condition *after* this, and halt only while
    /// the sequence still holds the value returned.
    pub fn prepare(&self, seq: &WakeSeq) -> u32 {
        self.asleep.store(true, Relaxed);
        // SeqCst fence: the flag before the looks that follow, against the
        // waker's fence in `bump` (see the module comment).
        fence(SeqCst);
        seq.value.load(Relaxed)
    }

    /// Awake again (woken or not): lowers the flag.
    pub fn finish(&self) {
        self.asleep.store(false, Relaxed);
    }

    /// For a waker that has just bumped the sequence: whether this waiter
    /// may be halted and must be woken.
    pub fn must_wake(&self) -> bool {
        self.asleep.load(Relaxed)
    }
}

impl Default for Sleeper {
    fn default() -> Self {
        Self::new()
    }
}

/// Bumped on every change that waiters wait for.
pub struct WakeSeq {
    value: AtomicU32,
}

impl WakeSeq {
    const_unless_loom! {
        pub fn new() -> Self {
            WakeSeq { value: AtomicU32::new(0) }
        }
    }

    /// After a change that waiters wait for, before asking their
    /// [`Sleeper::must_wake`].
    pub fn bump(&self) {
        self.value.fetch_add(1, Relaxed);
        // SeqCst fence: the change and the bump before the reads of the
        // flags, against the waiter's fence in `prepare`.
        fence(SeqCst);
    }

    /// The word the halt compares (with the value `prepare` returned).
    pub fn word(&self) -> &AtomicU32 {
        &self.value
    }
}

impl Default for WakeSeq {
    fn default() -> Self {
        Self::new()
    }
}
