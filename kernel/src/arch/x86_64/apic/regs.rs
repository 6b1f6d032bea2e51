//! Raw local APIC register access, private to the APIC module: the one path
//! that hides xAPIC MMIO versus x2APIC MSRs for the registers the `x2apic`
//! crate does not expose (ESR write-to-latch, every LVT entry, TPR, the
//! version register, SVR read-back, the ICR). Only `detect` builds an
//! [`Access`], so no code outside this module can aim it at another address.
//! Offsets and MSR numbers are from SDM vol. 3, tables 11-1 and 11-6.

use x86_64::registers::model_specific::Msr;

/// A register by its xAPIC MMIO offset; its x2APIC MSR is
/// `X2APIC_MSR_BASE + offset / 16`. The field is private: only the
/// architectural registers below exist.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reg(u32);

pub(super) const ID: Reg = Reg(0x020);
pub(super) const VERSION: Reg = Reg(0x030);
pub(super) const TPR: Reg = Reg(0x080);
/// Logical destination: programmed in xAPIC mode, read-only in x2APIC.
pub(super) const LDR: Reg = Reg(0x0D0);
/// Destination format (xAPIC only; no x2APIC MSR exists for it).
pub(super) const DFR: Reg = Reg(0x0E0);
pub(super) const SVR: Reg = Reg(0x0F0);
pub(super) const ESR: Reg = Reg(0x280);
pub(super) const LVT_CMCI: Reg = Reg(0x2F0);
const ICR_LOW: Reg = Reg(0x300);
const ICR_HIGH: Reg = Reg(0x310);
pub(super) const LVT_TIMER: Reg = Reg(0x320);
pub(super) const LVT_THERMAL: Reg = Reg(0x330);
pub(super) const LVT_PERF: Reg = Reg(0x340);
pub(super) const LVT_LINT0: Reg = Reg(0x350);
pub(super) const LVT_LINT1: Reg = Reg(0x360);
pub(super) const LVT_ERROR: Reg = Reg(0x370);
/// The timer's count registers and divider (SDM vol. 3, 11.5.4).
pub(super) const TIMER_INITIAL_COUNT: Reg = Reg(0x380);
pub(super) const TIMER_CURRENT_COUNT: Reg = Reg(0x390);
pub(super) const TIMER_DIVIDE: Reg = Reg(0x3E0);

/// The first x2APIC MSR (SDM vol. 3, 11.12.1.2).
const X2APIC_MSR_BASE: u32 = 0x800;

/// Version register: bits 23:16 hold the number of LVT entries minus one.
pub(super) fn max_lvt_entry(version: u32) -> u32 {
    (version >> 16) & 0xFF
}
/// LVT entries that exist only from this max-LVT value on (SDM 11.5.1).
pub(super) const MAX_LVT_WITH_PERF: u32 = 4;
pub(super) const MAX_LVT_WITH_THERMAL: u32 = 5;
pub(super) const MAX_LVT_WITH_CMCI: u32 = 6;

/// LVT mask bit.
pub(super) const LVT_MASKED: u32 = 1 << 16;
/// LVT delivery mode NMI (bits 10:8 = 100b).
pub(super) const LVT_DELIVERY_NMI: u32 = 0b100 << 8;
/// DFR: the flat model, every CPU's LDR a bitmap (SDM 11.6.2.2).
pub(super) const DFR_FLAT: u32 = 0xFFFF_FFFF;
/// xAPIC LDR: the logical id sits in bits 31:24.
pub(super) const XAPIC_LDR_SHIFT: u32 = 24;
/// SVR: APIC software enable.
pub(super) const SVR_ENABLE: u32 = 1 << 8;
/// xAPIC ICR low word: a previous command is still being delivered.
const ICR_DELIVERY_PENDING: u32 = 1 << 12;
/// xAPIC: the destination sits in bits 31:24 of the ICR's high word.
const XAPIC_DEST_SHIFT: u32 = 24;
/// xAPIC id register: the id sits in bits 31:24.
const XAPIC_ID_SHIFT: u32 = 24;

/// How this CPU's local APIC is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Access {
    /// xAPIC: memory-mapped at this kernel virtual address.
    Mmio(u64),
    /// x2APIC: MSRs 0x800-0x8FF.
    Msr,
}

impl Access {
    pub(super) fn read(self, r: Reg) -> u32 {
        match self {
            // SAFETY: `base` maps this CPU's xAPIC page (only `detect` builds
            // an `Mmio`) and `r` is an architectural register offset in it.
            Access::Mmio(base) => unsafe { core::ptr::read_volatile((base + r.0 as u64) as *const u32) },
            // SAFETY: x2APIC mode is on, so the MSR exists.
            Access::Msr => unsafe { Msr::new(X2APIC_MSR_BASE + r.0 / 16).read() as u32 },
        }
    }

    pub(super) fn write(self, r: Reg, v: u32) {
        match self {
            // SAFETY: as in `read`; writes to these registers have only the
            // architectural effect the caller asks for.
            Access::Mmio(base) => unsafe { core::ptr::write_volatile((base + r.0 as u64) as *mut u32, v) },
            // SAFETY: as in `read`.
            Access::Msr => unsafe { Msr::new(X2APIC_MSR_BASE + r.0 / 16).write(v as u64) },
        }
    }

    /// Writes one interrupt command: x2APIC as one 64-bit MSR write (the
    /// MSR serialises it); xAPIC as the high word, then the low word that
    /// sends it, then a wait of at most `settle_us` for delivery. The caller
    /// keeps interrupts off, so no handler's command lands between the two
    /// xAPIC words. False if the xAPIC never reported the command delivered.
    pub(super) fn write_icr(self, dest: u32, low: u32, settle_us: u64) -> bool {
        match self {
            Access::Msr => {
                // SAFETY: x2APIC mode is on; the ICR MSR sends the command
                // the caller built, which is its only effect.
                unsafe { Msr::new(X2APIC_MSR_BASE + ICR_LOW.0 / 16).write((u64::from(dest) << 32) | u64::from(low)) };
                true
            }
            Access::Mmio(_) => {
                self.write(ICR_HIGH, dest << XAPIC_DEST_SHIFT);
                self.write(ICR_LOW, low);
                crate::time::wait_until(settle_us, || self.read(ICR_LOW) & ICR_DELIVERY_PENDING == 0)
            }
        }
    }

    /// The error status: the SDM asks for a write before each read, which
    /// latches the errors seen since the last write.
    pub(super) fn latch_esr(self) -> u32 {
        self.write(ESR, 0);
        self.read(ESR)
    }

    /// This APIC's id (x2APIC: 32 bits; xAPIC: bits 31:24).
    pub(super) fn id(self) -> u32 {
        match self {
            Access::Mmio(_) => self.read(ID) >> XAPIC_ID_SHIFT,
            Access::Msr => self.read(ID),
        }
    }
}
