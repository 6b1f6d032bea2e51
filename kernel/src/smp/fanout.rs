//! One IPI to many CPUs with the fewest interrupt commands
//! (docs/rules.md#fan-out-1): the all-but-self broadcast when the targets
//! are every present CPU but the sender and every present CPU is online, so
//! that a parked or starting CPU never takes one; otherwise the
//! architecture's multicast (logical destinations), then single sends.
//!
//! The broadcast check is race-free for a caller with interrupts off: no
//! CPU can leave `online` meanwhile (that takes a stop-machine, which waits
//! for this CPU), and none can join a set that already holds every present
//! CPU.

use core::sync::atomic::{AtomicU64, Ordering};

use smp_core::{CpuSet, per_cpu};

use crate::arch::ipi::{self, Fanout, IpiKind};
use crate::hooks::{self, Action, points};
use crate::percpu::{self, ThisCpu};

per_cpu! {
    /// Broadcasts each CPU sent (tests and the console).
    static BROADCASTS: PerCpu<AtomicU64> = AtomicU64::new(0);
}

pub fn broadcasts(cpu: smp_core::CpuId) -> u64 {
    BROADCASTS.of(cpu).load(Ordering::Relaxed)
}

/// Whether `targets` may be reached by the all-but-self broadcast.
fn may_broadcast(targets: &CpuSet) -> bool {
    let me = percpu::current_cpu();
    let present = super::PRESENT.snapshot();
    let mut others = present;
    others.remove(me);
    // Test hook: a sender that broadcasts whoever is online (the bug the
    // rule prevents), to show what a CPU that was not online makes of it.
    if hooks::point(points::FANOUT_FORCE_BROADCAST, me) == Action::Fail {
        return !targets.is_empty();
    }
    !targets.is_empty() && *targets == others && super::ONLINE.snapshot() == present
}

fn send(kind: Option<IpiKind>, targets: &CpuSet) -> Fanout {
    if targets.is_empty() {
        return Fanout::default();
    }
    let broadcast = may_broadcast(targets);
    let sent = ipi::send_many(kind, targets, broadcast);
    if sent.broadcast {
        BROADCASTS.this().fetch_add(1, Ordering::Relaxed);
    }
    sent
}

/// Sends `kind` to every CPU of `targets` (never the sender).
pub fn send_ipi(kind: IpiKind, targets: &CpuSet) -> Fanout {
    send(Some(kind), targets)
}

/// Sends an NMI to every CPU of `targets` (never the sender).
pub fn send_nmi(targets: &CpuSet) -> Fanout {
    send(None, targets)
}
