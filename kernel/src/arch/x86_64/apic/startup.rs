//! Waking an AP: INIT (assert, de-assert), then STARTUP twice, with the
//! delays of the MP specification (B.4) unless the fast setting is asked
//! for, and the ESR checked after each IPI.

use super::regs::{self, Access};
use super::{Mode, destination, mode};
use crate::time::delay_us;
use smp_core::ApicId;

/// Delays between the IPIs of the start sequence.
#[derive(Clone, Copy, Debug)]
pub struct Delays {
    /// After INIT: 10 ms per the MP spec; modern CPUs and emulators need none.
    pub after_init_us: u64,
    /// After each STARTUP: 200 µs per the MP spec.
    pub after_sipi_us: u64,
}

impl Delays {
    pub const MP_SPEC: Delays = Delays { after_init_us: 10_000, after_sipi_us: 200 };
    /// Safe on CPUs since Nehalem and on QEMU/Bochs (Linux skips the INIT
    /// delay there too).
    pub const FAST: Delays = Delays { after_init_us: 0, after_sipi_us: 10 };
}

/// Which IPI of the sequence failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartStep {
    Init,
    Startup1,
    Startup2,
}

impl StartStep {
    pub fn name(self) -> &'static str {
        match self {
            StartStep::Init => "INIT IPI",
            StartStep::Startup1 => "first STARTUP IPI",
            StartStep::Startup2 => "second STARTUP IPI",
        }
    }
}

/// A start-sequence IPI the local APIC reported an error for.
#[derive(Clone, Copy, Debug)]
pub struct StartError {
    pub step: StartStep,
    pub esr: u32,
}

/// Sends INIT (assert, then de-assert on xAPIC) to `to`. The caller waits
/// `after_init_us` once before the STARTUPs (once per batch in parallel mode).
pub fn send_init(to: ApicId) -> Result<(), StartError> {
    let acc = super::raw_access();
    acc.read_esr();
    super::with_local(|l| {
        // SAFETY: INIT to a CPU the kernel is starting; it holds no state yet.
        unsafe { l.send_init_ipi(destination(to)) };
        super::wait_icr_idle();
    });
    if mode() == Mode::XApic {
        // The crate has no de-assert; x2APIC does not use one (SDM 11.12.10).
        deassert_init(acc, to);
    }
    check(StartStep::Init, acc)
}

/// Sends one STARTUP IPI whose vector is the trampoline's page number.
pub fn send_startup(to: ApicId, vector: u8, step: StartStep) -> Result<(), StartError> {
    let acc = super::raw_access();
    acc.read_esr();
    super::with_local(|l| {
        // SAFETY: the trampoline page `vector` holds valid real-mode code.
        unsafe { l.send_sipi(vector, destination(to)) };
        super::wait_icr_idle();
    });
    check(step, acc)
}

/// The whole sequence for one CPU.
pub fn start_one(to: ApicId, vector: u8, delays: Delays) -> Result<(), StartError> {
    send_init(to)?;
    delay_us(delays.after_init_us);
    send_startup(to, vector, StartStep::Startup1)?;
    delay_us(delays.after_sipi_us);
    send_startup(to, vector, StartStep::Startup2)?;
    delay_us(delays.after_sipi_us);
    Ok(())
}

fn deassert_init(acc: Access, to: ApicId) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        acc.write(regs::ICR_HIGH, to.0 << 24);
        acc.write(regs::ICR_LOW, regs::ICR_DELIVERY_INIT | regs::ICR_TRIGGER_LEVEL);
        super::wait_icr_idle();
    });
}

fn check(step: StartStep, acc: Access) -> Result<(), StartError> {
    match acc.read_esr() & 0xEF {
        0 => Ok(()),
        esr => Err(StartError { step, esr }),
    }
}
