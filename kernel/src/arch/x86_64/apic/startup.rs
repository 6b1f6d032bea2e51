//! Waking an AP: INIT (assert, de-assert), then STARTUP twice, with the
//! delays of the MP specification (B.4) unless the fast setting is asked
//! for, and the ESR checked after each IPI.

use core::fmt;

use super::esr::{self, Errors};
use super::icr::{Delivery, Destination};
use super::{Mode, SendError, access, mode, send};
use crate::hooks::{self, points};
use crate::percpu;
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

/// A start-sequence IPI that failed.
#[derive(Clone, Copy, Debug)]
pub struct StartError {
    pub step: StartStep,
    pub cause: StartFailure,
}

/// How a start IPI failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartFailure {
    /// The command never left (see [`SendError`]).
    Send(SendError),
    /// The local APIC reported these errors for it.
    Esr(Errors),
    /// The firmware's tables list no such CPU, so it has no APIC id.
    NotListed,
    /// STARTUP before the trampoline was installed.
    NoTrampoline,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause {
            StartFailure::Send(e) => write!(f, "{}: {e}", self.step.name()),
            StartFailure::Esr(e) => write!(f, "{}: the local APIC reported a send error ({e})", self.step.name()),
            StartFailure::NotListed => write!(f, "{}: the firmware lists no such CPU", self.step.name()),
            StartFailure::NoTrampoline => write!(f, "{}: no AP trampoline", self.step.name()),
        }
    }
}

/// Sends INIT (assert, then de-assert on xAPIC) to `to`. The caller waits
/// `after_init_us` once before the STARTUPs (once per batch in parallel mode).
pub fn send_init(to: ApicId) -> Result<(), StartError> {
    checked(StartStep::Init, || {
        send(Delivery::InitAssert, Destination::Physical(to))?;
        if mode() == Mode::XApic {
            send(Delivery::InitDeassert, Destination::Physical(to))?;
        }
        Ok(())
    })
}

/// Sends one STARTUP IPI whose vector is the trampoline's page number.
pub fn send_startup(to: ApicId, vector: u8, step: StartStep) -> Result<(), StartError> {
    checked(step, || send(Delivery::Startup(vector), Destination::Physical(to)))
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

/// Runs `sends` between a cleared ESR and a look at every error reported
/// since, by this check or by the LVT Error handler (see `esr`).
fn checked(step: StartStep, sends: impl FnOnce() -> Result<(), SendError>) -> Result<(), StartError> {
    let acc = access();
    esr::clear(acc);
    sends().map_err(|e| StartError { step, cause: StartFailure::Send(e) })?;
    // Test hook: an LVT Error interrupt taken between the send and the check.
    let _ = hooks::point(points::APIC_START_SENT, percpu::current_cpu());
    match esr::take(acc).failing_a_start() {
        Errors(0) => Ok(()),
        errors => Err(StartError { step, cause: StartFailure::Esr(errors) }),
    }
}
