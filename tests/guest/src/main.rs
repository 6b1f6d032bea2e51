//! The in-guest test kernel: the kernel library with test hooks compiled in,
//! plus every in-guest suite. `cargo xtask test` boots it and reads the
//! `@@KTEST` lines it prints.
#![no_std]
#![no_main]

extern crate alloc;

use bootloader_api::{BootInfo, entry_point};
use kernel::boot;

mod basics;
mod bringup;
mod calls;
mod console;
mod debug;
mod examples;
mod fanout;
mod faults;
mod hotplug;
mod idle;
mod ktest;
mod stop;
mod stop_machine;
mod stress;
mod unhappy;

entry_point!(test_entry, config = &boot::BOOTLOADER_CONFIG);

fn test_entry(boot_info: &'static mut BootInfo) -> ! {
    boot::start(boot_info, run)
}

fn run() -> ! {
    crate::ktest::main(&[
        basics::TESTS,
        bringup::TESTS,
        calls::TESTS,
        console::TESTS,
        debug::TESTS,
        fanout::TESTS,
        hotplug::TESTS,
        idle::TESTS,
        stress::TESTS,
        stop::TESTS,
        stop_machine::TESTS,
        unhappy::TESTS,
        examples::TESTS,
    ])
}
