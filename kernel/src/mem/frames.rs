//! Physical frame allocation from the loader's memory map.
//!
//! A bump allocator over the usable regions above 1 MiB (frames are never
//! returned: stacks and tables live as long as the kernel), plus a separate
//! pool of usable frames below 1 MiB kept for the AP trampoline, which must
//! sit there because a starting AP runs in real mode.

use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use spin::Mutex;
use x86_64::PhysAddr;
use x86_64::structures::paging::{FrameAllocator, PhysFrame, Size4KiB};

const PAGE: u64 = 4096;
const ONE_MIB: u64 = 0x10_0000;

struct Bump {
    regions: &'static MemoryRegions,
    region: usize,
    next: u64,
    allocated: u64,
}

static FRAMES: Mutex<Option<Bump>> = Mutex::new(None);
/// Usable frames below 1 MiB (page 0 excluded: real-mode IVT and BDA);
/// there are at most 255 of them.
struct LowFrames {
    frames: [u64; 256],
    len: usize,
}

static LOW: Mutex<LowFrames> = Mutex::new(LowFrames { frames: [0; 256], len: 0 });

pub fn init(regions: &'static MemoryRegions) {
    let mut low = LOW.lock();
    for r in regions.iter().filter(|r| r.kind == MemoryRegionKind::Usable) {
        let mut a = r.start.next_multiple_of(PAGE).max(PAGE);
        while a + PAGE <= r.end.min(ONE_MIB) && low.len < low.frames.len() {
            let n = low.len;
            low.frames[n] = a;
            low.len += 1;
            a += PAGE;
        }
    }
    *FRAMES.lock() = Some(Bump { regions, region: 0, next: 0, allocated: 0 });
}

/// A zeroed 4 KiB frame above 1 MiB.
pub fn alloc() -> Option<PhysFrame> {
    let mut guard = FRAMES.lock();
    let bump = guard.as_mut()?;
    while let Some(r) = bump.regions.get(bump.region) {
        if r.kind == MemoryRegionKind::Usable {
            let start = bump.next.max(r.start.max(ONE_MIB).next_multiple_of(PAGE));
            if start + PAGE <= r.end {
                bump.next = start + PAGE;
                bump.allocated += 1;
                let frame = PhysFrame::containing_address(PhysAddr::new(start));
                zero(frame);
                return Some(frame);
            }
        }
        bump.region += 1;
        bump.next = 0;
    }
    None
}

/// A zeroed frame below 1 MiB, for real-mode code. `None` when the pool is empty.
pub fn alloc_low() -> Option<PhysFrame> {
    let mut low = LOW.lock();
    // Highest first: the lowest pages are where careless firmware leaves
    // things it forgot to report.
    if low.len == 0 {
        return None;
    }
    low.len -= 1;
    let frame = PhysFrame::containing_address(PhysAddr::new(low.frames[low.len]));
    zero(frame);
    Some(frame)
}

/// How many frames the bump allocator handed out.
pub fn allocated() -> u64 {
    FRAMES.lock().as_ref().map_or(0, |b| b.allocated)
}

fn zero(frame: PhysFrame) {
    let va = super::phys_to_virt(frame.start_address());
    // SAFETY: the frame was just taken from a usable region nobody else owns,
    // and the physical-memory mapping covers it.
    unsafe { core::ptr::write_bytes(va.as_mut_ptr::<u8>(), 0, PAGE as usize) };
}

/// Hands frames to the `x86_64` crate's mapper.
pub struct KernelFrames;

// SAFETY: `alloc` returns each frame at most once and only usable frames.
unsafe impl FrameAllocator<Size4KiB> for KernelFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        alloc()
    }
}
