//! The architecture boundary. Generic code (`smp`, `time`, the shell, the
//! torture) asks the hardware for things only through the modules below, so
//! it never names a register, an APIC id or the `x86_64` crate; the one
//! implementation is chosen here, and a second architecture would be a
//! second `imp`. Upcalls the other way (an interrupt handler calling into
//! `smp`) are fine.
//!
//! The implementation stays public as `arch::x86_64` for the code that is
//! about x86 itself: the in-guest tests of the APIC, the trampoline and the
//! MADT, and the console's hardware views.

#[cfg(target_arch = "x86_64")]
pub mod x86_64;
#[cfg(target_arch = "x86_64")]
use self::x86_64 as imp;

/// The hardware's name for a CPU (on x86, its local APIC id), beside the
/// kernel's own logical [`smp_core::CpuId`].
pub use imp::HwCpuId;

/// Interrupts on this CPU: on, off, whether on, off around a closure, and
/// on-then-halt as one step (no wake-up can slip between them).
pub mod irq {
    pub use super::imp::irq::{are_enabled, disable, enable, enable_and_halt, without};
}

/// Interprocessor interrupts, addressed by logical CPU id.
pub mod ipi {
    pub use super::imp::ipi::{Fanout, IpiKind, icr_writes, send, send_many, send_nmi};
}

/// This CPU: the timestamp counter, halting, saved registers, and the base
/// register its per-CPU area is reached through.
pub mod cpu {
    pub use super::imp::cpu::{
        Registers, can_take_nmi, halt_forever, halt_while_eq, local_base_word, measure_timestamp_mhz, set_local_base,
        timestamp, timestamp_mhz_from_cpuid,
    };
}

/// This CPU's one-shot alarm: an interrupt at or after a timestamp, which
/// only ends a halt.
pub mod alarm {
    pub use super::imp::apic::alarm::{clear, fired, mode_name, set};
}

/// Starting a CPU, the hardware steps of its way online and offline, and
/// putting a CPU back into its wait-for-start state.
pub mod start {
    pub use super::imp::ap::{
        Delays, StartError, StartStep, begin_batch, enable_interrupt_controller, forget, hw_id, ipi_hardware_ready,
        load_descriptor_tables, prepare, quiesce_interrupt_controller, reset_to_wait_for_start, send_init,
        send_startup, set_ticket_stack, ticket_stack_top,
    };
}

/// Finding the CPUs (the firmware's tables) and the boot CPU's own setup.
pub mod platform {
    pub use super::imp::platform::{Discovered, init_boot_cpu};
}

/// Ending a run.
pub use imp::power;
