//! The receiving side of send-stop: a CPU told to stop records that it
//! stopped, as its very last act, and halts with interrupts off.

use smp_core::AtomicCpuSet;

use crate::percpu::{self, Activity};

/// CPUs that have stopped for good.
pub static STOPPED: AtomicCpuSet = AtomicCpuSet::new();

/// Handler of the maskable STOP IPI.
pub fn on_stop_ipi(_rip: u64) -> ! {
    stop_this_cpu()
}

/// Leaves `online`, marks itself stopped and halts. Never returns.
pub fn stop_this_cpu() -> ! {
    x86_64::instructions::interrupts::disable();
    let me = percpu::current();
    super::ONLINE.remove(me.cpu());
    super::ACTIVE.remove(me.cpu());
    me.set_activity(Activity::Stopped);
    STOPPED.insert(me.cpu());
    crate::power::halt_forever()
}
