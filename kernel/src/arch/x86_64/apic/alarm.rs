//! The local APIC timer as a one-shot alarm: "interrupt this CPU at or
//! after timestamp T". A waiter that halts sets one so that its halt ends by
//! the time its next watchdog report is due, whoever else forgets to wake it
//! (the façade's `arch::alarm`).
//!
//! TSC-deadline mode when CPUID offers it (QEMU's `-cpu max`, real CPUs):
//! the deadline is the timestamp itself. Otherwise one-shot mode, with the
//! APIC timer's rate measured once against the timestamp counter. An alarm
//! that comes early only makes the waiter look again; one that comes late
//! delays a report, never a call.
//!
//! The timer's LVT entry stays masked outside an alarm, and a CPU that goes
//! offline masks it (`quiesce_this_cpu`), so a CPU that comes back finds no
//! old deadline armed.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Once;
use x86_64::registers::model_specific::Msr;

use super::regs::{self, LVT_MASKED};
use super::{access, vectors};
use crate::percpu::ThisCpu;
use smp_core::{CpuId, per_cpu};

/// IA32_TSC_DEADLINE (SDM vol. 4): writing a timestamp arms the timer,
/// writing 0 disarms it.
const IA32_TSC_DEADLINE: u32 = 0x6E0;
/// LVT timer mode field, bits 18:17 (SDM vol. 3, 11.5.1).
const LVT_TIMER_ONE_SHOT: u32 = 0b00 << 17;
const LVT_TIMER_TSC_DEADLINE: u32 = 0b10 << 17;
/// Divide configuration 0b1011: divide by 1.
const DIVIDE_BY_1: u32 = 0b1011;
/// The window the one-shot rate is measured over.
const RATE_WINDOW_US: u64 = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    TscDeadline,
    /// APIC timer counts per 1024 timestamp ticks.
    OneShot {
        counts_per_1024_ticks: u64,
    },
}

static KIND: Once<Kind> = Once::new();
per_cpu! {
    /// Alarms that fired on each CPU, for the tests and the console.
    static FIRED: PerCpu<AtomicU64> = AtomicU64::new(0);
}

/// Chooses the timer's mode (boot CPU, after the timestamp rate is known).
pub fn init() {
    KIND.call_once(|| {
        if raw_cpuid::CpuId::new().get_feature_info().is_some_and(|f| f.has_tsc_deadline()) {
            return Kind::TscDeadline;
        }
        let acc = access();
        acc.write(regs::LVT_TIMER, LVT_MASKED | LVT_TIMER_ONE_SHOT | u32::from(vectors::LAPIC_TIMER));
        acc.write(regs::TIMER_DIVIDE, DIVIDE_BY_1);
        acc.write(regs::TIMER_INITIAL_COUNT, u32::MAX);
        let t0 = crate::arch::x86_64::cpu::timestamp();
        crate::time::delay_us(RATE_WINDOW_US);
        let counted = u64::from(u32::MAX - acc.read(regs::TIMER_CURRENT_COUNT));
        let ticks = (crate::arch::x86_64::cpu::timestamp() - t0).max(1);
        acc.write(regs::TIMER_INITIAL_COUNT, 0);
        Kind::OneShot { counts_per_1024_ticks: (counted * 1024 / ticks).max(1) }
    });
    log::info!("alarm: local APIC timer in {} mode", mode_name());
}

/// `tsc-deadline`, `one-shot` or `none` (before `init`).
pub fn mode_name() -> &'static str {
    match KIND.get() {
        Some(Kind::TscDeadline) => "tsc-deadline",
        Some(Kind::OneShot { .. }) => "one-shot",
        None => "none",
    }
}

/// Arms this CPU's alarm for timestamp `at` (replacing any earlier one).
/// Call with interrupts off; the alarm interrupt only wakes the CPU.
pub fn set(at: u64) {
    let Some(&kind) = KIND.get() else { return };
    let acc = access();
    match kind {
        Kind::TscDeadline => {
            acc.write(regs::LVT_TIMER, LVT_TIMER_TSC_DEADLINE | u32::from(vectors::LAPIC_TIMER));
            // SAFETY: CPUID reports TSC-deadline mode, so the MSR exists;
            // the write only arms this CPU's timer.
            unsafe { Msr::new(IA32_TSC_DEADLINE).write(at.max(1)) };
        }
        Kind::OneShot { counts_per_1024_ticks } => {
            let ticks = at.saturating_sub(crate::arch::x86_64::cpu::timestamp()).max(1);
            let counts = (u128::from(ticks) * u128::from(counts_per_1024_ticks) / 1024).clamp(1, u128::from(u32::MAX));
            acc.write(regs::LVT_TIMER, LVT_TIMER_ONE_SHOT | u32::from(vectors::LAPIC_TIMER));
            acc.write(regs::TIMER_DIVIDE, DIVIDE_BY_1);
            acc.write(regs::TIMER_INITIAL_COUNT, counts as u32);
        }
    }
}

/// Disarms this CPU's alarm and masks the timer.
pub fn clear() {
    let Some(&kind) = KIND.get() else { return };
    let acc = access();
    match kind {
        // SAFETY: as in `set`; 0 disarms.
        Kind::TscDeadline => unsafe { Msr::new(IA32_TSC_DEADLINE).write(0) },
        Kind::OneShot { .. } => acc.write(regs::TIMER_INITIAL_COUNT, 0),
    }
    acc.write(regs::LVT_TIMER, LVT_MASKED | u32::from(vectors::LAPIC_TIMER));
}

/// The timer interrupt's part.
pub fn on_fired() {
    FIRED.this().fetch_add(1, Ordering::Relaxed);
}

/// Alarms that fired on `cpu`.
pub fn fired(cpu: CpuId) -> u64 {
    FIRED.of(cpu).load(Ordering::Relaxed)
}
