//! W^X: no page may be both writable and executable. The loader maps its own
//! regions (physical memory, boot info) without NX, so at boot the kernel
//! walks every page table, sets NX on every writable leaf, and the tests
//! audit the result.

use x86_64::registers::control::{Cr3, Efer, EferFlags};
use x86_64::structures::paging::{PageTable, PageTableFlags as F};
use x86_64::{PhysAddr, VirtAddr};

/// A writable and executable leaf mapping.
#[derive(Clone, Copy, Debug)]
pub struct WxViolation {
    pub virt: u64,
    pub size: u64,
}

fn table(pa: PhysAddr) -> &'static mut PageTable {
    // SAFETY: page-table frames are mapped at the physical offset; callers
    // run on the boot CPU before APs exist, or only read.
    unsafe { &mut *super::phys_to_virt(pa).as_mut_ptr::<PageTable>() }
}

/// Visits every present leaf: `(virtual address, size, flags, &mut entry flags)`.
fn walk(mut visit: impl FnMut(u64, u64, &mut x86_64::structures::paging::page_table::PageTableEntry)) {
    let (l4, _) = Cr3::read();
    const SIZES: [u64; 4] = [1 << 39, 1 << 30, 1 << 21, 1 << 12];
    fn rec(
        t: &mut PageTable,
        level: usize,
        base: u64,
        visit: &mut dyn FnMut(u64, u64, &mut x86_64::structures::paging::page_table::PageTableEntry),
    ) {
        for (i, e) in t.iter_mut().enumerate() {
            if !e.flags().contains(F::PRESENT) {
                continue;
            }
            let mut va = base + i as u64 * SIZES[level];
            if va & (1 << 47) != 0 {
                va |= 0xFFFF_0000_0000_0000;
            }
            let leaf = level == 3 || (level > 0 && e.flags().contains(F::HUGE_PAGE));
            if leaf {
                visit(va, SIZES[level], e);
            } else {
                rec(table(e.addr()), level + 1, va & 0x0000_FFFF_FFFF_FFFF, visit);
            }
        }
    }
    rec(table(l4.start_address()), 0, 0, &mut visit);
}

/// Every writable, executable leaf mapping.
pub fn audit() -> alloc::vec::Vec<WxViolation> {
    let mut out = alloc::vec::Vec::new();
    walk(|virt, size, e| {
        let f = e.flags();
        if f.contains(F::WRITABLE) && !f.contains(F::NO_EXECUTE) {
            out.push(WxViolation { virt, size });
        }
    });
    out
}

/// Makes every writable leaf non-executable. Boot CPU, before any AP runs.
pub fn enforce() {
    // SAFETY: setting EFER.NXE only enables the NX bit's meaning.
    unsafe { Efer::update(|f| f.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    let mut fixed = 0u64;
    walk(|_, _, e| {
        let f = e.flags();
        if f.contains(F::WRITABLE) && !f.contains(F::NO_EXECUTE) {
            e.set_flags(f | F::NO_EXECUTE);
            fixed += 1;
        }
    });
    x86_64::instructions::tlb::flush_all();
    if fixed > 0 {
        log::debug!("W^X: made {fixed} writable mappings non-executable");
    }
}

/// Translates without taking the mapper lock, so fault handlers can use it.
pub fn translate(addr: VirtAddr) -> Option<PhysAddr> {
    let (l4, _) = Cr3::read();
    let idx = [addr.p4_index(), addr.p3_index(), addr.p2_index(), addr.p1_index()];
    let mut t = table(l4.start_address());
    for (level, i) in idx.iter().enumerate() {
        let e = &t[*i];
        if !e.flags().contains(F::PRESENT) {
            return None;
        }
        let size = 1u64 << (39 - 9 * level);
        if level == 3 || (level > 0 && e.flags().contains(F::HUGE_PAGE)) {
            return Some(e.addr() + (addr.as_u64() & (size - 1)));
        }
        t = table(e.addr());
    }
    None
}
