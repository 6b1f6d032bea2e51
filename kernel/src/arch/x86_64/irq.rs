//! Interrupts on this CPU (the façade's `arch::irq`), from the `x86_64` crate.

pub use x86_64::instructions::interrupts::{
    are_enabled, disable, enable, enable_and_hlt as enable_and_halt, without_interrupts as without,
};
