//! The local APIC, one per CPU, built on the `x2apic` crate: x2APIC through
//! MSRs when the CPU has it, xAPIC through MMIO otherwise. The crate sets the
//! APIC up and signals end of interrupt; `regs` covers the registers it does
//! not expose, and every IPI goes through this module's one ICR path
//! (`send`, see `icr`).
//!
//! A pitfall of the crate handled here: `enable()` starts a periodic timer
//! and writes 0 (unmasked, vector 0) to LINT0/LINT1, so every LVT entry is
//! programmed again right after.

pub mod alarm;
pub mod esr;
mod icr;
mod logical;
mod regs;
pub mod startup;

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spin::Once;
use x2apic::lapic::{LocalApic, LocalApicBuilder};
use x86_64::instructions::interrupts;

use self::icr::{Delivery, Destination};
use self::regs::{Access, LVT_DELIVERY_NMI, LVT_MASKED, SVR_ENABLE};
use super::vectors::{self, IpiKind};
use crate::percpu::{self, ThisCpu};
use smp_core::{ApicId, CpuId, CpuSet, per_cpu};

/// Which flavour of APIC the machine runs, decided once on the boot CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    XApic,
    X2Apic,
}

static MODE: Once<(Mode, Access)> = Once::new();

struct Slot(UnsafeCell<Option<LocalApic>>);

// SAFETY: each slot is touched only by its own CPU (`with_local` indexes by
// the running CPU) with interrupts off, so accesses never overlap.
unsafe impl Sync for Slot {}

per_cpu! {
    static LAPICS: PerCpu<Slot> = Slot(UnsafeCell::new(None));
}
per_cpu! {
    static ENABLED: PerCpu<AtomicBool> = AtomicBool::new(false);
}

pub fn mode() -> Mode {
    MODE.get().map_or(Mode::XApic, |m| m.0)
}

fn access() -> Access {
    MODE.get().map_or(Access::Msr, |m| m.1)
}

/// IA32_APIC_BASE (SDM vol. 3, 11.4.4) and its enable bits.
const IA32_APIC_BASE: u32 = 0x1B;
const APIC_BASE_EXTD: u64 = 1 << 10;
const APIC_BASE_EN: u64 = 1 << 11;

/// Switches this CPU's APIC into x2APIC mode (if the machine runs in it),
/// so its MSRs, the id among them, can be read. The crate does the same in
/// `enable()`, but the id is needed earlier.
pub fn enter_mode_this_cpu() {
    if mode() == Mode::X2Apic {
        let mut msr = x86_64::registers::model_specific::Msr::new(IA32_APIC_BASE);
        // SAFETY: x2APIC is supported (checked in `detect`); EN then EXTD is
        // the architectural order for entering x2APIC mode.
        unsafe {
            let v = msr.read();
            if v & (APIC_BASE_EN | APIC_BASE_EXTD) != (APIC_BASE_EN | APIC_BASE_EXTD) {
                msr.write(v | APIC_BASE_EN);
                msr.write(v | APIC_BASE_EN | APIC_BASE_EXTD);
            }
        }
    }
}

/// Whether this CPU's local APIC is in x2APIC mode (IA32_APIC_BASE.EXTD),
/// as the hardware says rather than as [`mode`] intends.
pub fn x2apic_enabled_this_cpu() -> bool {
    // SAFETY: reading IA32_APIC_BASE has no side effects.
    let base = unsafe { x86_64::registers::model_specific::Msr::new(IA32_APIC_BASE).read() };
    base & APIC_BASE_EXTD != 0
}

/// Decides the mode (boot CPU, before any AP starts) and enters it.
pub fn detect() -> Mode {
    let m = MODE
        .call_once(|| {
            let has_x2apic = raw_cpuid::CpuId::new().get_feature_info().is_some_and(|f| f.has_x2apic());
            if has_x2apic {
                (Mode::X2Apic, Access::Msr)
            } else {
                // SAFETY: reading IA32_APIC_BASE has no side effects.
                let phys = unsafe { x2apic::lapic::xapic_base() };
                let virt = crate::mem::phys_to_virt(x86_64::PhysAddr::new(phys)).as_u64();
                (Mode::XApic, Access::Mmio(virt))
            }
        })
        .0;
    enter_mode_this_cpu();
    m
}

/// Runs `f` on this CPU's APIC with interrupts off.
fn with_local<R>(f: impl FnOnce(&mut LocalApic) -> R) -> R {
    interrupts::without_interrupts(|| {
        let slot = LAPICS.this();
        // SAFETY: see `Slot`: only this CPU, interrupts off.
        let lapic = unsafe { &mut *slot.0.get() };
        f(lapic.as_mut().expect("local APIC used before apic::init_this_cpu"))
    })
}

