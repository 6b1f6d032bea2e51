//! The NMI dispatcher. NMIs arrive on their own IST stack and may interrupt
//! anything, including a CPU holding the console lock; nothing here may
//! block.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::structures::idt::InterruptStackFrame;

static UNCLAIMED: AtomicU64 = AtomicU64::new(0);

pub fn dispatch(frame: &mut InterruptStackFrame) {
    super::nmi_halt::skip_halt_if_interrupted_in_stub(frame);
    // A stop NMI is told apart by the stop in progress naming this CPU.
    if crate::smp::stop::on_nmi(super::cpu::Registers::interrupted(frame)) {
        return;
    }
    // A wake-up of a stop-machine waiter, by the count of those sent here.
    if crate::smp::stop_machine::claim_wake_nmi() {
        return;
    }
    UNCLAIMED.fetch_add(1, Ordering::Relaxed);
    log::warn!("unclaimed NMI at RIP {:#x}", frame.instruction_pointer.as_u64());
}

/// NMIs no handler claimed.
pub fn unclaimed() -> u64 {
    UNCLAIMED.load(Ordering::Relaxed)
}
