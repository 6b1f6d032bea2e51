//! x86_64: descriptor tables, exceptions, port I/O devices and CPU registers.
pub mod exceptions;
pub mod gdt;
pub mod idt;
pub mod nmi;
pub mod pit;
pub mod ports;
