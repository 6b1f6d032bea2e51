//! The boot CPU's own setup and CPU discovery (the façade's
//! `arch::platform`): the APIC mode, the firmware's CPU list, the legacy
//! PICs masked, the boot CPU's local APIC enabled.

use super::{apic, interrupts, topology};
use smp_core::{CpuId, CpuSet};

/// What discovery found.
#[derive(Clone, Copy, Debug)]
pub struct Discovered {
    /// CPUs the firmware reports as usable now or later.
    pub possible: CpuSet,
    /// CPUs physically there.
    pub present: CpuSet,
    /// How the interrupt controller runs, for the boot log.
    pub controller: &'static str,
    /// The boot CPU's hardware id.
    pub boot_cpu: super::HwCpuId,
}

/// Sets the boot CPU up for SMP and says which CPUs there are. Panics if
/// the boot CPU's interrupt controller cannot be set up: nothing works
/// without it.
pub fn init_boot_cpu() -> Discovered {
    let mode = apic::detect();
    let boot_cpu = apic::current_apic_id();
    let topo = topology::init(boot_cpu);
    interrupts::disable_legacy_pic();
    if let Err(e) = apic::init_this_cpu(topology::lint_nmi(CpuId::BOOT)) {
        panic!("the boot CPU's local APIC cannot be set up: {e}");
    }
    apic::alarm::init();
    let controller = match mode {
        apic::Mode::XApic => "xAPIC",
        apic::Mode::X2Apic => "x2APIC",
    };
    Discovered { possible: topo.possible, present: topo.present, controller, boot_cpu }
}
