//! Logical destinations, so that one ICR write reaches many CPUs
//! (docs/rules.md#fan-out-1).
//!
//! - **x2APIC** runs in cluster mode, fixed by the hardware: a CPU's logical
//!   id (its LDR, read-only) is its cluster (APIC id bits 31:4) in bits
//!   31:16 and one bit of 16 (APIC id bits 3:0) below, so one write reaches
//!   up to 16 CPUs of one cluster (SDM 11.12.10.2).
//! - **xAPIC** runs the flat model, programmed here: CPUs 0 to 7 (logical
//!   CPU ids) each get one bit of LDR bits 31:24, so one write reaches any
//!   of them; CPUs from 8 on are reached physically, one write each.

use core::sync::atomic::{AtomicU32, Ordering};

use super::icr::Destination;
use super::regs::{self, Access};
use super::{Mode, topology_apic_id};
use smp_core::{CpuId, CpuSet, per_cpu};

per_cpu! {
    /// Each CPU's logical id once its APIC is set up; 0 for none.
    static LOGICAL: PerCpu<AtomicU32> = AtomicU32::new(0);
}

/// The xAPIC flat model has one bit per CPU in an 8-bit field.
const XAPIC_FLAT_CPUS: usize = 8;
/// x2APIC cluster mode: cluster in bits 31:16, member bitmap in 15:0.
const X2APIC_CLUSTER_SHIFT: u32 = 16;
const X2APIC_MEMBERS: u32 = 0xFFFF;

/// Sets this CPU's logical destination up (xAPIC) or reads it (x2APIC).
pub(super) fn set_up_this_cpu(acc: Access, mode: Mode, cpu: CpuId) {
    let logical = match mode {
        Mode::X2Apic => acc.read(regs::LDR),
        Mode::XApic => {
            let bit = if cpu.index() < XAPIC_FLAT_CPUS { 1u32 << cpu.index() } else { 0 };
            acc.write(regs::DFR, regs::DFR_FLAT);
            acc.write(regs::LDR, bit << regs::XAPIC_LDR_SHIFT);
            bit
        }
    };
    LOGICAL.of(cpu).store(logical, Ordering::SeqCst);
}

/// Whether `cpu` has a logical id to be reached by (Bochs 2.7's x2APIC
/// APs read an LDR of 0: they are reached physically).
pub(super) fn has_logical_id(cpu: CpuId) -> bool {
    LOGICAL.of(cpu).load(Ordering::SeqCst) != 0
}

/// Forgets `cpu`'s logical id: it is going down, and its next life sets it again.
pub(super) fn forget(cpu: CpuId) {
    LOGICAL.of(cpu).store(0, Ordering::SeqCst);
}

/// Clusters a multicast gathers before it sends the oldest: enough for
/// any machine whose CPUs come in APIC id order, and bounded, because a
/// fan-out may run where nothing may allocate (send-stop on a panic from
/// inside the allocator).
const PENDING_CLUSTERS: usize = 16;

/// Hands `emit` the fewest commands that reach exactly `targets`: one per
/// x2APIC cluster, one for every xAPIC CPU of the flat model, one per other
/// CPU. A CPU with no logical id yet (still starting) is reached
/// physically. Allocates nothing.
pub(super) fn destinations(mode: Mode, targets: &CpuSet, mut emit: impl FnMut(Destination)) {
    let cluster_of = |c: u32, members: u32| Destination::Logical((c << X2APIC_CLUSTER_SHIFT) | members);
    let mut pending = [(0u32, 0u32); PENDING_CLUSTERS];
    let mut n = 0;
    let mut flat = 0u32;
    for cpu in targets.iter() {
        match (mode, LOGICAL.of(cpu).load(Ordering::SeqCst)) {
            (_, 0) => {
                if let Some(id) = topology_apic_id(cpu) {
                    emit(Destination::Physical(id));
                }
            }
            (Mode::XApic, bit) => flat |= bit,
            (Mode::X2Apic, ld) => {
                let (cluster, member) = (ld >> X2APIC_CLUSTER_SHIFT, ld & X2APIC_MEMBERS);
                if let Some((_, members)) = pending[..n].iter_mut().find(|(c, _)| *c == cluster) {
                    *members |= member;
                    continue;
                }
                if n == PENDING_CLUSTERS {
                    emit(cluster_of(pending[0].0, pending[0].1));
                    pending.copy_within(1.., 0);
                    n -= 1;
                }
                pending[n] = (cluster, member);
                n += 1;
            }
        }
    }
    if flat != 0 {
        emit(Destination::Logical(flat));
    }
    for &(c, members) in &pending[..n] {
        emit(cluster_of(c, members));
    }
}
