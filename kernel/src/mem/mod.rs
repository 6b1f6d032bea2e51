//! Memory: physical frames, the kernel's own virtual area (stacks with guard
//! pages, the heap), and the W^X audit.

pub mod frames;
pub mod heap;
pub mod vmem;
pub mod wx;

use core::sync::atomic::{AtomicU64, Ordering};

use bootloader_api::info::MemoryRegions;
use x86_64::{PhysAddr, VirtAddr};

static PHYS_OFFSET: AtomicU64 = AtomicU64::new(0);

/// Where the loader mapped all of physical memory.
pub fn phys_offset() -> u64 {
    PHYS_OFFSET.load(Ordering::Relaxed)
}

/// The kernel-virtual alias of a physical address.
pub fn phys_to_virt(pa: PhysAddr) -> VirtAddr {
    VirtAddr::new(pa.as_u64() + phys_offset())
}

/// Sets up frames, paging, the kernel area and the heap. Boot CPU, once.
pub fn init(phys_offset: u64, regions: &'static MemoryRegions) {
    PHYS_OFFSET.store(phys_offset, Ordering::Relaxed);
    frames::init(regions);
    vmem::init();
    heap::init();
    wx::enforce();
}
