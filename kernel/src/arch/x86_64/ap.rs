//! The arch half of an AP's start: where the trampoline lands, and the
//! hardware steps the generic bring-up order calls.

use core::sync::atomic::{AtomicU64, Ordering};

use super::{apic, gdt, idt};
use crate::percpu;
use smp_core::{ApicId, CpuId, MAX_CPUS};

/// Stack tops indexed by trampoline ticket (the trampoline reads this array).
pub static STACK_TOPS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// This CPU's APIC id from CPUID, before its local APIC is set up: leaf 0xB
/// (32-bit x2APIC id) where it exists, else leaf 1's 8-bit initial id.
pub fn apic_id_from_cpuid() -> ApicId {
    let max_leaf = core::arch::x86_64::__cpuid(0).eax;
    if max_leaf >= 0xB {
        let r = core::arch::x86_64::__cpuid_count(0xB, 0);
        if r.ebx != 0 {
            return ApicId(r.edx);
        }
    }
    ApicId(core::arch::x86_64::__cpuid(1).ebx >> 24)
}

/// Where the trampoline jumps, on this AP's own stack, with its ticket.
pub extern "C" fn ap_entry(ticket: u32) -> ! {
    let apic_id = apic_id_from_cpuid();
    let Some(cpu) = crate::smp::topology::cpu_of(apic_id) else {
        // Not a CPU the kernel started (or a table it could not read): it
        // must not touch per-CPU state, so it only counts itself and parks.
        crate::smp::bringup::note_stray_ap(apic_id);
        crate::power::halt_forever();
    };
    percpu::install(cpu);
    crate::smp::bringup::ap_main(cpu, ticket)
}

/// Step: this CPU's GDT and TSS (with IST stacks), and the shared IDT that
/// already holds every IPI vector.
pub fn load_descriptor_tables(cpu: CpuId) -> Result<(), &'static str> {
    gdt::init_this_cpu(cpu)?;
    idt::load();
    Ok(())
}

/// Step: this CPU's local APIC, enabled, every LVT entry programmed.
pub fn enable_local_apic(cpu: CpuId) -> Result<(), &'static str> {
    let nmi = crate::smp::topology::lint_nmi(cpu);
    apic::init_this_cpu(nmi)?;
    if apic::current_apic_id() != crate::smp::topology::apic_id(cpu).unwrap_or(ApicId(u32::MAX)) {
        return Err("local APIC id differs from the MADT's");
    }
    Ok(())
}

/// Whether `cpu` has the kernel IDT loaded and its APIC enabled: the
/// hardware half of being able to take an IPI.
pub fn ipi_hardware_ready(cpu: CpuId) -> Result<(), &'static str> {
    if !idt::is_loaded_on(cpu) {
        return Err("its IDT (with the IPI vectors) is not loaded");
    }
    if !apic::is_enabled_on(cpu) {
        return Err("its local APIC is not enabled");
    }
    Ok(())
}

pub fn ticket_stack_top(ticket: u32) -> u64 {
    STACK_TOPS[ticket as usize].load(Ordering::SeqCst)
}
