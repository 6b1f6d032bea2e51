//! The demonstration kernel: boots, shows what the kernel does, shuts down
//! with a summary (or keeps running with `demo.keep_running=1`).
#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};
use kernel::{boot, params, power};

entry_point!(kernel_entry, config = &boot::BOOTLOADER_CONFIG);

fn kernel_entry(boot_info: &'static mut BootInfo) -> ! {
    boot::start(boot_info, demo)
}

fn demo() -> ! {
    log::info!("SMP unikernel demonstration");
    let (used, free) = kernel::mem::heap::usage();
    log::info!("heap: {used} bytes used, {free} free; {} CPUs online", kernel::smp::online_count());
    if params::get_bool("demo.keep_running", false) {
        log::info!("demo.keep_running=1: idling (stop QEMU with Ctrl-A X)");
        loop {
            x86_64::instructions::hlt();
        }
    }
    log::info!("demonstration complete; shutting down");
    power::exit(power::ExitCode::Success)
}
