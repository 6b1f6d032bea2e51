//! The books every sender keeps while a run lasts: one set, since only one
//! run happens at a time (see `super::run`).

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::{KINDS, Weights};

pub(super) struct Stats {
    /// Calls handed over (for the set kinds: one per target).
    pub sent: [AtomicU64; KINDS],
    /// Calls that ran (counted by the function itself).
    pub ran: [AtomicU64; KINDS],
    pub offline: [AtomicU64; KINDS],
    pub busy: AtomicU64,
    pub errors: AtomicU64,
    /// Senders abandoned by a CPU going down (each may leave one call uncounted).
    pub abandoned: AtomicU64,
}

pub(super) static STATS: Stats = Stats {
    sent: [const { AtomicU64::new(0) }; KINDS],
    ran: [const { AtomicU64::new(0) }; KINDS],
    offline: [const { AtomicU64::new(0) }; KINDS],
    busy: AtomicU64::new(0),
    errors: AtomicU64::new(0),
    abandoned: AtomicU64::new(0),
};

/// Tells every sender to finish.
pub(super) static STOP: AtomicBool = AtomicBool::new(false);
pub(super) static WEIGHTS: [AtomicU32; KINDS] = [const { AtomicU32::new(1) }; KINDS];

/// Only the first few errors are logged: one bug repeats by the thousand.
const LOGGED_ERRORS: u64 = 10;

/// Counts an error, and logs it if it is among the first few.
pub(super) fn error(what: core::fmt::Arguments<'_>) {
    if STATS.errors.fetch_add(1, Ordering::SeqCst) < LOGGED_ERRORS {
        log::error!("stress: {what}");
    }
}

pub(super) fn reset(weights: &Weights) {
    for k in 0..KINDS {
        STATS.sent[k].store(0, Ordering::SeqCst);
        STATS.ran[k].store(0, Ordering::SeqCst);
        STATS.offline[k].store(0, Ordering::SeqCst);
        WEIGHTS[k].store(weights.0[k], Ordering::SeqCst);
    }
    STATS.busy.store(0, Ordering::SeqCst);
    STATS.errors.store(0, Ordering::SeqCst);
    STATS.abandoned.store(0, Ordering::SeqCst);
    STOP.store(false, Ordering::SeqCst);
}

pub(super) fn load(counters: &[AtomicU64; KINDS]) -> [u64; KINDS] {
    core::array::from_fn(|k| counters[k].load(Ordering::SeqCst))
}

pub(super) fn calls_sent() -> u64 {
    STATS.sent.iter().map(|s| s.load(Ordering::Relaxed)).sum()
}
