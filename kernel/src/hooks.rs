//! Test hooks: named points in kernel code where a test can make a CPU pause
//! (to hold it at a racy moment) or make a step fail. Built only with the
//! `test-hooks` feature (the in-guest test kernel); in the demonstration
//! kernel `point` is an inline constant and every hook vanishes.

/// What the code at a hook point must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Carry on as if there were no hook.
    Continue,
    /// Make this step fail (the caller reports and rolls back).
    Fail,
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn point(_name: &'static str, _cpu: smp_core::CpuId) -> Action {
    Action::Continue
}

#[cfg(feature = "test-hooks")]
pub use armed::*;

#[cfg(feature = "test-hooks")]
mod armed {
    use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use spin::Mutex;

    use super::Action;
    use crate::time::Deadline;
    use smp_core::CpuId;

    /// A CPU held at a pause point gives up after this long, so a test that
    /// forgets to release never hangs the machine silently.
    const PAUSE_LIMIT_MS: u64 = 20_000;
    const SLOTS: usize = 16;

    /// What a test arms a hook with.
    #[derive(Clone, Copy, Debug)]
    pub enum Mode {
        /// Fail the step, every time it is reached.
        Fail,
        /// Fail the step the first time only.
        FailOnce,
        /// Hold the CPU there until [`release`].
        Pause,
        /// Run this function there (once, on the first CPU to arrive), then
        /// carry on: lets a test act at the exact racy moment.
        Call(fn()),
    }

    #[derive(Clone, Copy)]
    struct Slot {
        name: &'static str,
        cpu: Option<CpuId>,
        mode: Mode,
    }

    static SLOTS_TABLE: Mutex<[Option<Slot>; SLOTS]> = Mutex::new([None; SLOTS]);
    static RELEASED: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
    static REACHED: [AtomicU32; SLOTS] = [const { AtomicU32::new(0) }; SLOTS];
    /// Whether any slot is armed: lets `point` skip the table's lock, so a
    /// hook on a hot path (the polling idle loop) costs the bench kernel,
    /// which is the test kernel, one load while no test arms anything.
    static ANY_ARMED: AtomicBool = AtomicBool::new(false);

    /// Runs `f` on the table, then records whether anything is armed.
    fn with_table<R>(f: impl FnOnce(&mut [Option<Slot>; SLOTS]) -> R) -> R {
        x86_64::instructions::interrupts::without_interrupts(|| {
            let mut table = SLOTS_TABLE.lock();
            let result = f(&mut table);
            ANY_ARMED.store(table.iter().any(Option::is_some), Ordering::SeqCst);
            result
        })
    }

    /// Arms hook `name` (for `cpu` only, or any CPU). Re-arming replaces.
    pub fn arm(name: &'static str, cpu: Option<CpuId>, mode: Mode) {
        with_table(|t| {
            let idx = t
                .iter()
                .position(|s| s.is_some_and(|s| s.name == name))
                .or_else(|| t.iter().position(Option::is_none))
                .expect("too many hooks armed at once");
            RELEASED[idx].store(false, Ordering::SeqCst);
            REACHED[idx].store(0, Ordering::SeqCst);
            t[idx] = Some(Slot { name, cpu, mode });
        });
    }

    /// Lets every CPU paused at `name` go on, and disarms it.
    pub fn release(name: &'static str) {
        with_table(|t| {
            if let Some(i) = t.iter().position(|s| s.is_some_and(|s| s.name == name)) {
                RELEASED[i].store(true, Ordering::SeqCst);
                t[i] = None;
            }
        });
    }

    /// Disarms everything (between tests).
    pub fn reset() {
        with_table(|t| {
            for (i, s) in t.iter_mut().enumerate() {
                RELEASED[i].store(true, Ordering::SeqCst);
                *s = None;
            }
        });
    }

    /// How many times an armed hook `name` was reached since it was armed.
    pub fn reached(name: &'static str) -> u32 {
        with_table(|t| t.iter().position(|s| s.is_some_and(|s| s.name == name)))
            .map_or(0, |i| REACHED[i].load(Ordering::SeqCst))
    }

    /// Waits (bounded) until some CPU reached `name`.
    pub fn wait_reached(name: &'static str, timeout_ms: u64) -> bool {
        crate::time::wait_until(timeout_ms * 1000, || reached(name) > 0)
    }

    /// The hook itself, called by kernel code at a named point.
    pub fn point(name: &'static str, cpu: CpuId) -> Action {
        if !ANY_ARMED.load(Ordering::SeqCst) {
            return Action::Continue;
        }
        let hit = with_table(|t| {
            let i = t.iter().position(|s| s.is_some_and(|s| s.name == name && s.cpu.is_none_or(|c| c == cpu)))?;
            let slot = t[i]?;
            REACHED[i].fetch_add(1, Ordering::SeqCst);
            if matches!(slot.mode, Mode::FailOnce | Mode::Call(_)) {
                t[i] = None;
            }
            Some((i, slot.mode))
        });
        match hit {
            None => Action::Continue,
            Some((_, Mode::Fail | Mode::FailOnce)) => Action::Fail,
            Some((_, Mode::Call(f))) => {
                f();
                Action::Continue
            }
            Some((i, Mode::Pause)) => {
                let d = Deadline::after_ms(PAUSE_LIMIT_MS);
                while !RELEASED[i].load(Ordering::SeqCst) {
                    if d.expired() {
                        log::warn!("hook {name}: held {cpu} for {PAUSE_LIMIT_MS} ms without release; going on");
                        break;
                    }
                    core::hint::spin_loop();
                }
                Action::Continue
            }
        }
    }
}
