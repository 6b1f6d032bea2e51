//! Stop-machine's lockstep: the state every participant walks through, and
//! the count of CPUs yet to ack it, in **one word** with the run's
//! generation. Every change is one compare-and-swap on that word, so:
//!
//! - an ack counts only for the generation and state it names: an ack left
//!   over from an aborted run, or one for a state that has already moved on,
//!   changes nothing ([`Ack::Stale`]);
//! - the last ack advances the state, and the controller's abort moves it to
//!   [`Phase::Aborted`]: both start from the same word, so exactly one of
//!   them wins, and the loser sees the winner's word. A controller that
//!   timed out while a late ack was on its way either aborts before that ack
//!   (which then finds the run aborted and runs nothing) or finds the state
//!   advanced and keeps waiting. Nobody acts on a decision the other side
//!   has not seen.
//!
//! That a CPU acks each state of a generation only once is the caller's
//! part (the kernel keeps a per-CPU record of its last ack): the word
//! counts acks, not CPUs.
//!
//! `tests/callq_loom.rs` checks abort against advance, and stale acks, in
//! every interleaving.

use core::sync::atomic::Ordering::SeqCst;

use crate::sync::{AtomicU64, const_unless_loom};

/// Where a stop-machine stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// No stop-machine running.
    Idle = 0,
    Prepare = 1,
    DisableIrq = 2,
    Run = 3,
    Exit = 4,
    /// The controller gave up before RUN: everyone leaves, nothing runs.
    Aborted = 5,
}

impl Phase {
    fn from_bits(v: u64) -> Phase {
        match v {
            1 => Phase::Prepare,
            2 => Phase::DisableIrq,
            3 => Phase::Run,
            4 => Phase::Exit,
            5 => Phase::Aborted,
            _ => Phase::Idle,
        }
    }

    /// The state that follows this one once every participant acked it
    /// (the last EXIT ack ends the run: Idle).
    pub fn next(self) -> Phase {
        match self {
            Phase::Prepare => Phase::DisableIrq,
            Phase::DisableIrq => Phase::Run,
            Phase::Run => Phase::Exit,
            Phase::Exit | Phase::Idle | Phase::Aborted => Phase::Idle,
        }
    }

    /// From RUN on, the function may have run: there is no way back.
    pub fn past_no_return(self) -> bool {
        matches!(self, Phase::Run | Phase::Exit)
    }
}

/// One reading of the word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub generation: u32,
    pub phase: Phase,
    /// Acks still missing for `phase`.
    pub pending: u16,
}

const PENDING_BITS: u32 = 16;
const PHASE_SHIFT: u32 = 16;
const GENERATION_SHIFT: u32 = 32;

impl Snapshot {
    fn pack(self) -> u64 {
        (u64::from(self.generation) << GENERATION_SHIFT)
            | ((self.phase as u64) << PHASE_SHIFT)
            | u64::from(self.pending)
    }

    fn unpack(w: u64) -> Snapshot {
        Snapshot {
            generation: (w >> GENERATION_SHIFT) as u32,
            phase: Phase::from_bits((w >> PHASE_SHIFT) & 0xff),
            pending: (w & ((1 << PENDING_BITS) - 1)) as u16,
        }
    }
}

/// What an ack did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ack {
    /// Counted; others have yet to ack.
    Counted,
    /// This was the last ack: the state is now the given one.
    Advanced(Phase),
    /// The word no longer holds that generation and state (aborted, moved
    /// on, or a new run): nothing changed.
    Stale,
}

/// Why an abort did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoAbort {
    /// The state moved on (or the run ended) since the controller looked:
    /// the late ack won. The word as it is now.
    Moved(Snapshot),
    /// RUN or EXIT: the function may have run, the run must finish.
    PastNoReturn,
}

/// The word.
pub struct Lockstep {
    word: AtomicU64,
}

impl Default for Lockstep {
    fn default() -> Self {
        Self::new()
    }
}

impl Lockstep {
    const_unless_loom! {
        pub fn new() -> Self {
            Lockstep { word: AtomicU64::new(0) }
        }
    }

    pub fn load(&self) -> Snapshot {
        Snapshot::unpack(self.word.load(SeqCst))
    }

    /// Starts generation `generation` in PREPARE with `participants` acks to
    /// collect. Only the controller, between runs, calls this.
    pub fn begin(&self, generation: u32, participants: u16) {
        let s = Snapshot { generation, phase: Phase::Prepare, pending: participants };
        self.word.store(s.pack(), SeqCst);
    }

    /// Back to Idle after a run (the controller, once everyone left).
    pub fn end(&self, generation: u32) {
        let s = Snapshot { generation, phase: Phase::Idle, pending: 0 };
        self.word.store(s.pack(), SeqCst);
    }

