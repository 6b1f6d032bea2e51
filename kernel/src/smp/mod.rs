//! Generic SMP state: the CPU masks and the current CPU's identity.

use smp_core::{AtomicCpuSet, CpuId};

/// CPUs the firmware reports as usable now or later.
pub static POSSIBLE: AtomicCpuSet = AtomicCpuSet::new();
/// CPUs physically there.
pub static PRESENT: AtomicCpuSet = AtomicCpuSet::new();
/// CPUs that may receive cross-calls.
pub static ONLINE: AtomicCpuSet = AtomicCpuSet::new();
/// CPUs that may be given new work.
pub static ACTIVE: AtomicCpuSet = AtomicCpuSet::new();

/// The boot CPU is online from the start.
pub fn init_boot_cpu() {
    for m in [&POSSIBLE, &PRESENT, &ONLINE, &ACTIVE] {
        m.insert(CpuId::BOOT);
    }
}

pub fn online_count() -> usize {
    ONLINE.len()
}
