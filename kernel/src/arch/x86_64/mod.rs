//! x86_64: descriptor tables, exceptions and interrupts, the local APIC, the
//! AP trampoline, port I/O devices and CPU registers.
pub mod ap;
pub mod apic;
pub mod exceptions;
pub mod gdt;
pub mod i8042;
pub mod idt;
pub mod interrupts;
pub mod nmi;
pub mod nmi_halt;
pub mod pit;
pub mod ports;
pub mod trampoline;
pub mod vectors;
