//! What an online CPU does with nothing to do: run its queued job (see
//! `worker.rs`), else wait for work in one of three ways, chosen at boot by
//! the parameter `idle` (Linux's `idle=`):
//!
//! - `halt`, the default: `sti; hlt` until an interrupt. Under QEMU a halted
//!   vCPU is a sleeping host thread, so it costs the host nothing; but every
//!   IPI to it must first wake that thread, which alone takes 35-65 µs on a
//!   2-core host (README, Performance).
//! - `poll`: spin with `pause` and interrupts on, watching the call queue
//!   and the job slot. The CPU answers at once, and a sender may skip its
//!   doorbell altogether (the polling skip, `doorbell.rs`). The price is a
//!   host core kept busy by every idle vCPU.
//! - `haltpoll`: poll for `idle.poll_us` (default 200) after the last work,
//!   then halt; poll again after every wake-up (Linux's guest `haltpoll`).
//!   Calls that follow each other closely find the CPU polling, and a CPU
//!   left alone gives its host core back.
//!
//! Halt is the default because this kernel mostly runs under emulation on
//! shared, often overcommitted hosts (the test suite boots many QEMUs side
//! by side): a polling vCPU steals host time from the vCPUs doing the work,
//! and from everyone else, and the tests of the stories (docs/stories/) are
//! written for a target that halts. `cargo xtask bench -p idle=poll` (or
//! `haltpoll`) measures the other choices.

use spin::Once;

use super::{calls, doorbell, worker};
use crate::arch::irq;
use crate::percpu::{self, Activity};
use crate::time::{Deadline, SPINS_PER_CLOCK_READ};
use smp_core::CpuId;

/// How an idle CPU waits for work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleMode {
    /// `sti; hlt`: asleep until an interrupt.
    Halt,
    /// Spin on the call queue and the job slot, interrupts on.
    Poll,
    /// Poll for a while after the last work, then halt.
    HaltPoll,
}

impl IdleMode {
    /// As the boot parameter spells it.
    pub fn name(self) -> &'static str {
        match self {
            IdleMode::Halt => "halt",
            IdleMode::Poll => "poll",
            IdleMode::HaltPoll => "haltpoll",
        }
    }
}

/// The boot parameter `idle` (`halt`, `poll` or `haltpoll`; default `halt`).
pub fn mode() -> IdleMode {
    static MODE: Once<IdleMode> = Once::new();
    *MODE.call_once(|| match crate::params::get("idle") {
        None | Some("halt") => IdleMode::Halt,
        Some("poll") => IdleMode::Poll,
        Some("haltpoll") => IdleMode::HaltPoll,
        Some(other) => {
            log::warn!("boot parameter idle={other} is none of `halt`, `poll`, `haltpoll`; using halt");
            IdleMode::Halt
        }
    })
}

/// How long `haltpoll` polls after the last work (`idle.poll_us`).
fn poll_window_us() -> u64 {
    static WINDOW: Once<u64> = Once::new();
    *WINDOW.call_once(|| crate::params::get_u64("idle.poll_us", 200))
}

/// The idle loop of every online AP, from its bring-up to its next offlining.
pub fn idle() -> ! {
    let me = percpu::current_cpu();
    let mode = mode();
    // `haltpoll`: poll (again) before the next halt.
    let mut poll_first = true;
    loop {
        percpu::current().set_activity(Activity::Idle);
        irq::disable();
        if !worker::is_free(me) {
            percpu::current().set_activity(Activity::Running);
            worker::run_pending(me);
            poll_first = true;
        } else if mode == IdleMode::Poll {
            poll_for_work(me, None, &|| worker::is_free(me));
        } else if mode == IdleMode::HaltPoll && poll_first {
            // A call found by the last look is work too: poll once more.
            poll_first = poll_for_work(me, Some(poll_window_us()), &|| worker::is_free(me)) > 0;
        } else {
            // `sti; hlt` is atomic: a wake-up IPI cannot slip in between.
            irq::enable_and_halt();
            poll_first = true;
        }
    }
}

/// Polls for calls as `idle=poll` does, until `stop()`, whatever the boot's
/// idle mode: a benchmark's polling target, measured in the same boot as a
/// halted one. Called from a job, interrupts on.
pub fn poll_until(stop: &dyn Fn() -> bool) {
    irq::disable();
    poll_for_work(percpu::current_cpu(), None, &|| !stop());
    irq::enable();
}

/// Polls, interrupts on, while `keep_going()` (or, with a `window`, until
/// that many µs pass without a call), running every call found on the queue
/// as it comes (interrupts off, as a doorbell's handler would). The flag
/// stays up while the calls run: the CPU keeps looking at its queue, which
/// is all a sender that skipped the doorbell relies on, and flipping the
/// flag per call would cost every sender a cache-line transfer. Entered and
/// left with interrupts off; on the way out it stops polling, which runs any
/// call queued meanwhile: returns how many that last look ran.
fn poll_for_work(me: CpuId, window: Option<u64>, keep_going: &dyn Fn() -> bool) -> usize {
    let queue = calls::queue(me);
    let mut quiet = window.map(Deadline::after_us);
    let mut spins = 0u32;
    doorbell::start_polling();
    irq::enable();
    while keep_going() {
        if queue.is_empty() {
            core::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(SPINS_PER_CLOCK_READ) && quiet.as_ref().is_some_and(Deadline::expired) {
                break;
            }
            continue;
        }
        irq::disable();
        // What a watchdog report shows while the calls found here run.
        percpu::current().set_activity(Activity::Running);
        calls::run_queue(me);
        percpu::current().set_activity(Activity::Idle);
        irq::enable();
        quiet = window.map(Deadline::after_us);
    }
    irq::disable();
    percpu::current().set_activity(Activity::Running);
    doorbell::stop_polling()
}
