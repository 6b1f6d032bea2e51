//! x86_64: descriptor tables, exceptions and interrupts, the local APIC, the
//! AP trampoline, port I/O devices and CPU registers; behind the façade of
//! `crate::arch`.
pub mod ap;
pub mod apic;
pub mod cpu;
pub mod exceptions;
pub mod gdt;
pub mod i8042;
pub mod idt;
pub mod interrupts;
pub mod ipi;
pub mod irq;
pub mod nmi;
pub mod nmi_halt;
pub mod pit;
pub mod platform;
pub mod ports;
pub mod power;
pub mod topology;
pub mod trampoline;
pub mod vectors;

/// A CPU's hardware id: its local APIC id.
pub type HwCpuId = smp_core::ApicId;
