//! Interrupt commands (SDM vol. 3, 11.6.1, figure 11-12). Every IPI this
//! kernel sends is a [`Delivery`] written by [`super::send`] through the one
//! ICR path in `regs`; the `x2apic` crate's senders are not used, because
//! they neither de-assert INIT nor wait for delivery, and they take a
//! destination whose encoding differs between the two APIC modes.

/// ICR bits 10:8, the delivery mode.
const DELIVERY_FIXED: u32 = 0b000 << 8;
const DELIVERY_NMI: u32 = 0b100 << 8;
const DELIVERY_INIT: u32 = 0b101 << 8;
const DELIVERY_STARTUP: u32 = 0b110 << 8;
/// ICR bit 14: 1 for every delivery mode but INIT de-assert.
const LEVEL_ASSERT: u32 = 1 << 14;
/// ICR bit 15: level-triggered, which INIT assert and de-assert use (MP
/// specification, B.4.1).
const TRIGGER_LEVEL: u32 = 1 << 15;
/// ICR bit 11: the destination field holds a logical destination.
const DEST_MODE_LOGICAL: u32 = 1 << 11;
/// ICR bits 19:18, the destination shorthand: all CPUs but the sender.
const SHORTHAND_ALL_BUT_SELF: u32 = 0b11 << 18;

/// Whom a command goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// One CPU, by APIC id.
    Physical(smp_core::ApicId),
    /// The CPUs whose logical destination register matches: an x2APIC
    /// cluster and a bitmap of up to 16 of its CPUs, or an xAPIC flat
    /// bitmap of up to 8 CPUs (`logical`).
    Logical(u32),
    /// Every CPU but the sender, whatever state it is in: only while every
    /// present CPU is online (docs/rules.md#fan-out-1).
    AllButSelf,
}

impl Destination {
    /// The ICR destination field (the shorthand has none).
    pub(super) fn field(self) -> u32 {
        match self {
            Destination::Physical(id) => id.0,
            Destination::Logical(ld) => ld,
            Destination::AllButSelf => 0,
        }
    }

    fn low_bits(self) -> u32 {
        match self {
            Destination::Physical(_) => 0,
            Destination::Logical(_) => DEST_MODE_LOGICAL,
            Destination::AllButSelf => SHORTHAND_ALL_BUT_SELF,
        }
    }
}

/// What an interrupt command delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Delivery {
    /// An interrupt on this vector.
    Fixed(u8),
    Nmi,
    /// INIT, level asserted: the target resets into wait-for-SIPI.
    InitAssert,
    /// INIT de-assert, which xAPICs of the MP specification's era need
    /// after the assert; x2APIC has none (SDM 11.12.10).
    InitDeassert,
    /// STARTUP: the target runs real-mode code at page `n` (address n << 12).
    Startup(u8),
}

impl Delivery {
    /// The ICR's low word for this command to `to`.
    pub(super) fn low_word(self, to: Destination) -> u32 {
        to.low_bits()
            | match self {
                Delivery::Fixed(vector) => DELIVERY_FIXED | LEVEL_ASSERT | u32::from(vector),
                Delivery::Nmi => DELIVERY_NMI | LEVEL_ASSERT,
                Delivery::InitAssert => DELIVERY_INIT | LEVEL_ASSERT | TRIGGER_LEVEL,
                Delivery::InitDeassert => DELIVERY_INIT | TRIGGER_LEVEL,
                Delivery::Startup(page) => DELIVERY_STARTUP | LEVEL_ASSERT | u32::from(page),
            }
    }
}
