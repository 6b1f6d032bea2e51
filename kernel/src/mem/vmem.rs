//! The kernel's own virtual area: one PML4 slot the loader is told to keep
//! out of (see `boot::BOOTLOADER_CONFIG`), carved into guarded stacks and the
//! heap by a bump allocator.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::mapper::MapToError;
use x86_64::structures::paging::{Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, Size4KiB, Translate};
use x86_64::{PhysAddr, VirtAddr};

use super::frames::{self, KernelFrames};

/// PML4 slot 400: 0xFFFF_C800_0000_0000, 512 GiB, above the loader's range.
pub const AREA_START: u64 = 0xFFFF_C800_0000_0000;
pub const AREA_END: u64 = 0xFFFF_C880_0000_0000;
const PAGE: u64 = 4096;

static NEXT: AtomicU64 = AtomicU64::new(AREA_START);
static MAPPER: Mutex<Option<OffsetPageTable<'static>>> = Mutex::new(None);

pub fn init() {
    let (l4_frame, _) = Cr3::read();
    let l4 = super::phys_to_virt(l4_frame.start_address()).as_mut_ptr::<PageTable>();
    // SAFETY: CR3's frame is the active PML4, mapped at the physical offset;
    // from here on it is only modified through `MAPPER`.
    let table = unsafe { &mut *l4 };
    assert!(
        table[Page::<Size4KiB>::containing_address(VirtAddr::new(AREA_START)).p4_index()].is_unused(),
        "the loader mapped something in the kernel's own area at {AREA_START:#x}"
    );
    // SAFETY: the whole of physical memory is mapped at `phys_offset`.
    let mapper = unsafe { OffsetPageTable::new(table, VirtAddr::new(super::phys_offset())) };
    *MAPPER.lock() = Some(mapper);
}

/// Reserves `pages` pages of address space (not mapped).
fn reserve(pages: u64) -> VirtAddr {
    let start = NEXT.fetch_add(pages * PAGE, Ordering::Relaxed);
    assert!(start + pages * PAGE <= AREA_END, "kernel virtual area exhausted");
    VirtAddr::new(start)
}

/// Maps `pages` fresh zeroed frames at `start` with `flags`.
pub fn map_fresh(start: VirtAddr, pages: u64, flags: PageTableFlags) -> Result<(), MapToError<Size4KiB>> {
    let mut guard = MAPPER.lock();
    let mapper = guard.as_mut().expect("vmem::init not run");
    for i in 0..pages {
        let page = Page::<Size4KiB>::containing_address(start + i * PAGE);
        let frame = frames::alloc().ok_or(MapToError::FrameAllocationFailed)?;
        // SAFETY: the page lies in the kernel's private area, reserved once
        // and never mapped before, so no existing reference aliases it.
        unsafe { mapper.map_to(page, frame, flags, &mut KernelFrames)?.flush() };
    }
    Ok(())
}

/// Identity-maps one low physical page (the AP trampoline), executable or
/// not. The identity mapping is what lets an AP keep running at the same
/// address at the moment it turns paging on.
pub fn identity_map(pa: PhysAddr, flags: PageTableFlags) -> Result<(), MapToError<Size4KiB>> {
    let mut guard = MAPPER.lock();
    let mapper = guard.as_mut().expect("vmem::init not run");
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(pa.as_u64()));
    let frame = x86_64::structures::paging::PhysFrame::containing_address(pa);
    if let Some(existing) = mapper.translate_addr(page.start_address()) {
        if existing == pa {
            // SAFETY: the page maps the same frame already; only flags change.
            unsafe { mapper.update_flags(page, flags).map_err(|_| MapToError::PageAlreadyMapped(frame))?.flush() };
            return Ok(());
        }
        return Err(MapToError::PageAlreadyMapped(frame));
    }
    // SAFETY: low identity pages are used only by the trampoline, which the
    // kernel owns; nothing else refers to these virtual addresses.
    unsafe { mapper.map_to(page, frame, flags, &mut KernelFrames)?.flush() };
    Ok(())
}

/// Whether `addr` is mapped. Lock-free, so fault handlers may ask.
pub fn is_mapped(addr: VirtAddr) -> bool {
    super::wx::translate(addr).is_some()
}

/// A kernel stack with an unmapped guard page below it.
#[derive(Clone, Copy, Debug)]
pub struct Stack {
    /// The lowest usable address (just above the guard page).
    pub bottom: VirtAddr,
    /// One past the highest usable address: the initial stack pointer.
    pub top: VirtAddr,
}

impl Stack {
    pub fn guard_page(&self) -> VirtAddr {
        self.bottom - PAGE
    }

    pub fn contains(&self, addr: VirtAddr) -> bool {
        addr >= self.bottom && addr < self.top
    }
}

/// Allocates a stack of `pages` pages with a guard page below it.
pub fn alloc_stack(pages: u64) -> Result<Stack, MapToError<Size4KiB>> {
    let base = reserve(pages + 1);
    let bottom = base + PAGE;
    map_fresh(bottom, pages, PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE)?;
    Ok(Stack { bottom, top: bottom + pages * PAGE })
}

/// Maps a fresh region of `pages` pages (read/write, never executable).
pub fn alloc_region(pages: u64) -> Result<VirtAddr, MapToError<Size4KiB>> {
    let base = reserve(pages);
    map_fresh(base, pages, PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE)?;
    Ok(base)
}

/// Whether `addr` falls in the guard page of some stack: every stack's guard
/// is the unmapped page under a mapped one inside the kernel area.
pub fn is_guard_page(addr: VirtAddr) -> bool {
    let a = addr.as_u64();
    if !(AREA_START..AREA_END).contains(&a) {
        return false;
    }
    let page = VirtAddr::new(a & !(PAGE - 1));
    !is_mapped(page) && is_mapped(page + PAGE)
}
