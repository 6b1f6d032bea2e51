//! IPIs addressed by logical CPU id (the façade's `arch::ipi`): the APIC id
//! is looked up here, once, for every kind of send.

pub use super::vectors::IpiKind;
use super::{apic, topology};
use smp_core::CpuId;

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
