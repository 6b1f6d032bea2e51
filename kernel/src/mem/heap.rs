//! The kernel heap: `linked_list_allocator` over a region of the kernel area.

use core::alloc::{GlobalAlloc, Layout};

use linked_list_allocator::LockedHeap;

/// 16 MiB: room for per-CPU structures of 300+ CPUs and the torture tests.
pub const HEAP_PAGES: u64 = 4096;

/// The heap's lock is held with interrupts off, so no IPI (a cross-call, a
/// stop-machine that parks the CPU, a STOP) can ever find this CPU holding
/// it: a CPU parked with the heap locked would stop the whole kernel.
struct IrqSafeHeap(LockedHeap);

// SAFETY: delegates to `LockedHeap`, only adding an interrupt-free section.
unsafe impl GlobalAlloc for IrqSafeHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        x86_64::instructions::interrupts::without_interrupts(|| unsafe { self.0.alloc(layout) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        x86_64::instructions::interrupts::without_interrupts(|| unsafe { self.0.dealloc(ptr, layout) })
    }
}

#[global_allocator]
static HEAP: IrqSafeHeap = IrqSafeHeap(LockedHeap::empty());

pub fn init() {
    let base = super::vmem::alloc_region(HEAP_PAGES).expect("no memory for the kernel heap");
    // SAFETY: the region was just mapped for the heap alone and is never
    // used for anything else; `init` runs once.
    unsafe { HEAP.0.lock().init(base.as_mut_ptr(), (HEAP_PAGES * 4096) as usize) };
}

/// Bytes in use and free.
pub fn usage() -> (usize, usize) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let h = HEAP.0.lock();
        (h.used(), h.free())
    })
}
