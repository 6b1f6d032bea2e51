//! Architecture-free SMP protocols, compiled for the kernel and for the host
//! (where `cargo test` and the loom model checker exercise them).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod callq;
pub mod cpu;
pub mod lockstep;
pub mod madt;
pub mod percpu;
pub mod poll;
pub mod rate;
pub mod sleep;
mod sync;

pub use cpu::{ApicId, AtomicCpuSet, CpuId, CpuSet, MAX_CPUS};
pub use percpu::PerCpu;
