//! The SMP unikernel as a library: the demonstration kernel (`kernel/demo`)
//! and the in-guest test kernel (`tests/guest`) are two thin entry points on
//! it. It holds no test or diagnostics code: the test harness lives with the
//! tests, and the shell, torture and benchmarks in `kernel/diag`.
//!
//! Generic SMP machinery lives in `smp-core` (host-testable) and `smp`;
//! everything that touches x86 hardware lives under `arch::x86_64`, which
//! generic code reaches only through the façade of `arch`.
#![no_std]
#![feature(abi_x86_interrupt)]

extern crate alloc;

pub mod arch;
pub mod backtrace;
pub mod boot;
pub mod console;
pub mod fbcon;
pub mod hooks;
pub mod keyboard;
pub mod mem;
pub mod panic;
pub mod params;
pub mod percpu;
pub mod smp;
pub mod time;

pub use arch::power;
pub use smp_core::{ApicId, CpuId, CpuSet};
