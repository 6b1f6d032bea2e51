//! Raw local APIC register access: the one path that hides xAPIC MMIO versus
//! x2APIC MSRs for the registers the `x2apic` crate does not expose (ESR
//! write-to-latch, every LVT entry, TPR, SVR read-back, xAPIC INIT
//! de-assert). Offsets and MSR numbers are from SDM vol. 3, table 11-1 and
//! table 11-6.

use x86_64::registers::model_specific::Msr;

/// A register by its xAPIC MMIO offset; its x2APIC MSR is 0x800 + offset/16.
#[derive(Clone, Copy, Debug)]
pub struct Reg(pub u32);

pub const ID: Reg = Reg(0x020);
pub const TPR: Reg = Reg(0x080);
pub const SVR: Reg = Reg(0x0F0);
pub const ESR: Reg = Reg(0x280);
pub const LVT_CMCI: Reg = Reg(0x2F0);
pub const ICR_LOW: Reg = Reg(0x300);
pub const ICR_HIGH: Reg = Reg(0x310);
pub const LVT_TIMER: Reg = Reg(0x320);
pub const LVT_THERMAL: Reg = Reg(0x330);
pub const LVT_PERF: Reg = Reg(0x340);
pub const LVT_LINT0: Reg = Reg(0x350);
pub const LVT_LINT1: Reg = Reg(0x360);
pub const LVT_ERROR: Reg = Reg(0x370);

/// LVT mask bit.
pub const LVT_MASKED: u32 = 1 << 16;
/// LVT delivery mode NMI (bits 10:8 = 100b).
pub const LVT_DELIVERY_NMI: u32 = 0b100 << 8;
/// SVR: APIC software enable.
pub const SVR_ENABLE: u32 = 1 << 8;
/// ICR fields (SDM vol. 3, figure 11-12).
pub const ICR_DELIVERY_INIT: u32 = 0b101 << 8;
pub const ICR_LEVEL_ASSERT: u32 = 1 << 14;
pub const ICR_TRIGGER_LEVEL: u32 = 1 << 15;
pub const ICR_DELIVERY_PENDING: u32 = 1 << 12;
pub const ICR_DEST_ALL_INCLUDING_SELF: u32 = 0b10 << 18;

/// How this CPU's local APIC is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// xAPIC: memory-mapped at this kernel virtual address.
    Mmio(u64),
    /// x2APIC: MSRs 0x800-0x8FF.
    Msr,
}

impl Access {
    pub fn read(self, r: Reg) -> u32 {
        match self {
            // SAFETY: `base` maps this CPU's xAPIC page and `r` is an
            // architectural register offset within it.
            Access::Mmio(base) => unsafe { core::ptr::read_volatile((base + r.0 as u64) as *const u32) },
            // SAFETY: x2APIC mode is on, so the MSR exists.
            Access::Msr => unsafe { Msr::new(0x800 + r.0 / 16).read() as u32 },
        }
    }

    pub fn write(self, r: Reg, v: u32) {
        match self {
            // SAFETY: as in `read`; writes to these registers have only the
            // architectural effect the caller asks for.
            Access::Mmio(base) => unsafe { core::ptr::write_volatile((base + r.0 as u64) as *mut u32, v) },
            // SAFETY: as in `read`.
            Access::Msr => unsafe { Msr::new(0x800 + r.0 / 16).write(v as u64) },
        }
    }

    /// The error status: the SDM asks for a write before each read, which
    /// latches the errors seen since the last write.
    pub fn read_esr(self) -> u32 {
        self.write(ESR, 0);
        self.read(ESR)
    }

    /// This APIC's id (x2APIC: 32 bits; xAPIC: bits 31:24).
    pub fn id(self) -> u32 {
        match self {
            Access::Mmio(_) => self.read(ID) >> 24,
            Access::Msr => self.read(ID),
        }
    }
}
