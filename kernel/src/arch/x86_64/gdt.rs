//! Per-CPU GDT and TSS, with IST stacks for the exceptions that must not run
//! on a possibly broken stack.

use alloc::boxed::Box;

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;

use crate::mem::vmem::{self, Stack};
use smp_core::{CpuId, per_cpu};

/// IST slots (the TSS's IST1..IST7 are indexed 0..6 here, as in `x86_64`).
pub const IST_DOUBLE_FAULT: u16 = 0;
pub const IST_NMI: u16 = 1;
pub const IST_MACHINE_CHECK: u16 = 2;
const IST_COUNT: usize = 3;
const IST_STACK_PAGES: u64 = 4;

/// What each CPU's tables left behind for reports.
pub struct CpuTables {
    pub ist: [Stack; IST_COUNT],
}

per_cpu! {
    static TABLES: PerCpu<Once<CpuTables>> = Once::new();
}

/// Builds and loads this CPU's GDT and TSS. The tables live forever (a CPU
/// that goes offline and comes back reuses them).
pub fn init_this_cpu(cpu: CpuId) -> Result<(), &'static str> {
    if let Some(t) = TABLES.of(cpu).get() {
        let _ = t;
        return reload(cpu);
    }
    let mut ist = [Stack { bottom: VirtAddr::zero(), top: VirtAddr::zero() }; IST_COUNT];
    for slot in ist.iter_mut() {
        *slot = vmem::alloc_stack(IST_STACK_PAGES).map_err(|_| "out of memory for IST stacks")?;
    }
    let mut tss = TaskStateSegment::new();
    for (i, s) in ist.iter().enumerate() {
        tss.interrupt_stack_table[i] = s.top;
    }
    let tss: &'static TaskStateSegment = Box::leak(Box::new(tss));
    let mut gdt = GlobalDescriptorTable::new();
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_sel = gdt.append(Descriptor::tss_segment(tss));
    let gdt: &'static GlobalDescriptorTable = Box::leak(Box::new(gdt));
    SELECTORS.call_once(|| Selectors { code, data, tss: tss_sel });
    GDTS.of(cpu).call_once(|| gdt);
    TABLES.of(cpu).call_once(|| CpuTables { ist });
    reload(cpu)
}

struct Selectors {
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

/// Every CPU's GDT has the same layout, so one set of selectors serves all.
static SELECTORS: Once<Selectors> = Once::new();
per_cpu! {
    static GDTS: PerCpu<Once<&'static GlobalDescriptorTable>> = Once::new();
}

fn reload(cpu: CpuId) -> Result<(), &'static str> {
    let gdt = GDTS.of(cpu).get().ok_or("GDT missing")?;
    let sel = SELECTORS.get().ok_or("GDT selectors missing")?;
    gdt.load();
    // SAFETY: the selectors index descriptors of the GDT just loaded. The TSS
    // descriptor is fresh on first load; a CPU coming back online loads its
    // own TSS again after clearing the busy bit below.
    unsafe {
        CS::set_reg(sel.code);
        SS::set_reg(sel.data);
        DS::set_reg(sel.data);
        ES::set_reg(sel.data);
        clear_tss_busy(gdt, sel.tss);
        load_tss(sel.tss);
    }
    Ok(())
}

/// `ltr` faults on a TSS descriptor already marked busy, which it is when a
/// CPU that went offline loads its own TSS again.
///
/// # Safety
/// `sel` must be the TSS selector of `gdt`, and no CPU may be using that TSS.
unsafe fn clear_tss_busy(gdt: &GlobalDescriptorTable, sel: SegmentSelector) {
    const TSS_BUSY_BIT: u64 = 1 << 41;
    let entries = gdt.entries().as_ptr() as *mut u64;
    // SAFETY: per the contract `sel.index()` is the TSS's low descriptor
    // word in this live table; flipping the type's busy bit is what the SDM
    // (vol. 3, 7.2.2) describes for reusing a TSS.
    unsafe {
        let p = entries.add(sel.index() as usize);
        p.write_volatile(p.read_volatile() & !TSS_BUSY_BIT);
    }
}

/// The IST stacks of `cpu`, if its tables exist.
pub fn ist_stacks(cpu: CpuId) -> Option<&'static [Stack; IST_COUNT]> {
    TABLES.of(cpu).get().map(|t| &t.ist)
}
