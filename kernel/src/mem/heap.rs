//! The kernel heap: `linked_list_allocator` over a region of the kernel area.

use linked_list_allocator::LockedHeap;

/// 16 MiB: room for per-CPU structures of 300+ CPUs and the torture tests.
pub const HEAP_PAGES: u64 = 4096;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

pub fn init() {
    let base = super::vmem::alloc_region(HEAP_PAGES).expect("no memory for the kernel heap");
    // SAFETY: the region was just mapped for the heap alone and is never
    // used for anything else; `init` runs once.
    unsafe { HEAP.lock().init(base.as_mut_ptr(), (HEAP_PAGES * 4096) as usize) };
}

/// Bytes in use and free.
pub fn usage() -> (usize, usize) {
    let h = HEAP.lock();
    (h.used(), h.free())
}
