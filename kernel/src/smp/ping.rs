//! Ping: a bare IPI whose handler only counts. Bring-up uses it to check
//! that an online CPU really takes IPIs; benchmarks use it as the raw floor.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::ipi::{self, IpiKind};
use crate::percpu::ThisCpu;
use smp_core::{CpuId, per_cpu};

per_cpu! {
    static RECEIVED: PerCpu<AtomicU64> = AtomicU64::new(0);
}

pub fn on_ping() {
    RECEIVED.this().fetch_add(1, Ordering::SeqCst);
}

pub fn received(cpu: CpuId) -> u64 {
    RECEIVED.of(cpu).load(Ordering::SeqCst)
}

/// Pings `cpu` and waits (bounded) for its handler to run. `false` if it did
/// not answer within `timeout_us`.
pub fn ping(cpu: CpuId, timeout_us: u64) -> bool {
    let before = received(cpu);
    ipi::send(IpiKind::Ping, cpu);
    crate::time::wait_until(timeout_us, || received(cpu) != before)
}
