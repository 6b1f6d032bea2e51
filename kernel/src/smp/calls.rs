//! Cross-calls: each CPU's call queue and the doorbell handler that drains
//! it. The queue protocol itself (lock-free push, FIFO batches, SYNC/ASYNC
//! release order) is `smp_core::callq`, model-checked on the host.

use smp_core::callq::CallQueue;
use smp_core::{CpuId, MAX_CPUS};

use crate::percpu;

static QUEUES: [CallQueue; MAX_CPUS] = [const { CallQueue::new() }; MAX_CPUS];

pub fn queue(cpu: CpuId) -> &'static CallQueue {
    &QUEUES[cpu.index()]
}

/// Bring-up step: the CPU's queue exists and is empty. A non-empty queue
/// would mean an "IPI owed" left over from a previous life: every sender
/// would skip the doorbell and wait forever (seed 2).
pub fn prepare_queue(cpu: CpuId) -> Result<(), &'static str> {
    if queue(cpu).is_empty() { Ok(()) } else { Err("call queue not empty at bring-up") }
}

/// The CALL_FUNCTION handler: run everything queued, in FIFO order.
pub fn on_doorbell() {
    queue(percpu::current_cpu()).take_all().run();
}