/// Enables and programs this CPU's local APIC: spurious and error vectors,
/// timer masked, LINT pins masked or NMI as the MADT says, thermal and
/// performance-counter entries masked, TPR 0, errors cleared.
/// `lint_nmi` says which LINT pins the MADT wires to NMI (lint0, lint1).
pub fn init_this_cpu(lint_nmi: (bool, bool)) -> Result<(), &'static str> {
    let (mode, acc) = *MODE.get().ok_or("apic::detect not run")?;
    let mut builder = LocalApicBuilder::new();
    builder
        .timer_vector(vectors::LAPIC_TIMER as usize)
        .error_vector(vectors::LAPIC_ERROR as usize)
        .spurious_vector(vectors::SPURIOUS as usize);
    if let Access::Mmio(base) = acc {
        builder.set_xapic_base(base);
    }
    let mut lapic = builder.build()?;
    if (mode == Mode::X2Apic) != matches!(acc, Access::Msr) {
        return Err("APIC mode differs between CPUs");
    }
    interrupts::without_interrupts(|| {
        // SAFETY: interrupts are off, so the timer the crate starts and the
        // LINT entries it unmasks cannot fire before they are reprogrammed.
        unsafe { lapic.enable() };
        // SAFETY: as above.
        unsafe { lapic.disable_timer() };
        let max_lvt = regs::max_lvt_entry(acc.read(regs::VERSION));
        acc.write(regs::LVT_TIMER, LVT_MASKED | vectors::LAPIC_TIMER as u32);
        let (nmi0, nmi1) = lint_nmi;
        acc.write(regs::LVT_LINT0, if nmi0 { LVT_DELIVERY_NMI } else { LVT_MASKED });
        acc.write(regs::LVT_LINT1, if nmi1 { LVT_DELIVERY_NMI } else { LVT_MASKED });
        if max_lvt >= regs::MAX_LVT_WITH_PERF {
            acc.write(regs::LVT_PERF, LVT_MASKED);
        }
        if max_lvt >= regs::MAX_LVT_WITH_THERMAL {
            acc.write(regs::LVT_THERMAL, LVT_MASKED);
        }
        if max_lvt >= regs::MAX_LVT_WITH_CMCI {
            acc.write(regs::LVT_CMCI, LVT_MASKED);
        }
        acc.write(regs::LVT_ERROR, vectors::LAPIC_ERROR as u32);
        acc.write(regs::TPR, 0);
        logical::set_up_this_cpu(acc, mode, percpu::current_cpu());
        esr::clear(acc);
        // SAFETY: this CPU's own slot, interrupts off.
        unsafe { *LAPICS.this().0.get() = Some(lapic) };
        ENABLED.this().store(acc.read(regs::SVR) & SVR_ENABLE != 0, Ordering::SeqCst);
    });
    if is_enabled_here() { Ok(()) } else { Err("local APIC did not report itself enabled") }
}

/// Whether `cpu`'s APIC is set up and enabled (observable from other CPUs).
pub fn is_enabled_on(cpu: smp_core::CpuId) -> bool {
    ENABLED.of(cpu).load(Ordering::SeqCst)
}

/// Whether this CPU's APIC is set up and software-enabled.
pub fn is_enabled_here() -> bool {
    ENABLED.this().load(Ordering::SeqCst) && access().read(regs::SVR) & SVR_ENABLE != 0
}

/// Quiesces this CPU's APIC before it parks: every LVT masked, software
/// disabled (pending IPIs are then not delivered until it is set up again).
pub fn quiesce_this_cpu() {
    let acc = access();
    interrupts::without_interrupts(|| {
        for r in [regs::LVT_TIMER, regs::LVT_LINT0, regs::LVT_LINT1, regs::LVT_ERROR] {
            acc.write(r, LVT_MASKED);
        }
        acc.write(regs::SVR, acc.read(regs::SVR) & !SVR_ENABLE);
        ENABLED.this().store(false, Ordering::SeqCst);
        logical::forget(percpu::current_cpu());
    });
}

/// This CPU's APIC id, read from the hardware.
pub fn current_apic_id() -> ApicId {
    ApicId(access().id())
}

/// How long an xAPIC may take to report a command delivered.
const ICR_SETTLE_US: u64 = 1_000;

