//! CPU discovery: the MADT found through the `acpi` crate, interpreted by
//! `smp_core::madt` (host-tested against real machines' tables). A missing or
//! malformed table means a single-CPU boot with a warning, never a fault.

use alloc::vec::Vec;
use core::ptr::NonNull;

use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use smp_core::madt::{self, CpuTopology, FallbackReason, LapicNmi};
use spin::Once;

use crate::hooks::{self, points};
use smp_core::{ApicId, CpuId};

static TOPOLOGY: Once<CpuTopology> = Once::new();
static NMIS: Once<Vec<LapicNmi>> = Once::new();

/// The `acpi` crate's window on physical memory: the loader's full mapping.
#[derive(Clone, Copy, Debug)]
struct PhysWindow;

impl AcpiHandler for PhysWindow {
    unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> PhysicalMapping<Self, T> {
        let virt = crate::mem::phys_to_virt(x86_64::PhysAddr::new(phys as u64)).as_mut_ptr::<T>();
        // SAFETY: all physical memory is mapped at the offset, so `virt`
        // covers `size` bytes for as long as the kernel runs.
        unsafe { PhysicalMapping::new(phys, NonNull::new(virt).expect("non-null window"), size, size, *self) }
    }

    fn unmap_physical_region<T>(_: &PhysicalMapping<Self, T>) {}
}

/// Reads the MADT and numbers the CPUs; the boot CPU (APIC id `bsp`) is
/// `CpuId(0)`. Returns the interpretation and the NMI wiring.
pub fn read_from_firmware(bsp: ApicId) -> (CpuTopology, Vec<LapicNmi>) {
    let info = match crate::boot::rsdp_addr() {
        None => Err(FallbackReason::NoRsdp),
        Some(rsdp) => read_madt(rsdp),
    };
    match info {
        Ok(info) => {
            for w in &info.warnings {
                log::warn!("MADT: {w}");
            }
            let topo = madt::enumerate(&info, bsp);
            for w in &topo.warnings {
                log::warn!("CPU enumeration: {w}");
            }
            (topo, info.lapic_nmis)
        }
        Err(why) => {
            log::warn!("CPU discovery failed: {why}; booting on the boot CPU alone");
            (madt::single_cpu(bsp, why), Vec::new())
        }
    }
}

fn read_madt(rsdp: u64) -> Result<madt::MadtInfo, FallbackReason> {
    // SAFETY: the loader reported `rsdp` as the firmware's RSDP, and the
    // handler maps physical memory through the loader's permanent window.
    let tables = unsafe { AcpiTables::from_rsdp(PhysWindow, rsdp as usize) }.map_err(|e| {
        log::warn!("ACPI: cannot read the root tables: {e:?}");
        FallbackReason::Other("the ACPI root tables (RSDP/RSDT/XSDT) are invalid")
    })?;
    let mapping = tables.find_table::<acpi::madt::Madt>().map_err(|_| FallbackReason::NoMadt)?;
    let len = mapping.region_length();
    // SAFETY: the crate mapped (and validated) the whole table: `len` bytes
    // starting at the mapping's virtual start.
    let bytes = unsafe { core::slice::from_raw_parts(mapping.virtual_start().as_ptr().cast::<u8>(), len) };
    if hooks::point(points::ACPI_CORRUPT_MADT, CpuId::BOOT) == hooks::Action::Fail {
        // Test hook: hand the parser a table whose first entry claims length 0.
        let mut copy = bytes.to_vec();
        if copy.len() > 45 {
            copy[45] = 0;
        }
        return madt::parse(&copy).map_err(FallbackReason::Malformed);
    }
    madt::parse(bytes).map_err(FallbackReason::Malformed)
}

/// Discovers the CPUs once, at boot.
pub fn init(bsp: ApicId) -> &'static CpuTopology {
    TOPOLOGY.call_once(|| {
        let (topo, nmis) = read_from_firmware(bsp);
        NMIS.call_once(|| nmis);
        topo
    })
}

pub fn get() -> Option<&'static CpuTopology> {
    TOPOLOGY.get()
}

pub fn cpu_of(apic: ApicId) -> Option<CpuId> {
    TOPOLOGY.get()?.cpu_of(apic)
}

pub fn apic_id(cpu: CpuId) -> Option<ApicId> {
    TOPOLOGY.get()?.apic_id(cpu)
}

/// Which LINT pins are NMI lines for `cpu`: (lint0, lint1).
pub fn lint_nmi(cpu: CpuId) -> (bool, bool) {
    let uid = TOPOLOGY.get().and_then(|t| t.cpus.get(cpu.index())).map(|c| c.acpi_uid);
    let mut pins = (false, false);
    for n in NMIS.get().map(Vec::as_slice).unwrap_or(&[]) {
        if uid.is_some_and(|u| n.applies_to(u)) {
            match n.lint {
                0 => pins.0 = true,
                _ => pins.1 = true,
            }
        }
    }
    pins
}
