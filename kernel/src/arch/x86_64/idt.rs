//! The one IDT every CPU loads. It is complete (every exception and every
//! interrupt vector the kernel uses) before the first AP starts, which is
//! half of "online only after the IPI vectors" (docs/rules.md, Bring-up 2).

use core::sync::atomic::{AtomicBool, Ordering};

use crate::percpu::ThisCpu;
use smp_core::{CpuId, per_cpu};
use spin::Once;
use x86_64::structures::idt::InterruptDescriptorTable;

static IDT: Once<InterruptDescriptorTable> = Once::new();
per_cpu! {
    /// Which CPUs have loaded the IDT (observable from other CPUs).
    static LOADED: PerCpu<AtomicBool> = AtomicBool::new(false);
}

/// Loads the IDT on this CPU, building it on first use.
pub fn load() {
    IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        super::exceptions::install(&mut idt);
        super::interrupts::install(&mut idt);
        idt
    })
    .load();
    LOADED.this().store(true, Ordering::SeqCst);
}

/// `cpu` is being started again: until it loads the IDT in this life it has
/// none (an NMI then would triple-fault it).
pub fn forget(cpu: CpuId) {
    LOADED.of(cpu).store(false, Ordering::SeqCst);
}

/// Whether `cpu` has loaded the kernel's IDT.
pub fn is_loaded_on(cpu: CpuId) -> bool {
    LOADED.of(cpu).load(Ordering::SeqCst)
}

/// Whether this CPU's IDTR points at the kernel's IDT.
pub fn is_loaded_here() -> bool {
    let Some(idt) = IDT.get() else { return false };
    x86_64::instructions::tables::sidt().base.as_u64() == idt as *const _ as u64
}
