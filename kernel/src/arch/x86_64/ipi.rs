//! IPIs addressed by logical CPU id (the façade's `arch::ipi`): the APIC id
//! is looked up here, once, for every kind of send.

pub use super::vectors::IpiKind;
use super::{apic, topology};
use smp_core::{CpuId, CpuSet};

/// Sends `kind` to `to`. A CPU the firmware's tables do not list gets
/// nothing: no such CPU can be online.
pub fn send(kind: IpiKind, to: CpuId) {
    if let Some(id) = topology::apic_id(to) {
        apic::send_ipi(kind, id);
    }
}

/// Sends an NMI to `to`.
pub fn send_nmi(to: CpuId) {
    if let Some(id) = topology::apic_id(to) {
        apic::send_nmi(id);
    }
}

/// How a fan-out reached its CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fanout {
    /// Commands written to the interrupt command register.
    pub writes: u32,
    /// Whether it was the all-but-self broadcast.
    pub broadcast: bool,
}

/// Sends `kind` (an NMI for `None`) to every CPU of `targets` with the
/// fewest commands. With `all_but_self` the caller vouches that `targets`
/// is every present CPU but this one and that every present CPU is online,
/// and one broadcast reaches them all.
pub fn send_many(kind: Option<IpiKind>, targets: &CpuSet, all_but_self: bool) -> Fanout {
    Fanout { writes: apic::send_many(kind, targets, all_but_self), broadcast: all_but_self }
}

/// Interrupt commands `cpu` has written since boot.
pub fn icr_writes(cpu: CpuId) -> u64 {
    apic::icr_writes(cpu)
}
