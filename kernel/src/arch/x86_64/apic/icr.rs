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

/// What an interrupt command delivers. Destinations are physical, one
/// APIC id per command.
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
    /// The ICR's low word for this command.
    pub(super) fn low_word(self) -> u32 {
        match self {
            Delivery::Fixed(vector) => DELIVERY_FIXED | LEVEL_ASSERT | u32::from(vector),
            Delivery::Nmi => DELIVERY_NMI | LEVEL_ASSERT,
            Delivery::InitAssert => DELIVERY_INIT | LEVEL_ASSERT | TRIGGER_LEVEL,
            Delivery::InitDeassert => DELIVERY_INIT | TRIGGER_LEVEL,
            Delivery::Startup(page) => DELIVERY_STARTUP | LEVEL_ASSERT | u32::from(page),
        }
    }
}