    /// Acks `phase` of `generation`. The last ack moves to the next state
    /// and resets the count to `participants`.
    pub fn ack(&self, generation: u32, phase: Phase, participants: u16) -> Ack {
        let mut cur = self.word.load(SeqCst);
        loop {
            let s = Snapshot::unpack(cur);
            if s.generation != generation || s.phase != phase || s.pending == 0 {
                return Ack::Stale;
            }
            let (new, result) = if s.pending == 1 {
                let next = phase.next();
                let pending = if next == Phase::Idle { 0 } else { participants };
                (Snapshot { generation, phase: next, pending }, Ack::Advanced(next))
            } else {
                (Snapshot { pending: s.pending - 1, ..s }, Ack::Counted)
            };
            match self.word.compare_exchange(cur, new.pack(), SeqCst, SeqCst) {
                Ok(_) => return result,
                Err(now) => cur = now,
            }
        }
    }

    /// The controller's timeout: aborts `generation` if it still stands at
    /// `stuck`, the state the controller saw not acked.
    pub fn abort(&self, generation: u32, stuck: Phase) -> Result<(), NoAbort> {
        if stuck.past_no_return() {
            return Err(NoAbort::PastNoReturn);
        }
        let cur = self.word.load(SeqCst);
        let s = Snapshot::unpack(cur);
        if s.generation != generation || s.phase != stuck {
            return Err(NoAbort::Moved(s));
        }
        let aborted = Snapshot { generation, phase: Phase::Aborted, pending: 0 };
        match self.word.compare_exchange(cur, aborted.pack(), SeqCst, SeqCst) {
            Ok(_) => Ok(()),
            // Only an ack can have changed the word meanwhile.
            Err(now) => Err(NoAbort::Moved(Snapshot::unpack(now))),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_last_ack_advances_and_resets_the_count() {
        let l = Lockstep::new();
        l.begin(7, 3);
        assert_eq!(l.ack(7, Phase::Prepare, 3), Ack::Counted);
        assert_eq!(l.ack(7, Phase::Prepare, 3), Ack::Counted);
        assert_eq!(l.ack(7, Phase::Prepare, 3), Ack::Advanced(Phase::DisableIrq));
        assert_eq!(l.load(), Snapshot { generation: 7, phase: Phase::DisableIrq, pending: 3 });
    }

    #[test]
    fn acks_for_another_generation_or_state_change_nothing() {
        let l = Lockstep::new();
        l.begin(2, 2);
        let before = l.load();
        assert_eq!(l.ack(1, Phase::Prepare, 2), Ack::Stale);
        assert_eq!(l.ack(2, Phase::DisableIrq, 2), Ack::Stale);
        assert_eq!(l.load(), before);
    }

    #[test]
    fn exit_ends_in_idle() {
        let l = Lockstep::new();
        l.begin(1, 1);
        for p in [Phase::Prepare, Phase::DisableIrq, Phase::Run] {
            assert_eq!(l.ack(1, p, 1), Ack::Advanced(p.next()));
        }
        assert_eq!(l.ack(1, Phase::Exit, 1), Ack::Advanced(Phase::Idle));
        assert_eq!(l.load().phase, Phase::Idle);
        assert_eq!(l.ack(1, Phase::Exit, 1), Ack::Stale);
    }

    #[test]
    fn an_abort_loses_to_an_earlier_advance_and_wins_before_it() {
        let l = Lockstep::new();
        l.begin(3, 1);
        assert_eq!(l.ack(3, Phase::Prepare, 1), Ack::Advanced(Phase::DisableIrq));
        assert!(matches!(l.abort(3, Phase::Prepare), Err(NoAbort::Moved(s)) if s.phase == Phase::DisableIrq));
        assert_eq!(l.abort(3, Phase::DisableIrq), Ok(()));
        assert_eq!(l.ack(3, Phase::DisableIrq, 1), Ack::Stale, "a late ack after the abort");
        assert_eq!(l.load().phase, Phase::Aborted);
    }

    #[test]
    fn no_abort_from_run_on() {
        let l = Lockstep::new();
        l.begin(4, 1);
        l.ack(4, Phase::Prepare, 1);
        l.ack(4, Phase::DisableIrq, 1);
        assert_eq!(l.abort(4, Phase::Run), Err(NoAbort::PastNoReturn));
        assert_eq!(l.load().phase, Phase::Run);
    }

    #[test]
    fn the_word_round_trips_at_the_widest_values() {
        let s = Snapshot { generation: u32::MAX, phase: Phase::Aborted, pending: u16::MAX };
        assert_eq!(Snapshot::unpack(s.pack()), s);
    }
}
