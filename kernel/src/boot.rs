//! The boot path shared by the demonstration kernel and the test kernel:
//! the loader's configuration and the boot CPU's setup, in order.

use core::sync::atomic::{AtomicU64, Ordering};

use bootloader_api::BootInfo;
use bootloader_api::config::{BootloaderConfig, Mapping};
use spin::Once;

use crate::arch::x86_64::{gdt, idt};
use crate::mem::{self, vmem};
use crate::{CpuId, console, params, percpu, time};

/// The loader maps its dynamic regions (kernel, physical memory, boot info)
/// below 0xFFFF_C000_0000_0000, leaving the kernel's own area (see
/// `mem::vmem`) untouched.
pub const BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut c = BootloaderConfig::new_default();
    c.mappings.physical_memory = Some(Mapping::Dynamic);
    c.mappings.dynamic_range_start = Some(0xFFFF_8000_0000_0000);
    c.mappings.dynamic_range_end = Some(0xFFFF_C000_0000_0000);
    // A fixed load address: gdb and the symbolizer know the offset without
    // asking the running kernel.
    c.mappings.kernel_base = Mapping::FixedAddress(KERNEL_BASE);
    c.kernel_stack_size = 128 * 1024;
    c
};

/// Where the kernel image is loaded (its ELF is linked at 0).
pub const KERNEL_BASE: u64 = 0xFFFF_8000_0000_0000;

/// Pages of the boot CPU's own stack (which, unlike the loader's, has a guard page).
const BOOT_STACK_PAGES: u64 = 64;

static RSDP: AtomicU64 = AtomicU64::new(0);
static MAIN: Once<fn() -> !> = Once::new();

/// The physical address of the ACPI RSDP the firmware reported, if any.
pub fn rsdp_addr() -> Option<u64> {
    match RSDP.load(Ordering::Relaxed) {
        0 => None,
        a => Some(a),
    }
}

/// Sets up the boot CPU and runs `main` on a guarded stack.
pub fn start(boot_info: &'static mut BootInfo, main: fn() -> !) -> ! {
    percpu::install(CpuId::BOOT);
    console::init();
    crate::backtrace::set_kernel_base(boot_info.kernel_image_offset);
    let ramdisk = boot_info.ramdisk_addr.into_option().map(|addr| {
        // SAFETY: the loader mapped the ramdisk at `addr` for `ramdisk_len`
        // bytes and never reuses that memory.
        unsafe { core::slice::from_raw_parts(addr as *const u8, boot_info.ramdisk_len as usize) }
    });
    params::init(ramdisk);
    // After the parameters: the test kernel may be told to distort it.
    time::calibrate();
    if params::get_bool("console.fb", true)
        && let Some(fb) = boot_info.framebuffer.as_mut()
    {
        crate::fbcon::init(fb);
    }
    if let Some(level) = params::get("log").and_then(|l| l.parse().ok()) {
        console::set_level(level);
    }
    RSDP.store(boot_info.rsdp_addr.into_option().unwrap_or(0), Ordering::Relaxed);
    let phys_offset = boot_info
        .physical_memory_offset
        .into_option()
        .expect("the loader did not map physical memory (BOOTLOADER_CONFIG asks it to)");
    mem::init(phys_offset, &boot_info.memory_regions);
    gdt::init_this_cpu(CpuId::BOOT).expect("boot CPU descriptor tables");
    idt::load();
    log::info!(
        "boot CPU up: TSC {} MHz, {} frames used, physical memory at {phys_offset:#x}",
        time::tsc_per_us(),
        mem::frames::allocated()
    );
    MAIN.call_once(|| main);
    let stack = vmem::alloc_stack(BOOT_STACK_PAGES).expect("boot stack");
    BOOT_STACK.call_once(|| stack);
    // SAFETY: the new stack is mapped, unused and 16-byte aligned at its
    // top; `on_boot_stack` never returns, so nothing of the old stack is used
    // again.
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "xor ebp, ebp",
            "call {entry}",
            "ud2",
            top = in(reg) stack.top.as_u64(),
            entry = sym on_boot_stack,
            options(noreturn)
        )
    }
}

static BOOT_STACK: Once<vmem::Stack> = Once::new();

/// The boot CPU's guarded stack.
pub fn boot_stack() -> Option<vmem::Stack> {
    BOOT_STACK.get().copied()
}

extern "C" fn on_boot_stack() -> ! {
    crate::smp::init_boot_cpu();
    let main = MAIN.get().expect("main recorded before the stack switch");
    main()
}
