//! The arch half of an AP's start (the façade's `arch::start`): the
//! trampoline and where it lands, INIT-SIPI-SIPI addressed by logical CPU
//! id, and the hardware steps the generic bring-up and hotplug order calls.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Once;

use super::apic::startup::{self, StartFailure};
pub use super::apic::startup::{Delays, StartError, StartStep};
use super::trampoline::Trampoline;
use super::{HwCpuId, apic, gdt, idt, topology};
use crate::percpu;
use smp_core::{ApicId, CpuId, MAX_CPUS};

static TRAMPOLINE: Once<Trampoline> = Once::new();

/// Installs the trampoline (boot CPU, once, before any AP starts).
pub fn prepare() -> Result<(), &'static str> {
    let tramp = Trampoline::install(ap_entry, STACK_TOPS.as_ptr().cast::<u64>())?;
    TRAMPOLINE.call_once(|| tramp);
    Ok(())
}

/// Readies the trampoline for a new batch: its tickets start again at 0.
pub fn begin_batch() -> Result<(), &'static str> {
    TRAMPOLINE.get().ok_or("no AP trampoline")?.reset_tickets();
    Ok(())
}

/// The stack the AP holding trampoline ticket `ticket` will run on.
pub fn set_ticket_stack(ticket: usize, top: u64) {
    STACK_TOPS[ticket].store(top, Ordering::SeqCst);
}

/// `cpu`'s hardware id, from the firmware's tables.
pub fn hw_id(cpu: CpuId) -> Option<HwCpuId> {
    topology::apic_id(cpu)
}

fn apic_of(cpu: CpuId, step: StartStep) -> Result<ApicId, StartError> {
    hw_id(cpu).ok_or(StartError { step, cause: StartFailure::NotListed })
}

/// INIT to `cpu`: it resets into wait-for-SIPI.
pub fn send_init(cpu: CpuId) -> Result<(), StartError> {
    startup::send_init(apic_of(cpu, StartStep::Init)?)
}

/// One STARTUP IPI to `cpu`, into the trampoline.
pub fn send_startup(cpu: CpuId, step: StartStep) -> Result<(), StartError> {
    let to = apic_of(cpu, step)?;
    let tramp = TRAMPOLINE.get().ok_or(StartError { step, cause: StartFailure::NoTrampoline })?;
    startup::send_startup(to, tramp.sipi_vector(), step)
}

/// Puts `cpu` back into wait-for-SIPI (INIT), which is as stopped as a CPU
/// can be, and where a late start can no longer wake it unnoticed.
pub fn reset_to_wait_for_start(cpu: CpuId) -> Result<(), StartError> {
    send_init(cpu)
}

/// `cpu` is about to start again: the IDT it had loaded in its last life
/// no longer counts.
pub fn forget(cpu: CpuId) {
    idt::forget(cpu);
}

/// Step (going down): every LVT entry masked, the APIC software-disabled.
pub fn quiesce_interrupt_controller(_cpu: CpuId) -> Result<(), &'static str> {
    apic::quiesce_this_cpu();
    Ok(())
}

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
    let Some(cpu) = topology::cpu_of(apic_id) else {
        // Not a CPU the kernel started (or a table it could not read): it
        // must not touch per-CPU state, so it only counts itself and parks.
        crate::smp::bringup::note_stray_ap(apic_id);
        super::cpu::halt_forever();
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
pub fn enable_interrupt_controller(cpu: CpuId) -> Result<(), &'static str> {
    apic::init_this_cpu(topology::lint_nmi(cpu))?;
    if Some(apic::current_apic_id()) != topology::apic_id(cpu) {
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