/// Why an interrupt command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// xAPIC physical destinations are 8 bits, and 0xFF is the broadcast.
    Unaddressable(ApicId),
    /// The xAPIC still showed the command pending after `ICR_SETTLE_US`.
    NotDelivered(Destination),
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SendError::Unaddressable(id) => write!(f, "{id} cannot be addressed in xAPIC mode"),
            SendError::NotDelivered(to) => write!(f, "an IPI to {to:?} was still pending after {ICR_SETTLE_US} µs"),
        }
    }
}

/// Commands that failed, for the console and the tests.
static SEND_FAILURES: AtomicU64 = AtomicU64::new(0);

pub fn send_failures() -> u64 {
    SEND_FAILURES.load(Ordering::Relaxed)
}

per_cpu! {
    /// ICR writes each CPU made: the cost of its fan-outs (docs/rules.md#fan-out-1).
    static ICR_WRITES: PerCpu<AtomicU64> = AtomicU64::new(0);
}

pub fn icr_writes(cpu: CpuId) -> u64 {
    ICR_WRITES.of(cpu).load(Ordering::Relaxed)
}

/// The one ICR path: writes `what` for `to`.
fn send(what: Delivery, to: Destination) -> Result<(), SendError> {
    let acc = access();
    if let Destination::Physical(id) = to
        && mode() == Mode::XApic
        && !id.fits_xapic()
    {
        SEND_FAILURES.fetch_add(1, Ordering::Relaxed);
        return Err(SendError::Unaddressable(id));
    }
    ICR_WRITES.this().fetch_add(1, Ordering::Relaxed);
    // Interrupts off: a handler's own command must not land between the
    // xAPIC's two ICR words.
    if interrupts::without_interrupts(|| acc.write_icr(to.field(), what.low_word(to), ICR_SETTLE_US)) {
        Ok(())
    } else {
        SEND_FAILURES.fetch_add(1, Ordering::Relaxed);
        Err(SendError::NotDelivered(to))
    }
}

/// Sends `kind` to the CPU with APIC id `to`. A failure cannot be mended
/// by the sender (the id came from the firmware's tables, or the APIC is
/// broken), so it is counted and logged here; the sender's own bounded wait
/// for its target then reports the target as not answering.
pub fn send_ipi(kind: IpiKind, to: ApicId) {
    report(Some(kind), send(Delivery::Fixed(kind.vector()), Destination::Physical(to)));
}

/// Sends an NMI to the CPU with APIC id `to`; failures as in [`send_ipi`].
pub fn send_nmi(to: ApicId) {
    report(None, send(Delivery::Nmi, Destination::Physical(to)));
}

/// Logs a failed send of `kind` (an NMI for `None`).
fn report(kind: Option<IpiKind>, sent: Result<(), SendError>) {
    match (sent, kind) {
        (Ok(()), _) => {}
        (Err(e), Some(kind)) => log::warn!("{kind:?} IPI not sent: {e}"),
        (Err(e), None) => log::warn!("NMI not sent: {e}"),
    }
}

/// Sends `kind` (or, with `None`, an NMI) to every CPU of `targets` with the
/// fewest ICR writes: the all-but-self shorthand when `all_but_self` (the
/// caller vouches that `targets` is every present CPU but this one, and
/// every present CPU is online), else logical destinations (`logical`).
/// Returns the writes made. Allocates nothing: send-stop fans out from the
/// panic handler, and the panic may have come from inside the allocator.
pub fn send_many(kind: Option<IpiKind>, targets: &CpuSet, all_but_self: bool) -> u32 {
    let what = kind.map_or(Delivery::Nmi, |k| Delivery::Fixed(k.vector()));
    let mut writes = 0;
    let mut write = |to| {
        writes += 1;
        report(kind, send(what, to));
    };
    if all_but_self {
        write(Destination::AllButSelf);
    } else {
        logical::destinations(mode(), targets, write);
    }
    writes
}

/// Whether a multicast can reach `cpu` by its logical id (see `logical`).
pub fn has_logical_id(cpu: CpuId) -> bool {
    logical::has_logical_id(cpu)
}

fn topology_apic_id(cpu: CpuId) -> Option<ApicId> {
    super::topology::apic_id(cpu)
}

/// Signals end of interrupt. Called by every APIC-delivered handler.
pub fn eoi() {
    with_local(|l| {
        // SAFETY: called at the end of an interrupt handler for a vector the
        // APIC delivered.
        unsafe { l.end_of_interrupt() }
    });
}

/// The LVT Error handler's part: latches the ESR (keeping what it held for
/// bring-up, see `esr`) and returns it for the log.
pub fn on_error_interrupt() -> esr::Errors {
    esr::latch(access())
}
