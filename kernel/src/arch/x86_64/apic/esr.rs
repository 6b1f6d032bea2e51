//! The error status register (SDM vol. 3, 11.5.3), and where its errors go.
//!
//! Reading the ESR clears it (a write latches the errors seen since the last
//! write). Two readers want it: the LVT Error handler, which may run at any
//! moment, and bring-up, which checks it right after each start IPI. If the
//! handler ran in between, bring-up would read nothing and call a failed
//! send good (docs/rules.md#unhappy-paths-4). So every latch ORs what it saw into
//! this CPU's record, and bring-up takes the record.

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use super::regs::Access;
use crate::percpu::ThisCpu;
use smp_core::per_cpu;

/// ESR bits, SDM vol. 3, figure 11-9.
const SEND_CHECKSUM: u32 = 1 << 0;
const RECEIVE_CHECKSUM: u32 = 1 << 1;
pub const SEND_ACCEPT: u32 = 1 << 2;
const RECEIVE_ACCEPT: u32 = 1 << 3;
const REDIRECTABLE_IPI: u32 = 1 << 4;
const SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
const RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
const ILLEGAL_REGISTER: u32 = 1 << 7;

const NAMES: [(u32, &str); 8] = [
    (SEND_CHECKSUM, "send checksum"),
    (RECEIVE_CHECKSUM, "receive checksum"),
    (SEND_ACCEPT, "send accept"),
    (RECEIVE_ACCEPT, "receive accept"),
    (REDIRECTABLE_IPI, "redirectable IPI"),
    (SEND_ILLEGAL_VECTOR, "send illegal vector"),
    (RECEIVE_ILLEGAL_VECTOR, "receive illegal vector"),
    (ILLEGAL_REGISTER, "illegal register address"),
];

/// The errors that fail a start IPI: all but "redirectable IPI", which
/// only says lowest-priority delivery is unsupported.
const START_FAILURES: u32 = !REDIRECTABLE_IPI & 0xFF;

/// A set of ESR error bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Errors(pub u32);

impl Errors {
    pub fn contains(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    pub(super) fn failing_a_start(self) -> Errors {
        Errors(self.0 & START_FAILURES)
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ESR {:#x}", self.0)?;
        let mut sep = ": ";
        for (bit, name) in NAMES {
            if self.contains(bit) {
                write!(f, "{sep}{name}")?;
                sep = ", ";
            }
        }
        Ok(())
    }
}

per_cpu! {
    /// What each CPU's latches saw and nobody has taken yet.
    static SEEN: PerCpu<AtomicU32> = AtomicU32::new(0);
}

fn seen_here() -> &'static AtomicU32 {
    SEEN.this()
}

/// Latches the ESR and keeps what it held for [`take`].
pub(super) fn latch(acc: Access) -> Errors {
    let errors = acc.latch_esr();
    seen_here().fetch_or(errors, Ordering::SeqCst);
    Errors(errors)
}

/// Forgets every error seen so far on this CPU.
pub(super) fn clear(acc: Access) {
    acc.latch_esr();
    seen_here().store(0, Ordering::SeqCst);
}

/// Every error this CPU's APIC reported since [`clear`], whoever latched it.
pub(super) fn take(acc: Access) -> Errors {
    latch(acc);
    Errors(seen_here().swap(0, Ordering::SeqCst))
}
